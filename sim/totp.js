// Time-based one-time passwords as an authenticator app computes them: RFC 6238 over RFC 4226
// (HMAC-SHA1, dynamic truncation, 6 digits, 30-second steps), keys given in unpadded base32 as
// Auth0's `mfa_factors: [{totp: {secret}}]` carry them. The tests check it against otplib.
'use strict';
const crypto = require('crypto');

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const STEP_SECONDS = 30;
const DIGITS = 6;

/** Decodes RFC 4648 base32 (case-insensitive, padding and spaces ignored). Null when invalid. */
function base32Decode(text) {
  const clean = String(text == null ? '' : text).replace(/[\s=]/g, '').toUpperCase();
  if (!clean || /[^A-Z2-7]/.test(clean)) return null;
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of clean) {
    value = (value << 5) | ALPHABET.indexOf(ch);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return out.length ? Buffer.from(out) : null;
}

/** RFC 4226 HOTP of `key` (a Buffer) at `counter` (a non-negative integer): a 6-digit string. */
function hotp(key, counter) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = crypto.createHmac('sha1', key).update(msg).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(binary % 10 ** DIGITS).padStart(DIGITS, '0');
}

/** The time step (RFC 6238's T) of a time in milliseconds. */
const stepOf = (ms) => Math.floor(ms / 1000 / STEP_SECONDS);

/** The code an authenticator app shows for a base32 `secret` at `ms` (default now). */
function generate(secret, ms = Date.now()) {
  const key = base32Decode(secret);
  if (!key) throw new Error('the TOTP secret is not base32');
  return hotp(key, stepOf(ms));
}

/**
 * Checks a typed `code` against a base32 `secret`: the current step and `window` steps either
 * side (default 1: the clocks of a phone and a server drift). Returns the matching step, or null.
 * Every candidate is compared in constant time, so the answer does not leak which step matched.
 */
function verify(secret, code, { ms = Date.now(), window = 1 } = {}) {
  const key = base32Decode(secret);
  const typed = String(code == null ? '' : code).replace(/\s/g, '');
  if (!key || !/^\d{6}$/.test(typed)) return null;
  const now = stepOf(ms);
  let found = null;
  for (let step = now - window; step <= now + window; step++) {
    if (step < 0) continue;
    if (crypto.timingSafeEqual(Buffer.from(hotp(key, step)), Buffer.from(typed)) && found === null) found = step;
  }
  return found;
}

module.exports = { base32Decode, hotp, generate, verify, stepOf, STEP_SECONDS };
