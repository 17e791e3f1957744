// Bulk benchmarks: export throughput, bytes per person and memory on many synthetic people;
// people per file against a naive exporter; slot utilisation and requests per job in the
// simulator (jobs processed at TRICKLE_BENCH_IMPORT_RATE users/s, default 50, about 20 s a job).
// Sizes: TRICKLE_BENCH_PEOPLE (default 1 000 000), TRICKLE_BENCH_IMPORT_PEOPLE (default 6000).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const Database = require('better-sqlite3');
const { exportPeople } = require('../cli/bulk');

const SCHEMA = `CREATE TABLE accounts (id TEXT PRIMARY KEY, email TEXT NOT NULL, email_norm TEXT NOT NULL, email_verified INTEGER NOT NULL DEFAULT 0,
  name TEXT, given_name TEXT, family_name TEXT, created_at TEXT, password_hash TEXT, password_salt TEXT, totp_secret TEXT, person_id TEXT,
  auth0_user_id TEXT, auth0_updated_at TEXT); CREATE INDEX accounts_email ON accounts(email_norm);`;

/** Writes `n` synthetic people into three SQLite products (70/20/10 overlap) quickly. */
function synthesize(dir, n) {
  const dbs = ['paste', 'collect', 'transfer'].map((name) => {
    const db = new Database(path.join(dir, `${name}.sqlite`));
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.exec(SCHEMA);
    return { name, db, insert: db.prepare('INSERT INTO accounts (id, email, email_norm, email_verified, name, given_name, family_name, created_at, password_hash, password_salt, totp_secret) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)') };
  });
  const hashes = {
    paste: ['$2b$10$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW', null],
    collect: ['2dd47348967664fcf1e906b16a98c3e2a7c3b3b234023872c02834513b4ef7c0', 'a1b2c3d4e5f60718'],
    transfer: ['$pbkdf2-sha256$i=100000,l=32$TmFDbE5hQ2w$H6YXMPtJB3L3jvdiXqeqeN1bqKfyaj4r2pHbWVl1K8s', null]
  };
  for (const d of dbs) d.db.exec('BEGIN');
  for (let i = 0; i < n; i++) {
    const email = `person.${i.toString(36)}@example.com`;
    const x = (i * 2654435761 % 100) / 100;
    const count = x < 0.7 ? 1 : x < 0.9 ? 2 : 3;
    for (let k = 0; k < count; k++) {
      const d = dbs[(i + k) % 3];
      const [hash, salt] = hashes[d.name];
      d.insert.run(`${d.name[0]}${i}`, email, email, `Person ${i}`, 'Person', String(i), '2019-03-04T05:06:07Z', hash, salt, i % 10 === 0 ? 'JBSWY3DPEHPK3PXP' : null);
    }
  }
  for (const d of dbs) { d.db.exec('COMMIT'); d.db.close(); }
  return {
    products: [
      { name: 'paste', db: `sqlite:${path.join(dir, 'paste.sqlite')}`, format: 'bcrypt' },
      { name: 'collect', db: `sqlite:${path.join(dir, 'collect.sqlite')}`, format: 'sha256-salt-prefix' },
      { name: 'transfer', db: `sqlite:${path.join(dir, 'transfer.sqlite')}`, format: 'pbkdf2-phc' }
    ]
  };
}

/** The exporter a quick script would be: every field, nulls kept, pretty-printed. */
function naivePeoplePerFile(out, limit) {
  const records = JSON.parse(fs.readFileSync(path.join(out, 'users-00001.json'), 'utf8'));
  const naive = records.map((r) => ({
    email: r.email, email_verified: r.email_verified, user_id: r.user_id, username: null, given_name: r.given_name || null, family_name: r.family_name || null,
    name: r.name || null, nickname: null, picture: null, blocked: false, phone_number: null, phone_verified: null,
    password_hash: r.password_hash || null, custom_password_hash: r.custom_password_hash || null, app_metadata: r.app_metadata, user_metadata: {}, mfa_factors: r.mfa_factors || null
  }));
  const perPerson = naive.reduce((s, r) => s + Buffer.byteLength(JSON.stringify(r, null, 2)) + 4, 0) / naive.length;
  return Math.floor(limit / perPerson);
}

async function exportBench(n) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-bench-'));
  try {
    const t0 = Date.now();
    const cfg = synthesize(dir, n);
    const seeded = (Date.now() - t0) / 1000;
    let peak = 0;
    const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 50);
    const t1 = process.hrtime.bigint();
    const m = await exportPeople(cfg, path.join(dir, 'out'));
    const seconds = Number(process.hrtime.bigint() - t1) / 1e9;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    const full = m.files.slice(0, -1);
    const fill = full.length ? full.reduce((s, f) => s + f.bytes, 0) / (full.length * m.limit) : m.files[0].bytes / m.limit;
    const perFile = m.exported / m.files.length;
    const naive = naivePeoplePerFile(path.join(dir, 'out'), m.limit);
    return { people: n, seeded_seconds: seeded, seconds, people_per_second: m.read / seconds, bytes_per_person: m.bytes / m.exported, files: m.files.length, fill_ratio: fill, rss_peak_mb: peak / 1048576, people_per_file: perFile, naive_people_per_file: naive, people_per_file_vs_naive: perFile / naive };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Slot utilisation and requests per job: a real import into the simulator. */
async function importBench(people) {
  const { bulkSim } = require('../tests/node/support/bulk');
  const { prelink } = require('../cli/bulk');
  const { register, openState, runImport } = require('../cli/import');
  const b = await bulkSim({ people, importRate: Number(process.env.TRICKLE_BENCH_IMPORT_RATE || 50) });
  try {
    await prelink(b.cfg);
    const m = await exportPeople(b.cfg, b.out);
    const db = await openState(b.cfg.state);
    await register(db, b.out);
    await db.close();
    const r = await runImport({ state: b.cfg.state, tenant: b.cfg.tenant });
    const log = (await (await fetch(`${b.sim.tenant.url}/_sim/api/jobs`)).json()).log.filter((e) => e.type === 'users_import');
    // Time with both slots busy over the time from the first submission to the last completion.
    let active = 0;
    let last = log[0].at;
    let both = 0;
    for (const e of log) {
      if (active === 2) both += e.at - last;
      last = e.at;
      if (e.status === 'pending') active++;
      if (['completed', 'failed', 'expired'].includes(e.status)) active--;
    }
    const span = log[log.length - 1].at - log[0].at;
    // The last job runs alone by necessity: measure utilisation over the span where 2 could run.
    const lastDone = log.filter((e) => e.status === 'completed').slice(-2)[0].at;
    return { people, files: m.files.length, slot_utilization: both / Math.max(1, lastDone - log[0].at), slot_utilization_whole_run: both / Math.max(1, span), requests_per_job: r.requests / m.files.length, inserted: r.inserted };
  } finally {
    await b.close();
  }
}

async function bulkBench() {
  const n = Number(process.env.TRICKLE_BENCH_PEOPLE || 1000000);
  const e = await exportBench(n);
  console.log(`  export of ${n} people: ${e.people_per_second.toFixed(0)} people/s, ${e.bytes_per_person.toFixed(1)} bytes/person, ${e.files} files, fill ${(e.fill_ratio * 100).toFixed(2)} %, RSS peak ${e.rss_peak_mb.toFixed(0)} MB`);
  console.log(`  people per file ${e.people_per_file.toFixed(0)} vs naive ${e.naive_people_per_file} (×${e.people_per_file_vs_naive.toFixed(2)})`);
  const small = await exportBench(Math.max(1000, Math.floor(n / 10)));
  console.log(`  memory at ${small.people} people: RSS peak ${small.rss_peak_mb.toFixed(0)} MB (flat if close to the above)`);
  const i = await importBench(Number(process.env.TRICKLE_BENCH_IMPORT_PEOPLE || 6000));
  console.log(`  import of ${i.people} people in ${i.files} files: slot utilisation ${(i.slot_utilization * 100).toFixed(1)} %, ${i.requests_per_job.toFixed(1)} Management API requests per job`);
  const round = (x, d = 4) => Number(x.toFixed(d));
  return {
    people: n, people_per_second: round(e.people_per_second, 0), bytes_per_person: round(e.bytes_per_person, 1), files: e.files,
    fill_ratio: round(e.fill_ratio), people_per_file: round(e.people_per_file, 1), naive_people_per_file: e.naive_people_per_file,
    people_per_file_vs_naive: round(e.people_per_file_vs_naive, 3), rss_peak_mb: round(e.rss_peak_mb, 0),
    rss_peak_mb_at_tenth: round(small.rss_peak_mb, 0), import: { people: i.people, files: i.files, slot_utilization: round(i.slot_utilization), slot_utilization_whole_run: round(i.slot_utilization_whole_run), requests_per_job: round(i.requests_per_job, 2) },
    slot_utilization: round(i.slot_utilization)
  };
}

module.exports = { bulkBench };

if (require.main === module) bulkBench().then((r) => console.log(JSON.stringify(r, null, 2)), (e) => { console.error(e); process.exit(1); });
