// The merge service's state: SQLite by default (better-sqlite3), MySQL/MariaDB by URL (mysql2).
// Every method is async so both backends share one interface. Link tokens are stored only as
// SHA-256 hashes.
'use strict';

const TABLES = {
  sessions: 'id VARCHAR(64) PRIMARY KEY, browser VARCHAR(64) NOT NULL, sub VARCHAR(255) NOT NULL, email VARCHAR(320), products TEXT, unproven TEXT, jti VARCHAR(128) NOT NULL, state VARCHAR(512) NOT NULL, csrf VARCHAR(64) NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL',
  progress: 'sub VARCHAR(255) PRIMARY KEY, inbox_proven_at BIGINT, password_set_at BIGINT, updated_at BIGINT NOT NULL',
  links: 'hash VARCHAR(64) PRIMARY KEY, sub VARCHAR(255) NOT NULL, browser VARCHAR(64) NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, used_at BIGINT',
  mails: 'sub VARCHAR(255) NOT NULL, ip VARCHAR(64) NOT NULL, at BIGINT NOT NULL'
};

/** Opens the store named by `url`: `sqlite:<path>` (or `sqlite::memory:`), or `mysql://…`. */
async function openStore(url) {
  if (/^mysql:\/\//.test(url)) return openMysql(url);
  const file = url.replace(/^sqlite:/, '') || ':memory:';
  const Database = require('better-sqlite3');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  for (const [name, cols] of Object.entries(TABLES)) db.exec(`CREATE TABLE IF NOT EXISTS merge_${name} (${cols})`);
  db.exec('CREATE INDEX IF NOT EXISTS merge_mails_at ON merge_mails(at)');
  const q = (sql) => db.prepare(sql.replace(/\?\?/g, '?'));
  return wrap({
    run: async (sql, params) => { q(sql).run(...params); },
    get: async (sql, params) => q(sql).get(...params),
    upsertProgress: async (sub, field, value, now) => {
      q(`INSERT INTO merge_progress (sub, ${field}, updated_at) VALUES (?, ?, ?) ON CONFLICT(sub) DO UPDATE SET ${field} = excluded.${field}, updated_at = excluded.updated_at`).run(sub, value, now);
    },
    close: async () => db.close()
  });
}

async function openMysql(url) {
  const mysql = require('mysql2/promise');
  const pool = mysql.createPool({ uri: url, connectionLimit: 5 });
  for (const [name, cols] of Object.entries(TABLES)) await pool.query(`CREATE TABLE IF NOT EXISTS merge_${name} (${cols}) CHARACTER SET utf8mb4`);
  return wrap({
    run: async (sql, params) => { await pool.execute(sql, params); },
    get: async (sql, params) => { const [rows] = await pool.execute(sql, params); return rows[0]; },
    upsertProgress: async (sub, field, value, now) => {
      await pool.execute(`INSERT INTO merge_progress (sub, ${field}, updated_at) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE ${field} = VALUES(${field}), updated_at = VALUES(updated_at)`, [sub, value, now]);
    },
    close: () => pool.end()
  });
}

function wrap(db) {
  const json = (s) => { try { return JSON.parse(s); } catch (_) { return []; } };
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
    async endSession(id) { await db.run('DELETE FROM merge_sessions WHERE id = ?', [id]); },
    async progress(sub) {
      const row = await db.get('SELECT * FROM merge_progress WHERE sub = ?', [sub]);
      return row ? { inbox_proven_at: row.inbox_proven_at == null ? null : Number(row.inbox_proven_at), password_set_at: row.password_set_at == null ? null : Number(row.password_set_at) } : { inbox_proven_at: null, password_set_at: null };
    },
    async markInboxProven(sub, now) { await db.upsertProgress(sub, 'inbox_proven_at', now, now); },
    async markPasswordSet(sub, now) { await db.upsertProgress(sub, 'password_set_at', now, now); },
    async clearProgress(sub) { await db.run('DELETE FROM merge_progress WHERE sub = ?', [sub]); },
    async createLink(l) {
      await db.run('INSERT INTO merge_links (hash, sub, browser, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, NULL)', [l.hash, l.sub, l.browser, l.created_at, l.expires_at]);
    },
    async link(hash) {
      const row = await db.get('SELECT * FROM merge_links WHERE hash = ?', [hash]);
      return row ? { ...row, expires_at: Number(row.expires_at), used_at: row.used_at == null ? null : Number(row.used_at) } : null;
    },
    /** Marks a link used; false when it was already used (single use, even under a race). */
    async useLink(hash, now) {
      const before = await db.get('SELECT used_at FROM merge_links WHERE hash = ?', [hash]);
      if (!before || before.used_at != null) return false;
      await db.run('UPDATE merge_links SET used_at = ? WHERE hash = ? AND used_at IS NULL', [now, hash]);
      const after = await db.get('SELECT used_at FROM merge_links WHERE hash = ?', [hash]);
      return after && Number(after.used_at) === now;
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
