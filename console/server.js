// The support console (`trickle console`): staff sign in through the tenant itself (OpenID
// Connect code flow with PKCE, openid-client), find a person and apply the fixes of
// console/support.js. Only configured staff get in; sessions are signed, HttpOnly, SameSite=Lax
// cookies that expire; every form carries a per-session CSRF token; pages are served with a CSP
// that allows nothing but this origin's stylesheet (no script at all) and never show a secret.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const Fastify = require('fastify');
const { Issuer, generators } = require('openid-client');
const { supportService, SupportError, FIXES, canonical } = require('./support');
const { openAudit } = require('./audit');
const { html, parseCookies, setCookie, csrfToken, csrfOk, sameOrigin, csp, securityHeaders } = require('../lib/web');

const b64 = (b) => Buffer.from(b).toString('base64url');
const CSS = fs.readFileSync(path.join(__dirname, 'console.css'), 'utf8');
// This origin's stylesheet and nothing else: no script, no frame, forms posted only here.
const CSP = csp({ 'style-src': "'self'", 'img-src': "'self'", 'form-action': "'self'" });

class ConsoleConfigError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

/** Signed values: `payload.mac`, HMAC-SHA256 under the session secret, compared in constant time. */
function signer(secret) {
  const key = crypto.createHash('sha256').update(`trickle-console\n${secret}`).digest();
  const mac = (purpose, data) => crypto.createHmac('sha256', key).update(`${purpose}\n${data}`).digest();
  return {
    seal(purpose, obj) { const data = b64(JSON.stringify(obj)); return `${data}.${b64(mac(purpose, data))}`; },
    open(purpose, value) {
      const [data, sig, extra] = String(value || '').split('.');
      if (!data || !sig || extra !== undefined) return null;
      const given = Buffer.from(sig, 'base64url');
      const want = mac(purpose, data);
      if (given.length !== want.length || !crypto.timingSafeEqual(given, want)) return null;
      try {
        const obj = JSON.parse(Buffer.from(data, 'base64url').toString());
        return obj && typeof obj === 'object' && typeof obj.exp === 'number' && obj.exp > Date.now() ? obj : null;
      } catch (_) { return null; }
    }
  };
}

/** Providers whose users are never staff by address: any workspace admin asserts any address. */
const UNTRUSTED_STAFF_PROVIDERS = new Set(['sign-in-with-slack', 'oauth2']);
/** The provider of a tenant user id: the part before the first '|' (`auth0` for database users). */
const providerOf = (sub) => {
  const i = typeof sub === 'string' ? sub.indexOf('|') : -1;
  return i > 0 ? sub.slice(0, i) : null;
};

/**
 * Who is staff: `staff.userIds` (tenant user ids), `staff.emails` (canonical addresses, matched
 * only when the tenant says the address is verified **and** the ID token's `sub` belongs to one of
 * `staff.providers`, default `auth0`: the database connections, where the tenant itself verified
 * the address; a social provider is not authoritative for an address, docs/ownership.md), or a
 * role: `staff.roles` listed in the ID token's claim `staff.roleClaim` (e.g. a namespaced claim an
 * Action adds). Resolves to the reason they are in, or null.
 */
function staffCheck(staff) {
  const emails = new Set((staff.emails || []).map((e) => canonical(e)));
  const ids = new Set(staff.userIds || []);
  const roles = new Set(staff.roles || []);
  const providers = new Set(staff.providers && staff.providers.length ? staff.providers : ['auth0']);
  for (const p of providers) {
    if (typeof p !== 'string' || !/^[a-z0-9-]{1,64}$/.test(p)) throw new ConsoleConfigError('console.staff_provider', `support.staffProviders: ${JSON.stringify(p)} is not a provider name (the part of a user id before '|', e.g. auth0)`);
    if (UNTRUSTED_STAFF_PROVIDERS.has(p)) throw new ConsoleConfigError('console.staff_provider_untrusted', `support.staffProviders: ${p} cannot vouch for a staff address (any workspace admin asserts any address); list such staff by user id in support.staff`);
  }
  return (claims) => {
    if (claims.sub && ids.has(claims.sub)) return 'user id';
    if (claims.email && claims.email_verified === true && providers.has(providerOf(claims.sub))) {
      let c = null;
      try { c = canonical(claims.email); } catch (_) { c = null; }
      if (c && emails.has(c)) return 'address';
    }
    const claimed = staff.roleClaim ? claims[staff.roleClaim] : null;
    if (Array.isArray(claimed) && claimed.some((r) => roles.has(r))) return 'role';
    return null;
  };
}

/**
 * Starts the console. Options: {port, host, publicUrl (how browsers reach it; default its own
 * address), tenant: {url, clientId, clientSecret} (the Management API application), login:
 * {clientId, clientSecret} (the console's own application on the tenant, callback
 * <publicUrl>/callback), staff: {emails, userIds, providers (default ['auth0']), roleClaim, roles}, sessionSecret (≥ 32
 * characters), sessionTtlSeconds (default 1800), products [{name, url, token}], state (bulk state
 * URL), audit (URL, default sqlite:trickle-audit.sqlite)}. Returns {url, close, audit}.
 */
async function startConsole(options) {
  const o = { host: '127.0.0.1', port: 0, sessionTtlSeconds: 1800, audit: 'sqlite:trickle-audit.sqlite', ...options };
  if (!o.tenant || !o.tenant.url) throw new ConsoleConfigError('console.tenant_missing', 'the console needs tenant.url and the Management API application (tenant.clientId, tenant.clientSecret)');
  if (!o.login || !o.login.clientId || !o.login.clientSecret) throw new ConsoleConfigError('console.login_client_missing', 'the console needs its own application on the tenant: support.clientId and TRICKLE_CONSOLE_CLIENT_SECRET');
  if (typeof o.sessionSecret !== 'string' || o.sessionSecret.length < 32) throw new ConsoleConfigError('console.session_secret', 'TRICKLE_CONSOLE_SESSION_SECRET must be at least 32 characters');
  const staff = o.staff || {};
  if (!(staff.emails || []).length && !(staff.userIds || []).length && !(staff.roleClaim && (staff.roles || []).length)) {
    throw new ConsoleConfigError('console.no_staff', 'nobody could sign in: configure support.staff (emails, userIds) or support.roleClaim with support.roles');
  }
  let isStaff;
  try { isStaff = staffCheck(staff); } catch (e) {
    if (e instanceof ConsoleConfigError) throw e;
    throw new ConsoleConfigError('console.staff_address', `support.staff holds an address trickle cannot use: ${e.message}`);
  }
  const audit = await openAudit(o.audit);
  const support = supportService({ tenant: o.tenant, products: o.products || [], state: o.state, audit });
  const seal = signer(o.sessionSecret);
  const ttlMs = o.sessionTtlSeconds * 1000;

  const app = Fastify({ logger: false, bodyLimit: 16 * 1024 });
  await app.register(require('@fastify/formbody'));
  // Known once listening (the port may be 0): how browsers reach the console, and its callback.
  let publicUrl = o.publicUrl ? String(o.publicUrl).replace(/\/+$/, '') : null;
  let redirectUri = null;
  const secure = !!publicUrl && publicUrl.startsWith('https:');
  const SESSION = secure ? '__Host-trickle_console' : 'trickle_console';
  const LOGIN = secure ? '__Host-trickle_console_login' : 'trickle_console_login';
  const cookie = (name, value, maxAge) => setCookie(name, value, { maxAge, secure });

  let oidc = null;
  async function oidcClient() {
    if (oidc) return oidc;
    const issuer = await Issuer.discover(String(o.tenant.url).replace(/\/+$/, ''));
    oidc = new issuer.Client({ client_id: o.login.clientId, client_secret: o.login.clientSecret, redirect_uris: [redirectUri], response_types: ['code'] });
    return oidc;
  }

  // Referrer-Policy same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null`
  // on this console's own form posts, which the origin check below would refuse.
  app.addHook('onSend', async (req, reply, payload) => {
    securityHeaders(reply, { csp: CSP, referrer: 'same-origin' });
    return payload;
  });
  /** The signed-in staff member, re-checked against the staff list on every request. */
  async function sessionOf(req) {
    const s = seal.open('session', parseCookies(req)[SESSION]);
    if (!s || !isStaff(s.claims || {})) return null;
    // Live on the server too: a cookie copied before sign-out opens nothing.
    return (await audit.sessions.live(s.sid, s.claims.sub)) ? s : null;
  }
  const page = (reply, status, title, body, s) => reply.code(status).type('text/html; charset=utf-8').send(String(layout(title, body, s)));
  const problem = (reply, status, code, message, s, back = '/') => page(reply, status, 'Refused', html`<p class="error" role="alert"><b>${message}</b> <code>${code}</code></p><p><a href="${back}">Back</a></p>`, s);

  app.get('/console.css', async (req, reply) => reply.type('text/css; charset=utf-8').send(CSS));
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/favicon.ico', async (req, reply) => reply.code(204).send());

  app.get('/', async (req, reply) => {
    const s = await sessionOf(req);
    if (!s) return page(reply, 200, 'Sign in', html`<p>Support staff sign in with their tenant account.</p><p><a class="button" href="/login">Sign in</a></p>`);
    return page(reply, 200, 'Find a person', searchForm(''), s);
  });

  app.get('/login', async (req, reply) => {
    let client;
    try { client = await oidcClient(); } catch (e) { return problem(reply, 502, 'console.tenant_unreachable', 'the tenant cannot be reached for sign-in'); }
    const tx = { state: generators.state(), nonce: generators.nonce(), verifier: generators.codeVerifier(), exp: Date.now() + 10 * 60000 };
    const url = client.authorizationUrl({ scope: 'openid email profile', state: tx.state, nonce: tx.nonce, code_challenge: generators.codeChallenge(tx.verifier), code_challenge_method: 'S256' });
    reply.header('set-cookie', cookie(LOGIN, seal.seal('login', tx), 600));
    return reply.redirect(url, 302);
  });

  app.get('/callback', async (req, reply) => {
    const tx = seal.open('login', parseCookies(req)[LOGIN]);
    reply.header('set-cookie', cookie(LOGIN, '', 0)); // one attempt per sign-in
    if (!tx) return problem(reply, 400, 'console.login_expired', 'this sign-in expired or was started in another browser: sign in again', null, '/login');
    let claims;
    try {
      const client = await oidcClient();
      const params = client.callbackParams(req.raw);
      if (params.error) return problem(reply, 403, 'console.login_refused', `the tenant refused the sign-in: ${params.error}`, null, '/login');
      const tokens = await client.callback(redirectUri, params, { state: tx.state, nonce: tx.nonce, code_verifier: tx.verifier });
      claims = tokens.claims();
    } catch (e) {
      return problem(reply, 403, 'console.login_failed', 'the sign-in could not be completed (state, code or token refused): sign in again', null, '/login');
    }
    const keep = { sub: claims.sub, email: claims.email, email_verified: claims.email_verified, name: claims.name, ...(staff.roleClaim && claims[staff.roleClaim] ? { [staff.roleClaim]: claims[staff.roleClaim] } : {}) };
    if (!isStaff(keep)) return problem(reply, 403, 'console.not_staff', 'this account is not on the support staff list', null);
    const session = { sid: b64(crypto.randomBytes(24)), claims: keep, csrf: csrfToken(), exp: Date.now() + ttlMs };
    await audit.sessions.open(session.sid, keep.sub, session.exp);
    reply.header('set-cookie', [cookie(LOGIN, '', 0), cookie(SESSION, seal.seal('session', session), Math.ceil(ttlMs / 1000))]);
    return reply.redirect('/', 303);
  });

  /** POSTs need the session, a same-origin Origin (when sent) and the session's CSRF token. */
  async function guardPost(req, reply) {
    const s = await sessionOf(req);
    if (!s) { problem(reply, 401, 'console.signed_out', 'your session expired: sign in again', null, '/login'); return null; }
    if (!sameOrigin(req, publicUrl) || !csrfOk((req.body || {}).csrf, s.csrf)) { problem(reply, 403, 'console.csrf', 'the form was not sent from this console: reload the page and try again', s); return null; }
    return s;
  }

  app.post('/logout', async (req, reply) => {
    const s = await guardPost(req, reply);
    if (!s) return reply;
    await audit.sessions.end(s.sid);
    reply.header('set-cookie', cookie(SESSION, '', 0));
    return reply.redirect('/', 303);
  });

  app.get('/person', async (req, reply) => {
    const s = await sessionOf(req);
    if (!s) return reply.redirect('/', 303);
    const q = (req.query || {}).q;
    let found;
    try {
      found = await support.find(q);
    } catch (e) {
      if (e instanceof SupportError) return problem(reply, e.status, e.code, e.message, s);
      return problem(reply, 502, e.code || 'support.failed', 'the person could not be looked up right now', s);
    }
    // The result of the fix just made, signed so a crafted link cannot show staff a false one.
    const flash = seal.open('flash', (req.query || {}).fixed);
    const notice = flash && flash.by === s.claims.sub ? html`<p class="notice" role="status">${flash.text}</p>` : '';
    return page(reply, 200, 'Person', html`${searchForm(found.query)}${notice}${personView(found, s)}`, s);
  });

  app.post('/fix', async (req, reply) => {
    const s = await guardPost(req, reply);
    if (!s) return reply;
    const b = req.body || {};
    const back = `/person?q=${encodeURIComponent(String(b.user_id || ''))}`;
    try {
      // A staff user blocked or deleted on the tenant since signing in makes no more fixes.
      const me = await support.user(s.claims.sub);
      if (!me || me.blocked) {
        await audit.sessions.endAll(s.claims.sub);
        reply.header('set-cookie', cookie(SESSION, '', 0));
        return problem(reply, 401, 'console.staff_blocked', 'your tenant account is blocked or gone: this session has ended', null, '/');
      }
      // The actor is the tenant user id: the address is shown beside it, but an address alone
      // names nobody (several users, several providers may carry it).
      const r = await support.fix({ action: b.action, userId: b.user_id, target: b.target, reason: b.reason, ticket: b.ticket, actor: s.claims.sub, actorEmail: s.claims.email });
      const flash = seal.seal('flash', { text: `${b.action}: ${r.outcome}${r.detail ? ` (${r.detail})` : ''}`, by: s.claims.sub, exp: Date.now() + 60000 });
      return reply.redirect(`${back}&fixed=${encodeURIComponent(flash)}`, 303);
    } catch (e) {
      if (e instanceof SupportError) return problem(reply, e.status, e.code, e.message, s, back);
      return problem(reply, 502, e.code || 'support.failed', 'the fix could not be completed; the audit shows what was done', s, back);
    }
  });

  app.get('/audit', async (req, reply) => {
    const s = await sessionOf(req);
    if (!s) return reply.redirect('/', 303);
    const rows = await audit.list({ limit: 200 });
    return page(reply, 200, 'Audit', auditTable(rows), s);
  });

  await app.listen({ port: o.port, host: o.host });
  const own = `http://${o.host}:${app.server.address().port}`;
  publicUrl = publicUrl || own;
  redirectUri = `${publicUrl}/callback`;
  return {
    url: own, publicUrl, redirectUri, audit, support,
    close: async () => { await app.close(); await audit.close(); }
  };
}

function layout(title, body, s) {
  const nav = s && html`<nav><a href="/">Find</a><a href="/audit">Audit</a><span class="who">${s.claims.email || s.claims.sub}</span>
<form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="${s.csrf}"><button type="submit" class="link">Sign out</button></form></nav>`;
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title} · trickle support</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><link rel="stylesheet" href="/console.css"></head>
<body><header><b>trickle support</b>${nav}</header><main><h1>${title}</h1>${body}</main></body></html>`;
}

const searchForm = (q) => html`<form method="get" action="/person" class="search"><label for="q">Address, tenant user id or person id</label>
<div class="row"><input id="q" name="q" type="search" value="${q}" required maxlength="320" autocomplete="off"><button type="submit">Find</button></div></form>`;

const yes = (v) => (v ? 'yes' : 'no');
const warn = (text) => html`<b class="warn">${text}</b>`;
function table(head, rows, id) {
  if (!rows.length) return html`<p class="muted">none</p>`;
  return html`<div class="scroll"><table ${id && html`id="${id}"`}><thead><tr>${head.map((h) => html`<th>${h}</th>`)}</tr></thead><tbody>${rows}</tbody></table></div>`;
}

function personView(found, s) {
  if (!found.people.length) {
    return html`<p>No tenant user${found.email && html` for <b>${found.email}</b>`}.</p>${legacyView(found)}`;
  }
  return html`${found.people.map((p) => personSection(found, p, s))}${legacyView(found)}`;
}

function personSection(found, p, s) {
  const u = p.user;
  const t = p.trickle || {};
  const holds = p.holds || {};
  const accounts = (t.accounts || []).map((a) => accountRow(a, holds[`${a.product}:${a.id}`] || {}, (p.provenance || {})[`${a.product}:${a.id}`]));
  const ids = (u.identities || []).map((i) => html`<tr><td>${i.provider}</td><td>${i.connection}</td><td>${i.user_id}</td></tr>`);
  const targets = (t.accounts || []).map((a) => `${a.product}:${a.id}`);
  const merge = p.state.merge ? `attempts ${p.state.merge.attempts || 0}${p.state.merge.jti ? ', token outstanding' : ''}` : 'none';
  return html`<section class="person" data-user="${u.user_id}"><h2>${u.email} <small>${u.user_id}</small></h2>
<dl class="facts"><dt>Name</dt><dd>${u.name || ''}</dd><dt>Address verified</dt><dd>${yes(u.email_verified)}</dd><dt>Blocked</dt><dd id="blocked">${yes(p.state.blocked)}</dd>
<dt>Migrated</dt><dd>${yes(p.state.migrated)}</dd><dt>Bulk imported</dt><dd>${yes(p.state.bulk_imported)}</dd><dt>Person id</dt><dd>${t.person_id || ''}</dd>
<dt>Fan-out pending</dt><dd id="fanout-pending">${p.state.fanout_pending.join(', ') || 'none'}</dd><dt>Pending products</dt><dd>${p.state.pending_products.join(', ') || 'none'}</dd>
<dt>Merge</dt><dd id="merge">${merge}</dd>
<dt>Logins</dt><dd>${u.logins_count || 0}${u.last_login && html`, last ${u.last_login}`}</dd><dt>MFA</dt><dd>${(u.mfa_factors || []).join(', ') || 'none'}</dd></dl>
<h3>Accounts trickle knows (app_metadata.trickle)</h3>${table(['product', 'account', 'proof', 'where the claim came from', 'product verified the address', 'fan-out', 'linked (record)', 'Auth0 id the product stores', 'belongs to another user'], accounts, 'accounts')}
<h3>Identities</h3>${table(['provider', 'connection', 'user id'], ids)}
<h3>Fixes</h3><div class="fixes">${Object.entries(FIXES).map(([action, f]) => fixForm(action, f, u.user_id, targets, s))}
<p class="muted">Resend the merge mail: not available. ${found.not_available['resend-merge-mail']}.</p></div>
<h3>Timeline</h3>${table(['when', 'source', 'what', 'detail'], p.timeline.map((e) => html`<tr><td>${e.at}</td><td>${e.source}</td><td>${e.what}</td><td>${e.detail}</td></tr>`), 'timeline')}
</section>`;
}

/** One account of app_metadata.trickle: its record, what its product stores, who else holds it. */
function accountRow(a, h, from) {
  const record = a.linked ? a.linked : a.held ? warn('held (id withheld)') : '—';
  const stored = h.unavailable !== undefined ? html`<span class="warn">unavailable (${h.unavailable})</span>` : h.unlisted ? html`<span class="warn">not listed</span>` : h.auth0_user_id || 'none';
  const fanout = a.fanout ? 'acknowledged' : a.proof ? warn('pending') : '—';
  return html`<tr data-account="${`${a.product}:${a.id}`}"${h.held_by && html` data-held-by="${h.held_by}"`}><td>${a.product}</td><td>${a.id}</td><td>${a.proof || 'unproven'}</td><td class="from">${from || ''}</td><td>${yes(a.verified)}</td><td>${fanout}</td>
<td class="linked">${record}</td><td class="stored">${stored}</td><td class="holder">${h.held_by ? warn(h.held_by) : '—'}</td></tr>`;
}

function fixForm(action, f, userId, targets, s) {
  if (f.target && !targets.length) return '';
  return html`<form method="post" action="/fix" class="fix" data-fix="${action}"><input type="hidden" name="csrf" value="${s.csrf}">
<input type="hidden" name="user_id" value="${userId}"><input type="hidden" name="action" value="${action}">
<fieldset><legend>${f.label}</legend><p class="muted">${f.help}</p>
${f.target ? html`<label>Account <select name="target">${targets.map((t) => html`<option value="${t}">${t}</option>`)}</select></label>` : ''}
<label>Reason <input name="reason" type="text" required minlength="3" maxlength="500" autocomplete="off"></label>
<label>Ticket${f.ticket ? '' : ' (optional)'} <input name="ticket" type="text" maxlength="100" autocomplete="off"${f.ticket ? html` required` : ''}></label>
<button type="submit">${f.label}</button></fieldset></form>`;
}

function legacyView(found) {
  const rows = [];
  for (const l of found.legacy) {
    if (l.unavailable) rows.push(html`<tr><td>${l.product}</td><td colspan="6" class="warn">unavailable (HTTP ${l.status})</td></tr>`);
    for (const a of l.accounts || []) rows.push(html`<tr><td>${a.product}</td><td>${a.id}</td><td>${a.email}</td><td>${yes(a.email_verified)}</td><td>${a.person_id || ''}</td><td>${a.auth0_user_id || ''}</td><td>${a.created_at || ''}</td></tr>`);
  }
  return html`<section><h3>Legacy accounts${found.email && html` for ${found.email}`}</h3>${table(['product', 'account', 'address', 'verified', 'person id', 'Auth0 id stored', 'created'], rows, 'legacy')}
<h3>Import record</h3>${importRecord(found.imports)}</section>`;
}

function importRecord(i) {
  if (!i) return '';
  if (!i.configured) return html`<p class="muted">no bulk state store configured</p>`;
  if (i.unavailable) return html`<p class="warn">the bulk state store cannot be read</p>`;
  return table(['record', 'file', 'detail'], [
    ...i.already_present.map((r) => html`<tr><td>already in the tenant at import</td><td>${r.file}</td><td>${r.codes}</td></tr>`),
    ...i.failed.map((r) => html`<tr><td>import failed</td><td>${r.file}</td><td>${`${r.codes} ${r.reason || ''}`}</td></tr>`),
    ...i.retried.map((r) => html`<tr><td>retried</td><td>${r.file}</td><td>${r.retry_file}</td></tr>`)
  ]);
}

function auditTable(rows) {
  const short = (v) => (v ? JSON.stringify(v).slice(0, 300) : '');
  return table(['#', 'when', 'who', 'fix', 'user', 'account', 'reason', 'ticket', 'outcome', 'before', 'after'], rows.map((r) => html`<tr data-audit="${r.id}" data-action="${r.action}" data-outcome="${r.outcome}">
<td>${r.id}</td><td>${r.at}</td><td>${r.actor}${r.actor_email && html` <small>${r.actor_email}</small>`}</td><td>${r.action}</td><td><a href="/person?q=${encodeURIComponent(r.user_id || '')}">${r.user_id}</a></td><td>${r.target || ''}</td>
<td>${r.reason}</td><td>${r.ticket || ''}</td><td>${r.outcome}${r.detail && html` <small>${r.detail}</small>`}</td><td><code>${short(r.before)}</code></td><td><code>${short(r.after)}</code></td></tr>`), 'audit');
}

module.exports = { startConsole, ConsoleConfigError, signer, staffCheck, providerOf };
