// Deploys a deploy-cli directory (dist/auth0) into a running simulator with the real
// auth0-deploy-cli, run as its own CLI (`a0deploy import`) in a child process, exactly as a user
// deploys to a tenant: client credentials at https://DOMAIN/oauth/token, then the Management API.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFile } = require('child_process');

const DIST = path.join(__dirname, '..', 'dist', 'auth0');
/** The resource types trickle deploys; nothing else in the tenant is touched. */
const INCLUDED_ONLY = ['actions', 'triggers', 'databases', 'rules', 'clients'];

/** The path of the a0deploy command of the installed auth0-deploy-cli. */
function a0deployBin() {
  const pkgFile = require.resolve('auth0-deploy-cli/package.json');
  return path.join(path.dirname(pkgFile), require(pkgFile).bin.a0deploy);
}

/**
 * A copy of `input` the deploy-cli can import as it stands. Until the build writes the deploy
 * metadata itself, this fills two gaps of the older layout, and is a no-op on the newer one:
 * a `triggers/triggers.json` binding each post-login Action (without it an Action is never run),
 * and settings written as `"##KEY##"` (a raw substitution, which breaks the JSON for a value
 * holding quotes such as TRICKLE_PRODUCTS) rewritten as `"@@KEY@@"` (the value JSON-encoded).
 * Also adds `enabled_clients` from `enabledClients` to a database.json that names none.
 */
function stage(input, { enabledClients } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-deploy-'));
  const out = path.join(dir, 'tenant');
  fs.cpSync(input, out, { recursive: true });
  const jsonFiles = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.json')) jsonFiles.push(p);
    }
  };
  walk(out);
  for (const f of jsonFiles) {
    const text = fs.readFileSync(f, 'utf8');
    const fixed = text.replace(/"##([A-Za-z0-9_]+)##"/g, '"@@$1@@"');
    if (fixed !== text) fs.writeFileSync(f, fixed);
  }
  const actionsDir = path.join(out, 'actions');
  if (!fs.existsSync(path.join(out, 'triggers')) && fs.existsSync(actionsDir)) {
    const postLogin = fs.readdirSync(actionsDir).filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(fs.readFileSync(path.join(actionsDir, f), 'utf8')))
      .filter((a) => (a.supported_triggers || []).some((t) => t.id === 'post-login'))
      .map((a) => ({ action_name: a.name, display_name: a.name }));
    fs.mkdirSync(path.join(out, 'triggers'));
    fs.writeFileSync(path.join(out, 'triggers', 'triggers.json'), JSON.stringify({ 'post-login': postLogin }, null, 2));
  }
  const dbDir = path.join(out, 'database-connections');
  for (const name of enabledClients && fs.existsSync(dbDir) ? fs.readdirSync(dbDir) : []) {
    const f = path.join(dbDir, name, 'database.json');
    if (!fs.existsSync(f)) continue;
    const meta = JSON.parse(fs.readFileSync(f, 'utf8'));
    if (meta.enabled_clients === undefined) fs.writeFileSync(f, JSON.stringify({ ...meta, enabled_clients: enabledClients }, null, 2));
  }
  return { dir, input: out };
}

/**
 * Runs `a0deploy import` against the tenant's https listener. `tenant`: a started tenant with
 * `https: true`; `config`: deploy-cli's config (as `trickle deploy-config` writes it), or
 * `configFile`: its config.json; `mappings`: more AUTH0_KEYWORD_REPLACE_MAPPINGS; `input`
 * defaults to dist/auth0. AUTH0_DOMAIN and the credentials are always the tenant's.
 * Resolves `{output}`; rejects with the CLI's output when it exits non-zero.
 */
async function deployWithCli({ tenant, mappings = {}, input = DIST, config: given, configFile, enabledClients = ['trickle-demo'], clientId = 'trickle-m2m', clientSecret = 'm2m-secret', includedOnly = INCLUDED_ONLY, timeoutMs = 120000, stageInput = true, nodeArgs = [] }) {
  if (!tenant.domain || !tenant.caFile) throw new Error('the tenant must listen with https (startTenant({https: true})) for auth0-deploy-cli');
  const staged = stageInput ? stage(input, { enabledClients }) : { dir: fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-deploy-')), input };
  const config = path.join(staged.dir, 'config.json');
  const base = given || (configFile ? JSON.parse(fs.readFileSync(configFile, 'utf8')) : {});
  fs.writeFileSync(config, JSON.stringify({
    AUTH0_INCLUDED_ONLY: includedOnly, AUTH0_ALLOW_DELETE: false, ...base,
    AUTH0_DOMAIN: tenant.domain, AUTH0_CLIENT_ID: clientId, AUTH0_CLIENT_SECRET: clientSecret,
    AUTH0_KEYWORD_REPLACE_MAPPINGS: { ...(base.AUTH0_KEYWORD_REPLACE_MAPPINGS || {}), ...mappings }
  }, null, 2));
  try {
    const output = await new Promise((resolve, reject) => {
      execFile(process.execPath, [...nodeArgs, a0deployBin(), 'import', '--input_file', staged.input, '--config_file', config], {
        env: { ...process.env, NODE_EXTRA_CA_CERTS: tenant.caFile, AUTH0_DEBUG: process.env.AUTH0_DEBUG || 'false', FORCE_COLOR: '0', NO_COLOR: '1' },
        timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024
      }, (e, stdout, stderr) => {
        const text = `${stdout}${stderr}`;
        if (e) reject(Object.assign(new Error(`a0deploy import failed (${e.code ?? e.signal}):\n${text.slice(-4000)}`), { output: text }));
        else resolve(text);
      });
    });
    return { output };
  } finally {
    fs.rmSync(staged.dir, { recursive: true, force: true });
  }
}

module.exports = { deployWithCli, stage, a0deployBin, INCLUDED_ONLY, DIST };
