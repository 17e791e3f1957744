#!/usr/bin/env node
// Bundles the Auth0 artefacts into auth0-deploy-cli directories: dist/auth0/ (the Action, its
// binding, the custom database) and dist/auth0-rules/ (the legacy Rule, for tenants that run Rules).
// Each file is self-contained: entry point + shim + wasm-bindgen glue + the wasm, brotli-compressed
// and inlined as base-85 text. Fails when a file exceeds Auth0's 100 000-byte script limit.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const crypto = require('crypto');

const ROOT = path.join(__dirname, '..');
let DIST = path.join(ROOT, 'dist');
let OUTS = ['auth0', 'auth0-rules'].map((d) => path.join(DIST, d));
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
/** Where the block that starts at `head` stands in `text` ([start, end)), or null. */
function blockAt(text, head) {
  const at = text.indexOf(head);
  if (at < 0) return null;
  let depth = 0;
  for (let i = text.indexOf('{', at); i >= 0 && i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return [at, i + 1];
  }
  return null;
}

function trimGlue(glue) {
  const cut = (text, head) => {
    const span = blockAt(text, head);
    return span ? text.slice(0, span[0]) + text.slice(span[1]) : null;
  };
  let out = cut(glue, 'async function __wbg_load(');
  out = out && cut(out, 'async function __wbg_init(');
  out = out && cut(out, "if (typeof document !== 'undefined' && document.currentScript !== null) {");
  const keep = '__wbg_init.__wbindgen_wasm_module = module;';
  out = out && out.includes(keep) ? out.replace(keep, '') : null;
  const assign = 'wasm_bindgen = Object.assign(__wbg_init, { initSync }, __exports);';
  if (!out || !out.includes(assign)) return glue;
  return fastStrings(out.replace(assign, 'wasm_bindgen = Object.assign({ initSync }, __exports);'));
}

/**
 * Every call hands the core one JSON string. The glue copies it into the wasm's memory one
 * character at a time in JavaScript (a loop up to the first non-ASCII character, then
 * `encodeInto` and two reallocations); the runtime's native UTF-8 length and `encodeInto` do the
 * same in one exact allocation, a sixth of a warm chain decision (`npm run bench`). Lone
 * surrogates become U+FFFD in both. Leaves the glue untouched when its shape is not the expected one.
 */
function fastStrings(glue) {
  const span = blockAt(glue, 'function passStringToWasm0(arg, malloc, realloc) {');
  if (!span || !glue.includes('function getUint8ArrayMemory0(') || !glue.includes('let WASM_VECTOR_LEN')) return glue;
  const fast = [
    'function passStringToWasm0(arg, malloc) {',
    "const len = Buffer.byteLength(arg, 'utf8');",
    'const ptr = malloc(len, 1) >>> 0;',
    'if (len > 0) cachedTextEncoder.encodeInto(arg, getUint8ArrayMemory0().subarray(ptr, ptr + len));',
    'WASM_VECTOR_LEN = len;',
    'return ptr;',
    '}'
  ].join('\n');
  return glue.slice(0, span[0]) + fast + glue.slice(span[1]);
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
  const vars = `var TRICKLE_CACHE_KEY = ${JSON.stringify(key)};\nvar TRICKLE_WASM = "${b85(packed)}";\n`;
  return { wasmBytes: wasm.length, packedBytes: packed.length, key, vars, glue: glueFactory, text: vars + glueFactory };
}

/**
 * The inlined bytes' text: base 85 (5 characters for 4 bytes, where base64 takes 5.33), over the
 * printable ASCII characters that are safe in a double-quoted JavaScript string and that neither
 * deploy-cli's keywords (`@@KEY@@`, `##KEY##`) nor a template literal (`$`, `{`, `}`, backtick)
 * can read into: no quote, backslash, `@`, `#`, `$`, backtick or brace. js-shim/shim.js
 * (trickleB85) and the unpacking loader below decode it.
 */
const B85 = '!%&()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_abcdefghijklmnopqrstuvwxyz|~';
function b85(buf) {
  const out = [];
  for (let i = 0; i < buf.length; i += 4) {
    const k = Math.min(4, buf.length - i);
    let v = 0;
    for (let j = 0; j < 4; j++) v = v * 256 + (j < k ? buf[i + j] : 0);
    const digits = new Array(5);
    for (let j = 4; j >= 0; j--) { digits[j] = B85[v % 85]; v = Math.floor(v / 85); }
    out.push(digits.slice(0, k + 1).join(''));
  }
  return out.join('');
}

const brotli = (text) => zlib.brotliCompressSync(Buffer.from(text), {
  params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT }
});

// What an entry point's functions do when the packed source cannot be unpacked. A database
// script answers through its callback (a retryable error); the chain lets the login through
// unchanged, as it does for any failure of its own (never lock anyone out), and logs it.
const DB_FAIL = `function () {
var cb = arguments[4];
if (typeof cb === 'function') setTimeout(function () { cb(new Error(message)); }, 0);
}`;
const ACTION_FAIL = `function () {
console.log(JSON.stringify({ trickle: 'post-login', outcome: 'continue', error: { code: 'shim.unpack', message: message } }));
return Promise.resolve('continue');
}`;
const RULE_FAIL = `function (user, context, cb) {
console.log(JSON.stringify({ trickle: 'post-login', outcome: 'continue', error: { code: 'shim.unpack', message: message } }));
if (typeof cb === 'function') setTimeout(function () { cb(null, user, context); }, 0);
}`;

/**
 * The shim and glue of a custom-database script, brotli-compressed like the wasm: the login
 * script must hold the wasm, the glue and the shim under 100 000 bytes. The source is compiled
 * once per container with `new Function` (the runtime's own require passed in) and cached on
 * `global`; `exports` names the functions the entry point calls. A failure to unpack is answered
 * through the callback (a retryable error), never thrown into the host.
 */
/** js-shim/shim.js's trickleB85, as the unpacking loader's expression (the shim is inside what it unpacks). */
const DECODE_B85 = `(${read('js-shim/shim.js').match(/function trickleB85\(s\) \{[\s\S]*?\n\}/)[0]})`;

function packedInline(parts, shims, exports, fail = DB_FAIL) {
  // The built-ins the hot path uses, bound once as locals of the packed function: a runtime that
  // serves its globals through an interceptor (a vm context) then pays for each only once.
  const locals = 'var JSON = globalThis.JSON, Object = globalThis.Object, Array = globalThis.Array, Date = globalThis.Date, Math = globalThis.Math, ' +
    'Promise = globalThis.Promise, Number = globalThis.Number, String = globalThis.String, Map = globalThis.Map, Error = globalThis.Error, ' +
    'Uint8Array = globalThis.Uint8Array, Uint32Array = globalThis.Uint32Array, Int32Array = globalThis.Int32Array, DataView = globalThis.DataView, ' +
    'WebAssembly = globalThis.WebAssembly, Symbol = globalThis.Symbol, RegExp = globalThis.RegExp, Reflect = globalThis.Reflect, ' +
    'isFinite = globalThis.isFinite, encodeURIComponent = globalThis.encodeURIComponent, TextEncoder = globalThis.TextEncoder, TextDecoder = globalThis.TextDecoder, ' +
    'Buffer = globalThis.Buffer, AbortController = globalThis.AbortController, setTimeout = globalThis.setTimeout, clearTimeout = globalThis.clearTimeout;\n';
  const source = locals + parts.glue + shims.map(inlineSource).join('\n') + `return { ${exports.map((n) => `${n}: ${n}`).join(', ')} };\n`;
  const packed = b85(brotli(source));
  const names = exports.join(', ');
  return parts.vars + `var TRICKLE_SRC = "${packed}";
var ${names};
(function () {
var g = typeof global !== 'undefined' ? global : globalThis;
var slot = 'source:' + TRICKLE_CACHE_KEY;
try {
if (!g[slot]) g[slot] = new Function('require', 'TRICKLE_WASM', 'TRICKLE_CACHE_KEY', require('zlib').brotliDecompressSync(${DECODE_B85}(TRICKLE_SRC)).toString('utf8'));
var api = g[slot](typeof require !== 'undefined' ? require : undefined, TRICKLE_WASM, TRICKLE_CACHE_KEY);
${exports.map((n) => `${n} = api.${n};`).join('\n')}
} catch (e) {
g[slot] = null;
var message = 'trickle: the script could not be unpacked: ' + String((e && e.message) || e).slice(0, 200);
var failed = ${fail};
${exports.map((n) => `${n} = failed;`).join('\n')}
}
})();
`;
}

function bundle(entry, variant, shims, { packExports, packFail } = {}) {
  const parts = wasmParts(variant);
  const inline = packExports ? packedInline(parts, shims, packExports, packFail) : parts.text + shims.map(inlineSource).join('\n');
  const template = read(entry);
  if (!template.includes('/*@trickle-inline@*/')) throw new Error(`${entry} has no inline marker`);
  return { text: template.replace('/*@trickle-inline@*/', () => inline).trimEnd() + '\n', parts };
}

const layout = require('./layout');

// `out` lists every place a file goes (below dist/): the database scripts belong to both deploy
// directories, each of which must deploy on its own.
const ARTEFACTS = [
  { key: 'action', out: ['auth0/actions/trickle-post-login/code.js'], entry: 'rules/entry/action.js', variant: 'chain',
    shims: ['js-shim/shim.js', 'js-shim/retry.js', 'js-shim/post-login.js'], kind: 'module', packExports: ['trickleAction', 'trickleCore', 'trickleGlue'], packFail: ACTION_FAIL },
  { key: 'db_login', out: ['auth0/database-connections/trickle/login.js', 'auth0-rules/database-connections/trickle/login.js'],
    entry: 'rules/entry/db-login.js', variant: 'login', shims: ['js-shim/shim.js', 'js-shim/db.js'], kind: 'function', packExports: ['trickleDb'] },
  { key: 'db_get_user', out: ['auth0/database-connections/trickle/get_user.js', 'auth0-rules/database-connections/trickle/get_user.js'],
    entry: 'rules/entry/db-get-user.js', variant: 'lookup', shims: ['js-shim/shim.js', 'js-shim/db.js'], kind: 'function', packExports: ['trickleDb'] },
  // The Rule lives in its own directory: imported beside the Action, the chain would run twice
  // per login. The copy under auth0/rules/ (a script without metadata, so deploy-cli creates no
  // Rule from it) is only there because the simulator still loads it from that path; drop it
  // once the simulator reads auth0-rules/.
  { key: 'rule', out: ['auth0-rules/rules/trickle-post-login.js', 'auth0/rules/trickle-post-login.js'], entry: 'rules/entry/rule.js', variant: 'chain',
    shims: ['js-shim/shim.js', 'js-shim/retry.js', 'js-shim/post-login.js'], kind: 'function', packExports: ['trickleRule', 'trickleCore', 'trickleGlue'], packFail: RULE_FAIL }
];

const METADATA = {
  'auth0/actions/trickle-post-login.json': layout.actionMetadata(),
  'auth0/triggers/triggers.json': layout.triggersMetadata(),
  'auth0/database-connections/trickle/database.json': layout.lazyDatabase(),
  'auth0-rules/database-connections/trickle/database.json': layout.lazyDatabase(),
  'auth0-rules/rules/trickle-post-login.json': layout.ruleMetadata(),
  ...Object.fromEntries(Object.entries(layout.rulesConfigs()).map(([p, body]) => [`auth0-rules/${p}`, body]))
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

const USAGE = `usage: node rules/build.js [--formats LIST | --config trickle.json]

Bundles the Auth0 artefacts into dist/. With no option the login script verifies every password
format trickle knows. A deployment builds it with only the formats its products hold:
  --formats bcrypt,django        formats of trickle.json (bcrypt, wordpress, django, crypt, …),
                                 custom_password_hash algorithms (argon2, md5, pbkdf2, ldap, …),
                                 or "auth0" (Auth0's eleven) and "all"
  --config trickle.json          the formats its products declare
  --out DIR                      write the artefacts below DIR instead of dist/
`;

/**
 * The cargo features (Cargo.toml, src/formats.rs) the login script needs for these formats, or
 * null for every format. Unknown names are refused with the nearest known one.
 */
function loginFeatures(argv) {
  const { FORMAT_FEATURES, loadConfig, schemaOf, nearest } = require('../cli/config');
  const at = (flag) => { const i = argv.indexOf(flag); return i < 0 ? undefined : argv[i + 1]; };
  let names;
  if (argv.includes('--formats')) {
    const list = at('--formats');
    if (!list || list.startsWith('--')) throw new Error('--formats needs a comma-separated list');
    names = list.split(',').map((x) => x.trim()).filter(Boolean);
  } else if (argv.includes('--config')) {
    const file = at('--config');
    if (!file) throw new Error('--config needs a file');
    names = loadConfig(file).products.map((p) => schemaOf(p).format);
  } else {
    return null;
  }
  const features = new Set();
  for (const n of names) {
    const f = FORMAT_FEATURES[n];
    if (!f) {
      const near = nearest(n, Object.keys(FORMAT_FEATURES));
      throw new Error(`[build.unknown_format] ${JSON.stringify(n)} is not a password format${near ? ` (did you mean ${JSON.stringify(near)}?)` : ''}; one of ${Object.keys(FORMAT_FEATURES).join(', ')}`);
    }
    f.forEach((x) => features.add(x));
  }
  if (features.has('formats-all')) return null;
  return [...features].sort();
}

/** Builds the login wasm with only `features` (bcrypt alone when empty); the variant's name. */
function buildLogin(features) {
  const variant = features.length ? `login-${features.map((f) => f.replace(/^fmt-|^formats-/, '')).join('+')}` : 'login-bcrypt';
  const r = require('child_process').spawnSync('bash', [path.join(ROOT, 'scripts/build-wasm.sh')], {
    stdio: 'inherit', cwd: ROOT,
    env: { ...process.env, ONLY: 'login', LOGIN_OUT: variant, LOGIN_FEATURES: features.length ? features.join(',') : 'fmt-none', PATH: `${process.env.HOME}/.cargo/bin:${path.join(ROOT, 'node_modules/.bin')}:${process.env.PATH}` }
  });
  if (r.status !== 0) throw new Error('the login wasm did not build');
  return variant;
}

function main(argv = process.argv.slice(2)) {
  if (argv.includes('--help') || argv.includes('-h')) { process.stdout.write(USAGE); return; }
  const known = ['--formats', '--config', '--out'];
  for (let i = 0; i < argv.length; i += 2) {
    if (!known.includes(argv[i])) {
      console.error(`build: [usage.unknown_option] ${argv[i]} is not an option (${known.join(', ')}, --help)`);
      process.exit(2);
    }
  }
  if (argv.includes('--out')) {
    DIST = path.resolve(argv[argv.indexOf('--out') + 1] || 'dist');
    OUTS = ['auth0', 'auth0-rules'].map((d) => path.join(DIST, d));
  }
  let features;
  try {
    features = loginFeatures(argv);
  } catch (e) {
    console.error(`build: ${e.message}`);
    process.exit(2);
  }
  if (features) {
    const variant = buildLogin(features);
    ARTEFACTS.find((a) => a.key === 'db_login').variant = variant;
    console.log(`  login script formats: bcrypt${features.length ? ', ' + features.join(', ') : ''} (pkg/${variant})`);
  }
  for (const dir of OUTS) fs.rmSync(dir, { recursive: true, force: true });
  const sizes = {};
  let failed = false;
  for (const a of ARTEFACTS) {
    const { text, parts } = bundle(a.entry, a.variant, a.shims, { packExports: a.packExports, packFail: a.packFail });
    check(a, text);
    for (const out of a.out) {
      const file = path.join(DIST, out);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, text);
    }
    const bytes = Buffer.byteLength(text);
    sizes[a.key] = bytes;
    const over = bytes > LIMIT;
    failed = failed || over;
    console.log(`  dist/${a.out[0].padEnd(47)} ${String(bytes).padStart(6)} bytes` +
      `  (wasm ${parts.wasmBytes} → ${parts.packedBytes} brotli)${over ? '  OVER THE 100 000-BYTE LIMIT' : ''}`);
  }
  for (const [p, body] of Object.entries(METADATA)) {
    const file = path.join(DIST, p);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(body, null, 2) + '\n');
  }
  sizes.login_formats = features ? ['bcrypt', ...features] : ['formats-all'];
  fs.writeFileSync(path.join(DIST, 'auth0', 'sizes.json'), JSON.stringify(sizes, null, 2) + '\n');
  if (failed) {
    console.error('build: an artefact is over Auth0\'s 100 000-byte limit');
    process.exit(1);
  }
}

if (require.main === module) main();

module.exports = { b85, B85, loginFeatures };
