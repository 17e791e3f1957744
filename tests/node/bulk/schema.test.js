// Products with their own schemas, declared only in the configuration: the whole bulk phase
// through the CLI against two MariaDB products (a mixed-case Email column, bcrypt and TOTP in
// `customers`; hex SHA-256 with a salt column and trickle's side table in `members`); and every
// bad input refused with a stable code, a non-zero exit and nothing written.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const bcryptjs = require('bcryptjs');
const { bulkSim, cli, summaryOf, exportedAccounts } = require('../support/bulk');
const { openDb } = require('../../../lib/db');

const { scratchDatabase } = require('../support/databases');

/** Two products in one new MariaDB database, with the people given. Returns `{url, name}`. */
async function productsDatabase({ customers, members, collation = 'utf8mb4_general_ci' }) {
  const { name, url, drop } = await scratchDatabase('mysql');
  const db = await openDb(url);
  // Deliberately not binary: trickle orders by LOWER(Email) in byte order itself.
  await db.exec(`CREATE TABLE customers (customer_id INT PRIMARY KEY, Email VARCHAR(320) NOT NULL, pass_hash VARCHAR(100), full_name VARCHAR(200),
    otp_secret VARCHAR(64), signed_up DATETIME, verified TINYINT NOT NULL DEFAULT 0, trickle_person VARCHAR(64), auth0_id VARCHAR(128)) CHARACTER SET utf8mb4 COLLATE ${collation}`);
  await db.exec(`CREATE TABLE members (member_id VARCHAR(40) PRIMARY KEY, mail VARCHAR(320) NOT NULL, pw_sha256 CHAR(64), pw_salt VARCHAR(32),
    first_name VARCHAR(100), last_name VARCHAR(100), confirmed TINYINT NOT NULL DEFAULT 0) CHARACTER SET utf8mb4 COLLATE ${collation}`);
  for (const c of customers) await db.run('INSERT INTO customers (customer_id, Email, pass_hash, full_name, otp_secret, signed_up, verified) VALUES (?, ?, ?, ?, ?, ?, ?)', [c.id, c.email, c.hash, c.name, c.totp || null, '2016-03-04 05:06:07', c.verified ? 1 : 0]);
  for (const m of members) await db.run('INSERT INTO members (member_id, mail, pw_sha256, pw_salt, first_name, last_name, confirmed) VALUES (?, ?, ?, ?, ?, ?, ?)', [m.id, m.email, m.hash, m.salt, m.first, m.last, m.verified ? 1 : 0]);
  await db.close();
  return { url, name, drop };
}

const customersProduct = (url, extra = {}) => ({
  name: 'customers', db: url, table: 'customers', format: 'bcrypt',
  columns: { id: 'customer_id', email: 'Email', password: 'pass_hash', name: 'full_name', totp_secret: 'otp_secret', created_at: 'signed_up', email_verified: 'verified', person_id: 'trickle_person', auth0_user_id: 'auth0_id' },
  ...extra
});
const membersProduct = (url, extra = {}) => ({
  name: 'members', db: url, table: 'members', format: 'sha256-salt-prefix', link: 'table',
  columns: { id: 'member_id', email: 'mail', password: 'pw_sha256', salt: 'pw_salt', given_name: 'first_name', family_name: 'last_name', email_verified: 'confirmed' },
  ...extra
});

function people(n) {
  const customers = [];
  const members = [];
  for (let i = 0; i < n; i++) {
    const local = `Person.${String(i).padStart(3, '0')}`;
    // A third in customers only, a third in members only, a third in both (with other case).
    if (i % 3 !== 1) customers.push({ id: i + 1, email: `${local}@Example.COM`, hash: bcryptjs.hashSync(`pw-${i}`, 4), name: `Person ${i}`, totp: i % 3 === 0 ? 'JBSWY3DPEHPK3PXP' : null, verified: true });
    if (i % 3 !== 0) {
      const salt = crypto.randomBytes(6).toString('hex');
      members.push({ id: `m-${i}`, email: `${local.toLowerCase()}@example.com`, hash: crypto.createHash('sha256').update(salt + `pw-${i}`).digest('hex'), salt, first: 'Person', last: String(i), verified: true });
    }
  }
  return { customers, members };
}

function writeConfig(dir, cfg) {
  const file = path.join(dir, `trickle-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  return file;
}

test('two products with their own schemas in MariaDB, declared only in the config: prelink, export, import, backfill, verify through the CLI', async () => {
  const seeded = people(60);
  // One account export cannot take (not an address): rejected with a reason, explained in verify.
  seeded.members.push({ id: 'm-bad', email: 'not-an-address', hash: 'ab'.repeat(32), salt: 's', first: 'No', last: 'Address', verified: false });
  const prod = await productsDatabase(seeded);
  const state = await scratchDatabase('mysql', 'trickle_t', { create: false }); // import creates it
  const b = await bulkSim({ people: 10 });
  try {
    const configFile = writeConfig(b.dataDir, { products: [customersProduct(prod.url), membersProduct(prod.url)], state: state.url, tenant: b.cfg.tenant });
    const run = async (args) => {
      const r = await cli([...args, '--config', configFile]);
      assert.equal(r.code, 0, `${args[0]}: ${r.stdout}\n${r.stderr}`);
      return r;
    };
    const chk = await run(['check']);
    const lines = chk.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const cust = lines.find((l) => l.product === 'customers');
    assert.equal(cust.writes.person_id, 'customers.trickle_person');
    assert.equal(lines.find((l) => l.product === 'members').writes.auth0_user_id, 'trickle_person_link.auth0_user_id');
    assert.equal(summaryOf(chk.stdout).accounts, seeded.customers.length + seeded.members.length);

    const pre = summaryOf((await run(['prelink'])).stdout);
    assert.equal(pre.people, 61);
    const exp = summaryOf((await run(['export', '--out', b.out])).stdout);
    assert.equal(exp.read, 61);
    assert.equal(exp.exported, 60, fs.readFileSync(path.join(b.out, 'rejects.ndjson'), 'utf8'));
    assert.equal(exp.rejected, 1);
    const records = fs.readdirSync(b.out).filter((n) => /^users-/.test(n)).flatMap((n) => JSON.parse(fs.readFileSync(path.join(b.out, n), 'utf8')));
    assert.equal(new Set(records.map((r) => r.email)).size, 60, 'everyone once, by canonical address');
    const withTotp = records.filter((r) => (r.mfa_factors || []).some((f) => f.totp && f.totp.secret === 'JBSWY3DPEHPK3PXP'));
    assert.equal(withTotp.length, 20, 'TOTP carried for every customer who had it');

    const imp = summaryOf((await run(['import', '--out', b.out])).stdout);
    assert.equal(imp.files.failed || 0, 0);
    const bf = summaryOf((await run(['backfill'])).stdout);
    assert.ok(bf.updated > 0);
    // The rejected person fails verify unless explained by the export's rejects.ndjson.
    const plain = await cli(['verify', '--config', configFile]);
    assert.equal(plain.code, 1, plain.stdout + plain.stderr);
    assert.equal(summaryOf(plain.stdout).missing, 1);
    const strict = await cli(['verify', '--config', configFile, '--out', b.out, '--strict']);
    assert.equal(strict.code, 1, strict.stdout + strict.stderr);
    const ver = await run(['verify', '--out', b.out]);
    const v = summaryOf(ver.stdout);
    assert.deepEqual([v.people, v.missing, v.explained_rejects, v.duplicated, v.mislinked, v.tenant_users], [61, 0, 1, 0, 0, 60]);
    assert.ok(ver.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).some((l) => l.event === 'explained_reject' && l.email === 'not-an-address' && l.code), ver.stdout);

    // Auth0 ids written back: owned accounts only, where the config says.
    const db = await openDb(prod.url);
    const links = new Map();
    for (const r of await db.all('SELECT customer_id AS id, auth0_id AS a FROM customers')) links.set(`customers/${r.id}`, r.a);
    for (const r of await db.all('SELECT member_id AS id FROM members')) links.set(`members/${r.id}`, null);
    for (const r of await db.all('SELECT account_id AS id, auth0_user_id AS a FROM trickle_person_link')) links.set(`members/${r.id}`, r.a);
    const personIds = await db.all('SELECT COUNT(*) AS n FROM customers WHERE trickle_person IS NOT NULL');
    await db.close();
    assert.equal(Number(personIds[0].n), seeded.customers.length);
    let owned = 0;
    for (const [key, a] of exportedAccounts(b.out)) {
      if (a.owned) { owned++; assert.equal(links.get(key), a.auth0, key); } else assert.equal(links.get(key), null, key);
    }
    assert.ok(owned >= 60, `owned accounts written: ${owned}`);
  } finally {
    await b.close();
    await prod.drop();
    await state.drop();
  }
});

test('bad inputs: a stable code naming the product, key or column, exit 2, nothing written', async () => {
  const seeded = people(9);
  const prod = await productsDatabase(seeded);
  const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'trickle-schema-'));
  const untouched = async () => {
    const db = await openDb(prod.url);
    const n = (await db.all('SELECT COUNT(*) AS n FROM customers WHERE trickle_person IS NOT NULL OR auth0_id IS NOT NULL'))[0].n;
    const side = (await db.all("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'trickle_person_link'"))[0].n;
    await db.close();
    assert.equal(Number(n), 0, 'no person id or Auth0 id written');
    assert.equal(Number(side), 0, 'no side table created');
  };
  const refused = async (cfg, code, pattern, command = ['prelink']) => {
    const r = await cli([...command, '--config', writeConfig(dir, cfg)]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`\\[${code.replace('.', '\\.')}\\]`), r.stderr);
    assert.match(r.stderr, pattern, r.stderr);
    const last = JSON.parse(r.stdout.trim().split('\n').pop());
    assert.equal(last.summary, command[0]);
    assert.equal(last.error.code, code);
    await untouched();
  };
  try {
    const good = () => [customersProduct(prod.url), membersProduct(prod.url)];
    // A misspelt key.
    const typo = good();
    typo[1].fromat = typo[1].format;
    delete typo[1].format;
    await refused({ products: typo }, 'config.unknown_key', /products\[1\] \(members\): unknown key "fromat" \(did you mean "format"\?\)/);
    const typoCol = good();
    typoCol[0].columns.totp = typoCol[0].columns.totp_secret;
    delete typoCol[0].columns.totp_secret;
    await refused({ products: typoCol }, 'config.unknown_key', /\(customers\)\.columns: unknown key "totp" \(did you mean "totp_secret"\?\)/);
    // A missing column.
    const missing = good();
    missing[0].columns.email = 'Emial';
    await refused({ products: missing }, 'schema.missing_column', /product "customers": table customers has no column Emial \(columns\.email/);
    await refused({ products: missing }, 'schema.missing_column', /no column Emial/, ['export', '--out', path.join(dir, 'out')]);
    // A wrong format name.
    const format = good();
    format[0].format = 'bcrpyt';
    await refused({ products: format }, 'config.bad_format', /\(customers\)\.format: "bcrpyt" is not a password format \(did you mean "bcrypt"\?\)/);
    // Where the ids go, left out.
    const nowhere = good();
    delete nowhere[0].columns.auth0_user_id;
    await refused({ products: nowhere }, 'config.missing', /\(customers\)\.columns\.auth0_user_id: is required unless link is "table"/);
    // An unreachable database.
    const down = good();
    down[1].db = 'mysql://root@127.0.0.1:1/nowhere';
    await refused({ products: down }, 'db.unreachable', /product "members": cannot reach its database mysql:\/\/root@127\.0\.0\.1:1\/nowhere/, ['check']);
    await refused({ products: down }, 'db.unreachable', /product "members"/);
    assert.ok(!fs.existsSync(path.join(dir, 'out', 'manifest.json')));
  } finally {
    await prod.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a product out of canonical order (a non-binary email_norm collation) stops prelink and export with both addresses, before anything is written', async () => {
  const prod = await productsDatabase({ customers: [], members: [] });
  const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'trickle-schema-'));
  try {
    const db = await openDb(prod.url);
    await db.exec('ALTER TABLE customers ADD COLUMN email_norm VARCHAR(320) COLLATE utf8mb4_general_ci');
    // general_ci sorts é with e, before f; in byte order é (0xC3) comes after f.
    const rows = [['émile@example.com', 1], ['fred@example.com', 2], ['eve@example.com', 3], ['zoe@example.com', 4]];
    for (const [e, id] of rows) await db.run('INSERT INTO customers (customer_id, Email, email_norm, pass_hash, verified) VALUES (?, ?, ?, ?, 1)', [id, e, e, bcryptjs.hashSync('x', 4)]);
    await db.close();
    const p = customersProduct(prod.url);
    p.columns.email_norm = 'email_norm';
    const file = writeConfig(dir, { products: [p] });
    for (const command of [['prelink'], ['export', '--out', path.join(dir, 'out')], ['check']]) {
      const r = await cli([...command, '--config', file]);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /\[stream\.out_of_order\] product "customers": accounts do not come in address order: "eve@example\.com" \(account 3\) came after "émile@example\.com" \(account 1\)/, r.stderr);
    }
    assert.ok(!fs.existsSync(path.join(dir, 'out', 'manifest.json')), 'no export');
    const after = await openDb(prod.url);
    assert.equal(Number((await after.all('SELECT COUNT(*) AS n FROM customers WHERE trickle_person IS NOT NULL'))[0].n), 0);
    await after.close();
    // Without email_norm, trickle orders by LOWER(Email) in byte order itself: the same rows pass.
    const ok = await cli(['prelink', '--config', writeConfig(dir, { products: [customersProduct(prod.url)] })]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.equal(summaryOf(ok.stdout).people, 4);
  } finally {
    await prod.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
