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
    var line = { outcome: d.outcome, code: d.error && d.error.code, events: d.events, ms: Date.now() - started };
    trickleLog(kind, line);
    trickleSend(configuration, kind, line, 1000);
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
        // Some legacy hashes are computed by node:crypto, bcrypt and argon2 by the native modules
        // or in wasm slices; the core then decides with the outputs.
        return trickleHostCrypto(first.requests, core).then(function (computed) {
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
 * bcrypt and argon2 are always computed off the login call: by the native modules this runtime
 * lets a script require (found once per container: Auth0's custom-database scripts can require
 * `bcrypt`, as its own database templates do; `argon2` where a runtime has it), which run on the
 * thread pool, or else in the wasm a slice at a time between turns of the event loop.
 */
var trickleNative = null;
function trickleHostOffers() {
  if (!trickleNative) {
    trickleNative = {};
    ['bcrypt', 'argon2'].forEach(function (name) {
      try { trickleNative[name] = require(name); } catch (_) { trickleNative[name] = null; }
    });
  }
  return ['bcrypt', 'argon2'];
}

/** The longest the wasm hashes before it lets the event loop turn, in milliseconds. */
var TRICKLE_SLICE_MS = 4;
/** The longest a computation waits for the wasm's memory before it fails, in milliseconds. */
var TRICKLE_MAX_WAIT_MS = 15000;
/** Every sliced computation of the container, run in turn: `{jobs, scheduled}`. */
var trickleSlices = null;

function trickleNow() {
  return typeof performance === 'object' && performance && typeof performance.now === 'function' ? performance.now() : Date.now();
}

/**
 * Computes one bcrypt, argon2 or crypt request of a `compute` answer in the wasm, a bounded step at a
 * time, interleaved with every other such computation of the container, yielding to the event
 * loop (setImmediate) every TRICKLE_SLICE_MS. Resolves to `{output: hex}` or `{error}`; never
 * rejects.
 */
function trickleSliced(core, request) {
  return new Promise(function (resolve) {
    var s = trickleSlices || (trickleSlices = { jobs: [], scheduled: false });
    // The first step is small (bcrypt: ~60 µs a round; argon2 ~1 µs a block, crypt a round); each step then
    // adapts to take about a millisecond.
    s.jobs.push({ core: core, request: request, handle: 0, instance: 0, units: request.op === 'bcrypt' ? 4 : 256, restarts: 0, queued: Date.now(), resolve: resolve });
    trickleScheduleSlices();
  });
}

function trickleScheduleSlices(idle) {
  var s = trickleSlices;
  if (s.scheduled || !s.jobs.length) return;
  s.scheduled = true;
  // Jobs that only wait for memory are looked at again a little later, not at every turn.
  if (idle) setTimeout(trickleRunSlice, 5); else setImmediate(trickleRunSlice);
}

function trickleRunSlice() {
  var s = trickleSlices;
  s.scheduled = false;
  var started = trickleNow();
  var turned = true;
  // Round after round, one step of each job, until the slice is used up or nothing can move.
  while (s.jobs.length && turned && trickleNow() - started < TRICKLE_SLICE_MS) {
    turned = false;
    for (var i = 0; i < s.jobs.length && trickleNow() - started < TRICKLE_SLICE_MS;) {
      var state;
      try { state = trickleStepJob(s.jobs[i]); } catch (e) { state = trickleEndJob(s.jobs[i], { error: 'sliced hashing failed' }); }
      if (state !== 'wait') turned = true;
      if (state === 'done') s.jobs.splice(i, 1); else i += 1;
    }
  }
  trickleScheduleSlices(!turned);
}

function trickleEndJob(job, result) {
  if (job.handle && job.core.instance() === job.instance) job.core.raw('hash_free', job.handle);
  job.handle = 0;
  job.resolve(result);
  return 'done';
}

/** One step of one job: 'done', 'more', or 'wait' (the wasm holds too much memory for now). */
function trickleStepJob(job) {
  var core = job.core;
  // A trap (in this job or another) dropped the instance, and every job in it: start again once.
  if (job.handle && core.instance() !== job.instance) {
    job.handle = 0;
    if (++job.restarts > 1) return trickleEndJob(job, { error: 'sliced hashing lost its instance twice' });
  }
  if (!job.handle) {
    var begun = core.call('hash_start', job.request);
    if (begun.outcome !== 'ok') {
      // Memory is given back as other computations finish; a wait past the platform's time
      // limit would mean it never is.
      if (begun.error && begun.error.code === 'hash.busy') {
        return Date.now() - job.queued < TRICKLE_MAX_WAIT_MS ? 'wait' : trickleEndJob(job, { error: 'hash.busy' });
      }
      return trickleEndJob(job, { error: (begun.error && begun.error.code) || 'hash_start failed' });
    }
    job.handle = begun.handle;
    job.instance = core.instance();
  }
  var t0 = trickleNow();
  var r = core.raw('hash_step', job.handle, job.units);
  var took = trickleNow() - t0;
  if (!r.ok) return core.instance() === job.instance ? trickleEndJob(job, { error: 'hash_step failed' }) : 'more';
  if (r.value === 1) {
    var out = core.call('hash_output', job.handle);
    job.handle = 0;
    return trickleEndJob(job, out.outcome === 'ok' ? { output: out.output } : { error: 'hash_output failed' });
  }
  if (r.value !== 0) return trickleEndJob(job, { error: 'hash_step failed' });
  if (took < 0.5) job.units = Math.min(job.units * 2, 1 << 20);
  else if (took > 2) job.units = Math.max(1, Math.floor(job.units / 2));
  return 'more';
}

/**
 * Computes the legacy-hash work the login wasm leaves to the host, in parallel: digests, HMAC,
 * PBKDF2 and scrypt by node:crypto (off the main thread where Node allows), bcrypt and argon2 by
 * the native modules or, without them, by `core`'s wasm in slices. Resolves to
 * `[{product, id, output: hex}|{product, id, error}]`; a computation that fails is an error,
 * which never matches.
 */
function trickleHostCrypto(requests, core) {
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
        // Without a native module, or when it fails (an older module refusing the input, say:
        // that is not a wrong password), the wasm computes bcrypt and argon2 in slices; crypt(3)
        // and phpass always.
        var sliced = function () {
          if (!core) return done(new Error('no wasm to compute ' + r.op));
          trickleSliced(core, r).then(function (o) { done(o.error ? new Error(o.error) : null, o.output ? Buffer.from(o.output, 'hex') : null); });
        };
        if (r.op === 'crypt') return sliced();
        if (r.op === 'bcrypt' || r.op === 'argon2') {
          var native = trickleNative && trickleNative[r.op];
          if (!native) return sliced();
          try {
            if (r.op === 'bcrypt') {
              // Passed as a string when the bytes are UTF-8 (every bcrypt module takes one),
              // else as a Buffer.
              var asText = data.toString('utf8');
              var input = Buffer.from(asText, 'utf8').equals(data) ? asText : data;
              return native.hash(input, r.setting, function (err, text) {
                if (err || typeof text !== 'string') return sliced();
                done(null, Buffer.from(text));
              });
            }
            return native.hash(data, { raw: true, salt: Buffer.from(r.salt, 'hex'), type: r.variant, memoryCost: r.m, timeCost: r.t, parallelism: r.p, hashLength: r.length, version: r.version })
              .then(function (out) { if (out && out.length) done(null, out); else sliced(); }, sliced);
          } catch (_) {
            return sliced();
          }
        }
        var maxmem = 128 * r.n * r.r * 2 + (32 << 20);
        if (r.op === 'scrypt') return crypto.scrypt(data, Buffer.from(r.salt, 'hex'), r.length, { N: r.n, r: r.r, p: r.p, maxmem: maxmem }, done);
        // Firebase: the project's signer key encrypted (AES-256-CTR, IV zero) under scrypt's key.
        if (r.op === 'firebase-scrypt') {
          return crypto.scrypt(data, Buffer.from(r.salt, 'hex'), 32, { N: r.n, r: r.r, p: 1, maxmem: maxmem }, function (err, key) {
            if (err) return done(err);
            var c = crypto.createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
            done(null, Buffer.concat([c.update(Buffer.from(r.key, 'hex')), c.final()]));
          });
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
