// Custom-database scripts (import mode): `login` and `getUser`. Inlined into each script's
// function body by the bundler, after shim.js; TRICKLE_WASM and trickleGlue come from there.

/** The earliest a refused sign-in is answered, in milliseconds after the call began. */
var TRICKLE_REFUSAL_FLOOR_MS = 250;

/**
 * Runs `login` (kind 'login') or `getUser` (kind 'get_user') and calls `callback` exactly once:
 * a profile, WrongUsernameOrPasswordError for bad credentials, `null` for an unknown user in
 * getUser, or a plain Error (retryable) for infrastructure trouble.
 */
function trickleDb(kind, email, password, configuration, callback, env) {
  var done = trickleOnce(callback);
  var started = Date.now();
  var wrong = function () {
    var E = env.WrongUsernameOrPasswordError;
    return typeof E === 'function' ? new E(String(email), 'Wrong email or password.') : new Error('Wrong email or password.');
  };
  var finish = function (d) {
    trickleLog(kind, { outcome: d.outcome, code: d.error && d.error.code, events: d.events, ms: Date.now() - started });
    if (d.outcome === 'profile') return done(null, d.profile);
    if (kind === 'login' && (d.outcome === 'wrong_credentials' || d.outcome === 'invalid')) {
      // A refusal is answered no sooner than TRICKLE_REFUSAL_FLOOR_MS after the call began, so a
      // known address with cheap legacy hashes answers as late as an unknown one (which pays a
      // dummy bcrypt): the timing does not tell who has an account.
      var wait = TRICKLE_REFUSAL_FLOOR_MS - (Date.now() - started);
      if (wait > 0) return setTimeout(function () { done(wrong()); }, wait);
      return done(wrong());
    }
    if (kind === 'login' && d.outcome === 'reset_required') {
      var U = env.UnauthorizedError;
      var message = (d.error && d.error.message) || 'Please reset your password.';
      return done(typeof U === 'function' ? new U(message) : wrong());
    }
    if (kind === 'get_user' && (d.outcome === 'not_found' || d.outcome === 'invalid')) return done(null);
    return done(new Error('trickle: ' + ((d.error && d.error.message) || 'the products could not be asked; try again')));
  };
  try {
    if (typeof email !== 'string' || (kind === 'login' && typeof password !== 'string')) {
      return finish({ outcome: 'invalid', error: { code: 'input.wrong_type', message: 'email and password must be strings' }, events: [] });
    }
    var cfg = trickleConfig(configuration);
    if (!cfg.ok) return finish({ outcome: 'error', error: cfg.error, events: [] });
    var core = trickleCore(TRICKLE_WASM, trickleGlue, env.cache, TRICKLE_CACHE_KEY);
    // The products are asked for the canonical address, the one the profile carries: looking
    // up the address as typed would find nobody's accounts yet yield someone's address.
    var canonical = core.call('normalize_email', { email: email });
    if (canonical.outcome !== 'ok') {
      return finish({ outcome: canonical.outcome === 'invalid' ? 'invalid' : 'error', error: canonical.error, events: [] });
    }
    trickleLookup(cfg.products, canonical.email, cfg.lookupTimeoutMs)
      .then(function (answers) {
        var input = { email: canonical.email, password: password, products: answers, host: trickleHostOffers() };
        var first = core.call(kind, input);
        if (first.outcome !== 'compute') return first;
        // Some legacy hashes are computed by node:crypto; the core then decides with the outputs.
        return trickleHostCrypto(first.requests).then(function (computed) {
          // A native bcrypt or argon2 that fails (an older module refusing the input, say) is
          // not a wrong password: those are asked again of the wasm, which always works.
          var ops = {};
          first.requests.forEach(function (r) { ops[r.product + '\u0000' + r.id] = r.op; });
          var nativeFailed = computed.some(function (c) { var op = ops[c.product + '\u0000' + c.id]; return c.error && (op === 'bcrypt' || op === 'argon2'); });
          if (nativeFailed) {
            input.host = [];
            computed = computed.filter(function (c) { var op = ops[c.product + '\u0000' + c.id]; return op !== 'bcrypt' && op !== 'argon2'; });
          }
          input.computed = computed;
          var second = core.call(kind, input);
          return second.outcome === 'compute' ? trickleFailure('shim.compute', 'the core asked for host crypto twice') : second;
        });
      })
      .then(finish, function (e) {
        finish(trickleFailure('shim.unexpected', trickleMessage(e)));
      });
  } catch (e) {
    finish(trickleFailure('shim.unexpected', trickleMessage(e)));
  }
}

/**
 * The native modules this runtime lets a script require, found once per container: Auth0's
 * custom-database scripts can require `bcrypt` (its own database templates do); `argon2` where
 * a runtime has it. Work handed to them runs on the thread pool instead of blocking the event loop.
 */
var trickleNative = null;
function trickleHostOffers() {
  if (!trickleNative) {
    trickleNative = {};
    ['bcrypt', 'argon2'].forEach(function (name) {
      try { trickleNative[name] = require(name); } catch (_) { trickleNative[name] = null; }
    });
  }
  return ['bcrypt', 'argon2'].filter(function (name) { return trickleNative[name]; });
}

/**
 * Computes the legacy-hash work the login wasm leaves to node:crypto (digests, HMAC, PBKDF2,
 * scrypt), in parallel, off the main thread where Node allows. Resolves to
 * `[{product, id, output: hex}|{product, id, error}]`; a computation that fails is an error,
 * which never matches.
 */
function trickleHostCrypto(requests) {
  var crypto = require('crypto');
  return Promise.all((requests || []).map(function (r) {
    return new Promise(function (resolve) {
      // A failure is reported as an error, never as an empty output.
      var done = function (err, out) {
        if (err || !out || !out.length) return resolve({ product: r.product, id: r.id, error: 'host crypto failed' });
        resolve({ product: r.product, id: r.id, output: Buffer.from(out).toString('hex') });
      };
      try {
        var data = Buffer.from(r.data, 'hex');
        if (r.op === 'hash') return done(null, crypto.createHash(r.digest).update(data).digest());
        if (r.op === 'hmac') return done(null, crypto.createHmac(r.digest, Buffer.from(r.key, 'hex')).update(data).digest());
        if (r.op === 'pbkdf2') return crypto.pbkdf2(data, Buffer.from(r.salt, 'hex'), r.iterations, r.length, r.digest, done);
        if (r.op === 'bcrypt') {
          // Passed as a string when the bytes are UTF-8 (every bcrypt module takes one), else as
          // a Buffer.
          var asText = data.toString('utf8');
          var input = Buffer.from(asText, 'utf8').equals(data) ? asText : data;
          return trickleNative.bcrypt.hash(input, r.setting, function (err, text) { done(err, typeof text === 'string' ? Buffer.from(text) : null); });
        }
        if (r.op === 'argon2') {
          var a2 = trickleNative.argon2;
          return a2.hash(data, { raw: true, salt: Buffer.from(r.salt, 'hex'), type: r.variant, memoryCost: r.m, timeCost: r.t, parallelism: r.p, hashLength: r.length, version: r.version })
            .then(function (out) { done(null, out); }, done);
        }
        if (r.op === 'scrypt') {
          var maxmem = 128 * r.n * r.r * 2 + (32 << 20);
          return crypto.scrypt(data, Buffer.from(r.salt, 'hex'), r.length, { N: r.n, r: r.r, p: r.p, maxmem: maxmem }, done);
        }
        done(new Error('unknown op'));
      } catch (e) {
        done(e);
      }
    });
  }));
}

// @end-inline: below this line only for Node's module system (the bundler drops it).
if (typeof module !== 'undefined' && module.exports) {
  module.exports = { trickleHostCrypto: trickleHostCrypto };
}
