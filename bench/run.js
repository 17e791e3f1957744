#!/usr/bin/env node
// `npm run bench`: artefact sizes, cold start, and warm chain decision time against the plain-JS
// baseline in bench/baseline/, measured in the same run. Writes bench/results.json.
'use strict';
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const crypto = require('crypto');
const h = require('../tests/node/support/harness');
const baseline = require('./baseline/chain');
const { verifyBench } = require('./verify');
const { bulkBench } = require('./bulk');
const { backfillBench } = require('./backfill');
const { loadBench } = require('./load');

/** Loads the baseline into a container like the Action's, so both run in the same kind of realm. */
function loadBaseline(ctr) {
  const text = fs.readFileSync(path.join(__dirname, 'baseline', 'chain.js'), 'utf8');
  const module = { exports: {} };
  vm.compileFunction(text, ['exports', 'require', 'module'], { parsingContext: ctr.context })(module.exports, ctr.sandbox.require, module);
  return module.exports;
}

const DIST = path.join(__dirname, '..', 'dist', 'auth0');
const OUT = path.join(__dirname, 'results.json');
const SECRET = 'bench-secret-0123456789-0123456789-abcdef';
const PRODUCTS = [{ name: 'paste', url: 'http://127.0.0.1:9', token: 't' }, { name: 'collect', url: 'http://127.0.0.1:9', token: 't' }, { name: 'transfer', url: 'http://127.0.0.1:9', token: 't' }];
const SECRETS = { TRICKLE_PRODUCTS: JSON.stringify(PRODUCTS), TRICKLE_MERGE_URL: 'https://merge.example/merge', TRICKLE_TOKEN_SECRET: SECRET };

// Products answer instantly: the bench measures trickle, not the network.
const fetchStub = async (url, init) => (init && init.method === 'PUT')
  ? new Response(null, { status: 204 })
  : new Response(JSON.stringify({ accounts: [{ id: 'p1', email: 'solo@example.com', password: { algorithm: 'bcrypt', hash: { value: '$2b$04$2SLD2GSVqXu1bzihaHbNXe2S7tEGVjCQtp2uGEDbD30M2QXPjZr2O' } } }] }), { status: 200 });

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const ms = (ns) => Number(ns) / 1e6;
const round = (x, d = 4) => Number(x.toFixed(d));

function api(rec) {
  return {
    user: { setAppMetadata: (k, v) => { rec.writes[k] = v; } },
    redirect: { canRedirect: () => true, sendUserTo: (url, o) => { rec.redirect = { url, o }; } },
    access: { deny: (r) => { rec.deny = r; } }
  };
}

function users() {
  const now = Math.floor(Date.now() / 1000);
  const jti = 'a'.repeat(32);
  const multi = { user_id: 'auth0|tp_multi', email: 'multi@example.com', app_metadata: { trickle: { v: 1, person_id: 'tp_multi', accounts: [{ product: 'collect', id: 'c7', verified: true }, { product: 'paste', id: 'p2', proof: 'password', verified: true }, { product: 'transfer', id: 't9', verified: true }] } } };
  const resuming = JSON.parse(JSON.stringify(multi));
  resuming.app_metadata.trickle.merge = { attempts: 1, jti, issued_at: now, shown: ['collect:c7', 'transfer:t9'] };
  const token = baseline.sign({ iss: 'trickle-merge', aud: 'trickle', sub: multi.user_id, state: 'st', jti, outcome: 'merged', iat: now, exp: now + 300 }, SECRET);
  const done = { user_id: 'auth0|tp_solo', email: 'solo@example.com', app_metadata: { migrated: true, trickle: { v: 1, person_id: 'tp_solo', accounts: [{ product: 'paste', id: 'p1', proof: 'password', fanout: true }] } } };
  const event = (user, request = { query: {}, body: {} }) => ({ user, secrets: SECRETS, request, connection: { name: 'trickle' } });
  // The mix of one login each: a returning migrated person, a merge redirect, a merge resume.
  return [
    ['execute', event(done)],
    ['execute', event(multi)],
    ['continue', event(resuming, { query: { state: 'st' }, body: { session_token: token } })]
  ];
}

function loadAction(ctr) {
  const text = fs.readFileSync(path.join(DIST, 'actions/trickle-post-login/code.js'), 'utf8');
  const module = { exports: {} };
  vm.compileFunction(text, ['exports', 'require', 'module'], { parsingContext: ctr.context })(module.exports, ctr.sandbox.require, module);
  return module.exports;
}

async function coldStart(runs = 15) {
  const action = [];
  const db = [];
  const [[, ev]] = users();
  for (let i = 0; i < runs; i++) {
    const ctr = h.container({ fetch: fetchStub });
    const t0 = process.hrtime.bigint();
    const a = loadAction(ctr);
    await a.onExecutePostLogin(ev, api({ writes: {} }));
    action.push(ms(process.hrtime.bigint() - t0));

    const dctr = h.container({ fetch: fetchStub, configuration: SECRETS });
    const t1 = process.hrtime.bigint();
    const text = fs.readFileSync(path.join(DIST, 'database-connections/trickle/login.js'), 'utf8');
    const login = vm.compileFunction('return ' + text, [], { parsingContext: dctr.context })();
    const r = await h.invoke(login, ['solo@example.com', 'solo-pass'], { settleMs: 0 });
    db.push(ms(process.hrtime.bigint() - t1));
    if (r.args[0]) throw new Error('bench login failed: ' + r.args[0].message);
  }
  return { action: median(action), db_login: median(db) };
}

async function warm(rounds = 11, logins = 1500) {
  const ctr = h.container({ fetch: fetchStub });
  const action = loadAction(ctr);
  // Events are made inside the realm that handles them, as the platform does.
  const inRealm = (c, value) => vm.runInContext(`JSON.parse(${JSON.stringify(JSON.stringify(value))})`, c.context);
  const mix = users().map(([phase, ev]) => [phase, inRealm(ctr, ev)]);
  const wasmHandler = (phase, ev) => (phase === 'continue' ? action.onContinuePostLogin : action.onExecutePostLogin)(ev, api({ writes: {} }));
  const bctr = h.container({ fetch: fetchStub });
  const base = loadBaseline(bctr);
  const baseMix = users().map(([phase, ev]) => [phase, inRealm(bctr, ev)]);
  const baseHandler = async (phase, ev) => {
    const rec = { writes: {} };
    const a = api(rec);
    try {
      const r = base.chain(phase, ev, Math.floor(Date.now() / 1000));
      for (const [k, v] of Object.entries(r.writes)) a.user.setAppMetadata(k, v);
      if (r.redirect) a.redirect.sendUserTo(r.redirect.url, { query: r.redirect.query });
      if (r.deny) a.access.deny(r.deny);
      await Promise.all(r.fanout.map((f) => fetchStub(PRODUCTS[0].url + f.path, { method: f.method, body: JSON.stringify(f.body) })));
    } catch (e) {
      a.access.deny(e.message);
    }
  };
  // Sanity: both make the same decisions on the mix.
  const check = async (handler) => {
    const out = [];
    for (const [phase, ev] of mix) {
      const rec = { writes: {} };
      await (handler === 'wasm' ? (phase === 'continue' ? action.onContinuePostLogin : action.onExecutePostLogin)(ev, api(rec)) : baseHandler(phase, ev).then(() => null));
      out.push(rec);
    }
    return out;
  };
  const got = await check('wasm');
  if (!got[1].redirect || got[2].deny || got[2].writes.migrated !== true) throw new Error('wasm chain did not decide as expected: ' + JSON.stringify(got));
  const time = async (handler) => {
    const events = handler === wasmHandler ? mix : baseMix;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < logins; i++) {
      const [phase, ev] = events[i % events.length];
      await handler(phase, ev);
    }
    return ms(process.hrtime.bigint() - t0) / logins;
  };
  await time(wasmHandler); await time(baseHandler); // warm-up
  // Rounds alternate, and the ratio is the median of each round's own ratio: the two sides of a
  // round run back to back, so a machine that speeds up or slows down during the run (a shared
  // host) moves both alike instead of skewing one median against the other.
  const w = []; const b = []; const ratios = [];
  for (let r = 0; r < rounds; r++) {
    const tw = await time(wasmHandler);
    const tb = await time(baseHandler);
    w.push(tw); b.push(tb); ratios.push(tw / tb);
  }
  return { wasm: median(w), baseline: median(b), ratio: median(ratios), spread: [Math.min(...ratios), Math.max(...ratios)] };
}

async function main() {
  if (process.argv.includes('--chain')) {
    // The warm chain figure alone (for work on the chain's boundary); writes nothing.
    const w = await warm();
    console.log(`chain warm: trickle ${w.wasm.toFixed(4)} ms, baseline ${w.baseline.toFixed(4)} ms per login, chain_vs_baseline ${w.ratio.toFixed(3)} (rounds ${w.spread.map((x) => x.toFixed(2)).join('–')})`);
    return;
  }
  if (process.argv.includes('--product-api')) {
    // The product API figures alone, stored beside the others.
    const results = fs.existsSync(OUT) ? JSON.parse(fs.readFileSync(OUT, 'utf8')) : {};
    results.product_api = { measured_at: new Date().toISOString(), ...(await require('./product-api').productApiBench()) };
    fs.writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
    const r = results.product_api;
    console.log(`product API: ${r.api.per_second}/s p99 ${r.api.p99_ms} ms; plain SQL ${r.baseline.per_second}/s p99 ${r.baseline.p99_ms} ms; p99 ratio ${r.p99_vs_baseline} (aim ≤ 1.5)`);
    return;
  }
  if (process.argv.includes('--sizes')) {
    // The artefact sizes per login build alone, stored beside the others.
    const results = fs.existsSync(OUT) ? JSON.parse(fs.readFileSync(OUT, 'utf8')) : {};
    results.sizes_by_build = { measured_at: new Date().toISOString(), ...require('./sizes').sizesBench() };
    fs.writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
    return;
  }
  const sizes = JSON.parse(fs.readFileSync(path.join(DIST, 'sizes.json'), 'utf8'));
  console.log('artefact sizes per login build:');
  const sizesByBuild = { measured_at: new Date().toISOString(), ...require('./sizes').sizesBench() };
  const cold = await coldStart();
  const w = await warm();
  const load = await loadBench();
  // `--logins` measures the login-path figures only and keeps the earlier verify and bulk ones.
  const logins = process.argv.includes('--logins');
  const results = fs.existsSync(OUT) ? JSON.parse(fs.readFileSync(OUT, 'utf8')) : {};
  let verify = results.verify;
  let bulk = results.bulk;
  if (!logins) {
    console.log('password verification (median per verify):');
    verify = await verifyBench();
    console.log('bulk migration:');
    bulk = await bulkBench();
    bulk.backfill = { measured_at: new Date().toISOString(), ...(await backfillBench()) };
    console.log('product API look-ups:');
    results.product_api = { measured_at: new Date().toISOString(), ...(await require('./product-api').productApiBench()) };
  }
  Object.assign(results, {
    measured_at: new Date().toISOString(),
    node: process.version,
    artefact_bytes: { action: sizes.action, db_login: sizes.db_login, db_get_user: sizes.db_get_user, rule: sizes.rule },
    cold_start_ms: round(cold.action, 2),
    cold_start_ms_by_artefact: { action: round(cold.action, 2), db_login: round(cold.db_login, 2) },
    chain_warm_ms: round(w.wasm),
    chain_baseline_warm_ms: round(w.baseline),
    chain_vs_baseline: round(w.ratio, 3),
    chain_vs_baseline_rounds: w.spread.map((x) => round(x, 3)),
    login_concurrency: load.login_concurrency,
    login_concurrency_wasm: load.login_concurrency_wasm,
    event_loop_block_ms: load.event_loop_block_ms,
    sizes_by_build: sizesByBuild,
    verify,
    bulk
  });
  fs.writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
  console.log(`artefact bytes: action ${sizes.action}, db_login ${sizes.db_login}, db_get_user ${sizes.db_get_user}, rule ${sizes.rule}`);
  console.log(`cold start (load, decompress, compile, first decision): action ${cold.action.toFixed(2)} ms, db login ${cold.db_login.toFixed(2)} ms`);
  console.log(`warm chain per login: wasm ${w.wasm.toFixed(4)} ms, plain-JS baseline ${w.baseline.toFixed(4)} ms, ratio ${w.ratio.toFixed(3)} (rounds ${w.spread.map((x) => x.toFixed(2)).join('–')})`);
  console.log(`wrote ${path.relative(process.cwd(), OUT)}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
