// Sign-up after finishing (issue 19, finding 1): the finished connection keeps public sign-up
// off unless trickle.json opts in, the simulator refuses a sign-up as Auth0 does, and even with
// sign-up on, a stranger who signs up with a legacy person's address proves nothing and joins
// nobody: the chain's repair records candidates only.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { startSim } = require('../../../sim');
const { socialSignIn } = require('../../../sim/demo');
const layout = require('../../../rules/layout');
const { m2mToken, signIn } = require('../support/sim-http');

let sim;
test.before(async () => { sim = await startSim({ people: 20, socialPeople: 3 }); });
test.after(async () => { if (sim) await sim.close(); });

const json = { 'content-type': 'application/json' };
const signUp = (email, password) => fetch(`${sim.tenant.url}/dbconnections/signup`, { method: 'POST', headers: json, body: JSON.stringify({ client_id: 'trickle-demo', connection: 'trickle', email, password }) });

/** The finished connection's options as deploy-cli sends them (keywords replaced). */
async function deployFinished(signup) {
  const options = layout.finishedDatabase(signup === undefined ? undefined : { signup }).options;
  const token = await m2mToken(sim.tenant.url);
  const r = await fetch(`${sim.tenant.url}/api/v2/connections/con_trickle`, { method: 'PATCH', headers: { ...json, authorization: `Bearer ${token}` }, body: JSON.stringify({ options }) });
  assert.equal(r.status, 200, await r.text());
  return options;
}

/** The id token's claims after a code comes back to the app. */
async function claimsOf(location) {
  const code = new URL(location).searchParams.get('code');
  const r = await fetch(`${sim.tenant.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'trickle-demo', client_secret: 'demo-app-secret', code, redirect_uri: `${sim.tenant.url}/app/callback` }) });
  assert.equal(r.status, 200);
  return JSON.parse(Buffer.from((await r.json()).id_token.split('.')[1], 'base64url').toString());
}

test('after finishing, a sign-up with a Google-only person\'s address is refused; opted in, it proves nothing and never becomes that person', { timeout: 120000 }, async () => {
  const person = sim.socialPeople.find((p) => p.kind === 'social-only' && p.identities[0].provider === 'google-oauth2');
  assert.ok(person, 'a seeded Google-only person');
  const identity = person.identities[0];
  const victimId = `google-oauth2|${identity.subject}`;
  const stored = () => sim.byName[identity.product].db.prepare('SELECT auth0_user_id FROM accounts WHERE id = ?').get(identity.id).auth0_user_id;
  // The victim signed in with Google during the migration: the product was told their user.
  const first = await socialSignIn(sim, 'google-oauth2', identity);
  assert.ok(first.location && /\/app\/callback\?.*code=/.test(first.location), first.error || first.location);
  assert.equal((await claimsOf(first.location)).sub, victimId);
  assert.equal(stored(), victimId);

  // `trickle finish` as a user runs it: sign-up stays off.
  const options = await deployFinished();
  assert.equal(options.disable_signup, true);
  const refused = await signUp(person.email, 'Mallory-pw-123!');
  assert.equal(refused.status, 400);
  assert.equal((await refused.json()).code, 'operation_not_allowed');
  const byAddress = () => [...sim.tenant.state.users.values()].filter((u) => u.email === person.email.toLowerCase());
  assert.deepEqual(byAddress().map((u) => u.user_id), [victimId], 'no user was created');

  // A tenant that opts in (finish.signup: true): the stranger signs up and signs in.
  assert.equal((await deployFinished(true)).disable_signup, false);
  const made = await signUp(person.email, 'Mallory-pw-123!');
  assert.equal(made.status, 200, await made.clone().text());
  const attackerId = `auth0|${(await made.json())._id}`;
  for (let round = 0; round < 2; round++) {
    const r = await signIn(sim.tenant.url, person.email, 'Mallory-pw-123!');
    const location = r.headers.get('location') || '';
    // Sent to the merge service (the victim's mailbox, which the stranger cannot open), or back
    // to the app as the stranger's own user: never as the victim.
    if (location.includes('/app/callback')) assert.equal((await claimsOf(location)).sub, attackerId, `round ${round}`);
    else assert.ok(sim.urls.merge && location.startsWith(sim.urls.merge), `round ${round}: ${r.status} ${location}`);
    const record = sim.tenant.state.users.get(attackerId).app_metadata.trickle;
    assert.ok(record, 'the repair made a record');
    for (const a of record.accounts) {
      assert.equal(a.proof, undefined, `no proof from a repair: ${JSON.stringify(a)}`);
      assert.equal(a.linked, undefined, 'whom the product told is withheld');
    }
  }
  assert.equal(stored(), victimId, 'the product still holds the victim\'s user');
  assert.deepEqual(sim.tenant.state.users.get(victimId).identities.map((i) => i.provider), ['google-oauth2'], 'nobody joined the victim');
  assert.deepEqual(sim.tenant.state.users.get(attackerId).identities.map((i) => i.provider), ['auth0'], 'the stranger joined nobody');
});
