// The Management API's legacy Rules and rules-configs.
'use strict';
const crypto = require('crypto');
const { clone, err, paged, fieldsOf } = require('./api');
const { changed } = require('./store');
const { SCRIPT_LIMIT } = require('./actions');

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

module.exports = { ruleRoutes };
