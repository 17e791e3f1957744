// `trickle product-api`: the product contract (docs/product-api.md) served from declared schemas
// in a real MariaDB (an INT id, a case-insensitive Email, the Auth0 id in a column), a real
// PostgreSQL (a text id, the side table) and SQLite; and the attacks on the server that hands
// out password hashes: another product's token, no token, wildcards, a coerced id, huge bodies,
// floods, a non-loopback listener without TLS, shared or short tokens, personal data in logs or
// metrics.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const https = require('https');
const { execFileSync, spawn } = require('child_process');
const bcryptjs = require('bcryptjs');
const { openDb } = require('../../../lib/db');
const { validateConfig } = require('../../../cli/config');
const { startProductApi } = require('../../../product-api/server');
const { BIN } = require('../support/bulk');

const MYSQL = process.env.TRICKLE_TEST_MYSQL || 'mysql://root@127.0.0.1:3306';
const PG = process.env.TRICKLE_TEST_PG || 'postgres://postgres@127.0.0.1:5432';
const token = () => crypto.randomBytes(24).toString('hex');
const HASH = bcryptjs.hashSync('ann-pw', 4);

/** A new MariaDB database and a new PostgreSQL database with a product table each, and a SQLite file. */
async function products() {
  const name = `trickle_api_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
  const admin = await openDb(`${MYSQL}/test`);
  await admin.run(`CREATE DATABASE ${name}`);
  await admin.close();
  const my = await openDb(`${MYSQL}/${name}`);
  await my.exec(`CREATE TABLE customers (customer_id INT PRIMARY KEY, Email VARCHAR(320) NOT NULL, pass_hash VARCHAR(100), full_name VARCHAR(200),
    verified TINYINT NOT NULL DEFAULT 0, trickle_person VARCHAR(64), auth0_id VARCHAR(128), INDEX (Email)) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
  await my.run('INSERT INTO customers (customer_id, Email, pass_hash, full_name, verified) VALUES (7, ?, ?, ?, 1), (8, ?, ?, ?, 0), (9, ?, NULL, ?, 1)',
    ['Ann@Example.COM', HASH, 'Ann Lee', 'annie@example.com', HASH, 'Annie', 'bob@example.com', 'Bob']);
  // The social sign-ins the product accepted (a case-insensitive collation, as MariaDB's default).
  await my.exec('CREATE TABLE customer_logins (cust INT NOT NULL, idp VARCHAR(64) NOT NULL, sub VARCHAR(255) NOT NULL, PRIMARY KEY (idp, sub)) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci');
  await my.run('INSERT INTO customer_logins (cust, idp, sub) VALUES (9, ?, ?)', ['google-oauth2', '110248495921238986420aB']);
  await my.close();
  const pgAdmin = await openDb(`${PG}/postgres`);
  await pgAdmin.run(`CREATE DATABASE ${name}`);
  await pgAdmin.close();
  const pg = await openDb(`${PG}/${name}`);
  const salt = 'c0ffee';
  await pg.exec(`CREATE TABLE members (member_id TEXT PRIMARY KEY, mail TEXT NOT NULL, pw_sha256 TEXT, pw_salt TEXT, confirmed BOOLEAN NOT NULL DEFAULT false)`);
  await pg.run('INSERT INTO members (member_id, mail, pw_sha256, pw_salt, confirmed) VALUES (?, ?, ?, ?, true), (?, ?, ?, ?, false)',
    ['m-1', ' ann@example.com', crypto.createHash('sha256').update(salt + 'ann-pw').digest('hex'), salt, 'm-2', 'carl@example.com', 'ab', salt]);
  await pg.close();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-api-'));
  const lite = await openDb(`sqlite:${path.join(dir, 'notes.sqlite')}`);
  await lite.exec('CREATE TABLE users (uid INTEGER PRIMARY KEY, address TEXT NOT NULL, phc TEXT, person TEXT, a0 TEXT)');
  await lite.run('INSERT INTO users (uid, address, phc) VALUES (1, ?, ?)', ['ANN@example.com', HASH]);
  await lite.close();
  const cfg = validateConfig({
    products: [
      { name: 'customers', db: `${MYSQL}/${name}`, table: 'customers', format: 'bcrypt', api: { url: 'x', token: token() },
        columns: { id: 'customer_id', email: 'Email', password: 'pass_hash', name: 'full_name', email_verified: 'verified', person_id: 'trickle_person', auth0_user_id: 'auth0_id' },
        identities: { table: 'customer_logins', columns: { account_id: 'cust', provider: 'idp', subject: 'sub' } } },
      { name: 'members', db: `${PG}/${name}`, table: 'members', format: 'sha256-salt-prefix', link: 'table', api: { url: 'x', token: token() },
        columns: { id: 'member_id', email: 'mail', password: 'pw_sha256', salt: 'pw_salt', email_verified: 'confirmed' } },
      { name: 'notes', db: `sqlite:${path.join(dir, 'notes.sqlite')}`, table: 'users', format: 'bcrypt', api: { url: 'x', token: token() },
        columns: { id: 'uid', email: 'address', password: 'phc', person_id: 'person', auth0_user_id: 'a0' } }
    ]
  });
  return {
    cfg, name, dir,
    tokens: Object.fromEntries(cfg.products.map((p) => [p.name, p.api.token])),
    drop: async () => {
      const a = await openDb(`${MYSQL}/test`);
      await a.run(`DROP DATABASE IF EXISTS ${name}`);
      await a.close();
      const b = await openDb(`${PG}/postgres`);
      await b.run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await b.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** A request to the API as the login scripts make it. */
function client(api, tokens) {
  return async (product, method, rest, { body, as = product, headers = {} } = {}) => {
    const r = await fetch(`${api.url}/${product}/trickle/accounts${rest}`, {
      method,
      headers: { authorization: `Bearer ${tokens[as] || as}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body)
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null, headers: r.headers };
  };
}

test('the product contract from three declared schemas: look-up by address in any case, compare-and-set and withdrawal of the Auth0 id', async () => {
  const p = await products();
  const lines = [];
  const api = await startProductApi(p.cfg, { port: 0, log: (o) => lines.push(JSON.stringify(o)) });
  const call = client(api, p.tokens);
  try {
    // MariaDB, a case-insensitive column: the address asked for in canonical form finds the mixed-case row.
    let r = await call('customers', 'GET', '?email=ann%40example.com');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.accounts.map((a) => [a.id, a.email, a.email_verified, a.name]), [['7', 'Ann@Example.COM', true, 'Ann Lee']]);
    assert.deepEqual(r.body.accounts[0].password, { algorithm: 'bcrypt', hash: { value: HASH } });
    assert.deepEqual(r.body.accounts[0].identities, []);
    // PostgreSQL, a space before the address; the salted SHA-256 descriptor.
    r = await call('members', 'GET', '?email=ANN%40example.com');
    assert.deepEqual(r.body.accounts.map((a) => a.id), ['m-1']);
    assert.equal(r.body.accounts[0].password.salt.value, 'c0ffee');
    r = await call('notes', 'GET', '?email=ann@example.com');
    assert.deepEqual(r.body.accounts.map((a) => a.id), ['1']);
    // No account: an empty list; a social identity: nobody (declared schemas hold none).
    assert.deepEqual((await call('customers', 'GET', '?email=nobody%40example.com')).body, { accounts: [] });
    assert.deepEqual((await call('customers', 'GET', '?provider=google-oauth2&subject=123')).body, { accounts: [] });
    // By social identity, where the product keeps a table of them: exactly, whatever the collation.
    r = await call('customers', 'GET', '?provider=google-oauth2&subject=110248495921238986420aB');
    assert.deepEqual(r.body.accounts.map((a) => [a.id, a.password, a.identities]), [['9', null, [{ provider: 'google-oauth2', subject: '110248495921238986420aB' }]]]);
    assert.deepEqual((await call('customers', 'GET', '?provider=google-oauth2&subject=110248495921238986420AB')).body, { accounts: [] }, 'a subject differing in case is another person');
    assert.deepEqual((await call('customers', 'GET', '?email=bob%40example.com')).body.accounts[0].identities, [{ provider: 'google-oauth2', subject: '110248495921238986420aB' }]);
    assert.deepEqual((await call('members', 'GET', '?provider=google-oauth2&subject=110248495921238986420aB')).body, { accounts: [] }, 'a product without an identities table finds nobody');

    // Compare and set, in a column (MariaDB) and in the side table (PostgreSQL), and SQLite.
    for (const [product, id] of [['customers', '7'], ['members', 'm-1'], ['notes', '1']]) {
      const put = (body) => call(product, 'PUT', `/${encodeURIComponent(id)}/auth0-id`, { body });
      assert.equal((await put({ auth0_user_id: 'auth0|person-1' })).status, 204, product);
      assert.equal((await put({ auth0_user_id: 'auth0|person-1' })).status, 204, `${product}: the same id again`);
      r = await put({ auth0_user_id: 'google-oauth2|999' });
      assert.equal(r.status, 409, product);
      assert.equal(r.body.auth0_user_id, 'auth0|person-1');
      assert.equal((await put({ auth0_user_id: 'google-oauth2|999', replace: 'auth0|person-2' })).status, 409, `${product}: replace names another id`);
      assert.equal((await put({ auth0_user_id: 'google-oauth2|999', replace: 'auth0|person-1' })).status, 204, `${product}: replace names the held id`);
      r = await call(product, 'GET', '?email=ann%40example.com');
      assert.equal(r.body.accounts[0].auth0_user_id, 'google-oauth2|999', product);
      // Withdrawal: only the id named goes.
      assert.equal((await call(product, 'DELETE', `/${id}/auth0-id`, { body: { auth0_user_id: 'auth0|person-1' } })).status, 204);
      assert.equal((await call(product, 'GET', '?email=ann%40example.com')).body.accounts[0].auth0_user_id, 'google-oauth2|999', `${product}: another id stays`);
      assert.equal((await call(product, 'DELETE', `/${id}/auth0-id`, { body: { auth0_user_id: 'google-oauth2|999' } })).status, 204);
      assert.equal((await call(product, 'GET', '?email=ann%40example.com')).body.accounts[0].auth0_user_id, undefined, product);
      assert.equal((await call(product, 'PUT', '/no-such-account/auth0-id', { body: { auth0_user_id: 'auth0|x' } })).status, 404, product);
    }
    // The database itself holds what the API said.
    const my = await openDb(p.cfg.products[0].db);
    assert.deepEqual((await my.all('SELECT auth0_id FROM customers WHERE customer_id = 7'))[0], { auth0_id: null });
    await my.close();
    // Nothing personal in the log lines.
    assert.ok(lines.some((l) => l.includes('"listening"')));
    assert.ok(!lines.join('\n').match(/ann|example\.com|\$2[aby]\$|person-1/i), lines.join('\n'));
  } finally {
    await api.close();
    await p.drop();
  }
});

test('attacks on the product API: no other product\'s token, no wildcard or prefix, no coerced id, bounded bodies and rates, nothing personal in the metrics', async () => {
  const p = await products();
  const api = await startProductApi(p.cfg, { port: 0, ratePerSecond: 60, log: () => {} });
  const call = client(api, p.tokens);
  try {
    // One product's token reads nothing of another; no token, a wrong token of the same length, a token as a prefix.
    assert.equal((await call('members', 'GET', '?email=ann%40example.com', { as: 'customers' })).status, 401);
    assert.equal((await call('customers', 'GET', '?email=ann%40example.com', { headers: { authorization: '' } })).status, 401);
    assert.equal((await call('customers', 'GET', '?email=ann%40example.com', { as: 'x'.repeat(48) })).status, 401);
    assert.equal((await call('customers', 'GET', '?email=ann%40example.com', { as: p.tokens.customers.slice(0, -1) })).status, 401);
    assert.equal((await call('no-such-product', 'GET', '?email=ann%40example.com', { as: 'customers' })).status, 401);
    assert.equal((await call('members', 'PUT', '/m-1/auth0-id', { as: 'customers', body: { auth0_user_id: 'auth0|evil' } })).status, 401);
    // Wildcards are text: a LIKE pattern or a prefix finds nobody.
    for (const q of ['%25%40example.com', 'ann%25', '_nn%40example.com', 'ann', '%25']) {
      const r = await call('customers', 'GET', `?email=${q}`);
      assert.ok(r.status === 400 || (r.status === 200 && r.body.accounts.length === 0), `${q}: ${JSON.stringify(r.body)}`);
    }
    // MariaDB compares '7abc' with the INT 7 as equal: the API does not.
    assert.equal((await call('customers', 'PUT', '/7abc/auth0-id', { body: { auth0_user_id: 'auth0|evil' } })).status, 404);
    assert.equal((await call('customers', 'PUT', '/%207/auth0-id', { body: { auth0_user_id: 'auth0|evil' } })).status, 404);
    // PostgreSQL refuses a text for an INT id; here the ids are text, so an id of another shape is just not there.
    assert.equal((await call('members', 'PUT', '/m-1%27%20OR%20%271%27%3D%271/auth0-id', { body: { auth0_user_id: 'auth0|evil' } })).status, 404);
    // Bad queries and bodies: stable codes, nothing read.
    assert.equal((await call('customers', 'GET', '?email=a%40b.c&email=d%40e.f')).body.error, 'query.repeated');
    assert.equal((await call('customers', 'GET', '?email=a%40b.c&provider=google-oauth2')).body.error, 'query.ambiguous');
    assert.equal((await call('customers', 'GET', '?all=1')).body.error, 'query.unknown');
    assert.equal((await call('customers', 'GET', '')).body.error, 'query.email_required');
    assert.equal((await call('customers', 'GET', `?email=${'a'.repeat(400)}%40b.c`)).body.error, 'query.email_invalid');
    assert.equal((await call('customers', 'PUT', '/7/auth0-id', { body: { auth0_user_id: 'not an id' } })).body.error, 'body.auth0_user_id');
    assert.equal((await call('customers', 'PUT', '/7/auth0-id', { body: { auth0_user_id: 'auth0|x', replace: 12 } })).body.error, 'body.auth0_user_id');
    let r = await call('customers', 'PUT', '/7/auth0-id', { body: JSON.stringify({ auth0_user_id: 'auth0|x', pad: 'x'.repeat(5000) }) });
    assert.equal(r.status, 413);
    r = await call('customers', 'PUT', '/7/auth0-id', { body: '{"auth0_user_id": ' });
    assert.equal(r.status, 400);
    assert.equal((await fetch(`${api.url}/customers/trickle/accounts?email=${'a'.repeat(3000)}`, { headers: { authorization: `Bearer ${p.tokens.customers}` } })).status, 414);
    assert.equal((await fetch(`${api.url}/customers/trickle/everything`, { headers: { authorization: `Bearer ${p.tokens.customers}` } })).status, 404);
    // The account was never written by any of these.
    assert.equal((await call('customers', 'GET', '?email=ann%40example.com')).body.accounts[0].auth0_user_id, undefined);
    // A flood: the product's rate is spent (429 with Retry-After), the other product is still served.
    const answers = await Promise.all(Array.from({ length: 200 }, () => call('customers', 'GET', '?email=ann%40example.com')));
    const limited = answers.filter((a) => a.status === 429);
    assert.ok(limited.length >= 60, `429s: ${limited.length}`);
    assert.equal(limited[0].headers.get('retry-after'), '1');
    assert.equal((await call('notes', 'GET', '?email=ann%40example.com')).status, 200);
    // Metrics: counts by product, route and status; never an address, id or token.
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    assert.match(metrics, /trickle_product_api_requests_total\{product="customers",route="lookup",status="200"\}/);
    assert.match(metrics, /trickle_product_api_refused_total\{reason="token"\} [1-9]/);
    assert.match(metrics, /trickle_product_api_refused_total\{reason="rate"\} [1-9]/);
    assert.ok(!/example|auth0\||m-1|evil/.test(metrics) && !metrics.includes(p.tokens.customers));
    assert.deepEqual(await (await fetch(`${api.url}/healthz`)).json(), { ok: true, down: [] });
  } finally {
    await api.close();
    await p.drop();
  }
});

test('the product API refuses to start unsafely: not on a public address without TLS, not with short or shared tokens; with TLS it serves https only', async () => {
  const p = await products();
  try {
    await assert.rejects(startProductApi(p.cfg, { host: '0.0.0.0', port: 0, log: () => {} }), (e) => e.code === 'product_api.tls_required');
    const short = validateConfig(JSON.parse(JSON.stringify({ products: p.cfg.products.slice(2).map((x) => ({ ...x, api: { url: 'x', token: 'short' } })) })));
    await assert.rejects(startProductApi(short, { port: 0, log: () => {} }), (e) => e.code === 'product_api.token');
    const shared = validateConfig(JSON.parse(JSON.stringify({ products: p.cfg.products.slice(1).map((x) => ({ ...x, api: { url: 'x', token: 'y'.repeat(40) } })) })));
    await assert.rejects(startProductApi(shared, { port: 0, log: () => {} }), (e) => e.code === 'product_api.shared_token');
    const noTable = validateConfig(JSON.parse(JSON.stringify({ products: [{ ...p.cfg.products[0], identities: { table: 'no_such_logins', columns: { account_id: 'cust', provider: 'idp', subject: 'sub' } } }] })));
    await assert.rejects(startProductApi(noTable, { port: 0, log: () => {} }), (e) => e.code === 'schema.missing_table' && /no_such_logins/.test(e.message));
    // As the CLI starts it: exit 2 and the code on stderr.
    const cfgFile = path.join(p.dir, 'trickle.json');
    fs.writeFileSync(cfgFile, JSON.stringify({ products: p.cfg.products, productApi: { host: '0.0.0.0' } }));
    const out = execFileSyncStatus(process.execPath, [BIN, 'product-api', '--config', cfgFile]);
    assert.equal(out.status, 2);
    assert.match(out.stderr, /^trickle product-api: \[product_api\.tls_required\]/);

    // TLS: a certificate of one's own; plain http is not answered.
    const key = path.join(p.dir, 'key.pem');
    const cert = path.join(p.dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'pipe' });
    const api = await startProductApi(p.cfg, { port: 0, tls: { cert, key }, log: () => {} });
    try {
      assert.match(api.url, /^https:/);
      const body = await new Promise((resolve, reject) => {
        https.get(`${api.url}/notes/trickle/accounts?email=ann%40example.com`, { ca: fs.readFileSync(cert), headers: { authorization: `Bearer ${p.tokens.notes}` } }, (res) => {
          let t = '';
          res.on('data', (d) => { t += d; });
          res.on('end', () => resolve(JSON.parse(t)));
        }).on('error', reject);
      });
      assert.deepEqual(body.accounts.map((a) => a.id), ['1']);
      await assert.rejects(fetch(api.url.replace('https:', 'http:') + '/healthz'));
    } finally {
      await api.close();
    }
  } finally {
    await p.drop();
  }
});

test('`trickle product-api` as a user starts it: serves until SIGTERM, lets the request in flight finish, exits 0', async () => {
  const p = await products();
  const cfgFile = path.join(p.dir, 'trickle.json');
  fs.writeFileSync(cfgFile, JSON.stringify({ products: p.cfg.products, productApi: { port: 0 } }));
  const child = spawn(process.execPath, [BIN, 'product-api', '--config', cfgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const url = await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`not listening: ${out}`)), 20000);
      child.stdout.on('data', () => { const m = out.match(/"url":"(http:[^"]+)"/); if (m) { clearTimeout(t); resolve(m[1]); } });
    });
    const r = await fetch(`${url}/customers/trickle/accounts?email=ann%40example.com`, { headers: { authorization: `Bearer ${p.tokens.customers}` } });
    assert.equal((await r.json()).accounts[0].id, '7');
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.match(out, /"event":"stopped"/);
    assert.ok(!/ann@|\$2[aby]\$/.test(out));
  } finally {
    child.kill('SIGKILL');
    await p.drop();
  }
});

function execFileSyncStatus(cmd, args) {
  try {
    return { status: 0, stdout: execFileSync(cmd, args, { stdio: 'pipe', encoding: 'utf8', timeout: 20000 }), stderr: '' };
  } catch (e) {
    return { status: e.status, stdout: String(e.stdout || ''), stderr: String(e.stderr || '') };
  }
}
