// The built post-login Action and legacy Rule, driven through whole logins: the custom-DB login
// script creates the user, then the chain runs against real HTTP product servers. The merge
// service's answer is an HS256 token made here with node:crypto, independently of the wasm.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../support/harness');

let fx;
test.before(async () => { fx = await h.fixtureProducts(); });
test.after(async () => { await fx.close(); });

const SECRET = () => fx.config.TRICKLE_TOKEN_SECRET;
const now = () => Math.floor(Date.now() / 1000);

function up() {
  for (const p of fx.products) { p.state.mode = 'up'; p.state.auth0Ids = {}; }
}

/** A tenant: the user store, the DB login script and the Action, as the platform chains them. */
function tenant({ secrets = fx.config } = {}) {
  const dbCtr = h.container({ configuration: fx.config });
  const login = h.compileScript('database-connections/trickle/login.js', dbCtr);
  const actionCtr = h.container();
  const action = h.loadAction('actions/trickle-post-login/code.js', actionCtr);
  const run = h.actionRunner(action, secrets);
  const store = {};
  return {
    store, run, logs: actionCtr.logs,
    async signIn(email, password, opts = {}) {
      let user = store[email];
      if (!user) {
        const { args, calls } = await h.invoke(login, [email, password]);
        assert.equal(calls, 1);
        if (args[0]) return { error: args[0] };
        const p = h.plain(args[1]);
        user = store[email] = { user_id: 'auth0|' + p.user_id, email: p.email, app_metadata: p.app_metadata };
      }
      const res = await run('execute', user, opts);
      assert.equal(res.threw, null, 'the Action never throws');
      return { user, res };
    },
    async resume(user, token, state = 'st-1') {
      const res = await run('continue', user, { query: { state }, body: token === undefined ? {} : { session_token: token } });
      assert.equal(res.threw, null, 'the Action never throws');
      return res;
    }
  };
}

function answer(user, jti, { outcome = 'merged', state = 'st-1', sub = user.user_id, iat = now(), ttl = 300, secret = SECRET(), extra = {} } = {}) {
  return h.hs256({ iss: 'trickle-merge', aud: 'trickle', sub, state, jti, outcome, iat, exp: iat + ttl, ...extra }, secret);
}

test('single-product login: migrated at once, the product is told the Auth0 id', async () => {
  up();
  const t = tenant();
  const { user, res } = await t.signIn('solo@example.com', 'solo-pass');
  assert.equal(res.redirect, null);
  assert.equal(res.denied, null);
  assert.equal(user.app_metadata.migrated, true);
  assert.equal(fx.byName.paste.state.auth0Ids.p1, user.user_id);
  assert.equal(user.app_metadata.trickle.accounts[0].fanout, true);
  // The next login has nothing to do and writes nothing.
  const again = await t.signIn('solo@example.com', 'solo-pass');
  assert.deepEqual(again.res.writes, {});
});

test('multi-product login redirects to the merge service with a bound, short-lived session token', async () => {
  up();
  const t = tenant();
  const { user, res } = await t.signIn('multi@example.com', 'multi-paste-pass');
  assert.ok(res.redirect, 'redirected');
  assert.equal(res.redirect.url, fx.config.TRICKLE_MERGE_URL);
  const claims = h.decodeJwt(res.redirect.query.session_token);
  assert.equal(claims.iss, 'trickle');
  assert.equal(claims.aud, 'trickle-merge');
  assert.equal(claims.sub, user.user_id);
  assert.ok(claims.exp - claims.iat <= 900);
  // collect never verified the address: the mailbox cannot prove c7, so only transfer is asked.
  assert.deepEqual(claims.unproven, ['transfer']);
  assert.equal(user.app_metadata.trickle.merge.jti, claims.jti);
  assert.ok(!user.app_metadata.migrated);
  assert.deepEqual(fx.byName.collect.state.auth0Ids, {}, 'no fan-out before ownership is proven');
});

test('text beyond ASCII reaches the core and the products intact; a lone surrogate is refused as input, never locking out', async () => {
  up();
  const ctr = h.container();
  const run = h.actionRunner(h.loadAction('actions/trickle-post-login/code.js', ctr), fx.config);
  const record = (email) => ({
    user_id: 'auth0|tp_zoe', email,
    app_metadata: { trickle: { v: 1, person_id: 'tp_zoe', accounts: [{ product: 'paste', id: 'p-ü/1', proof: 'password', verified: true }, { product: 'transfer', id: 't-😀', verified: true }] } }
  });
  // The merge redirect signs the address the core was handed, character for character.
  let res = await run('execute', record('zoë.ürlich@exämple.com'));
  assert.ok(res.redirect, 'redirected');
  assert.equal(h.decodeJwt(res.redirect.query.session_token).email, 'zoë.ürlich@exämple.com');
  assert.deepEqual(res.writes.trickle.accounts.map((a) => a.id), ['p-ü/1', 't-😀']);
  // JSON.stringify escapes a lone surrogate, which the core's strict reader refuses: the login
  // goes through untouched, and the log says why.
  res = await run('execute', record('zoë\uD800@exämple.com'));
  assert.equal(res.redirect, null);
  assert.equal(res.denied, null);
  assert.deepEqual(res.writes, {});
  assert.match(ctr.logs[ctr.logs.length - 1], /"code":"input\.json"/);
  // A proven account whose id needs escaping in a URL is told under that id.
  const paste = fx.byName.paste.state;
  paste.accounts.push({ id: 'p-ü/1', email: 'zoe@example.com', email_verified: true });
  try {
    const user = record('zoe@example.com');
    user.app_metadata.trickle.accounts.pop();
    user.app_metadata.migrated = true;
    res = await run('execute', user);
    assert.equal(res.redirect, null);
    assert.equal(paste.auth0Ids['p-ü/1'], 'auth0|tp_zoe');
    assert.equal(res.writes.trickle.accounts[0].fanout, true);
  } finally {
    paste.accounts.pop();
  }
});

test('resume with a valid token: the verified accounts proven and told, the unverified one never', async () => {
  up();
  const t = tenant();
  const { user, res } = await t.signIn('multi@example.com', 'multi-paste-pass');
  const jti = h.decodeJwt(res.redirect.query.session_token).jti;
  const back = await t.resume(user, answer(user, jti));
  assert.equal(back.denied, null);
  assert.equal(user.app_metadata.migrated, true);
  for (const [name, id] of [['paste', 'p2'], ['transfer', 't9']]) {
    assert.equal(fx.byName[name].state.auth0Ids[id], user.user_id, name);
  }
  // c7's product never verified the address: the mailbox proof does not cover it (finding 6).
  const c7 = user.app_metadata.trickle.accounts.find((a) => a.id === 'c7');
  assert.equal(c7.proof, undefined);
  assert.equal(fx.byName.collect.state.auth0Ids.c7, undefined);
  // Replaying the same token is refused: its jti is spent.
  const replay = await t.resume(user, answer(user, jti));
  assert.match(replay.denied || '', /already used/);
});

test('resume refuses forged, expired, reflected, other-person, other-login and missing tokens', async () => {
  up();
  const cases = [
    ['forged', (u, j) => answer(u, j, { secret: 'an-attacker-secret-0123456789-0123456789' }), /signature/],
    ['expired', (u, j) => answer(u, j, { iat: now() - 2000 }), /expired/],
    ['other subject', (u, j) => answer(u, j, { sub: 'auth0|someone-else' }), /another user/],
    ['other state', (u, j) => answer(u, j, { state: 'st-other' }), /another login/],
    ['alg none', (u, j) => h.hs256({ iss: 'trickle-merge', aud: 'trickle', sub: u.user_id, state: 'st-1', jti: j, outcome: 'merged', exp: now() + 60 }, 'x', { alg: 'none' }).replace(/[^.]+$/, ''), /HS256|well-formed/],
    ['reflected session token', (u, j, outgoing) => outgoing, /someone else|issued by/],
    ['missing', () => undefined, /well-formed/]
  ];
  for (const [name, make, want] of cases) {
    const t = tenant();
    const { user, res } = await t.signIn('multi@example.com', 'multi-paste-pass');
    const outgoing = res.redirect.query.session_token;
    const back = await t.resume(user, make(user, h.decodeJwt(outgoing).jti, outgoing));
    assert.ok(back.denied, `${name}: denied`);
    assert.match(back.denied, want, name);
    assert.ok(!user.app_metadata.migrated, `${name}: not migrated`);
    assert.deepEqual(fx.byName.collect.state.auth0Ids, {}, `${name}: nothing fanned out`);
  }
});

test('abandoning the merge and logging in again: asked again with a fresh token, the old one is void', async () => {
  up();
  const t = tenant();
  const first = await t.signIn('multi@example.com', 'multi-paste-pass');
  const oldJti = h.decodeJwt(first.res.redirect.query.session_token).jti;
  // The person closes the tab and signs in again later.
  const second = await t.signIn('multi@example.com', 'multi-paste-pass');
  assert.ok(second.res.redirect, 'asked again, never locked out');
  const newJti = h.decodeJwt(second.res.redirect.query.session_token).jti;
  assert.notEqual(newJti, oldJti);
  assert.equal(second.user.app_metadata.trickle.merge.attempts, 2);
  const stale = await t.resume(second.user, answer(second.user, oldJti));
  assert.ok(stale.denied);
  const third = await t.signIn('multi@example.com', 'multi-paste-pass');
  const jti = h.decodeJwt(third.res.redirect.query.session_token).jti;
  const ok = await t.resume(third.user, answer(third.user, jti));
  assert.equal(ok.denied, null);
  assert.equal(third.user.app_metadata.migrated, true);
});

test('skipping lets the person in and asks again at the next login', async () => {
  up();
  const t = tenant();
  const { user, res } = await t.signIn('multi@example.com', 'multi-paste-pass');
  const back = await t.resume(user, answer(user, h.decodeJwt(res.redirect.query.session_token).jti, { outcome: 'skipped' }));
  assert.equal(back.denied, null);
  assert.ok(!user.app_metadata.migrated);
  const next = await t.signIn('multi@example.com', 'multi-paste-pass');
  assert.ok(next.res.redirect);
});

test('a grant that cannot redirect (resource owner) logs in with the proven accounts only', async () => {
  up();
  const t = tenant();
  const { user, res } = await t.signIn('multi@example.com', 'multi-paste-pass', { canRedirect: false, protocol: 'oauth2-resource-owner' });
  assert.equal(res.redirect, null);
  assert.equal(res.denied, null);
  assert.ok(!user.app_metadata.migrated);
  assert.ok(t.logs.some((l) => l.includes('merge_deferred')));
});

test('bulk-imported users skip merge detection and only get the fan-out', async () => {
  up();
  const t = tenant();
  const user = {
    user_id: 'auth0|bulk-1', email: 'multi@example.com',
    app_metadata: { bulkImported: true, trickle: { v: 1, person_id: 'bulk-1', accounts: [{ product: 'paste', id: 'p2', proof: 'import' }, { product: 'collect', id: 'c7', proof: 'import' }] } }
  };
  const res = await t.run('execute', user);
  assert.equal(res.redirect, null);
  assert.equal(fx.byName.paste.state.auth0Ids.p2, 'auth0|bulk-1');
  assert.equal(fx.byName.collect.state.auth0Ids.c7, 'auth0|bulk-1');
});

test('fan-out with a product down: the login succeeds, the next login completes it', async () => {
  up();
  const t = tenant();
  const { user, res } = await t.signIn('multi@example.com', 'multi-paste-pass');
  fx.byName.collect.state.mode = 'down';
  fx.byName.transfer.state.mode = 'hang';
  const back = await t.resume(user, answer(user, h.decodeJwt(res.redirect.query.session_token).jti));
  assert.equal(back.denied, null);
  assert.equal(user.app_metadata.migrated, true);
  const acked = () => user.app_metadata.trickle.accounts.filter((a) => a.fanout).map((a) => a.product).sort();
  assert.deepEqual(acked(), ['paste']);
  up();
  const next = await t.signIn('multi@example.com', 'multi-paste-pass');
  assert.equal(next.res.redirect, null);
  assert.deepEqual(acked(), ['paste', 'transfer']);
  assert.equal(fx.byName.transfer.state.auth0Ids.t9, user.user_id);
  assert.equal(fx.byName.collect.state.auth0Ids.c7, undefined, 'never proven, never told');
  assert.deepEqual(fx.byName.paste.state.auth0Ids, {}, 'an acknowledged product is not asked again');
});

test('a product down at login is looked up again after the login and its account joins unproven', async () => {
  up();
  const t = tenant();
  fx.byName.transfer.state.mode = 'down';
  // First login: transfer is down during both the look-up and the post-login re-check.
  const first = await t.signIn('multi@example.com', 'multi-paste-pass');
  assert.deepEqual(first.user.app_metadata.trickle.pending, ['transfer']);
  // The only other account found (c7) is one the mailbox cannot prove: the merge offers it by
  // its own password only; the person skips.
  const claims = h.decodeJwt(first.res.redirect.query.session_token);
  assert.deepEqual([claims.unproven, claims.passwords], [[], ['collect:c7']]);
  const back = await t.resume(first.user, answer(first.user, claims.jti, { outcome: 'skipped' }));
  assert.equal(first.user.app_metadata.migrated, undefined, 'not migrated while an account waits');
  assert.deepEqual(first.user.app_metadata.trickle.pending, ['transfer']);
  fx.byName.transfer.state.mode = 'up';
  // Next login: c7 is offered again; back from the merge, the re-check finds t9, which must be
  // proven before it joins.
  const next = await t.signIn('multi@example.com', 'multi-paste-pass');
  assert.equal(back.denied, null);
  const again1 = h.decodeJwt(next.res.redirect.query.session_token);
  await t.resume(next.user, answer(next.user, again1.jti, { outcome: 'skipped' }));
  assert.ok(!next.user.app_metadata.trickle.pending);
  assert.deepEqual(next.user.app_metadata.trickle.accounts.find((a) => a.id === 't9'), { product: 'transfer', id: 't9', verified: true });
  assert.ok(!next.user.app_metadata.migrated);
  assert.equal(fx.byName.transfer.state.auth0Ids.t9, undefined);
  const again = await t.signIn('multi@example.com', 'multi-paste-pass');
  assert.ok(again.res.redirect, 'asked to prove the new account');
});

test('malformed events, api objects and secrets: the Action never throws and never locks out', async () => {
  up();
  const ctr = h.container();
  const action = h.loadAction('actions/trickle-post-login/code.js', ctr);
  const okApi = { user: { setAppMetadata() {} }, redirect: { canRedirect: () => true, sendUserTo() {} }, access: { deny() { throw new Error('must not deny'); } } };
  const user = { user_id: 'auth0|x', email: 'solo@example.com', app_metadata: {} };
  const inputs = [
    [undefined, undefined], [null, null], [{}, {}], [{ user }, okApi], [{ user, secrets: {} }, okApi],
    [{ user, secrets: { ...fx.config, TRICKLE_PRODUCTS: '{' } }, okApi],
    [{ user, secrets: { ...fx.config, TRICKLE_TOKEN_SECRET: 'short' } }, okApi],
    [{ user: { user_id: 42, app_metadata: 'nope' }, secrets: fx.config }, okApi],
    [{ user: { ...user, app_metadata: { trickle: { accounts: 'garbage' } } }, secrets: fx.config }, okApi],
    [{ user, secrets: fx.config, request: { body: { session_token: { $ne: 1 } } } }, okApi]
  ];
  for (const [event, api] of inputs) {
    await action.onExecutePostLogin(event, api);
    await action.onContinuePostLogin(event, api);
  }
  assert.ok(ctr.logs.some((l) => l.includes('config.products')), ctr.logs.join('\n'));
  assert.ok(ctr.logs.some((l) => l.includes('config.token_secret')));
  assert.ok(!ctr.logs.join('\n').includes(fx.config.TRICKLE_TOKEN_SECRET), 'no secret in the log');
});

test('the legacy Rule behaves the same and calls back exactly once', async () => {
  up();
  const updates = [];
  const auth0 = { users: { updateAppMetadata: async (id, meta) => { updates.push([id, JSON.parse(JSON.stringify(meta))]); } } };
  const ctr = h.container({ configuration: fx.config, auth0 });
  const rule = h.compileScript('rules/trickle-post-login.js', ctr);
  const dbCtr = h.container({ configuration: fx.config });
  const login = h.compileScript('database-connections/trickle/login.js', dbCtr);

  const profile = h.plain((await h.invoke(login, ['multi@example.com', 'multi-paste-pass'])).args[1]);
  const user = { user_id: 'auth0|' + profile.user_id, email: profile.email, app_metadata: profile.app_metadata };
  const context = { protocol: 'oidc-basic-profile', connection: 'trickle', request: { query: {}, body: {} } };
  const first = await h.invoke(rule, [user, context]);
  assert.equal(first.calls, 1);
  assert.equal(first.args[0], null);
  const redirect = new URL(first.args[2].redirect.url);
  assert.equal(redirect.origin + redirect.pathname, fx.config.TRICKLE_MERGE_URL);
  const outgoing = redirect.searchParams.get('session_token');
  const jti = h.decodeJwt(outgoing).jti;
  assert.equal(updates.at(-1)[1].trickle.merge.jti, jti, 'jti stored before the redirect');

  // All rules run again on /continue with protocol redirect-callback.
  const stored = { ...user, app_metadata: updates.at(-1)[1] };
  const forged = { protocol: 'redirect-callback', connection: 'trickle', request: { query: { state: 'st-9' }, body: { session_token: answer(stored, jti, { state: 'st-9', secret: 'an-attacker-secret-0123456789-0123456789' }) } } };
  const denied = await h.invoke(rule, [JSON.parse(JSON.stringify(stored)), forged]);
  assert.equal(denied.calls, 1);
  assert.equal(denied.args[0] && denied.args[0].name, 'UnauthorizedError');

  const stored2 = { ...user, app_metadata: JSON.parse(JSON.stringify(updates.at(-2)[1])) };
  const ok = { protocol: 'redirect-callback', connection: 'trickle', request: { query: { state: 'st-9' }, body: { session_token: answer(stored2, jti, { state: 'st-9' }) } } };
  const merged = await h.invoke(rule, [stored2, ok]);
  assert.equal(merged.calls, 1);
  assert.equal(merged.args[0], null, String(merged.args[0]));
  assert.equal(merged.args[1].app_metadata.migrated, true);
  assert.equal(updates.at(-1)[1].migrated, true);
  assert.equal(fx.byName.transfer.state.auth0Ids.t9, stored2.user_id);

  // A Rule with no auth0 global still calls back once and lets the login through.
  const bare = h.container({ configuration: fx.config });
  const rule2 = h.compileScript('rules/trickle-post-login.js', bare);
  const r = await h.invoke(rule2, [{ user_id: 'auth0|zz', email: 'solo@example.com', app_metadata: {} }, {}]);
  assert.equal(r.calls, 1);
  assert.equal(r.args[0], null);
});

test('a user of another connection who claims a victim\'s address is never repaired into the victim\'s account, with TRICKLE_CONNECTION unset (finding 4)', async () => {
  up();
  const { TRICKLE_CONNECTION, ...secrets } = fx.config;
  assert.ok(!('TRICKLE_CONNECTION' in secrets));
  const t = tenant({ secrets });
  const calls = () => fx.products.reduce((n, p) => n + p.state.calls.length, 0);
  const before = calls();
  // solo@example.com's only legacy account is paste/p1; the claimant signed in elsewhere.
  const claimant = { user_id: 'oauth2|elsewhere|123', email: 'solo@example.com', app_metadata: {} };
  const res = await t.run('execute', claimant, { connection: 'some-social-connection' });
  assert.equal(res.threw, null);
  assert.deepEqual(res.writes, {}, 'nothing written');
  assert.equal(calls(), before, 'no product was asked or told anything');
  assert.equal(fx.byName.paste.state.auth0Ids.p1, undefined);
  // The deployed connection's own users still work without the secret (it defaults to trickle).
  const own = await t.signIn('solo@example.com', 'solo-pass');
  assert.equal(own.user.app_metadata.migrated, true);
  assert.equal(fx.byName.paste.state.auth0Ids.p1, own.user.user_id);
});

test('TRICKLE_EVENTS_URL: the log line goes to the monitor with its token; a monitor that hangs or a bad URL never delays or fails a login', async () => {
  const http = require('node:http');
  const got = [];
  let hang = false;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      got.push({ auth: req.headers.authorization, body });
      if (!hang) res.end('{"accepted":1}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/events`;
  try {
    up();
    const t = tenant({ secrets: { ...fx.config, TRICKLE_EVENTS_URL: url, TRICKLE_EVENTS_TOKEN: 'mon-token' } });
    const { user, res } = await t.signIn('solo@example.com', 'solo-pass');
    assert.equal(res.denied, null);
    assert.equal(fx.byName.paste.state.auth0Ids.p1, user.user_id, 'the login did its work');
    for (let i = 0; i < 50 && !got.length; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(got.length, 1, 'one line sent');
    assert.equal(got[0].auth, 'Bearer mon-token');
    const line = JSON.parse(got[0].body);
    assert.equal(line.trickle, 'post-login');
    assert.equal(line.outcome, 'continue');
    assert.ok(line.events.some((e) => e.event === 'fanout_acknowledged' && e.product === 'paste'));
    // A monitor that never answers: the login takes no longer than without one.
    hang = true;
    up();
    const slow = tenant({ secrets: { ...fx.config, TRICKLE_EVENTS_URL: url, TRICKLE_FANOUT_BUDGET_MS: '5000' } });
    const started = Date.now();
    const r2 = await slow.signIn('solo@example.com', 'solo-pass');
    assert.equal(r2.res.denied, null);
    assert.ok(Date.now() - started < 2000, `not waited for: ${Date.now() - started} ms`);
    // Unusable URLs: nothing is sent, nothing throws.
    for (const bad of ['not a url', '@@TRICKLE_EVENTS_URL@@', 'http://127.0.0.1:1/events', 42]) {
      up();
      const b = tenant({ secrets: { ...fx.config, TRICKLE_EVENTS_URL: bad, TRICKLE_EVENTS_TOKEN: 'has space' } });
      const r3 = await b.signIn('solo@example.com', 'solo-pass');
      assert.equal(r3.res.denied, null, `TRICKLE_EVENTS_URL ${JSON.stringify(bad)}`);
    }
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
