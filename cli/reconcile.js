// `trickle backfill` and `trickle verify`: write the Auth0 id into every product for every person
// the import brought in, then reconcile the products against the tenant.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { openDb } = require('./db');
const { people, LINK_TABLE } = require('./products');
const { tenantClient } = require('./tenant-client');

/**
 * For every person in a finished import file (less permanent failures), sets
 * `auth0_user_id = auth0|<person id>` on their accounts where it is still empty: batched,
 * idempotent. Returns counts.
 */
async function backfill(cfg, { state, batch = 500, log = () => {} } = {}) {
  const st = await openDb(state);
  const files = await st.all("SELECT name, dir FROM import_files WHERE status = 'done'");
  const permanent = new Set((await st.all('SELECT email FROM import_permanent')).map((r) => String(r.email).toLowerCase()));
  await st.close();
  const ids = new Set();
  for (const f of files) {
    for (const r of JSON.parse(fs.readFileSync(path.join(f.dir, f.name), 'utf8'))) {
      if (!permanent.has(String(r.email).toLowerCase())) ids.add(r.user_id);
    }
  }
  const out = { people: ids.size, updated: 0, products: {} };
  const list = [...ids];
  for (const p of cfg.products) {
    const db = await openDb(p.db);
    let updated = 0;
    try {
      for (let i = 0; i < list.length; i += batch) {
        const chunk = list.slice(i, i + batch);
        await db.transaction(async (t) => {
          const q = t || db;
          const sql = p.link === 'table'
            ? `UPDATE accounts SET auth0_user_id = ? WHERE id IN (SELECT account_id FROM ${LINK_TABLE} WHERE person_id = ?) AND auth0_user_id IS NULL`
            : 'UPDATE accounts SET auth0_user_id = ? WHERE person_id = ? AND auth0_user_id IS NULL';
          for (const id of chunk) updated += (await q.run(sql, [`auth0|${id}`, id])).changes;
        });
        log({ event: 'backfill_progress', product: p.name, done: Math.min(i + batch, list.length), of: list.length });
      }
    } finally {
      await db.close();
    }
    out.products[p.name] = updated;
    out.updated += updated;
  }
  return out;
}

/**
 * The same through each product's API (docs/product-api.md): `PUT /trickle/accounts/<id>/auth0-id`
 * for every account of every imported person, as listed in the import records, `parallel` at a
 * time. Products need `api: {url, token}` in the configuration. A PUT is idempotent, so a run can
 * be repeated; failures are counted and reported, never retried forever.
 */
async function backfillViaApi(cfg, { state, parallel = 16, log = () => {} } = {}) {
  const st = await openDb(state);
  const files = await st.all("SELECT name, dir FROM import_files WHERE status = 'done'");
  const permanent = new Set((await st.all('SELECT email FROM import_permanent')).map((r) => String(r.email).toLowerCase()));
  await st.close();
  const apis = Object.fromEntries(cfg.products.filter((p) => p.api && p.api.url).map((p) => [p.name, p.api]));
  const work = [];
  for (const f of files) {
    for (const r of JSON.parse(fs.readFileSync(path.join(f.dir, f.name), 'utf8'))) {
      if (permanent.has(String(r.email).toLowerCase())) continue;
      const accounts = (((r.app_metadata || {}).trickle || {}).accounts) || [];
      for (const a of accounts) if (apis[a.product]) work.push({ product: a.product, id: a.id, auth0: `auth0|${r.user_id}` });
    }
  }
  const out = { requests: work.length, updated: 0, failed: 0, products: {} };
  let next = 0;
  const worker = async () => {
    while (next < work.length) {
      const w = work[next++];
      const api = apis[w.product];
      let ok = false;
      for (let attempt = 0; attempt < 4 && !ok; attempt++) {
        try {
          const res = await fetch(`${api.url.replace(/\/+$/, '')}/trickle/accounts/${encodeURIComponent(w.id)}/auth0-id`, {
            method: 'PUT', headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ auth0_user_id: w.auth0 }), signal: AbortSignal.timeout(10000)
          });
          ok = res.ok;
          if (!ok && res.status < 500 && res.status !== 429) break;
        } catch (_) {
          ok = false;
        }
        if (!ok) await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
      if (ok) { out.updated++; out.products[w.product] = (out.products[w.product] || 0) + 1; } else out.failed++;
      if ((out.updated + out.failed) % 1000 === 0) log({ event: 'backfill_progress', done: out.updated + out.failed, of: work.length });
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return out;
}

/** Exports the tenant's users through a users-exports job: `[{user_id, email}]`. */
async function tenantUsers(tenant) {
  const client = tenantClient(tenant);
  const res = await client.call('/api/v2/jobs/users-exports', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ connection_id: tenant.connectionId, format: 'json', fields: [{ name: 'user_id' }, { name: 'email' }] }) });
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
 * Returns `{people, tenant_users, missing: [...], duplicated: [...]}`.
 */
async function verify(cfg, tenant) {
  const users = await tenantUsers(tenant);
  const byId = new Map();
  const byEmail = new Map();
  for (const u of users) {
    byId.set(u.user_id, (byId.get(u.user_id) || 0) + 1);
    const e = String(u.email || '').toLowerCase();
    byEmail.set(e, (byEmail.get(e) || 0) + 1);
  }
  const out = { people: 0, tenant_users: users.length, missing: [], duplicated: [], unlinked: 0 };
  for await (const person of people(cfg.products)) {
    out.people++;
    const ids = [...new Set(person.accounts.map((a) => a.person_id).filter(Boolean))];
    if (!ids.length) { out.unlinked++; out.missing.push({ email: person.email, reason: 'no person id (run trickle prelink)' }); continue; }
    const present = ids.filter((id) => byId.has(`auth0|${id}`));
    if (!present.length && !byEmail.has(person.email)) out.missing.push({ email: person.email, person_id: ids[0] });
    if (present.some((id) => byId.get(`auth0|${id}`) > 1) || (byEmail.get(person.email) || 0) > 1 || present.length > 1) out.duplicated.push({ email: person.email, person_ids: ids });
  }
  return out;
}

module.exports = { backfill, backfillViaApi, verify, tenantUsers };
