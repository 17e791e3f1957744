// `trickle demo`: starts the simulator and drives a scripted migration through it over HTTP,
// as a browser and an application would, then reports every expectation and whether it held.
'use strict';
const crypto = require('crypto');
const { startSim } = require('./index');

/** A minimal HTTP client for the hosted pages: forms, manual redirects. */
function client(base) {
  const form = (url, fields) => fetch(new URL(url, base), {
    method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields)
  });
  return {
    get: (url) => fetch(new URL(url, base), { redirect: 'manual' }),
    form,
    async startLogin() {
      const redirect = `${base}/app/callback`;
      const res = await fetch(`${base}/authorize?client_id=trickle-demo&response_type=code&state=app-state&redirect_uri=${encodeURIComponent(redirect)}`);
      const html = await res.text();
      const m = html.match(/name="state" value="([^"]+)"/);
      if (!m) throw new Error('the login page has no transaction state');
      return m[1];
    },
    async signIn(email, password) {
      const tx = await this.startLogin();
      const res = await form('/u/login', { state: tx, email, password });
      return { status: res.status, location: res.headers.get('location'), body: res.status === 302 ? '' : await res.text() };
    },
    async exchange(code) {
      const res = await form('/oauth/token', { grant_type: 'authorization_code', code, redirect_uri: `${base}/app/callback`, client_id: 'trickle-demo', client_secret: 'demo-app-secret' });
      return res.json();
    }
  };
}

/** A browser for the merge service: keeps its cookies, follows nothing by itself. */
function browser() {
  const jar = new Map();
  const keep = (res) => {
    for (const c of res.headers.getSetCookie ? res.headers.getSetCookie() : []) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
    }
    return res;
  };
  const headers = (extra = {}) => ({ ...extra, cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') });
  const field = (html, name) => { const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`)); return m && m[1].replace(/&amp;/g, '&'); };
  return {
    field,
    get: async (url) => keep(await fetch(url, { redirect: 'manual', headers: headers() })),
    post: async (url, fields) => keep(await fetch(url, { method: 'POST', redirect: 'manual', headers: headers({ 'content-type': 'application/x-www-form-urlencoded' }), body: new URLSearchParams(fields) }))
  };
}

async function waitForMail(sim, to, since) {
  for (let i = 0; i < 50; i++) {
    const mail = sim.mail.messages.slice(since).find((x) => x.to.includes(to));
    if (mail) return mail;
    await new Promise((r) => setTimeout(r, 100));
  }
  return null;
}

/**
 * Walks the merge flow in a browser-like client: the merge page, the mail link, a new password,
 * the sign-in with it, and the signed POST back to the tenant's /continue.
 * Returns `{location}` (where the tenant sent the browser) or `{error}`.
 */
async function walkMerge(sim, mergeUrl, email, newPassword) {
  const b = browser();
  const start = await b.get(mergeUrl);
  const html = await start.text();
  const csrf = b.field(html, 'csrf');
  if (!csrf) return { error: `merge page: HTTP ${start.status}` };
  const since = sim.mail.messages.length;
  const sent = await b.post(`${sim.merge.url}/merge/send`, { csrf });
  if (sent.status !== 200) return { error: `send: HTTP ${sent.status}` };
  const mail = await waitForMail(sim, email, since);
  const link = mail && (mail.text.match(/https?:\/\/\S+\/merge\/verify\?token=[A-Za-z0-9_-]+/) || [])[0];
  if (!link) return { error: 'no mail with a link' };
  const verified = await b.get(link);
  if (!/new-password/.test(await verified.text())) return { error: `link: HTTP ${verified.status}` };
  const set = await b.post(`${sim.merge.url}/merge/password`, { csrf, password: newPassword, repeat: newPassword });
  if (set.status !== 200) return { error: `password: HTTP ${set.status}` };
  const signed = await b.post(`${sim.merge.url}/merge/signin`, { csrf, password: newPassword });
  const finish = await signed.text();
  const action = (finish.match(/action="([^"]+\/continue\?state=[^"]+)"/) || [])[1];
  const token = b.field(finish, 'session_token');
  if (!action || !token) return { error: `sign-in: HTTP ${signed.status}` };
  const back = await fetch(action.replace(/&amp;/g, '&'), { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ session_token: token }) });
  return { location: back.headers.get('location'), link, browser: b, csrf };
}

async function verifyIdToken(base, token) {
  const [h, p, s] = token.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url').toString());
  const jwks = await (await fetch(`${base}/.well-known/jwks.json`)).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  if (!crypto.verify('sha256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'))) throw new Error('bad id_token signature');
  return JSON.parse(Buffer.from(p, 'base64url').toString());
}

const codeOf = (location) => location && new URL(location).searchParams.get('code');

/** Runs the demo. Returns `{passed, failed, checks}`; `log` receives one line per step. */
async function runDemo({ people = 60, log = console.log, port } = {}) {
  const sim = await startSim({ people, port });
  const checks = [];
  const expect = (name, ok, detail = '') => {
    checks.push({ name, ok: !!ok, detail });
    log(`${ok ? '✔' : '✖'} ${name}${detail ? ` — ${detail}` : ''}`);
  };
  const http = client(sim.tenant.url);
  const product = (name) => sim.byName[name];
  const linked = (name, id) => product(name).db.prepare('SELECT auth0_user_id FROM accounts WHERE id = ?').get(id).auth0_user_id;
  const setMode = (name, mode) => fetch(`${sim.tenant.url}/_sim/api/products/${name}/mode`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ mode }) });
  const single = (name, skip = 0) => sim.people.filter((p) => p.accounts.length === 1 && p.accounts[0].product === name)[skip];
  try {
    log(`simulator up: tenant ${sim.tenant.url}, ${people} people across paste, collect and transfer`);
    // 1. Single-product logins, one per legacy password format.
    for (const name of ['paste', 'collect', 'transfer']) {
      const person = single(name);
      const r = await http.signIn(person.email, person.accounts[0].password);
      const code = codeOf(r.location);
      expect(`single-product login (${name}, ${product(name).format}) returns an authorization code`, r.status === 302 && code, r.location || `HTTP ${r.status}`);
      if (!code) continue;
      const tokens = await http.exchange(code);
      const claims = tokens.id_token ? await verifyIdToken(sim.tenant.url, tokens.id_token).catch(() => null) : null;
      expect(`  the id_token is signed (RS256, JWKS) for ${person.email}`, claims && claims.email === person.email.toLowerCase(), claims ? claims.sub : JSON.stringify(tokens));
      expect(`  ${name} was told the Auth0 id`, claims && linked(name, person.accounts[0].id) === claims.sub);
    }
    // 2. A person with accounts in several products reaches the merge redirect.
    const multi = sim.people.find((p) => new Set(p.accounts.map((a) => a.product)).size === 3) || sim.people.find((p) => p.accounts.length > 1);
    const m = await http.signIn(multi.email, multi.accounts[0].password);
    const merge = m.location && new URL(m.location);
    const session = merge && merge.searchParams.get('session_token');
    const claims = session ? JSON.parse(Buffer.from(session.split('.')[1], 'base64url').toString()) : {};
    expect('multi-product login is sent to the merge service with a session token and the state', merge && merge.pathname === '/merge' && session && merge.searchParams.get('state'), m.location || `HTTP ${m.status}`);
    expect('  the token names the unproven products, is for the merge service and lives ≤ 15 min', claims.aud === 'trickle-merge' && claims.exp - claims.iat <= 900 && Array.isArray(claims.unproven) && claims.unproven.length > 0, JSON.stringify(claims.unproven));
    expect('  no product was told about unproven accounts', multi.accounts.slice(1).every((a) => !linked(a.product, a.id) || a.product === multi.accounts[0].product));
    if (session) {
      const walked = await walkMerge(sim, m.location, multi.email, 'one-new-password-for-all');
      expect('  the merge service mails a link, takes a new password and a sign-in with it, and sends the browser back', codeOf(walked.location), walked.error || walked.location);
      const user = [...sim.tenant.state.users.values()].find((u) => u.email === multi.email.toLowerCase());
      const accounts = (user && user.app_metadata.trickle && user.app_metadata.trickle.accounts) || [];
      expect('  the person is migrated with every account proven', user && user.app_metadata.migrated === true && accounts.length === multi.accounts.length && accounts.every((a) => a.proof));
      expect('  after the merge every product of the person has the Auth0 id', multi.accounts.every((a) => linked(a.product, a.id) === (user && user.user_id)));
      const after = await http.signIn(multi.email, 'one-new-password-for-all');
      expect('  the next login with the new password goes straight to the app', codeOf(after.location), after.location || `HTTP ${after.status}`);
    }
    // 3. A product outage during fan-out, and its recovery at the next login.
    const outage = single('paste', 1);
    await setMode('paste', 'readonly');
    const o1 = await http.signIn(outage.email, outage.accounts[0].password);
    expect('with paste unable to write, the login still succeeds', codeOf(o1.location), o1.location || `HTTP ${o1.status}`);
    expect('  paste has not stored the Auth0 id yet', !linked('paste', outage.accounts[0].id));
    await setMode('paste', 'up');
    const o2 = await http.signIn(outage.email, outage.accounts[0].password);
    expect('after recovery the next login completes the fan-out', codeOf(o2.location) && linked('paste', outage.accounts[0].id), linked('paste', outage.accounts[0].id) || 'not linked');
    // 4. A wrong password.
    const w = await http.signIn(single('collect', 1).email, 'not-the-password');
    expect('a wrong password gets the login page with an error and no code', w.status === 401 && /Wrong email or password/.test(w.body) && !codeOf(w.location));
    // 5. A password reset of a person not yet migrated: the mail, the link, a new password, a login.
    // Someone who has not signed in yet, with accounts in several products: the reset proves the
    // inbox, so every account is proven at once.
    const resetPerson = sim.people.find((p) => p !== multi && new Set(p.accounts.map((a) => a.product)).size > 1);
    const before = sim.mail.messages.length;
    await http.form('/lo/reset', { email: resetPerson.email });
    let mail = null;
    for (let i = 0; i < 50 && !mail; i++) {
      mail = sim.mail.messages.slice(before).find((x) => x.to.includes(resetPerson.email));
      if (!mail) await new Promise((r) => setTimeout(r, 100));
    }
    const link = mail && (mail.text.match(/https?:\/\/\S+\/lo\/reset\/confirm\?ticket=[0-9a-f]+/) || [])[0];
    expect('the reset mail arrives through SMTP with a one-time link', link, mail ? mail.subject : 'no mail');
    if (link) {
      const ticket = new URL(link).searchParams.get('ticket');
      const page = await (await http.get(link)).text();
      expect('  the link opens the new-password form', /Choose a new password/.test(page));
      const done = await http.form('/lo/reset/confirm', { ticket, password: 'a-brand-new-password' });
      expect('  the new password is accepted', done.status === 200 && /password was changed/.test(await done.text()));
      const again = await http.form('/lo/reset/confirm', { ticket, password: 'another-password-1' });
      expect('  the link cannot be used twice', again.status === 400);
      const after = await http.signIn(resetPerson.email, 'a-brand-new-password');
      expect('  the person signs in with the new password, all accounts proven by the reset', codeOf(after.location), after.location || `HTTP ${after.status}`);
      expect('  every product of the person was told the Auth0 id', resetPerson.accounts.every((a) => linked(a.product, a.id)));
      const old = await http.signIn(resetPerson.email, resetPerson.accounts[0].password);
      expect('  the old legacy password no longer works', old.status === 401);
    }
  } catch (e) {
    expect('the demo ran to the end', false, e.stack || e.message);
  } finally {
    await sim.close();
  }
  const failed = checks.filter((c) => !c.ok).length;
  log(`\n${checks.length - failed} passed, ${failed} failed`);
  return { passed: checks.length - failed, failed, checks };
}

module.exports = { runDemo, walkMerge, browser, waitForMail };
