// The product databases as the bulk commands see them: each product's own table and columns as
// the configuration maps them (cli/config.js), password formats, and a stream of accounts grouped
// into people by canonical address (the core's normalize_email), in address order, across
// products, with memory that does not grow with the number of accounts. The order is checked
// while streaming: a product whose rows do not come in byte order of the canonical address stops
// the command with `stream.out_of_order`, since merging it would give one person two ids.
'use strict';
const { openDb } = require('../lib/db');
const { loadCore } = require('../js-shim/node');
const config = require('./config');

const { TrickleError, schemaOf, redact } = config;

/** How each legacy format becomes a custom_password_hash descriptor (row → descriptor). */
const FORMATS = Object.fromEntries(Object.entries(config.FORMATS).map(([k, f]) => [k, f.make]));

const loadConfig = config.loadConfig;

const norm = (e) => String(e || '').trim().toLowerCase();

let core;
/** The canonical address (core normalize_email); an invalid address keeps its trimmed lower case, and export rejects it. */
function canonical(email) {
  core = core || loadCore('full');
  const r = core.call('normalize_email', { email: String(email || '') });
  return r.outcome === 'ok' ? r.email : norm(email);
}

/** Byte order of UTF-8, the order a binary collation sorts in. */
const compare = (a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/** The side table that holds person ids (and Auth0 ids) when a product's `link` is `table`. */
const LINK_TABLE = 'trickle_person_link';

/** The side table's CREATE TABLE: its key compared byte by byte, like the canonical address. */
const sideTableSql = (db, options) => db.createTableSql(LINK_TABLE, 'account_id VARCHAR(191) PRIMARY KEY, person_id VARCHAR(64), auth0_user_id VARCHAR(128)', { text: 'binary', ...options })[0];
const usesSideTable = (s) => s.personId === 'table' || s.auth0Id === 'table';

const when = (v) => (v instanceof Date ? v.toISOString() : v === null || v === undefined || v === '' ? undefined : String(v));
const truthy = (v) => v === true || (typeof v === 'number' && v !== 0) || (typeof v === 'string' && !['', '0', 'false', 'f', 'n', 'no'].includes(v.toLowerCase())) || (Buffer.isBuffer(v) && v.some((b) => b));

/** The product-API shape of a row (docs/product-api.md). */
function accountOf(product, row) {
  const { format } = schemaOf(product);
  let password = null;
  if (row.password_hash) {
    try { password = FORMATS[format](row, schemaOf(product)); } catch (_) { password = { algorithm: 'unreadable', hash: { value: '' } }; }
  }
  return {
    product: product.name, id: String(row.id), email: String(row.email), email_verified: truthy(row.email_verified), name: row.name || undefined,
    given_name: row.given_name || undefined, family_name: row.family_name || undefined, created_at: when(row.created_at),
    person_id: row.person_id || undefined, totp_secret: row.totp_secret || undefined, password,
    auth0_user_id: row.auth0_user_id || undefined
  };
}

/** Wraps a database error so it names the product (and keeps trickle's own refusals as they are). */
function named(product, e, what = 'database error') {
  if (e instanceof TrickleError) return e;
  return new TrickleError('db.error', `product ${JSON.stringify(product.name)} (${redact(product.db)}): ${what}: ${e.message}`, { product: product.name });
}

/** Opens a product's database and makes sure it answers: `db.unreachable` names the product. */
async function openProduct(product, options) {
  let db;
  try {
    db = await openDb(product.db, options);
    await db.all('SELECT 1 AS one');
    return db;
  } catch (e) {
    if (db) await db.close().catch(() => {});
    throw new TrickleError('db.unreachable', `product ${JSON.stringify(product.name)}: cannot reach its database ${redact(product.db)}: ${e.message || e.code}`, { product: product.name });
  }
}

/**
 * Checks that a product's table and every mapped column exist (and the side table's columns,
 * when it exists): `schema.missing_table` / `schema.missing_column` name the product, the table,
 * the column and the configuration key. Returns what the product is read from and written to.
 */
async function inspectProduct(db, product) {
  const s = schemaOf(product);
  const where = `product ${JSON.stringify(product.name)}`;
  try {
    await db.all(`SELECT 1 AS one FROM ${db.quote(s.table)} WHERE 1 = 0`);
  } catch (e) {
    throw new TrickleError('schema.missing_table', `${where}: there is no table ${s.table} in ${redact(product.db)}${s.legacy ? ' (no "table" is configured, so the old default accounts is read; set "table" and "columns")' : ' (products[].table)'}: ${e.message}`, { product: product.name, table: s.table });
  }
  for (const [key, column] of Object.entries(s.columns)) {
    if (!(await db.hasColumn(s.table, column))) {
      throw new TrickleError('schema.missing_column', `${where}: table ${s.table} has no column ${column} (columns.${key}: ${config.COLUMNS[key]})${s.legacy ? '; the old configuration shape reads the simulator\'s columns: declare yours with "table" and "columns"' : ''}`, { product: product.name, table: s.table, column, key: `columns.${key}` });
    }
  }
  if (s.identities) {
    const d = s.identities;
    try {
      await db.all(`SELECT 1 AS one FROM ${db.quote(d.table)} WHERE 1 = 0`);
    } catch (e) {
      throw new TrickleError('schema.missing_table', `${where}: there is no table ${d.table} (products[].identities.table): ${e.message}`, { product: product.name, table: d.table });
    }
    for (const [key, column] of Object.entries(d.columns)) {
      if (!(await db.hasColumn(d.table, column))) throw new TrickleError('schema.missing_column', `${where}: table ${d.table} has no column ${column} (identities.columns.${key}: ${config.IDENTITY_COLUMNS[key]})`, { product: product.name, table: d.table, column, key: `identities.columns.${key}` });
    }
  }
  let side = null;
  if (usesSideTable(s)) {
    const exists = await db.hasColumn(LINK_TABLE, 'account_id');
    side = { table: LINK_TABLE, exists, auth0_column: exists ? await db.hasColumn(LINK_TABLE, 'auth0_user_id') : false };
  }
  const orderColumn = s.columns.email_norm || s.columns.email;
  const collation = await db.columnCollation(s.table, orderColumn);
  const ordered = s.columns.email_norm
    ? { by: s.columns.email_norm, collation, binary: db.sortsByBytes(collation) }
    : { by: `LOWER(${s.columns.email}) in byte order`, collation: db.binaryCollation, binary: true };
  const writes = {
    person_id: s.personId === 'column' ? `${s.table}.${s.columns.person_id}` : `${LINK_TABLE}.person_id`,
    auth0_user_id: s.auth0Id === 'column' ? `${s.table}.${s.columns.auth0_user_id}` : `${LINK_TABLE}.auth0_user_id`
  };
  const changes = [];
  if (side && !side.exists) changes.push(sideTableSql(db, { ifNotExists: false }));
  else if (side && s.auth0Id === 'table' && !side.auth0_column) changes.push(`ALTER TABLE ${LINK_TABLE} ADD COLUMN auth0_user_id VARCHAR(128)`);
  // How `trickle product-api` finds an address (apiSql): the canonical column, the column's own
  // index where its collation ignores case (MySQL/MariaDB's default), else an expression an index
  // must match. (Without email_norm, `collation` above is the email column's own.)
  const emailCollation = s.columns.email_norm ? null : collation;
  const emailBinary = s.columns.email_norm !== undefined || db.caseSensitive(emailCollation);
  const lookup = s.columns.email_norm ? { by: `${s.columns.email_norm} = ?`, index: `an index on ${s.table}(${s.columns.email_norm})` }
    : !emailBinary ? { by: `${s.columns.email} = ? (collation ${emailCollation} ignores case)`, index: `an index on ${s.table}(${s.columns.email})` }
      : { by: `LOWER(TRIM(${s.columns.email})) = ?`, index: db.expressionIndexSql(s.table, `LOWER(TRIM(${s.columns.email}))`, '…') };
  return { table: s.table, format: s.format, reads: s.columns, writes, order: ordered, schema_changes: changes, legacy: s.legacy, lookup: { ...lookup, email_binary: emailBinary } };
}

/** Creates (or completes) the side table where configured, idempotently; nothing else is ever changed. */
async function ensureLinkTable(db, product) {
  const s = schemaOf(product);
  if (!usesSideTable(s)) return;
  await db.exec(sideTableSql(db));
  if (s.auth0Id === 'table') await db.addColumn(LINK_TABLE, 'auth0_user_id', 'VARCHAR(128)');
}

/** SQL that writes one account's person id (params: person id, account id), in the column or the side table. */
function linkSql(db, product) {
  const s = schemaOf(product);
  if (s.personId === 'column') return `UPDATE ${db.quote(s.table)} SET ${db.quote(s.columns.person_id)} = ? WHERE ${db.quote(s.columns.id)} = ?`;
  return db.upsertSql(LINK_TABLE, ['person_id', 'account_id'], 'account_id', { update: ['person_id'] });
}

/** SQL that writes one account's Auth0 id where it is still empty (params: Auth0 id, account id). */
function auth0Sql(db, product) {
  const s = schemaOf(product);
  if (s.auth0Id === 'column') {
    const c = db.quote(s.columns.auth0_user_id);
    return `UPDATE ${db.quote(s.table)} SET ${c} = ? WHERE ${db.quote(s.columns.id)} = ? AND ${c} IS NULL`;
  }
  return db.upsertSql(LINK_TABLE, ['auth0_user_id', 'account_id'], 'account_id', { fill: ['auth0_user_id'] });
}

/**
 * The SQL of one product's backfill (cli/reconcile.js writeProduct): auth0Sql for every owned
 * account at once, for its declared schema (cli/config.js schemaOf; the old
 * shape is the simulator's `accounts`): where the account id, the person id and the Auth0 id
 * are (a column of the product's table, or trickle's side table), every user identifier quoted.
 * The temporary table `trickle_backfill_work (id, sid, auth0, person)` holds the owned accounts:
 * `id` typed like the account id column, `sid` the id as text (the side table's key), the
 * others typed like the columns they are compared with, so no collation or type is mixed.
 */
function backfillSql(db, product) {
  const s = schemaOf(product);
  const q = db.quote;
  const T = q(s.table);
  const ID = `a.${q(s.columns.id)}`;
  const W = 'trickle_backfill_work';
  const side = s.personId === 'table' || s.auth0Id === 'table';
  const L = LINK_TABLE;
  const auth0 = s.auth0Id === 'column' ? `a.${q(s.columns.auth0_user_id)}` : 'l.auth0_user_id';
  const person = s.personId === 'column' ? `a.${q(s.columns.person_id)}` : 'l.person_id';
  // The side table's own types for sid/auth0/person where it holds them; the product's otherwise.
  const src = `SELECT ${ID} AS id, ${side ? 'l.account_id' : db.asText(ID)} AS sid, ${auth0} AS auth0, ${person} AS person FROM ${T} a${side ? ` LEFT JOIN ${L} l ON 1 = 0` : ''} WHERE 1 = 0`;
  const { create, drop } = db.tempTableSql(W, src);
  let update;
  if (s.auth0Id === 'column') {
    // The Auth0 id goes into the product's table; the person is checked in its column or the side table.
    const linkJoin = s.personId === 'table' ? ` JOIN ${L} l ON l.account_id = w.sid AND l.person_id = w.person` : '';
    const personOk = s.personId === 'column' ? ` AND ${person} = w.person` : '';
    update = db.updateJoinSql({ table: T, alias: 'a', from: `${W} w`, on: `${ID} = w.id`, joins: linkJoin, set: [[auth0, 'w.auth0']], where: `${auth0} IS NULL${personOk}` });
  } else {
    // The Auth0 id goes into the side table, in the row prelink wrote for the account (still the record's person).
    update = db.updateJoinSql({ table: L, alias: 'l', from: `${W} w`, on: 'l.account_id = w.sid', joins: ` JOIN ${T} a ON ${ID} = w.id`, set: [['l.auth0_user_id', 'w.auth0']], where: 'l.auth0_user_id IS NULL AND l.person_id = w.person' });
  }
  const joined = `FROM ${W} w JOIN ${T} a ON ${ID} = w.id${side ? ` LEFT JOIN ${L} l ON l.account_id = w.sid` : ''}`;
  return {
    create, drop, update, W, side,
    insert: (n) => `INSERT INTO ${W} (id, sid, auth0, person) VALUES ${Array(n).fill('(?, ?, ?, ?)').join(', ')}`,
    left: `SELECT w.id, w.auth0, ${auth0} AS held, ${person} AS person_now ${joined} WHERE ${auth0} IS NULL OR ${auth0} <> w.auth0 LIMIT 1000`,
    matched: `SELECT COUNT(*) AS n FROM ${W} w JOIN ${T} a ON ${ID} = w.id`,
    indexes: [[s.table, s.columns.id], ...(side ? [[L, 'account_id']] : [])]
  };
}

/** The SELECT of one page of a product's accounts, as trickle's names, with the sort key. */
/** The columns of an account as trickle's names (`a` the product's table, `l` the side table), and the FROM clause joining them. */
function accountSelect(db, s) {
  const c = s.columns;
  const col = (k) => `a.${db.quote(c[k])}`;
  const alias = { password: 'password_hash', salt: 'password_salt' };
  const fields = Object.keys(c).map((k) => `${col(k)} AS ${db.quote(alias[k] || k)}`);
  const side = usesSideTable(s);
  if (s.personId === 'table') fields.push(`l.person_id AS ${db.quote('person_id')}`);
  if (s.auth0Id === 'table') fields.push(`l.auth0_user_id AS ${db.quote('auth0_user_id')}`);
  const from = `FROM ${db.quote(s.table)} a${side ? ` LEFT JOIN ${LINK_TABLE} l ON l.account_id = ${db.asText(col('id'))}` : ''}`;
  return { fields, from, col, side };
}

/**
 * The statements the product API (product-api/server.js) runs for one product's declared
 * schema: look-up by address (`byEmail`, one parameter: the trimmed, lower-cased address; the
 * caller keeps only rows whose address normalises to it), one account by id (`byId`), and the
 * compare-and-set of the Auth0 id (`set`: value, id, value, replace) and its withdrawal
 * (`clear`: id, value), in the product's column or the side table (`ensureSide`: id, before a
 * write there). `emailBinary`: the email column compares case-sensitively (so `=` cannot be used).
 */
function apiSql(db, product, { emailBinary = true } = {}) {
  const s = schemaOf(product);
  const { fields, from, col } = accountSelect(db, s);
  const select = `SELECT ${fields.join(', ')} ${from}`;
  // An index on the address serves the look-up: the canonical column, or a case-insensitive
  // collation (MySQL's default); otherwise the trimmed lower case, which an expression index serves.
  const byEmailWhere = s.columns.email_norm ? `${col('email_norm')} = ?`
    : !emailBinary ? `${col('email')} = ?` : `LOWER(TRIM(${col('email')})) = ?`;
  const q = db.quote;
  let set;
  let clear;
  let ensureSide = null;
  if (s.auth0Id === 'column') {
    const A = q(s.columns.auth0_user_id);
    const where = `${q(s.columns.id)} = ?`;
    set = `UPDATE ${q(s.table)} SET ${A} = ? WHERE ${where} AND (${A} IS NULL OR ${A} = ? OR ${A} = ?)`;
    clear = `UPDATE ${q(s.table)} SET ${A} = NULL WHERE ${where} AND ${A} = ?`;
  } else {
    set = `UPDATE ${LINK_TABLE} SET auth0_user_id = ? WHERE account_id = ? AND (auth0_user_id IS NULL OR auth0_user_id = ? OR auth0_user_id = ?)`;
    clear = `UPDATE ${LINK_TABLE} SET auth0_user_id = NULL WHERE account_id = ? AND auth0_user_id = ?`;
    ensureSide = db.insertUnlessPresentSql(LINK_TABLE, ['account_id'], 'account_id');
  }
  // Social identities, where the product keeps them: accounts by provider and subject, and each
  // account's identities (compared exactly by the caller: a collation may fold case).
  const d = s.identities;
  const identity = d ? {
    accounts: `${select} JOIN ${q(d.table)} i ON i.${q(d.columns.account_id)} = ${col('id')} WHERE i.${q(d.columns.provider)} = ? AND i.${q(d.columns.subject)} = ? ORDER BY ${col('id')} LIMIT 51`,
    of: `SELECT ${q(d.columns.provider)} AS provider, ${q(d.columns.subject)} AS subject FROM ${q(d.table)} WHERE ${q(d.columns.account_id)} = ? ORDER BY 1, 2 LIMIT 32`
  } : null;
  return {
    identity,
    byEmail: `${select} WHERE ${byEmailWhere} ORDER BY ${col('id')} LIMIT 51`,
    byId: `${select} WHERE ${col('id')} = ?`,
    set, clear, ensureSide, side: s.auth0Id === 'table'
  };
}

function pageSql(db, product, { after, onlyUnlinked, pageSize }) {
  const s = schemaOf(product);
  const { fields, from, col } = accountSelect(db, s);
  const c = s.columns;
  const key = c.email_norm ? col('email_norm') : db.byteOrder(`LOWER(${col('email')})`);
  fields.push(`${key} AS trickle_sort_key`);
  const auth0 = s.auth0Id === 'table' ? 'l.auth0_user_id' : col('auth0_user_id');
  const conds = [];
  if (after) conds.push(`(${key}, ${col('id')}) > (?, ?)`);
  if (onlyUnlinked) conds.push(`${auth0} IS NULL`);
  return `SELECT ${fields.join(', ')} ${from}`
    + `${conds.length ? ` WHERE ${conds.join(' AND ')}` : ''} ORDER BY ${key}, ${col('id')} LIMIT ${pageSize}`;
}

/**
 * Streams one product's rows in address order, a page at a time (keyset pagination), each with
 * its canonical address in `canonical`; stops with `stream.out_of_order` when an address sorts
 * before the one read just before it.
 */
async function* rows(db, onlyUnlinked, pageSize = 1000, product = {}) {
  let after = null;
  let prev = null;
  for (;;) {
    let page;
    try {
      page = await db.all(pageSql(db, product, { after, onlyUnlinked, pageSize }), after ? [after.key, after.id] : []);
    } catch (e) {
      throw named(product, e, 'reading its accounts');
    }
    for (const r of page) {
      r.canonical = canonical(r.email);
      if (prev && compare(r.canonical, prev.canonical) < 0) {
        const s = schemaOf(product);
        throw new TrickleError('stream.out_of_order', `product ${JSON.stringify(product.name)}: accounts do not come in address order: ${JSON.stringify(r.canonical)} (account ${r.id}) came after ${JSON.stringify(prev.canonical)} (account ${prev.id}). `
          + (s.columns.email_norm ? `${s.table}.${s.columns.email_norm} must hold the canonical address (trimmed, lower-cased) and sort in byte order (a binary collation: utf8mb4_bin, PostgreSQL "C"), or leave columns.email_norm out to order by LOWER(${s.columns.email})`
            : `LOWER(${s.columns.email}) does not sort like the canonical address (spaces around an address, or letters the core lower-cases differently): fix those addresses, or add a column holding the canonical address with a binary collation and map it as columns.email_norm`)
          + '. Nothing more is read.', { product: product.name, addresses: [prev.canonical, r.canonical] });
      }
      prev = r;
      yield r;
    }
    if (page.length < pageSize) return;
    const last = page[page.length - 1];
    after = { key: last.trickle_sort_key, id: last.id };
  }
}

/** Opens, inspects and (where configured) completes the side table of every product; closes them on error. */
async function openProducts(products, { prepare = true } = {}) {
  const dbs = [];
  try {
    for (const p of products) {
      const db = await openProduct(p);
      dbs.push(db);
      await inspectProduct(db, p);
      if (prepare) {
        try { await ensureLinkTable(db, p); } catch (e) { throw named(p, e, `creating ${LINK_TABLE}`); }
      }
    }
    return dbs;
  } catch (e) {
    for (const db of dbs) await db.close().catch(() => {});
    throw e;
  }
}

/**
 * Yields `{email, accounts}` per person across every product, in canonical address order.
 * `onlyUnlinked` skips accounts that already have an Auth0 id. Opens and closes the databases itself.
 */
async function* people(products, { onlyUnlinked = false, pageSize } = {}) {
  const dbs = await openProducts(products);
  try {
    const cursors = [];
    for (let i = 0; i < products.length; i++) {
      const it = rows(dbs[i], onlyUnlinked, pageSize, products[i]);
      cursors.push({ product: products[i], it, head: (await it.next()).value });
    }
    for (;;) {
      const live = cursors.filter((c) => c.head);
      if (!live.length) return;
      const email = live.map((c) => c.head.canonical).sort(compare)[0];
      const accounts = [];
      for (const c of live) {
        while (c.head && c.head.canonical === email) {
          accounts.push(accountOf(c.product, c.head));
          c.head = (await c.it.next()).value;
        }
      }
      yield { email, accounts };
    }
  } finally {
    for (const db of dbs) await db.close();
  }
}

/** Reads every product through once without writing into it: the order check, before a command writes. Returns accounts per product. */
async function checkOrder(products, { pageSize, progress = () => {} } = {}) {
  const counts = {};
  let all = 0;
  for (const p of products) {
    const [db] = await openProducts([p]);
    try {
      let n = 0;
      for await (const _ of rows(db, false, pageSize, p)) { // eslint-disable-line no-unused-vars
        n++;
        if (++all % 5000 === 0) progress({ phase: 'checking order', product: p.name, accounts: all });
      }
      counts[p.name] = n;
    } finally {
      await db.close();
    }
  }
  return counts;
}

module.exports = {
  loadConfig, people, rows, FORMATS, accountOf, norm, canonical, compare, ensureLinkTable, linkSql, auth0Sql, backfillSql, LINK_TABLE,
  openProduct, openProducts, inspectProduct, checkOrder, TrickleError, apiSql
};
