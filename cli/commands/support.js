// `trickle support`: the support console's operations from the command line.
'use strict';
const { parseArgs } = require('node:util');
const { COMMAND_HELP } = require('./usage');

/** `trickle support …`: the console's operations from the command line. */
async function supportCommand(args) {
  const { supportService, FIXES } = require('../../console/support');
  const { openAudit } = require('../../console/audit');
  const { consoleOptions } = require('../../console/config');
  const refuse = (code, message) => { process.stderr.write(`trickle support: [${code}] ${message}\n`); return 2; };
  let parsed;
  try {
    parsed = parseArgs({
      args, allowPositionals: true, strict: true,
      options: { config: { type: 'string' }, user: { type: 'string' }, reason: { type: 'string' }, ticket: { type: 'string' }, account: { type: 'string' }, as: { type: 'string' }, audit: { type: 'string' }, help: { type: 'boolean', short: 'h' } }
    });
  } catch (e) {
    return refuse('usage', e.message);
  }
  const { values: v, positionals: [op, ...more] } = parsed;
  if (v.help || !op) { process.stdout.write(COMMAND_HELP.support); return v.help ? 0 : 2; }
  if (op !== 'find' && op !== 'audit' && !FIXES[op]) return refuse(op === 'resend-merge-mail' ? 'support.not_available' : 'support.unknown_fix', op === 'resend-merge-mail' ? 'the merge service mails only the browser session that asked; use clear-merge: the next login sends a fresh mail' : `unknown operation ${JSON.stringify(op)}: find, audit, ${Object.keys(FIXES).join(', ')}`);
  let opts;
  let audit = null;
  try {
    opts = consoleOptions(require('../config').loadConfig(v.config || 'trickle.json'), process.env, v.audit ? { audit: v.audit } : {});
    if (op !== 'find') audit = await openAudit(opts.audit);
  } catch (e) {
    return refuse(e.code || 'config.failed', e.message);
  }
  const out = (obj) => process.stdout.write(JSON.stringify(obj, null, process.stdout.isTTY ? 2 : 0) + '\n');
  try {
    if (op === 'audit') { out({ audit: await audit.list({ userId: v.user, limit: 200 }) }); return 0; }
    const service = supportService({ tenant: opts.tenant, products: opts.products, state: opts.state, audit });
    if (op === 'find') {
      if (more.length !== 1) return refuse('support.query_required', 'trickle support find QUERY (an address, a tenant user id or a person id)');
      const found = await service.find(more[0]);
      out(found);
      return found.people.length ? 0 : 1;
    }
    const actor = v.as || process.env.TRICKLE_SUPPORT_ACTOR;
    const r = await service.fix({ action: op, userId: v.user, target: v.account, reason: v.reason, ticket: v.ticket, actor });
    out({ fix: op, user: v.user, ...r });
    return r.outcome === 'done' || r.outcome === 'nothing_to_do' ? 0 : 1;
  } catch (e) {
    if (e.code === 'support.no_such_user') { process.stderr.write(`trickle support: [${e.code}] ${e.message}\n`); return 1; }
    return refuse(e.code || 'support.failed', e.message);
  } finally {
    if (audit) await audit.close();
  }
}

module.exports = { supportCommand };
