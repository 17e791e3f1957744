// Social-only people in the bulk path: exported and imported without any password, counted by
// export and verify, their accounts backfilled with the imported user's id, and their first
// social sign-in joins that imported user instead of making a second one.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { bulkSim, cli, summaryOf } = require('../support/bulk');
const { socialSignIn } = require('../../../sim/demo');

test('a social-only person is imported without a password, counted, backfilled, and their first Google sign-in joins the imported user', async () => {
  const b = await bulkSim({ people: 30, socialPeople: 3 });
  try {
    const { sim } = b;
    const person = sim.socialPeople.find((p) => p.kind === 'social-only' && p.identities[0].provider === 'google-oauth2');
    assert.ok(person, 'a seeded Google-only person');
    const identity = person.identities[0];
    for (const args of [['prelink'], ['export', '--out', b.out], ['import', '--out', b.out], ['backfill']]) {
      const r = await cli([...args, '--config', b.configFile]);
      assert.equal(r.code, 0, `${args[0]}: ${r.stderr.slice(-800)}`);
    }
    const manifest = JSON.parse(fs.readFileSync(path.join(b.out, 'manifest.json'), 'utf8'));
    assert.ok(manifest.without_password >= 1, `export counts the password-less people: ${manifest.without_password}`);
    const records = fs.readdirSync(b.out).filter((n) => /^users-\d+\.json$/.test(n)).flatMap((n) => JSON.parse(fs.readFileSync(path.join(b.out, n), 'utf8')));
    const record = records.find((r) => r.email === person.email.toLowerCase());
    assert.ok(record, 'the social-only person is exported');
    assert.equal(record.password_hash, undefined);
    assert.equal(record.custom_password_hash, undefined);
    const imported = `auth0|${record.user_id}`;
    const told = () => sim.byName[identity.product].db.prepare('SELECT auth0_user_id FROM accounts WHERE id = ?').get(identity.id).auth0_user_id;
    assert.equal(told(), imported, 'backfill told the account the imported user');

    // The first Google sign-in: the identity proves the account, which was told the imported
    // user, whose own record holds it (the import's proof): Google joins that user.
    const r = await socialSignIn(sim, 'google-oauth2', identity);
    assert.ok(r.location && /\/app\/callback\?.*code=/.test(r.location), r.error || r.location);
    const code = new URL(r.location).searchParams.get('code');
    const tokens = await (await fetch(`${sim.tenant.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'trickle-demo', client_secret: 'demo-app-secret', code, redirect_uri: `${sim.tenant.url}/app/callback` }) })).json();
    const sub = JSON.parse(Buffer.from(tokens.id_token.split('.')[1], 'base64url').toString()).sub;
    assert.equal(sub, imported, 'signed in as the imported user');
    const user = sim.tenant.state.users.get(imported);
    assert.ok(user.identities.some((i) => i.provider === 'google-oauth2'), JSON.stringify(user.identities));
    assert.equal([...sim.tenant.state.users.values()].filter((u) => u.user_id === `google-oauth2|${identity.subject}`).length, 0, 'no second user');
    assert.equal(told(), imported);

    const v = await cli(['verify', '--config', b.configFile]);
    assert.equal(v.code, 0, v.stdout.slice(-1500) + v.stderr);
    const summary = summaryOf(v.stdout);
    assert.ok(summary.social >= 1, `verify counts the people with a social identity: ${JSON.stringify(summary).slice(0, 300)}`);
    assert.equal(summary.missing, 0);
  } finally {
    await b.close();
  }
});
