// The post-login chain written the way a rule author would, in plain JavaScript with node:crypto:
// the baseline the wasm chain is measured against. Same stages, same inputs, same effects
// (metadata writes, redirect, deny, fan-out requests); no I/O here, like the measured path.
'use strict';
const crypto = require('crypto');

const b64url = (b) => Buffer.from(b).toString('base64url');

function sign(claims, secret) {
  const input = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' })) + '.' + b64url(JSON.stringify(claims));
  return input + '.' + b64url(crypto.createHmac('sha256', secret).update(input).digest());
}

function verify(token, secret) {
  const parts = String(token || '').split('.');
  if (parts.length !== 3) throw new Error('malformed');
  const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString());
  if (header.alg !== 'HS256') throw new Error('alg');
  const expected = crypto.createHmac('sha256', secret).update(parts[0] + '.' + parts[1]).digest();
  const got = Buffer.from(parts[2], 'base64url');
  if (got.length !== expected.length || !crypto.timingSafeEqual(got, expected)) throw new Error('signature');
  return JSON.parse(Buffer.from(parts[1], 'base64url').toString());
}

/** Returns {outcome, writes, redirect?, deny?, fanout: []}. */
function chain(phase, event, now) {
  const secrets = event.secrets;
  const products = JSON.parse(secrets.TRICKLE_PRODUCTS).map((p) => p.name);
  const user = event.user;
  const meta = JSON.parse(JSON.stringify(user.app_metadata || {}));
  const t = meta.trickle || { accounts: [] };
  const writes = {};
  let migrated = meta.migrated === true;
  if (phase === 'continue') {
    const claims = verify(event.request.body.session_token, secrets.TRICKLE_TOKEN_SECRET);
    const open = t.merge && t.merge.jti;
    const shown = (t.merge && t.merge.shown) || [];
    if (t.merge) { delete t.merge.jti; delete t.merge.shown; }
    writes.trickle = t;
    if (claims.iss !== 'trickle-merge' || claims.aud !== 'trickle' || claims.sub !== user.user_id ||
        claims.state !== event.request.query.state || !open || claims.jti !== open || claims.exp + 30 < now) {
      return { outcome: 'deny', writes, deny: 'invalid token', fanout: [] };
    }
    if (claims.outcome === 'merged') {
      // A merge proves what its page showed, of the accounts whose product verified the address.
      t.accounts.forEach((a) => { if (!a.proof && a.verified && shown.includes(`${a.product}:${a.id}`)) a.proof = 'merge'; });
      migrated = !t.accounts.some((a) => !a.proof && a.verified);
    }
  } else if (meta.bulkImported !== true) {
    const unproven = t.accounts.filter((a) => !a.proof);
    if (unproven.length === 0) migrated = true;
    else if (!migrated) {
      const jti = crypto.randomBytes(16).toString('hex');
      t.merge = { attempts: ((t.merge && t.merge.attempts) || 0) + 1, jti, issued_at: now, shown: unproven.map((a) => `${a.product}:${a.id}`) };
      const token = sign({
        email: user.email, products: [...new Set(t.accounts.map((a) => a.product))],
        unproven: [...new Set(unproven.map((a) => a.product))],
        iss: 'trickle', aud: 'trickle-merge', sub: user.user_id, jti, iat: now, exp: now + 900
      }, secrets.TRICKLE_TOKEN_SECRET);
      writes.trickle = t;
      return { outcome: 'redirect', writes, redirect: { url: secrets.TRICKLE_MERGE_URL, query: { session_token: token } }, fanout: [] };
    }
  }
  if (migrated && meta.migrated !== true) writes.migrated = true;
  const fanout = (migrated || meta.bulkImported) ? t.accounts
    .filter((a) => a.proof && !a.fanout && products.includes(a.product))
    .map((a) => ({ product: a.product, account: a.id, method: 'PUT', path: `/trickle/accounts/${encodeURIComponent(a.id)}/auth0-id`, body: { auth0_user_id: user.user_id } })) : [];
  if (JSON.stringify(t) !== JSON.stringify((user.app_metadata || {}).trickle)) writes.trickle = t;
  return { outcome: 'continue', writes, fanout };
}

module.exports = { chain, sign };
