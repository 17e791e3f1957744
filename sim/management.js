// The Management API's configuration endpoints that auth0-deploy-cli calls on `a0deploy import`:
// Actions (create, update, deploy, list, delete), trigger bindings, database connections with their
// scripts and enabled clients, Rules and clients. What is stored here is what the tenant runs: the
// login pipeline reads its scripts, Action code and secrets from this store (`tenant.js`), never
// from disk. `seedFromDist` fills it the way a deploy would, for a simulator started without one.
// Shapes and status codes follow the Management API v2; choices where the platform is not
// documented are in sim/FIDELITY.md.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const SCRIPT_LIMIT = 100000; // bytes per Action, per custom-DB script (auth0-platform.md §1)
const SECRETS_LIMIT = 30;
const TRIGGERS = [
  { id: 'post-login', version: 'v3' }, { id: 'credentials-exchange', version: 'v2' },
  { id: 'pre-user-registration', version: 'v2' }, { id: 'post-user-registration', version: 'v2' },
  { id: 'post-change-password', version: 'v2' }, { id: 'send-phone-message', version: 'v2' },
  { id: 'password-reset-post-challenge', version: 'v1' }
].map((t) => ({ ...t, status: 'CURRENT', runtimes: ['node18', 'node22'], default_runtime: 'node22', compatible_triggers: [] }));
const DB_SCRIPTS = ['login', 'get_user', 'create', 'change_password', 'verify', 'delete', 'change_email', 'change_username', 'change_phone_number'];

const uuid = () => crypto.randomUUID();
const now = () => new Date().toISOString();
const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));
const err = (reply, statusCode, message, errorCode) => {
  const error = { 400: 'Bad Request', 404: 'Not Found', 409: 'Conflict' }[statusCode];
  return reply.code(statusCode).send({ statusCode, error, message, ...(errorCode ? { errorCode } : {}) });
};

/** The deployed configuration of one tenant, with the built-in connection `trickle` (no scripts yet). */
function createStore() {
  const store = {
    actions: new Map(), // id → action (with secret values and deployed versions)
    bindings: new Map(TRIGGERS.map((t) => [t.id, []])), // trigger id → [{id, actionId, display_name, …}]
    connections: new Map(), // id → connection
    enabledClients: new Map(), // connection id → Set of client ids
    rules: new Map(), // id → rule
    rulesConfigs: new Map(), // key → value: the Rules' `configuration`
    log: [], // what was deployed, in order (for the dashboard and tests)
    revision: 0
  };
  const t = now();
  store.connections.set('con_trickle', { id: 'con_trickle', name: 'trickle', display_name: 'trickle', strategy: 'auth0', options: { brute_force_protection: true }, realms: ['trickle'], is_domain_connection: false, created_at: t, updated_at: t });
  store.enabledClients.set('con_trickle', new Set());
  return store;
}

function changed(store, what, detail) {
  store.revision++;
  store.log.push({ at: now(), what, ...detail });
  if (store.log.length > 200) store.log.shift();
}

// --- what the tenant runs ---

/** The database connection the login uses, by name. */
function connectionByName(store, name) {
  return [...store.connections.values()].find((c) => c.name === name) || null;
}

/** The post-login Actions that run, in binding order: `{name, code, secrets, version}` of each deployed version. */
function boundActions(store, trigger = 'post-login') {
  const out = [];
  for (const b of store.bindings.get(trigger) || []) {
    const a = store.actions.get(b.actionId);
    const v = a && a.versions.find((x) => x.deployed);
    if (v) out.push({ name: a.name, id: a.id, version: v.id, number: v.number, code: v.code, secrets: { ...v.secretValues } });
  }
  return out;
}

/** The enabled Rules, in order. */
function enabledRules(store) {
  return [...store.rules.values()].filter((r) => r.enabled).sort((a, b) => a.order - b.order);
}

// --- pagination, as the Management API answers it ---

const int = (v, d) => (v === undefined || v === '' || !/^\d+$/.test(String(v)) ? d : Number(v));
/** `page`/`per_page`/`include_totals`: an array, or `{[key], total, start, limit}` with totals. */
function paged(items, q, key) {
  const perPage = Math.min(100, Math.max(1, int(q.per_page, 50)));
  const page = int(q.page, 0);
  const slice = q.page === undefined && q.per_page === undefined ? items.slice(0, 100) : items.slice(page * perPage, (page + 1) * perPage);
  if (String(q.include_totals) === 'true') return { [key]: slice, total: items.length, start: page * perPage, limit: perPage };
  return slice;
}
/** Checkpoint pagination (`from`, `take`): `{[key], next}` with `next` absent on the last page. */
function checkpoint(items, q, key) {
  const take = Math.min(100, Math.max(1, int(q.take, 50)));
  const from = int(q.from, 0);
  const slice = items.slice(from, from + take);
  return { [key]: slice, ...(from + take < items.length ? { next: String(from + take) } : {}) };
}
function fieldsOf(obj, q) {
  if (!q.fields) return obj;
  const fields = String(q.fields).split(',');
  const include = String(q.include_fields) !== 'false';
  return Object.fromEntries(Object.entries(obj).filter(([k]) => fields.includes(k) === include));
}

// --- Actions ---

function publicAction(a) {
  const { versions, secretValues: _, ...rest } = a;
  const deployed = versions.find((v) => v.deployed);
  return clone({ ...rest, ...(deployed ? { deployed_version: publicVersion(a, deployed) } : {}) });
}
function publicVersion(a, v) {
  const { secretValues: _, ...rest } = v;
  return clone({ ...rest, action: { id: a.id, name: a.name, supported_triggers: a.supported_triggers, created_at: a.created_at, updated_at: a.updated_at } });
}
/** Checks an Action body; returns an error message or null. */
function checkAction(body, creating) {
  if (creating && (typeof body.name !== 'string' || !body.name)) return 'Payload validation error: \'Missing required property: name\'.';
  if (creating && !Array.isArray(body.supported_triggers)) return 'Payload validation error: \'Missing required property: supported_triggers\'.';
  if (body.supported_triggers !== undefined) {
    if (!Array.isArray(body.supported_triggers) || body.supported_triggers.some((t) => !t || !TRIGGERS.some((x) => x.id === t.id))) return 'Invalid supported_triggers.';
  }
  if (body.code !== undefined && typeof body.code !== 'string') return 'Payload validation error: \'code\' must be a string.';
  if (typeof body.code === 'string' && Buffer.byteLength(body.code) > SCRIPT_LIMIT) return `The action code exceeds the maximum size of ${SCRIPT_LIMIT} bytes.`;
  if (body.secrets !== undefined) {
    if (!Array.isArray(body.secrets) || body.secrets.some((s) => !s || typeof s.name !== 'string' || (s.value !== undefined && typeof s.value !== 'string'))) return 'Payload validation error: secrets must be an array of {name, value} with string values.';
    if (body.secrets.length > SECRETS_LIMIT) return `An action can have at most ${SECRETS_LIMIT} secrets.`;
  }
  return null;
}
/** Applies a create/update body: the secrets listed replace the set; one listed without a value keeps its old value. */
function applyAction(a, body) {
  for (const k of ['name', 'supported_triggers', 'code', 'runtime', 'dependencies', 'modules']) if (body[k] !== undefined) a[k] = clone(body[k]);
  if (body.secrets !== undefined) {
    const old = a.secretValues;
    a.secretValues = Object.fromEntries(body.secrets.map((s) => [s.name, s.value !== undefined ? s.value : (old[s.name] ?? '')]));
    a.secrets = body.secrets.map((s) => ({ name: s.name, updated_at: now() }));
  }
  a.updated_at = now();
  a.all_changes_deployed = false;
}

function actionRoutes(app, store) {
  const find = (id) => store.actions.get(id);
  const missing = (reply) => err(reply, 404, 'The action does not exist.', 'inexistent_action');
  app.get('/api/v2/actions/actions', async (req) => {
    const q = req.query || {};
    let list = [...store.actions.values()];
    if (q.actionName) list = list.filter((a) => a.name === q.actionName);
    if (q.triggerId) list = list.filter((a) => a.supported_triggers.some((t) => t.id === q.triggerId));
    if (q.deployed !== undefined) list = list.filter((a) => a.versions.some((v) => v.deployed) === (String(q.deployed) === 'true'));
    const perPage = Math.min(100, Math.max(1, int(q.per_page, 50)));
    const page = int(q.page, 0);
    return { actions: list.slice(page * perPage, (page + 1) * perPage).map(publicAction), total: list.length, page, per_page: perPage };
  });
  app.get('/api/v2/actions/actions/:id', async (req, reply) => {
    const a = find(req.params.id);
    return a ? publicAction(a) : missing(reply);
  });
  app.post('/api/v2/actions/actions', async (req, reply) => {
    const body = req.body || {};
    const problem = checkAction(body, true);
    if (problem) return err(reply, 400, problem, 'invalid_body');
    if ([...store.actions.values()].some((a) => a.name === body.name)) return err(reply, 409, 'An action with this name already exists.', 'action_conflict');
    const t = now();
    const a = { id: uuid(), name: body.name, supported_triggers: [], code: '', dependencies: [], runtime: 'node22', secrets: [], secretValues: {}, modules: [], versions: [], status: 'built', built_at: t, created_at: t, updated_at: t };
    applyAction(a, { secrets: [], ...body });
    store.actions.set(a.id, a);
    changed(store, 'action_created', { name: a.name });
    return reply.code(201).send(publicAction(a));
  });
  app.patch('/api/v2/actions/actions/:id', async (req, reply) => {
    const a = find(req.params.id);
    if (!a) return missing(reply);
    const body = req.body || {};
    const problem = checkAction(body, false);
    if (problem) return err(reply, 400, problem, 'invalid_body');
    if (body.name !== undefined && [...store.actions.values()].some((x) => x !== a && x.name === body.name)) return err(reply, 409, 'An action with this name already exists.', 'action_conflict');
    applyAction(a, body);
    changed(store, 'action_updated', { name: a.name });
    return publicAction(a);
  });
  // Deploying snapshots the code and secrets as a new version; that version is what runs.
  app.post('/api/v2/actions/actions/:id/deploy', async (req, reply) => {
    const a = find(req.params.id);
    if (!a) return missing(reply);
    for (const v of a.versions) v.deployed = false;
    const t = now();
    const v = {
      id: uuid(), action_id: a.id, code: a.code, dependencies: clone(a.dependencies), runtime: a.runtime, supported_triggers: clone(a.supported_triggers),
      secrets: clone(a.secrets), secretValues: { ...a.secretValues }, number: a.versions.length + 1, status: 'built', deployed: true, built_at: t, created_at: t, updated_at: t
    };
    a.versions.push(v);
    a.all_changes_deployed = true;
    changed(store, 'action_deployed', { name: a.name, version: v.number });
    return reply.code(200).send(publicVersion(a, v));
  });
  app.get('/api/v2/actions/actions/:id/versions', async (req, reply) => {
    const a = find(req.params.id);
    if (!a) return missing(reply);
    return { versions: [...a.versions].reverse().map((v) => publicVersion(a, v)), total: a.versions.length, page: 0, per_page: 50 };
  });
  app.delete('/api/v2/actions/actions/:id', async (req, reply) => {
    const a = find(req.params.id);
    if (!a) return missing(reply);
    const bound = [...store.bindings.values()].some((list) => list.some((b) => b.actionId === a.id));
    if (bound && String((req.query || {}).force) !== 'true') return err(reply, 400, 'The action is bound to a trigger: unbind it first or delete it with force=true.', 'action_bound');
    for (const [k, list] of store.bindings) store.bindings.set(k, list.filter((b) => b.actionId !== a.id));
    store.actions.delete(a.id);
    changed(store, 'action_deleted', { name: a.name });
    return reply.code(204).send();
  });
  app.get('/api/v2/actions/modules', async () => ({ modules: [], total: 0, page: 0, per_page: 50 }));

  // --- triggers and bindings ---
  const publicBinding = (triggerId, b) => {
    const a = store.actions.get(b.actionId);
    return { id: b.id, trigger_id: triggerId, display_name: b.display_name, action: a ? publicAction(a) : null, created_at: b.created_at, updated_at: b.updated_at };
  };
  app.get('/api/v2/actions/triggers', async () => ({ triggers: clone(TRIGGERS) }));
  app.get('/api/v2/actions/triggers/:trigger/bindings', async (req, reply) => {
    const list = store.bindings.get(req.params.trigger);
    if (!list) return err(reply, 404, 'The trigger does not exist.', 'inexistent_trigger');
    const q = req.query || {};
    const perPage = Math.min(100, Math.max(1, int(q.per_page, 50)));
    const page = int(q.page, 0);
    return { bindings: list.slice(page * perPage, (page + 1) * perPage).map((b) => publicBinding(req.params.trigger, b)), total: list.length, page, per_page: perPage };
  });
  // The whole list is replaced; every reference must name a deployed Action supporting the trigger.
  app.patch('/api/v2/actions/triggers/:trigger/bindings', async (req, reply) => {
    const trigger = req.params.trigger;
    const old = store.bindings.get(trigger);
    if (!old) return err(reply, 404, 'The trigger does not exist.', 'inexistent_trigger');
    const body = req.body || {};
    if (!Array.isArray(body.bindings)) return err(reply, 400, 'Payload validation error: \'Missing required property: bindings\'.', 'invalid_body');
    const next = [];
    for (const item of body.bindings) {
      const ref = (item && item.ref) || {};
      let a = null;
      if (ref.type === 'action_name') a = [...store.actions.values()].find((x) => x.name === ref.value);
      else if (ref.type === 'action_id') a = store.actions.get(ref.value);
      else if (ref.type === 'binding_id') { const b = old.find((x) => x.id === ref.value); a = b && store.actions.get(b.actionId); }
      else return err(reply, 400, 'Payload validation error: ref.type must be action_name, action_id or binding_id.', 'invalid_body');
      if (!a) return err(reply, 404, `The action ${ref.value} does not exist.`, 'inexistent_action');
      if (!a.versions.some((v) => v.deployed)) return err(reply, 400, `The action ${a.name} has no deployed version.`, 'invalid_body');
      if (!a.supported_triggers.some((t) => t.id === trigger)) return err(reply, 400, `The action ${a.name} does not support the trigger ${trigger}.`, 'invalid_body');
      const keep = old.find((x) => x.actionId === a.id);
      const t = now();
      next.push({ id: keep ? keep.id : uuid(), actionId: a.id, display_name: item.display_name || a.name, created_at: keep ? keep.created_at : t, updated_at: t });
    }
    store.bindings.set(trigger, next);
    changed(store, 'bindings_updated', { trigger, actions: next.map((b) => store.actions.get(b.actionId).name) });
    return { bindings: next.map((b) => publicBinding(trigger, b)) };
  });
}

// --- connections ---

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

// --- Rules ---

function ruleRoutes(app, store) {
  const missing = (reply) => err(reply, 404, 'The rule does not exist.', 'inexistent_rule');
  const sorted = () => [...store.rules.values()].sort((a, b) => a.order - b.order);
  const check = (body, rule) => {
    if (body.name !== undefined && (typeof body.name !== 'string' || !/^[A-Za-z0-9](?:[A-Za-z0-9 -]*[A-Za-z0-9])?$/.test(body.name))) return [400, 'Payload validation error: \'name\' is invalid.'];
    if (body.script !== undefined && (typeof body.script !== 'string' || Buffer.byteLength(body.script) > SCRIPT_LIMIT)) return [400, 'Payload validation error: \'script\' must be a string of at most 100 000 bytes.'];
    if (body.order !== undefined && (typeof body.order !== 'number' || !Number.isInteger(body.order) || body.order < 0)) return [400, 'Payload validation error: \'order\' must be a non-negative integer.'];
    if (body.enabled !== undefined && typeof body.enabled !== 'boolean') return [400, 'Payload validation error: \'enabled\' must be a boolean.'];
    if (body.stage !== undefined && rule) return [400, 'Payload validation error: \'Additional properties not allowed: stage\'.'];
    if (body.name !== undefined && sorted().some((r) => r !== rule && r.name === body.name)) return [409, 'A rule with the same name already exists.'];
    if (body.order !== undefined && sorted().some((r) => r !== rule && r.order === body.order)) return [409, 'A rule with the same order already exists.'];
    return null;
  };
  app.get('/api/v2/rules', async (req) => {
    const q = req.query || {};
    let list = sorted();
    if (q.enabled !== undefined) list = list.filter((r) => r.enabled === (String(q.enabled) === 'true'));
    const r = paged(list.map((x) => fieldsOf(clone(x), q)), q, 'rules');
    return r;
  });
  app.get('/api/v2/rules/:id', async (req, reply) => {
    const r = store.rules.get(req.params.id);
    return r ? fieldsOf(clone(r), req.query || {}) : missing(reply);
  });
  app.post('/api/v2/rules', async (req, reply) => {
    const body = req.body || {};
    if (typeof body.name !== 'string' || typeof body.script !== 'string') return err(reply, 400, 'Payload validation error: \'Missing required property: ' + (typeof body.name !== 'string' ? 'name' : 'script') + '\'.', 'invalid_body');
    const bad = check(body, null);
    if (bad) return err(reply, bad[0], bad[1], bad[0] === 409 ? 'rule_conflict' : 'invalid_body');
    const order = body.order !== undefined ? body.order : Math.max(0, ...sorted().map((r) => r.order + 1));
    const r = { id: `rul_${crypto.randomBytes(8).toString('hex')}`, name: body.name, script: body.script, order, enabled: body.enabled !== false, stage: 'login_success' };
    store.rules.set(r.id, r);
    changed(store, 'rule_created', { name: r.name });
    return reply.code(201).send(clone(r));
  });
  app.patch('/api/v2/rules/:id', async (req, reply) => {
    const r = store.rules.get(req.params.id);
    if (!r) return missing(reply);
    const body = req.body || {};
    const bad = check(body, r);
    if (bad) return err(reply, bad[0], bad[1], bad[0] === 409 ? 'rule_conflict' : 'invalid_body');
    for (const k of ['name', 'script', 'order', 'enabled']) if (body[k] !== undefined) r[k] = body[k];
    changed(store, 'rule_updated', { name: r.name });
    return clone(r);
  });
  app.get('/api/v2/rules-configs', async () => [...store.rulesConfigs.keys()].map((key) => ({ key })));
  app.put('/api/v2/rules-configs/:key', async (req, reply) => {
    const body = req.body || {};
    if (!/^[A-Za-z0-9_-]+$/.test(req.params.key) || typeof body.value !== 'string') return err(reply, 400, 'Payload validation error: \'value\' must be a string.', 'invalid_body');
    store.rulesConfigs.set(req.params.key, body.value);
    changed(store, 'rules_config_set', { key: req.params.key });
    return { key: req.params.key, value: body.value };
  });
  app.delete('/api/v2/rules-configs/:key', async (req, reply) => {
    store.rulesConfigs.delete(req.params.key);
    return reply.code(204).send();
  });
  app.delete('/api/v2/rules/:id', async (req, reply) => {
    const r = store.rules.get(req.params.id);
    if (!r) return missing(reply);
    store.rules.delete(r.id);
    changed(store, 'rule_deleted', { name: r.name });
    return reply.code(204).send();
  });
}

// --- clients (the tenant's own `clients` map, shared with /authorize and /oauth/token) ---

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

/** Registers every configuration endpoint on the tenant's Fastify app. */
function managementRoutes(app, store, { clients, base }) {
  actionRoutes(app, store);
  connectionRoutes(app, store, () => Object.keys(clients));
  ruleRoutes(app, store);
  clientRoutes(app, store, clients, base);
}

/** deploy-cli's keyword replacement: `@@KEY@@` (quoted or not) → the JSON of the value, `##KEY##` → the value as is. */
function replaceKeywords(text, mappings) {
  let out = text;
  for (const [k, v] of Object.entries(mappings)) out = out.replace(new RegExp(`"@@${k}@@"|'@@${k}@@'|@@${k}@@`, 'g'), () => JSON.stringify(v));
  for (const [k, v] of Object.entries(mappings)) out = out.split(`##${k}##`).join(String(v));
  return out;
}

/**
 * Fills the store from a deploy-cli directory (dist/auth0) as `a0deploy import` would with
 * `mappings` (AUTH0_KEYWORD_REPLACE_MAPPINGS), without the CLI: each Action created, deployed and
 * bound as triggers/*.json says, the database connections with their scripts, configuration,
 * import mode and enabled clients, the Rules of `rulesDir` (a directory holding rules/ and
 * rules-configs/) or of `dir`. For a simulator started without a deploy; a real deploy goes
 * through the API (sim/deploy.js).
 */
function seedFromDist(store, dir, { mappings = {}, rulesDir: rulesRoot, rulesConfigs = {} }) {
  const t = now();
  const readJson = (...p) => JSON.parse(replaceKeywords(fs.readFileSync(path.join(...p), 'utf8'), mappings));
  const list = (d, ext) => (fs.existsSync(d) ? fs.readdirSync(d).filter((x) => !ext || x.endsWith(ext)) : []);
  for (const [k, v] of Object.entries(rulesConfigs)) store.rulesConfigs.set(k, String(v));
  for (const f of list(path.join(dir, 'actions'), '.json')) {
    const meta = readJson(dir, 'actions', f);
    const code = fs.readFileSync(path.join(dir, meta.code), 'utf8');
    const secrets = Array.isArray(meta.secrets) ? meta.secrets : [];
    const secretValues = Object.fromEntries(secrets.map((x) => [x.name, String(x.value ?? '')]));
    const a = { id: uuid(), name: meta.name, supported_triggers: meta.supported_triggers, code, dependencies: meta.dependencies || [], runtime: meta.runtime || 'node22', secrets: secrets.map((x) => ({ name: x.name, updated_at: t })), secretValues, modules: [], versions: [], status: 'built', all_changes_deployed: true, built_at: t, created_at: t, updated_at: t };
    a.versions.push({ id: uuid(), action_id: a.id, code, dependencies: a.dependencies, runtime: a.runtime, supported_triggers: a.supported_triggers, secrets: a.secrets, secretValues: { ...secretValues }, number: 1, status: 'built', deployed: true, built_at: t, created_at: t, updated_at: t });
    store.actions.set(a.id, a);
  }
  for (const f of list(path.join(dir, 'triggers'), '.json')) {
    for (const [trigger, bindings] of Object.entries(readJson(dir, 'triggers', f))) {
      const next = [];
      for (const b of bindings) {
        const a = [...store.actions.values()].find((x) => x.name === b.action_name);
        if (a) next.push({ id: uuid(), actionId: a.id, display_name: b.display_name || a.name, created_at: t, updated_at: t });
      }
      if (store.bindings.has(trigger)) store.bindings.set(trigger, next);
    }
  }
  for (const name of list(path.join(dir, 'database-connections'))) {
    const folder = path.join(dir, 'database-connections', name);
    const meta = readJson(folder, 'database.json');
    const options = clone(meta.options || {});
    options.customScripts = Object.fromEntries(Object.entries(options.customScripts || {}).map(([k, f]) => [k, fs.readFileSync(path.join(folder, f), 'utf8')]));
    let c = connectionByName(store, meta.name);
    if (!c) { c = { id: `con_${meta.name}`, name: meta.name, display_name: meta.name, strategy: meta.strategy || 'auth0', realms: [meta.name], is_domain_connection: false, created_at: t, updated_at: t }; store.connections.set(c.id, c); }
    c.options = { ...c.options, ...options };
    if (Array.isArray(meta.enabled_clients)) store.enabledClients.set(c.id, new Set(meta.enabled_clients));
  }
  const configsDir = rulesRoot && path.join(rulesRoot, 'rules-configs');
  for (const f of configsDir ? list(configsDir, '.json') : []) {
    const { key, value } = readJson(configsDir, f);
    store.rulesConfigs.set(key, String(value));
  }
  // The Rule sits in its own deploy directory (<rulesRoot>/rules) or, in older builds, dist/auth0/rules.
  const rulesDir = [rulesRoot && path.join(rulesRoot, 'rules'), path.join(dir, 'rules')].find((d) => d && list(d, '.json').length);
  for (const f of rulesDir ? list(rulesDir, '.json') : []) {
    const meta = readJson(rulesDir, f);
    const id = `rul_${crypto.randomBytes(8).toString('hex')}`;
    store.rules.set(id, { id, name: meta.name || path.basename(f, '.json'), script: fs.readFileSync(path.join(rulesDir, meta.script), 'utf8'), order: meta.order || 1, enabled: meta.enabled !== false, stage: 'login_success' });
  }
  changed(store, 'seeded_from_dist', { dir });
}

module.exports = { createStore, managementRoutes, seedFromDist, connectionByName, boundActions, enabledRules, TRIGGERS };
