// The monitor: receives trickle's log lines (POST /events) and the tenant's log stream in Auth0's
// custom-webhook format (POST /log-stream), and exposes Prometheus metrics (GET /metrics).
// Labels are bounded: stages, outcomes, event names, log types and products each come from a
// known or seen set capped in size (the rest count as "other"); no user id or address is a label.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const Fastify = require('fastify');
const client = require('prom-client');
const { csp, securityHeaders } = require('../lib/web');

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
 * bodyLimit (bytes, 1 MiB), maxLines (per batch, 5000), sampleMs (how often the dashboard's series
 * take a point, 5000), maxPoints (points kept, 720), progress (optional async function resolving to
 * {total, lazy, imported, backfilled, remaining}: the migration's overall progress, asked at every
 * sample; POST /progress sets the same figures from outside)}. Returns {url, port, registry, close}.
 */
async function startMonitor(options = {}) {
  const opts = { port: 0, host: '127.0.0.1', bodyLimit: 1024 * 1024, maxLines: 5000, maxProducts: 20, sampleMs: 5000, maxPoints: 720, ...options };
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
  const progressGauge = new client.Gauge({ name: 'trickle_migration_people', help: 'the migration\'s progress: people migrated lazily, imported, backfilled, still to go, in total', labelNames: ['state'], registers: [registry] });
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
    const url = req.routeOptions && req.routeOptions.url;
    const endpoint = url === '/log-stream' ? 'log-stream' : url === '/progress' ? 'progress' : 'events';
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

  // --- the dashboard: time series sampled from the counters above, and the progress figures ---
  const sum = async (metric, filter = () => true) => (await metric.get()).values.filter((v) => filter(v.labels)).reduce((a, v) => a + v.value, 0);
  const FIGURES = {
    lazy_migrations: () => sum(m.migrated),
    merges_started: () => sum(m.merges, (l) => l.stage === 'started'),
    merges_completed: () => sum(m.merges, (l) => l.stage === 'completed'),
    squatter_refusals: () => sum(m.squatter),
    fanout_acknowledged: () => sum(m.fanoutOk),
    fanout_failed: () => sum(m.fanoutFailed),
    product_unavailable: () => sum(m.unavailable),
    links_withdrawn: () => sum(m.withdrawn),
    tenant_login_success: () => sum(m.tenantMapped, (l) => l.kind === 'login' && l.result === 'success'),
    tenant_login_failure: () => sum(m.tenantMapped, (l) => l.kind === 'login' && l.result === 'failure'),
    tenant_password_change: () => sum(m.tenantMapped, (l) => l.kind === 'password_change' && l.result === 'success')
  };
  const PROGRESS = ['total', 'lazy', 'imported', 'backfilled', 'remaining'];
  const series = { t: [], series: Object.fromEntries([...Object.keys(FIGURES), ...PROGRESS].map((k) => [k, []])) };
  let progress = null;
  const setProgress = (p) => {
    const clean = {};
    for (const k of PROGRESS) {
      if (p[k] === undefined) continue;
      if (!Number.isSafeInteger(p[k]) || p[k] < 0) throw new BadInput(`progress.${k} must be a whole number ≥ 0`);
      clean[k] = p[k];
    }
    if (!Object.keys(clean).length) throw new BadInput(`progress needs one of ${PROGRESS.join(', ')}`);
    progress = { ...(progress || {}), ...clean, at: new Date().toISOString() };
    for (const k of PROGRESS) if (clean[k] !== undefined) progressGauge.set({ state: k }, clean[k]);
  };
  let sampling = false;
  async function sample() {
    if (sampling) return;
    sampling = true;
    try {
      if (opts.progress) {
        try { const p = await opts.progress(); if (p) setProgress(p); } catch (_) { /* a source that fails leaves the last figures */ }
      }
      series.t.push(Date.now() / 1000);
      for (const [k, f] of Object.entries(FIGURES)) series.series[k].push(await f());
      for (const k of PROGRESS) series.series[k].push(progress && progress[k] !== undefined ? progress[k] : null);
      if (series.t.length > opts.maxPoints) {
        series.t.shift();
        for (const list of Object.values(series.series)) list.shift();
      }
    } finally {
      sampling = false;
    }
  }
  const timer = setInterval(sample, opts.sampleMs);
  timer.unref();
  app.post('/progress', { onRequest: guard('progress') }, async (req) => {
    const body = typeof req.body === 'string' ? parseJson(req.body) : req.body;
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new BadInput('progress is a JSON object');
    setProgress(body);
    return { progress };
  });
  const DASH = path.join(__dirname, 'dashboard');
  const UPLOT = path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
  const files = {
    'uPlot.iife.min.js': [path.join(UPLOT, 'uPlot.iife.min.js'), 'text/javascript; charset=utf-8'],
    'uPlot.min.css': [path.join(UPLOT, 'uPlot.min.css'), 'text/css; charset=utf-8'],
    'dashboard.js': [path.join(DASH, 'dashboard.js'), 'text/javascript; charset=utf-8'],
    'dashboard.css': [path.join(DASH, 'dashboard.css'), 'text/css; charset=utf-8']
  };
  // The dashboard's own script, stylesheet and series, images also as data: URLs; no form.
  const CSP = csp({ 'script-src': "'self'", 'style-src': "'self'", 'img-src': ["'self'", 'data:'], 'connect-src': "'self'", 'form-action': "'none'" });
  const page = (reply, type, body) => securityHeaders(reply.type(type), { csp: CSP, frame: false }).send(body);
  app.get('/favicon.ico', async (req, reply) => reply.code(204).send());
  app.get('/dashboard', async (req, reply) => page(reply, 'text/html; charset=utf-8', fs.readFileSync(path.join(DASH, 'index.html'))));
  app.get('/dashboard/:file', async (req, reply) => {
    if (req.params.file === 'series') return page(reply, 'application/json; charset=utf-8', JSON.stringify({ sampleMs: opts.sampleMs, progress, ...series }));
    const f = files[req.params.file];
    if (!f) return reply.code(404).send({ error: 'not found' });
    return page(reply, f[1], fs.readFileSync(f[0]));
  });

  await app.listen({ port: opts.port, host: opts.host });
  await sample();
  const port = app.server.address().port;
  return { url: `http://${opts.host}:${port}`, port, registry, sample, setProgress, close: () => { clearInterval(timer); return app.close(); } };
}

/** The monitor's settings from the environment (`trickle monitor`). */
function configFromEnv(env = process.env) {
  const products = env.TRICKLE_MONITOR_PRODUCTS ? env.TRICKLE_MONITOR_PRODUCTS.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
  return { token: env.TRICKLE_MONITOR_TOKEN || undefined, products, host: env.TRICKLE_MONITOR_HOST || '127.0.0.1' };
}

module.exports = { startMonitor, configFromEnv, cappedLabel, TENANT_TYPES };
