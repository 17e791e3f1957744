// `trickle prelink` and `trickle export`: one id per person across the product databases, then
// every person not yet in the tenant as import files of at most 500 000 bytes.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { loadCore } = require('../js-shim/node');
const { people, openProducts, checkOrder, linkSql, TrickleError } = require('./products');
const { redact } = require('./config');
const { openStorage } = require('./storage');

const FILE_LIMIT = 500000;

/**
 * Writes each person's id into every product (idempotent), into the `person_id` column or, with
 * `link: "table"`, a side table `trickle_person_link`; returns counts and conflicts.
 */
async function prelink(cfg, { log = () => {}, precheck = true, progress = () => {} } = {}) {
  const core = loadCore('full');
  const names = cfg.products.map((p) => p.name);
  // Every product is read through once before anything is written: a schema or order error
  // stops the command with nothing changed.
  const counts = precheck ? await checkOrder(cfg.products, { progress }) : {};
  const total = Object.values(counts).reduce((a, b) => a + b, 0) || null;
  let shown = Date.now();
  const writers = {};
  const dbs = await openProducts(cfg.products);
  cfg.products.forEach((p, i) => { writers[p.name] = { db: dbs[i], sql: linkSql(dbs[i], p), product: p }; });
  const out = { people: 0, accounts: 0, written: 0, conflicts: [] };
  try {
    for await (const person of people(cfg.products)) {
      out.people++;
      out.accounts += person.accounts.length;
      const r = core.call('person_id', { products: names, accounts: person.accounts });
      if (r.outcome !== 'ok' || !r.person_id) {
        out.conflicts.push({ email: person.email, reason: (r.error && r.error.message) || 'no person id' });
        continue;
      }
      if ((r.events || []).some((e) => e.event === 'person_id_conflict')) {
        out.conflicts.push({ email: person.email, person_id: r.person_id, reason: `products disagree: ${r.events.find((e) => e.event === 'person_id_conflict').detail}` });
      }
      for (const a of person.accounts) {
        if (a.person_id === r.person_id) continue;
        const w = writers[a.product];
        try {
          await w.db.run(w.sql, [r.person_id, a.id]);
        } catch (e) {
          throw new TrickleError('db.error', `product ${JSON.stringify(a.product)} (${redact(w.product.db)}): writing the person id of account ${a.id}: ${e.message}`, { product: a.product });
        }
        out.written++;
      }
      if (out.people % 5000 === 0) log({ event: 'prelink_progress', people: out.people, accounts: out.accounts, of: total });
      if (Date.now() - shown > 250) { shown = Date.now(); progress({ phase: 'linking', accounts: out.accounts, of: total }); }
    }
  } finally {
    for (const w of Object.values(writers)) await w.db.close();
  }
  return out;
}

/**
 * Streams every person none of whose accounts holds an Auth0 id into `outDir`: import files
 * `users-00001.json` … (compact JSON arrays, each as full as the limit allows), `rejects.ndjson`
 * with reasons, and `manifest.json` (files, people, bytes, sha256). exported + rejected = read,
 * always; people with an account already linked are counted in `already_linked`, not read;
 * `without_password` counts the exported people who have no password anywhere (social-only);
 * people the state says an earlier import brought in are counted in `already_imported`, not read;
 * `forced_reset` people (several accounts, none verified with a readable hash) and those without
 * a password are listed in `notify.ndjson` for `trickle notify`.
 */
async function exportPeople(cfg, outDir, { limit = FILE_LIMIT, log = () => {}, precheck = true, state = null } = {}) {
  const core = loadCore('full');
  // People an earlier import already brought in (the state's finished files), or found present:
  // exported again they would only come back as duplicates.
  const known = state ? await require('./reconcile').tenantHasByState(state, cfg) : null;
  const names = cfg.products.map((p) => p.name);
  // Every product is read through once before anything is written (schema and order errors).
  if (precheck) await checkOrder(cfg.products);
  // A directory or s3://bucket/prefix (cli/storage.js): every file is written whole or not at all.
  const store = openStorage(outDir, cfg);
  await store.prepare();
  const forced = core.call('forced_reset_hash', { secret: crypto.randomBytes(32).toString('hex'), salt: crypto.randomBytes(16).toString('hex') });
  if (forced.outcome !== 'ok') throw new Error('could not make the forced-reset hash');
  const manifest = { created_at: new Date().toISOString(), limit, files: [], read: 0, exported: 0, rejected: 0, already_linked: 0, without_password: 0, forced_reset: 0, unimportable_format: 0, to_notify: 0, already_imported: 0 };
  const rejects = store.appender('rejects.ndjson');
  // People who cannot sign in with a legacy password once imported: `trickle notify` has the
  // tenant mail each a password change once their file is imported.
  const notify = store.appender('notify.ndjson');
  let pending = [];
  let parts = [];
  let bytes = 2;
  const flush = async () => {
    if (!parts.length) return;
    const name = `users-${String(manifest.files.length + 1).padStart(5, '0')}.json`;
    const text = `[${parts.join(',')}]`;
    await store.write(name, text);
    manifest.files.push({ name, people: parts.length, bytes: Buffer.byteLength(text), sha256: crypto.createHash('sha256').update(text).digest('hex') });
    for (const n of pending) await notify.write(JSON.stringify({ ...n, file: name }) + '\n');
    manifest.to_notify += pending.length;
    pending = [];
    parts = [];
    bytes = 2;
  };
  try {
    for await (const person of people(cfg.products)) {
      if (person.accounts.some((a) => a.auth0_user_id)) {
        // In the tenant already (imported, or migrated at login): a new record could only come
        // back as already present, and one of an account added since (a lone account, proven by
        // its own hash) would claim an account nobody proved. The login flow tells the rest.
        manifest.already_linked++;
        continue;
      }
      if (known && (known.emails.has(person.email) || person.accounts.some((a) => a.person_id && known.personIds.has(a.person_id)))) {
        manifest.already_imported++;
        continue;
      }
      manifest.read++;
      const r = core.call('export_person', { email: person.email, products: names, accounts: person.accounts.map(({ auth0_user_id, ...a }) => a), forced_reset_hash: forced.hash });
      if (r.outcome !== 'record') {
        manifest.rejected++;
        const reason = r.reject || r.error || { code: 'export.unknown', reason: 'no record' };
        await rejects.write(JSON.stringify({ email: person.email, accounts: person.accounts.map((a) => `${a.product}/${a.id}`), code: reason.code, reason: reason.reason || reason.message }) + '\n');
        continue;
      }
      const text = JSON.stringify(r.record);
      const add = Buffer.byteLength(text) + (parts.length ? 1 : 0);
      if (bytes + add > limit) await flush();
      parts.push(text);
      bytes += Buffer.byteLength(text) + (parts.length > 1 ? 1 : 0);
      manifest.exported++;
      // Imported without any password (social-only people, or accounts that never had one):
      // they sign in with their provider, which links to this user, or reset through the inbox.
      if (!r.record.password_hash && !r.record.custom_password_hash) manifest.without_password++;
      // Several accounts and none whose product verified the address with a readable hash: the
      // forced reset (ownership::import_hash). They, and people with no password anywhere, are told.
      const forcedReset = r.record.password_hash === forced.hash;
      if (forcedReset) manifest.forced_reset++;
      // Their hash is one Auth0's import cannot take (phpass, Django, crypt(3), …): the import
      // makes them reset, where a lazy login would have kept their password.
      if (forcedReset && r.unimportable > 0) manifest.unimportable_format++;
      if (forcedReset || (!r.record.password_hash && !r.record.custom_password_hash)) {
        pending.push({ email: r.record.email, user_id: `auth0|${r.record.user_id}`, reason: forcedReset ? 'forced_reset' : 'no_password' });
      }
      if (manifest.read % 10000 === 0) log({ event: 'export_progress', read: manifest.read, files: manifest.files.length });
    }
    await flush();
  } catch (e) {
    // No half export: without manifest.json the folder holds nothing import would take.
    await rejects.close();
    await notify.close();
    await store.close();
    throw e;
  }
  await rejects.close();
  await notify.close();
  manifest.bytes = manifest.files.reduce((s, f) => s + f.bytes, 0);
  try {
    await store.write('manifest.json', JSON.stringify(manifest, null, 2) + '\n');
  } finally {
    await store.close();
  }
  return manifest;
}

/**
 * Splits verify's missing people into those export rejected with a reason (`DIR/rejects.ndjson`)
 * and the rest: `{missing, explained}`. Explained rejects are not failures unless `strict`.
 */
async function explainRejects(result, dir, { strict = false, cfg = {} } = {}) {
  if (!dir) return { missing: result.missing, explained: [] };
  // A directory or s3://bucket/prefix, read as import and backfill read the export.
  const store = openStorage(dir, cfg);
  let text;
  try {
    text = (await store.read('rejects.ndjson')).toString('utf8');
  } catch (e) {
    throw new TrickleError('config.missing', `verify --out ${dir}: cannot read ${store.describe('rejects.ndjson')} (${e.code || e.message}; pass the export's --out)`);
  } finally {
    await store.close();
  }
  const rejected = new Map();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line);
      if (r && typeof r.email === 'string') rejected.set(r.email, r);
    } catch (_) { /* a torn last line explains nobody */ }
  }
  const explained = [];
  const missing = [];
  for (const m of result.missing) {
    const r = rejected.get(m.email);
    if (r) explained.push({ ...m, code: r.code, reason: r.reason, accounts: r.accounts });
    else missing.push(m);
  }
  return strict ? { missing: [...missing, ...explained], explained } : { missing, explained };
}

module.exports = { prelink, exportPeople, explainRejects, FILE_LIMIT };
