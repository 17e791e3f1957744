// What gets deployed, as auth0-deploy-cli's directory loader reads it: the metadata of the three
// deploy directories. Values that differ per tenant are keywords that `trickle deploy-config`
// maps (AUTH0_KEYWORD_REPLACE_MAPPINGS); every one is the `@@KEY@@` form, which inserts the
// JSON-stringified value, so a value holding JSON (TRICKLE_PRODUCTS) or an array (the clients, the
// Action's secrets) can never break the file it sits in. `##KEY##` is never used: it is a raw
// string substitution.
'use strict';

const ACTION = 'trickle-post-login';
const RULE = 'trickle-post-login';

/** The keywords, what each holds, and whether `deploy-config` always maps it. */
const KEYWORDS = {
  TRICKLE_ACTION_SECRETS: 'the Action\'s secrets: [{name, value}], only the settings that are set',
  TRICKLE_CONNECTION: 'the database connection\'s name',
  TRICKLE_CLIENTS: 'names of the applications the connection is enabled for',
  TRICKLE_PRODUCTS: 'JSON text of [{name, url, token}], the login-time product API',
  TRICKLE_LOOKUP_TIMEOUT_MS: 'the login script\'s per-product look-up timeout',
  TRICKLE_MERGE_URL: 'the merge service\'s /merge URL (Rule settings)',
  TRICKLE_TOKEN_SECRET: 'the HS256 secret shared with the merge service (Rule settings)',
  TRICKLE_EVENTS_URL: 'the monitor\'s /events URL the login scripts send their log lines to (empty: none)',
  TRICKLE_EVENTS_TOKEN: 'the bearer token of that URL (empty: none)'
};

const kw = (key) => `@@${key}@@`;

/** The post-login Action: bound to the login flow by triggers/triggers.json. */
const actionMetadata = () => ({
  name: ACTION, code: `./actions/${ACTION}/code.js`, runtime: 'node22', status: 'built',
  supported_triggers: [{ id: 'post-login', version: 'v3' }], dependencies: [],
  // One keyword for the whole array: an Action secret left unmapped would be sent literally
  // (deploy-cli's unresolved-placeholder check skips arrays), so only what is set is listed.
  secrets: kw('TRICKLE_ACTION_SECRETS'),
  deployed: true
});

/**
 * The binding; deploy-cli replaces a trigger's bindings with the ones listed here, so a tenant
 * that binds other post-login Actions lists them here too (see README, Deploy).
 */
const triggersMetadata = () => ({ 'post-login': [{ action_name: ACTION, display_name: ACTION }] });

/** The custom database connection during the migration: import mode, both lazy scripts. */
const lazyDatabase = () => ({
  name: kw('TRICKLE_CONNECTION'), strategy: 'auth0', enabled_clients: kw('TRICKLE_CLIENTS'),
  options: {
    enabledDatabaseCustomization: true, import_mode: true,
    // No public sign-up: the connection has no create script, and a stranger's sign-up must never
    // meet a legacy person's accounts (docs/ownership.md, "Sign-up after finishing").
    disable_signup: true,
    customScripts: { login: './login.js', get_user: './get_user.js' },
    configuration: {
      TRICKLE_PRODUCTS: kw('TRICKLE_PRODUCTS'), TRICKLE_LOOKUP_TIMEOUT_MS: kw('TRICKLE_LOOKUP_TIMEOUT_MS'),
      TRICKLE_EVENTS_URL: kw('TRICKLE_EVENTS_URL'), TRICKLE_EVENTS_TOKEN: kw('TRICKLE_EVENTS_TOKEN')
    }
  }
});

/**
 * The same connection once everyone is in the tenant: Auth0's own store answers every login, so
 * import mode is off, the database is no longer custom and the scripts (and the product tokens
 * in their configuration) are gone. deploy-cli merges a connection's options with the tenant's
 * current ones, so the scripts and configuration are emptied explicitly, not merely left out.
 */
const finishedDatabase = ({ signup = false } = {}) => ({
  name: kw('TRICKLE_CONNECTION'), strategy: 'auth0', enabled_clients: kw('TRICKLE_CLIENTS'),
  // Public sign-up stays off unless the configuration opts in (`finish.signup: true`); even then
  // a sign-up proves no legacy account: the chain's repair records candidates only.
  options: { enabledDatabaseCustomization: false, import_mode: false, disable_signup: !signup, customScripts: {}, configuration: {} }
});

/** The legacy Rule, for tenants that still run Rules: deployed from its own directory only. */
const ruleMetadata = () => ({ name: RULE, script: `./${RULE}.js`, stage: 'login_success', enabled: true, order: 10 });

/** The Rule's settings (Rules read the tenant-wide rules configuration). */
const RULE_SETTINGS = ['TRICKLE_PRODUCTS', 'TRICKLE_MERGE_URL', 'TRICKLE_TOKEN_SECRET', 'TRICKLE_CONNECTION'];
const rulesConfigs = () => Object.fromEntries(RULE_SETTINGS.map((key) => [`rules-configs/${key}.json`, { key, value: kw(key) }]));

/** deploy-cli resource types each directory holds (AUTH0_INCLUDED_ONLY). */
const INCLUDED = {
  action: ['actions', 'triggers', 'databases'],
  rules: ['rules', 'rulesConfigs', 'databases']
};

module.exports = { ACTION, RULE, KEYWORDS, INCLUDED, RULE_SETTINGS, actionMetadata, triggersMetadata, lazyDatabase, finishedDatabase, ruleMetadata, rulesConfigs };
