// The product API (docs/product-api.md) served by trickle itself from each product's declared
// table and columns in trickle.json: look-up by address and by social identity, the
// compare-and-set of the Auth0 id and its withdrawal. It hands out password hashes, so it is
// the most sensitive server in the system: loopback unless told otherwise and TLS when not,
// one bearer token per product compared in constant time (a product's token reads nothing of
// another), one exact look-up per request (no listing, no prefix search), bounded request sizes
// and rates, and nothing personal in its logs or metrics (counts by product, route and status).
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const Fastify = require('fastify');
const client = require('prom-client');
const products = require('../cli/products');
const { TrickleError, redact } = require('../cli/config');

/** Settings of `productApi` in trickle.json, with their defaults. */
const DEFAULTS = { host: '127.0.0.1', port: 8480, ratePerSecond: 1000, connections: 16, maxAccounts: 50, tls: null };
const SETTINGS = Object.keys(DEFAULTS);
const TOKEN_MIN = 32;
const EMAIL_MAX = 320;
const SUBJECT_MAX = 255;
const PROVIDER_RE = /^[a-z0-9][a-z0-9-]{0,63}$/;
const AUTH0_ID_RE = /^[a-z0-9-]+\|[!-~]+$/;
const ID_MAX = 191;

const LOOPBACK = (host) => host === 'localhost' || host === '::1' || /^127\./.test(host);
const norm = (e) => String(e || '').trim().toLowerCase();
const digest = (s) => crypto.createHash('sha256').update(String(s)).digest();

/**
 * The server's settings from trickle.json's `productApi` and the command line (`over`), checked:
 * every product needs `api.token` of at least 32 characters, each its own; a host other than
 * loopback needs TLS. Throws TrickleError (`product_api.*`) naming the setting.
 */
function apiSettings(cfg, over = {}) {
  const section = cfg.productApi || {};
  const s = { ...DEFAULTS, ...section, ...Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined)) };
  const refuse = (code, msg) => { throw new TrickleError(code, msg); };
  if (!Number.isInteger(s.port) || s.port < 0 || s.port > 65535) refuse('product_api.port', 'productApi.port must be a port number');
  for (const k of ['ratePerSecond', 'connections', 'maxAccounts']) if (!Number.isInteger(s[k]) || s[k] < 1 || s[k] > 1e6) refuse(`product_api.${k}`, `productApi.${k} must be a whole number from 1`);
  if (typeof s.host !== 'string' || !s.host) refuse('product_api.host', 'productApi.host must be an address to listen on');
  if (s.tls && (typeof s.tls.cert !== 'string' || typeof s.tls.key !== 'string')) refuse('product_api.tls', 'productApi.tls must be {"cert": FILE, "key": FILE} (PEM)');
  if (!LOOPBACK(s.host) && !s.tls) refuse('product_api.tls_required', `productApi.host ${s.host} is not loopback: the product API hands out password hashes, so it serves only TLS there (productApi.tls {cert, key}, or --tls-cert/--tls-key); keep it on 127.0.0.1 behind your own TLS proxy otherwise`);
  const seen = new Map();
  for (const p of cfg.products) {
    const token = p.api && p.api.token;
    if (typeof token !== 'string' || token.length < TOKEN_MIN) refuse('product_api.token', `products[${p.name}].api.token must be a secret of at least ${TOKEN_MIN} characters (e.g. openssl rand -hex 32): the product API answers only a product's own token`);
    if (seen.has(token)) refuse('product_api.shared_token', `products ${seen.get(token)} and ${p.name} have the same api.token: each product needs its own, so one product's token reads nothing of another`);
    seen.set(token, p.name);
  }
  return s;
}

/** A token bucket: `take()` is false when the rate is spent. */
function bucket(perSecond) {
  let tokens = perSecond;
  let at = Date.now();
  return {
    take() {
      const now = Date.now();
      tokens = Math.min(perSecond, tokens + ((now - at) / 1000) * perSecond);
      at = now;
      if (tokens < 1) return false;
      tokens -= 1;
      return true;
    }
  };
}

/**
 * Starts the product API for every product of `cfg` (a validated trickle.json). Options: the
 * `productApi` settings (host, port, tls {cert, key} files, ratePerSecond per product,
 * connections per product database, maxAccounts per answer), `log` (one JSON object per line;
 * default stdout). Returns {url, products: {name: url}, registry, close}.
 */
async function startProductApi(cfg, options = {}) {
  const s = apiSettings(cfg, options);
  const log = options.log || ((o) => process.stdout.write(JSON.stringify({ trickle: 'product_api', at: new Date().toISOString(), ...o }) + '\n'));
  const registry = new client.Registry();
  const requests = new client.Counter({ name: 'trickle_product_api_requests_total', help: 'product API requests by product, route and status', labelNames: ['product', 'route', 'status'], registers: [registry] });
  const seconds = new client.Histogram({ name: 'trickle_product_api_request_seconds', help: 'product API request time by product and route', labelNames: ['product', 'route'], buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] });
  const refused = new client.Counter({ name: 'trickle_product_api_refused_total', help: 'requests refused before any database was read, by reason', labelNames: ['reason'], registers: [registry] });
  const dbErrors = new client.Counter({ name: 'trickle_product_api_db_errors_total', help: 'database errors by product', labelNames: ['product'], registers: [registry] });

  const served = new Map();
  try {
    for (const p of cfg.products) {
      const db = await products.openProduct(p, { connections: s.connections });
      served.set(p.name, { product: p, db });
      const info = await products.inspectProduct(db, p);
      // The side table (link: "table") is the one change trickle makes, listed by `trickle check` first.
      if (info.schema_changes.length) {
        await products.ensureLinkTable(db, p);
        log({ event: 'schema_change', product: p.name, changes: info.schema_changes });
      }
      Object.assign(served.get(p.name), { sql: products.apiSql(db, p, { emailBinary: info.lookup.email_binary }), token: digest(p.api.token), rate: bucket(s.ratePerSecond) });
    }
  } catch (e) {
    for (const x of served.values()) await x.db.close().catch(() => {});
    throw e;
  }

  let https;
  if (s.tls) {
    try {
      https = { cert: fs.readFileSync(s.tls.cert), key: fs.readFileSync(s.tls.key) };
    } catch (e) {
      for (const x of served.values()) await x.db.close().catch(() => {});
      throw new TrickleError('product_api.tls', `cannot read the TLS certificate or key: ${e.message}`);
    }
  }
  const app = Fastify({ logger: false, bodyLimit: 1024, routerOptions: { maxParamLength: ID_MAX * 3 + 16 }, requestTimeout: 15000, connectionTimeout: 15000, ...(https ? { https } : {}) });
  /** The contract's shape of a row, with the account's social identities where the product keeps them. */
  const shape = async (x, row) => {
    const a = products.accountOf(x.product, row);
    delete a.product;
    a.identities = x.sql.identity ? (await x.db.all(x.sql.identity.of, [row.id])).map((i) => ({ provider: String(i.provider), subject: String(i.subject) })) : [];
    return a;
  };

  // Authentication first, for every product route: the product's own token, compared in constant time.
  const authorize = (req, reply) => {
    if (req.url.length > 2048) { refused.inc({ reason: 'url_too_long' }); reply.code(414).send({ error: 'request.too_long' }); return null; }
    const x = served.get(req.params.product);
    const h = req.headers.authorization;
    const presented = typeof h === 'string' && h.startsWith('Bearer ') ? digest(h.slice(7)) : digest('');
    // An unknown product is compared against a token nobody holds, so the answer and its time are the same.
    if (!crypto.timingSafeEqual(presented, x ? x.token : digest(crypto.randomBytes(32))) || !x) {
      refused.inc({ reason: 'token' });
      reply.code(401).send({ error: 'unauthorized' });
      return null;
    }
    if (!x.rate.take()) {
      refused.inc({ reason: 'rate' });
      reply.code(429).header('retry-after', '1').send({ error: 'rate_limited' });
      return null;
    }
    return x;
  };
  const timed = (route, handler) => async (req, reply) => {
    const x = authorize(req, reply);
    if (!x) return reply;
    const end = seconds.startTimer({ product: x.product.name, route });
    try {
      return await handler(x, req, reply);
    } catch (e) {
      dbErrors.inc({ product: x.product.name });
      log({ event: 'db_error', product: x.product.name, route, code: e.code || 'error' });
      return reply.code(503).send({ error: 'product.unavailable' });
    } finally {
      end();
      requests.inc({ product: x.product.name, route, status: String(reply.statusCode) });
    }
  };
  const bad = (reply, error, message) => reply.code(400).send({ error, message });

  app.get('/:product/trickle/accounts', timed('lookup', async (x, req, reply) => {
    const q = req.query || {};
    const given = (k) => q[k] !== undefined;
    for (const k of Object.keys(q)) {
      if (!['email', 'provider', 'subject'].includes(k)) return bad(reply, 'query.unknown', `unknown parameter ${JSON.stringify(k).slice(0, 40)}: email, or provider and subject`);
      if (typeof q[k] !== 'string') return bad(reply, 'query.repeated', `${k} must be given once`);
    }
    if (given('email') && (given('provider') || given('subject'))) return bad(reply, 'query.ambiguous', 'look up by email, or by provider and subject, not both');
    if (given('provider') || given('subject')) {
      if (!q.provider) return bad(reply, 'query.provider_required', 'provider is required with subject');
      if (!q.subject) return bad(reply, 'query.subject_required', 'subject is required with provider');
      if (!PROVIDER_RE.test(q.provider)) return bad(reply, 'query.provider_invalid', 'provider must be a connection strategy such as google-oauth2');
      if (q.subject.length > SUBJECT_MAX) return bad(reply, 'query.subject_invalid', `subject must be at most ${SUBJECT_MAX} characters`);
      // Without an identities table nobody is found by one; with one, exactly (no case folding).
      if (!x.sql.identity) return { accounts: [] };
      const rows = await x.db.all(x.sql.identity.accounts, [q.provider, q.subject]);
      const found = [];
      for (const r of rows) {
        const a = await shape(x, r);
        if (a.identities.some((i) => i.provider === q.provider && i.subject === q.subject)) found.push(a);
      }
      return { accounts: found.slice(0, s.maxAccounts) };
    }
    if (!q.email) return bad(reply, 'query.email_required', 'email is required (or provider and subject)');
    const asked = norm(q.email);
    if (asked.length > EMAIL_MAX || !asked.includes('@')) return bad(reply, 'query.email_invalid', `email must be an address of at most ${EMAIL_MAX} characters`);
    const rows = await x.db.all(x.sql.byEmail, [asked]);
    // Exactly the address asked for: a collation that folds more than case, or wildcards, find nothing extra.
    const found = rows.filter((r) => norm(r.email) === asked || (r.email_norm !== undefined && r.email_norm === asked)).slice(0, s.maxAccounts);
    const accounts = [];
    for (const r of found) accounts.push(await shape(x, r));
    return { accounts };
  }));

  /** The account named in the path, exactly (a database that compares '7abc' with 7 finds nothing here). */
  const account = async (x, id) => {
    if (typeof id !== 'string' || !id || id.length > ID_MAX) return null;
    let rows;
    try {
      rows = await x.db.all(x.sql.byId, [id]);
    } catch (e) {
      if (e.code === '22P02' || e.code === '22003') return null; // PostgreSQL: not a value of the id's type
      throw e;
    }
    return rows.find((r) => String(r.id) === id) || null;
  };
  const idBody = (req) => {
    const b = req.body;
    const v = b && typeof b === 'object' ? b.auth0_user_id : undefined;
    if (typeof v !== 'string' || v.length > 128 || !AUTH0_ID_RE.test(v)) return null;
    const replace = b.replace;
    if (replace !== undefined && replace !== null && (typeof replace !== 'string' || replace.length > 128 || !AUTH0_ID_RE.test(replace))) return null;
    return { value: v, replace: replace || v };
  };
  const ensureSide = async (x, key) => { if (x.sql.ensureSide) await x.db.run(x.sql.ensureSide, [key]); };

  app.put('/:product/trickle/accounts/:id/auth0-id', timed('set', async (x, req, reply) => {
    const body = idBody(req);
    if (!body) return bad(reply, 'body.auth0_user_id', 'body must be {"auth0_user_id": "provider|id", "replace"?: "provider|id"}');
    const row = await account(x, req.params.id);
    if (!row) return reply.code(404).send({ error: 'account.not_found' });
    const key = x.sql.side ? String(row.id) : row.id;
    await ensureSide(x, key);
    const r = await x.db.run(x.sql.set, [body.value, key, body.value, body.replace]);
    if (r.changes > 0) return reply.code(204).send();
    const now = await account(x, req.params.id);
    if (!now) return reply.code(404).send({ error: 'account.not_found' });
    if ((now.auth0_user_id || null) === body.value) return reply.code(204).send();
    return reply.code(409).send({ error: 'account.held', auth0_user_id: now.auth0_user_id });
  }));

  app.delete('/:product/trickle/accounts/:id/auth0-id', timed('clear', async (x, req, reply) => {
    const body = idBody(req);
    if (!body) return bad(reply, 'body.auth0_user_id', 'body must be {"auth0_user_id": "provider|id"}');
    const row = await account(x, req.params.id);
    if (!row) return reply.code(404).send({ error: 'account.not_found' });
    await x.db.run(x.sql.clear, [x.sql.side ? String(row.id) : row.id, body.value]);
    return reply.code(204).send();
  }));

  app.get('/healthz', async (req, reply) => {
    const down = [];
    for (const [name, x] of served) {
      try { await x.db.all('SELECT 1 AS one'); } catch (_) { down.push(name); }
    }
    return reply.code(down.length ? 503 : 200).send({ ok: !down.length, down });
  });
  app.get('/metrics', async (req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  app.setNotFoundHandler((req, reply) => { refused.inc({ reason: 'route' }); reply.code(404).send({ error: 'not_found' }); });
  app.setErrorHandler((e, req, reply) => {
    const status = e.statusCode && e.statusCode < 500 ? e.statusCode : 500;
    refused.inc({ reason: status === 413 ? 'body_too_large' : status === 415 ? 'content_type' : status < 500 ? 'bad_request' : 'error' });
    reply.code(status).send({ error: status === 413 ? 'request.too_large' : status < 500 ? 'request.malformed' : 'internal' });
  });

  try {
    await app.listen({ host: s.host, port: s.port });
  } catch (e) {
    for (const x of served.values()) await x.db.close().catch(() => {});
    throw new TrickleError('product_api.listen', `cannot listen on ${s.host}:${s.port}: ${e.message}`);
  }
  const addr = app.server.address();
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `${https ? 'https' : 'http'}://${host}:${addr.port}`;
  log({ event: 'listening', url, products: [...served.keys()], tls: !!https, rate_per_second: s.ratePerSecond, databases: [...served.values()].map((x) => redact(x.product.db)) });
  return {
    url,
    products: Object.fromEntries([...served.keys()].map((n) => [n, `${url}/${n}`])),
    registry,
    /** Stops taking requests, lets those in flight finish, closes every pool. */
    close: async () => {
      await app.close();
      for (const x of served.values()) await x.db.close().catch(() => {});
      log({ event: 'stopped' });
    }
  };
}

module.exports = { startProductApi, apiSettings, SETTINGS, TOKEN_MIN };
