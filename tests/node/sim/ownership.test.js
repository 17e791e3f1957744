// The ownership model end to end in the simulator, as people would meet it: a lone account whose
// product never verified the address signs in unverified; when the mailbox owner takes the address
// back by a password reset, the link made by that password is withdrawn from the product.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { startSim } = require('../../../sim');

const { form, signIn } = require('../support/sim-http');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));


async function mailTo(sim, email, since) {
  for (let i = 0; i < 100; i++) {
    const m = sim.mail.messages.slice(since).find((x) => JSON.stringify(x.to || x.envelope || '').includes(email));
    if (m) return m;
    await sleep(50);
  }
  return null;
}

test('the mailbox owner takes the address back: a link made only by a password on an unverified address is withdrawn', async () => {
  const sim = await startSim({ people: 60 });
  try {
    const base = sim.tenant.url;
    const lone = sim.people.find((p) => p.accounts.length === 1 && !sim.byName[p.accounts[0].product].db.prepare('SELECT email_verified FROM accounts WHERE id = ?').get(p.accounts[0].id).email_verified);
    assert.ok(lone, 'the seed has a lone account whose product never verified the address');
    const account = lone.accounts[0];
    const linked = () => sim.byName[account.product].db.prepare('SELECT auth0_user_id FROM accounts WHERE id = ?').get(account.id).auth0_user_id;
    // Whoever knows that account's password signs in: the user is created unverified and the
    // account, proven by its own password, is told the id.
    const first = await signIn(base, lone.email, account.password);
    assert.equal(first.status, 302);
    const user = [...sim.tenant.state.users.values()].find((u) => u.email === lone.email.toLowerCase());
    assert.equal(user.email_verified, false);
    assert.equal(user.app_metadata.trickle.unverified, true);
    assert.equal(linked(), user.user_id);
    // The mailbox owner resets the password (which proves the mailbox) and signs in.
    const since = sim.mail.messages.length;
    assert.equal((await form(`${base}/lo/reset`, { email: lone.email })).status, 200);
    const mail = await mailTo(sim, user.email, since);
    assert.ok(mail, 'the reset mail reached the stored address');
    const link = String(mail.text).match(/https?:\/\/\S+\/lo\/reset\/confirm\?ticket=([0-9a-f]+)/);
    assert.ok(link, mail.text);
    const done = await form(`${base}/lo/reset/confirm`, { ticket: link[1], password: 'the owner is back 42' });
    assert.equal(done.status, 200);
    assert.equal(user.email_verified, true);
    const back = await signIn(base, lone.email, 'the owner is back 42');
    assert.equal(back.status, 302);
    // The password-only link on the unverified address is gone from the product and the record.
    assert.equal(linked(), null, 'the product was told to forget the id');
    const ref = user.app_metadata.trickle.accounts.find((a) => a.id === account.id);
    assert.equal(ref.proof, undefined);
    assert.ok(!ref.fanout);
    assert.ok(!user.app_metadata.trickle.unverified);
    // The old password no longer signs in.
    assert.notEqual((await signIn(base, lone.email, account.password)).status, 302);
  } finally {
    await sim.close();
  }
});
