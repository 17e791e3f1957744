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
      social: cfg.social
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
  var person = { user_id: String(user.user_id || ''), email: typeof user.email === 'string' ? user.email : null, email_verified: user.email_verified === true };
  var identity = facts.identity && cfg.social.indexOf(facts.connection) >= 0 ? facts.identity : null;
  // The input as text, the configuration's part serialised once per set of secrets.
  var userJson, txJson;
  var planParts = function () {
    userJson = JSON.stringify(trickleUser(person, meta));
    txJson = JSON.stringify({ can_redirect: !!facts.canRedirect, state: facts.state || null, connection: facts.connection || null });
  };
  var planText = function () {
    planParts();
    return planJoined();
  };
  var planJoined = function () {
    // A random jti only where a token may be issued (a redirect to the merge); a returning
    // session token is checked against the record's own.
    var jti = facts.phase === 'execute' && facts.canRedirect ? '"' + trickleJti() + '"' : 'null';
    return '{"phase":' + JSON.stringify(String(facts.phase)) + ',"now":' + Math.floor(Date.now() / 1000) +
      ',"user":' + userJson + ',"transaction":' + txJson +
      ',"config":' + settings.configJson + ',"jti":' + jti + ',"session_token":' +
      JSON.stringify(typeof facts.sessionToken === 'string' ? facts.sessionToken : null) +
      (identity ? ',"identity":' + JSON.stringify(identity) : '') + '}';
  };
  planParts();
  // A returning person whose record asks for nothing gets the same answer for the same user and
  // settings whatever the time and the jti (those matter only when a token is issued or checked):
  // that answer is remembered, and the core is not asked again until something changes.
  var quietKey = facts.phase === 'execute' && settings.key !== null ? txJson + '\u0000' + userJson + (identity ? JSON.stringify(identity) : '') : null;
  var plan = (quietKey !== null && settings.quiet.get(quietKey)) || core.call('chain_plan', planJoined());
  if (quietKey !== null && trickleQuietPlan(plan)) trickleQuietRemember(settings.quiet, quietKey, plan);
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
  var canonicalEmail = function () {
    var c = person.email ? core.call('normalize_email', { email: person.email }) : null;
    return c && c.outcome === 'ok' ? c.email : null;
  };
  var addEvents = function (list) { trickleAddEvents(log, list); };
  // The accounts whose holder was just read (nobody else) are told this user's id, and the
  // acknowledgements recorded.
  var tellRead = function (requests) {
    if (!(requests || []).length) return 'continue';
    return trickleFanout(cfg.products, { fanout: requests, lookups: [] }, null, cfg.fanoutBudgetMs).then(function (more) {
      var acked = core.call('chain_apply', {
        user: trickleUser(person, meta),
        fanout: more.fanout, lookups: []
      });
      log.fanout = (log.fanout || []).concat(trickleFanoutLog(more.fanout));
      addEvents(acked.events);
      return write(acked.set_app_metadata).then(function () { return 'continue'; });
    });
  };
  // A first social login: the products are asked for the identity and the address, the core
  // makes the record, and the chain is planned again with it.
  var discovered = function () {
    if (!plan.discover) return Promise.resolve();
    var email = canonicalEmail();
    var d = plan.discover;
    var byIdentity = trickleLookupQuery(cfg.products, 'provider=' + encodeURIComponent(d.provider) + '&subject=' + encodeURIComponent(d.subject), cfg.lookupTimeoutMs);
    var byEmail = email ? trickleLookup(cfg.products, email, cfg.lookupTimeoutMs) : Promise.resolve([]);
    return Promise.all([byIdentity, byEmail]).then(function (r) {
      var applied = core.call('chain_apply', {
        user: trickleUser(person, meta),
        fanout: [], lookups: r[1], identity_lookups: r[0], discover: d, products: cfg.productNames
      });
      if (applied.outcome) { log.error = applied.error; plan = trickleNothing(); return null; }
      addEvents(applied.events);
      // Nothing recorded (a product could not be asked): the next login asks again.
      if (!applied.set_app_metadata || !applied.set_app_metadata.trickle) { plan = trickleNothing(); return null; }
      return write(applied.set_app_metadata).then(function () {
        plan = core.call('chain_plan', planText());
        if (plan.outcome !== 'continue' && plan.outcome !== 'redirect' && plan.outcome !== 'deny') {
          log.error = plan.error;
          plan = trickleNothing();
        }
        log.outcome = plan.outcome;
        addEvents(plan.events);
      });
    });
  };
  var settled = function (outcome) {
    log.ms = Date.now() - started;
    trickleLog('post-login', log);
    trickleSend(source, 'post-login', log, cfg.fanoutBudgetMs - log.ms);
    return outcome;
  };
  var ready = plan.discover ? discovered().then(function () { return write(plan.set_app_metadata); }) : write(plan.set_app_metadata);
  return ready
    .then(function () {
      if (plan.outcome === 'redirect') {
        io.redirect(plan.redirect.url, plan.redirect.query);
        return 'redirect';
      }
      if (plan.outcome === 'deny') {
        io.deny(plan.deny.message);
        return 'deny';
      }
      if (plan.link) return trickleLink(core, cfg, io, person, meta, plan.link, log);
      if (!(plan.fanout || []).length && !(plan.lookups || []).length) return 'continue';
      var lookupEmail = (plan.lookups || []).length ? canonicalEmail() : null;
      return trickleFanout(cfg.products, plan, lookupEmail, cfg.fanoutBudgetMs).then(function (results) {
        // Every request acknowledged and nothing looked up: the core already said what that
        // records (plan.acknowledged), so it is not asked again.
        var allOk = plan.acknowledged && !results.lookups.length && results.fanout.every(function (r) { return r.ok; });
        var applied = allOk ? plan.acknowledged : core.call('chain_apply', {
          user: trickleUser(person, meta),
          fanout: results.fanout,
          lookups: results.lookups,
          products: cfg.productNames
        });
        log.fanout = trickleFanoutLog(results.fanout);
        addEvents(applied.events);
        return write(applied.set_app_metadata).then(function () {
          if (!applied.relink) return tellRead(applied.fanout);
          // Another of the person's users holds a proven account: planned once more, without a
          // redirect, to join it in this login (once: no further rounds).
          facts = { phase: 'execute', canRedirect: false, state: facts.state, connection: facts.connection, sessionToken: null };
          var again = core.call('chain_plan', planText());
          addEvents(again.events);
          if (again.link) return trickleLink(core, cfg, io, person, meta, again.link, log);
          return write(again.set_app_metadata).then(function () { return tellRead(again.fanout); });
        });
      });
    })
    .then(settled, function (e) {
      log.error = { code: 'shim.unexpected', message: trickleMessage(e) };
      return settled(plan.outcome === 'deny' ? 'deny' : 'continue');
    });
}

/** The user as the core reads it: this login's user with its metadata as it stands. */
function trickleUser(person, meta) {
  return { user_id: person.user_id, email: person.email, email_verified: person.email_verified, app_metadata: meta };
}

/** Adds a step's events to the log line. */
function trickleAddEvents(log, list) {
  log.events = (log.events || []).concat(list || []);
}

/** The fan-out's answers for the log line: `product:ok` or `product:failed`. */
function trickleFanoutLog(answers) {
  return answers.map(function (r) { return r.product + ':' + (r.ok ? 'ok' : 'failed'); });
}

/** A settled promise of nothing, shared (writes that were synchronous). */
var trickleDone = Promise.resolve();

/** A plan that asks for nothing. */
function trickleNothing() {
  return { outcome: 'continue', set_app_metadata: {}, fanout: [], lookups: [], events: [] };
}

/** Whether a plan is one to remember for a returning person (see trickleChain). */
function trickleQuietPlan(plan) {
  return plan && plan.outcome === 'continue' && !plan.redirect && !plan.deny && !plan.link && !plan.discover &&
    !Object.keys(plan.set_app_metadata || {}).length && !(plan.fanout || []).length && !(plan.lookups || []).length;
}
/** Remembers at most 512 answers, oldest out first. */
function trickleQuietRemember(plans, key, plan) {
  if (plans.has(key)) return;
  if (plans.size >= 512) plans.delete(plans.keys().next().value);
  plans.set(key, plan);
}

/**
 * Joins this login's user to the existing tenant user `target` (Auth0 account linking): reads
 * that user through the Management API, lets the core check its record (`chain_link`), writes
 * the joined record to it, links this user's identity into it, continues the login as it, and
 * fans out as it. Any failure leaves both users as they were and the login goes on; nothing is
 * told to the products then (their stored id stays the existing user's). Resolves 'continue'.
 */
function trickleLink(core, cfg, io, person, meta, target, log) {
  var fail = function (code, message) {
    log.link = { outcome: 'failed', code: code, error: message };
    return 'continue';
  };
  if (!cfg.mgmt) return Promise.resolve(fail('link.unconfigured', 'TRICKLE_MGMT_DOMAIN, TRICKLE_MGMT_CLIENT_ID and TRICKLE_MGMT_CLIENT_SECRET are needed to link accounts'));
  // One deadline for the whole step (token, read, write, link, fan-out, write): well inside the
  // platform's limit on an Action, whatever each call takes.
  var deadline = Date.now() + Math.min(10000, cfg.lookupTimeoutMs + 2 * cfg.fanoutBudgetMs);
  var api = trickleMgmt(cfg, io.cache, deadline);
  var path = '/api/v2/users/' + encodeURIComponent(target);
  var products = cfg.productNames;
  var secondary = trickleUser(person, meta);
  var linked;
  var before;
  // A refusal names a stale pointer: this user's record forgets it (written like any other).
  var refused = function (answer) {
    trickleAddEvents(log, answer.events);
    var changes = answer.set_secondary || {};
    var keys = Object.keys(changes);
    keys.forEach(function (k) { meta[k] = changes[k]; });
    return Promise.resolve(keys.length ? io.setMetadata(changes, meta) : null).then(function () {
      return fail((answer.events && answer.events[0] && answer.events[0].code) || (answer.error && answer.error.code) || 'link.refused', 'not joined to ' + target);
    }, function (e) { return fail('link.metadata', trickleMessage(e)); });
  };
  return api('GET', path).then(function (r) {
    if (r.status === 404) return refused(core.call('chain_link', { target: target, primary: null, secondary: secondary, products: products }));
    if (!r.ok) throw trickleLinkError('link.primary_unavailable', 'reading ' + target + ': ' + (r.error || 'HTTP ' + r.status));
    var primary = r.body || {};
    before = primary.app_metadata || {};
    linked = core.call('chain_link', {
      target: target,
      primary: { user_id: String(primary.user_id || ''), email: typeof primary.email === 'string' ? primary.email : null, email_verified: primary.email_verified === true, app_metadata: before },
      secondary: secondary, products: products
    });
    if (linked.outcome !== 'link') return refused(linked);
    trickleAddEvents(log, linked.events);
    linked.primary = primary;
    // The joined record first, then the identity; when linking fails, the record goes back.
    return api('PATCH', path, { app_metadata: linked.set_app_metadata }).then(function (w) {
      if (!w.ok) throw trickleLinkError('link.metadata', 'writing ' + target + ': ' + (w.error || 'HTTP ' + w.status));
      var body = { provider: linked.identity.provider, user_id: linked.identity.user_id };
      if (linked.identity.provider === 'auth0' && cfg.mgmt.connectionId) body.connection_id = cfg.mgmt.connectionId;
      return api('POST', path + '/identities', body);
    }).then(function (p) {
      if (p.ok) return joined();
      var restore = {};
      Object.keys(linked.set_app_metadata).forEach(function (k) { restore[k] = Object.prototype.hasOwnProperty.call(before, k) ? before[k] : null; });
      return api('PATCH', path, { app_metadata: restore }).then(function (w) {
        if (!w.ok) log.metadata_error = 'restoring ' + target + ': ' + (w.error || 'HTTP ' + w.status);
        throw trickleLinkError('link.identities', 'linking into ' + target + ': ' + (p.error || 'HTTP ' + p.status));
      });
    });
  }).then(null, function (e) {
    return fail(e && e.code ? e.code : 'link.failed', trickleMessage(e));
  });

  function joined() {
    io.setPrimaryUser(target);
    log.link = { outcome: 'linked', primary: target };
    var merged = {};
    for (var k in before) if (Object.prototype.hasOwnProperty.call(before, k)) merged[k] = before[k];
    for (var m in linked.set_app_metadata) merged[m] = linked.set_app_metadata[m];
    var left = deadline - Date.now();
    if (!(linked.fanout || []).length || left < 100) return 'continue';
    return trickleFanout(cfg.products, { fanout: linked.fanout, lookups: [] }, null, Math.min(cfg.fanoutBudgetMs, left)).then(function (results) {
      log.fanout = trickleFanoutLog(results.fanout);
      var applied = core.call('chain_apply', {
        user: { user_id: target, email: linked.primary.email || null, email_verified: linked.primary.email_verified === true, app_metadata: merged },
        fanout: results.fanout, lookups: []
      });
      trickleAddEvents(log, applied.events);
      // Out of time, the acknowledgements are recorded at a later login (the fan-out is idempotent).
      if (!Object.keys(applied.set_app_metadata || {}).length || deadline - Date.now() < 100) return 'continue';
      return api('PATCH', path, { app_metadata: applied.set_app_metadata }).then(function (w) {
        if (!w.ok) log.metadata_error = 'writing ' + target + ': ' + (w.error || 'HTTP ' + w.status);
        return 'continue';
      });
    });
  }
}

function trickleLinkError(code, message) {
  var e = new Error(message);
  e.code = code;
  return e;
}

/**
 * A Management API caller with a machine-to-machine token, cached in `cache` (the Action's
 * api.cache, or the container's) until shortly before it expires. One retry after a 429 when
 * the Retry-After fits the time left. Resolves `{ok, status, body}`; never rejects.
 */
var trickleMgmtTokens = {};
function trickleMgmt(cfg, cache, deadline) {
  var m = cfg.mgmt;
  var key = 'trickle-mgmt:' + m.clientId;
  var timeoutOf = function () { return Math.max(1, Math.min(cfg.lookupTimeoutMs, deadline - Date.now())); };
  var cached = function () {
    try {
      var e = cache && typeof cache.get === 'function' ? cache.get(key) : trickleMgmtTokens[key];
      var value = e && typeof e === 'object' ? e.value : null;
      var exp = e && typeof e === 'object' ? Number(e.expires_at) : 0;
      return typeof value === 'string' && exp > Date.now() + 30000 ? value : null;
    } catch (_) { return null; }
  };
  var token = function () {
    var t = cached();
    if (t) return Promise.resolve(t);
    return trickleFetch(m.base + '/oauth/token', { method: 'POST', body: { grant_type: 'client_credentials', client_id: m.clientId, client_secret: m.clientSecret, audience: m.base + '/api/v2/' } }, timeoutOf())
      .then(function (r) {
        var b = r.body || {};
        if (!r.ok || typeof b.access_token !== 'string') throw trickleLinkError('link.token', 'machine-to-machine token: ' + (r.error || 'HTTP ' + r.status));
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
  return function (method, path, body) {
    return token().then(function (t) {
      var once = function (retried) {
        return trickleFetch(m.base + path, { method: method, headers: { authorization: 'Bearer ' + t, accept: 'application/json' }, body: body }, timeoutOf()).then(function (r) {
          var wait = Number(r.retryAfter);
          if (r.status === 429 && !retried) {
            var ms = isFinite(wait) && wait >= 0 ? wait * 1000 : 1000;
            if (ms < deadline - Date.now() - 100) return new Promise(function (res) { setTimeout(res, ms); }).then(function () { return once(true); });
          }
          return r;
        });
      };
      return once(false);
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

/**
 * The social identity of this login: the identity of `connection` among the user's identities,
 * its subject without the connection's own prefix (Auth0 writes some as `<connection>|<id>`),
 * and Google's Workspace domain (`hd`) when the profile carries it. Null for anything else.
 */
function trickleIdentity(user, connection) {
  var list = user && Array.isArray(user.identities) ? user.identities : [];
  for (var i = 0; i < list.length; i++) {
    var id = list[i];
    if (!id || id.connection !== connection || id.user_id === undefined || id.user_id === null) continue;
    // Only the identity the user is made of: for a user of another identity that merely has
    // this one linked, the profile's address and verification are not this provider's word.
    if (String(user.user_id) !== String(id.provider) + '|' + String(id.user_id)) return null;
    var subject = String(id.user_id);
    if (subject.indexOf(connection + '|') === 0) subject = subject.slice(connection.length + 1);
    var data = id.profileData && typeof id.profileData === 'object' ? id.profileData : {};
    var hd = typeof user.hd === 'string' ? user.hd : typeof data.hd === 'string' ? data.hd : null;
    return { provider: String(connection), subject: subject, hd: hd };
  }
  return null;
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
      identity: trickleIdentity(event && event.user, event && event.connection && event.connection.name),
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
      identity: trickleIdentity(user, context.connection),
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
