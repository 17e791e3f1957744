#!/usr/bin/env node
// The `trickle` command: parses a command's options against its declaration (cli/commands/usage.js)
// and hands them to the command's runner (cli/commands/): another command's option is refused
// with the nearest one, and every refusal has a stable code.
'use strict';
const { parseArgs } = require('node:util');
const { COMMAND_HELP, COMMAND_OPTIONS, OPTION_TYPES, HELP } = require('../cli/commands/usage');
const { running, fail } = require('../cli/commands/output');

const servers = () => require('../cli/commands/servers');
const bulkPhase = (command) => (values, int) => require('../cli/commands/bulk-phase').bulkGuarded(command, values, int);
const deployStep = (command) => (values) => require('../cli/commands/deploy').deployCommand(command, values);
/** Each command's runner: `(values, int) → exit code`, or null for a service that runs until a signal. */
const RUNNERS = {
  sim: (values, int) => servers().sim(values, int),
  demo: (values, int) => servers().demo(values, int),
  check: bulkPhase('check'),
  prelink: bulkPhase('prelink'),
  export: bulkPhase('export'),
  import: bulkPhase('import'),
  backfill: bulkPhase('backfill'),
  notify: bulkPhase('notify'),
  verify: bulkPhase('verify'),
  'deploy-config': deployStep('deploy-config'),
  finish: deployStep('finish'),
  'product-api': (values, int) => servers().productApi(values, int),
  'merge-service': () => servers().mergeService(),
  monitor: (values, int) => servers().monitor(values, int),
  console: (values, int) => servers().supportConsole(values, int)
};

async function main(argv) {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (command === 'support') return require('../cli/commands/support').supportCommand(rest);
  if (!COMMAND_OPTIONS[command]) {
    const near = require('../cli/config').nearest(command, [...Object.keys(COMMAND_OPTIONS), 'support']);
    fail(`unknown command ${JSON.stringify(command)}${near ? ` (did you mean ${near}?)` : ''}`, 'usage.unknown_command');
  }
  running.command = command;
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { ...Object.fromEntries(COMMAND_OPTIONS[command].map((o) => [o, { type: OPTION_TYPES[o] }])), help: { type: 'boolean', short: 'h' } },
      strict: true
    }));
  } catch (e) {
    const m = /^Unknown option '(-{1,2}[^']+)'/.exec(e.message);
    if (!m) fail(e.message.replace(/\. To specify a positional argument.*$/s, ''), 'usage.invalid');
    const near = require('../cli/config').nearest(m[1].replace(/^-+/, ''), [...COMMAND_OPTIONS[command], 'help']);
    fail(`${m[1]} is not an option of ${command}${near ? ` (did you mean --${near}?)` : ''}; it takes ${COMMAND_OPTIONS[command].map((o) => `--${o}`).join(' ') || 'no options'}`, 'usage.unknown_option');
  }
  if (values.help) {
    process.stdout.write(COMMAND_HELP[command] || HELP);
    return 0;
  }
  /** A whole-number option within its range, or its default. */
  const int = (name, dflt, min, max) => {
    if (values[name] === undefined) return dflt;
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min || n > max) fail(`--${name} must be a whole number from ${min} to ${max}`);
    return n;
  };
  return RUNNERS[command] ? RUNNERS[command](values, int) : 2;
}

// A reader that went away (trickle verify | head) ends the command quietly, not with a trace.
process.stdout.on('error', (e) => { if (e.code === 'EPIPE') process.exit(0); throw e; });

main(process.argv.slice(2)).then((code) => { if (code !== null) process.exitCode = code; }, (e) => {
  const current = running.command;
  const code = e && typeof e.code === 'string' && /^[a-z0-9_]+\.[a-z0-9_.]+$/.test(e.code) ? e.code
    : e && e.constructor && e.constructor.name === 'StorageError' ? 'storage.unreachable' : `${current || 'trickle'}.failed`;
  process.stderr.write(`trickle${current ? ` ${current}` : ''}: [${code}] ${String(e && e.message).replace(`${code}: `, '')}\n`);
  process.exit(1);
});
