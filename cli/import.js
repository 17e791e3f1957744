// `trickle import`: the job runner. Files are registered in a state database shared by every
// replica; at most 2 jobs are in flight across all of them (the tenant's limit), held by leases
// that expire, so a replica that dies has its work taken over. Every step is recorded before the
// next begins, so the runner can be killed at any moment and started again.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { openDb } = require('../lib/db');
const { tenantClient, BudgetExceeded, TenantConfigError } = require('./tenant-client');
const { openStorage, storageCache } = require('./storage');
const { loadCore } = require('../js-shim/node');
const { trickleBackoff } = require('../js-shim/retry');

const MAX_IN_FLIGHT = 2;
/** The `import_present` email recorded when a job failed users it did not list. */
const UNKNOWN_PEOPLE = '*';

// Files are keyed by their content and the export run (`<sha256>.<run>`), never by name: every
// export names its files users-00001.json …, and a later export's file of an earlier name is
// another file, to be imported too. `file` in the other tables is that key.
const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS import_files (id VARCHAR(191) PRIMARY KEY, run VARCHAR(64) NOT NULL, name VARCHAR(191) NOT NULL, dir TEXT NOT NULL, sha256 VARCHAR(64) NOT NULL, people INT NOT NULL,
    status VARCHAR(20) NOT NULL, job_id VARCHAR(100), owner VARCHAR(64), lease_until BIGINT, attempts INT NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL DEFAULT 0, inserted INT, already INT, retried INT, permanent INT, detail TEXT, percent INT, config_fp VARCHAR(64), last_failure TEXT,
    registered_at BIGINT, updated_at BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS import_runs (run VARCHAR(64) PRIMARY KEY, location TEXT NOT NULL, created_at VARCHAR(40), files INT NOT NULL, people INT NOT NULL, registered_at BIGINT NOT NULL)`,
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

/** The state key of a file: its content and the export run it belongs to. */
const fileKey = (sha256, run) => `${sha256}.${run}`;

/** An error of the bulk commands with a stable `code` (the message names the file or row). */
class BulkError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}

const norm = (e) => String(e || '').trim().toLowerCase();

/**
 * Reads one registered import file from its store (cli/storage.js) as an array of records,
 * checking it is the file that was registered (sha256) and is a JSON array of objects. Throws a
 * BulkError naming the file.
 */
async function readImportFile(store, name, sha256, codePrefix = 'import') {
  const file = store.describe(name);
  let text;
  try {
    text = await store.read(name);
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

/**
 * A state database of a trickle that keyed files by name is moved to the content key in place:
 * its files become run `v1` (they were one export, as that trickle allowed only one per state).
 */
async function migrateNameKeyed(db) {
  let old;
  try {
    old = await db.all('SELECT * FROM import_files');
  } catch (_) {
    return; // no table yet
  }
  if (!old.length) {
    if (!(await db.hasColumn('import_files', 'run'))) await db.exec('DROP TABLE import_files');
    return;
  }
  if ('run' in old[0]) return;
  await db.exec('ALTER TABLE import_files RENAME TO import_files_v1'); // MySQL/MariaDB's ALTER TABLE renames too
  await db.exec(SCHEMA[0]);
  for (const r of old) {
    const id = fileKey(r.sha256, 'v1');
    await db.run(`INSERT INTO import_files (id, run, name, dir, sha256, people, status, job_id, owner, lease_until, attempts, next_at, inserted, already, retried, permanent, detail, updated_at)
      VALUES (?, 'v1', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [id, r.name, r.dir, r.sha256, r.people, r.status, r.job_id, r.owner, r.lease_until, r.attempts, r.next_at, r.inserted, r.already, r.retried, r.permanent, r.detail, r.updated_at]);
    for (const t of ['import_permanent', 'import_jobs', 'import_present', 'import_retried']) {
      try { await db.run(`UPDATE ${t} SET file = ? WHERE file = ?`, [id, r.name]); } catch (_) { /* table of a later trickle */ }
    }
    try { await db.run('UPDATE import_retried SET retry_file = ? WHERE retry_file = ?', [id, r.name]); } catch (_) { /* idem */ }
  }
}

async function openState(url) {
  const db = await openDb(url);
  await migrateNameKeyed(db);
  for (const s of SCHEMA) await db.exec(s);
  await db.insertUnlessPresent('import_lock', { id: 1 });
  return db;
}

/** The export run of a manifest: its own content (created_at makes two exports differ). */
const runOf = (manifestText) => crypto.createHash('sha256').update(manifestText).digest('hex').slice(0, 16);

/**
 * Registers the files of an export (a directory or s3://bucket/prefix), keyed by content and
 * run, so a later export is never taken for an earlier one. A file registered before is not
 * registered again, and is said out loud (`skipped`, with its status). Returns `{run, location,
 * files, added, skipped}`.
 */
async function register(db, dir, { cfg, log = () => {} } = {}) {
  const store = openStorage(dir, cfg);
  try {
    const where = store.describe('manifest.json');
    let text;
    try {
      text = (await store.read('manifest.json')).toString('utf8');
    } catch (e) {
      throw new BulkError('import.manifest_unreadable', `cannot read ${where}: ${e.code || e.message}`);
    }
    let manifest;
    try {
      manifest = JSON.parse(text);
    } catch (e) {
      throw new BulkError('import.manifest_unreadable', `${where} is not JSON: ${e.message}`);
    }
    if (!manifest || !Array.isArray(manifest.files)) throw new BulkError('import.manifest_malformed', `${where} has no files list`);
    manifest.files.forEach((f, i) => {
      const ok = f && typeof f.name === 'string' && /^[A-Za-z0-9._-]{1,191}$/.test(f.name) && typeof f.sha256 === 'string' && /^[0-9a-f]{64}$/.test(f.sha256)
        && Number.isInteger(f.people) && f.people >= 0;
      if (!ok) throw new BulkError('import.manifest_malformed', `${where}: files[${i}] needs a plain file name, a sha256 and a people count`);
    });
    const run = runOf(text);
    const now = Date.now();
    await db.insertUnlessPresent('import_runs', {
      run, location: store.location, created_at: String(manifest.created_at || '').slice(0, 40), files: manifest.files.length, people: manifest.files.reduce((n, f) => n + f.people, 0), registered_at: now
    });
    let added = 0;
    const skipped = [];
    for (const f of manifest.files) {
      const id = fileKey(f.sha256, run);
      const inserted = await db.insertUnlessPresent('import_files', { id, run, name: f.name, dir: store.location, sha256: f.sha256, people: f.people, status: 'ready', registered_at: now, updated_at: now });
      if (inserted) added++;
      else {
        const known = (await db.all('SELECT status, detail FROM import_files WHERE id = ?', [id]))[0];
        skipped.push({ file: f.name, run, status: known ? known.status : 'unknown', ...(known && known.detail ? { detail: known.detail } : {}) });
      }
    }
    // Said out loud: which files this registration did not add, and why (registered before).
    if (skipped.length) {
      const by = {};
      for (const k of skipped) by[k.status] = (by[k.status] || 0) + 1;
      log({ event: 'files_already_registered', run, location: store.location, files: skipped.length, by_status: by, first: skipped.slice(0, 5) });
    }
    return { run, location: store.location, files: manifest.files.length, added, skipped };
  } finally {
    await store.close();
  }
}

/**
 * Puts failed files back to ready (`--retry-failed`), all of them or those of one run; their
 * reason is kept in `last_failure` and returned, so the summary can say what was retried and why
 * it had failed.
 */
async function retryFailed(db, { run } = {}) {
  const rows = await db.all(`SELECT id, name, run, detail FROM import_files WHERE status = 'failed'${run ? ' AND run = ?' : ''}`, run ? [run] : []);
  for (const r of rows) {
    await db.run("UPDATE import_files SET status = 'ready', owner = NULL, job_id = NULL, attempts = 0, next_at = 0, last_failure = ?, detail = NULL, updated_at = ? WHERE id = ? AND status = 'failed'",
      [r.detail || 'failed', Date.now(), r.id]);
  }
  return rows.map((r) => ({ file: r.name, run: r.run, reason: r.detail || 'failed' }));
}

/**
 * Files by status, people in all and people done; `peopleProgress` also counts the jobs in flight
 * by their `percentage_done` (as last polled, by whichever replica holds them).
 */
async function counts(db) {
  const rows = await db.all('SELECT status, COUNT(*) AS n, SUM(people) AS people, SUM(people * COALESCE(percent, 0)) AS partial FROM import_files GROUP BY status');
  const out = { ready: 0, submitting: 0, submitted: 0, done: 0, failed: 0, people: 0, peopleDone: 0, peopleProgress: 0 };
  for (const r of rows) {
    out[r.status] = Number(r.n);
    out.people += Number(r.people);
    if (r.status === 'done') out.peopleDone += Number(r.people);
    if (r.status === 'submitted') out.peopleProgress += Number(r.partial || 0) / 100;
  }
  out.peopleProgress = Math.floor(out.peopleProgress + out.peopleDone);
  return out;
}

/** What a tenant configuration is, for telling whether a failure's cause may have been fixed. */
const configPrint = (t = {}) => crypto.createHash('sha256').update(JSON.stringify([t.url, t.clientId, t.clientSecret, t.connectionId, t.audience])).digest('hex').slice(0, 32);

/**
 * Runs until every registered file is done or failed. Options: {state, tenant: {url, clientId,
 * clientSecret, connectionId, audience}, cfg (for `s3`), source: {run, location} (where this
 * replica reads the run it registered), upsert, leaseMs, budget, maxAttempts, dryRun,
 * retryFailed, signal (AbortSignal: stop, release the leases, summarise), log, progress,
 * replica}. Returns the summary: global counts, and `this_run` (what this replica did).
 *
 * Causes retrying cannot fix (credentials refused, an unknown connection, a tenant URL that
 * is not a tenant) stop the run at once with a TenantConfigError naming the setting; the file
 * being submitted goes back to ready, to be imported once the setting is fixed.
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
  // Before the state is touched: a malformed URL or missing setting is named at once.
  const client = tenantClient({ ...o.tenant, budget: o.budget || Infinity, log: o.log });
  const db = await openState(o.state);
  const core = loadCore('full');
  const stores = storageCache(o.cfg);
  const storeOf = (row) => stores.get(o.source && o.source.run === row.run && o.source.location ? o.source.location : row.dir);
  const polls = new Map(); // job_id → next poll time
  const started = Date.now();
  const fp = configPrint(o.tenant);
  const mine = { submitted: 0, completed: 0, inserted: 0, already_present: 0, retried: 0, permanent: 0, failed: 0, people_done: 0 };
  // Claims are serialised across replicas by the lock row.
  const tx = (fn) => db.transaction(async (t) => {
    await t.forUpdate('SELECT id FROM import_lock WHERE id = 1');
    return fn(t);
  });
  const set = (id, fields) => {
    const keys = Object.keys(fields);
    return db.run(`UPDATE import_files SET ${keys.map((k) => `${k} = ?`).join(', ')}, updated_at = ? WHERE id = ?`, [...keys.map((k) => fields[k]), Date.now(), id]);
  };
  const fail = async (row, detail, event) => {
    await set(row.id, { status: 'failed', owner: null, lease_until: null, detail: detail.slice(0, 2000), config_fp: fp });
    mine.failed++;
    o.log({ event: 'file_failed', file: row.name, run: row.run, reason: detail.slice(0, 300), ...event });
  };
  // How long a file whose submission or job failed `attempts` times waits (js-shim/retry.js).
  const backoff = (attempts) => trickleBackoff(attempts + 1, { base: 500, cap: 60000 }, Math.random);

  // Failed files are retried when asked (--retry-failed), or by themselves once their cause is
  // gone: the file readable and unchanged again, or a tenant setting changed since they failed.
  const retriedFailed = o.retryFailed ? await retryFailed(db) : [];
  if (!o.retryFailed) {
    for (const row of await db.all("SELECT * FROM import_files WHERE status = 'failed'")) {
      let fixed = false;
      if (/^import\.file_(missing|changed)/.test(row.detail || '')) {
        try { await readImportFile(storeOf(row), row.name, row.sha256); fixed = true; } catch (_) { fixed = false; }
      } else if (/^submit refused/.test(row.detail || '') && row.config_fp && row.config_fp !== fp) fixed = true;
      if (fixed) {
        await db.run("UPDATE import_files SET status = 'ready', owner = NULL, job_id = NULL, attempts = 0, next_at = 0, last_failure = ?, detail = NULL, updated_at = ? WHERE id = ? AND status = 'failed'", [row.detail, Date.now(), row.id]);
        retriedFailed.push({ file: row.name, run: row.run, reason: row.detail, automatic: true });
      }
    }
  }
  for (const r of retriedFailed) o.log({ event: 'failed_file_retried', ...r });
  const startCounts = await counts(db);

  async function claim() {
    return tx(async (q) => {
      const now = Date.now();
      // Leases of replicas that died are taken over: their jobs are still running at the tenant.
      await q.run(`UPDATE import_files SET owner = ?, lease_until = ? WHERE status IN ('submitting', 'submitted') AND (lease_until IS NULL OR lease_until < ?)`, [me, now + o.leaseMs, now]);
      const inFlight = Number((await q.all("SELECT COUNT(*) AS n FROM import_files WHERE status IN ('submitting', 'submitted')"))[0].n);
      if (inFlight >= MAX_IN_FLIGHT) return null;
      const next = (await q.all(`SELECT id FROM import_files WHERE status = 'ready' AND next_at <= ? ORDER BY next_at, name, id LIMIT 1`, [now]))[0];
      if (!next) return null;
      await q.run(`UPDATE import_files SET status = 'submitting', owner = ?, lease_until = ?, updated_at = ? WHERE id = ? AND status = 'ready'`, [me, now + o.leaseMs, now, next.id]);
      return next.id;
    });
  }

  async function submit(id) {
    const row = (await db.all('SELECT * FROM import_files WHERE id = ?', [id]))[0];
    const store = storeOf(row);
    let text;
    try {
      text = await store.read(row.name);
    } catch (e) {
      await fail(row, `import.file_missing: cannot read ${store.describe(row.name)}: ${e.code || e.message}`, { code: 'import.file_missing' });
      return;
    }
    if (crypto.createHash('sha256').update(text).digest('hex') !== row.sha256) {
      await fail(row, `import.file_changed: ${store.describe(row.name)} changed since it was registered (sha256 differs)`, { code: 'import.file_changed' });
      return;
    }
    if (o.dryRun) {
      await set(id, { status: 'ready', owner: null, next_at: 0 });
      o.log({ event: 'dry_run_would_submit', file: row.name, run: row.run, people: row.people, bytes: text.length });
      return 'dry';
    }
    const body = new FormData();
    body.append('users', new Blob([text], { type: 'application/json' }), row.name);
    body.append('connection_id', o.tenant.connectionId);
    body.append('upsert', String(!!o.upsert));
    body.append('external_id', `${row.run}-${row.name}`.slice(0, 60));
    body.append('send_completion_email', 'false');
    let res;
    try {
      res = await client.call('/api/v2/jobs/users-imports', { method: 'POST', body });
    } catch (e) {
      if (e instanceof BudgetExceeded || e instanceof TenantConfigError) {
        await set(id, { status: 'ready', owner: null, lease_until: null });
        throw e;
      }
      await set(id, { status: 'ready', owner: null, attempts: row.attempts + 1, next_at: Date.now() + backoff(row.attempts), detail: e.message });
      return;
    }
    if (res.status === 201 || res.status === 200 || res.status === 202) {
      const job = await res.json();
      await set(id, { status: 'submitted', job_id: job.id, attempts: row.attempts + 1, detail: null, percent: 0 });
      await db.insertUnlessPresent('import_jobs', { job_id: job.id, file: id, owner: me, submitted_at: Date.now() });
      mine.submitted++;
      o.log({ event: 'job_submitted', file: row.name, run: row.run, job: job.id, people: row.people });
      polls.set(job.id, Date.now() + 500);
    } else if (res.status === 429 || res.status >= 500) {
      // The tenant's own job limit (another runner, or a job we lost track of): wait and retry.
      await set(id, { status: 'ready', owner: null, next_at: Date.now() + backoff(Math.min(row.attempts, 4)), detail: `HTTP ${res.status}` });
    } else {
      const answer = (await res.text()).slice(0, 300);
      if ((res.status === 400 || res.status === 404) && /connection/i.test(answer)) {
        // Every file would be refused the same way: stop, and name the setting.
        await set(id, { status: 'ready', owner: null, lease_until: null });
        throw new TenantConfigError('import.connection_unknown', 'tenant.connectionId', `the tenant refused tenant.connectionId ${JSON.stringify(o.tenant.connectionId)}: HTTP ${res.status} ${answer}`);
      }
      await fail(row, `submit refused: HTTP ${res.status} ${answer}`, { status: res.status });
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
    const store = storeOf(row);
    const records = errors.length ? await readImportFile(store, row.name, row.sha256) : [];
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
        await db.insertUnlessPresent('import_present', { file: row.id, email, person_id: personId ? personId.slice(0, 64) : null, codes: codes.slice(0, 1000), recorded_at: Date.now() });
        o.log({ event: 'already_present', file: row.name, run: row.run, person: personId, codes });
      } else if (fates[i] === 'retry') retryEmails.add(email);
      else {
        permanent++;
        const codes = (errors[i].errors || []).map((e) => e.code).join(',');
        await db.run('INSERT INTO import_permanent (file, email, codes, reason) VALUES (?, ?, ?, ?)', [row.id, email, codes, (errors[i].errors || []).map((e) => e.message).join('; ').slice(0, 1000)]);
      }
    }
    if (retryEmails.size) {
      const retry = records.filter((r) => retryEmails.has(norm(r.email)));
      const name = `${row.name.replace(/\.json$/, '')}.retry${row.attempts}.json`;
      const text = JSON.stringify(retry);
      const sha = crypto.createHash('sha256').update(text).digest('hex');
      const retryId = fileKey(sha, row.run);
      for (const email of retryEmails) await db.insertUnlessPresent('import_retried', { file: row.id, email, retry_file: retryId });
      await store.write(name, text);
      await db.insertUnlessPresent('import_files', { id: retryId, run: row.run, name, dir: row.dir, sha256: sha, people: retry.length, status: 'ready', registered_at: Date.now(), updated_at: Date.now(), next_at: Date.now() + 5000 });
    }
    const s = job.summary || {};
    if (Number(s.failed || 0) > errors.length) {
      // The tenant failed more users than it listed: who they are is unknown, so none of the
      // file's people may be taken as imported by us (backfill skips the file and says so).
      await db.insertUnlessPresent('import_present', { file: row.id, email: UNKNOWN_PEOPLE, person_id: null, codes: `failed ${s.failed}, listed ${errors.length}`, recorded_at: Date.now() });
      o.log({ event: 'import_errors_incomplete', file: row.name, run: row.run, job: row.job_id, failed: Number(s.failed), listed: errors.length });
    }
    const r = await db.run("UPDATE import_files SET status = 'done', owner = NULL, lease_until = NULL, percent = 100, inserted = ?, already = ?, retried = ?, permanent = ?, detail = NULL, updated_at = ? WHERE id = ? AND status = 'submitted'",
      [Number(s.inserted || 0), already, retryEmails.size, permanent, Date.now(), row.id]);
    if (r.changes) {
      Object.assign(mine, { completed: mine.completed + 1, inserted: mine.inserted + Number(s.inserted || 0), already_present: mine.already_present + already, retried: mine.retried + retryEmails.size, permanent: mine.permanent + permanent, people_done: mine.people_done + row.people });
    }
    o.log({ event: 'job_completed', file: row.name, run: row.run, job: row.job_id, inserted: s.inserted, already, retried: retryEmails.size, permanent });
  }

  async function poll(row) {
    const res = await client.call(`/api/v2/jobs/${encodeURIComponent(row.job_id)}`);
    if (res.status === 404) {
      await set(row.id, { status: 'ready', owner: null, job_id: null, next_at: Date.now() + backoff(row.attempts), detail: 'job unknown to the tenant' });
      return;
    }
    const job = await res.json();
    if (job.status === 'completed') {
      await finishJob(row, job);
      return 'finished';
    }
    if (job.status === 'failed' || job.status === 'expired') {
      const giveUp = row.attempts >= o.maxAttempts;
      if (giveUp) await fail(row, `job ${job.status} ${row.attempts} times (last job ${row.job_id})`, { job: row.job_id, status: job.status });
      else {
        await set(row.id, { status: 'ready', owner: null, job_id: null, percent: 0, next_at: Date.now() + backoff(row.attempts), detail: `job ${job.status}` });
        o.log({ event: 'job_retry', file: row.name, run: row.run, job: row.job_id, status: job.status });
      }
      return 'finished';
    }
    const pct = Number(job.percentage_done);
    if (Number.isFinite(pct) && pct >= 0 && pct <= 100 && pct !== Number(row.percent)) await set(row.id, { percent: Math.floor(pct) });
    // Near the end a late poll leaves a job slot idle, so poll often; far from it, rarely.
    const left = Number(job.time_left_seconds);
    const wait = job.status !== 'processing' ? 250 : !(left > 2) ? 200 : Math.min(10000, (left * 1000) / 2);
    polls.set(row.job_id, Date.now() + wait);
  }

  /** Who holds the job slots, when this replica holds none and files wait. */
  async function waiting(c) {
    if (c.ready === 0 || c.submitted + c.submitting < MAX_IN_FLIGHT) return null;
    const held = await db.all("SELECT owner, lease_until, name FROM import_files WHERE status IN ('submitting', 'submitted')");
    if (held.some((h) => h.owner === me)) return null;
    return { holders: [...new Set(held.map((h) => h.owner))], until: Math.max(...held.map((h) => Number(h.lease_until || 0))) };
  }

  const sleep = (ms) => new Promise((r) => {
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); if (o.signal) o.signal.removeEventListener('abort', done); r(); }
    if (o.signal) o.signal.addEventListener('abort', done, { once: true });
  });
  let stopReason = null;
  let fatal = null;
  let lastProgress = 0;
  let wasWaiting = null;
  try {
    // The credentials are tried before any file is claimed: a refused secret stops here.
    if (!o.dryRun) await client.token();
    for (;;) {
      if (o.signal && o.signal.aborted) { stopReason = 'interrupted'; break; }
      const now = Date.now();
      let id;
      while ((id = await claim())) {
        if ((await submit(id)) === 'dry') break;
      }
      const held = await db.all("SELECT * FROM import_files WHERE owner = ? AND status IN ('submitting', 'submitted')", [me]);
      let freed = false;
      for (const row of held) {
        if (row.status === 'submitting') {
          // Taken over from a replica that died while submitting: the tenant may or may not
          // have the job; submitting again is safe (existing users come back as already present).
          await set(row.id, { status: 'ready', owner: null });
          continue;
        }
        if ((polls.get(row.job_id) || 0) <= now && (await poll(row)) === 'finished') freed = true;
      }
      // A slot just came free: fill it at once rather than after the next sleep.
      if (freed && !o.dryRun) continue;
      await db.run("UPDATE import_files SET lease_until = ? WHERE owner = ? AND status IN ('submitting', 'submitted')", [Date.now() + o.leaseMs, me]);
      const c = await counts(db);
      const w = o.dryRun ? null : await waiting(c);
      if (w && !wasWaiting) o.log({ event: 'waiting_for_lease', holders: w.holders, lease_until: new Date(w.until).toISOString(), ready: c.ready });
      wasWaiting = w;
      if (o.progress && Date.now() - lastProgress > 500) {
        lastProgress = Date.now();
        o.progress(c, started, startCounts, { waiting: w, replica: me, this_run: mine });
      }
      if (o.dryRun || (c.ready === 0 && c.submitting === 0 && c.submitted === 0)) break;
      const nextPoll = Math.min(...[...polls.values(), Date.now() + 1000]);
      await sleep(Math.max(50, Math.min(1000, nextPoll - Date.now())));
    }
  } catch (e) {
    if (e instanceof BudgetExceeded) stopReason = e.message;
    else if (e instanceof TenantConfigError) { stopReason = e.message; fatal = e; } else {
      await stores.close();
      await db.close();
      throw e;
    }
  }
  if (stopReason) {
    // Stopped early: the jobs in flight keep running at the tenant; their leases are given up
    // so another replica (or the next run) takes them over at once.
    await db.run("UPDATE import_files SET lease_until = 0 WHERE owner = ? AND status = 'submitted'", [me]);
    await db.run("UPDATE import_files SET status = 'ready', owner = NULL, lease_until = NULL WHERE owner = ? AND status = 'submitting'", [me]);
  }
  const c = await counts(db);
  const totals = (await db.all('SELECT SUM(inserted) AS inserted, SUM(already) AS already, SUM(retried) AS retried, SUM(permanent) AS permanent FROM import_files'))[0];
  const present = await db.all('SELECT p.email, p.person_id, f.name AS file, f.run, p.codes FROM import_present p LEFT JOIN import_files f ON f.id = p.file WHERE p.email <> ? ORDER BY p.recorded_at, p.email LIMIT 50', [UNKNOWN_PEOPLE]);
  const failedFiles = await db.all("SELECT name, run, detail, attempts FROM import_files WHERE status = 'failed' ORDER BY name, run LIMIT 50");
  await stores.close();
  await db.close();
  return {
    replica: me, files: c, inserted: Number(totals.inserted || 0), already_present: Number(totals.already || 0),
    // Not imported by us and never backfilled: left to the login flow, which proves their accounts.
    already_present_list: present.map((p) => ({ email: p.email, person_id: p.person_id, file: p.file, run: p.run, codes: p.codes })),
    retried: Number(totals.retried || 0),
    permanent: Number(totals.permanent || 0),
    // Why each failed file failed (retry with --retry-failed once the cause is fixed).
    failed_files: failedFiles.map((f) => ({ file: f.name, run: f.run, reason: f.detail, attempts: Number(f.attempts) })),
    retried_failed: retriedFailed,
    this_run: { ...mine },
    requests: client.stats.requests, throttled: client.stats.throttled, seconds: (Date.now() - started) / 1000,
    stopped: stopReason,
    ...(fatal ? { error: { code: fatal.code, setting: fatal.setting, message: fatal.message } } : {})
  };
}

module.exports = { runImport, register, retryFailed, openState, readImportFile, BulkError, norm, fileKey, runOf, counts, UNKNOWN_PEOPLE };
