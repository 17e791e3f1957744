// Universal Login: /authorize (clients, redirect URIs, PKCE S256, prompt=none, a connection
// named straight away), the sign-in form at /u/login, and the demo application's callback.
'use strict';
const pages = require('./pages');

// The characters RFC 7636 allows in a code challenge or verifier.
const PKCE_VALUE = /^[A-Za-z0-9._~-]+$/;

function create(t) {
  /** The sign-in page of a login, with the enabled social connections' buttons. */
  const loginPage = (tx, error) => pages.loginPage(tx, t.socialConnections(), error);
  return { loginPage };
}

function routes(app, t) {
  const { state } = t;
  /** Back to the application's redirect URI with an OAuth error (and the app's state if any). */
  const backWithError = (reply, q, error, description) => {
    const back = new URL(q.redirect_uri);
    back.searchParams.set('error', error);
    if (description) back.searchParams.set('error_description', description);
    if (description && q.state) back.searchParams.set('state', q.state);
    return reply.redirect(back.toString(), 302);
  };

  app.get('/authorize', async (req, reply) => {
    const q = req.query || {};
    const client = t.clients[q.client_id];
    if (!client) return pages.send(reply, 400, pages.errorPage('Unknown client'));
    if (!client.redirectUris().includes(q.redirect_uri)) return pages.send(reply, 400, pages.errorPage('Callback URL mismatch'));
    if (q.response_type !== 'code') return backWithError(reply, q, 'unsupported_response_type');
    // PKCE (RFC 7636): S256 only; a plain challenge would hand the verifier to whoever sees the URL.
    if (q.code_challenge !== undefined || q.code_challenge_method !== undefined) {
      if (q.code_challenge_method !== 'S256' || !PKCE_VALUE.test(String(q.code_challenge || '')) || String(q.code_challenge).length !== 43) {
        return backWithError(reply, q, 'invalid_request', 'code_challenge must be an S256 challenge (code_challenge_method=S256)');
      }
    }
    const tx = { state: t.randomId(12), clientId: q.client_id, redirectUri: q.redirect_uri, appState: q.state, nonce: q.nonce, prompt: q.prompt, protocol: 'oidc-basic-profile', codeChallenge: q.code_challenge, created: Date.now() };
    state.transactions.set(tx.state, tx);
    if (q.prompt === 'none') return t.finish(reply, tx, { outcome: 'deny', reason: 'login_required' });
    // `connection` skips the login page: straight to that social connection's provider.
    if (q.connection !== undefined && q.connection !== 'trickle') {
      if (!t.hasSocialConnection(q.connection)) return t.finish(reply, tx, { outcome: 'deny', reason: 'the connection was not found' });
      return t.startSocial(reply, tx, q.connection);
    }
    return pages.send(reply, 200, t.loginPage(tx));
  });

  app.post('/u/login', async (req, reply) => {
    const body = req.body || {};
    const tx = state.transactions.get(body.state);
    if (!tx) return pages.send(reply, 400, pages.loginExpired());
    const r = await t.databaseLogin(body.email, body.password);
    const emailDomain = String(body.email || '').split('@')[1];
    if (r.conflict) {
      t.event('login_refused', { reason: 'user already exists' });
      return pages.send(reply, 409, t.loginPage(tx, 'The user already exists.'));
    }
    if (r.refused) {
      t.event('login_refused', { email_domain: emailDomain });
      return pages.send(reply, 401, t.loginPage(tx, r.refused));
    }
    if (r.wrong || r.error) {
      if (r.wrong) state.counters.wrong_password++;
      t.event(r.wrong ? 'wrong_password' : 'login_error', { email_domain: emailDomain });
      return pages.send(reply, r.wrong ? 401 : 503, t.loginPage(tx, r.wrong ? 'Wrong email or password.' : `We could not sign you in right now: ${r.error}`));
    }
    return t.signedIn(reply, tx, r.user, r.identity);
  });

  // --- the demo application's callback ---
  app.get('/app/callback', async (req, reply) => pages.send(reply, 200, pages.appCallback(req.query || {})));
}

module.exports = { create, routes, PKCE_VALUE };
