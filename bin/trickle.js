#!/usr/bin/env node
// The `trickle` command.
'use strict';
const { parseArgs } = require('node:util');

const HELP = `trickle — move the users of legacy products into one Auth0 tenant

Usage:
  trickle sim  [--people N] [--port P] [--seed S] [--rules]   start the local simulator
  trickle demo [--people N]                                    drive a scripted migration through it
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
      options: { people: { type: 'string' }, port: { type: 'string' }, seed: { type: 'string' }, rules: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
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

main(process.argv.slice(2)).then((code) => { if (code !== null) process.exitCode = code; }, (e) => {
  process.stderr.write(`trickle: ${e.message}\n`);
  process.exit(1);
});
