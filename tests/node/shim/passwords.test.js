// Cross-checks: hashes made by independent implementations (bcryptjs, the native bcrypt package,
// node:crypto, the argon2 package) verify in the wasm, and one wrong byte never does. Then the
// same kinds of hashes through the built login script, where node:crypto does part of the work.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const bcryptjs = require('bcryptjs');
const bcryptNative = require('bcrypt');
const argon2 = require('argon2');
const { loadCore } = require('../../../js-shim/node');
const h = require('../support/harness');

const SEED = Number(process.env.TRICKLE_TEST_SEED || 20261127);
function rng(seed) {
  let a = seed >>> 0;
  return () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}
const rand = rng(SEED);
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const bytes = (n) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
const CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !#%&*+-./:;<=>?@_~éüßñøå€中文😀';
const password = () => Array.from({ length: 1 + Math.floor(rand() * 24) }, () => pick([...CHARS])).join('');
const latin1Password = () => Array.from({ length: 1 + Math.floor(rand() * 16) }, () => pick([...'abcXYZ019 éüßñøå'])).join('');

const core = loadCore('full');
const verify = (descriptor, pw) => core.call('verify_password', { descriptor, password: pw }).outcome;

function encode(buf, enc) {
  if (enc === 'hex') return buf.toString('hex');
  if (enc === 'HEX') return buf.toString('hex').toUpperCase();
  if (enc === 'base64') return buf.toString('base64');
  return buf.toString('base64url');
}
const descEncoding = (enc) => (enc === 'hex' || enc === 'HEX' ? 'hex' : 'base64');

/** Changes one byte of an encoded digest (decoded, flipped, re-encoded the same way). */
function flipOne(value, enc) {
  const buf = enc === 'hex' || enc === 'HEX' ? Buffer.from(value, 'hex') : Buffer.from(value, enc === 'base64' ? 'base64' : 'base64url');
  buf[Math.floor(rand() * buf.length)] ^= 1 << Math.floor(rand() * 8);
  return encode(buf, enc);
}

/** A random salted-digest case made with node:crypto. */
function digestCase() {
  const algorithm = pick(['md5', 'sha1', 'sha256', 'sha512']);
  const pwEnc = pick(['utf8', 'latin1', 'utf16le', 'ucs2', 'binary']);
  const pw = pwEnc === 'latin1' || pwEnc === 'binary' ? latin1Password() : password();
  const salt = rand() < 0.7 ? { raw: bytes(1 + Math.floor(rand() * 16)), enc: pick(['hex', 'base64']), position: pick(['prefix', 'suffix']) } : null;
  const pwBytes = Buffer.from(pw, pwEnc === 'ucs2' ? 'utf16le' : pwEnc);
  const input = !salt ? pwBytes : salt.position === 'prefix' ? Buffer.concat([salt.raw, pwBytes]) : Buffer.concat([pwBytes, salt.raw]);
  const enc = pick(['hex', 'HEX', 'base64', 'base64url']);
  const value = encode(crypto.createHash(algorithm).update(input).digest(), enc);
  const make = (v) => ({
    algorithm, hash: { value: v, encoding: descEncoding(enc) }, password: { encoding: pwEnc },
    ...(salt ? { salt: { value: salt.raw.toString(salt.enc), encoding: salt.enc, position: salt.position } } : {})
  });
  return { descriptor: make(value), wrong: make(flipOne(value, enc)), pw };
}

function hmacCase() {
  const digest = pick(['md5', 'sha1', 'sha256', 'sha512']);
  const key = bytes(1 + Math.floor(rand() * 40));
  const keyEnc = pick(['hex', 'base64']);
  const pw = password();
  const salt = rand() < 0.5 ? { raw: bytes(8), position: pick(['prefix', 'suffix']) } : null;
  const pwBytes = Buffer.from(pw);
  const input = !salt ? pwBytes : salt.position === 'prefix' ? Buffer.concat([salt.raw, pwBytes]) : Buffer.concat([pwBytes, salt.raw]);
  const enc = pick(['hex', 'base64']);
  const value = encode(crypto.createHmac(digest, key).update(input).digest(), enc);
  const make = (v) => ({
    algorithm: 'hmac', hash: { value: v, encoding: enc, digest, key: { value: key.toString(keyEnc), encoding: keyEnc } },
    ...(salt ? { salt: { value: salt.raw.toString('hex'), encoding: 'hex', position: salt.position } } : {})
  });
  return { descriptor: make(value), wrong: make(flipOne(value, enc)), pw };
}

function pbkdf2Case() {
  const digest = pick(['sha1', 'sha256', 'sha512']);
  const iterations = 1 + Math.floor(rand() * 300);
  const salt = bytes(8 + Math.floor(rand() * 9));
  const len = pick([16, 20, 32, 64]);
  const pw = password();
  const out = crypto.pbkdf2Sync(Buffer.from(pw), salt, iterations, len, digest);
  const phc = (o) => `$pbkdf2-${digest}$i=${iterations},l=${len}$${salt.toString('base64').replace(/=+$/, '')}$${o.toString('base64').replace(/=+$/, '')}`;
  const bad = Buffer.from(out); bad[0] ^= 0x80;
  return { descriptor: { algorithm: 'pbkdf2', hash: { value: phc(out), encoding: 'utf8' } }, wrong: { algorithm: 'pbkdf2', hash: { value: phc(bad) } }, pw };
}

function scryptCase() {
  const N = pick([16, 32, 64, 1024]);
  const r = pick([1, 2, 8]);
  const p = pick([1, 2]);
  const keylen = pick([16, 32, 64]);
  const salt = bytes(16);
  const pw = password();
  const out = crypto.scryptSync(Buffer.from(pw), salt, keylen, { N, r, p });
  const bad = Buffer.from(out); bad[keylen - 1] ^= 1;
  const make = (o) => ({ algorithm: 'scrypt', hash: { value: o.toString('hex'), encoding: 'hex' }, salt: { value: salt.toString('base64'), encoding: 'base64', position: 'prefix' }, keylen, cost: N, blockSize: r, parallelization: p });
  return { descriptor: make(out), wrong: make(bad), pw };
}

function ldapCase() {
  const [scheme, digest, salted] = pick([['MD5', 'md5', false], ['SMD5', 'md5', true], ['SHA', 'sha1', false], ['SSHA', 'sha1', true], ['SHA256', 'sha256', false], ['SSHA256', 'sha256', true], ['SHA512', 'sha512', false], ['SSHA512', 'sha512', true]]);
  const pw = password();
  const salt = salted ? bytes(4 + Math.floor(rand() * 5)) : Buffer.alloc(0);
  const d = crypto.createHash(digest).update(Buffer.concat([Buffer.from(pw), salt])).digest();
  const make = (dd) => ({ algorithm: 'ldap', hash: { value: `{${scheme}}` + Buffer.concat([dd, salt]).toString('base64') } });
  const bad = Buffer.from(d); bad[3] ^= 4;
  return { descriptor: make(d), wrong: make(bad), pw };
}

test('digests, HMAC, PBKDF2, scrypt and LDAP values made by node:crypto verify; one wrong byte never does', () => {
  const makers = [digestCase, hmacCase, pbkdf2Case, scryptCase, ldapCase];
  let n = 0;
  for (let i = 0; i < 300; i++) {
    const c = makers[i % makers.length]();
    assert.equal(verify(c.descriptor, c.pw), 'match', `seed ${SEED} case ${i}: ${JSON.stringify(c.descriptor)}`);
    assert.equal(verify(c.wrong, c.pw), 'mismatch', `seed ${SEED} case ${i} (wrong byte)`);
    assert.equal(verify(c.descriptor, c.pw + 'x'), 'mismatch', `seed ${SEED} case ${i} (wrong password)`);
    n++;
  }
  assert.equal(n, 300);
});

test('bcrypt hashes from bcryptjs and the native bcrypt package verify; one wrong byte never does', () => {
  for (let i = 0; i < 40; i++) {
    const pw = password();
    const hash = i % 2 ? bcryptjs.hashSync(pw, 4) : bcryptNative.hashSync(pw, 4);
    const value = i % 3 === 0 ? hash.replace('$2b$', '$2y$') : i % 3 === 1 ? hash.replace('$2b$', '$2a$') : hash;
    assert.equal(verify({ algorithm: 'bcrypt', hash: { value } }, pw), 'match', value);
    // Flip one bit of one digest character within bcrypt's alphabet (keeping it canonical).
    const alphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    const at = 29 + Math.floor(rand() * 30);
    const swapped = value.slice(0, at) + alphabet[(alphabet.indexOf(value[at]) + 4) % 64] + value.slice(at + 1);
    assert.notEqual(verify({ algorithm: 'bcrypt', hash: { value: swapped } }, pw), 'match', swapped);
    assert.equal(verify({ algorithm: 'bcrypt', hash: { value } }, pw + '!'), 'mismatch');
  }
});

test('argon2d, argon2i and argon2id strings from the argon2 package verify; one wrong byte never does', async () => {
  for (let i = 0; i < 12; i++) {
    const pw = password();
    const type = [argon2.argon2d, argon2.argon2i, argon2.argon2id][i % 3];
    const value = await argon2.hash(pw, { type, memoryCost: 256 + 64 * (i % 4), timeCost: 1 + (i % 3), parallelism: 1 + (i % 2), salt: bytes(16) });
    assert.equal(verify({ algorithm: 'argon2', hash: { value } }, pw), 'match', value);
    const parts = value.split('$');
    const digest = Buffer.from(parts[5], 'base64');
    digest[i % digest.length] ^= 0x10;
    parts[5] = digest.toString('base64').replace(/=+$/, '');
    assert.equal(verify({ algorithm: 'argon2', hash: { value: parts.join('$') } }, pw), 'mismatch');
  }
});

test('the built login script verifies every algorithm, with node:crypto doing the digests', async () => {
  const made = [digestCase(), hmacCase(), pbkdf2Case(), scryptCase(), ldapCase()];
  made.push({ descriptor: { algorithm: 'bcrypt', hash: { value: bcryptjs.hashSync('bc-pass', 4) } }, pw: 'bc-pass' });
  const a2 = await argon2.hash('a2-pass', { type: argon2.argon2id, memoryCost: 256, timeCost: 1, parallelism: 1 });
  made.push({ descriptor: { algorithm: 'argon2', hash: { value: a2 } }, pw: 'a2-pass' });
  made.push({ descriptor: { algorithm: 'md4', hash: { value: '8846f7eaee8fb117ad06bdd830b7586c', encoding: 'hex' }, password: { encoding: 'utf16le' } }, pw: 'password' });
  made.push({ descriptor: { algorithm: 'pbkdf2', hash: { value: '$pbkdf2-md4$i=2,l=16$c2FsdA$' + '0'.repeat(21) } }, pw: 'never', broken: true });
  const accounts = made.map((c, i) => ({ id: `a${i}`, email: `user${i}@example.com`, password: c.descriptor, created_at: '2020-01-01T00:00:00Z' }));
  const server = await h.productServer('legacy', accounts);
  const configuration = { TRICKLE_PRODUCTS: JSON.stringify([{ name: 'legacy', url: server.url, token: server.token }]) };
  try {
    const ctr = h.container({ configuration });
    const login = h.compileScript('database-connections/trickle/login.js', ctr);
    for (let i = 0; i < made.length; i++) {
      const c = made[i];
      const ok = await h.invoke(login, [`user${i}@example.com`, c.pw]);
      assert.equal(ok.calls, 1);
      if (c.broken) {
        assert.ok(ok.args[0] instanceof h.WrongUsernameOrPasswordError, `case ${i}`);
        continue;
      }
      assert.equal(ok.args[0], null, `case ${i} ${JSON.stringify(c.descriptor)}: ${ok.args[0] && ok.args[0].message}`);
      const bad = await h.invoke(login, [`user${i}@example.com`, c.pw + 'x']);
      assert.ok(bad.args[0] instanceof h.WrongUsernameOrPasswordError, `case ${i} wrong password`);
    }
    assert.ok(!ctr.logs.join('\n').includes('bc-pass'), 'no password in the log');
  } finally {
    await server.close();
  }
});

test('the forced-reset hash: importable bcrypt (cost 10), one per run, matched by no password', () => {
  const secret = crypto.randomBytes(32).toString('hex');
  const r = core.call('forced_reset_hash', { secret, salt: crypto.randomBytes(16).toString('hex') });
  assert.equal(r.outcome, 'ok');
  assert.match(r.hash, /^\$2b\$10\$[./A-Za-z0-9]{53}$/);
  assert.equal(bcryptjs.getRounds(r.hash), 10);
  for (const pw of ['', 'password', secret.slice(0, 63)]) assert.equal(bcryptjs.compareSync(pw, r.hash), false);
  assert.equal(core.call('forced_reset_hash', { secret: '00'.repeat(32), salt: '11'.repeat(16) }).outcome, 'invalid');
  assert.equal(core.call('forced_reset_hash', { secret: 'zz', salt: '11'.repeat(16) }).error.code, 'input.invalid_value');
});
