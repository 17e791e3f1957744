// The support audit: an append-only table of every fix support makes (who: the staff member's
// tenant user id, with the address beside it for reading; when, what, why, the ticket, the state
// before and after). Rows are only ever inserted: the database itself refuses
// UPDATE and DELETE (triggers), so neither this code nor anyone with the same connection can
// rewrite history. SQLite by default, MySQL/MariaDB by URL (lib/db.js writes each one's SQL).
'use strict';
const { openDb, ensureDatabase, dialectOf } = require('../lib/db');

class AuditError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

const COLUMNS = ['at', 'actor', 'actor_email', 'action', 'user_id', 'target', 'reason', 'ticket', 'outcome', 'before_state', 'after_state', 'detail'];

/** The audit's columns; `types` are the database's (lib/db.js). */
const auditColumns = (types) => `id ${types.id}, at VARCHAR(40) NOT NULL, actor VARCHAR(320) NOT NULL, actor_email VARCHAR(320), action VARCHAR(64) NOT NULL,
  user_id VARCHAR(191), target VARCHAR(191), reason TEXT NOT NULL, ticket VARCHAR(191), outcome VARCHAR(32) NOT NULL, before_state ${types.longText}, after_state ${types.longText}, detail TEXT`;

// Where the audit is kept: the databases the console's tests prove it append-only in (lib/db.js
// makes PostgreSQL's triggers too, but the console has not been run on PostgreSQL).
const AUDIT_DATABASES = ['sqlite', 'mysql'];

/**
 * Opens (creating if needed) the audit table at `url` (`sqlite:<file>` or `mysql://…`).
 * Returns `{append(entry), list({userId, limit}), sessions, close()}`: the audit can only be
 * appended to and read; `sessions` are the console's sign-ins, kept beside it.
 */
async function openAudit(url) {
  if (typeof url !== 'string' || !AUDIT_DATABASES.includes(dialectOf(url))) {
    throw new AuditError('audit.unsupported_database', 'the support audit needs sqlite:<file> or mysql://… (support.audit in trickle.json, or --audit)');
  }
  let db;
  try {
    await ensureDatabase(url);
    db = await openDb(url);
    await db.createTable('support_audit', auditColumns(db.types), { indexes: { support_audit_user: ['user_id'] } });
    // A table made before actor_email existed gains it (adding a column rewrites no row).
    await db.addColumn('support_audit', 'actor_email', 'VARCHAR(320)', { after: 'actor' });
    await db.appendOnly('support_audit');
  } catch (e) {
    if (db) await db.close().catch(() => {});
    if (e instanceof AuditError) throw e;
    throw new AuditError('audit.unavailable', `the support audit database cannot be opened: ${e.code || ''} ${e.message}`.replace(/\/\/[^@/]*@/g, '//…@'));
  }
  // The console's sign-ins, beside the audit (this table is not append-only: a session ends).
  // A session is live only while its row is: signing out, a blocked or deleted staff user, or its
  // expiry ends it on the server, whatever cookie a browser still holds.
  await db.createTable('support_sessions', 'sid VARCHAR(64) PRIMARY KEY, sub VARCHAR(320) NOT NULL, exp BIGINT NOT NULL', { indexes: { support_sessions_sub: ['sub'] } });
  const sessions = {
    /** Records a new session of `sub` until `exp` (ms). */
    open: (sid, sub, exp) => db.run('INSERT INTO support_sessions (sid, sub, exp) VALUES (?, ?, ?)', [sid, sub, exp]),
    /** True while the session was opened for `sub`, not ended and not expired. */
    async live(sid, sub, now = Date.now()) {
      if (typeof sid !== 'string' || !sid) return false;
      const [row] = await db.all('SELECT sub, exp FROM support_sessions WHERE sid = ?', [sid]);
      return !!row && row.sub === sub && Number(row.exp) > now;
    },
    /** Ends one session. */
    end: (sid) => db.run('DELETE FROM support_sessions WHERE sid = ?', [String(sid || '')]),
    /** Ends every session of `sub` (a staff user blocked, deleted or removed), and the expired ones. */
    endAll: (sub, now = Date.now()) => db.run('DELETE FROM support_sessions WHERE sub = ? OR exp <= ?', [sub, now])
  };
  const json = (v) => (v === undefined || v === null ? null : JSON.stringify(v));
  return {
    kind: db.kind,
    sessions,
    /** Appends one row ({actor, actorEmail?, action, userId, …}); resolves to its id. Every field is text; before/after are JSON. */
    async append(entry) {
      const row = {
        at: new Date().toISOString(), actor: entry.actor, actor_email: entry.actorEmail || null, action: entry.action, user_id: entry.userId || null, target: entry.target || null,
        reason: entry.reason, ticket: entry.ticket || null, outcome: entry.outcome, before_state: json(entry.before), after_state: json(entry.after), detail: entry.detail || null
      };
      if (!row.actor || !row.action || !row.reason || !row.outcome) throw new AuditError('audit.incomplete', 'an audit row needs actor, action, reason and outcome');
      await db.run(`INSERT INTO support_audit (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`, COLUMNS.map((c) => row[c]));
      const [last] = await db.all('SELECT MAX(id) AS id FROM support_audit WHERE actor = ? AND at = ?', [row.actor, row.at]);
      return last ? Number(last.id) : null;
    },
    /** The newest rows first (of one user when `userId` is given). */
    async list({ userId, limit = 100 } = {}) {
      const n = Math.max(1, Math.min(1000, Number(limit) || 100));
      const rows = userId
        ? await db.all(`SELECT * FROM support_audit WHERE user_id = ? ORDER BY id DESC LIMIT ${n}`, [userId])
        : await db.all(`SELECT * FROM support_audit ORDER BY id DESC LIMIT ${n}`);
      return rows.map((r) => ({ ...r, id: Number(r.id), before: r.before_state ? JSON.parse(r.before_state) : null, after: r.after_state ? JSON.parse(r.after_state) : null }));
    },
    close: () => db.close()
  };
}

module.exports = { openAudit, AuditError };
