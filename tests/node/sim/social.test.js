// Social connections in the simulator, end to end: the products' identities and their look-up by
// provider and subject, the three local providers' claims, "Continue with Google" in Chromium,
// the post-login Action told the connection, account linking through the Management API,
// setPrimaryUser with a machine token cached in api.cache, and the attacks on all of it.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const { Issuer, generators } = require('openid-client');
const { chromium } = require('playwright-core');
const { startSim } = require('../../../sim');
const { form, m2mToken, signIn } = require('../support/sim-http');
const { hostBrowser } = require('../../../sim/demo');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

// `sim` runs trickle's artefacts as a user starts it; `bare` has nothing deployed, so the tests of
// the platform's own behaviour (linking, setPrimaryUser, the callback's checks) see only the
// Actions they deploy themselves.
let sim;
let bare;
const used = new Set(); // people a test has taken
test.before(async () => {
  sim = await startSim({ people: 60, socialPeople: 6 });
  bare = await startSim({ people: 60, socialPeople: 6, deploy: 'none' });
  used.add(sim.people.find((p) => p.email === sim.attackers.victim.email)); // kept for the attack tests
});
test.after(async () => {
  if (sim) await sim.close();
  if (bare) await bare.close();
});

/** A browser as fetch sees it: cookies kept per host, redirects followed by hand. */
const browser = hostBrowser;
const post = (go, url, fields) => go(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });

/**
 * Signs in with `strategy` as the person at `account` ({login, password}) from the tenant's login
 * page, as a browser would; stops at the tenant's callback (`stopAtCallback`) or follows on.
 * Resolves `{res, location, go, callback}`: the last response and where it points.
 */
async function socialSignIn(sim, strategy, account, { go = browser(), stopAtCallback = false } = {}) {
  const base = sim.tenant.url;
  const authorize = sim.urls.login;
  const html = await (await go(authorize)).text();
  const href = html.match(new RegExp(`href="(/u/login/federated[^"]*connection=${strategy})"`))[1].replace(/&amp;/g, '&');
  let res = await go(base + href);
  let location = res.headers.get('location');
  const idp = sim.idps[strategy];
  res = await go(new URL(location, idp.issuer).toString());
  location = res.headers.get('location');
  const page = await (await go(new URL(location, idp.issuer).toString())).text();
  const action = page.match(/action="([^"]+)"/)[1];
  res = await post(go, new URL(action, idp.issuer).toString(), { login: account.login, password: account.password });
  if (res.status === 401) return { res, location: null, go };
  location = res.headers.get('location');
  let callback = null;
  for (;;) {
    if (!location) {
      // Apple answers with a form that posts the code to the tenant (response_mode=form_post).
      const body = await res.text();
      const to = body.match(/action="([^"]+)"/);
      if (!to) return { res, location: null, go, callback, body };
      const fields = Object.fromEntries([...body.matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1], m[2]]));
      callback = { method: 'POST', url: to[1].replace(/&amp;/g, '&'), fields };
      if (stopAtCallback) return { res, location: null, go, callback };
      res = await post(go, callback.url, fields);
    } else {
      const next = new URL(location, idp.issuer).toString();
      if (next.startsWith(`${base}/login/callback`)) {
        callback = { method: 'GET', url: next };
        if (stopAtCallback) return { res, location: next, go, callback };
      }
      // Back at the app, or sent elsewhere (an Action's redirect): the caller goes on from there.
      if (next.startsWith(`${base}/app/callback`) || !(next.startsWith(base) || next.startsWith(idp.issuer))) return { res, location: next, go, callback };
      res = await go(next);
    }
    location = res.headers.get('location');
    if (!location && res.status !== 200) return { res, location: null, go, callback };
  }
}

/** The id token's claims for the code in an app-callback URL. */
async function idTokenOf(sim, location) {
  const base = sim.tenant.url;
  const code = new URL(location).searchParams.get('code');
  assert.ok(code, `a code in ${location}`);
  const r = await form(`${base}/oauth/token`, { grant_type: 'authorization_code', client_id: 'trickle-demo', client_secret: 'demo-app-secret', code, redirect_uri: `${base}/app/callback` });
  assert.equal(r.status, 200);
  return JSON.parse(Buffer.from((await r.json()).id_token.split('.')[1], 'base64url').toString());
}

const m2m = new Map();
async function api(sim, method, path, body) {
  const base = sim.tenant.url;
  if (!m2m.has(sim)) m2m.set(sim, await m2mToken(base));
  const token = m2m.get(sim);
  let r;
  // As any client of the Management API: a 429 is waited out (Retry-After) and tried again.
  for (let attempt = 0; ; attempt++) {
    r = await fetch(`${base}/api/v2${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    if (r.status !== 429 || attempt === 5) break;
    await new Promise((ok) => setTimeout(ok, Number(r.headers.get('retry-after') || 1) * 1000));
  }
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

/** Deploys a post-login Action through the Management API and binds it after the ones bound. */
async function bindAction(sim, name, code, secrets = []) {
  const made = await api(sim, 'POST', '/actions/actions', { name, supported_triggers: [{ id: 'post-login', version: 'v3' }], code, secrets });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  assert.equal((await api(sim, 'POST', `/actions/actions/${made.body.id}/deploy`)).status, 200);
  const bound = await api(sim, 'GET', '/actions/triggers/post-login/bindings');
  const keep = bound.body.bindings.filter((b) => b.action && b.action.name !== name).map((b) => ({ ref: { type: 'binding_id', value: b.id } }));
  const r = await api(sim, 'PATCH', '/actions/triggers/post-login/bindings', { bindings: [...keep, { ref: { type: 'action_name', value: name }, display_name: name }] });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return async () => {
    await api(sim, 'PATCH', '/actions/triggers/post-login/bindings', { bindings: keep });
    await api(sim, 'DELETE', `/actions/actions/${made.body.id}?force=true`);
  };
}

const lookUp = (product, query) => fetch(`${product.url}/trickle/accounts?${new URLSearchParams(query)}`, { headers: { authorization: `Bearer ${product.token}` } });
const rowOf = (product, id) => sim.byName[product].db.prepare('SELECT * FROM accounts WHERE id = ?').get(id);
/** A person with one account, holding a social identity of `provider`, whose product keeps no TOTP secret. */
const personWith = (provider, used = new Set(), extra = () => true) => {
  const p = sim.people.find((x) => !used.has(x) && x.accounts.length === 1 && x.identities && x.identities[0].provider === provider &&
    !rowOf(x.accounts[0].product, x.accounts[0].id).totp_secret && extra(x));
  assert.ok(p, `a seeded person with a ${provider} identity`);
  used.add(p);
  return p;
};

/** The person's database user, made through the Management API (nothing is deployed on `bare`), signed in with its password. */
async function dbSignIn(sim, person) {
  const made = await api(sim, 'POST', '/users', { connection: 'trickle', email: person.email, password: person.accounts[0].password, email_verified: true, name: person.name });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const r = await signIn(sim.tenant.url, person.email, person.accounts[0].password);
  assert.equal(r.status, 302);
  return r;
}

test('the products answer the look-up by provider and subject with exactly the holders; the email look-up also lists identities', async () => {
  const both = sim.socialPeople.find((p) => p.kind === 'password-and-social');
  const slack = both.identities[0];
  assert.equal(slack.provider, 'sign-in-with-slack');
  assert.equal(slack.product, 'collect');
  // The Slack identity is held by the collect account only; paste holds the password account.
  const found = await (await lookUp(sim.byName.collect, { provider: slack.provider, subject: slack.subject })).json();
  assert.deepEqual(found.accounts.map((a) => a.id), [slack.id]);
  assert.equal(found.accounts[0].password, null, 'a social-only account has no password');
  assert.deepEqual(found.accounts[0].identities, [{ provider: 'sign-in-with-slack', subject: slack.subject }]);
  assert.deepEqual((await (await lookUp(sim.byName.paste, { provider: slack.provider, subject: slack.subject })).json()).accounts, []);
  const pasteAccount = (await (await lookUp(sim.byName.paste, { email: both.email })).json()).accounts;
  assert.equal(pasteAccount.length, 1);
  assert.equal(pasteAccount[0].password.algorithm, 'bcrypt');
  assert.deepEqual(pasteAccount[0].identities, []);

  // People with different identities in different products.
  const two = sim.socialPeople.find((p) => p.kind === 'two-providers');
  const [google, apple] = two.identities;
  assert.deepEqual([google.provider, google.product, apple.provider, apple.product], ['google-oauth2', 'paste', 'apple', 'transfer']);
  assert.deepEqual((await (await lookUp(sim.byName.transfer, { provider: 'apple', subject: apple.subject })).json()).accounts.map((a) => a.id), [apple.id]);
  assert.deepEqual((await (await lookUp(sim.byName.transfer, { provider: 'google-oauth2', subject: google.subject })).json()).accounts, []);
  // A seeded password person with an identity: the same account answers both look-ups.
  const p = sim.people.find((x) => x.identities);
  const i = p.identities[0];
  const byId = await (await lookUp(sim.byName[i.product], { provider: i.provider, subject: i.subject })).json();
  assert.deepEqual(byId.accounts.map((a) => a.id), [i.id]);
  assert.ok(byId.accounts[0].password, 'password and social on one account');
  const byEmail = await (await lookUp(sim.byName[i.product], { email: p.email })).json();
  assert.deepEqual(byEmail.accounts.find((a) => a.id === i.id).identities, [{ provider: i.provider, subject: i.subject }]);

  // Exact match, no folding: another case, a prefix or another provider finds nobody.
  for (const q of [{ provider: i.provider, subject: i.subject.toLowerCase() === i.subject ? i.subject.toUpperCase() : i.subject.toLowerCase() },
    { provider: i.provider, subject: i.subject.slice(0, -1) }, { provider: i.provider, subject: ` ${i.subject}` },
    { provider: i.provider === 'apple' ? 'google-oauth2' : 'apple', subject: i.subject }]) {
    const r = await lookUp(sim.byName[i.product], q);
    assert.equal(r.status, 200);
    assert.deepEqual((await r.json()).accounts, [], JSON.stringify(q));
  }
  // The look-ups are deterministic: the same seed gives the same subjects.
  const again = require('../../../sim/seed').generate({ people: 60, socialPeople: 6 });
  assert.deepEqual(again.socialPeople.map((x) => x.identities.map((y) => y.subject)), sim.socialPeople.map((x) => x.identities.map((y) => y.subject)));
});

test('bad or missing look-up parameters get 400 with a stable code; without the token, 401', async () => {
  const product = sim.byName.paste;
  const cases = [
    [{}, 'query.email_required'], [{ email: '' }, 'query.email_required'],
    [{ provider: 'google-oauth2' }, 'query.subject_required'], [{ provider: 'google-oauth2', subject: '' }, 'query.subject_required'],
    [{ subject: '123' }, 'query.provider_required'], [{ provider: '', subject: '123' }, 'query.provider_required'],
    [{ provider: 'Google OAuth2', subject: '123' }, 'query.provider_invalid'], [{ provider: 'google-oauth2', subject: 'x'.repeat(256) }, 'query.subject_invalid'],
    [{ email: 'a@example.com', provider: 'google-oauth2', subject: '1' }, 'query.ambiguous'], [{ email: 'a@example.com', subject: '1' }, 'query.ambiguous']
  ];
  for (const [q, code] of cases) {
    const r = await lookUp(product, q);
    assert.equal(r.status, 400, JSON.stringify(q));
    const body = await r.json();
    assert.equal(body.error, code, JSON.stringify(q));
    assert.equal(typeof body.message, 'string');
  }
  const twice = await fetch(`${product.url}/trickle/accounts?provider=apple&provider=google-oauth2&subject=1`, { headers: { authorization: `Bearer ${product.token}` } });
  assert.equal(twice.status, 400);
  assert.equal((await twice.json()).error, 'query.repeated');
  assert.equal((await fetch(`${product.url}/trickle/accounts?provider=apple&subject=1`)).status, 401);
});

/** Signs in at one provider directly, as a relying party of its own; resolves to the id token's claims. */
async function providerClaims(strategy, account) {
  const idp = sim.idps[strategy];
  const cb = 'http://127.0.0.1:9/claims-test';
  const clientId = `claims-test-${strategy}`;
  if (!idp._claimsClient) { idp.addClient({ client_id: clientId, client_secret: 'claims-test-secret-0123456789abcdef', redirect_uris: [cb] }); idp._claimsClient = true; }
  const issuer = await Issuer.discover(idp.issuer);
  const client = new issuer.Client({ client_id: clientId, client_secret: 'claims-test-secret-0123456789abcdef', redirect_uris: [cb], response_types: ['code'], token_endpoint_auth_method: 'client_secret_post' });
  const checks = { state: generators.state(), nonce: generators.nonce(), code_verifier: generators.codeVerifier() };
  const go = browser();
  let res = await go(client.authorizationUrl({ scope: idp.scope, state: checks.state, nonce: checks.nonce, code_challenge: generators.codeChallenge(checks.code_verifier), code_challenge_method: 'S256', response_mode: idp.responseMode }));
  const page = await (await go(new URL(res.headers.get('location'), idp.issuer).toString())).text();
  res = await post(go, new URL(page.match(/action="([^"]+)"/)[1], idp.issuer).toString(), { login: account.login, password: account.password });
  assert.equal(res.status, 303, 'signed in at the provider');
  res = await go(new URL(res.headers.get('location'), idp.issuer).toString());
  let params;
  if (res.headers.get('location')) params = client.callbackParams(res.headers.get('location'));
  else params = Object.fromEntries([...(await res.text()).matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1], m[2]]));
  return (await client.callback(cb, params, { ...checks, response_type: 'code' })).claims();
}

test('each provider asserts what the real one does: Google hd for Workspace only, Apple relay addresses and string booleans, Slack team id', async () => {
  const accounts = (p) => sim.idps[p].accounts();
  const workspace = accounts('google-oauth2').find((a) => a.claims.hd);
  const consumer = accounts('google-oauth2').find((a) => !a.claims.hd && a.claims.email_verified);
  const w = await providerClaims('google-oauth2', sim.idps['google-oauth2'].accounts().length && { login: workspace.login, password: passwordOf('google-oauth2', workspace.sub) });
  assert.equal(w.hd, 'example.com');
  assert.match(w.sub, /^1\d{20}$/);
  assert.equal(w.email_verified, true);
  const c = await providerClaims('google-oauth2', { login: consumer.login, password: passwordOf('google-oauth2', consumer.sub) });
  assert.ok(!('hd' in c), 'a consumer account has no hd');

  const relay = accounts('apple').find((a) => a.claims.is_private_email === 'true');
  const a = await providerClaims('apple', { login: relay.login, password: passwordOf('apple', relay.sub) });
  assert.match(a.email, /@privaterelay\.appleid\.com$/);
  assert.equal(a.is_private_email, 'true');
  assert.equal(a.email_verified, 'true');
  assert.ok(!('name' in a), 'Apple puts no name in the id token');

  const slackAccount = accounts('sign-in-with-slack').find((x) => x.claims['https://slack.com/team_id'] === 'T0SIMCORP1');
  const s = await providerClaims('sign-in-with-slack', { login: slackAccount.login, password: passwordOf('sign-in-with-slack', slackAccount.sub) });
  assert.equal(s['https://slack.com/team_id'], 'T0SIMCORP1');
  assert.equal(s['https://slack.com/user_id'], s.sub);

  // The attacker fixtures: someone else's subject, asserting the victim's address.
  const victim = sim.attackers.victim;
  const [g, sl, ap] = sim.attackers.accounts;
  const gc = await providerClaims('google-oauth2', g);
  assert.deepEqual([gc.email, gc.email_verified], [victim.email, false]);
  assert.notEqual(gc.sub, (victim.identities.find((x) => x.provider === 'google-oauth2') || {}).subject);
  const sc = await providerClaims('sign-in-with-slack', sl);
  assert.deepEqual([sc.email, sc.email_verified, sc['https://slack.com/team_id']], [victim.email, true, 'T0ATTACKR9']);
  const acl = await providerClaims('apple', ap);
  assert.match(acl.email, /@privaterelay\.appleid\.com$/);

  // Accounts added at run time, over HTTP, sign in like the seeded ones; a wrong password does not.
  const r = await fetch(`${sim.idps.apple.url}/_control/accounts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sub: '001234.runtime.0001', login: 'late@example.net', password: 'late-pw', claims: { email: 'late@example.net', email_verified: true, is_private_email: false } }) });
  assert.equal(r.status, 201);
  assert.equal((await providerClaims('apple', { login: 'late@example.net', password: 'late-pw' })).sub, '001234.runtime.0001');
  await assert.rejects(providerClaims('apple', { login: 'late@example.net', password: 'wrong' }), /signed in at the provider/);
  const bad = await fetch(`${sim.idps.apple.url}/_control/accounts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: 'x' }) });
  assert.equal(bad.status, 400);
});

/** The provider password of the seeded account with `sub` (what its owner types). */
function passwordOf(provider, sub) {
  for (const p of [...sim.people, ...sim.socialPeople]) for (const i of p.identities || []) if (i.provider === provider && i.subject === sub) return i.password;
  throw new Error(`no seeded account ${provider} ${sub}`);
}

test('Chromium: Continue with Google, sign in at Google, back at the app with a google-oauth2| id token; the Action saw the connection and identities; Apple\'s form_post too', { skip: !fs.existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}` }, async () => {
  // A recorder bound after trickle's Action: what a post-login Action is given, kept on the user.
  const unbind = await bindAction(sim, 'record-social-event', `exports.onExecutePostLogin = async (event, api) => {
    api.user.setAppMetadata('seen', { connection: event.connection, identities: event.user.identities, user_id: event.user.user_id, email_verified: event.user.email_verified, hd: event.user.hd });
  };`);
  const b = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  try {
    const person = sim.socialPeople.find((p) => p.kind === 'social-only' && p.identities[0].provider === 'google-oauth2');
    const identity = person.identities[0];
    const page = await b.newPage();
    await page.goto(sim.urls.login);
    await page.getByRole('link', { name: 'Continue with Google' }).click();
    await page.waitForURL((u) => u.href.startsWith(sim.idps['google-oauth2'].issuer));
    assert.match(await page.locator('h1').innerText(), /Sign in with Google/);
    await page.getByLabel('Google account').fill(identity.login);
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').innerText(), /Wrong account or password/);
    await page.getByLabel('Password').fill(identity.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/app\/callback\?/);
    const url = page.url();
    assert.equal(new URL(url).searchParams.get('state'), 'demo');
    const claims = await idTokenOf(sim, url);
    assert.equal(claims.sub, `google-oauth2|${identity.subject}`);
    assert.equal(claims.email, person.email);
    const user = (await api(sim, 'GET', `/users/${encodeURIComponent(claims.sub)}`)).body;
    assert.deepEqual(user.app_metadata.seen.connection, { id: 'con_google', name: 'google-oauth2', strategy: 'google-oauth2' });
    assert.deepEqual(user.app_metadata.seen.identities, [{ provider: 'google-oauth2', user_id: identity.subject, connection: 'google-oauth2', isSocial: true }]);
    assert.equal(user.app_metadata.seen.email_verified, true);
    assert.equal(user.app_metadata.seen.hd, person.email.split('@')[1], 'the Workspace domain reaches the Action');

    // Apple's answer is a form the browser posts back across ports: the login's cookie goes with it.
    const relay = sim.socialPeople.find((p) => p.kind === 'social-only' && p.identities[0].provider === 'apple').identities[0];
    const apple = await b.newPage();
    await apple.goto(sim.urls.login);
    await apple.getByRole('link', { name: 'Continue with Apple' }).click();
    await apple.getByLabel('Apple account').fill(relay.login);
    await apple.getByLabel('Password').fill(relay.password);
    await apple.getByRole('button', { name: 'Sign in' }).click();
    await apple.waitForURL(/\/app\/callback\?/);
    assert.equal((await idTokenOf(sim, apple.url())).sub, `apple|${relay.subject}`);
  } finally {
    await b.close();
    await unbind();
  }
});

test('Apple answers by form_post and Slack with its team; the users are apple|… and sign-in-with-slack|… with the providers\' verification as given', async () => {
  const sim = bare;
  const two = sim.socialPeople.find((p) => p.kind === 'two-providers');
  const apple = two.identities.find((i) => i.provider === 'apple');
  const r = await socialSignIn(sim, 'apple', apple);
  assert.equal(r.callback.method, 'POST', 'Apple posts the code');
  const claims = await idTokenOf(sim, r.location);
  assert.equal(claims.sub, `apple|${apple.subject}`);
  const user = (await api(sim, 'GET', `/users/${encodeURIComponent(claims.sub)}`)).body;
  assert.equal(user.email_verified, true, 'the string "true" is a verified address');
  assert.equal(user.is_private_email, true);
  assert.match(user.email, /@privaterelay\.appleid\.com$/);

  const both = sim.socialPeople.find((p) => p.kind === 'password-and-social');
  const slack = both.identities[0];
  const s = await socialSignIn(sim, 'sign-in-with-slack', slack);
  const sc = await idTokenOf(sim, s.location);
  assert.equal(sc.sub, `sign-in-with-slack|${slack.subject}`);
  const su = (await api(sim, 'GET', `/users/${encodeURIComponent(sc.sub)}`)).body;
  assert.equal(su['https://slack.com/team_id'], 'T0SIMCORP1');
  assert.deepEqual(su.identities, [{ provider: 'sign-in-with-slack', user_id: slack.subject, connection: 'sign-in-with-slack', isSocial: true }]);
  // A second sign-in is the same user, not a new one.
  const again = await idTokenOf(sim, (await socialSignIn(sim, 'sign-in-with-slack', slack)).location);
  assert.equal(again.sub, sc.sub);
  assert.equal((await api(sim, 'GET', `/users/${encodeURIComponent(sc.sub)}`)).body.logins_count, 2);
});

test('linking through the Management API merges two users: the secondary is gone, its identity joins the primary with profileData; a Google sign-in is then the primary', async () => {
  const sim = bare;
  const person = personWith('google-oauth2', used);
  const identity = person.identities[0];
  const db = await dbSignIn(sim, person);
  assert.equal(db.status, 302);
  const primaryId = (await idTokenOf(sim, db.headers.get('location'))).sub;
  assert.match(primaryId, /^auth0\|/);
  const g = await idTokenOf(sim, (await socialSignIn(sim, 'google-oauth2', identity)).location);
  const secondaryId = g.sub;
  assert.equal(secondaryId, `google-oauth2|${identity.subject}`);
  const both = await api(sim, 'GET', `/users-by-email?email=${encodeURIComponent(person.email)}`);
  assert.deepEqual(both.body.map((u) => u.user_id).sort(), [primaryId, secondaryId].sort(), 'one address, two users of two connections');

  // Errors as the platform gives them.
  assert.equal((await api(sim, 'POST', `/users/${encodeURIComponent(primaryId)}/identities`, { provider: 'google-oauth2' })).status, 400);
  assert.equal((await api(sim, 'POST', `/users/${encodeURIComponent(primaryId)}/identities`, { provider: 'auth0', user_id: primaryId.slice(6) })).body.message, 'Main identity and the new one are the same.');
  assert.equal((await api(sim, 'POST', `/users/${encodeURIComponent(primaryId)}/identities`, { provider: 'google-oauth2', user_id: '1000' })).status, 404);
  assert.equal((await api(sim, 'POST', '/users/auth0%7Cnobody/identities', { provider: 'google-oauth2', user_id: identity.subject })).status, 404);
  assert.equal((await api(sim, 'POST', `/users/${encodeURIComponent(primaryId)}/identities`, { provider: 'google-oauth2', user_id: identity.subject, connection_id: 'con_apple' })).status, 404, 'the connection must be the secondary\'s');
  const noToken = await fetch(`${sim.tenant.url}/api/v2/users/${encodeURIComponent(primaryId)}/identities`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ provider: 'google-oauth2', user_id: identity.subject }) });
  assert.equal(noToken.status, 401);

  const linked = await api(sim, 'POST', `/users/${encodeURIComponent(primaryId)}/identities`, { provider: 'google-oauth2', user_id: identity.subject });
  assert.equal(linked.status, 201);
  assert.equal(linked.body.length, 2);
  assert.deepEqual(linked.body[0], { provider: 'auth0', connection: 'trickle', user_id: primaryId.slice(6), isSocial: false });
  assert.equal(linked.body[1].provider, 'google-oauth2');
  assert.equal(linked.body[1].user_id, identity.subject);
  assert.equal(linked.body[1].isSocial, true);
  assert.equal(linked.body[1].profileData.email, person.email);
  assert.equal(linked.body[1].profileData.email_verified, true);
  assert.equal((await api(sim, 'GET', `/users/${encodeURIComponent(secondaryId)}`)).status, 404, 'the secondary stops existing');
  assert.deepEqual((await api(sim, 'GET', `/users-by-email?email=${encodeURIComponent(person.email)}`)).body.map((u) => u.user_id), [primaryId]);
  assert.equal((await api(sim, 'POST', `/users/${encodeURIComponent(primaryId)}/identities`, { provider: 'google-oauth2', user_id: identity.subject })).status, 404, 'linked once');

  // Signing in with the linked identity signs in the primary user.
  assert.equal((await idTokenOf(sim, (await socialSignIn(sim, 'google-oauth2', identity)).location)).sub, primaryId);

  // Unlinking gives the identity a user of its own again.
  assert.equal((await api(sim, 'DELETE', `/users/${encodeURIComponent(primaryId)}/identities/auth0/${primaryId.slice(6)}`)).status, 400, 'the main identity stays');
  assert.equal((await api(sim, 'DELETE', `/users/${encodeURIComponent(primaryId)}/identities/apple/nothing`)).status, 404);
  const unlinked = await api(sim, 'DELETE', `/users/${encodeURIComponent(primaryId)}/identities/google-oauth2/${identity.subject}`);
  assert.equal(unlinked.status, 200);
  assert.equal(unlinked.body.length, 1);
  assert.equal((await api(sim, 'GET', `/users/${encodeURIComponent(secondaryId)}`)).body.email, person.email);
  assert.equal((await idTokenOf(sim, (await socialSignIn(sim, 'google-oauth2', identity)).location)).sub, secondaryId);
});

test('a database user linked into a social user still signs in with its password, as that user; unlinked, it is its own again', async () => {
  const sim = bare;
  const person = sim.socialPeople.filter((p) => p.kind === 'password-and-social')[1];
  const slack = person.identities[0];
  const social = (await idTokenOf(sim, (await socialSignIn(sim, slack.provider, slack)).location)).sub;
  const db = (await idTokenOf(sim, (await dbSignIn(sim, person)).headers.get('location'))).sub;
  const local = db.slice('auth0|'.length);
  assert.equal((await api(sim, 'POST', `/users/${encodeURIComponent(social)}/identities`, { provider: 'auth0', user_id: local, connection_id: 'con_google' })).status, 404, 'not that connection\'s user');
  const linked = await api(sim, 'POST', `/users/${encodeURIComponent(social)}/identities`, { provider: 'auth0', user_id: local, connection_id: 'con_trickle' });
  assert.equal(linked.status, 201);
  assert.deepEqual(linked.body.map((i) => [i.provider, i.connection]), [['sign-in-with-slack', 'sign-in-with-slack'], ['auth0', 'trickle']]);
  assert.ok(!('password_hash' in linked.body[1].profileData), 'no hash in the answer');
  const again = await signIn(sim.tenant.url, person.email, person.accounts[0].password);
  assert.equal((await idTokenOf(sim, again.headers.get('location'))).sub, social, 'the password signs in the user it joined');
  assert.equal((await signIn(sim.tenant.url, person.email, 'wrong-password')).status, 401);
  // Nobody can create a second database user at that address meanwhile.
  assert.equal((await api(sim, 'POST', '/users', { connection: 'trickle', email: person.email, password: 'another-password' })).status, 409);
  assert.equal((await api(sim, 'DELETE', `/users/${encodeURIComponent(social)}/identities/auth0/${local}`)).status, 200);
  const own = await signIn(sim.tenant.url, person.email, person.accounts[0].password);
  assert.equal((await idTokenOf(sim, own.headers.get('location'))).sub, db);
});

// An Action that links a social login into the database user of the same address and moves the
// login to it, with a machine token from event.secrets cached in api.cache. (It trusts the
// provider's verified address: a pattern for the simulator's test, not trickle's ownership rule.)
const LINKING_ACTION = `exports.onExecutePostLogin = async (event, api) => {
  if (event.connection.strategy === 'auth0' || !event.user.email_verified) return;
  const domain = event.secrets.DOMAIN;
  let cached = api.cache.get('m2m');
  let token = cached && cached.value;
  if (!token) {
    const r = await fetch(domain + '/oauth/token', { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: event.secrets.CLIENT_ID, client_secret: event.secrets.CLIENT_SECRET, audience: domain + '/api/v2/' }) });
    const t = await r.json();
    token = t.access_token;
    api.cache.set('m2m', token, { ttl: t.expires_in * 1000 });
  }
  const h = { authorization: 'Bearer ' + token, 'content-type': 'application/json' };
  const users = await (await fetch(domain + '/api/v2/users-by-email?email=' + encodeURIComponent(event.user.email), { headers: h })).json();
  const primary = users.find((u) => u.identities[0].provider === 'auth0');
  if (!primary) return;
  const r = await fetch(domain + '/api/v2/users/' + encodeURIComponent(primary.user_id) + '/identities', { method: 'POST', headers: h,
    body: JSON.stringify({ provider: event.connection.strategy, user_id: event.user.identities[0].user_id }) });
  if (r.status !== 201) return api.access.deny('link failed ' + r.status);
  await fetch(domain + '/api/v2/users/' + encodeURIComponent(primary.user_id), { method: 'PATCH', headers: h, body: JSON.stringify({ app_metadata: { token_cached: !!cached } }) });
  api.authentication.setPrimaryUser(primary.user_id);
};`;

test('an Action links with a cached machine token and setPrimaryUser: the login continues as the primary user', async () => {
  const sim = bare;
  const unbind = await bindAction(sim, 'link-by-verified-email', LINKING_ACTION, [
    { name: 'DOMAIN', value: sim.tenant.url }, { name: 'CLIENT_ID', value: 'trickle-m2m' }, { name: 'CLIENT_SECRET', value: 'm2m-secret' }]);
  try {
    const cached = [];
    for (const provider of ['sign-in-with-slack', 'google-oauth2']) {
      const person = personWith(provider, used);
      const db = await dbSignIn(sim, person);
      const primaryId = (await idTokenOf(sim, db.headers.get('location'))).sub;
      const r = await socialSignIn(sim, provider, person.identities[0]);
      const claims = await idTokenOf(sim, r.location);
      assert.equal(claims.sub, primaryId, `${provider}: the login ends as the primary user`);
      const user = (await api(sim, 'GET', `/users/${encodeURIComponent(primaryId)}`)).body;
      assert.deepEqual(user.identities.map((i) => i.provider), ['auth0', provider]);
      assert.equal((await api(sim, 'GET', `/users/${encodeURIComponent(`${provider}|${person.identities[0].subject}`)}`)).status, 404);
      cached.push(user.app_metadata.token_cached);
    }
    assert.deepEqual(cached, [false, true], 'the second login used the token cached by the first');
  } finally {
    await unbind();
  }
});

test('setPrimaryUser to a user the login is not linked to is refused, and the login denied', async () => {
  const sim = bare;
  const victimDb = sim.people.find((p) => !used.has(p) && p.accounts.length === 1 && !p.identities && !rowOf(p.accounts[0].product, p.accounts[0].id).totp_secret);
  used.add(victimDb);
  const db = await dbSignIn(sim, victimDb);
  const victimId = (await idTokenOf(sim, db.headers.get('location'))).sub;
  const unbind = await bindAction(sim, 'hijack', `exports.onExecutePostLogin = async (event, api) => {
    if (event.connection.strategy !== 'auth0') api.authentication.setPrimaryUser(${JSON.stringify(victimId)});
  };`);
  try {
    const attacker = sim.attackers.accounts.find((a) => a.provider === 'google-oauth2');
    const r = await socialSignIn(sim, 'google-oauth2', attacker);
    const back = new URL(r.location);
    assert.equal(back.searchParams.get('error'), 'access_denied');
    assert.match(back.searchParams.get('error_description'), /setPrimaryUser/);
    assert.equal(back.searchParams.get('code'), null);
    assert.ok(sim.tenant.state.events.some((e) => e.type === 'primary_user_refused' && e.primary === victimId));
    // An id that names nobody is refused the same way.
    await unbind();
  } finally {
    await unbind();
  }
  const unbind2 = await bindAction(sim, 'hijack-nobody', `exports.onExecutePostLogin = async (event, api) => {
    if (event.connection.strategy !== 'auth0') api.authentication.setPrimaryUser('auth0|nobody');
  };`);
  try {
    const r = await socialSignIn(sim, 'sign-in-with-slack', sim.attackers.accounts.find((a) => a.provider === 'sign-in-with-slack'));
    assert.equal(new URL(r.location).searchParams.get('error'), 'access_denied');
  } finally {
    await unbind2();
  }
});

test('attacks on the social flow: an unverified Google address or a foreign Slack workspace gets a user of its own, never the victim\'s', async () => {
  const sim = bare;
  const victim = sim.attackers.victim;
  const [google, slack] = sim.attackers.accounts;
  for (const a of [google, slack]) {
    const claims = await idTokenOf(sim, (await socialSignIn(sim, a.provider, a)).location);
    assert.equal(claims.sub, `${a.provider}|${a.sub}`);
    const user = (await api(sim, 'GET', `/users/${encodeURIComponent(claims.sub)}`)).body;
    assert.equal(user.email, victim.email);
    if (a.provider === 'google-oauth2') assert.equal(user.email_verified, false, 'an unverified address stays unverified');
    if (a.provider === 'sign-in-with-slack') assert.equal(user['https://slack.com/team_id'], 'T0ATTACKR9');
  }
  const holders = (await api(sim, 'GET', `/users-by-email?email=${encodeURIComponent(victim.email)}`)).body;
  assert.deepEqual(holders.map((u) => u.user_id).sort(), [`${google.provider}|${google.sub}`, `${slack.provider}|${slack.sub}`].sort(), 'two users of their own, nobody linked');
  for (const u of holders) assert.equal(u.identities.length, 1);
});

test('attacks on the callback: another browser\'s answer, a replayed answer, a forged code and a foreign state are all refused', async () => {
  const sim = bare;
  const person = sim.socialPeople.find((p) => p.kind === 'social-only' && p.identities[0].provider === 'apple') || sim.socialPeople[0];
  const identity = person.identities[0];
  const provider = identity.provider;
  // Login CSRF: the attacker signs in at the provider and hands the answer to the victim's browser.
  const attackerRun = await socialSignIn(sim, provider, identity, { stopAtCallback: true });
  const victimBrowser = browser();
  await victimBrowser(sim.urls.login);
  const deliver = (go, cb, fields = cb.fields) => (cb.method === 'POST' ? post(go, cb.url, fields) : go(cb.url));
  const csrf = await deliver(victimBrowser, attackerRun.callback);
  assert.equal(csrf.status, 400);
  assert.match(await csrf.text(), /started in another browser/);
  // The answer was spent by that attempt: the attacker's own browser cannot use it any more.
  const replay = await deliver(attackerRun.go, attackerRun.callback);
  assert.equal(replay.status, 400);

  // A forged code with a live state and the right cookie: the code exchange fails, the login is denied.
  const run = await socialSignIn(sim, provider, identity, { stopAtCallback: true });
  let forged;
  if (run.callback.method === 'POST') forged = await post(run.go, run.callback.url, { ...run.callback.fields, code: 'forged-code' });
  else { const u = new URL(run.callback.url); u.searchParams.set('code', 'forged-code'); forged = await run.go(u.toString()); }
  assert.equal(forged.status, 302);
  assert.equal(new URL(forged.headers.get('location')).searchParams.get('error'), 'access_denied');
  // A state the tenant never issued.
  const unknown = await fetch(`${sim.tenant.url}/login/callback?state=made-up&code=x`);
  assert.equal(unknown.status, 400);
  // The right answer, delivered once to the browser that started it, works.
  const ok = await socialSignIn(sim, provider, identity);
  assert.equal((await idTokenOf(sim, ok.location)).sub, `${provider}|${identity.subject}`);
});

test('a social login takes the redirect and /continue round trip like a database login, resuming with the same connection', async () => {
  const sim = bare;
  const unbind = await bindAction(sim, 'round-trip', `exports.onExecutePostLogin = async (event, api) => {
    if (event.connection.strategy !== 'auth0') api.redirect.sendUserTo('http://127.0.0.1:9/elsewhere', { query: { hello: 'there' } });
  };
  exports.onContinuePostLogin = async (event, api) => {
    api.user.setAppMetadata('resumed', { strategy: event.connection.strategy, identity: event.user.identities[0].user_id });
  };`);
  try {
    const person = sim.socialPeople.find((p) => p.kind === 'social-only' && p.identities[0].provider === 'apple');
    const identity = person.identities[0];
    const r = await socialSignIn(sim, 'apple', identity);
    const away = new URL(r.location);
    assert.equal(away.origin + away.pathname, 'http://127.0.0.1:9/elsewhere');
    assert.equal(away.searchParams.get('hello'), 'there');
    const back = await form(`${sim.tenant.url}/continue?state=${away.searchParams.get('state')}`, {});
    assert.equal(back.status, 302);
    const claims = await idTokenOf(sim, back.headers.get('location'));
    assert.equal(claims.sub, `apple|${identity.subject}`);
    assert.deepEqual((await api(sim, 'GET', `/users/${encodeURIComponent(claims.sub)}`)).body.app_metadata.resumed, { strategy: 'apple', identity: identity.subject });
  } finally {
    await unbind();
  }
});

test('/authorize with connection= goes straight to the provider; an unknown connection is an error back to the app', async () => {
  const base = sim.tenant.url;
  const authorize = (c) => `${base}/authorize?client_id=trickle-demo&response_type=code&state=s&redirect_uri=${encodeURIComponent(base + '/app/callback')}&connection=${c}`;
  const r = await fetch(authorize('sign-in-with-slack'), { redirect: 'manual' });
  assert.equal(r.status, 302);
  const to = new URL(r.headers.get('location'));
  assert.equal(to.origin, sim.idps['sign-in-with-slack'].issuer);
  for (const k of ['state', 'nonce', 'code_challenge']) assert.ok(to.searchParams.get(k), k);
  assert.equal(to.searchParams.get('code_challenge_method'), 'S256');
  const bad = await fetch(authorize('facebook'), { redirect: 'manual' });
  assert.equal(new URL(bad.headers.get('location')).searchParams.get('error'), 'access_denied');
  const conns = await api(sim, 'GET', '/connections');
  assert.deepEqual(conns.body.map((c) => c.strategy).sort(), ['apple', 'auth0', 'google-oauth2', 'sign-in-with-slack']);
});

test('api.cache keeps strings per Action with expires_at, within its limits', () => {
  const { actionCache } = require('../../../sim/runtime');
  let now = 1000000;
  const cache = actionCache(() => now);
  assert.deepEqual(cache.set('k', 'v'), { type: 'success' });
  assert.deepEqual(cache.get('k'), { value: 'v', expires_at: 1000000 + 15 * 60000 });
  assert.equal(cache.set('k', 'v', { ttl: 1000 }).type, 'success');
  now += 1001;
  assert.equal(cache.get('k'), undefined, 'expired');
  assert.equal(cache.set('n', 42).code, 'invalid_value');
  assert.equal(cache.set('big', 'x'.repeat(4097)).code, 'value_too_large');
  for (let i = 0; i < 25; i++) cache.set(`e${i}`, String(i), { ttl: 60000 + i });
  assert.equal(cache.size, 20, 'at most 20 entries');
  assert.equal(cache.get('e0'), undefined, 'the one expiring first made room');
  assert.equal(cache.get('e24').value, '24');
});
