// The simulated tenant's addresses and password reset, driven over HTTP as a user (and an
// operator's tools) would: one canonical address for the look-up, the ticket and the mail; the
// same immediate answer whatever the address; one link at a time; limits; no SMTP text shown;
// and one user per canonical address on every create path.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const bcryptjs = require('bcryptjs');
const { startSim } = require('../../../sim');

const { form, m2mToken, signIn } = require('../support/sim-http');
const json = (url, method, body, token) => fetch(url, {
  method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: body === undefined ? undefined : JSON.stringify(body)
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const LINK = /https?:\/\/\S+\/lo\/reset\/confirm\?ticket=[0-9a-f]+/;
const RESET_OUTCOMES = new Set(['reset_mail', 'reset_not_sent', 'reset_mail_failed', 'reset_limited']);



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

test('a reset typed with a look-alike or another spelling of an address mails only the stored, canonical address', async () => {
  const sim = await startSim({ people: 40 });
  try {
    const base = sim.tenant.url;
    const ks = sim.people.filter((p) => p.email.includes('k') && p.accounts.length === 1);
    assert.ok(ks.length >= 2, 'the seed has people with a "k" in their address');
    const [migrated, pending] = ks;
    assert.equal((await signIn(base, migrated.email, migrated.accounts[0].password)).status, 302);
    assert.equal(usersAt(sim, pending.email).length, 0, 'the second victim has not migrated');

    for (const victim of [migrated, pending]) {
      // The Kelvin sign (U+212A) folds to "k" in JavaScript: another mailbox, the same stored user.
      const lookalike = victim.email.replace('k', '\u212A');
      const before = sim.mail.messages.length;
      const mark = sim.tenant.state.events.length;
      const r = await resetPage(sim, lookalike);
      assert.ok([200, 400].includes(r.status), `refused cleanly or accepted, got HTTP ${r.status}`);
      await settled(sim, mark, r.status === 200 ? 1 : 0);
      for (const m of mailsSince(sim, before)) {
        assert.deepEqual(m.to, [victim.email], 'a reset mail goes to the victim\'s own canonical address only');
      }
      assert.ok(!sim.mail.messages.some((m) => m.to.some((t) => t.includes('\u212A'))), 'nothing is mailed to the look-alike mailbox');
    }
    assert.equal(usersAt(sim, pending.email).length, 0, 'no user was created for the victim not yet migrated');

    // Another spelling of a not-yet-migrated person's address: the link goes to the canonical one.
    const other = sim.people.find((p) => p.accounts.length === 1 && p !== migrated && p !== pending);
    const before = sim.mail.messages.length;
    assert.equal((await resetPage(sim, `  ${other.email.toUpperCase()} `)).status, 200);
    const mail = await waitFor(() => mailsSince(sim, before)[0]);
    assert.ok(mail, 'the reset mail arrives');
    assert.deepEqual(mail.to, [other.email], 'mailed to the canonical address, not the typed string');
    const ticket = new URL(mail.text.match(LINK)[0]).searchParams.get('ticket');
    assert.equal((await form(`${base}/lo/reset/confirm`, { ticket, password: 'a-new-password-1' })).status, 200);
    assert.equal(usersAt(sim, other.email).length, 1, 'the reset created the person at the canonical address');
    assert.equal((await signIn(base, other.email, 'a-new-password-1')).status, 302);

    // An address that has no canonical form is refused, and nothing is mailed.
    const b2 = sim.mail.messages.length;
    const bad = await resetPage(sim, 'not an address');
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /Enter a valid email address/);
    await sleep(300);
    assert.equal(sim.mail.messages.length, b2);
  } finally {
    await sim.close();
  }
});

test('a reset request answers at once and the same whether the address is known, unknown, or its product is down', async () => {
  const sim = await startSim({ people: 40 });
  try {
    const base = sim.tenant.url;
    // A slow mail server: the answer must not wait for it.
    const send = sim.mail.send;
    sim.mail.send = async (m) => { await sleep(1000); return send(m); };
    const singles = sim.people.filter((p) => p.accounts.length === 1);
    const known = singles.find((p) => p.accounts[0].product === 'collect');
    const knownWhileDown = singles.find((p) => p !== known && p.accounts[0].product === 'collect');
    const pending = singles.find((p) => p.accounts[0].product === 'transfer');
    for (const p of [known, knownWhileDown]) assert.equal((await signIn(base, p.email, p.accounts[0].password)).status, 302);

    const answers = [];
    const ask = async (label, email) => {
      const t0 = Date.now();
      const r = await resetPage(sim, email);
      answers.push({ label, status: r.status, ms: Date.now() - t0, body: await r.text() });
    };
    const mark = sim.tenant.state.events.length;
    await ask('known', known.email);
    await ask('not yet migrated', pending.email);
    await ask('unknown', 'nobody.at.all@example.com');
    await settled(sim, mark, 3);
    const down = await form(`${base}/_sim/api/products/paste/mode`, { mode: 'down' });
    assert.equal(down.status, 200);
    await ask('known, a product down', knownWhileDown.email);
    await ask('unknown, a product down', 'nobody.else@example.com');
    for (const a of answers) {
      assert.equal(a.status, 200, `${a.label}: HTTP ${a.status}`);
      assert.equal(a.body, answers[0].body, `${a.label}: the same page`);
      assert.ok(a.ms < 500, `${a.label}: answered in ${a.ms} ms, not after the mail`);
    }
    // The Authentication API's endpoint answers the same way.
    const api = [];
    for (const email of [known.email, 'nobody.third@example.com']) {
      const t0 = Date.now();
      const r = await json(`${base}/dbconnections/change_password`, 'POST', { client_id: 'trickle-demo', email, connection: 'trickle' });
      api.push({ status: r.status, ms: Date.now() - t0, body: await r.text() });
    }
    for (const a of api) {
      assert.equal(a.status, 200);
      assert.equal(a.body, 'We\'ve just sent you an email to reset your password.');
      assert.ok(a.ms < 500, `answered in ${a.ms} ms`);
    }
    // The mails are still sent, afterwards.
    for (const p of [known, pending, knownWhileDown]) {
      assert.ok(await waitFor(() => sim.mail.messages.some((m) => m.to.includes(p.email)), 5000), 'the mail arrives later');
    }
  } finally {
    await sim.close();
  }
});

test('a newer reset link ends the older one; a used link cannot be used again', async () => {
  const sim = await startSim({ people: 20 });
  try {
    const base = sim.tenant.url;
    const p = sim.people.find((x) => x.accounts.length === 1);
    assert.equal((await signIn(base, p.email, p.accounts[0].password)).status, 302);
    const links = [];
    for (let i = 0; i < 2; i++) {
      const before = sim.mail.messages.length;
      assert.equal((await resetPage(sim, p.email)).status, 200);
      const mail = await waitFor(() => mailsSince(sim, before).find((m) => m.to.includes(p.email)));
      assert.ok(mail, 'the mail arrives');
      links.push(new URL(mail.text.match(LINK)[0]).searchParams.get('ticket'));
    }
    const older = await form(`${base}/lo/reset/confirm`, { ticket: links[0], password: 'from-the-older-link' });
    assert.equal(older.status, 400, 'the older link no longer works');
    assert.equal((await signIn(base, p.email, 'from-the-older-link')).status, 401);
    assert.equal((await form(`${base}/lo/reset/confirm`, { ticket: links[1], password: 'from-the-newer-link' })).status, 200);
    assert.equal((await form(`${base}/lo/reset/confirm`, { ticket: links[1], password: 'once-more-please' })).status, 400);
    assert.equal((await signIn(base, p.email, 'from-the-newer-link')).status, 302);
  } finally {
    await sim.close();
  }
});

test('reset requests beyond the limits per address and per IP get the same answer and send nothing', async () => {
  const sim = await startSim({ people: 40 });
  try {
    const p = sim.people[0];
    const before = sim.mail.messages.length;
    const mark = sim.tenant.state.events.length;
    const bodies = new Set();
    for (let i = 0; i < 5; i++) {
      const r = await resetPage(sim, p.email);
      assert.equal(r.status, 200);
      bodies.add(await r.text());
    }
    await settled(sim, mark, 5);
    assert.equal(mailsSince(sim, before).filter((m) => m.to.includes(p.email)).length, 3, 'three mails per address, then nothing');
    // Ten requests per IP in the window, counted whether or not they were served: five more
    // distinct addresses get mail, the last five do not.
    const others = sim.people.slice(1, 11);
    for (const o of others) {
      const r = await resetPage(sim, o.email);
      assert.equal(r.status, 200);
      bodies.add(await r.text());
    }
    await settled(sim, mark, 15);
    assert.equal(bodies.size, 1, 'one answer for sent and dropped requests alike');
    assert.equal(mailsSince(sim, before).length, 3 + 5, 'the first ten requests from one IP were served, the rest dropped');
    assert.deepEqual(mailsSince(sim, before).filter((m) => !m.to.includes(p.email)).map((m) => m.to[0]).sort(), others.slice(0, 5).map((o) => o.email).sort());
  } finally {
    await sim.close();
  }
});

test('a mail the server rejects is never reported to the requester, and no SMTP text or address is shown or logged', async () => {
  const sim = await startSim({ people: 20 });
  try {
    const base = sim.tenant.url;
    const p = sim.people.find((x) => x.accounts.length === 1);
    assert.equal((await signIn(base, p.email, p.accounts[0].password)).status, 302);
    const send = sim.mail.send;
    sim.mail.send = async () => {
      const e = new Error(`Can't send mail - all recipients were rejected: 550 5.1.1 <${p.email}>: smtp-secret-detail`);
      e.responseCode = 550;
      throw e;
    };
    const mark = sim.tenant.state.events.length;
    const r = await resetPage(sim, p.email);
    assert.equal(r.status, 200);
    const body = await r.text();
    assert.ok(!/5\.1\.1|smtp-secret-detail|rejected/.test(body), 'no SMTP text in the answer');
    // The Management API's ticket is returned to the caller, whatever the mail server says.
    const token = await m2mToken(base);
    const user = usersAt(sim, p.email)[0];
    const t = await json(`${base}/api/v2/tickets/password-change`, 'POST', { user_id: user.user_id }, token);
    const tBody = await t.text();
    assert.equal(t.status, 201, tBody);
    assert.match(JSON.parse(tBody).ticket, LINK);
    assert.ok(!/5\.1\.1|smtp-secret-detail|rejected/.test(tBody), 'no SMTP text in the API answer');
    sim.mail.send = send;

    // A real SMTP rejection by the mail catcher.
    assert.equal((await form(`${base}/_sim/api/mail/mode`, { mode: 'reject' })).status, 200);
    const r2 = await resetPage(sim, p.email);
    assert.equal(r2.status, 200);
    assert.equal(await r2.text(), body, 'the same page as ever');
    await settled(sim, mark, 2);
    const logged = JSON.stringify(sim.tenant.state.events.slice(mark));
    assert.match(logged, /reset_mail_failed/);
    assert.ok(!logged.includes(p.email) && !logged.includes('smtp-secret-detail') && !/ticket=/.test(logged), 'the log holds no address, SMTP text or link');
  } finally {
    await sim.close();
  }
});

test('the mailer delivers to exactly the stored address: "a,b@…" is one mailbox, never "b@…"', async () => {
  const sim = await startSim({ people: 10, importRate: 1000 });
  try {
    const base = sim.tenant.url;
    const token = await m2mToken(base);
    const odd = 'victim,attacker@example.com';
    const body = new FormData();
    body.append('users', new Blob([JSON.stringify([{ email: odd, user_id: 'comma-1', email_verified: true }])], { type: 'application/json' }), 'users.json');
    body.append('connection_id', 'con_trickle');
    body.append('send_completion_email', 'false');
    const job = await (await fetch(`${base}/api/v2/jobs/users-imports`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body })).json();
    const done = await waitFor(() => { const j = sim.tenant.jobs.jobs.get(job.id); return j && j.status === 'completed' && j; });
    assert.deepEqual(done.summary, { failed: 0, updated: 0, inserted: 1, total: 1 });
    const before = sim.mail.messages.length;
    assert.equal((await resetPage(sim, odd)).status, 200);
    const mail = await waitFor(() => mailsSince(sim, before)[0]);
    assert.ok(mail, 'the mail arrives');
    await sleep(200);
    const to = mailsSince(sim, before).flatMap((m) => m.to);
    assert.ok(!to.includes('attacker@example.com'), `not delivered to a part of the address: ${to}`);
    assert.deepEqual(to, [odd]);
    // The mailer itself refuses anything but one canonical address.
    await assert.rejects(sim.mail.send({ to: 'Victim@Example.com', subject: 's', text: 't' }));
    await assert.rejects(sim.mail.send({ to: 'a@x.com, b@x.com', subject: 's', text: 't' }));
  } finally {
    await sim.close();
  }
});

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
