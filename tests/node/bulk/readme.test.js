// The README's bulk flow as a newcomer runs it: `trickle sim --write-config FILE` started as a
// child process (its printed URLs and tenant settings waited for), a configuration pointing at
// two products of one's own in MariaDB (declared only there: `customers` with a mixed-case Email,
// bcrypt and TOTP; `members` with hex SHA-256, a salt column and trickle's side table), then
// check, prelink, export, import, backfill, verify through the CLI with default settings; then
// more people, a second export into a new folder, imported completely. The simulator is stopped
// with Ctrl-C (SIGINT) at the end and must exit 0.
'use strict';
const { scratchDatabase } = require('../support/databases');
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { spawn } = require('child_process');
const bcryptjs = require('bcryptjs');
const { cli, summaryOf, exportedAccounts, BIN } = require('../support/bulk');
const { openDb } = require('../../../lib/db');
const { tenantClient } = require('../../../cli/tenant-client');

const TOTP = 'JBSWY3DPEHPK3PXP';

/** Starts `trickle sim --write-config FILE`; resolves with the child, what it printed, and once it is ready. */
function startSimChild(configFile) {
  const child = spawn(process.execPath, [BIN, 'sim', '--people', '5', '--write-config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`trickle sim did not get ready: ${out}\n${err}`)), 60000);
    child.stdout.on('data', (d) => {
      out += d;
      if (/Press Ctrl-C to stop/.test(out)) { clearTimeout(timer); resolve(out); }
    });
    child.stderr.on('data', (d) => { err += d; });
    exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`trickle sim exited ${code}: ${out}\n${err}`)); });
  });
  return { child, ready, exited };
}

/** `count` people from `from`: a third in customers only, a third in members only, a third in both (the address in another case). */
function people(from, count) {
  const customers = [];
  const members = [];
  for (let i = from; i < from + count; i++) {
    const local = `Reader.${String(i).padStart(3, '0')}`;
    if (i % 3 !== 1) customers.push({ id: i + 1, email: `${local}@Readme.Example`, hash: bcryptjs.hashSync(`pw-${i}`, 4), name: `Reader ${i}`, totp: i % 3 === 0 ? TOTP : null });
    if (i % 3 !== 0) {
      const salt = crypto.randomBytes(6).toString('hex');
      members.push({ id: `m-${i}`, email: `${local.toLowerCase()}@readme.example`, hash: crypto.createHash('sha256').update(salt + `pw-${i}`).digest('hex'), salt, first: 'Reader', last: String(i) });
    }
  }
  return { customers, members };
}

async function insert(url, { customers, members }) {
  const db = await openDb(url);
  for (const c of customers) await db.run('INSERT INTO customers (customer_id, Email, pass_hash, full_name, otp_secret, signed_up, verified) VALUES (?, ?, ?, ?, ?, ?, 1)', [c.id, c.email, c.hash, c.name, c.totp, '2016-03-04 05:06:07']);
  for (const m of members) await db.run('INSERT INTO members (member_id, mail, pw_sha256, pw_salt, first_name, last_name, confirmed) VALUES (?, ?, ?, ?, ?, ?, 1)', [m.id, m.email, m.hash, m.salt, m.first, m.last]);
  await db.close();
}

test('the README flow against `trickle sim` as a child process, two declared MariaDB products: everyone once, owned accounts linked, TOTP carried; a second export imported completely', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-readme-'));
  const products = await scratchDatabase('mysql', 'trickle_readme');
  const { url } = products;
  const simConfig = path.join(dir, 'sim-trickle.json');
  const sim = startSimChild(simConfig);
  try {
    const db = await openDb(url);
    await db.exec(`CREATE TABLE customers (customer_id INT PRIMARY KEY, Email VARCHAR(320) NOT NULL, pass_hash VARCHAR(100), full_name VARCHAR(200),
      otp_secret VARCHAR(64), signed_up DATETIME, verified TINYINT NOT NULL DEFAULT 0, trickle_person VARCHAR(64), auth0_id VARCHAR(128)) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
    await db.exec(`CREATE TABLE members (member_id VARCHAR(40) PRIMARY KEY, mail VARCHAR(320) NOT NULL, pw_sha256 CHAR(64), pw_salt VARCHAR(32),
      first_name VARCHAR(100), last_name VARCHAR(100), confirmed TINYINT NOT NULL DEFAULT 0) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
    await db.close();
    const first = people(0, 45);
    await insert(url, first);

    // What the newcomer copies: the tenant settings the simulator printed and wrote.
    const printed = await sim.ready;
    const written = JSON.parse(fs.readFileSync(simConfig, 'utf8'));
    const m = /tenant\.url (\S+) \(domain \S+\), clientId (\S+), clientSecret (\S+), connectionId (\S+)/.exec(printed);
    assert.ok(m, printed);
    assert.deepEqual({ url: m[1], clientId: m[2], clientSecret: m[3], connectionId: m[4] }, written.tenant, 'printed and written tenant settings agree');
    // The tenant speaks https with a certificate of its own: the shell trusts it as printed.
    const ca = /export NODE_EXTRA_CA_CERTS=(\S+)/.exec(printed);
    assert.ok(ca && fs.existsSync(ca[1]), printed);
    const cfg = {
      products: [
        { name: 'customers', db: url, table: 'customers', format: 'bcrypt',
          columns: { id: 'customer_id', email: 'Email', password: 'pass_hash', name: 'full_name', totp_secret: 'otp_secret', created_at: 'signed_up', email_verified: 'verified', person_id: 'trickle_person', auth0_user_id: 'auth0_id' } },
        { name: 'members', db: url, table: 'members', format: 'sha256-salt-prefix', link: 'table',
          columns: { id: 'member_id', email: 'mail', password: 'pw_sha256', salt: 'pw_salt', given_name: 'first_name', family_name: 'last_name', email_verified: 'confirmed' } }
      ],
      state: written.state,
      tenant: written.tenant
    };
    const configFile = path.join(dir, 'trickle.json');
    fs.writeFileSync(configFile, JSON.stringify(cfg, null, 2));
    const run = async (...args) => {
      const r = await cli([...args, '--config', configFile], { env: { NODE_EXTRA_CA_CERTS: ca[1] } });
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stdout}\n${r.stderr}`);
      return summaryOf(r.stdout);
    };
    const A = path.join(dir, 'A');
    const B = path.join(dir, 'B');

    assert.equal((await run('check')).accounts, first.customers.length + first.members.length);
    assert.equal((await run('prelink')).people, 45);
    const expA = await run('export', '--out', A);
    assert.equal(expA.exported, 45);
    const impA = await run('import', '--out', A);
    assert.equal(impA.registration.already_registered, 0);
    assert.equal(impA.files.failed || 0, 0, JSON.stringify(impA));
    const bf = await run('backfill');
    assert.equal(bf.present, 0);
    assert.deepEqual([bf.held_by_other.length, bf.person_changed.length, bf.conflicts.length, bf.skipped_files.length], [0, 0, 0, 0]);
    const v = await run('verify', '--out', A);
    assert.deepEqual([v.people, v.tenant_users, v.missing, v.duplicated, v.mislinked, v.imported], [45, 45, 0, 0, 0, 45], JSON.stringify(v));

    // Auth0 ids written back into owned accounts only, where the configuration says.
    const links = async () => {
      const d = await openDb(url);
      const l = new Map();
      for (const r of await d.all('SELECT customer_id AS id, auth0_id AS a FROM customers')) l.set(`customers/${r.id}`, r.a);
      for (const r of await d.all('SELECT member_id AS id FROM members')) l.set(`members/${r.id}`, null);
      for (const r of await d.all('SELECT account_id AS id, auth0_user_id AS a FROM trickle_person_link')) l.set(`members/${r.id}`, r.a);
      await d.close();
      return l;
    };
    const checkLinks = async (out) => {
      const l = await links();
      let owned = 0;
      for (const [key, a] of exportedAccounts(out)) {
        if (a.owned) { owned++; assert.equal(l.get(key), a.auth0, key); } else assert.equal(l.get(key), null, key);
      }
      return owned;
    };
    const ownedA = await checkLinks(A);
    assert.ok(ownedA >= 45, `owned accounts: ${ownedA}`);
    assert.equal(bf.updated, ownedA);

    // TOTP carried: every customer who had it has the authenticator factor in the tenant (Management API).
    // In this process (which does not trust the certificate) through the tenant's plain listener.
    const api = tenantClient({ ...cfg.tenant, url: /^ +tenant +(http:\S+)/m.exec(printed)[1] });
    const records = fs.readdirSync(A).filter((n) => /^users-/.test(n)).flatMap((n) => JSON.parse(fs.readFileSync(path.join(A, n), 'utf8')));
    const factorOf = async (email) => {
      const res = await api.call(`/api/v2/users-by-email?email=${encodeURIComponent(email)}`);
      assert.equal(res.status, 200);
      const users = await res.json();
      assert.equal(users.length, 1, `${email} once in the tenant`);
      return (users[0].mfa_factors || []).some((f) => f && f.totp && f.totp.secret === TOTP);
    };
    let carried = 0;
    for (const r of records) {
      const had = first.customers.some((c) => c.totp && c.email.toLowerCase() === r.email);
      assert.equal(await factorOf(r.email), had, r.email);
      if (had) carried++;
    }
    assert.equal(carried, 15, 'every customer with TOTP');

    // More people, a second export into a new folder: imported completely.
    const second = people(45, 15);
    await insert(url, second);
    assert.equal((await run('prelink')).people, 60);
    const expB = await run('export', '--out', B);
    assert.equal(expB.exported, 15, 'only the new people');
    const impB = await run('import', '--out', B);
    assert.equal(impB.registration.already_registered, 0, JSON.stringify(impB.registration));
    assert.ok(impB.registration.added >= 1);
    assert.equal(impB.files.failed || 0, 0, JSON.stringify(impB));
    const bf2 = await run('backfill');
    assert.equal(bf2.already_backfilled_files, expA.files, 'the first export is not read again');
    const ownedB = await checkLinks(B);
    assert.ok(ownedB >= 15, `owned accounts: ${ownedB}`);
    assert.equal(bf2.updated, ownedB);
    for (const c of second.customers) assert.equal(await factorOf(c.email.toLowerCase()), !!c.totp, c.email);
    const v2 = await run('verify', '--out', B);
    // The 20 people in both products were imported with their first verified account's hash;
    // the other account waits for the merge at their first sign-in.
    assert.deepEqual([v2.people, v2.tenant_users, v2.missing, v2.duplicated, v2.mislinked, v2.clean, v2.awaiting_proof, v2.not_backfilled], [60, 60, 0, 0, 0, 40, 20, 0], JSON.stringify(v2));
  } finally {
    sim.child.kill('SIGINT');
    const { code } = await sim.exited;
    await products.drop();
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(code, 0, 'the simulator stops cleanly on Ctrl-C');
  }
});
