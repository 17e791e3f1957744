// trickle's own chain on social logins, end to end in Chromium against the simulator as a user
// starts it (trickle's artefacts deployed, the local Google, Apple and Slack providers, the merge
// service and its mail): a Google-only legacy person keeps their account; a person with a
// password in one product and a Slack identity in another ends as one tenant user after proof,
// in both orders; and the attacks on it fail.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const { startSim } = require('../../../sim');
const { waitForMail } = require('../../../sim/demo');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const LINK = /https?:\/\/\S+\/merge\/verify\?token=[A-Za-z0-9_-]+/;
const skip = !fs.existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}`;
const BRAND = { 'google-oauth2': 'Google', apple: 'Apple', 'sign-in-with-slack': 'Slack' };

let sim;
let chrome;
test.before(async () => {
  if (skip) return;
  const { chromium } = require('playwright-core');
  sim = await startSim({ people: 40, socialPeople: 9 });
  chrome = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
});
test.after(async () => {
  if (chrome) await chrome.close();
  if (sim) await sim.close();
});

const users = () => [...sim.tenant.state.users.values()];
const userById = (id) => sim.tenant.state.users.get(id);
const usersWith = (email) => users().filter((u) => u.email === email.toLowerCase());
const told = (product, id) => sim.byName[product].db.prepare('SELECT auth0_user_id FROM accounts WHERE id = ?').get(id).auth0_user_id;
const claimsOf = async (page) => {
  const code = new URL(page.url()).searchParams.get('code');
  const r = await fetch(`${sim.tenant.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'trickle-demo', client_secret: 'demo-app-secret', code, redirect_uri: `${sim.tenant.url}/app/callback` }) });
  assert.equal(r.status, 200);
  return JSON.parse(Buffer.from((await r.json()).id_token.split('.')[1], 'base64url').toString());
};

/** Signs in with a provider from the hosted login page; resolves once the browser left the provider. */
async function social(page, provider, account) {
  await page.goto(sim.urls.login);
  await page.getByRole('link', { name: `Continue with ${BRAND[provider]}` }).click();
  await page.getByLabel(`${BRAND[provider]} account`).fill(account.login);
  await page.getByLabel('Password').fill(account.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => !u.href.startsWith(sim.idps[provider].issuer));
}

/** Signs in with the address and a legacy password on the hosted login page. */
async function password(page, email, secret) {
  await page.goto(sim.urls.login);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(secret);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/u/login') && !u.pathname.startsWith('/authorize'));
}

/** On the merge page: the mailed link proves the mailbox (a social user is then done). */
async function proveMailbox(page, email) {
  assert.match(page.url(), /\/merge\?session_token=/, 'sent to the merge service');
  const since = sim.mail.messages.length;
  await page.getByRole('button', { name: 'Send me a link' }).click();
  await page.getByText('Check your inbox').waitFor();
  const mail = await waitForMail(sim, email.toLowerCase(), since);
  assert.ok(mail, 'the link is mailed');
  await page.goto(mail.text.match(LINK)[0]);
}

test('Chromium: a Google-only legacy person signs in with Google and keeps their account: the product is told the person\'s tenant user', { skip }, async () => {
  const person = sim.socialPeople.find((p) => p.kind === 'social-only' && p.identities[0].provider === 'google-oauth2');
  const identity = person.identities[0];
  const page = await (await chrome.newContext()).newPage();
  await social(page, 'google-oauth2', identity);
  await page.waitForURL(/\/app\/callback\?/);
  const claims = await claimsOf(page);
  assert.equal(claims.sub, `google-oauth2|${identity.subject}`);
  const user = userById(claims.sub);
  const rec = user.app_metadata.trickle;
  assert.deepEqual(rec.accounts.map((a) => [a.product, a.id, a.proof, a.fanout]), [[identity.product, identity.id, 'identity', true]]);
  assert.equal(told(identity.product, identity.id), claims.sub);
  assert.equal(usersWith(person.email).length, 1);
});

const pair = (n) => sim.socialPeople.filter((p) => p.kind === 'password-and-social')[n];
const passwordOf = (p) => p.accounts.find((a) => a.password);
const slackOf = (p) => p.identities.find((i) => i.provider === 'sign-in-with-slack');

test('Chromium: password first, then Slack: one tenant user after the mailbox proof, the Slack identity linked into it', { skip }, async () => {
  const person = pair(0);
  const pw = passwordOf(person);
  const slack = slackOf(person);
  const page = await (await chrome.newContext()).newPage();
  // The password proves paste; collect (Slack-only) waits for a proof: the person skips for now.
  await password(page, person.email, pw.password);
  await page.getByRole('button', { name: 'Skip for now' }).first().click();
  await page.waitForURL(/\/app\/callback\?/);
  const first = (await claimsOf(page)).sub;
  assert.match(first, /^auth0\|/);
  assert.equal(told('paste', pw.id), first);
  assert.equal(told('collect', slack.id), null, 'an unproven account is told nothing');

  // Slack proves collect (the identity), and the address points at the user above, which is no
  // proof: the mailbox is asked, and once it is proven the Slack user joins the first one.
  await social(page, 'sign-in-with-slack', slack);
  await proveMailbox(page, person.email);
  await page.waitForURL(/\/app\/callback\?/);
  const claims = await claimsOf(page);
  assert.equal(claims.sub, first, 'the login continues as the existing user');
  const user = userById(first);
  assert.ok(user.identities.some((i) => i.provider === 'sign-in-with-slack' || i.connection === 'sign-in-with-slack'), JSON.stringify(user.identities));
  assert.equal(users().filter((u) => u.user_id.includes(slack.subject)).length, 0, 'the Slack user is no longer a user of its own');
  assert.equal(told('collect', slack.id), first);
  assert.equal(told('paste', pw.id), first);
  const proofs = Object.fromEntries(user.app_metadata.trickle.accounts.map((a) => [a.product, a.proof]));
  assert.deepEqual(proofs, { paste: 'password', collect: 'identity' });

  // And the next Slack sign-in is that user, with nothing left to do.
  const again = await (await chrome.newContext()).newPage();
  await social(again, 'sign-in-with-slack', slack);
  await again.waitForURL(/\/app\/callback\?/);
  assert.equal((await claimsOf(again)).sub, first);
});

test('Chromium: Slack first, then the password: one tenant user, the database identity linked into the Slack user', { skip }, async () => {
  const person = pair(1);
  const pw = passwordOf(person);
  const slack = slackOf(person);
  const page = await (await chrome.newContext()).newPage();
  await social(page, 'sign-in-with-slack', slack);
  await proveMailbox(page, person.email);
  await page.waitForURL(/\/app\/callback\?/);
  const primary = (await claimsOf(page)).sub;
  assert.match(primary, /sign-in-with-slack/);
  assert.equal(told('collect', slack.id), primary);
  assert.equal(told('paste', pw.id), primary, 'the mailbox proved the verified paste account');

  const later = await (await chrome.newContext()).newPage();
  await password(later, person.email, pw.password);
  await later.waitForURL(/\/app\/callback\?/);
  assert.equal((await claimsOf(later)).sub, primary, 'the password login continues as the Slack user');
  assert.equal(usersWith(person.email).length, 1, 'one tenant user for the person');
  const user = userById(primary);
  assert.ok(user.identities.some((i) => i.provider === 'auth0'), JSON.stringify(user.identities));
  assert.equal(told('paste', pw.id), primary);
});

test('Chromium attacks: an unverified Google address, a Slack workspace the attacker controls, an Apple relay address: each gets a user of its own, linked to nothing, and no product is told', { skip }, async () => {
  const victim = sim.attackers.victim;
  const before = Object.fromEntries(victim.accounts.map((a) => [`${a.product}/${a.id}`, told(a.product, a.id)]));
  const victimUsers = usersWith(victim.email).map((u) => u.user_id);
  for (const account of sim.attackers.accounts) {
    const page = await (await chrome.newContext()).newPage();
    await social(page, account.provider, account);
    if (/\/merge\?/.test(page.url())) {
      // The attacker cannot read the victim's mail: all they can do is skip.
      await page.getByRole('button', { name: 'Skip for now' }).first().click();
    }
    await page.waitForURL(/\/app\/callback\?/);
    const claims = await claimsOf(page);
    assert.ok(!victimUsers.includes(claims.sub), `${account.provider}: not signed in as the victim`);
    const user = userById(claims.sub);
    assert.equal((user.identities || []).length, 1, `${account.provider}: nothing linked into the attacker`);
    const proven = ((user.app_metadata.trickle || {}).accounts || []).filter((a) => a.proof);
    assert.deepEqual(proven, [], `${account.provider}: no account proven by the address`);
  }
  for (const a of victim.accounts) assert.equal(told(a.product, a.id), before[`${a.product}/${a.id}`], `${a.product}/${a.id} untouched`);
  for (const id of victimUsers) assert.equal((userById(id).identities || []).filter((i) => i.isSocial && !victim.identities.some((v) => v.subject === i.user_id)).length, 0, 'no attacker identity linked into the victim');
});

test('Chromium: replaying the signed merge result of a social login is refused and changes nothing', { skip }, async () => {
  const person = pair(2);
  const slack = slackOf(person);
  const page = await (await chrome.newContext()).newPage();
  let posted = null;
  page.on('request', (r) => { if (r.method() === 'POST' && new URL(r.url()).pathname === '/continue') posted = r.postData(); });
  await social(page, 'sign-in-with-slack', slack);
  await proveMailbox(page, person.email);
  await page.waitForURL(/\/app\/callback\?/);
  assert.ok(posted, 'the merge result was posted back to /continue');
  const sub = (await claimsOf(page)).sub;
  const after = JSON.stringify(userById(sub).app_metadata);
  // The same signed result posted again: refused, nothing changes.
  const replay = await fetch(`${sim.tenant.url}/continue`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: posted });
  assert.ok(replay.status >= 400 || !/\/app\/callback\?code=/.test(replay.headers.get('location') || ''), `replay answered ${replay.status} ${replay.headers.get('location')}`);
  assert.equal(JSON.stringify(userById(sub).app_metadata), after);
});

test('a Slack member that asserted the victim\'s address and then its own mailbox gets nothing: the candidates found by the victim\'s address are dropped, no merge mail, no link', { skip }, async () => {
  const { socialSignIn } = require('../../../sim/demo');
  const victim = sim.people.find((p) => p.accounts.length === 1 && !p.identities && !usersWith(p.email).length &&
    !sim.byName[p.accounts[0].product].db.prepare('SELECT totp_secret FROM accounts WHERE id = ?').get(p.accounts[0].id).totp_secret);
  const page = await (await chrome.newContext()).newPage();
  await password(page, victim.email, victim.accounts[0].password);
  await page.waitForURL(/\/app\/callback\?/);
  const victimId = (await claimsOf(page)).sub;
  const slackIdp = sim.idps['sign-in-with-slack'];
  const member = { sub: 'UMALLORY7', login: 'mallory7', password: 'mallory-pw-7', claims: { email: victim.email, email_verified: true, name: 'Mallory', 'https://slack.com/team_id': 'TEVIL' } };
  slackIdp.addAccount(member);
  const first = await socialSignIn(sim, 'sign-in-with-slack', member);
  assert.match(first.location || '', /\/merge\?/, 'the victim\'s account is a candidate: the mailbox is asked');
  // The member's address becomes the attacker's own mailbox.
  slackIdp.addAccount({ ...member, claims: { ...member.claims, email: 'mallory7@attacker.test' } });
  const since = sim.mail.messages.length;
  const second = await socialSignIn(sim, 'sign-in-with-slack', member);
  assert.match(second.location || '', /\/app\/callback\?.*code=/, 'nothing left to prove: no merge for the attacker\'s mailbox');
  const attacker = userById('sign-in-with-slack|UMALLORY7');
  assert.ok(attacker, 'the attacker has a user of their own');
  assert.deepEqual(attacker.app_metadata.trickle.accounts, [], 'the candidates found by the victim\'s address are gone');
  assert.ok(!JSON.stringify(attacker.app_metadata).includes(victimId), 'the victim\'s id was never written into the attacker\'s user');
  assert.equal(sim.mail.messages.length, since, 'no merge mail');
  assert.equal(told(victim.accounts[0].product, victim.accounts[0].id), victimId);
  assert.equal(userById(victimId).identities.length, 1, 'nothing linked into the victim');
});

test('a Slack member asserting a victim\'s address, on an attacker who has a tenant user of her own: the victim\'s account is not joined into her user, and the victim stays their own', { skip }, async () => {
  const { socialSignIn } = require('../../../sim/demo');
  const { signInThroughMfa } = require('../support/sim-http');
  const noTotp = (a) => !sim.byName[a.product].db.prepare('SELECT totp_secret FROM accounts WHERE id = ?').get(a.id).totp_secret;
  // Mallory: a legacy account of her own whose product trusts her Slack identity.
  const mallory = sim.people.find((p) => p.accounts.length === 1 && noTotp(p.accounts[0]) && !usersWith(p.email).length &&
    p.identities && p.identities.some((i) => i.provider === 'sign-in-with-slack'));
  const victim = sim.people.find((p) => p !== mallory && p.accounts.length === 1 && noTotp(p.accounts[0]) && !p.identities && !usersWith(p.email).length);
  assert.ok(mallory && victim, 'seeded people for the attack');
  const mine = (await signInThroughMfa(sim, mallory.email, mallory.accounts[0].password));
  assert.ok(mine, 'Mallory signs in with her own password');
  const P = usersWith(mallory.email)[0].user_id;
  // Her member in her own workspace now asserts the victim's address.
  const slack = mallory.identities.find((i) => i.provider === 'sign-in-with-slack');
  const slackIdp = sim.idps['sign-in-with-slack'];
  slackIdp.addAccount({ sub: slack.subject, login: slack.login, password: slack.password, claims: { email: victim.email, email_verified: true, name: 'Mallory', 'https://slack.com/team_id': 'TEVIL' } });
  const r = await socialSignIn(sim, 'sign-in-with-slack', slack);
  assert.ok(r.location, r.error);
  const record = userById(P).app_metadata.trickle;
  assert.deepEqual(record.accounts.map((a) => `${a.product}/${a.id}`), [`${mallory.accounts[0].product}/${mallory.accounts[0].id}`],
    'the victim\'s account did not join the attacker\'s user');
  // Mallory signs in with her password again: nothing to prove, no mail.
  const since = sim.mail.messages.length;
  await signInThroughMfa(sim, mallory.email, mallory.accounts[0].password);
  assert.equal(sim.mail.messages.length, since);
  assert.equal(told(victim.accounts[0].product, victim.accounts[0].id), null, 'the victim\'s account was told nothing');
  // The victim signs in: a user of their own.
  await signInThroughMfa(sim, victim.email, victim.accounts[0].password);
  const theirs = usersWith(victim.email).filter((u) => u.user_id !== P && u.user_id.startsWith('auth0|'));
  assert.equal(theirs.length, 1, 'the victim has their own tenant user');
  assert.equal(told(victim.accounts[0].product, victim.accounts[0].id), theirs[0].user_id);
  assert.ok(!userById(P).identities.some((i) => i.connection === 'trickle' && `auth0|${i.user_id}` === theirs[0].user_id), 'the victim is not linked into the attacker');
});
