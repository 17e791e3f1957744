// Bulk user import and export jobs of the simulated tenant (auth0-platform.md §4): multipart
// upload, a 500 000-byte file limit, at most 2 import jobs in flight, per-user schema checks with
// Auth0's error codes, processing at a configurable rate, and expiry of old jobs.
'use strict';
const crypto = require('crypto');
const zlib = require('zlib');
const { loadCore } = require('../js-shim/node');
const { canonicalAddress } = require('./address');

const FILE_LIMIT = 500000;
const MAX_ACTIVE_IMPORTS = 2;
const USER_KEYS = new Set(['email', 'email_verified', 'phone_number', 'phone_verified', 'user_id', 'username', 'given_name', 'family_name', 'name',
  'nickname', 'picture', 'blocked', 'password_hash', 'custom_password_hash', 'app_metadata', 'user_metadata', 'mfa_factors']);
const RESERVED_APP_METADATA = new Set(['__tenant', '_id', 'blocked', 'clientID', 'created_at', 'email_verified', 'email', 'globalClientID', 'global_client_id',
  'identities', 'lastIP', 'lastLogin', 'loginsCount', 'metadata', 'multifactor_last_modified', 'multifactor', 'updated_at', 'user_id']);
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const BCRYPT_10 = /^\$2[ab]\$10\$[./A-Za-z0-9]{53}$/;
const BASE32 = /^[A-Z2-7]+$/;

/** Auth0's per-user checks. Returns a list of `{code, message, path}`; empty when valid. */
function validateUser(user, core) {
  const errors = [];
  const err = (code, message, path) => errors.push({ code, message, path });
  if (!user || typeof user !== 'object' || Array.isArray(user)) return [{ code: 'INVALID_TYPE', message: 'Expected type object', path: '' }];
  for (const k of Object.keys(user)) if (!USER_KEYS.has(k)) err('OBJECT_ADDITIONAL_PROPERTIES', `Additional properties not allowed: ${k}`, k);
  if (typeof user.email !== 'string') err(user.email === undefined ? 'OBJECT_MISSING_REQUIRED_PROPERTY' : 'INVALID_TYPE', 'Missing required property: email', 'email');
  else if (!EMAIL.test(user.email)) err('FORMAT', 'Object didn\'t pass validation for format email', 'email');
  for (const k of ['user_id', 'username', 'given_name', 'family_name', 'name', 'nickname', 'picture', 'phone_number', 'password_hash']) {
    if (user[k] !== undefined && typeof user[k] !== 'string') err('INVALID_TYPE', `Expected type string but found type ${typeof user[k]}`, k);
  }
  for (const k of ['email_verified', 'phone_verified', 'blocked']) {
    if (user[k] !== undefined && typeof user[k] !== 'boolean') err('INVALID_TYPE', `Expected type boolean but found type ${typeof user[k]}`, k);
  }
  if (typeof user.user_id === 'string' && user.user_id.length > 255) err('MAX_LENGTH', 'String is too long', 'user_id');
  if (user.password_hash !== undefined && user.custom_password_hash !== undefined) err('CONFLICT', 'password_hash and custom_password_hash are mutually exclusive', 'password_hash');
  if (typeof user.password_hash === 'string' && !BCRYPT_10.test(user.password_hash)) err('PATTERN', 'password_hash must be bcrypt $2a$ or $2b$ with 10 rounds', 'password_hash');
  if (user.custom_password_hash !== undefined) {
    const v = core.call('validate_password_hash', { descriptor: user.custom_password_hash });
    if (v.outcome !== 'ok') err('INVALID_FORMAT', v.error ? v.error.message : 'invalid custom_password_hash', 'custom_password_hash');
  }
  for (const key of ['app_metadata', 'user_metadata']) {
    const m = user[key];
    if (m === undefined) continue;
    if (!m || typeof m !== 'object' || Array.isArray(m)) { err('INVALID_TYPE', 'Expected type object', key); continue; }
    const walk = (o, path) => {
      for (const [k, v] of Object.entries(o)) {
        if (/[.$]/.test(k)) err('PATTERN', `Key names must not contain "." or "$": ${k}`, `${path}.${k}`);
        if (v && typeof v === 'object' && !Array.isArray(v)) walk(v, `${path}.${k}`);
      }
    };
    walk(m, key);
    if (key === 'app_metadata') for (const k of Object.keys(m)) if (RESERVED_APP_METADATA.has(k)) err('INVALID_PROPERTY', `app_metadata must not use the reserved key ${k}`, `app_metadata.${k}`);
  }
  if (user.mfa_factors !== undefined) {
    const f = user.mfa_factors;
    if (!Array.isArray(f) || f.length < 1 || f.length > 10) err('MFA_FACTORS_FAILED', 'mfa_factors must hold 1 to 10 factors', 'mfa_factors');
    else f.forEach((x, i) => {
      const ok = x && ((x.totp && typeof x.totp.secret === 'string' && BASE32.test(x.totp.secret))
        || (x.phone && /^\+[1-9]\d{6,14}$/.test(String(x.phone.value))) || (x.email && EMAIL.test(String(x.email.value))));
      if (!ok) err('MFA_FACTORS_FAILED', 'Invalid MFA factor', `mfa_factors.${i}`);
    });
  }
  if (JSON.stringify(user).length > 10240) err('MAX_LENGTH', 'The user profile is larger than 10 kB', '');
  return errors;
}

/** A user as the errors endpoint shows it: secrets redacted. */
function redacted(user) {
  if (!user || typeof user !== 'object') return user;
  const copy = { ...user };
  if (copy.password_hash) copy.password_hash = '[REDACTED]';
  if (copy.custom_password_hash) copy.custom_password_hash = '[REDACTED]';
  if (Array.isArray(copy.mfa_factors)) copy.mfa_factors = '[REDACTED]';
  return copy;
}

/**
 * Registers the job endpoints. `store` gives access to the tenant's users:
 * {findByEmail, get(user_id), insert(user), update(user, fields)}.
 * Options: {usersPerSecond (default 500), expireAfterMs (default 24 h), base()}.
 */
function jobRoutes(app, store, options = {}) {
  // Options left undefined (startSim passes them through) keep their defaults.
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const opts = { usersPerSecond: 500, expireAfterMs: 24 * 3600 * 1000, ...given };
  const core = loadCore('full');
  const jobs = new Map();
  const log = []; // every state change of every job: the simulator's own job log
  const exportsData = new Map();
  const record = (job, status) => {
    job.status = status;
    log.push({ at: Date.now(), id: job.id, type: job.type, status, external_id: job.external_id });
  };
  const active = () => [...jobs.values()].filter((j) => j.type === 'users_import' && (j.status === 'pending' || j.status === 'processing')).length;

  function view(job) {
    const out = { id: job.id, type: job.type, status: job.status, connection_id: job.connection_id, connection: 'trickle', created_at: job.created_at };
    if (job.external_id) out.external_id = job.external_id;
    if (job.type === 'users_import') {
      out.upsert = job.upsert;
      out.send_completion_email = job.send_completion_email;
      if (job.status === 'processing') {
        out.percentage_done = Math.floor((100 * job.done) / Math.max(1, job.users.length));
        out.time_left_seconds = Math.ceil((job.users.length - job.done) / opts.usersPerSecond);
      }
      if (job.status === 'completed') out.summary = { ...job.summary };
      if (job.status === 'failed') out.summary = { failed: 0, updated: 0, inserted: 0, total: 0 };
    } else if (job.status === 'completed') {
      out.location = job.location;
      out.format = 'json';
    }
    return out;
  }

  function processOne(job, index) {
    const user = job.users[index];
    const errors = validateUser(user, core);
    // Duplicates are found by the tenant's canonical address, the one it stores: two spellings
    // that fold to one address are one user, in the file and against the store.
    const key = errors.length ? null : canonicalAddress(user.email);
    if (!errors.length && !key) errors.push({ code: 'FORMAT', message: 'Object didn\'t pass validation for format email', path: 'email' });
    if (!errors.length) {
      if (job.seen.has(key)) errors.push({ code: 'DUPLICATED_USER', message: 'The user appears twice in the file', path: 'email' });
      job.seen.add(key);
    }
    if (!errors.length) {
      const byEmail = store.findByEmail(key);
      const byId = user.user_id ? store.get(`auth0|${user.user_id}`) : undefined;
      const existing = byEmail || byId;
      if (byEmail && byId && byEmail !== byId) {
        errors.push({ code: 'CONFLICT_EMAIL', message: 'The email belongs to another user.', path: 'email' });
      } else if (existing && !job.upsert) {
        errors.push({ code: 'DUPLICATED_USER', message: 'The user already exists.', path: '' });
      } else if (existing) {
        store.update(existing, user);
        job.summary.updated++;
      } else if (store.insert(user).error) {
        errors.push({ code: 'DUPLICATED_USER', message: 'The user already exists.', path: '' });
      } else {
        job.summary.inserted++;
      }
    }
    if (errors.length) {
      job.summary.failed++;
      job.errors.push({ user: redacted(user), errors });
    }
  }

  // One worker advances every processing job at the configured rate.
  const perTick = Math.max(1, Math.round(opts.usersPerSecond / 10));
  const timer = setInterval(() => {
    for (const job of jobs.values()) {
      if (job.type !== 'users_import') continue;
      if (Date.now() - job.createdMs > opts.expireAfterMs && job.status !== 'expired') { record(job, 'expired'); job.errors = []; continue; }
      if (job.status === 'pending') record(job, 'processing');
      if (job.status !== 'processing') continue;
      for (let i = 0; i < perTick && job.done < job.users.length; i++) processOne(job, job.done++);
      if (job.done >= job.users.length) {
        job.summary.total = job.users.length;
        record(job, 'completed');
      }
    }
    for (const job of jobs.values()) {
      if (job.type === 'users_export' && job.status === 'pending') {
        const lines = store.all().map((u) => JSON.stringify(u)).join('\n') + '\n';
        const id = crypto.randomBytes(8).toString('hex');
        exportsData.set(id, zlib.gzipSync(lines));
        job.location = `${opts.base()}/_sim/exports/${id}.json.gz`;
        record(job, 'completed');
      }
    }
  }, 100);
  timer.unref();

  app.post('/api/v2/jobs/users-imports', async (req, reply) => {
    const fields = {};
    let file = null;
    try {
      for await (const part of req.parts({ limits: { fileSize: FILE_LIMIT, files: 1 } })) {
        if (part.type === 'file') {
          file = await part.toBuffer();
          if (part.file.truncated) file = null;
          if (part.file.truncated) return reply.code(413).send({ statusCode: 413, error: 'Request Entity Too Large', message: `The users file is larger than ${FILE_LIMIT} bytes`, errorCode: 'too_large' });
        } else {
          fields[part.fieldname] = part.value;
        }
      }
    } catch (e) {
      if (e.code === 'FST_REQ_FILE_TOO_LARGE' || e.statusCode === 413) {
        return reply.code(413).send({ statusCode: 413, error: 'Request Entity Too Large', message: `The users file is larger than ${FILE_LIMIT} bytes`, errorCode: 'too_large' });
      }
      return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: `multipart: ${e.message}`, errorCode: 'invalid_body' });
    }
    if (!file) return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'users file is required', errorCode: 'invalid_body' });
    if (fields.connection_id !== 'con_trickle') return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'connection_id does not name a database connection', errorCode: 'invalid_body' });
    if (active() >= MAX_ACTIVE_IMPORTS) {
      return reply.code(429).send({ statusCode: 429, error: 'Too Many Requests', message: `There are ${MAX_ACTIVE_IMPORTS} active import users jobs, please wait until some of them are finished and try again`, errorCode: 'too_many_requests' });
    }
    const job = {
      id: `job_${crypto.randomBytes(8).toString('hex')}`, type: 'users_import', connection_id: fields.connection_id,
      external_id: fields.external_id, upsert: fields.upsert === 'true', send_completion_email: fields.send_completion_email !== 'false',
      created_at: new Date().toISOString(), createdMs: Date.now(), users: [], done: 0, seen: new Set(),
      summary: { failed: 0, updated: 0, inserted: 0, total: 0 }, errors: []
    };
    jobs.set(job.id, job);
    let users = null;
    try { users = JSON.parse(file.toString('utf8')); } catch (_) { users = null; }
    record(job, 'pending');
    // A job fails only for file-level problems: not JSON, not an array.
    if (!Array.isArray(users)) record(job, 'failed');
    else job.users = users;
    return reply.code(201).send(view(job));
  });

  app.post('/api/v2/jobs/users-exports', async (req, reply) => {
    const body = req.body || {};
    if (body.connection_id && body.connection_id !== 'con_trickle') return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'unknown connection_id', errorCode: 'invalid_body' });
    const job = { id: `job_${crypto.randomBytes(8).toString('hex')}`, type: 'users_export', connection_id: 'con_trickle', created_at: new Date().toISOString(), createdMs: Date.now() };
    jobs.set(job.id, job);
    record(job, 'pending');
    return reply.code(201).send(view(job));
  });

  app.get('/api/v2/jobs/:id', async (req, reply) => {
    const job = jobs.get(req.params.id);
    if (!job) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'The job does not exist', errorCode: 'inexistent_job' });
    return view(job);
  });
  app.get('/api/v2/jobs/:id/errors', async (req, reply) => {
    const job = jobs.get(req.params.id);
    if (!job) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'The job does not exist', errorCode: 'inexistent_job' });
    // As the platform (and node-auth0, which reads it as void): 204 with no body when nothing failed.
    if (!job.errors || !job.errors.length) return reply.code(204).send();
    return job.errors;
  });
  app.get('/_sim/exports/:file', async (req, reply) => {
    const data = exportsData.get(String(req.params.file).replace(/\.json\.gz$/, ''));
    if (!data) return reply.code(404).send({ error: 'no such export' });
    return reply.type('application/gzip').send(data);
  });
  app.get('/_sim/api/jobs', async () => ({ jobs: [...jobs.values()].map(view), log }));
  return { jobs, log, stop: () => clearInterval(timer) };
}

module.exports = { jobRoutes, validateUser, FILE_LIMIT };
