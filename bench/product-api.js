// The product API's look-ups against MariaDB with 100 000 accounts in a declared table (an
// indexed, case-insensitive Email column), 32 clients at once: `trickle product-api` over HTTP
// beside the same SELECT run straight through a mysql2 pool of the same size (the baseline), in
// the same run. Reports look-ups per second and p50/p99 of both, and the p99 ratio (aim ≤ 1.5).
// `node bench/product-api.js` prints them; bench/run.js stores them in bench/results.json.
'use strict';
const crypto = require('crypto');
const http = require('http');
const { openDb } = require('../lib/db');
const { validateConfig } = require('../cli/config');
const { startProductApi } = require('../product-api/server');

const MYSQL = process.env.TRICKLE_BENCH_MYSQL || 'mysql://root@127.0.0.1:3306';
const HASH = '$2b$10$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW';

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];

/** Runs `one()` from `concurrency` workers for `ms`; returns {per_second, p50_ms, p99_ms, n}. */
async function drive(one, { concurrency, ms }) {
  const times = [];
  const until = Date.now() + ms;
  const worker = async () => {
    while (Date.now() < until) {
      const t = process.hrtime.bigint();
      await one();
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const secs = (Date.now() - started) / 1000;
  times.sort((a, b) => a - b);
  return { n: times.length, per_second: Math.round(times.length / secs), p50_ms: +pct(times, 0.5).toFixed(3), p99_ms: +pct(times, 0.99).toFixed(3) };
}

async function productApiBench({ accounts = 100000, concurrency = 32, ms = 8000, rounds = 3 } = {}) {
  const name = `trickle_bench_api_${process.pid}`;
  const admin = await openDb(`${MYSQL}/test`);
  await admin.run(`DROP DATABASE IF EXISTS ${name}`);
  await admin.run(`CREATE DATABASE ${name}`);
  await admin.close();
  const url = `${MYSQL}/${name}`;
  const db = await openDb(url);
  let api;
  try {
    await db.exec(`CREATE TABLE customers (customer_id INT PRIMARY KEY, Email VARCHAR(320) NOT NULL, pass_hash VARCHAR(100), full_name VARCHAR(200),
      verified TINYINT NOT NULL DEFAULT 1, trickle_person VARCHAR(64), auth0_id VARCHAR(128), INDEX (Email)) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
    for (let i = 0; i < accounts; i += 2000) {
      const rows = [];
      for (let j = i; j < Math.min(accounts, i + 2000); j++) rows.push(j + 1, `Person.${j}@Bench.Example`, HASH, `Person ${j}`);
      await db.run(`INSERT INTO customers (customer_id, Email, pass_hash, full_name) VALUES ${Array(rows.length / 4).fill('(?, ?, ?, ?)').join(', ')}`, rows);
    }
    const token = crypto.randomBytes(24).toString('hex');
    const cfg = validateConfig({
      products: [{ name: 'customers', db: url, table: 'customers', format: 'bcrypt', api: { url: 'x', token },
        columns: { id: 'customer_id', email: 'Email', password: 'pass_hash', name: 'full_name', email_verified: 'verified', person_id: 'trickle_person', auth0_user_id: 'auth0_id' } }]
    });
    // The rate limit is per product and protects its database; the benchmark measures capacity.
    api = await startProductApi(cfg, { port: 0, connections: concurrency, ratePerSecond: 1e6, log: () => {} });
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    const pick = () => `person.${Math.floor(Math.random() * accounts)}@bench.example`;
    const viaApi = () => new Promise((resolve, reject) => {
      http.get(`${api.url}/customers/trickle/accounts?email=${encodeURIComponent(pick())}`, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
        let n = 0;
        res.on('data', (d) => { n += d.length; });
        res.on('end', () => (res.statusCode === 200 && n > 100 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
      }).on('error', reject);
    });
    // The baseline: the look-up the API runs, straight through a pool of the same size.
    const pool = await openDb(url, { connections: concurrency });
    const sql = 'SELECT customer_id, Email, pass_hash, full_name, verified, trickle_person, auth0_id FROM customers WHERE Email = ? ORDER BY customer_id LIMIT 51';
    const plain = async () => { const r = await pool.all(sql, [pick()]); if (r.length !== 1) throw new Error('not found'); };
    await drive(viaApi, { concurrency, ms: 1500 });
    await drive(plain, { concurrency, ms: 1500 });
    const runs = [];
    for (let i = 0; i < rounds; i++) runs.push({ api: await drive(viaApi, { concurrency, ms }), baseline: await drive(plain, { concurrency, ms }) });
    await pool.close();
    agent.destroy();
    // The median round by the API's p99.
    runs.sort((a, b) => a.api.p99_ms - b.api.p99_ms);
    const mid = runs[Math.floor(runs.length / 2)];
    return {
      accounts, concurrency, seconds_per_round: ms / 1000, rounds,
      api: mid.api, baseline: mid.baseline,
      p99_vs_baseline: +(mid.api.p99_ms / mid.baseline.p99_ms).toFixed(3),
      throughput_vs_baseline: +(mid.api.per_second / mid.baseline.per_second).toFixed(3),
      p99_ratio_rounds: runs.map((r) => +(r.api.p99_ms / r.baseline.p99_ms).toFixed(3))
    };
  } finally {
    if (api) await api.close();
    await db.close();
    const a = await openDb(`${MYSQL}/test`);
    await a.run(`DROP DATABASE IF EXISTS ${name}`);
    await a.close();
  }
}

module.exports = { productApiBench };

if (require.main === module) {
  productApiBench().then((r) => {
    console.log(`product API look-ups, ${r.accounts} accounts in MariaDB, ${r.concurrency} at once: ${r.api.per_second}/s p50 ${r.api.p50_ms} ms p99 ${r.api.p99_ms} ms; `
      + `plain SQL ${r.baseline.per_second}/s p50 ${r.baseline.p50_ms} ms p99 ${r.baseline.p99_ms} ms; p99 ratio ${r.p99_vs_baseline} (rounds ${r.p99_ratio_rounds.join(', ')}; aim ≤ 1.5)`);
  }, (e) => { console.error(e); process.exit(1); });
}
