// `trickle demo`: starts the simulator and drives a scripted migration through it over HTTP,
// as a browser and an application would, then reports every expectation and whether it held.
'use strict';
const crypto = require('crypto');
const { startSim } = require('./index');
const { FORMATS, PRODUCTS } = require('./seed');
const totp = require('./totp');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFile } = require('child_process');

/** True when a hosted-login page is the authenticator-app challenge. */
const isMfaPage = (html) => /action="\/u\/mfa-otp-challenge"/.test(html || '');

/**
 * A person's authenticator app for a base32 `secret`: `code()` is the code it shows now, or the
 * next step's when that one was already typed (a code works once; the tenant accepts ±1 step);
 * it waits for a fresh step only when both are spent.
 */
function authenticatorApp(secret) {
  let last = -Infinity;
  return {
    secret,
    async code() {
      for (;;) {
        const now = totp.stepOf(Date.now());
        const step = last < now ? now : last + 1;
        if (step <= now + 1) { last = step; return totp.generate(secret, step * totp.STEP_SECONDS * 1000); }
        await new Promise((r) => setTimeout(r, (now + 1) * totp.STEP_SECONDS * 1000 - Date.now() + 20));
      }
    }
  };
}

/** A minimal HTTP client for the hosted pages: forms, manual redirects. */
function client(base, defaults = {}) {
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
    /**
     * Signs in on the hosted login page. When the tenant asks for an authenticator-app code and
     * `mfa(email)` gives the person's app, the code is typed (`mfa: true` in the answer).
     */
    async signIn(email, password, { mfa = defaults.mfa } = {}) {
      const tx = await this.startLogin();
      const res = await form('/u/login', { state: tx, email, password });
      const answer = { status: res.status, location: res.headers.get('location'), body: res.status === 302 ? '' : await res.text() };
      const app = isMfaPage(answer.body) && mfa && mfa(email);
      if (!app) return answer;
      const done = await this.answerMfa(answer.body, await app.code());
      return { ...done, mfa: true };
    },
    /** Types `code` into the challenge page `html`. */
    async answerMfa(html, code) {
      const state = (html.match(/name="state" value="([^"]+)"/) || [])[1];
      const res = await form('/u/mfa-otp-challenge', { state, code });
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

/**
 * Signs in with a social connection from the hosted login page, as a browser does: "Continue
 * with …", the provider's sign-in form, and back through the tenant's callback (Apple answers
 * with a form the browser posts). Resolves `{location}`: where the tenant sent the browser in the
 * end (the app's callback with a code, or a redirect of the post-login chain), or `{error}`.
 */
/** A browser as fetch sees it: cookies kept per host (deleted by max-age=0), redirects by hand. */
function hostBrowser() {
  const jars = new Map();
  const jarOf = (u) => { const h = new URL(u).host; if (!jars.has(h)) jars.set(h, new Map()); return jars.get(h); };
  return async (url, init = {}) => {
    const jar = jarOf(url);
    const r = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers || {}), cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } });
    for (const c of r.headers.getSetCookie()) {
      const [kv] = c.split(';');
      const i = kv.indexOf('=');
      if (/max-age=0/i.test(c)) jar.delete(kv.slice(0, i)); else jar.set(kv.slice(0, i), kv.slice(i + 1));
    }
    return r;
  };
}

async function socialSignIn(sim, strategy, account) {
  const go = hostBrowser();
  const post = (url, fields) => go(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });
  const base = sim.tenant.url;
  const idp = sim.idps[strategy];
  const html = await (await go(sim.urls.login)).text();
  const href = (html.match(new RegExp(`href="(/u/login/federated[^"]*connection=${strategy})"`)) || [])[1];
  if (!href) return { error: `the login page offers no ${strategy}` };
  let res = await go(base + href.replace(/&amp;/g, '&'));
  res = await go(new URL(res.headers.get('location'), idp.issuer).toString());
  const page = await (await go(new URL(res.headers.get('location'), idp.issuer).toString())).text();
  const action = (page.match(/action="([^"]+)"/) || [])[1];
  if (!action) return { error: `${strategy}: no sign-in form` };
  res = await post(new URL(action.replace(/&amp;/g, '&'), idp.issuer).toString(), { login: account.login, password: account.password });
  for (let hops = 0; hops < 20; hops++) {
    const location = res.headers.get('location');
    if (!location) {
      const body = await res.text();
      const to = body.match(/action="([^"]+)"/);
      if (!to) return { error: `${strategy}: HTTP ${res.status}` };
      const fields = Object.fromEntries([...body.matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1], m[2]]));
      res = await post(to[1].replace(/&amp;/g, '&'), fields);
      continue;
    }
    const next = new URL(location, res.url || base).toString();
    if (next.startsWith(`${base}/app/callback`) || !(next.startsWith(base) || next.startsWith(idp.issuer))) return { location: next };
    res = await go(next);
  }
  return { error: `${strategy}: too many redirects` };
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
 * The merge service's last page posts the signed result back to the tenant's /continue, as the
 * browser's auto-submitting form does. Resolves the tenant's answer, or null when `html` is not
 * that page.
 */
async function backToTenant(html) {
  const action = (html.match(/action="([^"]+\/continue\?state=[^"]+)"/) || [])[1];
  const token = (html.match(/name="session_token" value="([^"]*)"/) || [])[1];
  if (!action || !token) return null;
  return fetch(action.replace(/&amp;/g, '&'), { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ session_token: token.replace(/&amp;/g, '&') }) });
}

/**
 * On a merge page that offers accounts by their own legacy password: types the password of each
 * of `accounts` ({product, id, password}) it offers, then continues back to the tenant. Returns
 * `{location, proven}` (the accounts the page accepted).
 */
async function accountOffers(sim, mergeUrl, accounts) {
  const b = browser();
  const html = await (await b.get(mergeUrl)).text();
  const csrf = b.field(html, 'csrf');
  const proven = [];
  for (const a of accounts) {
    if (!html.includes(`value="${a.product}:${a.id}"`)) continue;
    const r = await b.post(`${sim.merge.url}/merge/account`, { csrf, account: `${a.product}:${a.id}`, password: a.password });
    if (r.status === 200) proven.push(`${a.product}:${a.id}`);
  }
  const back = await backToTenant(await (await b.post(`${sim.merge.url}/merge/skip`, { csrf })).text());
  return { location: back && back.headers.get('location'), proven };
}

/**
 * Walks the merge flow in a browser-like client: the merge page, the mail link, a new password,
 * the sign-in with it, and the signed POST back to the tenant's /continue. When the tenant then
 * asks for an authenticator-app code, `mfa(html)` (if given) answers it and resolves to the
 * answer's response. Returns `{location}` (where the tenant sent the browser), with `back` the
 * tenant's last response and `mfa: true` when a code was typed, or `{error}`.
 */
async function walkMerge(sim, mergeUrl, email, newPassword, { mfa } = {}) {
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
  const back = await backToTenant(await signed.text());
  if (!back) return { error: `sign-in: HTTP ${signed.status}` };
  // With a second factor the tenant answers /continue with its challenge page instead.
  if (back.status === 200 && mfa) {
    const html = await back.text();
    if (isMfaPage(html)) {
      const answered = await mfa(html);
      return { location: answered.headers.get('location'), back: answered, mfa: true, link, browser: b, csrf };
    }
    return { location: null, back: new Response(html, { status: back.status, headers: back.headers }), link, browser: b, csrf };
  }
  return { location: back.headers.get('location'), back, link, browser: b, csrf };
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
const tenantUserOf = (sim, email) => [...sim.tenant.state.users.values()].find((u) => u.email === String(email).trim().toLowerCase());

/** Runs the trickle command as its own process (it talks to this process's simulator over HTTP). */
function trickle(args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(__dirname, '..', 'bin', 'trickle.js'), ...args], { maxBuffer: 32 * 1024 * 1024, timeout: 300000 },
      (e, stdout, stderr) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) }));
  });
}

/** True when the account's product had verified the address (`email_verified` in its row). */
function verifiedOf(sim, account) {
  const row = sim.byName[account.product].db.prepare('SELECT email_verified FROM accounts WHERE id = ?').get(account.id);
  return !!(row && row.email_verified);
}

/**
 * The people a sign-in with their first account's password sends to the merge service: accounts in
 * several products, the first one verified by its product (a password that matches only an
 * unverified account is refused while other accounts hold the address) and at least one in another
 * product verified too (only those are asked for by the merge; an unverified one waits for its own
 * password).
 */
function mergeablePeople(sim) {
  return sim.people.filter((p) => verifiedOf(sim, p.accounts[0]) &&
    p.accounts.some((a) => a.product !== p.accounts[0].product && verifiedOf(sim, a)));
}

/**
 * The people who hold verified and unverified accounts and still reach the merge service, each as
 * `{person, via}`: `via` is a verified account to sign in with, and another product holds a
 * verified account too. After the merge the verified accounts are proven and told the Auth0 id,
 * the unverified ones are neither.
 */
function mixedPeople(sim) {
  const out = [];
  for (const person of sim.people) {
    if (!person.accounts.some((a) => !verifiedOf(sim, a))) continue;
    const via = person.accounts.find((a) => verifiedOf(sim, a) && person.accounts.some((b) => b.product !== a.product && verifiedOf(sim, b)));
    if (via) out.push({ person, via });
  }
  return out;
}

/**
 * Opens an account in `product` with `email`, as someone who only typed the address would: the
 * product never verified it. The password is stored in that product's own legacy format.
 */
function plantAccount(sim, product, { id, email, name, password }) {
  const stored = FORMATS[product].hash(password, Math.random, { bcryptCost: 4, pbkdf2Iterations: 1000 });
  sim.byName[product].db.prepare(`INSERT INTO accounts (id, email, email_norm, email_verified, name, given_name, family_name, created_at, password_hash, password_salt, totp_secret)
    VALUES (@id, @email, @email_norm, 0, @name, NULL, NULL, @created_at, @password_hash, @password_salt, NULL)`)
    .run({ id, email, email_norm: String(email).trim().toLowerCase(), name, created_at: new Date().toISOString(), password_hash: stored.hash, password_salt: stored.salt });
  return { product, id, password };
}

/**
 * The migration's progress for the monitor's dashboard, from the simulator: people migrated
 * lazily, imported in bulk, imported and backfilled (an account holds the Auth0 id), and
 * still to go (seeded people with no tenant user yet).
 */
function simProgress(sim) {
  const users = [...sim.tenant.state.users.values()];
  const linked = new Set();
  for (const p of sim.products) for (const r of p.db.prepare('SELECT email_norm FROM accounts WHERE auth0_user_id IS NOT NULL').all()) linked.add(r.email_norm);
  const imported = users.filter((u) => u.app_metadata && u.app_metadata.bulkImported);
  const seeded = new Set(sim.people.map((p) => String(p.email).trim().toLowerCase()));
  const present = users.filter((u) => seeded.has(u.email)).length;
  return {
    total: sim.people.length, lazy: sim.tenant.state.counters.lazy_migrated, imported: imported.length,
    backfilled: imported.filter((u) => linked.has(u.email)).length, remaining: Math.max(0, sim.people.length - present)
  };
}

/** Signs the demo's staff member in to the console over HTTP, as a browser would, and looks `person` up. */
async function consoleFinds(sim, support, person) {
  const { con, staff } = support;
  const start = await fetch(`${con.url}/login`, { redirect: 'manual' });
  const loginCookie = (start.headers.get('set-cookie') || '').split(';')[0];
  const page = await (await fetch(start.headers.get('location'))).text();
  const tx = (page.match(/name="state" value="([^"]+)"/) || [])[1];
  const back = await fetch(`${sim.tenant.url}/u/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ state: tx, email: staff.email, password: staff.password }) });
  const cb = await fetch(back.headers.get('location') || `${con.url}/`, { redirect: 'manual', headers: { cookie: loginCookie } });
  const session = cb.headers.getSetCookie().find((c) => c.startsWith('trickle_console=') && !/Max-Age=0/.test(c));
  if (!session) return { ok: false, detail: `sign-in: HTTP ${cb.status}` };
  const found = await fetch(`${con.url}/person?q=${encodeURIComponent(person.email)}`, { headers: { cookie: session.split(';')[0] } });
  const html = await found.text();
  const user = tenantUserOf(sim, person.email);
  return { ok: found.status === 200 && html.includes(user.user_id), detail: `HTTP ${found.status}, ${user.user_id}` };
}

/**
 * The support console beside the simulator, set up as an operator would: its application on the
 * tenant (callback the console's), one staff account, the audit in the demo's directory.
 */
async function startDemoConsole(sim, dataDir) {
  const { startConsole } = require('../console/server');
  const tokenRes = await fetch(`${sim.tenant.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'trickle-m2m', client_secret: 'm2m-secret', audience: `${sim.tenant.url}/api/v2/` }) });
  const { access_token: token } = await tokenRes.json();
  const api = async (p, method, body) => (await fetch(sim.tenant.url + p, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })).json();
  const app = await api('/api/v2/clients', 'POST', { name: 'trickle support console', app_type: 'regular_web', callbacks: [] });
  const staff = { email: 'support@demo.trickle.test', password: crypto.randomBytes(9).toString('base64url') };
  await api('/api/v2/users', 'POST', { connection: 'trickle', email: staff.email, password: staff.password, email_verified: true, name: 'Demo support' });
  const con = await startConsole({
    tenant: { url: sim.tenant.url, clientId: 'trickle-m2m', clientSecret: 'm2m-secret' }, login: { clientId: app.client_id, clientSecret: app.client_secret },
    staff: { emails: [staff.email] }, sessionSecret: crypto.randomBytes(32).toString('hex'),
    products: sim.products.map((p) => ({ name: p.name, url: p.url, token: p.token })), state: `sqlite:${path.join(dataDir, 'state.sqlite')}`, audit: `sqlite:${path.join(dataDir, 'support-audit.sqlite')}`
  });
  await api(`/api/v2/clients/${app.client_id}`, 'PATCH', { callbacks: [con.redirectUri] });
  return { con, staff };
}

/**
 * Runs the demo. Returns `{passed, failed, checks}`; `log` receives one line per step.
 * The monitor (dashboard, metrics) and the support console run beside the simulator; with
 * `keepOpen` (a terminal) everything stays up after the report until Ctrl-C.
 */
async function runDemo({ people = 60, log = console.log, port, deploy = 'a0deploy', keepOpen = false } = {}) {
  // The tenant gets trickle's code as a real one does: `a0deploy import` of dist/auth0, run as
  // its own CLI against the simulator's Management API; from then on the tenant runs what it got.
  if (deploy === 'a0deploy') log('deploying dist/auth0 with auth0-deploy-cli (a0deploy import) into the simulator…');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-demo-'));
  // The monitor first: the tenant's log stream and the Action's events go to it from the start.
  const { startMonitor } = require('../monitor/server');
  let simRef = null;
  const monitor = await startMonitor({ sampleMs: 1000, progress: async () => (simRef ? simProgress(simRef) : null) });
  const sim = await startSim({ people, port, deploy, dataDir, logStreamUrl: `${monitor.url}/log-stream`, deploySettings: { eventsUrl: `${monitor.url}/events` } });
  simRef = sim;
  let support = null;
  const checks = [];
  const expect = (name, ok, detail = '') => {
    checks.push({ name, ok: !!ok, detail });
    log(`${ok ? '✔' : '✖'} ${name}${detail ? ` — ${detail}` : ''}`);
  };
  if (deploy === 'a0deploy') {
    const d = await (await fetch(`${sim.tenant.url}/_sim/api/deployments`)).json();
    const action = d.actions.find((a) => a.name === 'trickle-post-login');
    expect('a0deploy import succeeded: the post-login Action is deployed and bound', /Import Successful/.test(sim.deployOutput || '') && action, action ? `version ${action.version}, secrets ${action.secrets.join(', ')}` : 'not bound');
    expect('  the trickle connection received login and get_user, import mode on, the demo app enabled',
      d.connection && d.connection.import_mode && ['login', 'get_user'].every((k) => d.connection.scripts.includes(k)) && d.connection.enabled_clients.includes('trickle-demo'), JSON.stringify(d.connection));
  }
  // Everyone enrolled with an authenticator app has it at hand: the secret the tenant enrolled
  // (from the login script's profile or the import) is the one their legacy product stored.
  const apps = new Map();
  const appOf = (email) => {
    const user = [...sim.tenant.state.users.values()].find((u) => u.email === String(email).trim().toLowerCase());
    const factor = ((user && user.mfa_factors) || []).find((f) => f && f.totp && f.totp.secret);
    if (!factor) return null;
    if (!apps.has(factor.totp.secret)) apps.set(factor.totp.secret, authenticatorApp(factor.totp.secret));
    return apps.get(factor.totp.secret);
  };
  const http = client(sim.tenant.url, { mfa: appOf });
  // walkMerge's answer to a challenge after /continue: the person's app types its code.
  const mergeMfa = (email) => ({
    mfa: async (html) => http.form('/u/mfa-otp-challenge', { state: (html.match(/name="state" value="([^"]+)"/) || [])[1], code: await appOf(email).code() })
  });
  const product = (name) => sim.byName[name];
  const linked = (name, id) => product(name).db.prepare('SELECT auth0_user_id FROM accounts WHERE id = ?').get(id).auth0_user_id;
  const setMode = (name, mode) => fetch(`${sim.tenant.url}/_sim/api/products/${name}/mode`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ mode }) });
  const single = (name, skip = 0) => sim.people.filter((p) => p.accounts.length === 1 && p.accounts[0].product === name)[skip];
  // Who plays which part: nobody plays two (a person signed in once is a tenant user, and the
  // login script is never asked about them again).
  const used = new Set();
  const take = (p) => { if (p) used.add(p); return p; };
  const products = (p) => new Set(p.accounts.map((a) => a.product));
  const need = (x, who) => { if (!x) throw new Error(`the ${people} seeded people include no ${who}: try more (--people 20 or more)`); return x; };
  try {
    log(`simulator up: tenant ${sim.tenant.url}, ${people} people across paste, collect and transfer`);
    support = await startDemoConsole(sim, dataDir);
    log(`monitor ${monitor.url} (dashboard ${monitor.url}/dashboard), support console ${support.con.url}`);
    // 1. Single-product logins, one per legacy password format.
    for (const name of ['paste', 'collect', 'transfer']) {
      const person = take(single(name));
      const r = await http.signIn(person.email, person.accounts[0].password);
      const code = codeOf(r.location);
      expect(`single-product login (${name}, ${product(name).format}) returns an authorization code`, r.status === 302 && code, r.location || `HTTP ${r.status}`);
      if (!code) continue;
      const tokens = await http.exchange(code);
      const claims = tokens.id_token ? await verifyIdToken(sim.tenant.url, tokens.id_token).catch(() => null) : null;
      expect(`  the id_token is signed (RS256, JWKS) for ${person.email}`, claims && claims.email === person.email.toLowerCase(), claims ? claims.sub : JSON.stringify(tokens));
      expect(`  ${name} was told the Auth0 id`, claims && linked(name, person.accounts[0].id) === claims.sub);
    }
    const secretOf = (a) => (product(a.product).db.prepare('SELECT totp_secret FROM accounts WHERE id = ?').get(a.id) || {}).totp_secret;
    const secretOfAccount = secretOf;
    // 1a. An existing user signs in with the social identity their product already trusted: the
    // identity proves the account, which was told this user, so the social identity joins it.
    const socialPerson = sim.people.find((p) => !used.has(p) && p.accounts.length === 1 && p.identities && p.identities.some((i) => i.provider === 'google-oauth2') && !secretOfAccount(p.accounts[0]));
    if (socialPerson) {
      take(socialPerson);
      const google = socialPerson.identities.find((i) => i.provider === 'google-oauth2');
      const first = await http.signIn(socialPerson.email, socialPerson.accounts[0].password);
      const firstClaims = codeOf(first.location) ? await verifyIdToken(sim.tenant.url, (await http.exchange(codeOf(first.location))).id_token).catch(() => null) : null;
      const viaGoogle = await socialSignIn(sim, 'google-oauth2', google);
      const code = viaGoogle.location && codeOf(viaGoogle.location);
      const claims = code ? await verifyIdToken(sim.tenant.url, (await http.exchange(code)).id_token).catch(() => null) : null;
      const user = firstClaims && sim.tenant.state.users.get(firstClaims.sub);
      expect(`an existing user (${socialPerson.accounts[0].product}, signed in with their password) then signs in with Google: the same tenant user, the Google identity linked into it`,
        firstClaims && claims && claims.sub === firstClaims.sub && user && user.identities.some((i) => i.provider === 'google-oauth2'),
        claims ? `${claims.sub}; identities ${user ? user.identities.map((i) => i.provider).join(', ') : '?'}` : viaGoogle.error || viaGoogle.location);
    }
    // 1b. Someone whose legacy product had enrolled an authenticator app keeps it: the login script
    // returns the factor, and the tenant asks for the app's code after the password.

    const withApp = take(need(sim.people.find((p) => !used.has(p) && p.accounts.length === 1 && secretOf(p.accounts[0])), 'single-product person with an authenticator app'));
    const phone = authenticatorApp(secretOf(withApp.accounts[0]));
    apps.set(phone.secret, phone);
    const asked = await http.signIn(withApp.email, withApp.accounts[0].password, { mfa: () => null });
    const askedOk = asked.status === 200 && !asked.location && isMfaPage(asked.body) && /Enter the code from your authenticator app/.test(asked.body);
    const near = [-1, 0, 1].map((d) => totp.generate(phone.secret, Date.now() + d * 30000));
    const wrongCode = ['000000', '111111', '222222', '333333'].find((c) => !near.includes(c));
    const refusedMfa = askedOk ? await http.answerMfa(asked.body, wrongCode) : { status: 0, body: '' };
    const refusedOk = refusedMfa.status === 401 && /role="alert">[^<]*not valid/.test(refusedMfa.body) && !codeOf(refusedMfa.location);
    const signedMfa = refusedOk ? await http.answerMfa(refusedMfa.body, await phone.code()) : {};
    expect(`a migrated person with an authenticator app is asked for a code; a wrong code is refused; the right one signs in (${withApp.accounts[0].product}, ${withApp.email})`,
      askedOk && refusedOk && codeOf(signedMfa.location),
      !askedOk ? `not asked: HTTP ${asked.status} ${asked.location || ''}` : !refusedOk ? `wrong code: HTTP ${refusedMfa.status}` : (signedMfa.location || `HTTP ${signedMfa.status}`));
    // 2. A person with accounts in several products reaches the merge redirect. Preferably one
    // whose products did not all verify the address: the merge proves the mailbox, which proves
    // only the accounts whose product verified it.
    const mixed = mixedPeople(sim);
    const plain = mergeablePeople(sim)[0];
    const pick = mixed.find((x) => products(x.person).size === 3) || mixed[0] || (plain && { person: plain, via: plain.accounts[0] });
    const multi = take(need(pick, 'person who reaches the merge service').person);
    const via = pick.via;
    const verifiedAccounts = multi.accounts.filter((a) => verifiedOf(sim, a));
    const unverifiedAccounts = multi.accounts.filter((a) => !verifiedOf(sim, a));
    const m = await http.signIn(multi.email, via.password);
    const merge = m.location && new URL(m.location);
    const session = merge && merge.searchParams.get('session_token');
    const claims = session ? JSON.parse(Buffer.from(session.split('.')[1], 'base64url').toString()) : {};
    expect(`multi-product login (${[...products(multi)].join(', ')}; signed in with ${via.product}) is sent to the merge service with a session token and the state`, merge && merge.pathname === '/merge' && session && merge.searchParams.get('state'), m.location || `HTTP ${m.status}`);
    const wanted = [...new Set(verifiedAccounts.filter((a) => a.product !== via.product).map((a) => a.product))].sort();
    expect('  the token names the unproven products its mailbox can prove (not the unverified ones), is for the merge service and lives ≤ 15 min',
      claims.aud === 'trickle-merge' && claims.exp - claims.iat <= 900 && Array.isArray(claims.unproven) && claims.unproven.length > 0 && JSON.stringify([...claims.unproven].sort()) === JSON.stringify(wanted),
      `${JSON.stringify(claims.unproven)}${unverifiedAccounts.length ? `; unverified: ${unverifiedAccounts.map((a) => a.product).join(', ')}` : ''}`);
    expect('  no product was told about unproven accounts', multi.accounts.every((a) => !linked(a.product, a.id) || a.product === via.product));
    if (session) {
      const walked = await walkMerge(sim, m.location, multi.email, 'one-new-password-for-all', mergeMfa(multi.email));
      expect('  the merge service mails a link, takes a new password and a sign-in with it, and sends the browser back', codeOf(walked.location), walked.error || walked.location);
      const user = [...sim.tenant.state.users.values()].find((u) => u.email === multi.email.toLowerCase());
      const accounts = (user && user.app_metadata.trickle && user.app_metadata.trickle.accounts) || [];
      const refOf = (a) => accounts.find((x) => x.product === a.product && x.id === a.id);
      expect('  the person is migrated with every verified account proven, and every unverified one still unproven',
        user && user.app_metadata.migrated === true && accounts.length === multi.accounts.length &&
        verifiedAccounts.every((a) => refOf(a) && refOf(a).proof) && unverifiedAccounts.every((a) => refOf(a) && !refOf(a).proof),
        JSON.stringify(accounts.map((x) => `${x.product}:${x.proof || 'unproven'}`)));
      expect(`  after the merge every verified account's product has the Auth0 id${unverifiedAccounts.length ? `, and ${unverifiedAccounts.map((a) => a.product).join(', ')} (never verified the address) was not told` : ''}`,
        user && verifiedAccounts.every((a) => linked(a.product, a.id) === user.user_id) && unverifiedAccounts.every((a) => !linked(a.product, a.id)));
      const after = await http.signIn(multi.email, 'one-new-password-for-all');
      expect('  the next login with the new password goes straight to the app', codeOf(after.location), after.location || `HTTP ${after.status}`);
    }
    // 3. A product outage during fan-out, and its recovery at the next login.
    const outage = take(single('paste', 1));
    await setMode('paste', 'readonly');
    const o1 = await http.signIn(outage.email, outage.accounts[0].password);
    expect('with paste unable to write, the login still succeeds', codeOf(o1.location), o1.location || `HTTP ${o1.status}`);
    expect('  paste has not stored the Auth0 id yet', !linked('paste', outage.accounts[0].id));
    await setMode('paste', 'up');
    const o2 = await http.signIn(outage.email, outage.accounts[0].password);
    expect('after recovery the next login completes the fan-out', codeOf(o2.location) && linked('paste', outage.accounts[0].id), linked('paste', outage.accounts[0].id) || 'not linked');
    // 4. A wrong password.
    const w = await http.signIn(take(single('collect', 1)).email, 'not-the-password');
    expect('a wrong password gets the login page with an error and no code', w.status === 401 && /Wrong email or password/.test(w.body) && !codeOf(w.location));
    // 5. A password reset of a person not yet migrated: the mail, the link, a new password, a login.
    // Someone who has not signed in yet, with accounts in several products: the reset proves the
    // inbox, so every account whose product verified the address is proven at once; one whose
    // product never verified it is not (anyone could have typed the address there).
    const unusedMulti = sim.people.filter((p) => !used.has(p) && products(p).size > 1);
    const resetPerson = take(need(unusedMulti.find((p) => p.accounts.some((a) => !verifiedOf(sim, a)) && p.accounts.some((a) => verifiedOf(sim, a))) || unusedMulti[0], 'other person with accounts in several products'));
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
      const verified = resetPerson.accounts.filter((a) => verifiedOf(sim, a));
      const unverified = resetPerson.accounts.filter((a) => !verifiedOf(sim, a));
      // An account whose product never verified the address is offered at the merge by its own
      // legacy password only: the person skips it first, so the reset alone is seen to prove it not.
      const offered = after.location && new URL(after.location).pathname === '/merge';
      const skipped = offered ? await accountOffers(sim, after.location, []) : { location: after.location };
      expect(`  the person signs in with the new password, the verified accounts proven by the reset${offered ? ' (the merge offers the unverified account by its own password; skipped)' : ''}`, codeOf(skipped.location), skipped.location || `HTTP ${after.status}`);
      expect(`  every verified account's product was told the Auth0 id${unverified.length ? `, and ${unverified.map((a) => a.product).join(', ')} (never verified the address) was not` : ''}`,
        verified.every((a) => linked(a.product, a.id)) && unverified.every((a) => !linked(a.product, a.id)));
      if (unverified.length) {
        // The next sign-in offers it again; its own legacy password brings it in.
        const next = await http.signIn(resetPerson.email, 'a-brand-new-password');
        const brought = next.location && new URL(next.location).pathname === '/merge' ? await accountOffers(sim, next.location, unverified) : { location: next.location, proven: [] };
        expect(`  at the next sign-in the merge offers ${unverified.map((a) => a.product).join(', ')} by its own legacy password: typed, it is proven and told`,
          codeOf(brought.location) && brought.proven.length === unverified.length && unverified.every((a) => linked(a.product, a.id)), JSON.stringify(brought.proven));
      }
      const old = await http.signIn(resetPerson.email, resetPerson.accounts[0].password);
      expect('  the old legacy password no longer works', old.status === 401);
    }
    // 6. A pre-registered attacker: someone opened an account in one product with the victim's
    // address (the product never verified it) before the victim ever signed in at the tenant. The
    // attacker's own password matches that account only, while the victim's verified accounts hold
    // the address elsewhere: the tenant user is not created, and the login page asks for a reset
    // (which proves the mailbox). The victim then signs in as usual.
    const clean = (p) => !used.has(p) && p.accounts.every((a) => verifiedOf(sim, a)) && products(p).size < PRODUCTS.length;
    const victim = take(need(sim.people.find((p) => clean(p) && products(p).size > 1) || sim.people.find(clean), 'other person whose accounts are all verified'));
    const where = PRODUCTS.find((n) => !products(victim).has(n));
    const squat = plantAccount(sim, where, { id: `${where[0]}-squatter-1`, email: victim.email, name: 'Not The Owner', password: 'squatters-own-password-1' });
    const tenantUser = () => [...sim.tenant.state.users.values()].find((u) => u.email === victim.email.toLowerCase());
    const refused = await http.signIn(victim.email, squat.password);
    expect(`a pre-registered attacker (an unverified ${where} account with ${victim.email}, the victim verified in ${[...products(victim)].join(', ')}) is refused: no code, no tenant user, the login page asks for a password reset`,
      !codeOf(refused.location) && refused.status !== 302 && /role="alert">[^<]*reset your password/i.test(refused.body) && !tenantUser() && !linked(where, squat.id),
      `HTTP ${refused.status}: ${((refused.body || '').match(/role="alert">([^<]*)/) || [])[1] || 'no message'}${tenantUser() ? '; a tenant user was created' : ''}`);
    const own = await http.signIn(victim.email, victim.accounts[0].password);
    let ownCode = codeOf(own.location);
    const ownMerge = own.location && new URL(own.location).pathname === '/merge';
    if (ownMerge) ownCode = codeOf((await walkMerge(sim, own.location, victim.email, 'the-victims-own-new-password', mergeMfa(victim.email))).location);
    const victimUser = tenantUser();
    const squatRef = victimUser && ((victimUser.app_metadata.trickle && victimUser.app_metadata.trickle.accounts) || []).find((x) => x.product === where && x.id === squat.id);
    expect(`  then the victim signs in with their own password${ownMerge ? ' (and merges)' : ''}: every one of their products is told the Auth0 id, the attacker's ${where} account is neither proven nor told`,
      ownCode && victimUser && victim.accounts.every((a) => linked(a.product, a.id) === victimUser.user_id) && !linked(where, squat.id) && !(squatRef && squatRef.proof),
      own.location || `HTTP ${own.status}`);
    // 7. Finishing: the dormant people are imported in bulk (prelink, export, import, backfill,
    // the trickle command run as its own process), `trickle finish` checks that nobody is left
    // and writes the post-migration directory, deploy-cli deploys it (import mode off, no lazy
    // scripts), and people still sign in — from the tenant's own store only.
    const dormant = take(sim.people.find((p) => !used.has(p) && p.accounts.length === 1 && !tenantUserOf(sim, p.email)));
    const cfg = {
      products: PRODUCTS.map((name) => ({ name, db: `sqlite:${path.join(dataDir, `${name}.sqlite`)}`, format: FORMATS[name].adapter })),
      state: `sqlite:${path.join(dataDir, 'state.sqlite')}`,
      tenant: { url: sim.tenant.url, clientId: 'trickle-m2m', clientSecret: 'm2m-secret', connectionId: 'con_trickle' }
    };
    const configFile = path.join(dataDir, 'trickle.json');
    fs.writeFileSync(configFile, JSON.stringify(cfg, null, 2));
    const out = path.join(dataDir, 'export');
    const finished = path.join(dataDir, 'finished');
    const bulk = [];
    for (const args of [['prelink'], ['export', '--out', out], ['import', '--out', out], ['backfill']]) {
      const r = await trickle([...args, '--config', configFile]);
      bulk.push(`${args[0]} ${r.code === 0 ? 'ok' : `exit ${r.code}`}`);
      if (r.code !== 0) throw new Error(`trickle ${args[0]} failed: ${(r.stdout + r.stderr).slice(-1500)}`);
    }
    expect('the dormant people are imported in bulk through the trickle command', dormant && tenantUserOf(sim, dormant.email), bulk.join(', '));
    const fin = await trickle(['finish', '--config', configFile, '--out', finished]);
    expect('  trickle finish finds nobody missing and writes the post-migration directory', fin.code === 0 && fs.existsSync(finished), (fin.stdout.match(/\d+ missing[^\n]*/) || [fin.stderr.slice(-300)])[0]);
    if (deploy === 'a0deploy') {
      const { deployWithCli } = require('./deploy');
      await deployWithCli({ tenant: sim.tenant, input: finished, mappings: sim.mappings });
      const d = await (await fetch(`${sim.tenant.url}/_sim/api/deployments`)).json();
      expect('  a0deploy import of it: the connection is out of import mode, with no lazy scripts', d.connection && !d.connection.import_mode && d.connection.scripts.length === 0, JSON.stringify(d.connection));
    }
    const after = await http.signIn(dormant.email, dormant.accounts[0].password);
    const stillLazy = await http.signIn(victim.email, ownMerge ? 'the-victims-own-new-password' : victim.accounts[0].password);
    const nobody = await http.signIn('never-had-an-account@example.org', 'whatever-password-1');
    expect('  after finishing, a bulk-imported person signs in with their legacy password, a lazily migrated one with theirs, and an unknown address is refused',
      codeOf(after.location) && codeOf(stillLazy.location) && nobody.status === 401, `${after.location || after.status} / ${stillLazy.location || stillLazy.status} / ${nobody.status}`);
    // 8. Operating it: the monitor saw the demo (the Action's events, the tenant's log stream,
    // the progress figures) and the support console finds a migrated person for staff.
    await sim.logStream.flush();
    await new Promise((r) => setTimeout(r, 300));
    await monitor.sample();
    const series = await (await fetch(`${monitor.url}/dashboard/series`)).json();
    const last = (k) => series.series[k][series.series[k].length - 1];
    expect('the monitor\'s dashboard shows the demo: fan-out and merges from the Action\'s events, logins from the tenant\'s log stream, the progress',
      last('fanout_acknowledged') > 0 && last('merges_started') > 0 && last('tenant_login_success') > 0 && series.progress && series.progress.lazy > 0 && series.progress.imported > 0,
      `fan-out acknowledged ${last('fanout_acknowledged')}, failed ${last('fanout_failed')}, merges started ${last('merges_started')}, logins ${last('tenant_login_success')}, progress ${JSON.stringify(series.progress)}`);
    const seen = await consoleFinds(sim, support, sim.people.find((p) => tenantUserOf(sim, p.email)));
    expect('  the support console signs staff in through the tenant (PKCE) and finds a migrated person', seen.ok, seen.detail);
  } catch (e) {
    expect('the demo ran to the end', false, e.stack || e.message);
  } finally {
    const failedSoFar = checks.filter((c) => !c.ok).length;
    log(`\n${checks.length - failedSoFar} passed, ${failedSoFar} failed`);
    log(`\nmigration dashboard  ${monitor.url}/dashboard   (Prometheus metrics ${monitor.url}/metrics)`);
    if (support) log(`support console      ${support.con.url}   (sign in as ${support.staff.email} / ${support.staff.password})`);
    log(`simulator            ${sim.tenant.url}/_sim`);
    if (keepOpen) {
      log('Everything stays up: press Ctrl-C to stop (the demo\'s databases are removed then).');
      await new Promise((resolve) => { process.once('SIGINT', resolve); process.once('SIGTERM', resolve); });
    }
    if (support) await support.con.close();
    await sim.close();
    await monitor.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  const failed = checks.filter((c) => !c.ok).length;
  return { passed: checks.length - failed, failed, checks };
}

module.exports = { runDemo, walkMerge, backToTenant, accountOffers, browser, hostBrowser, socialSignIn, waitForMail, verifiedOf, mergeablePeople, mixedPeople, plantAccount, authenticatorApp, isMfaPage };
