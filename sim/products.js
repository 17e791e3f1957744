// A simulated legacy product: its own SQLite database and the two endpoints of
// docs/product-api.md, behind a bearer token. It can be made slow or down at run time.
'use strict';
const Database = require('better-sqlite3');
const Fastify = require('fastify');
const { FORMATS } = require('./seed');

const SCHEMA = `
CREATE TABLE IF NOT EXISTS accounts (
  id TEXT PRIMARY KEY, email TEXT NOT NULL, email_norm TEXT NOT NULL, email_verified INTEGER NOT NULL DEFAULT 0,
  name TEXT, given_name TEXT, family_name TEXT, created_at TEXT, password_hash TEXT, password_salt TEXT,
  totp_secret TEXT, person_id TEXT, auth0_user_id TEXT, auth0_updated_at TEXT);
CREATE INDEX IF NOT EXISTS accounts_email ON accounts(email_norm);
CREATE TABLE IF NOT EXISTS account_identities (
  account_id TEXT NOT NULL, provider TEXT NOT NULL, subject TEXT NOT NULL, PRIMARY KEY (provider, subject, account_id));
CREATE INDEX IF NOT EXISTS account_identities_account ON account_identities(account_id);`;

// A provider is named by its Auth0 connection strategy; a subject is the provider's own `sub`.
const PROVIDER_RE = /^[a-z0-9][a-z0-9-]{0,63}$/;
const SUBJECT_MAX = 255;

const norm = (e) => String(e || '').trim().toLowerCase();

/** Opens (creating if needed) a product database and loads `rows` into it when it is empty. */
function openDatabase(file, rows = []) {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(SCHEMA);
  if (db.prepare('SELECT COUNT(*) AS n FROM accounts').get().n === 0 && rows.length) {
    const insert = db.prepare(`INSERT INTO accounts (id, email, email_norm, email_verified, name, given_name, family_name, created_at, password_hash, password_salt, totp_secret)
      VALUES (@id, @email, @email_norm, @email_verified, @name, @given_name, @family_name, @created_at, @password_hash, @password_salt, @totp_secret)`);
    const link = db.prepare('INSERT OR IGNORE INTO account_identities (account_id, provider, subject) VALUES (?, ?, ?)');
    db.transaction((list) => {
      for (const { identities, ...r } of list) {
        insert.run({ ...r, email_norm: norm(r.email) });
        for (const i of identities || []) link.run(r.id, i.provider, i.subject);
      }
    })(rows);
  }
  return db;
}

/** Starts a product service. Returns `{name, url, token, db, setMode, stats, close}`. */
async function startProduct(name, file, rows, { token = `${name}-token-${Math.random().toString(36).slice(2)}`, port = 0 } = {}) {
  const db = openDatabase(file, rows);
  const format = FORMATS[name];
  const state = { mode: 'up', delayMs: 0, lookups: 0, writes: 0 };
  const app = Fastify({ logger: false });
  const byEmail = db.prepare('SELECT * FROM accounts WHERE email_norm = ?');
  const byId = db.prepare('SELECT id, auth0_user_id FROM accounts WHERE id = ?');
  const setId = db.prepare('UPDATE accounts SET auth0_user_id = ?, auth0_updated_at = ? WHERE id = ?');

  app.addHook('onRequest', async (req, reply) => {
    if (req.url.startsWith('/_control')) return;
    if (state.mode === 'down') return reply.code(503).send({ error: 'service unavailable' });
    if (state.mode === 'hang') return new Promise(() => {}); // never answers
    if (state.delayMs) await new Promise((r) => setTimeout(r, state.delayMs));
    if (req.headers.authorization !== `Bearer ${token}`) return reply.code(401).send({ error: 'unauthorized' });
  });
  const byIdentity = db.prepare('SELECT a.* FROM accounts a JOIN account_identities i ON i.account_id = a.id WHERE i.provider = ? AND i.subject = ? ORDER BY a.id');
  const identitiesOf = db.prepare('SELECT provider, subject FROM account_identities WHERE account_id = ? ORDER BY provider, subject');
  const shape = (row) => ({
    id: row.id, email: row.email, email_verified: !!row.email_verified, name: row.name, given_name: row.given_name,
    family_name: row.family_name, created_at: row.created_at, person_id: row.person_id || undefined,
    totp_secret: row.totp_secret || undefined, password: row.password_hash ? format.descriptor(row) : null,
    identities: identitiesOf.all(row.id),
    // The Auth0 id trickle told this account, as the product contract says.
    auth0_user_id: row.auth0_user_id || undefined
  });
  const badQuery = (reply, error, message) => reply.code(400).send({ error, message });
  // One look-up per request: by address, or by provider and subject (exact, no folding).
  app.get('/trickle/accounts', async (req, reply) => {
    const q = req.query || {};
    const given = (k) => q[k] !== undefined;
    for (const k of ['email', 'provider', 'subject']) {
      if (given(k) && typeof q[k] !== 'string') return badQuery(reply, 'query.repeated', `${k} must be given once`);
    }
    if (given('email') && (given('provider') || given('subject'))) return badQuery(reply, 'query.ambiguous', 'look up by email, or by provider and subject, not both');
    if (given('provider') || given('subject')) {
      if (!given('provider') || !q.provider) return badQuery(reply, 'query.provider_required', 'provider is required with subject');
      if (!given('subject') || !q.subject) return badQuery(reply, 'query.subject_required', 'subject is required with provider');
      if (!PROVIDER_RE.test(q.provider)) return badQuery(reply, 'query.provider_invalid', 'provider must be a connection strategy such as google-oauth2');
      if (q.subject.length > SUBJECT_MAX) return badQuery(reply, 'query.subject_invalid', `subject must be at most ${SUBJECT_MAX} characters`);
      state.lookups++;
      return { accounts: byIdentity.all(q.provider, q.subject).map(shape) };
    }
    const email = q.email;
    if (typeof email !== 'string' || !email) return badQuery(reply, 'query.email_required', 'email is required (or provider and subject)');
    state.lookups++;
    return { accounts: byEmail.all(norm(email)).map(shape) };
  });
  app.put('/trickle/accounts/:id/auth0-id', async (req, reply) => {
    // "readonly": look-ups work, writes fail (an outage of the product's write path).
    if (state.mode === 'readonly') return reply.code(503).send({ error: 'writes unavailable' });
    const id = req.params.id;
    const value = req.body && req.body.auth0_user_id;
    if (typeof value !== 'string' || !/^[a-z0-9-]+\|[!-~]+$/.test(value) || value.length > 255) return reply.code(400).send({ error: 'auth0_user_id must be an Auth0 user id (provider|id)' });
    const row = byId.get(id);
    if (!row) return reply.code(404).send({ error: 'no such account' });
    // Compare and set: another user's id stays unless the request names it as the one to replace.
    const replace = req.body && req.body.replace;
    if (row.auth0_user_id && row.auth0_user_id !== value && row.auth0_user_id !== replace) {
      return reply.code(409).send({ error: 'held by another user', auth0_user_id: row.auth0_user_id });
    }
    setId.run(value, new Date().toISOString(), id);
    state.writes++;
    return reply.code(204).send();
  });
  // Withdrawal: the id is cleared only when it is the one named (idempotent, never someone else's).
  app.delete('/trickle/accounts/:id/auth0-id', async (req, reply) => {
    if (state.mode === 'readonly') return reply.code(503).send({ error: 'writes unavailable' });
    const value = req.body && req.body.auth0_user_id;
    if (typeof value !== 'string' || !/^[a-z0-9-]+\|[!-~]+$/.test(value) || value.length > 255) return reply.code(400).send({ error: 'auth0_user_id must be an Auth0 user id (provider|id)' });
    const row = byId.get(req.params.id);
    if (!row) return reply.code(404).send({ error: 'no such account' });
    if (row.auth0_user_id === value) setId.run(null, new Date().toISOString(), req.params.id);
    state.writes++;
    return reply.code(204).send();
  });
  app.post('/_control', async (req) => {
    const body = req.body || {};
    if (['up', 'down', 'hang', 'slow', 'readonly'].includes(body.mode)) state.mode = body.mode === 'slow' ? 'up' : body.mode;
    if (body.mode === 'slow') state.delayMs = Number(body.delayMs) || 1500;
    if (body.mode === 'up') state.delayMs = 0;
    return { mode: state.mode, delayMs: state.delayMs };
  });
  await app.listen({ port, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${app.server.address().port}`;
  return {
    name, url, token, db, format: format.label,
    setMode: (mode, delayMs) => { state.mode = mode === 'slow' ? 'up' : mode; state.delayMs = mode === 'slow' ? delayMs || 1500 : 0; },
    stats: () => {
      const c = db.prepare('SELECT COUNT(*) AS accounts, COUNT(auth0_user_id) AS linked FROM accounts').get();
      return { ...c, mode: state.mode, delayMs: state.delayMs, lookups: state.lookups, writes: state.writes };
    },
    close: async () => { await app.close(); db.close(); }
  };
}

module.exports = { startProduct, openDatabase };
