// Social connections: the tenant as the relying party of Google, Apple and Slack (sim/social.js
// holds the relying party and the profile mapping). A social login is bound to the browser that
// started it, its answer is used once, and its user is the identity's holder or a new one.
'use strict';
const social = require('../social');
const { canonicalAddress } = require('../address');
const pages = require('./pages');
const { setCookie, parseCookies } = require('../../lib/web');

// The cookie that binds a social login to the browser that started it, scoped to its callback.
const bindingCookie = (state, value, maxAge) => setCookie(`sx_${state}`, value, { path: '/login/callback', maxAge });

function create(t) {
  const { state, store } = t;
  const socialConns = new Map(); // strategy → {strategy, name, id, label, rp}
  const callbackUrl = () => `${t.base}/login/callback`;
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
      const now = new Date().toISOString();
      store.connections.set(conn.id, { id: conn.id, name: strategy, display_name: known.label, strategy, options: { client_id: cfg.clientId, scope: String(cfg.scope || '').split(' ') }, realms: [strategy], is_domain_connection: false, created_at: now, updated_at: now });
      store.enabledClients.set(conn.id, new Set(Object.keys(t.clients)));
    }
    return conn;
  }
  /**
   * The user a social login signs in: the holder of the identity (its profile refreshed from the
   * provider, as Auth0 does at every login), else a new `<strategy>|<sub>` user.
   */
  function socialUser(conn, claims) {
    const p = social.profileFrom(conn.strategy, claims);
    const now = new Date().toISOString();
    const held = t.userWithIdentity(conn.strategy, p.sub);
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
    const r = t.addUser({
      user_id: `${conn.strategy}|${sub}`, ...fields, app_metadata: {}, user_metadata: {},
      identities: [{ provider: conn.strategy, user_id: sub, connection: conn.name, isSocial: true }], mfa_factors: [], created_at: now, updated_at: now, logins_count: 0
    });
    if (!r.error) t.event('user_created', { user_id: r.user.user_id, via: conn.strategy });
    return r;
  }
  /** Sends the browser of login `tx` to the provider of `strategy`, bound to it by a cookie. */
  async function startSocial(reply, tx, strategy) {
    const conn = socialConns.get(strategy);
    if (!conn) return pages.send(reply, 400, pages.errorPage('Unknown connection'));
    let started;
    try {
      started = await conn.rp.start();
    } catch (e) {
      t.event('social_unavailable', { connection: strategy });
      return pages.send(reply, 503, t.loginPage(tx, `${conn.label} cannot be reached right now.`));
    }
    // The login is bound to this browser: the callback needs the cookie set here (login CSRF).
    const b = social.binding();
    state.socialLogins.set(started.checks.state, { txState: tx.state, strategy, checks: started.checks, browser: b.digest, exp: Date.now() + 10 * 60000 });
    for (const [k, v] of state.socialLogins) if (v.exp < Date.now()) state.socialLogins.delete(k);
    reply.header('set-cookie', bindingCookie(started.checks.state, b.value, 600));
    t.event('social_redirect', { connection: strategy });
    return reply.redirect(started.url, 302);
  }
  return {
    connectSocial, startSocial, socialUser, callbackUrl,
    hasSocialConnection: (name) => socialConns.has(name),
    socialConnection: (name) => socialConns.get(name),
    socialConnections: () => [...socialConns.values()]
  };
}

function routes(app, t) {
  const { state } = t;
  app.get('/u/login/federated', async (req, reply) => {
    const q = req.query || {};
    const tx = state.transactions.get(q.state);
    if (!tx) return pages.send(reply, 400, pages.loginExpired());
    return t.startSocial(reply, tx, q.connection);
  });
  const socialCallback = async (req, reply) => {
    const params = req.method === 'POST' ? { ...(req.body || {}) } : { ...(req.query || {}) };
    const key = typeof params.state === 'string' ? params.state : '';
    const pending = state.socialLogins.get(key);
    if (pending) state.socialLogins.delete(key); // one answer per login, whatever it is
    if (!pending || pending.exp < Date.now()) return pages.send(reply, 400, pages.errorPage('Invalid state', 'Go back to the application and sign in again.'));
    reply.header('set-cookie', bindingCookie(key, '', 0));
    const presented = parseCookies(req)[`sx_${key}`];
    if (!presented || social.digest(presented) !== pending.browser) {
      t.event('social_refused', { connection: pending.strategy, reason: 'another browser' });
      return pages.send(reply, 400, pages.errorPage('This sign-in was started in another browser', 'Go back to the application and sign in again.'));
    }
    const tx = state.transactions.get(pending.txState);
    if (!tx) return pages.send(reply, 400, pages.loginExpired());
    const conn = t.socialConnection(pending.strategy);
    if (params.error) return t.finish(reply, tx, { outcome: 'deny', reason: `${conn.label}: ${String(params.error)}` });
    let claims;
    try {
      claims = await conn.rp.finish(params, pending.checks);
    } catch (e) {
      t.event('social_failed', { connection: conn.name, reason: e.name || 'error' });
      return t.finish(reply, tx, { outcome: 'deny', reason: `The answer of ${conn.label} could not be verified.` });
    }
    const r = t.socialUser(conn, claims);
    if (r.error) return t.finish(reply, tx, { outcome: 'deny', reason: `The profile from ${conn.label} cannot be stored.` });
    tx.connection = { id: conn.id, name: conn.name, strategy: conn.strategy };
    t.event('social_login', { connection: conn.name, user_id: r.user.user_id });
    return t.signedIn(reply, tx, r.user, { provider: conn.strategy, user_id: String(claims.sub) });
  };
  app.get('/login/callback', socialCallback);
  app.post('/login/callback', socialCallback);
}

module.exports = { create, routes };
