// Deploying with auth0-deploy-cli: `trickle deploy-config` turns trickle.json into deploy-cli's
// config.json (credentials and the keyword mappings that dist/auth0 and dist/auth0-rules use), and
// `trickle finish` writes the post-migration deploy directory once verify finds nobody missing.
'use strict';
const fs = require('fs');
const path = require('path');
const layout = require('../rules/layout');

/** A refusal with a stable code; nothing has been written when one is thrown. */
class DeployError extends Error {
  constructor(code, message, detail) {
    super(message);
    this.code = code;
    if (detail) this.detail = detail;
  }
}

const isHttpUrl = (v) => {
  try { return ['http:', 'https:'].includes(new URL(v).protocol); } catch (_) { return false; }
};

function whole(value, name, min, max, dflt) {
  if (value === undefined || value === null) return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new DeployError('deploy.number', `deploy.${name} must be a whole number of milliseconds from ${min} to ${max}`);
  return n;
}

/**
 * The settings the deployed artefacts need, read from trickle.json (`cfg`) and, for the merge
 * secret only, the environment. Throws DeployError naming the first missing or wrong setting.
 */
function deploySettings(cfg, env = process.env) {
  const d = cfg.deploy && typeof cfg.deploy === 'object' ? cfg.deploy : {};
  const products = (cfg.products || []).map((p, i) => {
    const api = p.api && typeof p.api === 'object' ? p.api : { url: p.url, token: p.token };
    if (!api.url) throw new DeployError('deploy.product_api', `products[${i}] (${p.name}) needs api.url: the product API the login script and the Action call (docs/product-api.md)`);
    if (!isHttpUrl(api.url)) throw new DeployError('deploy.product_api', `products[${i}] (${p.name}): api.url must be an http(s) URL`);
    if (typeof api.token !== 'string' || !api.token) throw new DeployError('deploy.product_token', `products[${i}] (${p.name}) needs api.token: the bearer token its product API accepts`);
    return { name: p.name, url: api.url, token: api.token };
  });
  if (new Set(products.map((p) => p.name)).size !== products.length) throw new DeployError('deploy.product_names', 'products: every product needs its own name');
  if (!d.mergeUrl) throw new DeployError('deploy.merge_url', 'deploy.mergeUrl is required: the merge service\'s public /merge URL');
  if (!isHttpUrl(d.mergeUrl)) throw new DeployError('deploy.merge_url', 'deploy.mergeUrl must be an http(s) URL');
  const tokenSecret = d.tokenSecret || env.TRICKLE_TOKEN_SECRET;
  if (!tokenSecret) throw new DeployError('deploy.token_secret', 'deploy.tokenSecret (or the environment variable TRICKLE_TOKEN_SECRET) is required: the HS256 secret shared with the merge service');
  if (Buffer.byteLength(String(tokenSecret)) < 32) throw new DeployError('deploy.token_secret', 'the token secret must be at least 32 bytes');
  const clients = d.clients;
  if (!Array.isArray(clients) || !clients.length || clients.some((c) => typeof c !== 'string' || !c)) {
    throw new DeployError('deploy.clients', 'deploy.clients is required: the names of the applications that sign people in through the trickle connection');
  }
  const connection = d.connection === undefined ? 'trickle' : d.connection;
  if (typeof connection !== 'string' || !/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,126}[A-Za-z0-9])?$/.test(connection)) {
    throw new DeployError('deploy.connection', 'deploy.connection must be a connection name (letters, digits, inner dashes)');
  }
  // The monitor (README, Monitoring): optional; the token only with the URL.
  if (d.eventsUrl !== undefined && !isHttpUrl(d.eventsUrl)) throw new DeployError('deploy.events_url', 'deploy.eventsUrl must be an http(s) URL: the monitor\'s /events endpoint');
  const eventsToken = d.eventsToken || env.TRICKLE_EVENTS_TOKEN;
  if (eventsToken !== undefined && (typeof eventsToken !== 'string' || !/^[!-~]+$/.test(eventsToken))) throw new DeployError('deploy.events_token', 'deploy.eventsToken must be a token of printable characters without spaces');
  // Social logins (docs/ownership.md, Social identities): which connections, and the
  // machine-to-machine application the Action links accounts with.
  const social = d.socialConnections;
  if (social !== undefined && (!Array.isArray(social) || social.some((c) => typeof c !== 'string' || !/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,126}[A-Za-z0-9])?$/.test(c)))) {
    throw new DeployError('deploy.social_connections', 'deploy.socialConnections must be a list of connection names, e.g. ["google-oauth2", "apple", "sign-in-with-slack"]');
  }
  let linking;
  if (d.linking !== undefined) {
    const l = d.linking && typeof d.linking === 'object' ? d.linking : {};
    const secret = l.clientSecret || env.TRICKLE_MGMT_CLIENT_SECRET;
    if (typeof l.domain !== 'string' || !l.domain || (/^[a-z]+:/i.test(l.domain) && !isHttpUrl(l.domain))) throw new DeployError('deploy.linking', 'deploy.linking.domain is required: the tenant\'s domain (or https URL) whose Management API links accounts');
    if (typeof l.clientId !== 'string' || !l.clientId) throw new DeployError('deploy.linking', 'deploy.linking.clientId is required: a machine-to-machine application allowed read:users, update:users and update:users_app_metadata');
    if (typeof secret !== 'string' || !secret) throw new DeployError('deploy.linking', 'deploy.linking.clientSecret (or the environment variable TRICKLE_MGMT_CLIENT_SECRET) is required');
    if (l.connectionId !== undefined && (typeof l.connectionId !== 'string' || !/^con_[A-Za-z0-9]+$/.test(l.connectionId))) throw new DeployError('deploy.linking', 'deploy.linking.connectionId must be a connection id (con_…)');
    linking = { domain: l.domain, clientId: l.clientId, clientSecret: secret, connectionId: l.connectionId };
  }
  return {
    social: social === undefined ? undefined : social.join(','), linking,
    eventsUrl: d.eventsUrl, eventsToken: d.eventsUrl === undefined ? undefined : eventsToken,
    products, mergeUrl: d.mergeUrl, tokenSecret: String(tokenSecret), clients: [...new Set(clients)], connection,
    fanoutBudgetMs: whole(d.fanoutBudgetMs, 'fanoutBudgetMs', 50, 15000, undefined),
    lookupTimeoutMs: whole(d.lookupTimeoutMs, 'lookupTimeoutMs', 50, 15000, 4000)
  };
}

/**
 * deploy-cli's config object. `pipeline` is 'action' (dist/auth0) or 'rules' (dist/auth0-rules).
 * Credentials come from `tenant` when it has them; otherwise deploy-cli reads AUTH0_DOMAIN,
 * AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET from the environment.
 */
function deployConfig(cfg, { pipeline = 'action', env = process.env } = {}) {
  if (!layout.INCLUDED[pipeline]) throw new DeployError('deploy.pipeline', '--pipeline must be action or rules');
  const s = deploySettings(cfg, env);
  const productsJson = JSON.stringify(s.products);
  // Only what is set: an Action secret is never sent as a placeholder.
  const secrets = [
    ['TRICKLE_PRODUCTS', productsJson], ['TRICKLE_MERGE_URL', s.mergeUrl], ['TRICKLE_TOKEN_SECRET', s.tokenSecret],
    ['TRICKLE_CONNECTION', s.connection],
    ['TRICKLE_FANOUT_BUDGET_MS', s.fanoutBudgetMs === undefined ? undefined : String(s.fanoutBudgetMs)],
    ['TRICKLE_EVENTS_URL', s.eventsUrl], ['TRICKLE_EVENTS_TOKEN', s.eventsToken],
    ['TRICKLE_SOCIAL_CONNECTIONS', s.social],
    ['TRICKLE_MGMT_DOMAIN', s.linking && s.linking.domain], ['TRICKLE_MGMT_CLIENT_ID', s.linking && s.linking.clientId],
    ['TRICKLE_MGMT_CLIENT_SECRET', s.linking && s.linking.clientSecret], ['TRICKLE_CONNECTION_ID', s.linking && s.linking.connectionId]
  ].filter(([, value]) => value !== undefined).map(([name, value]) => ({ name, value }));
  const out = {};
  const tenant = cfg.tenant || {};
  if (tenant.url) {
    if (!isHttpUrl(tenant.url)) throw new DeployError('deploy.tenant_url', 'tenant.url must be an http(s) URL');
    out.AUTH0_DOMAIN = new URL(tenant.url).host;
  }
  if (tenant.clientId) out.AUTH0_CLIENT_ID = tenant.clientId;
  if (tenant.clientSecret) out.AUTH0_CLIENT_SECRET = tenant.clientSecret;
  Object.assign(out, {
    AUTH0_ALLOW_DELETE: false,
    AUTH0_INCLUDED_ONLY: layout.INCLUDED[pipeline],
    AUTH0_KEYWORD_REPLACE_MAPPINGS: {
      TRICKLE_ACTION_SECRETS: secrets,
      TRICKLE_CONNECTION: s.connection,
      TRICKLE_CLIENTS: s.clients,
      TRICKLE_PRODUCTS: productsJson,
      TRICKLE_LOOKUP_TIMEOUT_MS: String(s.lookupTimeoutMs),
      TRICKLE_MERGE_URL: s.mergeUrl,
      TRICKLE_TOKEN_SECRET: s.tokenSecret,
      // The login scripts' monitor (always mapped: an unmapped keyword would deploy literally).
      TRICKLE_EVENTS_URL: s.eventsUrl || '',
      TRICKLE_EVENTS_TOKEN: (s.eventsUrl && s.eventsToken) || ''
    }
  });
  return out;
}

/** Writes a file all at once (a temporary file renamed), readable by its owner only. */
function writeSecretFile(file, text) {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/**
 * Writes the post-migration deploy directory into `out` from the built directory `input`
 * (dist/auth0): the Action and its binding unchanged, the connection with import mode off and
 * no scripts. Written beside `out` and renamed, so a failure leaves nothing half-written.
 */
function writeFinished(input, out, report, { signup = false } = {}) {
  const code = path.join(input, 'actions', layout.ACTION, 'code.js');
  if (!fs.existsSync(code)) throw new DeployError('finish.no_build', `${code} is missing: run \`npm run build\` (or \`node rules/build.js\`) first`);
  const tmp = `${path.resolve(out)}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const put = (rel, body) => {
    const file = path.join(tmp, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, typeof body === 'string' ? body : JSON.stringify(body, null, 2) + '\n');
  };
  try {
    put(`actions/${layout.ACTION}/code.js`, fs.readFileSync(code, 'utf8'));
    put(`actions/${layout.ACTION}.json`, layout.actionMetadata());
    put('triggers/triggers.json', layout.triggersMetadata());
    put('database-connections/trickle/database.json', layout.finishedDatabase({ signup }));
    // Outside every folder deploy-cli reads: a record of what finish saw.
    put('finish-report.json', report);
    fs.rmSync(out, { recursive: true, force: true });
    fs.renameSync(tmp, out);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * `trickle finish`: verify, then write the finished directory. Refuses (DeployError
 * `finish.people_missing`, with the lists in `detail`) while anyone is missing, duplicated or
 * mislinked, unless `force`.
 */
async function finish(cfg, { input, out, force = false, verify = require('./reconcile').verify } = {}) {
  const tenant = cfg.tenant || {};
  // Public sign-up only when the configuration says so, in so many words.
  const opt = cfg.finish && cfg.finish.signup;
  if (opt !== undefined && typeof opt !== 'boolean') throw new DeployError('finish.signup', 'finish.signup must be true or false');
  const signup = opt === true;
  for (const k of ['url', 'clientId', 'clientSecret']) if (!tenant[k]) throw new DeployError('finish.tenant', `tenant.${k} is required: finish asks the tenant who is there`);
  const r = await verify(cfg, tenant);
  // Backfill before finishing: once the custom database is off, an imported account that was
  // never told its Auth0 id is told only at that person's next login.
  const notBackfilled = r.not_backfilled || [];
  if (notBackfilled.length && !force) {
    throw new DeployError('finish.not_backfilled', `${notBackfilled.length} imported people own accounts that hold no Auth0 id yet: run trickle backfill first (or pass --force)`, { not_backfilled: notBackfilled, verify: r });
  }
  const blockers = { missing: r.missing, duplicated: r.duplicated, mislinked: r.mislinked };
  const blocked = r.missing.length + r.duplicated.length + r.mislinked.length;
  if (blocked && !force) {
    throw new DeployError('finish.people_missing',
      `${r.missing.length} missing, ${r.duplicated.length} duplicated, ${r.mislinked.length} mislinked: finish the bulk import (trickle export, import, backfill) or pass --force`, { ...blockers, verify: r });
  }
  const report = {
    finished_at: new Date().toISOString(), forced: !!((blocked || notBackfilled.length) && force),
    people: r.people, tenant_users: r.tenant_users, imported: r.imported, lazy: r.lazy,
    missing: r.missing.length, duplicated: r.duplicated.length, mislinked: r.mislinked.length,
    awaiting_proof: r.awaiting_proof.length, not_backfilled: notBackfilled.length
  };
  report.signup = signup;
  writeFinished(input, out, report, { signup });
  return { report, verify: r };
}

module.exports = { DeployError, deploySettings, deployConfig, writeSecretFile, writeFinished, finish };
