// The console's and `trickle support`'s settings: trickle.json (its tenant, products, state and
// support sections) with the secrets from the environment when they are set there.
'use strict';
const { ConsoleConfigError } = require('./server');

/**
 * Options for startConsole / supportService from a validated trickle.json and the environment:
 * TRICKLE_CONSOLE_CLIENT_SECRET and TRICKLE_CONSOLE_SESSION_SECRET override support.clientSecret
 * and support.sessionSecret. `support.staff` entries with an @ are addresses, the rest user ids;
 * an address counts only for users of `support.staffProviders` (default `auth0`, the database users).
 */
function consoleOptions(cfg, env = process.env, overrides = {}) {
  const s = cfg.support || {};
  const t = cfg.tenant || {};
  if (!t.url || !t.clientId || !t.clientSecret) throw new ConsoleConfigError('console.tenant_missing', 'trickle.json needs tenant.url, tenant.clientId and tenant.clientSecret (an application allowed read:users, update:users, read:logs)');
  const staff = s.staff || [];
  return {
    tenant: { url: t.url, clientId: t.clientId, clientSecret: t.clientSecret, ...(t.audience ? { audience: t.audience } : {}) },
    login: { clientId: s.clientId, clientSecret: env.TRICKLE_CONSOLE_CLIENT_SECRET || s.clientSecret },
    staff: { emails: staff.filter((x) => x.includes('@')), userIds: staff.filter((x) => !x.includes('@')), providers: s.staffProviders || ['auth0'], roleClaim: s.roleClaim, roles: s.roles || [] },
    sessionSecret: env.TRICKLE_CONSOLE_SESSION_SECRET || s.sessionSecret,
    sessionTtlSeconds: s.sessionTtlSeconds || 1800,
    publicUrl: s.publicUrl,
    port: s.port === undefined ? 9470 : s.port,
    products: (cfg.products || []).filter((p) => p.api && p.api.url).map((p) => ({ name: p.name, url: p.api.url, token: p.api.token })),
    state: cfg.state,
    audit: s.audit || 'sqlite:trickle-audit.sqlite',
    ...overrides
  };
}

module.exports = { consoleOptions };
