// Attacks on the merge service, through the simulator (a tenant, three products, an SMTP catcher
// and the merge service itself): each test is an attack that worked on an earlier release and
// must fail now. Browsers are cookie jars over fetch unless a real browser adds something.
'use strict';
const { form, signedInTo: signIn, userOf } = require('../support/sim-http');
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const { startSim } = require('../../../sim');
const { browser, waitForMail, mergeablePeople } = require('../../../sim/demo');

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const LINK = /https?:\/\/\S+\/merge\/verify\?token=[A-Za-z0-9_-]+/;

// A person whose first account's password leads to the merge service: that account and one in
// another product were verified by their products (a password matching only an unverified account
// is refused while others hold the address; the merge asks only for verified accounts).
const multiOf = (sim, skip = 0) => mergeablePeople(sim)[skip];

/** Signs in at the tenant with `password` and opens the merge page in browser `b`. */
async function openMerge(sim, b, person, password = person.accounts[0].password) {
  const location = await signIn(sim, person.email, password);
  assert.match(location, /\/merge\?/, 'redirected to the merge service');
  const res = await b.get(location);
  const html = await res.text();
  return { location, status: res.status, html, csrf: b.field(html, 'csrf') };
}

/** Asks for a link in browser `b` and returns it from the mail catcher. */
async function mailedLink(sim, b, person, csrf) {
  const since = sim.mail.messages.length;
  const sent = await b.post(`${sim.merge.url}/merge/send`, { csrf });
  assert.equal(sent.status, 200, 'the link is sent');
  const mail = await waitForMail(sim, person.email, since);
  assert.ok(mail, 'the mail arrives');
  return mail.text.match(LINK)[0];
}

/** The owner proves the mailbox in their browser, then leaves (closes the tab, or skips). */
async function ownerProvesThenLeaves(sim, person, { skip = false } = {}) {
  const owner = browser();
  const o = await openMerge(sim, owner, person);
  const link = await mailedLink(sim, owner, person, o.csrf);
  const opened = await owner.get(link);
  assert.match(await opened.text(), /new-password/, 'the owner reaches the password step');
  if (skip) assert.equal((await owner.post(`${sim.merge.url}/merge/skip`, { csrf: o.csrf })).status, 200);
  return { owner, o, link };
}

/** Tries to take the merge over from browser `b` with csrf `csrf`: set a password, sign in with it. */
async function tryToFinish(sim, b, csrf) {
  const pw = 'attacker chosen 9 pw';
  const set = await b.post(`${sim.merge.url}/merge/password`, { csrf, password: pw, repeat: pw });
  const setHtml = await set.text();
  const signed = await b.post(`${sim.merge.url}/merge/signin`, { csrf, password: pw });
  return { setHtml, signedHtml: await signed.text() };
}

test('finding 1: a mailbox proven in the owner\'s browser does not carry over to another browser holding one leaked password', async () => {
  const sim = await startSim({ people: 40 });
  try {
    for (const [i, skip] of [[0, false], [1, true]]) {
      const victim = multiOf(sim, i);
      await ownerProvesThenLeaves(sim, victim, { skip });
      // Another browser, with one leaked legacy password, signs in: a new merge session.
      const attacker = browser();
      const a = await openMerge(sim, attacker, victim);
      assert.equal(a.status, 200);
      assert.match(a.html, /Send me a link/, 'the new session starts at the mailbox');
      assert.doesNotMatch(a.html, /new-password/, 'no password step from a proof made elsewhere');
      const tried = await tryToFinish(sim, attacker, a.csrf);
      assert.doesNotMatch(tried.setHtml, /Sign in with your new password/, 'no password is set');
      assert.doesNotMatch(tried.signedHtml, /session_token/, 'no signed result');
      assert.ok(!userOf(sim, victim.email).app_metadata.migrated, 'nothing merged');
    }
  } finally {
    await sim.close();
  }
});

test('finding 1: the merge URL of the owner\'s login, opened in another browser after the owner proved the mailbox, gets no password step', async () => {
  const sim = await startSim({ people: 40 });
  try {
    const victim = multiOf(sim);
    const { o } = await ownerProvesThenLeaves(sim, victim);
    const attacker = browser();
    const res = await attacker.get(o.location);
    const html = await res.text();
    assert.ok(res.status < 500, `HTTP ${res.status}`);
    assert.doesNotMatch(html, /new-password/, 'no password step in the other browser');
    const tried = await tryToFinish(sim, attacker, attacker.field(html, 'csrf') || 'none');
    assert.doesNotMatch(tried.signedHtml, /session_token/, 'no signed result');
    assert.ok(!userOf(sim, victim.email).app_metadata.migrated, 'nothing merged');
  } finally {
    await sim.close();
  }
});

test('finding 1: the same browser signing in again after proving the mailbox is asked for the mailbox again (a proof belongs to its login)', async () => {
  const sim = await startSim({ people: 40 });
  try {
    const person = multiOf(sim);
    const { owner } = await ownerProvesThenLeaves(sim, person);
    const again = await openMerge(sim, owner, person);
    assert.match(again.html, /Send me a link/);
    const tried = await tryToFinish(sim, owner, again.csrf);
    assert.doesNotMatch(tried.signedHtml, /session_token/);
  } finally {
    await sim.close();
  }
});

test('finding 2: a session token is bound to the first browser that opens it: that browser resumes, others are refused, one merge session per token', async () => {
  const sim = await startSim({ people: 40 });
  try {
    const person = multiOf(sim);
    const owner = browser();
    const o = await openMerge(sim, owner, person);
    assert.equal(o.status, 200);
    const jti = JSON.parse(Buffer.from(new URL(o.location).searchParams.get('session_token').split('.')[1], 'base64url').toString()).jti;
    // The same browser opening it again (reload, back button) gets the same session, not a new one.
    const again = await owner.get(o.location);
    const againHtml = await again.text();
    assert.equal(again.status, 200);
    assert.equal(owner.field(againHtml, 'csrf'), o.csrf, 'the same session is resumed');
    // Other browsers get a clean refusal, however many of them.
    const statuses = new Set();
    for (let i = 0; i < 25; i++) {
      const res = await browser().get(o.location);
      statuses.add(res.status);
      const html = await res.text();
      assert.doesNotMatch(html, /name="csrf"/, 'no merge form in another browser');
      assert.match(html, /already opened in another browser/);
    }
    assert.deepEqual([...statuses], [403]);
    assert.equal(await sim.merge.store.sessionsOfJti(jti), 1, 'one merge session for one session token');
    // The refusals did not disturb the owner's session: it still finishes.
    const link = await mailedLink(sim, owner, person, o.csrf);
    assert.match(await (await owner.get(link)).text(), /new-password/);
    const tried = await tryToFinish(sim, owner, o.csrf);
    assert.match(tried.signedHtml, /session_token/, 'the owner completes the merge');
    // Once finished, the token opens nothing, not even in the owner's browser.
    const after = await owner.get(o.location);
    assert.equal(after.status, 400);
  } finally {
    await sim.close();
  }
});

test('finding 2: many browsers opening one merge URL at the same time: exactly one gets a session', async () => {
  const sim = await startSim({ people: 40 });
  try {
    const person = multiOf(sim);
    const location = await signIn(sim, person.email, person.accounts[0].password);
    const jti = JSON.parse(Buffer.from(new URL(location).searchParams.get('session_token').split('.')[1], 'base64url').toString()).jti;
    const results = await Promise.all(Array.from({ length: 20 }, () => browser().get(location).then((r) => r.status)));
    assert.equal(results.filter((s) => s === 200).length, 1, JSON.stringify(results));
    assert.equal(results.filter((s) => s === 403).length, 19);
    assert.equal(await sim.merge.store.sessionsOfJti(jti), 1);
  } finally {
    await sim.close();
  }
});

/** A cookie jar like sim/demo's browser(), whose Cookie header also carries `.planted` (as a sibling subdomain could plant it). */
function plantedBrowser(planted) {
  const jar = new Map();
  const keep = (res) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
    }
    return res;
  };
  const b = browser();
  const self = {
    planted, field: b.field, jar,
    get: async (url) => keep(await fetch(url, { redirect: 'manual', headers: { cookie: cookie() } })),
    post: async (url, fields) => keep(await fetch(url, { method: 'POST', redirect: 'manual', headers: { cookie: cookie(), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) }))
  };
  // The planted cookie comes after the real ones, as one set later on the same path would.
  const cookie = () => [...[...jar].map(([k, v]) => `${k}=${v}`), self.planted].filter(Boolean).join('; ');
  return self;
}

test('finding 3: a malformed cookie breaks no page: every route answers below 500 and the person can still merge or skip', async () => {
  const sim = await startSim({ people: 40 });
  try {
    const bad = ['junk=%E0%A4%A', 'msid=%E0%A4%A', 'mbrowser=%', 'x=%FF%FE'];
    // Alone: every route, with no valid session, refuses cleanly.
    const person = multiOf(sim);
    const location = await signIn(sim, person.email, person.accounts[0].password);
    for (const planted of bad) {
      const b = plantedBrowser(planted);
      const routes = [
        () => b.get(`${sim.merge.url}/merge/verify?token=abc`),
        () => b.post(`${sim.merge.url}/merge/send`, { csrf: 'x' }),
        () => b.post(`${sim.merge.url}/merge/password`, { csrf: 'x', password: 'a long password 1', repeat: 'a long password 1' }),
        () => b.post(`${sim.merge.url}/merge/signin`, { csrf: 'x', password: 'x' }),
        () => b.post(`${sim.merge.url}/merge/skip`, { csrf: 'x' }),
        () => b.get(`${sim.merge.url}/healthz`),
        () => b.get(`${sim.merge.url}/merge?session_token=x&state=y`)
      ];
      for (const route of routes) {
        const res = await route();
        assert.ok(res.status < 500, `${planted}: ${res.url} answered ${res.status}`);
      }
    }
    // Next to the real cookies: the flow goes on, mail link included, and Skip works.
    const b = plantedBrowser('junk=%E0%A4%A');
    const page = await b.get(location);
    assert.equal(page.status, 200);
    const csrf = b.field(await page.text(), 'csrf');
    const since = sim.mail.messages.length;
    assert.equal((await b.post(`${sim.merge.url}/merge/send`, { csrf })).status, 200);
    const link = (await waitForMail(sim, person.email, since)).text.match(LINK)[0];
    const opened = await b.get(link);
    assert.equal(opened.status, 200);
    assert.match(await opened.text(), /new-password/);
    const skipped = await b.post(`${sim.merge.url}/merge/skip`, { csrf });
    assert.equal(skipped.status, 200);
    assert.match(await skipped.text(), /name="session_token"/, 'Skip returns to the app');
  } finally {
    await sim.close();
  }
});

test('defence in depth: a planted second msid cookie is trusted for nothing: the owner\'s link does not prove the attacker\'s session', async () => {
  const sim = await startSim({ people: 40 });
  try {
    const victim = multiOf(sim);
    // The attacker's own merge session of the victim (one leaked password).
    const attacker = plantedBrowser('');
    const a = await openMerge(sim, attacker, victim);
    const attackerSid = attacker.jar.get('msid');
    assert.ok(attackerSid);
    const owner = plantedBrowser('');
    const o = await openMerge(sim, owner, victim);
    const link = await mailedLink(sim, owner, victim, o.csrf);
    // A sibling subdomain plants the attacker's msid in the owner's browser, next to the owner's.
    owner.planted = `msid=${attackerSid}`;
    const res = await owner.get(link);
    assert.ok(res.status >= 400 && res.status < 500, `HTTP ${res.status}`);
    const tried = await tryToFinish(sim, attacker, a.csrf);
    assert.doesNotMatch(tried.signedHtml, /session_token/, 'the attacker\'s session proved nothing');
    assert.ok(!userOf(sim, victim.email).app_metadata.migrated);
    // Without the planted cookie the owner's link still works: it was not spent.
    owner.planted = '';
    const opened = await owner.get(link);
    assert.match(await opened.text(), /new-password/);
  } finally {
    await sim.close();
  }
});

/** A session token as the post-login Action would sign it, for an address of the test's choosing. */
function sessionToken(sim, claims) {
  const crypto = require('crypto');
  const b64 = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
  const iat = Math.floor(Date.now() / 1000);
  const input = b64({ alg: 'HS256', typ: 'JWT' }) + '.' + b64({ iss: 'trickle', aud: 'trickle-merge', iat, exp: iat + 900, jti: crypto.randomBytes(16).toString('hex'), products: ['paste', 'collect'], unproven: ['collect'], ...claims });
  return input + '.' + crypto.createHmac('sha256', sim.tokenSecret).update(input).digest('base64url');
}

/** An SMTP server whose answer to each recipient is chosen by `rcpt(address)`: null accepts, a string rejects with it. */
async function startSmtp(rcpt, { delayMs = () => 0 } = {}) {
  const { SMTPServer } = require('smtp-server');
  const received = [];
  const server = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS'],
    onRcptTo(address, session, cb) {
      setTimeout(() => {
        const refusal = rcpt(address.address);
        if (refusal) { const e = new Error(refusal); e.responseCode = 550; return cb(e); }
        cb();
      }, delayMs(address.address));
    },
    onData(stream, session, cb) { stream.on('data', () => {}); stream.on('end', () => { received.push(session.envelope.rcptTo.map((r) => r.address)); cb(); }); }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `smtp://127.0.0.1:${server.server.address().port}`, received, close: () => new Promise((r) => server.close(r)) };
}

test('finding 4: a mail goes to the one canonical address of the session or nowhere (a,b@x.com never reaches b@x.com)', async () => {
  const sim = await startSim({ people: 40 });
  try {
    for (const email of ['a,b@x.com', '"a@x.com" <b@x.com>', 'Victim@Example.com', 'victim@example.com\r\nBcc: b@x.com', 'b@x.com (a@x.com)']) {
      const b = browser();
      const res = await b.get(`${sim.merge.url}/merge?state=st&session_token=${sessionToken(sim, { sub: 'auth0|odd', email })}`);
      assert.equal(res.status, 200, JSON.stringify(email));
      const csrf = b.field(await res.text(), 'csrf');
      const since = sim.mail.messages.length;
      const sent = await b.post(`${sim.merge.url}/merge/send`, { csrf });
      const html = await sent.text();
      assert.equal(sent.status, 422, JSON.stringify(email));
      assert.match(html, /cannot send mail to the address/);
      assert.match(html, /Skip for now/, 'the person can still skip');
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(sim.mail.messages.slice(since).map((m) => m.to), [], `no mail at all for ${JSON.stringify(email)}`);
    }
    // A plain canonical address is mailed, to exactly that address.
    const b = browser();
    const res = await b.get(`${sim.merge.url}/merge?state=st&session_token=${sessionToken(sim, { sub: 'auth0|plain', email: 'plain.person+tag@example.com' })}`);
    const since = sim.mail.messages.length;
    assert.equal((await b.post(`${sim.merge.url}/merge/send`, { csrf: b.field(await res.text(), 'csrf') })).status, 200);
    const mail = await waitForMail(sim, 'plain.person+tag@example.com', since);
    assert.deepEqual(mail.to, ['plain.person+tag@example.com']);
  } finally {
    await sim.close();
  }
});

test('finding 4: once a newer link was sent, the older one no longer works', async () => {
  const sim = await startSim({ people: 40 });
  try {
    const person = multiOf(sim);
    const b = browser();
    const o = await openMerge(sim, b, person);
    const older = await mailedLink(sim, b, person, o.csrf);
    const newer = await mailedLink(sim, b, person, o.csrf);
    assert.notEqual(older, newer);
    const old = await b.get(older);
    assert.equal(old.status, 410);
    assert.match(await old.text(), /newer link was sent/);
    const fresh = await b.get(newer);
    assert.match(await fresh.text(), /new-password/, 'the latest link works');
  } finally {
    await sim.close();
  }
});

test('finding 4: a mail the SMTP server refuses gives a clean page without its words, and the timing tells nothing the page does not', async () => {
  const secret = 'diagnostic-4711 relay.internal.example';
  let sim;
  let refused = null;
  const smtp = await startSmtp((to) => (to === refused ? `5.1.1 <${to}> mailbox unavailable ${secret}` : null), { delayMs: (to) => (to === refused ? 0 : 600) });
  try {
    sim = await startSim({ people: 40, merge: { smtpUrl: smtp.url } });
    const timed = async (person) => {
      const b = browser();
      const o = await openMerge(sim, b, person);
      const t0 = Date.now();
      const res = await b.post(`${sim.merge.url}/merge/send`, { csrf: o.csrf });
      return { res, html: await res.text(), ms: Date.now() - t0, b };
    };
    const victim = multiOf(sim, 0);
    refused = victim.email.toLowerCase();
    const bad = await timed(victim);
    assert.equal(bad.res.status, 502);
    assert.match(bad.html, /The mail could not be sent/);
    assert.match(bad.html, /Skip for now/);
    assert.doesNotMatch(bad.html, /diagnostic-4711|relay\.internal|5\.1\.1|mailbox unavailable/, 'nothing of the SMTP answer in the page');
    assert.doesNotMatch(bad.html, new RegExp(victim.email.replace(/[.+]/g, '\\$&'), 'i'), 'nor the address');
    const good = await timed(multiOf(sim, 1));
    assert.equal(good.res.status, 200);
    assert.match(good.html, /Check your inbox/);
    // The refusal came at once and the acceptance after 600 ms; both answers took the same time.
    assert.ok(Math.abs(bad.ms - good.ms) < 250, `refused after ${bad.ms} ms, accepted after ${good.ms} ms`);
    assert.equal(smtp.received.length, 1, 'the accepted mail was delivered');
  } finally {
    if (sim) await sim.close();
    await smtp.close();
  }
});

test('finding 5: hostile inputs on every route are refused cleanly (below 500), never with a stack or an error text', async () => {
  const sim = await startSim({ people: 40 });
  try {
    const person = multiOf(sim);
    const owner = plantedBrowser('');
    const o = await openMerge(sim, owner, person);
    const cookieHeader = () => [...owner.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const m = sim.merge.url;
    const token = new URL(o.location).searchParams.get('session_token');
    const huge = 'x'.repeat(12000);
    const gets = [
      `/merge?session_token=${token}&state=${huge}`, `/merge?session_token=${token}&state=a&state=b`, `/merge?session_token=${token}`,
      `/merge?session_token=a&session_token=b&state=s`, `/merge?session_token=${'a'.repeat(9000)}.b.c&state=s`, '/merge?session_token=a.bnVsbA.c&state=s',
      `/merge?state=s&session_token=${sessionToken(sim, { sub: { x: 1 }, email: 'x@y.com' })}`, `/merge?state=s&session_token=${sessionToken(sim, { sub: 'auth0|x', jti: 42, email: ['x@y.com'] })}`,
      `/merge?state=s&session_token=${sessionToken(sim, { sub: 's'.repeat(400), email: 'x@y.com' })}`, `/merge?state=s&session_token=${sessionToken(sim, { sub: 'auth0|x', email: { address: 'x@y.com' } })}`,
      '/merge', '/merge?session_token[]=a', '/merge/verify', '/merge/verify?token=a&token=b', `/merge/verify?token=${huge}`, '/merge/verify?token[x]=1', '/nowhere'
    ];
    for (const path of gets) {
      const res = await owner.get(m + path);
      const text = await res.text();
      assert.ok(res.status >= 400 && res.status < 500, `GET ${path.slice(0, 80)} answered ${res.status}`);
      assert.doesNotMatch(text, /at \S+ \(|Error:|TypeError|SqliteError|ER_/, `GET ${path.slice(0, 80)} shows no error text`);
    }
    const csrf = o.csrf;
    const bodies = [
      ['application/json', JSON.stringify({ csrf: { toString: 1 } })], ['application/json', JSON.stringify({ csrf: [csrf] })], ['application/json', 'null'],
      ['application/json', '"csrf"'], ['application/json', '[1,2]'], ['application/json', '{"csrf":'], ['application/json', JSON.stringify({ __proto__: { csrf }, constructor: { prototype: { csrf } } })],
      ['text/plain', `csrf=${csrf}`], ['application/x-www-form-urlencoded', 'csrf[]=x'], ['application/x-www-form-urlencoded', ''], ['application/x-www-form-urlencoded', `csrf=${csrf}&csrf=${csrf}`],
      ['application/x-www-form-urlencoded', 'x='.repeat(10) + '%'.repeat(10)], ['application/octet-stream', 'xx'],
      ['application/x-www-form-urlencoded', 'csrf=' + 'c'.repeat(2 * 1024 * 1024)]
    ];
    // With the form's real token: fields of the wrong type (only where that sends no mail and ends nothing).
    const typed = [
      ['application/json', JSON.stringify({ csrf, password: ['a long password 1'], repeat: ['a long password 1'] })],
      ['application/json', JSON.stringify({ csrf, password: { toString: 1 }, repeat: { toString: 1 } })],
      ['application/json', JSON.stringify({ csrf, password: 'x'.repeat(100000), repeat: 'x'.repeat(100000) })],
      ['application/json', JSON.stringify({ csrf, password: 12345678901, repeat: 12345678901 })]
    ];
    for (const route of ['/merge/send', '/merge/password', '/merge/signin', '/merge/skip']) {
      for (const [type, body] of bodies) {
        const res = await fetch(m + route, { method: 'POST', redirect: 'manual', headers: { 'content-type': type }, body });
        assert.ok(res.status >= 400 && res.status < 500, `POST ${route} ${type} ${body.slice(0, 60)} answered ${res.status}`);
      }
    }
    // Now with the owner's cookies: the form check must refuse what is not its token, cleanly.
    const withCookies = (route, type, body) => fetch(m + route, { method: 'POST', redirect: 'manual', headers: { 'content-type': type, cookie: cookieHeader() }, body });
    for (const route of ['/merge/send', '/merge/password', '/merge/signin', '/merge/skip']) {
      for (const [type, body] of [...bodies, ...(/password|signin/.test(route) ? typed : [])]) {
        const res = await withCookies(route, type, body);
        const text = await res.text();
        assert.ok(res.status < 500, `POST ${route} with the session, ${type} ${body.slice(0, 60)} answered ${res.status}`);
        assert.doesNotMatch(text, /name="session_token"/, `POST ${route} ${body.slice(0, 60)}: no result without the form's own token`);
      }
    }
    // The owner's session survived all that and still merges.
    const link = await mailedLink(sim, owner, person, csrf);
    assert.match(await (await owner.get(link)).text(), /new-password/);
    const tried = await tryToFinish(sim, owner, csrf);
    assert.match(tried.signedHtml, /name="session_token"/);
  } finally {
    await sim.close();
  }
});

test('findings 1 and 2 in real browsers: after the owner proved the mailbox, a second browser gets neither the owner\'s merge URL nor a password step', { skip: !fs.existsSync(CHROMIUM) && 'no Chromium' }, async () => {
  const { chromium } = require('playwright-core');
  const sim = await startSim({ people: 40 });
  const chrome = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  try {
    const victim = multiOf(sim);
    const login = async (page) => {
      await page.goto(sim.urls.login);
      await page.getByLabel('Email').fill(victim.email);
      await page.getByLabel('Password').fill(victim.accounts[0].password);
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.getByRole('button', { name: 'Skip for now' }).first().waitFor();
    };
    const owner = await (await chrome.newContext()).newPage();
    await login(owner);
    const mergeUrl = owner.url();
    assert.match(mergeUrl, /\/merge\?session_token=/);
    const since = sim.mail.messages.length;
    await owner.getByRole('button', { name: 'Send me a link' }).click();
    await owner.getByText('Check your inbox').waitFor();
    await owner.goto((await waitForMail(sim, victim.email, since)).text.match(LINK)[0]);
    await owner.getByLabel('New password', { exact: true }).waitFor();
    await owner.close();

    const other = await chrome.newContext();
    const replay = await other.newPage();
    const res = await replay.goto(mergeUrl);
    assert.equal(res.status(), 403);
    assert.match(await replay.content(), /already opened in another browser/);
    assert.equal(await replay.getByLabel('New password', { exact: true }).count(), 0);
    const leaked = await other.newPage();
    await login(leaked);
    assert.equal(await leaked.getByRole('button', { name: 'Send me a link' }).count(), 1, 'the second browser starts at the mailbox');
    assert.equal(await leaked.getByLabel('New password', { exact: true }).count(), 0);
    assert.ok(!userOf(sim, victim.email).app_metadata.migrated);
  } finally {
    await chrome.close();
    await sim.close();
  }
});

test('cookie tossing (issue 19, finding 7): over https the merge cookies are __Host- cookies, so ones a sibling subdomain plants under the plain names stop nothing', async () => {
  const sim = await startSim({ people: 40, merge: { publicUrl: 'https://merge.trickle.test' } });
  try {
    const person = multiOf(sim);
    // A sibling subdomain planted both names (Domain=.trickle.test) before the person came.
    const b = plantedBrowser('msid=planted-session-0000000000000; mbrowser=planted-browser-0000000000000');
    const setCookies = [];
    const get = b.get;
    b.get = async (url) => { const r = await get(url); setCookies.push(...r.headers.getSetCookie()); return r; };
    const o = await openMerge(sim, b, person);
    assert.equal(o.status, 200, o.html.slice(0, 300));
    assert.ok(o.csrf);
    for (const c of setCookies) {
      assert.match(c, /^__Host-m(sid|browser)=/, c);
      assert.match(c, /; Secure/, c);
      assert.match(c, /Path=\//, c);
      assert.doesNotMatch(c, /Domain=/i, c);
    }
    assert.deepEqual([...b.jar.keys()].sort(), ['__Host-mbrowser', '__Host-msid']);
    // The whole flow goes on beside the planted cookies: the mailed link opens the password form.
    const link = (await mailedLink(sim, b, person, o.csrf)).replace('https://merge.trickle.test', sim.merge.url);
    const opened = await b.get(link);
    assert.equal(opened.status, 200);
    assert.match(await opened.text(), /new-password/);
  } finally {
    await sim.close();
  }
});
