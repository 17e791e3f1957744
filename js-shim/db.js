// Custom-database scripts (import mode): `login` and `getUser`. Inlined into each script's
// function body by the bundler, after shim.js; TRICKLE_WASM and trickleGlue come from there.

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
    if (kind === 'login' && (d.outcome === 'wrong_credentials' || d.outcome === 'invalid')) return done(wrong());
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
    trickleLookup(cfg.products, email, cfg.lookupTimeoutMs)
      .then(function (answers) {
        return core.call(kind, { email: email, password: password, products: answers });
      })
      .then(finish, function (e) {
        finish(trickleFailure('shim.unexpected', trickleMessage(e)));
      });
  } catch (e) {
    finish(trickleFailure('shim.unexpected', trickleMessage(e)));
  }
}
