// Ownership in the bulk phase: only accounts an imported user owns are ever told its Auth0 id.
// The attack: someone pre-registers the victim's address in a product that never verified it,
// signs in at the tenant before the victim (lazy migration creates the person's tenant user with
// the attacker's password), skips the merge, and waits for export → import → backfill to write
// that user's id into the victim's other accounts. Also: accounts a record gives no proof are
// never backfilled, and malformed files or state stop with a stable code and change nothing.
'use strict';
const { scratchDatabase } = require('../support/databases');
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { bulkSim, cli, cliOk: run, summaryOf, exportedAccounts, accountLinks, assertOwnedOnly, signIn } = require('../support/bulk');
const { FORMATS } = require('../../../sim/seed');
const { openDb } = require('../../../lib/db');
const { verify } = require('../../../cli/reconcile');

const VICTIM = 'vera.victim@example.com';
const userOf = (sim, email) => [...sim.tenant.state.users.values()].find((u) => u.email === email.toLowerCase());

/** Adds one account to a simulated product's own database, hashed in that product's format. */
function plant(b, product, { id, email, verified, password, created }) {
  const stored = FORMATS[product].hash(password, null, { bcryptCost: 4, pbkdf2Iterations: 1000 });
  b.sim.byName[product].db.prepare(`INSERT INTO accounts (id, email, email_norm, email_verified, name, created_at, password_hash, password_salt)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(id, email, email.trim().toLowerCase(), verified ? 1 : 0, 'Vera Victim', created, stored.hash, stored.salt);
}

const auth0IdOf = (b, product, id) => b.sim.byName[product].db.prepare('SELECT auth0_user_id FROM accounts WHERE id = ?').get(id).auth0_user_id;

function withApi(b) {
  for (const p of b.cfg.products) p.api = { url: b.sim.byName[p.name].url, token: b.sim.byName[p.name].token };
  fs.writeFileSync(b.configFile, JSON.stringify(b.cfg, null, 2));
}

test('pre-registration, skip, then the bulk phase: the victim\'s other accounts get no Auth0 id, and the person is counted as already present, not imported', async () => {
  const b = await bulkSim({ people: 60, importRate: 5000 });
  try {
    // The attacker signs up in paste with the victim's address; paste never verified it.
    plant(b, 'paste', { id: 'p-attacker', email: VICTIM.toUpperCase(), verified: false, password: 'attacker pw 1234', created: '2024-01-01T00:00:00.000Z' });
    // And signs in at the tenant before the victim does: lazy migration creates the person's
    // tenant user with the attacker's password. Paste's write path is down at that moment, so the
    // fan-out of the id is left for later (it never blocks a login) and nothing is linked yet.
    b.sim.byName.paste.setMode('readonly');
    const location = await signIn(b.sim, VICTIM, 'attacker pw 1234');
    b.sim.byName.paste.setMode('up');
    assert.match(location || '', /code=/, 'the lazy login let the attacker in');
    const lazy = userOf(b.sim, VICTIM);
    assert.ok(lazy, 'the lazy login created the tenant user');
    assert.notEqual((lazy.app_metadata || {}).bulkImported, true);
    assert.equal(auth0IdOf(b, 'paste', 'p-attacker'), null, 'the fan-out did not get through');
    // The victim's accounts, verified by their products (the products take sign-ups while the
    // migration runs). The attacker never goes through the merge that would prove them.
    plant(b, 'collect', { id: 'c-victim', email: VICTIM, verified: true, password: 'victim collect pw', created: '2025-03-01T00:00:00.000Z' });
    plant(b, 'transfer', { id: 't-victim', email: VICTIM, verified: true, password: 'victim transfer pw', created: '2025-05-01T00:00:00.000Z' });

    withApi(b);
    await run(['prelink', '--config', b.configFile]);
    const exp = summaryOf((await run(['export', '--config', b.configFile, '--out', b.out])).stdout);
    assert.ok(exportedAccounts(b.out).has('collect/c-victim'), 'the victim is in the export');
    const imp = summaryOf((await run(['import', '--config', b.configFile, '--out', b.out])).stdout);
    assert.equal(imp.already_present, 1, 'the person is counted as already present');
    assert.deepEqual(imp.already_present_list.map((p) => p.email), [VICTIM]);
    assert.equal(imp.inserted, exp.exported - 1, 'and not as imported');
    const state = await openDb(b.cfg.state);
    const present = await state.all('SELECT email, person_id, codes FROM import_present');
    await state.close();
    assert.equal(present.length, 1);
    assert.equal(present[0].email, VICTIM);
    assert.match(present[0].codes, /DUPLICATED_USER|CONFLICT/);
    assert.equal(`auth0|${present[0].person_id}`, lazy.user_id, 'the state names the person the tenant already had');

    // An upsert would rewrite the attacker's user as bulk-imported with every account proven,
    // for the fan-out at the next sign-in to tell: refused, the user left as it was.
    const metadata = JSON.stringify(userOf(b.sim, VICTIM).app_metadata);
    const upsert = await cli(['import', '--config', b.configFile, '--out', b.out, '--upsert']);
    assert.equal(upsert.code, 1);
    assert.match(upsert.stderr, /import\.upsert_refused/);
    assert.equal(JSON.stringify(userOf(b.sim, VICTIM).app_metadata), metadata);

    const bf = summaryOf((await run(['backfill', '--config', b.configFile])).stdout);
    assert.equal(bf.present, 1);
    const api = summaryOf((await run(['backfill', '--config', b.configFile, '--via', 'api'])).stdout);
    assert.equal(api.failed, 0);
    assert.equal(api.present, 1);
    for (const [product, id] of [['collect', 'c-victim'], ['transfer', 't-victim'], ['paste', 'p-attacker']]) {
      assert.equal(auth0IdOf(b, product, id), null, `${product}/${id} was told no Auth0 id`);
    }
    // Everyone else the import brought in was backfilled as before.
    const links = await accountLinks(b.cfg);
    for (const [key, a] of exportedAccounts(b.out)) {
      if (a.email === VICTIM) continue;
      assert.equal(links.get(key), a.owned ? a.auth0 : null, key);
    }

    // verify: present through the lazy flow, not cleanly migrated, and not an error.
    const v = await verify(b.cfg, b.cfg.tenant);
    const waiting = v.awaiting_proof.find((p) => p.email === VICTIM);
    assert.ok(waiting, 'the victim is listed as awaiting proof');
    assert.equal(waiting.via, 'lazy');
    assert.deepEqual(waiting.accounts.sort(), ['collect/c-victim', 'paste/p-attacker', 'transfer/t-victim']);
    assert.deepEqual([v.missing.length, v.duplicated.length, v.mislinked.length], [0, 0, 0]);
    assert.equal(v.lazy, 1);
    assert.equal(v.imported, v.people - 1);
    const out = await cli(['verify', '--config', b.configFile]);
    assert.equal(out.code, 0, out.stdout + out.stderr);
    assert.equal(summaryOf(out.stdout).lazy, 1);
    assert.ok(out.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).some((l) => l.event === 'awaiting_proof' && l.email === VICTIM && l.via === 'lazy'), out.stdout);
  } finally {
    await b.close();
  }
});

/** Rewrites one export file and its manifest entry (as the exporter would have written them). */
function rewrite(dir, name, records) {
  const text = JSON.stringify(records);
  fs.writeFileSync(path.join(dir, name), text);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const f = manifest.files.find((x) => x.name === name);
  f.bytes = Buffer.byteLength(text);
  f.sha256 = crypto.createHash('sha256').update(text).digest('hex');
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
}

test('an account a multi-account record gives no proof is not backfilled, by either path; owned accounts are', async () => {
  const b = await bulkSim({ people: 200, importRate: 5000 });
  try {
    withApi(b);
    await run(['prelink', '--config', b.configFile]);
    await run(['export', '--config', b.configFile, '--out', b.out]);
    // Unowned accounts as the exporter marks them: proof left out of the second account of the
    // first few people with several accounts (the first keeps its proof).
    const name = 'users-00001.json';
    const records = JSON.parse(fs.readFileSync(path.join(b.out, name), 'utf8'));
    // People with several accounts, one of them owned (its hash imported): in the first two the
    // proof is taken away (not told), in the next two it stays (told); their other accounts
    // wait for the merge flow either way.
    const multi = records.filter((r) => r.app_metadata.trickle.accounts.length > 1 && r.app_metadata.trickle.accounts.some((a) => a.proof)).slice(0, 4);
    assert.ok(multi.length === 4, 'the seed has people with several accounts');
    const key = (a) => `${a.product}/${a.id}`;
    const stripped = multi.slice(0, 2).map((r) => { const a = r.app_metadata.trickle.accounts.find((x) => x.proof); delete a.proof; return key(a); });
    const kept = multi.slice(2).map((r) => key(r.app_metadata.trickle.accounts.find((x) => x.proof)));
    const waiting = multi.flatMap((r) => r.app_metadata.trickle.accounts.filter((x) => !x.proof).map(key));
    rewrite(b.out, name, records);
    // Half through the product databases, half through the product API.
    await run(['import', '--config', b.configFile, '--out', b.out]);
    const bf = summaryOf((await run(['backfill', '--config', b.configFile, '--via', 'api'])).stdout);
    assert.equal(bf.failed, 0);
    assert.ok(bf.unowned >= stripped.length);
    const links = await accountLinks(b.cfg);
    for (const k of [...stripped, ...waiting]) assert.equal(links.get(k), null, `${k} has no proof: not told`);
    for (const k of kept) assert.match(links.get(k) || '', /^auth0\|/, `${k} is owned: told`);
    await run(['backfill', '--config', b.configFile]);
    const counts = await assertOwnedOnly(assert, b.cfg, b.out);
    assert.ok(counts.unowned >= waiting.length && counts.owned > 100, JSON.stringify(counts));
    // verify says the people are imported, with accounts awaiting their proof (the merge at
    // first sign-in), and still exits 0: nothing is missing, duplicated or mislinked.
    const v = await verify(b.cfg, b.cfg.tenant);
    for (const r of multi) {
      const w = v.awaiting_proof.find((p) => p.email === r.email);
      assert.ok(w && w.via === 'imported', r.email);
    }
    const out = await cli(['verify', '--config', b.configFile]);
    assert.equal(out.code, 0, out.stdout + out.stderr);
  } finally {
    await b.close();
  }
});

test('a lone account with no password whose product never verified the address is not owned by the import: not backfilled, and linked by nothing until its owner proves it (issue 19, finding 4)', async () => {
  const b = await bulkSim({ people: 120, importRate: 5000 });
  try {
    // People with one account each: two lose their password and their verified address.
    const byEmail = new Map();
    for (const p of b.sim.people) byEmail.set(p.email.toLowerCase(), (byEmail.get(p.email.toLowerCase()) || 0) + p.accounts.length);
    const lone = b.sim.people.filter((p) => p.accounts.length === 1 && byEmail.get(p.email.toLowerCase()) === 1 && !p.identities).slice(0, 3);
    assert.equal(lone.length, 3);
    const [bare, hashed, verified] = lone.map((p) => p.accounts[0]);
    const db = (a) => b.sim.byName[a.product].db;
    db(bare).prepare('UPDATE accounts SET password_hash = NULL, password_salt = NULL, email_verified = 0 WHERE id = ?').run(bare.id);
    db(hashed).prepare('UPDATE accounts SET email_verified = 0 WHERE id = ?').run(hashed.id);
    db(verified).prepare('UPDATE accounts SET password_hash = NULL, password_salt = NULL, email_verified = 1 WHERE id = ?').run(verified.id);
    for (const args of [['prelink'], ['export', '--out', b.out], ['import', '--out', b.out], ['backfill']]) await run([...args, '--config', b.configFile]);
    const links = await accountLinks(b.cfg);
    assert.equal(links.get(`${bare.product}/${bare.id}`), null, 'no hash imported and no verified mailbox: nothing owns it');
    assert.match(links.get(`${hashed.product}/${hashed.id}`) || '', /^auth0\|/, 'its own hash was imported: owned');
    assert.match(links.get(`${verified.product}/${verified.id}`) || '', /^auth0\|/, 'the reset through its verified mailbox proves it');
    const records = fs.readdirSync(b.out).filter((n) => /^users-\d+\.json$/.test(n)).flatMap((n) => JSON.parse(fs.readFileSync(path.join(b.out, n), 'utf8')));
    const rec = (a) => records.find((r) => r.app_metadata.trickle.accounts.some((x) => x.product === a.product && String(x.id) === String(a.id))).app_metadata.trickle;
    assert.equal(rec(bare).accounts[0].proof, undefined);
    assert.equal(rec(hashed).accounts[0].proof, 'import');
    assert.equal(rec(hashed).unverified, true, 'a reset of that address later withdraws the link its hash made');
  } finally {
    await b.close();
  }
});

test('malformed manifest, changed or malformed import files and state from an older trickle: a stable code, nothing written, nothing lost', async () => {
  const b = await bulkSim({ people: 120, importRate: 5000 });
  try {
    await run(['prelink', '--config', b.configFile]);
    await run(['export', '--config', b.configFile, '--out', b.out]);
    const manifestFile = path.join(b.out, 'manifest.json');
    const manifest = fs.readFileSync(manifestFile, 'utf8');
    fs.writeFileSync(manifestFile, '{"files": [{"name": "../../etc/passwd"}]}');
    let r = await cli(['import', '--config', b.configFile, '--out', b.out]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /import\.manifest_malformed/);
    fs.writeFileSync(manifestFile, '{ not json');
    r = await cli(['import', '--config', b.configFile, '--out', b.out]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /import\.manifest_unreadable/);
    fs.writeFileSync(manifestFile, manifest);
    await run(['import', '--config', b.configFile, '--out', b.out]);
    // A later export whose file has the name of one imported already: another file (state is
    // keyed by content and export run), registered and imported, never taken for the old one.
    const later = path.join(b.dataDir, 'export-later');
    fs.mkdirSync(later);
    fs.writeFileSync(path.join(later, 'users-00001.json'), '[]');
    fs.writeFileSync(path.join(later, 'manifest.json'), JSON.stringify({ files: [{ name: 'users-00001.json', people: 0, sha256: crypto.createHash('sha256').update('[]').digest('hex') }] }));
    r = await cli(['import', '--config', b.configFile, '--out', later]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual([summaryOf(r.stdout).registration.added, summaryOf(r.stdout).registration.already_registered], [1, 0]);
    r = await run(['import', '--config', b.configFile, '--out', b.out]); // the same export again is fine, and said
    assert.equal(summaryOf(r.stdout).registration.added, 0);
    assert.ok(summaryOf(r.stdout).registration.already_registered_by_status.done >= 1);
    const before = await accountLinks(b.cfg);
    assert.ok([...before.values()].every((v) => v === null));
    const name = 'users-00001.json';
    const file = path.join(b.out, name);
    const original = fs.readFileSync(file, 'utf8');

    // The file changed after it was imported.
    fs.writeFileSync(file, original.replace('"bulkImported":true', '"bulkImported":false'));
    r = await cli(['backfill', '--config', b.configFile]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /backfill\.file_changed/);
    // The file is gone.
    fs.rmSync(file);
    r = await cli(['backfill', '--config', b.configFile, '--via', 'api']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /backfill\.file_missing/);
    // A record in it is malformed, and the state records it as the file that was imported.
    const records = JSON.parse(original);
    records[3].app_metadata.trickle.accounts[0] = { product: 'paste' };
    const bad = JSON.stringify(records);
    fs.writeFileSync(file, bad);
    const st = await openDb(b.cfg.state);
    await st.run('UPDATE import_files SET sha256 = ? WHERE name = ? AND dir = ?', [crypto.createHash('sha256').update(bad).digest('hex'), name, path.resolve(b.out)]);
    r = await cli(['backfill', '--config', b.configFile]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\[backfill\.record_malformed\] .*users-00001\.json record 3: accounts\[0\]/);
    // Not JSON at all.
    fs.writeFileSync(file, '[{"email": "x@example.com"');
    await st.run('UPDATE import_files SET sha256 = ? WHERE name = ? AND dir = ?', [crypto.createHash('sha256').update('[{"email": "x@example.com"').digest('hex'), name, path.resolve(b.out)]);
    r = await cli(['backfill', '--config', b.configFile]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /backfill\.file_malformed/);
    assert.deepEqual(await accountLinks(b.cfg), before, 'nothing was written by any failed run');

    // Put back, the same runs succeed: nothing was lost.
    fs.writeFileSync(file, original);
    await st.run('UPDATE import_files SET sha256 = ? WHERE name = ? AND dir = ?', [crypto.createHash('sha256').update(original).digest('hex'), name, path.resolve(b.out)]);
    // A file finished by an older trickle, which counted people already present without saying
    // who: its people cannot be told apart, so it is skipped and reported, and the run exits 1.
    await st.run('UPDATE import_files SET already = 1 WHERE name = ? AND dir = ?', [name, path.resolve(b.out)]);
    r = await cli(['backfill', '--config', b.configFile]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const skipped = summaryOf(r.stdout);
    assert.deepEqual(skipped.skipped_files.map((f) => [f.file, f.code]), [[name, 'backfill.present_unknown']]);
    const links = await accountLinks(b.cfg);
    for (const [key, a] of exportedAccounts(b.out)) assert.equal(links.get(key), null, `${key}: its file was skipped`);
    await st.run('UPDATE import_files SET already = 0 WHERE name = ? AND dir = ?', [name, path.resolve(b.out)]);
    await st.close();
    await run(['backfill', '--config', b.configFile]);
    await assertOwnedOnly(assert, b.cfg, b.out);
  } finally {
    await b.close();
  }
});

test('an account planted next to a bulk-imported person (MariaDB state): not exported again, and a record claiming it by its own hash comes back already present and is not backfilled', async () => {
  const state = await scratchDatabase('mysql', 'trickle_own');
  const b = await bulkSim({ people: 80, importRate: 5000, stateUrl: state.url });
  try {
    await run(['prelink', '--config', b.configFile]);
    await run(['export', '--config', b.configFile, '--out', b.out]);
    await run(['import', '--config', b.configFile, '--out', b.out]);
    await run(['backfill', '--config', b.configFile]);
    const person = b.sim.people.find((p) => p.accounts.length === 1 && p.accounts[0].product !== 'transfer');
    const own = person.accounts[0];
    const imported = auth0IdOf(b, own.product, own.id);
    assert.match(imported, /^auth0\|/, 'the person was imported and backfilled');
    assert.equal(userOf(b.sim, person.email).app_metadata.bulkImported, true);

    // Later someone signs up in transfer with the person's address, which transfer never verified.
    plant(b, 'transfer', { id: 't-planted', email: person.email, verified: false, password: 'planted pw 5678', created: '2025-01-01T00:00:00.000Z' });
    await run(['prelink', '--config', b.configFile]);
    const out2 = path.join(b.dataDir, 'export-2');
    const exp = summaryOf((await run(['export', '--config', b.configFile, '--out', out2])).stdout);
    assert.ok(exp.already_linked >= 1, 'people with a linked account are not exported again');
    assert.ok(!exportedAccounts(out2).has('transfer/t-planted'), 'the planted account is not exported on its own hash');
    // (a later export, so a state database of its own: its file names are those of the first)
    await run(['import', '--config', b.configFile, '--out', out2, '--state', `sqlite:${path.join(b.dataDir, 'state-2.sqlite')}`]);
    // And were its record imported anyway (an export from before the owner was backfilled), the
    // tenant answers that the person is already present, and backfill writes nothing for them.
    const records = [{ email: person.email, email_verified: false, user_id: imported.slice('auth0|'.length), app_metadata: { bulkImported: true, trickle: { v: 1, person_id: imported.slice('auth0|'.length), accounts: [{ product: 'transfer', id: 't-planted', proof: 'import' }] } } }];
    const out3 = path.join(b.dataDir, 'export-3');
    fs.mkdirSync(out3);
    fs.writeFileSync(path.join(out3, 'users-90001.json'), JSON.stringify(records));
    const text = fs.readFileSync(path.join(out3, 'users-90001.json'));
    fs.writeFileSync(path.join(out3, 'manifest.json'), JSON.stringify({ files: [{ name: 'users-90001.json', people: 1, bytes: text.length, sha256: crypto.createHash('sha256').update(text).digest('hex') }] }));
    const first = summaryOf((await run(['import', '--config', b.configFile, '--out', b.out])).stdout); // totals so far
    const imp = summaryOf((await run(['import', '--config', b.configFile, '--out', out3])).stdout);
    assert.equal(imp.already_present, 1);
    assert.equal(imp.inserted, first.inserted, 'nobody more imported');
    assert.deepEqual(imp.already_present_list.map((p) => p.email), [person.email]);
    const bf = summaryOf((await run(['backfill', '--config', b.configFile])).stdout);
    assert.deepEqual([bf.present, bf.updated], [1, 0]);
    withApi(b);
    const api = summaryOf((await run(['backfill', '--config', b.configFile, '--via', 'api'])).stdout);
    assert.deepEqual([api.present, api.failed], [1, 0]); // (the owned accounts of the first round are PUT again: idempotent)
    assert.equal(auth0IdOf(b, 'transfer', 't-planted'), null, 'the planted account holds no Auth0 id');
    assert.equal(auth0IdOf(b, own.product, own.id), imported, 'the owner\'s account keeps its id');
    const v = await verify(b.cfg, b.cfg.tenant);
    const w = v.awaiting_proof.find((p) => p.email === person.email);
    assert.deepEqual(w && w.accounts, ['transfer/t-planted']);
    assert.deepEqual([v.missing.length, v.duplicated.length, v.mislinked.length], [0, 0, 0]);
  } finally {
    await b.close();
    await state.drop();
  }
});

test('a tenant that fails more users than its error list names: nobody of that file is taken as imported, backfill skips it and exits 1', async () => {
  const http = require('http');
  const b = await bulkSim({ people: 40, importRate: 5000 });
  // A tenant that answers like Auth0 but lists one failed user of three.
  let listed = null;
  const fake = http.createServer((req, res) => {
    const send = (code, body) => { res.writeHead(code, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
    req.resume();
    req.on('end', () => {
      if (req.url === '/oauth/token') return send(200, { access_token: 't', expires_in: 3600 });
      if (req.url === '/api/v2/jobs/users-imports') return send(201, { id: 'job_fake', status: 'pending' });
      if (req.url === '/api/v2/jobs/job_fake') return send(200, { id: 'job_fake', type: 'users_import', status: 'completed', summary: { total: 40, inserted: 37, updated: 0, failed: 3 } });
      if (req.url === '/api/v2/jobs/job_fake/errors') return send(200, [{ user: { email: listed }, errors: [{ code: 'DUPLICATED_USER', message: 'The user already exists.' }] }]);
      return send(404, {});
    });
  });
  await new Promise((r) => fake.listen(0, '127.0.0.1', r));
  try {
    await run(['prelink', '--config', b.configFile]);
    await run(['export', '--config', b.configFile, '--out', b.out]);
    listed = [...exportedAccounts(b.out).values()][0].email;
    b.cfg.tenant.url = `http://127.0.0.1:${fake.address().port}`;
    fs.writeFileSync(b.configFile, JSON.stringify(b.cfg, null, 2));
    const imp = summaryOf((await run(['import', '--config', b.configFile, '--out', b.out])).stdout);
    assert.deepEqual(imp.already_present_list.map((p) => p.email), [listed], 'the unknown people are not listed as a person');
    const r = await cli(['backfill', '--config', b.configFile]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.deepEqual(summaryOf(r.stdout).skipped_files.map((f) => f.code), ['backfill.present_unknown']);
    assert.ok([...(await accountLinks(b.cfg)).values()].every((v) => v === null), 'nothing written');
  } finally {
    await new Promise((r) => fake.close(r));
    await b.close();
  }
});
