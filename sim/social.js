// The simulated tenant's social connections as a relying party (openid-client): the three
// strategies it knows, the code flow's checks (state, nonce, PKCE), and how a provider's claims
// become an Auth0 user profile. The routes that use them are in sim/tenant/federated.js.
'use strict';
const crypto = require('crypto');
const { Issuer, generators, custom } = require('openid-client');
const { randomToken } = require('../lib/web');

custom.setHttpOptionsDefaults({ timeout: 5000 });

/** The social connections, by strategy: the connection id the tenant gives it and its button's label. */
const STRATEGIES = {
  'google-oauth2': { id: 'con_google', label: 'Google' },
  apple: { id: 'con_apple', label: 'Apple' },
  'sign-in-with-slack': { id: 'con_slack', label: 'Slack' }
};

// What each provider asserts beyond the standard claims, kept on the user's profile under the
// provider's own claim names.
const EXTRA_CLAIMS = {
  'google-oauth2': ['hd'],
  apple: ['is_private_email'],
  'sign-in-with-slack': ['https://slack.com/user_id', 'https://slack.com/team_id', 'https://slack.com/team_name']
};

// Apple has written its booleans as strings.
const bool = (v) => v === true || v === 'true';
const str = (v) => (typeof v === 'string' && v ? v : undefined);

/**
 * An Auth0 profile from a provider's verified id-token claims: `email_verified` exactly as the
 * provider said it (never assumed), the standard profile claims, and the provider's own extras.
 */
function profileFrom(strategy, claims) {
  const email = str(claims.email);
  const profile = {
    sub: String(claims.sub), email, email_verified: email ? bool(claims.email_verified) : false,
    name: str(claims.name) || email, given_name: str(claims.given_name), family_name: str(claims.family_name),
    picture: str(claims.picture), nickname: email ? email.split('@')[0] : undefined
  };
  for (const k of EXTRA_CLAIMS[strategy] || []) {
    if (claims[k] === undefined) continue;
    profile[k] = k === 'is_private_email' ? bool(claims[k]) : claims[k];
  }
  for (const [k, v] of Object.entries(profile)) if (v === undefined) delete profile[k];
  return profile;
}

/** The fields of a profile that describe the person (what `profileData` of a linked identity holds). */
function profileData(profile) {
  const { sub: _, ...rest } = profile;
  return rest;
}

/**
 * One connection's relying party: discovery is done once, at the first login through it.
 * `conn`: {strategy, issuer, clientId, clientSecret, scope, responseMode, redirectUri()}.
 */
function relyingParty(conn) {
  let client = null;
  const get = async () => {
    if (!client) {
      const issuer = await Issuer.discover(conn.issuer);
      client = new issuer.Client({ client_id: conn.clientId, client_secret: conn.clientSecret, redirect_uris: [conn.redirectUri()], response_types: ['code'], token_endpoint_auth_method: 'client_secret_post' });
    }
    return client;
  };
  return {
    /** A fresh login at the provider: the URL to send the browser to and the checks to keep. */
    async start() {
      const c = await get();
      const checks = { state: generators.state(), nonce: generators.nonce(), code_verifier: generators.codeVerifier() };
      const url = c.authorizationUrl({
        scope: conn.scope, state: checks.state, nonce: checks.nonce,
        code_challenge: generators.codeChallenge(checks.code_verifier), code_challenge_method: 'S256',
        ...(conn.responseMode && conn.responseMode !== 'query' ? { response_mode: conn.responseMode } : {})
      });
      return { url, checks };
    },
    /** The provider's answer checked (code exchange, signature, issuer, audience, nonce, PKCE): the id token's claims. */
    async finish(params, checks) {
      const c = await get();
      const tokens = await c.callback(conn.redirectUri(), params, { ...checks, response_type: 'code' });
      return tokens.claims();
    }
  };
}

/** A random value and its digest: the browser keeps the value, the tenant the digest. */
function binding() {
  const value = randomToken();
  return { value, digest: digest(value) };
}
const digest = (v) => crypto.createHash('sha256').update(String(v)).digest('hex');

module.exports = { STRATEGIES, EXTRA_CLAIMS, profileFrom, profileData, relyingParty, binding, digest };
