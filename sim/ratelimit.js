// Token buckets per plan profile, as the Management API applies them (auth0-platform.md §5;
// the free plan's burst of 2 is from Auth0's rate-limit configuration pages).
'use strict';

const PLANS = {
  enterprise: { other: { burst: 50, perSecond: 16 }, user_writes: { burst: 50, perSecond: 16 } },
  'enterprise-dev': { other: { burst: 10, perSecond: 2 }, user_writes: { burst: 10, perSecond: 2 } },
  'self-service': { other: { burst: 10, perSecond: 150 / 60 }, user_writes: { burst: 20, perSecond: 200 / 60 } },
  free: { other: { burst: 2, perSecond: 2 }, user_writes: { burst: 2, perSecond: 2 } }
};

class RateLimiter {
  /** @param {string|object} plan a name of PLANS, or `{other, user_writes}` buckets */
  constructor(plan = 'enterprise', now = () => Date.now()) {
    const p = typeof plan === 'string' ? PLANS[plan] : plan;
    if (!p) throw new Error(`unknown plan ${plan}; one of ${Object.keys(PLANS).join(', ')}`);
    this.now = now;
    this.buckets = {};
    for (const [name, b] of Object.entries(p)) this.buckets[name] = { ...b, tokens: b.burst, at: now() };
    // The Authentication API (/oauth/token) is limited apart from the Management API, as in
    // Auth0; its bucket has the plan's general figures unless the plan names its own.
    if (!this.buckets.authentication) this.buckets.authentication = { ...p.other, tokens: p.other.burst, at: now() };
  }

  /** Takes one token. Returns the values of the x-ratelimit-* headers and whether it was allowed. */
  take(name) {
    const b = this.buckets[name] || this.buckets.other;
    const t = this.now();
    b.tokens = Math.min(b.burst, b.tokens + ((t - b.at) / 1000) * b.perSecond);
    b.at = t;
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    const secondsToNext = b.tokens >= 1 ? 0 : (1 - b.tokens) / b.perSecond;
    return {
      ok, limit: b.burst, remaining: Math.floor(b.tokens),
      reset: Math.ceil(t / 1000 + secondsToNext),
      retryAfter: ok ? 0 : Math.max(1, Math.ceil(secondsToNext))
    };
  }
}

module.exports = { RateLimiter, PLANS };
