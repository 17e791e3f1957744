// The Management API's clients (the tenant's own `clients` map, shared with /authorize and /oauth/token).
'use strict';
const crypto = require('crypto');
const { clone, err, paged, fieldsOf } = require('./api');
const { changed } = require('./store');

function clientRoutes(app, store, clients, base) {
  const shape = (id, c) => ({
    client_id: id, name: c.name, client_secret: c.secret, app_type: c.app_type || (c.redirectUris().length ? 'regular_web' : 'non_interactive'),
    callbacks: c.redirectUris(), grant_types: c.grant_types || (c.redirectUris().length ? ['authorization_code', 'password'] : ['client_credentials']),
    is_first_party: true, oidc_conformant: true, token_endpoint_auth_method: 'client_secret_post', global: false, tenant: 'trickle-sim', ...(c.extra || {})
  });
  const missing = (reply) => err(reply, 404, 'The client does not exist', 'inexistent_client');
  app.get('/api/v2/clients', async (req) => {
    const q = req.query || {};
    let list = Object.entries(clients).map(([id, c]) => shape(id, c));
    if (String(q.is_global) === 'true') list = [];
    if (q.app_type) list = list.filter((c) => String(q.app_type).split(',').includes(c.app_type));
    return paged(list.map((c) => fieldsOf(c, q)), q, 'clients');
  });
  app.get('/api/v2/clients/:id', async (req, reply) => {
    const c = clients[req.params.id];
    return c ? fieldsOf(shape(req.params.id, c), req.query || {}) : missing(reply);
  });
  app.get('/api/v2/clients/:id/credentials', async (req, reply) => (clients[req.params.id] ? [] : missing(reply)));
  const apply = (c, body) => {
    if (body.name !== undefined) c.name = body.name;
    if (Array.isArray(body.callbacks)) { const cb = body.callbacks.map(String); c.redirectUris = () => cb; }
    if (Array.isArray(body.grant_types)) c.grant_types = body.grant_types;
    if (body.app_type !== undefined) c.app_type = body.app_type;
    const extra = { ...body };
    for (const k of ['name', 'callbacks', 'grant_types', 'app_type', 'client_id', 'client_secret']) delete extra[k];
    c.extra = { ...(c.extra || {}), ...clone(extra) };
  };
  app.post('/api/v2/clients', async (req, reply) => {
    const body = req.body || {};
    if (typeof body.name !== 'string' || !body.name || /[<>]/.test(body.name)) return err(reply, 400, 'Payload validation error: \'Missing required property: name\'.', 'invalid_body');
    const id = crypto.randomBytes(16).toString('base64url').replace(/[-_]/g, 'x');
    const c = { secret: crypto.randomBytes(32).toString('base64url'), redirectUris: () => [] };
    apply(c, body);
    clients[id] = c;
    changed(store, 'client_created', { name: c.name });
    return reply.code(201).send(shape(id, c));
  });
  app.patch('/api/v2/clients/:id', async (req, reply) => {
    const c = clients[req.params.id];
    if (!c) return missing(reply);
    apply(c, req.body || {});
    changed(store, 'client_updated', { name: c.name });
    return shape(req.params.id, c);
  });
  app.delete('/api/v2/clients/:id', async (req, reply) => {
    if (!clients[req.params.id]) return missing(reply);
    delete clients[req.params.id];
    for (const set of store.enabledClients.values()) set.delete(req.params.id);
    changed(store, 'client_deleted', { client_id: req.params.id });
    return reply.code(204).send();
  });
}

module.exports = { clientRoutes };
