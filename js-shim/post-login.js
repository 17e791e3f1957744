// The post-login chain, shared by the Action and the legacy Rule. Inlined after shim.js.

/** The database connection's name in dist/auth0 (database-connections/trickle). */
var TRICKLE_DEFAULT_CONNECTION = 'trickle';
var TRICKLE_NO_REDIRECT = ['oauth2-resource-owner', 'oauth2-resource-owner-jwt-bearer', 'oauth2-password',
  'oauth2-refresh-token', 'oauth2-device-code', 'oauth2-token-exchange', 'oauth2-access-token'];

/**
 * The settings of the chain, read once per set of secrets (the same ones arrive with every
 * login): which keywords were left unreplaced, the configuration, and its part of the core's
 * input already serialised.
 */
var trickleChainMemo = { key: null };
function trickleChainSettings(source) {
  if (trickleKeyHolds(trickleChainMemo.key, source)) return trickleChainMemo;
  var key = trickleConfigKey(source);
  var unresolved = [];
  var cfg = trickleConfigRead(trickleResolved(source, unresolved));
  var settings = {
    key: key, unresolved: unresolved, cfg: cfg,
    // The remembered answers for returning people under these settings (see trickleChain).
    quiet: new Map(),
    configJson: cfg.ok ? JSON.stringify({
      products: cfg.productNames,
      merge_url: cfg.mergeUrl,
      token_secret: cfg.tokenSecret,
      // The connection the artefacts deploy as, unless the secret names another.
      connection: cfg.connection || TRICKLE_DEFAULT_CONNECTION,
      social: cfg.social,
      lookup_timeout_ms: cfg.lookupTimeoutMs,
      fanout_budget_ms: cfg.fanoutBudgetMs,
      link: !!cfg.mgmt,
      connection_id: (cfg.mgmt && cfg.mgmt.connectionId) || null
    }) : null
  };
  if (key !== null) trickleChainMemo = settings;
  return settings;
}

/**
 * Runs one phase of the chain: a bounded loop that asks the core (`chain_step`) what to do,
 * performs the effects it names in order and reports the results of those it needs. Every
 * decision is the core's. `facts` = {phase, user, canRedirect, state, connection, sessionToken};
 * `io` = {setMetadata(changes, meta) → promise?, redirect(url, query), deny(reason),
 * setPrimaryUser(id), cache}. Resolves to 'continue', 'redirect' or 'deny'; never rejects. Any
 * failure of trickle itself lets the login through unchanged (never lock anyone out), and is
 * logged.
 */
var TRICKLE_MAX_STEPS = 8;
function trickleChain(core, source, facts, io) {
  var started = Date.now();
  var settings = trickleChainSettings(source);
  var cfg = settings.cfg;
  var notes = {};
  // A deploy whose keyword was never mapped leaves '##KEY##' or '@@KEY@@' behind: that setting
  // counts as unset (a literal '##TRICKLE_CONNECTION##' would otherwise skip every login).
  if (settings.unresolved.length) notes.unresolved = settings.unresolved;
  if (facts.canRedirectFallback) notes.can_redirect = 'fallback';
  if (!cfg.ok) {
    trickleLog('post-login', Object.assign({ phase: facts.phase, outcome: 'continue', code: cfg.error.code, error: cfg.error.message }, notes));
    return Promise.resolve('continue');
  }
  var user = facts.user || {};
  var meta = {};
  var current = user.app_metadata && typeof user.app_metadata === 'object' ? user.app_metadata : {};
  for (var k in current) if (Object.prototype.hasOwnProperty.call(current, k)) meta[k] = current[k];
  // The input as text, the configuration's part serialised once per set of secrets.
  var userJson = JSON.stringify({ user_id: String(user.user_id || ''), email: typeof user.email === 'string' ? user.email : null, email_verified: user.email_verified === true, app_metadata: meta });
  var txJson = JSON.stringify({ can_redirect: !!facts.canRedirect, state: facts.state || null, connection: facts.connection || null });
  var idsJson = trickleIdentities(user);
  var hdJson = JSON.stringify(typeof user.hd === 'string' ? user.hd : null);
  // A random jti only where a token may be issued (a redirect to the merge); a returning
  // session token is checked against the record's own.
  var jti = facts.phase === 'execute' && facts.canRedirect ? '"' + trickleJti() + '"' : 'null';
  var inputJson = '{"phase":' + JSON.stringify(String(facts.phase)) + ',"now":' + Math.floor(started / 1000) +
    ',"user":' + userJson + ',"transaction":' + txJson + ',"config":' + settings.configJson + ',"jti":' + jti +
    ',"session_token":' + JSON.stringify(typeof facts.sessionToken === 'string' ? facts.sessionToken : null) +
    ',"identities":' + idsJson + ',"hd":' + hdJson + '}';
  var results = [];
  var ask = function () { return core.call('chain_step', '{"input":' + inputJson + ',"results":[' + results.join(',') + ']}'); };
  // A returning person whose login asks for nothing gets the same answer for the same user and
  // settings whatever the time and the jti: the core says so (`quiet`), and the answer is
  // remembered until something changes.
  var quietKey = facts.phase === 'execute' && settings.key !== null ? txJson + '\u0000' + userJson + '\u0000' + idsJson + hdJson : null;
  var first = (quietKey !== null && settings.quiet.get(quietKey)) || ask();
  if (quietKey !== null && first && first.quiet === true) trickleQuietRemember(settings.quiet, quietKey, first);
  var log = Object.assign({ phase: facts.phase, outcome: 'continue' }, notes);
  var denied = false;
  var write = function (changes) {
    var keys = Object.keys(changes || {});
    if (!keys.length) return trickleDone;
    keys.forEach(function (key) {
      if (changes[key] === null) delete meta[key];
      else meta[key] = changes[key];
    });
    // An Action's writes are synchronous (the platform applies them after the Action): no
    // promise is made for them. A Rule's resolve later.
    var pending;
    try {
      pending = io.setMetadata(changes, meta);
    } catch (e) {
      log.metadata_error = trickleMessage(e);
      return trickleDone;
    }
    if (!pending || typeof pending.then !== 'function') return trickleDone;
    return Promise.resolve(pending).then(null, function (e) { log.metadata_error = trickleMessage(e); });
  };
  var mgmt = cfg.mgmt ? trickleMgmt(cfg, io.cache) : null;
  var elapsed = function (r) { r.ms = Date.now() - started; return r; };
  // One effect; resolves to its result when the core needs one, else to undefined.
  var perform = function (e) {
    if (e.write) return write(e.write);
    if (e.redirect) { io.redirect(e.redirect.url, e.redirect.query); return trickleDone; }
    if (e.deny) { denied = true; io.deny(e.deny.message); return trickleDone; }
    if (e.set_primary) { io.setPrimaryUser(e.set_primary); return trickleDone; }
    if (e.ask) return trickleAsk(cfg.products, e.ask).then(elapsed);
    var m = e.read_user || e.patch_user || e.link_identity;
    if (!m) throw new Error('unknown effect ' + Object.keys(e).join(','));
    if (!mgmt) return Promise.resolve(elapsed({ status: 0, error: 'the Management API is not configured' }));
    var path = '/api/v2/users/' + encodeURIComponent(m.id);
    var call = e.read_user ? mgmt('GET', path, undefined, m)
      : e.patch_user ? mgmt('PATCH', path, { app_metadata: m.app_metadata }, m)
        : mgmt('POST', path + '/identities', m.connection_id ? { provider: m.provider, user_id: m.user_id, connection_id: m.connection_id } : { provider: m.provider, user_id: m.user_id }, m);
    return call.then(function (r) {
      var out = { status: r.status || 0 };
      if (!r.ok) out.error = r.error || 'HTTP ' + r.status;
      if (e.read_user && r.ok) out.user = r.body || null;
      return elapsed(out);
    });
  };
  var runAll = function (effects, i) {
    if (i >= effects.length) return Promise.resolve(undefined);
    return Promise.resolve(perform(effects[i])).then(function (r) {
      return i === effects.length - 1 ? r : runAll(effects, i + 1);
    });
  };
  var steps = 0;
  var loop = function (answer) {
    if (!answer || !Array.isArray(answer.effects)) {
      log.error = (answer && answer.error) || { code: 'shim.no_answer', message: 'the core gave no answer' };
      return denied ? 'deny' : 'continue';
    }
    log.events = answer.events;
    if (answer.link) log.link = answer.link;
    return runAll(answer.effects, 0).then(function (result) {
      if (answer.done) { log.outcome = answer.done; return answer.done; }
      var last = answer.effects[answer.effects.length - 1] || {};
      if (last.ask && result) log.fanout = (log.fanout || []).concat(trickleFanoutLog(result.fanout || []));
      // Every request acknowledged and nothing looked up: the core already said what follows.
      if (last.ask && last.ask.then && !(result.lookups || []).length && (result.fanout || []).every(function (r) { return r.ok; })) {
        log.events = log.events.concat(last.ask.then.events || []);
        return runAll(last.ask.then.effects || [], 0).then(function () { return 'continue'; });
      }
      if (++steps >= TRICKLE_MAX_STEPS) {
        log.error = { code: 'shim.steps', message: 'the login took more than ' + TRICKLE_MAX_STEPS + ' steps' };
        return 'continue';
      }
      results.push(JSON.stringify(result === undefined ? null : result));
      return loop(ask());
    });
  };
  var settled = function (outcome) {
    log.ms = Date.now() - started;
    trickleLog('post-login', log);
    trickleSend(source, 'post-login', log, cfg.fanoutBudgetMs - log.ms);
    return outcome;
  };
  return Promise.resolve(first).then(loop).then(settled, function (e) {
    log.error = { code: 'shim.unexpected', message: trickleMessage(e) };
    return settled(denied ? 'deny' : 'continue');
  });
}

/**
 * The products' part of a step: fan-out requests, look-ups by address, and a first social
 * login's look-ups by identity, within the step's budget. Resolves to the result the core reads:
 * `{fanout, lookups, identity_lookups?}`.
 */
function trickleAsk(products, ask) {
  var budget = Number(ask.budget_ms) || 1000;
  if (!ask.identity) return trickleFanout(products, ask, ask.email, budget);
  var named = (ask.lookups || []).map(function (n) { return products.byName[n]; }).filter(Boolean);
  var byIdentity = trickleLookupQuery(named, 'provider=' + encodeURIComponent(ask.identity.provider) + '&subject=' + encodeURIComponent(ask.identity.subject), budget);
  var byEmail = ask.email ? trickleLookup(named, ask.email, budget) : Promise.resolve([]);
  return Promise.all([byIdentity, byEmail]).then(function (r) { return { fanout: [], lookups: r[1], identity_lookups: r[0] }; });
}

/**
 * The user's identities as the core reads them (`[{provider, connection, user_id, hd}]`): the
 * core picks the one this login is made of. JSON text.
 */
function trickleIdentities(user) {
  var list = user && Array.isArray(user.identities) ? user.identities : [];
  var out = [];
  for (var i = 0; i < list.length; i++) {
    var id = list[i];
    if (!id || typeof id !== 'object' || id.user_id === undefined || id.user_id === null) continue;
    var data = id.profileData && typeof id.profileData === 'object' ? id.profileData : {};
    out.push({ provider: String(id.provider), connection: String(id.connection), user_id: String(id.user_id), hd: typeof data.hd === 'string' ? data.hd : null });
  }
  return JSON.stringify(out);
}

/** The fan-out's answers for the log line: `product:ok` or `product:failed`. */
function trickleFanoutLog(answers) {
  return answers.map(function (r) { return r.product + ':' + (r.ok ? 'ok' : 'failed'); });
}

/** A settled promise of nothing, shared (writes that were synchronous). */
var trickleDone = Promise.resolve();

/** Remembers at most 512 answers, oldest out first. */
function trickleQuietRemember(plans, key, plan) {
  if (plans.has(key)) return;
  if (plans.size >= 512) plans.delete(plans.keys().next().value);
  plans.set(key, plan);
}

/**
 * A Management API caller with a machine-to-machine token, cached in `cache` (the Action's
 * api.cache, or the container's) until shortly before it expires. Each call gets the time the
 * core allowed (`effect.timeout_ms`) and retries a 429 at most `effect.retries` times when the
 * wait (retry.js: Retry-After, x-ratelimit-reset, else a back-off) fits in it. Resolves
 * `{ok, status, body}`; never rejects.
 */
var trickleMgmtTokens = {};
function trickleMgmt(cfg, cache) {
  var m = cfg.mgmt;
  var key = 'trickle-mgmt:' + m.clientId;
  var cached = function () {
    try {
      var e = cache && typeof cache.get === 'function' ? cache.get(key) : trickleMgmtTokens[key];
      var value = e && typeof e === 'object' ? e.value : null;
      var exp = e && typeof e === 'object' ? Number(e.expires_at) : 0;
      return typeof value === 'string' && exp > Date.now() + 30000 ? value : null;
    } catch (_) { return null; }
  };
  var token = function (timeoutOf) {
    var t = cached();
    if (t) return Promise.resolve(t);
    return trickleFetch(m.base + '/oauth/token', { method: 'POST', body: { grant_type: 'client_credentials', client_id: m.clientId, client_secret: m.clientSecret, audience: m.base + '/api/v2/' } }, timeoutOf())
      .then(function (r) {
        var b = r.body || {};
        if (!r.ok || typeof b.access_token !== 'string') throw new Error('machine-to-machine token: ' + (r.error || 'HTTP ' + r.status));
        var expiresAt = Date.now() + Math.max(60, Number(b.expires_in) || 0) * 1000;
        try {
          if (cache && typeof cache.set === 'function') cache.set(key, b.access_token, { expires_at: expiresAt });
          else trickleMgmtTokens[key] = { value: b.access_token, expires_at: expiresAt };
        } catch (_) {
          // a full cache only costs a token request at the next login
        }
        return b.access_token;
      });
  };
  return function (method, path, body, effect) {
    var deadline = Date.now() + Math.max(1, Number(effect.timeout_ms) || 1000);
    var timeoutOf = function () { return Math.max(1, deadline - Date.now()); };
    return token(timeoutOf).then(function (t) {
      // Only a 429 is tried again (the tenant refused the call unseen), and only while the wait
      // leaves the call 100 ms.
      return trickleRetry(function () {
        return trickleFetch(m.base + path, { method: method, headers: { authorization: 'Bearer ' + t, accept: 'application/json' }, body: body }, timeoutOf());
      }, { attempts: (Number(effect.retries) || 0) + 1, base: 500, cap: 30000, only429: true, deadline: deadline - 100 });
    }, function (e) { return { ok: false, status: 0, error: trickleMessage(e) }; });
  };
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
      deny: function (reason) { api.access.deny(reason); },
      setPrimaryUser: function (id) { api.authentication.setPrimaryUser(id); },
      cache: api && api.cache
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
      deny: function () {},
      // A Rule continues as the primary user through context.primaryUser.
      setPrimaryUser: function (id) { context.primaryUser = id; }
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
