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

module.exports = { container, compileScript, compileSource, loadAction, loadActionSource, callScript, WrongUsernameOrPasswordError, ValidationError, UnauthorizedError };
