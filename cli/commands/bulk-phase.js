// The bulk commands (check, prelink, export, import, notify, backfill, verify) as the command line
// runs them: options in, the cli/ modules do the work, progress and one summary out. Refusals
// (config.*, schema.*, db.*, stream.*) print their code and exit 2.
'use strict';
const { fail, log, configError, summary } = require('./output');

/**
 * The import's progress: on a terminal, a bar over every registered person (jobs in flight count
 * by their percentage_done) with an ETA from this run's pace, and a line while another replica
 * holds the job slots; without one, an NDJSON progress line.
 */
function progressBar(c, started, start, extra = {}) {
  const w = extra.waiting;
  if (!process.stdout.isTTY) return log({ event: 'progress', ...c, this_run: extra.this_run });
  const total = c.people || 1;
  const done = Math.min(total, c.peopleProgress);
  const rate = (done - start.peopleProgress) / Math.max(1, (Date.now() - started) / 1000);
  const eta = rate > 0 ? Math.round((total - done) / rate) : null;
  const fmt = (s) => (s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`);
  const width = 30;
  const filled = Math.round((width * done) / total);
  const line = w
    ? `waiting for a job slot: ${w.holders.join(', ')} hold${w.holders.length === 1 ? 's' : ''} both until ${new Date(w.until).toISOString().slice(11, 19)}; ${c.ready} files ready, ${done}/${total} people`
    : `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${((100 * done) / total).toFixed(1)}% ${done}/${total} people, ${c.done} files done, ${c.submitted + c.submitting} in flight${c.failed ? `, ${c.failed} failed` : ''}${eta === null ? '' : `, ETA ${fmt(eta)}`}`;
  process.stdout.write(`\r${line.slice(0, (process.stdout.columns || 120) - 1).padEnd(Math.min(118, (process.stdout.columns || 120) - 1))}`);
}

async function bulkGuarded(command, values, int) {
  if (['prelink', 'export', 'verify', 'check'].includes(command)) {
    process.once('SIGINT', () => {
      summary({ summary: command, ok: false, interrupted: true }, `\ntrickle ${command}: interrupted\n`);
      process.exit(130);
    });
  }
  try {
    return await bulk(command, values, int);
  } catch (e) {
    if (!e || typeof e.code !== 'string' || !/^[a-z0-9_]+\.[a-z0-9_.]+$/.test(e.code)) throw e;
    process.stderr.write(`trickle ${command}: [${e.code}] ${e.message.replace(`${e.code}: `, '')}\n`);
    // Refused before anything was read or written: 2; a step that failed on the way: 1.
    if (!/^(config|schema|db|stream)\./.test(e.code)) return 1;
    if (!process.stdout.isTTY) process.stdout.write(JSON.stringify({ summary: command, ok: false, error: { code: e.code, message: e.message, ...(e.detail || {}) } }) + '\n');
    return 2;
  }
}

async function bulk(command, values, int) {
  const { loadConfig } = require('../config');
  const cfg = loadConfig(values.config || 'trickle.json');
  const state = values.state || cfg.state || 'sqlite:trickle-state.sqlite';
  const tenant = cfg.tenant || {};
  if (command === 'check') return check(cfg, state);
  if (command === 'prelink') {
    // On a terminal, one line that says where it is; the NDJSON log has prelink_progress lines.
    const progress = (x) => { if (process.stderr.isTTY) process.stderr.write(`\rprelink: ${x.phase} ${x.accounts}${x.of ? ` of ${x.of}` : ''} accounts`.padEnd(60)); };
    const r = await require('../bulk').prelink(cfg, { log, progress });
    if (process.stderr.isTTY) process.stderr.write('\n');
    summary({ summary: 'prelink', ok: true, ...r, conflicts: r.conflicts.length, conflict_list: r.conflicts.slice(0, 50) });
    return 0;
  }
  if (command === 'export') {
    if (!values.out) fail('export needs --out DIR');
    const m = await require('../bulk').exportPeople(cfg, values.out, { log, state });
    summary({ summary: 'export', ok: true, read: m.read, exported: m.exported, rejected: m.rejected, already_linked: m.already_linked, already_imported: m.already_imported,
      without_password: m.without_password, forced_reset: m.forced_reset, to_notify: m.to_notify, files: m.files.length, bytes: m.bytes });
    return 0;
  }
  if (command === 'import' || command === 'backfill' || command === 'notify') await stateDatabase(state);
  if (command === 'import') {
    if (!values.out) fail('import needs --out DIR or s3://bucket/prefix (the export)');
    for (const k of ['url', 'clientId', 'clientSecret', 'connectionId']) if (!tenant[k]) return configError(`tenant.${k}`, `configuration: tenant.${k} is required for import`);
    const { register, openState, runImport } = require('../import');
    const { tenantBase, TenantConfigError } = require('../tenant-client');
    try {
      tenantBase(tenant.url);
    } catch (e) {
      return configError(e.setting, e.message);
    }
    let reg;
    const db = await openState(state);
    try {
      reg = await register(db, values.out, { cfg, log });
    } finally {
      await db.close();
    }
    const { skipped, ...registered } = reg;
    log({ event: 'registered', ...registered, skipped: skipped.length });
    // Ctrl-C: stop claiming, give up the leases (the jobs run on at the tenant), summarise.
    const ac = new AbortController();
    const onSignal = () => ac.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let r;
    try {
      r = await runImport({ state, tenant, cfg, source: { run: reg.run, location: reg.location }, upsert: !!values.upsert, dryRun: !!values['dry-run'], retryFailed: !!values['retry-failed'],
        budget: values.budget === undefined ? Infinity : int('budget', 0, 0, 1e9), replica: values.replica, leaseMs: int('lease-ms', 30000, 1000, 3600000), log, progress: progressBar, signal: ac.signal });
    } catch (e) {
      if (e instanceof TenantConfigError) return configError(e.setting, e.message);
      throw e;
    } finally {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    }
    if (process.stdout.isTTY) process.stdout.write('\n');
    const registration = { run: reg.run, location: reg.location, files: reg.files, added: reg.added, already_registered: skipped.length,
      already_registered_by_status: skipped.reduce((m, k) => ({ ...m, [k.status]: (m[k.status] || 0) + 1 }), {}) };
    process.stdout.write(JSON.stringify({ summary: 'import', registration, ...r }) + '\n');
    if (r.error) {
      process.stderr.write(`trickle import: [${r.error.code.split(':')[0]}] ${r.error.message}\n  fix the setting ${r.error.setting} and run import again; nothing is lost\n`);
      return 2;
    }
    if (r.stopped === 'interrupted') return 130;
    if (r.failed_files.length && process.stderr.isTTY) for (const f of r.failed_files) process.stderr.write(`failed ${f.file} (run ${f.run}): ${f.reason}\n`);
    return r.stopped ? 3 : r.files.failed ? 1 : 0;
  }
  if (command === 'notify') {
    if (!values.out) fail('notify needs --out DIR or s3://bucket/prefix (the export)');
    const ac = new AbortController();
    process.once('SIGINT', () => ac.abort());
    const r = await require('../notify').notify(cfg, values.out, { state, dryRun: !!values['dry-run'], log, signal: ac.signal });
    summary({ summary: 'notify', ok: !r.failed, ...r });
    return r.interrupted ? 130 : r.failed ? 1 : 0;
  }
  if (command === 'backfill') {
    const via = values.via || 'db';
    if (!['db', 'api'].includes(via)) fail('--via must be db or api');
    const rc = require('../reconcile');
    // One joined UPDATE per product, whatever its schema (cli/reconcile.js backfill).
    const r = via === 'api' ? await rc.backfillViaApi(cfg, { state, log }) : await rc.backfill(cfg, { state, log });
    if (r.failed) {
      summary({ summary: 'backfill', ok: false, via, ...r });
      return 1;
    }
    summary({ summary: 'backfill', ok: !(r.skipped_files.length || r.conflicts.length), ...r });
    // Files whose people could not be told apart, or accounts claimed twice: a person must look.
    return r.skipped_files.length || r.conflicts.length ? 1 : 0;
  }
  const r = await require('../reconcile').verify(cfg, tenant);
  const ex = await require('../bulk').explainRejects(r, values.out, { strict: !!values.strict, cfg });
  const lazyWaiting = r.awaiting_proof.filter((a) => a.via === 'lazy').length;
  const failing = ex.missing.length || r.duplicated.length || r.mislinked.length || r.not_backfilled.length;
  const counts = { summary: 'verify', ok: !failing, people: r.people, tenant_users: r.tenant_users, missing: ex.missing.length, explained_rejects: ex.explained.length, strict: !!values.strict,
    duplicated: r.duplicated.length, imported: r.imported, lazy: r.lazy, social: r.social, clean: r.clean, awaiting_proof: r.awaiting_proof.length, awaiting_proof_lazy: lazyWaiting, mislinked: r.mislinked.length, not_backfilled: r.not_backfilled.length,
    ...(r.not_backfilled.length ? { next_step: 'trickle backfill' } : {}) };
  if (!process.stdout.isTTY) {
    for (const m of ex.missing) log({ event: 'missing', ...m });
    for (const m of ex.explained) log({ event: 'explained_reject', ...m });
    for (const d of r.duplicated) log({ event: 'duplicated', ...d });
    for (const a of r.awaiting_proof) log({ event: 'awaiting_proof', ...a });
    for (const m of r.mislinked) log({ event: 'mislinked', ...m });
    for (const m of r.not_backfilled) log({ event: 'not_backfilled', ...m });
    summary(counts);
    return failing ? 1 : 0;
  }
  process.stdout.write(`people in the products: ${r.people}\nusers in the tenant:    ${r.tenant_users}\nmissing:                ${ex.missing.length}\n`
    + `explained rejects:      ${ex.explained.length}${values.strict ? ' (counted as missing: --strict)' : ''}\nduplicated:             ${r.duplicated.length}\n`
    + `present, imported:      ${r.imported}\npresent, lazy flow:     ${r.lazy}\nevery account linked:   ${r.clean}\n`
    + `accounts awaiting proof: ${r.awaiting_proof.length} (${lazyWaiting} through the lazy flow)\nmislinked accounts:     ${r.mislinked.length}\n`
    + `not backfilled:         ${r.not_backfilled.length}${r.not_backfilled.length ? ' (imported people whose own accounts hold no Auth0 id yet: run trickle backfill)' : ''}\n`);
  for (const m of ex.missing.slice(0, 20)) process.stdout.write(`  missing ${m.email}${m.reason ? ` (${m.reason})` : ''}\n`);
  for (const m of ex.explained.slice(0, 20)) process.stdout.write(`  rejected by export ${m.email}: [${m.code}] ${m.reason}\n`);
  for (const d of r.duplicated.slice(0, 20)) process.stdout.write(`  duplicated ${d.email}\n`);
  for (const a of r.awaiting_proof.slice(0, 20)) process.stdout.write(`  awaiting proof ${a.email} (${a.via}): ${a.accounts.join(', ')}\n`);
  for (const m of r.mislinked.slice(0, 20)) process.stdout.write(`  mislinked ${m.account} holds ${m.auth0_user_id}, the tenant user is ${m.tenant_user_id}\n`);
  return failing ? 1 : 0;
}

/** Reaches the state database, creating it when it does not exist: true when it was created (db.unreachable when its server does not answer). */
async function ensureState(state) {
  const { ensureDatabase } = require('../../lib/db');
  const { TrickleError, redact } = require('../config');
  try {
    return await ensureDatabase(state);
  } catch (e) {
    throw new TrickleError('db.unreachable', `the state database ${redact(state)} cannot be reached or created: ${e.message}`);
  }
}

/** The state database of a command that writes it: reached or created, a creation logged. */
async function stateDatabase(state) {
  if (await ensureState(state)) log({ event: 'state_created', state: require('../config').redact(state) });
}

/** `trickle check`: what every product would be read from and written to, and the order, read through. */
async function check(cfg, state) {
  const products = require('../products');
  const { redact } = require('../config');
  const report = [];
  for (const p of cfg.products) {
    const db = await products.openProduct(p);
    let info;
    try {
      info = await products.inspectProduct(db, p);
    } finally {
      await db.close();
    }
    report.push({ product: p.name, db: redact(p.db), ...info });
  }
  // Every row, read through in order: an out-of-order product stops here, as it would prelink.
  const counts = await products.checkOrder(cfg.products);
  const warnings = [];
  for (const r of report) {
    r.accounts = counts[r.product];
    if (!r.order.binary) warnings.push(`product ${JSON.stringify(r.product)}: ${r.order.by} has collation ${r.order.collation}, not a binary one; the order was right this time, but a binary collation (utf8mb4_bin, "C") keeps it so`);
    if (r.legacy) warnings.push(`product ${JSON.stringify(r.product)}: no "table"/"columns" declared, the old default (table accounts with the simulator's columns) is used`);
  }
  const stateInfo = { state: redact(state), created: await ensureState(state) };
  if (!process.stdout.isTTY) {
    for (const r of report) log({ event: 'product', ...r });
    summary({ summary: 'check', ok: true, products: report.length, accounts: report.reduce((n, r) => n + r.accounts, 0), ...stateInfo, warnings });
    return 0;
  }
  for (const r of report) {
    process.stdout.write(`${r.product} (${r.db}): ${r.accounts} accounts in ${r.table}, passwords as ${r.format}\n  reads   ${Object.entries(r.reads).map(([k, v]) => `${k}=${v}`).join(', ')}\n`
      + `  writes  person id → ${r.writes.person_id}, Auth0 id → ${r.writes.auth0_user_id}\n  order   ${r.order.by} (${r.order.collation || 'collation unknown'}): in order\n`
      + `  schema changes: ${r.schema_changes.length ? r.schema_changes.join('; ') : 'none'}\n`
      + `  product API look-up: ${r.lookup.by}, served by ${r.lookup.index}\n`);
  }
  process.stdout.write(`state ${stateInfo.state}${stateInfo.created ? ' (created)' : ''}\n${warnings.map((w) => `warning: ${w}\n`).join('')}`);
  return 0;
}

module.exports = { bulkGuarded };
