#!/usr/bin/env node
// Bundles the Auth0 artefacts into dist/auth0/ in auth0-deploy-cli's directory layout.
// Each file is self-contained: entry point + shim + wasm-bindgen glue + the wasm, brotli-compressed
// and base64-inlined. Fails when a file exceeds Auth0's 100 000-byte script limit.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const crypto = require('crypto');

const ROOT = path.join(__dirname, '..');
const OUT = path.join(ROOT, 'dist', 'auth0');
const LIMIT = 100000;
const read = (p) => fs.readFileSync(path.join(ROOT, p), 'utf8');

/**
 * Drops indentation, blank lines and whole-line comments. Safe for our sources and the
 * wasm-bindgen glue, which use no template literals and no line continuations (checked here);
 * code is never joined across lines, so automatic semicolon insertion is unaffected.
 */
function compact(text, name) {
  if (text.includes('`') && /`[^`\n]*\$\{/.test(text)) throw new Error(`${name} uses a template literal; compact() would be unsafe`);
  const out = [];
  let inBlock = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (inBlock) {
      if (line.includes('*/')) inBlock = false;
      continue;
    }
    if (!line || line.startsWith('//')) continue;
    if (line.startsWith('/*') && !line.startsWith('/*@')) {
      if (!line.includes('*/')) inBlock = true;
      continue;
    }
    out.push(line);
  }
  return out.join('\n') + '\n';
}

/**
 * Removes what the inlined glue never uses: the asynchronous loader (`__wbg_load`, `__wbg_init`,
 * which fetch a .wasm file) and the browser's script-URL lookup. Only `initSync` is called.
 * Leaves the glue untouched when its shape is not the expected one.
 */
function trimGlue(glue) {
  const cut = (text, head) => {
    const at = text.indexOf(head);
    if (at < 0) return null;
    let depth = 0;
    for (let i = text.indexOf('{', at); i < text.length; i++) {
      if (text[i] === '{') depth++;
      else if (text[i] === '}' && --depth === 0) return text.slice(0, at) + text.slice(i + 1);
    }
    return null;
  };
  let out = cut(glue, 'async function __wbg_load(');
  out = out && cut(out, 'async function __wbg_init(');
  out = out && cut(out, "if (typeof document !== 'undefined' && document.currentScript !== null) {");
  const keep = '__wbg_init.__wbindgen_wasm_module = module;';
  out = out && out.includes(keep) ? out.replace(keep, '') : null;
  const assign = 'wasm_bindgen = Object.assign(__wbg_init, { initSync }, __exports);';
  if (!out || !out.includes(assign)) return glue;
  return out.replace(assign, 'wasm_bindgen = Object.assign({ initSync }, __exports);');
}

function inlineSource(file) {
  const text = read(file);
  const cut = text.indexOf('// @end-inline');
  return compact(cut < 0 ? text : text.slice(0, cut), file);
}

function wasmParts(variant) {
  const wasm = fs.readFileSync(path.join(ROOT, 'pkg', variant, 'trickle_bg.wasm'));
  const glue = read(`pkg/${variant}/trickle.js`);
  const packed = zlib.brotliCompressSync(wasm, {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: 11,
      [zlib.constants.BROTLI_PARAM_LGWIN]: 24,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: wasm.length
    }
  });
  const key = 'trickle-' + variant + '-' + crypto.createHash('sha256').update(wasm).digest('hex').slice(0, 12);
  // wasm-bindgen's no-modules glue assigns a `let wasm_bindgen`; a factory gives each instance
  // its own copy, so after a trap a fresh instance can be made.
  const glueFactory = 'function trickleGlue() {\n' + compact(trimGlue(glue), 'wasm-bindgen glue') + 'return wasm_bindgen;\n}\n';
  return { wasmBytes: wasm.length, packedBytes: packed.length, key,
    text: `var TRICKLE_CACHE_KEY = ${JSON.stringify(key)};\nvar TRICKLE_WASM = "${packed.toString('base64')}";\n${glueFactory}` };
}

function bundle(entry, variant, shims) {
  const parts = wasmParts(variant);
  const inline = parts.text + shims.map(inlineSource).join('\n');
  const template = read(entry);
  if (!template.includes('/*@trickle-inline@*/')) throw new Error(`${entry} has no inline marker`);
  return { text: template.replace('/*@trickle-inline@*/', () => inline).trimEnd() + '\n', parts };
}

const ARTEFACTS = [
  { key: 'action', out: 'actions/trickle-post-login/code.js', entry: 'rules/entry/action.js', variant: 'chain',
    shims: ['js-shim/shim.js', 'js-shim/post-login.js'], kind: 'module' },
  { key: 'db_login', out: 'database-connections/trickle/login.js', entry: 'rules/entry/db-login.js', variant: 'login',
    shims: ['js-shim/shim.js', 'js-shim/db.js'], kind: 'function' },
  { key: 'db_get_user', out: 'database-connections/trickle/get_user.js', entry: 'rules/entry/db-get-user.js', variant: 'lookup',
    shims: ['js-shim/shim.js', 'js-shim/db.js'], kind: 'function' },
  { key: 'rule', out: 'rules/trickle-post-login.js', entry: 'rules/entry/rule.js', variant: 'chain',
    shims: ['js-shim/shim.js', 'js-shim/post-login.js'], kind: 'function' }
];

const METADATA = {
  'actions/trickle-post-login.json': {
    name: 'trickle-post-login', code: './actions/trickle-post-login/code.js', runtime: 'node22', status: 'built',
    supported_triggers: [{ id: 'post-login', version: 'v3' }], dependencies: [],
    secrets: ['TRICKLE_PRODUCTS', 'TRICKLE_MERGE_URL', 'TRICKLE_TOKEN_SECRET', 'TRICKLE_FANOUT_BUDGET_MS', 'TRICKLE_CONNECTION']
      .map((name) => ({ name, value: `##${name}##` })),
    deployed: true
  },
  'database-connections/trickle/database.json': {
    name: 'trickle', strategy: 'auth0',
    options: {
      enabledDatabaseCustomization: true, import_mode: true,
      customScripts: { login: './login.js', get_user: './get_user.js' },
      configuration: { TRICKLE_PRODUCTS: '##TRICKLE_PRODUCTS##', TRICKLE_LOOKUP_TIMEOUT_MS: '4000' }
    }
  },
  'rules/trickle-post-login.json': { name: 'trickle-post-login', script: './trickle-post-login.js', stage: 'login_success', enabled: true, order: 10 }
};

function check(artefact, text) {
  // Auth0 compiles scripts and Rules as `return <text>`: it must be one function expression.
  if (artefact.kind === 'function') {
    if (/;\s*$/.test(text)) throw new Error(`${artefact.out} ends with a semicolon`);
    const fn = new Function('return ' + text)();
    if (typeof fn !== 'function') throw new Error(`${artefact.out} is not a function expression`);
  } else {
    new Function('exports', 'require', 'module', text);
  }
}

function main() {
  fs.rmSync(OUT, { recursive: true, force: true });
  const sizes = {};
  let failed = false;
  for (const a of ARTEFACTS) {
    const { text, parts } = bundle(a.entry, a.variant, a.shims);
    check(a, text);
    const file = path.join(OUT, a.out);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    const bytes = Buffer.byteLength(text);
    sizes[a.key] = bytes;
    const over = bytes > LIMIT;
    failed = failed || over;
    console.log(`  dist/auth0/${a.out.padEnd(42)} ${String(bytes).padStart(6)} bytes` +
      `  (wasm ${parts.wasmBytes} → ${parts.packedBytes} brotli)${over ? '  OVER THE 100 000-BYTE LIMIT' : ''}`);
  }
  for (const [p, body] of Object.entries(METADATA)) {
    const file = path.join(OUT, p);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(body, null, 2) + '\n');
  }
  fs.writeFileSync(path.join(OUT, 'sizes.json'), JSON.stringify(sizes, null, 2) + '\n');
  if (failed) {
    console.error('build: an artefact is over Auth0\'s 100 000-byte limit');
    process.exit(1);
  }
}

main();
