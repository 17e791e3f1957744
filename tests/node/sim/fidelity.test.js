// The simulator's points checked against Auth0's documentation and the official SDK: the free
// plan's Management API bucket (burst 2 at 2/s) with its headers, and the 204 that
// `GET /jobs/{id}/errors` answers when nothing failed (node-auth0 reads it as void), which the
// bulk import's client copes with.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { ManagementClient } = require('auth0');
const { startSim } = require('../../../sim');
const { RateLimiter, PLANS } = require('../../../sim/ratelimit');
const { m2mToken } = require('../support/sim-http');

test('the free plan: burst 2, refilled at 2 per second (a fake clock)', () => {
  assert.deepEqual(PLANS.free.other, { burst: 2, perSecond: 2 });
  let now = 1_700_000_000_000;
  const limiter = new RateLimiter('free', () => now);
  const a = limiter.take('other');
  const b = limiter.take('other');
  const c = limiter.take('other');
  assert.deepEqual([a.ok, b.ok, c.ok], [true, true, false]);
  assert.deepEqual([a.limit, a.remaining, b.remaining, c.remaining], [2, 1, 0, 0]);
  // Empty at t: the next token comes 0.5 s later; x-ratelimit-reset is in whole Unix seconds.
  assert.equal(c.reset, Math.ceil(now / 1000 + 0.5));
  assert.equal(c.retryAfter, 1);
  now += 500;
  assert.equal(limiter.take('other').ok, true, 'one token after half a second');
  assert.equal(limiter.take('other').ok, false);
  now += 10_000;
  const full = [limiter.take('other'), limiter.take('other'), limiter.take('other')];
  assert.deepEqual(full.map((r) => r.ok), [true, true, false], 'never more than the burst, however long the wait');
  // User writes have a bucket of their own, burst 2 too.
  assert.deepEqual([limiter.take('user_writes').ok, limiter.take('user_writes').ok, limiter.take('user_writes').ok], [true, true, false]);
});

test('the free plan over HTTP: a third request at once gets 429 with x-ratelimit-* and Retry-After', async () => {
  const sim = await startSim({ people: 5, plan: 'free' });
  try {
    const base = sim.tenant.url;
    const token = await m2mToken(base);
    await new Promise((r) => setTimeout(r, 1100)); // the bucket full again (2 tokens)
    const get = () => fetch(`${base}/api/v2/users-by-email?email=nobody%40example.com`, { headers: { authorization: `Bearer ${token}` } });
    const burst = await Promise.all(Array.from({ length: 6 }, get));
    const ok = burst.filter((r) => r.status === 200);
    const limited = burst.filter((r) => r.status === 429);
    assert.ok(ok.length >= 2 && ok.length <= 3, `2 at once (a third if a token came meanwhile), got ${ok.length}`);
    assert.ok(limited.length >= 3);
    for (const r of burst) {
      assert.equal(r.headers.get('x-ratelimit-limit'), '2');
      assert.match(r.headers.get('x-ratelimit-remaining'), /^[01]$/);
      const reset = Number(r.headers.get('x-ratelimit-reset'));
      assert.ok(reset >= Math.floor(Date.now() / 1000) - 1 && reset <= Date.now() / 1000 + 2, `reset ${reset} within the next second or two`);
    }
    assert.equal(limited[0].headers.get('retry-after'), '1');
    assert.deepEqual(await limited[0].json(), { statusCode: 429, error: 'Too Many Requests', message: 'Global limit has been reached', errorCode: 'too_many_requests' });
  } finally {
    await sim.close();
  }
});

async function submit(base, token, users) {
  const body = new FormData();
  body.append('users', new Blob([JSON.stringify(users)], { type: 'application/json' }), 'users.json');
  body.append('connection_id', 'con_trickle');
  body.append('send_completion_email', 'false');
  const res = await fetch(`${base}/api/v2/jobs/users-imports`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body });
  assert.equal(res.status, 201);
  return (await res.json()).id;
}

async function completed(base, token, id) {
  for (let i = 0; i < 100; i++) {
    const job = await (await fetch(`${base}/api/v2/jobs/${id}`, { headers: { authorization: `Bearer ${token}` } })).json();
    if (job.status === 'completed') return job;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the job never completed');
}

test('GET /jobs/{id}/errors: 204 with no body for a clean job, 200 with the list otherwise; the SDK reads both', async () => {
  const sim = await startSim({ people: 5, importRate: 1000 });
  try {
    const base = sim.tenant.url;
    const token = await m2mToken(base);
    const clean = await submit(base, token, [{ email: 'clean.one@example.com', user_id: 'clean-1' }, { email: 'clean.two@example.com', user_id: 'clean-2' }]);
    assert.deepEqual((await completed(base, token, clean)).summary, { failed: 0, updated: 0, inserted: 2, total: 2 });
    const none = await fetch(`${base}/api/v2/jobs/${clean}/errors`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(none.status, 204);
    assert.equal(await none.text(), '');
    assert.ok(none.headers.get('x-ratelimit-limit'), 'rate-limit headers on a 204 too');

    const dirty = await submit(base, token, [{ email: 'clean.one@example.com', user_id: 'clean-1' }, { email: 'fresh@example.com' }]);
    assert.equal((await completed(base, token, dirty)).summary.failed, 1);
    const some = await fetch(`${base}/api/v2/jobs/${dirty}/errors`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(some.status, 200);
    const listed = await some.json();
    assert.equal(listed.length, 1);
    assert.equal(listed[0].errors[0].code, 'DUPLICATED_USER');
    assert.equal((await fetch(`${base}/api/v2/jobs/job_nope/errors`, { headers: { authorization: `Bearer ${token}` } })).status, 404);

    // node-auth0 (the official SDK) against the simulator: void for the 204, the list for the 200.
    const domain = 'tenant.sim.test';
    const rewrite = (url) => String(url).replace(`https://${domain}`, base);
    const mgmt = new ManagementClient({
      domain, clientId: 'trickle-m2m', clientSecret: 'm2m-secret', audience: `${base}/api/v2/`,
      fetch: (url, init) => fetch(typeof url === 'string' || url instanceof URL ? rewrite(url) : new Request(rewrite(url.url), url), init)
    });
    const sdkNone = await mgmt.jobs.getErrors({ id: clean });
    assert.equal(sdkNone.status, 204);
    assert.ok(sdkNone.data === undefined || sdkNone.data === null || (Array.isArray(sdkNone.data) && !sdkNone.data.length), `void, got ${JSON.stringify(sdkNone.data)}`);
    assert.equal((await mgmt.jobs.getErrors({ id: dirty })).data.length, 1);
  } finally {
    await sim.close();
  }
});

test('/oauth/token names its grant with a string: a list, an inherited property name or an unknown grant is unsupported_grant_type, never a grant', async () => {
  const { startTenant } = require('../../../sim/tenant');
  const tenant = await startTenant({ mail: { send: async () => {} } });
  try {
    const ask = (grantType) => fetch(`${tenant.url}/oauth/token`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: grantType, client_id: 'trickle-m2m', client_secret: 'm2m-secret', username: 'nobody@example.com', password: 'x' })
    });
    for (const grantType of [['client_credentials'], ['password'], '__proto__', 'toString', 'hasOwnProperty', 'implicit', null, 7]) {
      const r = await ask(grantType);
      assert.equal(r.status, 400, JSON.stringify(grantType));
      assert.deepEqual(await r.json(), { error: 'unsupported_grant_type' }, JSON.stringify(grantType));
    }
    const r = await ask('client_credentials');
    assert.equal(r.status, 200, 'the grant itself still works');
    assert.ok((await r.json()).access_token);
  } finally {
    await tenant.close();
  }
});
