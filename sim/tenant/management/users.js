// The Management API's users: bearer tokens for it, users by id, by address and by search, their
// logs, create, update and delete, account linking and unlinking, and the bulk jobs
// (sim/jobs.js) over the same store.
'use strict';
const crypto = require('crypto');
const { jobRoutes } = require('../../jobs');
const { canonicalAddress } = require('../../address');
const { toAuth0Log } = require('../../logstream');
const { publicUser, isDatabaseUser } = require('../users');
const { err } = require('./api');

const notFound = (reply) => err(reply, 404, 'The user does not exist.', 'inexistent_user');
const badBody = (reply, message) => err(reply, 400, message, 'invalid_body');
const badEmail = (reply, message = 'Object didn\'t pass validation for format email') => badBody(reply, message);

/** What the import and export jobs read and write. */
function jobStore(t) {
  const { state } = t;
  return {
    findByEmail: t.findByEmail,
    get: (id) => state.users.get(id),
    all: () => [...state.users.values()].map(publicUser),
    insert(u) {
      const now = new Date().toISOString();
      const id = `auth0|${u.user_id || t.randomId(12)}`;
      const r = t.addUser({
        user_id: id, email: u.email, email_verified: !!u.email_verified, name: u.name, given_name: u.given_name,
        family_name: u.family_name, picture: u.picture, blocked: !!u.blocked, app_metadata: u.app_metadata || {}, user_metadata: u.user_metadata || {},
        identities: [{ provider: 'auth0', connection: 'trickle', user_id: id.slice(6), isSocial: false }], mfa_factors: u.mfa_factors || [],
        created_at: now, updated_at: now, logins_count: 0, password_hash: u.password_hash, custom_password_hash: u.custom_password_hash
      });
      if (!r.error) state.counters.bulk_imported = (state.counters.bulk_imported || 0) + 1;
      return r;
    },
    update(existing, u) {
      // Upsert overwrites app_metadata and user_metadata; it does not merge them.
      for (const k of ['email_verified', 'name', 'given_name', 'family_name', 'picture', 'blocked', 'app_metadata', 'user_metadata', 'mfa_factors']) {
        if (u[k] !== undefined) existing[k] = u[k];
      }
      if (u.password_hash) { existing.password_hash = u.password_hash; delete existing.custom_password_hash; }
      if (u.custom_password_hash) existing.custom_password_hash = u.custom_password_hash;
      existing.updated_at = new Date().toISOString();
    }
  };
}

/**
 * User search (v3), the part of its Lucene syntax trickle uses: `path:"value"` terms joined by
 * AND. A path walks objects and, as Auth0's index does, ignores array levels
 * (`app_metadata.trickle.accounts.id:"42"` matches any element's id); metadata values match
 * exactly, case-sensitively. Returns a predicate over users, or null for a query Auth0 refuses.
 */
function searchQuery(q) {
  const terms = [];
  const text = typeof q === 'string' ? q.trim() : '';
  const re = /^([A-Za-z0-9_.]+):"((?:[^"\\]|\\.)*)"(?:\s+AND\s+|$)/;
  for (let rest = text; rest;) {
    const m = re.exec(rest);
    if (!m) return null;
    terms.push({ path: m[1].split('.'), value: m[2].replace(/\\(.)/g, '$1') });
    rest = rest.slice(m[0].length);
  }
  const values = (node, path) => {
    if (Array.isArray(node)) return node.flatMap((n) => values(n, path));
    if (!path.length) return node === null || node === undefined ? [] : [node];
    if (!node || typeof node !== 'object') return [];
    return values(node[path[0]], path.slice(1));
  };
  return (u) => terms.every((term) => values(u, term.path).some((v) => String(v) === term.value));
}

const perPageOf = (q) => Math.min(100, Math.max(1, Number(q.per_page) || 50));

function routes(app, t) {
  const { state, store, opts } = t;
  t.jobs = jobRoutes(app, jobStore(t), { usersPerSecond: opts.importRate, expireAfterMs: opts.jobExpireAfterMs, base: () => t.base });

  app.addHook('preHandler', async (req, reply) => {
    if (!req.url.startsWith('/api/v2')) return;
    const m = /^Bearer (.+)$/.exec(req.headers.authorization || '');
    const claims = m && t.verifyJwt(m[1]);
    if (!claims || !t.audiences().includes(claims.aud)) return err(reply, 401, 'Invalid token', 'invalid_token');
  });
  app.get('/api/v2/users/:id', async (req, reply) => {
    const u = state.users.get(req.params.id);
    return u ? publicUser(u) : notFound(reply);
  });
  // A user's log events, newest first, as Auth0 log entries (the simulator keeps its last 200
  // events; types Auth0 has no log type for keep the simulator's name, prefixed "sim_").
  app.get('/api/v2/users/:id/logs', async (req, reply) => {
    if (!state.users.has(req.params.id)) return notFound(reply);
    return state.events.filter((e) => e.user_id === req.params.id).reverse().slice(0, perPageOf(req.query || {})).map((e) => {
      const mapped = toAuth0Log(e);
      return mapped ? mapped.data : { log_id: crypto.createHash('sha256').update(`${e.at}${e.type}${e.user_id}`).digest('hex').slice(0, 24), date: e.at, type: `sim_${e.type}`, description: [e.type, e.via, e.reason].filter(Boolean).join(' '), user_id: e.user_id };
    });
  });
  app.get('/api/v2/users', async (req, reply) => {
    const q = req.query || {};
    const perPage = perPageOf(q);
    const page = Math.max(0, Number(q.page) || 0);
    const matches = searchQuery(q.q);
    if (!matches) return err(reply, 400, 'Query validation error: the query could not be parsed', 'invalid_query_string');
    const found = [...state.users.values()].filter(matches).map(publicUser);
    const slice = found.slice(page * perPage, (page + 1) * perPage);
    return q.include_totals === 'true' ? { start: page * perPage, limit: perPage, length: slice.length, total: found.length, users: slice } : slice;
  });
  app.get('/api/v2/users-by-email', async (req, reply) => {
    const email = canonicalAddress(req.query && req.query.email);
    if (!email) return err(reply, 400, 'Object didn\'t pass validation for format email', 'invalid_query_string');
    return t.usersByEmail(email).map(publicUser);
  });
  // --- account linking ---
  app.post('/api/v2/users/:id/identities', async (req, reply) => {
    const primary = state.users.get(req.params.id);
    if (!primary) return notFound(reply);
    const body = req.body || {};
    if (body.link_with !== undefined) return badBody(reply, 'link_with (linking with the secondary account\'s token) is not supported by the simulator; send provider and user_id.');
    for (const k of ['provider', 'user_id']) {
      if (typeof body[k] !== 'string' || !body[k]) return badBody(reply, `Payload validation error: 'Missing required property: ${k}'.`);
    }
    if (body.connection_id !== undefined && (typeof body.connection_id !== 'string' || !store.connections.has(body.connection_id))) return badBody(reply, 'The connection_id does not name a connection.');
    const secondaryId = `${body.provider}|${body.user_id}`;
    if (secondaryId === primary.user_id) return badBody(reply, 'Main identity and the new one are the same.');
    const secondary = state.users.get(secondaryId);
    const c = body.connection_id && store.connections.get(body.connection_id);
    if (!secondary || (c && secondary.identities[0].connection !== c.name)) return err(reply, 404, 'The secondary user does not exist.', 'inexistent_user');
    if (secondary.identities.length > 1) return badBody(reply, 'The secondary user has linked identities of its own: unlink them first.');
    // The secondary user stops existing; its identity, with its profile, joins the primary's.
    // Its metadata is not merged (as on the platform).
    const { identities, app_metadata: _a, user_metadata: _u, password_hash: _p, custom_password_hash: _c, mfa_factors: _m, user_id: _i, created_at: _t, updated_at: _v, logins_count: _l, last_login: _ll, blocked: _b, ...profile } = secondary;
    primary.identities.push({ ...identities[0], profileData: JSON.parse(JSON.stringify(profile)) });
    if (isDatabaseUser(secondary)) t.linkedDb.set(secondaryId, { email: secondary.email, password_hash: secondary.password_hash, custom_password_hash: secondary.custom_password_hash });
    primary.updated_at = new Date().toISOString();
    state.users.delete(secondaryId);
    t.dropTickets(secondaryId);
    t.event('users_linked', { primary: primary.user_id, secondary: secondaryId });
    return reply.code(201).send(JSON.parse(JSON.stringify(primary.identities)));
  });
  app.delete('/api/v2/users/:id/identities/:provider/:userId', async (req, reply) => {
    const primary = state.users.get(req.params.id);
    if (!primary) return notFound(reply);
    const i = primary.identities.findIndex((x) => x.provider === req.params.provider && String(x.user_id) === req.params.userId);
    if (i === 0) return badBody(reply, 'The main identity of a user cannot be unlinked.');
    if (i < 0) return err(reply, 404, 'The identity is not linked to this user.', 'inexistent_identity');
    // The identity becomes a user of its own again, with the profile it had; no metadata.
    const [{ profileData, ...identity }] = primary.identities.splice(i, 1);
    const now = new Date().toISOString();
    const restored = { ...(profileData || {}), user_id: `${identity.provider}|${identity.user_id}`, identities: [identity], app_metadata: {}, user_metadata: {}, mfa_factors: [], created_at: now, updated_at: now, logins_count: 0 };
    if (restored.email) restored.email = canonicalAddress(restored.email) || restored.email;
    const cred = t.linkedDb.get(restored.user_id);
    if (cred) {
      // A database identity takes its password back with it.
      t.linkedDb.delete(restored.user_id);
      for (const k of ['password_hash', 'custom_password_hash']) if (cred[k]) restored[k] = cred[k];
    }
    state.users.set(restored.user_id, restored);
    primary.updated_at = now;
    t.event('users_unlinked', { primary: primary.user_id, secondary: restored.user_id });
    return JSON.parse(JSON.stringify(primary.identities));
  });
  app.post('/api/v2/users', async (req, reply) => {
    const body = req.body || {};
    if (body.connection !== 'trickle') return badBody(reply, 'connection must name the database connection');
    if (typeof body.email !== 'string') return badEmail(reply, 'Payload validation error: \'Missing required property: email\'');
    if (typeof body.password !== 'string' || body.password.length < 8) return err(reply, 400, 'PasswordStrengthError: Password is too weak', 'invalid_password');
    const now = new Date().toISOString();
    const local = typeof body.user_id === 'string' && body.user_id ? body.user_id : t.randomId(12);
    const r = t.addUser({
      user_id: `auth0|${local}`, email: body.email, email_verified: !!body.email_verified, name: body.name, given_name: body.given_name,
      family_name: body.family_name, picture: body.picture, blocked: !!body.blocked, app_metadata: body.app_metadata || {}, user_metadata: body.user_metadata || {},
      identities: [{ provider: 'auth0', connection: 'trickle', user_id: local, isSocial: false }], mfa_factors: [],
      created_at: now, updated_at: now, logins_count: 0, password_hash: t.hashPassword(body.password)
    });
    if (r.error === 'invalid_email') return badEmail(reply);
    if (r.error) return err(reply, 409, 'The user already exists.', 'auth0_idp_error');
    t.event('user_created', { user_id: r.user.user_id, via: 'management_api' });
    return reply.code(201).send(publicUser(r.user));
  });
  app.patch('/api/v2/users/:id', async (req, reply) => {
    const u = state.users.get(req.params.id);
    if (!u) return notFound(reply);
    const body = req.body || {};
    // The address is checked before anything changes: a refused PATCH changes nothing.
    let newEmail = null;
    if (body.email !== undefined) {
      newEmail = canonicalAddress(body.email);
      if (!newEmail) return badEmail(reply);
      const holder = t.findByEmail(newEmail);
      if (holder && holder !== u) return err(reply, 400, 'The specified new email already exists', 'auth0_idp_error');
    }
    for (const key of ['app_metadata', 'user_metadata']) {
      if (body[key] === undefined) continue;
      if (body[key] === null || typeof body[key] !== 'object' || Array.isArray(body[key])) return badBody(reply, `Payload validation error: '${key}' must be an object`);
      // A PATCH merges top-level keys only; null deletes a key.
      for (const [k, v] of Object.entries(body[key])) {
        if (v === null) delete u[key][k];
        else u[key][k] = v;
      }
    }
    for (const key of ['email_verified', 'blocked', 'name', 'given_name', 'family_name', 'picture']) if (body[key] !== undefined) u[key] = body[key];
    if (newEmail !== null) {
      // A reset link names the address it was mailed to: it ends when the address changes.
      if (newEmail !== u.email) t.dropTickets(u.user_id);
      u.email = newEmail;
    }
    if (typeof body.password === 'string') u.password_hash = t.hashPassword(body.password);
    u.updated_at = new Date().toISOString();
    return publicUser(u);
  });
  app.delete('/api/v2/users/:id', async (req, reply) => {
    if (!state.users.delete(req.params.id)) return notFound(reply);
    t.dropTickets(req.params.id);
    return reply.code(204).send();
  });
}

module.exports = { routes, notFound, badEmail };
