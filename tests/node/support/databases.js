// Scratch databases on the machine's MariaDB and PostgreSQL servers: a test that needs a database
// of its own (product tables, import state, a merge store) gets one under a unique name, and
// drops it when it is done, so runs never see each other's rows.
'use strict';
const { openDb } = require('../../../lib/db');

const MYSQL = process.env.TRICKLE_TEST_MYSQL || 'mysql://root@127.0.0.1:3306';
const PG = process.env.TRICKLE_TEST_POSTGRES || process.env.TRICKLE_TEST_PG || 'postgres://postgres@127.0.0.1:5432';
const SERVERS = {
  mysql: { server: MYSQL, admin: 'test', drop: (name) => `DROP DATABASE IF EXISTS ${name}` },
  // Connections the product API or a pool left open must not keep the database alive.
  postgres: { server: PG, admin: 'postgres', drop: (name) => `DROP DATABASE IF EXISTS ${name} WITH (FORCE)` }
};

/** Runs one statement on the server's administrative database. */
async function onServer({ server, admin }, sql) {
  const db = await openDb(`${server}/${admin}`);
  try { await db.run(sql); } finally { await db.close(); }
}

/**
 * A new, empty database on `dialect` ('mysql' or 'postgres'), named `<prefix>_<pid>_<random>`;
 * with `{create: false}` only its name and URL, for a test of what trickle creates itself.
 * Resolves to `{name, url, drop}`; `drop()` removes it (and may be called more than once).
 */
async function scratchDatabase(dialect, prefix = 'trickle_t', { create = true } = {}) {
  const s = SERVERS[dialect];
  if (!s) throw new Error(`no test server for ${dialect}`);
  const name = `${prefix}_${process.pid}_${Math.floor(Math.random() * 1e9)}`;
  if (create) await onServer(s, `CREATE DATABASE ${name}`);
  return { name, url: `${s.server}/${name}`, drop: () => onServer(s, s.drop(name)) };
}

module.exports = { scratchDatabase, MYSQL, PG };
