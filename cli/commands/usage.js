// What the `trickle` command offers, declared once: each command's summary, options and help text,
// and the global help made from them. bin/trickle.js parses against these; nothing here runs.
'use strict';

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

module.exports = { COMMANDS, COMMAND_HELP, COMMAND_OPTIONS, OPTION_TYPES, HELP };
