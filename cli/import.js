// `trickle import`: the job runner. Files are registered in a state database shared by every
// replica; at most 2 jobs are in flight across all of them (the tenant's limit), held by leases
// that expire, so a replica that dies has its work taken over. Every step is recorded before the
// next begins, so the runner can be killed at any moment and started again.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { openDb } = require('./db');
const { tenantClient, BudgetExceeded } = require('./tenant-client');
const { loadCore } = require('../js-shim/node');

const MAX_IN_FLIGHT = 2;
/** The `import_present` email recorded when a job failed users it did not list. */
const UNKNOWN_PEOPLE = '*';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS import_files (name VARCHAR(191) PRIMARY KEY, dir TEXT NOT NULL, sha256 VARCHAR(64) NOT NULL, people INT NOT NULL,
    status VARCHAR(20) NOT NULL, job_id VARCHAR(100), owner VARCHAR(64), lease_until BIGINT, attempts INT NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL DEFAULT 0, inserted INT, already INT, retried INT, permanent INT, detail TEXT, updated_at BIGINT NOT NULL)`,
  'CREATE TABLE IF NOT EXISTS import_lock (id INT PRIMARY KEY)',
  'CREATE TABLE IF NOT EXISTS import_permanent (file VARCHAR(191) NOT NULL, email VARCHAR(320) NOT NULL, codes TEXT NOT NULL, reason TEXT)',
  'CREATE TABLE IF NOT EXISTS import_jobs (job_id VARCHAR(100) PRIMARY KEY, file VARCHAR(191) NOT NULL, owner VARCHAR(64), submitted_at BIGINT NOT NULL)',
  // People the tenant already had when their file was imported (DUPLICATED_USER / CONFLICT): not
  // imported by us, so nothing we hold proves which of their accounts that tenant user owns.
  // Backfill writes nothing for them; the post-login chain tells the accounts that user proves.
  `CREATE TABLE IF NOT EXISTS import_present (file VARCHAR(191) NOT NULL, email VARCHAR(320) NOT NULL, person_id VARCHAR(64), codes TEXT NOT NULL,
    recorded_at BIGINT NOT NULL, PRIMARY KEY (file, email))`,
  // People of a file whose import is retried in another file: not imported by this file's job.
  'CREATE TABLE IF NOT EXISTS import_retried (file VARCHAR(191) NOT NULL, email VARCHAR(320) NOT NULL, retry_file VARCHAR(191) NOT NULL, PRIMARY KEY (file, email))'
];

/** An error of the bulk commands with a stable `code` (the message names the file or row). */
class BulkError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}

const norm = (e) => String(e || '').trim().toLowerCase();

/**
 * Reads one registered import file as an array of records, checking it is the file that was
 * registered (sha256) and is a JSON array of objects. Throws a BulkError naming the file.
 */
function readImportFile(dir, name, sha256, codePrefix = 'import') {
  const file = path.join(dir, name);
  let text;
  try {
    text = fs.readFileSync(file);
  } catch (e) {
    throw new BulkError(`${codePrefix}.file_missing`, `cannot read ${file}: ${e.code || e.message}`);
  }
  if (sha256 && crypto.createHash('sha256').update(text).digest('hex') !== sha256) {
    throw new BulkError(`${codePrefix}.file_changed`, `${file} changed since it was registered (sha256 differs)`);
  }
  let records;
  try {
    records = JSON.parse(text.toString('utf8'));
  } catch (e) {
    throw new BulkError(`${codePrefix}.file_malformed`, `${file} is not JSON: ${e.message}`);
  }
  if (!Array.isArray(records)) throw new BulkError(`${codePrefix}.file_malformed`, `${file} is not a JSON array of users`);
  records.forEach((r, i) => {
    if (!r || typeof r !== 'object' || Array.isArray(r) || typeof r.email !== 'string' || !r.email) {
      throw new BulkError(`${codePrefix}.record_malformed`, `${file} record ${i}: not a user with an email`);
    }
  });
  return records;
}

function insertIgnore(kind, table, cols, values) {
  const marks = cols.map(() => '?').join(', ');
  if (kind === 'mysql') return [`INSERT IGNORE INTO ${table} (${cols.join(', ')}) VALUES (${marks})`, values];
  if (kind === 'postgres') return [`INSERT INTO ${table} (${cols.join(', ')}) VALUES (${marks}) ON CONFLICT DO NOTHING`, values];
  return [`INSERT OR IGNORE INTO ${table} (${cols.join(', ')}) VALUES (${marks})`, values];
}

async function openState(url) {
  const db = await openDb(url);
  for (const s of SCHEMA) await db.exec(s);
  await db.run(...insertIgnore(db.kind, 'import_lock', ['id'], [1]));
  return db;
}

/** Registers the files of an export directory (idempotent: a file is registered once). */
async function register(db, dir) {
  const file = path.join(dir, 'manifest.json');
  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new BulkError('import.manifest_unreadable', `cannot read ${file}: ${e.code || e.message}`);
  }
  if (!manifest || !Array.isArray(manifest.files)) throw new BulkError('import.manifest_malformed', `${file} has no files list`);
  manifest.files.forEach((f, i) => {
    const ok = f && typeof f.name === 'string' && /^[A-Za-z0-9._-]{1,191}$/.test(f.name) && typeof f.sha256 === 'string' && /^[0-9a-f]{64}$/.test(f.sha256)
      && Number.isInteger(f.people) && f.people >= 0;
    if (!ok) throw new BulkError('import.manifest_malformed', `${file}: files[${i}] needs a plain file name, a sha256 and a people count`);
  });
  let added = 0;
  for (const f of manifest.files) {
    const r = await db.run(...insertIgnore(db.kind, 'import_files', ['name', 'dir', 'sha256', 'people', 'status', 'updated_at'], [f.name, path.resolve(dir), f.sha256, f.people, 'ready', Date.now()]));
    added += r.changes;
    if (!r.changes) {
      // Registered before: the same file again (a restart) is fine; another file of that name
      // (a later export) would be silently skipped, its people never imported.
      const known = (await db.all('SELECT dir, sha256 FROM import_files WHERE name = ?', [f.name]))[0];
      if (known && known.sha256 !== f.sha256) {
        throw new BulkError('import.file_name_taken', `${f.name} of ${path.resolve(dir)} differs from the file of that name already registered from ${known.dir}; import a later export with its own state database (--state)`);
      }
    }
  }
  return { files: manifest.files.length, added };
}

async function counts(db) {
  const rows = await db.all('SELECT status, COUNT(*) AS n, SUM(people) AS people FROM import_files GROUP BY status');
  const out = { ready: 0, submitting: 0, submitted: 0, done: 0, failed: 0, people: 0, peopleDone: 0 };
  for (const r of rows) {
    out[r.status] = Number(r.n);
    out.people += Number(r.people);
    if (r.status === 'done') out.peopleDone += Number(r.people);
  }
  return out;
}

/**
 * Runs until every registered file is done or failed. Options: {state, tenant: {url, clientId,
 * clientSecret, connectionId, audience}, upsert, leaseMs, budget, maxAttempts, dryRun, log,
 * progress, replica}. Returns the summary.
 */
async function runImport(options) {
  const o = { leaseMs: 30000, maxAttempts: 6, upsert: false, log: () => {}, progress: null, ...options };
  if (o.upsert) {
    // An upsert overwrites the app_metadata of a user the tenant already has: a user someone else
    // created at login (maybe with a pre-registered address) would be marked bulkImported with
    // every account proven, and the post-login fan-out would tell those accounts its id.
    throw new BulkError('import.upsert_refused', 'upsert would rewrite the metadata of users the tenant already has, proving accounts for them that they never proved; people already present are left to the login flow');
  }
  const me = o.replica || `replica-${crypto.randomBytes(6).toString('hex')}`;
  const db = await openState(o.state);
  const core = loadCore('full');
  const client = tenantClient({ ...o.tenant, budget: o.budget || Infinity, log: o.log });
  const polls = new Map(); // job_id → next poll time
  const started = Date.now();
  const startCounts = await counts(db);
  const tx = (fn) => db.transaction(async (t) => {
    const q = t || db;
    if (db.kind !== 'sqlite') await q.all(`SELECT id FROM import_lock WHERE id = 1${db.kind === 'mysql' || db.kind === 'postgres' ? ' FOR UPDATE' : ''}`);
    return fn(q);
  });
  const set = (name, fields) => {
    const keys = Object.keys(fields);
    return db.run(`UPDATE import_files SET ${keys.map((k) => `${k} = ?`).join(', ')}, updated_at = ? WHERE name = ?`, [...keys.map((k) => fields[k]), Date.now(), name]);
  };
  const backoff = (attempts) => Math.min(60000, 500 * 2 ** attempts) * (0.75 + Math.random() / 2);

  async function claim() {
    return tx(async (q) => {
      const now = Date.now();
      // Leases of replicas that died are taken over: their jobs are still running at the tenant.
      await q.run(`UPDATE import_files SET owner = ?, lease_until = ? WHERE status IN ('submitting', 'submitted') AND (lease_until IS NULL OR lease_until < ?)`, [me, now + o.leaseMs, now]);
      const inFlight = Number((await q.all("SELECT COUNT(*) AS n FROM import_files WHERE status IN ('submitting', 'submitted')"))[0].n);
      if (inFlight >= MAX_IN_FLIGHT) return null;
      const next = (await q.all(`SELECT name FROM import_files WHERE status = 'ready' AND next_at <= ? ORDER BY next_at, name LIMIT 1`, [now]))[0];
      if (!next) return null;
      await q.run(`UPDATE import_files SET status = 'submitting', owner = ?, lease_until = ?, updated_at = ? WHERE name = ? AND status = 'ready'`, [me, now + o.leaseMs, now, next.name]);
      return next.name;
    });
  }

  async function submit(name) {
    const row = (await db.all('SELECT * FROM import_files WHERE name = ?', [name]))[0];
    const file = path.join(row.dir, name);
    let text;
    try {
      text = fs.readFileSync(file);
    } catch (e) {
      await set(name, { status: 'failed', owner: null, detail: `import.file_missing: cannot read ${file}: ${e.code || e.message}` });
      o.log({ event: 'file_failed', file: name, code: 'import.file_missing' });
      return;
    }
    if (crypto.createHash('sha256').update(text).digest('hex') !== row.sha256) {
      await set(name, { status: 'failed', owner: null, detail: 'the file changed since it was registered (sha256 differs)' });
      return;
    }
    if (o.dryRun) {
      await set(name, { status: 'ready', owner: null, next_at: 0 });
      o.log({ event: 'dry_run_would_submit', file: name, people: row.people, bytes: text.length });
      return 'dry';
    }
    const body = new FormData();
    body.append('users', new Blob([text], { type: 'application/json' }), name);
    body.append('connection_id', o.tenant.connectionId);
    body.append('upsert', String(!!o.upsert));
    body.append('external_id', name.slice(0, 60));
    body.append('send_completion_email', 'false');
    let res;
    try {
      res = await client.call('/api/v2/jobs/users-imports', { method: 'POST', body });
    } catch (e) {
      if (e instanceof BudgetExceeded) throw e;
      await set(name, { status: 'ready', owner: null, attempts: row.attempts + 1, next_at: Date.now() + backoff(row.attempts), detail: e.message });
      return;
    }
    if (res.status === 201 || res.status === 200 || res.status === 202) {
      const job = await res.json();
      await set(name, { status: 'submitted', job_id: job.id, attempts: row.attempts + 1, detail: null });
      await db.run(...insertIgnore(db.kind, 'import_jobs', ['job_id', 'file', 'owner', 'submitted_at'], [job.id, name, me, Date.now()]));
      o.log({ event: 'job_submitted', file: name, job: job.id, people: row.people });
      polls.set(job.id, Date.now() + 500);
    } else if (res.status === 429 || res.status >= 500) {
      // The tenant's own job limit (another runner, or a job we lost track of): wait and retry.
      await set(name, { status: 'ready', owner: null, next_at: Date.now() + backoff(Math.min(row.attempts, 4)), detail: `HTTP ${res.status}` });
    } else {
      await set(name, { status: 'failed', owner: null, detail: `submit refused: HTTP ${res.status} ${(await res.text()).slice(0, 200)}` });
      o.log({ event: 'file_failed', file: name, status: res.status });
    }
  }

  async function finishJob(row, job) {
    // Errors are read only when the summary reports some: one request less per clean job.
    let errors = [];
    if (!job.summary || Number(job.summary.failed) > 0) {
      const res = await client.call(`/api/v2/jobs/${encodeURIComponent(row.job_id)}/errors`);
      errors = res.status === 204 ? [] : await res.json();
    }
    if (!Array.isArray(errors)) throw new BulkError('import.errors_malformed', `job ${row.job_id}: the errors of the job are not a list`);
    const classified = errors.length ? core.call('classify_import_errors', { errors }) : { fates: [] };
    const fates = classified.fates;
    if (!Array.isArray(fates) || fates.length !== errors.length) {
      throw new BulkError('import.errors_malformed', `job ${row.job_id}: its errors could not be classified (${(classified.error && classified.error.code) || 'no fates'})`);
    }
    // The file's own records name each person's id; the error list is read against them. A file
    // that cannot be read leaves the job unfinished, to be read again once the file is back.
    const records = errors.length ? readImportFile(row.dir, row.name, row.sha256) : [];
    const byEmail = new Map(records.map((r) => [norm(r.email), r]));
    const retryEmails = new Set();
    let already = 0;
    let permanent = 0;
    for (let i = 0; i < errors.length; i++) {
      const user = (errors[i] && errors[i].user) || {};
      const email = norm(user.email);
      if (fates[i] === 'already_present') {
        already++;
        const record = byEmail.get(email);
        const personId = (record && typeof record.user_id === 'string' && record.user_id) || (typeof user.user_id === 'string' && user.user_id) || null;
        const codes = ((errors[i] && errors[i].errors) || []).map((e) => e && e.code).join(',');
        await db.run(...insertIgnore(db.kind, 'import_present', ['file', 'email', 'person_id', 'codes', 'recorded_at'], [row.name, email, personId ? personId.slice(0, 64) : null, codes.slice(0, 1000), Date.now()]));
        o.log({ event: 'already_present', file: row.name, person: personId, codes });
      } else if (fates[i] === 'retry') retryEmails.add(email);
      else {
        permanent++;
        const codes = (errors[i].errors || []).map((e) => e.code).join(',');
        await db.run('INSERT INTO import_permanent (file, email, codes, reason) VALUES (?, ?, ?, ?)', [row.name, email, codes, (errors[i].errors || []).map((e) => e.message).join('; ').slice(0, 1000)]);
      }
    }
    if (retryEmails.size) {
      const retry = records.filter((r) => retryEmails.has(norm(r.email)));
      const name = `${row.name.replace(/\.json$/, '')}.retry${row.attempts}.json`;
      for (const email of retryEmails) await db.run(...insertIgnore(db.kind, 'import_retried', ['file', 'email', 'retry_file'], [row.name, email, name]));
      const text = JSON.stringify(retry);
      fs.writeFileSync(path.join(row.dir, `${name}.tmp`), text);
      fs.renameSync(path.join(row.dir, `${name}.tmp`), path.join(row.dir, name));
      await db.run(...insertIgnore(db.kind, 'import_files', ['name', 'dir', 'sha256', 'people', 'status', 'updated_at', 'next_at'], [name, row.dir, crypto.createHash('sha256').update(text).digest('hex'), retry.length, 'ready', Date.now(), Date.now() + 5000]));
    }
    const s = job.summary || {};
    if (Number(s.failed || 0) > errors.length) {
      // The tenant failed more users than it listed: who they are is unknown, so none of the
      // file's people may be taken as imported by us (backfill skips the file and says so).
      await db.run(...insertIgnore(db.kind, 'import_present', ['file', 'email', 'person_id', 'codes', 'recorded_at'], [row.name, UNKNOWN_PEOPLE, null, `failed ${s.failed}, listed ${errors.length}`, Date.now()]));
      o.log({ event: 'import_errors_incomplete', file: row.name, job: row.job_id, failed: Number(s.failed), listed: errors.length });
    }
    await set(row.name, { status: 'done', owner: null, lease_until: null, inserted: Number(s.inserted || 0), already, retried: retryEmails.size, permanent, detail: null });
    o.log({ event: 'job_completed', file: row.name, job: row.job_id, inserted: s.inserted, already, retried: retryEmails.size, permanent });
  }

  async function poll(row) {
    const res = await client.call(`/api/v2/jobs/${encodeURIComponent(row.job_id)}`);
    if (res.status === 404) {
      await set(row.name, { status: 'ready', owner: null, job_id: null, next_at: Date.now() + backoff(row.attempts), detail: 'job unknown to the tenant' });
      return;
    }
    const job = await res.json();
    if (job.status === 'completed') {
      await finishJob(row, job);
      return 'finished';
    }
    if (job.status === 'failed' || job.status === 'expired') {
      const giveUp = row.attempts >= o.maxAttempts;
      await set(row.name, giveUp ? { status: 'failed', owner: null, detail: `job ${job.status} ${row.attempts} times` } : { status: 'ready', owner: null, job_id: null, next_at: Date.now() + backoff(row.attempts), detail: `job ${job.status}` });
      o.log({ event: giveUp ? 'file_failed' : 'job_retry', file: row.name, job: row.job_id, status: job.status });
      return 'finished';
    }
    // Poll sooner when the tenant says it is nearly done, rarely when it has far to go.
    const left = Number(job.time_left_seconds);
    // Near the end a late poll leaves a job slot idle, so poll often; far from it, rarely.
    const wait = job.status !== 'processing' ? 250 : !(left > 2) ? 200 : Math.min(10000, (left * 1000) / 2);
    polls.set(row.job_id, Date.now() + wait);
  }

  let stopReason = null;
  let lastProgress = 0;
  try {
    for (;;) {
      const now = Date.now();
      let name;
      while ((name = await claim())) {
        if ((await submit(name)) === 'dry') break;
      }
      const mine = await db.all("SELECT * FROM import_files WHERE owner = ? AND status IN ('submitting', 'submitted')", [me]);
      let freed = false;
      for (const row of mine) {
        if (row.status === 'submitting') {
          // Taken over from a replica that died while submitting: the tenant may or may not
          // have the job; submitting again is safe (existing users come back as already present).
          await set(row.name, { status: 'ready', owner: null });
          continue;
        }
        if ((polls.get(row.job_id) || 0) <= now && (await poll(row)) === 'finished') freed = true;
      }
      // A slot just came free: fill it at once rather than after the next sleep.
      if (freed && !o.dryRun) continue;
      await db.run("UPDATE import_files SET lease_until = ? WHERE owner = ? AND status IN ('submitting', 'submitted')", [Date.now() + o.leaseMs, me]);
      const c = await counts(db);
      if (o.progress && Date.now() - lastProgress > 500) {
        lastProgress = Date.now();
        o.progress(c, started, startCounts);
      }
      if (o.dryRun || (c.ready === 0 && c.submitting === 0 && c.submitted === 0)) break;
      const nextPoll = Math.min(...[...polls.values(), Date.now() + 1000]);
      await new Promise((r) => setTimeout(r, Math.max(50, Math.min(1000, nextPoll - Date.now()))));
    }
  } catch (e) {
    if (!(e instanceof BudgetExceeded)) throw e;
    stopReason = e.message;
  }
  const c = await counts(db);
  const totals = (await db.all('SELECT SUM(inserted) AS inserted, SUM(already) AS already, SUM(retried) AS retried, SUM(permanent) AS permanent FROM import_files'))[0];
  const present = await db.all('SELECT email, person_id, file, codes FROM import_present WHERE email <> ? ORDER BY recorded_at, email LIMIT 50', [UNKNOWN_PEOPLE]);
  await db.close();
  return {
    replica: me, files: c, inserted: Number(totals.inserted || 0), already_present: Number(totals.already || 0),
    // Not imported by us and never backfilled: left to the login flow, which proves their accounts.
    already_present_list: present.map((p) => ({ email: p.email, person_id: p.person_id, file: p.file, codes: p.codes })),
    retried: Number(totals.retried || 0),
    permanent: Number(totals.permanent || 0), requests: client.stats.requests, throttled: client.stats.throttled, seconds: (Date.now() - started) / 1000,
    stopped: stopReason
  };
}

module.exports = { runImport, register, openState, readImportFile, BulkError, norm, UNKNOWN_PEOPLE };
