// The simulated tenant's addresses and password reset, driven over HTTP as a user (and an
// operator's tools) would: one canonical address for the look-up, the ticket and the mail; the
// same immediate answer whatever the address; one link at a time; limits; no SMTP text shown;
// and one user per canonical address on every create path.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const bcryptjs = require('bcryptjs');
const { startSim } = require('../../sim');

const form = (url, fields) => fetch(url, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });
const json = (url, method, body, token) => fetch(url, {
  method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: body === undefined ? undefined : JSON.stringify(body)
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const LINK = /https?:\/\/\S+\/lo\/reset\/confirm\?ticket=[0-9a-f]+/;
const RESET_OUTCOMES = new Set(['reset_mail', 'reset_not_sent', 'reset_mail_failed', 'reset_limited']);

async function m2mToken(base) {
  const r = await form(`${base}/oauth/token`, { grant_type: 'client_credentials', client_id: 'trickle-m2m', client_secret: 'm2m-secret', audience: `${base}/api/v2/` });
  assert.equal(r.status, 200);
  return (await r.json()).access_token;
}

async function signIn(base, email, password) {
  const page = await (await fetch(`${base}/authorize?client_id=trickle-demo&response_type=code&state=s&redirect_uri=${encodeURIComponent(base + '/app/callback')}`)).text();
  const tx = page.match(/name="state" value="([^"]+)"/)[1];
  return form(`${base}/u/login`, { state: tx, email, password });
}

/** Waits until `cond()` is truthy (returns it) or `ms` pass (returns the last value). */
async function waitFor(cond, ms = 3000) {
  const end = Date.now() + ms;
  let v = cond();
  while (!v && Date.now() < end) {
    await sleep(50);
    v = cond();
  }
  return v;
}

/** Waits until the tenant has recorded `n` reset outcomes since event index `mark` (or 3 s). */
async function settled(sim, mark, n) {
  await waitFor(() => sim.tenant.state.events.slice(mark).filter((e) => RESET_OUTCOMES.has(e.type)).length >= n, 4000);
  await sleep(100);
}

const usersAt = (sim, email) => [...sim.tenant.state.users.values()].filter((u) => u.email === email);
const mailsSince = (sim, before) => sim.mail.messages.slice(before);
const resetPage = (sim, email) => form(`${sim.tenant.url}/lo/reset`, { email });

test('a second user whose address canonicalises to an existing user\'s is refused on every create path', async () => {
  const sim = await startSim({ people: 20 }); // the default import rate too
  try {
    const base = sim.tenant.url;
    const token = await m2mToken(base);
    const singles = sim.people.filter((p) => p.accounts.length === 1);
    const victim = singles[0];
    assert.equal((await signIn(base, victim.email, victim.accounts[0].password)).status, 302);
    const variant = `${victim.email.toUpperCase()}.`; // upper case and a trailing dot: the same address
    const found = await (await json(`${base}/api/v2/users-by-email?email=${encodeURIComponent(variant)}`, 'GET', undefined, token)).json();
    assert.equal(found.length, 1, 'the search finds the victim by another spelling');

    // Management API create.
    const dup = await json(`${base}/api/v2/users`, 'POST', { email: variant, password: 'attacker-password', connection: 'trickle' }, token);
    assert.equal(dup.status, 409);
    assert.equal((await dup.json()).message, 'The user already exists.');
    const fresh = await json(`${base}/api/v2/users`, 'POST', { email: ' Fresh.Person@Example.com ', password: 'fresh-password', connection: 'trickle' }, token);
    assert.equal(fresh.status, 201);
    const freshUser = await fresh.json();
    assert.equal(freshUser.email, 'fresh.person@example.com', 'stored canonical');

    // Management API email update onto the victim's address.
    const patch = await json(`${base}/api/v2/users/${encodeURIComponent(freshUser.user_id)}`, 'PATCH', { email: variant, app_metadata: { touched: true } }, token);
    assert.equal(patch.status, 400);
    const still = await (await json(`${base}/api/v2/users/${encodeURIComponent(freshUser.user_id)}`, 'GET', undefined, token)).json();
    assert.equal(still.email, 'fresh.person@example.com');
    assert.ok(!still.app_metadata.touched, 'a refused PATCH changes nothing');

    // Import job: another spelling of the victim, and of the second victim (imported below).
    const second = singles[1];
    const submit = async (users) => {
      const body = new FormData();
      body.append('users', new Blob([JSON.stringify(users)], { type: 'application/json' }), 'users.json');
      body.append('connection_id', 'con_trickle');
      body.append('send_completion_email', 'false');
      const job = await (await fetch(`${base}/api/v2/jobs/users-imports`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body })).json();
      return waitFor(() => { const j = sim.tenant.jobs.jobs.get(job.id); return j && j.status === 'completed' && j; });
    };
    const j1 = await submit([
      { email: variant, user_id: 'imported-dup' },
      { email: second.email, user_id: 'imported-second', password_hash: bcryptjs.hashSync('not-the-legacy-password', 10) },
      { email: `${second.email.toUpperCase()}.`, user_id: 'imported-second-again' }
    ]);
    assert.deepEqual(j1.summary, { failed: 2, updated: 0, inserted: 1, total: 3 });
    assert.deepEqual(j1.errors.map((e) => e.errors[0].code), ['DUPLICATED_USER', 'DUPLICATED_USER']);
    assert.equal(usersAt(sim, victim.email).length, 1);

    // Login-script import: the second victim's legacy password, typed with another spelling.
    const login = await signIn(base, `${second.email}.`, second.accounts[0].password);
    assert.ok([401, 409].includes(login.status), `no sign-in as a new user (HTTP ${login.status})`);
    assert.equal(usersAt(sim, second.email).length, 1, 'still one user at the address');
    assert.equal(usersAt(sim, second.email)[0].user_id, 'auth0|imported-second');
    for (const u of sim.tenant.state.users.values()) assert.ok(!u.email.endsWith('.'), `stored canonical: ${u.user_id}`);
  } finally {
    await sim.close();
  }
});
