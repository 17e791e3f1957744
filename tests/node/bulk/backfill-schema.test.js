// backfill into declared schemas (the product's own table and column names, both link modes) on
// SQLite, MariaDB and PostgreSQL: one joined UPDATE per product, only accounts an import record
// owns, nobody the tenant already had, an account holding another id or whose person changed
// left alone and reported, finished files not read again.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { openDb } = require('../../../lib/db');
const { openState, fileKey } = require('../../../cli/import');
const { backfill } = require('../../../cli/reconcile');

const { scratchDatabase } = require('../support/databases');

// Accounts 1..6 of "Customers" (integer ids, mixed-case names). Person tp_k owns account k.
// 1, 2: owned, written. 3: owned but already holds another id (held_by_other). 4: owned, but
// its person changed since the export (person_changed). 5: in the record without a proof
// (not written). 6: a person the tenant already had (import_present; not written).
async function seed(db, link) {
  const q = (x) => (db.kind === 'mysql' ? `\`${x}\`` : `"${x}"`);
  const cs = db.kind === 'mysql' ? ' CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci' : '';
  await db.exec(`CREATE TABLE ${q('Customers')} (${q('CustomerID')} INT PRIMARY KEY, ${q('Email')} VARCHAR(200) NOT NULL, ${q('PassHash')} VARCHAR(100)`
    + `${link === 'column' ? `, ${q('TricklePerson')} VARCHAR(64), ${q('Auth0Id')} VARCHAR(128)` : ''})${cs}`);
  if (link === 'table') await db.exec(`CREATE TABLE trickle_person_link (account_id VARCHAR(191) PRIMARY KEY, person_id VARCHAR(64), auth0_user_id VARCHAR(128))${db.kind === 'mysql' ? ' CHARACTER SET utf8mb4 COLLATE utf8mb4_bin' : ''}`);
  for (let k = 1; k <= 6; k++) {
    const person = k === 4 ? 'tp_someone_else' : `tp_${k}`;
    const held = k === 3 ? 'auth0|tp_other' : null;
    if (link === 'column') await db.run(`INSERT INTO ${q('Customers')} VALUES (?, ?, ?, ?, ?)`, [k, `Person.${k}@Example.com`, 'x', person, held]);
    else {
      await db.run(`INSERT INTO ${q('Customers')} VALUES (?, ?, ?)`, [k, `Person.${k}@Example.com`, 'x']);
      await db.run('INSERT INTO trickle_person_link (account_id, person_id, auth0_user_id) VALUES (?, ?, ?)', [String(k), person, held]);
    }
  }
}

async function importState(dir) {
  const state = `sqlite:${path.join(dir, 'state.sqlite')}`;
  const st = await openState(state);
  const records = [1, 2, 3, 4, 5, 6].map((k) => ({ email: `person.${k}@example.com`, user_id: `tp_${k}`,
    app_metadata: { bulkImported: true, trickle: { v: 1, person_id: `tp_${k}`, accounts: [{ product: 'shop', id: String(k), ...(k === 5 ? {} : { proof: 'import' }), verified: true }] } } }));
  const text = JSON.stringify(records);
  fs.writeFileSync(path.join(dir, 'users-00001.json'), text);
  const sha = crypto.createHash('sha256').update(text).digest('hex');
  const id = fileKey(sha, 'r1');
  await st.run("INSERT INTO import_files (id, run, name, dir, sha256, people, status, inserted, already, retried, permanent, updated_at) VALUES (?, 'r1', 'users-00001.json', ?, ?, 6, 'done', 5, 1, 0, 0, ?)", [id, dir, sha, Date.now()]);
  await st.run('INSERT INTO import_present (file, email, person_id, codes, recorded_at) VALUES (?, ?, ?, ?, ?)', [id, 'person.6@example.com', 'tp_6', 'DUPLICATED_USER', Date.now()]);
  await st.close();
  return state;
}

async function links(db, link) {
  const sql = link === 'column'
    ? (db.kind === 'mysql' ? 'SELECT `CustomerID` AS id, `Auth0Id` AS auth0 FROM `Customers` ORDER BY 1' : 'SELECT "CustomerID" AS id, "Auth0Id" AS auth0 FROM "Customers" ORDER BY 1')
    : 'SELECT account_id AS id, auth0_user_id AS auth0 FROM trickle_person_link ORDER BY 1';
  return Object.fromEntries((await db.all(sql)).map((r) => [String(r.id), r.auth0 || null]));
}

async function scenario(t, kind, url, link, cleanup) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `trickle-bf-${kind}-`));
  try {
    let db = await openDb(url);
    await seed(db, link);
    await db.close();
    const state = await importState(dir);
    const columns = { id: 'CustomerID', email: 'Email', password: 'PassHash', ...(link === 'column' ? { person_id: 'TricklePerson', auth0_user_id: 'Auth0Id' } : {}) };
    const cfg = { products: [{ name: 'shop', db: url, table: 'Customers', format: 'bcrypt', columns, ...(link === 'table' ? { link: 'table' } : {}) }] };
    const r = await backfill(cfg, { state });
    assert.strictEqual(r.updated, 2, JSON.stringify(r));
    assert.strictEqual(r.present, 1);
    assert.strictEqual(r.unowned, 1);
    assert.deepStrictEqual(r.held_by_other.map((h) => [h.id, h.auth0_user_id]), [['3', 'auth0|tp_other']]);
    assert.deepStrictEqual(r.person_changed.map((h) => [h.id, h.person_now]), [['4', 'tp_someone_else']]);
    assert.strictEqual(r.indexes.shop['Customers.CustomerID'], 'present');
    if (link === 'table') assert.strictEqual(r.indexes.shop['trickle_person_link.account_id'], 'present');
    db = await openDb(url);
    try {
      assert.deepStrictEqual(await links(db, link), { 1: 'auth0|tp_1', 2: 'auth0|tp_2', 3: 'auth0|tp_other', 4: null, 5: null, 6: null });
    } finally {
      await db.close();
    }
    // Idempotent: again, nothing more is written.
    const again = await backfill(cfg, { state });
    assert.strictEqual(again.updated, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await cleanup();
  }
}

for (const link of ['column', 'table']) {
  test(`declared schema in SQLite, link ${link}`, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-bf-sqlite-db-'));
    await scenario(t, 'sqlite', `sqlite:${path.join(dir, 'shop.sqlite')}`, link, async () => fs.rmSync(dir, { recursive: true, force: true }));
  });
  test(`declared schema in MariaDB (non-binary collation), link ${link}`, async (t) => {
    const db = await scratchDatabase('mysql', `trickle_bf_${link}`);
    await scenario(t, 'mysql', db.url, link, db.drop);
  });
  test(`declared schema in PostgreSQL (mixed-case identifiers), link ${link}`, async (t) => {
    const db = await scratchDatabase('postgres', `trickle_bf_${link}`);
    await scenario(t, 'postgres', db.url, link, db.drop);
  });
}
