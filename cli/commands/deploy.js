// `trickle deploy-config` and `trickle finish`.
'use strict';
const { log, summary } = require('./output');

/** deploy-config and finish: refusals carry a stable code, and nothing is written on one. */
async function deployCommand(command, values) {
  const path = require('path');
  const { loadConfig } = require('../products');
  const deploy = require('../deploy');
  const refuse = (code, message, exit = 2) => {
    process.stderr.write(`trickle ${command}: [${code}] ${message}\n`);
    return exit;
  };
  let cfg;
  try {
    cfg = loadConfig(values.config || 'trickle.json');
  } catch (e) {
    return refuse('deploy.config', e.message);
  }
  if (command === 'deploy-config') {
    const out = values.out || 'config.json';
    try {
      const config = deploy.deployConfig(cfg, { pipeline: values.pipeline || 'action' });
      deploy.writeSecretFile(out, JSON.stringify(config, null, 2) + '\n');
      const m = config.AUTH0_KEYWORD_REPLACE_MAPPINGS;
      log({ event: 'deploy-config', out, included: config.AUTH0_INCLUDED_ONLY, secrets: m.TRICKLE_ACTION_SECRETS.map((x) => x.name), clients: m.TRICKLE_CLIENTS,
        credentials: ['AUTH0_DOMAIN', 'AUTH0_CLIENT_ID', 'AUTH0_CLIENT_SECRET'].filter((k) => config[k]) });
      const next = `a0deploy import --input_file ${values.pipeline === 'rules' ? 'dist/auth0-rules' : 'dist/auth0'} --config_file ${out}`;
      summary({ summary: 'deploy-config', ok: true, out, next }, `wrote ${out}; deploy with: ${next}\n`);
      return 0;
    } catch (e) {
      if (e instanceof deploy.DeployError) return refuse(e.code, e.message);
      throw e;
    }
  }
  const dist = path.join(__dirname, '..', '..', 'dist');
  const input = values.input || path.join(dist, 'auth0');
  const out = values.out || path.join(dist, 'auth0-finished');
  try {
    const { report, verify } = await deploy.finish(cfg, { input, out, force: !!values.force });
    if (report.forced) {
      const line = { event: 'finish.forced', missing: report.missing, duplicated: report.duplicated, mislinked: report.mislinked };
      process.stderr.write(`trickle finish: --force: writing the finished directory although ${report.missing} people are missing, ${report.duplicated} duplicated, ${report.mislinked} mislinked\n`);
      log(line);
    }
    summary({ summary: 'finish', ok: true, out, ...report, next: `a0deploy import --input_file ${out} --config_file config.json` },
      `verify: ${verify.people} people, ${verify.tenant_users} tenant users, ${report.missing} missing; ${report.awaiting_proof} with accounts awaiting proof (the Action stays bound for them)\n`
      + `wrote ${out}; deploy with: a0deploy import --input_file ${out} --config_file config.json\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof deploy.DeployError)) throw e;
    if (e.code === 'finish.not_backfilled') {
      for (const x of e.detail.not_backfilled.slice(0, 50)) process.stderr.write(`  not backfilled ${x.email}: ${x.accounts.join(', ')}\n`);
      return refuse(e.code, `${e.message}; nothing written`, 1);
    }
    if (e.code === 'finish.people_missing') {
      const d = e.detail;
      const list = (items, line) => {
        for (const x of items.slice(0, 200)) process.stderr.write(line(x) + '\n');
        if (items.length > 200) process.stderr.write(`  … and ${items.length - 200} more (trickle verify lists them)\n`);
      };
      list(d.missing, (m) => `  missing ${m.email}${m.reason ? ` (${m.reason})` : ''}`);
      list(d.duplicated, (x) => `  duplicated ${x.email}`);
      list(d.mislinked, (x) => `  mislinked ${x.account} holds ${x.auth0_user_id}, the tenant user is ${x.tenant_user_id}`);
      return refuse(e.code, `${e.message}; nothing written`, 1);
    }
    return refuse(e.code, e.message);
  }
}

module.exports = { deployCommand };
