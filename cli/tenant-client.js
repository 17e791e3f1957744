// A Management API client for the bulk commands: client-credentials token (cached), rate-limit
// awareness (js-shim/retry.js: Retry-After, then x-ratelimit-reset, then exponential backoff with
// jitter), a request budget, and never retrying forever. What retrying cannot fix fails at once,
// naming the setting: a malformed tenant URL, a host that does not exist or never answered,
// credentials or scopes the tenant refuses (TenantConfigError).
'use strict';
const { trickleRetryWait } = require('../js-shim/retry');

class BudgetExceeded extends Error {
  constructor(budget) { super(`the request budget of ${budget} Management API requests is spent`); this.code = 'budget_exceeded'; }
}

/** A setting of the configuration the tenant cannot work with; `setting` names it. */
class TenantConfigError extends Error {
  constructor(code, setting, message) {
    super(`${code}: ${message}`);
    this.code = code;
    this.setting = setting;
  }
}

/** The tenant's base URL, checked: https (or http) with a host and nothing else. */
function tenantBase(url) {
  let u;
  try {
    u = new URL(String(url || ''));
  } catch (_) {
    throw new TenantConfigError('tenant.url_malformed', 'tenant.url', `tenant.url ${JSON.stringify(String(url || ''))} is not a URL (expected https://TENANT.eu.auth0.com)`);
  }
  if (!['https:', 'http:'].includes(u.protocol) || !u.hostname || u.username || u.password || u.search || u.hash || (u.pathname && u.pathname !== '/')) {
    throw new TenantConfigError('tenant.url_malformed', 'tenant.url', `tenant.url ${JSON.stringify(String(url))} must be https://TENANT.eu.auth0.com with no path, query or credentials`);
  }
  return `${u.protocol}//${u.host}`;
}

// Network failures that are answers about the configuration, not the network's weather.
const HOST_UNKNOWN = new Set(['ENOTFOUND', 'ERR_INVALID_URL', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'ERR_TLS_CERT_ALTNAME_INVALID', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_SSL_WRONG_VERSION_NUMBER']);
const causeCode = (e) => (e && e.cause && (e.cause.code || (e.cause.cause && e.cause.cause.code))) || (e && e.code) || null;

function tenantClient({ url, clientId, clientSecret, audience, connectionId, budget = Infinity, maxAttempts = 8, firstContactAttempts = 3, log = () => {} }) {
  const base = tenantBase(url);
  for (const [k, v] of [['clientId', clientId], ['clientSecret', clientSecret]]) {
    if (typeof v !== 'string' || !v) throw new TenantConfigError('tenant.setting_missing', `tenant.${k}`, `tenant.${k} is required`);
  }
  void connectionId;
  let token = null;
  let answered = false; // the tenant has answered once: network errors from now on are weather
  const stats = { requests: 0, throttled: 0, errors: 0 };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function raw(path, init = {}) {
    if (stats.requests >= budget) throw new BudgetExceeded(budget);
    stats.requests++;
    const res = await fetch(base + path, { ...init, signal: AbortSignal.timeout(30000) });
    answered = true;
    return res;
  }

  /** One call with retries on 429, 5xx and network errors. Resolves to the Response. */
  async function call(path, init = {}, { auth = true } = {}) {
    for (let attempt = 1; ; attempt++) {
      let res = null;
      try {
        const headers = { ...(init.headers || {}) };
        if (auth) headers.authorization = `Bearer ${await accessToken()}`;
        res = await raw(path, { ...init, headers });
      } catch (e) {
        if (e instanceof BudgetExceeded || e instanceof TenantConfigError) throw e;
        stats.errors++;
        const code = causeCode(e);
        log({ event: 'tenant_network_error', path, code, message: e.message });
        if (HOST_UNKNOWN.has(code)) throw new TenantConfigError('tenant.unreachable', 'tenant.url', `tenant.url ${base}: ${code} (${(e.cause && e.cause.message) || e.message})`);
        if (!answered && attempt >= firstContactAttempts) {
          throw new TenantConfigError('tenant.unreachable', 'tenant.url', `tenant.url ${base} never answered (${code || e.message}, ${attempt} attempts)`);
        }
      }
      if (res && (res.status === 401 || res.status === 403) && auth) {
        if (res.status === 401 && attempt === 1) { token = null; continue; }
        // A fresh token refused, or a scope missing: the application's grant, not the weather.
        const text = (await res.text()).slice(0, 200);
        throw new TenantConfigError('tenant.api_refused', 'tenant.clientId', `the Management API refused the application tenant.clientId ${JSON.stringify(clientId)} on ${path}: HTTP ${res.status} ${text} (its client grant needs create:users, read:users)`);
      }
      if (res && res.status === 429) stats.throttled++;
      else if (res && res.status >= 500) stats.errors++;
      // No answer is waited out briefly: a host that never answers is named within seconds.
      const wait = trickleRetryWait({
        attempt, status: res ? res.status : 0, now: Date.now(), random: Math.random,
        retryAfter: res && res.headers.get('retry-after'), reset: res && res.headers.get('x-ratelimit-reset')
      }, { attempts: maxAttempts, base: 500, cap: res ? 30000 : 1000 });
      if (wait < 0) {
        if (res) return res;
        throw new Error(`${path}: no answer after ${maxAttempts} attempts`);
      }
      await sleep(wait);
    }
  }

  async function accessToken() {
    if (token && token.exp > Date.now() + 60000) return token.value;
    const res = await call('/oauth/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, audience: audience || `${base}/api/v2/` }) }, { auth: false });
    if (!res.ok) {
      const text = (await res.text()).slice(0, 200);
      if (res.status === 401) throw new TenantConfigError('tenant.credentials_refused', 'tenant.clientSecret', `the tenant refused tenant.clientId ${JSON.stringify(clientId)} with tenant.clientSecret: HTTP 401 ${text}`);
      if (res.status === 403) throw new TenantConfigError('tenant.credentials_refused', audience ? 'tenant.audience' : 'tenant.clientId', `the tenant refused a client-credentials token for tenant.clientId ${JSON.stringify(clientId)}${audience ? ` and tenant.audience ${JSON.stringify(audience)}` : ''}: HTTP 403 ${text} (authorize the application for the Management API)`);
      if (res.status === 404 || res.status === 405) throw new TenantConfigError('tenant.not_a_tenant', 'tenant.url', `tenant.url ${base} has no /oauth/token (HTTP ${res.status}): not an Auth0 tenant`);
      if (res.status < 500 && res.status !== 429) throw new TenantConfigError('tenant.credentials_refused', 'tenant.clientId', `client credentials refused: HTTP ${res.status} ${text}`);
      throw new Error(`client credentials: HTTP ${res.status}`);
    }
    let body;
    try {
      body = await res.json();
    } catch (_) {
      throw new TenantConfigError('tenant.not_a_tenant', 'tenant.url', `tenant.url ${base}: /oauth/token did not answer JSON: not an Auth0 tenant`);
    }
    if (!body || typeof body.access_token !== 'string') throw new TenantConfigError('tenant.not_a_tenant', 'tenant.url', `tenant.url ${base}: /oauth/token answered no access_token`);
    token = { value: body.access_token, exp: Date.now() + (body.expires_in || 3600) * 1000 };
    return token.value;
  }

  return { call, token: accessToken, stats, BudgetExceeded };
}

module.exports = { tenantClient, tenantBase, BudgetExceeded, TenantConfigError };
