// The upstream identity providers of the simulated tenant's social connections: Google
// (`google-oauth2`), Apple (`apple`) and Slack (`sign-in-with-slack`), each a real OpenID Connect
// provider (the `oidc-provider` package) on its own local port, with its own sign-in page and the
// claims the real provider asserts where they matter to trickle: a stable `sub`, `email` and
// `email_verified`, Google's `hd` for a Workspace account, Apple's private-relay addresses with
// `is_private_email`, Slack's team id. What is imitated and what is not: sim/FIDELITY.md.
'use strict';
const http = require('http');
const crypto = require('crypto');
const { html } = require('../lib/web');

// Per provider: the page's title, the claims each scope releases, and how Apple writes booleans.
const PROFILES = {
  'google-oauth2': {
    title: 'Sign in with Google', brand: 'Google', scope: 'openid email profile',
    claims: { openid: ['sub', 'hd'], email: ['email', 'email_verified'], profile: ['name', 'given_name', 'family_name', 'picture'] }
  },
  apple: {
    // Apple puts no name in the id token, answers by form_post when it is asked for the address,
    // and has written its booleans as the strings "true"/"false".
    title: 'Sign in with Apple', brand: 'Apple', scope: 'openid email', responseMode: 'form_post', stringBooleans: true,
    claims: { openid: ['sub'], email: ['email', 'email_verified', 'is_private_email'] }
  },
  'sign-in-with-slack': {
    title: 'Sign in to Slack', brand: 'Slack', scope: 'openid email profile',
    claims: {
      openid: ['sub', 'https://slack.com/user_id', 'https://slack.com/team_id', 'https://slack.com/team_name'],
      email: ['email', 'email_verified'], profile: ['name', 'given_name', 'family_name', 'picture']
    }
  }
};

const page = (title, body) => html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<style>body{font-family:system-ui,sans-serif;background:#fafafa;display:flex;min-height:100vh;align-items:center;justify-content:center;margin:0}
main{background:#fff;border:1px solid #ddd;border-radius:8px;padding:2rem;width:20rem}label{display:block;margin:.7rem 0 .2rem}
input{width:100%;box-sizing:border-box;padding:.5rem}button{margin-top:1rem;width:100%;padding:.6rem}.error{color:#a00}</style></head>
<body><main>${body}</main></body></html>`;

function readForm(req, limit = 16 * 1024) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) { reject(Object.assign(new Error('body too large'), { status: 413 })); req.destroy(); } else chunks.push(c);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (/json/.test(req.headers['content-type'] || '')) {
        try { resolve(JSON.parse(text || '{}')); } catch (_) { reject(Object.assign(new Error('invalid JSON'), { status: 400 })); }
      } else resolve(Object.fromEntries(new URLSearchParams(text)));
    });
    req.on('error', reject);
  });
}

/** Checks an account given to `addAccount`; returns an error message or null. */
function checkAccount(a) {
  if (!a || typeof a !== 'object') return 'an account is an object';
  for (const k of ['sub', 'login', 'password']) if (typeof a[k] !== 'string' || !a[k]) return `account.${k} must be a non-empty string`;
  if (a.claims !== undefined && (typeof a.claims !== 'object' || a.claims === null || Array.isArray(a.claims))) return 'account.claims must be an object';
  return null;
}

/**
 * Starts one provider. `provider` is the Auth0 strategy it stands for; `accounts` the accounts it
 * holds (`{sub, login, password, claims}`, as sim/seed.js makes them); `clients` the relying
 * parties (`{client_id, client_secret, redirect_uris}`), more of which `addClient` registers.
 * Returns `{provider, issuer, url, scope, responseMode, addAccount, addClient, signIns, close}`.
 */
async function startIdp(provider, { accounts = [], port = 0 } = {}) {
  const profile = PROFILES[provider];
  if (!profile) throw new Error(`unknown provider ${provider}; one of ${Object.keys(PROFILES).join(', ')}`);
  const { default: Provider } = await import('oidc-provider');
  const byLogin = new Map();
  const bySub = new Map();
  const signIns = [];
  const addAccount = (a) => {
    const problem = checkAccount(a);
    if (problem) throw Object.assign(new Error(problem), { status: 400 });
    const account = { sub: a.sub, login: a.login, password: a.password, claims: { ...(a.claims || {}) } };
    byLogin.set(account.login.toLowerCase(), account);
    bySub.set(account.sub, account);
    return account;
  };
  for (const a of accounts) addAccount(a);
  const clients = [];

  let oidc = null;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname.startsWith('/interaction/')) return interaction(req, res, url).catch((e) => fail(res, e));
    if (url.pathname === '/_control/accounts' && req.method === 'POST') return control(req, res).catch((e) => fail(res, e));
    return oidc.callback()(req, res);
  });
  await new Promise((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const claimsOf = (account) => {
    const out = { sub: account.sub, ...account.claims };
    if (profile.stringBooleans) for (const k of ['email_verified', 'is_private_email']) if (typeof out[k] === 'boolean') out[k] = String(out[k]);
    for (const [k, v] of Object.entries(out)) if (v === undefined || v === null) delete out[k];
    return out;
  };
  oidc = new Provider(issuer, {
    // The relying parties are looked up at each request, so the tenant can be registered after
    // the provider started (its callback URL is known only once it listens).
    adapter: clientAdapter(clients),
    clients: [],
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: crypto.randomBytes(6).toString('hex'), use: 'sig', alg: 'RS256' }] },
    cookies: { keys: [crypto.randomBytes(24).toString('hex')] },
    claims: profile.claims,
    scopes: ['openid', 'email', 'profile'],
    // The real providers put the profile claims in the id token of the code flow.
    conformIdTokenClaims: false,
    pkce: { methods: ['S256'], required: () => true },
    features: { devInteractions: { enabled: false }, userinfo: { enabled: true } },
    responseTypes: ['code'],
    findAccount: async (ctx, sub) => {
      const account = bySub.get(sub);
      return account && { accountId: sub, claims: async () => claimsOf(account) };
    },
    interactions: { url: (ctx, i) => `/interaction/${i.uid}` },
    // A first-party sign-in: the scopes asked for are granted without a consent page.
    loadExistingGrant: async (ctx) => {
      const grantId = (ctx.oidc.result && ctx.oidc.result.consent && ctx.oidc.result.consent.grantId) || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope(profile.scope);
      await grant.save();
      return grant;
    },
    ttl: { AccessToken: 3600, AuthorizationCode: 600, IdToken: 3600, Interaction: 3600, Session: 86400, Grant: 86400 },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = String(page('Error', html`<h1>Sign-in error</h1><p class="error" role="alert">${out.error}: ${out.error_description}</p>`));
    }
  });
  oidc.on('server_error', () => {}); // no stack traces on the console; the page says what failed

  const form = (uid, error, login = '') => page(profile.title, html`<h1>${profile.title}</h1>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<label for="login">${profile.brand} account</label><input id="login" name="login" type="text" autocomplete="username" value="${login}" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>`);

  async function interaction(req, res, url) {
    const [, , uid, step] = url.pathname.split('/');
    const details = await oidc.interactionDetails(req, res);
    if (details.uid !== uid) throw Object.assign(new Error('this sign-in has expired'), { status: 400 });
    if (req.method === 'GET' && !step) return sendPage(res, 200, form(uid));
    if (req.method === 'POST' && step === 'login') {
      const body = await readForm(req);
      const account = byLogin.get(String(body.login || '').toLowerCase());
      const ok = account && typeof body.password === 'string' && crypto.timingSafeEqual(
        crypto.createHash('sha256').update(body.password).digest(), crypto.createHash('sha256').update(account.password).digest());
      if (!ok) return sendPage(res, 401, form(uid, 'Wrong account or password.', String(body.login || '')));
      signIns.push({ sub: account.sub, client_id: details.params.client_id, at: new Date().toISOString() });
      return oidc.interactionFinished(req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false });
    }
    throw Object.assign(new Error('not found'), { status: 404 });
  }

  async function control(req, res) {
    const body = await readForm(req);
    const account = addAccount(body);
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ sub: account.sub, login: account.login }));
  }

  function sendPage(res, status, body) {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
    res.end(String(body));
  }
  function fail(res, e) {
    if (res.headersSent) return res.end();
    sendPage(res, e.status || 400, page('Error', html`<h1>Sign-in error</h1><p class="error" role="alert">${e.status ? e.message : 'this sign-in has expired or is invalid'}</p>`));
  }

  return {
    provider, issuer, url: issuer, scope: profile.scope, responseMode: profile.responseMode || 'query', brand: profile.brand,
    addAccount: (a) => { const x = addAccount(a); return { sub: x.sub, login: x.login }; },
    addClient: (c) => { clients.push({ token_endpoint_auth_method: 'client_secret_post', response_types: ['code'], grant_types: ['authorization_code'], ...c }); },
    accounts: () => [...bySub.values()].map((a) => ({ sub: a.sub, login: a.login, claims: claimsOf(a) })),
    signIns,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); })
  };
}

/**
 * oidc-provider's storage: in memory, with the relying parties served from `clients` (a list the
 * caller adds to), so a client registered after start is found.
 */
function clientAdapter(clients) {
  const stores = new Map();
  return class MemoryAdapter {
    constructor(name) {
      this.name = name;
      if (!stores.has(name)) stores.set(name, new Map());
      this.store = stores.get(name);
    }
    async upsert(id, payload, expiresIn) {
      this.store.set(id, { payload, exp: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
      if (payload.grantId) {
        const grants = stores.get('_grants') || new Map();
        stores.set('_grants', grants);
        grants.set(payload.grantId, [...(grants.get(payload.grantId) || []), [this.name, id]]);
      }
      if (payload.userCode) this.store.set(`user:${payload.userCode}`, { payload: { id }, exp: Infinity });
      if (payload.uid) this.store.set(`uid:${payload.uid}`, { payload: { id }, exp: Infinity });
    }
    async find(id) {
      if (this.name === 'Client') {
        const c = clients.find((x) => x.client_id === id);
        return c ? { ...c } : undefined;
      }
      const e = this.store.get(id);
      if (!e) return undefined;
      if (e.exp < Date.now()) { this.store.delete(id); return undefined; }
      return e.payload;
    }
    async findByUid(uid) {
      const ref = this.store.get(`uid:${uid}`);
      return ref ? this.find(ref.payload.id) : undefined;
    }
    async findByUserCode(code) {
      const ref = this.store.get(`user:${code}`);
      return ref ? this.find(ref.payload.id) : undefined;
    }
    async consume(id) {
      const e = this.store.get(id);
      if (e) e.payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id) { this.store.delete(id); }
    async revokeByGrantId(grantId) {
      const grants = stores.get('_grants');
      for (const [name, id] of (grants && grants.get(grantId)) || []) stores.get(name).delete(id);
      if (grants) grants.delete(grantId);
    }
  };
}

/**
 * Starts the three providers, each holding its accounts of `providerAccounts` (sim/seed.js).
 * Returns `{[strategy]: idp}` plus `close()`.
 */
async function startIdps(providerAccounts = {}) {
  const out = {};
  try {
    for (const p of Object.keys(PROFILES)) out[p] = await startIdp(p, { accounts: providerAccounts[p] || [] });
  } catch (e) {
    for (const idp of Object.values(out)) await idp.close();
    throw e;
  }
  Object.defineProperty(out, 'close', { enumerable: false, value: async () => { for (const idp of Object.values(out)) await idp.close(); } });
  return out;
}

module.exports = { startIdp, startIdps, PROFILES };
