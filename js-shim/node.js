// Loads a wasm build from pkg/ for trickle's own Node tools (benchmarks, tests, and later the
// simulator, merge service and CLI), behind the same guard as the deployed artefacts.
'use strict';
const fs = require('fs');
const path = require('path');
const { trickleCore } = require('./shim');
const { trickleHostCrypto } = require('./db');

const cache = {};

/**
 * Returns `{call(name, input), stats()}` for pkg/<variant> (`full` by default: every export,
 * every algorithm computed in the wasm). Throws only when the build is missing.
 */
function loadCore(variant = 'full') {
  const dir = path.join(__dirname, '..', 'pkg', variant);
  const wasm = fs.readFileSync(path.join(dir, 'trickle_bg.wasm'));
  const glue = fs.readFileSync(path.join(dir, 'trickle.js'), 'utf8');
  // The no-modules glue declares `let wasm_bindgen`; a factory gives each instance its own.
  const glueFactory = new Function(glue + '\nreturn wasm_bindgen;');
  return trickleCore(wasm, glueFactory, cache, `trickle-node-${variant}`);
}

module.exports = { loadCore, trickleHostCrypto };
