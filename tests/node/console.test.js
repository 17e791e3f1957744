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
const { startSim } = require('../../sim');
const { startConsole } = require('../../console/server');
const { openAudit } = require('../../console/audit');
const { m2mToken, signInThroughMfa, form } = require('./sim-http');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const noChromium = !fs.existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}`;
const BIN = path.join(__dirname, '..', '..', 'bin', 'trickle.js');
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
      assert.equal(r.actor, STAFF.email);
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
      const { totpSecretsOf, totpCode } = require('./sim-http');
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
  const { signer } = require('../../console/server');
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
  const { staffCheck } = require('../../console/server');
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
  r = await run({ clientId: 'console', staff: ['a@b.test'], audit: 'postgres://x@y/z' }, secret);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\[audit\.unsupported_database\]/);
  fs.rmSync(dir, { recursive: true, force: true });
});
