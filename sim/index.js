// Starts the whole simulator: the mail catcher, three products with their SQLite databases,
// and the tenant running the built artefacts, all on localhost.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { generate, PRODUCTS, FORMATS } = require('./seed');
const { startProduct } = require('./products');
const { startMail } = require('./mail');
const { startTenant } = require('./tenant');
const { simRoutes } = require('./dashboard');
const { startMergeService } = require('../merge-service/server');

/**
 * Starts everything. Options: {people, port, seed, dataDir, pipeline, plan, mergeUrl, resetLimits
 * ({perAddress, perIp, windowMs} for reset requests)}.
 * Returns `{tenant, products, mail, people, urls, bulkConfig, close}`; `bulkConfig()` is a ready
 * trickle.json for the simulated products.
 */
async function startSim(options = {}) {
  const opts = { people: 200, seed: 1, pipeline: 'action', plan: 'enterprise', ...options };
  if (!fs.existsSync(path.join(__dirname, '..', 'dist', 'auth0', 'actions', 'trickle-post-login', 'code.js'))) {
    throw new Error('dist/auth0 is missing: run `npm run build` first');
  }
  const dataDir = opts.dataDir || fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-sim-'));
  fs.mkdirSync(dataDir, { recursive: true });
  const seeded = generate({ people: opts.people, seed: opts.seed });
  const mail = await startMail();
  const products = [];
  for (const name of PRODUCTS) {
    const file = path.join(dataDir, `${name}.sqlite`);
    products.push(await startProduct(name, file, seeded.accounts[name]));
  }
  const productsConfig = JSON.stringify(products.map((p) => ({ name: p.name, url: p.url, token: p.token })));
  const tokenSecret = crypto.randomBytes(32).toString('hex');
  const tenant = await startTenant({
    port: opts.port || 0, pipeline: opts.pipeline, plan: opts.plan, mail, importRate: opts.importRate, jobExpireAfterMs: opts.jobExpireAfterMs, resetLimits: opts.resetLimits,
    routes: (app, tenantState) => simRoutes(app, { tenantState, products, mail }),
    dbConfiguration: { TRICKLE_PRODUCTS: productsConfig, TRICKLE_LOOKUP_TIMEOUT_MS: '2000' },
    actionSecrets: {
      TRICKLE_PRODUCTS: productsConfig, TRICKLE_TOKEN_SECRET: tokenSecret, TRICKLE_FANOUT_BUDGET_MS: '1500',
      TRICKLE_MERGE_URL: 'http://127.0.0.1:9/merge', TRICKLE_CONNECTION: 'trickle'
    }
  });
  // The merge service, as deployed next to a tenant: its own state, the same mail server.
  const merge = await startMergeService({
    tenantUrl: tenant.url, tokenSecret, store: opts.mergeStore || `sqlite:${path.join(dataDir, 'merge.sqlite')}`,
    smtpUrl: `smtp://127.0.0.1:${mail.port}`, managementClientId: 'trickle-m2m', managementClientSecret: 'm2m-secret',
    loginClientId: 'trickle-demo', loginClientSecret: 'demo-app-secret', ...(opts.merge || {})
  });
  tenant.actionSecrets.TRICKLE_MERGE_URL = `${merge.url}/merge`;
  const urls = {
    tenant: tenant.url, login: `${tenant.url}/authorize?client_id=trickle-demo&response_type=code&redirect_uri=${encodeURIComponent(tenant.url + '/app/callback')}&state=demo`,
    mail: `${tenant.url}/_sim/mail`, smtp: `smtp://127.0.0.1:${mail.port}`, merge: merge.url,
    ...Object.fromEntries(products.map((p) => [p.name, p.url]))
  };
  // Everything the bulk commands need to reach this simulator: trickle.json for its products.
  const bulkConfig = () => ({
    products: products.map((p) => ({ name: p.name, db: `sqlite:${path.join(dataDir, `${p.name}.sqlite`)}`, format: FORMATS[p.name].adapter, api: { url: p.url, token: p.token } })),
    state: `sqlite:${path.join(dataDir, 'state.sqlite')}`,
    tenant: { url: tenant.url, clientId: 'trickle-m2m', clientSecret: 'm2m-secret', connectionId: 'con_trickle' }
  });
  return {
    bulkConfig, tenant, merge, products, byName: Object.fromEntries(products.map((p) => [p.name, p])), mail, people: seeded.people, urls, dataDir, tokenSecret,
    close: async () => {
      await merge.close();
      await tenant.close();
      for (const p of products) await p.close();
      await mail.close();
      if (!opts.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    }
  };
}

module.exports = { startSim };
