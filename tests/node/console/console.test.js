// The support console, as staff and attackers meet it: a real browser (Chromium) signs a staff
// member in through the simulated tenant and fixes a person whose fan-out failed; non-staff and
// forged requests are refused; every fix lands in the append-only audit table; the same
// operations run from `trickle support`.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFile } = require('child_process');
const Database = require('better-sqlite3');
const { chromium } = require('playwright-core');
const { startSim } = require('../../../sim');
const { startConsole } = require('../../../console/server');
const { openAudit } = require('../../../console/audit');
const { m2mToken, signInThroughMfa, form } = require('../support/sim-http');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const noChromium = !fs.existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}`;
const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'trickle.js');
const STAFF = { email: 'staff@support.test', password: 'staff-password-1' };
const SESSION_SECRET = 'console-session-secret-for-tests-0123456789';

/** The Management API as an operator's script would call it. */
async function mgmt(sim) {
  const token = await m2mToken(sim.tenant.url);
  return async (p, method = 'GET', body) => {
    const r = await fetch(sim.tenant.url + p, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
    return { status: r.status, body: await r.json().catch(() => null) };
  };
}

/**
 * A simulator with the console beside it, set up as an operator would: an application for the
 * console registered on the tenant (its callback the console's), a staff account, the audit in
 * a temporary SQLite file.
 */
async function setup(t, consoleOptions = {}) {
  const sim = await startSim({ people: 30 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-console-'));
  const api = await mgmt(sim);
  const app = await api('/api/v2/clients', 'POST', { name: 'trickle support console', app_type: 'regular_web', callbacks: [] });
  assert.equal(app.status, 201);
  assert.equal((await api('/api/v2/users', 'POST', { connection: 'trickle', email: STAFF.email, password: STAFF.password, email_verified: true })).status, 201);
  const audit = `sqlite:${path.join(dir, 'audit.sqlite')}`;
  const con = await startConsole({
    tenant: { url: sim.tenant.url, clientId: 'trickle-m2m', clientSecret: 'm2m-secret' },
    login: { clientId: app.body.client_id, clientSecret: app.body.client_secret },
    staff: { emails: [STAFF.email, 'unverified-staff@support.test'] }, sessionSecret: SESSION_SECRET,
    products: sim.products.map((p) => ({ name: p.name, url: p.url, token: p.token })), audit, state: sim.bulkConfig().state,
    ...consoleOptions
  });
  assert.equal((await api(`/api/v2/clients/${app.body.client_id}`, 'PATCH', { callbacks: [con.redirectUri] })).status, 200);
  t.after(async () => {
    await con.close();
    await sim.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { sim, con, api, app: app.body, audit, dir };
}

/** Signs in through the console's Sign in link and the tenant's login page, in a browser page. */
async function browserSignIn(page, con, email, password) {
  await page.goto(con.url);
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL((u) => u.origin === new URL(con.url).origin);
}

/** The same sign-in over HTTP; resolves to the session cookie ("name=value") or the refusal. */
async function httpSignIn(sim, con, email, password) {
  const start = await fetch(`${con.url}/login`, { redirect: 'manual' });
  const loginCookie = start.headers.get('set-cookie').split(';')[0];
  const authorize = start.headers.get('location');
  const tx = (await (await fetch(authorize)).text()).match(/name="state" value="([^"]+)"/)[1];
  const back = await form(`${sim.tenant.url}/u/login`, { state: tx, email, password });
  const callback = await fetch(back.headers.get('location'), { redirect: 'manual', headers: { cookie: loginCookie } });
  const session = callback.headers.getSetCookie().find((c) => c.startsWith('trickle_console='));
  return { status: callback.status, cookie: session && !/Max-Age=0/.test(session) ? session.split(';')[0] : null, setCookie: session, body: callback.status === 303 ? '' : await callback.text(), authorize, loginCookie };
}

/** A person with one paste account, signed in while paste's write path was down: fan-out failed. */
async function personWithFailedFanout(sim) {
  const person = sim.people.find((p) => p.accounts.length === 1 && p.accounts[0].product === 'paste');
  sim.byName.paste.setMode('readonly');
  const res = await signInThroughMfa(sim, person.email, person.accounts[0].password);
  assert.equal(res.status, 302);
  sim.byName.paste.setMode('up');
  const user = [...sim.tenant.state.users.values()].find((u) => u.email === person.email);
  const [acct] = user.app_metadata.trickle.accounts;
  assert.equal(acct.proof, 'password');
  assert.notEqual(acct.fanout, true, 'the outage left the fan-out pending');
  return { person, user, account: acct };
}
const storedId = (sim, id) => sim.byName.paste.db.prepare('SELECT auth0_user_id FROM accounts WHERE id = ?').get(id).auth0_user_id;

test('Chromium: a staff member signs in, finds a person whose fan-out failed and fixes it; a fix without a reason is refused; every fix is in the audit table', { skip: noChromium, timeout: 120000 }, async (t) => {
  const { sim, con, audit } = await setup(t);
  const { person, user, account } = await personWithFailedFanout(sim);
  const staffUser = [...sim.tenant.state.users.values()].find((u) => u.email === STAFF.email);
  assert.equal(storedId(sim, account.id), null);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  t.after(() => browser.close());
  // A phone-sized window: the console must be usable there.
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  await browserSignIn(page, con, STAFF.email, STAFF.password);
  assert.match(await page.locator('header').innerText(), /staff@support\.test/);
  const sessionCookie = (await page.context().cookies()).find((c) => c.name === 'trickle_console');
  assert.ok(sessionCookie.httpOnly, 'the session cookie is HttpOnly');
  assert.equal(sessionCookie.sameSite, 'Lax');
  assert.ok(sessionCookie.expires > 0 && sessionCookie.expires * 1000 <= Date.now() + 1800 * 1000 + 5000, 'the session expires');

  await page.getByLabel('Address, tenant user id or person id').fill(`  ${person.email.toUpperCase()} `);
  await page.getByRole('button', { name: 'Find' }).click();
  await page.locator('#fanout-pending').waitFor();
  assert.match(await page.locator('#fanout-pending').innerText(), new RegExp(`paste:${account.id}`));
  assert.match(await page.locator(`tr[data-account="paste:${account.id}"]`).innerText(), /password/);
  assert.match(await page.locator('#legacy').innerText(), new RegExp(account.id));
  assert.ok((await page.locator('#timeline tr').count()) > 1, 'the timeline shows the tenant log');
  const scroll = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(scroll <= 1, `nothing overflows a phone screen sideways (${scroll}px)`);
  // No secrets on the page: no product token, no client secret, no legacy hash, no TOTP secret.
  const html = await page.content();
  const row = sim.byName.paste.db.prepare('SELECT password_hash, totp_secret FROM accounts WHERE id = ?').get(account.id);
  for (const secret of [...sim.products.map((p) => p.token), 'm2m-secret', row.password_hash, row.totp_secret, SESSION_SECRET].filter(Boolean)) {
    assert.ok(!html.includes(secret), 'a secret is on the page');
  }
  assert.doesNotMatch(html, /<script/i);

  // A reason of blanks is no reason: refused, nothing written, nothing told.
  const fanoutForm = page.locator('form[data-fix="fanout"]');
  await fanoutForm.getByLabel('Reason').fill('   ');
  await fanoutForm.getByRole('button').click();
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').innerText(), /support\.reason_required/);
  assert.equal(storedId(sim, account.id), null);
  assert.equal((await (await openAudit(audit)).list()).length, 0, 'a refused fix writes no audit row');

  await page.goBack();
  await fanoutForm.getByLabel('Reason').fill('paste was read-only during the login');
  await fanoutForm.getByLabel('Ticket (optional)').fill('SUP-101');
  await fanoutForm.getByRole('button').click();
  await page.getByRole('status').waitFor();
  assert.match(await page.getByRole('status').innerText(), /fanout: done/);
  assert.equal(await page.locator('#fanout-pending').innerText(), 'none');
  assert.equal(storedId(sim, account.id), user.user_id, 'the product now holds the Auth0 id');
  assert.equal(sim.tenant.state.users.get(user.user_id).app_metadata.trickle.accounts[0].fanout, true);

  // The other fixes, each with its reason.
  const apply = async (action, reason, extra = {}) => {
    const f = page.locator(`form[data-fix="${action}"]`);
    if (extra.account) await f.getByRole('combobox').selectOption(extra.account);
    await f.getByLabel('Reason').fill(reason);
    if (extra.ticket) await f.getByLabel(/Ticket/).fill(extra.ticket);
    await f.getByRole('button').click();
    await page.getByRole('status').waitFor();
    return page.getByRole('status').innerText();
  };
  assert.match(await apply('block', 'reported stolen laptop'), /block: done/);
  assert.equal(await page.locator('#blocked').innerText(), 'yes');
  assert.equal(sim.tenant.state.users.get(user.user_id).blocked, true);
  assert.match(await apply('unblock', 'laptop recovered'), /unblock: done/);
  assert.equal(sim.tenant.state.users.get(user.user_id).blocked, false);
  assert.match(await apply('clear-merge', 'merge page looped'), /clear-merge: nothing_to_do/);
  assert.match(await apply('withdraw', 'account belongs to a colleague', { account: `paste:${account.id}` }), /withdraw: done/);
  assert.equal(storedId(sim, account.id), null, 'the product was told to forget the id');
  const withdrawn = sim.tenant.state.users.get(user.user_id).app_metadata.trickle.accounts[0];
  assert.equal(withdrawn.proof, undefined);
  assert.notEqual(withdrawn.fanout, true);
  assert.match(await apply('link', 'identity checked on a video call', { account: `paste:${account.id}`, ticket: 'SUP-102' }), /link: done/);
  assert.equal(sim.tenant.state.users.get(user.user_id).app_metadata.trickle.accounts[0].proof, 'support');
  const mails = sim.mail.messages.length;
  assert.match(await apply('reset', 'person asked for a reset by phone'), /reset: done/);
  for (let i = 0; i < 50 && sim.mail.messages.length === mails; i++) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(sim.mail.messages.at(-1).to, [person.email], 'the reset link goes to the stored address');
  const login = await signInThroughMfa(sim, person.email, person.accounts[0].password);
  assert.equal(login.status, 401, 'after a forced reset the old password no longer works');

  await page.getByRole('link', { name: 'Audit' }).click();
  const rows = page.locator('#audit tbody tr');
  await rows.first().waitFor();
  const store = await openAudit(audit);
  const all = await store.list();
  await store.close();
  const fixes = ['fanout', 'block', 'unblock', 'clear-merge', 'withdraw', 'link', 'reset'];
  assert.equal(all.length, fixes.length * 2, 'each fix: one row before it acts, one with its result');
  for (const action of fixes) {
    const mine = all.filter((r) => r.action === action);
    assert.deepEqual(mine.map((r) => r.outcome).sort(), [action === 'clear-merge' ? 'nothing_to_do' : 'done', 'requested'].sort(), action);
    for (const r of mine) {
      assert.equal(r.actor, staffUser.user_id, 'the actor is the staff member\'s tenant user id');
      assert.equal(r.actor_email, STAFF.email, 'the address is kept beside it for reading');
      assert.equal(r.user_id, user.user_id);
      assert.ok(r.reason.length >= 3);
      assert.ok(r.before, 'the state before is recorded');
    }
    assert.ok(mine.find((r) => r.outcome !== 'requested').after, 'the state after is recorded');
    assert.equal(await page.locator(`#audit tr[data-action="${action}"]`).count(), 2, `the audit page lists ${action}`);
  }
  const fan = all.find((r) => r.action === 'fanout' && r.outcome === 'done');
  assert.equal(fan.ticket, 'SUP-101');
  assert.equal(fan.before.trickle.accounts[0].fanout, undefined);
  assert.equal(fan.after.trickle.accounts[0].fanout, true);
  assert.equal(all.find((r) => r.action === 'link' && r.outcome === 'done').ticket, 'SUP-102');
  await page.screenshot({ path: path.join(os.tmpdir(), 'trickle-console-audit.png'), fullPage: true });
});

test('Chromium: a person who is not staff signs in and is refused; so is an address on the staff list the tenant never verified', { skip: noChromium, timeout: 90000 }, async (t) => {
  const { sim, con, api } = await setup(t);
  const person = sim.people.find((p) => p.accounts.length === 1 && p.accounts[0].product === 'paste');
  assert.equal((await signInThroughMfa(sim, person.email, person.accounts[0].password)).status, 302);
  assert.equal((await api('/api/v2/users', 'POST', { connection: 'trickle', email: 'unverified-staff@support.test', password: 'unverified-pass-1', email_verified: false })).status, 201);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  t.after(() => browser.close());
  for (const [email, password, mfa] of [[person.email, person.accounts[0].password, true], ['unverified-staff@support.test', 'unverified-pass-1', false]]) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(con.url);
    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Continue' }).click();
    if (mfa && await page.getByLabel('Enter the code from your authenticator app').isVisible().catch(() => false)) {
      const { totpSecretsOf, totpCode } = require('../support/sim-http');
      await page.getByLabel('Enter the code from your authenticator app').fill(await totpCode(totpSecretsOf(sim, email)[0]));
      await page.getByRole('button', { name: 'Continue' }).click();
    }
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').innerText(), /console\.not_staff/);
    assert.equal((await context.cookies()).filter((c) => c.name === 'trickle_console' && c.value).length, 0, 'no session');
    await page.goto(`${con.url}/audit`);
    assert.ok(await page.getByRole('link', { name: 'Sign in' }).isVisible(), 'the audit is not shown');
    await context.close();
  }
});

test('attacks: forged, expired and cross-site requests change nothing; PKCE and the login state are enforced', { timeout: 90000 }, async (t) => {
  const { sim, con, audit, app } = await setup(t, { sessionTtlSeconds: 3 });
  const { user } = await personWithFailedFanout(sim);
  const s = await httpSignIn(sim, con, STAFF.email, STAFF.password);
  assert.equal(s.status, 303);
  assert.match(s.setCookie, /HttpOnly/);
  assert.match(s.setCookie, /SameSite=Lax/);
  const personPage = await fetch(`${con.url}/person?q=${encodeURIComponent(user.user_id)}`, { headers: { cookie: s.cookie } });
  assert.match(personPage.headers.get('content-security-policy'), /default-src 'none'/);
  assert.match(personPage.headers.get('content-security-policy'), /frame-ancestors 'none'/);
  assert.equal(personPage.headers.get('x-frame-options'), 'DENY');
  const csrf = (await personPage.text()).match(/name="csrf" value="([^"]+)"/)[1];
  // A crafted link cannot make the page claim a fix was done.
  const spoof = await (await fetch(`${con.url}/person?q=${encodeURIComponent(user.user_id)}&fixed=${encodeURIComponent('fanout: done (all good)')}`, { headers: { cookie: s.cookie } })).text();
  assert.doesNotMatch(spoof, /role="status"|all good/);
  const fix = (fields, headers = {}) => fetch(`${con.url}/fix`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams({ action: 'block', user_id: user.user_id, reason: 'attack', ...fields }) });

  // Cross-site form posts: no token, a wrong token, another origin with the right token.
  assert.equal((await fix({}, { cookie: s.cookie })).status, 403);
  assert.equal((await fix({ csrf: 'x'.repeat(csrf.length) }, { cookie: s.cookie })).status, 403);
  assert.equal((await fix({ csrf }, { cookie: s.cookie, origin: 'https://evil.example' })).status, 403);
  // Forged sessions: another secret, a tampered payload, none.
  const { signer } = require('../../../console/server');
  const forged = signer('another-secret-another-secret-another').seal('session', { claims: { sub: 'x', email: STAFF.email, email_verified: true }, csrf: 'c', exp: Date.now() + 60000 });
  assert.equal((await fix({ csrf: 'c' }, { cookie: `trickle_console=${forged}` })).status, 401);
  const [payload, mac] = decodeURIComponent(s.cookie.split('=')[1]).split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  claims.claims.email = 'someone-else@support.test';
  assert.equal((await fix({ csrf }, { cookie: `trickle_console=${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${mac}` })).status, 401);
  assert.equal((await fix({ csrf })).status, 401);
  // A fix with the right token is refused without a reason, and a link without a ticket.
  assert.equal((await fix({ csrf, reason: '' }, { cookie: s.cookie })).status, 400);
  assert.equal((await fix({ csrf, action: 'link', target: `paste:${user.app_metadata.trickle.accounts[0].id}`, reason: 'no ticket' }, { cookie: s.cookie })).status, 400);
  assert.equal((await fix({ csrf, action: 'resend-merge-mail', reason: 'please' }, { cookie: s.cookie })).status, 409);
  assert.equal(sim.tenant.state.users.get(user.user_id).blocked, undefined, 'nothing was blocked');
  const store = await openAudit(audit);
  assert.equal((await store.list()).length, 0, 'refused requests write nothing');

  // The audit table refuses to be rewritten, whoever holds the database.
  assert.equal((await fix({ csrf, reason: 'real change' }, { cookie: s.cookie })).status, 303);
  const db = new Database(audit.slice('sqlite:'.length));
  assert.throws(() => db.prepare("UPDATE support_audit SET reason = 'nothing happened'").run(), /append-only/);
  assert.throws(() => db.prepare('DELETE FROM support_audit').run(), /append-only/);
  db.close();
  assert.equal((await store.list()).length, 2);
  await store.close();

  // Sessions expire.
  await new Promise((r) => setTimeout(r, 3200));
  assert.equal((await fix({ csrf, action: 'unblock', reason: 'too late' }, { cookie: s.cookie })).status, 401);
  assert.match(await (await fetch(`${con.url}/`, { headers: { cookie: s.cookie } })).text(), />Sign in</);

  // The login: a callback without its login cookie, or with another login's state, is refused.
  const a = await httpSignIn(sim, con, STAFF.email, STAFF.password);
  assert.ok(a.cookie);
  const start = await fetch(`${con.url}/login`, { redirect: 'manual' });
  const tx = (await (await fetch(start.headers.get('location'))).text()).match(/name="state" value="([^"]+)"/)[1];
  const back = new URL((await form(`${sim.tenant.url}/u/login`, { state: tx, email: STAFF.email, password: STAFF.password })).headers.get('location'));
  assert.equal((await fetch(back, { redirect: 'manual' })).status, 400, 'no login cookie: login expired');
  assert.equal((await fetch(back, { redirect: 'manual', headers: { cookie: a.loginCookie } })).status, 403, 'another login\'s cookie: state refused');

  // PKCE at the tenant: a code issued with a challenge is refused without its verifier.
  const start2 = await fetch(`${con.url}/login`, { redirect: 'manual' });
  const tx2 = (await (await fetch(start2.headers.get('location'))).text()).match(/name="state" value="([^"]+)"/)[1];
  const code = new URL((await form(`${sim.tenant.url}/u/login`, { state: tx2, email: STAFF.email, password: STAFF.password })).headers.get('location')).searchParams.get('code');
  const stolen = await form(`${sim.tenant.url}/oauth/token`, { grant_type: 'authorization_code', code, client_id: app.client_id, client_secret: app.client_secret, redirect_uri: con.redirectUri });
  assert.equal(stolen.status, 403);
  assert.equal((await stolen.json()).error, 'invalid_grant');
  const plain = await fetch(`${sim.tenant.url}/authorize?client_id=${app.client_id}&response_type=code&redirect_uri=${encodeURIComponent(con.redirectUri)}&code_challenge=abc&code_challenge_method=plain`, { redirect: 'manual' });
  assert.equal(new URL(plain.headers.get('location')).searchParams.get('error'), 'invalid_request', 'plain challenges are refused');
});

test('the audit table is append-only in MariaDB too', { timeout: 30000 }, async (t) => {
  // A database of its own, dropped afterwards (dropping is the one way rows ever go).
  const server = process.env.TRICKLE_TEST_MYSQL || 'mysql://root@127.0.0.1:3306';
  const name = `trickle_audit_${process.pid}`;
  const url = `${server}/${name}`;
  let store;
  try { store = await openAudit(url); } catch (e) { t.skip(`no MariaDB at ${server}: ${e.message}`); return; }
  t.after(async () => {
    await store.close();
    const admin = await require('mysql2/promise').createConnection({ uri: server });
    await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await admin.end();
  });
  const id = await store.append({ actor: 'a@b.test', action: 'block', userId: 'auth0|maria', reason: 'test row', outcome: 'requested', before: { blocked: false } });
  assert.ok(id > 0);
  const mysql = require('mysql2/promise');
  const conn = await mysql.createConnection({ uri: url });
  t.after(() => conn.end());
  // Opening it again finds the triggers in place.
  await (await openAudit(url)).close();
  await assert.rejects(conn.query("UPDATE support_audit SET reason = 'rewritten' WHERE id = ?", [id]), /append-only/);
  await assert.rejects(conn.query('DELETE FROM support_audit WHERE id = ?', [id]), /append-only/);
  assert.equal((await store.list({ userId: 'auth0|maria' }))[0].reason, 'test row');
});

test('trickle support: find and fix from the command line, with the same rules and the same audit', { timeout: 90000 }, async (t) => {
  const { sim, dir } = await setup(t);
  const { person, user, account } = await personWithFailedFanout(sim);
  const config = path.join(dir, 'trickle.json');
  fs.writeFileSync(config, JSON.stringify({ ...sim.bulkConfig(), support: { audit: `sqlite:${path.join(dir, 'cli-audit.sqlite')}`, staff: [STAFF.email] } }));
  const run = (...args) => new Promise((resolve) => execFile(process.execPath, [BIN, 'support', ...args, '--config', config], { env: { ...process.env, TRICKLE_SUPPORT_ACTOR: '' } }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr })));

  const found = await run('find', person.email);
  assert.equal(found.code, 0, found.stderr);
  const view = JSON.parse(found.stdout);
  assert.equal(view.people[0].user.user_id, user.user_id);
  assert.deepEqual(view.people[0].state.fanout_pending, [`paste:${account.id}`]);
  for (const p of sim.products) assert.ok(!found.stdout.includes(p.token));
  assert.doesNotMatch(found.stdout, /password_hash|"hash"/);

  const noReason = await run('fanout', '--user', user.user_id, '--as', 'cli@support.test');
  assert.equal(noReason.code, 2);
  assert.match(noReason.stderr, /\[support\.reason_required\]/);
  const noActor = await run('fanout', '--user', user.user_id, '--reason', 'paste was down');
  assert.equal(noActor.code, 2);
  assert.match(noActor.stderr, /\[support\.actor_required\]/);
  assert.equal(storedId(sim, account.id), null);

  const done = await run('fanout', '--user', user.user_id, '--reason', 'paste was down', '--ticket', 'SUP-7', '--as', 'cli@support.test');
  assert.equal(done.code, 0, done.stderr);
  assert.equal(JSON.parse(done.stdout).outcome, 'done');
  assert.equal(storedId(sim, account.id), user.user_id);
  const missing = await run('block', '--user', 'auth0|nobody', '--reason', 'typo', '--as', 'cli@support.test');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /\[support\.no_such_user\]/);

  const log = await run('audit', '--user', user.user_id);
  assert.equal(log.code, 0, log.stderr);
  const rows = JSON.parse(log.stdout).audit;
  assert.deepEqual(rows.map((r) => [r.action, r.outcome, r.actor, r.ticket]), [['fanout', 'done', 'cli@support.test', 'SUP-7'], ['fanout', 'requested', 'cli@support.test', 'SUP-7']]);
});

test('who is staff: a listed user id, a listed address the tenant verified (any spelling), or a configured role in the configured claim', () => {
  const { staffCheck } = require('../../../console/server');
  const isStaff = staffCheck({ emails: ['Ann@Example.com'], userIds: ['auth0|staff-7'], roleClaim: 'https://corp.example/roles', roles: ['support'] });
  assert.equal(isStaff({ sub: 'auth0|staff-7' }), 'user id');
  assert.equal(isStaff({ sub: 'auth0|x', email: ' ANN@example.com', email_verified: true }), 'address');
  assert.equal(isStaff({ sub: 'auth0|x', email: 'ann@example.com', email_verified: false }), null, 'an unverified address proves nothing');
  assert.equal(isStaff({ sub: 'auth0|x', email: 'ann@example.com' }), null);
  assert.equal(isStaff({ sub: 'auth0|x', email: 'ann@example.com.', email_verified: 'true' }), null, 'a string is not true');
  assert.equal(isStaff({ sub: 'auth0|x', 'https://corp.example/roles': ['support'] }), 'role');
  assert.equal(isStaff({ sub: 'auth0|x', 'https://corp.example/roles': 'support' }), null, 'the claim must be a list');
  assert.equal(isStaff({ sub: 'auth0|x', roles: ['support'] }), null, 'only the configured claim counts');
  assert.equal(isStaff({ sub: 'auth0|staff-70' }), null);
});

test('trickle console refuses to start without staff, a session secret or its application, naming the setting', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-console-cfg-'));
  const base = { products: [{ name: 'paste', db: `sqlite:${path.join(dir, 'p.sqlite')}` }], tenant: { url: 'http://127.0.0.1:9', clientId: 'm2m', clientSecret: 's' } };
  const run = (support, env = {}) => {
    const file = path.join(dir, 'trickle.json');
    fs.writeFileSync(file, JSON.stringify({ ...base, support }));
    return new Promise((resolve) => execFile(process.execPath, [BIN, 'console', '--config', file, '--port', '0'], { env: { ...process.env, TRICKLE_CONSOLE_SESSION_SECRET: '', TRICKLE_CONSOLE_CLIENT_SECRET: '', ...env }, timeout: 20000 }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stderr })));
  };
  const secret = { TRICKLE_CONSOLE_SESSION_SECRET: 's'.repeat(32), TRICKLE_CONSOLE_CLIENT_SECRET: 'c' };
  let r = await run({ clientId: 'console', staff: ['a@b.test'] }, { TRICKLE_CONSOLE_CLIENT_SECRET: 'c' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\[console\.session_secret\]/);
  r = await run({ clientId: 'console' }, secret);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\[console\.no_staff\]/);
  r = await run({ staff: ['a@b.test'] }, secret);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\[console\.login_client_missing\]/);
  r = await run({ clientId: 'console', staff: ['a@b.test'], sesionTtlSeconds: 5 }, secret);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\[config\.unknown_key\].*sessionTtlSeconds/);
  r = await run({ clientId: 'console', staff: ['a@b.test'], staffProviders: ['sign-in-with-slack'] }, secret);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\[console\.staff_provider_untrusted\]/);
  r = await run({ clientId: 'console', staff: ['a@b.test'], staffProviders: 'auth0' }, secret);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\[config\.bad_type\].*staffProviders/);
  r = await run({ clientId: 'console', staff: ['a@b.test'], audit: 'postgres://x@y/z' }, secret);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\[audit\.unsupported_database\]/);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A browser's cookie jar over fetch, one jar per host (the console, the tenant, a provider). */
const cookieJarFetch = () => require('../../../sim/demo').hostBrowser();
const postForm = (go, url, fields) => go(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });

/**
 * Signs in at `start` (the console's /login, or the demo application's login) with a social
 * connection, as a browser would, until the browser is sent to a URL starting with one of
 * `stopAt`. Resolves `{go, url}`: the jar-carrying fetch and that URL.
 */
async function socialSignIn(sim, start, strategy, account, stopAt) {
  const go = cookieJarFetch();
  const base = sim.tenant.url;
  const idp = sim.idps[strategy];
  let r = await go(start);
  let loc = r.status >= 300 && r.status < 400 ? r.headers.get('location') : start;
  const html = await (await go(new URL(loc, base).toString())).text();
  const href = html.match(new RegExp(`href="(/u/login/federated[^"]*connection=${strategy})"`))[1].replace(/&amp;/g, '&');
  r = await go(base + href);
  r = await go(new URL(r.headers.get('location'), idp.issuer).toString());
  const page = await (await go(new URL(r.headers.get('location'), idp.issuer).toString())).text();
  r = await postForm(go, new URL(page.match(/action="([^"]+)"/)[1], idp.issuer).toString(), { login: account.login, password: account.password });
  for (let i = 0; i < 20; i++) {
    loc = r.headers.get('location');
    if (!loc) {
      // A provider that answers with a form posting the code to the tenant (form_post).
      const body = await r.text();
      const to = body.match(/action="([^"]+)"/);
      if (!to) return { go, url: null, body };
      r = await postForm(go, to[1].replace(/&amp;/g, '&'), Object.fromEntries([...body.matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1], m[2]])));
      continue;
    }
    const next = new URL(loc, r.url.startsWith(idp.issuer) ? idp.issuer : base).toString();
    if (stopAt.some((s) => next.startsWith(s))) return { go, url: next };
    r = await go(next);
  }
  throw new Error('the sign-in did not come back');
}

test('attacks: a Slack member, a Google or an Apple account asserting a staff address (verified or not) gets no session; the staff database user does, and the audit names its user id', { timeout: 120000 }, async (t) => {
  const { sim, con, audit } = await setup(t);
  const claims = (extra) => ({ email: STAFF.email, name: 'Mallory', ...extra });
  const accounts = [
    ['sign-in-with-slack', { sub: 'UMALLORY', login: 'mallory', password: 'mallory-pw', claims: claims({ email_verified: true, 'https://slack.com/team_id': 'TEVIL' }) }],
    ['google-oauth2', { sub: '1098765432100000001', login: 'mallory-google', password: 'mallory-pw', claims: claims({ email_verified: true }) }],
    ['google-oauth2', { sub: '1098765432100000002', login: 'mallory-google2', password: 'mallory-pw', claims: claims({ email_verified: false }) }],
    ['apple', { sub: '000111.mallory.0001', login: 'mallory-apple', password: 'mallory-pw', claims: claims({ email_verified: true }) }]
  ];
  for (const [strategy, account] of accounts) {
    sim.idps[strategy].addAccount(account);
    const { go, url } = await socialSignIn(sim, `${con.url}/login`, strategy, account, [con.redirectUri]);
    assert.ok(url, `${strategy}: the tenant sends the browser back to the console`);
    const back = await go(url);
    assert.equal(back.status, 403, `${strategy} (${account.sub}) asserting the staff address is refused`);
    assert.match(await back.text(), /console\.not_staff/);
    assert.ok(!back.headers.getSetCookie().some((c) => c.startsWith('trickle_console=') && !/Max-Age=0/.test(c)), 'no session cookie');
    const user = [...sim.tenant.state.users.values()].find((u) => u.user_id.endsWith(account.sub));
    assert.ok(user, `${strategy}: the tenant did sign the account in (the console is what refuses)`);
    const home = await (await go(`${con.url}/`)).text();
    assert.doesNotMatch(home, /Find a person/);
  }
  // A session sealed with the right secret for a social sub carrying the staff address (as a
  // session from before this check would be) is refused too: membership is checked per request.
  const { signer } = require('../../../console/server');
  const old = signer(SESSION_SECRET).seal('session', { claims: { sub: 'sign-in-with-slack|UMALLORY', email: STAFF.email, email_verified: true }, csrf: 'c', exp: Date.now() + 60000 });
  assert.doesNotMatch(await (await fetch(`${con.url}/`, { headers: { cookie: `trickle_console=${old}` } })).text(), /Find a person/);

  // The staff member's own database user still gets in, and fixes are recorded under its user id.
  const staffUser = [...sim.tenant.state.users.values()].find((u) => u.email === STAFF.email && u.user_id.startsWith('auth0|'));
  const s = await httpSignIn(sim, con, STAFF.email, STAFF.password);
  assert.equal(s.status, 303);
  assert.ok(s.cookie);
  const { user } = await personWithFailedFanout(sim);
  const page = await (await fetch(`${con.url}/person?q=${encodeURIComponent(user.user_id)}`, { headers: { cookie: s.cookie } })).text();
  const csrf = page.match(/name="csrf" value="([^"]+)"/)[1];
  const fix = (fields) => fetch(`${con.url}/fix`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: s.cookie }, body: new URLSearchParams({ action: 'block', user_id: user.user_id, reason: 'stolen laptop', ...fields }) });
  // A CSRF value of the right length in characters but not in bytes is a plain refusal, not a crash.
  for (const bad of ['é'.repeat(csrf.length), '€'.repeat(csrf.length), `${csrf.slice(0, -1)}\u00ff`]) {
    const r = await fix({ csrf: bad });
    assert.equal(r.status, 403, JSON.stringify(bad));
    assert.match(await r.text(), /console\.csrf/);
  }
  assert.equal((await fix({ csrf })).status, 303);
  const store = await openAudit(audit);
  const rows = await store.list();
  await store.close();
  assert.deepEqual(rows.map((r) => [r.action, r.outcome, r.actor, r.actor_email]), [['block', 'done', staffUser.user_id, STAFF.email], ['block', 'requested', staffUser.user_id, STAFF.email]]);
  const auditPage = await (await fetch(`${con.url}/audit`, { headers: { cookie: s.cookie } })).text();
  assert.ok(auditPage.includes(staffUser.user_id) && auditPage.includes(STAFF.email), 'the audit page shows the user id and the address');

  // Blocked on the tenant since signing in: the next fix is refused and the session ends.
  sim.tenant.state.users.get(staffUser.user_id).blocked = true;
  const blocked = await fix({ csrf, action: 'unblock' });
  assert.equal(blocked.status, 401);
  assert.match(await blocked.text(), /console\.staff_blocked/);
  assert.equal(sim.tenant.state.users.get(user.user_id).blocked, true, 'nothing was unblocked');
});

test('who may be staff by address: only users of the configured providers (database users by default); Slack can never be one', () => {
  const { staffCheck } = require('../../../console/server');
  const isStaff = staffCheck({ emails: ['ann@example.com'], userIds: ['sign-in-with-slack|UANN'] });
  assert.equal(isStaff({ sub: 'auth0|ann', email: 'ann@example.com', email_verified: true }), 'address');
  for (const sub of ['sign-in-with-slack|UX', 'oauth2|sign-in-with-slack|UX', 'google-oauth2|1', 'apple|000.x', 'samlp|x', 'auth0', '|auth0|x', '', undefined]) {
    assert.equal(isStaff({ sub, email: 'ann@example.com', email_verified: true }), null, `sub ${sub}`);
  }
  assert.equal(isStaff({ sub: 'sign-in-with-slack|UANN' }), 'user id', 'a listed user id keeps working, whatever its provider');
  const google = staffCheck({ emails: ['ann@example.com'], providers: ['google-oauth2'] });
  assert.equal(google({ sub: 'google-oauth2|1', email: 'ann@example.com', email_verified: true }), 'address');
  assert.equal(google({ sub: 'auth0|ann', email: 'ann@example.com', email_verified: true }), null, 'only the listed providers');
  assert.throws(() => staffCheck({ emails: ['ann@example.com'], providers: ['sign-in-with-slack'] }), { code: 'console.staff_provider_untrusted' });
  assert.throws(() => staffCheck({ emails: ['ann@example.com'], providers: ['oauth2'] }), { code: 'console.staff_provider_untrusted' });
  assert.throws(() => staffCheck({ emails: ['ann@example.com'], providers: ['Auth0|'] }), { code: 'console.staff_provider' });
  const { consoleOptions } = require('../../../console/config');
  const cfg = { tenant: { url: 'http://t', clientId: 'c', clientSecret: 's' }, support: { staff: ['ann@example.com'] } };
  assert.deepEqual(consoleOptions(cfg, {}).staff.providers, ['auth0'], 'by default the database users');
  assert.deepEqual(consoleOptions({ ...cfg, support: { ...cfg.support, staffProviders: ['google-oauth2'] } }, {}).staff.providers, ['google-oauth2']);
});

test('attacks: support cannot prove or tell an account another tenant user holds (linked, held, or the product\'s stored id); the refusal names that user and is in both users\' audit', { timeout: 120000 }, async (t) => {
  const { sim, con, api, audit, dir } = await setup(t);
  // The victim: a database person who signed in (account proven, the product told the id).
  const victim = sim.people.find((p) => p.accounts.length === 1 && p.accounts[0].product === 'paste' && !p.identities);
  assert.equal((await signInThroughMfa(sim, victim.email, victim.accounts[0].password)).status, 302);
  const vUser = [...sim.tenant.state.users.values()].find((u) => u.email === victim.email);
  const [vAcct] = vUser.app_metadata.trickle.accounts;
  assert.equal(storedId(sim, vAcct.id), vUser.user_id);
  // Mallory's Slack member asserts the victim's address: her user records the account as a candidate.
  const mal = { sub: 'UMAL1', login: 'mal1', password: 'pw1', claims: { email: victim.email, email_verified: true, name: 'Mallory', 'https://slack.com/team_id': 'TEVIL' } };
  sim.idps['sign-in-with-slack'].addAccount(mal);
  await socialSignIn(sim, sim.urls.login, 'sign-in-with-slack', mal, [`${sim.tenant.url}/app/callback`, sim.urls.merge || 'http://no-merge/']);
  const mUser = [...sim.tenant.state.users.values()].find((u) => u.user_id.endsWith('|UMAL1'));
  assert.ok(mUser, 'Mallory\'s Slack user exists');
  const record = () => JSON.parse(JSON.stringify(sim.tenant.state.users.get(mUser.user_id).app_metadata.trickle || {}));
  const original = record();
  const mAcct = (original.accounts || []).find((a) => a.product === 'paste' && String(a.id) === String(vAcct.id));
  assert.ok(mAcct, 'the victim\'s account is a candidate on Mallory\'s user');
  assert.ok(!mAcct.proof, 'unproven');
  const setRecord = async (edit) => {
    const tr = JSON.parse(JSON.stringify(original));
    edit(tr.accounts.find((a) => a.product === 'paste' && String(a.id) === String(vAcct.id)));
    assert.equal((await api(`/api/v2/users/${encodeURIComponent(mUser.user_id)}`, 'PATCH', { app_metadata: { trickle: tr } })).status, 200);
  };

  const s = await httpSignIn(sim, con, STAFF.email, STAFF.password);
  assert.ok(s.cookie);
  const personPage = (q) => fetch(`${con.url}/person?q=${encodeURIComponent(q)}`, { headers: { cookie: s.cookie } }).then((r) => r.text());
  const csrf = (await personPage(mUser.user_id)).match(/name="csrf" value="([^"]+)"/)[1];
  const fix = async (fields) => {
    const r = await fetch(`${con.url}/fix`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: s.cookie }, body: new URLSearchParams({ csrf, user_id: mUser.user_id, reason: 'customer called', ticket: 'SUP-1', ...fields }) });
    return { status: r.status, text: r.status === 303 ? '' : await r.text() };
  };
  const link = () => fix({ action: 'link', target: `paste:${vAcct.id}` });
  // The same fix while paste does not answer.
  const linkWhilePasteDown = async () => {
    sim.byName.paste.setMode('down');
    try { return await link(); } finally { sim.byName.paste.setMode('up'); }
  };
  const untouched = () => {
    assert.equal(storedId(sim, vAcct.id), vUser.user_id, 'the product still holds the victim\'s id');
    const a = sim.tenant.state.users.get(mUser.user_id).app_metadata.trickle.accounts.find((x) => String(x.id) === String(vAcct.id));
    assert.ok(!a.proof || a.proof === 'password', 'no support proof recorded');
  };

  // 1. The record as the chain left it (`linked` naming the victim, or `held`): refused, naming the victim when it can.
  let r = await link();
  assert.equal(r.status, 409);
  assert.match(r.text, /support\.account_held/);
  assert.ok(r.text.includes(vUser.user_id), 'the refusal names the user who holds the account');
  untouched();
  // The person page shows who holds it: the record's pointer and the product's stored id.
  const page = await personPage(mUser.user_id);
  assert.match(page, new RegExp(`data-account="paste:${vAcct.id}" data-held-by="${vUser.user_id.replace('|', '\\|')}"`));
  const row = page.slice(page.indexOf(`data-account="paste:${vAcct.id}"`)).split('</tr>')[0];
  assert.ok(row.includes(`<td class="stored">${vUser.user_id}</td>`), 'the product\'s stored id is shown');
  assert.match(row, mAcct.linked ? new RegExp(`class="linked">${vUser.user_id.replace('|', '\\|')}`) : /held \(id withheld\)/);

  // 2. Neither `linked` nor `held` in the record: the product's stored id still refuses it.
  await setRecord((a) => { delete a.linked; delete a.held; });
  r = await link();
  assert.equal(r.status, 409);
  assert.match(r.text, /support\.account_held/);
  assert.ok(r.text.includes(vUser.user_id));
  untouched();

  // The command line refuses it the same way (exit 2, nothing changed).
  const config = path.join(dir, 'trickle.json');
  fs.writeFileSync(config, JSON.stringify({ ...sim.bulkConfig(), support: { audit: `sqlite:${path.join(dir, 'cli-audit.sqlite')}` } }));
  const cli = await new Promise((resolve) => execFile(process.execPath, [BIN, 'support', 'link', '--user', mUser.user_id, '--account', `paste:${vAcct.id}`, '--reason', 'customer called', '--ticket', 'SUP-2', '--as', 'cli@support.test', '--config', config], (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stderr })));
  assert.equal(cli.code, 2, cli.stderr);
  assert.match(cli.stderr, /\[support\.account_held\]/);
  assert.ok(cli.stderr.includes(vUser.user_id));
  untouched();

  // 3. `held: true` (the core withheld the id) with the product not answering: refused all the same.
  await setRecord((a) => { delete a.linked; a.held = true; });
  r = await linkWhilePasteDown();
  assert.equal(r.status, 409);
  assert.match(r.text, /support\.account_held/);
  untouched();
  assert.match(await personPage(mUser.user_id), /held \(id withheld\)/);

  // 4. Nothing in the record and the product down: the tenant's own records still say who holds
  //    it (the victim's record has it proven), so it is refused, naming the victim.
  await setRecord((a) => { delete a.linked; delete a.held; });
  r = await linkWhilePasteDown();
  assert.equal(r.status, 409);
  assert.match(r.text, /support\.account_held/);
  assert.ok(r.text.includes(vUser.user_id));
  untouched();

  // 5. Re-running the fan-out for a proven account the product holds for another user would
  //    overwrite that user's id: refused, nothing told.
  await setRecord((a) => { delete a.linked; delete a.held; a.proof = 'password'; delete a.fanout; });
  r = await fix({ action: 'fanout' });
  assert.equal(r.status, 409);
  assert.match(r.text, /support\.account_held/);
  assert.ok(r.text.includes(vUser.user_id));
  assert.equal(storedId(sim, vAcct.id), vUser.user_id, 'the victim\'s id was not overwritten');

  // Every refusal is in the audit of Mallory's user and, where the holder is known, the victim's.
  const store = await openAudit(audit);
  const mine = await store.list({ userId: mUser.user_id });
  const theirs = await store.list({ userId: vUser.user_id });
  await store.close();
  assert.deepEqual(mine.filter((x) => x.outcome !== 'requested').map((x) => [x.action, x.outcome, x.detail.split(':')[0]]).reverse(), [
    ['link', 'refused', 'support.account_held'], ['link', 'refused', 'support.account_held'], ['link', 'refused', 'support.account_held'],
    ['link', 'refused', 'support.account_held'], ['fanout', 'refused', 'support.account_held']
  ]);
  assert.ok(theirs.length >= 4, 'the victim\'s audit shows the attempts on their account');
  for (const x of theirs) {
    assert.equal(x.outcome, 'refused');
    assert.ok(x.detail.includes(mUser.user_id), 'the victim\'s row names the user the fix was for');
  }
  assert.match(await personPage(vUser.user_id), /link refused/);

  // Mallory's next Slack login, with her record as the chain and the refused fixes left it (the
  // proof step 5 wrote straight into it stands for no fix: it is taken back), is her own user.
  await setRecord(() => {});
  const again = await socialSignIn(sim, sim.urls.login, 'sign-in-with-slack', mal, [`${sim.tenant.url}/app/callback`, sim.urls.merge || 'http://no-merge/']);
  assert.ok(again.url);
  assert.deepEqual(sim.tenant.state.users.get(vUser.user_id).identities.map((i) => i.provider), ['auth0'], 'no Slack identity joined the victim');
});

test('attacks: support never proves an account whose holder only the tenant\'s records know (its fan-out pending), nor a candidate a Slack workspace asserted; an account nobody can check is not proven', { timeout: 120000 }, async (t) => {
  const { sim, con, api } = await setup(t);
  const users = () => [...sim.tenant.state.users.values()];
  const storedId = (id) => sim.byName.paste.db.prepare('SELECT auth0_user_id FROM accounts WHERE id = ?').get(id).auth0_user_id;
  const lone = sim.people.filter((p) => p.accounts.length === 1 && p.accounts[0].product === 'paste' && !p.identities);
  const [victim, bystander] = lone;
  // The victim proved their account, but the product was down for the fan-out: it stores nothing,
  // and only the victim's record says the account is theirs.
  assert.equal((await signInThroughMfa(sim, victim.email, victim.accounts[0].password)).status, 302);
  const vUser = users().find((u) => u.email === victim.email);
  const vRec = JSON.parse(JSON.stringify(vUser.app_metadata.trickle));
  const [vAcct] = vRec.accounts;
  assert.equal(vAcct.proof, 'password');
  delete vAcct.fanout;
  assert.equal((await api(`/api/v2/users/${encodeURIComponent(vUser.user_id)}`, 'PATCH', { app_metadata: { trickle: vRec } })).status, 200);
  sim.byName.paste.db.prepare('UPDATE accounts SET auth0_user_id = NULL WHERE id = ?').run(vAcct.id);

  // Mallory's Slack workspace asserts each address; her users hold the accounts as candidates.
  const slackUser = async (person, sub) => {
    const acct = { sub, login: sub.toLowerCase(), password: 'pw1', claims: { email: person.email, email_verified: true, name: 'Mallory', 'https://slack.com/team_id': 'TEVIL' } };
    sim.idps['sign-in-with-slack'].addAccount(acct);
    await socialSignIn(sim, sim.urls.login, 'sign-in-with-slack', acct, [`${sim.tenant.url}/app/callback`, sim.urls.merge || 'http://no-merge/']);
    const u = users().find((x) => x.user_id.endsWith(`|${sub}`));
    assert.ok(u, 'the Slack user exists');
    const a = u.app_metadata.trickle.accounts.find((x) => x.product === 'paste');
    assert.ok(a && !a.proof, 'a candidate');
    assert.equal(u.app_metadata.trickle.address_from, 'sign-in-with-slack', 'the record says whose word the address is');
    return { u, a };
  };
  const m1 = await slackUser(victim, 'UMAL7');
  const m2 = await slackUser(bystander, 'UMAL8');

  const s = await httpSignIn(sim, con, STAFF.email, STAFF.password);
  const personPage = (q) => fetch(`${con.url}/person?q=${encodeURIComponent(q)}`, { headers: { cookie: s.cookie } }).then((r) => r.text());
  const page = await personPage(m2.u.user_id);
  const csrf = page.match(/name="csrf" value="([^"]+)"/)[1];
  assert.match(page, /found by an address sign-in-with-slack asserted/, 'the page shows where the candidate came from');
  const link = async (user, a) => {
    const r = await fetch(`${con.url}/fix`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: s.cookie }, body: new URLSearchParams({ csrf, user_id: user.user_id, reason: 'customer called', ticket: 'SUP-9', action: 'link', target: `paste:${a.id}` }) });
    return { status: r.status, text: r.status === 303 ? '' : await r.text() };
  };
  const proofOf = (user, a) => sim.tenant.state.users.get(user.user_id).app_metadata.trickle.accounts.find((x) => String(x.id) === String(a.id)).proof;

  // Finding 3: the product stores nothing and Mallory's record says nothing; the victim's does.
  let r = await link(m1.u, m1.a);
  assert.equal(r.status, 409, r.text);
  assert.match(r.text, /support\.account_held/);
  assert.ok(r.text.includes(vUser.user_id), 'the refusal names the victim, found by the tenant search');
  assert.equal(proofOf(m1.u, m1.a), undefined);
  assert.equal(storedId(vAcct.id), null, 'nothing told');

  // Finding 2: nobody holds the bystander's account, but Mallory's address is a workspace's word.
  r = await link(m2.u, m2.a);
  assert.equal(r.status, 409, r.text);
  assert.match(r.text, /support\.address_unvouched/);
  assert.equal(proofOf(m2.u, m2.a), undefined);
  assert.equal(storedId(m2.a.id), null);
});

test('attacks: a session cookie copied before sign-out, or held by a staff user since blocked, opens nothing', { timeout: 90000 }, async (t) => {
  const { sim, con, api } = await setup(t);
  const s = await httpSignIn(sim, con, STAFF.email, STAFF.password);
  assert.ok(s.cookie);
  const page = () => fetch(`${con.url}/person?q=${encodeURIComponent(STAFF.email)}`, { redirect: 'manual', headers: { cookie: s.cookie } });
  const open = await page();
  assert.equal(open.status, 200);
  const csrf = (await open.text()).match(/name="csrf" value="([^"]+)"/)[1];
  const post = (p, fields) => fetch(`${con.url}${p}`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: s.cookie }, body: new URLSearchParams({ csrf, ...fields }) });
  assert.equal((await post('/logout', {})).status, 303);
  // The same cookie, replayed after sign-out: no page, no fix.
  assert.equal((await page()).status, 303, 'redirected to sign in');
  const fix = await post('/fix', { action: 'block', user_id: 'auth0|anyone', reason: 'replayed cookie' });
  assert.equal(fix.status, 401);
  assert.match(await fix.text(), /console\.signed_out/);

  // A staff user blocked on the tenant: the first request that notices ends every session of theirs.
  const a = await httpSignIn(sim, con, STAFF.email, STAFF.password);
  const b = await httpSignIn(sim, con, STAFF.email, STAFF.password);
  const staffUser = [...sim.tenant.state.users.values()].find((u) => u.email === STAFF.email);
  const csrfOf = async (c) => (await (await fetch(`${con.url}/person?q=x%40y.z`, { headers: { cookie: c } })).text()).match(/name="csrf" value="([^"]+)"/)[1];
  const csrfB = await csrfOf(b.cookie);
  assert.equal((await api(`/api/v2/users/${encodeURIComponent(staffUser.user_id)}`, 'PATCH', { blocked: true })).status, 200);
  const r = await fetch(`${con.url}/fix`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: a.cookie }, body: new URLSearchParams({ csrf: await csrfOf(a.cookie), action: 'block', user_id: 'auth0|anyone', reason: 'after block' }) });
  assert.equal(r.status, 401);
  const other = await fetch(`${con.url}/fix`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: b.cookie }, body: new URLSearchParams({ csrf: csrfB, action: 'block', user_id: 'auth0|anyone', reason: 'second session' }) });
  assert.equal(other.status, 401, 'the other session of the blocked staff user ended too');
  assert.match(await other.text(), /console\.signed_out/);
});

test('an audit table made before actor_email gains the column on open; its rows stay as they were (SQLite and MariaDB)', { timeout: 30000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-audit-old-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'old.sqlite');
  const db = new Database(file);
  db.exec(`CREATE TABLE support_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    user_id TEXT, target TEXT, reason TEXT NOT NULL, ticket TEXT, outcome TEXT NOT NULL, before_state TEXT, after_state TEXT, detail TEXT);
    CREATE TRIGGER support_audit_no_update BEFORE UPDATE ON support_audit BEGIN SELECT RAISE(ABORT, 'support_audit is append-only'); END;
    INSERT INTO support_audit (at, actor, action, user_id, reason, outcome) VALUES ('2026-01-01T00:00:00Z', 'old@support.test', 'block', 'auth0|x', 'old row', 'done');`);
  db.close();
  const check = async (url) => {
    const store = await openAudit(url);
    await store.append({ actor: 'auth0|staff', actorEmail: 'staff@support.test', action: 'unblock', userId: 'auth0|x', reason: 'new row', outcome: 'done' });
    const rows = await store.list({ userId: 'auth0|x' });
    await store.close();
    assert.deepEqual(rows.map((r) => [r.actor, r.actor_email, r.reason]), [['auth0|staff', 'staff@support.test', 'new row'], ['old@support.test', null, 'old row']]);
    await (await openAudit(url)).close(); // opening again finds the column in place
  };
  await check(`sqlite:${file}`);

  const server = process.env.TRICKLE_TEST_MYSQL || 'mysql://root@127.0.0.1:3306';
  const name = `trickle_audit_old_${process.pid}`;
  let admin;
  try { admin = await require('mysql2/promise').createConnection({ uri: server, multipleStatements: true }); } catch (e) { t.diagnostic(`no MariaDB at ${server}: ${e.message}`); return; }
  t.after(async () => { await admin.query(`DROP DATABASE IF EXISTS \`${name}\``); await admin.end(); });
  await admin.query(`CREATE DATABASE \`${name}\`; USE \`${name}\`;
    CREATE TABLE support_audit (id BIGINT AUTO_INCREMENT PRIMARY KEY, at VARCHAR(40) NOT NULL, actor VARCHAR(320) NOT NULL, action VARCHAR(64) NOT NULL,
    user_id VARCHAR(191), target VARCHAR(191), reason TEXT NOT NULL, ticket VARCHAR(191), outcome VARCHAR(32) NOT NULL, before_state MEDIUMTEXT, after_state MEDIUMTEXT, detail TEXT);
    INSERT INTO support_audit (at, actor, action, user_id, reason, outcome) VALUES ('2026-01-01T00:00:00Z', 'old@support.test', 'block', 'auth0|x', 'old row', 'done');`);
  await check(`${server}/${name}`);
});
