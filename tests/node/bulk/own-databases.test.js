// A migration of one's own databases, end to end, as the README tells a user to run it: two
// products on their own schemas (`customers` in MariaDB: INT ids, a mixed-case Email, bcrypt;
// `members` in PostgreSQL: text ids, salted SHA-256, trickle's side table), declared only in
// trickle.json and served by `trickle product-api`; `trickle sim` started as a user starts it
// and deployed into with the README's Deploy commands verbatim (the real auth0-deploy-cli over
// https); lazy sign-ins through the hosted login (one product, both products reaching the merge,
// a wrong password); then the bulk phase through S3 (moto), notify, verify and finish, with every
// product row and tenant user checked independently, and a person in both products signing in
// afterwards with a legacy password.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const net = require('net');
const path = require('path');
const crypto = require('crypto');
const { spawn, spawnSync, execFile } = require('child_process');
const bcryptjs = require('bcryptjs');
const { cli, summaryOf, BIN } = require('../support/bulk');
const { signIn, m2mToken } = require('../support/sim-http');
const { browser, backToTenant } = require('../../../sim/demo');
const { openDb } = require('../../../lib/db');

const ROOT = path.join(__dirname, '..', '..', '..');
const { scratchDatabase } = require('../support/databases');
const MOTO = spawnSync('moto_server', ['--help'], { stdio: 'ignore' }).status === 0;
const N = 18;

const freePort = () => new Promise((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); }); });

/** Starts a long-running CLI command; resolves once `ready` matches its stdout. */
function start(args, ready, { cwd, env } = {}) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const up = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${args[0]} did not start: ${out}\n${err}`)), 60000);
    child.stdout.on('data', (d) => { out += d; if (ready.test(out)) { clearTimeout(t); resolve(out); } });
    child.stderr.on('data', (d) => { err += d; });
    exited.then((code) => { clearTimeout(t); reject(new Error(`${args[0]} exited ${code}: ${out}\n${err}`)); });
  });
  return { child, up, exited, output: () => out + err };
}

/** Person i: a third in customers only, a third in members only, a third in both (every ninth of those in both, verified by neither). */
function person(i) {
  const email = `Owner.${String(i).padStart(2, '0')}@Own.Example`;
  const both = i % 3 === 2;
  const unverified = i % 9 === 8;
  // In both products, customers verified the address, members never did.
  const membersUnverified = i % 9 === 5;
  return { i, email, canonical: email.toLowerCase(), customers: i % 3 !== 1, members: i % 3 !== 0, both, unverified, membersUnverified, cpw: `cust-pw-${i}`, mpw: `memb-pw-${i}` };
}

const users = async (base, token, email) => {
  const r = await fetch(`${base}/api/v2/users-by-email?email=${encodeURIComponent(email)}`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200);
  return r.json();
};

test('own databases end to end: product-api from the declared schemas, the README deploy into `trickle sim`, lazy logins, the bulk phase through S3, notify, verify, finish', { skip: MOTO ? false : 'moto_server is not on PATH (pip install "moto[server]")', timeout: 600000 }, async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-own-'));
  // The user's checkout: the README's commands run from its root.
  for (const f of ['bin', 'dist', 'rules', 'node_modules', 'package.json', 'src', 'js-shim', 'Cargo.toml']) fs.symlinkSync(path.join(ROOT, f), path.join(work, f));
  const cleanups = [];
  try {
    // The products' databases, as their teams made them.
    const myDb = await scratchDatabase('mysql', 'trickle_own');
    cleanups.push(myDb.drop);
    const pgDb = await scratchDatabase('postgres', 'trickle_own');
    cleanups.push(pgDb.drop);
    const people = Array.from({ length: N }, (_, i) => person(i));
    const my = await openDb(myDb.url);
    await my.exec(`CREATE TABLE customers (customer_id INT PRIMARY KEY, Email VARCHAR(320) NOT NULL, pass_hash VARCHAR(100), full_name VARCHAR(200),
      signed_up DATETIME, verified TINYINT NOT NULL DEFAULT 0, trickle_person VARCHAR(64), auth0_id VARCHAR(128), INDEX (Email)) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
    for (const p of people.filter((x) => x.customers)) {
      await my.run('INSERT INTO customers (customer_id, Email, pass_hash, full_name, signed_up, verified) VALUES (?, ?, ?, ?, ?, ?)', [100 + p.i, p.email, bcryptjs.hashSync(p.cpw, 4), `Owner ${p.i}`, '2015-01-02 03:04:05', p.unverified ? 0 : 1]);
    }
    await my.close();
    const pg = await openDb(pgDb.url);
    await pg.exec('CREATE TABLE members (member_id TEXT PRIMARY KEY, mail TEXT NOT NULL, pw_sha256 TEXT, pw_salt TEXT, first_name TEXT, confirmed BOOLEAN NOT NULL DEFAULT false)');
    for (const p of people.filter((x) => x.members)) {
      const salt = crypto.randomBytes(6).toString('hex');
      await pg.run('INSERT INTO members (member_id, mail, pw_sha256, pw_salt, first_name, confirmed) VALUES (?, ?, ?, ?, ?, ?)', [`m-${p.i}`, p.canonical, crypto.createHash('sha256').update(salt + p.mpw).digest('hex'), salt, 'Owner', !p.unverified && !p.membersUnverified]);
    }
    await pg.close();

    // S3 for the export files.
    const motoPort = await freePort();
    const moto = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(motoPort)], { stdio: 'ignore' });
    cleanups.push(async () => moto.kill('SIGTERM'));
    const s3url = `http://127.0.0.1:${motoPort}`;
    for (let i = 0; i < 100; i++) { try { await fetch(s3url); break; } catch (_) { await new Promise((r) => setTimeout(r, 100)); } }
    const aws = { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: 'us-east-1' };
    Object.assign(process.env, aws);
    const { S3Client, CreateBucketCommand } = require('@aws-sdk/client-s3');
    await new S3Client({ endpoint: s3url, region: 'us-east-1', forcePathStyle: true }).send(new CreateBucketCommand({ Bucket: 'own-export' }));

    // The simulator, as the README starts it; what it printed and wrote.
    const sim = start(['sim', '--people', '5', '--write-config', 'sim-trickle.json'], /Press Ctrl-C to stop/, { cwd: work });
    cleanups.push(async () => { sim.child.kill('SIGINT'); assert.equal(await sim.exited, 0, 'the simulator stops cleanly on Ctrl-C'); });
    const printed = await sim.up;
    const ca = /export NODE_EXTRA_CA_CERTS=(\S+)/.exec(printed)[1];
    const base = /^ +tenant +(http:\S+)/m.exec(printed)[1];
    const written = JSON.parse(fs.readFileSync(path.join(work, 'sim-trickle.json'), 'utf8'));
    assert.match(written.tenant.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(written.deploy && written.deploy.mergeUrl && written.deploy.tokenSecret && written.deploy.clients.length, JSON.stringify(written.deploy));
    const env = { NODE_EXTRA_CA_CERTS: ca, ...aws };

    // trickle.json: the two products, their API served by trickle, the simulator's tenant and deploy settings.
    const apiPort = await freePort();
    const token = () => crypto.randomBytes(24).toString('hex');
    const cfg = {
      products: [
        { name: 'customers', db: myDb.url, table: 'customers', format: 'bcrypt', api: { url: `http://127.0.0.1:${apiPort}/customers`, token: token() },
          columns: { id: 'customer_id', email: 'Email', password: 'pass_hash', name: 'full_name', created_at: 'signed_up', email_verified: 'verified', person_id: 'trickle_person', auth0_user_id: 'auth0_id' } },
        { name: 'members', db: pgDb.url, table: 'members', format: 'sha256-salt-prefix', link: 'table', api: { url: `http://127.0.0.1:${apiPort}/members`, token: token() },
          columns: { id: 'member_id', email: 'mail', password: 'pw_sha256', salt: 'pw_salt', given_name: 'first_name', email_verified: 'confirmed' } }
      ],
      productApi: { port: apiPort },
      state: `sqlite:${path.join(work, 'state.sqlite')}`,
      tenant: written.tenant,
      deploy: written.deploy,
      s3: { endpoint: s3url, region: 'us-east-1', forcePathStyle: true },
      notify: { clientId: 'trickle-demo', ratePerSecond: 20 }
    };
    fs.writeFileSync(path.join(work, 'trickle.json'), JSON.stringify(cfg, null, 2));
    const api = start(['product-api', '--config', 'trickle.json'], /"event":"listening"/, { cwd: work });
    cleanups.unshift(async () => { api.child.kill('SIGTERM'); assert.equal(await api.exited, 0); assert.ok(!/Owner|own\.example|\$2[aby]\$/i.test(api.output()), 'nothing personal in the product API\'s log'); });
    await api.up;

    // The README's Deploy section, verbatim.
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('\n## Deploy'), readme.indexOf('\n## Finishing'));
    const block = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).find((b) => b.includes('a0deploy import --input_file dist/auth0 '));
    const commands = block.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter(Boolean);
    assert.deepEqual(commands.map((c) => c.split(' ').slice(0, 2).join(' ')), ['node rules/build.js', 'node bin/trickle.js', 'npx a0deploy']);
    for (const c of commands) {
      const r = await new Promise((resolve) => execFile('bash', ['-c', c], { cwd: work, env: { ...process.env, ...env }, timeout: 180000 }, (e, stdout, stderr) => resolve({ code: e ? e.code : 0, out: `${stdout}${stderr}` })));
      assert.equal(r.code, 0, `${c}:\n${r.out.slice(-3000)}`);
    }
    const deployed = JSON.parse(fs.readFileSync(path.join(work, 'config.json'), 'utf8'));
    assert.equal(deployed.AUTH0_KEYWORD_REPLACE_MAPPINGS.TRICKLE_PRODUCTS, JSON.stringify(cfg.products.map((p) => ({ name: p.name, url: p.api.url, token: p.api.token }))));

    // Lazy migration through the hosted login: the deployed scripts ask the product API.
    const m2m = await m2mToken(base);
    const single = people[0];
    let r = await signIn(base, single.email, single.cpw);
    assert.equal(r.status, 302);
    assert.match(r.headers.get('location'), /\/app\/callback\?.*\bcode=/, 'one product: signed in');
    const [lazyUser] = await users(base, m2m, single.canonical);
    assert.ok(lazyUser, 'the lazy login created the tenant user');
    const merger = people[2];
    r = await signIn(base, merger.email, merger.cpw);
    assert.equal(r.status, 302);
    assert.ok(r.headers.get('location').startsWith(cfg.deploy.mergeUrl), `both products: sent to the merge (${r.headers.get('location')})`);
    const wrong = people[3];
    r = await signIn(base, wrong.email, 'not-the-password');
    assert.notEqual(r.status, 302, "a wrong password signs nobody in");
    assert.match(await r.text(), /Wrong email or password/);
    assert.deepEqual(await users(base, m2m, wrong.canonical), [], 'a wrong password creates nobody');
    const mdb = await openDb(myDb.url);
    const held = async () => Object.fromEntries((await mdb.all('SELECT customer_id, auth0_id FROM customers')).map((x) => [x.customer_id, x.auth0_id]));
    assert.equal((await held())[100], lazyUser.user_id, 'the product API stored the Auth0 id the Action told');

    // The bulk phase, S3 for the files.
    const out = 's3://own-export/run-1';
    const run = async (...args) => {
      const x = await cli([...args, '--config', path.join(work, 'trickle.json')], { env });
      return { ...x, summary: x.stdout.includes('"summary"') ? summaryOf(x.stdout) : null };
    };
    // Exit 0, NDJSON only on stdout (no terminal here), nothing on stderr: no warning of any library either.
    const ok = async (...args) => {
      const x = await run(...args);
      assert.equal(x.code, 0, `${args.join(' ')}: ${x.stdout.slice(-2000)}\n${x.stderr}`);
      assert.equal(x.stderr, '', `${args.join(' ')} printed on stderr`);
      for (const line of x.stdout.trim().split('\n')) JSON.parse(line);
      return x.summary;
    };
    assert.equal((await ok('check')).accounts, people.filter((p) => p.customers).length + people.filter((p) => p.members).length);
    // check says how the product API finds an address in each product, and what index serves it.
    const lookups = Object.fromEntries((await run('check')).stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.event === 'product').map((l) => [l.product, l.lookup.by]));
    assert.deepEqual(lookups, { customers: 'Email = ? (collation utf8mb4_general_ci ignores case)', members: 'LOWER(TRIM(mail)) = ?' });
    await ok('prelink');
    const exp = await ok('export', '--out', out);
    const forced = people.filter((p) => p.both && p.unverified);
    assert.equal(exp.forced_reset, forced.length, JSON.stringify(exp));
    await ok('import', '--out', out);
    // Before backfill: verify names the step, finish refuses and writes nothing.
    let v = await run('verify', '--out', out);
    assert.equal(v.code, 1, v.stdout);
    assert.equal(v.summary.next_step, 'trickle backfill');
    const early = await run('finish', '--out', path.join(work, 'finished'));
    assert.equal(early.code, 1);
    assert.match(early.stderr, /^trickle finish: \[finish\.not_backfilled\]/m);
    assert.ok(!fs.existsSync(path.join(work, 'finished')));
    await ok('backfill');
    const n = await ok('notify', '--out', out);
    assert.equal(n.sent, forced.length, JSON.stringify(n));
    assert.equal((await ok('notify', '--out', out)).already_sent, forced.length, 'a second run mails nobody twice');
    v = await ok('verify', '--out', out);
    assert.deepEqual([v.people, v.missing, v.duplicated, v.mislinked, v.not_backfilled], [N, 0, 0, 0, 0], JSON.stringify(v));
    // A second export finds nobody new: the state knows whom the import brought in.
    const again = await ok('export', '--out', 's3://own-export/run-2');
    assert.equal(again.exported, 0, JSON.stringify(again));
    const fin = await ok('finish', '--out', path.join(work, 'finished'));
    assert.equal(fin.missing, 0);
    assert.ok(fs.existsSync(path.join(work, 'finished', 'database-connections')));

    // Independently: every person once in the tenant; every row holds its person's user id or
    // nothing (never another's); the forced-reset people were mailed.
    const cust = await held();
    const pgc = await openDb(pgDb.url);
    const mem = Object.fromEntries((await pgc.all('SELECT account_id, auth0_user_id FROM trickle_person_link')).map((x) => [x.account_id, x.auth0_user_id]));
    await pgc.close();
    for (const p of people) {
      const found = await users(base, m2m, p.canonical);
      assert.equal(found.length, 1, `${p.email} once in the tenant`);
      const id = found[0].user_id;
      if (p.customers && cust[100 + p.i]) assert.equal(cust[100 + p.i], id, `customers/${100 + p.i}`);
      if (p.members && mem[`m-${p.i}`]) assert.equal(mem[`m-${p.i}`], id, `members/m-${p.i}`);
      // Everyone with a verified account has it linked; a person verified by neither product
      // has no account linked until they prove one.
      // (The person sent to the merge left it unfinished: the tenant had them before the import,
      // so the import wrote nothing for them, and their next login tells their accounts.)
      if (p.i === merger.i) continue;
      if (!p.unverified) assert.ok((p.customers && cust[100 + p.i]) || (p.members && mem[`m-${p.i}`]), `${p.email}: an owned account is linked`);
      else assert.ok(!cust[100 + p.i] && !mem[`m-${p.i}`], `${p.email}: nothing linked`);
    }
    await mdb.close();
    const mail = await (await fetch(`${base}/_sim/api/mail`)).json();
    for (const p of forced) assert.ok(mail.some((m) => m.to.includes(p.canonical)), `${p.email} was mailed`);

    // After the import, a person in both products signs in with a legacy password (the verified
    // account's, whose hash was imported); the other account waits for the merge.
    const later = people.find((p) => p.both && !p.unverified && p.i !== merger.i);
    const attempts = [];
    for (const pw of [later.cpw, later.mpw]) {
      const x = await signIn(base, later.email, pw);
      attempts.push(x.status === 302 && /\/app\/callback\?.*\bcode=|merge/.test(x.headers.get('location') || ''));
    }
    assert.deepEqual(attempts.filter(Boolean).length, 1, `exactly the imported password works: ${attempts}`);

    // Not stranded: an account its product never verified (members) is brought in at the merge
    // by its own legacy password, checked against PostgreSQL through the product API; a wrong
    // one is refused.
    const stranded = people.find((p) => p.membersUnverified);
    assert.equal(mem[`m-${stranded.i}`] || null, null, 'not linked by the import');
    const login = await signIn(base, stranded.email, stranded.cpw);
    assert.equal(login.status, 302);
    assert.ok(login.headers.get('location').startsWith(cfg.deploy.mergeUrl), login.headers.get('location'));
    const b = browser();
    const page = await (await b.get(login.headers.get('location'))).text();
    const csrf = b.field(page, 'csrf');
    const mergeBase = new URL(cfg.deploy.mergeUrl).origin;
    assert.match(page, new RegExp(`value="members:m-${stranded.i}"`));
    const wrongPw = await b.post(`${mergeBase}/merge/account`, { csrf, account: `members:m-${stranded.i}`, password: stranded.cpw });
    assert.equal(wrongPw.status, 401, 'another account\'s password is not this one\'s');
    const rightPw = await b.post(`${mergeBase}/merge/account`, { csrf, account: `members:m-${stranded.i}`, password: stranded.mpw });
    assert.equal(rightPw.status, 200);
    const back = await backToTenant(await (await b.post(`${mergeBase}/merge/skip`, { csrf })).text());
    assert.match((back && back.headers.get('location')) || '', /\/app\/callback\?.*\bcode=/);
    const pgc2 = await openDb(pgDb.url);
    const linkedNow = (await pgc2.all('SELECT auth0_user_id FROM trickle_person_link WHERE account_id = ?', [`m-${stranded.i}`]))[0];
    await pgc2.close();
    assert.equal(linkedNow && linkedNow.auth0_user_id, (await users(base, m2m, stranded.canonical))[0].user_id, 'members was told the Auth0 id');
  } finally {
    for (const c of cleanups) await c().catch((e) => { process.stderr.write(`cleanup: ${e.message}\n`); });
    fs.rmSync(work, { recursive: true, force: true });
  }
});
