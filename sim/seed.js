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

// --- social identities (docs/product-api.md: an account's `identities`) ---
// The providers are Auth0's connection strategies. Subjects are derived from the seed and the
// person's position by a hash, so the same seed gives the same subjects, and they are drawn from a
// random stream of their own: the password people (their addresses, passwords and products) are
// exactly those of a generator without social identities.
const PROVIDERS = ['google-oauth2', 'apple', 'sign-in-with-slack'];
const SLACK_TEAM = 'T0SIMCORP1';
const ATTACKER_TEAM = 'T0ATTACKR9';
const hashOf = (...parts) => crypto.createHash('sha256').update(parts.join('\n')).digest();
const digits = (buf, n) => Array.from(buf.subarray(0, n), (b) => String(b % 10)).join('');
const ALNUM = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const alnum = (buf, n) => Array.from(buf.subarray(0, n), (b) => ALNUM[b % 36]).join('');

/** A provider's stable subject for `key` under `seed`, in the provider's own format. */
function subjectFor(provider, seed, key) {
  const h = hashOf(provider, seed, key);
  if (provider === 'google-oauth2') return `1${digits(h, 20)}`; // 21 digits, as Google's `sub`
  if (provider === 'apple') return `00${digits(h, 4)}.${h.subarray(4, 20).toString('hex')}.${digits(h.subarray(20), 4)}`;
  return `U0${alnum(h, 9)}`; // Slack user ids (the OIDC `sub`)
}

/**
 * The account a person holds at a provider: what its sign-in page takes (`login`, `password`)
 * and the claims it asserts. `opts`: {workspace (a Google Workspace account: `hd`), relay (Apple private relay),
 * team (Slack team id), verified}.
 */
function providerAccount(provider, seed, key, person, opts = {}) {
  const sub = subjectFor(provider, seed, key);
  const h = hashOf('relay', provider, seed, key);
  const email = opts.relay ? `${alnum(h, 10).toLowerCase()}@privaterelay.appleid.com` : person.email;
  const [given, family] = String(person.name || '').split(' ');
  const claims = { email, email_verified: opts.verified !== false, name: person.name, given_name: given, family_name: family };
  if (provider === 'google-oauth2') {
    claims.picture = `https://lh3.googleusercontent.com/a/${sub}`;
    if (opts.workspace) claims.hd = email.split('@')[1]; // a Workspace account's address is at its domain
  }
  if (provider === 'apple') claims.is_private_email = !!opts.relay;
  if (provider === 'sign-in-with-slack') {
    claims['https://slack.com/user_id'] = sub;
    claims['https://slack.com/team_id'] = opts.team || SLACK_TEAM;
    claims['https://slack.com/team_name'] = opts.team === ATTACKER_TEAM ? 'Totally Legit Inc' : 'Example Corp';
    claims.picture = `https://avatars.slack-edge.com/${sub}_192.png`;
  }
  return { provider, sub, login: opts.login || email, password: `${provider}-pw-${key}`, claims };
}

/**
 * Gives people social identities (the products' `identities`): some password people get one on
 * an account (`share` of them), and `socialPeople` more people are added: social-only ones (an
 * account with no password), ones with a password in one product and a social identity in
 * another (password in paste, Slack in collect), and ones with two providers in two products.
 * Mutates `out`: rows gain `identities`, people gain `identities`, `out.socialPeople` and
 * `out.providerAccounts[provider]` (what the local identity providers hold) are filled.
 */
function addSocial(out, { seed, socialPeople, share, nextId, opts }) {
  const r = rng((seed ^ 0x50c1a1) >>> 0);
  const accountsByProvider = Object.fromEntries(PROVIDERS.map((p) => [p, []]));
  const link = (person, product, row, provider, key, extra = {}) => {
    const acct = providerAccount(provider, seed, key, person, extra);
    accountsByProvider[provider].push(acct);
    row.identities = [...(row.identities || []), { provider, subject: acct.sub }];
    person.identities = [...(person.identities || []), { provider, subject: acct.sub, product, id: row.id, login: acct.login, password: acct.password, email: acct.claims.email }];
    return acct;
  };
  const rowOf = (product, id) => out.accounts[product].find((x) => x.id === id);
  out.people.forEach((person, i) => {
    if (r() >= share) return;
    const provider = PROVIDERS[Math.floor(r() * PROVIDERS.length)];
    const a = person.accounts[Math.floor(r() * person.accounts.length)];
    const extra = provider === 'google-oauth2' ? { workspace: r() < 0.5 } : provider === 'apple' ? { relay: r() < 0.5 } : {};
    link(person, a.product, rowOf(a.product, a.id), provider, `p${i}`, extra);
  });
  out.socialPeople = [];
  const kinds = ['social-only', 'password-and-social', 'two-providers'];
  for (let j = 0; j < socialPeople; j++) {
    const kind = kinds[j % kinds.length];
    const first = FIRST[Math.floor(r() * FIRST.length)];
    const last = LAST[Math.floor(r() * LAST.length)];
    const person = { email: `${first}.${last}.s${j}@example.org`, name: `${first[0].toUpperCase()}${first.slice(1)} ${last[0].toUpperCase()}${last.slice(1)}`, kind, accounts: [] };
    const created = new Date(Date.UTC(2015 + (j % 9), j % 12, 1 + (j % 28))).toISOString();
    const addRow = (product, password) => {
      const stored = password ? FORMATS[product].hash(password, r, opts) : { hash: null, salt: null };
      const row = {
        id: `${product[0]}${nextId[product]++}`, email: person.email, email_verified: 1, name: person.name, given_name: first, family_name: last,
        created_at: created, password_hash: stored.hash, password_salt: stored.salt, totp_secret: null
      };
      out.accounts[product].push(row);
      person.accounts.push({ product, id: row.id, password: password || null });
      return row;
    };
    if (kind === 'social-only') {
      const provider = PROVIDERS[Math.floor(j / kinds.length) % PROVIDERS.length];
      const product = PRODUCTS[Math.floor(r() * PRODUCTS.length)];
      link(person, product, addRow(product, null), provider, `s${j}`, provider === 'google-oauth2' ? { workspace: true } : {});
    } else if (kind === 'password-and-social') {
      addRow('paste', `paste-${first}-s${j}`);
      link(person, 'collect', addRow('collect', null), 'sign-in-with-slack', `s${j}`);
    } else {
      link(person, 'paste', addRow('paste', null), 'google-oauth2', `s${j}`);
      link(person, 'transfer', addRow('transfer', null), 'apple', `s${j}`, { relay: true });
    }
    out.socialPeople.push(person);
  }
  out.providerAccounts = accountsByProvider;
}

/**
 * Accounts an attacker holds at the providers, each asserting `victimEmail`: a Google account
 * whose address was never verified, a Slack account in a workspace the attacker controls (Slack
 * lets a workspace's owner set members' addresses), and an Apple account behind a private relay
 * address. None of them is the victim's identity: their subjects are the attacker's.
 */
function attackerAccounts(victimEmail, seed = 1) {
  const person = { email: victimEmail, name: 'Mallory Attacker' };
  return [
    providerAccount('google-oauth2', seed, 'attacker', person, { verified: false, login: 'mallory@gmail.test' }),
    providerAccount('sign-in-with-slack', seed, 'attacker', person, { team: ATTACKER_TEAM, login: 'mallory@attacker.test' }),
    providerAccount('apple', seed, 'attacker', person, { relay: true, login: 'mallory@icloud.test' })
  ];
}

/**
 * Generates `people` people. Returns `{people, accounts, socialPeople, providerAccounts}`:
 * `people` lists each person's email and the password of each of their accounts (what the demo
 * and tests type) and, for some, `identities` (provider, subject, the product account holding it
 * and the provider sign-in `login`/`password`); `socialPeople` (`socialPeople` of them, none by
 * default) are people with social-only accounts (`password: null`) or identities spread over
 * products; `accounts[product]` the rows each product stores; `providerAccounts[provider]` the
 * accounts the local identity providers hold for all of them.
 */
function generate({ people = 200, seed = 1, overlap = [0.7, 0.2, 0.1], bcryptCost = 4, pbkdf2Iterations = 1000, socialShare = 0.2, socialPeople = 0 } = {}) {
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
  addSocial(out, { seed, socialPeople, share: socialShare, nextId, opts });
  return out;
}

module.exports = { generate, FORMATS, PRODUCTS, PROVIDERS, SLACK_TEAM, ATTACKER_TEAM, subjectFor, providerAccount, attackerAccounts };
