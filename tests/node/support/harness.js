// An Auth0-like sandbox for the built artefacts, and real HTTP product servers.
//
// Scripts and Rules are compiled the way the platform compiles them: `return <file text>` in a
// fresh context whose globals are the runtime's (configuration, WrongUsernameOrPasswordError,
// auth0, require of core modules, fetch, …). Actions are loaded as CommonJS modules in a context
// of their own. Every callback is counted, so a test can assert "exactly once".
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');
const crypto = require('crypto');

const ROOT = path.join(__dirname, '..', '..', '..');
const DIST = path.join(ROOT, 'dist', 'auth0');
const FIXTURES = path.join(ROOT, 'tests', 'fixtures');
const fixture = (name) => JSON.parse(fs.readFileSync(path.join(FIXTURES, name), 'utf8'));

const runtime = require('../../../sim/runtime');
const { WrongUsernameOrPasswordError, UnauthorizedError, container } = runtime;

/** Compiles a built custom-DB script or Rule (path below dist/auth0/) as the platform does. */
const compileScript = (file, ctr) => runtime.compileScript(path.join(DIST, file), ctr);

/** Loads a built Action (path below dist/auth0/) as a CommonJS module in the container. */
const loadAction = (file, ctr) => runtime.loadAction(path.join(DIST, file), ctr);

/**
 * Calls a callback-style script and resolves with the callback's arguments once it is called,
 * then waits a little longer to catch a second call. Rejects if it is never called.
 */
function invoke(fn, args, { timeoutMs = 15000, settleMs = 30 } = {}) {
  return new Promise((resolve, reject) => {
    const calls = [];
    let timer = setTimeout(() => reject(new Error('callback never called')), timeoutMs);
    const callback = (...cbArgs) => {
      calls.push(cbArgs);
      if (calls.length === 1) {
        clearTimeout(timer);
        setTimeout(() => resolve({ args: calls[0], calls: calls.length }), settleMs);
      }
    };
    try {
      fn(...args, callback);
    } catch (e) {
      clearTimeout(timer);
      reject(new Error('the script threw into the host: ' + e.message));
    }
  });
}

/** A product service implementing docs/product-api.md, on a real HTTP server. */
async function productServer(name, accounts, { token = `tok-${name}` } = {}) {
  const state = { mode: 'up', delayMs: 0, calls: [], auth0Ids: {}, accounts };
  const norm = (e) => String(e || '').trim().toLowerCase();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    state.calls.push(`${req.method} ${url.pathname}`);
    const send = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body === undefined ? '' : JSON.stringify(body));
    };
    if (state.mode === 'hang') return; // never answers: the caller's timeout must fire
    if (state.mode === 'down') return send(503, { error: 'unavailable' });
    if (req.headers.authorization !== `Bearer ${token}`) return send(401, { error: 'unauthorized' });
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => setTimeout(() => {
      if (req.method === 'GET' && url.pathname === '/trickle/accounts') {
        // The stored Auth0 id comes back with the account, as the product contract says.
        const told = (a) => (state.auth0Ids[a.id] ? { ...a, auth0_user_id: state.auth0Ids[a.id] } : a);
        if (url.searchParams.has('provider') || url.searchParams.has('subject')) {
          const provider = url.searchParams.get('provider');
          const subject = url.searchParams.get('subject');
          if (!provider || !subject) return send(400, { error: 'provider and subject are required' });
          const holds = (a) => (a.identities || []).some((i) => i.provider === provider && i.subject === subject);
          return send(200, { accounts: (state.identityAnswer || state.accounts.filter(holds)).map(told) });
        }
        const email = norm(url.searchParams.get('email'));
        const found = state.accounts.filter((a) => norm(a.email) === email);
        // A test may make the product answer garbage: it is sent as it is.
        return send(200, { accounts: Array.isArray(found) ? found.map(told) : found });
      }
      const m = url.pathname.match(/^\/trickle\/accounts\/([^/]+)\/auth0-id$/);
      if (req.method === 'PUT' && m) {
        const id = decodeURIComponent(m[1]);
        if (!state.accounts.some((a) => a.id === id)) return send(404, { error: 'no such account' });
        let parsed;
        try { parsed = JSON.parse(body); } catch (_) { return send(400, { error: 'bad json' }); }
        if (!/^[a-z0-9-]+\|[!-~]+$/.test(parsed.auth0_user_id || '')) return send(400, { error: 'bad auth0_user_id' });
        const stored = state.auth0Ids[id];
        if (stored && stored !== parsed.auth0_user_id && stored !== parsed.replace) return send(409, { error: 'held by another user', auth0_user_id: stored });
        state.auth0Ids[id] = parsed.auth0_user_id;
        return send(204);
      }
      send(404, { error: 'not found' });
    }, state.delayMs));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return { name, url, token, state, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

/** Starts the three fixture products. */
async function fixtureProducts() {
  const data = fixture('accounts.json');
  const products = [];
  for (const name of data.products) products.push(await productServer(name, data.accounts[name]));
  const config = {
    TRICKLE_PRODUCTS: JSON.stringify(products.map((p) => ({ name: p.name, url: p.url, token: p.token }))),
    TRICKLE_LOOKUP_TIMEOUT_MS: '800',
    TRICKLE_FANOUT_BUDGET_MS: '800',
    TRICKLE_MERGE_URL: 'https://merge.example.test/merge',
    TRICKLE_TOKEN_SECRET: 'test-secret-0123456789-0123456789-abcdef'
  };
  const byName = Object.fromEntries(products.map((p) => [p.name, p]));
  return { products, byName, config, close: () => Promise.all(products.map((p) => p.close())) };
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** An HS256 JWT made with node:crypto, independent of the wasm's implementation. */
function hs256(claims, secret, header = { alg: 'HS256', typ: 'JWT' }) {
  const input = b64url(JSON.stringify(header)) + '.' + b64url(JSON.stringify(claims));
  return input + '.' + b64url(crypto.createHmac('sha256', secret).update(input).digest());
}

function decodeJwt(token) {
  const [, payload] = token.split('.');
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
}

/**
 * A small stand-in for the tenant's post-login pipeline around the Action: builds `event` and
 * `api`, runs the handler, and applies metadata writes to the stored user the way the platform
 * does (batched, top-level keys merged, null deletes).
 */
function actionRunner(actionExports, secrets) {
  // api.cache as Auth0 documents it: entries {value, expires_at}, kept between executions.
  const entries = new Map();
  const actionCache = {
    get: (key) => { const e = entries.get(key); return e && e.expires_at > Date.now() ? { ...e } : undefined; },
    set: (key, value, opts = {}) => { entries.set(key, { value: String(value), expires_at: opts.expires_at || Date.now() + (opts.ttl || 900000) }); return { type: 'success' }; },
    delete: (key) => { entries.delete(key); return { type: 'success' }; }
  };
  return async function run(phase, user, { canRedirect = true, query = {}, body = {}, connection = 'trickle', strategy = null, protocol = 'oidc-basic-profile' } = {}) {
    const writes = {};
    const result = { redirect: null, denied: null, threw: null };
    const event = {
      user: JSON.parse(JSON.stringify(user)),
      secrets,
      connection: { name: connection, strategy: strategy || (connection === 'trickle' ? 'auth0' : connection) },
      transaction: { protocol },
      request: { query, body, ip: '127.0.0.1' }
    };
    const api = {
      // The platform stores metadata as JSON: copy it out of the Action's realm.
      user: { setAppMetadata: (k, v) => { writes[k] = v === null ? null : JSON.parse(JSON.stringify(v)); }, setUserMetadata: () => {} },
      redirect: {
        canRedirect: () => canRedirect,
        sendUserTo: (url, opts) => { result.redirect = { url, query: (opts && opts.query) || {} }; }
      },
      access: { deny: (reason) => { result.denied = reason; } },
      authentication: { setPrimaryUser: (id) => { result.primaryUser = id; } },
      cache: actionCache
    };
    const handler = phase === 'continue' ? actionExports.onContinuePostLogin : actionExports.onExecutePostLogin;
    try {
      await handler(event, api);
    } catch (e) {
      result.threw = e;
    }
    user.app_metadata = user.app_metadata || {};
    for (const [k, v] of Object.entries(writes)) {
      if (v === null) delete user.app_metadata[k];
      else user.app_metadata[k] = v;
    }
    result.writes = writes;
    return result;
  };
}

/** True for an error made in any realm (scripts create theirs inside their own context). */
function isError(e) {
  return !!e && typeof e === 'object' && typeof e.message === 'string' && typeof e.name === 'string';
}

/** A retryable error: an Error that is not "wrong email or password". */
function isRetryError(e) {
  return isError(e) && !(e instanceof WrongUsernameOrPasswordError) && e.name !== 'WrongUsernameOrPasswordError';
}

/** Copies a value made in another realm into this one (deepStrictEqual compares prototypes). */
const plain = (x) => (x === undefined ? undefined : JSON.parse(JSON.stringify(x)));

module.exports = {
  isError, isRetryError, plain,
  ROOT, DIST, fixture, container, compileScript, loadAction, invoke, productServer, fixtureProducts,
  hs256, decodeJwt, actionRunner, WrongUsernameOrPasswordError, UnauthorizedError
};
