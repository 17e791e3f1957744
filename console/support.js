// Support operations on one person, shared by the console (console/server.js) and the command
// line (`trickle support …`): find a person, and the fixes. Reads go to the tenant's Management
// API, the products' contract (docs/product-api.md) and the bulk state store; every fix obeys the
// ownership model (docs/ownership.md), needs a reason, and is written to the append-only audit
// (console/audit.js) before it acts and again with its result.
'use strict';
const crypto = require('crypto');
const { tenantClient } = require('../cli/tenant-client');
const { openDb } = require('../lib/db');
const { loadCore } = require('../js-shim/node');

class SupportError extends Error {
  constructor(code, message, status = 400) { super(message); this.code = code; this.status = status; }
}

/** What each fix does, for the pages and the command line. */
const FIXES = {
  fanout: { label: 'Re-run the fan-out', help: 'tell every proven account whose product has not acknowledged it the Auth0 id' },
  'clear-merge': { label: 'Clear the stuck merge', help: 'drop the outstanding merge token and attempts: the next login starts a fresh merge' },
  withdraw: { label: 'Withdraw a link', help: 'the product is told to forget the Auth0 id and the account loses its proof', target: true },
  link: { label: 'Link an account (support proof)', help: 'record a support proof for one unproven account: needs a ticket', target: true, ticket: true },
  reset: { label: 'Force a password reset', help: 'the current password stops working and the tenant mails a reset link to the stored address' },
  block: { label: 'Block', help: 'the person cannot sign in until unblocked' },
  unblock: { label: 'Unblock', help: 'the person can sign in again' }
};
// The merge service binds its mails to the browser session that asked for them; support has no
// such session, so it cannot resend one. Clearing the stuck merge makes the next login ask again.
const NOT_AVAILABLE = { 'resend-merge-mail': 'the merge service mails only the browser session that asked (docs/ownership.md); clear the stuck merge instead: the next login sends a fresh one' };

let coreHandle = null;
/** The core (the full build), loaded once. */
const core = () => coreHandle || (coreHandle = loadCore('full'));
/** The canonical address (the core's normalize_email), or a SupportError. */
function canonical(email) {
  const r = core().call('normalize_email', { email: String(email) });
  if (!r || r.outcome !== 'ok') throw new SupportError('support.bad_address', `not an address trickle can use: ${(r && r.error && r.error.code) || 'invalid'}`);
  return r.email;
}

/** The account fields a page may show: no password descriptor, no TOTP secret. */
function publicAccount(product, a) {
  return {
    product, id: String(a.id), email: a.email, email_verified: !!a.email_verified, name: a.name || null, created_at: a.created_at || null,
    person_id: a.person_id || null, auth0_user_id: a.auth0_user_id || null, has_password: !!a.password, has_totp: !!a.totp_secret
  };
}

/** The tenant user fields a page may show: no password hashes, no MFA secrets. */
function publicUser(u) {
  const { password_hash: _a, custom_password_hash: _b, mfa_factors: factors, ...rest } = u;
  return { ...rest, mfa_factors: Array.isArray(factors) ? factors.map((f) => Object.keys(f || {})[0]).filter(Boolean) : [] };
}

const trickleOf = (user) => {
  const t = user && user.app_metadata && user.app_metadata.trickle;
  return t && typeof t === 'object' ? JSON.parse(JSON.stringify(t)) : null;
};
const accountsOf = (t) => (t && Array.isArray(t.accounts) ? t.accounts : []);
/** The core's rule (ownership::may_learn_auth0_id): only an account with a proof is told an id. */
const mayLearn = (a) => typeof a.proof === 'string' && a.proof.length > 0;
const keyOf = (a) => `${a.product}:${a.id}`;

/**
 * The support service. `cfg`: {tenant: {url, clientId, clientSecret, audience?}, products:
 * [{name, url, token}], state (bulk state URL, optional), audit (from openAudit), fetchTimeoutMs}.
 */
function supportService(cfg) {
  const tenant = tenantClient({ ...cfg.tenant, maxAttempts: 4 });
  const products = cfg.products || [];
  const timeout = cfg.fetchTimeoutMs || 5000;
  const audit = cfg.audit;

  async function api(path, init = {}) {
    const res = await tenant.call(path, { ...init, headers: { 'content-type': 'application/json', ...(init.headers || {}) } });
    const text = await res.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
    return { status: res.status, ok: res.ok, body };
  }
  async function userById(id) {
    const r = await api(`/api/v2/users/${encodeURIComponent(id)}`);
    if (r.status === 404) return null;
    if (!r.ok) throw new SupportError('support.tenant_unavailable', `the tenant answered HTTP ${r.status} for the user`, 502);
    return r.body;
  }
  async function productCall(p, method, path, body) {
    try {
      const res = await fetch(`${p.url.replace(/\/+$/, '')}${path}`, {
        method, signal: AbortSignal.timeout(timeout),
        headers: { authorization: `Bearer ${p.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {})
      });
      const text = await res.text();
      let json = null;
      try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
      return { status: res.status, ok: res.ok, body: json };
    } catch (e) {
      return { status: 0, ok: false, error: (e && e.name) || 'network' };
    }
  }

  /**
   * What each product stores as the Auth0 id of the user's accounts (product contract: by the
   * user's canonical address and by each of its social identities). Resolves to a Map
   * `product:id` → {auth0_user_id} (null: none stored) | {unavailable: status} | {unlisted: true}
   * (the product lists the account neither for the address nor for an identity).
   */
  async function productHolds(user, accounts) {
    const out = new Map();
    let email = null;
    try { email = user.email ? canonical(user.email) : null; } catch (_) { email = null; }
    const queries = email ? [`email=${encodeURIComponent(email)}`] : [];
    for (const i of user.identities || []) {
      if (!i || i.provider === 'auth0' || !i.user_id) continue;
      for (const provider of new Set([i.provider, i.connection].filter(Boolean))) queries.push(`provider=${encodeURIComponent(provider)}&subject=${encodeURIComponent(String(i.user_id))}`);
    }
    await Promise.all([...new Set(accounts.map((a) => a.product))].map(async (name) => {
      const mine = accounts.filter((a) => a.product === name);
      const p = products.find((x) => x.name === name);
      const listed = new Map();
      let down = p ? null : 'not configured';
      if (p) {
        for (const r of await Promise.all(queries.map((q) => productCall(p, 'GET', `/trickle/accounts?${q}`)))) {
          if (r.status === 404) continue;
          if (!r.ok || !r.body || !Array.isArray(r.body.accounts)) { down = r.status || r.error || 'error'; continue; }
          for (const acc of r.body.accounts) if (acc && acc.id !== undefined) listed.set(String(acc.id), acc.auth0_user_id || null);
        }
      }
      for (const a of mine) {
        const id = String(a.id);
        out.set(keyOf(a), listed.has(id) ? { auth0_user_id: listed.get(id) } : down !== null ? { unavailable: down } : { unlisted: true });
      }
    }));
    return out;
  }

  /** The user as the core reads it. */
  const coreUser = (u) => ({ user_id: String(u.user_id), email: typeof u.email === 'string' ? u.email : null, email_verified: u.email_verified === true, app_metadata: u.app_metadata || {} });
  const quoted = (v) => `"${String(v).replace(/["\\]/g, '\\$&')}"`;

  /**
   * Every tenant user whose record names one of `keys` (`product:id`): the Management API's user
   * search, which ignores array levels, so it may return users whose record names the product and
   * the id in two different accounts; the core reads each record exactly. `search_failed` when a
   * page could not be read or there were more than 1 000 (nothing is decided on a partial list).
   */
  async function holdersOf(keys) {
    const found = new Map();
    let failed = false;
    for (const k of keys) {
      const at = k.indexOf(':');
      const q = `app_metadata.trickle.accounts.product:${quoted(k.slice(0, at))} AND app_metadata.trickle.accounts.id:${quoted(k.slice(at + 1))}`;
      for (let page = 0; ; page++) {
        if (page === 10) { failed = true; break; }
        const r = await api(`/api/v2/users?search_engine=v3&per_page=100&page=${page}&q=${encodeURIComponent(q)}`);
        if (!r.ok || !Array.isArray(r.body)) { failed = true; break; }
        for (const u of r.body) if (u && u.user_id) found.set(u.user_id, coreUser(u));
        if (r.body.length < 100) break;
      }
    }
    return { holders: [...found.values()], search_failed: failed };
  }

  /** What the products answered for `accounts`, as the core reads it. */
  const holdsList = (holds) => [...holds].map(([k, h]) => {
    const at = k.indexOf(':');
    const base = { product: k.slice(0, at), account: k.slice(at + 1) };
    if (h.unavailable !== undefined) return { ...base, unavailable: String(h.unavailable) };
    if (h.unlisted) return { ...base, unlisted: true };
    return { ...base, auth0_user_id: h.auth0_user_id || null };
  });

  /**
   * The core's plan of a fix (`support_plan`): asked once; when it names accounts to check, their
   * holders are read (the products' stored ids and every tenant user's record) and it is asked
   * again with them.
   */
  async function planFix(action, user, target) {
    const ask = (checked) => {
      const r = core().call('support_plan', { action, user: coreUser(user), target: target || null, products: products.map((p) => p.name), checked });
      if (!r || r.outcome === 'invalid') throw new SupportError((r && r.error && r.error.code) || 'support.core', (r && r.error && r.error.message) || 'the core could not plan the fix', 500);
      return r;
    };
    const first = ask(null);
    if (first.outcome !== 'check') return first;
    const accounts = first.check.map((k) => ({ product: k.slice(0, k.indexOf(':')), id: k.slice(k.indexOf(':') + 1) }));
    const [holds, found] = await Promise.all([productHolds(user, accounts), holdersOf(first.check)]);
    return ask({ holds: holdsList(holds), ...found });
  }

  const REFUSAL_STATUS = { 'support.account_held': 409, 'support.account_unchecked': 503, 'support.address_unvouched': 409, 'support.address_unverified': 409, 'support.record_changed': 409, 'support.no_such_account': 400 };
  /** A refusal (the core's, or a record that changed meanwhile) as the error the pages and the command line show; audited as `refused`. */
  function refusal(code, message, heldBy = []) {
    const e = new SupportError(code, message, REFUSAL_STATUS[code] || 409);
    e.heldBy = heldBy;
    e.refused = true;
    return e;
  }

  /** The users a query names: an address (canonical form), a tenant user id, or a person id. */
  async function findUsers(query) {
    const q = String(query || '').trim();
    if (!q) throw new SupportError('support.query_required', 'type an address, a tenant user id (auth0|…) or a person id');
    if (q.length > 320) throw new SupportError('support.query_too_long', 'at most 320 characters');
    if (q.includes('@')) {
      const email = canonical(q);
      const r = await api(`/api/v2/users-by-email?email=${encodeURIComponent(email)}`);
      if (!r.ok) throw new SupportError('support.tenant_unavailable', `the tenant answered HTTP ${r.status} for the address`, 502);
      return { email, users: Array.isArray(r.body) ? r.body : [] };
    }
    const ids = q.includes('|') ? [q] : [q, `auth0|${q}`];
    for (const id of ids) {
      const u = await userById(id);
      if (u) return { email: u.email, users: [u] };
    }
    return { email: null, users: [] };
  }

  /** Everything support sees about a person; secrets left out. */
  async function find(query) {
    const { email, users } = await findUsers(query);
    const legacy = email ? await Promise.all(products.map(async (p) => {
      const r = await productCall(p, 'GET', `/trickle/accounts?email=${encodeURIComponent(email)}`);
      if (r.status === 404) return { product: p.name, accounts: [] };
      if (!r.ok || !r.body || !Array.isArray(r.body.accounts)) return { product: p.name, unavailable: true, status: r.status };
      return { product: p.name, accounts: r.body.accounts.slice(0, 32).map((a) => publicAccount(p.name, a)) };
    })) : [];
    const people = [];
    for (const u of users) {
      const logs = await api(`/api/v2/users/${encodeURIComponent(u.user_id)}/logs?per_page=50`);
      const audits = audit ? await audit.list({ userId: u.user_id, limit: 50 }) : [];
      const timeline = [
        ...(logs.ok && Array.isArray(logs.body) ? logs.body : []).map((l) => ({ at: l.date, source: 'tenant', what: l.type, detail: l.description || '' })),
        ...audits.map((a) => ({ at: a.at, source: 'support', what: `${a.action} ${a.outcome}`, detail: `${a.actor}${a.actor_email ? ` (${a.actor_email})` : ''}: ${a.reason}${a.ticket ? ` (${a.ticket})` : ''}${a.outcome === 'refused' && a.detail ? ` — ${a.detail}` : ''}` }))
      ].sort((a, b) => String(b.at).localeCompare(String(a.at)));
      const t = trickleOf(u);
      const holds = accountsOf(t).length ? await productHolds(u, accountsOf(t)) : new Map();
      const view = t ? core().call('support_view', { trickle: t, user_id: u.user_id, checked: { holds: holdsList(holds), holders: [] } }) : null;
      const ok = view && view.outcome === 'ok';
      people.push({
        user: publicUser(u), trickle: t,
        holds: Object.fromEntries([...holds].map(([k, h]) => [k, { ...h, held_by: (ok && view.held_by[k]) || null }])),
        provenance: ok ? view.provenance : {},
        state: {
          migrated: !!(u.app_metadata && u.app_metadata.migrated), bulk_imported: !!(u.app_metadata && u.app_metadata.bulkImported), blocked: !!u.blocked,
          fanout_pending: accountsOf(t).filter((a) => mayLearn(a) && !a.fanout).map((a) => `${a.product}:${a.id}`),
          unproven: accountsOf(t).filter((a) => !mayLearn(a)).map((a) => `${a.product}:${a.id}`),
          pending_products: t && Array.isArray(t.pending) ? t.pending : [],
          merge: t && t.merge ? t.merge : null
        },
        timeline
      });
    }
    return { query: String(query).trim(), email, people, legacy, imports: email ? await importRecord(email) : null, not_available: NOT_AVAILABLE };
  }

  /** The person's rows in the bulk state store (read only; none when no state is configured). */
  async function importRecord(email) {
    if (!cfg.state) return { configured: false };
    let db;
    try {
      db = await openDb(cfg.state);
      const q = async (sql) => { try { return await db.all(sql, [email]); } catch (_) { return []; } };
      return {
        configured: true,
        already_present: await q('SELECT file, person_id, codes, recorded_at FROM import_present WHERE email = ?'),
        failed: await q('SELECT file, codes, reason FROM import_permanent WHERE email = ?'),
        retried: await q('SELECT file, retry_file FROM import_retried WHERE email = ?')
      };
    } catch (e) {
      return { configured: true, unavailable: true };
    } finally {
      if (db) await db.close().catch(() => {});
    }
  }

  async function patchUser(id, body) {
    const r = await api(`/api/v2/users/${encodeURIComponent(id)}`, { method: 'PATCH', body: JSON.stringify(body) });
    if (!r.ok) throw new SupportError('support.tenant_write_failed', `the tenant refused the change: HTTP ${r.status}`, 502);
    return r.body;
  }
  const snapshot = (u) => ({ blocked: !!u.blocked, migrated: !!(u.app_metadata && u.app_metadata.migrated), trickle: trickleOf(u) });

  /**
   * One fix. `input`: {action, userId, actor, reason, ticket?, target? ("product:id")}.
   * Resolves to {outcome: 'done'|'partial'|'nothing_to_do', before, after, detail}.
   */
  async function fix(input) {
    const action = String(input.action || '');
    if (NOT_AVAILABLE[action]) throw new SupportError('support.not_available', NOT_AVAILABLE[action], 409);
    const spec = FIXES[action];
    if (!spec) throw new SupportError('support.unknown_fix', `unknown fix ${JSON.stringify(action)}: one of ${Object.keys(FIXES).join(', ')}`);
    const actor = String(input.actor || '').trim();
    if (!actor) throw new SupportError('support.actor_required', 'who makes the change must be known', 401);
    const actorEmail = input.actorEmail ? String(input.actorEmail) : null;
    const reason = String(input.reason || '').trim();
    if (reason.length < 3) throw new SupportError('support.reason_required', 'every fix needs a reason (at least 3 characters)');
    if (reason.length > 500) throw new SupportError('support.reason_too_long', 'a reason has at most 500 characters');
    const ticket = String(input.ticket || '').trim() || null;
    if (spec.ticket && !ticket) throw new SupportError('support.ticket_required', 'linking an account needs the ticket that records why support may prove it');
    if (ticket && ticket.length > 100) throw new SupportError('support.ticket_too_long', 'a ticket reference has at most 100 characters');
    const userId = String(input.userId || '');
    const user = userId && await userById(userId);
    if (!user) throw new SupportError('support.no_such_user', 'no tenant user has that id', 404);
    const target = spec.target ? String(input.target || '') : null;
    // An account the user does not have is a typo, refused before anything is recorded.
    if (spec.target && !accountsOf(trickleOf(user)).some((a) => keyOf(a) === target)) throw new SupportError('support.no_such_account', 'name one of the person\'s accounts as product:id');
    if (!audit) throw new SupportError('support.audit_unavailable', 'no audit store: nothing is changed without one', 503);
    const before = snapshot(user);
    const base = { actor, actorEmail, action, userId, target, reason, ticket };
    // Recorded before anything changes: no write without its audit row.
    await audit.append({ ...base, outcome: 'requested', before });
    let result;
    try {
      result = await perform(action, user, target, { actor, reason, ticket });
    } catch (e) {
      const refused = e instanceof SupportError && e.refused === true;
      await audit.append({ ...base, outcome: refused ? 'refused' : 'failed', before, detail: refused ? `${e.code}: ${e.message}` : e.code || 'error' });
      // The user who holds the account sees the attempt on their own timeline too.
      for (const other of e.heldBy || []) {
        await audit.append({ ...base, userId: other, outcome: 'refused', detail: `${e.code}: ${action} on ${userId} refused, this user holds ${base.target || 'its account'}` });
      }
      throw e;
    }
    const after = result.user ? snapshot(result.user) : snapshot(await userById(userId) || user);
    await audit.append({ ...base, outcome: result.outcome, before, after, detail: result.detail || null });
    return { outcome: result.outcome, before, after, detail: result.detail || null };
  }

  /** Sends the core's requests to the products; resolves to their answers as the core reads them. */
  async function tell(requests) {
    return Promise.all(requests.map(async (q) => {
      const p = products.find((x) => x.name === q.product);
      const body = { auth0_user_id: q.auth0_user_id, ...(q.replace ? { replace: q.replace } : {}) };
      const r = p ? await productCall(p, q.forget ? 'DELETE' : 'PUT', `/trickle/accounts/${encodeURIComponent(q.account)}/auth0-id`, body) : { ok: false, status: 'unknown product' };
      const holder = r.status === 409 && r.body && typeof r.body.auth0_user_id === 'string' ? r.body.auth0_user_id : undefined;
      return { product: q.product, account: q.account, ok: !!r.ok, ...(holder ? { holder } : {}), status: r.status || r.error };
    }));
  }

  /** Performs what the core planned; every decision (what to prove, tell, withdraw) is the plan's. */
  async function perform(action, user, target, { actor, ticket }) {
    const plan = await planFix(action, user, target);
    if (plan.outcome === 'refused') throw refusal(plan.code, plan.message, plan.held_by || []);
    if (plan.outcome === 'nothing_to_do') return { outcome: 'nothing_to_do', detail: plan.detail };
    switch (action) {
      case 'block':
      case 'unblock':
        return { outcome: 'done', user: await patchUser(user.user_id, { blocked: action === 'block' }) };
      case 'reset': {
        // A random password nobody sees makes the old one stop working; the reset link goes to
        // the stored address, so completing it proves the mailbox as any reset does.
        await patchUser(user.user_id, { password: `${crypto.randomBytes(24).toString('base64url')}aA1!` });
        const base = String(cfg.tenant.url).replace(/\/+$/, '');
        const conn = ((user.identities || []).find((i) => i.provider === 'auth0') || {}).connection || 'trickle';
        let sent = false;
        try {
          const r = await fetch(`${base}/dbconnections/change_password`, { method: 'POST', signal: AbortSignal.timeout(timeout), headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: cfg.tenant.clientId, email: user.email, connection: conn }) });
          sent = r.ok;
        } catch (_) { sent = false; }
        return { outcome: sent ? 'done' : 'partial', detail: sent ? 'reset mail requested for the stored address' : 'the password was replaced but the reset mail could not be requested: run the fix again' };
      }
      default: {
        // The person may have signed in while the fix was planned (a proof, a fan-out, a merge
        // spent): the plan was made on the record as read, so it is written only onto that one.
        const fresh = await userById(user.user_id);
        if (!fresh || JSON.stringify(trickleOf(fresh)) !== JSON.stringify(trickleOf(user)) || !!(fresh.app_metadata || {}).migrated !== !!(user.app_metadata || {}).migrated) {
          throw refusal('support.record_changed', 'the person\'s record changed while the fix was planned (they signed in): nothing changed, look again');
        }
        let updated = Object.keys(plan.set_app_metadata || {}).length ? await patchUser(user.user_id, { app_metadata: plan.set_app_metadata }) : null;
        const requests = plan.fanout || [];
        if (!requests.length) return { outcome: 'done', user: updated, detail: action === 'link' ? `support proof by ${actor}, ticket ${ticket}` : plan.detail };
        const answers = await tell(requests);
        const now = updated || user;
        // The answers are recorded by the chain's own step (acknowledged, failed, or held by the
        // user the product names, to join at the next login).
        const applied = core().call('chain_apply', { user: coreUser(now), fanout: answers.map(({ status: _s, ...a }) => a), lookups: [] });
        if (applied && applied.set_app_metadata && Object.keys(applied.set_app_metadata).length) updated = await patchUser(user.user_id, { app_metadata: applied.set_app_metadata });
        const told = answers.filter((a) => a.ok).map((a) => `${a.product}:${a.account}`);
        const failed = answers.filter((a) => !a.ok).map((a) => `${a.product}:${a.account} (${a.status})`);
        const outcome = failed.length ? (told.length || action === 'withdraw' ? 'partial' : 'failed') : 'done';
        const verb = action === 'withdraw' ? 'told to forget' : 'told';
        return { outcome, user: updated, detail: [plan.detail, told.length && `${verb} ${told.join(', ')}`, failed.length && `not acknowledged ${failed.join(', ')}${action === 'withdraw' ? ': the next login tells it to forget the id' : ''}`].filter(Boolean).join('; ') };
      }
    }
  }

  return { find, fix, user: userById, audit: (o) => audit.list(o), FIXES, NOT_AVAILABLE };
}

module.exports = { supportService, SupportError, FIXES, NOT_AVAILABLE, canonical };
