// OpenID Connect and OAuth: discovery, the JWKS, RS256 tokens, and /oauth/token with the grants
// trickle and its tests use (authorization code with PKCE, password and password-realm, the
// mfa-otp grant that completes a password grant, client credentials for the Management API).
'use strict';
const crypto = require('crypto');
const { PKCE_VALUE } = require('./universal-login');
const { identityOf } = require('./pipeline');

const b64url = (b) => Buffer.from(b).toString('base64url');
const MFA_OTP = 'http://auth0.com/oauth/grant-type/mfa-otp';

function create(t) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = t.randomId(8);
  function signJwt(claims) {
    const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid }));
    const body = b64url(JSON.stringify(claims));
    return `${header}.${body}.${b64url(crypto.sign('sha256', Buffer.from(`${header}.${body}`), privateKey))}`;
  }
  function verifyJwt(token) {
    const [h, b, s] = String(token || '').split('.');
    if (!s) return null;
    if (!crypto.verify('sha256', Buffer.from(`${h}.${b}`), publicKey, Buffer.from(s, 'base64url'))) return null;
    const claims = JSON.parse(Buffer.from(b, 'base64url').toString());
    return claims.exp > Date.now() / 1000 ? claims : null;
  }
  const jwk = () => ({ ...publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' });
  return { signJwt, verifyJwt, jwk };
}

function routes(app, t) {
  const { state } = t;
  app.get('/.well-known/openid-configuration', async () => ({
    issuer: `${t.base}/`, authorization_endpoint: `${t.base}/authorize`, token_endpoint: `${t.base}/oauth/token`,
    jwks_uri: `${t.base}/.well-known/jwks.json`, userinfo_endpoint: `${t.base}/userinfo`,
    response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'],
    grant_types_supported: ['authorization_code', 'password', 'client_credentials', MFA_OTP],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'], scopes_supported: ['openid', 'profile', 'email'],
    code_challenge_methods_supported: ['S256']
  }));
  app.get('/.well-known/jwks.json', async () => ({ keys: [t.jwk()] }));

  /** The client a token request authenticates as (client_secret_post or _basic), or null. */
  function clientAuth(req) {
    const body = req.body || {};
    let id = body.client_id;
    let secret = body.client_secret;
    const basic = /^Basic (.+)$/.exec(req.headers.authorization || '');
    if (basic) [id, secret] = Buffer.from(basic[1], 'base64').toString().split(':').map(decodeURIComponent);
    const client = t.clients[id];
    return client && client.secret === secret ? id : null;
  }
  function tokens(user, clientId, nonce) {
    const now = Math.floor(Date.now() / 1000);
    const idToken = t.signJwt({
      iss: `${t.base}/`, aud: clientId, sub: user.user_id, iat: now, exp: now + 3600, ...(nonce ? { nonce } : {}),
      email: user.email, email_verified: user.email_verified, name: user.name
    });
    const accessToken = t.signJwt({ iss: `${t.base}/`, aud: `${t.base}/userinfo`, sub: user.user_id, azp: clientId, iat: now, exp: now + 3600, scope: 'openid profile email' });
    return { access_token: accessToken, id_token: idToken, token_type: 'Bearer', expires_in: 3600, scope: 'openid profile email' };
  }

  function authorizationCode(req, reply, body, clientId) {
    const grant = state.codes.get(body.code);
    state.codes.delete(body.code);
    if (!grant || grant.exp < Date.now() || grant.clientId !== clientId || grant.redirectUri !== body.redirect_uri) {
      return reply.code(403).send({ error: 'invalid_grant', error_description: 'Invalid authorization code' });
    }
    // A code issued with a challenge needs its verifier; a verifier without a challenge is refused too.
    if (grant.codeChallenge || body.code_verifier !== undefined) {
      const verifier = String(body.code_verifier || '');
      const ok = grant.codeChallenge && PKCE_VALUE.test(verifier) && verifier.length >= 43 && verifier.length <= 128
        && crypto.timingSafeEqual(Buffer.from(b64url(crypto.createHash('sha256').update(verifier).digest())), Buffer.from(grant.codeChallenge));
      if (!ok) return reply.code(403).send({ error: 'invalid_grant', error_description: 'Failed to verify code verifier' });
    }
    return tokens(state.users.get(grant.userId), clientId, grant.nonce);
  }

  async function password(req, reply, body, clientId) {
    const r = await t.databaseLogin(body.username, body.password);
    if (r.conflict) return reply.code(409).send({ error: 'user_exists', error_description: 'The user already exists.' });
    if (r.wrong) return reply.code(403).send({ error: 'invalid_grant', error_description: 'Wrong email or password.' });
    if (r.refused) return reply.code(401).send({ error: 'unauthorized', error_description: r.refused });
    if (r.error) return reply.code(503).send({ error: 'temporarily_unavailable', error_description: r.error });
    const tx = { state: t.randomId(12), clientId, userId: r.user.user_id, protocol: 'oauth2-resource-owner', identity: identityOf(r.user, r.identity) };
    const result = await t.postLogin(tx, 'execute', { query: {}, body: {} });
    if (result.outcome === 'deny') return reply.code(403).send({ error: 'access_denied', error_description: result.reason });
    if (t.totpSecrets(state.users.get(r.user.user_id)).length) {
      // The password was right; the tokens wait for the second factor (the mfa-otp grant).
      const mfaToken = t.randomId(24);
      state.mfa.tokens.set(mfaToken, { userId: r.user.user_id, clientId, exp: Date.now() + 10 * 60000 });
      for (const [k, v] of state.mfa.tokens) if (v.exp < Date.now()) state.mfa.tokens.delete(k);
      state.counters.mfa_challenges++;
      t.event('mfa_challenge', { user_id: r.user.user_id, via: 'password_grant' });
      return reply.code(403).send({ error: 'mfa_required', error_description: 'Multifactor authentication required', mfa_token: mfaToken });
    }
    state.counters.logins++;
    return tokens(state.users.get(r.user.user_id), clientId);
  }

  function mfaOtp(req, reply, body, clientId) {
    const m = state.mfa.tokens.get(body.mfa_token);
    const user = m && m.exp > Date.now() && m.clientId === clientId && state.users.get(m.userId);
    if (!user) return reply.code(403).send({ error: 'invalid_grant', error_description: 'Malformed mfa_token' });
    const otp = t.checkOtp(user, body.otp);
    if (otp === 'locked') return reply.code(429).send({ error: 'too_many_attempts', error_description: 'Too many failed codes for this account. Try again later.' });
    if (otp !== 'ok') {
      state.counters.mfa_failed++;
      t.event('mfa_failed', { user_id: user.user_id, via: 'password_grant' });
      return reply.code(403).send({ error: 'invalid_grant', error_description: 'Invalid otp_code.' });
    }
    state.mfa.tokens.delete(body.mfa_token);
    state.counters.logins++;
    return tokens(user, clientId);
  }

  function clientCredentials(req, reply, body, clientId) {
    const audience = body.audience || `${t.base}/api/v2/`;
    if (!t.audiences().includes(audience)) return reply.code(403).send({ error: 'access_denied', error_description: 'Unknown audience' });
    const now = Math.floor(Date.now() / 1000);
    const token = t.signJwt({ iss: `${t.base}/`, aud: audience, sub: `${clientId}@clients`, azp: clientId, iat: now, exp: now + 86400, gty: 'client-credentials', scope: 'read:users update:users delete:users create:users read:users_app_metadata update:users_app_metadata create:user_tickets' });
    return { access_token: token, token_type: 'Bearer', expires_in: 86400, scope: 'read:users update:users' };
  }

  const GRANTS = {
    authorization_code: authorizationCode,
    password,
    'http://auth0.com/oauth/grant-type/password-realm': password,
    [MFA_OTP]: mfaOtp,
    client_credentials: clientCredentials
  };
  app.post('/oauth/token', async (req, reply) => {
    const body = req.body || {};
    const clientId = clientAuth(req);
    if (!clientId) return reply.code(401).send({ error: 'invalid_client', error_description: 'Unknown client or wrong secret' });
    // A string naming one of the grants (a JSON array of one would name it too as a property key).
    const grant = typeof body.grant_type === 'string' && Object.prototype.hasOwnProperty.call(GRANTS, body.grant_type) ? GRANTS[body.grant_type] : null;
    if (!grant) return reply.code(400).send({ error: 'unsupported_grant_type' });
    return grant(req, reply, body, clientId);
  });
}

module.exports = { create, routes };
