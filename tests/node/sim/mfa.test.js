// Multi-factor authentication in the simulated tenant: a person who brought a TOTP factor (from
// the login script's profile at a lazy migration, or from a bulk import) is asked for the code of
// their authenticator app after the password (and after /continue of a redirect) and before any
// code is issued. Codes come from otplib, an implementation independent of sim/totp.js.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const { authenticator } = require('otplib');
const { startSim } = require('../../../sim');
const totp = require('../../../sim/totp');
const { walkMerge, mergeablePeople } = require('../../../sim/demo');
const { form, m2mToken, signIn, answerMfa, totpCode, isMfaPage, totpSecretsOf } = require('../support/sim-http');

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const at = (ms) => authenticator.clone({ epoch: ms });
/** The secret a legacy product stored for an account: what the person's authenticator app holds. */
const productSecret = (sim, a) => (sim.byName[a.product].db.prepare('SELECT totp_secret FROM accounts WHERE id = ?').get(a.id) || {}).totp_secret;
const userOf = (sim, email) => [...sim.tenant.state.users.values()].find((u) => u.email === email.toLowerCase());
const codeOf = (res) => { const l = res.headers.get('location'); return l && new URL(l).searchParams.get('code'); };
const alertOf = (html) => (html.match(/role="alert">([^<]*)/) || [])[1];
/** A wrong code: six digits that are none of the codes the tenant accepts now (±1 step). */
function wrongCode(secret) {
  const near = [-1, 0, 1].map((d) => at(Date.now() + d * 30000).generate(secret));
  for (let n = 0; ; n++) { const c = String(n).padStart(6, '0'); if (!near.includes(c)) return c; }
}

test('sim/totp.js agrees with RFC 4226 and with otplib; ±1 step is accepted, ±2 is not', () => {
  const rfc = Buffer.from('12345678901234567890');
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((c) => totp.hotp(rfc, c)),
    ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489']);
  const secret = authenticator.generateSecret(); // base32, as otplib makes it
  const now = Date.now();
  for (const ms of [0, 59000, 1111111109000, 1234567890000, now]) assert.equal(totp.generate(secret, ms), at(ms).generate(secret), `at ${ms}`);
  const step = totp.stepOf(now);
  assert.equal(totp.verify(secret, at(now).generate(secret), { ms: now }), step);
  assert.equal(totp.verify(secret, at(now - 30000).generate(secret), { ms: now }), step - 1);
  assert.equal(totp.verify(secret, at(now + 30000).generate(secret), { ms: now }), step + 1);
  for (const d of [-2, 2]) {
    const c = at(now + d * 30000).generate(secret);
    if (![-1, 0, 1].some((x) => at(now + x * 30000).generate(secret) === c)) assert.equal(totp.verify(secret, c, { ms: now }), null, `${d} steps away`);
  }
  for (const bad of ['', '12345', '1234567', 'abcdef', null]) assert.equal(totp.verify(secret, bad), null);
  assert.equal(totp.verify('not base32!', '123456'), null);
  assert.deepEqual(totp.base32Decode('JBSWY3DPEHPK3PXP'), Buffer.from('48656c6c6f21deadbeef', 'hex'));
  assert.deepEqual(totp.base32Decode('jbsw y3dp ehpk 3pxp'), Buffer.from('48656c6c6f21deadbeef', 'hex'), 'case and spaces as apps show them');
});

test('a lazily migrated person keeps their authenticator app: challenged after the password, a wrong code refused, the right one signs in, a code works once', async () => {
  const sim = await startSim({ people: 30 });
  try {
    const base = sim.tenant.url;
    const person = sim.people.find((p) => p.accounts.length === 1 && productSecret(sim, p.accounts[0]));
    assert.ok(person, 'the seed gives someone a TOTP secret');
    const secret = productSecret(sim, person.accounts[0]);
    const first = await signIn(base, person.email, person.accounts[0].password);
    assert.equal(first.status, 200, 'no code yet');
    assert.equal(first.headers.get('location'), null);
    const page = await first.text();
    assert.ok(isMfaPage(page));
    assert.match(page, /<label for="code">Enter the code from your authenticator app<\/label><input id="code" name="code"/);
    // The login script's profile carried the factor: the tenant holds the product's secret.
    assert.deepEqual(totpSecretsOf(sim, person.email), [secret]);
    assert.equal(sim.tenant.state.counters.mfa_challenges, 1);

    const wrong = await answerMfa(base, page, { code: wrongCode(secret) });
    assert.equal(wrong.status, 401);
    const again = await wrong.text();
    assert.match(alertOf(again), /not valid\. 4 attempts left/);
    assert.equal(codeOf(wrong), null);
    const used = at(Date.now()).generate(secret);
    const right = await answerMfa(base, again, { code: used });
    assert.equal(right.status, 302);
    const code = codeOf(right);
    assert.ok(code, right.headers.get('location'));
    const tokens = await (await form(`${base}/oauth/token`, { grant_type: 'authorization_code', code, redirect_uri: `${base}/app/callback`, client_id: 'trickle-demo', client_secret: 'demo-app-secret' })).json();
    assert.ok(tokens.id_token);
    assert.equal(sim.tenant.state.counters.mfa_failed, 1);
    // The same code in the next login is refused; the app's next code is accepted.
    const second = await signIn(base, person.email, person.accounts[0].password);
    const secondPage = await second.text();
    const replay = await answerMfa(base, secondPage, { code: used });
    assert.equal(replay.status, 401, 'a code works once');
    const next = await answerMfa(base, await replay.text(), { code: at(Date.now() + 30000).generate(secret) });
    assert.ok(codeOf(next), 'the next step of the app is accepted');
    // A person without a factor is not asked.
    const plain = sim.people.find((p) => p.accounts.length === 1 && !productSecret(sim, p.accounts[0]));
    assert.ok(codeOf(await signIn(base, plain.email, plain.accounts[0].password)));
  } finally {
    await sim.close();
  }
});

test('a bulk-imported person with a TOTP factor is challenged too; the challenge cannot be skipped or answered on another login', async () => {
  const sim = await startSim({ people: 5, importRate: 1000 });
  try {
    const base = sim.tenant.url;
    const token = await m2mToken(base);
    const secret = authenticator.generateSecret();
    const users = [{
      email: 'imported.mfa@example.com', user_id: 'imported-mfa', email_verified: true,
      custom_password_hash: { algorithm: 'md5', hash: { value: '5f4dcc3b5aa765d61d8327deb882cf99', encoding: 'hex' } }, mfa_factors: [{ totp: { secret } }]
    }];
    const body = new FormData();
    body.append('users', new Blob([JSON.stringify(users)], { type: 'application/json' }), 'users.json');
    body.append('connection_id', 'con_trickle');
    const job = await (await fetch(`${base}/api/v2/jobs/users-imports`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body })).json();
    for (let i = 0; i < 50 && !userOf(sim, 'imported.mfa@example.com'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(userOf(sim, 'imported.mfa@example.com'), `imported by ${job.id}`);

    const a = await signIn(base, 'imported.mfa@example.com', 'password');
    assert.equal(a.status, 200);
    const pageA = await a.text();
    assert.ok(isMfaPage(pageA));
    const b = await signIn(base, 'imported.mfa@example.com', 'password');
    const pageB = await b.text();
    // No code is reachable without the challenge: the transaction state alone gets nothing.
    const stateA = pageA.match(/name="state" value="([^"]+)"/)[1];
    assert.equal((await form(`${base}/continue?state=${stateA}`, {})).status, 400);
    assert.equal((await form(`${base}/u/mfa-otp-challenge`, { state: 'no-such-login', code: '123456' })).status, 400);
    assert.ok(codeOf(await answerMfa(base, pageB, { secret })), 'B signs in');
    assert.ok(codeOf(await answerMfa(base, pageA, { secret })), 'A signs in with a later code');
    // A wrong password never reaches the challenge.
    const wrong = await signIn(base, 'imported.mfa@example.com', 'not-the-password');
    assert.equal(wrong.status, 401);
    assert.ok(!isMfaPage(await wrong.text()));
  } finally {
    await sim.close();
  }
});

test('wrong codes are limited per login and per user; once the user is locked, even the right code is refused', async () => {
  const sim = await startSim({ people: 30, mfa: { perLogin: 3, perUser: 5, refillMs: 3600000 } });
  try {
    const base = sim.tenant.url;
    const person = sim.people.find((p) => p.accounts.length === 1 && productSecret(sim, p.accounts[0]));
    const secret = productSecret(sim, person.accounts[0]);
    let html = await (await signIn(base, person.email, person.accounts[0].password)).text();
    const state1 = html.match(/name="state" value="([^"]+)"/)[1];
    for (let i = 0; i < 2; i++) {
      const r = await answerMfa(base, html, { code: wrongCode(secret) });
      assert.equal(r.status, 401);
      html = await r.text();
    }
    assert.match(alertOf(html), /1 attempt left/);
    const third = await answerMfa(base, html, { code: wrongCode(secret) });
    assert.equal(third.status, 302);
    const back = new URL(third.headers.get('location'));
    assert.equal(back.searchParams.get('error'), 'access_denied');
    assert.equal(back.searchParams.get('code'), null);
    assert.equal((await form(`${base}/u/mfa-otp-challenge`, { state: state1, code: at(Date.now()).generate(secret) })).status, 400, 'the ended login takes no code');
    // A new login: two more failures empty the user's allowance of 5; then the right code is refused.
    html = await (await signIn(base, person.email, person.accounts[0].password)).text();
    for (let i = 0; i < 2; i++) html = await (await answerMfa(base, html, { code: wrongCode(secret) })).text();
    const locked = await answerMfa(base, html, { code: at(Date.now()).generate(secret) });
    assert.equal(codeOf(locked), null);
    assert.match(new URL(locked.headers.get('location')).searchParams.get('error_description'), /Too many failed codes/);
    html = await (await signIn(base, person.email, person.accounts[0].password)).text();
    assert.equal(codeOf(await answerMfa(base, html, { code: at(Date.now()).generate(secret) })), null, 'still locked in a fresh login');
  } finally {
    await sim.close();
  }
});

test('the password grant answers 403 mfa_required with an mfa_token; the mfa-otp grant takes a code once', async () => {
  const sim = await startSim({ people: 30 });
  try {
    const base = sim.tenant.url;
    const person = sim.people.find((p) => p.accounts.length === 1 && productSecret(sim, p.accounts[0]));
    const secret = productSecret(sim, person.accounts[0]);
    const client = { client_id: 'trickle-demo', client_secret: 'demo-app-secret' };
    const r = await form(`${base}/oauth/token`, { grant_type: 'password', username: person.email, password: person.accounts[0].password, scope: 'openid', ...client });
    assert.equal(r.status, 403);
    const body = await r.json();
    assert.equal(body.error, 'mfa_required');
    assert.equal(body.error_description, 'Multifactor authentication required');
    assert.match(body.mfa_token, /^[0-9a-f]{48}$/);
    assert.ok(!('id_token' in body) && !('access_token' in body));
    const wrongPw = await form(`${base}/oauth/token`, { grant_type: 'password', username: person.email, password: 'nope', ...client });
    assert.equal((await wrongPw.json()).error, 'invalid_grant', 'a wrong password is not mfa_required');

    const otp = (fields) => form(`${base}/oauth/token`, { grant_type: 'http://auth0.com/oauth/grant-type/mfa-otp', ...client, ...fields });
    const bad = await otp({ mfa_token: body.mfa_token, otp: wrongCode(secret) });
    assert.equal(bad.status, 403);
    assert.deepEqual(await bad.json(), { error: 'invalid_grant', error_description: 'Invalid otp_code.' });
    assert.equal((await otp({ mfa_token: 'made-up', otp: '123456' })).status, 403);
    assert.equal((await form(`${base}/oauth/token`, { grant_type: 'http://auth0.com/oauth/grant-type/mfa-otp', client_id: 'trickle-m2m', client_secret: 'm2m-secret', mfa_token: body.mfa_token, otp: '000000' })).status, 403, 'another client cannot use the token');
    const ok = await otp({ mfa_token: body.mfa_token, otp: await totpCode(secret) });
    assert.equal(ok.status, 200);
    const tokens = await ok.json();
    assert.equal(JSON.parse(Buffer.from(tokens.id_token.split('.')[1], 'base64url').toString()).email, person.email.toLowerCase());
    assert.equal((await otp({ mfa_token: body.mfa_token, otp: await totpCode(secret) })).status, 403, 'an mfa_token works once');
  } finally {
    await sim.close();
  }
});

test('after a merge redirect, /continue leads to the challenge, and only the code leads back to the app', async () => {
  const sim = await startSim({ people: 80 });
  try {
    const base = sim.tenant.url;
    const person = mergeablePeople(sim).find((p) => productSecret(sim, p.accounts[0]));
    assert.ok(person, 'a person who reaches the merge service with an authenticator app');
    const first = await signIn(base, person.email, person.accounts[0].password);
    assert.equal(first.status, 302);
    const mergeUrl = first.headers.get('location');
    assert.match(mergeUrl, /\/merge\?/, 'the redirect comes before the second factor, as on the platform');
    const walked = await walkMerge(sim, mergeUrl, person.email, 'one-new-password-for-all');
    assert.equal(walked.error, undefined);
    assert.equal(walked.location, null, 'no redirect back to the app yet');
    const continued = walked.back;
    assert.ok(continued, 'walkMerge returns the /continue response');
    const html = await continued.text();
    assert.ok(isMfaPage(html), 'the challenge page after /continue');
    const done = await answerMfa(base, html, { secret: productSecret(sim, person.accounts[0]) });
    assert.ok(codeOf(done), done.headers.get('location'));
    assert.equal(userOf(sim, person.email).app_metadata.migrated, true);
  } finally {
    await sim.close();
  }
});

test('in Chromium: the challenge page is labelled, a wrong code shows an alert, the right one reaches the app', { skip: !fs.existsSync(CHROMIUM) && 'no Chromium' }, async () => {
  const { chromium } = require('playwright-core');
  const sim = await startSim({ people: 30 });
  const chrome = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  try {
    const person = sim.people.find((p) => p.accounts.length === 1 && productSecret(sim, p.accounts[0]));
    const secret = productSecret(sim, person.accounts[0]);
    const page = await chrome.newPage();
    await page.goto(sim.urls.login);
    await page.getByLabel('Email').fill(person.email);
    await page.getByLabel('Password').fill(person.accounts[0].password);
    await page.getByRole('button', { name: 'Continue' }).click();
    const input = page.getByLabel('Enter the code from your authenticator app');
    await input.waitFor();
    assert.equal(await input.getAttribute('autocomplete'), 'one-time-code');
    await input.fill(wrongCode(secret));
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').innerText(), /not valid/);
    await page.getByLabel('Enter the code from your authenticator app').fill(await totpCode(secret));
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByText('Back at the app').waitFor();
    assert.match(await page.locator('#code').innerText(), /^[0-9a-f]{32}$/);
  } finally {
    await chrome.close();
    await sim.close();
  }
});
