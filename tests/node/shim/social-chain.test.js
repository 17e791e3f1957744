// Social logins through the built post-login Action, against real HTTP product servers: what
// the identity proves, what an address asserted by a provider does not, and that no product is
// ever told an id on the address alone. Linking through the tenant's Management API is driven
// end to end in sim-social-chain.test.js.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../support/harness');

let products;
let config;
test.before(async () => {
  products = {
    paste: await h.productServer('paste', []),
    collect: await h.productServer('collect', [])
  };
  config = {
    TRICKLE_PRODUCTS: JSON.stringify(Object.values(products).map((p) => ({ name: p.name, url: p.url, token: p.token }))),
    TRICKLE_LOOKUP_TIMEOUT_MS: '800',
    TRICKLE_FANOUT_BUDGET_MS: '800',
    TRICKLE_MERGE_URL: 'https://merge.example.test/merge',
    TRICKLE_TOKEN_SECRET: 'test-secret-0123456789-0123456789-abcdef'
  };
});
test.after(async () => { await Promise.all(Object.values(products).map((p) => p.close())); });

function reset(accounts) {
  for (const p of Object.values(products)) {
    p.state.accounts = accounts[p.name] || [];
    p.state.auth0Ids = {};
    p.state.calls = [];
    p.state.identityAnswer = null;
  }
}

function action(secrets = config) {
  const ctr = h.container();
  const exportsOf = h.loadAction('actions/trickle-post-login/code.js', ctr);
  return { run: h.actionRunner(exportsOf, secrets), logs: ctr.logs };
}

/** A social user as the tenant creates it at the first login with that provider. */
function socialUser(connection, sub, email, emailVerified, extra = {}) {
  const provider = connection === 'sign-in-with-slack' ? 'oauth2' : connection;
  const userId = connection === 'sign-in-with-slack' ? `oauth2|sign-in-with-slack|${sub}` : `${connection}|${sub}`;
  return {
    user_id: userId, email, email_verified: emailVerified, app_metadata: {},
    identities: [{ provider, user_id: connection === 'sign-in-with-slack' ? `sign-in-with-slack|${sub}` : sub, connection, isSocial: true }],
    ...extra
  };
}

const lastLog = (logs) => JSON.parse(logs.filter((l) => l.includes('"post-login"')).pop());
const BCRYPT = { algorithm: 'bcrypt', hash: { value: '$2b$04$2SLD2GSVqXu1bzihaHbNXe2S7tEGVjCQtp2uGEDbD30M2QXPjZr2O' } };

test('a Google-only legacy person keeps their account: the identity proves it and the product is told the social user id', async () => {
  reset({ collect: [{ id: 'c5', email: 'gina@example.com', email_verified: true, password: null, identities: [{ provider: 'google-oauth2', subject: '1001' }] }] });
  const a = action();
  const user = socialUser('google-oauth2', '1001', 'gina@example.com', true);
  const res = await a.run('execute', user, { connection: 'google-oauth2' });
  assert.equal(res.threw, null);
  assert.equal(res.redirect, null);
  const rec = user.app_metadata.trickle;
  assert.deepEqual(rec.accounts.map((x) => [x.product, x.id, x.proof, !!x.fanout]), [['collect', 'c5', 'identity', true]]);
  assert.equal(products.collect.state.auth0Ids.c5, 'google-oauth2|1001');
  assert.ok(products.collect.state.calls.includes('GET /trickle/accounts'));
  // The next login asks nobody: the record is there.
  products.collect.state.calls = [];
  const again = await a.run('execute', user, { connection: 'google-oauth2' });
  assert.equal(again.threw, null);
  assert.deepEqual(products.collect.state.calls, []);
});

test('a Slack workspace the attacker controls asserting the victim\'s address links nothing: the victim\'s accounts are candidates, sent to the mailbox proof', async () => {
  reset({ paste: [{ id: 'p1', email: 'victim@corp.example', email_verified: true, password: BCRYPT }] });
  products.paste.state.auth0Ids.p1 = 'auth0|tp_victim';
  const a = action();
  const attacker = socialUser('sign-in-with-slack', 'TATT-UATT', 'victim@corp.example', true);
  const res = await a.run('execute', attacker, { connection: 'sign-in-with-slack', strategy: 'oauth2' });
  assert.equal(res.threw, null);
  assert.equal(res.primaryUser, undefined, 'never joined to the victim');
  assert.ok(res.redirect, 'the mailbox must be proven first');
  const rec = attacker.app_metadata.trickle;
  assert.deepEqual(rec.accounts.map((x) => [x.product, x.id, x.proof || null]), [['paste', 'p1', null]]);
  assert.equal(products.paste.state.auth0Ids.p1, 'auth0|tp_victim', 'the product still holds the victim');
  assert.ok(!JSON.stringify(attacker.app_metadata).includes('tp_victim'), 'the victim\'s id is not written into the stranger\'s user');
  assert.ok(!products.paste.state.calls.some((c) => c.startsWith('PUT')), 'no product told anything');
});

test('a Google account whose address is not verified, or not Google\'s to vouch for, proves nothing by its address', async () => {
  for (const [email, verified] of [['victim@gmail.com', false], ['victim@corp.example', true]]) {
    reset({ paste: [{ id: 'p1', email, email_verified: true, password: BCRYPT }] });
    const a = action();
    const attacker = socialUser('google-oauth2', '666', email, verified);
    const res = await a.run('execute', attacker, { connection: 'google-oauth2' });
    assert.equal(res.threw, null);
    assert.deepEqual(attacker.app_metadata.trickle.accounts.map((x) => x.proof || null), [null], email);
    assert.ok(!products.paste.state.calls.some((c) => c.startsWith('PUT')), email);
  }
});

test('Google vouching for a gmail.com address proves the accounts whose product verified it, never an unverified one', async () => {
  reset({
    paste: [{ id: 'p1', email: 'ann@gmail.com', email_verified: true, password: BCRYPT }],
    collect: [{ id: 'c9', email: 'ann@gmail.com', email_verified: false, password: BCRYPT }]
  });
  const a = action();
  const user = socialUser('google-oauth2', '2002', 'ann@gmail.com', true);
  const res = await a.run('execute', user, { connection: 'google-oauth2' });
  assert.equal(res.threw, null);
  const byId = Object.fromEntries(user.app_metadata.trickle.accounts.map((x) => [x.id, x.proof || null]));
  assert.deepEqual(byId, { p1: 'provider', c9: null });
  // c9 is offered at the merge by its own password only; the person continues without it.
  const claims = h.decodeJwt(res.redirect.query.session_token);
  assert.deepEqual([claims.unproven, claims.passwords], [[], ['collect:c9']]);
  const iat = Math.floor(Date.now() / 1000);
  const back = await a.run('continue', user, { connection: 'google-oauth2', query: { state: 'st-1' }, body: { session_token: h.hs256({ iss: 'trickle-merge', aud: 'trickle', sub: user.user_id, state: 'st-1', jti: claims.jti, outcome: 'skipped', iat, exp: iat + 300 }, config.TRICKLE_TOKEN_SECRET) } });
  assert.equal(back.denied, null);
  assert.equal(products.paste.state.auth0Ids.p1, 'google-oauth2|2002');
  assert.equal(products.collect.state.auth0Ids.c9, undefined);
});

test('an Apple private-relay address matches no legacy account and proves nothing', async () => {
  reset({ paste: [{ id: 'p1', email: 'ann@icloud.com', email_verified: true, password: BCRYPT }] });
  const a = action();
  const user = socialUser('apple', '000123.abc', 'x7f3k2@privaterelay.appleid.com', true);
  const res = await a.run('execute', user, { connection: 'apple' });
  assert.equal(res.threw, null);
  assert.deepEqual(user.app_metadata.trickle.accounts, []);
  assert.ok(!products.paste.state.calls.some((c) => c.startsWith('PUT')));
});

test('an account a product returns for the identity without holding it is not proven', async () => {
  reset({ collect: [{ id: 'c5', email: 'gina@example.com', email_verified: true, identities: [{ provider: 'google-oauth2', subject: '1001' }] }] });
  products.collect.state.identityAnswer = [{ id: 'c5', email: 'gina@example.com', email_verified: true, identities: [{ provider: 'google-oauth2', subject: '1001' }] }];
  const a = action();
  const other = socialUser('google-oauth2', '9999', 'other@example.com', true);
  const res = await a.run('execute', other, { connection: 'google-oauth2' });
  assert.equal(res.threw, null);
  assert.deepEqual(other.app_metadata.trickle.accounts, []);
  assert.ok(lastLog(a.logs).events.some((e) => e.code === 'identity.mismatch'));
  assert.equal(products.collect.state.auth0Ids.c5, undefined);
});

test('a proven account another user was told waits for linking: without the Management API nothing is told and the product keeps its id', async () => {
  reset({ collect: [{ id: 'c5', email: 'gina@example.com', email_verified: true, identities: [{ provider: 'google-oauth2', subject: '1001' }] }] });
  products.collect.state.auth0Ids.c5 = 'auth0|tp_gina';
  const a = action();
  const user = socialUser('google-oauth2', '1001', 'gina@example.com', true);
  const res = await a.run('execute', user, { connection: 'google-oauth2' });
  assert.equal(res.threw, null);
  assert.equal(res.primaryUser, undefined);
  const log = lastLog(a.logs);
  assert.equal(log.link.code, 'link.unconfigured');
  assert.equal(products.collect.state.auth0Ids.c5, 'auth0|tp_gina');
  assert.ok(!products.collect.state.calls.some((c) => c.startsWith('PUT')));
});

test('logins of connections not configured as social pass untouched', async () => {
  reset({ collect: [{ id: 'c5', email: 'gina@example.com', email_verified: true, identities: [{ provider: 'github', subject: '1' }] }] });
  const a = action();
  const user = socialUser('github', '1', 'gina@example.com', true);
  const res = await a.run('execute', user, { connection: 'github' });
  assert.equal(res.threw, null);
  assert.equal(user.app_metadata.trickle, undefined);
  assert.deepEqual(products.collect.state.calls, []);
});

test('a user of another identity with a Google identity linked is not resolved through it: its profile\'s address is not Google\'s word', async () => {
  reset({ paste: [{ id: 'p1', email: 'victim@gmail.com', email_verified: true, password: BCRYPT }] });
  products.paste.state.auth0Ids.p1 = 'auth0|tp_victim';
  const a = action();
  // A partner-IdP user whose root profile claims the victim's gmail address, with the attacker's
  // own Google account linked to it by some other tool.
  const user = {
    user_id: 'oidc|partner-42', email: 'victim@gmail.com', email_verified: true, app_metadata: {},
    identities: [{ provider: 'oidc', user_id: 'partner-42', connection: 'partner', isSocial: false }, { provider: 'google-oauth2', user_id: '777', connection: 'google-oauth2', isSocial: true }]
  };
  const res = await a.run('execute', user, { connection: 'google-oauth2' });
  assert.equal(res.threw, null);
  assert.equal(res.primaryUser, undefined);
  assert.equal(user.app_metadata.trickle, undefined);
  assert.deepEqual(products.paste.state.calls, [], 'no product is even asked');
});

test('a product down at the first social login: nothing is recorded, and the next login asks every product for the identity again', async () => {
  reset({ paste: [{ id: 'p9', email: 'gina@gmail.com', email_verified: true, identities: [{ provider: 'google-oauth2', subject: '1001' }] }] });
  const a = action();
  const user = socialUser('google-oauth2', '1001', 'gina@gmail.com', true);
  products.paste.state.mode = 'down';
  const first = await a.run('execute', user, { connection: 'google-oauth2' });
  products.paste.state.mode = 'up';
  assert.equal(first.threw, null);
  assert.equal(user.app_metadata.trickle, undefined);
  assert.ok(lastLog(a.logs).events.some((e) => e.event === 'social_discovery_incomplete'));
  const second = await a.run('execute', user, { connection: 'google-oauth2' });
  assert.equal(second.threw, null);
  assert.deepEqual(user.app_metadata.trickle.accounts.map((x) => [x.id, x.proof]), [['p9', 'identity']]);
  assert.equal(products.paste.state.auth0Ids.p9, 'google-oauth2|1001');
});
