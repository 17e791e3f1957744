// Password reset. As on the real tenant: the request is answered at once, with the same answer
// whether the address is known, unknown, rate-limited or its product unreachable; the look-up and
// the mail happen afterwards. One canonical address is used for the look-up, the ticket and the
// mail, and the mail goes to the address stored for the user being reset, never to the typed
// string. Also the Management API's password-change tickets, which are returned, not mailed.
'use strict';
const crypto = require('crypto');
const runtime = require('../runtime');
const { canonicalAddress } = require('../address');
const pages = require('./pages');
const { notFound, badEmail } = require('./management/users');
const { err } = require('./management/api');

const ticketKey = (ticket) => crypto.createHash('sha256').update(String(ticket || '')).digest('hex');

function create(t) {
  const { state, opts } = t;
  const resetLimits = { perAddress: 3, perIp: 10, windowMs: 15 * 60000, ...(opts.resetLimits || {}) };
  const resetWindows = { address: new Map(), ip: new Map() };
  function withinLimit(map, key, limit) {
    const now = Date.now();
    const recent = (map.get(key) || []).filter((at) => now - at < resetLimits.windowMs);
    const ok = recent.length < limit;
    if (ok) recent.push(now);
    map.set(key, recent);
    if (map.size > 10000) for (const [k, v] of map) if (!v.some((at) => now - at < resetLimits.windowMs)) map.delete(k);
    return ok;
  }
  /** Ends every outstanding reset link of a user (a newer link, a changed address, a deletion). */
  function dropTickets(userId) {
    for (const [k, entry] of state.tickets) if (entry.userId === userId) state.tickets.delete(k);
  }
  /** Issues a reset link for `userId` at the canonical `email`; older links of the user stop working. */
  function issueTicket(userId, email, resultUrl) {
    dropTickets(userId);
    const ticket = t.randomId(32);
    state.tickets.set(ticketKey(ticket), { userId, email, exp: Date.now() + 30 * 60000, resultUrl, used: false });
    return `${t.base}/lo/reset/confirm?ticket=${ticket}`;
  }
  /** The outstanding ticket a link carries, or null when it is unknown, used or expired. */
  const ticketFor = (ticket) => {
    const entry = state.tickets.get(ticketKey(ticket));
    return entry && !entry.used && entry.exp > Date.now() ? entry : null;
  };
  /**
   * Whom a reset of the canonical address `email` is for: a stored user, or (import mode) the
   * profile get_user returns for a person not yet migrated. Resolves `{user}`, `{profile}`,
   * `{none: true}` or `{error}`. A profile under another address, or one whose user_id is
   * already stored under another address, is nobody this address may reset.
   */
  async function resetTarget(email) {
    const user = t.findByEmail(email);
    if (user) return { user };
    const { getUser: getUserScript, importMode } = t.dbScripts();
    if (!getUserScript || !importMode) return { none: true };
    const [err, p] = await runtime.callScript(getUserScript, [email]);
    if (err) return { error: 'get_user failed' };
    if (!p) return { none: true };
    const profile = JSON.parse(JSON.stringify(p));
    if (!profile.user_id || canonicalAddress(profile.email) !== email) return { error: 'get_user returned another address' };
    if (state.users.has(`auth0|${profile.user_id}`)) return { error: 'the user is stored under another address' };
    return { profile };
  }
  async function sendResetMail(email, link) {
    await opts.mail.send({ to: email, subject: 'Reset your password', text: `Someone asked to reset the password of ${email}.\n\nChoose a new password here (valid for 30 minutes, once):\n${link}\n\nIf it was not you, ignore this mail.` });
  }
  /** The background half of a reset request: look-up, ticket, mail. Never throws; logs no address or link. */
  async function deliverReset(email) {
    try {
      const target = await resetTarget(email);
      if (target.error) return t.event('reset_not_sent', { reason: target.error });
      if (target.none) return t.event('reset_not_sent', { reason: 'unknown address' });
      const userId = target.user ? target.user.user_id : `auth0|${target.profile.user_id}`;
      const to = target.user ? target.user.email : email;
      await sendResetMail(to, issueTicket(userId, to));
      state.counters.resets++;
      t.event('reset_mail', { via: target.user ? 'store' : 'get_user' });
    } catch (e) {
      // The SMTP answer can quote the recipient: only its numeric code is kept.
      t.event('reset_mail_failed', { smtp_code: (e && e.responseCode) || null });
    }
  }
  /**
   * A reset request as the login page and /dbconnections/change_password take it. Returns
   * 'invalid' for an address with no canonical form, else 'accepted' (always the same, whatever
   * happens next); work beyond the limits per address and per IP is silently dropped.
   */
  function requestReset(typed, ip) {
    const email = canonicalAddress(typed);
    if (!email) return 'invalid';
    const ipOk = withinLimit(resetWindows.ip, String(ip || ''), resetLimits.perIp);
    const addressOk = ipOk && withinLimit(resetWindows.address, ticketKey(email), resetLimits.perAddress);
    if (!ipOk || !addressOk) {
      t.event('reset_limited', { by: ipOk ? 'address' : 'ip' });
      return 'accepted';
    }
    setImmediate(() => { deliverReset(email); });
    return 'accepted';
  }
  return { dropTickets, issueTicket, ticketFor, resetTarget, requestReset };
}

function routes(app, t) {
  const { state } = t;
  const expired = (reply) => pages.send(reply, 400, pages.linkExpired());
  app.get('/lo/reset', async (req, reply) => pages.send(reply, 200, pages.resetForm((req.query || {}).state)));
  app.post('/lo/reset', async (req, reply) => {
    const body = req.body || {};
    if (t.requestReset(body.email, req.ip) === 'invalid') return pages.send(reply, 400, pages.resetForm(body.state, 'Enter a valid email address.'));
    // The same answer whether or not the address is known: no account enumeration.
    return pages.send(reply, 200, pages.resetSent());
  });
  // The Authentication API's endpoint: always 200 with the same sentence for a valid address.
  app.post('/dbconnections/change_password', async (req, reply) => {
    const body = req.body || {};
    if (body.connection !== undefined && body.connection !== 'trickle') return reply.code(400).send({ error: 'invalid_request', error_description: 'connection not found' });
    if (t.requestReset(body.email, req.ip) === 'invalid') return reply.code(400).send({ error: 'invalid_request', error_description: 'email is not valid' });
    return reply.type('text/plain; charset=utf-8').send('We\'ve just sent you an email to reset your password.');
  });
  app.get('/lo/reset/confirm', async (req, reply) => {
    const ticket = (req.query || {}).ticket;
    if (!t.ticketFor(ticket)) return expired(reply);
    return pages.send(reply, 200, pages.newPasswordForm(ticket));
  });
  app.post('/lo/reset/confirm', async (req, reply) => {
    const body = req.body || {};
    const entry = t.ticketFor(body.ticket);
    if (!entry) return expired(reply);
    if (typeof body.password !== 'string' || body.password.length < 8) return pages.send(reply, 400, pages.notice('Too short', 'Choose at least 8 characters'));
    // The link resets exactly the user it was issued for, at the address it was mailed to.
    let user = state.users.get(entry.userId);
    if (user && user.email !== entry.email) return expired(reply);
    if (!user) {
      // Import mode: a person not yet in the store is created from getUser with the new password.
      const target = await t.resetTarget(entry.email);
      if (target.user || target.none || (target.profile && `auth0|${target.profile.user_id}` !== entry.userId)) return expired(reply);
      if (target.error) return pages.send(reply, 503, pages.notice('Try again', 'We could not reset the password right now'));
      const created = t.createUser(target.profile, body.password, 'reset');
      if (created.error) return expired(reply);
      user = created.user;
    }
    if (!t.ticketFor(body.ticket)) return expired(reply); // used meanwhile by a concurrent request
    user.password_hash = t.hashPassword(body.password);
    delete user.custom_password_hash;
    user.email_verified = true;
    entry.used = true;
    t.dropTickets(user.user_id);
    t.event('password_reset', { user_id: user.user_id });
    return pages.send(reply, 200, pages.notice('Password changed', 'Your password was changed', 'You can now sign in with it.'));
  });
  // The Management API's ticket: a link for a known user, returned to the caller and not mailed
  // (as on the real tenant); the address is the stored one.
  app.post('/api/v2/tickets/password-change', async (req, reply) => {
    const body = req.body || {};
    let target = null;
    if (body.user_id) {
      const user = state.users.get(body.user_id);
      target = user ? { user } : { none: true };
    } else if (body.email !== undefined) {
      const email = canonicalAddress(body.email);
      if (!email) return badEmail(reply);
      target = await t.resetTarget(email);
    } else {
      return err(reply, 400, 'user_id or email is required', 'invalid_body');
    }
    if (target.error) return err(reply, 503, 'The user could not be looked up right now.', 'temporarily_unavailable');
    if (target.none) return notFound(reply);
    const userId = target.user ? target.user.user_id : `auth0|${target.profile.user_id}`;
    const email = target.user ? target.user.email : target.profile && canonicalAddress(target.profile.email);
    return reply.code(201).send({ ticket: t.issueTicket(userId, email, body.result_url) });
  });
}

module.exports = { create, routes };
