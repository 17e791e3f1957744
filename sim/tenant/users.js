// The user store. Every stored address is canonical (sim/address.js), so one comparison finds
// every spelling. The database connection holds one user per address; users of social
// connections may share an address with it and with each other (they are told apart by
// `<strategy>|<sub>`).
'use strict';
const bcryptjs = require('bcryptjs');
const { canonicalAddress } = require('../address');

const isDatabaseUser = (u) => !!(u.identities && u.identities[0] && u.identities[0].provider === 'auth0');

/** A user as the APIs show it: no password hash of any kind. */
function publicUser(u) {
  const { password_hash: _, custom_password_hash: __, ...rest } = u;
  return JSON.parse(JSON.stringify(rest));
}

function create(t) {
  const { state, opts } = t;
  /** A password as the tenant stores it: bcrypt at the tenant's cost. */
  const hashPassword = (password) => bcryptjs.hashSync(password, opts.bcryptCost);
  /** Whether `password` is the one a stored bcrypt hash was made from (no hash: never). */
  const passwordMatches = (password, hash) => !!hash && bcryptjs.compareSync(password, hash);
  const findByEmail = (email) => {
    const c = canonicalAddress(email);
    return c ? [...state.users.values()].find((u) => u.email === c && isDatabaseUser(u)) : undefined;
  };
  /** The user holding the identity (`provider`, `user_id`), as its own or as a linked one. */
  function userWithIdentity(provider, userId) {
    for (const u of state.users.values()) {
      const i = (u.identities || []).findIndex((x) => x.provider === provider && String(x.user_id) === String(userId));
      if (i >= 0) return { user: u, index: i };
    }
    return null;
  }
  /**
   * The password, address and id of database identities linked into another user (`auth0|<id>` →
   * {email, password_hash | custom_password_hash}): the identity is no user of its own any more,
   * but it still signs in, as the user it joined.
   */
  const linkedDb = new Map();
  function linkedByEmail(c) {
    for (const [key, cred] of linkedDb) {
      if (cred.email !== c) continue;
      const held = userWithIdentity('auth0', key.slice(6));
      if (held) return { cred, holder: held.user, id: key.slice(6) };
    }
    return null;
  }
  /** Every user holding the address, of any connection (what users-by-email answers). */
  const usersByEmail = (c) => [...state.users.values()].filter((u) => u.email === c);
  /**
   * Stores a new user, the one way every create path (login-script import, reset of a user not yet
   * migrated, Management API, import job, social login) adds one. A database user is refused when
   * the address has no canonical form or another database user already holds it (Auth0's "user
   * already exists"): one address, one user. Returns `{user}` or `{error: 'invalid_email' | 'conflict'}`.
   */
  function addUser(fields) {
    const database = isDatabaseUser(fields);
    const email = fields.email === undefined && !database ? undefined : canonicalAddress(fields.email);
    if (email === null) return { error: 'invalid_email' };
    if ((database && (findByEmail(email) || linkedByEmail(email))) || state.users.has(fields.user_id)) return { error: 'conflict' };
    const user = { ...fields, email };
    if (user.email === undefined) delete user.email;
    state.users.set(user.user_id, user);
    return { user };
  }
  /**
   * A new user of the database connection, from a profile (the login script's, get_user's for a
   * reset, a sign-up's) and the password it signed in or reset with, stored as bcrypt.
   */
  function createUser(profile, password, via) {
    const now = new Date().toISOString();
    const id = `auth0|${profile.user_id}`;
    const r = addUser({
      user_id: id, email: profile.email, email_verified: !!profile.email_verified,
      name: profile.name, given_name: profile.given_name, family_name: profile.family_name, picture: profile.picture,
      app_metadata: profile.app_metadata || {}, user_metadata: profile.user_metadata || {},
      identities: [{ provider: 'auth0', connection: 'trickle', user_id: String(profile.user_id), isSocial: false }],
      mfa_factors: profile.mfa_factors || [], created_at: now, updated_at: now, logins_count: 0,
      password_hash: hashPassword(password)
    });
    if (r.error) {
      t.event('user_refused', { via, reason: r.error });
      return r;
    }
    if (via === 'login') state.counters.lazy_migrated++;
    t.event('user_created', { user_id: id, via });
    return r;
  }
  return { hashPassword, passwordMatches, isDatabaseUser, findByEmail, userWithIdentity, linkedDb, linkedByEmail, usersByEmail, addUser, publicUser, createUser };
}

module.exports = { create, publicUser, isDatabaseUser };
