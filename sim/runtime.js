// Auth0's extensibility runtimes, as the simulator and the tests run them: custom-DB scripts and
// Rules compiled as `return <file text>` in a context whose globals are the runtime's, Actions
// loaded as CommonJS modules. One context is one "container": `global` persists across calls in
// it, as it does on the platform until the container is recycled.
'use strict';
const fs = require('fs');
const vm = require('vm');

class WrongUsernameOrPasswordError extends Error {
  constructor(email, message) { super(message); this.name = 'WrongUsernameOrPasswordError'; this.email = email; }
}
class ValidationError extends Error {
  constructor(code, message) { super(message); this.name = 'ValidationError'; this.code = code; }
}
class UnauthorizedError extends Error {
  constructor(message) { super(message); this.name = 'UnauthorizedError'; }
}

const ALLOWED_MODULES = new Set(['zlib', 'crypto', 'buffer', 'url', 'util', 'querystring']);

/**
 * A fresh container: a vm context with the runtime's globals (plus `extra`), and its log.
 * `modules` names npm modules this kind of script may require besides the core ones (custom
 * database scripts may require `bcrypt`, as Auth0's own database templates do; Actions may not).
 */
function container(extra = {}, { modules = [] } = {}) {
  const allowed = new Set([...ALLOWED_MODULES, ...modules]);
  const logs = [];
  const log = (...a) => logs.push(a.join(' '));
  const sandbox = {
    console: { log, error: log, warn: log, info: log },
    Buffer, URL, URLSearchParams, TextEncoder, TextDecoder, AbortController, fetch, Response,
    setTimeout, clearTimeout, setImmediate, clearImmediate,
    process: { nextTick: process.nextTick.bind(process), env: {}, version: process.version },
    require: (name) => {
      const bare = String(name).replace(/^node:/, '');
      if (!allowed.has(bare)) throw new Error(`module ${name} is not available in this runtime`);
      return require(bare);
    },
    WrongUsernameOrPasswordError, ValidationError, UnauthorizedError,
    ...extra
  };
  sandbox.global = sandbox;
  return { context: vm.createContext(sandbox), sandbox, logs };
}

/** Compiles a custom-DB script or Rule file the way the platform does: `return <text>`. */
function compileScript(file, ctr) {
  return compileSource(fs.readFileSync(file, 'utf8'), ctr);
}

/** Compiles script text (as deployed over the Management API) the same way. */
function compileSource(text, ctr) {
  return vm.compileFunction('return ' + text, [], { parsingContext: ctr.context })();
}

/** Loads an Action file as a CommonJS module in the container. */
function loadAction(file, ctr) {
  return loadActionSource(fs.readFileSync(file, 'utf8'), ctr);
}

/** Loads Action code (a deployed version's) as a CommonJS module in the container. */
function loadActionSource(text, ctr) {
  const module = { exports: {} };
  vm.compileFunction(text, ['exports', 'require', 'module'], { parsingContext: ctr.context })(module.exports, ctr.sandbox.require, module);
  return module.exports;
}

/** Calls a callback-style script; resolves with the first callback's arguments (never rejects). */
function callScript(fn, args, timeoutMs = 20000) {
  return new Promise((resolve) => {
    let settled = false;
    const timer = setTimeout(() => { if (!settled) { settled = true; resolve([new Error('script timed out (20 s platform limit)')]); } }, timeoutMs);
    try {
      fn(...args, (...cb) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(cb);
      });
    } catch (e) {
      if (!settled) { settled = true; clearTimeout(timer); resolve([e]); }
    }
  });
}

// api.cache of an Action (auth0-platform.md §1): string values, 20 entries, 4 kB each, a 15-minute
// default lifetime; where the limits are not documented, sim/FIDELITY.md says what is assumed.
const CACHE_LIMITS = { entries: 20, valueBytes: 4096, keyBytes: 256, defaultTtlMs: 15 * 60000, maxTtlMs: 24 * 3600000 };

/**
 * One Action's cache, kept as long as its container is warm. `get(key)` gives `{value,
 * expires_at}` (milliseconds since the epoch) or undefined; `set(key, value, {ttl, expires_at})`
 * and `delete(key)` give `{type: 'success'}` or `{type: 'error', code}`, never throw.
 */
function actionCache(now = () => Date.now(), limits = CACHE_LIMITS) {
  const entries = new Map();
  const sweep = () => { const t = now(); for (const [k, e] of entries) if (e.expires_at <= t) entries.delete(k); };
  return {
    get(key) {
      sweep();
      const e = entries.get(String(key));
      return e ? { value: e.value, expires_at: e.expires_at } : undefined;
    },
    set(key, value, options = {}) {
      if (typeof key !== 'string' || !key || Buffer.byteLength(key) > limits.keyBytes) return { type: 'error', code: 'invalid_key' };
      if (typeof value !== 'string') return { type: 'error', code: 'invalid_value' };
      if (Buffer.byteLength(value) > limits.valueBytes) return { type: 'error', code: 'value_too_large' };
      const o = options && typeof options === 'object' ? options : {};
      const t = now();
      let expires = t + limits.defaultTtlMs;
      if (o.ttl !== undefined) {
        if (typeof o.ttl !== 'number' || !(o.ttl > 0)) return { type: 'error', code: 'invalid_ttl' };
        expires = t + o.ttl;
      }
      if (o.expires_at !== undefined) {
        if (typeof o.expires_at !== 'number' || !(o.expires_at > t)) return { type: 'error', code: 'invalid_expires_at' };
        expires = Math.min(expires, o.expires_at);
        if (o.ttl === undefined) expires = o.expires_at;
      }
      expires = Math.min(expires, t + limits.maxTtlMs);
      sweep();
      entries.delete(key);
      // A full cache makes room by dropping the entry that would expire first.
      while (entries.size >= limits.entries) {
        let soonest = null;
        for (const [k, e] of entries) if (!soonest || e.expires_at < entries.get(soonest).expires_at) soonest = k;
        entries.delete(soonest);
      }
      entries.set(key, { value, expires_at: expires });
      return { type: 'success' };
    },
    delete(key) {
      entries.delete(String(key));
      return { type: 'success' };
    },
    get size() { sweep(); return entries.size; }
  };
}

module.exports = { actionCache, CACHE_LIMITS, container, compileScript, compileSource, loadAction, loadActionSource, callScript, WrongUsernameOrPasswordError, ValidationError, UnauthorizedError };
