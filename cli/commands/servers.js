// The long-running commands: the simulator, the merge service, the product API, the monitor and
// the support console (each until Ctrl-C or SIGTERM), and the scripted demo.
'use strict';
const fs = require('fs');
const { fail } = require('./output');

/** Keeps a started service running until SIGINT or SIGTERM, then closes it and exits 0. */
function untilSignal(service) {
  const stop = () => service.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return null;
}

/** Starts a service; a refusal is said as `trickle <command>: [code] message` with exit 2. */
async function started(command, fallbackCode, start) {
  try {
    return { service: await start() };
  } catch (e) {
    process.stderr.write(`trickle ${command}: [${e.code || fallbackCode}] ${e.message}\n`);
    return { exit: 2 };
  }
}

const loadConfig = (values) => require('../config').loadConfig(values.config || 'trickle.json');

async function sim(values, int) {
  const { startSim } = require('../../sim');
  const monitor = values.monitor === undefined ? null : values.monitor.replace(/\/+$/, '');
  if (monitor !== null && !/^https?:\/\/[^/]/.test(monitor)) fail('--monitor must be the monitor\'s http(s) URL');
  const token = process.env.TRICKLE_MONITOR_TOKEN || undefined;
  const s = await startSim({
    https: true, people: int('people', 200, 1, 1000000), socialPeople: int('social-people', 0, 0, 100000), port: int('port', 0, 0, 65535), seed: int('seed', 1, 0, 2 ** 31), pipeline: values.rules ? 'rules' : 'action',
    ...(monitor ? { logStreamUrl: `${monitor}/log-stream`, logStreamToken: token, deploySettings: { eventsUrl: `${monitor}/events`, eventsToken: token } } : {})
  });
  const bulkCfg = s.bulkConfig({ deploy: true });
  const d = bulkCfg.deploy;
  process.stdout.write(`trickle simulator is running (${s.people.length} people, pipeline: ${values.rules ? 'legacy Rules' : 'Action'})\n`);
  for (const [k, v] of Object.entries(s.urls)) process.stdout.write(`  ${k.padEnd(9)} ${v}\n`);
  process.stdout.write(`  dashboard ${s.tenant.url}/_sim\n  sample person: ${s.people[0].email} / ${s.people[0].accounts[0].password}\n`
    + `Management API (bulk commands, deploy-config, a0deploy): tenant.url ${bulkCfg.tenant.url} (domain ${s.tenant.domain}), clientId ${bulkCfg.tenant.clientId}, clientSecret ${bulkCfg.tenant.clientSecret}, connectionId ${bulkCfg.tenant.connectionId}\n`
    + `Deploy (trickle.json "deploy"): mergeUrl ${d.mergeUrl}, tokenSecret ${d.tokenSecret}, clients ${JSON.stringify(d.clients)} (the application "Demo app", client id trickle-demo), connection ${d.connection}\n`
    + `  the tenant's certificate is self-signed; trust it in every shell that talks to it (deploy-cli, the bulk commands):\n  export NODE_EXTRA_CA_CERTS=${s.tenant.caFile}\n`);
  for (const p of bulkCfg.products) process.stdout.write(`  product ${p.name.padEnd(9)} db ${p.db}  format ${p.format}  api ${p.api.url} token ${p.api.token}\n`);
  for (const [strategy, idp] of Object.entries(s.idps || {})) {
    const holder = [...s.people, ...s.socialPeople].find((x) => (x.identities || []).some((i) => i.provider === strategy));
    const i = holder && holder.identities.find((x) => x.provider === strategy);
    process.stdout.write(`  social ${strategy.padEnd(18)} ${idp.issuer}${i ? `  sample account: ${i.login} / ${i.password}` : ''}\n`);
  }
  process.stdout.write(`  state     ${bulkCfg.state}\n  merge token secret ${s.tokenSecret}\n`);
  if (values['write-config']) {
    fs.writeFileSync(values['write-config'], JSON.stringify(bulkCfg, null, 2) + '\n', { mode: 0o600 });
    process.stdout.write(`wrote ${values['write-config']}: trickle check|prelink|export|import|backfill|verify|deploy-config --config ${values['write-config']}\n`);
  }
  process.stdout.write('Press Ctrl-C to stop (the databases are removed then).\n');
  return untilSignal(s);
}

async function mergeService() {
  const { startMergeService, configFromEnv } = require('../../merge-service/server');
  let service;
  try {
    service = await startMergeService(configFromEnv());
  } catch (e) {
    fail(e.message);
  }
  process.stdout.write(`trickle merge service listening on ${service.url} (public URL ${service.publicUrl})\n`);
  return untilSignal(service);
}

async function productApi(values, int) {
  const { startProductApi } = require('../../product-api/server');
  const r = await started('product-api', 'product_api.failed', () => {
    const cfg = loadConfig(values);
    if (Boolean(values['tls-cert']) !== Boolean(values['tls-key'])) throw Object.assign(new Error('--tls-cert and --tls-key go together'), { code: 'product_api.tls' });
    return startProductApi(cfg, {
      host: values.host, port: values.port === undefined ? undefined : int('port', 8480, 0, 65535),
      tls: values['tls-cert'] ? { cert: values['tls-cert'], key: values['tls-key'] } : undefined
    });
  });
  if (r.exit !== undefined) return r.exit;
  const api = r.service;
  if (process.stdout.isTTY) {
    process.stdout.write(`trickle product API on ${api.url}; set each product's api.url to:\n${Object.entries(api.products).map(([n, u]) => `  ${n.padEnd(12)} ${u}\n`).join('')}`
      + `health ${api.url}/healthz, metrics ${api.url}/metrics. Ctrl-C stops it (requests in flight finish).\n`);
  }
  return untilSignal(api);
}

async function monitor(values, int) {
  const { startMonitor, configFromEnv } = require('../../monitor/server');
  let m;
  try {
    m = await startMonitor({ ...configFromEnv(), port: int('port', 9464, 0, 65535) });
  } catch (e) {
    fail(e.message);
  }
  process.stdout.write(`trickle monitor listening on ${m.url} (POST /events, POST /log-stream, POST /progress, GET /metrics, dashboard ${m.url}/dashboard)\n`);
  return untilSignal(m);
}

async function supportConsole(values, int) {
  const { startConsole } = require('../../console/server');
  const { consoleOptions } = require('../../console/config');
  const r = await started('console', 'console.failed', () => startConsole(consoleOptions(loadConfig(values), process.env, values.port === undefined ? {} : { port: int('port', 9470, 0, 65535) })));
  if (r.exit !== undefined) return r.exit;
  const service = r.service;
  process.stdout.write(`trickle support console on ${service.url} (public URL ${service.publicUrl}; register ${service.redirectUri} as the application's callback)\n`);
  return untilSignal(service);
}

async function demo(values, int) {
  const { runDemo } = require('../../sim/demo');
  const r = await runDemo({ people: int('people', 60, 10, 100000), keepOpen: !!process.stdout.isTTY });
  return r.failed === 0 ? 0 : 1;
}

module.exports = { sim, mergeService, productApi, monitor, supportConsole, demo };
