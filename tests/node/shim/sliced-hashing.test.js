// bcrypt and argon2 without the runtime's native modules (an Action-like runtime, argon2 absent,
// bcrypt failing to load): the built login.js computes them in wasm slices between turns of the
// event loop. The outputs equal the native modules' own, a login verifies with the right
// password and refuses a wrong one, other work keeps running meanwhile, a trap in the middle
// recovers, and every callback is called exactly once.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const bcrypt = require('bcrypt');
const argon2 = require('argon2');
const { loadCore } = require('../../../js-shim/node');
const h = require('../support/harness');

const PASSWORD = 'correct horse battery staple';
const hex = (b) => Buffer.from(b).toString('hex');

/** Runs one request through the stepwise exports of the login build, a few units at a time. */
function stepwise(core, request, units) {
  const begun = core.call('hash_start', request);
  assert.equal(begun.outcome, 'ok', JSON.stringify(begun));
  let steps = 0;
  for (;;) {
    const r = core.raw('hash_step', begun.handle, units);
    assert.ok(r.ok && (r.value === 0 || r.value === 1), JSON.stringify(r));
    steps += 1;
    if (r.value === 1) break;
  }
  const out = core.call('hash_output', begun.handle);
  assert.equal(out.outcome, 'ok');
  return { output: Buffer.from(out.output, 'hex'), steps };
}

test('stepwise bcrypt and argon2 in the login build answer exactly what the native modules answer', async () => {
  const core = loadCore('login');
  for (const cost of [4, 5, 10]) {
    const pw = crypto.randomBytes(8).toString('base64');
    const setting = await bcrypt.genSalt(cost);
    const { output, steps } = stepwise(core, { op: 'bcrypt', data: hex(pw), setting: setting.replace(/^\$2[ab]\$/, '$2b$') }, 7);
    assert.equal(output.toString(), await bcrypt.hash(pw, setting.replace(/^\$2[ab]\$/, '$2b$')), `cost ${cost}`);
    assert.ok(steps >= (1 << cost) / 7, 'the work was split');
  }
  const types = [argon2.argon2d, argon2.argon2i, argon2.argon2id];
  for (const [type, version, m, t, p, length] of [[0, 0x13, 64, 3, 2, 32], [1, 0x10, 256, 2, 4, 16], [2, 0x13, 1024, 1, 8, 64], [2, 0x10, 4096, 2, 1, 33], [1, 0x13, 100, 4, 3, 24]]) {
    const pw = crypto.randomBytes(12);
    const salt = crypto.randomBytes(16);
    const want = await argon2.hash(pw, { raw: true, salt, type: types[type], version, memoryCost: m, timeCost: t, parallelism: p, hashLength: length });
    const req = { op: 'argon2', data: hex(pw), salt: hex(salt), m, t, p, variant: type, version, length };
    const { output, steps } = stepwise(core, req, 50);
    assert.equal(output.toString('hex'), want.toString('hex'), JSON.stringify({ type, version, m, t, p, length }));
    assert.ok(steps >= (m * t) / 50 - 1, 'the work was split');
  }
});

test('a stepwise request beyond the documented limits is refused with a stable code, a freed handle is gone, and memory is bounded', () => {
  const core = loadCore('login');
  const tooMuch = core.call('hash_start', { op: 'argon2', data: '00', salt: hex('somesalt'), m: 131072, t: 1, p: 1, variant: 2, version: 19, length: 32 });
  assert.equal(tooMuch.outcome, 'invalid');
  assert.equal(tooMuch.error.code, 'hash.invalid_request');
  const hostileCost = core.call('hash_start', { op: 'bcrypt', data: '00', setting: '$2b$31$CCCCCCCCCCCCCCCCCCCCC.' });
  assert.equal(hostileCost.error.code, 'hash.invalid_request');
  const begun = core.call('hash_start', { op: 'bcrypt', data: '00', setting: '$2b$04$CCCCCCCCCCCCCCCCCCCCC.' });
  core.raw('hash_free', begun.handle);
  assert.equal(core.raw('hash_step', begun.handle, 1).value, -1);
  assert.equal(core.call('hash_output', begun.handle).error.code, 'hash.not_ready');
  assert.equal(core.raw('hash_step', 0, 1).value, -1, 'handle 0 is never valid');
  // Many argon2 sign-ins at the limit at once cannot take the container's memory: two hold it,
  // the next waits (hash.busy) until one is freed.
  const big = { op: 'argon2', data: '00', salt: hex('somesalt'), m: 65536, t: 1, p: 1, variant: 2, version: 19, length: 32 };
  const a = core.call('hash_start', big);
  const b = core.call('hash_start', big);
  assert.equal(a.outcome, 'ok');
  assert.equal(b.outcome, 'ok');
  assert.equal(core.call('hash_start', big).error.code, 'hash.busy');
  core.raw('hash_free', a.handle);
  const c = core.call('hash_start', big);
  assert.equal(c.outcome, 'ok');
  core.raw('hash_free', b.handle);
  core.raw('hash_free', c.handle);
});

/** One product holding `accounts`, and the built login.js in a container without native modules. */
async function setup(accounts) {
  const product = await h.productServer('paste', accounts);
  const ctr = h.container({ configuration: { TRICKLE_PRODUCTS: JSON.stringify([{ name: 'paste', url: product.url, token: product.token }]) } });
  const login = h.compileScript('database-connections/trickle/login.js', ctr);
  const slot = () => ctr.sandbox[Object.keys(ctr.sandbox).find((k) => k.startsWith('trickle-login-'))];
  return { product, ctr, login, slot };
}

/** Calls login and records every callback call (over a generous settle time) and the longest gap of a 5 ms timer meanwhile. */
async function signIn(login, email, password) {
  let last = Date.now();
  let longest = 0;
  const timer = setInterval(() => { const now = Date.now(); longest = Math.max(longest, now - last); last = now; }, 5);
  try {
    const r = await h.invoke(login, [email, password], { settleMs: 300 });
    return { ...r, longestGapMs: longest };
  } finally {
    clearInterval(timer);
  }
}

test('without native modules, bcrypt and argon2 verify through login.js while a 5 ms timer keeps firing, and a wrong password stays wrong', async () => {
  const bcryptHash = await bcrypt.hash(PASSWORD, 12); // ~250 ms in the wasm: far above one stall
  const argonHash = await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: 65536, timeCost: 3, parallelism: 4 });
  const { product, login } = await setup([
    { id: 'b1', email: 'bcrypt@example.com', email_verified: true, password: { algorithm: 'bcrypt', hash: { value: bcryptHash } } },
    { id: 'a1', email: 'argon@example.com', email_verified: true, password: { algorithm: 'argon2', hash: { value: argonHash } } }
  ]);
  try {
    for (const email of ['bcrypt@example.com', 'argon@example.com']) {
      const ok = await signIn(login, email, PASSWORD);
      assert.equal(ok.calls, 1);
      assert.equal(ok.args[0], null, String(ok.args[0]));
      assert.equal(ok.args[1].email, email);
      assert.ok(ok.longestGapMs < 100, `${email}: the event loop stalled ${ok.longestGapMs} ms`);
      const wrong = await signIn(login, email, PASSWORD + '!');
      assert.equal(wrong.calls, 1);
      assert.ok(wrong.args[0] instanceof h.WrongUsernameOrPasswordError || wrong.args[0].name === 'WrongUsernameOrPasswordError', String(wrong.args[0]));
      assert.ok(wrong.longestGapMs < 100, `${email} (wrong): the event loop stalled ${wrong.longestGapMs} ms`);
    }
  } finally {
    await product.close();
  }
});

test('several concurrent sign-ins in one container, right and wrong passwords, are each answered once and correctly', async () => {
  const accounts = [];
  for (let i = 0; i < 3; i++) {
    accounts.push({ id: `b${i}`, email: `b${i}@example.com`, email_verified: true, password: { algorithm: 'bcrypt', hash: { value: await bcrypt.hash(`pw-b${i}`, 10) } } });
    accounts.push({ id: `a${i}`, email: `a${i}@example.com`, email_verified: true, password: { algorithm: 'argon2', hash: { value: await argon2.hash(`pw-a${i}`, { type: argon2.argon2i, memoryCost: 16384, timeCost: 3, parallelism: 2 }) } } });
  }
  const { product, login } = await setup(accounts);
  try {
    // Half with the right password, half with another person's.
    const started = accounts.map((a, i) => ({ a, pw: i % 2 === 0 ? `pw-${a.id}` : 'pw-b0' }));
    const results = await Promise.all(started.map(async (s) => ({ s, r: await signIn(login, s.a.email, s.pw) })));
    for (const { s, r } of results) {
      assert.equal(r.calls, 1, s.a.id);
      if (s.pw === `pw-${s.a.id}`) assert.equal(r.args[0], null, `${s.a.id}: ${r.args[0]}`);
      else assert.ok(r.args[0] && r.args[0].name === 'WrongUsernameOrPasswordError', `${s.a.id}: ${r.args[0]}`);
      assert.ok(r.longestGapMs < 100, `${s.a.id}: stalled ${r.longestGapMs} ms`);
    }
  } finally {
    await product.close();
  }
});

test('a trap in the middle of a sliced computation recovers on a fresh instance; a trap every time refuses that login once and the container recovers', async () => {
  const hash = await bcrypt.hash(PASSWORD, 10);
  const { product, login, slot } = await setup([{ id: 't1', email: 'trap@example.com', email_verified: true, password: { algorithm: 'bcrypt', hash: { value: hash } } }]);
  try {
    const first = await signIn(login, 'trap@example.com', PASSWORD);
    assert.equal(first.args[0], null);
    const s = slot();
    const loads = s.loads;
    // The fifth step into the instance hits a real `unreachable` inside the wasm.
    let steps = 0;
    const real = s.glue;
    s.glue = new Proxy(real, { get: (t, p) => (p === 'hash_step' ? (...a) => (++steps === 5 ? real.trap() : t.hash_step(...a)) : t[p]) });
    const recovered = await signIn(login, 'trap@example.com', PASSWORD);
    assert.equal(recovered.calls, 1);
    assert.equal(recovered.args[0], null, String(recovered.args[0]));
    assert.equal(recovered.args[1].user_id, first.args[1].user_id);
    assert.ok(steps >= 5, 'the trap fired mid-computation');
    assert.equal(s.traps, 1);
    assert.equal(s.loads, loads + 1, 'a fresh instance finished the work');

    // Every instance from now on traps at its first step: the login fails cleanly, once.
    let current = s.glue;
    const trapping = (g) => new Proxy(g, { get: (t, p) => (p === 'hash_step' ? () => t.trap() : t[p]) });
    Object.defineProperty(s, 'glue', { configurable: true, enumerable: true, get: () => current, set: (g) => { current = g && trapping(g); } });
    s.glue = current;
    let broken;
    try {
      broken = await signIn(login, 'trap@example.com', PASSWORD);
    } finally {
      Object.defineProperty(s, 'glue', { value: null, writable: true, configurable: true, enumerable: true });
    }
    // The core counts a computation the host could not finish as unverified (the event
    // password.host_failed), never as a match, and the person is asked to try again: their
    // password may well be right, so "wrong password" would be a lie.
    assert.equal(broken.calls, 1);
    assert.ok(h.isRetryError(broken.args[0]), `not a retryable error: ${broken.args[0] && broken.args[0].name} ${broken.args[0] && broken.args[0].message}`);
    assert.equal(broken.args[1], undefined, 'no profile');
    const after = await signIn(login, 'trap@example.com', PASSWORD);
    assert.equal(after.args[0], null, 'the container works again');
  } finally {
    await product.close();
  }
});
