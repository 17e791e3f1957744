// The post-login chain, shared by the Action and the legacy Rule. Inlined after shim.js.

/** The database connection's name in dist/auth0 (database-connections/trickle). */
var TRICKLE_DEFAULT_CONNECTION = 'trickle';
var TRICKLE_NO_REDIRECT = ['oauth2-resource-owner', 'oauth2-resource-owner-jwt-bearer', 'oauth2-password',
  'oauth2-refresh-token', 'oauth2-device-code', 'oauth2-token-exchange', 'oauth2-access-token'];

/**
 * Runs one phase of the chain. `facts` = {phase, user, canRedirect, state, connection,
 * sessionToken}; `io` = {setMetadata(changes) → promise?, redirect(url, query), deny(reason)}.
 * Resolves to 'continue', 'redirect' or 'deny'; never rejects. Any failure of trickle itself
 * lets the login through unchanged (never lock anyone out), and is logged.
 */
/**
 * The settings of the chain, read once per set of secrets (the same ones arrive with every
 * login): which keywords were left unreplaced, the configuration, and its part of the core's
 * input already serialised.
 */
var trickleChainMemo = { key: null };
function trickleChainSettings(source) {
  var key = trickleConfigKey(source);
  if (key !== null && trickleChainMemo.key === key) return trickleChainMemo;
  var unresolved = [];
  var cfg = trickleConfigRead(trickleResolved(source, unresolved));
  var settings = {
    key: key, unresolved: unresolved, cfg: cfg,
    configJson: cfg.ok ? JSON.stringify({
      products: cfg.products.map(function (p) { return p.name; }),
      merge_url: cfg.mergeUrl,
      token_secret: cfg.tokenSecret,
      // The connection the artefacts deploy as, unless the secret names another.
      connection: cfg.connection || TRICKLE_DEFAULT_CONNECTION
    }) : null
  };
  if (key !== null) trickleChainMemo = settings;
  return settings;
}

function trickleChain(core, source, facts, io) {
  var started = Date.now();
  var settings = trickleChainSettings(source);
  var unresolved = settings.unresolved;
  var cfg = settings.cfg;
  var notes = {};
  // A deploy whose keyword was never mapped leaves '##KEY##' or '@@KEY@@' behind: that setting
  // counts as unset (a literal '##TRICKLE_CONNECTION##' would otherwise skip every login).
  if (unresolved.length) notes.unresolved = unresolved;
  if (facts.canRedirectFallback) notes.can_redirect = 'fallback';
  if (!cfg.ok) {
    trickleLog('post-login', Object.assign({ phase: facts.phase, outcome: 'continue', code: cfg.error.code, error: cfg.error.message }, notes));
    return Promise.resolve('continue');
  }
  var user = facts.user || {};
  var meta = {};
  var current = user.app_metadata && typeof user.app_metadata === 'object' ? user.app_metadata : {};
  for (var k in current) if (Object.prototype.hasOwnProperty.call(current, k)) meta[k] = current[k];
  var input = {
    user: { user_id: String(user.user_id || ''), email: typeof user.email === 'string' ? user.email : null, email_verified: user.email_verified === true, app_metadata: meta }
  };
  // The input as text, the configuration's part serialised once per set of secrets.
  var text = '{"phase":' + JSON.stringify(String(facts.phase)) + ',"now":' + Math.floor(Date.now() / 1000) +
    ',"user":' + JSON.stringify(input.user) +
    ',"transaction":' + JSON.stringify({ can_redirect: !!facts.canRedirect, state: facts.state || null, connection: facts.connection || null }) +
    ',"config":' + settings.configJson + ',"jti":"' + trickleJti() + '","session_token":' +
    JSON.stringify(typeof facts.sessionToken === 'string' ? facts.sessionToken : null) + '}';
  var plan = core.call('chain_plan', text);
  var log = Object.assign({ phase: facts.phase, outcome: plan.outcome, events: plan.events }, notes);
  if (plan.outcome !== 'continue' && plan.outcome !== 'redirect' && plan.outcome !== 'deny') {
    log.error = plan.error;
    log.outcome = 'continue';
    trickleLog('post-login', log);
    return Promise.resolve('continue');
  }
  var write = function (changes) {
    var keys = Object.keys(changes || {});
    if (!keys.length) return Promise.resolve();
    keys.forEach(function (key) {
      if (changes[key] === null) delete meta[key];
      else meta[key] = changes[key];
    });
    return Promise.resolve()
      .then(function () { return io.setMetadata(changes, meta); })
      .then(null, function (e) { log.metadata_error = trickleMessage(e); });
  };
  return write(plan.set_app_metadata)
    .then(function () {
      if (plan.outcome === 'redirect') {
        io.redirect(plan.redirect.url, plan.redirect.query);
        return 'redirect';
      }
      if (plan.outcome === 'deny') {
        io.deny(plan.deny.message);
        return 'deny';
      }
      if (!(plan.fanout || []).length && !(plan.lookups || []).length) return 'continue';
      var canonical = input.user.email && (plan.lookups || []).length ? core.call('normalize_email', { email: input.user.email }) : null;
      var lookupEmail = canonical && canonical.outcome === 'ok' ? canonical.email : null;
      return trickleFanout(cfg.products, plan, lookupEmail, cfg.fanoutBudgetMs).then(function (results) {
        var applied = core.call('chain_apply', {
          user: { user_id: input.user.user_id, email: input.user.email, email_verified: input.user.email_verified, app_metadata: meta },
          fanout: results.fanout,
          lookups: results.lookups
        });
        log.fanout = results.fanout.map(function (r) { return r.product + ':' + (r.ok ? 'ok' : 'failed'); });
        log.events = (log.events || []).concat(applied.events || []);
        return write(applied.set_app_metadata).then(function () { return 'continue'; });
      });
    })
    .then(null, function (e) {
      log.error = { code: 'shim.unexpected', message: trickleMessage(e) };
      return plan.outcome === 'deny' ? 'deny' : 'continue';
    })
    .then(function (outcome) {
      log.ms = Date.now() - started;
      trickleLog('post-login', log);
      trickleSend(source, log, cfg.fanoutBudgetMs - log.ms);
      return outcome;
    });
}

/**
 * Sends the log line to the monitor (TRICKLE_EVENTS_URL, bearer TRICKLE_EVENTS_TOKEN) when set:
 * not awaited, bounded by what is left of the budget (at least 50 ms), never throws.
 */
function trickleSend(source, line, ms) {
  try {
    var url = source.TRICKLE_EVENTS_URL, token = source.TRICKLE_EVENTS_TOKEN;
    if (typeof url !== 'string' || !/^https?:\/\//.test(url)) return;
    var headers = typeof token === 'string' && /^[!-~]+$/.test(token) && !/^(##|@@)/.test(token) ? { authorization: 'Bearer ' + token } : {};
    trickleFetch(url, { method: 'POST', headers: headers, body: Object.assign({ trickle: 'post-login' }, line) }, Math.max(50, ms));
  } catch (_) {
    // the monitor must never break a login
  }
}

/** A copy of the settings without values that are unreplaced deploy keywords (names go to `out`). */
function trickleResolved(source, out) {
  if (!source || typeof source !== 'object') return source;
  var copy = {};
  for (var k in source) {
    if (!Object.prototype.hasOwnProperty.call(source, k)) continue;
    if (typeof source[k] === 'string' && /^(##[A-Z0-9_]+##|@@[A-Z0-9_]+@@)$/.test(source[k])) out.push(k);
    else copy[k] = source[k];
  }
  return out.length ? copy : source;
}

/**
 * Whether this login may be redirected. Without `api.redirect.canRedirect` (older runtimes, some
 * harnesses), the Rule's test: no redirect for token grants that have no browser, nor for
 * `prompt=none`. Returns `{can, fallback}`.
 */
function trickleCanRedirect(event, api) {
  var redirect = api && api.redirect;
  if (redirect && typeof redirect.canRedirect === 'function') return { can: !!redirect.canRedirect(), fallback: false };
  var protocol = event && event.transaction && event.transaction.protocol;
  var query = (event && event.request && event.request.query) || {};
  var prompt = (event && event.transaction && event.transaction.prompt) || query.prompt;
  var none = Array.isArray(prompt) ? prompt.indexOf('none') >= 0 : prompt === 'none';
  return { can: !!(redirect && typeof redirect.sendUserTo === 'function') && TRICKLE_NO_REDIRECT.indexOf(protocol) < 0 && !none, fallback: true };
}

/** Adapts a post-login Action (`event`, `api`) to trickleChain. */
function trickleAction(phase, event, api, core) {
  try {
    var request = (event && event.request) || {};
    var body = request.body || {};
    var query = request.query || {};
    var may = trickleCanRedirect(event, api);
    var facts = {
      phase: phase,
      user: event && event.user,
      canRedirect: may.can,
      canRedirectFallback: may.fallback,
      state: query.state || body.state || null,
      connection: event && event.connection && event.connection.name,
      // Tokens come back in a POST body only: a token in a query string ends up in logs.
      sessionToken: phase === 'continue' ? body.session_token : null
    };
    var io = {
      setMetadata: function (changes) {
        Object.keys(changes).forEach(function (k) { api.user.setAppMetadata(k, changes[k]); });
      },
      redirect: function (url, q) { api.redirect.sendUserTo(url, { query: q }); },
      deny: function (reason) { api.access.deny(reason); }
    };
    return trickleChain(core, event && event.secrets, facts, io).then(null, function () { return 'continue'; });
  } catch (e) {
    trickleLog('post-login', { phase: phase, outcome: 'continue', error: { code: 'shim.unexpected', message: trickleMessage(e) } });
    return Promise.resolve('continue');
  }
}

/** Adapts a legacy Rule (`user`, `context`, `callback`) to trickleChain; calls back exactly once. */
function trickleRule(user, context, callback, configuration, env) {
  var done = trickleOnce(callback);
  try {
    context = context || {};
    var request = context.request || {};
    var body = request.body || {};
    var query = request.query || {};
    var resuming = context.protocol === 'redirect-callback';
    var facts = {
      phase: resuming ? 'continue' : 'execute',
      user: user,
      canRedirect: TRICKLE_NO_REDIRECT.indexOf(context.protocol) < 0 && query.prompt !== 'none',
      state: query.state || body.state || null,
      connection: context.connection,
      sessionToken: resuming ? body.session_token : null
    };
    var io = {
      setMetadata: function (changes, meta) {
        user.app_metadata = meta;
        var api = env.auth0 && env.auth0.users;
        if (!api || typeof api.updateAppMetadata !== 'function') throw new Error('auth0.users.updateAppMetadata is not available');
        return api.updateAppMetadata(user.user_id, meta);
      },
      redirect: function (url, q) {
        var parts = Object.keys(q).map(function (k) { return encodeURIComponent(k) + '=' + encodeURIComponent(q[k]); });
        context.redirect = { url: url + (url.indexOf('?') < 0 ? '?' : '&') + parts.join('&') };
      },
      deny: function () {}
    };
    var core = trickleCore(TRICKLE_WASM, trickleGlue, env.cache, TRICKLE_CACHE_KEY);
    var deniedWith = null;
    io.deny = function (reason) { deniedWith = reason; };
    trickleChain(core, configuration, facts, io).then(function (outcome) {
      if (outcome === 'deny') {
        var U = env.UnauthorizedError;
        return done(typeof U === 'function' ? new U(deniedWith) : new Error(deniedWith));
      }
      done(null, user, context);
    }, function () { done(null, user, context); });
  } catch (e) {
    trickleLog('post-login', { outcome: 'continue', error: { code: 'shim.unexpected', message: trickleMessage(e) } });
    done(null, user, context);
  }
}
