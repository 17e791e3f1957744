// A Management API client for the bulk commands: client-credentials token (cached), rate-limit
// awareness (Retry-After, then x-ratelimit-reset, then exponential backoff with jitter), a request
// budget, and never retrying forever.
'use strict';

class BudgetExceeded extends Error {
  constructor(budget) { super(`the request budget of ${budget} Management API requests is spent`); this.code = 'budget_exceeded'; }
}

function tenantClient({ url, clientId, clientSecret, audience, budget = Infinity, maxAttempts = 8, log = () => {} }) {
  let token = null;
  const stats = { requests: 0, throttled: 0, errors: 0 };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function raw(path, init = {}) {
    if (stats.requests >= budget) throw new BudgetExceeded(budget);
    stats.requests++;
    return fetch(url + path, { ...init, signal: AbortSignal.timeout(30000) });
  }

  /** One call with retries on 429, 5xx and network errors. Resolves to the Response. */
  async function call(path, init = {}, { auth = true } = {}) {
    for (let attempt = 1; ; attempt++) {
      let res = null;
      let wait = Math.min(30000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
      try {
        const headers = { ...(init.headers || {}) };
        if (auth) headers.authorization = `Bearer ${await accessToken()}`;
        res = await raw(path, { ...init, headers });
      } catch (e) {
        if (e instanceof BudgetExceeded) throw e;
        stats.errors++;
        log({ event: 'tenant_network_error', path, message: e.message });
      }
      if (res && res.status === 401 && auth && attempt === 1) { token = null; continue; }
      if (res && res.status !== 429 && res.status < 500) return res;
      if (res && res.status === 429) {
        stats.throttled++;
        const retryAfter = Number(res.headers.get('retry-after'));
        const reset = Number(res.headers.get('x-ratelimit-reset'));
        if (retryAfter > 0) wait = retryAfter * 1000;
        else if (reset > 0) wait = Math.max(100, reset * 1000 - Date.now());
      } else if (res) {
        stats.errors++;
      }
      if (attempt >= maxAttempts) {
        if (res) return res;
        throw new Error(`${path}: no answer after ${maxAttempts} attempts`);
      }
      await sleep(Math.min(wait, 30000));
    }
  }

  async function accessToken() {
    if (token && token.exp > Date.now() + 60000) return token.value;
    const res = await call('/oauth/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, audience: audience || `${url}/api/v2/` }) }, { auth: false });
    if (!res.ok) throw new Error(`client credentials: HTTP ${res.status}`);
    const body = await res.json();
    token = { value: body.access_token, exp: Date.now() + (body.expires_in || 3600) * 1000 };
    return token.value;
  }

  return { call, stats, BudgetExceeded };
}

module.exports = { tenantClient, BudgetExceeded };
