// Every database trickle reads and writes, behind one interface: SQLite (better-sqlite3),
// MySQL/MariaDB (mysql2) and PostgreSQL (pg), opened by URL. Queries use `?` placeholders.
// Whatever is written differently in the three lives here and nowhere else: identifier quoting,
// placeholders, insert unless present, upsert, text casts and byte order, temporary tables,
// joined updates, column types and table options, append-only tables, what the catalogue says
// (columns, collations, indexes), transactions and row locks. Callers say what they want and never
// ask which database it is. LIMIT n and row-value comparisons (`(a, b) > (?, ?)`, keyset paging)
// are written alike in the three, so nothing here stands for them.
//
// Names given to the SQL builders are used as written (trickle's own tables); quote a name that
// comes from a product's configuration with `quote` first.
'use strict';

/** 'sqlite', 'mysql' or 'postgres' for a URL this module opens; null for anything else. */
function dialectOf(url) {
  const s = String(url);
  if (/^sqlite:/.test(s)) return 'sqlite';
  if (/^mysql:\/\//.test(s)) return 'mysql';
  if (/^postgres(ql)?:\/\//.test(s)) return 'postgres';
  return null;
}

/** The file of a `sqlite:` URL (`sqlite:` alone is a database in memory). */
const fileOf = (url) => url.slice('sqlite:'.length) || ':memory:';

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

/** True when `url` names a database file that does not exist yet (a server is not asked). */
function fileMissing(url) {
  return dialectOf(url) === 'sqlite' && fileOf(url) !== ':memory:' && !require('fs').existsSync(fileOf(url));
}

const marks = (cols) => cols.map(() => '?').join(', ');
const list = (cols) => [].concat(cols).join(', ');

// What SQLite and PostgreSQL write alike (the standard's way); MySQL/MariaDB below differ in most of it.
const STANDARD = {
  quoteOne: (x) => `"${String(x).replace(/"/g, '""')}"`,
  asText: (expr) => `CAST(${expr} AS TEXT)`,
  // Only a conflict on a unique key is skipped; every other error stays one.
  insertUnlessPresentSql: (table, cols, key) => `INSERT INTO ${table} (${list(cols)}) VALUES (${marks(cols)}) ON CONFLICT${key ? ` (${list(key)})` : ''} DO NOTHING`,
  upsertSql: (table, cols, key, { update = [], fill = [] } = {}) => `INSERT INTO ${table} (${list(cols)}) VALUES (${marks(cols)}) ON CONFLICT (${list(key)}) DO UPDATE SET `
    + [...update.map((c) => `${c} = excluded.${c}`), ...fill.map((c) => `${c} = COALESCE(${table}.${c}, excluded.${c})`)].join(', '),
  // The target's columns are named bare in SET (its alias is not in scope there).
  updateJoinSql: ({ table, alias, from, on, joins = '', set, where }) => `UPDATE ${table} AS ${alias} SET ${set.map(([c, v]) => `${c.startsWith(`${alias}.`) ? c.slice(alias.length + 1) : c} = ${v}`).join(', ')} FROM ${from}${joins} WHERE ${on} AND ${where}`,
  tableOptions: {},
  inlineIndexes: false,
  caseSensitive: () => true,
  expressionIndexSql: (table, expr, name) => `CREATE INDEX ${name} ON ${table} ((${expr}))`,
  addColumnSql: (table, column, type) => `ALTER TABLE ${table} ADD COLUMN ${column} ${type}`,
  forUpdate: (sql) => `${sql} FOR UPDATE`,
  columnCollation: async () => null
};

const DIALECTS = {
  sqlite: {
    ...STANDARD,
    byteOrder: (expr) => expr, // computed text (LOWER(…)) compares byte by byte (BINARY): only a bare column brings its collation
    binaryCollation: 'BINARY',
    sortsByBytes: () => true,
    expressionIndexSql: (table, expr, name) => `CREATE INDEX ${name} ON ${table}(${expr})`,
    tempTableSql: (name, select) => ({ create: `CREATE TEMP TABLE ${name} AS ${select}`, drop: `DROP TABLE temp.${name}` }),
    // The transaction (BEGIN IMMEDIATE) already holds the database's write lock.
    forUpdate: (sql) => sql,
    types: { id: 'INTEGER PRIMARY KEY AUTOINCREMENT', longText: 'TEXT' },
    async leadsIndex(s, table, column) {
      const rows = await s.all(`SELECT 1 AS x FROM pragma_table_info(?) WHERE name = ? AND pk = 1 AND (SELECT COUNT(*) FROM pragma_table_info(?) WHERE pk > 0) = 1
        UNION ALL SELECT 1 FROM pragma_index_list(?) il, pragma_index_info(il.name) ii WHERE ii.seqno = 0 AND ii.name = ?`, [table, column, table, table, column]);
      return rows.length > 0;
    },
    async appendOnly(s, table) {
      for (const op of ['update', 'delete']) {
        await s.exec(`CREATE TRIGGER IF NOT EXISTS ${table}_no_${op} BEFORE ${op.toUpperCase()} ON ${table} BEGIN SELECT RAISE(ABORT, '${table} is append-only'); END`);
      }
    }
  },

  mysql: {
    ...STANDARD,
    quoteOne: (x) => `\`${String(x).replace(/`/g, '``')}\``,
    // Binary, so that it compares with trickle's utf8mb4_bin columns without mixing collations.
    asText: (expr) => `CONVERT(${expr} USING utf8mb4) COLLATE utf8mb4_bin`,
    byteOrder: (expr) => `CONVERT(${expr} USING utf8mb4) COLLATE utf8mb4_bin`,
    binaryCollation: 'utf8mb4_bin',
    sortsByBytes: (c) => /(_bin|^binary)$/i.test(c || ''),
    // The default collations (…_general_ci, …_0900_ai_ci) ignore case; only the binary ones are taken not to.
    caseSensitive: (c) => /(_bin|^binary)$/i.test(c || ''),
    // INSERT IGNORE also turns some other errors (a value too long, a NULL into NOT NULL) into
    // warnings: give it rows that fit. ON DUPLICATE KEY UPDATE would count an untouched row as
    // changed (mysql2 asks for found rows), so whether this call inserted could not be told.
    insertUnlessPresentSql: (table, cols) => `INSERT IGNORE INTO ${table} (${list(cols)}) VALUES (${marks(cols)})`,
    upsertSql: (table, cols, key, { update = [], fill = [] } = {}) => `INSERT INTO ${table} (${list(cols)}) VALUES (${marks(cols)}) ON DUPLICATE KEY UPDATE `
      + [...update.map((c) => `${c} = VALUES(${c})`), ...fill.map((c) => `${c} = COALESCE(${c}, VALUES(${c}))`)].join(', '),
    updateJoinSql: ({ table, alias, from, on, joins = '', set, where }) => `UPDATE ${table} ${alias} JOIN ${from} ON ${on}${joins} SET ${set.map(([c, v]) => `${c} = ${v}`).join(', ')} WHERE ${where}`,
    tempTableSql: (name, select) => ({ create: `CREATE TEMPORARY TABLE ${name} AS ${select}`, drop: `DROP TEMPORARY TABLE ${name}` }),
    // Any Unicode character (the server's utf8 is three bytes at most); 'binary' also compares bytes, not letters.
    tableOptions: { utf8: ' CHARACTER SET utf8mb4', binary: ' CHARACTER SET utf8mb4 COLLATE utf8mb4_bin' },
    inlineIndexes: true, // MySQL has no CREATE INDEX IF NOT EXISTS
    addColumnSql: (table, column, type, after) => `ALTER TABLE ${table} ADD COLUMN ${column} ${type}${after ? ` AFTER ${after}` : ''}`,
    types: { id: 'BIGINT AUTO_INCREMENT PRIMARY KEY', longText: 'MEDIUMTEXT' },
    async columnCollation(s, table, column) {
      return ((await s.all('SELECT COLLATION_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?', [table.split('.').pop(), column]))[0] || {}).c || null;
    },
    async leadsIndex(s, table, column) {
      const [schema, t] = table.includes('.') ? table.split('.') : [null, table];
      const rows = await s.all(`SELECT 1 AS x FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ${schema ? '?' : 'DATABASE()'} AND TABLE_NAME = ? AND COLUMN_NAME = ? AND SEQ_IN_INDEX = 1`, [...(schema ? [schema] : []), t, column]);
      return rows.length > 0;
    },
    async appendOnly(s, table) {
      // One statement each (no BEGIN … END), so the driver sends them as they are.
      for (const op of ['update', 'delete']) {
        try {
          await s.run(`CREATE TRIGGER ${table}_no_${op} BEFORE ${op.toUpperCase()} ON ${table} FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '${table} is append-only'`);
        } catch (e) {
          if (e.errno !== 1359) throw e; // ER_TRG_ALREADY_EXISTS
        }
      }
    }
  },

  postgres: {
    ...STANDARD,
    byteOrder: (expr) => `${expr} COLLATE "C"`,
    binaryCollation: 'C',
    sortsByBytes: (c) => c === 'C' || c === 'POSIX' || c === 'ucs_basic',
    // Dropped at the end of the transaction it is made in.
    tempTableSql: (name, select) => ({ create: `CREATE TEMP TABLE ${name} ON COMMIT DROP AS ${select}`, drop: null }),
    types: { id: 'BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY', longText: 'TEXT' },
    async columnCollation(s, table, column) {
      return ((await s.all('SELECT collation_name AS c FROM information_schema.columns WHERE table_name = ? AND column_name = ?', [table.split('.').pop(), column]))[0] || {}).c || 'default';
    },
    async leadsIndex(s, table, column) {
      const rows = await s.all('SELECT 1 AS x FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] WHERE i.indrelid = to_regclass(?) AND a.attname = ?', [s.quote(table), column]);
      return rows.length > 0;
    },
    async appendOnly(s, table) {
      // One function raises for every append-only table; each table gets its two triggers once.
      const triggers = ['update', 'delete'].map((op) => `IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '${table}_no_${op}' AND tgrelid = '${table}'::regclass) THEN
          CREATE TRIGGER ${table}_no_${op} BEFORE ${op.toUpperCase()} ON ${table} FOR EACH ROW EXECUTE FUNCTION trickle_append_only();
        END IF;`).join('\n');
      await s.exec(`DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'trickle_append_only') THEN
          CREATE FUNCTION trickle_append_only() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $f$;
        END IF;
        ${triggers}
      END $$`);
    }
  }
};

/**
 * The interface callers use, over `io` ({all, run → changes, exec}: the pool, or the one
 * connection of a transaction) in dialect `d`.
 */
function session(d, io) {
  const s = {
    kind: d.name,
    /** The rows of a query. */
    all: (sql, params = []) => io.all(sql, params),
    /** The first row of a query (undefined when none). */
    get: async (sql, params = []) => (await io.all(sql, params))[0],
    /** Runs a statement; `{changes}` is the number of rows it wrote. */
    run: async (sql, params = []) => ({ changes: await io.run(sql, params) }),
    /** Runs statements without parameters (DDL). */
    exec: (sql) => io.exec(sql),
    /** Reads rows and, in a transaction, holds them until it ends (SELECT … FOR UPDATE). */
    forUpdate: (sql, params = []) => io.all(d.forUpdate(sql), params),

    /** An identifier quoted, each part of `schema.table` on its own. */
    quote: (ident) => String(ident).split('.').map(d.quoteOne).join('.'),
    /** `expr` as text (to compare an id of any type with a text column). */
    asText: d.asText,
    /** Text computed from a column (`LOWER(col)`) as a key that sorts in byte order of its UTF-8 (the canonical address's order). */
    byteOrder: d.byteOrder,
    /** The name of the collation that sorts in byte order. */
    binaryCollation: d.binaryCollation,
    /** Whether a column of collation `c` (as columnCollation says) sorts in byte order. */
    sortsByBytes: d.sortsByBytes,
    /** Whether a column of collation `c` tells upper from lower case. */
    caseSensitive: d.caseSensitive,
    /** Column types that differ: `id` (a generated primary key), `longText` (up to 16 MB). */
    types: d.types,
    /** INSERT of `cols` (one `?` each) that does nothing when a row with the same unique key exists. */
    insertUnlessPresentSql: (table, cols, key) => d.insertUnlessPresentSql(table, cols, key),
    /**
     * INSERT of `cols` that, when a row with the same `key` exists, sets `update` columns to the
     * new values and `fill` columns to the new values only where they are NULL.
     */
    upsertSql: (table, cols, key, how) => d.upsertSql(table, cols, key, how),
    /**
     * UPDATE `table` AS `alias` joined to `from` ON `on` (then `joins`, ` JOIN … ON …` clauses),
     * SET `set` ([[column as alias.column, expression]]) WHERE `where`.
     */
    updateJoinSql: (u) => d.updateJoinSql(u),
    /** `{create, drop}` of a temporary table made AS `select`; `drop` null where the transaction's end drops it. */
    tempTableSql: (name, select) => d.tempTableSql(name, select),
    /** How an index on an expression is made (`name` may be a placeholder, for a report). */
    expressionIndexSql: (table, expr, name) => d.expressionIndexSql(table, expr, name),
    /**
     * The statements that create a table unless `ifNotExists` is false: `columns` as SQL,
     * `indexes` {name: [columns]}, `text` 'utf8' (any Unicode character) or 'binary' (also equal
     * only when the bytes are). SQLite's and PostgreSQL's text already is both.
     */
    createTableSql(name, columns, { ifNotExists = true, text, indexes = {} } = {}) {
      const idx = Object.entries(indexes);
      const inline = d.inlineIndexes ? idx.map(([n, cols]) => `, INDEX ${n} (${list(cols)})`).join('') : '';
      const create = `CREATE TABLE ${ifNotExists ? 'IF NOT EXISTS ' : ''}${name} (${columns}${inline})${(text && d.tableOptions[text]) || ''}`;
      return [create, ...(d.inlineIndexes ? [] : idx.map(([n, cols]) => `CREATE INDEX IF NOT EXISTS ${n} ON ${name}(${list(cols)})`))];
    },

    /** Inserts `row` ({column: value}) unless a row with the same unique key exists; true when it did. */
    async insertUnlessPresent(table, row, key) {
      return (await io.run(d.insertUnlessPresentSql(table, Object.keys(row), key), Object.values(row))) === 1;
    },
    /** Inserts `row`, or updates the row with the same `key` as upsertSql says. */
    async upsert(table, row, key, how) {
      await io.run(d.upsertSql(table, Object.keys(row), key, how), Object.values(row));
    },
    /** Creates a table unless it exists (see createTableSql); an existing table is left as it is. */
    async createTable(name, columns, options) {
      for (const sql of s.createTableSql(name, columns, options)) await io.exec(sql);
    },
    /** Whether `table` has `column` (false when the table does not exist either). Not in a transaction. */
    async hasColumn(table, column) {
      try {
        await s.all(`SELECT ${s.quote(column)} FROM ${s.quote(table)} WHERE 1 = 0`);
        return true;
      } catch (_) {
        return false;
      }
    },
    /** Adds a column unless the table has it (MySQL places it `after` a column); true when it added it. */
    async addColumn(table, column, type, { after } = {}) {
      if (await s.hasColumn(table, column)) return false;
      try {
        await io.exec(d.addColumnSql(table, column, type, after));
      } catch (e) {
        if (await s.hasColumn(table, column)) return false; // added by another opener meanwhile
        throw e;
      }
      return true;
    },
    /** The collation of a column where the database says (null where it does not, or on error). */
    async columnCollation(table, column) {
      try { return await d.columnCollation(s, table, column); } catch (_) { return null; }
    },
    /** Whether `column` leads an index of `table` (a one-column primary key counts). */
    leadsIndex: (table, column) => d.leadsIndex(s, table, column),
    /** Makes the database itself refuse UPDATE and DELETE on `table` (triggers; `<table> is append-only`). */
    appendOnly: (table) => d.appendOnly(s, table)
  };
  return s;
}

const DRIVERS = {
  sqlite(url) {
    const Database = require('better-sqlite3');
    const file = fileOf(url);
    createOwnerOnly(file);
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 10000');
    const io = {
      all: async (sql, params = []) => db.prepare(sql).all(...params),
      run: async (sql, params = []) => db.prepare(sql).run(...params).changes,
      exec: async (sql) => { db.exec(sql); }
    };
    return {
      io,
      // Exclusive: other writers wait. Statements of this process in between belong to it.
      async transaction(fn) {
        db.exec('BEGIN IMMEDIATE');
        try {
          const r = await fn(io);
          db.exec('COMMIT');
          return r;
        } catch (e) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw e;
        }
      },
      close: async () => db.close()
    };
  },

  mysql(url, connections) {
    const pool = require('mysql2/promise').createPool({ uri: url, connectionLimit: connections });
    const over = (c) => ({
      all: async (sql, params = []) => (await c.query(sql, params))[0],
      run: async (sql, params = []) => (await c.query(sql, params))[0].affectedRows,
      // The driver sends one statement at a time.
      exec: async (sql) => { for (const one of sql.split(';').map((x) => x.trim()).filter(Boolean)) await c.query(one); }
    });
    return {
      io: over(pool),
      async transaction(fn) {
        const conn = await pool.getConnection();
        try {
          await conn.beginTransaction();
          const r = await fn(over(conn));
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
  },

  postgres(url, connections) {
    const { Pool } = require('pg');
    const pool = new Pool({ connectionString: url, max: connections });
    // pg numbers its placeholders ($1, $2, …).
    const numbered = (sql) => { let i = 0; return sql.replace(/\?/g, () => `$${++i}`); };
    const over = (c) => ({
      all: async (sql, params = []) => (await c.query(numbered(sql), params)).rows,
      run: async (sql, params = []) => (await c.query(numbered(sql), params)).rowCount,
      exec: async (sql) => { await c.query(sql); }
    });
    return {
      io: over(pool),
      async transaction(fn) {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          const r = await fn(over(client));
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
};

/**
 * Opens `sqlite:<file>` (`sqlite::memory:`), `mysql://…` or `postgres://…`; `connections` bounds
 * a server's pool. The interface is session()'s, with `transaction(fn)` (fn gets the same
 * interface over the transaction's connection; committed when fn resolves, rolled back when it
 * throws; SQLite's is exclusive) and `close()`.
 */
async function openDb(url, { connections = 4 } = {}) {
  const kind = dialectOf(url);
  if (!kind) throw new Error(`unsupported database URL ${JSON.stringify(String(url).replace(/\/\/[^@/]*@/, '//…@'))}: use sqlite:, mysql:// or postgres://`);
  const d = { ...DIALECTS[kind], name: kind };
  const driver = DRIVERS[kind](url, connections);
  return {
    ...session(d, driver.io),
    transaction: (fn) => driver.transaction((io) => fn(session(d, io))),
    close: driver.close
  };
}

/**
 * Creates the database a URL names when it does not exist yet (the state database): the
 * directory of a SQLite file, or `CREATE DATABASE` on a MySQL/MariaDB or PostgreSQL server.
 * Returns true when it created one.
 */
async function ensureDatabase(url) {
  const kind = dialectOf(url);
  if (kind === 'sqlite') {
    const path = require('path');
    const fs = require('fs');
    const file = fileOf(url);
    if (file === ':memory:' || fs.existsSync(file)) return false;
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
    return true;
  }
  const u = new URL(url);
  const name = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!name) return false;
  if (!/^[A-Za-z0-9_$-]{1,64}$/.test(name)) throw new Error(`cannot create the database ${JSON.stringify(name)}: use letters, digits, _ and - only`);
  if (kind === 'mysql') {
    u.pathname = '/';
    const conn = await require('mysql2/promise').createConnection({ uri: u.toString() });
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

module.exports = { openDb, ensureDatabase, createOwnerOnly, dialectOf, fileMissing };
