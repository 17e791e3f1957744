// An account whose product never verified the address is not stranded: the merge service offers
// it by that account's own legacy password (checked by the core against the product's hash), and
// the Action proves it when the signed result comes back. The attacks: a wrong password, a flood
// of guesses (tries limited, counted before checking), an account the page never offered, and a
// person who does not know the password of an account someone else opened with their address.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { startSim } = require('../../../sim');
const { browser, backToTenant, plantAccount, verifiedOf } = require('../../../sim/demo');
const { signIn } = require('../support/sim-http');

/** A person whose only account is verified, and a product where they hold none. */
function loner(sim) {
  const p = sim.people.find((x) => x.accounts.length === 1 && verifiedOf(sim, x.accounts[0]));
  const other = ['paste', 'collect', 'transfer'].find((n) => n !== p.accounts[0].product);
  return { person: p, other };
}

/** Opens the merge page the login redirected to; returns the browser, the csrf and the page. */
async function openMerge(res) {
  const b = browser();
  const page = await b.get(res.headers.get('location'));
  const html = await page.text();
  return { b, html, csrf: b.field(html, 'csrf') };
}

/** Posts the page's continue (skip) form and the signed result back to the tenant's /continue. */
async function continueToTenant(sim, m) {
  const done = await (await m.b.post(`${sim.merge.url}/merge/skip`, { csrf: m.csrf })).text();
  const back = await backToTenant(done);
  assert.ok(back, done.slice(0, 500));
  return back;
}

const auth0IdOf = (sim, product, id) => sim.byName[product].db.prepare('SELECT auth0_user_id FROM accounts WHERE id = ?').get(id).auth0_user_id;
const userOf = (sim, email) => [...sim.tenant.state.users.values()].find((u) => u.email === email);

test('an account its product never verified is brought in by its own password at the merge; a wrong password is refused', async () => {
  const sim = await startSim({ people: 40 });
  try {
    const { person, other } = loner(sim);
    const mine = plantAccount(sim, other, { id: `${other[0]}-old-1`, email: person.email, name: 'Me, long ago', password: 'my-own-old-password-1' });
    const res = await signIn(sim.tenant.url, person.email, person.accounts[0].password);
    assert.equal(res.status, 302);
    assert.ok(res.headers.get('location').startsWith(`${sim.merge.url}/merge`), res.headers.get('location'));
    const m = await openMerge(res);
    // Nothing for the mailbox to prove here: only the password of the other product's account.
    assert.doesNotMatch(m.html, /action="\/merge\/send"/);
    assert.match(m.html, new RegExp(`name="account" value="${other}:${mine.id}"`));
    let r = await m.b.post(`${sim.merge.url}/merge/account`, { csrf: m.csrf, account: `${other}:${mine.id}`, password: 'not-it-at-all' });
    assert.equal(r.status, 401);
    assert.match(await r.text(), /not the password/);
    r = await m.b.post(`${sim.merge.url}/merge/account`, { csrf: m.csrf, account: `${other}:${mine.id}`, password: mine.password });
    assert.equal(r.status, 200);
    assert.match(await r.text(), /comes along/);
    const back = await continueToTenant(sim, m);
    assert.equal(back.status, 302);
    assert.match(back.headers.get('location'), /\/app\/callback\?.*code=/);
    const user = userOf(sim, person.email);
    const acc = user.app_metadata.trickle.accounts.find((a) => a.product === other);
    assert.equal(acc.proof, 'password', JSON.stringify(user.app_metadata.trickle));
    assert.equal(auth0IdOf(sim, other, mine.id), user.user_id, 'the product was told the Auth0 id');
  } finally {
    await sim.close();
  }
});

test('attacks: guesses at an offered account are limited and counted before checking; an account not offered is ignored; someone else\'s account stays theirs', async () => {
  const sim = await startSim({ people: 40 });
  try {
    const { person, other } = loner(sim);
    // An account someone else opened with this person's address: the person cannot know its password.
    const squat = plantAccount(sim, other, { id: `${other[0]}-squat-1`, email: person.email, name: 'Someone else', password: 'squatters-secret-pw-1' });
    const res = await signIn(sim.tenant.url, person.email, person.accounts[0].password);
    const m = await openMerge(res);
    const key = `${other}:${squat.id}`;
    // Five guesses in parallel, then the right password: the sixth try is refused, unchecked.
    const guesses = await Promise.all(Array.from({ length: 5 }, (_, i) => m.b.post(`${sim.merge.url}/merge/account`, { csrf: m.csrf, account: key, password: `guess-${i}` })));
    assert.deepEqual(guesses.map((g) => g.status).sort(), [401, 401, 401, 401, 401]);
    const late = await m.b.post(`${sim.merge.url}/merge/account`, { csrf: m.csrf, account: key, password: squat.password });
    assert.equal(late.status, 429);
    assert.match(await late.text(), /Too many tries/);
    // An account the page never offered (the person's own, already proven; another product's).
    const own = person.accounts[0];
    const r = await m.b.post(`${sim.merge.url}/merge/account`, { csrf: m.csrf, account: `${own.product}:${own.id}`, password: own.password });
    assert.doesNotMatch(await r.text(), /comes along/);
    // Without the csrf token nothing is tried.
    assert.equal((await m.b.post(`${sim.merge.url}/merge/account`, { account: key, password: squat.password })).status, 403);
    const back = await continueToTenant(sim, m);
    assert.equal(back.status, 302);
    const user = userOf(sim, person.email);
    const acc = user.app_metadata.trickle.accounts.find((a) => a.product === other);
    assert.ok(!acc || !acc.proof, JSON.stringify(user.app_metadata.trickle));
    assert.equal(auth0IdOf(sim, other, squat.id), null, 'someone else\'s account is told nothing');
  } finally {
    await sim.close();
  }
});
