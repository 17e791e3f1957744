#!/usr/bin/env node
// The `trickle` command.
'use strict';
const { parseArgs } = require('node:util');

const HELP = `trickle — move the users of legacy products into one Auth0 tenant

Usage:
  trickle sim  [--people N] [--port P] [--seed S] [--rules]   start the local simulator
  trickle demo [--people N]                                    drive a scripted migration through it
  trickle prelink  [--config F]                    one id per person across the product databases
  trickle export   [--config F] --out DIR          people without an Auth0 id → import files ≤ 500 000 bytes
  trickle import   [--config F] --out DIR [--state URL] [--dry-run] [--budget N] [--replica ID]
  trickle backfill [--config F] [--state URL] [--via db|api]   write auth0|<person id> into the accounts imported users own
  trickle verify   [--config F]                    reconcile products and tenant (reports only); exit 1 when anyone is missing, duplicated or mislinked
  trickle merge-service                                        run the merge service (configured by
                                                               environment, see merge-service/README.md)
  trickle --help

sim   Starts an Auth0-like tenant running dist/auth0/ unchanged, three products (paste,
      collect, transfer) with their own SQLite databases, and an SMTP mail catcher, all on
      localhost; prints the URLs and runs until interrupted.
demo  Starts the simulator, runs single-product logins, a multi-product login reaching the
      merge redirect, a product outage during fan-out and its recovery, a wrong password and
      a password reset, prints a report, and exits 0 only if every expectation held.
`;

function fail(message) {
  process.stderr.write(`trickle: ${message}\n\n${HELP}`);
  process.exit(2);
}

async function main(argv) {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        people: { type: 'string' }, port: { type: 'string' }, seed: { type: 'string' }, rules: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
        config: { type: 'string' }, out: { type: 'string' }, state: { type: 'string' }, 'dry-run': { type: 'boolean' }, upsert: { type: 'boolean' },
        budget: { type: 'string' }, replica: { type: 'string' }, 'lease-ms': { type: 'string' }, via: { type: 'string' }
      },
      strict: true
    }));
  } catch (e) {
    fail(e.message);
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const int = (name, dflt, min, max) => {
    if (values[name] === undefined) return dflt;
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min || n > max) fail(`--${name} must be a whole number from ${min} to ${max}`);
    return n;
  };
  if (command === 'sim') {
    const { startSim } = require('../sim');
    const sim = await startSim({ people: int('people', 200, 1, 1000000), port: int('port', 0, 0, 65535), seed: int('seed', 1, 0, 2 ** 31), pipeline: values.rules ? 'rules' : 'action' });
    process.stdout.write(`trickle simulator is running (${sim.people.length} people, pipeline: ${values.rules ? 'legacy Rules' : 'Action'})\n`);
    for (const [k, v] of Object.entries(sim.urls)) process.stdout.write(`  ${k.padEnd(9)} ${v}\n`);
    process.stdout.write(`  dashboard ${sim.tenant.url}/_sim\n  sample person: ${sim.people[0].email} / ${sim.people[0].accounts[0].password}\nPress Ctrl-C to stop.\n`);
    const stop = () => sim.close().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    return null;
  }
  if (['prelink', 'export', 'import', 'backfill', 'verify'].includes(command)) return bulk(command, values, int);
  if (command === 'merge-service') {
    const { startMergeService, configFromEnv } = require('../merge-service/server');
    let service;
    try {
      service = await startMergeService(configFromEnv());
    } catch (e) {
      fail(e.message);
    }
    process.stdout.write(`trickle merge service listening on ${service.url} (public URL ${service.publicUrl})\n`);
    const stop = () => service.close().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    return null;
  }
  if (command === 'demo') {
    const { runDemo } = require('../sim/demo');
    const r = await runDemo({ people: int('people', 60, 10, 100000) });
    return r.failed === 0 ? 0 : 1;
  }
  fail(`unknown command ${command}`);
  return 2;
}

/** JSON log lines, unless a person is watching a terminal. */
const log = (entry) => { if (!process.stdout.isTTY) process.stdout.write(JSON.stringify({ at: new Date().toISOString(), ...entry }) + '\n'); };

function progressBar(c, started, start) {
  if (!process.stdout.isTTY) return log({ event: 'progress', ...c });
  const total = c.people || 1;
  const done = c.peopleDone;
  const rate = (done - start.peopleDone) / Math.max(1, (Date.now() - started) / 1000);
  const eta = rate > 0 ? Math.round((total - done) / rate) : null;
  const width = 30;
  const filled = Math.round((width * done) / total);
  process.stdout.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} people, ${c.done} files done, ${c.submitted + c.submitting} in flight${eta === null ? '' : `, ETA ${eta}s`}   `);
}

async function bulk(command, values, int) {
  const { loadConfig } = require('../cli/products');
  const cfg = loadConfig(values.config || 'trickle.json');
  const state = values.state || cfg.state || 'sqlite:trickle-state.sqlite';
  const tenant = cfg.tenant || {};
  if (command === 'prelink') {
    const r = await require('../cli/bulk').prelink(cfg, { log });
    process.stdout.write(JSON.stringify({ summary: 'prelink', ...r, conflicts: r.conflicts.length, conflict_list: r.conflicts.slice(0, 50) }, null, 2) + '\n');
    return 0;
  }
  if (command === 'export') {
    if (!values.out) fail('export needs --out DIR');
    const m = await require('../cli/bulk').exportPeople(cfg, values.out, { log });
    process.stdout.write(JSON.stringify({ summary: 'export', read: m.read, exported: m.exported, rejected: m.rejected, already_linked: m.already_linked, files: m.files.length, bytes: m.bytes }, null, 2) + '\n');
    return 0;
  }
  if (command === 'import') {
    if (!values.out) fail('import needs --out DIR (the export directory)');
    for (const k of ['url', 'clientId', 'clientSecret', 'connectionId']) if (!tenant[k]) fail(`configuration: tenant.${k} is required for import`);
    const { register, openState, runImport } = require('../cli/import');
    const db = await openState(state);
    const reg = await register(db, values.out);
    await db.close();
    log({ event: 'registered', ...reg });
    const r = await runImport({ state, tenant, upsert: !!values.upsert, dryRun: !!values['dry-run'], budget: values.budget === undefined ? Infinity : int('budget', 0, 0, 1e9),
      replica: values.replica, leaseMs: int('lease-ms', 30000, 1000, 3600000), log, progress: progressBar });
    if (process.stdout.isTTY) process.stdout.write('\n');
    process.stdout.write(JSON.stringify({ summary: 'import', ...r }, null, 2) + '\n');
    return r.stopped ? 3 : r.files.failed ? 1 : 0;
  }
  if (command === 'backfill') {
    const via = values.via || 'db';
    if (!['db', 'api'].includes(via)) fail('--via must be db or api');
    const rc = require('../cli/reconcile');
    const r = via === 'api' ? await rc.backfillViaApi(cfg, { state, log }) : await rc.backfill(cfg, { state, log });
    if (r.failed) {
      process.stdout.write(JSON.stringify({ summary: 'backfill', via, ...r }, null, 2) + '\n');
      return 1;
    }
    process.stdout.write(JSON.stringify({ summary: 'backfill', ...r }, null, 2) + '\n');
    // Files whose people could not be told apart, or accounts claimed twice: a person must look.
    return r.skipped_files.length || r.conflicts.length ? 1 : 0;
  }
  const r = await require('../cli/reconcile').verify(cfg, tenant);
  const lazyWaiting = r.awaiting_proof.filter((a) => a.via === 'lazy').length;
  process.stdout.write(`people in the products: ${r.people}\nusers in the tenant:    ${r.tenant_users}\nmissing:                ${r.missing.length}\nduplicated:             ${r.duplicated.length}\n`
    + `present, imported:      ${r.imported}\npresent, lazy flow:     ${r.lazy}\nevery account linked:   ${r.clean}\n`
    + `accounts awaiting proof: ${r.awaiting_proof.length} (${lazyWaiting} through the lazy flow)\nmislinked accounts:     ${r.mislinked.length}\n`);
  for (const m of r.missing.slice(0, 20)) process.stdout.write(`  missing ${m.email}${m.reason ? ` (${m.reason})` : ''}\n`);
  for (const d of r.duplicated.slice(0, 20)) process.stdout.write(`  duplicated ${d.email}\n`);
  for (const a of r.awaiting_proof.slice(0, 20)) process.stdout.write(`  awaiting proof ${a.email} (${a.via}): ${a.accounts.join(', ')}\n`);
  for (const m of r.mislinked.slice(0, 20)) process.stdout.write(`  mislinked ${m.account} holds ${m.auth0_user_id}, the tenant user is ${m.tenant_user_id}\n`);
  return r.missing.length || r.duplicated.length || r.mislinked.length ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => { if (code !== null) process.exitCode = code; }, (e) => {
  process.stderr.write(`trickle: ${e.message}\n`);
  process.exit(1);
});
