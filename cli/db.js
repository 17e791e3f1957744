// One small interface over the databases trickle reads and writes: SQLite (better-sqlite3),
// MySQL/MariaDB (mysql2) and PostgreSQL (pg), chosen by URL. Queries use `?` placeholders.
'use strict';

/**
 * Creates `file` readable by its owner only when it does not exist yet (SQLite then makes its
 * -wal and -shm files with the same mode): trickle's state, the merge service's sessions and the
 * audit hold tokens and people's addresses. An existing file keeps the mode its owner gave it.
 */
function createOwnerOnly(file) {
  if (!file || file === ':memory:') return;
  const fs = require('fs');
  try {
    fs.closeSync(fs.openSync(file, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o600));
  } catch (e) {
    if (e.code !== 'EEXIST') throw e;
  }
}

/** Opens `sqlite:<file>`, `mysql://…` or `postgres://…`; `connections` bounds a server's pool. */
async function openDb(url, { connections = 4 } = {}) {
  if (/^sqlite:/.test(url)) {
    const Database = require('better-sqlite3');
    createOwnerOnly(url.slice('sqlite:'.length));
    const db = new Database(url.slice('sqlite:'.length));
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 10000');
    return {
      kind: 'sqlite',
      all: async (sql, params = []) => db.prepare(sql).all(...params),
      run: async (sql, params = []) => { const r = db.prepare(sql).run(...params); return { changes: r.changes }; },
      exec: async (sql) => db.exec(sql),
      /** Runs `fn` in an exclusive transaction (other writers wait). */
      transaction: async (fn) => {
        db.exec('BEGIN IMMEDIATE');
        try { const r = await fn(); db.exec('COMMIT'); return r; } catch (e) { db.exec('ROLLBACK'); throw e; }
      },
      close: async () => db.close()
    };
  }
  if (/^mysql:\/\//.test(url)) {
    const mysql = require('mysql2/promise');
    const pool = mysql.createPool({ uri: url, connectionLimit: connections });
    return {
      kind: 'mysql',
      all: async (sql, params = []) => (await pool.query(sql, params))[0],
      run: async (sql, params = []) => ({ changes: (await pool.query(sql, params))[0].affectedRows }),
      exec: async (sql) => { for (const s of sql.split(';').map((x) => x.trim()).filter(Boolean)) await pool.query(s); },
      transaction: async (fn) => {
        const conn = await pool.getConnection();
        try {
          await conn.beginTransaction();
          const tx = { all: async (s, p = []) => (await conn.query(s, p))[0], run: async (s, p = []) => ({ changes: (await conn.query(s, p))[0].affectedRows }) };
          const r = await fn(tx);
          await conn.commit();
          return r;
        } catch (e) {
          await conn.rollback();
          throw e;
        } finally {
          conn.release();
        }
      },
      close: () => pool.end()
    };
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    const { Pool } = require('pg');
    const pool = new Pool({ connectionString: url, max: connections });
    const numbered = (sql) => { let i = 0; return sql.replace(/\?/g, () => `$${++i}`); };
    return {
      kind: 'postgres',
      all: async (sql, params = []) => (await pool.query(numbered(sql), params)).rows,
      run: async (sql, params = []) => ({ changes: (await pool.query(numbered(sql), params)).rowCount }),
      exec: async (sql) => { await pool.query(sql); },
      transaction: async (fn) => {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          const tx = { all: async (s, p = []) => (await client.query(numbered(s), p)).rows, run: async (s, p = []) => ({ changes: (await client.query(numbered(s), p)).rowCount }) };
          const r = await fn(tx);
          await client.query('COMMIT');
          return r;
        } catch (e) {
          await client.query('ROLLBACK');
          throw e;
        } finally {
          client.release();
        }
      },
      close: () => pool.end()
    };
  }
  throw new Error(`unsupported database URL ${JSON.stringify(String(url).replace(/\/\/[^@/]*@/, '//…@'))}: use sqlite:, mysql:// or postgres://`);
}

/**
 * Creates the database a URL names when it does not exist yet (the state database): the
 * directory of a SQLite file, or `CREATE DATABASE` on a MySQL/MariaDB or PostgreSQL server.
 * Returns true when it created one.
 */
async function ensureDatabase(url) {
  if (/^sqlite:/.test(url)) {
    const path = require('path');
    const fs = require('fs');
    const file = url.slice('sqlite:'.length);
    if (file === ':memory:' || fs.existsSync(file)) return false;
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
    return true;
  }
  const u = new URL(url);
  const name = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!name) return false;
  if (!/^[A-Za-z0-9_$-]{1,64}$/.test(name)) throw new Error(`cannot create the database ${JSON.stringify(name)}: use letters, digits, _ and - only`);
  if (/^mysql:/.test(url)) {
    const mysql = require('mysql2/promise');
    u.pathname = '/';
    const conn = await mysql.createConnection({ uri: u.toString() });
    try {
      const r = await conn.query('CREATE DATABASE IF NOT EXISTS `' + name + '`');
      return r[0].warningStatus === 0;
    } finally {
      await conn.end();
    }
  }
  const { Client } = require('pg');
  u.pathname = '/postgres';
  const client = new Client({ connectionString: u.toString() });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return false;
    await client.query(`CREATE DATABASE "${name}"`);
    return true;
  } finally {
    await client.end();
  }
}

module.exports = { openDb, ensureDatabase, createOwnerOnly };
