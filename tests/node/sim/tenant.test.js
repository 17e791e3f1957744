// The simulator: the scripted demo, the Management API with Auth0's merge rules, rate limits
// with their headers, the resource-owner grant, and the legacy Rules pipeline.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { startSim } = require('../../../sim');
const { runDemo, mergeablePeople } = require('../../../sim/demo');

const { form, m2mToken, signIn } = require('../support/sim-http');



test('the demo drives a whole migration and every expectation holds', async () => {
  const lines = [];
  const r = await runDemo({ people: 40, log: (l) => lines.push(l) });
  assert.equal(r.failed, 0, lines.join('\n'));
  assert.ok(r.passed >= 20, `${r.passed} checks`);
});

test('Management API: users by email, PATCH merges top-level metadata keys, null deletes, DELETE', async () => {
  const sim = await startSim({ people: 20 });
  try {
    const base = sim.tenant.url;
    const person = sim.people.find((p) => p.accounts.length === 1);
    assert.equal((await signIn(base, person.email, person.accounts[0].password)).status, 302);
    assert.equal((await fetch(`${base}/api/v2/users-by-email?email=${encodeURIComponent(person.email)}`)).status, 401, 'no token, no access');
    const token = await m2mToken(base);
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const found = await (await fetch(`${base}/api/v2/users-by-email?email=${encodeURIComponent(person.email.toUpperCase())}`, { headers: auth })).json();
    assert.equal(found.length, 1);
    const id = found[0].user_id;
    assert.ok(!('password_hash' in found[0]), 'no hash in API answers');
    const before = found[0].app_metadata;
    const patched = await (await fetch(`${base}/api/v2/users/${encodeURIComponent(id)}`, { method: 'PATCH', headers: auth, body: JSON.stringify({ app_metadata: { extra: { a: 1 }, migrated: null } }) })).json();
    assert.deepEqual(patched.app_metadata.trickle, before.trickle, 'other top-level keys kept');
    assert.deepEqual(patched.app_metadata.extra, { a: 1 });
    assert.ok(!('migrated' in patched.app_metadata), 'null deletes');
    const replaced = await (await fetch(`${base}/api/v2/users/${encodeURIComponent(id)}`, { method: 'PATCH', headers: auth, body: JSON.stringify({ app_metadata: { extra: { b: 2 } } }) })).json();
    assert.deepEqual(replaced.app_metadata.extra, { b: 2 }, 'nested objects are replaced, not merged');
    const bad = await fetch(`${base}/api/v2/users/${encodeURIComponent(id)}`, { method: 'PATCH', headers: auth, body: JSON.stringify({ app_metadata: 'nope' }) });
    assert.equal(bad.status, 400);
    assert.equal((await fetch(`${base}/api/v2/users/${encodeURIComponent(id)}`, { method: 'DELETE', headers: auth })).status, 204);
    assert.equal((await fetch(`${base}/api/v2/users/${encodeURIComponent(id)}`, { headers: auth })).status, 404);
  } finally {
    await sim.close();
  }
});

test('rate limits: a burst beyond the bucket gets 429 with the headers; a client that honours them completes', async () => {
  const sim = await startSim({ people: 10, plan: 'enterprise-dev' });
  try {
    const base = sim.tenant.url;
    const token = await m2mToken(base);
    const get = () => fetch(`${base}/api/v2/users-by-email?email=nobody%40example.com`, { headers: { authorization: `Bearer ${token}` } });
    const burst = await Promise.all(Array.from({ length: 16 }, get));
    const limited = burst.filter((r) => r.status === 429);
    assert.ok(limited.length > 0, 'some requests were limited');
    for (const r of burst) {
      for (const h of ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']) assert.ok(r.headers.get(h) !== null, `${h} on HTTP ${r.status}`);
    }
    assert.deepEqual(await limited[0].json(), { statusCode: 429, error: 'Too Many Requests', message: 'Global limit has been reached', errorCode: 'too_many_requests' });
    // A well-behaved client: waits for Retry-After (else x-ratelimit-reset) and never gives up early.
    let done = 0;
    for (let i = 0; i < 6; i++) {
      for (let attempt = 0; attempt < 10; attempt++) {
        const r = await get();
        if (r.status !== 429) { done++; break; }
        const wait = Number(r.headers.get('retry-after')) * 1000 || Math.max(0, Number(r.headers.get('x-ratelimit-reset')) * 1000 - Date.now());
        await new Promise((res) => setTimeout(res, Math.min(wait, 2000)));
      }
    }
    assert.equal(done, 6);
  } finally {
    await sim.close();
  }
});

test('resource-owner grant logs a multi-product person in without a redirect; wrong password is refused', async () => {
  const sim = await startSim({ people: 30 });
  try {
    const base = sim.tenant.url;
    // Signing in with an account its product verified (a password that matches only an unverified
    // account is refused while other accounts hold the address).
    const multi = mergeablePeople(sim)[0];
    const ok = await form(`${base}/oauth/token`, { grant_type: 'password', username: multi.email, password: multi.accounts[0].password, client_id: 'trickle-demo', client_secret: 'demo-app-secret', scope: 'openid' });
    assert.equal(ok.status, 200);
    assert.ok((await ok.json()).id_token);
    const wrong = await form(`${base}/oauth/token`, { grant_type: 'password', username: multi.email, password: 'nope', client_id: 'trickle-demo', client_secret: 'demo-app-secret' });
    assert.equal(wrong.status, 403);
    assert.equal((await wrong.json()).error, 'invalid_grant');
  } finally {
    await sim.close();
  }
});

test('the legacy Rules pipeline: single-product login completes, multi-product login reaches the merge redirect', async () => {
  const sim = await startSim({ people: 30, pipeline: 'rules' });
  try {
    const base = sim.tenant.url;
    const single = sim.people.find((p) => p.accounts.length === 1);
    const s = await signIn(base, single.email, single.accounts[0].password);
    assert.match(s.headers.get('location') || '', /\/app\/callback\?.*code=/);
    const p = single.accounts[0];
    assert.ok(sim.byName[p.product].db.prepare('SELECT auth0_user_id FROM accounts WHERE id = ?').get(p.id).auth0_user_id);
    // A verified first account and a verified account in another product: the merge is wanted.
    const multi = mergeablePeople(sim)[0];
    const m = await signIn(base, multi.email, multi.accounts[0].password);
    const loc = new URL(m.headers.get('location'));
    assert.equal(loc.pathname, '/merge');
    assert.ok(loc.searchParams.get('session_token') && loc.searchParams.get('state'));
  } finally {
    await sim.close();
  }
});

test('`trickle sim` prints its URLs, serves the dashboard and stops cleanly on SIGINT; bad flags are refused', async () => {
  const { spawn, spawnSync } = require('child_process');
  const path = require('path');
  const bin = path.join(__dirname, '..', '..', '..', 'bin', 'trickle.js');
  const bad = spawnSync(process.execPath, [bin, 'sim', '--people', 'lots'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--people must be a whole number/);
  const child = spawn(process.execPath, [bin, 'sim', '--people', '15'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no URLs printed: ' + out)), 20000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/dashboard (http:\/\/127\.0\.0\.1:\d+\/_sim)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
  assert.match(out, /tenant\s+http:\/\/127\.0\.0\.1:\d+/);
  assert.match(out, /paste\s+http:\/\/127\.0\.0\.1:\d+/);
  const state = await (await fetch(url.replace('/_sim', '/_sim/api/state'))).json();
  assert.equal(state.products.length, 3);
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGINT');
  assert.equal(await exited, 0);
});
