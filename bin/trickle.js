#!/usr/bin/env node
// The `trickle` command.
'use strict';
const { parseArgs } = require('node:util');


const CONTRACT = `Output: on a terminal, readable text; otherwise NDJSON only (progress lines, then one
{"summary": …} line, also on Ctrl-C with "interrupted": true). Errors go to stderr as
trickle <command>: [code] message. Exit 0 done, 1 findings, 2 refused (nothing written), 130 interrupted.
`;

const COMMAND_HELP = {
  demo: `Usage: trickle demo [--people 60]

Starts the simulator (tenant, products, mail catcher, merge service), deploys dist/auth0 into it
with the real auth0-deploy-cli, and drives a scripted migration: single-product logins, a
multi-product login reaching the merge, a product outage during the fan-out and its recovery, a
wrong password, a password reset, a squatter refused, an authenticator-app code. Prints one line
per expectation; exit 0 only if all held. On a terminal everything stays up until Ctrl-C.
Example:
  trickle demo --people 100
`,
  'merge-service': `Usage: trickle merge-service

Runs the merge service, configured by environment (MERGE_TENANT_URL, TRICKLE_TOKEN_SECRET,
MERGE_STORE, MERGE_SMTP_URL, the management and login clients, TRICKLE_PRODUCTS; see
merge-service/README.md). SIGTERM or Ctrl-C stops it.
Example:
  MERGE_TENANT_URL=https://TENANT.eu.auth0.com TRICKLE_TOKEN_SECRET=… trickle merge-service
`,
  import: `Usage: trickle import [--config trickle.json] --out DIR|s3://BUCKET/PREFIX [--state URL] [--dry-run] [--budget N] [--replica ID] [--retry-failed]

Registers the export's files (by content and run, never by name) in the state database and runs
the tenant's import jobs: at most 2 in flight, leases shared by every replica, rate-limit-aware
polling, retries. Safe to kill and start again. --dry-run registers and plans without calling the
tenant; --budget N stops after N Management API requests (exit 3); --replica names this runner;
--retry-failed retries the files that failed. --upsert is refused (it would rewrite the metadata
of users the tenant already has).
Example:
  trickle import --config trickle.json --out export/
  trickle import --config trickle.json --out s3://my-bucket/trickle/export --replica pod-1
${CONTRACT}`,
  backfill: `Usage: trickle backfill [--config trickle.json] [--state URL] [--via db|api]

Writes auth0|<person id> into the accounts the imported users own (one joined UPDATE per product,
where the configuration says: columns.auth0_user_id or the side table), only where the account has
no Auth0 id yet and still belongs to the record's person. --via api uses each product's
PUT /trickle/accounts/<id>/auth0-id instead (products[].api). Exit 1 on conflicts.
Example:
  trickle backfill --config trickle.json
${CONTRACT}`,
  notify: `Usage: trickle notify [--config trickle.json] --out DIR|s3://BUCKET/PREFIX [--state URL] [--dry-run]

People imported without a legacy password they can use (several accounts and none whose product
verified the address, or no password anywhere; export lists them in notify.ndjson) are told: the
tenant mails each a password change (POST /dbconnections/change_password) once their import file
is done. Each address once (state table notify_sent): run it again after a crash or a later
import. notify.clientId names the application the mail is sent for; notify.ratePerSecond
(default 2) bounds the pace. --dry-run counts without sending.
Example:
  trickle notify --config trickle.json --out export/
${CONTRACT}`,
  'product-api': `Usage: trickle product-api [--config trickle.json] [--host 127.0.0.1] [--port 8480] [--tls-cert F --tls-key F]

Serves the product contract (docs/product-api.md) for every product of trickle.json from its
declared table and columns: GET /<product>/trickle/accounts?email=…, PUT and DELETE
/<product>/trickle/accounts/<id>/auth0-id (compare and set). Set each product's api.url to
https://HOST/<product>. Each product's api.token (at least 32 characters, its own) is the only
key to its accounts. Listens on loopback unless --host (or productApi.host) says otherwise, and
then only with TLS. productApi.ratePerSecond (default 1000 per product), productApi.connections
(default 16 per database). GET /healthz, GET /metrics (Prometheus: counts by product, route and
status). SIGTERM or Ctrl-C stops it after the requests in flight.
Example:
  trickle product-api --config trickle.json
  trickle product-api --config trickle.json --host 0.0.0.0 --port 8443 --tls-cert cert.pem --tls-key key.pem
`,
  check: `Usage: trickle check [--config trickle.json]

Validates the configuration (unknown keys are refused with the nearest known one), connects to
every product database and the state database, and reports per product: the table and columns
it reads, where it writes the person id and the Auth0 id, the schema changes trickle would make
(only the side table trickle_person_link, with "link": "table"), how rows are ordered, and
whether they really come in canonical address order (every row is read; nothing is written).
Example:
  trickle check --config trickle.json
  trickle check --config trickle.json | jq 'select(.product)'
${CONTRACT}`,
  prelink: `Usage: trickle prelink [--config trickle.json]

Gives every person one id across the product databases: accounts whose canonical addresses
(the core's normalize_email) are equal are one person. The id is written into the column
columns.person_id, or with "link": "table" into trickle_person_link (created if missing).
Every product is read through once first: a missing column or an out-of-order product stops it
before anything is written. Idempotent.
Example:
  trickle prelink --config trickle.json
${CONTRACT}`,
  export: `Usage: trickle export [--config trickle.json] --out DIR

Streams everyone none of whose accounts holds an Auth0 id into DIR: users-00001.json … (at most
500 000 bytes each), rejects.ndjson (one line per person left out, with code and reason) and
manifest.json. On an error the files of this run are removed and no manifest is written.
Example:
  trickle export --config trickle.json --out export/
${CONTRACT}`,
  verify: `Usage: trickle verify [--config trickle.json] [--out DIR|s3://BUCKET/PREFIX] [--strict]

Reconciles the products with the tenant; only reports. Exit 1 when anyone is missing,
duplicated or mislinked. With --out DIR (the export directory), people missing because export
rejected them (listed in DIR/rejects.ndjson with a reason) are reported apart as
"explained_rejects" and do not fail it; --strict counts them as missing.
Example:
  trickle verify --config trickle.json --out export/
  trickle verify --config trickle.json | head -1
${CONTRACT}`,
  'deploy-config': `Usage: trickle deploy-config [--config trickle.json] [--out config.json] [--pipeline action|rules]

Writes auth0-deploy-cli's config file from trickle.json, so every setting lives in one place:
  AUTH0_DOMAIN, AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET   from tenant.url, clientId, clientSecret
                                                       (left out when absent: deploy-cli then reads
                                                       them from the environment)
  AUTH0_INCLUDED_ONLY    actions, triggers, databases (--pipeline rules: rules, rulesConfigs,
                         databases, for dist/auth0-rules)
  AUTH0_KEYWORD_REPLACE_MAPPINGS
    TRICKLE_PRODUCTS         JSON text of [{name, url, token}] from each product's api.url/api.token
    TRICKLE_MERGE_URL        deploy.mergeUrl
    TRICKLE_TOKEN_SECRET     deploy.tokenSecret, or the environment variable TRICKLE_TOKEN_SECRET
    TRICKLE_CONNECTION       deploy.connection (default trickle)
    TRICKLE_CLIENTS          deploy.clients: the applications the connection is enabled for
    TRICKLE_LOOKUP_TIMEOUT_MS  deploy.lookupTimeoutMs (default 4000)
    TRICKLE_ACTION_SECRETS   the Action's secrets: the settings above that are set, and
                             TRICKLE_FANOUT_BUDGET_MS when deploy.fanoutBudgetMs is
The file holds secrets and is written readable by its owner only; nothing is written on error.
Then: a0deploy import --input_file dist/auth0 --config_file config.json
Errors: [deploy.*] with the setting named; exit 2.
Example:
  trickle deploy-config --config trickle.json --out config.json
  trickle deploy-config --config trickle.json --pipeline rules --out config-rules.json
`,
  sim: `Usage: trickle sim [--people N] [--social-people N] [--port P] [--seed S] [--rules] [--write-config trickle.json] [--monitor URL]

Starts the simulated tenant, its three products (paste, collect, transfer; SQLite) and a mail
catcher on localhost, prints every URL and every credential and id the bulk configuration needs
(tenant URL, clientId, clientSecret, connectionId, each product's database, password format, API
URL and token), and runs until Ctrl-C. --write-config F writes that configuration, ready to use.
--monitor URL (a running \`trickle monitor\`, e.g. http://127.0.0.1:9464) streams the tenant's log
to URL/log-stream and has the Action send its log lines to URL/events, with the bearer token
TRICKLE_MONITOR_TOKEN from the environment when set.
The login page also offers Continue with Google, Apple and Slack, each a local OpenID provider
holding the people's social accounts (some people have one); --social-people N (default 0) adds
people whose accounts are social-only or spread over products (password in one, Slack in another).
Example:
  trickle sim --people 500 --write-config trickle.json &
  trickle check --config trickle.json && trickle prelink --config trickle.json
`,
  monitor: `Usage: trickle monitor [--port 9464]

Runs the monitor: POST /events takes trickle's log lines (NDJSON or a JSON array; what the Action
sends when TRICKLE_EVENTS_URL is set), POST /log-stream takes the tenant's log stream in Auth0's
custom-webhook format, GET /metrics serves Prometheus metrics, GET /dashboard the charts of the
migration (POST /progress {total, lazy, imported, backfilled, remaining} sets its progress figures).
Alerting rules: monitor/alerts.yml.
Environment: TRICKLE_MONITOR_TOKEN (bearer token the ingest endpoints require; unset: none),
TRICKLE_MONITOR_PRODUCTS (comma-separated product names for the product label; unset: the first
20 seen), TRICKLE_MONITOR_HOST (listen address, default 127.0.0.1).
Example:
  TRICKLE_MONITOR_TOKEN=s3cret trickle monitor --port 9464
`,
  console: `Usage: trickle console [--config trickle.json] [--port 9470]

Runs the support console: staff sign in through the tenant (OpenID Connect, code flow with PKCE)
with the console's own application (support.clientId; its callback is <publicUrl>/callback), find
a person by address, tenant user id or person id, and apply fixes; every fix needs a reason and
is written to the append-only audit table (support.audit, default sqlite:trickle-audit.sqlite).
Only support.staff (addresses the tenant verified, or user ids) or support.roles found in the ID
token claim support.roleClaim get in. Sessions last support.sessionTtlSeconds (default 1800).
Environment: TRICKLE_CONSOLE_CLIENT_SECRET (the application's secret), TRICKLE_CONSOLE_SESSION_SECRET
(at least 32 characters; signs the session cookies). See docs/support.md.
Example:
  TRICKLE_CONSOLE_SESSION_SECRET=$(openssl rand -hex 32) trickle console --config trickle.json
`,
  support: `Usage: trickle support find QUERY [--config trickle.json]
       trickle support FIX --user ID --reason TEXT [--ticket T] [--account product:id] [--as WHO] [--config F] [--audit URL]
       trickle support audit [--user ID] [--config F] [--audit URL]

The console's operations without a browser. QUERY is an address (its canonical form), a tenant
user id (auth0|…) or a person id. FIX is one of:
  fanout        tell every proven account whose product has not acknowledged it the Auth0 id
  clear-merge   drop a stuck merge (outstanding token, attempts): the next login asks again
  withdraw      --account product:id: the product forgets the Auth0 id, the account loses its proof
  link          --account product:id --ticket T: record a support proof for an unproven account
  reset         the password stops working; the tenant mails a reset link to the stored address
  block, unblock
Every fix needs --reason and who makes it (--as, or TRICKLE_SUPPORT_ACTOR), and is written to the
audit table (support.audit in trickle.json, or --audit) before and after it acts.
Resending a merge mail is not available: the merge service mails only the browser that asked.
Exit 0 done, 1 not found or only partly done, 2 refused (nothing changed). See docs/support.md.
Example:
  trickle support find ann@example.com --config trickle.json
  trickle support fanout --user 'auth0|person-42' --reason 'paste was down' --ticket SUP-12 --as me@corp.example
`,
  finish: `Usage: trickle finish [--config trickle.json] [--out dist/auth0-finished] [--input dist/auth0] [--force]

Once the bulk phase is done (prelink, export, import, backfill), runs verify; when nobody is
missing, duplicated or mislinked, writes the post-migration deploy directory:
  database-connections/   the connection with import mode off, no custom database, no scripts
  actions/, triggers/     the post-login Action, unchanged and still bound: it tells products
                          that were down the Auth0 id later, and still asks people whose
                          accounts await proof to merge them
Deploy it with the same config.json:
  a0deploy import --input_file dist/auth0-finished --config_file config.json
Refuses with the list of people and exit 1 ([finish.people_missing]) otherwise, or while imported
people's own accounts hold no Auth0 id yet ([finish.not_backfilled]: run trickle backfill);
--force writes the directory anyway and says so. Nothing is written on error.
Example:
  trickle finish --config trickle.json --out dist/auth0-finished
`
};

/**
 * Every command, declared once: what it does (the global help's line), the options it takes
 * (parsed with node:util parseArgs, types from OPTION_TYPES; another command's option is refused
 * with the nearest one) and its own help (COMMAND_HELP, whose first line is its usage).
 */
const COMMANDS = {
  sim: { summary: 'start the local simulator (tenant, products, mail, merge service)', options: ['people', 'social-people', 'port', 'seed', 'rules', 'write-config', 'monitor'] },
  demo: { summary: 'drive a scripted migration through the simulator', options: ['people'] },
  check: { summary: 'validate the configuration, inspect every database, report what would be read and written', options: ['config'] },
  prelink: { summary: 'one id per person across the product databases', options: ['config'] },
  export: { summary: 'people without an Auth0 id → import files of at most 500 000 bytes (a folder or S3)', options: ['config', 'out'] },
  import: { summary: 'run the tenant\'s import jobs over an export, shared by replicas', options: ['config', 'out', 'state', 'dry-run', 'upsert', 'budget', 'replica', 'lease-ms', 'retry-failed'] },
  backfill: { summary: 'write auth0|<person id> into the accounts imported users own', options: ['config', 'state', 'via'] },
  notify: { summary: 'have the tenant mail a password change to imported people without a usable password', options: ['config', 'out', 'state', 'dry-run'] },
  verify: { summary: 'reconcile products and tenant (reports only); exit 1 when anyone is missing, duplicated, mislinked or not backfilled', options: ['config', 'out', 'strict'] },
  'deploy-config': { summary: 'auth0-deploy-cli\'s config.json (credentials, keyword mappings) from trickle.json', options: ['config', 'out', 'pipeline'] },
  finish: { summary: 'after the bulk phase: verify, then write the post-migration deploy directory', options: ['config', 'out', 'input', 'force'] },
  'product-api': { summary: 'serve docs/product-api.md for every product from its declared table', options: ['config', 'host', 'port', 'tls-cert', 'tls-key'] },
  'merge-service': { summary: 'run the merge service (configured by environment, see merge-service/README.md)', options: [] },
  monitor: { summary: 'collect trickle\'s events and the tenant\'s log stream; Prometheus metrics and the dashboard', options: ['port', 'dashboard'] },
  console: { summary: 'the support console (staff sign in through the tenant)', options: ['config', 'port'] },
  support: { summary: 'the console\'s operations from the command line', options: null }
};
const COMMAND_OPTIONS = Object.fromEntries(Object.entries(COMMANDS).filter(([, c]) => c.options).map(([k, c]) => [k, c.options]));
const OPTION_TYPES = {
  people: 'string', port: 'string', seed: 'string', rules: 'boolean', config: 'string', out: 'string', state: 'string', 'dry-run': 'boolean', upsert: 'boolean',
  budget: 'string', replica: 'string', 'lease-ms': 'string', via: 'string', input: 'string', force: 'boolean', pipeline: 'string', 'retry-failed': 'boolean',
  strict: 'boolean', host: 'string', 'tls-cert': 'string', 'tls-key': 'string', 'write-config': 'string', monitor: 'string', 'social-people': 'string', dashboard: 'boolean'
};

/** The global help, from the declarations: each command's usage line and what it does. */
const HELP = `trickle — move the users of legacy products into one Auth0 tenant

Usage:
${Object.entries(COMMANDS).map(([name, c]) => {
    const usage = (COMMAND_HELP[name] || `Usage: trickle ${name}`).split('\n')[0].replace(/^Usage: /, '');
    return `  ${usage}\n      ${c.summary}`;
  }).join('\n')}
  trickle --help

Every command takes --help (its options, what it does, examples). Exit codes: 0 done; 1 findings a
person must look at (verify: someone missing, duplicated, mislinked or not backfilled; backfill:
conflicts; import: failed files); 2 refused before anything was written (usage, configuration,
schema, unreachable database, out-of-order stream; stderr says trickle <command>: [code] and names
the product, key or column); 3 import stopped at its budget; 130 interrupted. Without a terminal,
stdout holds JSON lines only, the last one the summary.
`;

let current = null;
/** A usage error: `trickle <command>: [code] message`, where to look, exit 2. */
function fail(message, code = 'usage.invalid') {
  process.stderr.write(`trickle${current ? ` ${current}` : ''}: [${code}] ${message}\n(trickle ${current || ''}${current ? ' ' : ''}--help shows the usage)\n`);
  process.exit(2);
}

async function main(argv) {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (command === 'support') return supportCommand(rest);
  if (!COMMAND_OPTIONS[command]) {
    const near = require('../cli/config').nearest(command, [...Object.keys(COMMAND_OPTIONS), 'support']);
    fail(`unknown command ${JSON.stringify(command)}${near ? ` (did you mean ${near}?)` : ''}`, 'usage.unknown_command');
  }
  current = command;
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { ...Object.fromEntries(COMMAND_OPTIONS[command].map((o) => [o, { type: OPTION_TYPES[o] }])), help: { type: 'boolean', short: 'h' } },
      strict: true
    }));
  } catch (e) {
    const m = /^Unknown option '(-{1,2}[^']+)'/.exec(e.message);
    if (!m) fail(e.message.replace(/\. To specify a positional argument.*$/s, ''), 'usage.invalid');
    const near = require('../cli/config').nearest(m[1].replace(/^-+/, ''), [...COMMAND_OPTIONS[command], 'help']);
    fail(`${m[1]} is not an option of ${command}${near ? ` (did you mean --${near}?)` : ''}; it takes ${COMMAND_OPTIONS[command].map((o) => `--${o}`).join(' ') || 'no options'}`, 'usage.unknown_option');
  }
  if (values.help) {
    process.stdout.write(COMMAND_HELP[command] || HELP);
    return 0;
  }
  const int = (name, dflt, min, max) => {
    if (values[name] === undefined) return dflt;
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min || n > max) fail(`--${name} must be a whole number from ${min} to ${max}`);
    return n;
  };
  if (command === 'sim') {
    const { startSim } = require('../sim');
    const monitor = values.monitor === undefined ? null : values.monitor.replace(/\/+$/, '');
    if (monitor !== null && !/^https?:\/\/[^/]/.test(monitor)) fail('--monitor must be the monitor\'s http(s) URL');
    const token = process.env.TRICKLE_MONITOR_TOKEN || undefined;
    const sim = await startSim({
      https: true, people: int('people', 200, 1, 1000000), socialPeople: int('social-people', 0, 0, 100000), port: int('port', 0, 0, 65535), seed: int('seed', 1, 0, 2 ** 31), pipeline: values.rules ? 'rules' : 'action',
      ...(monitor ? { logStreamUrl: `${monitor}/log-stream`, logStreamToken: token, deploySettings: { eventsUrl: `${monitor}/events`, eventsToken: token } } : {})
    });
    const bulkCfg = sim.bulkConfig({ deploy: true });
    const d = bulkCfg.deploy;
    process.stdout.write(`trickle simulator is running (${sim.people.length} people, pipeline: ${values.rules ? 'legacy Rules' : 'Action'})\n`);
    for (const [k, v] of Object.entries(sim.urls)) process.stdout.write(`  ${k.padEnd(9)} ${v}\n`);
    process.stdout.write(`  dashboard ${sim.tenant.url}/_sim\n  sample person: ${sim.people[0].email} / ${sim.people[0].accounts[0].password}\n`
      + `Management API (bulk commands, deploy-config, a0deploy): tenant.url ${bulkCfg.tenant.url} (domain ${sim.tenant.domain}), clientId ${bulkCfg.tenant.clientId}, clientSecret ${bulkCfg.tenant.clientSecret}, connectionId ${bulkCfg.tenant.connectionId}\n`
      + `Deploy (trickle.json "deploy"): mergeUrl ${d.mergeUrl}, tokenSecret ${d.tokenSecret}, clients ${JSON.stringify(d.clients)} (the application "Demo app", client id trickle-demo), connection ${d.connection}\n`
      + `  the tenant's certificate is self-signed; trust it in every shell that talks to it (deploy-cli, the bulk commands):\n  export NODE_EXTRA_CA_CERTS=${sim.tenant.caFile}\n`);
    for (const p of bulkCfg.products) process.stdout.write(`  product ${p.name.padEnd(9)} db ${p.db}  format ${p.format}  api ${p.api.url} token ${p.api.token}\n`);
    for (const [strategy, idp] of Object.entries(sim.idps || {})) {
      const holder = [...sim.people, ...sim.socialPeople].find((x) => (x.identities || []).some((i) => i.provider === strategy));
      const i = holder && holder.identities.find((x) => x.provider === strategy);
      process.stdout.write(`  social ${strategy.padEnd(18)} ${idp.issuer}${i ? `  sample account: ${i.login} / ${i.password}` : ''}\n`);
    }
    process.stdout.write(`  state     ${bulkCfg.state}\n  merge token secret ${sim.tokenSecret}\n`);
    if (values['write-config']) {
      require('fs').writeFileSync(values['write-config'], JSON.stringify(bulkCfg, null, 2) + '\n', { mode: 0o600 });
      process.stdout.write(`wrote ${values['write-config']}: trickle check|prelink|export|import|backfill|verify|deploy-config --config ${values['write-config']}\n`);
    }
    process.stdout.write('Press Ctrl-C to stop (the databases are removed then).\n');
    const stop = () => sim.close().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    return null;
  }
  if (['prelink', 'export', 'import', 'backfill', 'verify', 'check', 'notify'].includes(command)) return bulkGuarded(command, values, int);
  if (command === 'deploy-config' || command === 'finish') return deployCommand(command, values);
  if (command === 'merge-service') {
    const { startMergeService, configFromEnv } = require('../merge-service/server');
    let service;
    try {
      service = await startMergeService(configFromEnv());
    } catch (e) {
      fail(e.message);
    }
    process.stdout.write(`trickle merge service listening on ${service.url} (public URL ${service.publicUrl})\n`);
    const stop = () => service.close().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    return null;
  }
  if (command === 'product-api') {
    const { startProductApi } = require('../product-api/server');
    let api;
    try {
      const cfg = require('../cli/config').loadConfig(values.config || 'trickle.json');
      if (Boolean(values['tls-cert']) !== Boolean(values['tls-key'])) throw Object.assign(new Error('--tls-cert and --tls-key go together'), { code: 'product_api.tls' });
      api = await startProductApi(cfg, {
        host: values.host, port: values.port === undefined ? undefined : int('port', 8480, 0, 65535),
        tls: values['tls-cert'] ? { cert: values['tls-cert'], key: values['tls-key'] } : undefined
      });
    } catch (e) {
      process.stderr.write(`trickle product-api: [${e.code || 'product_api.failed'}] ${e.message}\n`);
      return 2;
    }
    if (process.stdout.isTTY) {
      process.stdout.write(`trickle product API on ${api.url}; set each product's api.url to:\n${Object.entries(api.products).map(([n, u]) => `  ${n.padEnd(12)} ${u}\n`).join('')}`
        + `health ${api.url}/healthz, metrics ${api.url}/metrics. Ctrl-C stops it (requests in flight finish).\n`);
    }
    const stop = () => api.close().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    return null;
  }
  if (command === 'monitor') {
    const { startMonitor, configFromEnv } = require('../monitor/server');
    let monitor;
    try {
      monitor = await startMonitor({ ...configFromEnv(), port: int('port', 9464, 0, 65535) });
    } catch (e) {
      fail(e.message);
    }
    process.stdout.write(`trickle monitor listening on ${monitor.url} (POST /events, POST /log-stream, POST /progress, GET /metrics, dashboard ${monitor.url}/dashboard)\n`);
    const stop = () => monitor.close().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    return null;
  }
  if (command === 'console') {
    const { startConsole } = require('../console/server');
    const { consoleOptions } = require('../console/config');
    let service;
    try {
      const cfg = require('../cli/config').loadConfig(values.config || 'trickle.json');
      service = await startConsole(consoleOptions(cfg, process.env, values.port === undefined ? {} : { port: int('port', 9470, 0, 65535) }));
    } catch (e) {
      process.stderr.write(`trickle console: [${e.code || 'console.failed'}] ${e.message}\n`);
      return 2;
    }
    process.stdout.write(`trickle support console on ${service.url} (public URL ${service.publicUrl}; register ${service.redirectUri} as the application's callback)\n`);
    const stop = () => service.close().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    return null;
  }
  if (command === 'demo') {
    const { runDemo } = require('../sim/demo');
    const r = await runDemo({ people: int('people', 60, 10, 100000), keepOpen: !!process.stdout.isTTY });
    return r.failed === 0 ? 0 : 1;
  }
  return 2;
}

/** `trickle support …`: the console's operations from the command line. */
async function supportCommand(args) {
  const { supportService, FIXES } = require('../console/support');
  const { openAudit } = require('../console/audit');
  const { consoleOptions } = require('../console/config');
  const refuse = (code, message) => { process.stderr.write(`trickle support: [${code}] ${message}\n`); return 2; };
  let parsed;
  try {
    parsed = parseArgs({
      args, allowPositionals: true, strict: true,
      options: { config: { type: 'string' }, user: { type: 'string' }, reason: { type: 'string' }, ticket: { type: 'string' }, account: { type: 'string' }, as: { type: 'string' }, audit: { type: 'string' }, help: { type: 'boolean', short: 'h' } }
    });
  } catch (e) {
    return refuse('usage', e.message);
  }
  const { values: v, positionals: [op, ...more] } = parsed;
  if (v.help || !op) { process.stdout.write(COMMAND_HELP.support); return v.help ? 0 : 2; }
  if (op !== 'find' && op !== 'audit' && !FIXES[op]) return refuse(op === 'resend-merge-mail' ? 'support.not_available' : 'support.unknown_fix', op === 'resend-merge-mail' ? 'the merge service mails only the browser session that asked; use clear-merge: the next login sends a fresh mail' : `unknown operation ${JSON.stringify(op)}: find, audit, ${Object.keys(FIXES).join(', ')}`);
  let opts;
  let audit = null;
  try {
    opts = consoleOptions(require('../cli/config').loadConfig(v.config || 'trickle.json'), process.env, v.audit ? { audit: v.audit } : {});
    if (op !== 'find') audit = await openAudit(opts.audit);
  } catch (e) {
    return refuse(e.code || 'config.failed', e.message);
  }
  const out = (obj) => process.stdout.write(JSON.stringify(obj, null, process.stdout.isTTY ? 2 : 0) + '\n');
  try {
    if (op === 'audit') { out({ audit: await audit.list({ userId: v.user, limit: 200 }) }); return 0; }
    const service = supportService({ tenant: opts.tenant, products: opts.products, state: opts.state, audit });
    if (op === 'find') {
      if (more.length !== 1) return refuse('support.query_required', 'trickle support find QUERY (an address, a tenant user id or a person id)');
      const found = await service.find(more[0]);
      out(found);
      return found.people.length ? 0 : 1;
    }
    const actor = v.as || process.env.TRICKLE_SUPPORT_ACTOR;
    const r = await service.fix({ action: op, userId: v.user, target: v.account, reason: v.reason, ticket: v.ticket, actor });
    out({ fix: op, user: v.user, ...r });
    return r.outcome === 'done' || r.outcome === 'nothing_to_do' ? 0 : 1;
  } catch (e) {
    if (e.code === 'support.no_such_user') { process.stderr.write(`trickle support: [${e.code}] ${e.message}\n`); return 1; }
    return refuse(e.code || 'support.failed', e.message);
  } finally {
    if (audit) await audit.close();
  }
}

/** JSON log lines, unless a person is watching a terminal. */
const log = (entry) => { if (!process.stdout.isTTY) process.stdout.write(JSON.stringify({ at: new Date().toISOString(), ...entry }) + '\n'); };

/**
 * The import's progress: on a terminal, a bar over every registered person (jobs in flight count
 * by their percentage_done) with an ETA from this run's pace, and a line while another replica
 * holds the job slots; without one, an NDJSON progress line.
 */
function progressBar(c, started, start, extra = {}) {
  const w = extra.waiting;
  if (!process.stdout.isTTY) return log({ event: 'progress', ...c, this_run: extra.this_run });
  const total = c.people || 1;
  const done = Math.min(total, c.peopleProgress);
  const rate = (done - start.peopleProgress) / Math.max(1, (Date.now() - started) / 1000);
  const eta = rate > 0 ? Math.round((total - done) / rate) : null;
  const fmt = (s) => (s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`);
  const width = 30;
  const filled = Math.round((width * done) / total);
  const line = w
    ? `waiting for a job slot: ${w.holders.join(', ')} hold${w.holders.length === 1 ? 's' : ''} both until ${new Date(w.until).toISOString().slice(11, 19)}; ${c.ready} files ready, ${done}/${total} people`
    : `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${((100 * done) / total).toFixed(1)}% ${done}/${total} people, ${c.done} files done, ${c.submitted + c.submitting} in flight${c.failed ? `, ${c.failed} failed` : ''}${eta === null ? '' : `, ETA ${fmt(eta)}`}`;
  process.stdout.write(`\r${line.slice(0, (process.stdout.columns || 120) - 1).padEnd(Math.min(118, (process.stdout.columns || 120) - 1))}`);
}

/** A setting that cannot work: said on stderr with its name, exit 2. */
function configError(setting, message) {
  process.stderr.write(`trickle: ${message}\n  (setting: ${setting})\n`);
  if (!process.stdout.isTTY) log({ event: 'config_error', setting, message });
  return 2;
}

/** The one summary of a command: one JSON line without a terminal, readable on one. */
function summary(obj, text) {
  if (process.stdout.isTTY) process.stdout.write(text !== undefined ? text : JSON.stringify(obj, null, 2) + '\n');
  else process.stdout.write(JSON.stringify(obj) + '\n');
}

/** Runs a bulk command; refusals (config.*, schema.*, db.*, stream.*) print their code and exit 2. */
async function bulkGuarded(command, values, int) {
  if (['prelink', 'export', 'verify', 'check'].includes(command)) {
    process.once('SIGINT', () => {
      summary({ summary: command, ok: false, interrupted: true }, `\ntrickle ${command}: interrupted\n`);
      process.exit(130);
    });
  }
  try {
    return await bulk(command, values, int);
  } catch (e) {
    if (!e || typeof e.code !== 'string' || !/^[a-z0-9_]+\.[a-z0-9_.]+$/.test(e.code)) throw e;
    process.stderr.write(`trickle ${command}: [${e.code}] ${e.message.replace(`${e.code}: `, '')}\n`);
    // Refused before anything was read or written: 2; a step that failed on the way: 1.
    if (!/^(config|schema|db|stream)\./.test(e.code)) return 1;
    if (!process.stdout.isTTY) process.stdout.write(JSON.stringify({ summary: command, ok: false, error: { code: e.code, message: e.message, ...(e.detail || {}) } }) + '\n');
    return 2;
  }
}

async function bulk(command, values, int) {
  const { loadConfig } = require('../cli/config');
  const cfg = loadConfig(values.config || 'trickle.json');
  const state = values.state || cfg.state || 'sqlite:trickle-state.sqlite';
  const tenant = cfg.tenant || {};
  if (command === 'check') return check(cfg, state);
  if (command === 'prelink') {
    // On a terminal, one line that says where it is; the NDJSON log has prelink_progress lines.
    const progress = (x) => { if (process.stderr.isTTY) process.stderr.write(`\rprelink: ${x.phase} ${x.accounts}${x.of ? ` of ${x.of}` : ''} accounts`.padEnd(60)); };
    const r = await require('../cli/bulk').prelink(cfg, { log, progress });
    if (process.stderr.isTTY) process.stderr.write('\n');
    summary({ summary: 'prelink', ok: true, ...r, conflicts: r.conflicts.length, conflict_list: r.conflicts.slice(0, 50) });
    return 0;
  }
  if (command === 'export') {
    if (!values.out) fail('export needs --out DIR');
    const m = await require('../cli/bulk').exportPeople(cfg, values.out, { log, state });
    summary({ summary: 'export', ok: true, read: m.read, exported: m.exported, rejected: m.rejected, already_linked: m.already_linked, already_imported: m.already_imported,
      without_password: m.without_password, forced_reset: m.forced_reset, to_notify: m.to_notify, files: m.files.length, bytes: m.bytes });
    return 0;
  }
  if (command === 'import' || command === 'backfill' || command === 'notify') await stateDatabase(state);
  if (command === 'import') {
    if (!values.out) fail('import needs --out DIR or s3://bucket/prefix (the export)');
    for (const k of ['url', 'clientId', 'clientSecret', 'connectionId']) if (!tenant[k]) return configError(`tenant.${k}`, `configuration: tenant.${k} is required for import`);
    const { register, openState, runImport } = require('../cli/import');
    const { tenantBase, TenantConfigError } = require('../cli/tenant-client');
    try {
      tenantBase(tenant.url);
    } catch (e) {
      return configError(e.setting, e.message);
    }
    let reg;
    const db = await openState(state);
    try {
      reg = await register(db, values.out, { cfg, log });
    } finally {
      await db.close();
    }
    const { skipped, ...registered } = reg;
    log({ event: 'registered', ...registered, skipped: skipped.length });
    // Ctrl-C: stop claiming, give up the leases (the jobs run on at the tenant), summarise.
    const ac = new AbortController();
    const onSignal = () => ac.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let r;
    try {
      r = await runImport({ state, tenant, cfg, source: { run: reg.run, location: reg.location }, upsert: !!values.upsert, dryRun: !!values['dry-run'], retryFailed: !!values['retry-failed'],
        budget: values.budget === undefined ? Infinity : int('budget', 0, 0, 1e9), replica: values.replica, leaseMs: int('lease-ms', 30000, 1000, 3600000), log, progress: progressBar, signal: ac.signal });
    } catch (e) {
      if (e instanceof TenantConfigError) return configError(e.setting, e.message);
      throw e;
    } finally {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    }
    if (process.stdout.isTTY) process.stdout.write('\n');
    const registration = { run: reg.run, location: reg.location, files: reg.files, added: reg.added, already_registered: skipped.length,
      already_registered_by_status: skipped.reduce((m, k) => ({ ...m, [k.status]: (m[k.status] || 0) + 1 }), {}) };
    process.stdout.write(JSON.stringify({ summary: 'import', registration, ...r }) + '\n');
    if (r.error) {
      process.stderr.write(`trickle import: [${r.error.code.split(':')[0]}] ${r.error.message}\n  fix the setting ${r.error.setting} and run import again; nothing is lost\n`);
      return 2;
    }
    if (r.stopped === 'interrupted') return 130;
    if (r.failed_files.length && process.stderr.isTTY) for (const f of r.failed_files) process.stderr.write(`failed ${f.file} (run ${f.run}): ${f.reason}\n`);
    return r.stopped ? 3 : r.files.failed ? 1 : 0;
  }
  if (command === 'notify') {
    if (!values.out) fail('notify needs --out DIR or s3://bucket/prefix (the export)');
    const ac = new AbortController();
    process.once('SIGINT', () => ac.abort());
    const r = await require('../cli/notify').notify(cfg, values.out, { state, dryRun: !!values['dry-run'], log, signal: ac.signal });
    summary({ summary: 'notify', ok: !r.failed, ...r });
    return r.interrupted ? 130 : r.failed ? 1 : 0;
  }
  if (command === 'backfill') {
    const via = values.via || 'db';
    if (!['db', 'api'].includes(via)) fail('--via must be db or api');
    const rc = require('../cli/reconcile');
    // One joined UPDATE per product, whatever its schema (cli/reconcile.js backfill).
    const r = via === 'api' ? await rc.backfillViaApi(cfg, { state, log }) : await rc.backfill(cfg, { state, log });
    if (r.failed) {
      summary({ summary: 'backfill', ok: false, via, ...r });
      return 1;
    }
    summary({ summary: 'backfill', ok: !(r.skipped_files.length || r.conflicts.length), ...r });
    // Files whose people could not be told apart, or accounts claimed twice: a person must look.
    return r.skipped_files.length || r.conflicts.length ? 1 : 0;
  }
  const r = await require('../cli/reconcile').verify(cfg, tenant);
  const ex = await require('../cli/bulk').explainRejects(r, values.out, { strict: !!values.strict, cfg });
  const lazyWaiting = r.awaiting_proof.filter((a) => a.via === 'lazy').length;
  const failing = ex.missing.length || r.duplicated.length || r.mislinked.length || r.not_backfilled.length;
  const counts = { summary: 'verify', ok: !failing, people: r.people, tenant_users: r.tenant_users, missing: ex.missing.length, explained_rejects: ex.explained.length, strict: !!values.strict,
    duplicated: r.duplicated.length, imported: r.imported, lazy: r.lazy, social: r.social, clean: r.clean, awaiting_proof: r.awaiting_proof.length, awaiting_proof_lazy: lazyWaiting, mislinked: r.mislinked.length, not_backfilled: r.not_backfilled.length,
    ...(r.not_backfilled.length ? { next_step: 'trickle backfill' } : {}) };
  if (!process.stdout.isTTY) {
    for (const m of ex.missing) log({ event: 'missing', ...m });
    for (const m of ex.explained) log({ event: 'explained_reject', ...m });
    for (const d of r.duplicated) log({ event: 'duplicated', ...d });
    for (const a of r.awaiting_proof) log({ event: 'awaiting_proof', ...a });
    for (const m of r.mislinked) log({ event: 'mislinked', ...m });
    for (const m of r.not_backfilled) log({ event: 'not_backfilled', ...m });
    summary(counts);
    return failing ? 1 : 0;
  }
  process.stdout.write(`people in the products: ${r.people}\nusers in the tenant:    ${r.tenant_users}\nmissing:                ${ex.missing.length}\n`
    + `explained rejects:      ${ex.explained.length}${values.strict ? ' (counted as missing: --strict)' : ''}\nduplicated:             ${r.duplicated.length}\n`
    + `present, imported:      ${r.imported}\npresent, lazy flow:     ${r.lazy}\nevery account linked:   ${r.clean}\n`
    + `accounts awaiting proof: ${r.awaiting_proof.length} (${lazyWaiting} through the lazy flow)\nmislinked accounts:     ${r.mislinked.length}\n`
    + `not backfilled:         ${r.not_backfilled.length}${r.not_backfilled.length ? ' (imported people whose own accounts hold no Auth0 id yet: run trickle backfill)' : ''}\n`);
  for (const m of ex.missing.slice(0, 20)) process.stdout.write(`  missing ${m.email}${m.reason ? ` (${m.reason})` : ''}\n`);
  for (const m of ex.explained.slice(0, 20)) process.stdout.write(`  rejected by export ${m.email}: [${m.code}] ${m.reason}\n`);
  for (const d of r.duplicated.slice(0, 20)) process.stdout.write(`  duplicated ${d.email}\n`);
  for (const a of r.awaiting_proof.slice(0, 20)) process.stdout.write(`  awaiting proof ${a.email} (${a.via}): ${a.accounts.join(', ')}\n`);
  for (const m of r.mislinked.slice(0, 20)) process.stdout.write(`  mislinked ${m.account} holds ${m.auth0_user_id}, the tenant user is ${m.tenant_user_id}\n`);
  return failing ? 1 : 0;
}

/** The state database, created when it does not exist (db.unreachable when its server does not answer). */
async function stateDatabase(state) {
  const { ensureDatabase } = require('../lib/db');
  const { TrickleError, redact } = require('../cli/config');
  try {
    if (await ensureDatabase(state)) log({ event: 'state_created', state: redact(state) });
  } catch (e) {
    throw new TrickleError('db.unreachable', `the state database ${redact(state)} cannot be reached or created: ${e.message}`);
  }
}

/** `trickle check`: what every product would be read from and written to, and the order, read through. */
async function check(cfg, state) {
  const products = require('../cli/products');
  const { redact } = require('../cli/config');
  const report = [];
  for (const p of cfg.products) {
    const db = await products.openProduct(p);
    let info;
    try {
      info = await products.inspectProduct(db, p);
    } finally {
      await db.close();
    }
    report.push({ product: p.name, db: redact(p.db), ...info });
  }
  // Every row, read through in order: an out-of-order product stops here, as it would prelink.
  const counts = await products.checkOrder(cfg.products);
  const warnings = [];
  for (const r of report) {
    r.accounts = counts[r.product];
    if (!r.order.binary) warnings.push(`product ${JSON.stringify(r.product)}: ${r.order.by} has collation ${r.order.collation}, not a binary one; the order was right this time, but a binary collation (utf8mb4_bin, "C") keeps it so`);
    if (r.legacy) warnings.push(`product ${JSON.stringify(r.product)}: no "table"/"columns" declared, the old default (table accounts with the simulator's columns) is used`);
  }
  let stateInfo;
  try {
    const { ensureDatabase } = require('../lib/db');
    stateInfo = { state: redact(state), created: await ensureDatabase(state) };
  } catch (e) {
    const { TrickleError } = require('../cli/config');
    throw new TrickleError('db.unreachable', `the state database ${redact(state)} cannot be reached or created: ${e.message}`);
  }
  if (!process.stdout.isTTY) {
    for (const r of report) log({ event: 'product', ...r });
    summary({ summary: 'check', ok: true, products: report.length, accounts: report.reduce((n, r) => n + r.accounts, 0), ...stateInfo, warnings });
    return 0;
  }
  for (const r of report) {
    process.stdout.write(`${r.product} (${r.db}): ${r.accounts} accounts in ${r.table}, passwords as ${r.format}\n  reads   ${Object.entries(r.reads).map(([k, v]) => `${k}=${v}`).join(', ')}\n`
      + `  writes  person id → ${r.writes.person_id}, Auth0 id → ${r.writes.auth0_user_id}\n  order   ${r.order.by} (${r.order.collation || 'collation unknown'}): in order\n`
      + `  schema changes: ${r.schema_changes.length ? r.schema_changes.join('; ') : 'none'}\n`
      + `  product API look-up: ${r.lookup.by}, served by ${r.lookup.index}\n`);
  }
  process.stdout.write(`state ${stateInfo.state}${stateInfo.created ? ' (created)' : ''}\n${warnings.map((w) => `warning: ${w}\n`).join('')}`);
  return 0;
}

/** deploy-config and finish: refusals carry a stable code, and nothing is written on one. */
async function deployCommand(command, values) {
  const path = require('path');
  const { loadConfig } = require('../cli/products');
  const deploy = require('../cli/deploy');
  const refuse = (code, message, exit = 2) => {
    process.stderr.write(`trickle ${command}: [${code}] ${message}\n`);
    return exit;
  };
  let cfg;
  try {
    cfg = loadConfig(values.config || 'trickle.json');
  } catch (e) {
    return refuse('deploy.config', e.message);
  }
  if (command === 'deploy-config') {
    const out = values.out || 'config.json';
    try {
      const config = deploy.deployConfig(cfg, { pipeline: values.pipeline || 'action' });
      deploy.writeSecretFile(out, JSON.stringify(config, null, 2) + '\n');
      const m = config.AUTH0_KEYWORD_REPLACE_MAPPINGS;
      log({ event: 'deploy-config', out, included: config.AUTH0_INCLUDED_ONLY, secrets: m.TRICKLE_ACTION_SECRETS.map((x) => x.name), clients: m.TRICKLE_CLIENTS,
        credentials: ['AUTH0_DOMAIN', 'AUTH0_CLIENT_ID', 'AUTH0_CLIENT_SECRET'].filter((k) => config[k]) });
      const next = `a0deploy import --input_file ${values.pipeline === 'rules' ? 'dist/auth0-rules' : 'dist/auth0'} --config_file ${out}`;
      summary({ summary: 'deploy-config', ok: true, out, next }, `wrote ${out}; deploy with: ${next}\n`);
      return 0;
    } catch (e) {
      if (e instanceof deploy.DeployError) return refuse(e.code, e.message);
      throw e;
    }
  }
  const dist = path.join(__dirname, '..', 'dist');
  const input = values.input || path.join(dist, 'auth0');
  const out = values.out || path.join(dist, 'auth0-finished');
  try {
    const { report, verify } = await deploy.finish(cfg, { input, out, force: !!values.force });
    if (report.forced) {
      const line = { event: 'finish.forced', missing: report.missing, duplicated: report.duplicated, mislinked: report.mislinked };
      process.stderr.write(`trickle finish: --force: writing the finished directory although ${report.missing} people are missing, ${report.duplicated} duplicated, ${report.mislinked} mislinked\n`);
      log(line);
    }
    summary({ summary: 'finish', ok: true, out, ...report, next: `a0deploy import --input_file ${out} --config_file config.json` },
      `verify: ${verify.people} people, ${verify.tenant_users} tenant users, ${report.missing} missing; ${report.awaiting_proof} with accounts awaiting proof (the Action stays bound for them)\n`
      + `wrote ${out}; deploy with: a0deploy import --input_file ${out} --config_file config.json\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof deploy.DeployError)) throw e;
    if (e.code === 'finish.not_backfilled') {
      for (const x of e.detail.not_backfilled.slice(0, 50)) process.stderr.write(`  not backfilled ${x.email}: ${x.accounts.join(', ')}\n`);
      return refuse(e.code, `${e.message}; nothing written`, 1);
    }
    if (e.code === 'finish.people_missing') {
      const d = e.detail;
      const list = (items, line) => {
        for (const x of items.slice(0, 200)) process.stderr.write(line(x) + '\n');
        if (items.length > 200) process.stderr.write(`  … and ${items.length - 200} more (trickle verify lists them)\n`);
      };
      list(d.missing, (m) => `  missing ${m.email}${m.reason ? ` (${m.reason})` : ''}`);
      list(d.duplicated, (x) => `  duplicated ${x.email}`);
      list(d.mislinked, (x) => `  mislinked ${x.account} holds ${x.auth0_user_id}, the tenant user is ${x.tenant_user_id}`);
      return refuse(e.code, `${e.message}; nothing written`, 1);
    }
    return refuse(e.code, e.message);
  }
}

// A reader that went away (trickle verify | head) ends the command quietly, not with a trace.
process.stdout.on('error', (e) => { if (e.code === 'EPIPE') process.exit(0); throw e; });

main(process.argv.slice(2)).then((code) => { if (code !== null) process.exitCode = code; }, (e) => {
  const code = e && typeof e.code === 'string' && /^[a-z0-9_]+\.[a-z0-9_.]+$/.test(e.code) ? e.code
    : e && e.constructor && e.constructor.name === 'StorageError' ? 'storage.unreachable' : `${current || 'trickle'}.failed`;
  process.stderr.write(`trickle${current ? ` ${current}` : ''}: [${code}] ${String(e && e.message).replace(`${code}: `, '')}\n`);
  process.exit(1);
});
