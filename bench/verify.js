// Password verification speed per algorithm, measured in one run:
//   wasm      the deployed login path (pkg/login: bcrypt, argon2 and MD4 in the wasm; digests,
//             HMAC, PBKDF2 and scrypt handed to node:crypto), through the core's login decision;
//   wasm_only every algorithm computed inside the wasm (pkg/full), to show which is faster;
//   js        the best choice an Action author has: bcryptjs for bcrypt, node:crypto otherwise;
//   native    the native `bcrypt` / `argon2` packages (not usable in Actions; a reference).
'use strict';
const crypto = require('crypto');
const bcryptjs = require('bcryptjs');
const bcryptNative = require('bcrypt');
const argon2 = require('argon2');
const { loadCore, trickleHostCrypto } = require('../js-shim/node');

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

async function timeIt(fn, reps) {
  await fn(); // warm-up
  const out = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    const ok = await fn();
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (ok !== true) throw new Error('verification failed during the benchmark');
  }
  return median(out);
}

function cases() {
  const pw = 'correct horse battery staple';
  const salt = Buffer.from('0123456789abcdef');
  const b64 = (b) => b.toString('base64').replace(/=+$/, '');
  const sha = (alg, input) => crypto.createHash(alg).update(input).digest();
  const eq = (a, b) => a.length === b.length && crypto.timingSafeEqual(a, b);
  const pbkdf2 = crypto.pbkdf2Sync(pw, salt, 100000, 32, 'sha256');
  const scrypt = crypto.scryptSync(pw, salt, 64, { N: 16384, r: 8, p: 1 });
  const hmacKey = Buffer.from('server-side-pepper');
  const promisify = (f) => (...a) => new Promise((res, rej) => f(...a, (e, v) => (e ? rej(e) : res(v))));
  return [
    { name: 'bcrypt', reps: 7, descriptor: { algorithm: 'bcrypt', hash: { value: bcryptjs.hashSync(pw, 10) } }, pw,
      js: (d) => bcryptjs.compareSync(pw, d.hash.value), native: (d) => bcryptNative.compare(pw, d.hash.value) },
    { name: 'argon2', reps: 7, pw, descriptorAsync: () => argon2.hash(pw, { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 }).then((v) => ({ algorithm: 'argon2', hash: { value: v } })),
      native: (d) => argon2.verify(d.hash.value, pw) },
    { name: 'pbkdf2', reps: 7, pw, descriptor: { algorithm: 'pbkdf2', hash: { value: `$pbkdf2-sha256$i=100000,l=32$${b64(salt)}$${b64(pbkdf2)}` } },
      js: () => promisify(crypto.pbkdf2)(pw, salt, 100000, 32, 'sha256').then((o) => eq(o, pbkdf2)) },
    { name: 'scrypt', reps: 7, pw, descriptor: { algorithm: 'scrypt', hash: { value: scrypt.toString('hex'), encoding: 'hex' }, salt: { value: salt.toString('utf8'), position: 'prefix' }, keylen: 64, cost: 16384 },
      js: () => promisify(crypto.scrypt)(pw, salt, 64, { N: 16384, r: 8, p: 1 }).then((o) => eq(o, scrypt)) },
    ...['md5', 'sha1', 'sha256', 'sha512'].map((alg) => {
      const digest = sha(alg, Buffer.concat([salt, Buffer.from(pw)]));
      return { name: alg, reps: 201, pw, descriptor: { algorithm: alg, hash: { value: digest.toString('hex'), encoding: 'hex' }, salt: { value: salt.toString('utf8'), position: 'prefix' } },
        js: () => eq(sha(alg, Buffer.concat([salt, Buffer.from(pw)])), digest) };
    }),
    (() => {
      const mac = crypto.createHmac('sha256', hmacKey).update(pw).digest();
      return { name: 'hmac', reps: 201, pw, descriptor: { algorithm: 'hmac', hash: { value: mac.toString('hex'), encoding: 'hex', digest: 'sha256', key: { value: hmacKey.toString(), encoding: 'utf8' } } },
        js: () => eq(crypto.createHmac('sha256', hmacKey).update(pw).digest(), mac) };
    })(),
    (() => {
      const s = Buffer.from('a1b2c3d4');
      const d = sha('sha1', Buffer.concat([Buffer.from(pw), s]));
      return { name: 'ldap', reps: 201, pw, descriptor: { algorithm: 'ldap', hash: { value: '{SSHA}' + Buffer.concat([d, s]).toString('base64') } },
        js: () => eq(sha('sha1', Buffer.concat([Buffer.from(pw), s])), d) };
    })(),
    { name: 'md4', reps: 201, pw: 'password', descriptor: { algorithm: 'md4', hash: { value: '8846f7eaee8fb117ad06bdd830b7586c', encoding: 'hex' }, password: { encoding: 'utf16le' } } }
  ];
}

async function verifyBench() {
  const login = loadCore('login');
  const full = loadCore('full');
  // The deployed path: the login decision over one account, with node:crypto for its share.
  const deployed = (descriptor, pw) => async () => {
    const input = { email: 'bench@example.com', password: pw, products: [{ name: 'legacy', accounts: [{ id: '1', email: 'bench@example.com', password: descriptor }] }] };
    let d = login.call('login', input);
    if (d.outcome === 'compute') {
      input.computed = await trickleHostCrypto(d.requests);
      d = login.call('login', input);
    }
    return d.outcome === 'profile';
  };
  const wasmOnly = (descriptor, pw) => () => full.call('verify_password', { descriptor, password: pw }).outcome === 'match';
  const results = {};
  for (const c of cases()) {
    const descriptor = c.descriptor || (await c.descriptorAsync());
    const r = { wasm_ms: await timeIt(deployed(descriptor, c.pw), c.reps), wasm_only_ms: await timeIt(wasmOnly(descriptor, c.pw), c.reps) };
    if (c.js) r.js_ms = await timeIt(() => c.js(descriptor), c.reps);
    if (c.native) r.native_ms = await timeIt(() => c.native(descriptor), c.reps);
    r.vs_js = r.js_ms ? Number((r.wasm_ms / r.js_ms).toFixed(3)) : null;
    r.wasm_only_vs_js = r.js_ms ? Number((r.wasm_only_ms / r.js_ms).toFixed(3)) : null;
    if (r.native_ms) r.vs_native = Number((r.wasm_ms / r.native_ms).toFixed(3));
    for (const k of ['wasm_ms', 'wasm_only_ms', 'js_ms', 'native_ms']) if (r[k] !== undefined) r[k] = Number(r[k].toFixed(4));
    if (!c.js) r.note = c.name === 'md4' ? 'node:crypto has no MD4 (OpenSSL 3 legacy provider): no JavaScript baseline' : 'no argon2 in node:crypto on Node 18/22; native argon2 is the reference';
    results[c.name] = r;
    console.log(`  verify ${c.name.padEnd(7)} deployed ${r.wasm_ms.toFixed(3).padStart(9)} ms  wasm-only ${r.wasm_only_ms.toFixed(3).padStart(9)} ms` +
      (r.js_ms !== undefined ? `  js ${r.js_ms.toFixed(3).padStart(9)} ms  vs_js ${r.vs_js}` : '') +
      (r.native_ms !== undefined ? `  native ${r.native_ms.toFixed(3).padStart(8)} ms  vs_native ${r.vs_native}` : ''));
  }
  return results;
}

module.exports = { verifyBench };
