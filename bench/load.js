// Logins under load, measured in one run:
//   login_concurrency  N concurrent sign-ins through the built login.js in one container (a
//                      product answering in 30 ms, bcrypt cost 10), against a plain-JS baseline
//                      doing the same look-up and verifying with the native `bcrypt` module;
//   login_concurrency_wasm  the same without the native modules: bcrypt in wasm slices;
//   event_loop_block   the longest single stall of the event loop during one verification
//                      through the built login.js (perf_hooks.monitorEventLoopDelay), with the
//                      runtime's native modules (what a custom-database script may require) and,
//                      under `wasm`, without them (the wasm computing in slices).
'use strict';
const fs = require('fs');
const path = require('path');
const http = require('http');
const { monitorEventLoopDelay } = require('perf_hooks');
const bcrypt = require('bcrypt');
const argon2 = require('argon2');
const runtime = require('../sim/runtime');

const LOGIN = path.join(__dirname, '..', 'dist', 'auth0', 'database-connections', 'trickle', 'login.js');
const PASSWORD = 'correct horse battery staple';

/** A product answering every look-up after `delayMs` with one account of `descriptor`. */
async function product(descriptor, delayMs = 30) {
  const server = http.createServer((req, res) => {
    const email = new URL(req.url, 'http://x').searchParams.get('email');
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ accounts: [{ id: `id-${email}`, email, email_verified: true, password: descriptor }] }));
    }, delayMs);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return { url, close: () => new Promise((r) => server.close(r)) };
}

/** The built login.js compiled as Auth0 compiles it, in a container that may require `modules`. */
function loginScript(url, modules) {
  const configuration = { TRICKLE_PRODUCTS: JSON.stringify([{ name: 'p', url, token: 't' }]) };
  const ctr = runtime.container({ configuration }, { modules });
  return runtime.compileSource(fs.readFileSync(LOGIN, 'utf8'), ctr);
}

const call = (fn, email, password) => new Promise((resolve) => fn(email, password, (err, profile) => resolve([err, profile])));
const p99 = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)]; };

async function concurrency(modules = ['bcrypt'], plan = [[1, 60], [8, 25], [32, 8]]) {
  const hash = await bcrypt.hash(PASSWORD, 10);
  const p = await product({ algorithm: 'bcrypt', hash: { value: hash } });
  const login = loginScript(p.url, modules);
  // The baseline: the same look-up over HTTP, then native bcrypt on the thread pool.
  const baseline = async (email) => {
    const res = await fetch(`${p.url}/trickle/accounts?email=${encodeURIComponent(email)}`, { headers: { authorization: 'Bearer t' } });
    const body = await res.json();
    if (!(await bcrypt.compare(PASSWORD, body.accounts[0].password.hash.value))) throw new Error('baseline: no match');
  };
  const trickle = async (email) => {
    const [err] = await call(login, email, PASSWORD);
    if (err) throw new Error('trickle: ' + err.message);
  };
  // One round: n logins at once, each one's latency kept.
  const round = async (fn, n, r, lat) => {
    await Promise.all(Array.from({ length: n }, async (_, i) => {
      const t0 = process.hrtime.bigint();
      await fn(`user${r}-${i}@example.com`);
      lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }));
  };
  // Rounds of trickle and of the baseline alternate, so that a shared machine's changes of speed
  // during the run fall on both alike.
  const run = async (n, rounds) => {
    const t = []; const b = [];
    for (let r = 0; r < rounds; r++) { await round(trickle, n, r, t); await round(baseline, n, r, b); }
    return [p99(t), p99(b)];
  };
  await run(4, 2); // warm-up
  const out = {};
  for (const [n, rounds] of plan) {
    const [t, b] = await run(n, rounds);
    out[n] = { trickle_p99_ms: Number(t.toFixed(1)), native_p99_ms: Number(b.toFixed(1)), p99_vs_native: Number((t / b).toFixed(3)) };
    console.log(`  ${String(n).padStart(2)} concurrent logins${modules.length ? '' : ' (wasm slices)'}: p99 trickle ${t.toFixed(1)} ms, native baseline ${b.toFixed(1)} ms, ratio ${(t / b).toFixed(3)}`);
  }
  await p.close();
  return out;
}

async function blockOf(descriptor, modules) {
  const p = await product(descriptor, 5);
  const login = loginScript(p.url, modules);
  await call(login, 'warm@example.com', 'not it'); // load the wasm first: the stall measured is the verification
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const t0 = process.hrtime.bigint();
  const [err] = await call(login, 'user@example.com', PASSWORD);
  const total = Number(process.hrtime.bigint() - t0) / 1e6;
  // A stall is recorded at the next tick after it: let the loop turn before reading.
  await new Promise((r) => setTimeout(r, 50));
  h.disable();
  await p.close();
  return { ms: Number((h.max / 1e6).toFixed(1)), total_ms: Number(total.toFixed(1)), signed_in: !err };
}

async function eventLoop() {
  const cases = {
    bcrypt10: { algorithm: 'bcrypt', hash: { value: await bcrypt.hash(PASSWORD, 10) } },
    // Cost 14 (1.5 s) is over the one-second budget: refused before any work, never verified.
    bcrypt14: { algorithm: 'bcrypt', hash: { value: await bcrypt.hash(PASSWORD, 14) } },
    bcrypt13: { algorithm: 'bcrypt', hash: { value: await bcrypt.hash(PASSWORD, 13) } },
    argon2_limit: { algorithm: 'argon2', hash: { value: await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: 65536, timeCost: 10, parallelism: 8 }) } }
  };
  const out = {};
  const fallback = {};
  const fallbackTotal = {};
  const signedIn = {};
  for (const [name, d] of Object.entries(cases)) {
    const native = await blockOf(d, ['bcrypt', 'argon2']);
    const wasm = await blockOf(d, []);
    out[name] = native.ms;
    fallback[name] = wasm.ms;
    fallbackTotal[name] = wasm.total_ms;
    signedIn[name] = native.signed_in && wasm.signed_in;
    console.log(`  ${name}: longest event-loop stall ${native.ms} ms with the runtime's native modules, ${wasm.ms} ms with the wasm in slices (login ${wasm.total_ms} ms)${native.signed_in ? '' : ' (refused: over the work budget)'}`);
  }
  // `wasm`: the longest stall without the native modules; `wasm_login_ms`: how long that login took.
  return { ...out, wasm: fallback, wasm_login_ms: fallbackTotal, signed_in: signedIn };
}

async function loadBench() {
  console.log('logins under load:');
  const login_concurrency = await concurrency();
  const login_concurrency_wasm = await concurrency([], [[1, 20], [8, 8], [32, 3]]);
  const event_loop_block_ms = await eventLoop();
  return { login_concurrency, login_concurrency_wasm, event_loop_block_ms };
}

module.exports = { loadBench };

if (require.main === module) {
  loadBench().then((r) => console.log(JSON.stringify(r, null, 2)), (e) => { console.error(e); process.exit(1); });
}
