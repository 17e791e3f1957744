// Starts the whole simulator: the mail catcher, three products with their SQLite databases,
// and the tenant running the built artefacts, all on localhost.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { generate, PRODUCTS, FORMATS, attackerAccounts } = require('./seed');
const { startIdps } = require('./idp');
const { startProduct } = require('./products');
const { startMail } = require('./mail');
const { startTenant } = require('./tenant');
const { seedFromDist, boundActions } = require('./tenant/management');
const { deployWithCli } = require('./deploy');
const { deployConfig } = require('../cli/deploy');
const { simRoutes } = require('./dashboard');
const { startMergeService } = require('../merge-service/server');
const { logStream } = require('./logstream');

const DIST = path.join(__dirname, '..', 'dist');

/**
 * Starts everything. Options: {people, port, seed, dataDir, pipeline, plan, mergeUrl, resetLimits
 * ({perAddress, perIp, windowMs} for reset requests), mfa ({perLogin, perUser, refillMs} for wrong
 * one-time codes), deploy, https, logStreamUrl, logStreamToken, deploySettings}.
 * `logStreamUrl` streams the tenant's log there as Auth0's custom-webhook log stream would (a
 * monitor's /log-stream, `logStreamToken` its bearer token), batched in the background;
 * `deploySettings` adds to trickle.json's deploy section (e.g. eventsUrl, eventsToken: the
 * Action then sends its log lines to a monitor's /events).
 * `social` (default true) starts the three social connections' identity providers (sim/idp.js)
 * and enables `google-oauth2`, `apple` and `sign-in-with-slack` on the tenant; `socialPeople`
 * (default 0) adds people with social-only accounts or identities spread over products
 * (sim/seed.js), listed in `socialPeople`, apart from `people`.
 * `deploy` says how the tenant gets trickle's code: `'a0deploy'` (or `true`) deploys dist/auth0
 * with the real auth0-deploy-cli over the Management API (the tenant then also listens with
 * https); `'none'` starts a tenant with nothing deployed (deploy to it yourself, `mappings` has
 * the settings); the default (`'dist'` or `false`) fills the tenant's store from dist/auth0 as a
 * deploy would, without the CLI. Either way the tenant runs what its store holds.
 * Returns `{tenant, products, mail, people, socialPeople, idps, attackers, urls, mappings, deployOutput, bulkConfig, close}`;
 * `attackers` is `{victim, accounts}`: provider accounts (held by the providers) that assert the
 * address of `victim`, a person with a social identity, without being that person (sim/seed.js).
 * `bulkConfig()` is a ready trickle.json for the simulated products.
 */
/** TRICKLE_PRODUCTS of the post-login Action deployed into the tenant, or null. */
function deployedProducts(tenant) {
  for (const a of boundActions(tenant.store)) {
    try {
      const list = JSON.parse(a.secrets.TRICKLE_PRODUCTS);
      if (Array.isArray(list) && list.length) return list;
    } catch (_) { /* not set, or a keyword never replaced */ }
  }
  return null;
}

async function startSim(options = {}) {
  const opts = { people: 200, seed: 1, pipeline: 'action', plan: 'enterprise', ...options };
  const deploy = opts.deploy === true ? 'a0deploy' : opts.deploy === false || opts.deploy === undefined ? 'dist' : opts.deploy;
  if (!['a0deploy', 'dist', 'none'].includes(deploy)) throw new Error(`deploy must be 'a0deploy', 'dist' or 'none', not ${deploy}`);
  if (!fs.existsSync(path.join(DIST, 'auth0', 'actions', 'trickle-post-login', 'code.js'))) {
    throw new Error('dist/auth0 is missing: run `npm run build` first');
  }
  const dataDir = opts.dataDir || fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-sim-'));
  fs.mkdirSync(dataDir, { recursive: true });
  const seeded = generate({ people: opts.people, seed: opts.seed, socialPeople: opts.socialPeople || 0 });
  const mail = await startMail();
  const products = [];
  for (const name of PRODUCTS) {
    const file = path.join(dataDir, `${name}.sqlite`);
    products.push(await startProduct(name, file, seeded.accounts[name]));
  }
  const tokenSecret = crypto.randomBytes(32).toString('hex');
  const stream = opts.logStreamUrl ? logStream(opts.logStreamUrl, { token: opts.logStreamToken }) : null;
  const tenant = await startTenant({
    onEvent: stream ? (e) => stream.push(e) : undefined,
    port: opts.port || 0, pipeline: opts.pipeline, plan: opts.plan, mail, importRate: opts.importRate, jobExpireAfterMs: opts.jobExpireAfterMs, resetLimits: opts.resetLimits, mfa: opts.mfa,
    https: opts.https || deploy !== 'dist', routes: (app, tenantState) => simRoutes(app, { tenantState, products, mail })
  });
  // The merge service, as deployed next to a tenant: its own state, the same mail server.
  const merge = await startMergeService({
    tenantUrl: tenant.url, tokenSecret, store: opts.mergeStore || `sqlite:${path.join(dataDir, 'merge.sqlite')}`,
    smtpUrl: `smtp://127.0.0.1:${mail.port}`, managementClientId: 'trickle-m2m', managementClientSecret: 'm2m-secret',
    loginClientId: 'trickle-demo', loginClientSecret: 'demo-app-secret',
    // The products' APIs, as TRICKLE_PRODUCTS gives them: accounts offered by their own password.
    // Those of the deployed Action once one was deployed into this tenant (a user's own
    // products), the simulated ones before.
    products: () => deployedProducts(tenant) || products.map((p) => ({ name: p.name, url: p.url, token: p.token })), ...(opts.merge || {})
  });
  // The deploy-cli config `trickle deploy-config` would write for this tenant (cli/deploy.js):
  // its keyword mappings become the Action's secrets, the connection's configuration and clients.
  const pipeline = opts.pipeline === 'rules' ? 'rules' : 'action';
  const deployCfg = deployConfig({
    products: products.map((p) => ({ name: p.name, api: { url: p.url, token: p.token } })),
    deploy: {
      mergeUrl: `${merge.url}/merge`, tokenSecret, clients: ['trickle-demo'], fanoutBudgetMs: 1500, lookupTimeoutMs: 2000,
      // The Action links social identities through the tenant's Management API.
      linking: { domain: tenant.url, clientId: 'trickle-m2m', clientSecret: 'm2m-secret' },
      ...(opts.deploySettings || {})
    },
    tenant: tenant.httpsUrl ? { url: tenant.httpsUrl, clientId: 'trickle-m2m', clientSecret: 'm2m-secret' } : {}
  }, { pipeline, env: {} });
  const mappings = deployCfg.AUTH0_KEYWORD_REPLACE_MAPPINGS;
  const input = path.join(DIST, pipeline === 'rules' ? 'auth0-rules' : 'auth0');
  let deployOutput = null;
  let idps = null;
  let attackers = null;
  try {
    if (deploy === 'a0deploy') {
      deployOutput = (await deployWithCli({ tenant, config: deployCfg, input })).output;
    } else if (deploy === 'dist') {
      seedFromDist(tenant.store, path.join(DIST, 'auth0'), { mappings, rulesDir: path.join(DIST, 'auth0-rules') });
    }
    if (opts.social !== false) {
      // The social connections' providers, each with the tenant as its relying party.
      idps = await startIdps(seeded.providerAccounts);
      for (const [strategy, idp] of Object.entries(idps)) {
        const client = { client_id: `tenant-${strategy}`, client_secret: crypto.randomBytes(24).toString('hex') };
        idp.addClient({ ...client, redirect_uris: [tenant.callbackUrl()] });
        tenant.connectSocial(strategy, { issuer: idp.issuer, clientId: client.client_id, clientSecret: client.client_secret, scope: idp.scope, responseMode: idp.responseMode });
      }
      const victim = seeded.people.find((p) => p.identities);
      if (victim) {
        attackers = { victim, accounts: attackerAccounts(victim.email, opts.seed) };
        for (const a of attackers.accounts) idps[a.provider].addAccount(a);
      }
    }
  } catch (e) {
    if (idps) await idps.close();
    await merge.close();
    await tenant.close();
    for (const p of products) await p.close();
    await mail.close();
    throw e;
  }
  const urls = {
    tenant: tenant.url, login: `${tenant.url}/authorize?client_id=trickle-demo&response_type=code&redirect_uri=${encodeURIComponent(tenant.url + '/app/callback')}&state=demo`,
    mail: `${tenant.url}/_sim/mail`, smtp: `smtp://127.0.0.1:${mail.port}`, merge: merge.url,
    ...Object.fromEntries(products.map((p) => [p.name, p.url]))
  };
  // Everything the bulk commands need to reach this simulator: trickle.json for its products.
  // With `deploy: true` (a tenant listening with https), also what `deploy-config` and deploy-cli
  // need: the https URL (deploy-cli speaks only https to a domain), the merge service, the
  // token secret, the application the connection is enabled for, and the linking credentials.
  const bulkConfig = ({ deploy: withDeploy = false } = {}) => {
    const url = withDeploy && tenant.httpsUrl ? tenant.httpsUrl : tenant.url;
    return {
      products: products.map((p) => ({ name: p.name, db: `sqlite:${path.join(dataDir, `${p.name}.sqlite`)}`, format: FORMATS[p.name].adapter, api: { url: p.url, token: p.token } })),
      state: `sqlite:${path.join(dataDir, 'state.sqlite')}`,
      tenant: { url, clientId: 'trickle-m2m', clientSecret: 'm2m-secret', connectionId: 'con_trickle' },
      ...(withDeploy ? {
        deploy: {
          mergeUrl: `${merge.url}/merge`, tokenSecret, clients: ['trickle-demo'], connection: 'trickle',
          // The Action calls the Management API from inside the tenant: the plain listener.
          linking: { domain: tenant.url, clientId: 'trickle-m2m', clientSecret: 'm2m-secret' }
        }
      } : {})
    };
  };
  return {
    bulkConfig, tenant, merge, products, mappings, logStream: stream, deployConfig: deployCfg, deployOutput, byName: Object.fromEntries(products.map((p) => [p.name, p])), mail, people: seeded.people, urls, dataDir, tokenSecret,
    socialPeople: seeded.socialPeople, idps, attackers,
    close: async () => {
      if (idps) await idps.close();
      await merge.close();
      await tenant.close();
      if (stream) await stream.close();
      for (const p of products) await p.close();
      await mail.close();
      if (!opts.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    }
  };
}

module.exports = { startSim };
