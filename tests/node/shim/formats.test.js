// The password formats outside Auth0's list, through the built login script as the platform
// runs it (a vm sandbox without native modules, so crypt(3), phpass, bcrypt and argon2 run in
// wasm slices): every vector of tests/fixtures/formats.json (made by passlib, Django, Werkzeug,
// pyca/bcrypt and Firebase's published vector; scripts/vectors/formats.py) signs in with its own
// password and no other, the event loop never stalls, hostile work factors are refused in
// time, and a deployment's own build carries only its formats.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { loadCore } = require('../../../js-shim/node');
const runtime = require('../../../sim/runtime');
const h = require('../support/harness');

const ROOT = path.join(__dirname, '..', '..', '..');
const VECTORS = JSON.parse(fs.readFileSync(path.join(ROOT, 'tests/fixtures/formats.json'), 'utf8'));
// The login script's own estimate decides what it verifies: passlib's 656 000-round sha512-crypt
// default is beyond a second and refused (tests/formats.rs); every framework default fits.
const core = loadCore('full');

/** Largest gap between 1 ms ticks while `work` runs: how long the event loop was held. */
async function maxStall(work) {
  let last = Date.now();
  let worst = 0;
  const tick = setInterval(() => { const now = Date.now(); worst = Math.max(worst, now - last); last = now; }, 1);
  try {
    const result = await work();
    return { result, worst };
  } finally {
    clearInterval(tick);
  }
}

async function withProduct(accounts, fn, file = 'database-connections/trickle/login.js', dist) {
  const server = await h.productServer('legacy', accounts);
  const configuration = { TRICKLE_PRODUCTS: JSON.stringify([{ name: 'legacy', url: server.url, token: server.token }]) };
  try {
    const ctr = h.container({ configuration });
    const login = dist ? runtime.compileScript(path.join(dist, 'auth0', file), ctr) : h.compileScript(file, ctr);
    return await fn(login, ctr, server);
  } finally {
    await server.close();
  }
}

const accountsOf = (vectors) => vectors.map((v, i) => ({ id: `f${i}`, email: `f${i}@example.com`, email_verified: true, password: v.descriptor, created_at: '2020-01-01T00:00:00Z' }));

test('every format signs in through the built login script with its own password, and never with another', { timeout: 240000 }, async (t) => {
  const algorithms = new Set(VECTORS.map((v) => v.descriptor.algorithm));
  for (const a of ['crypt', 'ldap', 'phpass', 'wordpress', 'drupal7', 'django', 'werkzeug', 'aspnet-identity', 'firebase-scrypt']) assert.ok(algorithms.has(a), a);
  await withProduct(accountsOf(VECTORS), async (login, ctr) => {
    // The container's first call unpacks and compiles the script (its cold start, measured by
    // `npm run bench`); the stalls that matter are those of the sign-ins after it.
    await h.invoke(login, ['nobody@example.com', 'x']);
    const { worst } = await maxStall(async () => {
      for (let i = 0; i < VECTORS.length; i++) {
        const v = VECTORS[i];
        const tooSlow = /passlib sha512_crypt default rounds/.test(v.source);
        const ok = await h.invoke(login, [`f${i}@example.com`, v.password], { timeoutMs: 30000 });
        assert.equal(ok.calls, 1, v.source);
        if (tooSlow) {
          assert.ok(ok.args[0] instanceof h.WrongUsernameOrPasswordError, `${v.source}: refused as beyond a second`);
          continue;
        }
        assert.equal(ok.args[0], null, `${v.source}: ${ok.args[0] && ok.args[0].message}`);
        assert.equal(ok.args[1].email, `f${i}@example.com`, v.source);
        const bad = await h.invoke(login, [`f${i}@example.com`, v.password + '!'], { timeoutMs: 30000 });
        assert.ok(bad.args[0] instanceof h.WrongUsernameOrPasswordError, `${v.source}: wrong password`);
      }
    });
    // Sliced: no turn of the event loop waits long for another sign-in's hashing (Auth0's
    // containers run many at once).
    t.diagnostic(`longest event-loop stall: ${worst} ms`);
    // (About 10 ms when the machine is otherwise idle; the bound leaves room for the other test
    // files running beside this one on a two-core machine.)
    assert.ok(worst < 50, `the event loop stalled for ${worst} ms`);
    const log = ctr.logs.join('\n');
    for (const v of VECTORS.slice(0, 8)) assert.ok(!log.includes(v.descriptor.hash.value), 'no hash in the log');
    assert.ok(!log.includes('correct horse'), 'no password in the log');
    assert.ok(log.includes('password.work_factor_too_high'), 'the refusal is logged with its code');
  });
});

test('hostile work factors and malformed values are refused before any work, quickly', { timeout: 60000 }, async () => {
  const hostile = [
    { algorithm: 'crypt', hash: { value: '$6$rounds=999999999$abcdefgh$' + 'A'.repeat(86) } },
    { algorithm: 'phpass', hash: { value: '$P$S' + 'abcdefgh' + 'A'.repeat(22) } },
    { algorithm: 'drupal7', hash: { value: '$S$S' + 'abcdefgh' + 'A'.repeat(43) } },
    { algorithm: 'django', hash: { value: 'argon2$argon2id$v=19$m=4194304,t=2,p=8$c2FsdHNhbHQ$' + 'A'.repeat(43) } },
    { algorithm: 'werkzeug', hash: { value: 'scrypt:1048576:8:1$salt$' + '00'.repeat(64) } },
    { algorithm: 'aspnet-identity', hash: { value: Buffer.concat([Buffer.from([1, 0, 0, 0, 1, 0xee, 0x6b, 0x28, 0, 0, 0, 0, 16]), Buffer.alloc(48)]).toString('base64') } },
    { algorithm: 'crypt', hash: { value: 'abJnggxhB/yWI' } },
    // A v3 blob whose salt length (0xFFFFFFFF) would wrap a 32-bit index.
    { algorithm: 'aspnet-identity', hash: { value: Buffer.concat([Buffer.from([1, 0, 0, 0, 1, 0, 0, 0x27, 0x10, 0xff, 0xff, 0xff, 0xff]), Buffer.alloc(48)]).toString('base64') } },
    { algorithm: 'wordpress', hash: { value: '$wp$2y$99$' + 'A'.repeat(53) } }
  ];
  const accounts = hostile.map((d, i) => ({ id: `h${i}`, email: `h${i}@example.com`, email_verified: true, password: d }));
  await withProduct(accounts, async (login, ctr) => {
    for (let i = 0; i < hostile.length; i++) {
      const started = Date.now();
      const r = await h.invoke(login, [`h${i}@example.com`, 'whatever']);
      assert.equal(r.calls, 1);
      assert.ok(r.args[0] instanceof h.WrongUsernameOrPasswordError, JSON.stringify(hostile[i]));
      // The refusal floor (250 ms) and a dummy bcrypt, never the hostile work.
      assert.ok(Date.now() - started < 1500, `${JSON.stringify(hostile[i])} took ${Date.now() - started} ms`);
    }
    const log = ctr.logs.join('\n');
    for (const code of ['password.work_factor_too_high', 'password.unsupported_variant', 'password.invalid_field']) assert.ok(log.includes(code), code);
  });
  // The wasm's own entry refuses a crypt job beyond its limits whoever asks.
  for (const rounds of [2000000000, 999999999, 1000000]) {
    const bad = core.call('hash_start', { op: 'crypt', kind: 'sha512-crypt', data: '00', salt: '00', rounds, length: 86 });
    assert.equal(bad.outcome, 'invalid', `${rounds} rounds`);
  }
  const fine = core.call('hash_start', { op: 'crypt', kind: 'sha512-crypt', data: '00', salt: '00', rounds: 5000, length: 86 });
  assert.equal(fine.outcome, 'ok');
  core.raw('hash_free', fine.handle);
});

test('a deployment builds its login script with only its formats: smaller, and the others refused by name', { timeout: 600000 }, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-build-'));
  try {
    const cfg = path.join(out, 'trickle.json');
    fs.writeFileSync(cfg, JSON.stringify({ products: [{ name: 'blog', db: 'sqlite:blog.sqlite', format: 'wordpress', table: 'wp_users', columns: { id: 'ID', email: 'user_email', password: 'user_pass' }, link: 'table' }] }));
    const r = spawnSync(process.execPath, [path.join(ROOT, 'rules/build.js'), '--config', cfg, '--out', path.join(out, 'dist')], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /login script formats: bcrypt, fmt-phpass/);
    const built = path.join(out, 'dist');
    const own = fs.statSync(path.join(built, 'auth0/database-connections/trickle/login.js')).size;
    const everything = fs.statSync(path.join(ROOT, 'dist/auth0/database-connections/trickle/login.js')).size;
    assert.ok(own < everything - 8000, `WordPress's build is ${own} bytes, everything ${everything}`);
    assert.ok(everything < 100000);
    const sizes = JSON.parse(fs.readFileSync(path.join(built, 'auth0/sizes.json'), 'utf8'));
    assert.deepEqual(sizes.login_formats, ['bcrypt', 'fmt-phpass']);
    const wp = VECTORS.filter((v) => v.descriptor.algorithm === 'wordpress');
    const django = VECTORS.find((v) => v.descriptor.algorithm === 'django');
    await withProduct(accountsOf([...wp, django]), async (login, ctr) => {
      for (let i = 0; i < wp.length; i++) {
        const ok = await h.invoke(login, [`f${i}@example.com`, wp[i].password], { timeoutMs: 30000 });
        assert.equal(ok.args[0], null, wp[i].source);
      }
      const refused = await h.invoke(login, [`f${wp.length}@example.com`, django.password]);
      assert.ok(refused.args[0] instanceof h.WrongUsernameOrPasswordError);
      assert.ok(ctr.logs.join('\n').includes('password.not_in_build'), 'the refusal names the build');
    }, 'database-connections/trickle/login.js', built);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('trickle.json: a Firebase product needs the project\'s parameters, and its rows become descriptors that verify', () => {
  const { validateConfig } = require('../../../cli/config');
  const { accountOf } = require('../../../cli/products');
  const fb = VECTORS.find((v) => v.descriptor.algorithm === 'firebase-scrypt');
  const product = (extra) => ({ name: 'app', db: 'sqlite:app.sqlite', format: 'firebase-scrypt', table: 'users', columns: { id: 'uid', email: 'email', password: 'passwordHash', salt: 'salt' }, link: 'table', ...extra });
  const refused = (p) => { try { validateConfig({ products: [p] }); return null; } catch (e) { return e.code; } };
  assert.equal(refused(product()), 'config.missing');
  assert.equal(refused(product({ firebase: { ...fb.descriptor.firebase, rounds: 9 } })), 'config.bad_type');
  assert.equal(refused(product({ firebase: { ...fb.descriptor.firebase, signer_key: 'not base64!' } })), 'config.bad_type');
  assert.equal(refused(product({ firebase: { ...fb.descriptor.firebase, signerKey: 'x' } })), 'config.unknown_key');
  assert.equal(refused({ ...product({ firebase: fb.descriptor.firebase }), format: 'bcrypt' }), 'config.conflict');
  const cfg = validateConfig({ products: [product({ firebase: fb.descriptor.firebase })] });
  const account = accountOf(cfg.products[0], { id: 7, email: 'u@example.com', password_hash: fb.descriptor.hash.value, password_salt: fb.descriptor.salt.value });
  assert.deepEqual(account.password, fb.descriptor);
  assert.equal(core.call('verify_password', { descriptor: account.password, password: fb.password }).outcome, 'match');
  // The other new formats read the column as it is.
  for (const format of ['crypt', 'phpass', 'wordpress', 'drupal7', 'django', 'werkzeug', 'aspnet-identity']) {
    const v = VECTORS.find((x) => x.descriptor.algorithm === format);
    const c = validateConfig({ products: [{ ...product(), format, columns: { id: 'uid', email: 'email', password: 'pw' } }] });
    assert.equal(core.call('verify_password', { descriptor: accountOf(c.products[0], { id: 1, email: 'u@example.com', password_hash: v.descriptor.hash.value }).password, password: v.password }).outcome, 'match', format);
  }
});
