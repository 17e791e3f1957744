// The post-login pipeline: the enabled Rules in order, or the bound Actions with their `api`
// (metadata, redirect, deny, setPrimaryUser, cache); a redirect pauses the login until /continue;
// then the second factor, and the code back to the application (`finish`).
'use strict';
const runtime = require('../runtime');
const { publicUser } = require('./users');
const pages = require('./pages');

const NO_REDIRECT = new Set(['oauth2-resource-owner', 'oauth2-refresh-token', 'oauth2-password']);
/** The identity a sign-in came through: the one given, else the user's own (its first). */
const identityOf = (user, identity) => identity || { provider: 'auth0', user_id: user.identities[0].user_id };
/** The connection a login came through: the database connection unless a social one set it. */
const connectionOf = (tx) => tx.connection || { id: 'con_trickle', name: 'trickle', strategy: 'auth0' };

function create(t) {
  const { state } = t;

  /** The legacy Rules: each enabled Rule in order, given the user and context the previous one returned. */
  async function runRules(tx, phase, request, user, canRedirect) {
    const context = {
      protocol: phase === 'continue' ? 'redirect-callback' : tx.protocol, connection: connectionOf(tx).name, connectionStrategy: connectionOf(tx).strategy, clientID: tx.clientId,
      request: { query: request.query || {}, body: request.body || {}, ip: '127.0.0.1' }
    };
    if (!canRedirect && phase === 'execute') context.request.query.prompt = 'none';
    let u = publicUser(user);
    let ctx = context;
    for (const rule of t.enabledRules()) {
      const [err, u2, ctx2] = await runtime.callScript(rule.fn, [u, ctx]);
      if (err) return { outcome: 'deny', reason: err.message };
      u = u2 || u;
      ctx = ctx2 || ctx;
    }
    if (ctx && ctx.redirect && ctx.redirect.url) return { outcome: 'redirect', url: ctx.redirect.url };
    return { outcome: 'continue' };
  }

  /** Runs the pipeline for a login (`phase` 'execute', or 'continue' after a redirect). */
  async function postLogin(tx, phase, request) {
    const user = state.users.get(tx.userId);
    const canRedirect = !NO_REDIRECT.has(tx.protocol) && tx.prompt !== 'none';
    if (t.opts.pipeline === 'rules') return runRules(tx, phase, request, user, canRedirect);
    const writes = {};
    let redirect = null;
    let denied = null;
    let primary = null;
    let cache = null; // the running Action's api.cache (set per Action below)
    const api = {
      user: { setAppMetadata: (k, v) => { writes[k] = v === undefined ? null : JSON.parse(JSON.stringify(v)); }, setUserMetadata: () => {} },
      redirect: { canRedirect: () => canRedirect, sendUserTo: (url, o) => { redirect = { url, query: (o && o.query) || {} }; } },
      access: { deny: (reason) => { denied = String(reason); } },
      // The login continues as this user after the Actions, if the identity that signed in is by
      // then one of its linked (secondary) identities; checked below.
      authentication: { setPrimaryUser: (id) => { primary = String(id); } },
      cache: {
        get: (key) => cache.get(key),
        set: (key, value, o) => cache.set(key, value, o),
        delete: (key) => cache.delete(key)
      }
    };
    // The bound Actions run in order; a redirect pauses the flow after its Action, and /continue
    // resumes that Action's onContinuePostLogin, then the Actions after it.
    const actions = t.postLoginActions();
    let i = phase === 'continue' ? actions.findIndex((a) => a.id === tx.pausedAction) : 0;
    if (phase === 'continue' && i < 0) return { outcome: 'deny', reason: 'The Action that redirected is no longer bound.' };
    for (let first = true; i < actions.length && !redirect && !denied; i++, first = false) {
      const a = actions[i];
      cache = a.cache;
      const evt = {
        user: publicUser(state.users.get(user.user_id) || user), secrets: { ...a.secrets }, connection: { ...connectionOf(tx) },
        client: { client_id: tx.clientId }, transaction: { protocol: tx.protocol, state: tx.state },
        request: { query: request.query || {}, body: request.body || {}, ip: '127.0.0.1' }
      };
      const handler = phase === 'continue' && first ? a.module.onContinuePostLogin : a.module.onExecutePostLogin;
      try {
        if (typeof handler === 'function') await handler(evt, api);
      } catch (e) {
        t.event('action_threw', { action: a.name, message: e.message });
        return { outcome: 'deny', reason: 'The post-login Action failed.' };
      }
      if (redirect) tx.pausedAction = a.id;
    }
    // Metadata set by the Action is written once, at the end of the flow or at the redirect, to
    // the user the Action was given; one linked into another user meanwhile is gone, and so are
    // its writes.
    if (state.users.get(user.user_id) === user) {
      for (const [k, v] of Object.entries(writes)) {
        if (v === null) delete user.app_metadata[k];
        else user.app_metadata[k] = v;
      }
    } else if (Object.keys(writes).length) t.event('metadata_dropped', { user_id: user.user_id, reason: 'the user was linked into another' });
    if (denied) return { outcome: 'deny', reason: denied };
    if (primary !== null) {
      const target = state.users.get(primary);
      const id = tx.identity || {};
      const linked = target && target.identities.slice(1).some((x) => x.provider === id.provider && x.user_id === id.user_id);
      if (!linked && !(primary === tx.userId && target)) {
        t.event('primary_user_refused', { user_id: tx.userId, primary });
        return { outcome: 'deny', reason: 'setPrimaryUser: the identity of this login is not linked to that user.' };
      }
      if (primary !== tx.userId) t.event('primary_user_set', { from: tx.userId, to: primary });
      tx.userId = primary;
    }
    if (redirect) {
      const u = new URL(redirect.url);
      for (const [k, v] of Object.entries(redirect.query)) u.searchParams.set(k, v);
      return { outcome: 'redirect', url: u.toString() };
    }
    return { outcome: 'continue' };
  }

  /** Finishes a transaction after the pipeline: a code back to the app, or an error. */
  function finish(reply, tx, result) {
    const back = new URL(tx.redirectUri);
    if (tx.appState) back.searchParams.set('state', tx.appState);
    if (result.outcome === 'deny') {
      state.counters.denied++;
      t.event('login_denied', { user_id: tx.userId, reason: result.reason });
      state.transactions.delete(tx.state);
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', result.reason);
      return reply.redirect(back.toString(), 302);
    }
    if (result.outcome === 'redirect') {
      state.counters.merge_redirects++;
      t.event('redirect', { user_id: tx.userId });
      tx.redirected = true;
      const u = new URL(result.url);
      u.searchParams.set('state', tx.state);
      return reply.redirect(u.toString(), 302);
    }
    // The second factor comes last, after the pipeline, as on the platform.
    if (t.mfaPending(tx)) return t.mfaChallenge(reply, tx);
    if (!state.users.get(tx.userId)) {
      // The user the login started as was linked into another, and the login was not moved to it.
      return finish(reply, tx, { outcome: 'deny', reason: 'The user of this login no longer exists.' });
    }
    const code = t.randomId(16);
    state.codes.set(code, { userId: tx.userId, clientId: tx.clientId, redirectUri: tx.redirectUri, nonce: tx.nonce, codeChallenge: tx.codeChallenge, exp: Date.now() + 600000 });
    state.transactions.delete(tx.state);
    const user = state.users.get(tx.userId);
    user.logins_count++;
    user.last_login = new Date().toISOString();
    state.counters.logins++;
    t.event('login', { user_id: tx.userId });
    back.searchParams.set('code', code);
    return reply.redirect(back.toString(), 302);
  }

  /** A login that has signed in as `user` through `identity`: the pipeline, then its end. */
  async function signedIn(reply, tx, user, identity) {
    tx.userId = user.user_id;
    tx.identity = identityOf(user, identity);
    return finish(reply, tx, await postLogin(tx, 'execute', { query: {}, body: {} }));
  }
  return { postLogin, finish, signedIn };
}

function routes(app, t) {
  const { state } = t;
  const resume = async (req, reply) => {
    const q = req.query || {};
    const tx = state.transactions.get(q.state);
    if (!tx || !tx.redirected) return pages.send(reply, 400, pages.errorPage('Invalid state'));
    tx.redirected = false;
    const result = await t.postLogin(tx, 'continue', { query: q, body: req.body || {} });
    if (result.outcome === 'continue' && state.users.get(tx.userId).app_metadata.migrated) state.counters.merged++;
    return t.finish(reply, tx, result.outcome === 'redirect' ? { outcome: 'deny', reason: 'only one redirect per login' } : result);
  };
  app.get('/continue', resume);
  app.post('/continue', resume);
}

module.exports = { create, routes, connectionOf, identityOf };
