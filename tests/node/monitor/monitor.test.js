// The monitor: the simulator's Action sends its log lines (TRICKLE_EVENTS_URL) and the tenant
// streams its log (logStreamUrl) to it; its /metrics then say what happened, promtool accepts the
// scraped text and the shipped rules; its ingest endpoints refuse bad input with a 4xx.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { startSim } = require('../../../sim');
const { startMonitor } = require('../../../monitor/server');
const { mergeablePeople, plantAccount } = require('../../../sim/demo');
const { PRODUCTS } = require('../../../sim/seed');
const { signIn } = require('../support/sim-http');

const PROMTOOL = '/usr/bin/promtool';
const RULES = path.join(__dirname, '..', '..', '..', 'monitor', 'alerts.yml');
const TOKEN = 'monitor-test-token';

/** The value of one sample in Prometheus text, 0 when absent. */
function sample(text, name, labels = {}) {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = line.match(/^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/);
    if (!m || m[1] !== name) continue;
    const have = m[2] ? m[2].split(',') : [];
    if (want.every((w) => have.includes(w))) return Number(m[3]);
  }
  return 0;
}

const scrape = async (mon) => (await fetch(`${mon.url}/metrics`)).text();
/** Scrapes until `ok(text)` holds (the Action's sends and the log stream are in the background). */
async function scrapeUntil(mon, ok, ms = 8000) {
  const until = Date.now() + ms;
  let text = await scrape(mon);
  while (!ok(text) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    text = await scrape(mon);
  }
  return text;
}

const codeOf = (r) => { const l = r.headers.get('location') || ''; return /[?&]code=/.test(l); };

test('the Action and the tenant log stream feed the monitor; /metrics counts logins, fan-outs per product, merges and log types', async (t) => {
  const mon = await startMonitor({ token: TOKEN, products: PRODUCTS });
  const sim = await startSim({
    people: 60, logStreamUrl: `${mon.url}/log-stream`, logStreamToken: TOKEN,
    deploySettings: { eventsUrl: `${mon.url}/events`, eventsToken: TOKEN }
  });
  try {
    const secrets = Object.fromEntries(sim.mappings.TRICKLE_ACTION_SECRETS.map((s) => [s.name, s.value]));
    assert.equal(secrets.TRICKLE_EVENTS_URL, `${mon.url}/events`, 'deploy-config maps the monitor URL into the Action\'s secrets');
    assert.equal(secrets.TRICKLE_EVENTS_TOKEN, TOKEN);
    const base = sim.tenant.url;
    const noMfa = (a) => !sim.byName[a.product].db.prepare('SELECT totp_secret FROM accounts WHERE id = ?').get(a.id).totp_secret;
    const singles = (name) => sim.people.filter((p) => p.accounts.length === 1 && p.accounts[0].product === name && noMfa(p.accounts[0]));
    const used = new Set();
    const take = (p) => { assert.ok(p, 'the seed has such a person'); used.add(p); return p; };

    // Two single-product logins: fan-out acknowledged by paste.
    for (const p of singles('paste').slice(0, 2)) {
      const r = await signIn(base, take(p).email, p.accounts[0].password);
      assert.ok(codeOf(r), `signed in: HTTP ${r.status}`);
    }
    // collect cannot write: the login still succeeds, the fan-out fails for collect.
    sim.byName.collect.setMode('readonly');
    const down = take(singles('collect')[0]);
    const r1 = await signIn(base, down.email, down.accounts[0].password);
    assert.ok(codeOf(r1), 'a product down during fan-out never fails the login');
    sim.byName.collect.setMode('up');
    // A person with verified accounts in two products is sent to the merge service.
    const multi = take(mergeablePeople(sim).find((p) => !used.has(p) && p.accounts.every(noMfa)));
    const r2 = await signIn(base, multi.email, multi.accounts[0].password);
    assert.match(r2.headers.get('location') || '', /\/merge\?/, 'the merge redirect');
    // A wrong password (tenant log type fp).
    const wrong = take(singles('transfer')[0]);
    assert.equal((await signIn(base, wrong.email, 'not-the-password')).status, 401);
    // A squatter: an unverified account with a victim's address in a product the victim is not in.
    const victim = sim.people.find((p) => !used.has(p) && p.accounts.length === 1 && noMfa(p.accounts[0]) &&
      sim.byName[p.accounts[0].product].db.prepare('SELECT email_verified FROM accounts WHERE id = ?').get(p.accounts[0].id).email_verified);
    const where = PRODUCTS.find((n) => n !== victim.accounts[0].product);
    const squat = plantAccount(sim, where, { id: `${where[0]}-squatter-9`, email: victim.email, name: 'Not The Owner', password: 'squatters-own-password-1' });
    const refused = await signIn(base, victim.email, squat.password);
    assert.ok(!codeOf(refused), 'the squatter gets no code');
    // The login script sends its own lines (trickle "login"); a line a log shipper forwards
    // (here the getUser script's, as NDJSON) is counted the same way.
    const shipped = await fetch(`${mon.url}/events`, {
      method: 'POST', headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${TOKEN}` },
      body: [
        { trickle: 'get_user', outcome: 'not_found', events: [{ event: 'product_unavailable', product: 'collect', code: 'product.unavailable' }], ms: 2000 }
      ].map((l) => JSON.stringify(l)).join('\n')
    });
    assert.equal(shipped.status, 200);

    await sim.logStream.flush();
    const text = await scrapeUntil(mon, (x) => sample(x, 'trickle_log_lines_total', { stage: 'post-login' }) >= 4 &&
      sample(x, 'trickle_squatter_refusals_total') >= 1 &&
      sample(x, 'trickle_tenant_log_events_total', { type: 's' }) >= 3);
    t.diagnostic(text.split('\n').filter((l) => l && !l.startsWith('#')).join('\n'));
    assert.ok(sample(text, 'trickle_log_lines_total', { stage: 'post-login', outcome: 'continue' }) >= 3, 'three logins continued');
    assert.equal(sample(text, 'trickle_log_lines_total', { stage: 'post-login', outcome: 'redirect' }), 1, 'one was redirected');
    assert.equal(sample(text, 'trickle_merges_total', { stage: 'started' }), 1, 'one merge started');
    assert.ok(sample(text, 'trickle_fanout_acknowledged_total', { product: 'paste' }) >= 2, 'paste acknowledged both fan-outs');
    assert.ok(sample(text, 'trickle_fanout_failed_total', { product: 'collect' }) >= 1, 'collect failed its fan-out');
    assert.equal(sample(text, 'trickle_fanout_failed_total', { product: 'paste' }), 0);
    assert.equal(sample(text, 'trickle_squatter_refusals_total'), 1);
    assert.ok(sample(text, 'trickle_lazy_migrations_total') >= 1, 'the login script reported its lazy migrations');
    assert.ok(sample(text, 'trickle_log_lines_total', { stage: 'login', outcome: 'profile' }) >= 1, 'the login script sends its own lines');
    assert.equal(sample(text, 'trickle_product_unavailable_total', { product: 'collect' }), 1);
    assert.ok(sample(text, 'trickle_tenant_log_events_total', { type: 's' }) >= 3, 'successful logins streamed as type s');
    assert.ok(sample(text, 'trickle_tenant_log_events_total', { type: 'fp' }) >= 1, 'the wrong password streamed as type fp');
    assert.ok(sample(text, 'trickle_tenant_events_total', { kind: 'login', result: 'failure' }) >= 2, 'wrong password and squatter are failed logins');
    assert.ok(!/@/.test(text), 'no address in any label');
    assert.ok(!/auth0\|/.test(text), 'no user id in any label');

    if (!fs.existsSync(PROMTOOL)) {
      t.diagnostic(`skipped promtool checks: ${PROMTOOL} is missing (Debian package prometheus)`);
      return;
    }
    const metrics = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(metrics.status, 0, `promtool check metrics: ${metrics.stdout}${metrics.stderr}`);
  } finally {
    await sim.close();
    await mon.close();
  }
});

test('promtool accepts the shipped alerting rules', { skip: fs.existsSync(PROMTOOL) ? false : `${PROMTOOL} is missing (Debian package prometheus)` }, () => {
  const r = spawnSync(PROMTOOL, ['check', 'rules', RULES], { encoding: 'utf8' });
  assert.equal(r.status, 0, `promtool check rules: ${r.stdout}${r.stderr}`);
});

test('ingest endpoints refuse bad input with a 4xx and count it; nothing is counted from a refused batch', async () => {
  const mon = await startMonitor({ token: TOKEN, bodyLimit: 64 * 1024, maxLines: 10 });
  try {
    const post = (p, body, { type = 'application/json', auth = `Bearer ${TOKEN}` } = {}) =>
      fetch(`${mon.url}${p}`, { method: 'POST', headers: { 'content-type': type, ...(auth ? { authorization: auth } : {}) }, body });
    for (const p of ['/events', '/log-stream']) {
      assert.equal((await post(p, '{"trickle": ')).status, 400, `${p}: malformed JSON`);
      assert.equal((await post(p, '{"a":1}\n{nope', { type: 'application/x-ndjson' })).status, 400, `${p}: malformed NDJSON line`);
      assert.equal((await post(p, '[1, 2]')).status, 400, `${p}: lines that are not objects`);
      assert.equal((await post(p, 'null')).status, 400, `${p}: null`);
      assert.equal((await post(p, JSON.stringify(Array.from({ length: 11 }, () => ({ trickle: 'login', data: {} }))))).status, 400, `${p}: too many lines`);
      assert.equal((await post(p, JSON.stringify([{ x: 'y'.repeat(70 * 1024) }]))).status, 413, `${p}: huge body`);
      assert.equal((await post(p, 'x'.repeat(70 * 1024), { type: 'text/plain' })).status, 413, `${p}: huge text body`);
      assert.equal((await post(p, '<a/>', { type: 'application/xml' })).status, 415, `${p}: unknown content type`);
      assert.equal((await post(p, '[]', { auth: 'Bearer wrong' })).status, 401, `${p}: wrong token`);
      assert.equal((await post(p, '[]', { auth: null })).status, 401, `${p}: no token`);
    }
    assert.equal((await post('/events', '[{"outcome":"continue"}]')).status, 400, 'a line without its stage');
    assert.equal((await post('/log-stream', '[{"log_id":"1"}]')).status, 400, 'a log entry without data');
    // A good batch after all that; a repeated log_id (Auth0 retrying a batch) counts once.
    assert.equal((await post('/events', JSON.stringify({ trickle: 'post-login', outcome: 'continue', events: [{ event: 'fanout_failed', product: 'a'.repeat(200) }] }))).status, 200);
    const entry = { log_id: 'L1', data: { type: 'ss', date: new Date().toISOString(), user_id: 'auth0|someone', description: 'Success Signup' } };
    assert.equal((await post('/log-stream', JSON.stringify([entry, entry]))).status, 200);
    assert.equal((await post('/log-stream', JSON.stringify([entry]))).status, 200);
    const text = await scrape(mon);
    assert.equal(sample(text, 'trickle_ingest_lines_total', { endpoint: 'events' }), 1, 'only the good line');
    assert.equal(sample(text, 'trickle_tenant_log_events_total', { type: 'ss' }), 1, 'one signup, however often delivered');
    assert.equal(sample(text, 'trickle_fanout_failed_total', { product: 'other' }), 1, 'a malformed product name is "other"');
    assert.ok(sample(text, 'trickle_ingest_rejected_total', { endpoint: 'events', reason: 'unauthorized' }) >= 2);
    assert.ok(sample(text, 'trickle_ingest_rejected_total', { endpoint: 'log-stream', reason: 'too_large' }) >= 2);
    assert.ok(!/auth0\|someone/.test(text), 'no user id in the metrics');
  } finally {
    await mon.close();
  }
});

test('the product label is capped: beyond the first names seen, products count as "other"', async () => {
  const mon = await startMonitor({ maxProducts: 3 });
  try {
    const lines = Array.from({ length: 6 }, (_, i) => ({ trickle: 'post-login', outcome: 'continue', events: [{ event: 'fanout_acknowledged', product: `p${i}` }] }));
    assert.equal((await fetch(`${mon.url}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(lines) })).status, 200);
    const text = await scrape(mon);
    assert.equal(sample(text, 'trickle_fanout_acknowledged_total', { product: 'p2' }), 1);
    assert.equal(sample(text, 'trickle_fanout_acknowledged_total', { product: 'other' }), 3);
    assert.equal(sample(text, 'trickle_fanout_acknowledged_total', { product: 'p3' }), 0);
  } finally {
    await mon.close();
  }
});

test('trickle monitor: --help, a bad --port refused with exit 2, and the command serves /metrics until stopped', async () => {
  const bin = path.join(__dirname, '..', '..', '..', 'bin', 'trickle.js');
  const help = spawnSync(process.execPath, [bin, 'monitor', '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Usage: trickle monitor/);
  assert.equal(spawnSync(process.execPath, [bin, 'monitor', '--port', 'x'], { encoding: 'utf8' }).status, 2);
  const { spawn } = require('child_process');
  const child = spawn(process.execPath, [bin, 'monitor', '--port', '0'], { env: { ...process.env, TRICKLE_MONITOR_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c) => { out += c; const m = out.match(/listening on (http:\/\/\S+)/); if (m) resolve(m[1]); });
      child.once('exit', (code) => reject(new Error(`exited ${code}`)));
      setTimeout(() => reject(new Error(`no listening line: ${out}`)), 10000).unref();
    });
    assert.equal((await fetch(`${url}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[]' })).status, 401, 'the token from the environment');
    const ok = await fetch(`${url}/events`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: '[{"trickle":"post-login","outcome":"continue","events":[]}]' });
    assert.equal(ok.status, 200);
    assert.match(await (await fetch(`${url}/metrics`)).text(), /trickle_log_lines_total\{stage="post-login",outcome="continue"\} 1/);
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
});
