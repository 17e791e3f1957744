// The monitor: receives trickle's log lines (POST /events) and the tenant's log stream in Auth0's
// custom-webhook format (POST /log-stream), and exposes Prometheus metrics (GET /metrics).
// Labels are bounded: stages, outcomes, event names, log types and products each come from a
// known or seen set capped in size (the rest count as "other"); no user id or address is a label.
'use strict';
const crypto = require('crypto');
const Fastify = require('fastify');
const client = require('prom-client');

const OTHER = 'other';
const STAGES = ['post-login', 'login', 'get_user'];
/** Auth0 log types trickle maps to meaning; every type is also counted by itself. */
const TENANT_TYPES = {
  s: ['login', 'success'], f: ['login', 'failure'], fp: ['login', 'failure'], fu: ['login', 'failure'],
  ss: ['signup', 'success'], fs: ['signup', 'failure'], scp: ['password_change', 'success'], sce: ['password_change', 'success'],
  fcp: ['password_change', 'failure']
};

/** A label value from a bounded set: allowed names, then the first `max` well-formed values seen. */
function cappedLabel({ allowed = null, max = 20, pattern = /^[A-Za-z0-9_.-]{1,64}$/ } = {}) {
  const seen = new Set(allowed || []);
  return (value) => {
    if (typeof value !== 'string' || !pattern.test(value)) return OTHER;
    if (seen.has(value)) return value;
    if (allowed || seen.size >= max) return OTHER;
    seen.add(value);
    return value;
  };
}

class BadInput extends Error {
  constructor(message) { super(message); this.statusCode = 400; }
}

/** The lines of a body: a JSON array, one JSON object, or NDJSON text. */
function linesOf(body, maxLines) {
  let items;
  if (typeof body === 'string') {
    const text = body.trim();
    if (!text) throw new BadInput('empty body');
    if (text[0] === '[') items = parseJson(text);
    else items = text.split(/\r?\n/).filter((l) => l.trim()).map(parseJson);
  } else {
    items = body;
  }
  if (!Array.isArray(items)) items = [items];
  if (items.length > maxLines) throw new BadInput(`at most ${maxLines} lines per batch`);
  for (const item of items) if (!item || typeof item !== 'object' || Array.isArray(item)) throw new BadInput('every line must be a JSON object');
  return items;
}

function parseJson(text) {
  try { return JSON.parse(text); } catch (_) { throw new BadInput('malformed JSON'); }
}

/**
 * Starts the monitor. Options: {port, host, token (bearer token for the ingest endpoints),
 * products (names; others count as "other"), maxProducts (seen-set cap when no list, 20),
 * bodyLimit (bytes, 1 MiB), maxLines (per batch, 5000)}. Returns {url, port, registry, close}.
 */
async function startMonitor(options = {}) {
  const opts = { port: 0, host: '127.0.0.1', bodyLimit: 1024 * 1024, maxLines: 5000, maxProducts: 20, ...options };
  const registry = new client.Registry();
  const counter = (name, help, labelNames = []) => new client.Counter({ name, help, labelNames, registers: [registry] });
  const m = {
    lines: counter('trickle_log_lines_total', 'trickle log lines received, by stage and outcome', ['stage', 'outcome']),
    events: counter('trickle_events_total', 'trickle events received, by event name', ['event']),
    migrated: counter('trickle_lazy_migrations_total', 'lazy migrations: login_migrated events'),
    merges: counter('trickle_merges_total', 'merges: started (merge_redirect), completed (merge_completed), skipped (merge_skipped)', ['stage']),
    fanoutOk: counter('trickle_fanout_acknowledged_total', 'fan-out writes a product acknowledged', ['product']),
    fanoutFailed: counter('trickle_fanout_failed_total', 'fan-out writes that failed, by product', ['product']),
    unavailable: counter('trickle_product_unavailable_total', 'product look-ups that failed, by product', ['product']),
    withdrawn: counter('trickle_links_withdrawn_total', 'links withdrawn (link_withdrawn events), by product', ['product']),
    squatter: counter('trickle_squatter_refusals_total', 'logins refused until a password reset (login.reset_required)'),
    tenantTypes: counter('trickle_tenant_log_events_total', 'tenant log-stream events, by Auth0 log type', ['type']),
    tenantMapped: counter('trickle_tenant_events_total', 'tenant log-stream events trickle maps: logins, signups, password changes', ['kind', 'result']),
    ingested: counter('trickle_ingest_lines_total', 'lines accepted by the ingest endpoints', ['endpoint']),
    rejected: counter('trickle_ingest_rejected_total', 'ingest requests refused, by endpoint and reason', ['endpoint', 'reason'])
  };
  // Pre-create the label sets the alerts read, so rates exist before the first event.
  for (const stage of ['started', 'completed', 'skipped']) m.merges.inc({ stage }, 0);
  const product = cappedLabel({ allowed: Array.isArray(opts.products) && opts.products.length ? opts.products : null, max: opts.maxProducts });
  const stage = cappedLabel({ allowed: STAGES });
  const outcome = cappedLabel({ max: 24, pattern: /^[a-z_]{1,32}$/ });
  const eventName = cappedLabel({ max: 64, pattern: /^[a-z_]{1,48}$/ });
  const logType = cappedLabel({ max: 64, pattern: /^[a-z0-9_]{1,32}$/ });
  const seenLogIds = new Set(); // Auth0 retries a batch: a log_id is counted once

  const tokenHash = opts.token ? crypto.createHash('sha256').update(String(opts.token)).digest() : null;
  const authorized = (req) => {
    if (!tokenHash) return true;
    const h = String(req.headers.authorization || '');
    const given = /^bearer /i.test(h) ? h.slice(7).trim() : h.trim();
    return crypto.timingSafeEqual(crypto.createHash('sha256').update(given).digest(), tokenHash);
  };

  function countLine(line) {
    const st = stage(line.trickle);
    m.lines.inc({ stage: st, outcome: outcome(line.outcome) });
    let refused = line.outcome === 'reset_required' || line.code === 'login.reset_required';
    for (const e of Array.isArray(line.events) ? line.events : []) {
      if (!e || typeof e !== 'object') continue;
      m.events.inc({ event: eventName(e.event) });
      if (e.code === 'login.reset_required') refused = true;
      // The login script's product_unavailable and the chain's pending_still_unavailable.
      if (e.event === 'product_unavailable' || e.code === 'product.unavailable') m.unavailable.inc({ product: product(e.product) });
      switch (e.event) {
        case 'login_migrated': m.migrated.inc(); break;
        case 'merge_redirect': m.merges.inc({ stage: 'started' }); break;
        case 'merge_completed': m.merges.inc({ stage: 'completed' }); break;
        case 'merge_skipped': m.merges.inc({ stage: 'skipped' }); break;
        case 'fanout_acknowledged': m.fanoutOk.inc({ product: product(e.product) }); break;
        case 'fanout_failed': m.fanoutFailed.inc({ product: product(e.product) }); break;
        case 'link_withdrawn': m.withdrawn.inc({ product: product(e.product) }); break;
        default:
      }
    }
    if (refused) m.squatter.inc();
  }

  function countLog(entry) {
    const data = entry.data && typeof entry.data === 'object' ? entry.data : null;
    if (!data) throw new BadInput('every entry needs data');
    const id = typeof entry.log_id === 'string' ? entry.log_id : null;
    if (id) {
      if (seenLogIds.has(id)) return false;
      seenLogIds.add(id);
      if (seenLogIds.size > 10000) seenLogIds.delete(seenLogIds.values().next().value);
    }
    const type = typeof data.type === 'string' ? data.type : '';
    m.tenantTypes.inc({ type: logType(type) });
    const mapped = TENANT_TYPES[type];
    if (mapped) m.tenantMapped.inc({ kind: mapped[0], result: mapped[1] });
    return true;
  }

  const app = Fastify({ logger: false, bodyLimit: opts.bodyLimit });
  app.addContentTypeParser(['application/x-ndjson', 'application/jsonl', 'text/plain'], { parseAs: 'string', bodyLimit: opts.bodyLimit }, (req, body, done) => done(null, body));
  app.setErrorHandler((err, req, reply) => {
    const code = err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
    const endpoint = req.routeOptions && req.routeOptions.url === '/log-stream' ? 'log-stream' : 'events';
    m.rejected.inc({ endpoint, reason: code === 413 ? 'too_large' : code === 415 ? 'content_type' : 'malformed' });
    reply.code(code).send({ error: code === 413 ? 'body too large' : err instanceof BadInput ? err.message : 'bad request' });
  });
  const guard = (endpoint) => async (req, reply) => {
    if (!authorized(req)) {
      m.rejected.inc({ endpoint, reason: 'unauthorized' });
      return reply.code(401).send({ error: 'missing or wrong bearer token' });
    }
    return undefined;
  };

  app.post('/events', { onRequest: guard('events') }, async (req) => {
    const lines = linesOf(req.body, opts.maxLines);
    for (const line of lines) if (typeof line.trickle !== 'string') throw new BadInput('every line needs "trickle": the stage');
    lines.forEach(countLine);
    m.ingested.inc({ endpoint: 'events' }, lines.length);
    return { accepted: lines.length };
  });
  app.post('/log-stream', { onRequest: guard('log-stream') }, async (req) => {
    const entries = linesOf(req.body, opts.maxLines);
    for (const e of entries) if (!e.data || typeof e.data !== 'object') throw new BadInput('every entry needs data');
    let counted = 0;
    for (const e of entries) if (countLog(e)) counted++;
    m.ingested.inc({ endpoint: 'log-stream' }, counted);
    return { accepted: counted, duplicates: entries.length - counted };
  });
  app.get('/metrics', async (req, reply) => {
    reply.type(registry.contentType);
    return registry.metrics();
  });
  app.get('/healthz', async () => ({ ok: true }));

  await app.listen({ port: opts.port, host: opts.host });
  const port = app.server.address().port;
  return { url: `http://${opts.host}:${port}`, port, registry, close: () => app.close() };
}

/** The monitor's settings from the environment (`trickle monitor`). */
function configFromEnv(env = process.env) {
  const products = env.TRICKLE_MONITOR_PRODUCTS ? env.TRICKLE_MONITOR_PRODUCTS.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
  return { token: env.TRICKLE_MONITOR_TOKEN || undefined, products, host: env.TRICKLE_MONITOR_HOST || '127.0.0.1' };
}

module.exports = { startMonitor, configFromEnv, cappedLabel, TENANT_TYPES };
