// The runtimes: what was deployed, one container per kind, reused across calls like a warm
// platform; a deploy that changes the code or its settings starts a fresh container.
'use strict';
const runtime = require('../runtime');
const management = require('./management');

function create(t) {
  const containers = new Map(); // kind → {key, value}
  function warm(kind, key, make) {
    const have = containers.get(kind);
    if (have && have.key === key) return have.value;
    const value = make();
    containers.set(kind, { key, value });
    t.event('container_started', { kind });
    return value;
  }
  /** The `trickle` connection's deployed login/get_user scripts, or null when it has none. */
  function dbScripts() {
    const c = management.connectionByName(t.store, 'trickle');
    const o = (c && c.options) || {};
    const scripts = o.enabledDatabaseCustomization ? o.customScripts || {} : {};
    const configuration = o.configuration || {};
    return warm('database', JSON.stringify([scripts, configuration]), () => {
      const ctr = runtime.container({ configuration: { ...configuration } }, { modules: ['bcrypt'] });
      const compile = (k) => (typeof scripts[k] === 'string' ? runtime.compileSource(scripts[k], ctr) : null);
      return { login: compile('login'), getUser: compile('get_user'), importMode: o.import_mode === true };
    });
  }
  /** The post-login Actions bound to the trigger, each its deployed version's code and secrets. */
  function postLoginActions() {
    return management.boundActions(t.store).map((a) => warm(`action:${a.id}`, a.version, () => ({ ...a, module: runtime.loadActionSource(a.code, runtime.container()), cache: runtime.actionCache() })));
  }
  /** The enabled Rules in order, compiled in one container whose `configuration` is the rules-configs. */
  function enabledRules() {
    const rules = management.enabledRules(t.store);
    const configuration = Object.fromEntries(t.store.rulesConfigs);
    return warm('rules', JSON.stringify([rules.map((r) => [r.id, r.script]), configuration]), () => {
      const ctr = runtime.container({
        configuration,
        auth0: { users: { updateAppMetadata: async (id, meta) => { const u = t.state.users.get(id); if (u) u.app_metadata = JSON.parse(JSON.stringify(meta)); } } }
      });
      return rules.map((r) => ({ name: r.name, fn: runtime.compileSource(r.script, ctr) }));
    });
  }
  return { dbScripts, postLoginActions, enabledRules };
}

module.exports = { create };
