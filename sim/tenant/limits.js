// Rate limits and injected faults on the tenant's APIs (the Management API and /oauth/token), as
// the platform's per-plan buckets answer them (sim/ratelimit.js, auth0-platform.md).
'use strict';
const { err } = require('./management/api');

function routes(app, t) {
  app.addHook('onRequest', async (req, reply) => {
    const api = req.url.startsWith('/api/v2') || req.url.startsWith('/oauth/token');
    if (!api) return;
    const f = t.state.faults;
    if (f.latencyMs) await new Promise((r) => setTimeout(r, f.latencyMs));
    if (f.dropRate && Math.random() < f.dropRate) { req.raw.socket.destroy(); return reply; }
    const bucket = req.url.startsWith('/oauth/token') ? 'authentication' : req.method !== 'GET' && /\/api\/v2\/users/.test(req.url) ? 'user_writes' : 'other';
    const r = t.limiter.take(bucket);
    reply.header('x-ratelimit-limit', r.limit).header('x-ratelimit-remaining', r.remaining).header('x-ratelimit-reset', r.reset);
    const storm = f.stormRate && Math.random() < f.stormRate;
    if (!r.ok || storm) {
      if (r.retryAfter) reply.header('retry-after', r.retryAfter);
      return err(reply, 429, 'Global limit has been reached', 'too_many_requests');
    }
    if (f.errorRate && Math.random() < f.errorRate) return err(reply, 503, 'injected fault');
  });
}

module.exports = { routes };
