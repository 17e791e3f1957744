// trickle's shim: loads the wasm core, guards every call, and does the I/O.
//
// This file is inlined verbatim into every Auth0 artefact, including custom-DB scripts and Rules,
// which Auth0 evaluates as a single function expression. So everything above the end marker is
// plain function declarations and `var`s that work inside a function body, on Node 18 and 22,
// with only the runtime's globals (fetch, AbortController, Buffer, require of core modules).
// Nothing here throws: every public function returns a result object or a settled promise.

/**
 * The bytes of rules/build.js's base-85 text (5 characters for 4 bytes; a last group of k + 1
 * characters for k bytes), as a Uint8Array.
 */
function trickleB85(s) {
  var A = '!%&()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_abcdefghijklmnopqrstuvwxyz|~';
  var d = new Uint8Array(128);
  for (var i = 0; i < 85; i++) d[A.charCodeAt(i)] = i;
  var n = s.length;
  var full = n - n % 5;
  var out = new Uint8Array(full / 5 * 4 + (n % 5 ? n % 5 - 1 : 0));
  var o = 0;
  var g = 0;
  var v;
  // A whole group is below 2^32: its four bytes by shifts (a Uint8Array keeps the low 8 bits).
  for (; g < full; g += 5) {
    v = (((d[s.charCodeAt(g)] * 85 + d[s.charCodeAt(g + 1)]) * 85 + d[s.charCodeAt(g + 2)]) * 85 + d[s.charCodeAt(g + 3)]) * 85 + d[s.charCodeAt(g + 4)];
    out[o++] = v >>> 24;
    out[o++] = v >>> 16;
    out[o++] = v >>> 8;
    out[o++] = v;
  }
  // The last group of k characters holds k - 1 bytes, padded with the highest digit.
  if (g < n) {
    v = 0;
    for (var j = 0; j < 5; j++) v = v * 85 + (g + j < n ? d[s.charCodeAt(g + j)] : 84);
    for (j = 0; j < n - g - 1; j++) out[o++] = Math.floor(v / Math.pow(256, 3 - j)) % 256;
  }
  return out;
}

/**
 * Creates a guarded handle on one wasm build.
 * @param {string|Uint8Array} wasmBase64 brotli-compressed wasm as base-85 text (the artefacts), or the
 *   raw wasm bytes (the Node tools, which read pkg/ from disk)
 * @param {function} glueFactory returns a fresh wasm-bindgen glue object (no-modules target)
 * @param {object} cache an object that outlives calls (`global` in scripts, module scope in Actions)
 * @param {string} cacheKey where to keep the compiled module on `cache`
 */
function trickleCore(wasmBase64, glueFactory, cache, cacheKey) {
  var slot = cache[cacheKey] || (cache[cacheKey] = { module: null, glue: null, loads: 0, traps: 0 });

  function load() {
    if (slot.glue) return slot.glue;
    if (!slot.module) {
      var bytes = typeof wasmBase64 === 'string'
        ? require('zlib').brotliDecompressSync(trickleB85(wasmBase64))
        : wasmBase64;
      slot.module = new WebAssembly.Module(bytes);
    }
    var glue = glueFactory();
    glue.initSync({ module: slot.module });
    slot.loads += 1;
    slot.glue = glue;
    return glue;
  }

  /**
   * Calls an export with a JSON-able input; returns the parsed answer, or
   * `{outcome: 'error', error: {code, message}}` when the wasm could not answer.
   */
  function call(name, input) {
    var glue;
    try {
      glue = load();
    } catch (e) {
      slot.glue = null;
      return trickleFailure('shim.load', 'the trickle core could not be loaded: ' + trickleMessage(e));
    }
    if (typeof glue[name] !== 'function') {
      return trickleFailure('shim.no_export', 'this build has no ' + name);
    }
    var text;
    try {
      text = glue[name](typeof input === 'string' ? input : JSON.stringify(input));
    } catch (e) {
      // After a trap the instance's memory may be inconsistent: drop it, the next call gets a
      // fresh instance of the same compiled module.
      slot.glue = null;
      slot.traps += 1;
      return trickleFailure('shim.trap', 'the trickle core failed: ' + trickleMessage(e));
    }
    if (text === undefined) return { outcome: 'ok' };
    try {
      return JSON.parse(text);
    } catch (e) {
      return trickleFailure('shim.output', 'the trickle core answered with invalid JSON');
    }
  }

  /**
   * Calls an export that takes and returns numbers (the stepwise hashing): `{ok: true, value}`,
   * or `{ok: false}` when the wasm could not answer (after a trap the instance is dropped, as
   * in `call`).
   */
  function raw(name, a, b) {
    var glue;
    try {
      glue = load();
    } catch (e) {
      slot.glue = null;
      return { ok: false };
    }
    if (typeof glue[name] !== 'function') return { ok: false };
    try {
      return { ok: true, value: glue[name](a, b) };
    } catch (e) {
      slot.glue = null;
      slot.traps += 1;
      return { ok: false };
    }
  }

  return {
    call: call,
    raw: raw,
    // Which instance is live (0: none): handles into a dropped instance are gone with it.
    instance: function () { return slot.glue ? slot.loads : 0; },
    stats: function () { return { loads: slot.loads, traps: slot.traps }; }
  };
}

function trickleFailure(code, message) {
  return { outcome: 'error', error: { code: code, message: message }, events: [] };
}

function trickleMessage(e) {
  try {
    return String((e && e.message) || e).slice(0, 200);
  } catch (_) {
    return 'unknown error';
  }
}

/** Calls `callback` exactly once, later, outside any try block or promise chain of ours. */
function trickleOnce(callback) {
  var called = false;
  return function () {
    if (called) return false;
    called = true;
    var args = arguments;
    var fire = function () { callback.apply(null, args); };
    if (typeof process !== 'undefined' && process.nextTick) process.nextTick(fire);
    else setTimeout(fire, 0);
    return true;
  };
}

/** Writes one structured log line. Events never carry passwords, hashes, tokens or secrets. */
function trickleLog(stage, data) {
  try {
    // `{"trickle":<stage>, ...data}` without copying data into a new object first.
    var rest = JSON.stringify(data);
    console.log('{"trickle":' + JSON.stringify(String(stage)) + (rest.length > 2 ? ',' + rest.slice(1) : '}'));
  } catch (_) {
    // logging must never break a login
  }
}

/**
 * Reads trickle's settings from Action secrets or a script's `configuration`, remembering the
 * last answer: the same secrets arrive with every login, and parsing them is most of a warm call.
 */
var trickleConfigMemo = { key: null, value: null };
function trickleKeyPart(v) {
  return typeof v === 'string' || v === undefined ? v : JSON.stringify(v);
}
/**
 * The settings trickle reads, as a list of texts (null when they cannot be read): a memo key.
 * Each is read by its own name, so that the engine caches every look-up, absent ones included.
 */
function trickleConfigKey(s) {
  try {
    if (!s || typeof s !== 'object') return null;
    return [trickleKeyPart(s.TRICKLE_PRODUCTS), trickleKeyPart(s.TRICKLE_MERGE_URL), trickleKeyPart(s.TRICKLE_TOKEN_SECRET),
      trickleKeyPart(s.TRICKLE_CONNECTION), trickleKeyPart(s.TRICKLE_FANOUT_BUDGET_MS), trickleKeyPart(s.TRICKLE_LOOKUP_TIMEOUT_MS),
      trickleKeyPart(s.TRICKLE_SOCIAL_CONNECTIONS), trickleKeyPart(s.TRICKLE_MGMT_DOMAIN), trickleKeyPart(s.TRICKLE_MGMT_CLIENT_ID),
      trickleKeyPart(s.TRICKLE_MGMT_CLIENT_SECRET), trickleKeyPart(s.TRICKLE_CONNECTION_ID)];
  } catch (_) {
    return null;
  }
}
/** True when `s` holds the settings `key` was made from (compared one by one, nothing built). */
function trickleKeyHolds(key, s) {
  if (!key || !s || typeof s !== 'object') return false;
  try {
    return key[0] === trickleKeyPart(s.TRICKLE_PRODUCTS) && key[1] === trickleKeyPart(s.TRICKLE_MERGE_URL) &&
      key[2] === trickleKeyPart(s.TRICKLE_TOKEN_SECRET) && key[3] === trickleKeyPart(s.TRICKLE_CONNECTION) &&
      key[4] === trickleKeyPart(s.TRICKLE_FANOUT_BUDGET_MS) && key[5] === trickleKeyPart(s.TRICKLE_LOOKUP_TIMEOUT_MS) &&
      key[6] === trickleKeyPart(s.TRICKLE_SOCIAL_CONNECTIONS) && key[7] === trickleKeyPart(s.TRICKLE_MGMT_DOMAIN) &&
      key[8] === trickleKeyPart(s.TRICKLE_MGMT_CLIENT_ID) && key[9] === trickleKeyPart(s.TRICKLE_MGMT_CLIENT_SECRET) &&
      key[10] === trickleKeyPart(s.TRICKLE_CONNECTION_ID);
  } catch (_) {
    return false;
  }
}
function trickleConfig(source) {
  if (trickleKeyHolds(trickleConfigMemo.key, source)) return trickleConfigMemo.value;
  var key = trickleConfigKey(source);
  var value = trickleConfigRead(source);
  if (key !== null) { trickleConfigMemo.key = key; trickleConfigMemo.value = value; }
  return value;
}

/**
 * Reads trickle's settings from Action secrets or a script's `configuration`.
 * Returns `{ok: true, products, mergeUrl, tokenSecret, fanoutBudgetMs, lookupTimeoutMs, connection}`
 * or `{ok: false, error: {code, message}}`.
 */
function trickleConfigRead(source) {
  var bad = function (code, message) { return { ok: false, error: { code: code, message: message } }; };
  if (!source || typeof source !== 'object') return bad('config.missing', 'no configuration/secrets object');
  var products;
  try {
    products = typeof source.TRICKLE_PRODUCTS === 'string' ? JSON.parse(source.TRICKLE_PRODUCTS) : source.TRICKLE_PRODUCTS;
  } catch (e) {
    return bad('config.products', 'TRICKLE_PRODUCTS is not valid JSON');
  }
  if (!Array.isArray(products) || products.length === 0) {
    return bad('config.products', 'TRICKLE_PRODUCTS must be a non-empty JSON array of {name, url, token}');
  }
  var seen = {};
  for (var i = 0; i < products.length; i++) {
    var p = products[i];
    if (!p || typeof p.name !== 'string' || !p.name || typeof p.url !== 'string' || !/^https?:\/\//.test(p.url)) {
      return bad('config.products', 'TRICKLE_PRODUCTS[' + i + '] needs a name and an http(s) url');
    }
    if (seen[p.name]) return bad('config.products', 'TRICKLE_PRODUCTS names ' + p.name + ' twice');
    seen[p.name] = true;
  }
  var num = function (v, dflt, min, max) {
    var n = Number(v);
    return v === undefined || v === null || v === '' || !isFinite(n) ? dflt : Math.min(max, Math.max(min, n));
  };
  var clean = products.map(function (p) {
    var product = { name: p.name, url: p.url.replace(/\/+$/, ''), token: typeof p.token === 'string' ? p.token : '' };
    // A fan-out request's headers, made once (fetch copies them, never changes them).
    product.putHeaders = Object.assign({ 'content-type': 'application/json' }, trickleAuth(product));
    return product;
  });
  // The products by name, for the fan-outs (kept on the list, which is what they are handed).
  clean.byName = {};
  clean.forEach(function (p) { clean.byName[p.name] = p; });
  return {
    ok: true,
    products: clean,
    productNames: clean.map(function (p) { return p.name; }),
    mergeUrl: typeof source.TRICKLE_MERGE_URL === 'string' ? source.TRICKLE_MERGE_URL : '',
    tokenSecret: typeof source.TRICKLE_TOKEN_SECRET === 'string' ? source.TRICKLE_TOKEN_SECRET : '',
    connection: typeof source.TRICKLE_CONNECTION === 'string' && source.TRICKLE_CONNECTION ? source.TRICKLE_CONNECTION : null,
    // Social connections whose logins are resolved against the products (comma-separated names).
    social: typeof source.TRICKLE_SOCIAL_CONNECTIONS === 'string'
      ? source.TRICKLE_SOCIAL_CONNECTIONS.split(',').map(function (c) { return c.trim(); }).filter(Boolean)
      : ['google-oauth2', 'apple', 'sign-in-with-slack'],
    // The Management API, for account linking: the tenant's domain and a machine-to-machine
    // application allowed read:users, update:users and update:users_app_metadata.
    mgmt: typeof source.TRICKLE_MGMT_DOMAIN === 'string' && source.TRICKLE_MGMT_DOMAIN &&
      typeof source.TRICKLE_MGMT_CLIENT_ID === 'string' && source.TRICKLE_MGMT_CLIENT_ID &&
      typeof source.TRICKLE_MGMT_CLIENT_SECRET === 'string' && source.TRICKLE_MGMT_CLIENT_SECRET
      ? {
          base: (/^https?:\/\//.test(source.TRICKLE_MGMT_DOMAIN) ? source.TRICKLE_MGMT_DOMAIN : 'https://' + source.TRICKLE_MGMT_DOMAIN).replace(/\/+$/, ''),
          clientId: source.TRICKLE_MGMT_CLIENT_ID,
          clientSecret: source.TRICKLE_MGMT_CLIENT_SECRET,
          connectionId: typeof source.TRICKLE_CONNECTION_ID === 'string' && source.TRICKLE_CONNECTION_ID ? source.TRICKLE_CONNECTION_ID : null
        }
      : null,
    fanoutBudgetMs: num(source.TRICKLE_FANOUT_BUDGET_MS, 2000, 50, 15000),
    lookupTimeoutMs: num(source.TRICKLE_LOOKUP_TIMEOUT_MS, 4000, 50, 15000)
  };
}

/**
 * One HTTP request with a timeout. Resolves (never rejects) to
 * `{ok, status, body}` or `{ok: false, status: 0, error}`; a 429 also carries its `headers`
 * (Retry-After, x-ratelimit-reset: retry.js).
 */
function trickleFetch(url, options, timeoutMs) {
  // A shared `options.signal` (one deadline for a whole fan-out) saves a controller and a timer
  // per request; otherwise this request gets its own.
  var controller = options.signal ? null : new AbortController();
  var signal = options.signal || controller.signal;
  var timer = controller ? setTimeout(function () { controller.abort(); }, Math.max(1, timeoutMs)) : null;
  var init = { method: options.method || 'GET', headers: options.headers || {}, signal: signal };
  if (options.body !== undefined) {
    init.body = JSON.stringify(options.body);
    if (init.headers['content-type'] !== 'application/json') init.headers = Object.assign({}, init.headers, { 'content-type': 'application/json' });
  }
  var started;
  try {
    started = fetch(url, init);
  } catch (e) {
    if (timer) clearTimeout(timer);
    return Promise.resolve({ ok: false, status: 0, error: 'fetch: ' + trickleMessage(e) });
  }
  var failed = function (e) {
    if (timer) clearTimeout(timer);
    return { ok: false, status: 0, error: signal.aborted ? 'timeout after ' + timeoutMs + ' ms' : 'network: ' + trickleMessage(e) };
  };
  // The runtime's own promise is chained directly (one step, whatever realm it comes from).
  var pending = started && typeof started.then === 'function' ? started : Promise.resolve(started);
  return pending.then(function (res) {
    try {
      if (options.discardBody && res.status !== 409) {
        // Only the status matters (a fan-out acknowledgement): the body is let go unread.
        if (timer) clearTimeout(timer);
        try { if (res.body) res.body.cancel().then(null, function () {}); } catch (_) { /* nothing to release */ }
        return { ok: res.status >= 200 && res.status < 300, status: res.status, body: null, text: '' };
      }
      return res.text().then(function (text) {
        if (timer) clearTimeout(timer);
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
        var out = { ok: res.status >= 200 && res.status < 300, status: res.status, body: body, text: text };
        if (res.status === 429) out.headers = res.headers;
        return out;
      }).then(null, failed);
    } catch (e) {
      return failed(e);
    }
  }, failed);
}

function trickleAuth(product) {
  return product.token ? { authorization: 'Bearer ' + product.token, accept: 'application/json' } : { accept: 'application/json' };
}

/** The share of the core's 1 MiB input one product's answer may take. */
var TRICKLE_ANSWER_BUDGET = 900000;

/**
 * Looks `email` (already canonical) up in every product in parallel:
 * `[{name, body}|{name, accounts: []}|{name, error}]`, in order. Each answer goes to the core as
 * the product's own response text, which the core parses on its own: an oversized or hostile
 * answer makes that product unavailable, never the other products' accounts unusable.
 */
function trickleLookup(products, email, timeoutMs) {
  return trickleLookupQuery(products, 'email=' + encodeURIComponent(email), timeoutMs);
}

/** As trickleLookup, for any query of the product contract (`email=…`, `provider=…&subject=…`). */
function trickleLookupQuery(products, query, timeoutMs) {
  var cap = Math.floor(TRICKLE_ANSWER_BUDGET / Math.max(1, products.length));
  return Promise.all(products.map(function (p) {
    var url = p.url + '/trickle/accounts?' + query;
    return trickleFetch(url, { headers: trickleAuth(p) }, timeoutMs).then(function (r) {
      if (r.status === 404) return { name: p.name, accounts: [] };
      if (!r.ok) return { name: p.name, error: r.error || 'HTTP ' + r.status };
      var text = typeof r.text === 'string' ? r.text : '';
      if (JSON.stringify(text).length > cap) return { name: p.name, error: 'answer too large' };
      return { name: p.name, body: text };
    });
  }));
}

/**
 * Runs fan-out requests and pending look-ups in parallel within one time budget. Whatever has
 * not answered when the budget runs out counts as failed and is retried at the next login.
 */
function trickleFanout(products, plan, email, budgetMs) {
  var byName = products.byName;
  var deadline = Date.now() + budgetMs;
  var left = function () { return Math.max(1, deadline - Date.now()); };
  // One deadline for every request of the fan-out: one controller, one timer.
  var requests = plan.fanout || [];
  var controller = requests.length ? new AbortController() : null;
  var timer = controller ? setTimeout(function () { controller.abort(); }, Math.max(1, budgetMs)) : null;
  var fanout = requests.map(function (req) {
    var p = byName[req.product];
    if (!p) return { ok: false, status: 0, error: 'unknown product' };
    // The product contract: the id is told (PUT), or forgotten (DELETE), as a compare and set.
    var body = req.replace ? { auth0_user_id: req.auth0_user_id, replace: req.replace } : { auth0_user_id: req.auth0_user_id };
    return trickleFetch(p.url + '/trickle/accounts/' + encodeURIComponent(req.account) + '/auth0-id',
      { method: req.forget ? 'DELETE' : 'PUT', headers: p.putHeaders, body: body, signal: controller.signal, discardBody: true }, budgetMs);
  });
  // The answers, named by request, once they are all in.
  var told = function (answers) {
    return answers.map(function (r, i) {
      var req = requests[i];
      // 409: another user holds the account; the product names it (to join that user).
      var holder = r.status === 409 && r.body && typeof r.body.auth0_user_id === 'string' ? r.body.auth0_user_id : undefined;
      return holder ? { product: req.product, account: req.account, ok: false, holder: holder } : { product: req.product, account: req.account, ok: r.ok };
    });
  };
  var settled = function (answers, found) {
    if (timer) clearTimeout(timer);
    return { fanout: told(answers), lookups: found || [] };
  };
  var lookupProducts = (plan.lookups || []).map(function (n) { return byName[n]; }).filter(Boolean);
  if (!(email && lookupProducts.length)) return Promise.all(fanout).then(function (r) { return settled(r); });
  return Promise.all([Promise.all(fanout), trickleLookup(lookupProducts, email, left())]).then(function (r) { return settled(r[0], r[1]); });
}

/**
 * Sends one log line to the monitor (TRICKLE_EVENTS_URL, bearer TRICKLE_EVENTS_TOKEN) when set:
 * not awaited, bounded by what is left of the budget (at least 50 ms), never throws, and never
 * holds a login back.
 */
function trickleSend(source, stage, line, ms) {
  try {
    var url = source && source.TRICKLE_EVENTS_URL, token = source && source.TRICKLE_EVENTS_TOKEN;
    if (typeof url !== 'string' || !/^https?:\/\//.test(url)) return;
    var headers = typeof token === 'string' && /^[!-~]+$/.test(token) && !/^(##|@@)/.test(token) ? { authorization: 'Bearer ' + token } : {};
    trickleFetch(url, { method: 'POST', headers: headers, body: Object.assign({ trickle: stage }, line) }, Math.max(50, ms));
  } catch (_) {
    // the monitor must never break a login
  }
}

/** A random id for a session token's `jti` (128 bits, hex), drawn from a pool refilled in bulk. */
var trickleJtiPool = { bytes: null, at: 0 };
function trickleJti() {
  var pool = trickleJtiPool;
  if (!pool.bytes || pool.at + 16 > pool.bytes.length) {
    pool.bytes = require('crypto').randomBytes(4096);
    pool.at = 0;
  }
  var id = pool.bytes.toString('hex', pool.at, pool.at + 16);
  pool.bytes.fill(0, pool.at, pool.at + 16);
  pool.at += 16;
  return id;
}

// @end-inline: below this line only for Node's module system (the bundler drops it).
if (typeof module !== 'undefined' && module.exports) {
  module.exports = {
    trickleCore: trickleCore,
    trickleOnce: trickleOnce,
    trickleConfig: trickleConfig,
    trickleFetch: trickleFetch,
    trickleLookup: trickleLookup,
    trickleLookupQuery: trickleLookupQuery,
    trickleFanout: trickleFanout,
    trickleJti: trickleJti,
    trickleLog: trickleLog,
    trickleFailure: trickleFailure
  };
}
