// Backfill benchmark: 100 000 imported people in a MariaDB product, for both link modes (the
// person_id column, and the trickle_person_link side table), through backfill() itself (state,
// import files, the joined UPDATE). Baselines on the same data, in the same run: the UPDATE per
// row that backfill used to issue, and the dependent `IN (subquery)` by person id, each timed on
// a sample and given as people/s. Also a declared schema (a `customers` table with its own
// column names) against the per-row loop it replaced, and a no-op rerun. Merged into
// bench/results.json under bulk.backfill. Size: TRICKLE_BENCH_BACKFILL_PEOPLE (default 100 000); database:
// TRICKLE_TEST_MYSQL (default mysql://root@127.0.0.1:3306).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { openDb } = require('../lib/db');
const { openState, fileKey } = require('../cli/import');
const { backfill } = require('../cli/reconcile');
const { auth0Sql } = require('../cli/products');

const MYSQL = process.env.TRICKLE_TEST_MYSQL || 'mysql://root@127.0.0.1:3306';

async function seed(url, link, n) {
  const db = await openDb(url);
  await db.exec(`CREATE TABLE accounts (id VARCHAR(64) PRIMARY KEY, email VARCHAR(320) NOT NULL, email_norm VARCHAR(320) NOT NULL, email_verified INT NOT NULL DEFAULT 0,
    name TEXT, given_name TEXT, family_name TEXT, created_at TEXT, password_hash TEXT, password_salt TEXT, totp_secret TEXT,
    person_id VARCHAR(64), auth0_user_id VARCHAR(128), INDEX (email_norm)) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  if (link === 'table') await db.exec('CREATE TABLE trickle_person_link (account_id VARCHAR(191) PRIMARY KEY, person_id VARCHAR(64) NOT NULL)');
  for (let i = 0; i < n; i += 2000) {
    const rows = [];
    for (let k = i; k < Math.min(n, i + 2000); k++) rows.push([`p${k}`, `person.${k}@example.com`, `person.${k}@example.com`, 1, `Person ${k}`, link === 'table' ? null : `tp_${k}`]);
    await db.run(`INSERT INTO accounts (id, email, email_norm, email_verified, name, person_id) VALUES ${rows.map(() => '(?, ?, ?, ?, ?, ?)').join(', ')}`, rows.flat());
    if (link === 'table') await db.run(`INSERT INTO trickle_person_link (account_id, person_id) VALUES ${rows.map(() => '(?, ?)').join(', ')}`, rows.flatMap((r) => [r[0], `tp_${r[0].slice(1)}`]));
  }
  await db.close();
}

/** A state database whose import files are done, with records as export writes them. */
async function importState(dir, n, { product = 'paste', id = (k) => `p${k}` } = {}) {
  const state = `sqlite:${path.join(dir, 'state.sqlite')}`;
  const st = await openState(state);
  const out = path.join(dir, 'export');
  fs.mkdirSync(out);
  const perFile = 1000;
  for (let f = 0; f * perFile < n; f++) {
    const records = [];
    for (let k = f * perFile; k < Math.min(n, (f + 1) * perFile); k++) {
      records.push({ email: `person.${k}@example.com`, user_id: `tp_${k}`, app_metadata: { bulkImported: true, trickle: { v: 1, person_id: `tp_${k}`, accounts: [{ product, id: id(k), proof: 'import', verified: true }] } } });
    }
    const name = `users-${String(f + 1).padStart(5, '0')}.json`;
    const text = JSON.stringify(records);
    fs.writeFileSync(path.join(out, name), text);
    const sha = crypto.createHash('sha256').update(text).digest('hex');
    await st.run("INSERT INTO import_files (id, run, name, dir, sha256, people, status, inserted, already, retried, permanent, updated_at) VALUES (?, 'bench', ?, ?, ?, ?, 'done', ?, 0, 0, 0, ?)",
      [fileKey(sha, 'bench'), name, out, sha, records.length, records.length, Date.now()]);
  }
  await st.close();
  return state;
}

async function timed(fn) {
  const t0 = process.hrtime.bigint();
  const r = await fn();
  return { r, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

/** An empty MariaDB database `name` (dropped first if a killed run left it); returns its URL. */
async function freshDatabase(base, name) {
  const admin = await openDb(`${base}/test`);
  await admin.run(`DROP DATABASE IF EXISTS ${name}`);
  await admin.run(`CREATE DATABASE ${name}`);
  await admin.close();
  return `${base}/${name}`;
}

async function mode(base, link, n, dir) {
  const name = `trickle_bench_${link}_${process.pid}`;
  const url = await freshDatabase(base, name);
  try {
    await seed(url, link, n);
    const state = await importState(path.join(dir, link), n);
    const cfg = { products: [{ name: 'paste', db: url, format: 'bcrypt', ...(link === 'table' ? { link: 'table' } : {}) }] };
    const run = await timed(() => backfill(cfg, { state }));
    if (run.r.updated !== n) throw new Error(`backfill (${link}) wrote ${run.r.updated} of ${n}`);
    const rerun = await timed(() => backfill(cfg, { state }));
    // Baselines on the same rows, back to unlinked.
    const db = await openDb(url);
    const sample = Math.min(n, 10000);
    await db.run('UPDATE accounts SET auth0_user_id = NULL');
    const perRow = await timed(async () => {
      for (let i = 0; i < sample; i += 500) {
        await db.transaction(async (t) => {
          for (let k = i; k < Math.min(sample, i + 500); k++) await t.run('UPDATE accounts SET auth0_user_id = ? WHERE id = ? AND auth0_user_id IS NULL', [`auth0|tp_${k}`, `p${k}`]);
        });
      }
    });
    const subSample = 200;
    const subquery = await timed(async () => {
      for (let k = sample; k < sample + subSample && k < n; k++) {
        await db.run(link === 'table'
          ? 'UPDATE accounts SET auth0_user_id = ? WHERE auth0_user_id IS NULL AND id IN (SELECT account_id FROM trickle_person_link WHERE person_id = ?)'
          : 'UPDATE accounts SET auth0_user_id = ? WHERE auth0_user_id IS NULL AND id IN (SELECT id FROM (SELECT id FROM accounts WHERE person_id = ?) x)', [`auth0|tp_${k}`, `tp_${k}`]);
      }
    });
    await db.close();
    const round = (x, d = 0) => Number(x.toFixed(d));
    const pps = n / run.seconds;
    const perRowPps = sample / perRow.seconds;
    const subPps = subSample / subquery.seconds;
    return {
      people: n, seconds: round(run.seconds, 2), backfill_people_per_second: round(pps), noop_rerun_seconds: round(rerun.seconds, 3),
      baseline_per_row_people_per_second: round(perRowPps), vs_per_row: round(pps / perRowPps, 2), per_row_sample: sample,
      baseline_subquery_people_per_second: round(subPps, 1), vs_subquery: round(pps / subPps, 1), subquery_sample: subSample,
      indexes: run.r.indexes.paste
    };
  } finally {
    const a = await openDb(`${base}/test`);
    await a.run(`DROP DATABASE IF EXISTS ${name}`);
    await a.close();
  }
}

/**
 * A declared schema: a `customers` table with its own column names (integer ids, a mixed-case
 * `Email`, the ids in `trickle_person`/`auth0_id`, a non-binary collation), through backfill()
 * itself. Baseline on the same rows, same run: the per-row loop backfill used for declared
 * schemas before (auth0Sql, one UPDATE per account, 500 per transaction), timed on a sample.
 */
async function declaredMode(base, n, dir) {
  const name = `trickle_bench_declared_${process.pid}`;
  const url = await freshDatabase(base, name);
  try {
    let db = await openDb(url);
    await db.exec(`CREATE TABLE customers (customer_id INT PRIMARY KEY, \`Email\` VARCHAR(320) NOT NULL, pass_hash VARCHAR(100), full_name TEXT,
      trickle_person VARCHAR(64), auth0_id VARCHAR(128)) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
    for (let i = 0; i < n; i += 2000) {
      const rows = [];
      for (let k = i; k < Math.min(n, i + 2000); k++) rows.push([k + 1, `Person.${k}@Example.com`, '$2b$10$abcdefghijklmnopqrstuv', `Person ${k}`, `tp_${k}`]);
      await db.run(`INSERT INTO customers (customer_id, \`Email\`, pass_hash, full_name, trickle_person) VALUES ${rows.map(() => '(?, ?, ?, ?, ?)').join(', ')}`, rows.flat());
    }
    await db.close();
    const state = await importState(dir, n, { product: 'shop', id: (k) => String(k + 1) });
    const cfg = { products: [{ name: 'shop', db: url, table: 'customers', format: 'bcrypt',
      columns: { id: 'customer_id', email: 'Email', password: 'pass_hash', name: 'full_name', person_id: 'trickle_person', auth0_user_id: 'auth0_id' } }] };
    const run = await timed(() => backfill(cfg, { state }));
    if (run.r.updated !== n) throw new Error(`backfill (declared) wrote ${run.r.updated} of ${n}`);
    const rerun = await timed(() => backfill(cfg, { state }));
    db = await openDb(url);
    const sample = Math.min(n, 10000);
    await db.run('UPDATE customers SET auth0_id = NULL');
    const sql = auth0Sql(db, cfg.products[0]);
    const perRow = await timed(async () => {
      for (let i = 0; i < sample; i += 500) {
        await db.transaction(async (t) => {
          for (let k = i; k < Math.min(sample, i + 500); k++) await t.run(sql, [`auth0|tp_${k}`, String(k + 1)]);
        });
      }
    });
    await db.close();
    const round = (x, d = 0) => Number(x.toFixed(d));
    const pps = n / run.seconds;
    const perRowPps = sample / perRow.seconds;
    return {
      people: n, table: 'customers (customer_id INT, Email, trickle_person, auth0_id; utf8mb4_general_ci)', seconds: round(run.seconds, 2), backfill_people_per_second: round(pps),
      noop_rerun_seconds: round(rerun.seconds, 3), baseline_per_row_people_per_second: round(perRowPps), vs_per_row: round(pps / perRowPps, 2), per_row_sample: sample,
      indexes: run.r.indexes.shop
    };
  } finally {
    const a = await openDb(`${base}/test`);
    await a.run(`DROP DATABASE IF EXISTS ${name}`);
    await a.close();
  }
}

async function backfillBench() {
  const n = Number(process.env.TRICKLE_BENCH_BACKFILL_PEOPLE || 100000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-bench-backfill-'));
  try {
    fs.mkdirSync(path.join(dir, 'column'));
    fs.mkdirSync(path.join(dir, 'table'));
    fs.mkdirSync(path.join(dir, 'declared'));
    const column = await mode(MYSQL, 'column', n, dir);
    console.log(`  backfill of ${n} people, link column: ${column.backfill_people_per_second} people/s (×${column.vs_per_row} the UPDATE per row, ×${column.vs_subquery} the IN subquery); no-op rerun ${column.noop_rerun_seconds} s`);
    const table = await mode(MYSQL, 'table', n, dir);
    console.log(`  backfill of ${n} people, link table:  ${table.backfill_people_per_second} people/s (×${table.vs_per_row} the UPDATE per row, ×${table.vs_subquery} the IN subquery); no-op rerun ${table.noop_rerun_seconds} s`);
    const declared = await declaredMode(MYSQL, n, path.join(dir, 'declared'));
    console.log(`  backfill of ${n} people, declared schema (customers): ${declared.backfill_people_per_second} people/s (×${declared.vs_per_row} the per-row loop it replaces); no-op rerun ${declared.noop_rerun_seconds} s`);
    return { database: 'MariaDB', column, table, declared,
      backfill_people_per_second: { column: column.backfill_people_per_second, table: table.backfill_people_per_second, declared: declared.backfill_people_per_second },
      vs_baseline: { column: column.vs_per_row, table: table.vs_per_row, declared: declared.vs_per_row } };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

module.exports = { backfillBench };

if (require.main === module) {
  backfillBench().then((r) => {
    // Run alone: merged into the results of the last full bench run.
    const OUT = path.join(__dirname, 'results.json');
    const results = fs.existsSync(OUT) ? JSON.parse(fs.readFileSync(OUT, 'utf8')) : {};
    results.bulk = { ...(results.bulk || {}), backfill: { measured_at: new Date().toISOString(), node: process.version, ...r } };
    fs.writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
    console.log(JSON.stringify(r, null, 2));
  }, (e) => { console.error(e); process.exit(1); });
}
