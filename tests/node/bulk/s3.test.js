// Export into S3 and import from there with two replicas sharing MariaDB state, then backfill:
// against moto's S3 server (started here on a free port), through the AWS SDK.
'use strict';
const { scratchDatabase } = require('../support/databases');
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const net = require('net');
const path = require('path');
const { spawn, spawnSync } = require('child_process');
const { bulkSim, cli, cliOk: run, summaryOf, assertOwnedOnly } = require('../support/bulk');
const { openStorage } = require('../../../cli/storage');
const { verify } = require('../../../cli/reconcile');

const MOTO = spawnSync('moto_server', ['--help'], { stdio: 'ignore' }).status === 0;

function freePort() {
  return new Promise((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); }); });
}

async function startMoto() {
  const port = await freePort();
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try { await fetch(url); return { url, stop: () => child.kill('SIGTERM') }; } catch (_) { await new Promise((r) => setTimeout(r, 100)); }
  }
  child.kill('SIGKILL');
  throw new Error('moto_server did not start');
}

test('export --out s3://bucket/prefix, import from there by two replicas (MariaDB state), backfill: everyone once, owned accounts only', { skip: MOTO ? false : 'moto_server is not on PATH (pip install "moto[server]")' }, async () => {
  const moto = await startMoto();
  const state = await scratchDatabase('mysql', 'trickle_s3');
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: 'us-east-1' });
  const b = await bulkSim({ people: 2500, importRate: 3000, stateUrl: state.url });
  try {
    b.cfg.s3 = { endpoint: moto.url, region: 'us-east-1', forcePathStyle: true };
    fs.writeFileSync(b.configFile, JSON.stringify(b.cfg, null, 2));
    const { S3Client, CreateBucketCommand, ListObjectsV2Command } = require('@aws-sdk/client-s3');
    const s3 = new S3Client({ endpoint: moto.url, region: 'us-east-1', forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: 'trickle-exports' }));
    const out = 's3://trickle-exports/tenant-a/run-1';

    await run(['prelink', '--config', b.configFile]);
    const exp = summaryOf((await run(['export', '--config', b.configFile, '--out', out])).stdout);
    const keys = (await s3.send(new ListObjectsV2Command({ Bucket: 'trickle-exports', Prefix: 'tenant-a/run-1/' }))).Contents.map((o) => o.Key).sort();
    assert.ok(keys.includes('tenant-a/run-1/manifest.json') && keys.includes('tenant-a/run-1/rejects.ndjson'), keys.join(' '));
    assert.equal(keys.filter((k) => /users-\d+\.json$/.test(k)).length, exp.files);
    assert.ok(exp.files >= 3, 'several files, for two replicas to share');

    // Two replicas at once, as two pods would run: one state, one bucket.
    const [r1, r2] = await Promise.all([
      cli(['import', '--config', b.configFile, '--out', out, '--replica', 'pod-1']),
      cli(['import', '--config', b.configFile, '--out', out, '--replica', 'pod-2'])
    ]);
    for (const r of [r1, r2]) assert.equal(r.code, 0, r.stdout.slice(-2000) + r.stderr);
    const s1 = summaryOf(r1.stdout);
    const s2 = summaryOf(r2.stdout);
    assert.equal(s1.this_run.completed + s2.this_run.completed, exp.files, 'each file completed by one replica');
    assert.equal(s1.this_run.inserted + s2.this_run.inserted, exp.exported);
    assert.equal(Math.max(s1.inserted, s2.inserted), exp.exported, 'global counts beside the per-run ones');

    // Backfill reads the files from S3 too; a local copy lets the checks read the records.
    const local = path.join(b.dataDir, 'from-s3');
    fs.mkdirSync(local);
    const store = openStorage(out, b.cfg);
    for (const k of keys) fs.writeFileSync(path.join(local, path.basename(k)), await store.read(path.basename(k)));
    await store.close();
    const bf = summaryOf((await run(['backfill', '--config', b.configFile])).stdout);
    const owned = await assertOwnedOnly(assert, b.cfg, local);
    assert.equal(bf.updated, owned.owned);
    const again = summaryOf((await run(['backfill', '--config', b.configFile])).stdout);
    assert.deepEqual([again.updated, again.already_backfilled_files], [0, exp.files], 'a rerun reads no finished file again');
    const v = await verify(b.cfg, b.cfg.tenant);
    assert.deepEqual([v.people, v.missing.length, v.duplicated.length], [2500, 0, 0]);

    // A bucket that does not exist is named, not retried for ever.
    const bad = await cli(['import', '--config', b.configFile, '--out', 's3://no-such-bucket/x'], { killAfterMs: 30000 });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /no-such-bucket.*NoSuchBucket/);
    s3.destroy();
  } finally {
    await b.close();
    moto.stop();
    await state.drop();
  }
});
