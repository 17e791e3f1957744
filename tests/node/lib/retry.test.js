// The one retry policy (js-shim/retry.js): Retry-After in seconds or as an HTTP date, else
// x-ratelimit-reset on a 429, else a jittered exponential back-off; every wait capped, none past
// the deadline, no try beyond the last, and no retry of an answer retrying cannot change (a 4xx
// other than 429). Then its loop, and the chain's Management API caller built on it exactly as
// the Action and the Rule inline them (rules/build.js).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const { trickleBackoff, trickleRetryWait, trickleRetry } = require('../../../js-shim/retry');

const NOW = Date.UTC(2025, 0, 2, 3, 4, 5); // a whole second, as HTTP dates are
const POLICY = { attempts: 8, base: 500, cap: 30000 };
const half = () => 0.5;
/** The wait after one try (unless `t` says otherwise) under POLICY (unless `p` does). */
const wait = (t, p = {}) => trickleRetryWait({ attempt: 1, status: 429, now: NOW, random: half, ...t }, { ...POLICY, ...p });

test('Retry-After in seconds or as an HTTP date is waited for, on a 429 and on a 5xx', () => {
  assert.equal(wait({ retryAfter: '3' }), 3000);
  assert.equal(wait({ retryAfter: ' 12 ' }), 12000);
  assert.equal(wait({ retryAfter: new Date(NOW + 7000).toUTCString() }), 7000);
  assert.equal(wait({ status: 503, retryAfter: '2' }), 2000);
  assert.equal(wait({ status: 503, retryAfter: new Date(NOW + 4000).toUTCString() }), 4000);
});

test('a Retry-After of zero, in the past or unreadable is no header: the back-off decides', () => {
  const backoff = trickleBackoff(1, POLICY, half);
  assert.equal(backoff, 375);
  for (const retryAfter of ['0', '-5', '', 'soon', new Date(NOW - 1000).toUTCString(), null, undefined]) {
    assert.equal(wait({ retryAfter }), backoff, JSON.stringify(retryAfter));
  }
});

test('x-ratelimit-reset is used on a 429 without Retry-After, at least 250 ms, and never on another answer', () => {
  const reset = String((NOW + 4000) / 1000);
  assert.equal(wait({ reset }), 4000);
  assert.equal(wait({ retryAfter: '2', reset }), 2000, 'Retry-After first');
  assert.equal(wait({ reset: String(NOW / 1000 - 10) }), 250, 'a reset already past');
  assert.equal(wait({ reset: String(NOW / 1000) }), 250);
  assert.equal(wait({ status: 503, reset }), trickleBackoff(1, POLICY, half), 'the reset of a bucket that is not empty');
  assert.equal(wait({ reset: 'never' }), trickleBackoff(1, POLICY, half));
});

test('whatever the server asks is capped', () => {
  assert.equal(wait({ retryAfter: '120' }), 30000);
  assert.equal(wait({ retryAfter: new Date(NOW + 3600e3).toUTCString() }), 30000);
  assert.equal(wait({ reset: String(NOW / 1000 + 3600) }), 30000);
  assert.equal(wait({ retryAfter: '120' }, { cap: 5000 }), 5000);
});

test('the back-off doubles per try up to the cap, with a jitter in [half, full) from the random source', () => {
  const nominal = (attempt) => Math.min(30000, 500 * 2 ** (attempt - 1));
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(nominal), [500, 1000, 2000, 4000, 8000, 16000, 30000]);
  for (let attempt = 1; attempt <= 7; attempt++) {
    assert.equal(wait({ attempt, status: 503, random: () => 0 }), nominal(attempt) / 2, `attempt ${attempt}, random 0`);
    const top = wait({ attempt, status: 503, random: () => 1 - Number.EPSILON });
    assert.ok(top < nominal(attempt) && top > nominal(attempt) * 0.999, `attempt ${attempt}: ${top}`);
    for (let i = 0; i < 200; i++) {
      const w = wait({ attempt, status: 0, random: Math.random });
      assert.ok(w >= nominal(attempt) / 2 && w < nominal(attempt), `attempt ${attempt}: ${w}`);
    }
  }
  // The random source is the only source: the same draws, the same waits.
  const draws = [0.1, 0.7, 0.3];
  const seq = () => { let i = 0; return () => draws[i++ % draws.length]; };
  const a = seq();
  const b = seq();
  assert.deepEqual([1, 2, 3].map((attempt) => wait({ attempt, status: 502, random: a })), [1, 2, 3].map((attempt) => wait({ attempt, status: 502, random: b })));
  const c = seq();
  assert.deepEqual([1, 2, 3].map((attempt) => wait({ attempt, status: 502, random: c })), [275, 850, 1300]);
});

test('a wait that does not end before the deadline gives up; without a deadline nothing does', () => {
  assert.equal(wait({ retryAfter: '3', left: 3001 }), 3000);
  assert.equal(wait({ retryAfter: '3', left: 3000 }), -1);
  assert.equal(wait({ retryAfter: '3', left: 500 }), -1);
  assert.equal(wait({ status: 503, left: 0 }), -1);
  assert.equal(wait({ status: 503, left: -20 }), -1);
  assert.equal(wait({ status: 503, left: 376 }), 375);
  assert.equal(wait({ status: 503, left: 375 }), -1);
  assert.equal(wait({ retryAfter: '30', left: undefined }), 30000);
});

test('no try beyond the last', () => {
  assert.equal(wait({ attempt: 7, status: 503 }), trickleBackoff(7, POLICY, half));
  assert.equal(wait({ attempt: 8, status: 503 }), -1);
  assert.equal(wait({ attempt: 8, retryAfter: '1' }), -1);
  assert.equal(wait({ attempt: 1, status: 429 }, { attempts: 1 }), -1);
});

test('a 4xx other than 429 is final, as is any answer that is no error; a 5xx and no answer are retried unless only429', () => {
  for (const status of [200, 201, 204, 301, 304, 400, 401, 403, 404, 409, 410, 422]) {
    assert.equal(wait({ status, retryAfter: '1' }), -1, `HTTP ${status}`);
  }
  for (const status of [0, 500, 502, 503, 504]) assert.ok(wait({ status }) > 0, `HTTP ${status}`);
  for (const status of [0, 500, 503]) assert.equal(wait({ status, retryAfter: '1' }, { only429: true }), -1, `HTTP ${status}, only429`);
  assert.equal(wait({ retryAfter: '1' }, { only429: true }), 1000);
});

/** Answers in turn, as fetch resolves them (a Response) or rejects (an Error); the calls made. */
function answers(list) {
  const calls = [];
  const call = (attempt) => {
    calls.push(attempt);
    const a = list[Math.min(calls.length, list.length) - 1];
    return a instanceof Error ? Promise.reject(a) : Promise.resolve(new Response(null, a));
  };
  return { call, calls };
}

test('the loop tries again after a 429, a 5xx or no answer, and resolves to the last answer', async () => {
  const fast = { attempts: 4, base: 2, cap: 20, random: () => 0 };
  let a = answers([{ status: 503 }, new Error('reset'), { status: 429 }, { status: 200 }]);
  assert.equal((await trickleRetry(a.call, fast)).status, 200);
  assert.deepEqual(a.calls, [1, 2, 3, 4]);
  a = answers([{ status: 503 }]);
  assert.equal((await trickleRetry(a.call, fast)).status, 503, 'the last answer, after the last try');
  assert.deepEqual(a.calls, [1, 2, 3, 4]);
  a = answers([{ status: 502 }, { status: 404 }, { status: 200 }]);
  assert.equal((await trickleRetry(a.call, fast)).status, 404);
  assert.deepEqual(a.calls, [1, 2]);
  a = answers([new Error('first'), new Error('last')]);
  await assert.rejects(trickleRetry(a.call, fast), /last/);
  assert.deepEqual(a.calls, [1, 2, 3, 4]);
  a = answers([new Error('down'), { status: 200 }]);
  await assert.rejects(trickleRetry(a.call, { ...fast, only429: true }), /down/, 'only429: no answer is final');
  assert.deepEqual(a.calls, [1]);
  // A call that throws instead of rejecting is no answer too.
  let n = 0;
  assert.equal((await trickleRetry(() => { if (n++ === 0) throw new Error('sync'); return { status: 204 }; }, fast)).status, 204);
});

test('the loop waits as the answer says and gives up when the wait passes the deadline', async () => {
  let a = answers([{ status: 429, headers: { 'retry-after': '1' } }, { status: 200 }]);
  let t0 = Date.now();
  assert.equal((await trickleRetry(a.call, { attempts: 3, base: 2, cap: 5000, deadline: Date.now() + 1500 })).status, 200);
  assert.ok(Date.now() - t0 >= 990, `waited ${Date.now() - t0} ms`);
  a = answers([{ status: 429, headers: { 'retry-after': '1' } }, { status: 200 }]);
  t0 = Date.now();
  assert.equal((await trickleRetry(a.call, { attempts: 3, base: 2, cap: 5000, deadline: Date.now() + 900 })).status, 429);
  assert.deepEqual(a.calls, [1]);
  assert.ok(Date.now() - t0 < 200, 'no wait that cannot help');
});

/** The shims the Action inlines, in its order, as rules/build.js reads them (above the end marker). */
function inlined(globals) {
  const build = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'rules', 'build.js'), 'utf8');
  const shims = /key: 'action'[^\n]*\n[^\n]*shims: (\[[^\]]*\])/.exec(build);
  assert.ok(shims, 'the Action\'s shims in rules/build.js');
  const files = JSON.parse(shims[1].replace(/'/g, '"'));
  assert.ok(files.includes('js-shim/retry.js'), 'the Action inlines retry.js');
  const ctx = vm.createContext({ ...globals });
  for (const f of files) vm.runInContext(fs.readFileSync(path.join(__dirname, '..', '..', '..', f), 'utf8').split('// @end-inline')[0], ctx);
  return ctx;
}

test('as inlined into the Action: the policy runs with only the runtime\'s globals', () => {
  const ctx = inlined({ setTimeout, clearTimeout });
  ctx.t = { attempt: 1, status: 429, retryAfter: new Date(NOW + 2000).toUTCString(), now: NOW, random: half };
  assert.equal(vm.runInContext('trickleRetryWait(t, { attempts: 2, base: 500, cap: 30000, only429: true })', ctx), 2000);
});

test('the chain\'s Management API calls: a 429 is tried again when its wait fits in the call\'s time, nothing else is', async () => {
  const seen = [];
  let script = [];
  const fetchStub = async (url, init) => {
    if (url.endsWith('/oauth/token')) return new Response(JSON.stringify({ access_token: 'mgmt-token', expires_in: 86400 }), { status: 200 });
    seen.push(`${init.method} ${new URL(url).pathname}`);
    const a = script.shift() || { status: 200 };
    return new Response(a.status === 200 ? '{"user_id":"auth0|1"}' : '{}', a);
  };
  const ctx = inlined({ fetch: fetchStub, AbortController, setTimeout, clearTimeout });
  ctx.cfg = { mgmt: { base: 'https://tenant.example.test', clientId: 'm2m', clientSecret: 'secret' } };
  const mgmt = vm.runInContext('trickleMgmt(cfg, null)', ctx);
  const call = async (answers, effect) => {
    script = answers.slice();
    seen.length = 0;
    const t0 = Date.now();
    const r = await mgmt('GET', '/api/v2/users/auth0%7C1', undefined, effect);
    return { status: r.status, calls: seen.length, ms: Date.now() - t0 };
  };
  let r = await call([{ status: 429, headers: { 'retry-after': '1' } }], { timeout_ms: 2500, retries: 1 });
  assert.deepEqual([r.status, r.calls], [200, 2]);
  assert.ok(r.ms >= 990, `waited ${r.ms} ms`);
  r = await call([{ status: 429, headers: { 'retry-after': '1' } }], { timeout_ms: 1050, retries: 1 });
  assert.deepEqual([r.status, r.calls], [429, 1], 'a wait that leaves the call under 100 ms is not made');
  r = await call([{ status: 429, headers: { 'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000) + 60) } }], { timeout_ms: 2500, retries: 1 });
  assert.deepEqual([r.status, r.calls], [429, 1], 'x-ratelimit-reset read from the 429');
  r = await call([{ status: 429 }, { status: 429 }], { timeout_ms: 2500, retries: 1 });
  assert.deepEqual([r.status, r.calls], [429, 2], 'no header: a back-off, and no more tries than the core allows');
  r = await call([{ status: 429 }], { timeout_ms: 2500, retries: 0 });
  assert.deepEqual([r.status, r.calls], [429, 1]);
  r = await call([{ status: 503, headers: { 'retry-after': '1' } }], { timeout_ms: 2500, retries: 1 });
  assert.deepEqual([r.status, r.calls], [503, 1], 'only a 429 (the core\'s word)');
  r = await call([{ status: 404 }], { timeout_ms: 2500, retries: 1 });
  assert.deepEqual([r.status, r.calls], [404, 1]);
});
