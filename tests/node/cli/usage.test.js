// The command line as a user meets it: every command's own --help, another command's option or a
// typo refused with a stable code and the nearest option, configuration typos suggested by edit
// distance, and NDJSON only when stdout is not a terminal.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { cli } = require('../support/bulk');
const { validateConfig } = require('../../../cli/config');

test('every command has its own --help with examples', async () => {
  for (const command of ['check', 'prelink', 'export', 'import', 'backfill', 'verify', 'notify', 'deploy-config', 'finish', 'product-api', 'sim', 'monitor', 'console']) {
    const r = await cli([command, '--help']);
    assert.equal(r.code, 0, command);
    assert.match(r.stdout, new RegExp(`^Usage: trickle ${command} `), `${command}: ${r.stdout.slice(0, 80)}`);
    assert.match(r.stdout, /Example:/, command);
  }
});

test('another command\'s option, a typo and an unknown command: exit 2, `trickle <command>: [code]`, the nearest one named', async () => {
  let r = await cli(['export', '--strict']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^trickle export: \[usage\.unknown_option\] --strict is not an option of export/);
  r = await cli(['import', '--dry-rn']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^trickle import: \[usage\.unknown_option\] .*--dry-rn.*did you mean --dry-run\?/);
  r = await cli(['verfy']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^trickle: \[usage\.unknown_command\] unknown command "verfy" \(did you mean verify\?\)/);
  r = await cli(['export']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^trickle export: \[config\.unreadable\]/);
});

test('a misspelt column key is suggested by edit distance, not by a shorter prefix', () => {
  const product = { name: 'p', db: 'sqlite:x', table: 't', link: 'table', columns: { id: 'id', email: 'mail', email_verifed: 'ok' } };
  assert.throws(() => validateConfig({ products: [product] }), (e) => e.code === 'config.unknown_key' && /did you mean "email_verified"\?/.test(e.message));
});

test('off a terminal deploy-config prints one JSON summary line and nothing else', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-usage-'));
  try {
    const cfg = path.join(dir, 'trickle.json');
    fs.writeFileSync(cfg, JSON.stringify({
      products: [{ name: 'paste', db: 'sqlite:x', format: 'bcrypt', api: { url: 'https://paste.example.com', token: 't'.repeat(32) } }],
      tenant: { url: 'https://tenant.example.com', clientId: 'c', clientSecret: 's' },
      deploy: { mergeUrl: 'https://merge.example.com/merge', tokenSecret: 'x'.repeat(40), clients: ['Web app'] }
    }));
    const r = await cli(['deploy-config', '--config', cfg, '--out', path.join(dir, 'config.json')]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    for (const l of lines) JSON.parse(l);
    assert.equal(JSON.parse(lines[lines.length - 1]).summary, 'deploy-config');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
