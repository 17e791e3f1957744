// Seeds the three simulated products with people: a deterministic generator (same seed, same
// people) with configurable overlap, each product storing passwords in its own legacy format.
'use strict';
const crypto = require('crypto');
const bcryptjs = require('bcryptjs');
const { FORMATS: ADAPTERS } = require('../cli/products');

const PRODUCTS = ['paste', 'collect', 'transfer'];
const FIRST = ['ann', 'bob', 'chen', 'dana', 'emil', 'fatima', 'gus', 'hana', 'ivan', 'jo', 'kemal', 'lena', 'mo', 'nora', 'olu', 'pia', 'quinn', 'rosa', 'sami', 'tove', 'ugo', 'vera', 'wim', 'xia', 'yara', 'zeno'];
const LAST = ['lee', 'smith', 'garcia', 'müller', 'dubois', 'rossi', 'jansen', 'kowalski', 'silva', 'tanaka', 'okafor', 'nguyen', 'haddad', 'berg'];

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/**
 * How each product stores passwords, and how its trickle adapter turns a row into Auth0's
 * custom_password_hash descriptor.
 */
const FORMATS = {
  paste: {
    label: 'bcrypt',
    hash: (pw, r, opts) => ({ hash: bcryptjs.hashSync(pw, bcryptjs.genSaltSync(opts.bcryptCost)), salt: null }),
    adapter: 'bcrypt',
    descriptor: ADAPTERS.bcrypt
  },
  collect: {
    label: 'salted sha256',
    hash: (pw, r) => {
      const salt = crypto.randomBytes(8).toString('hex');
      return { hash: crypto.createHash('sha256').update(salt + pw).digest('hex'), salt };
    },
    adapter: 'sha256-salt-prefix',
    descriptor: ADAPTERS['sha256-salt-prefix']
  },
  transfer: {
    label: 'pbkdf2-sha256',
    hash: (pw, r, opts) => {
      const salt = crypto.randomBytes(12);
      const out = crypto.pbkdf2Sync(pw, salt, opts.pbkdf2Iterations, 32, 'sha256');
      const b64 = (b) => b.toString('base64').replace(/=+$/, '');
      return { hash: `$pbkdf2-sha256$i=${opts.pbkdf2Iterations},l=32$${b64(salt)}$${b64(out)}`, salt: null };
    },
    adapter: 'pbkdf2-phc',
    descriptor: ADAPTERS['pbkdf2-phc']
  }
};

/**
 * Generates `people` people. Returns `{people, accounts}`: `people` lists each person's email and
 * the password of each of their accounts (what the demo and tests type), `accounts[product]` the
 * rows each product stores.
 */
function generate({ people = 200, seed = 1, overlap = [0.7, 0.2, 0.1], bcryptCost = 4, pbkdf2Iterations = 1000 } = {}) {
  const r = rng(seed);
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const opts = { bcryptCost, pbkdf2Iterations };
  const out = { people: [], accounts: { paste: [], collect: [], transfer: [] } };
  const nextId = { paste: 1000, collect: 5000, transfer: 9000 };
  for (let i = 0; i < people; i++) {
    const first = pick(FIRST);
    const last = pick(LAST);
    const email = `${first}.${last}.${i}@example.com`;
    const x = r();
    const count = x < overlap[0] ? 1 : x < overlap[0] + overlap[1] ? 2 : 3;
    const products = [...PRODUCTS].sort(() => r() - 0.5).slice(0, count).sort((a, b) => PRODUCTS.indexOf(a) - PRODUCTS.indexOf(b));
    const person = { email, name: `${first[0].toUpperCase()}${first.slice(1)} ${last[0].toUpperCase()}${last.slice(1)}`, accounts: [] };
    for (const product of products) {
      const password = `${product}-${first}-${i}`;
      const stored = FORMATS[product].hash(password, r, opts);
      // Legacy data is messy: some addresses differ in case or carry stray spaces.
      const variant = r() < 0.15 ? email.toUpperCase() : r() < 0.1 ? ` ${email}` : email;
      const created = new Date(Date.UTC(2012 + Math.floor(r() * 12), Math.floor(r() * 12), 1 + Math.floor(r() * 28))).toISOString();
      const totp = r() < 0.1 ? Array.from({ length: 16 }, () => BASE32[Math.floor(r() * 32)]).join('') : null;
      const row = {
        id: `${product[0]}${nextId[product]++}`, email: variant, email_verified: r() < 0.8 ? 1 : 0, name: person.name,
        given_name: first, family_name: last, created_at: created, password_hash: stored.hash, password_salt: stored.salt, totp_secret: totp
      };
      out.accounts[product].push(row);
      person.accounts.push({ product, id: row.id, password });
      // A few people hold two accounts in one product (old duplicates).
      if (r() < 0.02) {
        const dup = { ...row, id: `${product[0]}${nextId[product]++}`, email: email.toLowerCase(), created_at: new Date(Date.parse(created) + 86400000).toISOString() };
        out.accounts[product].push(dup);
        person.accounts.push({ product, id: dup.id, password });
      }
    }
    out.people.push(person);
  }
  return out;
}

module.exports = { generate, FORMATS, PRODUCTS };
