// The merge service inside the simulator: the whole flow in a real browser, the attacks that must
// fail, abandon and resume, skip then merge later, MySQL state, Dutch, and the security headers.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const { startSim } = require('../../sim');
const { browser, walkMerge, waitForMail, verifiedOf, mergeablePeople, mixedPeople } = require('../../sim/demo');

const form = (url, fields) => fetch(url, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });
// A person whose first account's password leads to the merge service: that account and one in
// another product were verified by their products (a password matching only an unverified account
// is refused while others hold the address; the merge asks only for verified accounts).
const multiOf = (sim, skip = 0) => mergeablePeople(sim)[skip];
const userOf = (sim, email) => [...sim.tenant.state.users.values()].find((u) => u.email === email.toLowerCase());
const linked = (sim, a) => sim.byName[a.product].db.prepare('SELECT auth0_user_id FROM accounts WHERE id = ?').get(a.id).auth0_user_id;

async function signIn(sim, email, password) {
  const page = await (await fetch(`${sim.tenant.url}/authorize?client_id=trickle-demo&response_type=code&state=s&redirect_uri=${encodeURIComponent(sim.tenant.url + '/app/callback')}`)).text();
  const tx = page.match(/name="state" value="([^"]+)"/)[1];
  const res = await form(`${sim.tenant.url}/u/login`, { state: tx, email, password });
  return res.headers.get('location');
}

async function openMerge(sim, b, person) {
  const location = await signIn(sim, person.email, person.accounts[0].password);
  assert.match(location, /\/merge\?/, 'redirected to the merge service');
  const res = await b.get(location);
  const html = await res.text();
  return { location, html, csrf: b.field(html, 'csrf') };
}

test('the whole merge in a real browser: mail link, new password, sign-in, back at the app, every verified account told, no unverified one', { skip: !fs.existsSync('/usr/bin/chromium') && 'no Chromium' }, async () => {
  const { chromium } = require('playwright-core');
  const sim = await startSim({ people: 40 });
  const chrome = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  try {
    // A person whose products did not all verify the address: signs in with a verified account's
    // password; the mailbox proves the other verified accounts, never the unverified one.
    const { person, via } = mixedPeople(sim)[0];
    const unverified = person.accounts.filter((a) => !verifiedOf(sim, a));
    assert.ok(unverified.length > 0 && unverified.every((a) => a.product !== via.product), 'the person holds an unverified account in another product');
    const page = await chrome.newPage();
    await page.goto(sim.urls.login);
    await page.getByLabel('Email').fill(person.email);
    await page.getByLabel('Password').fill(via.password);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('button', { name: 'Send me a link' }).waitFor();
    assert.match(await page.content(), /•••/, 'the address is masked');
    const since = sim.mail.messages.length;
    await page.getByRole('button', { name: 'Send me a link' }).click();
    await page.getByText('Check your inbox').waitFor();
    const mail = await waitForMail(sim, person.email, since);
    const link = mail.text.match(/https?:\/\/\S+\/merge\/verify\?token=[A-Za-z0-9_-]+/)[0];
    await page.goto(link);
    await page.getByLabel('New password', { exact: true }).fill('short');
    await page.getByLabel('Repeat the new password').fill('short');
    await page.getByRole('button', { name: 'Set password' }).click();
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').innerText(), /at least 10/);
    await page.getByLabel('New password', { exact: true }).fill('brave new password 7');
    await page.getByLabel('Repeat the new password').fill('brave new password 7');
    await page.getByRole('button', { name: 'Set password' }).click();
    await page.getByLabel('Password').fill('brave new password 7');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/app\/callback\?/);
    assert.match(new URL(page.url()).searchParams.get('code') || '', /^[0-9a-f]{32}$/);
    const user = userOf(sim, person.email);
    assert.equal(user.app_metadata.migrated, true);
    const refs = user.app_metadata.trickle.accounts;
    assert.equal(refs.length, person.accounts.length);
    for (const a of person.accounts) {
      const ref = refs.find((x) => x.product === a.product && x.id === a.id);
      if (verifiedOf(sim, a)) {
        assert.ok(ref.proof, `${a.product} is proven`);
        assert.equal(linked(sim, a), user.user_id, `${a.product} was told`);
      } else {
        // The mailbox proves nothing about an account whose product never verified the address.
        assert.ok(!ref.proof, `${a.product} (unverified) stays unproven`);
        assert.equal(linked(sim, a), null, `${a.product} (unverified) was not told`);
      }
    }
  } finally {
    await chrome.close();
    await sim.close();
  }
});

test('attacks: without the inbox nothing merges; links are bound to one browser and single-use; forged results are refused; mail flooding is throttled', async () => {
  const sim = await startSim({ people: 40 });
  try {
    const victim = multiOf(sim);
    // The attacker knows the password of one product's account but cannot read the mailbox.
    const attacker = browser();
    const a = await openMerge(sim, attacker, victim);
    assert.ok(a.csrf);
    const skipAhead = await attacker.post(`${sim.merge.url}/merge/password`, { csrf: a.csrf, password: 'attacker-chosen-pw', repeat: 'attacker-chosen-pw' });
    assert.match(await skipAhead.text(), /Send me a link/, 'no password step without the mailbox proof');
    const signinAhead = await attacker.post(`${sim.merge.url}/merge/signin`, { csrf: a.csrf, password: 'attacker-chosen-pw' });
    assert.doesNotMatch(await signinAhead.text(), /session_token/, 'no signed result without the proof');
    // A result the attacker signs with a guessed secret is refused by the tenant.
    const crypto = require('crypto');
    const b64 = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
    const claims = { iss: 'trickle-merge', aud: 'trickle', sub: userOf(sim, victim.email).user_id, state: new URL(a.location).searchParams.get('state'), jti: 'x'.repeat(32), outcome: 'merged', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 60 };
    const input = b64({ alg: 'HS256', typ: 'JWT' }) + '.' + b64(claims);
    const forged = input + '.' + crypto.createHmac('sha256', 'guessed-secret-guessed-secret-guessed').update(input).digest('base64url');
    const back = await form(`${sim.tenant.url}/continue?state=${encodeURIComponent(claims.state)}`, { session_token: forged });
    assert.match(back.headers.get('location'), /error=access_denied/);
    const user = userOf(sim, victim.email);
    assert.ok(!user.app_metadata.migrated);
    assert.ok(user.app_metadata.trickle.accounts.some((x) => !x.proof), 'the other accounts stay unproven');
    for (const acc of victim.accounts.filter((x) => x.product !== victim.accounts[0].product)) assert.equal(linked(sim, acc), null, 'no product learns the id');

    // The real owner asks for a link; opened in another browser it is refused, then used once.
    const owner = browser();
    const o = await openMerge(sim, owner, victim);
    const since = sim.mail.messages.length;
    await owner.post(`${sim.merge.url}/merge/send`, { csrf: o.csrf });
    const mail = await waitForMail(sim, victim.email, since);
    const link = mail.text.match(/https?:\/\/\S+\/merge\/verify\?token=[A-Za-z0-9_-]+/)[0];
    const elsewhere = await browser().get(link);
    assert.equal(elsewhere.status, 403);
    const first = await owner.get(link);
    assert.match(await first.text(), /new-password/);
    const twice = await owner.get(link);
    assert.equal(twice.status, 410);
    assert.match(await twice.text(), /already used or has expired/);

    // Without the form's CSRF token nothing is sent.
    assert.equal((await owner.post(`${sim.merge.url}/merge/send`, {})).status, 403);
    // Flooding: three mails per person per window, then 429.
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await owner.post(`${sim.merge.url}/merge/send`, { csrf: o.csrf })).status);
    assert.deepEqual(statuses, [200, 200, 429]);
    // A tampered session token never opens the merge page.
    const tampered = o.location.replace(/session_token=([^&]+)/, (m, tok) => `session_token=${tok.slice(0, -2)}xx`);
    assert.equal((await browser().get(tampered)).status, 400);
  } finally {
    await sim.close();
  }
});

test('abandon and resume: an old link still works after a new login in the same browser; a proof does not outlive its login', async () => {
  const sim = await startSim({ people: 40 });
  try {
    const person = multiOf(sim);
    const b = browser();
    const first = await openMerge(sim, b, person);
    const since = sim.mail.messages.length;
    await b.post(`${sim.merge.url}/merge/send`, { csrf: first.csrf });
    const link = (await waitForMail(sim, person.email, since)).text.match(/https?:\/\/\S+\/merge\/verify\?token=[A-Za-z0-9_-]+/)[0];
    // The tab is closed; the person signs in again later, in the same browser.
    const second = await openMerge(sim, b, person);
    assert.match(second.html, /Send me a link/);
    const opened = await b.get(link);
    assert.match(await opened.text(), /new-password/, 'the old link still works while valid');
    // Closed again before choosing a password: the proof belonged to that login, so the next
    // login (even in the same browser) asks for the mailbox again.
    const third = await openMerge(sim, b, person);
    assert.match(third.html, /Send me a link/, 'a proof is not carried over to another login');
  } finally {
    await sim.close();
  }
});

test('skip, then merge at a later login; Dutch for a Dutch browser; security headers', async () => {
  const sim = await startSim({ people: 40 });
  try {
    const person = multiOf(sim, 1);
    const b = browser();
    const first = await openMerge(sim, b, person);
    const skipped = await b.post(`${sim.merge.url}/merge/skip`, { csrf: first.csrf });
    const html = await skipped.text();
    const action = html.match(/action="([^"]+\/continue\?state=[^"]+)"/)[1].replace(/&amp;/g, '&');
    const back = await form(action, { session_token: b.field(html, 'session_token') });
    assert.match(back.headers.get('location'), /code=/, 'skipping lets the person in');
    assert.ok(!userOf(sim, person.email).app_metadata.migrated);
    // Later: asked again, and this time merges.
    const again = await signIn(sim, person.email, person.accounts[0].password);
    const walked = await walkMerge(sim, again, person.email, 'later is fine too 42');
    assert.match(walked.location || walked.error, /code=/);
    assert.equal(userOf(sim, person.email).app_metadata.migrated, true);

    const other = multiOf(sim, 2);
    const location = await signIn(sim, other.email, other.accounts[0].password);
    const nl = await fetch(location, { headers: { 'accept-language': 'nl-NL,nl;q=0.9,en;q=0.5' } });
    const text = await nl.text();
    assert.match(text, /Stuur me een link/);
    assert.match(text, /lang="nl"/);
    for (const h of ['content-security-policy', 'x-frame-options', 'x-content-type-options', 'referrer-policy']) assert.ok(nl.headers.get(h), h);
    assert.match(nl.headers.get('set-cookie') || '', /HttpOnly; SameSite=Lax/);
  } finally {
    await sim.close();
  }
});

test('merge state in MariaDB: the same flow with mysql://', async () => {
  // A database of its own: mail limits recorded by earlier runs must not carry over.
  const { openDb } = require('../../cli/db');
  const base = process.env.TRICKLE_TEST_MYSQL || 'mysql://root@127.0.0.1:3306';
  const name = `trickle_merge_${process.pid}_${Math.floor(Math.random() * 1e9)}`;
  const admin = await openDb(`${base}/test`);
  await admin.run(`CREATE DATABASE ${name}`);
  await admin.close();
  const sim = await startSim({ people: 40, mergeStore: `${base}/${name}` });
  try {
    const person = multiOf(sim, 3);
    const location = await signIn(sim, person.email, person.accounts[0].password);
    const walked = await walkMerge(sim, location, person.email, 'stored in mariadb 99');
    assert.match(walked.location || walked.error, /code=/);
    assert.equal(userOf(sim, person.email).app_metadata.migrated, true);
  } finally {
    await sim.close();
    const a = await openDb(`${base}/test`);
    await a.run(`DROP DATABASE ${name}`);
    await a.close();
  }
});
