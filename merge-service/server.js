// The merge service: the page the post-login chain redirects to. It proves that the person owns
// the mailbox (a one-time link), has them choose one new password (set on the tenant through the
// Management API) and sign in with it once, then sends the browser back to the tenant's
// /continue with a signed result. "Skip for now" is always possible; nobody is locked out.
'use strict';
const crypto = require('crypto');
const Fastify = require('fastify');
const nodemailer = require('nodemailer');
const { loadCore } = require('../js-shim/node');
const { trickleRetry } = require('../js-shim/retry');
const { openStore } = require('./store');
const { language, t } = require('./messages');
const { html, raw, parseCookies, setCookie, randomToken, csrfToken, csrfOk, safeEqual, csp, securityHeaders } = require('../lib/web');

const DEFAULTS = {
  port: 0, host: '127.0.0.1', linkTtlSeconds: 1800, sessionTtlSeconds: 3600, proofWindowSeconds: 3600,
  mailsPerPerson: 3, mailsPerPersonWindowSeconds: 900, mailsPerIp: 10, mailsPerIpWindowSeconds: 3600,
  minPasswordLength: 10, maxPasswordLength: 128, resultTtlSeconds: 300, mailAnswerMs: 1000, from: 'no-reply@merge.trickle.test',
  // The product APIs ([{name, url, token}], TRICKLE_PRODUCTS): where an account offered by its
  // own password is looked up; without them no such account is offered. Tries per account.
  products: [], accountPasswordTries: 5, productTimeoutMs: 4000
};
const ENV_NAMES = {
  tenantUrl: 'MERGE_TENANT_URL', tokenSecret: 'TRICKLE_TOKEN_SECRET', store: 'MERGE_STORE', smtpUrl: 'MERGE_SMTP_URL',
  managementClientId: 'MERGE_MGMT_CLIENT_ID', managementClientSecret: 'MERGE_MGMT_CLIENT_SECRET',
  loginClientId: 'MERGE_LOGIN_CLIENT_ID', loginClientSecret: 'MERGE_LOGIN_CLIENT_SECRET'
};
const COMMON = new Set(['password123', 'password1234', '1234567890', 'qwertyuiop', 'iloveyou123', 'letmein1234', 'welcome123', 'passw0rd123']);

const sha256 = (s) => crypto.createHash('sha256').update(String(s)).digest('hex');
// The pages' own inline style, forms posted only here, nothing else; a page may widen form-action
// and add a script by its nonce (the auto-submitting way back to the tenant).
const pagePolicy = ({ formAction, nonce } = {}) => csp({
  'style-src': "'unsafe-inline'", 'form-action': formAction ? ["'self'", formAction] : "'self'", 'script-src': nonce && `'nonce-${nonce}'`
});

/** `ann.lee@example.com` → `a•••e@example.com`. */
function maskEmail(email) {
  const [local, domain] = String(email || '').split('@');
  if (!domain) return '•••';
  return `${local.length <= 2 ? local[0] || '' : local[0] + '•••' + local[local.length - 1]}@${domain}`;
}

/**
 * Starts the merge service. `config`: {port, publicUrl, tenantUrl, tokenSecret, store (URL),
 * smtpUrl, managementClientId/Secret, loginClientId/Secret, …DEFAULTS}. Returns `{url, close}`.
 */
async function startMergeService(config) {
  const c = { ...DEFAULTS };
  for (const [k, v] of Object.entries(config || {})) if (v !== undefined && v !== null && !Number.isNaN(v)) c[k] = v;
  for (const k of ['tenantUrl', 'tokenSecret', 'store', 'smtpUrl', 'managementClientId', 'managementClientSecret', 'loginClientId', 'loginClientSecret']) {
    if (!c[k]) throw new Error(`merge service: ${k} is not configured (${ENV_NAMES[k]})`);
  }
  if (Buffer.byteLength(c.tokenSecret) < 32) throw new Error('merge service: the token secret must be at least 32 bytes');
  const core = loadCore('full');
  const store = await openStore(c.store);
  const mailer = nodemailer.createTransport(c.smtpUrl);
  const app = Fastify({ logger: false, trustProxy: !!c.trustProxy });
  await app.register(require('@fastify/formbody'));
  let publicUrl = c.publicUrl;
  const secure = () => publicUrl.startsWith('https://');
  const now = () => Date.now();

  // Every answer, pages and errors alike; a page's own CSP (set by `send`) is kept.
  app.addHook('onSend', async (req, reply, payload) => {
    securityHeaders(reply, { csp: pagePolicy(), referrer: 'no-referrer', coop: 'same-origin', hsts: secure() && 31536000 });
    return payload;
  });

  // Whatever fails (a body that does not parse, a store or tenant that errs) answers with a plain
  // page and a stable message: the status of a refused request (4xx) is kept, nothing of the
  // error's text is shown, and the service logs nothing.
  app.setErrorHandler((err, req, reply) => {
    const code = Number(err && err.statusCode);
    const status = code >= 400 && code < 500 ? code : 500;
    const lang = language(req.headers['accept-language']);
    return send(reply, problem(lang, status < 500 ? 'badRequest' : 'tenantDown', status));
  });
  app.setNotFoundHandler((req, reply) => send(reply, problem(language(req.headers['accept-language']), 'notFound', 404)));

  function page(lang, title, body, { status = 200, formAction, nonce } = {}) {
    return { status, csp: pagePolicy({ formAction, nonce }), html: html`<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><title>${title}</title><meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;padding:2rem 2.5rem;border-radius:10px;box-shadow:0 2px 12px #0002;width:24rem}h1{font-size:1.3rem;margin-top:0}
label{display:block;margin:.8rem 0 .2rem;font-size:.9rem}input[type=password]{width:100%;padding:.55rem;box-sizing:border-box;border:1px solid #bbb;border-radius:6px}
button{margin-top:1rem;width:100%;padding:.65rem;border:0;border-radius:6px;background:#3b5bdb;color:#fff;font-size:1rem;cursor:pointer}
button.secondary{background:#e9ecef;color:#222}.error{background:#ffe3e3;color:#a00;padding:.5rem .7rem;border-radius:6px}.note{color:#555;font-size:.85rem}</style></head>
<body><main>${body}</main></body></html>` };
  }
  const send = (reply, p) => reply.code(p.status).header('content-security-policy', p.csp).type('text/html').send(String(p.html));

  // Over https the cookies carry the __Host- prefix: a browser takes such a cookie only from this
  // very host (Secure, Path=/, no Domain), so a sibling subdomain cannot plant one beside it
  // (cookie tossing) and the pages read only these. Over http the duplicate rule of `cookies`
  // is what stands against a planted one.
  const cookieName = (base) => (secure() ? `__Host-${base}` : base);
  const jar = (req) => {
    const all = parseCookies(req);
    return { mbrowser: all[cookieName('mbrowser')], msid: all[cookieName('msid')] };
  };
  /** `pairs`: [name, value, maxAge (seconds; none for a session cookie)]. */
  function setCookies(reply, pairs) {
    reply.header('set-cookie', pairs.map(([k, v, maxAge]) => setCookie(cookieName(k), v, { maxAge, secure: secure() })));
  }

  /** The browser's long-lived id: a link, and a session token, only work in the browser that used them first. */
  function browserIdOf(req) {
    const existing = jar(req).mbrowser;
    return existing && /^[A-Za-z0-9_-]{20,64}$/.test(existing) ? existing : randomToken(18);
  }

  async function currentSession(req) {
    const sid = jar(req).msid;
    const s = typeof sid === 'string' && /^[A-Za-z0-9_-]{20,64}$/.test(sid) ? await store.session(sid) : null;
    return s && s.expires_at > now() ? s : null;
  }

  /** A form field: a string, or '' for anything else (a list, an object, a missing or odd body). */
  function field(req, name) {
    const body = req.body;
    if (!body || typeof body !== 'object' || Array.isArray(body) || !Object.prototype.hasOwnProperty.call(body, name)) return '';
    return typeof body[name] === 'string' ? body[name] : '';
  }

  function checkCsrf(req, session) {
    return !!session && csrfOk(field(req, 'csrf'), session.csrf);
  }

  // --- the tenant ---
  let mgmtToken = null;
  // Only a 429 is tried again (js-shim/retry.js), briefly: someone is waiting for the page.
  function tenantFetch(path, init, attempts = 4) {
    return trickleRetry(() => fetch(c.tenantUrl + path, { ...init, signal: AbortSignal.timeout(8000) }), { attempts, base: 500, cap: 5000, only429: true });
  }
  async function managementToken() {
    if (mgmtToken && mgmtToken.exp > now() + 60000) return mgmtToken.value;
    const res = await tenantFetch('/oauth/token', { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: c.managementClientId, client_secret: c.managementClientSecret, audience: c.managementAudience || `${c.tenantUrl}/api/v2/` }) });
    if (!res.ok) throw new Error(`management token: HTTP ${res.status}`);
    const body = await res.json();
    mgmtToken = { value: body.access_token, exp: now() + (body.expires_in || 3600) * 1000 };
    return mgmtToken.value;
  }
  async function setTenantPassword(sub, password) {
    const res = await tenantFetch(`/api/v2/users/${encodeURIComponent(sub)}`, { method: 'PATCH', headers: { authorization: `Bearer ${await managementToken()}`, 'content-type': 'application/json' }, body: JSON.stringify({ password }) });
    if (!res.ok) throw new Error(`set password: HTTP ${res.status}`);
  }
  async function checkTenantPassword(email, password) {
    const res = await tenantFetch('/oauth/token', { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'password', username: email, password, client_id: c.loginClientId, client_secret: c.loginClientSecret, scope: 'openid' }) });
    if (res.ok) return true;
    // mfa_required is only answered once the password is right; the second factor is asked by
    // the tenant's hosted login when the browser goes back to /continue, before any code is issued.
    if (res.status === 403) return (await res.json().catch(() => ({}))).error === 'mfa_required';
    if (res.status === 401) return false;
    throw new Error(`sign-in check: HTTP ${res.status}`);
  }

  function policy(lang, password, repeat, email) {
    if (typeof password !== 'string' || password.length < c.minPasswordLength) return t(lang, 'policyShort', { min: c.minPasswordLength });
    if (password.length > c.maxPasswordLength) return t(lang, 'policyLong', { max: c.maxPasswordLength });
    if (password !== repeat) return t(lang, 'policyMismatch');
    const local = String(email || '').split('@')[0].toLowerCase();
    if (local.length >= 3 && password.toLowerCase().includes(local)) return t(lang, 'policyEmail');
    if (COMMON.has(password.toLowerCase()) || new Set(password).size < 4) return t(lang, 'policyCommon');
    return null;
  }

  // --- the pages of each step ---
  const hidden = (s) => html`<input type="hidden" name="csrf" value="${s.csrf}">`;
  const signInAgain = (lang) => html`<p>${t(lang, 'signInAgain')}</p>`;
  function startPage(lang, s, offers = [], note = {}) {
    const mailbox = s.unproven.length
      ? html`<p>${t(lang, 'intro', { products: s.products.join(', ') })}</p>
<p>${t(lang, 'address', { email: maskEmail(s.email) })}</p>
<form method="post" action="/merge/send">${hidden(s)}<button type="submit">${t(lang, 'send')}</button></form>` : '';
    return page(lang, t(lang, 'title'), html`<h1>${t(lang, 'title')}</h1>${mailbox}${accountsSection(lang, s, offers, note)}
<form method="post" action="/merge/skip">${hidden(s)}<button type="submit" class="secondary">${t(lang, s.unproven.length ? 'skip' : 'continue')}</button></form>
<p class="note">${t(lang, 'skipNote')}</p>`, { status: note.status || (note.error ? 401 : 200) });
  }
  /** Accounts whose product never confirmed the address: each proven by its own password. */
  function accountsSection(lang, s, offers, note) {
    if (!offers.length) return '';
    const rows = offers.map((o) => {
      const product = productOf(o.account);
      const name = product ? product.name : o.account.split(':')[0];
      if (o.proven_at) return html`<p class="done">${t(lang, 'accountProven', { product: name })}</p>`;
      const left = c.accountPasswordTries - o.attempts;
      const error = note.account === o.account && note.error ? html`<p class="error" role="alert">${note.error}</p>` : '';
      if (left <= 0) return html`<p>${t(lang, 'accountTries')}</p>`;
      return html`${error}<form method="post" action="/merge/account">${hidden(s)}<input type="hidden" name="account" value="${o.account}">
<label for="pw-${o.account}">${t(lang, 'accountPassword', { product: name })}</label><input id="pw-${o.account}" name="password" type="password" autocomplete="current-password" required>
<button type="submit">${t(lang, 'proveAccount')}</button></form>`;
    });
    // Each row is html`…`, so their markup joined (a line between two, as the page always had) is too.
    return html`<h2>${t(lang, 'accountsTitle')}</h2><p>${t(lang, 'accountsIntro')}</p>${raw(rows.join('\n'))}`;
  }
  function sentPage(lang, s) {
    return page(lang, t(lang, 'sentTitle'), html`<h1>${t(lang, 'sentTitle')}</h1><p>${t(lang, 'sent', { email: maskEmail(s.email) })}</p>
<form method="post" action="/merge/send">${hidden(s)}<button type="submit" class="secondary">${t(lang, 'resend')}</button></form>
<form method="post" action="/merge/skip">${hidden(s)}<button type="submit" class="secondary">${t(lang, 'skip')}</button></form>`);
  }
  function passwordPage(lang, s, error) {
    return page(lang, t(lang, 'passwordTitle'), html`<h1>${t(lang, 'passwordTitle')}</h1><p>${t(lang, 'passwordIntro')}</p>${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<form method="post" action="/merge/password">${hidden(s)}<label for="password">${t(lang, 'newPassword')}</label><input id="password" name="password" type="password" autocomplete="new-password" required>
<label for="repeat">${t(lang, 'repeatPassword')}</label><input id="repeat" name="repeat" type="password" autocomplete="new-password" required>
<button type="submit">${t(lang, 'setPassword')}</button></form>
<form method="post" action="/merge/skip">${hidden(s)}<button type="submit" class="secondary">${t(lang, 'skip')}</button></form>`, { status: error ? 400 : 200 });
  }
  function signinPage(lang, s, error) {
    return page(lang, t(lang, 'signinTitle'), html`<h1>${t(lang, 'signinTitle')}</h1><p>${t(lang, 'signinIntro')}</p>${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<form method="post" action="/merge/signin">${hidden(s)}<label for="password">${t(lang, 'password')}</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">${t(lang, 'signin')}</button></form>
<form method="post" action="/merge/skip">${hidden(s)}<button type="submit" class="secondary">${t(lang, 'skip')}</button></form>`, { status: error ? 401 : 200 });
  }
  function problem(lang, key, status, extra = '') {
    return page(lang, t(lang, 'title'), html`<h1>${t(lang, 'title')}</h1><p class="error" role="alert">${t(lang, key)}</p>${extra}`, { status });
  }

  /**
   * What this merge session has proven. A proof belongs to the session (one login, one browser)
   * that made it: another session of the same Auth0 user, in this browser or another, starts
   * again at the mailbox.
   */
  async function proofOf(s) {
    const p = await store.proof(s.id);
    const inbox = !!p.inbox_proven_at && now() - p.inbox_proven_at <= c.proofWindowSeconds * 1000;
    return { inbox, password: inbox && !!p.password_set_at && p.password_set_at >= p.inbox_proven_at };
  }

  /** Where the person is: mail not yet proven, password not yet set, or the sign-in check. */
  async function stepPage(lang, s, note = {}) {
    const p = await proofOf(s);
    const offers = await store.passwordOffers(s.id);
    // Nothing for the mailbox: only the accounts to prove by their own passwords.
    if (!p.inbox || !s.unproven.length) return startPage(lang, s, offers, note);
    if (socialSub(s.sub)) return startPage(lang, s, offers, note);
    if (!p.password) return passwordPage(lang, s);
    return signinPage(lang, s);
  }

  /** Back to the tenant: an auto-submitting POST of the signed result to /continue. */
  async function finish(reply, lang, s, outcome) {
    const iat = Math.floor(now() / 1000);
    const passwords = (await store.passwordOffers(s.id)).filter((o) => o.proven_at).map((o) => o.account);
    const claims = { iss: 'trickle-merge', aud: 'trickle', sub: s.sub, state: s.state, jti: s.jti, outcome, iat, exp: iat + c.resultTtlSeconds, ...(passwords.length ? { passwords } : {}) };
    const signed = core.call('sign_token', { claims, secret: c.tokenSecret });
    if (signed.outcome !== 'ok') return send(reply, problem(lang, 'tenantDown', 500));
    await store.endSession(s.id);
    const nonce = randomToken(12);
    const action = `${c.tenantUrl}/continue?state=${encodeURIComponent(s.state)}`;
    setCookies(reply, [['msid', '', 1]]);
    return send(reply, page(lang, t(lang, 'finishing'), html`<h1>${t(lang, 'finishing')}</h1>
<form id="back" method="post" action="${action}"><input type="hidden" name="session_token" value="${signed.token}"><button type="submit">${t(lang, 'continue')}</button></form>
<script nonce="${nonce}">document.getElementById('back').submit();</script>`, { formAction: new URL(c.tenantUrl).origin, nonce }));
  }

  /** The claims the store keeps, of the types and sizes its columns hold. */
  function validClaims(claims) {
    const str = (v, max) => typeof v === 'string' && v.length > 0 && v.length <= max;
    return str(claims.sub, 255) && str(claims.jti, 128) && (claims.email == null || str(claims.email, 320)) && Number.isFinite(Number(claims.exp));
  }

  app.get('/merge', async (req, reply) => {
    const lang = language(req.headers['accept-language']);
    const q = req.query || {};
    const token = typeof q.session_token === 'string' ? q.session_token : '';
    const state = typeof q.state === 'string' ? q.state : '';
    let claims = null;
    try {
      const unverified = JSON.parse(Buffer.from(token.split('.')[1] || '', 'base64url').toString());
      const v = core.call('verify_token', { token, secret: c.tokenSecret, iss: 'trickle', aud: 'trickle-merge', sub: String(unverified.sub || ''), jti: String(unverified.jti || ''), now: Math.floor(now() / 1000) });
      if (v.outcome === 'ok') claims = v.claims;
    } catch (_) {
      claims = null;
    }
    if (!claims || !state || state.length > 512 || !validClaims(claims)) return send(reply, problem(lang, 'badToken', 400, signInAgain(lang)));
    // One session token, one browser, one merge session: the first browser to open it is bound
    // to its jti; that browser opening it again resumes the same session, any other is refused.
    const browser = browserIdOf(req);
    const sid = randomToken(24);
    const bound = await store.claimToken({ jti: claims.jti, browser, session_id: sid, created_at: now(), expires_at: Number(claims.exp) * 1000 });
    if (!bound || !safeEqual(bound.browser, browser)) {
      setCookies(reply, [['mbrowser', browser, 365 * 86400]]);
      return send(reply, problem(lang, 'tokenOtherBrowser', 403, signInAgain(lang)));
    }
    if (bound.session_id !== sid) {
      const existing = await store.session(bound.session_id);
      if (!existing || existing.expires_at <= now() || existing.state !== state) {
        setCookies(reply, [['mbrowser', browser, 365 * 86400]]);
        return send(reply, problem(lang, 'badToken', 400, signInAgain(lang)));
      }
      setCookies(reply, [['mbrowser', browser, 365 * 86400], ['msid', existing.id]]);
      return send(reply, await stepPage(lang, existing));
    }
    setCookies(reply, [['mbrowser', browser, 365 * 86400], ['msid', sid]]);
    // Accounts offered by their own password: only of products this service can ask.
    const offered = (Array.isArray(claims.passwords) ? claims.passwords : [])
      .filter((k) => typeof k === 'string' && k.length <= 255 && productOf(k) !== null).slice(0, 32);
    const s = {
      id: sid, browser, sub: claims.sub, email: claims.email, products: Array.isArray(claims.products) ? claims.products : [],
      unproven: Array.isArray(claims.unproven) ? claims.unproven : [], jti: claims.jti, state, csrf: csrfToken(), created_at: now(), expires_at: now() + c.sessionTtlSeconds * 1000
    };
    await store.createSession(s);
    await store.offerPasswords(s.id, offered);
    return send(reply, await stepPage(lang, s));
  });

  /** The configured product of an offered account (`product:id`), or null. */
  function productOf(key) {
    const i = key.indexOf(':');
    if (i <= 0 || i === key.length - 1) return null;
    // A list, or a function giving the current one (the simulator follows what was deployed).
    const list = typeof c.products === 'function' ? c.products() : c.products;
    return (Array.isArray(list) ? list : []).find((p) => p && p.name === key.slice(0, i)) || null;
  }

  /**
   * The account's own legacy password, checked: the product is asked for the session's address
   * (as the login script asks), the account picked by its id, its hash verified by the core.
   * Resolves 'match', 'mismatch' or 'unavailable'.
   */
  async function accountPasswordMatches(s, key, password) {
    const product = productOf(key);
    const id = key.slice(key.indexOf(':') + 1);
    let accounts;
    try {
      const res = await fetch(`${product.url.replace(/\/+$/, '')}/trickle/accounts?email=${encodeURIComponent(s.email)}`, {
        headers: { authorization: `Bearer ${product.token}` }, signal: AbortSignal.timeout(c.productTimeoutMs)
      });
      if (res.status === 404) return 'mismatch';
      if (!res.ok) return 'unavailable';
      accounts = (await res.json()).accounts;
    } catch (_) {
      return 'unavailable';
    }
    const account = Array.isArray(accounts) && accounts.find((a) => a && String(a.id) === id);
    if (!account || !account.password) return 'mismatch';
    const r = core.call('verify_password', { descriptor: account.password, password });
    return r.outcome === 'match' ? 'match' : 'mismatch';
  }

  app.post('/merge/account', async (req, reply) => {
    const lang = language(req.headers['accept-language']);
    const s = await currentSession(req);
    if (!s) return send(reply, problem(lang, 'badSession', 400, signInAgain(lang)));
    if (!checkCsrf(req, s)) return send(reply, problem(lang, 'csrf', 403));
    const key = field(req, 'account');
    const password = field(req, 'password');
    const offer = (await store.passwordOffers(s.id)).find((o) => o.account === key);
    if (!offer || offer.proven_at) return send(reply, await stepPage(lang, s));
    if (!password || password.length > c.maxPasswordLength) return send(reply, await stepPage(lang, s, { account: key, error: t(lang, 'accountWrong', { product: productOf(key).name }) }));
    // The try is counted before the password is checked: parallel guesses cannot exceed it.
    if (!(await store.takePasswordTry(s.id, key, c.accountPasswordTries))) return send(reply, await stepPage(lang, s, { account: key, error: t(lang, 'accountTries'), status: 429 }));
    const r = await accountPasswordMatches(s, key, password);
    if (r === 'unavailable') return send(reply, await stepPage(lang, s, { account: key, error: t(lang, 'accountUnavailable'), status: 503 }));
    if (r !== 'match') return send(reply, await stepPage(lang, s, { account: key, error: t(lang, 'accountWrong', { product: productOf(key).name }), status: 401 }));
    await store.markAccountProven(s.id, key, now());
    return send(reply, await stepPage(lang, s));
  });

  /**
   * The address a mail may go to: the session's address exactly as the one canonical-address
   * function of the core gives it back, and nothing a mail parser could read as more than one
   * address or as a display name (`a,b@x.com` must never become `b@x.com`).
   */
  function mailbox(email) {
    if (typeof email !== 'string') return null;
    const n = core.call('normalize_email', { email });
    if (!n || n.outcome !== 'ok' || n.email !== email) return null;
    if (/[,;<>()[\]\\":\s]/.test(email)) return null;
    return email;
  }

  /**
   * Sends the link mail. Resolves to 'sent', 'failed' (the SMTP server refused it; its words are
   * never shown) or 'pending' (still under way when the answer is due; it goes on in the
   * background and its link is retired should it fail).
   */
  async function mailLink(s, lang, address, hash, url) {
    const sending = mailer.sendMail({
      from: c.from, to: { name: '', address }, envelope: { from: c.from, to: [address] },
      subject: t(lang, 'mailSubject'), text: t(lang, 'mailBody', { products: s.products.join(', '), link: url })
    }).then(() => 'sent', async () => {
      await store.retireLink(hash, now()).catch(() => {});
      return 'failed';
    });
    let timer;
    const due = new Promise((r) => { timer = setTimeout(() => r('pending'), c.mailAnswerMs); });
    const outcome = await Promise.race([sending, due]);
    clearTimeout(timer);
    return outcome;
  }

  // Every answer of /merge/send past the form check takes the same time (mailAnswerMs): how long
  // the SMTP server took, whether it accepted the mail, or whether a limit was reached cannot be
  // read from the timing, only from the page.
  app.post('/merge/send', async (req, reply) => {
    const lang = language(req.headers['accept-language']);
    const s = await currentSession(req);
    if (!s) return send(reply, problem(lang, 'badSession', 400, signInAgain(lang)));
    if (!checkCsrf(req, s)) return send(reply, problem(lang, 'csrf', 403));
    const t0 = now();
    const answer = await sendPage(req, s, lang, t0);
    const rest = t0 + c.mailAnswerMs - now();
    if (rest > 0) await new Promise((r) => setTimeout(r, rest));
    return send(reply, answer);
  });

  async function sendPage(req, s, lang, t0) {
    const skip = html`<form method="post" action="/merge/skip">${hidden(s)}<button type="submit" class="secondary">${t(lang, 'skip')}</button></form>`;
    const address = mailbox(s.email);
    if (!address) return problem(lang, 'mailRefused', 422, skip);
    const ip = req.ip || 'unknown';
    const perPerson = await store.mailsSince('sub', s.sub, t0 - c.mailsPerPersonWindowSeconds * 1000);
    const perIp = await store.mailsSince('ip', ip, t0 - c.mailsPerIpWindowSeconds * 1000);
    if (perPerson >= c.mailsPerPerson || perIp >= c.mailsPerIp) return problem(lang, 'tooMany', 429, skip);
    const link = randomToken(32);
    const hash = sha256(link);
    // A new link retires the older unused ones this browser asked for: only the latest mail works.
    await store.createLink({ hash, session_id: s.id, sub: s.sub, browser: s.browser, created_at: t0, expires_at: t0 + c.linkTtlSeconds * 1000 });
    await store.recordMail(s.sub, ip, t0);
    const outcome = await mailLink(s, lang, address, hash, `${publicUrl}/merge/verify?token=${link}`);
    if (outcome === 'failed') return problem(lang, 'mailFailed', 502, skip);
    return sentPage(lang, s);
  }

  app.get('/merge/verify', async (req, reply) => {
    const lang = language(req.headers['accept-language']);
    const token = typeof (req.query || {}).token === 'string' ? req.query.token : '';
    const hash = sha256(token);
    const link = await store.link(hash);
    const s = await currentSession(req);
    const again = s ? html`<form method="post" action="/merge/send">${hidden(s)}<button type="submit">${t(lang, 'askAgain')}</button></form>` : signInAgain(lang);
    if (!link || link.used_at || link.expires_at < now()) return send(reply, problem(lang, 'linkUsed', 410, again));
    if (link.superseded_at) return send(reply, problem(lang, 'linkSuperseded', 410, again));
    // The link proves the inbox only in the browser that asked for it: a forwarded or
    // intercepted link opened elsewhere is refused.
    const browser = jar(req).mbrowser;
    if (!safeEqual(String(browser || ''), link.browser)) return send(reply, problem(lang, 'linkOtherBrowser', 403, signInAgain(lang)));
    // The proof goes to the merge session this browser holds now, and only when that session is
    // the same person's and was opened in this same browser; without one the link stays unused.
    if (!s || s.sub !== link.sub || !safeEqual(s.browser, link.browser)) return send(reply, page(lang, t(lang, 'title'), html`<h1>${t(lang, 'title')}</h1>${signInAgain(lang)}`, { status: 409 }));
    if (!(await store.useLink(hash, now()))) return send(reply, problem(lang, 'linkUsed', 410, again));
    await store.markInboxProven(s, now());
    // A social sign-in has no password to set: its provider signed the person in, the mailbox is
    // what was missing, and the merge is complete.
    if (socialSub(s.sub)) return finish(reply, lang, s, 'merged');
    return send(reply, await stepPage(lang, s));
  });

  app.post('/merge/password', async (req, reply) => {
    const lang = language(req.headers['accept-language']);
    const s = await currentSession(req);
    if (!s) return send(reply, problem(lang, 'badSession', 400, signInAgain(lang)));
    if (!checkCsrf(req, s)) return send(reply, problem(lang, 'csrf', 403));
    if (!(await proofOf(s)).inbox || socialSub(s.sub)) return send(reply, startPage(lang, s));
    const password = field(req, 'password');
    const error = policy(lang, password, field(req, 'repeat'), s.email);
    if (error) return send(reply, passwordPage(lang, s, error));
    try {
      await setTenantPassword(s.sub, password);
    } catch (e) {
      return send(reply, problem(lang, 'tenantDown', 503));
    }
    await store.markPasswordSet(s, now());
    return send(reply, signinPage(lang, s));
  });

  app.post('/merge/signin', async (req, reply) => {
    const lang = language(req.headers['accept-language']);
    const s = await currentSession(req);
    if (!s) return send(reply, problem(lang, 'badSession', 400, signInAgain(lang)));
    if (!checkCsrf(req, s)) return send(reply, problem(lang, 'csrf', 403));
    if (!(await proofOf(s)).password || socialSub(s.sub)) return send(reply, await stepPage(lang, s));
    let ok;
    try {
      const password = field(req, 'password');
      ok = password.length > 0 && password.length <= c.maxPasswordLength && await checkTenantPassword(s.email, password);
    } catch (e) {
      return send(reply, problem(lang, 'tenantDown', 503));
    }
    if (!ok) return send(reply, signinPage(lang, s, t(lang, 'wrongPassword')));
    return finish(reply, lang, s, 'merged');
  });

  app.post('/merge/skip', async (req, reply) => {
    const lang = language(req.headers['accept-language']);
    const s = await currentSession(req);
    if (!s) return send(reply, problem(lang, 'badSession', 400, signInAgain(lang)));
    if (!checkCsrf(req, s)) return send(reply, problem(lang, 'csrf', 403));
    return finish(reply, lang, s, 'skipped');
  });

  app.get('/healthz', async () => ({ ok: true }));

  await app.listen({ port: c.port, host: c.host });
  const url = `http://${c.host}:${app.server.address().port}`;
  if (!publicUrl) publicUrl = url;
  return { url, publicUrl, store, close: async () => { await app.close(); mailer.close(); await store.close(); } };
}

/**
 * True for a tenant user of a social connection (`google-oauth2|…`, `apple|…`): no password of its
 * own, so the mailbox proof alone completes its merge. Database users are `auth0|…`.
 */
function socialSub(sub) {
  return typeof sub === 'string' && !sub.startsWith('auth0|');
}

/** Reads the configuration from the environment (see merge-service/README.md). */
function configFromEnv(env = process.env) {
  const num = (k) => (env[k] === undefined ? undefined : Number(env[k]));
  return {
    port: num('MERGE_PORT') || 8080, host: env.MERGE_HOST || '127.0.0.1', publicUrl: env.MERGE_PUBLIC_URL, tenantUrl: env.MERGE_TENANT_URL,
    tokenSecret: env.TRICKLE_TOKEN_SECRET, store: env.MERGE_STORE || 'sqlite:merge-service.sqlite', smtpUrl: env.MERGE_SMTP_URL, from: env.MERGE_MAIL_FROM,
    managementClientId: env.MERGE_MGMT_CLIENT_ID, managementClientSecret: env.MERGE_MGMT_CLIENT_SECRET, managementAudience: env.MERGE_MGMT_AUDIENCE,
    loginClientId: env.MERGE_LOGIN_CLIENT_ID, loginClientSecret: env.MERGE_LOGIN_CLIENT_SECRET, trustProxy: env.MERGE_TRUST_PROXY === 'true',
    linkTtlSeconds: num('MERGE_LINK_TTL_SECONDS'), mailsPerPerson: num('MERGE_MAILS_PER_PERSON'), mailsPerIp: num('MERGE_MAILS_PER_IP'),
    mailAnswerMs: num('MERGE_MAIL_ANSWER_MS'), products: productsFromEnv(env.TRICKLE_PRODUCTS), accountPasswordTries: num('MERGE_ACCOUNT_PASSWORD_TRIES')
  };
}

/** TRICKLE_PRODUCTS (the Action's JSON array of {name, url, token}), or none. */
function productsFromEnv(text) {
  if (!text) return undefined;
  let list;
  try {
    list = JSON.parse(text);
  } catch (e) {
    throw new Error('merge service: TRICKLE_PRODUCTS is not JSON ([{"name", "url", "token"}])');
  }
  if (!Array.isArray(list) || list.some((p) => !p || typeof p.name !== 'string' || !/^https?:\/\//.test(String(p.url)) || typeof p.token !== 'string')) {
    throw new Error('merge service: TRICKLE_PRODUCTS must be [{"name", "url", "token"}]');
  }
  return list;
}

module.exports = { startMergeService, configFromEnv, maskEmail };
