// The login script's size per build (`node bench/run.js --sizes`, also part of `npm run bench`):
// bcrypt alone, Auth0's eleven algorithms, and every format (the default build), each bundled by
// rules/build.js into a scratch directory, beside Auth0's 100 000-byte limit and the aims. The
// Action's size is the default build's.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..');
const LIMIT = 100000;
const BUILDS = [
  { name: 'bcrypt_only', formats: 'bcrypt', aim: 48000 },
  { name: 'auth0_eleven', formats: 'auth0', aim: 80000 },
  { name: 'everything', formats: null, aim: LIMIT }
];

function sizesBench() {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-sizes-'));
  const result = { limit: LIMIT, login: {} };
  try {
    for (const b of BUILDS) {
      const dist = path.join(out, b.name);
      const args = [path.join(ROOT, 'rules/build.js'), '--out', dist, ...(b.formats ? ['--formats', b.formats] : [])];
      const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`rules/build.js ${args.slice(1).join(' ')} failed:\n${r.stderr}${r.stdout}`);
      const sizes = JSON.parse(fs.readFileSync(path.join(dist, 'auth0', 'sizes.json'), 'utf8'));
      result.login[b.name] = { bytes: sizes.db_login, aim: b.aim, meets_aim: sizes.db_login <= b.aim, formats: sizes.login_formats };
      if (!b.formats) result.action = { bytes: sizes.action, aim: 80000, meets_aim: sizes.action <= 80000 };
      console.log(`  login script, ${b.name.replace('_', ' ')}: ${sizes.db_login} bytes (aim ≤ ${b.aim}, limit ${LIMIT})`);
    }
    console.log(`  Action, every feature: ${result.action.bytes} bytes (aim ≤ 80000, limit ${LIMIT})`);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
  return result;
}

module.exports = { sizesBench };
if (require.main === module) sizesBench();
