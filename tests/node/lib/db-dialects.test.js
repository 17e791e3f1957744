// lib/db.js, the one module that writes each database's SQL: the same assertions against SQLite,
// MariaDB and PostgreSQL (insert unless present, upsert, quoting, transactions, text casts and
// byte order, temporary tables and joined updates, append-only tables, the catalogue). Tables are
// named dbmod_<pid>_… so that other tests using the same servers never meet them.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { openDb, ensureDatabase, dialectOf, fileMissing } = require('../../../lib/db');

const MYSQL = process.env.TRICKLE_TEST_MYSQL || 'mysql://root@127.0.0.1:3306';
const PG = process.env.TRICKLE_TEST_PG || 'postgres://postgres@127.0.0.1:5432';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-dbmod-'));
const T = (name) => `dbmod_${process.pid}_${name}`;

const DATABASES = [
  ['SQLite', `sqlite:${path.join(dir, 'dbmod.sqlite')}`],
  ['MariaDB', `${MYSQL}/test`],
  ['PostgreSQL', `${PG}/test`]
];

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('a URL names its dialect; a SQLite file not made yet is said to be missing', () => {
  assert.equal(dialectOf('sqlite:x.sqlite'), 'sqlite');
  assert.equal(dialectOf('mysql://u@h/db'), 'mysql');
  assert.equal(dialectOf('postgres://u@h/db'), 'postgres');
  assert.equal(dialectOf('postgresql://u@h/db'), 'postgres');
  assert.equal(dialectOf('oracle://u@h/db'), null);
  assert.equal(fileMissing(`sqlite:${path.join(dir, 'none.sqlite')}`), true);
  assert.equal(fileMissing('mysql://u@h/db'), false, 'a server is not asked');
  return assert.rejects(openDb('oracle://u:secret@h/db'), (e) => /unsupported database URL/.test(e.message) && !e.message.includes('secret'));
});

for (const [name, url] of DATABASES) {
  test(`${name}: the same intent gives the same rows`, { timeout: 60000 }, async (t) => {
    let db;
    try {
      await ensureDatabase(url);
      db = await openDb(url);
      await db.all('SELECT 1 AS one');
    } catch (e) {
      if (db) await db.close().catch(() => {});
      t.skip(`no ${name} at ${url}: ${e.message}`);
      return;
    }
    const made = [];
    const table = async (n, columns, options) => {
      const full = T(n);
      await db.exec(`DROP TABLE IF EXISTS ${db.quote(full)}`);
      made.push(full);
      await db.createTable(full, columns, options);
      return full;
    };
    t.after(async () => {
      for (const m of made.reverse()) await db.exec(`DROP TABLE IF EXISTS ${db.quote(m)}`).catch(() => {});
      await db.close();
    });

    await t.test('insert unless present: twice is one row, the first', async () => {
      const once = await table('once', 'k VARCHAR(64) PRIMARY KEY, v VARCHAR(64) NOT NULL');
      assert.equal(await db.insertUnlessPresent(once, { k: 'a', v: 'first' }), true);
      assert.equal(await db.insertUnlessPresent(once, { k: 'a', v: 'second' }), false);
      assert.equal((await db.run(db.insertUnlessPresentSql(once, ['k', 'v'], 'k'), ['a', 'third'])).changes, 0, 'with its key named too');
      assert.deepEqual((await db.all(`SELECT k, v FROM ${once}`)).map((r) => ({ ...r })), [{ k: 'a', v: 'first' }]);
      // Only the duplicate is skipped: a row that breaks no unique key still goes in.
      assert.equal(await db.insertUnlessPresent(once, { k: 'b', v: 'other' }), true);
      assert.equal(Number((await db.get(`SELECT COUNT(*) AS n FROM ${once}`)).n), 2);
    });

    await t.test('upsert: the second write wins; a filled column keeps its first value', async () => {
      const up = await table('up', 'k VARCHAR(64) PRIMARY KEY, v VARCHAR(64), f VARCHAR(64), at BIGINT');
      const how = { update: ['v', 'at'], fill: ['f'] };
      await db.upsert(up, { k: 'a', v: 'one', f: null, at: 1 }, 'k', how);
      await db.upsert(up, { k: 'a', v: 'two', f: 'kept', at: 2 }, 'k', how);
      await db.upsert(up, { k: 'a', v: 'three', f: 'ignored', at: 3 }, 'k', how);
      const [row] = await db.all(`SELECT v, f, at FROM ${up} WHERE k = ?`, ['a']);
      assert.deepEqual([row.v, row.f, Number(row.at)], ['three', 'kept', 3]);
      assert.equal(Number((await db.get(`SELECT COUNT(*) AS n FROM ${up}`)).n), 1);
      // The statement form (prepared once, run per row) does the same.
      await db.run(db.upsertSql(up, ['v', 'k'], 'k', { update: ['v'] }), ['four', 'a']);
      assert.equal((await db.get(`SELECT v FROM ${up} WHERE k = ?`, ['a'])).v, 'four');
    });

    await t.test('reserved words and quote characters are quoted as identifiers', async () => {
      const q = db.quote;
      const odd = 'we"ird`name';
      const reserved = await table('select', `${q('order')} INT, ${q('group')} VARCHAR(10), ${q(odd)} VARCHAR(10)`);
      await db.run(`INSERT INTO ${q(reserved)} (${q('order')}, ${q('group')}, ${q(odd)}) VALUES (?, ?, ?)`, [7, 'g', 'o']);
      const [row] = await db.all(`SELECT ${q('order')} AS ${q('order')}, ${q('group')} AS ${q('group')}, ${q(odd)} AS x FROM ${q(reserved)} WHERE ${q('order')} = ?`, [7]);
      assert.deepEqual([Number(row.order), row.group, row.x], [7, 'g', 'o']);
      assert.equal(await db.hasColumn(reserved, 'order'), true);
      assert.equal(await db.hasColumn(reserved, 'missing'), false);
      assert.equal(await db.hasColumn(T('no_such_table'), 'order'), false);
      assert.equal(db.quote('a.b').split('.').length, 2, 'schema.table: each part on its own');
    });

    await t.test('a transaction is rolled back when it throws, committed when it resolves', async () => {
      const tx = await table('tx', 'k VARCHAR(64) PRIMARY KEY');
      const boom = new Error('boom');
      await assert.rejects(db.transaction(async (q) => {
        await q.run(`INSERT INTO ${tx} (k) VALUES (?)`, ['rolled back']);
        assert.equal((await q.all(`SELECT k FROM ${tx}`)).length, 1, 'seen inside');
        throw boom;
      }), (e) => e === boom);
      assert.equal((await db.all(`SELECT k FROM ${tx}`)).length, 0);
      // A failing statement rolls back what came before it in the same transaction.
      await assert.rejects(db.transaction(async (q) => {
        await q.insertUnlessPresent(tx, { k: 'first' });
        await q.run(`INSERT INTO ${tx} (k) VALUES (?)`, ['first']);
      }));
      assert.equal((await db.all(`SELECT k FROM ${tx}`)).length, 0);
      const r = await db.transaction(async (q) => {
        await q.forUpdate(`SELECT k FROM ${tx} WHERE k = ?`, ['none']);
        await q.run(`INSERT INTO ${tx} (k) VALUES (?)`, ['kept']);
        return 'done';
      });
      assert.equal(r, 'done');
      assert.deepEqual((await db.all(`SELECT k FROM ${tx}`)).map((x) => x.k), ['kept']);
    });

    await t.test('text casts compare a number with text; byteOrder sorts by UTF-8 bytes', async () => {
      // The address column sorts by its locale (é before z), not by bytes: the key has to.
      const locale = { sqlite: ' COLLATE NOCASE', mysql: '', postgres: ' COLLATE "und-x-icu"' }[db.kind];
      const ints = await table('ints', `id INT PRIMARY KEY, email VARCHAR(64)${locale}`, { text: 'utf8' });
      const texts = await table('texts', 'k VARCHAR(64) PRIMARY KEY', { text: 'binary' });
      for (const [id, email] of [[7, 'z@x'], [8, 'é@x'], [9, 'Ab@x'], [10, 'a@x']]) await db.run(`INSERT INTO ${ints} (id, email) VALUES (?, ?)`, [id, email]);
      for (const k of ['7', '07', '9']) await db.run(`INSERT INTO ${texts} (k) VALUES (?)`, [k]);
      const joined = await db.all(`SELECT a.id FROM ${ints} a JOIN ${texts} l ON l.k = ${db.asText('a.id')} ORDER BY a.id`);
      assert.deepEqual(joined.map((r) => Number(r.id)), [7, 9], "'07' is not 7 as text");
      const key = db.byteOrder('LOWER(email)');
      const sorted = await db.all(`SELECT email, ${key} AS k FROM ${ints} ORDER BY ${key}, id`);
      assert.deepEqual(sorted.map((r) => r.email), ['a@x', 'Ab@x', 'z@x', 'é@x']);
      // Keyset paging on the same key: the rows after ('ab@x', 9).
      const after = await db.all(`SELECT email FROM ${ints} WHERE (${key}, id) > (?, ?) ORDER BY ${key}, id LIMIT 1`, [sorted[1].k, 9]);
      assert.deepEqual(after.map((r) => r.email), ['z@x']);
      assert.equal(db.sortsByBytes(db.binaryCollation), true);
      assert.equal(db.caseSensitive(db.binaryCollation), true);
      assert.equal(db.caseSensitive(await db.columnCollation(texts, 'k')), true, "a binary table's text tells upper from lower case");
    });

    await t.test('a temporary table and a joined update, as one product backfill writes', async () => {
      const acc = await table('acc', 'id INT PRIMARY KEY, auth0 VARCHAR(64), person VARCHAR(64)');
      for (const [id, auth0, person] of [[1, null, 'p1'], [2, 'held', 'p2'], [3, null, 'moved']]) await db.run(`INSERT INTO ${acc} (id, auth0, person) VALUES (?, ?, ?)`, [id, auth0, person]);
      const W = T('work');
      const { create, drop } = db.tempTableSql(W, `SELECT a.id AS id, a.auth0 AS auth0, a.person AS person FROM ${acc} a WHERE 1 = 0`);
      const updated = await db.transaction(async (q) => {
        await q.run(create);
        await q.run(`INSERT INTO ${W} (id, auth0, person) VALUES (?, ?, ?), (?, ?, ?), (?, ?, ?)`, [1, 'auth0|1', 'p1', 2, 'auth0|2', 'p2', 3, 'auth0|3', 'p3']);
        const n = (await q.run(db.updateJoinSql({ table: acc, alias: 'a', from: `${W} w`, on: 'a.id = w.id', set: [['a.auth0', 'w.auth0']], where: 'a.auth0 IS NULL AND a.person = w.person' }))).changes;
        if (drop) await q.run(drop);
        return n;
      });
      assert.equal(updated, 1);
      assert.deepEqual((await db.all(`SELECT id, auth0 FROM ${acc} ORDER BY id`)).map((r) => [Number(r.id), r.auth0]), [[1, 'auth0|1'], [2, 'held'], [3, null]]);
      assert.equal((await db.all(`SELECT 1 AS x FROM ${acc} WHERE 1 = 0`)).length, 0);
      assert.equal(await db.hasColumn(W, 'id'), false, 'the temporary table is gone after the transaction');
    });

    await t.test('tables, indexes and columns are made once; an append-only table refuses UPDATE and DELETE', async () => {
      const log = await table('log', `id ${db.types.id}, actor VARCHAR(64) NOT NULL, body ${db.types.longText}`, { indexes: { [T('log_actor')]: ['actor'] } });
      await db.createTable(log, `id ${db.types.id}, actor VARCHAR(64) NOT NULL, body ${db.types.longText}`, { indexes: { [T('log_actor')]: ['actor'] } });
      assert.equal(await db.leadsIndex(log, 'actor'), true);
      assert.equal(await db.leadsIndex(log, 'id'), true, 'the primary key counts');
      assert.equal(await db.leadsIndex(log, 'body'), false);
      assert.equal(await db.addColumn(log, 'note', 'VARCHAR(64)', { after: 'actor' }), true);
      assert.equal(await db.addColumn(log, 'note', 'VARCHAR(64)', { after: 'actor' }), false, 'a second time adds nothing');
      await db.appendOnly(log);
      await db.appendOnly(log); // opening again finds the triggers in place
      await db.run(`INSERT INTO ${log} (actor, body, note) VALUES (?, ?, ?)`, ['a', 'x'.repeat(70000), 'n']);
      await db.run(`INSERT INTO ${log} (actor, body) VALUES (?, ?)`, ['b', 'y']);
      const rows = await db.all(`SELECT id, actor FROM ${log} ORDER BY id`);
      assert.deepEqual(rows.map((r) => r.actor), ['a', 'b']);
      assert.ok(Number(rows[1].id) > Number(rows[0].id), 'ids are generated in order');
      await assert.rejects(db.run(`UPDATE ${log} SET actor = ?`, ['c']), /is append-only/);
      await assert.rejects(db.run(`DELETE FROM ${log}`), /is append-only/);
      assert.equal((await db.all(`SELECT id FROM ${log}`)).length, 2);
    });
  });
}
