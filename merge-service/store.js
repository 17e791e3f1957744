// The merge service's state: SQLite by default, MySQL/MariaDB or PostgreSQL by URL (lib/db.js
// writes each one's SQL). Link tokens are stored only as SHA-256 hashes.
//
// Schema changes add tables, never columns: `CREATE TABLE IF NOT EXISTS` leaves a table of an
// older release as it was, so a new column would silently be missing there. `merge_progress`
// and `merge_links` of older releases are no longer read: a proof recorded per Auth0 user (not
// per login) or a link without its session must not count after an upgrade.
'use strict';
const { openDb, dialectOf } = require('../lib/db');

const TABLES = {
  sessions: 'id VARCHAR(64) PRIMARY KEY, browser VARCHAR(64) NOT NULL, sub VARCHAR(255) NOT NULL, email VARCHAR(320), products TEXT, unproven TEXT, jti VARCHAR(128) NOT NULL, state VARCHAR(512) NOT NULL, csrf VARCHAR(64) NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL',
  // The first browser that opened a session token (by its jti), and the one merge session it got.
  tokens: 'jti VARCHAR(128) PRIMARY KEY, browser VARCHAR(64) NOT NULL, session_id VARCHAR(64) NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL',
  // What one merge session (one login, one browser) has proven: never shared with another session.
  proofs: 'session_id VARCHAR(64) PRIMARY KEY, sub VARCHAR(255) NOT NULL, browser VARCHAR(64) NOT NULL, inbox_proven_at BIGINT, password_set_at BIGINT, updated_at BIGINT NOT NULL',
  // Mailed links: the session and browser that asked; a newer link from that browser retires older ones.
  mail_links: 'hash VARCHAR(64) PRIMARY KEY, session_id VARCHAR(64) NOT NULL, sub VARCHAR(255) NOT NULL, browser VARCHAR(64) NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, used_at BIGINT, superseded_at BIGINT',
  mails: 'sub VARCHAR(255) NOT NULL, ip VARCHAR(64) NOT NULL, at BIGINT NOT NULL',
  // The accounts (`product:id`) a session may prove by their own legacy password (the session
  // token's `passwords`), the tries at each, and when one was proven.
  password_offers: 'session_id VARCHAR(64) NOT NULL, account VARCHAR(255) NOT NULL, attempts INT NOT NULL DEFAULT 0, proven_at BIGINT, PRIMARY KEY (session_id, account)'
};

// The indexes the mail limits and link retirement read by.
const INDEXES = { mails: { merge_mails_at: ['at'] }, mail_links: { merge_mail_links_sub: ['sub', 'browser'] } };

/** Opens the store named by `url`: `sqlite:<path>` (or a bare path; `sqlite::memory:`), `mysql://…` or `postgres://…`. */
async function openStore(url) {
  // Sessions, mail links and proofs: a SQLite file is readable by the service's owner only (lib/db.js).
  const db = await openDb(dialectOf(url) ? url : `sqlite:${url}`, { connections: 5 });
  try {
    for (const [name, cols] of Object.entries(TABLES)) await db.createTable(`merge_${name}`, cols, { text: 'utf8', indexes: INDEXES[name] });
  } catch (e) {
    await db.close().catch(() => {});
    throw e;
  }
  return wrap(db);
}

function wrap(db) {
  const json = (s) => { try { return JSON.parse(s); } catch (_) { return []; } };
  const num = (v) => (v == null ? null : Number(v));
  const changed = async (sql, params) => (await db.run(sql, params)).changes;
  /** Records what a session proved (`field`, at `now`), creating its row on the first proof. */
  const prove = (s, field, now) => db.upsert('merge_proofs', { session_id: s.id, sub: s.sub, browser: s.browser, [field]: now, updated_at: now }, 'session_id', { update: [field, 'updated_at'] });
  return {
    async createSession(s) {
      await db.run('INSERT INTO merge_sessions (id, browser, sub, email, products, unproven, jti, state, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [s.id, s.browser, s.sub, s.email, JSON.stringify(s.products), JSON.stringify(s.unproven), s.jti, s.state, s.csrf, s.created_at, s.expires_at]);
    },
    async session(id) {
      const row = await db.get('SELECT * FROM merge_sessions WHERE id = ?', [String(id || '')]);
      if (!row) return null;
      return { ...row, created_at: Number(row.created_at), expires_at: Number(row.expires_at), products: json(row.products), unproven: json(row.unproven) };
    },
    /** How many merge sessions a session token (by its jti) has opened. */
    async sessionsOfJti(jti) {
      const row = await db.get('SELECT COUNT(*) AS n FROM merge_sessions WHERE jti = ?', [String(jti)]);
      return Number(row.n);
    },
    /** Ends a session and forgets what it proved. */
    async endSession(id) {
      await db.run('DELETE FROM merge_sessions WHERE id = ?', [id]);
      await db.run('DELETE FROM merge_proofs WHERE session_id = ?', [id]);
      await db.run('DELETE FROM merge_password_offers WHERE session_id = ?', [id]);
    },
    /** Records the accounts this session may prove by password (once, when it starts). */
    async offerPasswords(sessionId, accounts) {
      for (const a of accounts) await db.insertUnlessPresent('merge_password_offers', { session_id: sessionId, account: a, attempts: 0 });
    },
    /** `[{account, attempts, proven_at}]` of a session. */
    async passwordOffers(sessionId) {
      const rows = await db.all('SELECT account, attempts, proven_at FROM merge_password_offers WHERE session_id = ? ORDER BY account', [String(sessionId)]);
      return rows.map((r) => ({ account: r.account, attempts: Number(r.attempts), proven_at: num(r.proven_at) }));
    },
    /**
     * Takes one try at an offered, unproven account: false when it is not offered, already proven
     * or out of tries (`max`); the count is raised before the password is checked, so parallel
     * requests cannot exceed it.
     */
    async takePasswordTry(sessionId, account, max) {
      return (await changed('UPDATE merge_password_offers SET attempts = attempts + 1 WHERE session_id = ? AND account = ? AND proven_at IS NULL AND attempts < ?', [sessionId, account, max])) === 1;
    },
    async markAccountProven(sessionId, account, now) {
      await db.run('UPDATE merge_password_offers SET proven_at = ? WHERE session_id = ? AND account = ?', [now, sessionId, account]);
    },
    /**
     * Binds a session token's jti to the browser that opened it first, with the one session it
     * gets. Returns the binding that holds afterwards: this one when it was the first, else the
     * earlier one (exactly one wins a race: the jti is the primary key).
     */
    async claimToken(t) {
      await db.insertUnlessPresent('merge_tokens', { jti: t.jti, browser: t.browser, session_id: t.session_id, created_at: t.created_at, expires_at: t.expires_at });
      const row = await db.get('SELECT * FROM merge_tokens WHERE jti = ?', [t.jti]);
      return row && { jti: row.jti, browser: row.browser, session_id: row.session_id, created_at: Number(row.created_at), expires_at: Number(row.expires_at) };
    },
    /** What this session has proven: `{inbox_proven_at, password_set_at}` (null when not). */
    async proof(sessionId) {
      const row = await db.get('SELECT * FROM merge_proofs WHERE session_id = ?', [String(sessionId)]);
      return { inbox_proven_at: num(row && row.inbox_proven_at), password_set_at: num(row && row.password_set_at) };
    },
    async markInboxProven(s, now) { await prove(s, 'inbox_proven_at', now); },
    async markPasswordSet(s, now) { await prove(s, 'password_set_at', now); },
    /** Stores a new link and retires every earlier unused link of the same person in the same browser. */
    async createLink(l) {
      await db.run('UPDATE merge_mail_links SET superseded_at = ? WHERE sub = ? AND browser = ? AND used_at IS NULL AND superseded_at IS NULL', [l.created_at, l.sub, l.browser]);
      await db.run('INSERT INTO merge_mail_links (hash, session_id, sub, browser, created_at, expires_at, used_at, superseded_at) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)', [l.hash, l.session_id, l.sub, l.browser, l.created_at, l.expires_at]);
    },
    /** Retires one link (its mail could not be sent). */
    async retireLink(hash, now) { await db.run('UPDATE merge_mail_links SET superseded_at = ? WHERE hash = ? AND superseded_at IS NULL', [now, hash]); },
    async link(hash) {
      const row = await db.get('SELECT * FROM merge_mail_links WHERE hash = ?', [hash]);
      return row ? { ...row, created_at: Number(row.created_at), expires_at: Number(row.expires_at), used_at: num(row.used_at), superseded_at: num(row.superseded_at) } : null;
    },
    /** Marks a link used; false when it was already used or retired (single use, even under a race). */
    async useLink(hash, now) {
      return (await changed('UPDATE merge_mail_links SET used_at = ? WHERE hash = ? AND used_at IS NULL AND superseded_at IS NULL', [now, hash])) === 1;
    },
    async recordMail(sub, ip, now) { await db.run('INSERT INTO merge_mails (sub, ip, at) VALUES (?, ?, ?)', [sub, ip, now]); },
    async mailsSince(column, value, since) {
      const row = await db.get(`SELECT COUNT(*) AS n FROM merge_mails WHERE ${column === 'ip' ? 'ip' : 'sub'} = ? AND at > ?`, [value, since]);
      return Number(row.n);
    },
    close: () => db.close()
  };
}

module.exports = { openStore };
