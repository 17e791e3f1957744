// The bulk configuration (trickle.json): read, validated and turned into one mapping per product
// (which table, which columns, which password format, where trickle writes the person id and the
// Auth0 id). Every refusal carries a stable code and names the product, the key and the shape
// it expects; unknown keys are refused with the nearest known key, never ignored.
'use strict';
const fs = require('fs');
const { dialectOf } = require('../lib/db');

/** A refusal with a stable code (`config.*`, `schema.*`, `db.*`, `stream.*`). */
class TrickleError extends Error {
  constructor(code, message, detail) {
    super(message);
    this.code = code;
    if (detail !== undefined) this.detail = detail;
  }
}

/**
 * How each password format becomes Auth0's `custom_password_hash`. `password` is the hash
 * column's value, `salt` the salt column's. `salt: true` means the format needs a salt column.
 */
const FORMATS = {
  bcrypt: { salt: false, doc: 'a bcrypt string ($2a$, $2b$ or $2y$), the salt inside it', make: (r) => ({ algorithm: 'bcrypt', hash: { value: r.password_hash } }) },
  'sha256-salt-prefix': { salt: true, doc: 'hex SHA-256 of salt + password, the salt as text in its own column', make: (r) => ({ algorithm: 'sha256', hash: { value: r.password_hash, encoding: 'hex' }, salt: { value: r.password_salt, encoding: 'utf8', position: 'prefix' } }) },
  'sha256-salt-suffix': { salt: true, doc: 'hex SHA-256 of password + salt, the salt as text in its own column', make: (r) => ({ algorithm: 'sha256', hash: { value: r.password_hash, encoding: 'hex' }, salt: { value: r.password_salt, encoding: 'utf8', position: 'suffix' } }) },
  sha256: { salt: false, doc: 'hex SHA-256 of the password, unsalted', make: (r) => ({ algorithm: 'sha256', hash: { value: r.password_hash, encoding: 'hex' } }) },
  'sha512-salt-prefix': { salt: true, doc: 'hex SHA-512 of salt + password, the salt as text in its own column', make: (r) => ({ algorithm: 'sha512', hash: { value: r.password_hash, encoding: 'hex' }, salt: { value: r.password_salt, encoding: 'utf8', position: 'prefix' } }) },
  'pbkdf2-phc': { salt: false, doc: 'a PBKDF2 PHC string ($pbkdf2-sha256$i=…,l=…$salt$hash)', make: (r) => ({ algorithm: 'pbkdf2', hash: { value: r.password_hash, encoding: 'utf8' } }) },
  'argon2-phc': { salt: false, doc: 'an argon2 PHC string ($argon2id$v=19$…)', make: (r) => ({ algorithm: 'argon2', hash: { value: r.password_hash, encoding: 'utf8' } }) },
  descriptor: { salt: false, doc: 'a column holding Auth0 custom_password_hash JSON itself', make: (r) => JSON.parse(r.password_hash) },
  // Formats Auth0's import cannot take: verified at lazy login, exported as forced resets.
  crypt: { salt: false, doc: 'a crypt(3) string: $1$, $apr1$, $5$, $6$ (rounds=N) or $2b$', make: (r) => ({ algorithm: 'crypt', hash: { value: r.password_hash } }) },
  phpass: { salt: false, doc: 'phpass ($P$ or $H$), as phpBB and other PHP applications write it', make: (r) => ({ algorithm: 'phpass', hash: { value: r.password_hash } }) },
  wordpress: { salt: false, doc: 'WordPress user_pass: $wp$2y$ (6.8+), phpass $P$, or MD5 hex', make: (r) => ({ algorithm: 'wordpress', hash: { value: r.password_hash } }) },
  drupal7: { salt: false, doc: 'Drupal 7 users.pass: $S$, U$S$, $P$ or $H$', make: (r) => ({ algorithm: 'drupal7', hash: { value: r.password_hash } }) },
  django: { salt: false, doc: 'Django auth_user.password: pbkdf2_sha256$, pbkdf2_sha1$, bcrypt_sha256$, bcrypt$, argon2$ or scrypt$', make: (r) => ({ algorithm: 'django', hash: { value: r.password_hash } }) },
  werkzeug: { salt: false, doc: 'Werkzeug (Flask) generate_password_hash: pbkdf2:… or scrypt:…', make: (r) => ({ algorithm: 'werkzeug', hash: { value: r.password_hash } }) },
  'aspnet-identity': { salt: false, doc: 'ASP.NET Identity PasswordHash (base64, v2 or v3)', make: (r) => ({ algorithm: 'aspnet-identity', hash: { value: r.password_hash } }) },
  'firebase-scrypt': {
    salt: true, doc: 'Firebase Auth export: passwordHash and salt (base64), with the project\'s parameters in the product\'s "firebase" key',
    make: (r, s) => ({ algorithm: 'firebase-scrypt', hash: { value: r.password_hash }, salt: { value: r.password_salt, encoding: 'base64' }, firebase: s && s.firebase })
  }
};

/**
 * The cargo feature (src/formats.rs) each format needs in the login script; bcrypt is in every
 * build, and `descriptor` may hold anything, so it needs them all.
 */
const FORMAT_FEATURES = {
  bcrypt: [], 'sha256-salt-prefix': ['fmt-digests'], 'sha256-salt-suffix': ['fmt-digests'], sha256: ['fmt-digests'],
  'sha512-salt-prefix': ['fmt-digests'], 'pbkdf2-phc': ['fmt-digests'], 'argon2-phc': ['fmt-argon2'], descriptor: ['formats-all'],
  crypt: ['fmt-crypt'], phpass: ['fmt-phpass'], wordpress: ['fmt-phpass'], drupal7: ['fmt-phpass'], django: ['fmt-django'],
  werkzeug: ['fmt-werkzeug'], 'aspnet-identity': ['fmt-aspnet'], 'firebase-scrypt': ['fmt-firebase'],
  // Descriptor algorithm names (custom_password_hash), for `rules/build.js --formats`.
  argon2: ['fmt-argon2'], hmac: ['fmt-digests'], ldap: ['fmt-digests', 'fmt-crypt'], md4: ['fmt-digests'], md5: ['fmt-digests'], sha1: ['fmt-digests'],
  sha512: ['fmt-digests'], pbkdf2: ['fmt-digests'], scrypt: ['fmt-digests'], auth0: ['formats-auth0'], all: ['formats-all']
};

/** Firebase's project parameters (Authentication → Users → Password hash parameters). */
function firebaseParams(f, bad) {
  if (!isObject(f)) throw bad('firebase', 'is required by format firebase-scrypt: {"signer_key", "salt_separator", "rounds", "mem_cost"} from the Firebase console', 'config.missing');
  refuseUnknown(f, ['signer_key', 'salt_separator', 'rounds', 'mem_cost'], 'firebase');
  for (const k of ['signer_key', 'salt_separator']) if (typeof f[k] !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(f[k]) || !f[k]) throw bad(`firebase.${k}`, 'must be the base64 text the Firebase console shows', f[k] === undefined ? 'config.missing' : 'config.bad_type');
  if (!Number.isInteger(f.rounds) || f.rounds < 1 || f.rounds > 8) throw bad('firebase.rounds', 'must be an integer 1 to 8');
  if (!Number.isInteger(f.mem_cost) || f.mem_cost < 1 || f.mem_cost > 14) throw bad('firebase.mem_cost', 'must be an integer 1 to 14');
  return { signer_key: f.signer_key, salt_separator: f.salt_separator, rounds: f.rounds, mem_cost: f.mem_cost };
}

/** The columns a product mapping can name; `required` ones must be named in a declared schema. */
const COLUMNS = {
  id: 'the account id (primary key; any type)',
  email: 'the address as the person typed it (any case; trickle normalises it)',
  email_norm: 'optional: the address already normalised (trimmed, lower-cased), binary collation; ordered by it when given, else by LOWER(email)',
  password: 'the password hash, read as `format` says',
  salt: 'the salt, for formats that keep it in its own column',
  email_verified: 'whether the product verified the address (0/1 or boolean)',
  name: 'full name', given_name: 'given name', family_name: 'family name',
  created_at: 'when the account was created (date, datetime or ISO text)',
  totp_secret: 'base32 TOTP secret of an authenticator app',
  person_id: 'where trickle writes the person id (VARCHAR(64)); or link: "table"',
  auth0_user_id: 'where the Auth0 id is written (VARCHAR(128)); or link: "table"'
};

const PRODUCT_KEYS = ['name', 'db', 'format', 'link', 'api', 'table', 'columns', 'identities', 'firebase'];
/** `identities`: the product's table of social sign-ins it accepted, one row per identity. */
const IDENTITY_COLUMNS = { account_id: 'the account id the identity belongs to', provider: 'the Auth0 connection strategy (google-oauth2, apple, sign-in-with-slack)', subject: 'the provider\'s own stable sub' };
/** Top-level keys; other commands' sections are listed here so a typo in them is caught too. */
const TOP_KEYS = ['products', 'state', 'tenant', 'deploy', 'storage', 's3', 'support', 'finish', 'productApi', 'notify', '$schema', 'comment'];
/** `trickle product-api` (product-api/server.js). */
const PRODUCT_API_KEYS = ['host', 'port', 'tls', 'ratePerSecond', 'connections', 'maxAccounts'];
/** The support console and `trickle support` (console/config.js). */
const SUPPORT_KEYS = ['audit', 'staff', 'staffProviders', 'roleClaim', 'roles', 'clientId', 'clientSecret', 'sessionSecret', 'sessionTtlSeconds', 'publicUrl', 'port'];
const TENANT_KEYS = ['url', 'clientId', 'clientSecret', 'connectionId', 'audience', 'domain'];
const API_KEYS = ['url', 'token'];

/** The table and columns of the old configuration shape (the simulator's `accounts`). */
const LEGACY_TABLE = 'accounts';
const LEGACY_COLUMNS = {
  id: 'id', email: 'email', email_norm: 'email_norm', password: 'password_hash', salt: 'password_salt', email_verified: 'email_verified',
  name: 'name', given_name: 'given_name', family_name: 'family_name', created_at: 'created_at', totp_secret: 'totp_secret', person_id: 'person_id', auth0_user_id: 'auth0_user_id'
};

/** The mapping of each validated product object (kept apart, so the configuration stays as read). */
const SCHEMAS = new WeakMap();

/** One product's mapping, validating the product first when it has not been (tests build configs in code). */
function schemaOf(p) {
  if (!SCHEMAS.has(p)) validateConfig({ products: [p] });
  return SCHEMAS.get(p);
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_$]{0,63}(\.[A-Za-z_][A-Za-z0-9_$]{0,63})?$/;

function distance(a, b) {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The known key nearest to `key`, when it is near enough to be a typo. */
function nearest(key, known) {
  const lower = key.toLowerCase();
  // By edit distance first (`email_verifed` is `email_verified`, not `email`), then a unique
  // prefix either way (`conn` is `connectionId`).
  let best = null;
  let bestD = Infinity;
  for (const k of known) {
    const dist = distance(lower, k.toLowerCase());
    if (dist < bestD) { best = k; bestD = dist; }
  }
  if (bestD <= Math.max(2, Math.floor(key.length / 3))) return best;
  const within = known.filter((k) => lower.length >= 3 && (k.toLowerCase().startsWith(lower) || lower.startsWith(k.toLowerCase())));
  return within.length === 1 ? within[0] : null;
}

function refuseUnknown(obj, known, where) {
  for (const k of Object.keys(obj)) {
    if (known.includes(k)) continue;
    const near = nearest(k, known);
    throw new TrickleError('config.unknown_key', `${where}: unknown key ${JSON.stringify(k)}${near ? ` (did you mean ${JSON.stringify(near)}?)` : ''}; known keys: ${known.join(', ')}`, { key: k, suggestion: near });
  }
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Hides the password of a database URL. */
const redact = (url) => String(url).replace(/\/\/([^@/:]*):[^@/]*@/, '//$1:…@');

/**
 * Validates a parsed configuration and returns it; `schemaOf(product)` then gives each mapping:
 * `{table, columns: {logical: column}, format, personId: 'column'|'table', auth0Id:
 * 'column'|'table', legacy}`. Throws TrickleError naming the product, the key and the shape.
 */
function validateConfig(cfg, file = 'the configuration') {
  if (!isObject(cfg)) throw new TrickleError('config.bad_type', `${file}: must be a JSON object with products, state and tenant`);
  refuseUnknown(cfg, TOP_KEYS, file);
  if (!Array.isArray(cfg.products) || !cfg.products.length) throw new TrickleError('config.missing', `${file}: products must be a non-empty array of {name, db, table, columns, format}`, { key: 'products' });
  if (cfg.state !== undefined && (typeof cfg.state !== 'string' || !cfg.state)) throw new TrickleError('config.bad_type', `${file}: state must be a database URL (sqlite:FILE, mysql://…, postgres://…)`, { key: 'state' });
  if (cfg.tenant !== undefined) {
    if (!isObject(cfg.tenant)) throw new TrickleError('config.bad_type', `${file}: tenant must be an object {url, clientId, clientSecret, connectionId}`, { key: 'tenant' });
    refuseUnknown(cfg.tenant, TENANT_KEYS, `${file}: tenant`);
  }
  if (cfg.finish !== undefined) {
    if (!isObject(cfg.finish)) throw new TrickleError('config.bad_type', `${file}: finish must be an object {signup}`, { key: 'finish' });
    refuseUnknown(cfg.finish, ['signup'], `${file}: finish`);
    if (cfg.finish.signup !== undefined && typeof cfg.finish.signup !== 'boolean') throw new TrickleError('config.bad_type', `${file}: finish.signup must be true or false (public sign-up on the finished connection; off unless true)`, { key: 'finish.signup' });
  }
  if (cfg.notify !== undefined) {
    if (!isObject(cfg.notify)) throw new TrickleError('config.bad_type', `${file}: notify must be an object {clientId, ratePerSecond}`, { key: 'notify' });
    refuseUnknown(cfg.notify, ['clientId', 'ratePerSecond'], `${file}: notify`);
    const r = cfg.notify.ratePerSecond;
    if (r !== undefined && (typeof r !== 'number' || !(r > 0) || r > 100)) throw new TrickleError('config.bad_type', `${file}: notify.ratePerSecond must be a number above 0, at most 100`, { key: 'notify.ratePerSecond' });
  }
  if (cfg.productApi !== undefined) {
    if (!isObject(cfg.productApi)) throw new TrickleError('config.bad_type', `${file}: productApi must be an object {host, port, tls, ratePerSecond, connections, maxAccounts}`, { key: 'productApi' });
    refuseUnknown(cfg.productApi, PRODUCT_API_KEYS, `${file}: productApi`);
    if (cfg.productApi.tls !== undefined && cfg.productApi.tls !== null) {
      if (!isObject(cfg.productApi.tls)) throw new TrickleError('config.bad_type', `${file}: productApi.tls must be {"cert": FILE, "key": FILE}`, { key: 'productApi.tls' });
      refuseUnknown(cfg.productApi.tls, ['cert', 'key'], `${file}: productApi.tls`);
    }
  }
  if (cfg.support !== undefined) {
    if (!isObject(cfg.support)) throw new TrickleError('config.bad_type', `${file}: support must be an object {audit, staff, clientId, …}`, { key: 'support' });
    refuseUnknown(cfg.support, SUPPORT_KEYS, `${file}: support`);
    for (const k of ['staff', 'staffProviders', 'roles']) {
      const v = cfg.support[k];
      if (v !== undefined && (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || !x))) throw new TrickleError('config.bad_type', `${file}: support.${k} must be an array of strings`, { key: `support.${k}` });
    }
  }
  const names = new Set();
  cfg.products.forEach((p, i) => {
    const where = `products[${i}]${p && typeof p.name === 'string' ? ` (${p.name})` : ''}`;
    const bad = (key, expected, code = 'config.bad_type') => new TrickleError(code, `${where}.${key}: ${expected}`, { product: p && p.name, key });
    if (!isObject(p)) throw new TrickleError('config.bad_type', `${where}: must be an object {name, db, table, columns, format}`);
    refuseUnknown(p, PRODUCT_KEYS, where);
    if (typeof p.name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(p.name)) throw bad('name', 'needs a product name (letters, digits, _ . -)', p.name === undefined ? 'config.missing' : 'config.bad_type');
    if (names.has(p.name)) throw bad('name', `${JSON.stringify(p.name)} is configured twice`, 'config.duplicate');
    names.add(p.name);
    if (typeof p.db !== 'string' || !dialectOf(p.db)) throw bad('db', 'needs a database URL: sqlite:FILE, mysql://user:pass@host/db or postgres://user@host/db', p.db === undefined ? 'config.missing' : 'config.bad_type');
    const format = p.format === undefined ? 'descriptor' : p.format;
    if (typeof format !== 'string' || !FORMATS[format]) {
      const near = typeof format === 'string' ? nearest(format, Object.keys(FORMATS)) : null;
      throw bad('format', `${JSON.stringify(format)} is not a password format${near ? ` (did you mean ${JSON.stringify(near)}?)` : ''}; one of ${Object.keys(FORMATS).join(', ')}`, 'config.bad_format');
    }
    if (p.link !== undefined && !['column', 'table'].includes(p.link)) throw bad('link', `must be "column" (person id in columns.person_id) or "table" (trickle's side table trickle_person_link), not ${JSON.stringify(p.link)}`);
    if (p.api !== undefined) {
      if (!isObject(p.api)) throw bad('api', 'must be {url, token}');
      refuseUnknown(p.api, API_KEYS, `${where}.api`);
    }
    const legacy = p.table === undefined && p.columns === undefined;
    let table;
    let columns;
    if (legacy) {
      // The old shape: the simulator's table, and the Auth0 id in accounts.auth0_user_id even
      // with link: "table" (as before).
      table = LEGACY_TABLE;
      columns = { ...LEGACY_COLUMNS };
      if (p.link === 'table') delete columns.person_id;
    } else {
      table = p.table === undefined ? LEGACY_TABLE : p.table;
      if (typeof table !== 'string' || !IDENT.test(table)) throw bad('table', `must be a table name (letters, digits, _; optionally schema.table), not ${JSON.stringify(table)}`);
      if (!isObject(p.columns)) throw bad('columns', 'must be an object mapping trickle\'s names to your columns, e.g. {"id": "customer_id", "email": "Email", "password": "pass_hash"}', p.columns === undefined ? 'config.missing' : 'config.bad_type');
      refuseUnknown(p.columns, Object.keys(COLUMNS), `${where}.columns`);
      columns = {};
      for (const [k, v] of Object.entries(p.columns)) {
        if (v === null) continue;
        if (typeof v !== 'string' || !IDENT.test(v) || v.includes('.')) throw bad(`columns.${k}`, `must be a column name of ${table} (${COLUMNS[k]}), not ${JSON.stringify(v)}`);
        columns[k] = v;
      }
      for (const k of ['id', 'email']) if (!columns[k]) throw bad(`columns.${k}`, `is required: the column of ${table} holding ${COLUMNS[k]}`, 'config.missing');
      if (FORMATS[format].salt && columns.password && !columns.salt) throw bad('columns.salt', `is required by format ${format} (${FORMATS[format].doc})`, 'config.missing');
      if (p.link === 'table' && columns.person_id) throw bad('link', '"table" puts the person id in trickle_person_link, so columns.person_id must not be set as well', 'config.conflict');
      if (p.link !== 'table' && !columns.person_id) throw bad('columns.person_id', `is required unless link is "table": the column of ${table} where trickle writes the person id (VARCHAR(64)), or set "link": "table" to let trickle create its side table trickle_person_link`, 'config.missing');
      if (p.link !== 'table' && !columns.auth0_user_id) throw bad('columns.auth0_user_id', `is required unless link is "table": the column of ${table} where the Auth0 id is written (VARCHAR(128)), or set "link": "table" to keep it in trickle_person_link`, 'config.missing');
    }
    let identities = null;
    if (p.identities !== undefined) {
      const d = p.identities;
      if (!isObject(d)) throw bad('identities', 'must be {"table": …, "columns": {"account_id", "provider", "subject"}}');
      refuseUnknown(d, ['table', 'columns'], `${where}.identities`);
      if (typeof d.table !== 'string' || !IDENT.test(d.table)) throw bad('identities.table', `must be a table name, not ${JSON.stringify(d.table)}`, d.table === undefined ? 'config.missing' : 'config.bad_type');
      if (!isObject(d.columns)) throw bad('identities.columns', 'must map account_id, provider and subject to columns of that table', 'config.missing');
      refuseUnknown(d.columns, Object.keys(IDENTITY_COLUMNS), `${where}.identities.columns`);
      for (const k of Object.keys(IDENTITY_COLUMNS)) {
        const v = d.columns[k];
        if (typeof v !== 'string' || !IDENT.test(v) || v.includes('.')) throw bad(`identities.columns.${k}`, `is required: the column of ${d.table} holding ${IDENTITY_COLUMNS[k]}`, v === undefined ? 'config.missing' : 'config.bad_type');
      }
      identities = { table: d.table, columns: { ...d.columns } };
    }
    if (p.firebase !== undefined && format !== 'firebase-scrypt') throw bad('firebase', `is only read with format "firebase-scrypt", not ${JSON.stringify(format)}`, 'config.conflict');
    const firebase = format === 'firebase-scrypt' ? firebaseParams(p.firebase, bad) : undefined;
    SCHEMAS.set(p, {
      legacy, table, columns, format, identities, firebase,
      personId: columns.person_id ? 'column' : 'table',
      auth0Id: columns.auth0_user_id ? 'column' : 'table'
    });
  });
  return cfg;
}

/** Reads and validates the configuration file (see validateConfig). */
function loadConfig(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new TrickleError('config.unreadable', `cannot read the configuration ${file}: ${e.code === 'ENOENT' ? 'no such file (pass --config FILE)' : e.message}`);
  }
  let cfg;
  try {
    cfg = JSON.parse(text);
  } catch (e) {
    throw new TrickleError('config.not_json', `the configuration ${file} is not JSON: ${e.message}`);
  }
  return validateConfig(cfg, file);
}

module.exports = { TrickleError, schemaOf, FORMATS, FORMAT_FEATURES, COLUMNS, IDENTITY_COLUMNS, TOP_KEYS, PRODUCT_KEYS, SUPPORT_KEYS, LEGACY_COLUMNS, loadConfig, validateConfig, nearest, redact };
