// The custom database connection `trickle` in import mode: the tenant's store first, then the
// deployed login script, whose profile becomes a tenant user (lazy migration); and the
// Authentication API's public sign-up on that connection.
'use strict';
const runtime = require('../runtime');
const management = require('./management');
const { loadCore } = require('../../js-shim/node');
const { canonicalAddress } = require('../address');

function create(t) {
  let core = null;
  const verifier = () => core || (core = loadCore('full'));
  /** An imported legacy hash, verified by the core. */
  const legacyMatch = (descriptor, password) => verifier().call('verify_password', { descriptor, password }).outcome === 'match';

  /**
   * A sign-in with the typed address and password. Resolves `{user, identity?}`, `{wrong}`,
   * `{refused: message}`, `{conflict}` or `{error}`.
   */
  async function databaseLogin(typed, password) {
    // The store and login.js see the same, canonical address; one that has none signs nobody in.
    const email = canonicalAddress(typed);
    if (!email) return { wrong: true };
    const linked = t.findByEmail(email) ? null : t.linkedByEmail(email);
    if (linked) {
      // A database identity linked into another user still signs in with its password, as that user.
      const { cred, holder, id } = linked;
      let ok = false;
      if (cred.custom_password_hash) {
        ok = legacyMatch(cred.custom_password_hash, password);
        if (ok) { cred.password_hash = t.hashPassword(password); delete cred.custom_password_hash; }
      } else ok = t.passwordMatches(password, cred.password_hash);
      if (!ok) return { wrong: true };
      if (holder.blocked) return { error: 'user is blocked' };
      return { user: holder, identity: { provider: 'auth0', user_id: id } };
    }
    const known = t.findByEmail(email);
    if (known) {
      if (known.blocked) return { error: 'user is blocked' };
      if (known.custom_password_hash) {
        // An imported legacy hash: verified once, then replaced by bcrypt (as Auth0 does).
        if (!legacyMatch(known.custom_password_hash, password)) return { wrong: true };
        known.password_hash = t.hashPassword(password);
        delete known.custom_password_hash;
        return { user: known };
      }
      return t.passwordMatches(password, known.password_hash) ? { user: known } : { wrong: true };
    }
    const { login: loginScript, importMode } = t.dbScripts();
    // A connection without a deployed login script, or with import mode off (the migration is
    // finished), has only the tenant's own store.
    if (!loginScript || !importMode) return { wrong: true };
    const [err, profile] = await runtime.callScript(loginScript, [email, password]);
    if (err) {
      if (err.name === 'WrongUsernameOrPasswordError') return { wrong: true };
      // UnauthorizedError: the script refuses this sign-in with a message for the person.
      if (err.name === 'UnauthorizedError') return { refused: String(err.message || 'Access denied.') };
      return { error: err.message };
    }
    if (!profile || !profile.user_id) return { error: 'the login script returned no profile' };
    const existing = t.userWithIdentity('auth0', String(profile.user_id));
    // DUPLICATED_USER: the same person under another address (or linked into another user).
    if (existing) return { user: existing.user, identity: { provider: 'auth0', user_id: String(profile.user_id) } };
    const created = t.createUser(JSON.parse(JSON.stringify(profile)), password, 'login');
    if (created.error === 'conflict') return { conflict: true };
    if (created.error) return { error: 'the login script returned an address that cannot be stored' };
    return { user: created.user };
  }
  return { databaseLogin };
}

function routes(app, t) {
  // The Authentication API's public sign-up (POST /dbconnections/signup), as Auth0 answers it:
  // refused when the connection has `disable_signup`; a custom database in import mode has no
  // `create` script here, so it cannot take sign-ups either; otherwise the user is created with
  // an unverified address and no app_metadata (the post-login chain sees it at its first login).
  app.post('/dbconnections/signup', async (req, reply) => {
    const body = req.body || {};
    const c = management.connectionByName(t.store, 'trickle');
    if (!c || body.connection !== c.name) return reply.code(400).send({ name: 'BadRequestError', code: 'invalid_connection', description: 'connection not found', statusCode: 400 });
    if (c.options && c.options.disable_signup === true) {
      t.event('signup_refused', { via: 'signup', reason: 'disable_signup' });
      return reply.code(400).send({ name: 'BadRequestError', code: 'operation_not_allowed', description: 'public signup is disabled', error: 'public signup is disabled', statusCode: 400 });
    }
    if (c.options && c.options.enabledDatabaseCustomization) return reply.code(400).send({ name: 'BadRequestError', code: 'invalid_signup', description: 'the connection has no create script', statusCode: 400 });
    if (typeof body.password !== 'string' || body.password.length < 8) return reply.code(400).send({ name: 'PasswordStrengthError', code: 'invalid_password', description: 'Password is too weak', statusCode: 400 });
    const email = canonicalAddress(body.email);
    if (!email) return reply.code(400).send({ name: 'BadRequestError', code: 'invalid_signup', description: 'Invalid sign up', statusCode: 400 });
    const r = t.createUser({ user_id: t.randomId(12), email, email_verified: false }, body.password, 'signup');
    if (r.error) return reply.code(400).send({ name: 'BadRequestError', code: 'invalid_signup', description: 'Invalid sign up', statusCode: 400 });
    return reply.send({ _id: r.user.user_id.split('|')[1], email: r.user.email, email_verified: false });
  });
}

module.exports = { create, routes };
