// The simulated Auth0 tenant: hosted login with a custom database connection in import mode,
// the post-login pipeline (legacy Rules or the Action) with redirect and /continue, the token
// endpoint with RS256 id_tokens and JWKS, password reset by mail, part of the Management API
// with rate limits and fault injection. It runs what was deployed to it over the Management API
// (sim/tenant/management/): the connection's scripts, the bound Action's deployed code and secrets, the
// enabled Rules; a simulator started without a deploy is seeded from dist/auth0/ unchanged.
// Assumptions where the platform's behaviour is not documented are in sim/FIDELITY.md.
//
// This file builds the tenant context (`t`: options, state, the event log, the deployed store,
// clients, addresses) and starts the listeners; each Auth0 surface is a file of its own here
// exporting `create(t)` (what other surfaces call, merged into `t`) and/or `routes(app, t)`.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const https = require('https');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const Fastify = require('fastify');
const { RateLimiter } = require('../ratelimit');
const management = require('./management');

// In the order their services are created and their routes and hooks registered.
const SURFACES = [
  require('./limits'), // rate limits and faults on the APIs (an onRequest hook)
  require('./runtimes'), // the deployed scripts, Actions and Rules in warm containers
  require('./users'), // the user store
  require('./database'), // the custom database connection: login in import mode, sign-up
  require('./mfa'), // one-time codes after the pipeline
  require('./pipeline'), // Rules or Actions, redirect and /continue, the end of a login
  require('./universal-login'), // /authorize, /u/login, the demo app's callback
  require('./federated'), // social connections: the tenant as relying party
  require('./oauth'), // discovery, JWKS, /oauth/token
  require('./management/users'), // the Management API's users, identities, logs and jobs
  require('./reset') // password reset by mail and the Management API's tickets
];

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

async function createApp() {
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
  return app;
}

/** The tenant context every surface is given. */
function createContext(opts, app) {
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
  const t = {
    opts, app, state,
    store: opts.store || management.createStore(),
    limiter: new RateLimiter(opts.plan),
    // The listeners' addresses, known once they listen.
    base: '',
    httpsBase: '',
    randomId: (n = 16) => crypto.randomBytes(n).toString('hex'),
    event(type, detail) {
      const entry = { at: new Date().toISOString(), type, ...detail };
      state.events.push(entry);
      if (state.events.length > 200) state.events.shift();
      // The log stream (sim/logstream.js): queued for delivery in the background.
      if (opts.onEvent) try { opts.onEvent(entry); } catch (_) { /* a stream never breaks the tenant */ }
    },
    // The Management API's audience, by either listener's address (the deploy-cli asks for https).
    audiences: () => [`${t.base}/api/v2/`, ...(t.httpsBase ? [`${t.httpsBase}/api/v2/`] : [])]
  };
  t.clients = {
    'trickle-demo': { secret: 'demo-app-secret', redirectUris: () => [`${t.base}/app/callback`], name: 'Demo app' },
    'trickle-m2m': { secret: 'm2m-secret', redirectUris: () => [], name: 'trickle tools' }
  };
  return t;
}

/**
 * Starts the tenant. `options`: {port, pipeline ('action' or 'rules'), plan, mail, bcryptCost,
 * faults, https (also listen with TLS, for auth0-deploy-cli), store (management/store.js), mfa
 * ({perLogin, perUser, refillMs}: wrong one-time codes allowed per login, per user, and how fast
 * the per-user allowance refills)}.
 * Returns `{url, httpsUrl, domain, caFile, store, state, close, …}`.
 */
async function startTenant(options) {
  const opts = { pipeline: 'action', plan: 'enterprise', bcryptCost: 8, ...options };
  const app = await createApp();
  const t = createContext(opts, app);
  for (const s of SURFACES) if (s.create) Object.assign(t, s.create(t));
  for (const s of SURFACES) if (s.routes) s.routes(app, t);

  management.managementRoutes(app, t.store, { clients: t.clients });
  app.get('/_sim/api/deployments', async () => {
    const { store } = t;
    const c = management.connectionByName(store, 'trickle');
    return {
      revision: store.revision, log: store.log,
      actions: management.boundActions(store).map((a) => ({ name: a.name, version: a.number, secrets: Object.keys(a.secrets) })),
      connection: c && { id: c.id, import_mode: !!c.options.import_mode, scripts: Object.keys(c.options.customScripts || {}), enabled_clients: [...(store.enabledClients.get(c.id) || [])] },
      rules: management.enabledRules(store).map((r) => ({ name: r.name, order: r.order }))
    };
  });

  if (opts.routes) opts.routes(app, t.state);
  await app.listen({ port: opts.port || 0, host: '127.0.0.1' });
  t.base = `http://127.0.0.1:${app.server.address().port}`;
  // The same routes over TLS, for clients that insist on https://DOMAIN (auth0-deploy-cli).
  let tls = null;
  let httpsServer = null;
  if (opts.https) {
    tls = selfSignedCert();
    httpsServer = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => app.server.emit('request', req, res));
    await new Promise((resolve, reject) => httpsServer.once('error', reject).listen(opts.httpsPort || 0, '127.0.0.1', resolve));
    t.httpsBase = `https://127.0.0.1:${httpsServer.address().port}`;
  }
  return {
    url: t.base, httpsUrl: t.httpsBase || null, domain: t.httpsBase ? t.httpsBase.slice('https://'.length) : null, caFile: tls ? tls.certFile : null,
    app, state: t.state, store: t.store, clients: t.clients, signJwt: t.signJwt, verifyJwt: t.verifyJwt, limiter: t.limiter, jobs: t.jobs,
    connectSocial: t.connectSocial, callbackUrl: t.callbackUrl,
    close: async () => {
      t.jobs.stop();
      if (httpsServer) { httpsServer.closeAllConnections(); await new Promise((r) => httpsServer.close(r)); }
      if (tls) fs.rmSync(tls.dir, { recursive: true, force: true });
      return app.close();
    }
  };
}

module.exports = { startTenant };
