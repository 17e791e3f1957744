// The built custom-DB scripts (dist/auth0/database-connections/trickle/*.js), compiled the way
// Auth0 compiles them, against real HTTP product servers and the shared fixtures.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../support/harness');

const cases = h.fixture('login-cases.json');
let fx;
test.before(async () => { fx = await h.fixtureProducts(); });
test.after(async () => { await fx.close(); });

function setDown(names = [], mode = 'down') {
  for (const p of fx.products) p.state.mode = names.includes(p.name) ? mode : 'up';
}

function pairs(profile, proven) {
  return profile.app_metadata.trickle.accounts.filter((a) => (a.proof !== undefined) === proven).map((a) => `${a.product}:${a.id}`);
}

function checkProfile(name, expect, raw) {
  const profile = h.plain(raw);
  for (const key of ['user_id', 'email_verified', 'name']) {
    if (key in expect) assert.equal(profile[key], expect[key], `${name}: ${key}`);
  }
  if (expect.proven) {
    assert.deepEqual(pairs(profile, true), expect.proven, `${name}: proven`);
    assert.deepEqual(pairs(profile, false), expect.unproven, `${name}: unproven`);
  }
  if (expect.pending) assert.deepEqual(profile.app_metadata.trickle.pending || [], expect.pending, `${name}: pending`);
  if (expect.mfa) assert.deepEqual((profile.mfa_factors || []).map((f) => f.totp.secret), expect.mfa, `${name}: mfa`);
  assert.ok(JSON.stringify(profile).length < 10000, 'profile stays under 10 kB');
}

for (const c of cases.login) {
  test(`login: ${c.name}`, async () => {
    setDown(c.down);
    const ctr = h.container({ configuration: fx.config });
    const login = h.compileScript('database-connections/trickle/login.js', ctr);
    const { args, calls } = await h.invoke(login, [c.email, c.password]);
    assert.equal(calls, 1, 'callback exactly once');
    const [err, profile] = args;
    const outcome = c.expect.outcome;
    if (outcome === 'profile') {
      assert.equal(err, null, `${c.name}: ${err && err.message}`);
      checkProfile(c.name, c.expect, profile);
    } else if (outcome === 'wrong_credentials' || outcome === 'invalid') {
      assert.ok(err instanceof h.WrongUsernameOrPasswordError, `${c.name}: ${err}`);
      assert.equal(profile, undefined);
    } else if (outcome === 'retry') {
      assert.ok(h.isRetryError(err), `${c.name}: ${err}`);
    }
    if (c.expect.event) assert.ok(ctr.logs.some((l) => l.includes(`"event":"${c.expect.event}"`)), ctr.logs.join('\n'));
    // Neither the password nor any hash ever reaches the log.
    const log = ctr.logs.join('\n');
    assert.ok(!log.includes(c.password) || c.password.length < 4, 'password in the log');
    assert.ok(!log.includes('$2b$'), 'hash in the log');
  });
}

for (const c of cases.get_user) {
  test(`getUser: ${c.name}`, async () => {
    setDown(c.down);
    const ctr = h.container({ configuration: fx.config });
    const getUser = h.compileScript('database-connections/trickle/get_user.js', ctr);
    const { args, calls } = await h.invoke(getUser, [c.email]);
    assert.equal(calls, 1);
    const [err, profile] = args;
    if (c.expect.outcome === 'profile') {
      assert.equal(err, null);
      checkProfile(c.name, c.expect, profile);
    } else if (c.expect.outcome === 'not_found') {
      assert.equal(err, null);
      assert.equal(profile, undefined);
    } else {
      assert.ok(h.isRetryError(err), String(err));
    }
  });
}

test('login and getUser give the same person id whichever password matched; a squatter\'s unverified account creates no user', async () => {
  setDown([]);
  const ctr = h.container({ configuration: fx.config });
  const login = h.compileScript('database-connections/trickle/login.js', ctr);
  const getUser = h.compileScript('database-connections/trickle/get_user.js', ctr);
  const ids = new Set();
  for (const pw of ['multi-paste-pass', 'multi-transfer-pass']) {
    const { args } = await h.invoke(login, ['multi@example.com', pw]);
    ids.add(args[1].user_id);
  }
  ids.add((await h.invoke(getUser, ['MULTI@example.com'])).args[1].user_id);
  assert.equal(ids.size, 1, [...ids].join(' '));
  // collect never verified the address: its password alone, while paste and transfer hold the
  // address, must not create the tenant user (Auth0 would never ask the script again).
  const { args, calls } = await h.invoke(login, ['multi@example.com', 'multi-collect-pass']);
  assert.equal(calls, 1);
  assert.equal(args[0] && args[0].name, 'UnauthorizedError', String(args[0]));
  assert.match(args[0].message, /reset your password/);
  assert.equal(args[1], undefined);
});

test('the products are asked for the canonical address, and look-alikes the tenant would fold are refused', async () => {
  setDown([]);
  const ctr = h.container({ configuration: fx.config });
  const login = h.compileScript('database-connections/trickle/login.js', ctr);
  // A trailing dot, JavaScript-only white space (U+FEFF) and Unicode-only white space (U+0085)
  // find the same person as the plain address.
  for (const typed of ['multi@example.com.', '\uFEFFMulti@Example.com\u0085']) {
    const { args } = await h.invoke(login, [typed, 'multi-paste-pass']);
    assert.equal(args[0], null, typed);
    assert.equal(args[1].email, 'multi@example.com');
    assert.equal(args[1].user_id, 'tp_148168e920bf47f6b53a67383d63661e');
  }
  for (const typed of ['\u212Aim@example.com', 'mult\u0130@example.com', 'multi@example.com\u200B']) {
    const { args } = await h.invoke(login, [typed, 'multi-paste-pass']);
    assert.equal(args[0] && args[0].name, 'WrongUsernameOrPasswordError', typed);
    assert.equal(args[1], undefined);
  }
});

test('a product that times out during look-up: the login still succeeds with a pending check', async () => {
  setDown(['transfer'], 'hang');
  const ctr = h.container({ configuration: fx.config });
  const login = h.compileScript('database-connections/trickle/login.js', ctr);
  const { args, calls } = await h.invoke(login, ['multi@example.com', 'multi-paste-pass']);
  assert.equal(calls, 1);
  assert.equal(args[0], null);
  assert.deepEqual(h.plain(args[1].app_metadata.trickle.pending), ['transfer']);
  // The same timeout with a wrong password is a retryable error, never "wrong password".
  const wrong = await h.invoke(login, ['multi@example.com', 'nope']);
  assert.ok(h.isRetryError(wrong.args[0]), String(wrong.args[0]));
  setDown([]);
});

test('malformed input and configuration: never a throw, callback exactly once, a clear error', async () => {
  setDown([]);
  const bad = [
    { configuration: undefined, args: ['solo@example.com', 'solo-pass'], want: /config\.missing|configuration/ },
    { configuration: { TRICKLE_PRODUCTS: 'not json' }, args: ['solo@example.com', 'solo-pass'], want: /TRICKLE_PRODUCTS is not valid JSON/ },
    { configuration: { TRICKLE_PRODUCTS: '[]' }, args: ['solo@example.com', 'solo-pass'], want: /non-empty/ },
    { configuration: { TRICKLE_PRODUCTS: '[{"name":"x","url":"ftp://x"}]' }, args: ['solo@example.com', 'solo-pass'], want: /http\(s\) url/ },
    { configuration: fx.config, args: [null, 'x'], wrongCredentials: true },
    { configuration: fx.config, args: [{ email: 1 }, 42], wrongCredentials: true },
    { configuration: fx.config, args: ['x'.repeat(300) + '@example.com', 'x'], wrongCredentials: true },
    { configuration: fx.config, args: ['solo@example.com', 'x'.repeat(5000)], wrongCredentials: true }
  ];
  for (const b of bad) {
    const ctr = h.container({ configuration: b.configuration });
    const login = h.compileScript('database-connections/trickle/login.js', ctr);
    const { args, calls } = await h.invoke(login, b.args);
    assert.equal(calls, 1);
    if (b.wrongCredentials) {
      assert.ok(args[0] instanceof h.WrongUsernameOrPasswordError, String(args[0]));
    } else {
      assert.ok(h.isRetryError(args[0]), String(args[0]));
      assert.match(args[0].message + ctr.logs.join('\n'), b.want);
    }
  }
});

test('a product answering garbage is treated as unavailable, not as "no account"', async () => {
  setDown([]);
  const server = await h.productServer('paste', []);
  const original = server.state.accounts;
  server.state.accounts = { filter: () => 'not an array' };
  const config = { ...fx.config, TRICKLE_PRODUCTS: JSON.stringify([{ name: 'paste', url: server.url, token: server.token }]) };
  const ctr = h.container({ configuration: config });
  const login = h.compileScript('database-connections/trickle/login.js', ctr);
  const { args } = await h.invoke(login, ['solo@example.com', 'solo-pass']);
  assert.ok(h.isRetryError(args[0]), String(args[0]));
  server.state.accounts = original;
  await server.close();
});

test('a wasm trap fails that call cleanly, and the next call runs on a fresh instance', async () => {
  setDown([]);
  const ctr = h.container({ configuration: fx.config });
  const login = h.compileScript('database-connections/trickle/login.js', ctr);
  const first = await h.invoke(login, ['solo@example.com', 'solo-pass']);
  assert.equal(first.args[0], null);
  const key = Object.keys(ctr.sandbox).find((k) => k.startsWith('trickle-login-'));
  const slot = ctr.sandbox[key];
  assert.equal(slot.loads, 1);
  // The next call into the instance hits a real `unreachable` inside the wasm.
  const real = slot.glue;
  slot.glue = new Proxy(real, { get: (t, p) => (p === 'login' ? () => real.trap() : t[p]) });
  const trapped = await h.invoke(login, ['solo@example.com', 'solo-pass']);
  assert.equal(trapped.calls, 1);
  assert.ok(h.isRetryError(trapped.args[0]) && /failed/.test(trapped.args[0].message), String(trapped.args[0]));
  assert.equal(slot.traps, 1);
  const after = await h.invoke(login, ['solo@example.com', 'solo-pass']);
  assert.equal(after.args[0], null);
  assert.equal(after.args[1].user_id, first.args[1].user_id);
  assert.equal(slot.loads, 2, 'a fresh instance was made');
});

test('a hostile answer from one product never turns the owner\'s correct password into "wrong" (finding 7)', async () => {
  setDown([]);
  const ctr = h.container({ configuration: fx.config });
  const login = h.compileScript('database-connections/trickle/login.js', ctr);
  const collect = fx.byName.collect.state;
  const saved = collect.accounts;
  let deep = {};
  for (let i = 0; i < 70; i++) deep = { d: deep };
  const hostile = {
    'thousands of sign-ups with long names': Array.from({ length: 2500 }, (_, i) => ({ id: `x${i}`, email: 'multi@example.com', name: 'n'.repeat(400) })),
    'a lone surrogate': [{ id: 'x1', email: 'multi@example.com', name: 'bad \ud800 name' }],
    'a field nested 70 deep': [{ id: 'x1', email: 'multi@example.com', extra: deep }],
    'more accounts than one person holds': Array.from({ length: 40 }, (_, i) => ({ id: `x${i}`, email: 'multi@example.com' }))
  };
  try {
    for (const [what, accounts] of Object.entries(hostile)) {
      collect.accounts = saved.concat(accounts);
      const { args, calls } = await h.invoke(login, ['multi@example.com', 'multi-paste-pass']);
      assert.equal(calls, 1, what);
      assert.equal(args[0], null, `${what}: ${args[0]}`);
      assert.ok(args[1].app_metadata.trickle.accounts.some((a) => a.id === 'p2' && a.proof === 'password'), what);
      assert.deepEqual(h.plain(args[1]).app_metadata.trickle.pending, ['collect'], `${what}: collect is looked up again later`);
    }
  } finally {
    collect.accounts = saved;
  }
});

test('host crypto that fails is an error, never an empty key that matches (finding 13)', async () => {
  const { trickleHostCrypto } = require('../../../js-shim/db');
  const out = await trickleHostCrypto([
    { product: 'p', id: '1', op: 'pbkdf2', digest: 'sha256', data: '', salt: '', iterations: 1, length: 0 },
    { product: 'p', id: '2', op: 'hash', digest: 'no-such-digest', data: '' },
    { product: 'p', id: '3', op: 'hash', digest: 'sha256', data: '70' }
  ]);
  assert.deepEqual(out.slice(0, 2), [{ product: 'p', id: '1', error: 'host crypto failed' }, { product: 'p', id: '2', error: 'host crypto failed' }]);
  assert.match(out[2].output, /^[0-9a-f]{64}$/);
});

test('a refused sign-in answers no sooner than the floor, whether the address has an account or not (finding 10)', async () => {
  setDown([]);
  const ctr = h.container({ configuration: fx.config });
  const login = h.compileScript('database-connections/trickle/login.js', ctr);
  for (const email of ['solo@example.com', 'nobody-at-all@example.com']) {
    const started = Date.now();
    const { args, calls } = await h.invoke(login, [email, 'not the password'], { settleMs: 0 });
    assert.equal(calls, 1);
    assert.equal(args[0] && args[0].name, 'WrongUsernameOrPasswordError', email);
    assert.ok(Date.now() - started >= 249, `${email}: answered after ${Date.now() - started} ms`);
  }
});

test('bcrypt goes to the runtime\'s native, asynchronous bcrypt when scripts may require it, with the same decisions; a failing native bcrypt falls back to the wasm (issue 12)', async () => {
  setDown([]);
  const real = require('bcrypt');
  const calls = [];
  const spy = { hash: (data, setting, cb) => { calls.push(setting); return real.hash(data, setting, cb); } };
  const broken = { hash: (data, setting, cb) => setTimeout(() => cb(new Error('native failure')), 0) };
  const withModule = (bcrypt) => {
    const ctr = h.container({ configuration: fx.config, require: (n) => (n === 'bcrypt' ? bcrypt : require(String(n).replace(/^node:/, ''))) });
    return h.compileScript('database-connections/trickle/login.js', ctr);
  };
  const native = withModule(spy);
  const ok = await h.invoke(native, ['solo@example.com', 'solo-pass']);
  assert.equal(ok.args[0], null, String(ok.args[0]));
  assert.equal(ok.args[1].user_id, 'tp_8ca78fc0277539541dabb5af6a4e7602');
  assert.deepEqual(calls, ['$2b$04$2SLD2GSVqXu1bzihaHbNXe'], 'verified by the native module');
  const wrong = await h.invoke(native, ['solo@example.com', 'not the password']);
  assert.equal(wrong.args[0] && wrong.args[0].name, 'WrongUsernameOrPasswordError');
  // A native bcrypt that fails is not a wrong password: the wasm answers instead, and a wrong
  // password is still wrong.
  const failing = await h.invoke(withModule(broken), ['solo@example.com', 'solo-pass']);
  assert.equal(failing.calls, 1);
  assert.equal(failing.args[0], null, String(failing.args[0]));
  assert.equal(failing.args[1].user_id, ok.args[1].user_id);
  const failingWrong = await h.invoke(withModule(broken), ['solo@example.com', 'not the password']);
  assert.equal(failingWrong.args[0] && failingWrong.args[0].name, 'WrongUsernameOrPasswordError');
  // Without the module, the wasm verifies: the same answer.
  const ctr = h.container({ configuration: fx.config });
  const wasm = await h.invoke(h.compileScript('database-connections/trickle/login.js', ctr), ['solo@example.com', 'solo-pass']);
  assert.equal(wasm.args[1].user_id, ok.args[1].user_id);
});
