// The simulated Auth0 tenant: hosted login with a custom database connection in import mode,
// the post-login pipeline (legacy Rules or the Action) with redirect and /continue, the token
// endpoint with RS256 id_tokens and JWKS, password reset by mail, part of the Management API
// with rate limits and fault injection. It runs what was deployed to it over the Management API
// (sim/management.js): the connection's scripts, the bound Action's deployed code and secrets, the
// enabled Rules; a simulator started without a deploy is seeded from dist/auth0/ unchanged.
// Assumptions where the platform's behaviour is not documented are in sim/FIDELITY.md.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const https = require('https');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const Fastify = require('fastify');
const bcryptjs = require('bcryptjs');
const runtime = require('./runtime');
const { RateLimiter } = require('./ratelimit');
const { jobRoutes } = require('./jobs');
const { loadCore } = require('../js-shim/node');
const { canonicalAddress } = require('./address');
const totp = require('./totp');
const management = require('./management');
const social = require('./social');
const { toAuth0Log } = require('./logstream');

const PKCE_VALUE = /^[A-Za-z0-9._~-]+$/;
const NO_REDIRECT = new Set(['oauth2-resource-owner', 'oauth2-refresh-token', 'oauth2-password']);
const b64url = (b) => Buffer.from(b).toString('base64url');
const randomId = (n = 16) => crypto.randomBytes(n).toString('hex');
const { esc } = require('./html');

function page(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;padding:2rem 2.5rem;border-radius:10px;box-shadow:0 2px 12px #0002;width:22rem}h1{font-size:1.3rem;margin-top:0}
label{display:block;margin:.8rem 0 .2rem;font-size:.9rem}input[type=text],input[type=password]{width:100%;padding:.55rem;box-sizing:border-box;border:1px solid #bbb;border-radius:6px}
button{margin-top:1.2rem;width:100%;padding:.65rem;border:0;border-radius:6px;background:#3b5bdb;color:#fff;font-size:1rem;cursor:pointer}
.social{display:block;text-align:center;padding:.6rem;border:1px solid #bbb;border-radius:6px;text-decoration:none;color:#222}.error{background:#ffe3e3;color:#a00;padding:.5rem .7rem;border-radius:6px}.note{color:#555;font-size:.85rem}a{color:#3b5bdb}</style></head>
<body><main>${body}</main></body></html>`;
}

/**
 * A self-signed certificate for 127.0.0.1, made by the openssl command line (node:crypto cannot
 * issue certificates): auth0-deploy-cli and the node SDK only speak https to a tenant's domain.
 * Returns `{key, cert, certFile, dir}`; the caller trusts it with NODE_EXTRA_CA_CERTS=certFile.
 */
function selfSignedCert() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-sim-tls-'));
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyFile, '-out', certFile], { stdio: 'pipe' });
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`the simulator's https listener needs the openssl command line: ${e.message}`);
  }
  return { key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile), certFile, dir };
}

/**
 * Starts the tenant. `options`: {port, pipeline ('action' or 'rules'), plan, mail, bcryptCost,
 * faults, https (also listen with TLS, for auth0-deploy-cli), store (sim/management.js), mfa
 * ({perLogin, perUser, refillMs}: wrong one-time codes allowed per login, per user, and how fast
 * the per-user allowance refills)}.
 * Returns `{url, httpsUrl, domain, caFile, store, state, close, …}`.
 */
async function startTenant(options) {
  const opts = { pipeline: 'action', plan: 'enterprise', bcryptCost: 8, ...options };
  const app = Fastify({ logger: false, bodyLimit: 600 * 1024 });
  await app.register(require('@fastify/formbody'));
  await app.register(require('@fastify/multipart'));
  // Clients send `content-type: application/json` on bodiless DELETEs: an empty body is {}.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (!body) return done(null, {});
    try {
      done(null, JSON.parse(body));
    } catch (e) {
      e.statusCode = 400;
      done(e);
    }
  });
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomId(8);
  const state = {
    users: new Map(), // user_id → user
    transactions: new Map(), // state → transaction
    codes: new Map(), // code → grant
    tickets: new Map(), // sha256(ticket) → reset ticket
    socialLogins: new Map(), // provider `state` → {txState, strategy, checks, browser, exp}
    events: [],
    counters: { lazy_migrated: 0, logins: 0, merge_redirects: 0, merged: 0, denied: 0, resets: 0, wrong_password: 0, mfa_challenges: 0, mfa_failed: 0 },
    // One-time passwords: the last step used per user and factor (a code works once), the
    // failed-code buckets per user, and the mfa_tokens the password grant hands out.
    mfa: { used: new Map(), buckets: new Map(), tokens: new Map() },
    faults: { latencyMs: 0, errorRate: 0, stormRate: 0, dropRate: 0, ...(opts.faults || {}) }
  };
  const limiter = new RateLimiter(opts.plan);
  let base = '';
  let httpsBase = '';
  // The Management API's audience, by either listener's address (the deploy-cli asks for https).
  const audiences = () => [`${base}/api/v2/`, ...(httpsBase ? [`${httpsBase}/api/v2/`] : [])];
  const clients = {
    'trickle-demo': { secret: 'demo-app-secret', redirectUris: () => [`${base}/app/callback`], name: 'Demo app' },
    'trickle-m2m': { secret: 'm2m-secret', redirectUris: () => [], name: 'trickle tools' }
  };

  function event(type, detail) {
    const entry = { at: new Date().toISOString(), type, ...detail };
    state.events.push(entry);
    if (state.events.length > 200) state.events.shift();
    // The log stream (sim/logstream.js): queued for delivery in the background.
    if (opts.onEvent) try { opts.onEvent(entry); } catch (_) { /* a stream never breaks the tenant */ }
  }

  // --- the runtimes: what was deployed, one container per kind, reused across calls like a warm
  // platform; a deploy that changes the code or its settings starts a fresh container ---
  const store = opts.store || management.createStore();
  const containers = new Map(); // kind → {key, value}
  function warm(kind, key, make) {
    const have = containers.get(kind);
    if (have && have.key === key) return have.value;
    const value = make();
    containers.set(kind, { key, value });
    event('container_started', { kind });
    return value;
  }
  /** The `trickle` connection's deployed login/get_user scripts, or null when it has none. */
  function dbScripts() {
    const c = management.connectionByName(store, 'trickle');
    const o = (c && c.options) || {};
    const scripts = o.enabledDatabaseCustomization ? o.customScripts || {} : {};
    const configuration = o.configuration || {};
    return warm('database', JSON.stringify([scripts, configuration]), () => {
      const ctr = runtime.container({ configuration: { ...configuration } }, { modules: ['bcrypt'] });
      const compile = (k) => (typeof scripts[k] === 'string' ? runtime.compileSource(scripts[k], ctr) : null);
      return { login: compile('login'), getUser: compile('get_user'), importMode: o.import_mode === true };
    });
  }
  /** The post-login Actions bound to the trigger, each its deployed version's code and secrets. */
  function postLoginActions() {
    return management.boundActions(store).map((a) => warm(`action:${a.id}`, a.version, () => ({ ...a, module: runtime.loadActionSource(a.code, runtime.container()), cache: runtime.actionCache() })));
  }
  /** The enabled Rules in order, compiled in one container whose `configuration` is the rules-configs. */
  function enabledRules() {
    const rules = management.enabledRules(store);
    const configuration = Object.fromEntries(store.rulesConfigs);
    return warm('rules', JSON.stringify([rules.map((r) => [r.id, r.script]), configuration]), () => {
      const ctr = runtime.container({
        configuration,
        auth0: { users: { updateAppMetadata: async (id, meta) => { const u = state.users.get(id); if (u) u.app_metadata = JSON.parse(JSON.stringify(meta)); } } }
      });
      return rules.map((r) => ({ name: r.name, fn: runtime.compileSource(r.script, ctr) }));
    });
  }

  // --- tokens ---
  function signJwt(claims) {
    const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid }));
    const body = b64url(JSON.stringify(claims));
    return `${header}.${body}.${b64url(crypto.sign('sha256', Buffer.from(`${header}.${body}`), privateKey))}`;
  }
  function verifyJwt(token) {
    const [h, b, s] = String(token || '').split('.');
    if (!s) return null;
    if (!crypto.verify('sha256', Buffer.from(`${h}.${b}`), publicKey, Buffer.from(s, 'base64url'))) return null;
    const claims = JSON.parse(Buffer.from(b, 'base64url').toString());
    return claims.exp > Date.now() / 1000 ? claims : null;
  }

  // --- the user store ---
  // Every stored address is canonical (sim/address.js), so one comparison finds every spelling.
  // The database connection holds one user per address; users of social connections may share an
  // address with it and with each other (they are told apart by `<strategy>|<sub>`).
  const isDatabaseUser = (u) => !!(u.identities && u.identities[0] && u.identities[0].provider === 'auth0');
  const findByEmail = (email) => {
    const c = canonicalAddress(email);
    return c ? [...state.users.values()].find((u) => u.email === c && isDatabaseUser(u)) : undefined;
  };
  /**
   * The password, address and id of database identities linked into another user (`auth0|<id>` →
   * {email, password_hash | custom_password_hash}): the identity is no user of its own any more,
   * but it still signs in, as the user it joined.
   */
  const linkedDb = new Map();
  function linkedByEmail(c) {
    for (const [key, cred] of linkedDb) {
      if (cred.email !== c) continue;
      const held = userWithIdentity('auth0', key.slice(6));
      if (held) return { cred, holder: held.user, id: key.slice(6) };
    }
    return null;
  }
  /** Every user holding the address, of any connection (what users-by-email answers). */
  const usersByEmail = (c) => [...state.users.values()].filter((u) => u.email === c);
  /**
   * Stores a new user, the one way every create path (login-script import, reset of a user not yet
   * migrated, Management API, import job, social login) adds one. A database user is refused when
   * the address has no canonical form or another database user already holds it (Auth0's "user
   * already exists"): one address, one user. Returns `{user}` or `{error: 'invalid_email' | 'conflict'}`.
   */
  function addUser(fields) {
    const database = isDatabaseUser(fields);
    const email = fields.email === undefined && !database ? undefined : canonicalAddress(fields.email);
    if (email === null) return { error: 'invalid_email' };
    if ((database && (findByEmail(email) || linkedByEmail(email))) || state.users.has(fields.user_id)) return { error: 'conflict' };
    const user = { ...fields, email };
    if (user.email === undefined) delete user.email;
    state.users.set(user.user_id, user);
    return { user };
  }
  function publicUser(u) {
    const { password_hash: _, custom_password_hash: __, ...rest } = u;
    return JSON.parse(JSON.stringify(rest));
  }
  function createUser(profile, password, via) {
    const now = new Date().toISOString();
    const id = `auth0|${profile.user_id}`;
    const r = addUser({
      user_id: id, email: profile.email, email_verified: !!profile.email_verified,
      name: profile.name, given_name: profile.given_name, family_name: profile.family_name, picture: profile.picture,
      app_metadata: profile.app_metadata || {}, user_metadata: profile.user_metadata || {},
      identities: [{ provider: 'auth0', connection: 'trickle', user_id: String(profile.user_id), isSocial: false }],
      mfa_factors: profile.mfa_factors || [], created_at: now, updated_at: now, logins_count: 0,
      password_hash: bcryptjs.hashSync(password, opts.bcryptCost)
    });
    if (r.error) {
      event('user_refused', { via, reason: r.error });
      return r;
    }
    if (via === 'login') state.counters.lazy_migrated++;
    event('user_created', { user_id: id, via });
    return r;
  }

  /** The database connection in import mode: the store first, then login.js. */
  async function databaseLogin(typed, password) {
    // The store and login.js see the same, canonical address; one that has none signs nobody in.
    const email = canonicalAddress(typed);
    if (!email) return { wrong: true };
    const linked = findByEmail(email) ? null : linkedByEmail(email);
    if (linked) {
      // A database identity linked into another user still signs in with its password, as that user.
      const { cred, holder, id } = linked;
      let ok = false;
      if (cred.custom_password_hash) {
        ok = verifier().call('verify_password', { descriptor: cred.custom_password_hash, password }).outcome === 'match';
        if (ok) { cred.password_hash = bcryptjs.hashSync(password, opts.bcryptCost); delete cred.custom_password_hash; }
      } else ok = !!cred.password_hash && bcryptjs.compareSync(password, cred.password_hash);
      if (!ok) return { wrong: true };
      if (holder.blocked) return { error: 'user is blocked' };
      return { user: holder, identity: { provider: 'auth0', user_id: id } };
    }
    const known = findByEmail(email);
    if (known) {
      if (known.blocked) return { error: 'user is blocked' };
      if (known.custom_password_hash) {
        // An imported legacy hash: verified once, then replaced by bcrypt (as Auth0 does).
        const r = verifier().call('verify_password', { descriptor: known.custom_password_hash, password });
        if (r.outcome !== 'match') return { wrong: true };
        known.password_hash = bcryptjs.hashSync(password, opts.bcryptCost);
        delete known.custom_password_hash;
        return { user: known };
      }
      return known.password_hash && bcryptjs.compareSync(password, known.password_hash) ? { user: known } : { wrong: true };
    }
    const { login: loginScript, importMode } = dbScripts();
    // A connection without a deployed login script, or with import mode off (the migration is
    // finished), has only the tenant's own store.
    if (!loginScript || !importMode) return { wrong: true };
    const [err, profile] = await runtime.callScript(loginScript, [email, password]);
    if (err) {
      if (err.name === 'WrongUsernameOrPasswordError') return { wrong: true };
      // UnauthorizedError: the script refuses this sign-in with a message for the person.
      if (err.name === 'UnauthorizedError') return { refused: String(err.message || 'Access denied.') };
      return { error: err.message };
    }
    if (!profile || !profile.user_id) return { error: 'the login script returned no profile' };
    const existing = userWithIdentity('auth0', String(profile.user_id));
    // DUPLICATED_USER: the same person under another address (or linked into another user).
    if (existing) return { user: existing.user, identity: { provider: 'auth0', user_id: String(profile.user_id) } };
    const created = createUser(JSON.parse(JSON.stringify(profile)), password, 'login');
    if (created.error === 'conflict') return { conflict: true };
    if (created.error) return { error: 'the login script returned an address that cannot be stored' };
    return { user: created.user };
  }

  let core = null;
  const verifier = () => core || (core = loadCore('full'));

  // --- multi-factor authentication: the TOTP factors a user brought (import or login script) ---
  // A person enrolled with an authenticator app is asked for its code once the rest of the login
  // (password, post-login pipeline, a redirect and /continue) has succeeded, before any code or
  // token is issued. Wrong codes are limited per login and per user (a bucket of `perUser`
  // failures refilled one every `refillMs`, as Auth0 documents for OTP verification).
  const mfaLimits = { perLogin: 5, perUser: 10, refillMs: 6 * 60000, ...(opts.mfa || {}) };
  const totpSecrets = (user) => (user && Array.isArray(user.mfa_factors) ? user.mfa_factors : [])
    .map((f) => f && f.totp && f.totp.secret).filter((x) => typeof x === 'string' && totp.base32Decode(x));
  function mfaBucket(userId) {
    const now = Date.now();
    const b = state.mfa.buckets.get(userId) || { tokens: mfaLimits.perUser, at: now };
    b.tokens = Math.min(mfaLimits.perUser, b.tokens + (now - b.at) / mfaLimits.refillMs);
    b.at = now;
    state.mfa.buckets.set(userId, b);
    return b;
  }
  /** Checks a typed one-time code for `user`: 'ok', 'wrong' or 'locked' (too many failures). */
  function checkOtp(user, code) {
    const bucket = mfaBucket(user.user_id);
    if (bucket.tokens < 1) return 'locked';
    const secrets = totpSecrets(user);
    for (let i = 0; i < secrets.length; i++) {
      const step = totp.verify(secrets[i], code);
      const key = `${user.user_id}\n${i}`;
      // A code is spent once used: the same or an older step is refused (no replay).
      if (step !== null && step > (state.mfa.used.has(key) ? state.mfa.used.get(key) : -1)) {
        state.mfa.used.set(key, step);
        return 'ok';
      }
    }
    bucket.tokens -= 1;
    return 'wrong';
  }

  // --- bulk import and export jobs ---
  const jobStore = {
    findByEmail,
    get: (id) => state.users.get(id),
    all: () => [...state.users.values()].map(publicUser),
    insert(u) {
      const now = new Date().toISOString();
      const id = `auth0|${u.user_id || randomId(12)}`;
      const r = addUser({
        user_id: id, email: u.email, email_verified: !!u.email_verified, name: u.name, given_name: u.given_name,
        family_name: u.family_name, picture: u.picture, blocked: !!u.blocked, app_metadata: u.app_metadata || {}, user_metadata: u.user_metadata || {},
        identities: [{ provider: 'auth0', connection: 'trickle', user_id: id.slice(6), isSocial: false }], mfa_factors: u.mfa_factors || [],
        created_at: now, updated_at: now, logins_count: 0, password_hash: u.password_hash, custom_password_hash: u.custom_password_hash
      });
      if (!r.error) state.counters.bulk_imported = (state.counters.bulk_imported || 0) + 1;
      return r;
    },
    update(existing, u) {
      // Upsert overwrites app_metadata and user_metadata; it does not merge them.
      for (const k of ['email_verified', 'name', 'given_name', 'family_name', 'picture', 'blocked', 'app_metadata', 'user_metadata', 'mfa_factors']) {
        if (u[k] !== undefined) existing[k] = u[k];
      }
      if (u.password_hash) { existing.password_hash = u.password_hash; delete existing.custom_password_hash; }
      if (u.custom_password_hash) existing.custom_password_hash = u.custom_password_hash;
      existing.updated_at = new Date().toISOString();
    }
  };
  const jobs = jobRoutes(app, jobStore, { usersPerSecond: opts.importRate, expireAfterMs: opts.jobExpireAfterMs, base: () => base });

  // --- the post-login pipeline ---
  async function postLogin(tx, phase, request) {
    const user = state.users.get(tx.userId);
    const canRedirect = !NO_REDIRECT.has(tx.protocol) && tx.prompt !== 'none';
    if (opts.pipeline === 'rules') {
      const context = {
        protocol: phase === 'continue' ? 'redirect-callback' : tx.protocol, connection: connectionOf(tx).name, connectionStrategy: connectionOf(tx).strategy, clientID: tx.clientId,
        request: { query: request.query || {}, body: request.body || {}, ip: '127.0.0.1' }
      };
      if (!canRedirect && phase === 'execute') context.request.query.prompt = 'none';
      // Every enabled Rule runs in order, each given the user and context the previous one returned.
      let u = publicUser(user);
      let ctx = context;
      for (const rule of enabledRules()) {
        const [err, u2, ctx2] = await runtime.callScript(rule.fn, [u, ctx]);
        if (err) return { outcome: 'deny', reason: err.message };
        u = u2 || u;
        ctx = ctx2 || ctx;
      }
      if (ctx && ctx.redirect && ctx.redirect.url) return { outcome: 'redirect', url: ctx.redirect.url };
      return { outcome: 'continue' };
    }
    const writes = {};
    let redirect = null;
    let denied = null;
    let primary = null;
    let cache = null; // the running Action's api.cache (set per Action below)
    const api = {
      user: { setAppMetadata: (k, v) => { writes[k] = v === undefined ? null : JSON.parse(JSON.stringify(v)); }, setUserMetadata: () => {} },
      redirect: { canRedirect: () => canRedirect, sendUserTo: (url, o) => { redirect = { url, query: (o && o.query) || {} }; } },
      access: { deny: (reason) => { denied = String(reason); } },
      // The login continues as this user after the Actions, if the identity that signed in is by
      // then one of its linked (secondary) identities; checked below.
      authentication: { setPrimaryUser: (id) => { primary = String(id); } },
      cache: {
        get: (key) => cache.get(key),
        set: (key, value, o) => cache.set(key, value, o),
        delete: (key) => cache.delete(key)
      }
    };
    // The bound Actions run in order; a redirect pauses the flow after its Action, and /continue
    // resumes that Action's onContinuePostLogin, then the Actions after it.
    const actions = postLoginActions();
    let i = phase === 'continue' ? actions.findIndex((a) => a.id === tx.pausedAction) : 0;
    if (phase === 'continue' && i < 0) return { outcome: 'deny', reason: 'The Action that redirected is no longer bound.' };
    for (let first = true; i < actions.length && !redirect && !denied; i++, first = false) {
      const a = actions[i];
      cache = a.cache;
      const evt = {
        user: publicUser(state.users.get(user.user_id) || user), secrets: { ...a.secrets }, connection: { ...connectionOf(tx) },
        client: { client_id: tx.clientId }, transaction: { protocol: tx.protocol, state: tx.state },
        request: { query: request.query || {}, body: request.body || {}, ip: '127.0.0.1' }
      };
      const handler = phase === 'continue' && first ? a.module.onContinuePostLogin : a.module.onExecutePostLogin;
      try {
        if (typeof handler === 'function') await handler(evt, api);
      } catch (e) {
        event('action_threw', { action: a.name, message: e.message });
        return { outcome: 'deny', reason: 'The post-login Action failed.' };
      }
      if (redirect) tx.pausedAction = a.id;
    }
    // Metadata set by the Action is written once, at the end of the flow or at the redirect, to
    // the user the Action was given; one linked into another user meanwhile is gone, and so are
    // its writes.
    if (state.users.get(user.user_id) === user) {
      for (const [k, v] of Object.entries(writes)) {
        if (v === null) delete user.app_metadata[k];
        else user.app_metadata[k] = v;
      }
    } else if (Object.keys(writes).length) event('metadata_dropped', { user_id: user.user_id, reason: 'the user was linked into another' });
    if (denied) return { outcome: 'deny', reason: denied };
    if (primary !== null) {
      const target = state.users.get(primary);
      const id = tx.identity || {};
      const linked = target && target.identities.slice(1).some((x) => x.provider === id.provider && x.user_id === id.user_id);
      if (!linked && !(primary === tx.userId && target)) {
        event('primary_user_refused', { user_id: tx.userId, primary });
        return { outcome: 'deny', reason: 'setPrimaryUser: the identity of this login is not linked to that user.' };
      }
      if (primary !== tx.userId) event('primary_user_set', { from: tx.userId, to: primary });
      tx.userId = primary;
    }
    if (redirect) {
      const u = new URL(redirect.url);
      for (const [k, v] of Object.entries(redirect.query)) u.searchParams.set(k, v);
      return { outcome: 'redirect', url: u.toString() };
    }
    return { outcome: 'continue' };
  }

  /** Finishes a transaction after the pipeline: a code back to the app, or an error. */
  function finish(reply, tx, result) {
    const back = new URL(tx.redirectUri);
    if (tx.appState) back.searchParams.set('state', tx.appState);
    if (result.outcome === 'deny') {
      state.counters.denied++;
      event('login_denied', { user_id: tx.userId, reason: result.reason });
      state.transactions.delete(tx.state);
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', result.reason);
      return reply.redirect(back.toString(), 302);
    }
    if (result.outcome === 'redirect') {
      state.counters.merge_redirects++;
      event('redirect', { user_id: tx.userId });
      tx.redirected = true;
      const u = new URL(result.url);
      u.searchParams.set('state', tx.state);
      return reply.redirect(u.toString(), 302);
    }
    if (!tx.mfaPassed && totpSecrets(state.users.get(tx.userId)).length) {
      // The second factor comes last, after the pipeline, as on the platform.
      if (!tx.mfa) {
        tx.mfa = { wrong: 0 };
        state.counters.mfa_challenges++;
        event('mfa_challenge', { user_id: tx.userId });
      }
      return reply.type('text/html').send(mfaPage(tx));
    }
    if (!state.users.get(tx.userId)) {
      // The user the login started as was linked into another, and the login was not moved to it.
      return finish(reply, tx, { outcome: 'deny', reason: 'The user of this login no longer exists.' });
    }
    const code = randomId(16);
    state.codes.set(code, { userId: tx.userId, clientId: tx.clientId, redirectUri: tx.redirectUri, nonce: tx.nonce, codeChallenge: tx.codeChallenge, exp: Date.now() + 600000 });
    state.transactions.delete(tx.state);
    const user = state.users.get(tx.userId);
    user.logins_count++;
    user.last_login = new Date().toISOString();
    state.counters.logins++;
    event('login', { user_id: tx.userId });
    back.searchParams.set('code', code);
    return reply.redirect(back.toString(), 302);
  }

  function loginPage(tx, error) {
    return page('Sign in', `<h1>Sign in</h1>${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/u/login"><input type="hidden" name="state" value="${esc(tx.state)}">
<label for="email">Email</label><input id="email" name="email" type="text" inputmode="email" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Continue</button></form>
<p class="note"><a href="/lo/reset?state=${encodeURIComponent(tx.state)}">Forgot password?</a></p>${socialButtons(tx)}`);
  }
  function socialButtons(tx) {
    if (!socialConns.size) return '';
    return `<p class="note">or</p>${[...socialConns.values()].map((c) => `<p><a class="social" data-connection="${esc(c.name)}" href="/u/login/federated?state=${encodeURIComponent(tx.state)}&amp;connection=${encodeURIComponent(c.name)}">Continue with ${esc(c.label)}</a></p>`).join('')}`;
  }

  function mfaPage(tx, error) {
    return page('Verify your identity', `<h1>Verify your identity</h1>${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<p class="note">Your account is protected by an authenticator app.</p>
<form method="post" action="/u/mfa-otp-challenge"><input type="hidden" name="state" value="${esc(tx.state)}">
<label for="code">Enter the code from your authenticator app</label><input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required autofocus>
<button type="submit">Continue</button></form>`);
  }

  // --- rate limits and faults on the APIs ---
  app.addHook('onRequest', async (req, reply) => {
    const api = req.url.startsWith('/api/v2') || req.url.startsWith('/oauth/token');
    if (!api) return;
    const f = state.faults;
    if (f.latencyMs) await new Promise((r) => setTimeout(r, f.latencyMs));
    if (f.dropRate && Math.random() < f.dropRate) { req.raw.socket.destroy(); return reply; }
    const bucket = req.url.startsWith('/oauth/token') ? 'authentication' : req.method !== 'GET' && /\/api\/v2\/users/.test(req.url) ? 'user_writes' : 'other';
    const r = limiter.take(bucket);
    reply.header('x-ratelimit-limit', r.limit).header('x-ratelimit-remaining', r.remaining).header('x-ratelimit-reset', r.reset);
    const storm = f.stormRate && Math.random() < f.stormRate;
    if (!r.ok || storm) {
      if (r.retryAfter) reply.header('retry-after', r.retryAfter);
      return reply.code(429).send({ statusCode: 429, error: 'Too Many Requests', message: 'Global limit has been reached', errorCode: 'too_many_requests' });
    }
    if (f.errorRate && Math.random() < f.errorRate) return reply.code(503).send({ statusCode: 503, error: 'Service Unavailable', message: 'injected fault' });
  });

  // --- OIDC ---
  app.get('/.well-known/openid-configuration', async () => ({
    issuer: `${base}/`, authorization_endpoint: `${base}/authorize`, token_endpoint: `${base}/oauth/token`,
    jwks_uri: `${base}/.well-known/jwks.json`, userinfo_endpoint: `${base}/userinfo`,
    response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'],
    grant_types_supported: ['authorization_code', 'password', 'client_credentials', 'http://auth0.com/oauth/grant-type/mfa-otp'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'], scopes_supported: ['openid', 'profile', 'email'],
    code_challenge_methods_supported: ['S256']
  }));
  app.get('/.well-known/jwks.json', async () => ({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' }] }));

  app.get('/authorize', async (req, reply) => {
    const q = req.query || {};
    const client = clients[q.client_id];
    if (!client) return reply.code(400).type('text/html').send(page('Error', '<h1>Unknown client</h1>'));
    if (!client.redirectUris().includes(q.redirect_uri)) return reply.code(400).type('text/html').send(page('Error', '<h1>Callback URL mismatch</h1>'));
    if (q.response_type !== 'code') {
      const back = new URL(q.redirect_uri);
      back.searchParams.set('error', 'unsupported_response_type');
      return reply.redirect(back.toString(), 302);
    }
    // PKCE (RFC 7636): S256 only; a plain challenge would hand the verifier to whoever sees the URL.
    if (q.code_challenge !== undefined || q.code_challenge_method !== undefined) {
      if (q.code_challenge_method !== 'S256' || !PKCE_VALUE.test(String(q.code_challenge || '')) || String(q.code_challenge).length !== 43) {
        const back = new URL(q.redirect_uri);
        back.searchParams.set('error', 'invalid_request');
        back.searchParams.set('error_description', 'code_challenge must be an S256 challenge (code_challenge_method=S256)');
        if (q.state) back.searchParams.set('state', q.state);
        return reply.redirect(back.toString(), 302);
      }
    }
    const tx = { state: randomId(12), clientId: q.client_id, redirectUri: q.redirect_uri, appState: q.state, nonce: q.nonce, prompt: q.prompt, protocol: 'oidc-basic-profile', codeChallenge: q.code_challenge, created: Date.now() };
    state.transactions.set(tx.state, tx);
    if (q.prompt === 'none') return finish(reply, tx, { outcome: 'deny', reason: 'login_required' });
    // `connection` skips the login page: straight to that social connection's provider.
    if (q.connection !== undefined && q.connection !== 'trickle') {
      if (!socialConns.has(q.connection)) return finish(reply, tx, { outcome: 'deny', reason: 'the connection was not found' });
      return startSocial(reply, tx, q.connection);
    }
    return reply.type('text/html').send(loginPage(tx));
  });

  app.post('/u/login', async (req, reply) => {
    const body = req.body || {};
    const tx = state.transactions.get(body.state);
    if (!tx) return reply.code(400).type('text/html').send(page('Error', '<h1>This login has expired</h1><p>Go back to the application and try again.</p>'));
    const r = await databaseLogin(body.email, body.password);
    if (r.conflict) {
      event('login_refused', { reason: 'user already exists' });
      return reply.code(409).type('text/html').send(loginPage(tx, 'The user already exists.'));
    }
    if (r.refused) {
      event('login_refused', { email_domain: String(body.email || '').split('@')[1] });
      return reply.code(401).type('text/html').send(loginPage(tx, r.refused));
    }
    if (r.wrong || r.error) {
      if (r.wrong) state.counters.wrong_password++;
      event(r.wrong ? 'wrong_password' : 'login_error', { email_domain: String(body.email || '').split('@')[1] });
      return reply.code(r.wrong ? 401 : 503).type('text/html').send(loginPage(tx, r.wrong ? 'Wrong email or password.' : `We could not sign you in right now: ${r.error}`));
    }
    tx.userId = r.user.user_id;
    tx.identity = r.identity || { provider: 'auth0', user_id: r.user.identities[0].user_id };
    return finish(reply, tx, await postLogin(tx, 'execute', { query: {}, body: {} }));
  });

  // --- social connections: the tenant as the relying party of Google, Apple and Slack ---
  const socialConns = new Map(); // strategy → {strategy, name, id, label, rp}
  const callbackUrl = () => `${base}/login/callback`;
  const connectionOf = (tx) => tx.connection || { id: 'con_trickle', name: 'trickle', strategy: 'auth0' };
  /**
   * Enables the social connection `strategy` against a provider: `{issuer, clientId, clientSecret,
   * scope, responseMode}`. The connection appears in the Management API like the others.
   */
  function connectSocial(strategy, cfg) {
    const known = social.STRATEGIES[strategy];
    if (!known) throw new Error(`unknown social strategy ${strategy}; one of ${Object.keys(social.STRATEGIES).join(', ')}`);
    const conn = { strategy, name: strategy, id: known.id, label: known.label, rp: social.relyingParty({ ...cfg, strategy, redirectUri: callbackUrl }) };
    socialConns.set(strategy, conn);
    if (!store.connections.has(conn.id)) {
      const t = new Date().toISOString();
      store.connections.set(conn.id, { id: conn.id, name: strategy, display_name: known.label, strategy, options: { client_id: cfg.clientId, scope: String(cfg.scope || '').split(' ') }, realms: [strategy], is_domain_connection: false, created_at: t, updated_at: t });
      store.enabledClients.set(conn.id, new Set(Object.keys(clients)));
    }
    return conn;
  }
  /** The user holding the identity (`provider`, `user_id`), as its own or as a linked one. */
  function userWithIdentity(provider, userId) {
    for (const u of state.users.values()) {
      const i = (u.identities || []).findIndex((x) => x.provider === provider && String(x.user_id) === String(userId));
      if (i >= 0) return { user: u, index: i };
    }
    return null;
  }
  /**
   * The user a social login signs in: the holder of the identity (its profile refreshed from the
   * provider, as Auth0 does at every login), else a new `<strategy>|<sub>` user.
   */
  function socialUser(conn, claims) {
    const p = social.profileFrom(conn.strategy, claims);
    const now = new Date().toISOString();
    const held = userWithIdentity(conn.strategy, p.sub);
    if (held) {
      const { user, index } = held;
      if (index === 0) {
        const { sub: _, email, ...rest } = p;
        Object.assign(user, rest);
        if (email !== undefined) { const c = canonicalAddress(email); if (c) user.email = c; }
      } else user.identities[index].profileData = social.profileData(p);
      user.updated_at = now;
      return { user };
    }
    const { sub, ...fields } = p;
    const r = addUser({
      user_id: `${conn.strategy}|${sub}`, ...fields, app_metadata: {}, user_metadata: {},
      identities: [{ provider: conn.strategy, user_id: sub, connection: conn.name, isSocial: true }], mfa_factors: [], created_at: now, updated_at: now, logins_count: 0
    });
    if (!r.error) event('user_created', { user_id: r.user.user_id, via: conn.strategy });
    return r;
  }
  async function startSocial(reply, tx, strategy) {
    const conn = socialConns.get(strategy);
    if (!conn) return reply.code(400).type('text/html').send(page('Error', '<h1>Unknown connection</h1>'));
    let started;
    try {
      started = await conn.rp.start();
    } catch (e) {
      event('social_unavailable', { connection: strategy });
      return reply.code(503).type('text/html').send(loginPage(tx, `${conn.label} cannot be reached right now.`));
    }
    // The login is bound to this browser: the callback needs the cookie set here (login CSRF).
    const b = social.binding();
    state.socialLogins.set(started.checks.state, { txState: tx.state, strategy, checks: started.checks, browser: b.digest, exp: Date.now() + 10 * 60000 });
    for (const [k, v] of state.socialLogins) if (v.exp < Date.now()) state.socialLogins.delete(k);
    reply.header('set-cookie', `sx_${started.checks.state}=${b.value}; Path=/login/callback; HttpOnly; SameSite=Lax; Max-Age=600`);
    event('social_redirect', { connection: strategy });
    return reply.redirect(started.url, 302);
  }
  app.get('/u/login/federated', async (req, reply) => {
    const q = req.query || {};
    const tx = state.transactions.get(q.state);
    if (!tx) return reply.code(400).type('text/html').send(page('Error', '<h1>This login has expired</h1><p>Go back to the application and try again.</p>'));
    return startSocial(reply, tx, q.connection);
  });
  const socialCallback = async (req, reply) => {
    const params = req.method === 'POST' ? { ...(req.body || {}) } : { ...(req.query || {}) };
    const key = typeof params.state === 'string' ? params.state : '';
    const pending = state.socialLogins.get(key);
    if (pending) state.socialLogins.delete(key); // one answer per login, whatever it is
    if (!pending || pending.exp < Date.now()) return reply.code(400).type('text/html').send(page('Error', '<h1>Invalid state</h1><p>Go back to the application and sign in again.</p>'));
    reply.header('set-cookie', `sx_${key}=; Path=/login/callback; HttpOnly; SameSite=Lax; Max-Age=0`);
    const presented = social.cookies(req)[`sx_${key}`];
    if (!presented || social.digest(presented) !== pending.browser) {
      event('social_refused', { connection: pending.strategy, reason: 'another browser' });
      return reply.code(400).type('text/html').send(page('Error', '<h1>This sign-in was started in another browser</h1><p>Go back to the application and sign in again.</p>'));
    }
    const tx = state.transactions.get(pending.txState);
    if (!tx) return reply.code(400).type('text/html').send(page('Error', '<h1>This login has expired</h1><p>Go back to the application and try again.</p>'));
    const conn = socialConns.get(pending.strategy);
    if (params.error) return finish(reply, tx, { outcome: 'deny', reason: `${conn.label}: ${String(params.error)}` });
    let claims;
    try {
      claims = await conn.rp.finish(params, pending.checks);
    } catch (e) {
      event('social_failed', { connection: conn.name, reason: e.name || 'error' });
      return finish(reply, tx, { outcome: 'deny', reason: `The answer of ${conn.label} could not be verified.` });
    }
    const r = socialUser(conn, claims);
    if (r.error) return finish(reply, tx, { outcome: 'deny', reason: `The profile from ${conn.label} cannot be stored.` });
    tx.userId = r.user.user_id;
    tx.connection = { id: conn.id, name: conn.name, strategy: conn.strategy };
    tx.identity = { provider: conn.strategy, user_id: String(claims.sub) };
    event('social_login', { connection: conn.name, user_id: tx.userId });
    return finish(reply, tx, await postLogin(tx, 'execute', { query: {}, body: {} }));
  };
  app.get('/login/callback', socialCallback);
  app.post('/login/callback', socialCallback);

  const resume = async (req, reply) => {
    const q = req.query || {};
    const tx = state.transactions.get(q.state);
    if (!tx || !tx.redirected) return reply.code(400).type('text/html').send(page('Error', '<h1>Invalid state</h1>'));
    tx.redirected = false;
    const result = await postLogin(tx, 'continue', { query: q, body: req.body || {} });
    if (result.outcome === 'continue' && state.users.get(tx.userId).app_metadata.migrated) state.counters.merged++;
    return finish(reply, tx, result.outcome === 'redirect' ? { outcome: 'deny', reason: 'only one redirect per login' } : result);
  };
  app.get('/continue', resume);
  app.post('/continue', resume);

  app.post('/u/mfa-otp-challenge', async (req, reply) => {
    const body = req.body || {};
    const tx = state.transactions.get(body.state);
    const user = tx && tx.mfa && state.users.get(tx.userId);
    if (!user) return reply.code(400).type('text/html').send(page('Error', '<h1>This login has expired</h1><p>Go back to the application and try again.</p>'));
    const r = checkOtp(user, body.code);
    if (r === 'ok') {
      tx.mfaPassed = true;
      event('mfa_success', { user_id: tx.userId });
      return finish(reply, tx, { outcome: 'continue' });
    }
    state.counters.mfa_failed++;
    event('mfa_failed', { user_id: tx.userId, reason: r });
    tx.mfa.wrong++;
    if (r === 'locked') return finish(reply, tx, { outcome: 'deny', reason: 'Too many failed codes for this account. Try again later.' });
    const left = mfaLimits.perLogin - tx.mfa.wrong;
    if (left <= 0) return finish(reply, tx, { outcome: 'deny', reason: 'Too many wrong codes.' });
    return reply.code(401).type('text/html').send(mfaPage(tx, `That code is not valid. ${left} ${left === 1 ? 'attempt' : 'attempts'} left.`));
  });

  function clientAuth(req) {
    const body = req.body || {};
    let id = body.client_id;
    let secret = body.client_secret;
    const basic = /^Basic (.+)$/.exec(req.headers.authorization || '');
    if (basic) [id, secret] = Buffer.from(basic[1], 'base64').toString().split(':').map(decodeURIComponent);
    const client = clients[id];
    return client && client.secret === secret ? id : null;
  }

  function tokens(user, clientId, nonce) {
    const now = Math.floor(Date.now() / 1000);
    const idToken = signJwt({
      iss: `${base}/`, aud: clientId, sub: user.user_id, iat: now, exp: now + 3600, ...(nonce ? { nonce } : {}),
      email: user.email, email_verified: user.email_verified, name: user.name
    });
    const accessToken = signJwt({ iss: `${base}/`, aud: `${base}/userinfo`, sub: user.user_id, azp: clientId, iat: now, exp: now + 3600, scope: 'openid profile email' });
    return { access_token: accessToken, id_token: idToken, token_type: 'Bearer', expires_in: 3600, scope: 'openid profile email' };
  }

  app.post('/oauth/token', async (req, reply) => {
    const body = req.body || {};
    const clientId = clientAuth(req);
    if (!clientId) return reply.code(401).send({ error: 'invalid_client', error_description: 'Unknown client or wrong secret' });
    if (body.grant_type === 'authorization_code') {
      const grant = state.codes.get(body.code);
      state.codes.delete(body.code);
      if (!grant || grant.exp < Date.now() || grant.clientId !== clientId || grant.redirectUri !== body.redirect_uri) {
        return reply.code(403).send({ error: 'invalid_grant', error_description: 'Invalid authorization code' });
      }
      // A code issued with a challenge needs its verifier; a verifier without a challenge is refused too.
      if (grant.codeChallenge || body.code_verifier !== undefined) {
        const verifier = String(body.code_verifier || '');
        const ok = grant.codeChallenge && PKCE_VALUE.test(verifier) && verifier.length >= 43 && verifier.length <= 128
          && crypto.timingSafeEqual(Buffer.from(b64url(crypto.createHash('sha256').update(verifier).digest())), Buffer.from(grant.codeChallenge));
        if (!ok) return reply.code(403).send({ error: 'invalid_grant', error_description: 'Failed to verify code verifier' });
      }
      return tokens(state.users.get(grant.userId), clientId, grant.nonce);
    }
    if (body.grant_type === 'password' || body.grant_type === 'http://auth0.com/oauth/grant-type/password-realm') {
      const r = await databaseLogin(body.username, body.password);
      if (r.conflict) return reply.code(409).send({ error: 'user_exists', error_description: 'The user already exists.' });
      if (r.wrong) return reply.code(403).send({ error: 'invalid_grant', error_description: 'Wrong email or password.' });
      if (r.refused) return reply.code(401).send({ error: 'unauthorized', error_description: r.refused });
      if (r.error) return reply.code(503).send({ error: 'temporarily_unavailable', error_description: r.error });
      const tx = { state: randomId(12), clientId, userId: r.user.user_id, protocol: 'oauth2-resource-owner', identity: r.identity || { provider: 'auth0', user_id: r.user.identities[0].user_id } };
      const result = await postLogin(tx, 'execute', { query: {}, body: {} });
      if (result.outcome === 'deny') return reply.code(403).send({ error: 'access_denied', error_description: result.reason });
      if (totpSecrets(state.users.get(r.user.user_id)).length) {
        // The password was right; the tokens wait for the second factor (the mfa-otp grant).
        const mfaToken = randomId(24);
        state.mfa.tokens.set(mfaToken, { userId: r.user.user_id, clientId, exp: Date.now() + 10 * 60000 });
        for (const [k, v] of state.mfa.tokens) if (v.exp < Date.now()) state.mfa.tokens.delete(k);
        state.counters.mfa_challenges++;
        event('mfa_challenge', { user_id: r.user.user_id, via: 'password_grant' });
        return reply.code(403).send({ error: 'mfa_required', error_description: 'Multifactor authentication required', mfa_token: mfaToken });
      }
      state.counters.logins++;
      return tokens(state.users.get(r.user.user_id), clientId);
    }
    if (body.grant_type === 'http://auth0.com/oauth/grant-type/mfa-otp') {
      const t = state.mfa.tokens.get(body.mfa_token);
      const user = t && t.exp > Date.now() && t.clientId === clientId && state.users.get(t.userId);
      if (!user) return reply.code(403).send({ error: 'invalid_grant', error_description: 'Malformed mfa_token' });
      const otp = checkOtp(user, body.otp);
      if (otp === 'locked') return reply.code(429).send({ error: 'too_many_attempts', error_description: 'Too many failed codes for this account. Try again later.' });
      if (otp !== 'ok') {
        state.counters.mfa_failed++;
        event('mfa_failed', { user_id: user.user_id, via: 'password_grant' });
        return reply.code(403).send({ error: 'invalid_grant', error_description: 'Invalid otp_code.' });
      }
      state.mfa.tokens.delete(body.mfa_token);
      state.counters.logins++;
      return tokens(user, clientId);
    }
    if (body.grant_type === 'client_credentials') {
      const audience = body.audience || `${base}/api/v2/`;
      if (!audiences().includes(audience)) return reply.code(403).send({ error: 'access_denied', error_description: 'Unknown audience' });
      const now = Math.floor(Date.now() / 1000);
      const token = signJwt({ iss: `${base}/`, aud: audience, sub: `${clientId}@clients`, azp: clientId, iat: now, exp: now + 86400, gty: 'client-credentials', scope: 'read:users update:users delete:users create:users read:users_app_metadata update:users_app_metadata create:user_tickets' });
      return { access_token: token, token_type: 'Bearer', expires_in: 86400, scope: 'read:users update:users' };
    }
    return reply.code(400).send({ error: 'unsupported_grant_type' });
  });

  // --- Management API ---
  app.addHook('preHandler', async (req, reply) => {
    if (!req.url.startsWith('/api/v2')) return;
    const m = /^Bearer (.+)$/.exec(req.headers.authorization || '');
    const claims = m && verifyJwt(m[1]);
    if (!claims || !audiences().includes(claims.aud)) {
      return reply.code(401).send({ statusCode: 401, error: 'Unauthorized', message: 'Invalid token', errorCode: 'invalid_token' });
    }
  });
  const notFound = (reply) => reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'The user does not exist.', errorCode: 'inexistent_user' });
  app.get('/api/v2/users/:id', async (req, reply) => {
    const u = state.users.get(req.params.id);
    return u ? publicUser(u) : notFound(reply);
  });
  // A user's log events, newest first, as Auth0 log entries (the simulator keeps its last 200
  // events; types Auth0 has no log type for keep the simulator's name, prefixed "sim_").
  app.get('/api/v2/users/:id/logs', async (req, reply) => {
    if (!state.users.has(req.params.id)) return notFound(reply);
    const q = req.query || {};
    const perPage = Math.min(100, Math.max(1, Number(q.per_page) || 50));
    return state.events.filter((e) => e.user_id === req.params.id).reverse().slice(0, perPage).map((e) => {
      const mapped = toAuth0Log(e);
      const data = mapped ? mapped.data : { log_id: crypto.createHash('sha256').update(`${e.at}${e.type}${e.user_id}`).digest('hex').slice(0, 24), date: e.at, type: `sim_${e.type}`, description: [e.type, e.via, e.reason].filter(Boolean).join(' '), user_id: e.user_id };
      return data;
    });
  });
  // User search (v3), the part of its Lucene syntax trickle uses: `path:"value"` terms joined by
  // AND. A path walks objects and, as Auth0's index does, ignores array levels
  // (`app_metadata.trickle.accounts.id:"42"` matches any element's id); metadata values match
  // exactly, case-sensitively. Anything else is refused as Auth0 refuses a query it cannot parse.
  app.get('/api/v2/users', async (req, reply) => {
    const q = req.query || {};
    const perPage = Math.min(100, Math.max(1, Number(q.per_page) || 50));
    const page = Math.max(0, Number(q.page) || 0);
    const terms = [];
    const text = typeof q.q === 'string' ? q.q.trim() : '';
    const re = /^([A-Za-z0-9_.]+):"((?:[^"\\]|\\.)*)"(?:\s+AND\s+|$)/;
    for (let rest = text; rest;) {
      const m = re.exec(rest);
      if (!m) return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'Query validation error: the query could not be parsed', errorCode: 'invalid_query_string' });
      terms.push({ path: m[1].split('.'), value: m[2].replace(/\\(.)/g, '$1') });
      rest = rest.slice(m[0].length);
    }
    const values = (node, path) => {
      if (Array.isArray(node)) return node.flatMap((n) => values(n, path));
      if (!path.length) return node === null || node === undefined ? [] : [node];
      if (!node || typeof node !== 'object') return [];
      return values(node[path[0]], path.slice(1));
    };
    const matches = (u) => terms.every((t) => values(u, t.path).some((v) => String(v) === t.value));
    const found = [...state.users.values()].filter(matches).map(publicUser);
    const slice = found.slice(page * perPage, (page + 1) * perPage);
    return q.include_totals === 'true' ? { start: page * perPage, limit: perPage, length: slice.length, total: found.length, users: slice } : slice;
  });
  const badEmail = (reply, message = 'Object didn\'t pass validation for format email') =>
    reply.code(400).send({ statusCode: 400, error: 'Bad Request', message, errorCode: 'invalid_body' });
  app.get('/api/v2/users-by-email', async (req, reply) => {
    const email = canonicalAddress(req.query && req.query.email);
    if (!email) return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'Object didn\'t pass validation for format email', errorCode: 'invalid_query_string' });
    return usersByEmail(email).map(publicUser);
  });
  // --- account linking ---
  const badBody = (reply, message) => reply.code(400).send({ statusCode: 400, error: 'Bad Request', message, errorCode: 'invalid_body' });
  app.post('/api/v2/users/:id/identities', async (req, reply) => {
    const primary = state.users.get(req.params.id);
    if (!primary) return notFound(reply);
    const body = req.body || {};
    if (body.link_with !== undefined) return badBody(reply, 'link_with (linking with the secondary account\'s token) is not supported by the simulator; send provider and user_id.');
    for (const k of ['provider', 'user_id']) {
      if (typeof body[k] !== 'string' || !body[k]) return badBody(reply, `Payload validation error: 'Missing required property: ${k}'.`);
    }
    if (body.connection_id !== undefined && (typeof body.connection_id !== 'string' || !store.connections.has(body.connection_id))) return badBody(reply, 'The connection_id does not name a connection.');
    const secondaryId = `${body.provider}|${body.user_id}`;
    if (secondaryId === primary.user_id) return badBody(reply, 'Main identity and the new one are the same.');
    const secondary = state.users.get(secondaryId);
    const c = body.connection_id && store.connections.get(body.connection_id);
    if (!secondary || (c && secondary.identities[0].connection !== c.name)) {
      return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'The secondary user does not exist.', errorCode: 'inexistent_user' });
    }
    if (secondary.identities.length > 1) return badBody(reply, 'The secondary user has linked identities of its own: unlink them first.');
    // The secondary user stops existing; its identity, with its profile, joins the primary's.
    // Its metadata is not merged (as on the platform).
    const { identities, app_metadata: _a, user_metadata: _u, password_hash: _p, custom_password_hash: _c, mfa_factors: _m, user_id: _i, created_at: _t, updated_at: _v, logins_count: _l, last_login: _ll, blocked: _b, ...profile } = secondary;
    primary.identities.push({ ...identities[0], profileData: JSON.parse(JSON.stringify(profile)) });
    if (isDatabaseUser(secondary)) linkedDb.set(secondaryId, { email: secondary.email, password_hash: secondary.password_hash, custom_password_hash: secondary.custom_password_hash });
    primary.updated_at = new Date().toISOString();
    state.users.delete(secondaryId);
    dropTickets(secondaryId);
    event('users_linked', { primary: primary.user_id, secondary: secondaryId });
    return reply.code(201).send(JSON.parse(JSON.stringify(primary.identities)));
  });
  app.delete('/api/v2/users/:id/identities/:provider/:userId', async (req, reply) => {
    const primary = state.users.get(req.params.id);
    if (!primary) return notFound(reply);
    const i = primary.identities.findIndex((x) => x.provider === req.params.provider && String(x.user_id) === req.params.userId);
    if (i === 0) return badBody(reply, 'The main identity of a user cannot be unlinked.');
    if (i < 0) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'The identity is not linked to this user.', errorCode: 'inexistent_identity' });
    // The identity becomes a user of its own again, with the profile it had; no metadata.
    const [{ profileData, ...identity }] = primary.identities.splice(i, 1);
    const now = new Date().toISOString();
    const restored = { ...(profileData || {}), user_id: `${identity.provider}|${identity.user_id}`, identities: [identity], app_metadata: {}, user_metadata: {}, mfa_factors: [], created_at: now, updated_at: now, logins_count: 0 };
    if (restored.email) restored.email = canonicalAddress(restored.email) || restored.email;
    const cred = linkedDb.get(restored.user_id);
    if (cred) {
      // A database identity takes its password back with it.
      linkedDb.delete(restored.user_id);
      for (const k of ['password_hash', 'custom_password_hash']) if (cred[k]) restored[k] = cred[k];
    }
    state.users.set(restored.user_id, restored);
    primary.updated_at = now;
    event('users_unlinked', { primary: primary.user_id, secondary: restored.user_id });
    return JSON.parse(JSON.stringify(primary.identities));
  });
  app.post('/api/v2/users', async (req, reply) => {
    const body = req.body || {};
    if (body.connection !== 'trickle') return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'connection must name the database connection', errorCode: 'invalid_body' });
    if (typeof body.email !== 'string') return badEmail(reply, 'Payload validation error: \'Missing required property: email\'');
    if (typeof body.password !== 'string' || body.password.length < 8) return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'PasswordStrengthError: Password is too weak', errorCode: 'invalid_password' });
    const now = new Date().toISOString();
    const local = typeof body.user_id === 'string' && body.user_id ? body.user_id : randomId(12);
    const r = addUser({
      user_id: `auth0|${local}`, email: body.email, email_verified: !!body.email_verified, name: body.name, given_name: body.given_name,
      family_name: body.family_name, picture: body.picture, blocked: !!body.blocked, app_metadata: body.app_metadata || {}, user_metadata: body.user_metadata || {},
      identities: [{ provider: 'auth0', connection: 'trickle', user_id: local, isSocial: false }], mfa_factors: [],
      created_at: now, updated_at: now, logins_count: 0, password_hash: bcryptjs.hashSync(body.password, opts.bcryptCost)
    });
    if (r.error === 'invalid_email') return badEmail(reply);
    if (r.error) return reply.code(409).send({ statusCode: 409, error: 'Conflict', message: 'The user already exists.', errorCode: 'auth0_idp_error' });
    event('user_created', { user_id: r.user.user_id, via: 'management_api' });
    return reply.code(201).send(publicUser(r.user));
  });
  app.patch('/api/v2/users/:id', async (req, reply) => {
    const u = state.users.get(req.params.id);
    if (!u) return notFound(reply);
    const body = req.body || {};
    // The address is checked before anything changes: a refused PATCH changes nothing.
    let newEmail = null;
    if (body.email !== undefined) {
      newEmail = canonicalAddress(body.email);
      if (!newEmail) return badEmail(reply);
      const holder = findByEmail(newEmail);
      if (holder && holder !== u) return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'The specified new email already exists', errorCode: 'auth0_idp_error' });
    }
    for (const key of ['app_metadata', 'user_metadata']) {
      if (body[key] === undefined) continue;
      if (body[key] === null || typeof body[key] !== 'object' || Array.isArray(body[key])) {
        return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: `Payload validation error: '${key}' must be an object`, errorCode: 'invalid_body' });
      }
      // A PATCH merges top-level keys only; null deletes a key.
      for (const [k, v] of Object.entries(body[key])) {
        if (v === null) delete u[key][k];
        else u[key][k] = v;
      }
    }
    for (const key of ['email_verified', 'blocked', 'name', 'given_name', 'family_name', 'picture']) if (body[key] !== undefined) u[key] = body[key];
    if (newEmail !== null) {
      // A reset link names the address it was mailed to: it ends when the address changes.
      if (newEmail !== u.email) dropTickets(u.user_id);
      u.email = newEmail;
    }
    if (typeof body.password === 'string') u.password_hash = bcryptjs.hashSync(body.password, opts.bcryptCost);
    u.updated_at = new Date().toISOString();
    return publicUser(u);
  });
  app.delete('/api/v2/users/:id', async (req, reply) => {
    if (!state.users.delete(req.params.id)) return notFound(reply);
    dropTickets(req.params.id);
    return reply.code(204).send();
  });

  // --- password reset ---
  // As on the real tenant: the request is answered at once, with the same answer whether the
  // address is known, unknown, rate-limited or its product unreachable; the look-up and the mail
  // happen afterwards. One canonical address is used for the look-up, the ticket and the mail,
  // and the mail goes to the address stored for the user being reset, never to the typed string.
  const resetLimits = { perAddress: 3, perIp: 10, windowMs: 15 * 60000, ...(opts.resetLimits || {}) };
  const resetWindows = { address: new Map(), ip: new Map() };
  function withinLimit(map, key, limit) {
    const now = Date.now();
    const recent = (map.get(key) || []).filter((t) => now - t < resetLimits.windowMs);
    const ok = recent.length < limit;
    if (ok) recent.push(now);
    map.set(key, recent);
    if (map.size > 10000) for (const [k, v] of map) if (!v.some((t) => now - t < resetLimits.windowMs)) map.delete(k);
    return ok;
  }
  const ticketKey = (t) => crypto.createHash('sha256').update(String(t || '')).digest('hex');
  /** Ends every outstanding reset link of a user (a newer link, a changed address, a deletion). */
  function dropTickets(userId) {
    for (const [k, entry] of state.tickets) if (entry.userId === userId) state.tickets.delete(k);
  }
  /** Issues a reset link for `userId` at the canonical `email`; older links of the user stop working. */
  function issueTicket(userId, email, resultUrl) {
    dropTickets(userId);
    const ticket = randomId(32);
    state.tickets.set(ticketKey(ticket), { userId, email, exp: Date.now() + 30 * 60000, resultUrl, used: false });
    return `${base}/lo/reset/confirm?ticket=${ticket}`;
  }
  /**
   * Whom a reset of the canonical address `email` is for: a stored user, or (import mode) the
   * profile get_user returns for a person not yet migrated. Resolves `{user}`, `{profile}`,
   * `{none: true}` or `{error}`. A profile under another address, or one whose user_id is
   * already stored under another address, is nobody this address may reset.
   */
  async function resetTarget(email) {
    const user = findByEmail(email);
    if (user) return { user };
    const { getUser: getUserScript, importMode: resetImportMode } = dbScripts();
    if (!getUserScript || !resetImportMode) return { none: true };
    const [err, p] = await runtime.callScript(getUserScript, [email]);
    if (err) return { error: 'get_user failed' };
    if (!p) return { none: true };
    const profile = JSON.parse(JSON.stringify(p));
    if (!profile.user_id || canonicalAddress(profile.email) !== email) return { error: 'get_user returned another address' };
    if (state.users.has(`auth0|${profile.user_id}`)) return { error: 'the user is stored under another address' };
    return { profile };
  }
  async function sendResetMail(email, link) {
    await opts.mail.send({ to: email, subject: 'Reset your password', text: `Someone asked to reset the password of ${email}.\n\nChoose a new password here (valid for 30 minutes, once):\n${link}\n\nIf it was not you, ignore this mail.` });
  }
  /** The background half of a reset request: look-up, ticket, mail. Never throws; logs no address or link. */
  async function deliverReset(email) {
    try {
      const t = await resetTarget(email);
      if (t.error) return event('reset_not_sent', { reason: t.error });
      if (t.none) return event('reset_not_sent', { reason: 'unknown address' });
      const userId = t.user ? t.user.user_id : `auth0|${t.profile.user_id}`;
      const to = t.user ? t.user.email : email;
      await sendResetMail(to, issueTicket(userId, to));
      state.counters.resets++;
      event('reset_mail', { via: t.user ? 'store' : 'get_user' });
    } catch (e) {
      // The SMTP answer can quote the recipient: only its numeric code is kept.
      event('reset_mail_failed', { smtp_code: (e && e.responseCode) || null });
    }
  }
  /**
   * A reset request as the login page and /dbconnections/change_password take it. Returns
   * 'invalid' for an address with no canonical form, else 'accepted' (always the same, whatever
   * happens next); work beyond the limits per address and per IP is silently dropped.
   */
  function requestReset(typed, ip) {
    const email = canonicalAddress(typed);
    if (!email) return 'invalid';
    const ipOk = withinLimit(resetWindows.ip, String(ip || ''), resetLimits.perIp);
    const addressOk = ipOk && withinLimit(resetWindows.address, ticketKey(email), resetLimits.perAddress);
    if (!ipOk || !addressOk) {
      event('reset_limited', { by: ipOk ? 'address' : 'ip' });
      return 'accepted';
    }
    setImmediate(() => { deliverReset(email); });
    return 'accepted';
  }
  const resetForm = (state_, error) => page('Reset your password', `<h1>Reset your password</h1>${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/lo/reset"><input type="hidden" name="state" value="${esc(state_)}">
<label for="email">Email</label><input id="email" name="email" type="text" inputmode="email" autocomplete="email" required><button type="submit">Send me a link</button></form>`);
  app.get('/lo/reset', async (req, reply) => reply.type('text/html').send(resetForm((req.query || {}).state)));
  app.post('/lo/reset', async (req, reply) => {
    const body = req.body || {};
    if (requestReset(body.email, req.ip) === 'invalid') return reply.code(400).type('text/html').send(resetForm(body.state, 'Enter a valid email address.'));
    // The same answer whether or not the address is known: no account enumeration.
    return reply.type('text/html').send(page('Check your inbox', '<h1>Check your inbox</h1><p>If an account exists for this address, a link to choose a new password is on its way.</p>'));
  });
  // The Authentication API's endpoint: always 200 with the same sentence for a valid address.
  app.post('/dbconnections/change_password', async (req, reply) => {
    const body = req.body || {};
    if (body.connection !== undefined && body.connection !== 'trickle') return reply.code(400).send({ error: 'invalid_request', error_description: 'connection not found' });
    if (requestReset(body.email, req.ip) === 'invalid') return reply.code(400).send({ error: 'invalid_request', error_description: 'email is not valid' });
    return reply.type('text/plain; charset=utf-8').send('We\'ve just sent you an email to reset your password.');
  });
  // The Authentication API's public sign-up (POST /dbconnections/signup), as Auth0 answers it:
  // refused when the connection has `disable_signup`; a custom database in import mode has no
  // `create` script here, so it cannot take sign-ups either; otherwise the user is created with
  // an unverified address and no app_metadata (the post-login chain sees it at its first login).
  app.post('/dbconnections/signup', async (req, reply) => {
    const body = req.body || {};
    const c = management.connectionByName(store, 'trickle');
    if (!c || body.connection !== c.name) return reply.code(400).send({ name: 'BadRequestError', code: 'invalid_connection', description: 'connection not found', statusCode: 400 });
    if (c.options && c.options.disable_signup === true) {
      event('signup_refused', { via: 'signup', reason: 'disable_signup' });
      return reply.code(400).send({ name: 'BadRequestError', code: 'operation_not_allowed', description: 'public signup is disabled', error: 'public signup is disabled', statusCode: 400 });
    }
    if (c.options && c.options.enabledDatabaseCustomization) return reply.code(400).send({ name: 'BadRequestError', code: 'invalid_signup', description: 'the connection has no create script', statusCode: 400 });
    if (typeof body.password !== 'string' || body.password.length < 8) return reply.code(400).send({ name: 'PasswordStrengthError', code: 'invalid_password', description: 'Password is too weak', statusCode: 400 });
    const email = canonicalAddress(body.email);
    if (!email) return reply.code(400).send({ name: 'BadRequestError', code: 'invalid_signup', description: 'Invalid sign up', statusCode: 400 });
    const r = createUser({ user_id: randomId(12), email, email_verified: false }, body.password, 'signup');
    if (r.error) return reply.code(400).send({ name: 'BadRequestError', code: 'invalid_signup', description: 'Invalid sign up', statusCode: 400 });
    return reply.send({ _id: r.user.user_id.split('|')[1], email: r.user.email, email_verified: false });
  });
  const ticketFor = (t) => {
    const entry = state.tickets.get(ticketKey(t));
    return entry && !entry.used && entry.exp > Date.now() ? entry : null;
  };
  const expired = (reply) => reply.code(400).type('text/html').send(page('Link expired', '<h1>This link has expired or was used</h1><p><a href="/lo/reset">Ask for a new one</a></p>'));
  app.get('/lo/reset/confirm', async (req, reply) => {
    const t = (req.query || {}).ticket;
    if (!ticketFor(t)) return expired(reply);
    return reply.type('text/html').send(page('Choose a new password', `<h1>Choose a new password</h1>
<form method="post" action="/lo/reset/confirm"><input type="hidden" name="ticket" value="${esc(t)}">
<label for="password">New password</label><input id="password" name="password" type="password" minlength="8" required autocomplete="new-password">
<button type="submit">Set password</button></form>`));
  });
  app.post('/lo/reset/confirm', async (req, reply) => {
    const body = req.body || {};
    const entry = ticketFor(body.ticket);
    if (!entry) return expired(reply);
    if (typeof body.password !== 'string' || body.password.length < 8) return reply.code(400).type('text/html').send(page('Too short', '<h1>Choose at least 8 characters</h1>'));
    // The link resets exactly the user it was issued for, at the address it was mailed to.
    let user = state.users.get(entry.userId);
    if (user && user.email !== entry.email) return expired(reply);
    if (!user) {
      // Import mode: a person not yet in the store is created from getUser with the new password.
      const t = await resetTarget(entry.email);
      if (t.user || t.none || (t.profile && `auth0|${t.profile.user_id}` !== entry.userId)) return expired(reply);
      if (t.error) return reply.code(503).type('text/html').send(page('Try again', '<h1>We could not reset the password right now</h1>'));
      const created = createUser(t.profile, body.password, 'reset');
      if (created.error) return expired(reply);
      user = created.user;
    }
    if (!ticketFor(body.ticket)) return expired(reply); // used meanwhile by a concurrent request
    user.password_hash = bcryptjs.hashSync(body.password, opts.bcryptCost);
    delete user.custom_password_hash;
    user.email_verified = true;
    entry.used = true;
    dropTickets(user.user_id);
    event('password_reset', { user_id: user.user_id });
    return reply.type('text/html').send(page('Password changed', '<h1>Your password was changed</h1><p>You can now sign in with it.</p>'));
  });
  // The Management API's ticket: a link for a known user, returned to the caller and not mailed
  // (as on the real tenant); the address is the stored one.
  app.post('/api/v2/tickets/password-change', async (req, reply) => {
    const body = req.body || {};
    let target = null;
    if (body.user_id) {
      const user = state.users.get(body.user_id);
      target = user ? { user } : { none: true };
    } else if (body.email !== undefined) {
      const email = canonicalAddress(body.email);
      if (!email) return badEmail(reply);
      target = await resetTarget(email);
    } else {
      return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'user_id or email is required', errorCode: 'invalid_body' });
    }
    if (target.error) return reply.code(503).send({ statusCode: 503, error: 'Service Unavailable', message: 'The user could not be looked up right now.', errorCode: 'temporarily_unavailable' });
    if (target.none) return notFound(reply);
    const userId = target.user ? target.user.user_id : `auth0|${target.profile.user_id}`;
    const email = target.user ? target.user.email : target.profile && canonicalAddress(target.profile.email);
    return reply.code(201).send({ ticket: issueTicket(userId, email, body.result_url) });
  });

  // --- the demo application's callback ---
  app.get('/app/callback', async (req, reply) => {
    const q = req.query || {};
    if (q.error) return reply.type('text/html').send(page('Not signed in', `<h1>Not signed in</h1><p class="error" id="error">${esc(q.error)}: ${esc(q.error_description)}</p>`));
    return reply.type('text/html').send(page('Signed in', `<h1>Back at the app</h1><p>Authorization code:</p><p><code id="code">${esc(q.code)}</code></p>`));
  });

  management.managementRoutes(app, store, { clients });
  app.get('/_sim/api/deployments', async () => ({
    revision: store.revision, log: store.log,
    actions: management.boundActions(store).map((a) => ({ name: a.name, version: a.number, secrets: Object.keys(a.secrets) })),
    connection: (() => { const c = management.connectionByName(store, 'trickle'); return c && { id: c.id, import_mode: !!c.options.import_mode, scripts: Object.keys(c.options.customScripts || {}), enabled_clients: [...(store.enabledClients.get(c.id) || [])] }; })(),
    rules: management.enabledRules(store).map((r) => ({ name: r.name, order: r.order }))
  }));

  if (opts.routes) opts.routes(app, state);
  await app.listen({ port: opts.port || 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${app.server.address().port}`;
  // The same routes over TLS, for clients that insist on https://DOMAIN (auth0-deploy-cli).
  let tls = null;
  let httpsServer = null;
  if (opts.https) {
    tls = selfSignedCert();
    httpsServer = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => app.server.emit('request', req, res));
    await new Promise((resolve, reject) => httpsServer.once('error', reject).listen(opts.httpsPort || 0, '127.0.0.1', resolve));
    httpsBase = `https://127.0.0.1:${httpsServer.address().port}`;
  }
  return {
    url: base, httpsUrl: httpsBase || null, domain: httpsBase ? httpsBase.slice('https://'.length) : null, caFile: tls ? tls.certFile : null,
    app, state, store, clients, signJwt, verifyJwt, limiter, jobs, connectSocial, callbackUrl,
    close: async () => {
      jobs.stop();
      if (httpsServer) { httpsServer.closeAllConnections(); await new Promise((r) => httpsServer.close(r)); }
      if (tls) fs.rmSync(tls.dir, { recursive: true, force: true });
      return app.close();
    }
  };
}

module.exports = { startTenant };
