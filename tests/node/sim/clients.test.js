// The simulator against real client libraries: openid-client completes the code flow and
// validates the id_token against the JWKS; the official Management API SDK (`auth0`) reads and
// updates users, searches by email, runs an import job and reads its errors. Then the import
// limits: a file over 500 000 bytes and a third concurrent job.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { Issuer } = require('openid-client');
const { ManagementClient } = require('auth0');
const { startSim } = require('../../../sim');

const form = (url, fields) => fetch(url, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });

/** The SDK only speaks https://<domain>: point that domain at the simulator. */
function sdk(sim) {
  const domain = 'tenant.sim.test';
  const rewrite = (url) => String(url).replace(`https://${domain}`, sim.tenant.url);
  const fetchViaSim = (url, init) => fetch(typeof url === 'string' || url instanceof URL ? rewrite(url) : new Request(rewrite(url.url), url), init);
  return new ManagementClient({ domain, clientId: 'trickle-m2m', clientSecret: 'm2m-secret', audience: `${sim.tenant.url}/api/v2/`, fetch: fetchViaSim });
}

async function waitFor(fn, ms = 10000) {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('openid-client completes the code flow and validates the id_token against the JWKS', async () => {
  const sim = await startSim({ people: 20 });
  try {
    const issuer = await Issuer.discover(sim.tenant.url);
    const redirect = `${sim.tenant.url}/app/callback`;
    const client = new issuer.Client({ client_id: 'trickle-demo', client_secret: 'demo-app-secret', redirect_uris: [redirect], response_types: ['code'] });
    const nonce = 'n-' + Date.now();
    const page = await (await fetch(client.authorizationUrl({ scope: 'openid email', state: 'st-1', nonce }))).text();
    const tx = page.match(/name="state" value="([^"]+)"/)[1];
    const person = sim.people.find((p) => p.accounts.length === 1);
    const res = await form(`${sim.tenant.url}/u/login`, { state: tx, email: person.email, password: person.accounts[0].password });
    const params = client.callbackParams(res.headers.get('location'));
    const tokens = await client.callback(redirect, params, { state: 'st-1', nonce });
    const claims = tokens.claims();
    assert.equal(claims.email, person.email.toLowerCase());
    assert.match(claims.sub, /^auth0\|/);
    assert.equal(claims.nonce, nonce);
    await assert.rejects(client.callback(redirect, params, { state: 'st-1', nonce }), /invalid_grant/, 'a code is single-use');
  } finally {
    await sim.close();
  }
});

test('the auth0 Management SDK: users, users by email, an import job and its errors', async () => {
  const sim = await startSim({ people: 20, importRate: 1000 });
  try {
    const mgmt = sdk(sim);
    const person = sim.people.find((p) => p.accounts.length === 1);
    await form(`${sim.tenant.url}/oauth/token`, { grant_type: 'password', username: person.email, password: person.accounts[0].password, client_id: 'trickle-demo', client_secret: 'demo-app-secret' });
    const found = (await mgmt.usersByEmail.getByEmail({ email: person.email })).data;
    assert.equal(found.length, 1);
    const id = found[0].user_id;
    await mgmt.users.update({ id }, { app_metadata: { note: 'hello' } });
    const user = (await mgmt.users.get({ id })).data;
    assert.equal(user.app_metadata.note, 'hello');
    assert.ok(user.app_metadata.trickle, 'other keys kept');

    const users = [
      { email: 'bulk.one@example.com', user_id: 'bulk-1', password_hash: '$2b$10$' + 'a'.repeat(53), app_metadata: { bulkImported: true } },
      { email: 'bulk.two@example.com', user_id: 'bulk-2', custom_password_hash: { algorithm: 'md5', hash: { value: '5f4dcc3b5aa765d61d8327deb882cf99', encoding: 'hex' } } },
      { email: 'not-an-email', user_id: 'bulk-3' },
      { email: 'bulk.four@example.com', user_id: 'bulk-4', app_metadata: { 'a.b': 1, email: 'x' } },
      { email: person.email, user_id: 'someone-else' }
    ];
    const job = (await mgmt.jobs.importUsers({ users: new Blob([JSON.stringify(users)], { type: 'application/json' }), connection_id: 'con_trickle', upsert: false, external_id: 'file-0001', send_completion_email: false })).data;
    assert.equal(job.type, 'users_import');
    const done = await waitFor(async () => { const j = (await mgmt.jobs.get({ id: job.id })).data; return j.status === 'completed' && j; });
    assert.deepEqual(done.summary, { failed: 3, updated: 0, inserted: 2, total: 5 });
    assert.equal(done.external_id, 'file-0001');
    const errors = (await mgmt.jobs.getErrors({ id: job.id })).data;
    const codes = errors.map((e) => e.errors.map((x) => x.code).sort().join(',')).sort();
    assert.deepEqual(codes, ['DUPLICATED_USER', 'FORMAT', 'INVALID_PROPERTY,PATTERN']);
    assert.ok(!JSON.stringify(errors).includes('$2b$10$'), 'secrets redacted');
    // The imported legacy hash works at login, and is then replaced by bcrypt.
    const login = await form(`${sim.tenant.url}/oauth/token`, { grant_type: 'password', username: 'bulk.two@example.com', password: 'password', client_id: 'trickle-demo', client_secret: 'demo-app-secret' });
    assert.equal(login.status, 200);
  } finally {
    await sim.close();
  }
});

test('import limits: a file over 500 000 bytes gets 413; a third concurrent job is refused', async () => {
  const sim = await startSim({ people: 10, importRate: 10 });
  try {
    const token = (await (await form(`${sim.tenant.url}/oauth/token`, { grant_type: 'client_credentials', client_id: 'trickle-m2m', client_secret: 'm2m-secret' })).json()).access_token;
    const submit = (text) => {
      const body = new FormData();
      body.append('users', new Blob([text], { type: 'application/json' }), 'users.json');
      body.append('connection_id', 'con_trickle');
      body.append('send_completion_email', 'false');
      return fetch(`${sim.tenant.url}/api/v2/jobs/users-imports`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body });
    };
    const big = '[' + JSON.stringify('x'.repeat(500001 - 4)) + ']';
    assert.equal(Buffer.byteLength(big), 500001);
    assert.equal((await submit(big)).status, 413);
    const fits = '[' + JSON.stringify('x'.repeat(500000 - 4)) + ']';
    assert.equal((await submit(fits)).status, 201, 'exactly 500 000 bytes is accepted');
    const many = JSON.stringify(Array.from({ length: 200 }, (_, i) => ({ email: `slow${i}@example.com` })));
    assert.equal((await submit(many)).status, 201);
    const third = await submit(many);
    assert.equal(third.status, 429);
    assert.match((await third.json()).message, /2 active import users jobs/);
    // The simulator's job log shows the two accepted jobs processing, never a third at once.
    const log = await waitFor(async () => {
      const l = (await (await fetch(`${sim.tenant.url}/_sim/api/jobs`)).json()).log;
      return l.filter((e) => e.status === 'processing').length >= 2 && l;
    });
    assert.ok(log, 'two jobs reached processing');
    assert.equal(log.filter((e) => e.status === 'pending').length, 2);
  } finally {
    await sim.close();
  }
});
