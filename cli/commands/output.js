// How every `trickle` command speaks: usage errors with a stable code and exit 2, NDJSON log lines
// unless a person is watching a terminal, one summary per command, and settings that cannot work.
'use strict';

/** The command being run, for the messages (set once it is known). */
const running = { command: null };

/** A usage error: `trickle <command>: [code] message`, where to look, exit 2. */
function fail(message, code = 'usage.invalid') {
  const current = running.command;
  process.stderr.write(`trickle${current ? ` ${current}` : ''}: [${code}] ${message}\n(trickle ${current || ''}${current ? ' ' : ''}--help shows the usage)\n`);
  process.exit(2);
}

/** JSON log lines, unless a person is watching a terminal. */
const log = (entry) => { if (!process.stdout.isTTY) process.stdout.write(JSON.stringify({ at: new Date().toISOString(), ...entry }) + '\n'); };

/** A setting that cannot work: said on stderr with its name, exit 2. */
function configError(setting, message) {
  process.stderr.write(`trickle: ${message}\n  (setting: ${setting})\n`);
  if (!process.stdout.isTTY) log({ event: 'config_error', setting, message });
  return 2;
}

/** The one summary of a command: one JSON line without a terminal, readable on one. */
function summary(obj, text) {
  if (process.stdout.isTTY) process.stdout.write(text !== undefined ? text : JSON.stringify(obj, null, 2) + '\n');
  else process.stdout.write(JSON.stringify(obj) + '\n');
}


module.exports = { running, fail, log, configError, summary };
