// The Management API's Actions (create, update, deploy, versions, list, delete) and trigger bindings.
'use strict';
const { uuid, now, clone, err, int } = require('./api');
const { TRIGGERS, changed } = require('./store');

const SCRIPT_LIMIT = 100000; // bytes per Action, per custom-DB script (auth0-platform.md §1)
const SECRETS_LIMIT = 30;

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

module.exports = { actionRoutes, SCRIPT_LIMIT };
