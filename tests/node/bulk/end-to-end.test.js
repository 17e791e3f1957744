// The bulk phase against the simulator: prelink, export, import, backfill, verify; crash safety
// under SIGKILL; three replicas sharing MariaDB state; 429 and 5xx storms with lazy logins
// running meanwhile; malformed rows.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { spawn } = require('child_process');
const { bulkSim, cli, BIN, assertOwnedOnly } = require('../support/bulk');
const { prelink, exportPeople } = require('../../../cli/bulk');
const { register, openState, runImport } = require('../../../cli/import');
const { backfill, verify } = require('../../../cli/reconcile');
const { openDb } = require('../../../lib/db');

const { scratchDatabase } = require('../support/databases');

const mysqlDatabase = () => scratchDatabase('mysql');

/** Copies one product's SQLite table into MariaDB and points the configuration at it. */
async function moveProductToMysql(b, name, url) {
  const src = await openDb(b.cfg.products.find((p) => p.name === name).db);
  const rows = await src.all('SELECT * FROM accounts');
  await src.close();
  const dst = await openDb(url);
  await dst.exec(`CREATE TABLE accounts (id VARCHAR(64) PRIMARY KEY, email VARCHAR(320) NOT NULL, email_norm VARCHAR(320) NOT NULL, email_verified INT NOT NULL DEFAULT 0,
    name TEXT, given_name TEXT, family_name TEXT, created_at VARCHAR(40), password_hash TEXT, password_salt TEXT, totp_secret VARCHAR(200), person_id VARCHAR(64),
    auth0_user_id VARCHAR(128), auth0_updated_at VARCHAR(40), INDEX (email_norm), INDEX (person_id)) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  for (let i = 0; i < rows.length; i += 500) {
    const chunk = rows.slice(i, i + 500);
    const cols = Object.keys(chunk[0]);
    await dst.run(`INSERT INTO accounts (${cols.join(', ')}) VALUES ${chunk.map(() => `(${cols.map(() => '?').join(', ')})`).join(', ')}`, chunk.flatMap((r) => cols.map((c) => r[c])));
  }
  await dst.close();
  b.cfg.products.find((p) => p.name === name).db = url;
  require('fs').writeFileSync(b.configFile, JSON.stringify(b.cfg, null, 2));
}

function maxConcurrentJobs(log) {
  let active = 0;
  let max = 0;
  for (const e of log) {
    if (e.type !== 'users_import') continue;
    if (e.status === 'pending') active++;
    if (['completed', 'failed', 'expired'].includes(e.status)) active--;
    max = Math.max(max, active);
  }
  return max;
}

async function jobLog(b) {
  return (await (await fetch(`${b.sim.tenant.url}/_sim/api/jobs`)).json()).log;
}

async function exportAndRegister(b) {
  await prelink(b.cfg);
  const m = await exportPeople(b.cfg, b.out);
  const db = await openState(b.cfg.state);
  await register(db, b.out);
  await db.close();
  return m;
}

test('10 000 people end to end: prelink, export, import (MariaDB state, one product in MariaDB), backfill, verify with zero missing', async () => {
  const state = await mysqlDatabase();
  const product = await mysqlDatabase();
  const b = await bulkSim({ people: 10000, importRate: 5000, stateUrl: state.url });
  try {
    await moveProductToMysql(b, 'collect', product.url);
    const m = await exportAndRegister(b);
    assert.equal(m.read, 10000);
    assert.equal(m.exported + m.rejected, m.read);
    assert.ok(m.files.every((f) => f.bytes <= 500000));
    assert.ok(m.files.slice(0, -1).every((f) => f.bytes > 495000), 'files are as full as the limit allows');
    const r = await runImport({ state: b.cfg.state, tenant: b.cfg.tenant });
    assert.equal(r.inserted, m.exported);
    assert.equal(r.files.failed, 0);
    const bf = await backfill(b.cfg, { state: b.cfg.state });
    const owned = await assertOwnedOnly(assert, b.cfg, b.out);
    assert.equal(bf.updated, owned.owned, 'every owned account, and only those, told its id');
    // Everyone imported with a legacy hash owns the account it came from (several accounts: the
    // first verified one's; the others wait for the merge flow).
    assert.ok(bf.updated >= m.exported - m.forced_reset - m.without_password, `${bf.updated} of ${m.exported}`);
    assert.ok(m.forced_reset < m.exported / 2, `forced resets: ${m.forced_reset}`);
    const again = await backfill(b.cfg, { state: b.cfg.state });
    assert.equal(again.updated, 0, 'backfill is idempotent');
    const v = await verify(b.cfg, b.cfg.tenant);
    assert.equal(v.people, 10000);
    assert.deepEqual([v.missing.length, v.duplicated.length], [0, 0]);
    assert.ok(maxConcurrentJobs(await jobLog(b)) <= 2);
    // The CLI's verify agrees, with exit 0.
    const out = await cli(['verify', '--config', b.configFile]);
    assert.equal(out.code, 0, out.stdout + out.stderr);
    assert.equal(require('../support/bulk').summaryOf(out.stdout).missing, 0);
  } finally {
    await b.close();
    await state.drop();
    await product.drop();
  }
});

test('crash safety: the runner is SIGKILLed 20 times at random moments and restarted; everyone ends up in the tenant exactly once', async () => {
  const b = await bulkSim({ people: 4000, importRate: 100 });
  try {
    await exportAndRegister(b);
    let kills = 0;
    let seed = 7;
    const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
    for (let round = 0; kills < 20 && round < 60; round++) {
      const r = await cli(['import', '--config', b.configFile, '--out', b.out, '--lease-ms', '1500'], { killAfterMs: 200 + Math.floor(rand() * 600) });
      if (r.signal === 'SIGKILL') kills++;
      else if (r.code === 0) break; // finished before we could kill it again
      else assert.fail(`the runner failed: ${r.stdout.slice(-1000)} ${r.stderr}`);
    }
    const last = await cli(['import', '--config', b.configFile, '--out', b.out, '--lease-ms', '1500']);
    assert.equal(last.code, 0, last.stdout.slice(-2000) + last.stderr);
    assert.ok(kills >= 20, `killed ${kills} times`);
    await backfill(b.cfg, { state: b.cfg.state });
    const v = await verify(b.cfg, b.cfg.tenant);
    assert.equal(v.tenant_users, 4000, 'exactly once');
    assert.deepEqual([v.missing.length, v.duplicated.length], [0, 0]);
    assert.ok(maxConcurrentJobs(await jobLog(b)) <= 2);
  } finally {
    await b.close();
  }
});

test('three replicas share MariaDB state: never more than 2 jobs in flight; one killed mid-job, the others finish its work', async () => {
  const state = await mysqlDatabase();
  const b = await bulkSim({ people: 5000, importRate: 300, stateUrl: state.url });
  try {
    await exportAndRegister(b);
    const run = (id) => spawn(process.execPath, [BIN, 'import', '--config', b.configFile, '--out', b.out, '--replica', id, '--lease-ms', '1500'], { stdio: 'ignore' });
    // (spawned, never spawnSync: this process serves the simulator the replicas talk to)
    // r1 starts alone and takes a job; then r2 and r3 join; then r1 dies holding it.
    const replicas = [run('r1')];
    const db = await openDb(state.url);
    for (let i = 0; i < 300; i++) {
      const held = await db.all("SELECT name FROM import_files WHERE owner = 'r1' AND status = 'submitted'");
      if (held.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    replicas.push(run('r2'), run('r3'));
    const exits = replicas.map((c) => new Promise((resolve) => c.on('exit', (code, signal) => resolve({ code, signal }))));
    replicas[0].kill('SIGKILL');
    const results = await Promise.all(exits);
    await db.close();
    assert.equal(results[0].signal, 'SIGKILL');
    assert.deepEqual(results.slice(1).map((r) => r.code), [0, 0]);
    assert.ok(maxConcurrentJobs(await jobLog(b)) <= 2, 'the tenant never saw a third job');
    await backfill(b.cfg, { state: b.cfg.state });
    const v = await verify(b.cfg, b.cfg.tenant);
    assert.deepEqual([v.tenant_users, v.missing.length, v.duplicated.length], [5000, 0, 0]);
  } finally {
    await b.close();
    await state.drop();
  }
});

test('storms of 429 and 5xx within the request budget, with lazy logins during the import: present once, lazy metadata intact', async () => {
  const b = await bulkSim({ people: 2500, importRate: 600 });
  try {
    await exportAndRegister(b);
    await fetch(`${b.sim.tenant.url}/_sim/api/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ stormRate: 0.3, errorRate: 0.1 }) });
    const running = runImport({ state: b.cfg.state, tenant: b.cfg.tenant, budget: 3000 });
    // Meanwhile, some dormant people sign in and migrate lazily.
    const lazy = b.sim.people.filter((p) => p.accounts.length === 1).slice(-5);
    for (const p of lazy) {
      const page = await (await fetch(`${b.sim.tenant.url}/authorize?client_id=trickle-demo&response_type=code&state=s&redirect_uri=${encodeURIComponent(b.sim.tenant.url + '/app/callback')}`)).text();
      const tx = page.match(/name="state" value="([^"]+)"/)[1];
      const res = await fetch(`${b.sim.tenant.url}/u/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ state: tx, email: p.email, password: p.accounts[0].password }) });
      assert.match(res.headers.get('location'), /code=/);
    }
    const r = await running;
    assert.equal(r.stopped, null, 'finished inside the budget');
    assert.ok(r.requests <= 3000);
    assert.ok(r.throttled > 0, 'the storm was felt');
    await fetch(`${b.sim.tenant.url}/_sim/api/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ stormRate: 0, errorRate: 0 }) });
    const v = await verify(b.cfg, b.cfg.tenant);
    assert.deepEqual([v.tenant_users, v.missing.length, v.duplicated.length], [2500, 0, 0]);
    for (const p of lazy) {
      const u = [...b.sim.tenant.state.users.values()].find((x) => x.email === p.email.toLowerCase());
      if (u.app_metadata.bulkImported) continue; // imported before the login: the login then used the imported hash
      assert.equal(u.app_metadata.migrated, true, 'lazy metadata kept, never overwritten by the import');
      assert.equal(u.app_metadata.trickle.accounts[0].proof, 'password');
    }
  } finally {
    await b.close();
  }
});

test('the free plan (burst 2 at 2/s): the runner waits its turn, reports the one person already present, and imports everyone else', async () => {
  const b = await bulkSim({ people: 2000, importRate: 4000, plan: 'free' });
  try {
    const m = await exportAndRegister(b);
    // Someone the tenant already holds: their file's job reports one failure, the others none.
    const token = (await (await fetch(`${b.sim.tenant.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'trickle-m2m', client_secret: 'm2m-secret' }) })).json()).access_token;
    const present = b.sim.people[7];
    await new Promise((r) => setTimeout(r, 1100));
    const created = await fetch(`${b.sim.tenant.url}/api/v2/users`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ connection: 'trickle', email: present.email, password: 'already-here-1' }) });
    assert.equal(created.status, 201);
    const r = await runImport({ state: b.cfg.state, tenant: b.cfg.tenant });
    assert.equal(r.stopped, null);
    assert.equal(r.files.failed, 0);
    assert.equal(r.already_present, 1);
    assert.ok(r.throttled > 0, 'the burst of 2 was felt');
    const log = (await (await fetch(`${b.sim.tenant.url}/_sim/api/jobs`)).json()).jobs.filter((j) => j.type === 'users_import');
    assert.equal(log.length, m.files.length, 'one job per file, none submitted twice');
    const v = await verify(b.cfg, b.cfg.tenant);
    assert.deepEqual([v.tenant_users, v.missing.length, v.duplicated.length], [2000, 0, 0]);
  } finally {
    await b.close();
  }
});

test('malformed rows go to the rejects file with reasons, and the counts add up', async () => {
  const b = await bulkSim({ people: 300 });
  try {
    const paste = await openDb(b.cfg.products[0].db);
    const bad = [
      ['bad1', 'not-an-email', '$2b$04$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', null, null],
      ['bad2', 'broken.hash@example.com', 'garbage', null, null],
      ['bad3', 'big.name@example.com', null, null, 'n'.repeat(12000)],
      ['bad4', 'bad.totp@example.com', null, 'not base32 at all!', null],
      ['bad5', 'hostile@example.com', '$2b$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW', null, null]
    ];
    for (const [id, email, hash, totp, name] of bad) {
      await paste.run('INSERT INTO accounts (id, email, email_norm, email_verified, name, password_hash, totp_secret) VALUES (?, ?, ?, 0, ?, ?, ?)', [id, email, email.toLowerCase(), name, hash, totp]);
    }
    await paste.close();
    const m = await exportPeople(b.cfg, b.out);
    assert.equal(m.read, 305);
    assert.equal(m.exported + m.rejected, m.read);
    assert.equal(m.rejected, 5);
    const rejects = require('fs').readFileSync(path.join(b.out, 'rejects.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const codes = Object.fromEntries(rejects.map((r) => [r.accounts[0], r.code]));
    assert.deepEqual(codes, {
      'paste/bad1': 'email.invalid', 'paste/bad2': 'password.invalid_field', 'paste/bad3': 'export.too_large',
      'paste/bad4': 'mfa.invalid_totp_secret', 'paste/bad5': 'password.work_factor_too_high'
    });
    assert.ok(rejects.every((r) => r.reason && r.reason.length > 5));
  } finally {
    await b.close();
  }
});

test('a product in PostgreSQL: prelink, export and backfill read and write it by URL', async () => {
  const scratch = await scratchDatabase('postgres');
  const b = await bulkSim({ people: 400, importRate: 5000 });
  try {
    const { url } = scratch;
    const src = await openDb(b.cfg.products[2].db);
    const rows = await src.all('SELECT * FROM accounts');
    await src.close();
    const pg = await openDb(url);
    await pg.exec(`CREATE TABLE accounts (id TEXT PRIMARY KEY, email TEXT NOT NULL, email_norm TEXT COLLATE "C" NOT NULL, email_verified INT NOT NULL DEFAULT 0,
      name TEXT, given_name TEXT, family_name TEXT, created_at TEXT, password_hash TEXT, password_salt TEXT, totp_secret TEXT, person_id TEXT,
      auth0_user_id TEXT, auth0_updated_at TEXT); CREATE INDEX ON accounts (email_norm, id)`);
    for (const r of rows) {
      const cols = Object.keys(r);
      await pg.run(`INSERT INTO accounts (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`, cols.map((c) => r[c]));
    }
    await pg.close();
    b.cfg.products[2].db = url;
    const m = await exportAndRegister(b);
    assert.equal(m.read, 400);
    assert.equal(m.exported + m.rejected, 400);
    const r = await runImport({ state: b.cfg.state, tenant: b.cfg.tenant });
    assert.equal(r.inserted, m.exported);
    const bf = await backfill(b.cfg, { state: b.cfg.state });
    await assertOwnedOnly(assert, b.cfg, b.out); // every owned Postgres account got its Auth0 id
    assert.ok(bf.products.transfer > 0);
    const v = await verify(b.cfg, b.cfg.tenant);
    assert.deepEqual([v.missing.length, v.duplicated.length], [0, 0]);
  } finally {
    await b.close();
    await scratch.drop();
  }
});

test('backfill through the product API: every imported account told its Auth0 id with PUTs, idempotent', async () => {
  const b = await bulkSim({ people: 300, importRate: 5000 });
  try {
    for (const p of b.cfg.products) {
      const s = b.sim.byName[p.name];
      p.api = { url: s.url, token: s.token };
    }
    require('fs').writeFileSync(b.configFile, JSON.stringify(b.cfg, null, 2));
    await exportAndRegister(b);
    await runImport({ state: b.cfg.state, tenant: b.cfg.tenant });
    const out = await cli(['backfill', '--config', b.configFile, '--via', 'api']);
    assert.equal(out.code, 0, out.stdout + out.stderr);
    const summary = require('../support/bulk').summaryOf(out.stdout);
    assert.equal(summary.failed, 0);
    const owned = await assertOwnedOnly(assert, b.cfg, b.out);
    assert.equal(summary.updated, owned.owned, 'one PUT per owned account');
    const again = await cli(['backfill', '--config', b.configFile, '--via', 'api']);
    assert.equal(again.code, 0, 'a second run is harmless');
    const v = await verify(b.cfg, b.cfg.tenant);
    assert.deepEqual([v.missing.length, v.duplicated.length], [0, 0]);
  } finally {
    await b.close();
  }
});

test('injected latency and dropped connections: the runner retries and completes', async () => {
  const b = await bulkSim({ people: 600, importRate: 3000 });
  try {
    await exportAndRegister(b);
    await fetch(`${b.sim.tenant.url}/_sim/api/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ latencyMs: 40, dropRate: 0.2 }) });
    const r = await runImport({ state: b.cfg.state, tenant: b.cfg.tenant });
    await fetch(`${b.sim.tenant.url}/_sim/api/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ latencyMs: 0, dropRate: 0 }) });
    assert.equal(r.files.failed, 0);
    const v = await verify(b.cfg, b.cfg.tenant);
    assert.deepEqual([v.tenant_users, v.missing.length, v.duplicated.length], [600, 0, 0]);
  } finally {
    await b.close();
  }
});

test('prelink into a side table: products whose accounts table is not changed by prelink', async () => {
  const b = await bulkSim({ people: 500, importRate: 5000 });
  try {
    for (const p of b.cfg.products) p.link = 'table';
    const first = await prelink(b.cfg);
    assert.equal(first.written, first.accounts);
    assert.equal((await prelink(b.cfg)).written, 0, 'idempotent');
    const paste = await openDb(b.cfg.products[0].db);
    const inColumn = await paste.all('SELECT COUNT(*) AS n FROM accounts WHERE person_id IS NOT NULL');
    const inTable = await paste.all('SELECT COUNT(*) AS n FROM trickle_person_link');
    await paste.close();
    assert.equal(Number(inColumn[0].n), 0, 'the accounts table is untouched');
    assert.ok(Number(inTable[0].n) > 0);
    const m = await exportPeople(b.cfg, b.out);
    const db = await openState(b.cfg.state);
    await register(db, b.out);
    await db.close();
    const r = await runImport({ state: b.cfg.state, tenant: b.cfg.tenant });
    assert.equal(r.inserted, m.exported);
    const bf = await backfill(b.cfg, { state: b.cfg.state });
    const owned = await assertOwnedOnly(assert, b.cfg, b.out);
    assert.equal(bf.updated, owned.owned);
    assert.equal(owned.owned + owned.unowned, first.accounts, 'every account was exported');
    const v = await verify(b.cfg, b.cfg.tenant);
    assert.deepEqual([v.missing.length, v.duplicated.length], [0, 0]);
  } finally {
    await b.close();
  }
});
