// trickle's one retry policy, for every client it has: the chain's Management API calls (the
// Action and the Rule), the bulk commands' tenant client, the import's job scheduling, backfill,
// notify and the merge service. After a 429, a 5xx or no answer at all, the next try waits as long
// as the server asks (Retry-After, in seconds or as an HTTP date; on a 429 without it,
// x-ratelimit-reset), else an exponential back-off with jitter; never longer than a cap, never
// past a deadline, never more than a number of tries. Any other answer is final: a 4xx other
// than 429 says the same the next time.
//
// Inlined into the Action and the Rule after shim.js (rules/build.js), so, as there, everything
// above the end marker is plain function declarations that work inside a function body on Node
// 18 and 22 with only the runtime's globals. The Node tools require it.

/**
 * The back-off after `attempt` tries (from 1), in ms: `p.base` doubled for each try after the
 * first, at most `p.cap`, times a jitter in [0.5, 1) from `random()` in [0, 1): never above
 * the cap, never below half the un-jittered back-off.
 */
function trickleBackoff(attempt, p, random) {
  return Math.min(p.cap, p.base * Math.pow(2, attempt - 1)) * (0.5 + random() / 2);
}

/**
 * Whether to try again, and when: the wait in ms, or -1 to give up. Pure: the clock and the
 * random source come in `t`.
 *
 * `t`: `attempt` (tries made, from 1), `status` (the answer's HTTP status, 0 for none: a network
 * error or a timeout), `retryAfter` (the Retry-After header: delay seconds or an HTTP date),
 * `reset` (x-ratelimit-reset: Unix seconds), `now` (ms since the epoch), `left` (ms before the
 * deadline; undefined for none) and `random` (a function into [0, 1)).
 * `p`: `attempts` (the most tries), `base` and `cap` (ms, trickleBackoff), `only429` (a 5xx or no
 * answer is final too: a call that may only be repeated when the tenant refused it unseen).
 *
 * Retry-After counts on any answer tried again, x-ratelimit-reset on a 429 only (on other answers
 * it is the reset of a bucket that is not empty), at least 250 ms (it counts whole seconds). A
 * header of zero, in the past or unreadable is no header. Whatever the server asks is capped; a
 * wait that does not end before the deadline gives up.
 */
function trickleRetryWait(t, p) {
  var s = t.status;
  if (t.attempt >= p.attempts || (s !== 429 && (p.only429 || (s !== 0 && s < 500)))) return -1;
  var n = Number(t.retryAfter);
  var wait = isFinite(n) ? n * 1000 : Date.parse(t.retryAfter) - t.now;
  var reset = Number(t.reset);
  if (!(wait > 0) && s === 429 && reset > 0) wait = Math.max(250, reset * 1000 - t.now);
  if (!(wait > 0)) wait = trickleBackoff(t.attempt, p, t.random);
  wait = Math.min(wait, p.cap);
  // Without a deadline `left` is undefined, and no comparison with it holds.
  return wait >= t.left ? -1 : wait;
}

/**
 * Calls `call(attempt)` (a promise of a fetch Response, or of trickleFetch's result, which has
 * `headers` on a 429) and again while trickleRetryWait says so, waiting in between; resolves to
 * the last answer. A rejection is no answer (status 0); the last one rejects. `p`: the policy,
 * `deadline` (ms since the epoch; none when undefined) and `random` (Math.random when none).
 */
function trickleRetry(call, p) {
  var attempt = 0;
  var next = function () {
    var failed = null;
    attempt++;
    return new Promise(function (ok) { ok(call(attempt)); }).then(null, function (e) { failed = [e]; }).then(function (r) {
      var h = r && r.headers;
      var now = Date.now();
      var wait = trickleRetryWait({
        attempt: attempt, status: r ? r.status : 0, now: now, left: p.deadline - now, random: p.random || Math.random,
        retryAfter: h && h.get('retry-after'), reset: h && h.get('x-ratelimit-reset')
      }, p);
      if (wait >= 0) return new Promise(function (ok) { setTimeout(ok, wait); }).then(next);
      if (failed) throw failed[0];
      return r;
    });
  };
  return next();
}

// @end-inline: below this line only for Node's module system (the bundler drops it).
if (typeof module !== 'undefined' && module.exports) {
  module.exports = { trickleBackoff: trickleBackoff, trickleRetryWait: trickleRetryWait, trickleRetry: trickleRetry };
}
