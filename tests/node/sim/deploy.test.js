// The simulator is deployed to by the real auth0-deploy-cli: `a0deploy import` runs as its own
// CLI in a child process against the simulator's https listener, and the logins that follow run
// what it deployed (the connection's scripts, the bound Action's code and secrets), not dist files.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { execFile } = require('child_process');
const { startSim } = require('../../../sim');
const { stage } = require('../../../sim/deploy');
const { boundActions } = require('../../../sim/tenant/management');
const { m2mToken, signIn } = require('../support/sim-http');

const ROOT = path.join(__dirname, '..', '..', '..');
const A0DEPLOY = path.join(ROOT, 'node_modules', '.bin', 'a0deploy');

/** Runs `a0deploy import` as a user would: a config.json with the tenant's domain, credentials and mappings. */
function a0deploy(sim, input, mappings) {
  const config = path.join(path.dirname(input), 'config.json');
  // The config `trickle deploy-config` writes for this tenant (cli/deploy.js), with its mappings.
  fs.writeFileSync(config, JSON.stringify({ ...sim.deployConfig, AUTH0_KEYWORD_REPLACE_MAPPINGS: mappings }));
  return new Promise((resolve, reject) => {
    execFile(A0DEPLOY, ['import', '--input_file', input, '--config_file', config], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: sim.tenant.caFile, NO_COLOR: '1' }, timeout: 120000, maxBuffer: 1 << 24
    }, (e, stdout, stderr) => (e ? reject(new Error(`a0deploy failed: ${stdout}${stderr}`)) : resolve(`${stdout}${stderr}`)));
  });
}

test('a0deploy import deploys dist/auth0 into the simulator, and a redeployed Action takes effect at the next login', { timeout: 240000 }, async () => {
  const sim = await startSim({ people: 20, deploy: 'none' });
  // A copy of dist/auth0 as the build writes it (stage() only fills gaps of older layouts).
  const staged = stage(path.join(ROOT, 'dist', 'auth0'), { enabledClients: ['trickle-demo'] });
  try {
    const base = sim.tenant.url;
    const token = await m2mToken(base);
    const api = async (p, init = {}) => {
      const r = await fetch(`${base}/api/v2${p}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers || {}) } });
      return { status: r.status, headers: r.headers, body: r.status === 204 ? null : await r.json() };
    };
    const singles = sim.people.filter((p) => p.accounts.length === 1);
    assert.ok(singles.length >= 2, 'the seed has two single-product people');

    // Nothing deployed yet: the connection has no login script, so an unknown person cannot sign in.
    assert.equal((await signIn(base, singles[0].email, singles[0].accounts[0].password)).status, 401);
    assert.deepEqual((await api('/actions/actions')).body.actions, []);

    const out = await a0deploy(sim, staged.input, sim.mappings);
    assert.match(out, /Import Successful/);

    // The Action exists, is deployed and bound to post-login, with the mapped secrets.
    const actions = await api('/actions/actions?page=0&per_page=50');
    assert.ok(actions.headers.get('x-ratelimit-limit'), 'rate-limit headers on the Management API');
    const action = actions.body.actions.find((a) => a.name === 'trickle-post-login');
    assert.ok(action && action.deployed_version && action.all_changes_deployed, 'the Action is deployed');
    assert.equal(action.code, fs.readFileSync(path.join(ROOT, 'dist/auth0/actions/trickle-post-login/code.js'), 'utf8'));
    assert.deepEqual(action.supported_triggers, [{ id: 'post-login', version: 'v3' }]);
    assert.ok(action.secrets.every((s) => s.value === undefined), 'secret values are never returned');
    const bindings = (await api('/actions/triggers/post-login/bindings')).body.bindings;
    assert.deepEqual(bindings.map((b) => b.action.name), ['trickle-post-login']);
    const [running] = boundActions(sim.tenant.store);
    const mapped = Object.fromEntries(sim.mappings.TRICKLE_ACTION_SECRETS.map((x) => [x.name, x.value]));
    for (const k of ['TRICKLE_PRODUCTS', 'TRICKLE_MERGE_URL', 'TRICKLE_TOKEN_SECRET', 'TRICKLE_FANOUT_BUDGET_MS', 'TRICKLE_CONNECTION']) {
      assert.equal(running.secrets[k], mapped[k], `secret ${k} is the mapped value`);
    }
    JSON.parse(running.secrets.TRICKLE_PRODUCTS); // a JSON array, intact

    // The connection has both scripts, import mode and the demo app enabled.
    const [con] = (await api('/connections?name=trickle')).body;
    assert.equal(con.options.import_mode, true);
    assert.equal(con.options.enabledDatabaseCustomization, true);
    for (const [k, f] of [['login', 'login.js'], ['get_user', 'get_user.js']]) {
      assert.equal(con.options.customScripts[k], fs.readFileSync(path.join(ROOT, 'dist/auth0/database-connections/trickle', f), 'utf8'));
    }
    assert.equal(con.options.configuration.TRICKLE_PRODUCTS, sim.mappings.TRICKLE_PRODUCTS);
    assert.deepEqual((await api(`/connections/${con.id}/clients?take=50`)).body.clients, [{ client_id: 'trickle-demo' }]);

    // The deployed scripts and Action run: a lazy migration completes.
    const first = await signIn(base, singles[0].email, singles[0].accounts[0].password);
    assert.equal(first.status, 302);
    assert.match(first.headers.get('location'), /[?&]code=/);

    // Redeploy a variant of the Action whose code records a marker from a new secret.
    const codeFile = path.join(staged.input, 'actions/trickle-post-login/code.js');
    fs.appendFileSync(codeFile, `
;(() => {
  const inner = exports.onExecutePostLogin;
  exports.onExecutePostLogin = async (event, api) => { api.user.setAppMetadata('deployed_marker', event.secrets.TRICKLE_MARKER); return inner(event, api); };
})();
`);
    const secrets = [...sim.mappings.TRICKLE_ACTION_SECRETS, { name: 'TRICKLE_MARKER', value: 'second-deploy' }];
    assert.match(await a0deploy(sim, staged.input, { ...sim.mappings, TRICKLE_ACTION_SECRETS: secrets }), /Import Successful/);
    const redeployed = (await api(`/actions/actions/${action.id}`)).body;
    assert.equal(redeployed.deployed_version.number, 2);
    assert.ok(redeployed.secrets.some((s) => s.name === 'TRICKLE_MARKER'));

    const second = await signIn(base, singles[1].email, singles[1].accounts[0].password);
    assert.equal(second.status, 302);
    const [user] = (await api(`/users-by-email?email=${encodeURIComponent(singles[1].email)}`)).body;
    assert.equal(user.app_metadata.deployed_marker, 'second-deploy', 'the login ran the newly deployed Action with its new secret');
    const [earlier] = (await api(`/users-by-email?email=${encodeURIComponent(singles[0].email)}`)).body;
    assert.equal(earlier.app_metadata.deployed_marker, undefined, 'the first login ran the first version');
    assert.ok(earlier.app_metadata.trickle, 'the first version still did its work');
  } finally {
    fs.rmSync(staged.dir, { recursive: true, force: true });
    await sim.close();
  }
});

test('the configuration endpoints answer with the Management API\'s status codes', async () => {
  const sim = await startSim({ people: 5, deploy: 'none' });
  try {
    const base = sim.tenant.url;
    const token = await m2mToken(base);
    const call = async (method, p, body) => {
      const r = await fetch(`${base}/api/v2${p}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: r.status, body: r.status === 204 ? null : await r.json() };
    };
    assert.equal((await call('GET', '/actions/actions/nope')).status, 404);
    assert.equal((await call('POST', '/actions/actions', { name: 'x' })).status, 400, 'supported_triggers is required');
    const made = await call('POST', '/actions/actions', { name: 'x', supported_triggers: [{ id: 'post-login', version: 'v3' }], code: 'exports.onExecutePostLogin = async () => {};' });
    assert.equal(made.status, 201);
    assert.equal((await call('POST', '/actions/actions', { name: 'x', supported_triggers: [{ id: 'post-login', version: 'v3' }] })).status, 409);
    assert.equal((await call('PATCH', '/actions/triggers/post-login/bindings', { bindings: [{ ref: { type: 'action_name', value: 'x' } }] })).status, 400, 'an undeployed Action cannot be bound');
    assert.equal((await call('POST', `/actions/actions/${made.body.id}/deploy`)).status, 200);
    assert.equal((await call('PATCH', '/actions/triggers/post-login/bindings', { bindings: [{ ref: { type: 'action_name', value: 'x' }, display_name: 'x' }] })).status, 200);
    assert.equal((await call('DELETE', `/actions/actions/${made.body.id}`)).status, 400, 'a bound Action needs force');
    assert.equal((await call('DELETE', `/actions/actions/${made.body.id}?force=true`)).status, 204);
    assert.deepEqual((await call('GET', '/actions/triggers/post-login/bindings')).body.bindings, []);

    assert.equal((await call('POST', '/connections', { name: 'trickle', strategy: 'auth0' })).status, 409);
    assert.equal((await call('PATCH', '/connections/con_trickle', { name: 'renamed' })).status, 400);
    assert.equal((await call('PATCH', '/connections/con_trickle', { options: { customScripts: { login: 'x'.repeat(100001) } } })).status, 400, 'scripts are limited to 100 000 bytes');
    const page = await call('GET', '/connections?strategy=auth0&take=1');
    assert.equal(page.body.connections.length, 1);
    assert.equal(page.body.next, undefined);

    const rule = await call('POST', '/rules', { name: 'one', script: 'function (u, c, cb) { cb(null, u, c); }', order: 1 });
    assert.equal(rule.status, 201);
    assert.equal((await call('POST', '/rules', { name: 'two', script: 'function (u, c, cb) { cb(null, u, c); }', order: 1 })).status, 409);
    assert.equal((await call('PATCH', `/rules/${rule.body.id}`, { enabled: false })).body.enabled, false);
    const rules = await call('GET', '/rules?page=0&per_page=10&include_totals=true');
    assert.deepEqual([rules.body.total, rules.body.start, rules.body.limit], [1, 0, 10]);
    assert.equal((await call('DELETE', `/rules/${rule.body.id}`)).status, 204);

    const clients = await call('GET', '/clients?page=0&per_page=50&include_totals=true');
    assert.ok(clients.body.clients.some((c) => c.client_id === 'trickle-demo'));
    const made2 = await call('POST', '/clients', { name: 'Another app', callbacks: ['https://app.example/cb'] });
    assert.equal(made2.status, 201);
    assert.equal((await call('PATCH', `/clients/${made2.body.client_id}`, { name: 'Renamed app' })).body.name, 'Renamed app');
    assert.equal((await call('PATCH', '/connections/con_trickle/clients', [{ client_id: made2.body.client_id, status: true }])).status, 204);
    assert.deepEqual((await call('GET', '/connections/con_trickle/clients')).body.clients, [{ client_id: made2.body.client_id }]);
  } finally {
    await sim.close();
  }
});
