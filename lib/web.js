// The web plumbing of trickle's own servers (the simulator's pages, the merge service, the support
// console, the monitor), written once so that a fix to any of it lands everywhere: HTML that is
// escaped unless marked trusted, one cookie parser and one Set-Cookie builder with safe defaults,
// one CSRF check, and the Content-Security-Policy and other security headers.
'use strict';
const crypto = require('crypto');

// --- HTML ---

const ENTITIES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML content and quoted attribute values (null and undefined are empty). */
const esc = (s) => String(s == null ? '' : s).replace(/[&<>"']/g, (c) => ENTITIES[c]);

/** Markup already safe to send: what `html` and `raw` return; inserted as is into `html`. */
class SafeHtml {
  constructor(text) { this.text = text; }
  toString() { return this.text; }
}

/**
 * Marks trusted markup (a constant, or text escaped by other means): the one way past escaping,
 * so every such place can be found by looking for `raw(`.
 */
const raw = (markup) => new SafeHtml(markup == null ? '' : String(markup));

// One interpolated value as markup: safe markup as is, a list item by item, nothing for the
// values a condition leaves (`${error && html`…`}`), and anything else escaped as text.
function fragment(value) {
  if (value instanceof SafeHtml) return value.text;
  if (Array.isArray(value)) return value.map(fragment).join('');
  if (value == null || value === false) return '';
  return esc(value);
}

/**
 * The tagged template of every page: html`<p>${name}</p>` escapes `name` unless it is itself
 * html`…` or raw(…). Returns a SafeHtml; a server sends `String(page)`.
 */
function html(strings, ...values) {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += fragment(values[i]) + strings[i + 1];
  return new SafeHtml(out);
}

// --- cookies ---

/**
 * The request's cookies by name (`req` or a Cookie header). A value that does not
 * percent-decode is ignored (a sibling subdomain can plant one; it must not break a page), and so
 * is a name sent more than once: our servers set each cookie once, on one path, so a second one
 * was planted and neither can be trusted.
 */
function parseCookies(source) {
  const header = source && typeof source === 'object' ? (source.headers || {}).cookie : source;
  const out = Object.create(null);
  const seen = new Set();
  for (const part of String(header || '').split(';')) {
    const i = part.indexOf('=');
    const name = i > 0 ? part.slice(0, i).trim() : '';
    if (!name) continue;
    let value;
    try {
      value = decodeURIComponent(part.slice(i + 1).trim());
    } catch (_) {
      continue;
    }
    if (seen.has(name)) delete out[name];
    else out[name] = value;
    seen.add(name);
  }
  return out;
}

// A cookie name is an RFC 6265 token: anything else could add attributes or a second cookie.
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const SAME_SITE = new Set(['Strict', 'Lax', 'None']);

/**
 * One Set-Cookie value: the value percent-encoded, HttpOnly and SameSite=Lax unless asked
 * otherwise, Max-Age only when given (0 deletes; none makes a session cookie). What browsers
 * would silently drop is refused here instead: SameSite=None without Secure, a __Host- cookie
 * that is not Secure on Path=/, a __Secure- cookie that is not Secure.
 */
function setCookie(name, value, { maxAge, path = '/', httpOnly = true, sameSite = 'Lax', secure = false } = {}) {
  if (!COOKIE_NAME.test(String(name))) throw new TypeError(`cookie name ${JSON.stringify(name)} is not a token`);
  if (!SAME_SITE.has(sameSite)) throw new TypeError(`SameSite must be Strict, Lax or None, not ${JSON.stringify(sameSite)}`);
  if (maxAge !== undefined && !(Number.isInteger(maxAge) && maxAge >= 0)) throw new TypeError(`Max-Age must be a whole number of seconds, not ${JSON.stringify(maxAge)}`);
  if (!/^\/[\x21-\x3a\x3c-\x7e]*$/.test(path)) throw new TypeError(`cookie path ${JSON.stringify(path)} is not a plain absolute path`);
  if (sameSite === 'None' && !secure) throw new TypeError('a SameSite=None cookie must be Secure');
  if (name.startsWith('__Host-') && (!secure || path !== '/')) throw new TypeError('a __Host- cookie must be Secure, on Path=/');
  if (name.startsWith('__Secure-') && !secure) throw new TypeError('a __Secure- cookie must be Secure');
  return `${name}=${encodeURIComponent(value == null ? '' : String(value))}; Path=${path}${httpOnly ? '; HttpOnly' : ''}; SameSite=${sameSite}`
    + `${maxAge !== undefined ? `; Max-Age=${maxAge}` : ''}${secure ? '; Secure' : ''}`;
}

// --- CSRF ---

/** A fresh random token (192 bits, base64url): a form's CSRF token, a browser's binding. */
const randomToken = (bytes = 24) => crypto.randomBytes(bytes).toString('base64url');
const csrfToken = () => randomToken(24);

/**
 * Whether two secrets are the same, in time that does not depend on where they differ: both
 * are digested first, so strings of different lengths (in characters or in UTF-8 bytes) compare
 * without throwing. Anything but two strings is not the same.
 */
function safeEqual(a, b) {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  const digest = (s) => crypto.createHash('sha256').update(s, 'utf8').digest();
  return crypto.timingSafeEqual(digest(a), digest(b));
}

/** Whether a form's CSRF token is the session's: a missing or empty expected token matches nothing. */
const csrfOk = (sent, expected) => typeof expected === 'string' && expected.length > 0 && safeEqual(sent, expected);

/**
 * Whether a request's Origin is this service's own (a browser sends it on every cross-site POST);
 * a request that sends none passes, as older browsers and same-origin navigations may omit it.
 * `own`: this service's public URL or origin.
 */
function sameOrigin(req, own) {
  const origin = ((req && req.headers) || {}).origin;
  return !origin || origin === new URL(own).origin;
}

// --- security headers ---

/**
 * A Content-Security-Policy value: `default-src 'none'` first, then the given directives in
 * their order (a value is a source or a list of sources; null, undefined or false leaves the
 * directive out), then `frame-ancestors 'none'` and `base-uri 'none'` unless given. A source
 * holding `;` or `,` or a line break is refused: it would end the directive or the policy.
 */
function csp(directives = {}) {
  const all = { 'default-src': "'none'", ...directives };
  for (const k of ['frame-ancestors', 'base-uri']) if (!(k in all)) all[k] = "'none'";
  const parts = [];
  for (const [name, value] of Object.entries(all)) {
    if (value == null || value === false) continue;
    const sources = [].concat(value).map(String);
    if (!/^[a-z-]+$/.test(name) || sources.some((s) => /[;,\r\n]/.test(s))) throw new TypeError(`CSP directive ${name} ${JSON.stringify(value)} is not one directive`);
    parts.push([name, ...sources].join(' '));
  }
  return parts.join('; ');
}

/**
 * The security headers of a page: always nosniff and no-store; the CSP `csp` unless the reply
 * already has its own (a page that needs more, a nonce, sets it first); `X-Frame-Options: DENY`
 * unless `frame` is false; and, when given, `referrer` (Referrer-Policy), `coop`
 * (Cross-Origin-Opener-Policy) and `hsts` (Strict-Transport-Security max-age, in seconds).
 */
function securityHeaders(reply, { csp: policy, frame = 'DENY', referrer, coop, hsts } = {}) {
  reply.header('x-content-type-options', 'nosniff');
  if (frame) reply.header('x-frame-options', frame);
  if (referrer) reply.header('referrer-policy', referrer);
  reply.header('cache-control', 'no-store');
  if (coop) reply.header('cross-origin-opener-policy', coop);
  if (hsts) reply.header('strict-transport-security', `max-age=${hsts}`);
  if (policy && !reply.getHeader('content-security-policy')) reply.header('content-security-policy', policy);
  return reply;
}

module.exports = {
  esc, html, raw, SafeHtml,
  parseCookies, setCookie,
  randomToken, csrfToken, safeEqual, csrfOk, sameOrigin,
  csp, securityHeaders
};
