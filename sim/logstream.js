// The tenant's log stream, as Auth0's custom-webhook stream delivers it: the simulator's tenant
// events become Auth0 log entries ({log_id, data: {type, date, description, …}}) POSTed in
// batches to a URL. Delivery is in the background and never slows a login; a batch that cannot
// be delivered is dropped (and counted), as is the oldest entry when the queue is full.
'use strict';
const crypto = require('crypto');

/** The simulator's event types as Auth0 log types (events with no Auth0 counterpart are not streamed). */
const AUTH0_TYPES = {
  login: ['s', 'Success Login'],
  wrong_password: ['fp', 'Wrong email or password.'],
  login_error: ['f', 'Failed Login'],
  login_denied: ['f', 'Failed Login'],
  login_refused: ['fu', 'Failed Login (invalid email/username)'],
  user_refused: ['fs', 'Failed Signup'],
  password_reset: ['scp', 'Success Change Password'],
  reset_mail: ['scpr', 'Success Change Password Request'],
  reset_not_sent: ['fcpr', 'Failed Change Password Request'],
  reset_limited: ['fcpr', 'Failed Change Password Request'],
  mfa_success: ['gd_auth_succeed', 'MFA authentication succeeded'],
  mfa_failed: ['gd_auth_failed', 'MFA authentication failed']
};

/** One tenant event as a log-stream entry, or null when Auth0 would log nothing for it. */
function toAuth0Log(e) {
  let mapped = AUTH0_TYPES[e.type];
  if (e.type === 'user_created') mapped = e.via === 'signup' ? ['ss', 'Success Signup'] : e.via === 'management_api' ? ['sapi', 'Success API Operation'] : null;
  if (!mapped) return null;
  const id = crypto.randomBytes(12).toString('hex');
  const data = { log_id: id, date: e.at, type: mapped[0], description: e.reason ? `${mapped[1]}: ${e.reason}` : mapped[1], connection: 'trickle', client_id: 'trickle-demo', client_name: 'Demo app' };
  if (e.user_id) data.user_id = e.user_id;
  return { log_id: id, data };
}

/**
 * A stream to `url`: `push(event)` queues, batches of up to `batchSize` go out every `intervalMs`
 * (sooner when a batch is full). Options {token (sent as Authorization: Bearer), batchSize,
 * intervalMs, maxQueue, timeoutMs}. `close()` delivers what is queued, then stops.
 */
function logStream(url, options = {}) {
  const o = { batchSize: 100, intervalMs: 200, maxQueue: 5000, timeoutMs: 5000, ...options };
  const queue = [];
  const stats = { sent: 0, dropped: 0, failedBatches: 0 };
  let timer = null;
  let inFlight = Promise.resolve();
  let closed = false;
  const send = (batch) => fetch(url, {
    method: 'POST', body: JSON.stringify(batch), signal: AbortSignal.timeout(o.timeoutMs),
    headers: { 'content-type': 'application/json', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) }
  }).then((r) => {
    if (r.ok) stats.sent += batch.length;
    else { stats.failedBatches++; stats.dropped += batch.length; }
    return r.arrayBuffer();
  }, () => { stats.failedBatches++; stats.dropped += batch.length; }).then(() => {}, () => {});
  const flush = () => {
    timer = null;
    while (queue.length) {
      const batch = queue.splice(0, o.batchSize);
      inFlight = inFlight.then(() => send(batch));
    }
    return inFlight;
  };
  return {
    stats,
    push(event) {
      if (closed) return;
      const entry = toAuth0Log(event);
      if (!entry) return;
      queue.push(entry);
      if (queue.length > o.maxQueue) { queue.shift(); stats.dropped++; }
      if (queue.length >= o.batchSize) { if (timer) clearTimeout(timer); setImmediate(flush); timer = null; }
      else if (!timer) { timer = setTimeout(flush, o.intervalMs); timer.unref(); }
    },
    flush,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await flush();
    }
  };
}

module.exports = { logStream, toAuth0Log, AUTH0_TYPES };
