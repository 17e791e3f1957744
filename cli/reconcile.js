// `trickle backfill` and `trickle verify`: write the Auth0 id into the accounts the imported users
// own, then reconcile the products against the tenant. Only proven accounts are ever told an
// Auth0 id (DESIGN.md, Ownership).
'use strict';
const path = require('path');
const zlib = require('zlib');
const crypto = require('crypto');
const { people, openProducts, backfillSql } = require('./products');
const { fileMissing } = require('../lib/db');
const { TrickleError, redact } = require('./config');
const { openState, readImportFile, BulkError, norm, UNKNOWN_PEOPLE } = require('./import');
const { tenantClient } = require('./tenant-client');
const { storageCache } = require('./storage');
const { loadCore } = require('../js-shim/node');
const { trickleRetry } = require('../js-shim/retry');

let coreHandle = null;
const core = () => coreHandle || (coreHandle = loadCore('full'));
const { LINK_TABLE } = require('./products');

// Files whose owned accounts a backfill through the databases wrote, all of them committed: a
// later run does not read them again (people already done are not walked again).
const BACKFILL_SCHEMA = 'CREATE TABLE IF NOT EXISTS backfill_files (file VARCHAR(191) PRIMARY KEY, accounts INT NOT NULL, done_at BIGINT NOT NULL)';

const PERSON_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Reads one state table, naming it when the state database does not have it. */
async function stateRows(st, sql, table) {
  try {
    return await st.all(sql);
  } catch (e) {
    throw new BulkError('backfill.state_unreadable', `the state database has no readable ${table} table (run trickle import first): ${e.message}`);
  }
}

/**
 * The owned accounts of every person the import brought in, from the finished import files:
 * `{work: [{product, id, auth0}], people, present, permanent, retried, unowned, skipped_files,
 * conflicts}`.
 *
 * Ownership is decided here and nowhere else in backfill. A person counts as brought in by a
 * file only when that file's job inserted them: people the tenant already had (DUPLICATED_USER or
 * CONFLICT, recorded in `import_present`) were created by someone else, maybe an attacker who
 * signed in first with a password of their own, so nothing of theirs is written; they are left
 * to the post-login chain, which tells only the accounts that tenant user proved. Of an inserted
 * person, only accounts the record marks with a `proof` are owned: a lone account whose own hash
 * was imported, or an account whose product verified the address the reset goes to. Everything
 * is read and checked before anything is written, so a malformed file changes nothing.
 */
async function importedAccounts(state, { cfg, skipDone = false } = {}) {
  let st;
  try {
    st = await openState(state); // creates the tables an older trickle did not have
    await st.exec(BACKFILL_SCHEMA);
  } catch (e) {
    throw new BulkError('backfill.state_unreadable', `cannot open the state database: ${e.message}`);
  }
  let files;
  let present;
  let permanent;
  let retried;
  let done = new Set();
  try {
    files = await stateRows(st, "SELECT id, run, name, dir, sha256, already, retried FROM import_files WHERE status = 'done' ORDER BY name, run, id", 'import_files');
    if (skipDone) done = new Set((await stateRows(st, 'SELECT file FROM backfill_files', 'backfill_files')).map((r) => r.file));
    present = await stateRows(st, 'SELECT file, email, person_id FROM import_present', 'import_present');
    permanent = await stateRows(st, 'SELECT file, email FROM import_permanent', 'import_permanent');
    retried = await stateRows(st, 'SELECT file, email FROM import_retried', 'import_retried');
  } finally {
    await st.close();
  }
  const byFile = (rows) => {
    const m = new Map();
    for (const r of rows) {
      if (!m.has(r.file)) m.set(r.file, []);
      m.get(r.file).push(r);
    }
    return m;
  };
  const presentOf = byFile(present);
  const permanentOf = byFile(permanent);
  const retriedOf = byFile(retried);
  const out = { people: 0, present: 0, permanent: 0, retried: 0, accounts: 0, unowned: 0, already_backfilled_files: 0, skipped_files: [], conflicts: [], work: [], files: [] };
  const seen = new Map(); // product\0id → work item
  const stores = storageCache(cfg);
  try {
  for (const f of files) {
    if (done.has(f.id)) { out.already_backfilled_files++; continue; }
    const here = presentOf.get(f.id) || [];
    // A file finished by a trickle that did not record who was already present, or whose job
    // failed users it did not list: its imported people cannot be told from the others.
    if (Number(f.already || 0) > here.length || here.some((p) => p.email === UNKNOWN_PEOPLE || (!p.email && !p.person_id))) {
      out.skipped_files.push({ file: f.name, run: f.run, code: 'backfill.present_unknown', reason: 'who was already in the tenant is not recorded for this file; its people are left to the login flow' });
      continue;
    }
    if (Number(f.retried || 0) > (retriedOf.get(f.id) || []).length) {
      out.skipped_files.push({ file: f.name, run: f.run, code: 'backfill.retried_unknown', reason: 'who was retried is not recorded for this file; its people are backfilled from the retry files' });
      continue;
    }
    const presentEmails = new Set(here.map((p) => norm(p.email)).filter(Boolean));
    const presentIds = new Set(here.map((p) => p.person_id).filter(Boolean));
    const failedEmails = new Set((permanentOf.get(f.id) || []).map((r) => norm(r.email)));
    const retriedEmails = new Set((retriedOf.get(f.id) || []).map((r) => norm(r.email)));
    const store = stores.get(f.dir);
    const records = await readImportFile(store, f.name, f.sha256, 'backfill');
    out.files.push(f.id);
    records.forEach((r, i) => {
      const where = `${store.describe(f.name)} record ${i}`;
      if (typeof r.user_id !== 'string' || !PERSON_ID.test(r.user_id)) throw new BulkError('backfill.record_malformed', `${where}: user_id is not a person id`);
      const trickle = r.app_metadata && r.app_metadata.trickle;
      if (!trickle || typeof trickle !== 'object' || !Array.isArray(trickle.accounts)) throw new BulkError('backfill.record_malformed', `${where}: app_metadata.trickle.accounts is not a list`);
      if (trickle.person_id !== undefined && trickle.person_id !== r.user_id) throw new BulkError('backfill.record_malformed', `${where}: app_metadata.trickle.person_id differs from user_id`);
      trickle.accounts.forEach((a, j) => {
        const ok = a && typeof a === 'object' && typeof a.product === 'string' && a.product && typeof a.id === 'string' && a.id
          && (a.proof === undefined || a.proof === null || typeof a.proof === 'string');
        if (!ok) throw new BulkError('backfill.record_malformed', `${where}: accounts[${j}] needs a product, an id and at most a proof name`);
      });
      const email = norm(r.email);
      if (presentEmails.has(email) || presentIds.has(r.user_id)) { out.present++; return; }
      if (failedEmails.has(email)) { out.permanent++; return; }
      if (retriedEmails.has(email)) { out.retried++; return; }
      out.people++;
      // Which accounts the imported user is told is the core's (the import owns only these).
      const told = core().call('backfill_told', { trickle });
      if (!told || told.outcome !== 'ok') throw new BulkError('backfill.record_malformed', `${where}: ${(told && told.error && told.error.message) || 'the record does not read'}`);
      out.unowned += told.unowned;
      for (const a of told.told) {
        const key = `${a.product}\0${a.id}`;
        const auth0 = `auth0|${r.user_id}`;
        const before = seen.get(key);
        if (before && before.auth0 !== auth0) {
          // Two imported users claim one account: neither is told, a person looks at it.
          before.conflict = true;
          out.conflicts.push({ product: a.product, id: a.id, auth0_user_ids: [before.auth0, auth0] });
          continue;
        }
        if (!before) seen.set(key, { product: a.product, id: a.id, auth0, person: r.user_id });
      }
    });
  }
  } finally {
    await stores.close();
  }
  out.work = [...seen.values()].filter((w) => !w.conflict);
  out.accounts = out.work.length;
  return out;
}

/** The summary fields both backfill paths report. */
function summaryOf(plan) {
  const { work, files, ...rest } = plan;
  return { ...rest, conflicts: plan.conflicts.slice(0, 50) };
}

/** Whether `table.column` leads an index (a primary key counts); creates one if not. Names are quoted as the database wants. */
async function ensureIndex(db, table, column, name) {
  if (await db.leadsIndex(table, column)) return 'present';
  await db.exec(`CREATE INDEX ${db.quote(name)} ON ${db.quote(table)} (${db.quote(column)})`);
  return 'created';
}

/** A name for an index trickle creates on `table.column` (at most 63 characters). */
const indexName = (table, column) => {
  const base = `trickle_${table.split('.').pop()}_${column}`.replace(/[^A-Za-z0-9_]/g, '_');
  return base.length <= 63 ? base : `${base.slice(0, 50)}_${crypto.createHash('sha256').update(base).digest('hex').slice(0, 12)}`;
};

/**
 * Writes one product's work: the owned accounts into a temporary table, then one UPDATE joined
 * on the account id (its index checked or created), only where the account is still without an
 * Auth0 id and its person id (column, or side table with `link: "table"`) is still the record's.
 * The Auth0 id goes where the product's schema says (its column, or the side table). What was
 * not written is said: accounts holding another id, accounts whose person changed.
 */
async function writeProduct(db, product, list, { batch = 1000, log = () => {} } = {}) {
  const sql = backfillSql(db, product);
  const indexes = {};
  for (const [t, c] of sql.indexes) indexes[`${t}.${c}`] = await ensureIndex(db, t, c, t === LINK_TABLE ? 'trickle_person_link_account' : indexName(t, c));
  if (!list.length) return { updated: 0, indexes, missing: 0, held_by_other: [], person_changed: [] };
  return db.transaction(async (q) => {
    await q.run(sql.create);
    for (let i = 0; i < list.length; i += batch) {
      const chunk = list.slice(i, i + batch);
      await q.run(sql.insert(chunk.length), chunk.flatMap((w) => [w.id, String(w.id), w.auth0, w.person]));
    }
    const updated = (await q.run(sql.update)).changes;
    const left = await q.all(sql.left);
    const matched = Number((await q.all(sql.matched))[0].n);
    if (sql.drop) await q.run(sql.drop);
    log({ event: 'backfill_progress', product: product.name, done: list.length, of: list.length, updated });
    return {
      updated, indexes, missing: list.length - matched,
      held_by_other: left.filter((r) => r.held).map((r) => ({ product: product.name, id: String(r.id), auth0_user_id: r.held, record: r.auth0 })),
      person_changed: left.filter((r) => !r.held).map((r) => ({ product: product.name, id: String(r.id), person_now: r.person_now || null, record: r.auth0 }))
    };
  });
}

/**
 * Writes `auth0_user_id = auth0|<person id>` into every owned account of every person the import
 * brought in (see importedAccounts), by product and account id, where it is still empty: one
 * joined UPDATE per product, idempotent. Files finished by an earlier run are not read again.
 * Returns counts.
 */
async function backfill(cfg, { state, batch = 1000, log = () => {} } = {}) {
  const t0 = Date.now();
  const plan = await importedAccounts(state, { cfg, skipDone: true });
  const configured = new Set(cfg.products.map((p) => p.name));
  const unknown = plan.work.filter((w) => !configured.has(w.product));
  const out = { ...summaryOf(plan), updated: 0, unknown_product: unknown.length, products: {}, indexes: {}, missing_accounts: 0, held_by_other: [], person_changed: [] };
  const byProduct = new Map();
  for (const w of plan.work) {
    if (!byProduct.has(w.product)) byProduct.set(w.product, []);
    byProduct.get(w.product).push(w);
  }
  // Every product is reached and its schema checked (and the side table completed) before
  // anything is written: a refusal changes nothing.
  const dbs = await openProducts(cfg.products);
  try {
    for (let n = 0; n < cfg.products.length; n++) {
      const p = cfg.products[n];
      let r;
      try {
        r = await writeProduct(dbs[n], p, byProduct.get(p.name) || [], { batch, log });
      } catch (e) {
        throw e instanceof TrickleError ? e : new TrickleError('db.error', `product ${JSON.stringify(p.name)} (${redact(p.db)}): writing Auth0 ids: ${e.message}`, { product: p.name });
      }
      out.products[p.name] = r.updated;
      out.updated += r.updated;
      out.indexes[p.name] = r.indexes;
      out.missing_accounts += r.missing;
      out.held_by_other.push(...r.held_by_other);
      out.person_changed.push(...r.person_changed);
    }
  } finally {
    for (const db of dbs) await db.close();
  }
  // Every file whose accounts were all written (or were already right) is done for good.
  if (!unknown.length && !out.person_changed.length && !plan.conflicts.length && plan.files.length) {
    const st = await openState(state);
    try {
      for (const id of plan.files) {
        await st.insertUnlessPresent('backfill_files', { file: id, accounts: 0, done_at: Date.now() });
      }
    } finally {
      await st.close();
    }
  }
  out.held_by_other = out.held_by_other.slice(0, 50);
  out.person_changed = out.person_changed.slice(0, 50);
  out.seconds = (Date.now() - t0) / 1000;
  return out;
}

/**
 * The same through each product's API (docs/product-api.md): `PUT /trickle/accounts/<id>/auth0-id`
 * for the same owned accounts, `parallel` at a time. Products need `api: {url, token}` in the
 * configuration. A PUT is idempotent, so a run can be repeated; failures are counted and
 * reported, never retried forever.
 */
async function backfillViaApi(cfg, { state, parallel = 16, log = () => {} } = {}) {
  const plan = await importedAccounts(state, { cfg });
  const apis = Object.fromEntries(cfg.products.filter((p) => p.api && p.api.url).map((p) => [p.name, p.api]));
  const work = plan.work.filter((w) => apis[w.product]);
  const out = { ...summaryOf(plan), requests: work.length, updated: 0, failed: 0, held_by_other: [], no_api: plan.work.length - work.length, products: {} };
  let next = 0;
  const worker = async () => {
    while (next < work.length) {
      const w = work[next++];
      const api = apis[w.product];
      let ok = false;
      let held = null;
      try {
        // A 429, a 5xx or no answer is tried again, four tries in all (js-shim/retry.js).
        const res = await trickleRetry(() => fetch(`${api.url.replace(/\/+$/, '')}/trickle/accounts/${encodeURIComponent(w.id)}/auth0-id`, {
          method: 'PUT', headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ auth0_user_id: w.auth0 }), signal: AbortSignal.timeout(10000)
        }), { attempts: 4, base: 200, cap: 30000 });
        ok = res.ok;
        // 409: the product keeps another user's id (a sign-in told it first): left to the login.
        if (res.status === 409) held = ((await res.json().catch(() => ({}))).auth0_user_id) || 'another user';
      } catch (_) {
        ok = false;
      }
      if (ok) { out.updated++; out.products[w.product] = (out.products[w.product] || 0) + 1; } else if (held) { if (out.held_by_other.length < 50) out.held_by_other.push({ product: w.product, id: String(w.id), auth0_user_id: held, record: w.auth0 }); } else out.failed++;
      if ((out.updated + out.failed) % 1000 === 0) log({ event: 'backfill_progress', done: out.updated + out.failed, of: work.length });
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return out;
}

/** Exports the tenant's users through a users-exports job: `[{user_id, email, app_metadata}]`. */
async function tenantUsers(tenant) {
  const client = tenantClient(tenant);
  const res = await client.call('/api/v2/jobs/users-exports', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ connection_id: tenant.connectionId, format: 'json', fields: [{ name: 'user_id' }, { name: 'email' }, { name: 'app_metadata' }] }) });
  if (!res.ok) throw new Error(`users-exports: HTTP ${res.status}`);
  const job = await res.json();
  for (let i = 0; i < 600; i++) {
    const j = await (await client.call(`/api/v2/jobs/${job.id}`)).json();
    if (j.status === 'completed') {
      const data = Buffer.from(await (await fetch(j.location)).arrayBuffer());
      return zlib.gunzipSync(data).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    }
    if (j.status === 'failed' || j.status === 'expired') throw new Error(`users-exports job ${j.status}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('users-exports did not finish');
}

/**
 * Reconciles: every person of the products (by prelinked person id) must be in the tenant once.
 * Only reports; it never writes into a product, so it cannot tell an account an Auth0 id.
 *
 * A person present in the tenant is `imported` (the bulk import created the user) or `lazy` (a
 * sign-in created it; also everyone the import found already present). Present is not the same
 * as migrated: a person with an account that no Auth0 id was written into is listed in
 * `awaiting_proof`, whichever way they came in; for a lazy user that account is told only once
 * that user proves it (merge flow), so it is not an error. An account holding an Auth0 id that
 * is not the person's tenant user is `mislinked`, and is one.
 * `social` counts the present people whose tenant user has a social identity (signed in with a
 * provider, or linked to one).
 * An account the import owns (its record's `import` proof) that holds no Auth0 id yet is
 * `not_backfilled`: `trickle backfill` has not written it.
 * Returns `{people, tenant_users, imported, lazy, social, clean, missing, duplicated, awaiting_proof,
 * mislinked, not_backfilled, unlinked}`.
 */
async function verify(cfg, tenant) {
  const users = await tenantUsers(tenant);
  const byId = new Map();
  const byEmail = new Map();
  for (const u of users) {
    byId.set(u.user_id, [...(byId.get(u.user_id) || []), u]);
    const e = norm(u.email);
    byEmail.set(e, [...(byEmail.get(e) || []), u]);
  }
  const out = { people: 0, tenant_users: users.length, imported: 0, lazy: 0, social: 0, clean: 0, missing: [], duplicated: [], awaiting_proof: [], mislinked: [], not_backfilled: [], unlinked: 0 };
  for await (const person of people(cfg.products)) {
    out.people++;
    const ids = [...new Set(person.accounts.map((a) => a.person_id).filter(Boolean))];
    if (!ids.length) { out.unlinked++; out.missing.push({ email: person.email, reason: 'no person id (run trickle prelink)' }); continue; }
    const present = ids.filter((id) => byId.has(`auth0|${id}`));
    const sameEmail = byEmail.get(person.email) || [];
    // A person who came in through a social login is the user their accounts were told (its
    // address may differ: an Apple relay address, another mailbox at the provider).
    const told = [...new Set(person.accounts.map((a) => a.auth0_user_id).filter((id) => id && byId.has(id) && !id.startsWith('auth0|')))];
    if (!present.length && !sameEmail.length && !told.length) { out.missing.push({ email: person.email, person_id: ids[0] }); continue; }
    if (present.some((id) => byId.get(`auth0|${id}`).length > 1) || sameEmail.length > 1 || present.length > 1 || (!present.length && told.length > 1)) { out.duplicated.push({ email: person.email, person_ids: ids }); continue; }
    const user = present.length ? byId.get(`auth0|${present[0]}`)[0] : told.length ? byId.get(told[0])[0] : sameEmail[0];
    if ((user.identities || []).some((i) => i && i.isSocial)) out.social++;
    const via = user.app_metadata && user.app_metadata.bulkImported === true ? 'imported' : 'lazy';
    out[via]++;
    const unlinked = person.accounts.filter((a) => !a.auth0_user_id).map((a) => `${a.product}/${a.id}`);
    const wrong = person.accounts.filter((a) => a.auth0_user_id && a.auth0_user_id !== user.user_id);
    for (const a of wrong) out.mislinked.push({ email: person.email, account: `${a.product}/${a.id}`, auth0_user_id: a.auth0_user_id, tenant_user_id: user.user_id });
    // Accounts the import owns (the record's `import` proof) still without the id: backfill has
    // not run (or not finished) for them.
    const imports = via === 'imported' ? (((user.app_metadata || {}).trickle || {}).accounts || []).filter((o) => o && o.proof === 'import') : [];
    const pendingBackfill = person.accounts.filter((a) => !a.auth0_user_id && imports.some((o) => o.product === a.product && String(o.id) === String(a.id)));
    if (pendingBackfill.length) out.not_backfilled.push({ email: person.email, person_id: present[0] || ids[0], accounts: pendingBackfill.map((a) => `${a.product}/${a.id}`) });
    if (unlinked.length) out.awaiting_proof.push({ email: person.email, person_id: present[0] || ids[0], via, accounts: unlinked });
    else if (!wrong.length) out.clean++;
  }
  return out;
}

/**
 * Who the state says the tenant has: the person ids of every record a finished import job
 * inserted (its files read again), and the addresses and person ids the import found already
 * present. `{personIds: Set, emails: Set}`; empty when the state does not exist yet.
 */
async function tenantHasByState(state, cfg) {
  const out = { personIds: new Set(), emails: new Set() };
  if (fileMissing(state)) return out;
  let st;
  try {
    st = await openState(state);
  } catch (_) {
    return out; // no state database yet: nothing was imported
  }
  let files;
  try {
    files = await st.all("SELECT name, dir, sha256 FROM import_files WHERE status = 'done'");
    for (const r of await st.all('SELECT email, person_id FROM import_present')) {
      if (r.email) out.emails.add(norm(r.email));
      if (r.person_id) out.personIds.add(r.person_id);
    }
    const failed = new Set((await st.all('SELECT email FROM import_permanent')).map((r) => norm(r.email)));
    const stores = storageCache(cfg);
    try {
      for (const f of files) {
        let records;
        try {
          records = await readImportFile(stores.get(f.dir), f.name, f.sha256, 'export');
        } catch (_) {
          continue; // a file no longer readable: its people are not known here
        }
        for (const r of records) if (r && typeof r.user_id === 'string' && !failed.has(norm(r.email))) out.personIds.add(r.user_id);
      }
    } finally {
      await stores.close();
    }
  } finally {
    await st.close();
  }
  return out;
}

module.exports = { tenantHasByState, backfill, backfillViaApi, importedAccounts, verify, tenantUsers, writeProduct, ensureIndex };
