// `trickle notify`: people imported without a legacy password they can use (several accounts and
// none verified with a readable hash: the forced reset; or no password anywhere) are told, by
// asking the tenant to mail each a password change (Authentication API
// `POST /dbconnections/change_password`). Only people whose import file is done, never people the
// tenant already had; each address once (state table `notify_sent`, so a second run and a run
// after a crash send nothing twice); at a bounded rate, waiting as the tenant says on 429.
'use strict';
const { openStorage } = require('./storage');
const { openState, fileKey, runOf } = require('./import');
const { tenantBase } = require('./tenant-client');
const { TrickleError } = require('./config');
const { trickleRetry } = require('../js-shim/retry');

const TABLE = 'CREATE TABLE IF NOT EXISTS notify_sent (email VARCHAR(320) PRIMARY KEY, user_id VARCHAR(191) NOT NULL, reason VARCHAR(32) NOT NULL, sent_at BIGINT NOT NULL)';

/**
 * Mails a password change to every person of the export at `location` who needs one. Options:
 * `clientId` (an application the connection is enabled for: `notify.clientId`, else
 * `support.clientId`), `connection` (default `deploy.connection` or `trickle`), `ratePerSecond`
 * (default 2), `dryRun`, `log`, `signal`. Returns the counts.
 */
async function notify(cfg, location, { state, ratePerSecond = 2, dryRun = false, log = () => {}, signal } = {}) {
  const n = cfg.notify || {};
  const clientId = n.clientId || (cfg.support && cfg.support.clientId);
  if (!dryRun && (typeof clientId !== 'string' || !clientId)) throw new TrickleError('config.missing', 'notify.clientId is required: the client id of an application the trickle connection is enabled for (the tenant mails the reset link on its behalf)', { key: 'notify.clientId' });
  const base = tenantBase((cfg.tenant || {}).url);
  const connection = (cfg.deploy && cfg.deploy.connection) || 'trickle';
  const rate = n.ratePerSecond || ratePerSecond;
  const store = openStorage(location, cfg);
  let manifestText;
  let lines;
  try {
    manifestText = (await store.read('manifest.json')).toString('utf8');
    lines = (await store.read('notify.ndjson')).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch (e) {
    throw new TrickleError('notify.export_unreadable', `${store.describe('notify.ndjson')}: ${e.message} (pass the export's --out; an export made before notify existed has no notify.ndjson: export again)`);
  } finally {
    await store.close();
  }
  const manifest = JSON.parse(manifestText);
  const run = runOf(manifestText);
  const db = await openState(state);
  const out = { to_notify: lines.length, sent: 0, already_sent: 0, not_imported: 0, already_present: 0, failed: 0, dry_run: dryRun };
  try {
    await db.exec(TABLE);
    const done = new Set();
    for (const f of manifest.files || []) {
      const row = (await db.all('SELECT status FROM import_files WHERE id = ?', [fileKey(f.sha256, run)]))[0];
      if (row && row.status === 'done') done.add(f.name);
    }
    const sent = new Set((await db.all('SELECT email FROM notify_sent')).map((r) => r.email));
    const present = new Set((await db.all('SELECT email FROM import_present')).map((r) => String(r.email).toLowerCase()));
    const gap = 1000 / rate;
    let next = Date.now();
    for (const line of lines) {
      if (signal && signal.aborted) { out.interrupted = true; break; }
      if (sent.has(line.email)) { out.already_sent++; continue; }
      if (!done.has(line.file)) { out.not_imported++; continue; }
      // Not imported by trickle (the tenant had the address): the login flow tells that user.
      if (present.has(line.email)) { out.already_present++; continue; }
      if (dryRun) { out.sent++; continue; }
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      next = Math.max(next, Date.now()) + gap;
      // A 429, a 5xx or no answer is tried again, five tries in all (js-shim/retry.js).
      const res = await trickleRetry(() => fetch(`${base}/dbconnections/change_password`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(15000),
        body: JSON.stringify({ client_id: clientId, email: line.email, connection })
      }), { attempts: 5, base: 1000, cap: 60000 }).catch(() => null);
      const ok = !!res && res.ok;
      if (res && !ok && res.status !== 429 && res.status < 500) {
        const text = await res.text();
        if (res.status === 400 && /connection/i.test(text)) throw new TrickleError('notify.connection', `the tenant has no database connection ${JSON.stringify(connection)} (deploy.connection): ${text.slice(0, 200)}`);
        if (res.status === 401 || res.status === 403) throw new TrickleError('notify.client', `the tenant refused notify.clientId ${JSON.stringify(clientId)}: ${text.slice(0, 200)}`);
      }
      if (!ok) { out.failed++; log({ event: 'notify_failed', user_id: line.user_id }); continue; }
      await db.run('INSERT INTO notify_sent (email, user_id, reason, sent_at) VALUES (?, ?, ?, ?)', [line.email, line.user_id, line.reason, Date.now()]);
      out.sent++;
      if (out.sent % 100 === 0) log({ event: 'notify_progress', sent: out.sent, of: lines.length });
    }
  } finally {
    await db.close();
  }
  return out;
}

module.exports = { notify };
