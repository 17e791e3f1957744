// Multi-factor authentication: the TOTP factors a user brought (import or login script). A
// person enrolled with an authenticator app is asked for its code once the rest of the login
// (password, post-login pipeline, a redirect and /continue) has succeeded, before any code or
// token is issued. Wrong codes are limited per login and per user (a bucket of `perUser`
// failures refilled one every `refillMs`, as Auth0 documents for OTP verification).
'use strict';
const totp = require('../totp');
const pages = require('./pages');

function create(t) {
  const { state } = t;
  const mfaLimits = { perLogin: 5, perUser: 10, refillMs: 6 * 60000, ...(t.opts.mfa || {}) };
  const totpSecrets = (user) => (user && Array.isArray(user.mfa_factors) ? user.mfa_factors : [])
    .map((f) => f && f.totp && f.totp.secret).filter((x) => typeof x === 'string' && totp.base32Decode(x));
  function mfaBucket(userId) {
    const now = Date.now();
    const b = state.mfa.buckets.get(userId) || { tokens: mfaLimits.perUser, at: now };
    b.tokens = Math.min(mfaLimits.perUser, b.tokens + (now - b.at) / mfaLimits.refillMs);
    b.at = now;
    state.mfa.buckets.set(userId, b);
    return b;
  }
  /** Checks a typed one-time code for `user`: 'ok', 'wrong' or 'locked' (too many failures). */
  function checkOtp(user, code) {
    const bucket = mfaBucket(user.user_id);
    if (bucket.tokens < 1) return 'locked';
    const secrets = totpSecrets(user);
    for (let i = 0; i < secrets.length; i++) {
      const step = totp.verify(secrets[i], code);
      const key = `${user.user_id}\n${i}`;
      // A code is spent once used: the same or an older step is refused (no replay).
      if (step !== null && step > (state.mfa.used.has(key) ? state.mfa.used.get(key) : -1)) {
        state.mfa.used.set(key, step);
        return 'ok';
      }
    }
    bucket.tokens -= 1;
    return 'wrong';
  }
  /** Whether the user of this login must still give a code (the pipeline calls it last). */
  const mfaPending = (tx) => !tx.mfaPassed && totpSecrets(state.users.get(tx.userId)).length > 0;
  /** The challenge page of a login, counted once per login. */
  function challenge(reply, tx) {
    if (!tx.mfa) {
      tx.mfa = { wrong: 0 };
      state.counters.mfa_challenges++;
      t.event('mfa_challenge', { user_id: tx.userId });
    }
    return pages.send(reply, 200, pages.mfaPage(tx));
  }
  return { mfaLimits, totpSecrets, checkOtp, mfaPending, mfaChallenge: challenge };
}

function routes(app, t) {
  const { state } = t;
  app.post('/u/mfa-otp-challenge', async (req, reply) => {
    const body = req.body || {};
    const tx = state.transactions.get(body.state);
    const user = tx && tx.mfa && state.users.get(tx.userId);
    if (!user) return pages.send(reply, 400, pages.loginExpired());
    const r = t.checkOtp(user, body.code);
    if (r === 'ok') {
      tx.mfaPassed = true;
      t.event('mfa_success', { user_id: tx.userId });
      return t.finish(reply, tx, { outcome: 'continue' });
    }
    state.counters.mfa_failed++;
    t.event('mfa_failed', { user_id: tx.userId, reason: r });
    tx.mfa.wrong++;
    if (r === 'locked') return t.finish(reply, tx, { outcome: 'deny', reason: 'Too many failed codes for this account. Try again later.' });
    const left = t.mfaLimits.perLogin - tx.mfa.wrong;
    if (left <= 0) return t.finish(reply, tx, { outcome: 'deny', reason: 'Too many wrong codes.' });
    return pages.send(reply, 401, pages.mfaPage(tx, `That code is not valid. ${left} ${left === 1 ? 'attempt' : 'attempts'} left.`));
  });
}

module.exports = { create, routes };
