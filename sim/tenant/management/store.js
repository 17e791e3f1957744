// The deployed configuration of one tenant: Actions and their versions, trigger bindings,
// connections with their scripts and enabled clients, Rules and rules-configs. What is stored
// here is what the tenant runs (sim/tenant/runtimes.js reads scripts, Action code and secrets
// from it, never from disk). `seedFromDist` fills it the way a deploy would, for a simulator
// started without one.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { uuid, now, clone } = require('./api');

const TRIGGERS = [
  { id: 'post-login', version: 'v3' }, { id: 'credentials-exchange', version: 'v2' },
  { id: 'pre-user-registration', version: 'v2' }, { id: 'post-user-registration', version: 'v2' },
  { id: 'post-change-password', version: 'v2' }, { id: 'send-phone-message', version: 'v2' },
  { id: 'password-reset-post-challenge', version: 'v1' }
].map((t) => ({ ...t, status: 'CURRENT', runtimes: ['node18', 'node22'], default_runtime: 'node22', compatible_triggers: [] }));

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

module.exports = { TRIGGERS, createStore, changed, connectionByName, boundActions, enabledRules, seedFromDist, replaceKeywords };
