// Shared set-up for the bulk tests: a simulator whose product databases the CLI reads.
'use strict';
const { signedInTo } = require('./sim-http');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const os = require('os');
const { startSim } = require('../../../sim');
const { spawn } = require('child_process');
const { FORMATS } = require('../../../sim/seed');
const { openDb } = require('../../../lib/db');

const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'trickle.js');

async function bulkSim({ people = 1000, importRate = 2000, plan = 'enterprise', stateUrl, socialPeople = 0 } = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-bulk-'));
  const sim = await startSim({ people, dataDir, importRate, plan, socialPeople });
  const cfg = {
    products: ['paste', 'collect', 'transfer'].map((name) => ({ name, db: `sqlite:${path.join(dataDir, `${name}.sqlite`)}`, format: FORMATS[name].adapter })),
    state: stateUrl || `sqlite:${path.join(dataDir, 'state.sqlite')}`,
    tenant: { url: sim.tenant.url, clientId: 'trickle-m2m', clientSecret: 'm2m-secret', connectionId: 'con_trickle' }
  };
  const configFile = path.join(dataDir, 'trickle.json');
  fs.writeFileSync(configFile, JSON.stringify(cfg, null, 2));
  return {
    sim, cfg, configFile, dataDir, out: path.join(dataDir, 'export'),
    close: async () => { await sim.close(); fs.rmSync(dataDir, { recursive: true, force: true }); }
  };
}

/** Runs the CLI as a child process without blocking this process (it serves the simulator). */
function cli(args, { killAfterMs, env } = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env: { ...process.env, ...env } } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = killAfterMs ? setTimeout(() => child.kill('SIGKILL'), killAfterMs) : null;
    child.on('exit', (code, signal) => { if (timer) clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

/** The JSON summary a CLI command wrote last (after its JSON log lines): one line, or pretty-printed. */
/** Runs a `trickle` command that must succeed; its output is in the failure message. */
async function cliOk(args) {
  const r = await cli(args);
  assert.equal(r.code, 0, `${args[0]}: ${r.stdout.slice(-2000)} ${r.stderr}`);
  return r;
}

function summaryOf(stdout) {
  const pretty = stdout.lastIndexOf('{\n  "summary"');
  const line = stdout.lastIndexOf('{"summary"');
  return line > pretty ? JSON.parse(stdout.slice(line).split('\n')[0]) : JSON.parse(stdout.slice(pretty));
}

/**
 * Every account the export files list, as `product/id` → `{auth0, owned}`: the Auth0 id its
 * record's user would get, and whether the record gives it a proof (the imported user owns it).
 */
function exportedAccounts(dir) {
  const out = new Map();
  for (const name of fs.readdirSync(dir).filter((n) => /^users-\d+\.json$/.test(n))) {
    for (const r of JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8'))) {
      for (const a of r.app_metadata.trickle.accounts) out.set(`${a.product}/${a.id}`, { auth0: `auth0|${r.user_id}`, owned: !!a.proof, email: r.email });
    }
  }
  return out;
}

/** Every account of the configured products, as `product/id` → its auth0_user_id (or null). */
async function accountLinks(cfg) {
  const out = new Map();
  for (const p of cfg.products) {
    const db = await openDb(p.db);
    for (const r of await db.all('SELECT id, auth0_user_id FROM accounts')) out.set(`${p.name}/${r.id}`, r.auth0_user_id || null);
    await db.close();
  }
  return out;
}

/**
 * Checks what backfill wrote against the export: every owned account holds its user's id, no
 * account without a proof holds one. Returns the counts.
 */
async function assertOwnedOnly(assert, cfg, dir) {
  const links = await accountLinks(cfg);
  let owned = 0;
  let unowned = 0;
  for (const [key, a] of exportedAccounts(dir)) {
    if (a.owned) { owned++; assert.equal(links.get(key), a.auth0, `${key} is owned and holds its user's id`); } else { unowned++; assert.equal(links.get(key), null, `${key} has no proof and holds no id`); }
  }
  return { owned, unowned };
}

module.exports = { bulkSim, cli, cliOk, summaryOf, exportedAccounts, accountLinks, assertOwnedOnly, signIn: signedInTo, BIN };
