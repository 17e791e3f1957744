// The migration dashboard served by `trickle monitor`: a simulator streams its log and the
// Action's events to a monitor, people sign in, and Chromium shows charts with data in them.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const { chromium } = require('playwright-core');
const { startSim } = require('../../../sim');
const { startMonitor } = require('../../../monitor/server');
const { signInThroughMfa } = require('../support/sim-http');

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'trickle.js');

/** `trickle monitor` started as a user starts it; resolves to {url, stop}. */
function runMonitor(env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'monitor', '--port', '0'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) resolve({ url: m[1], stop: () => new Promise((r) => { child.once('exit', r); child.kill('SIGTERM'); }) });
    });
    child.once('exit', (code) => reject(new Error(`trickle monitor exited ${code}: ${out}`)));
  });
}

test('Chromium: the dashboard charts the migration live (a screenshot with non-empty charts)', { skip: !fs.existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}`, timeout: 120000 }, async (t) => {
  let sim = null;
  const monitor = await startMonitor({ sampleMs: 250, progress: async () => sim && {
    total: sim.people.length, lazy: sim.tenant.state.counters.lazy_migrated, imported: 0, backfilled: 0,
    remaining: sim.people.length - sim.tenant.state.users.size
  } });
  t.after(() => monitor.close());
  sim = await startSim({ people: 30, logStreamUrl: `${monitor.url}/log-stream`, deploySettings: { eventsUrl: `${monitor.url}/events` } });
  t.after(() => sim.close());
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(`${monitor.url}/dashboard`);

  // People sign in while the page is open: one product down makes a fan-out fail.
  const singles = sim.people.filter((p) => p.accounts.length === 1).slice(0, 6);
  sim.byName.collect.setMode('readonly');
  for (const p of singles) assert.equal((await signInThroughMfa(sim, p.email, p.accounts[0].password)).status, 302, p.email);
  sim.byName.collect.setMode('up');
  await sim.logStream.flush();

  // The page polls: wait until its charts hold the figures.
  await page.waitForFunction(() => {
    const c = window.trickleCharts;
    const last = (plot, i) => plot && plot.data[i][plot.data[i].length - 1];
    return c && c.progress && c.fanout && c.tenant && last(c.progress, 1) > 0 && last(c.fanout, 1) > 0 && last(c.tenant, 1) > 0;
  }, null, { timeout: 20000 });
  const charts = await page.evaluate(() => Object.fromEntries(Object.entries(window.trickleCharts).map(([k, p]) => [k, {
    points: p.data[0].length, series: p.series.slice(1).map((s, i) => ({ label: s.label, last: p.data[i + 1][p.data[i + 1].length - 1] }))
  }])));
  for (const name of ['progress', 'migrations', 'fanout', 'tenant']) assert.ok(charts[name].points >= 2, `${name} has points`);
  const value = (chart, label) => charts[chart].series.find((s) => s.label === label).last;
  assert.equal(value('progress', 'migrated lazily'), sim.tenant.state.counters.lazy_migrated);
  assert.ok(value('progress', 'migrated lazily') >= singles.length);
  assert.equal(value('progress', 'still to go'), sim.people.length - sim.tenant.state.users.size);
  assert.ok(value('fanout', 'fan-out acknowledged') > 0, 'the Action\'s fan-out events arrived');
  const collectPeople = singles.filter((p) => p.accounts[0].product === 'collect').length;
  if (collectPeople) assert.ok(value('fanout', 'fan-out failed') >= collectPeople, 'the failed fan-out shows');
  assert.ok(value('tenant', 'logins') >= singles.length, 'the tenant log stream\'s logins show');
  assert.ok(await page.locator('.u-over').count() >= 4, 'uPlot drew four plots');
  assert.equal(await page.locator('#progress [data-key="lazy"] b').innerText(), String(sim.tenant.state.counters.lazy_migrated));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-dashboard-'));
  const file = path.join(dir, 'dashboard.png');
  await page.screenshot({ path: file, fullPage: true });
  assert.ok(fs.statSync(file).size > 20000, 'a screenshot with something in it');
  assert.deepEqual(errors, [], 'no script errors and no CSP violations');

  // The page and its scripts come from the monitor itself, under a CSP that allows nothing else.
  const res = await fetch(`${monitor.url}/dashboard`);
  assert.match(res.headers.get('content-security-policy'), /default-src 'none'; script-src 'self'/);
  assert.doesNotMatch(await res.text(), /https?:\/\/|<script>/, 'no CDN, no inline script');
  assert.equal((await fetch(`${monitor.url}/dashboard/uPlot.iife.min.js`)).status, 200);
  assert.equal((await fetch(`${monitor.url}/dashboard/..%2Fserver.js`)).status, 404);
});

test('trickle monitor: POST /progress sets the progress figures (bearer token, bad figures refused) and /metrics exports them', { timeout: 30000 }, async (t) => {
  const mon = await runMonitor({ TRICKLE_MONITOR_TOKEN: 'progress-token' });
  t.after(() => mon.stop());
  const post = (body, token = 'progress-token') => fetch(`${mon.url}/progress`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  assert.equal((await post({ lazy: 3 }, 'wrong')).status, 401);
  assert.equal((await post({ lazy: -1 })).status, 400);
  assert.equal((await post({ lazy: 1.5 })).status, 400);
  assert.equal((await post({ nothing: 1 })).status, 400);
  assert.equal((await post({ total: 100, lazy: 30, imported: 50, backfilled: 45, remaining: 20 })).status, 200);
  const metrics = await (await fetch(`${mon.url}/metrics`)).text();
  assert.match(metrics, /trickle_migration_people\{state="lazy"\} 30/);
  assert.match(metrics, /trickle_migration_people\{state="remaining"\} 20/);
  const series = await (await fetch(`${mon.url}/dashboard/series`)).json();
  assert.equal(series.progress.imported, 50);
  assert.ok(Array.isArray(series.t) && series.t.length >= 1);
});
