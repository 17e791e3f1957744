// Where export files live: a local directory or `s3://bucket/prefix`. Export writes through this,
// import and backfill read through it, so replicas on different machines share one export in S3
// while their state is shared in MySQL.
//
// S3 credentials and region come from the standard AWS environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_PROFILE, a pod's web identity …);
// the configuration may add `"s3": {"endpoint", "region", "forcePathStyle"}` for an
// S3-compatible store.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

/** An error reading or writing the export location; `code` is the cause (ENOENT, NoSuchKey, …). */
class StorageError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const isS3 = (location) => /^s3:\/\//i.test(String(location || ''));

function parseS3(location) {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(location);
  if (!m || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(m[1])) throw new StorageError('s3.url_malformed', `${location} is not s3://bucket/prefix (a bucket name of 3 to 63 lower-case letters, digits, dots and hyphens)`);
  const prefix = m[2].replace(/\/+$/, '');
  return { bucket: m[1], prefix: prefix ? `${prefix}/` : '' };
}

function localStore(dir) {
  const root = path.resolve(dir);
  return {
    kind: 'local',
    location: root,
    describe: (name) => path.join(root, name),
    // The files hold legacy hashes and TOTP secrets: a folder trickle makes is its owner's only,
    // and every file is written owner-only (an existing folder keeps the mode its owner gave it).
    async prepare() { fs.mkdirSync(root, { recursive: true, mode: 0o700 }); },
    async read(name) {
      try {
        return fs.readFileSync(path.join(root, name));
      } catch (e) {
        throw new StorageError(e.code || 'read_failed', `cannot read ${path.join(root, name)}: ${e.code || e.message}`);
      }
    },
    /** Writes whole or not at all (a temporary file renamed into place). */
    async write(name, data) {
      const tmp = path.join(root, `${name}.tmp`);
      fs.rmSync(tmp, { force: true });
      fs.writeFileSync(tmp, data, { mode: 0o600 });
      fs.renameSync(tmp, path.join(root, name));
    },
    /** A file written line by line (rejects.ndjson), complete once closed. */
    appender(name) {
      const file = path.join(root, name);
      const fd = fs.openSync(file, 'w', 0o600);
      fs.fchmodSync(fd, 0o600);
      return { write: async (line) => { fs.writeSync(fd, line); }, close: async () => { fs.closeSync(fd); } };
    },
    async close() {}
  };
}

function s3Store(location, s3cfg = {}) {
  const { bucket, prefix } = parseS3(location);
  // trickle supports the Node versions it says it does: the SDK's notice about its own future
  // Node requirement is not the operator's to act on, and would break the output contract.
  if (process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED === undefined) process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const { S3Client, GetObjectCommand, PutObjectCommand } = require('@aws-sdk/client-s3');
  const endpoint = s3cfg.endpoint || process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL || undefined;
  const client = new S3Client({
    region: s3cfg.region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1',
    ...(endpoint ? { endpoint } : {}),
    forcePathStyle: s3cfg.forcePathStyle === undefined ? !!endpoint : !!s3cfg.forcePathStyle,
    maxAttempts: 5
  });
  const url = `s3://${bucket}/${prefix}`;
  const key = (name) => `${prefix}${name}`;
  const fail = (name, e) => {
    const code = (e && (e.name || e.Code || e.code)) || 'S3Error';
    const status = e && e.$metadata && e.$metadata.httpStatusCode;
    const hint = code === 'CredentialsProviderError' ? ' (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)'
      : status === 403 || code === 'AccessDenied' || code === 'InvalidAccessKeyId' || code === 'SignatureDoesNotMatch' ? ' (check the AWS credentials and the bucket policy)'
        : code === 'NoSuchBucket' ? ` (no bucket ${bucket}${endpoint ? ` at ${endpoint}` : ''}: check --out and s3.endpoint)` : '';
    return new StorageError(code, `cannot access ${url}${name}: ${code}${status ? ` (HTTP ${status})` : ''}${hint}`);
  };
  const put = async (name, data) => {
    try {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key(name), Body: data, ContentType: name.endsWith('.json') ? 'application/json' : 'application/x-ndjson' }));
    } catch (e) {
      throw fail(name, e);
    }
  };
  return {
    kind: 's3',
    location: url.replace(/\/$/, ''),
    describe: (name) => `${url}${name}`,
    async prepare() {},
    async read(name) {
      try {
        const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key(name) }));
        return Buffer.from(await res.Body.transformToByteArray());
      } catch (e) {
        throw fail(name, e);
      }
    },
    /** An object appears whole or not at all: PutObject is atomic. */
    write: put,
    appender(name) {
      // Spooled to a local file, uploaded once complete: memory does not grow with the rejects.
      const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'trickle-s3-')), name);
      const fd = fs.openSync(tmp, 'w', 0o600);
      return {
        write: async (line) => { fs.writeSync(fd, line); },
        close: async () => {
          fs.closeSync(fd);
          try { await put(name, fs.readFileSync(tmp)); } finally { fs.rmSync(path.dirname(tmp), { recursive: true, force: true }); }
        }
      };
    },
    async close() { client.destroy(); }
  };
}

/** Opens a location: a directory path or `s3://bucket/prefix` (with `cfg.s3` for the endpoint). */
function openStorage(location, cfg = {}) {
  if (!location) throw new StorageError('location_missing', 'no export location given');
  return isS3(location) ? s3Store(location, (cfg && cfg.s3) || {}) : localStore(location);
}

/** One store per location, opened on first use: for readers of many locations (import, backfill). */
function storageCache(cfg) {
  const stores = new Map();
  return {
    get(location) {
      const k = isS3(location) ? location : path.resolve(location);
      if (!stores.has(k)) stores.set(k, openStorage(location, cfg));
      return stores.get(k);
    },
    async close() { for (const s of stores.values()) await s.close(); stores.clear(); }
  };
}

module.exports = { openStorage, storageCache, isS3, parseS3, StorageError };
