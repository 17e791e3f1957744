// Shared set-up for the bulk tests: a simulator whose product databases the CLI reads.
'use strict';
const fs = require('fs');
const path = require('path');
const os = require('os');
const { startSim } = require('../../sim');
const { FORMATS } = require('../../sim/seed');

async function bulkSim({ people = 1000, importRate = 2000, plan = 'enterprise', stateUrl } = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-bulk-'));
  const sim = await startSim({ people, dataDir, importRate, plan });
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

module.exports = { bulkSim };
