// The product databases as the bulk commands see them: configuration, password adapters, and a
// stream of accounts grouped into people by normalised email, in email order, across products,
// with memory that does not grow with the number of accounts.
'use strict';
const fs = require('fs');
const { openDb } = require('./db');

/** How each legacy format becomes a custom_password_hash descriptor. */
const FORMATS = {
  bcrypt: (row) => ({ algorithm: 'bcrypt', hash: { value: row.password_hash } }),
  'sha256-salt-prefix': (row) => ({ algorithm: 'sha256', hash: { value: row.password_hash, encoding: 'hex' }, salt: { value: row.password_salt, encoding: 'utf8', position: 'prefix' } }),
  'pbkdf2-phc': (row) => ({ algorithm: 'pbkdf2', hash: { value: row.password_hash, encoding: 'utf8' } }),
  descriptor: (row) => JSON.parse(row.password_hash)
};

/**
 * Reads the bulk configuration: `{products: [{name, db, format, link?, api?}], state?, tenant?: {url,
 * clientId, clientSecret, connectionId}}`. Throws with a message naming the field.
 */
function loadConfig(file) {
  let cfg;
  try {
    cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read the configuration ${file}: ${e.message}`);
  }
  if (!Array.isArray(cfg.products) || !cfg.products.length) throw new Error('configuration: products must be a non-empty array');
  cfg.products.forEach((p, i) => {
    if (!p || typeof p.name !== 'string' || typeof p.db !== 'string') throw new Error(`configuration: products[${i}] needs a name and a db URL`);
    if (!FORMATS[p.format || 'descriptor']) throw new Error(`configuration: products[${i}].format must be one of ${Object.keys(FORMATS).join(', ')}`);
    if (p.link !== undefined && !['column', 'table'].includes(p.link)) throw new Error(`configuration: products[${i}].link must be column or table`);
  });
  return cfg;
}

const norm = (e) => String(e || '').trim().toLowerCase();

/** The product-API shape of a row (docs/product-api.md). */
function accountOf(product, row) {
  let password = null;
  if (row.password_hash) {
    try { password = FORMATS[product.format || 'descriptor'](row); } catch (_) { password = { algorithm: 'unreadable', hash: { value: '' } }; }
  }
  return {
    product: product.name, id: String(row.id), email: row.email, email_verified: !!row.email_verified, name: row.name || undefined,
    given_name: row.given_name || undefined, family_name: row.family_name || undefined, created_at: row.created_at || undefined,
    person_id: row.person_id || undefined, totp_secret: row.totp_secret || undefined, password,
    auth0_user_id: row.auth0_user_id || undefined
  };
}

/** The side table that holds person ids when a product's `link` is `table`. */
const LINK_TABLE = 'trickle_person_link';

/** Creates the side table where configured (idempotent). */
async function ensureLinkTable(db, product) {
  if (product.link === 'table') await db.exec(`CREATE TABLE IF NOT EXISTS ${LINK_TABLE} (account_id VARCHAR(191) PRIMARY KEY, person_id VARCHAR(64) NOT NULL)`);
}

/** SQL that writes one account's person id, in the column or the side table. */
function linkSql(db, product) {
  if (product.link !== 'table') return 'UPDATE accounts SET person_id = ? WHERE id = ?';
  if (db.kind === 'mysql') return `INSERT INTO ${LINK_TABLE} (person_id, account_id) VALUES (?, ?) ON DUPLICATE KEY UPDATE person_id = VALUES(person_id)`;
  return `INSERT INTO ${LINK_TABLE} (person_id, account_id) VALUES (?, ?) ON CONFLICT (account_id) DO UPDATE SET person_id = excluded.person_id`;
}

/** Streams one product's rows in (email_norm, id) order, a page at a time (keyset pagination). */
async function* rows(db, onlyUnlinked, pageSize = 1000, product = {}) {
  let lastEmail = '';
  let lastId = '';
  for (;;) {
    const table = product.link === 'table';
    const page = await db.all(
      `SELECT a.*${table ? ', l.person_id AS linked_person_id' : ''} FROM accounts a${table ? ` LEFT JOIN ${LINK_TABLE} l ON l.account_id = a.id` : ''}
       WHERE (a.email_norm, a.id) > (?, ?)${onlyUnlinked ? ' AND a.auth0_user_id IS NULL' : ''} ORDER BY a.email_norm, a.id LIMIT ${pageSize}`,
      [lastEmail, lastId]
    );
    if (table) for (const r of page) r.person_id = r.linked_person_id || null;
    for (const r of page) yield r;
    if (page.length < pageSize) return;
    lastEmail = page[page.length - 1].email_norm;
    lastId = page[page.length - 1].id;
  }
}

/**
 * Yields `{email, accounts}` per person across every product, in email order. `onlyUnlinked`
 * skips accounts that already have an Auth0 id. Opens and closes the databases itself.
 */
async function* people(products, { onlyUnlinked = false, pageSize } = {}) {
  const dbs = [];
  try {
    const cursors = [];
    for (const p of products) {
      const db = await openDb(p.db);
      dbs.push(db);
      await ensureLinkTable(db, p);
      const it = rows(db, onlyUnlinked, pageSize, p);
      cursors.push({ product: p, it, head: (await it.next()).value });
    }
    for (;;) {
      const live = cursors.filter((c) => c.head);
      if (!live.length) return;
      const email = live.map((c) => c.head.email_norm).sort()[0];
      const accounts = [];
      for (const c of live) {
        while (c.head && c.head.email_norm === email) {
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

module.exports = { loadConfig, people, FORMATS, accountOf, norm, ensureLinkTable, linkSql, LINK_TABLE };
