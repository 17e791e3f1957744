// A deployment whose products hold WordPress, Drupal, Django, Werkzeug, ASP.NET Identity, crypt(3)
// and Firebase hashes: its login script is built for those formats (`rules/build.js --formats`),
// deployed into the simulator by the real auth0-deploy-cli, and each person signs in through the
// hosted login page with the password their framework hashed (tests/fixtures/formats.json, made by
// the frameworks themselves); a wrong password is refused, and nobody is created by it.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { startSim } = require('../../../sim');
const { deployWithCli } = require('../../../sim/deploy');
const { signIn } = require('../support/sim-http');
const h = require('../support/harness');

const ROOT = path.join(__dirname, '..', '..', '..');
const VECTORS = JSON.parse(fs.readFileSync(path.join(ROOT, 'tests/fixtures/formats.json'), 'utf8'));

test('each framework\'s hash signs in through the simulator with a login script built for those formats', { timeout: 600000 }, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-formats-'));
  // One vector per algorithm, the first password of each (the unicode one is the second).
  const people = VECTORS.filter((v, i) => VECTORS.findIndex((c) => c.source === v.source) === i && !/default rounds \(656/.test(v.source));
  const build = spawnSync(process.execPath, [path.join(ROOT, 'rules/build.js'), '--formats', 'wordpress,drupal7,django,werkzeug,aspnet-identity,crypt,firebase-scrypt,ldap', '--out', out], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(build.status, 0, build.stderr + build.stdout);
  const accounts = people.map((v, i) => ({ id: `p${i}`, email: `person${i}@example.com`, email_verified: true, password: v.descriptor, created_at: '2021-01-01T00:00:00Z' }));
  const product = await h.productServer('legacy', accounts);
  const sim = await startSim({ people: 2, deploy: 'none' });
  try {
    const products = JSON.stringify([{ name: 'legacy', url: product.url, token: product.token }]);
    const secrets = (sim.mappings.TRICKLE_ACTION_SECRETS || []).map((s) => (s.name === 'TRICKLE_PRODUCTS' ? { ...s, value: products } : s));
    await deployWithCli({ tenant: sim.tenant, input: path.join(out, 'auth0'), mappings: { ...sim.mappings, TRICKLE_PRODUCTS: products, TRICKLE_ACTION_SECRETS: secrets } });
    const base = sim.tenant.url;
    for (let i = 0; i < people.length; i++) {
      const v = people[i];
      const wrong = await signIn(base, `person${i}@example.com`, v.password + '!');
      assert.equal(wrong.status, 401, `${v.source}: a wrong password is refused`);
      const r = await signIn(base, `person${i}@example.com`, v.password);
      assert.equal(r.status, 302, `${v.source}: ${r.status} ${r.status === 302 ? '' : (await r.text()).slice(0, 300)}`);
      assert.match(r.headers.get('location'), /[?&]code=/, v.source);
    }
    // Every person is now a user of the tenant, with their password (the lazy migration).
    const users = [...sim.tenant.state.users.values()].filter((u) => /^person\d+@example\.com$/.test(u.email));
    assert.equal(users.length, people.length);
    // A second sign-in is answered by the tenant's own store, the product no longer asked.
    const asked = product.state.calls.filter((c) => c.startsWith('GET')).length;
    assert.equal((await signIn(base, 'person0@example.com', people[0].password)).status, 302);
    assert.equal(product.state.calls.filter((c) => c.startsWith('GET')).length, asked);
  } finally {
    await sim.close();
    await product.close();
    fs.rmSync(out, { recursive: true, force: true });
  }
});
