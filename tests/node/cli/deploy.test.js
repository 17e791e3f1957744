// The deploy directories as auth0-deploy-cli 8.x reads them (its own directory loader, keyword
// mappings as `trickle deploy-config` writes them), `trickle finish` against the simulator after
// the bulk phase, and the Action's redirect test when the runtime has no canRedirect.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const DirectoryContext = require('auth0-deploy-cli/lib/context/directory').default;
const h = require('../support/harness');
const { bulkSim, cli } = require('../support/bulk');
const { deployConfig } = require('../../../cli/deploy');

const DIST = path.join(h.ROOT, 'dist');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-deploy-'));

/** What deploy-cli would send: the directory loaded with the config's mappings and filters. */
async function load(dir, config) {
  const ctx = new DirectoryContext({ ...config, AUTH0_INPUT_FILE: dir }, {});
  await ctx.loadAssetsFromLocal();
  return ctx.assets;
}

const PRODUCTS = [
  { name: 'paste', db: 'sqlite:paste.sqlite', format: 'bcrypt', api: { url: 'https://paste.example.com', token: 'tok-"paste"\\$&' } },
  { name: 'collect', db: 'sqlite:collect.sqlite', format: 'sha256-salt-prefix', api: { url: 'https://collect.example.com/', token: 'tok-collect' } }
];
const trickleJson = (over = {}) => ({
  products: PRODUCTS,
  tenant: { url: 'https://example.eu.auth0.com', clientId: 'cid', clientSecret: 'csecret', connectionId: 'con_1' },
  deploy: { mergeUrl: 'https://merge.example.com/merge', tokenSecret: 'merge-secret-0123456789-0123456789', clients: ['Web app', 'Mobile app'] },
  ...over
});

/** No value anywhere that is still a keyword, in either form. */
function assertNoKeywords(value, where) {
  const text = JSON.stringify(value);
  assert.doesNotMatch(text, /##[A-Z0-9_]+##|@@[A-Z0-9_]+@@/, `${where} holds no keyword left unreplaced`);
}

test('dist/auth0 loads as the Action bound to post-login, its mapped secrets only, and the import-mode connection; no Rule', async () => {
  const config = deployConfig(trickleJson());
  for (const only of [config.AUTH0_INCLUDED_ONLY, undefined]) {
    const a = await load(path.join(DIST, 'auth0'), { ...config, AUTH0_INCLUDED_ONLY: only });
    assert.equal(a.actions.length, 1);
    const action = a.actions[0];
    assert.equal(action.name, 'trickle-post-login');
    assert.deepEqual(action.supported_triggers, [{ id: 'post-login', version: 'v3' }]);
    assert.equal(action.deployed, true);
    assert.match(action.code, /exports\.onExecutePostLogin/);
    assert.deepEqual(a.triggers, { 'post-login': [{ action_name: 'trickle-post-login', display_name: 'trickle-post-login' }] });
    const secrets = Object.fromEntries(action.secrets.map((s) => [s.name, s.value]));
    assert.deepEqual(Object.keys(secrets).sort(), ['TRICKLE_CONNECTION', 'TRICKLE_MERGE_URL', 'TRICKLE_PRODUCTS', 'TRICKLE_TOKEN_SECRET'], 'no unmapped optional secret');
    assert.ok(action.secrets.every((s) => typeof s.value === 'string'), 'secret values are strings');
    assert.deepEqual(JSON.parse(secrets.TRICKLE_PRODUCTS), PRODUCTS.map((p) => ({ name: p.name, url: p.api.url, token: p.api.token })), 'a token with quotes, backslashes and $& survives');
    assert.equal(secrets.TRICKLE_MERGE_URL, 'https://merge.example.com/merge');
    assert.equal(secrets.TRICKLE_TOKEN_SECRET, 'merge-secret-0123456789-0123456789');
    assert.equal(secrets.TRICKLE_CONNECTION, 'trickle');
    assert.equal(a.databases.length, 1, 'the database folder is not skipped');
    const db = a.databases[0];
    assert.equal(db.name, 'trickle');
    assert.deepEqual(db.enabled_clients, ['Web app', 'Mobile app']);
    assert.equal(db.options.import_mode, true);
    assert.equal(db.options.enabledDatabaseCustomization, true);
    assert.deepEqual(Object.keys(db.options.customScripts).sort(), ['get_user', 'login']);
    assert.match(db.options.customScripts.login, /^function /);
    assert.match(db.options.customScripts.get_user, /^function /);
    assert.equal(db.options.customScripts.login, fs.readFileSync(path.join(DIST, 'auth0/database-connections/trickle/login.js'), 'utf8'), 'scripts unchanged by keyword replacement');
    assert.deepEqual(JSON.parse(db.options.configuration.TRICKLE_PRODUCTS), JSON.parse(secrets.TRICKLE_PRODUCTS));
    assert.equal(db.options.configuration.TRICKLE_LOOKUP_TIMEOUT_MS, '4000');
    assertNoKeywords({ actions: a.actions.map((x) => ({ ...x, code: '' })), triggers: a.triggers, databases: a.databases }, 'dist/auth0');
    assert.ok(!a.rules || a.rules.length === 0, 'no Rule is created beside the Action');
  }
});

test('an optional setting that is set becomes a secret; one that is not never appears', async () => {
  const cfg = trickleJson();
  cfg.deploy = { ...cfg.deploy, fanoutBudgetMs: 1500, lookupTimeoutMs: 2500, connection: 'legacy-users' };
  const a = await load(path.join(DIST, 'auth0'), deployConfig(cfg));
  const secrets = Object.fromEntries(a.actions[0].secrets.map((s) => [s.name, s.value]));
  assert.equal(secrets.TRICKLE_FANOUT_BUDGET_MS, '1500');
  assert.equal(secrets.TRICKLE_CONNECTION, 'legacy-users');
  assert.equal(a.databases[0].name, 'legacy-users', 'the connection and the Action name the same connection');
  assert.equal(a.databases[0].options.configuration.TRICKLE_LOOKUP_TIMEOUT_MS, '2500');
  assert.ok(!('TRICKLE_EVENTS_URL' in secrets) && !('TRICKLE_EVENTS_TOKEN' in secrets), 'no monitor unless configured');
});

test('deploy.eventsUrl and eventsToken become the Action\'s monitor secrets; a bad URL or token is refused', async () => {
  const cfg = trickleJson();
  cfg.deploy = { ...cfg.deploy, eventsUrl: 'https://monitor.example.com/events', eventsToken: 'mon-token' };
  const a = await load(path.join(DIST, 'auth0'), deployConfig(cfg));
  const secrets = Object.fromEntries(a.actions[0].secrets.map((s) => [s.name, s.value]));
  assert.equal(secrets.TRICKLE_EVENTS_URL, 'https://monitor.example.com/events');
  assert.equal(secrets.TRICKLE_EVENTS_TOKEN, 'mon-token');
  const fromEnv = deployConfig({ ...cfg, deploy: { ...cfg.deploy, eventsToken: undefined } }, { env: { TRICKLE_EVENTS_TOKEN: 'env-token' } });
  assert.ok(fromEnv.AUTH0_KEYWORD_REPLACE_MAPPINGS.TRICKLE_ACTION_SECRETS.some((s) => s.name === 'TRICKLE_EVENTS_TOKEN' && s.value === 'env-token'));
  const noUrl = deployConfig({ ...cfg, deploy: { ...cfg.deploy, eventsUrl: undefined } });
  assert.ok(!noUrl.AUTH0_KEYWORD_REPLACE_MAPPINGS.TRICKLE_ACTION_SECRETS.some((s) => s.name.startsWith('TRICKLE_EVENTS_')), 'a token without a URL is not sent');
  assert.throws(() => deployConfig({ ...cfg, deploy: { ...cfg.deploy, eventsUrl: 'ftp://x' } }), (e) => e.code === 'deploy.events_url');
  assert.throws(() => deployConfig({ ...cfg, deploy: { ...cfg.deploy, eventsToken: 'two words' } }), (e) => e.code === 'deploy.events_token');
});

test('dist/auth0-rules loads as the Rule with its settings and the connection, and no Action', async () => {
  const config = deployConfig(trickleJson(), { pipeline: 'rules' });
  assert.deepEqual(config.AUTH0_INCLUDED_ONLY, ['rules', 'rulesConfigs', 'databases']);
  const a = await load(path.join(DIST, 'auth0-rules'), config);
  assert.equal(a.rules.length, 1);
  assert.equal(a.rules[0].name, 'trickle-post-login');
  assert.equal(a.rules[0].enabled, true);
  assert.match(a.rules[0].script, /^function trickleMigration\(user, context, callback\)/);
  const settings = Object.fromEntries(a.rulesConfigs.map((r) => [r.key, r.value]));
  assert.deepEqual(Object.keys(settings).sort(), ['TRICKLE_CONNECTION', 'TRICKLE_MERGE_URL', 'TRICKLE_PRODUCTS', 'TRICKLE_TOKEN_SECRET']);
  assert.equal(JSON.parse(settings.TRICKLE_PRODUCTS).length, 2);
  assert.equal(a.databases[0].options.import_mode, true);
  assert.ok(a.actions === undefined || a.actions === null, 'no Action');
  assert.ok(a.triggers === undefined || a.triggers === null, 'no binding');
  assertNoKeywords({ rules: a.rules.map((r) => ({ ...r, script: '' })), rulesConfigs: a.rulesConfigs, databases: a.databases.map((d) => ({ ...d, options: { ...d.options, customScripts: {} } })) }, 'dist/auth0-rules');
  // Loaded without filters it is still the Rule only.
  const all = await load(path.join(DIST, 'auth0-rules'), { ...config, AUTH0_INCLUDED_ONLY: undefined });
  assert.ok(!all.actions, 'no Action, even unfiltered');
});

test('trickle deploy-config: the written config.json round-trips through the loader; credentials from tenant', async () => {
  const dir = tmp();
  try {
    const file = path.join(dir, 'trickle.json');
    fs.writeFileSync(file, JSON.stringify(trickleJson()));
    const out = path.join(dir, 'config.json');
    const r = await cli(['deploy-config', '--config', file, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /a0deploy import --input_file dist\/auth0 --config_file/);
    assert.equal(fs.statSync(out).mode & 0o077, 0, 'secrets: readable by the owner only');
    const config = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.equal(config.AUTH0_DOMAIN, 'example.eu.auth0.com');
    assert.equal(config.AUTH0_CLIENT_ID, 'cid');
    assert.equal(config.AUTH0_CLIENT_SECRET, 'csecret');
    assert.deepEqual(config.AUTH0_INCLUDED_ONLY, ['actions', 'triggers', 'databases']);
    assert.equal(config.AUTH0_ALLOW_DELETE, false);
    assert.deepEqual(config, deployConfig(trickleJson()));
    const a = await load(path.join(DIST, 'auth0'), config);
    assert.equal(a.actions[0].secrets.length, 4);
    assert.deepEqual(a.databases[0].enabled_clients, ['Web app', 'Mobile app']);
    // Without tenant credentials they are left to the environment deploy-cli reads.
    fs.writeFileSync(file, JSON.stringify(trickleJson({ tenant: undefined })));
    const r2 = await cli(['deploy-config', '--config', file, '--out', out]);
    assert.equal(r2.code, 0, r2.stderr);
    const bare = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.equal(bare.AUTH0_DOMAIN, undefined);
    assert.equal(bare.AUTH0_CLIENT_SECRET, undefined);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('trickle deploy-config: a missing setting is refused with its code, and nothing is written', async () => {
  const dir = tmp();
  try {
    const file = path.join(dir, 'trickle.json');
    const out = path.join(dir, 'config.json');
    const cases = [
      [{ deploy: { ...trickleJson().deploy, mergeUrl: undefined } }, 'deploy.merge_url'],
      [{ deploy: { ...trickleJson().deploy, tokenSecret: undefined } }, 'deploy.token_secret'],
      [{ deploy: { ...trickleJson().deploy, tokenSecret: 'short' } }, 'deploy.token_secret'],
      [{ deploy: { ...trickleJson().deploy, clients: [] } }, 'deploy.clients'],
      [{ deploy: { ...trickleJson().deploy, connection: '##X##' } }, 'deploy.connection'],
      [{ products: [{ name: 'paste', db: 'sqlite:x', format: 'bcrypt' }] }, 'deploy.product_api'],
      [{ products: [{ name: 'paste', db: 'sqlite:x', format: 'bcrypt', api: { url: 'https://p.example' } }] }, 'deploy.product_token']
    ];
    for (const [over, code] of cases) {
      fs.writeFileSync(file, JSON.stringify(trickleJson(over)));
      const r = await cli(['deploy-config', '--config', file, '--out', out]);
      assert.equal(r.code, 2, code);
      assert.match(r.stderr, new RegExp(`\\[${code.replace('.', '\\.')}\\]`));
      assert.equal(fs.existsSync(out), false, `${code}: nothing written`);
    }
    const missing = await cli(['deploy-config', '--config', path.join(dir, 'absent.json'), '--out', out]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /\[deploy\.config\]/);
    const help = await cli(['deploy-config', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: trickle deploy-config/);
    assert.match((await cli(['finish', '--help'])).stdout, /Usage: trickle finish/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('trickle finish refuses while people are missing, and after the bulk phase writes the finished directory', async () => {
  const b = await bulkSim({ people: 80, importRate: 5000 });
  const work = tmp();
  try {
    const finished = path.join(work, 'finished');
    const run = (...args) => cli(['finish', '--config', b.configFile, '--out', finished, ...args]);
    const refused = await run();
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /\[finish\.people_missing\]/);
    assert.match(refused.stderr, /missing \S+@/, 'the people are listed');
    assert.equal(fs.existsSync(finished), false, 'nothing written');

    for (const args of [['prelink'], ['export', '--out', b.out], ['import', '--out', b.out], ['backfill']]) {
      const r = await cli([...args, '--config', b.configFile]);
      assert.equal(r.code, 0, `${args[0]}: ${r.stdout.slice(-2000)}${r.stderr}`);
    }
    // Secrets at rest (issue 19, finding 5): the export's folder and every file in it (legacy
    // hashes, TOTP secrets) and the state database are their owner's only.
    const mode = (f) => fs.statSync(f).mode & 0o777;
    assert.equal(mode(b.out), 0o700, 'the export folder trickle made');
    const written = fs.readdirSync(b.out);
    assert.ok(written.some((n) => /^users-\d+\.json$/.test(n)), written.join(','));
    for (const n of written) assert.equal(mode(path.join(b.out, n)), 0o600, n);
    if (/^sqlite:/.test(b.cfg.state || '')) assert.equal(mode(b.cfg.state.slice('sqlite:'.length)), 0o600, 'the state database');
    const done = await run();
    assert.equal(done.code, 0, done.stdout + done.stderr);
    assert.equal(JSON.parse(done.stdout.trim().split('\n').pop()).missing, 0, done.stdout);

    // The user's trickle.json, with what deploying needs, maps the finished directory.
    const cfg = { ...b.cfg, deploy: { mergeUrl: 'https://merge.example.com/merge', tokenSecret: 'merge-secret-0123456789-0123456789', clients: ['Demo app'] } };
    cfg.products = cfg.products.map((p) => ({ ...p, api: { url: b.sim.byName[p.name].url, token: b.sim.byName[p.name].token } }));
    const a = await load(finished, deployConfig(cfg));
    const db = a.databases[0];
    assert.equal(db.name, 'trickle');
    assert.equal(db.options.import_mode, false);
    assert.equal(db.options.enabledDatabaseCustomization, false);
    // Emptied, not left out: deploy-cli merges a connection's options with the tenant's.
    assert.deepEqual(db.options.customScripts, {}, 'no lazy scripts');
    assert.deepEqual(db.options.configuration, {}, 'no product tokens left on the connection');
    assert.equal(db.options.disable_signup, true, 'public sign-up stays off unless trickle.json opts in');
    assert.deepEqual(db.enabled_clients, ['Demo app']);
    assert.equal(a.actions.length, 1, 'the Action stays, for fan-out retries and pending merges');
    assert.equal(a.actions[0].code, fs.readFileSync(path.join(DIST, 'auth0/actions/trickle-post-login/code.js'), 'utf8'));
    assert.deepEqual(a.triggers['post-login'].map((x) => x.action_name), ['trickle-post-login']);
    assert.ok(!a.rules, 'no Rule');
    const report = JSON.parse(fs.readFileSync(path.join(finished, 'finish-report.json'), 'utf8'));
    assert.equal(report.missing, 0);
    assert.equal(report.forced, false);
    assert.equal(report.signup, false);
    // Opting in is said in so many words: `finish.signup: true`; anything else is refused.
    fs.writeFileSync(b.configFile, JSON.stringify({ ...b.cfg, finish: { signup: 'yes' } }));
    const bad = await run();
    assert.equal(bad.code, 2, 'a configuration mistake');
    assert.match(bad.stderr, /finish\.signup must be true or false/);
    fs.writeFileSync(b.configFile, JSON.stringify({ ...b.cfg, finish: { signup: true } }));
    const open = await run();
    assert.equal(open.code, 0, open.stderr);
    assert.equal((await load(finished, deployConfig(cfg))).databases[0].options.disable_signup, false);
  } finally {
    await b.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
});

test('trickle finish --force writes the directory while people are missing, and says so', async () => {
  const b = await bulkSim({ people: 20, importRate: 5000 });
  const work = tmp();
  try {
    const finished = path.join(work, 'finished');
    const r = await cli(['finish', '--config', b.configFile, '--out', finished, '--force']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /--force: writing the finished directory although 20 people are missing/);
    assert.match(r.stdout, /"event":"finish\.forced"/);
    assert.equal(JSON.parse(fs.readFileSync(path.join(finished, 'finish-report.json'), 'utf8')).forced, true);
  } finally {
    await b.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
});

test('without api.redirect.canRedirect the Action uses the protocol and prompt=none, and logs the fallback', async () => {
  const fx = await h.fixtureProducts();
  try {
    const login = h.compileScript('database-connections/trickle/login.js', h.container({ configuration: fx.config }));
    const { args } = await h.invoke(login, ['multi@example.com', 'multi-paste-pass']);
    assert.equal(args[0], null);
    const p = h.plain(args[1]);
    const ctr = h.container();
    const action = h.loadAction('actions/trickle-post-login/code.js', ctr);
    const run = async ({ protocol, query = {} }) => {
      const out = { redirect: null };
      const event = {
        user: { user_id: 'auth0|' + p.user_id, email: p.email, app_metadata: h.plain(p.app_metadata) },
        secrets: fx.config, connection: { name: 'trickle', strategy: 'auth0' }, transaction: { protocol }, request: { query, body: {}, ip: '127.0.0.1' }
      };
      const api = {
        user: { setAppMetadata: () => {}, setUserMetadata: () => {} },
        redirect: { sendUserTo: (url, o) => { out.redirect = { url, query: (o && o.query) || {} }; } },
        access: { deny: () => {} }
      };
      ctr.logs.length = 0;
      await action.onExecutePostLogin(event, api);
      out.log = ctr.logs.map((l) => { try { return JSON.parse(l); } catch (_) { return {}; } }).find((l) => l.trickle === 'post-login') || {};
      return out;
    };
    const browser = await run({ protocol: 'oidc-basic-profile' });
    assert.ok(browser.redirect, 'a browser login is still sent to the merge service');
    assert.equal(browser.redirect.url, fx.config.TRICKLE_MERGE_URL);
    assert.equal(browser.log.can_redirect, 'fallback', 'the fallback is logged');
    const refresh = await run({ protocol: 'oauth2-refresh-token' });
    assert.equal(refresh.redirect, null, 'a refresh-token grant is never redirected');
    const silent = await run({ protocol: 'oidc-basic-profile', query: { prompt: 'none' } });
    assert.equal(silent.redirect, null, 'prompt=none is never redirected');
    assert.equal(silent.log.can_redirect, 'fallback');
  } finally {
    await fx.close();
  }
});

test('an Action secret left as a keyword counts as unset, and is logged', async () => {
  const fx = await h.fixtureProducts();
  try {
    const ctr = h.container();
    const action = h.loadAction('actions/trickle-post-login/code.js', ctr);
    const secrets = { ...fx.config, TRICKLE_CONNECTION: '##TRICKLE_CONNECTION##', TRICKLE_FANOUT_BUDGET_MS: '@@TRICKLE_FANOUT_BUDGET_MS@@' };
    const run = h.actionRunner(action, secrets);
    const login = h.compileScript('database-connections/trickle/login.js', h.container({ configuration: fx.config }));
    const { args } = await h.invoke(login, ['solo@example.com', 'solo-pass']);
    const p = h.plain(args[1]);
    const user = { user_id: 'auth0|' + p.user_id, email: p.email, app_metadata: p.app_metadata };
    await run('execute', user);
    const logged = ctr.logs.map((l) => { try { return JSON.parse(l); } catch (_) { return {}; } }).find((l) => l.trickle === 'post-login');
    assert.deepEqual([...logged.unresolved].sort(), ['TRICKLE_CONNECTION', 'TRICKLE_FANOUT_BUDGET_MS']);
    assert.ok(Object.keys(fx.byName.paste.state.auth0Ids).length + Object.keys(fx.byName.collect.state.auth0Ids).length + Object.keys(fx.byName.transfer.state.auth0Ids).length > 0,
      'the login on the default connection still told its product the Auth0 id');
  } finally {
    await fx.close();
  }
});
