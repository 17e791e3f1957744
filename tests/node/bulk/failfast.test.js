// The import's bad inputs: what retrying cannot fix (a refused secret, an unknown connection, a
// malformed or dead tenant URL) stops within seconds naming the setting, and nothing is lost
// once it is fixed; a later export into a new folder is imported completely, although its file
// names are the earlier export's; a failed file is retried once its cause is fixed, with the
// reason in the summary; without a terminal, stdout is NDJSON and nothing else.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { bulkSim, cli, cliOk: run, summaryOf, assertOwnedOnly } = require('../support/bulk');
const { FORMATS } = require('../../../sim/seed');
const { openDb } = require('../../../lib/db');
const { verify } = require('../../../cli/reconcile');

function withTenant(b, change) {
  const cfg = JSON.parse(JSON.stringify(b.cfg));
  Object.assign(cfg.tenant, change);
  const file = path.join(b.dataDir, `trickle-${Object.keys(change).join('-')}-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  return file;
}

async function statuses(b) {
  const st = await openDb(b.cfg.state);
  const rows = await st.all('SELECT status, COUNT(*) AS n FROM import_files GROUP BY status');
  await st.close();
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
}

/** Every stdout line is one JSON object: NDJSON and nothing else, the summary last. */
function assertNdjson(stdout) {
  const lines = stdout.split('\n').filter((l) => l !== '');
  for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), `not JSON: ${l.slice(0, 200)}`);
  assert.equal(JSON.parse(lines[lines.length - 1]).summary, 'import', 'the summary is the last line');
  return lines.map((l) => JSON.parse(l));
}

test('a refused client secret, an unknown connection, a malformed or dead tenant URL: exit 2 within seconds naming the setting; fixed, everyone is imported', async () => {
  const b = await bulkSim({ people: 300, importRate: 5000 });
  try {
    await run(['prelink', '--config', b.configFile]);
    await run(['export', '--config', b.configFile, '--out', b.out]);
    const cases = [
      [{ clientSecret: 'wrong-secret' }, /tenant\.clientSecret/, /tenant\.credentials_refused/],
      [{ clientId: 'nobody' }, /tenant\.clientSecret|tenant\.clientId/, /tenant\.credentials_refused/],
      [{ connectionId: 'con_nope' }, /tenant\.connectionId/, /import\.connection_unknown/],
      [{ url: 'https//tenant.example' }, /tenant\.url/, /tenant\.url_malformed/],
      [{ url: `${b.sim.tenant.url}/some/path` }, /tenant\.url/, /tenant\.url_malformed/],
      [{ url: 'http://127.0.0.1:9' }, /tenant\.url/, /tenant\.unreachable/],
      [{ url: 'http://no-such-tenant.invalid' }, /tenant\.url/, /tenant\.unreachable/]
    ];
    for (const [change, setting, code] of cases) {
      const t0 = Date.now();
      const r = await cli(['import', '--config', withTenant(b, change), '--out', b.out], { killAfterMs: 30000 });
      const took = Date.now() - t0;
      assert.equal(r.code, 2, `${JSON.stringify(change)}: exit ${r.code} ${r.signal || ''}\n${r.stdout.slice(-1500)}\n${r.stderr}`);
      assert.ok(took < 15000, `${JSON.stringify(change)}: stopped after ${took} ms`);
      assert.match(r.stderr, setting, JSON.stringify(change));
      assert.match(r.stderr + r.stdout, code, JSON.stringify(change));
      const s = await statuses(b);
      assert.equal(s.failed || 0, 0, `${JSON.stringify(change)}: no file is marked failed by a setting: ${JSON.stringify(s)}`);
      assert.equal((s.submitting || 0) + (s.submitted || 0), 0, 'nothing left claimed');
    }
    // Fixed: the same export imports completely.
    const r = await run(['import', '--config', b.configFile, '--out', b.out]);
    const sum = summaryOf(r.stdout);
    assert.equal(sum.files.failed, 0);
    assert.equal(sum.files.done, sum.registration.files);
    const v = await verify(b.cfg, b.cfg.tenant);
    assert.deepEqual([v.missing.length, v.duplicated.length], [0, 0]);
  } finally {
    await b.close();
  }
});

test('a second export into a new folder, with the same file names: imported completely, nobody lost; a failed file is retried once fixed, the reason in the summary; NDJSON only', async () => {
  const b = await bulkSim({ people: 400, importRate: 5000 });
  try {
    await run(['prelink', '--config', b.configFile]);
    await run(['export', '--config', b.configFile, '--out', b.out]);
    const first = assertNdjson((await run(['import', '--config', b.configFile, '--out', b.out])).stdout);
    const s1 = first[first.length - 1];
    assert.ok(first.some((e) => e.event === 'progress' && Number.isInteger(e.peopleProgress)), 'progress lines without a terminal');
    assert.deepEqual([s1.this_run.completed, s1.files.done], [s1.registration.files, s1.registration.files], 'per-run counts beside the global ones');
    await run(['backfill', '--config', b.configFile]);

    // New people sign up in the products; a later export into a new folder names its first file
    // users-00001.json again.
    const db = b.sim.byName.paste.db;
    const stored = FORMATS.paste.hash('new person pw', null, { bcryptCost: 4 });
    const fresh = [];
    for (let i = 0; i < 3500; i++) {
      const email = `fresh.${i}@example.com`;
      fresh.push(email);
      db.prepare('INSERT INTO accounts (id, email, email_norm, email_verified, name, created_at, password_hash, password_salt) VALUES (?, ?, ?, 1, ?, ?, ?, ?)')
        .run(`p-fresh-${i}`, email, email, `Fresh ${i}`, '2026-01-01T00:00:00.000Z', stored.hash, stored.salt);
    }
    await run(['prelink', '--config', b.configFile]);
    const out2 = path.join(b.dataDir, 'out2');
    await run(['export', '--config', b.configFile, '--out', out2]);
    const names = JSON.parse(fs.readFileSync(path.join(out2, 'manifest.json'), 'utf8')).files.map((f) => f.name);
    assert.ok(names.includes('users-00001.json') && names.length >= 3, `the same names again: ${names}`);

    // Two of its files are missing when the import runs: they fail, their reason said.
    const away = (n) => path.join(b.dataDir, `${n}.away`);
    for (const n of ['users-00002.json', 'users-00003.json']) fs.renameSync(path.join(out2, n), away(n));
    let r = await cli(['import', '--config', b.configFile, '--out', out2]);
    assert.equal(r.code, 1, r.stdout.slice(-2000) + r.stderr);
    let sum = summaryOf(r.stdout);
    assert.equal(sum.registration.added, names.length, 'every file of the new export registered');
    assert.deepEqual(sum.failed_files.map((f) => f.file), ['users-00002.json', 'users-00003.json']);
    assert.match(sum.failed_files[0].reason, /import\.file_missing/);
    // Still missing: they stay failed, and the files registered before are said.
    r = await cli(['import', '--config', b.configFile, '--out', out2]);
    assert.equal(r.code, 1);
    assert.equal(summaryOf(r.stdout).registration.already_registered, names.length, 'files registered before are said, not silently skipped');
    // One back in place: retried by itself, with the reason it had failed; the other still failed.
    fs.renameSync(away('users-00002.json'), path.join(out2, 'users-00002.json'));
    r = await cli(['import', '--config', b.configFile, '--out', out2]);
    assert.equal(r.code, 1);
    sum = summaryOf(assertNdjson(r.stdout).length && r.stdout);
    assert.deepEqual(sum.retried_failed.map((f) => [f.file, f.automatic]), [['users-00002.json', true]]);
    assert.match(sum.retried_failed[0].reason, /import\.file_missing/);
    assert.deepEqual(sum.failed_files.map((f) => f.file), ['users-00003.json']);
    assert.equal(sum.this_run.completed, 1, 'this run imported the one file back');
    // --retry-failed: the other, on request, once back.
    fs.renameSync(away('users-00003.json'), path.join(out2, 'users-00003.json'));
    r = await run(['import', '--config', b.configFile, '--out', out2, '--retry-failed']);
    sum = summaryOf(r.stdout);
    assert.deepEqual(sum.retried_failed.map((f) => f.file), ['users-00003.json']);
    assert.match(sum.retried_failed[0].reason, /import\.file_missing/);
    assert.equal(sum.files.failed, 0);

    await run(['backfill', '--config', b.configFile]);
    await assertOwnedOnly(assert, b.cfg, b.out);
    await assertOwnedOnly(assert, b.cfg, out2);
    const v = await verify(b.cfg, b.cfg.tenant);
    assert.equal(v.people, 400 + 3500);
    assert.deepEqual([v.missing.length, v.duplicated.length], [0, 0], JSON.stringify(v.missing.slice(0, 5)));
    for (const email of fresh.slice(0, 20)) assert.ok([...b.sim.tenant.state.users.values()].some((u) => u.email === email), `${email} imported`);
  } finally {
    await b.close();
  }
});
