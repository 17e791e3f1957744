// The Management API's database connections, with their scripts, options and enabled clients.
'use strict';
const crypto = require('crypto');
const { now, clone, err, paged, checkpoint, fieldsOf } = require('./api');
const { changed, connectionByName } = require('./store');
const { SCRIPT_LIMIT } = require('./actions');

const DB_SCRIPTS = ['login', 'get_user', 'create', 'change_password', 'verify', 'delete', 'change_email', 'change_username', 'change_phone_number'];

function checkConnectionOptions(options) {
  if (options === undefined) return null;
  if (!options || typeof options !== 'object' || Array.isArray(options)) return 'Payload validation error: \'options\' must be an object.';
  const scripts = options.customScripts;
  if (scripts !== undefined) {
    if (!scripts || typeof scripts !== 'object') return 'Payload validation error: \'customScripts\' must be an object.';
    for (const [k, v] of Object.entries(scripts)) {
      if (!DB_SCRIPTS.includes(k)) return `Payload validation error: unknown script ${k}.`;
      if (typeof v !== 'string') return `Payload validation error: script ${k} must be a string.`;
      if (Buffer.byteLength(v) > SCRIPT_LIMIT) return `The script ${k} exceeds the maximum size of ${SCRIPT_LIMIT} bytes.`;
    }
  }
  if (options.configuration !== undefined && (typeof options.configuration !== 'object' || Object.values(options.configuration || {}).some((v) => typeof v !== 'string'))) {
    return 'Payload validation error: \'configuration\' values must be strings.';
  }
  return null;
}

function connectionRoutes(app, store, clientIds) {
  const publicConnection = (c) => clone({ ...c, enabled_clients: [...(store.enabledClients.get(c.id) || [])] });
  const missing = (reply) => err(reply, 404, 'The connection does not exist', 'inexistent_connection');
  app.get('/api/v2/connections', async (req) => {
    const q = req.query || {};
    let list = [...store.connections.values()];
    if (q.strategy !== undefined) { const s = [].concat(q.strategy); list = list.filter((c) => s.includes(c.strategy)); }
    if (q.name !== undefined) list = list.filter((c) => c.name === q.name);
    const shaped = (items) => items.map((c) => fieldsOf(publicConnection(c), q));
    if (q.take !== undefined || q.from !== undefined) { const r = checkpoint(list, q, 'connections'); r.connections = shaped(r.connections); return r; }
    const r = paged(list, q, 'connections');
    if (Array.isArray(r)) return shaped(r);
    r.connections = shaped(r.connections);
    return r;
  });
  app.get('/api/v2/connections/:id', async (req, reply) => {
    const c = store.connections.get(req.params.id);
    return c ? fieldsOf(publicConnection(c), req.query || {}) : missing(reply);
  });
  app.post('/api/v2/connections', async (req, reply) => {
    const body = req.body || {};
    if (typeof body.name !== 'string' || !/^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/.test(body.name) || body.name.length > 128) return err(reply, 400, 'Payload validation error: \'name\' is invalid.', 'invalid_body');
    if (typeof body.strategy !== 'string') return err(reply, 400, 'Payload validation error: \'Missing required property: strategy\'.', 'invalid_body');
    const problem = checkConnectionOptions(body.options);
    if (problem) return err(reply, 400, problem, 'invalid_body');
    if (connectionByName(store, body.name)) return err(reply, 409, 'A connection with the same name already exists', 'connection_conflict');
    const t = now();
    const c = { id: `con_${crypto.randomBytes(8).toString('base64url').replace(/[-_]/g, 'x')}`, name: body.name, display_name: body.display_name || body.name, strategy: body.strategy, options: clone(body.options || {}), realms: body.realms || [body.name], is_domain_connection: !!body.is_domain_connection, metadata: clone(body.metadata || {}), created_at: t, updated_at: t };
    store.connections.set(c.id, c);
    store.enabledClients.set(c.id, new Set((body.enabled_clients || []).filter((id) => clientIds().includes(id))));
    changed(store, 'connection_created', { name: c.name });
    return reply.code(201).send(publicConnection(c));
  });
  // As on the platform, `options` given in a PATCH replaces the stored options as a whole.
  app.patch('/api/v2/connections/:id', async (req, reply) => {
    const c = store.connections.get(req.params.id);
    if (!c) return missing(reply);
    const body = req.body || {};
    if (body.name !== undefined || body.strategy !== undefined) return err(reply, 400, 'Payload validation error: \'Additional properties not allowed: ' + (body.name !== undefined ? 'name' : 'strategy') + '\'.', 'invalid_body');
    const problem = checkConnectionOptions(body.options);
    if (problem) return err(reply, 400, problem, 'invalid_body');
    if (body.options !== undefined) c.options = clone(body.options);
    for (const k of ['display_name', 'realms', 'is_domain_connection', 'metadata']) if (body[k] !== undefined) c[k] = clone(body[k]);
    if (Array.isArray(body.enabled_clients)) store.enabledClients.set(c.id, new Set(body.enabled_clients.filter((id) => clientIds().includes(id))));
    c.updated_at = now();
    changed(store, 'connection_updated', { name: c.name, scripts: Object.keys((c.options && c.options.customScripts) || {}) });
    return publicConnection(c);
  });
  app.delete('/api/v2/connections/:id', async (req, reply) => {
    const c = store.connections.get(req.params.id);
    if (!c) return missing(reply);
    store.connections.delete(c.id);
    store.enabledClients.delete(c.id);
    changed(store, 'connection_deleted', { name: c.name });
    return reply.code(202).send({ deleted_at: now() });
  });
  app.get('/api/v2/connections/:id/clients', async (req, reply) => {
    if (!store.connections.has(req.params.id)) return missing(reply);
    return checkpoint([...store.enabledClients.get(req.params.id)].map((client_id) => ({ client_id })), req.query || {}, 'clients');
  });
  app.patch('/api/v2/connections/:id/clients', async (req, reply) => {
    if (!store.connections.has(req.params.id)) return missing(reply);
    const body = req.body;
    if (!Array.isArray(body) || body.some((x) => !x || typeof x.client_id !== 'string' || typeof x.status !== 'boolean')) return err(reply, 400, 'Payload validation error: expected an array of {client_id, status}.', 'invalid_body');
    const unknown = body.find((x) => !clientIds().includes(x.client_id));
    if (unknown) return err(reply, 400, `The client ${unknown.client_id} does not exist.`, 'invalid_body');
    const set = store.enabledClients.get(req.params.id);
    for (const x of body) if (x.status) set.add(x.client_id); else set.delete(x.client_id);
    changed(store, 'connection_clients_updated', { name: store.connections.get(req.params.id).name, enabled: [...set] });
    return reply.code(204).send();
  });
}

module.exports = { connectionRoutes };
