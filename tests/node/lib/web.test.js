// lib/web.js: the one HTML template, cookie parser and builder, CSRF check and security headers
// of the simulator, the merge service, the support console and the monitor.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { esc, html, raw, SafeHtml, parseCookies, setCookie, randomToken, csrfToken, safeEqual, csrfOk, sameOrigin, csp, securityHeaders } = require('../../../lib/web');

const HOSTILE = `<script>"'&`;

test('each of the five characters is escaped, by esc and in a template', () => {
  const cases = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  for (const [c, entity] of Object.entries(cases)) {
    assert.equal(esc(`a${c}b`), `a${entity}b`, c);
    assert.equal(String(html`<p>${`a${c}b`}</p>`), `<p>a${entity}b</p>`, c);
  }
  assert.equal(esc('plain text, é ✓'), 'plain text, é ✓');
  assert.equal(esc('&amp;'), '&amp;amp;', 'text that looks escaped is text');
});

test('a hostile value stays inside its attribute and its element', () => {
  const page = String(html`<input name="q" value="${HOSTILE}"><a title='${HOSTILE}'>${HOSTILE}</a>`);
  assert.equal(page, '<input name="q" value="&lt;script&gt;&quot;&#39;&amp;"><a title=\'&lt;script&gt;&quot;&#39;&amp;\'>&lt;script&gt;&quot;&#39;&amp;</a>');
  assert.ok(!page.includes('<script'));
});

test('html inside html is inserted once, not escaped twice', () => {
  const item = (x) => html`<li class="x">${x}</li>`;
  const inner = item('a&b');
  const page = html`<ul>${inner}</ul><p>${html`<b>${HOSTILE}</b>`}</p>`;
  assert.ok(page instanceof SafeHtml);
  assert.equal(String(page), '<ul><li class="x">a&amp;b</li></ul><p><b>&lt;script&gt;&quot;&#39;&amp;</b></p>');
  assert.equal(`${page}`, String(page), 'a template literal takes the markup');
});

test('arrays are joined: safe items as is, text items escaped', () => {
  assert.equal(String(html`<ol>${['<1>', 2].map((n) => html`<li>${n}</li>`)}</ol>`), '<ol><li>&lt;1&gt;</li><li>2</li></ol>');
  assert.equal(String(html`${['<a>', raw('<b>'), [html`<i>${'&'}</i>`]]}`), '&lt;a&gt;<b><i>&amp;</i>');
  assert.equal(String(html`<ol>${[]}</ol>`), '<ol></ol>');
});

test('raw passes trusted markup, and only raw does; plain strings with markup are escaped', () => {
  assert.equal(String(html`<div>${raw('<br>')}</div>`), '<div><br></div>');
  assert.equal(String(html`<div>${'<br>'}</div>`), '<div>&lt;br&gt;</div>');
  assert.equal(String(raw(null)), '');
  assert.equal(String(raw(42)), '42');
});

test('null, undefined and false render as nothing; 0, true and numbers as text', () => {
  assert.equal(String(html`[${null}|${undefined}|${false}]`), '[||]');
  assert.equal(String(html`[${0}|${true}|${12.5}|${''}]`), '[0|true|12.5|]');
  assert.equal(String(html`${HOSTILE.length > 0 && html`<b>yes</b>`}`), '<b>yes</b>');
  assert.equal(esc(null), '');
  assert.equal(esc(undefined), '');
  assert.equal(esc(0), '0');
});

test('parseCookies: a request or a header; trimmed, decoded, null-prototype', () => {
  const c = parseCookies({ headers: { cookie: ' a=1;  b = two%20words ; empty=; =nameless; novalue; c=x=y' } });
  assert.deepEqual({ ...c }, { a: '1', b: 'two words', empty: '', c: 'x=y' });
  assert.equal(Object.getPrototypeOf(c), null);
  assert.equal(parseCookies('__proto__=x').__proto__, 'x', 'a hostile name is only a key');
  assert.deepEqual({ ...parseCookies(undefined) }, {});
  assert.deepEqual({ ...parseCookies({ headers: {} }) }, {});
});

test('parseCookies: bad percent-encoding is ignored, not thrown; a name sent twice counts as neither', () => {
  assert.deepEqual({ ...parseCookies('bad=%E0%A4%A; good=ok') }, { good: 'ok' });
  assert.deepEqual({ ...parseCookies('bad=%zz') }, {});
  assert.deepEqual({ ...parseCookies('sid=mine; other=1; sid=planted') }, { other: '1' });
  assert.deepEqual({ ...parseCookies('sid=a; sid=b; sid=c') }, {});
});

test('setCookie: safe defaults, and what it writes parseCookies reads back', () => {
  assert.equal(setCookie('sid', 'abc'), 'sid=abc; Path=/; HttpOnly; SameSite=Lax');
  assert.equal(setCookie('sid', 'abc', { maxAge: 600, secure: true }), 'sid=abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=600; Secure');
  assert.equal(setCookie('sid', '', { maxAge: 0 }), 'sid=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0');
  assert.equal(setCookie('pref', 'x', { httpOnly: false, sameSite: 'Strict', path: '/login/callback' }), 'pref=x; Path=/login/callback; SameSite=Strict');
  for (const value of [HOSTILE, 'a; Path=/x; Domain=evil', 'é ✓ =,', '']) {
    const header = setCookie('v', value, { maxAge: 60 });
    assert.equal(header.split(';').length, 5, `${value}: the value adds no attribute`);
    assert.equal(parseCookies(header.split(';')[0]).v, value);
  }
});

test('setCookie refuses what a browser would drop or an attacker could use', () => {
  assert.throws(() => setCookie('a b', 'x'), TypeError);
  assert.throws(() => setCookie('a;b', 'x'), TypeError);
  assert.throws(() => setCookie('', 'x'), TypeError);
  assert.throws(() => setCookie('a', 'x', { maxAge: -1 }), TypeError);
  assert.throws(() => setCookie('a', 'x', { maxAge: 1.5 }), TypeError);
  assert.throws(() => setCookie('a', 'x', { sameSite: 'lax' }), TypeError);
  assert.throws(() => setCookie('a', 'x', { sameSite: 'None' }), TypeError);
  assert.throws(() => setCookie('a', 'x', { path: '/; Domain=evil' }), TypeError);
  assert.throws(() => setCookie('__Host-a', 'x'), TypeError);
  assert.throws(() => setCookie('__Host-a', 'x', { secure: true, path: '/sub' }), TypeError);
  assert.throws(() => setCookie('__Secure-a', 'x'), TypeError);
  assert.equal(setCookie('__Host-a', 'x', { secure: true }), '__Host-a=x; Path=/; HttpOnly; SameSite=Lax; Secure');
  assert.equal(setCookie('a', 'x', { sameSite: 'None', secure: true }), 'a=x; Path=/; HttpOnly; SameSite=None; Secure');
});

test('CSRF: a fresh token each time; right passes, wrong, missing and odd refused', () => {
  const token = csrfToken();
  assert.match(token, /^[A-Za-z0-9_-]{32}$/);
  assert.notEqual(csrfToken(), token);
  assert.match(randomToken(18), /^[A-Za-z0-9_-]{24}$/);
  assert.equal(csrfOk(token, token), true);
  assert.equal(csrfOk(`${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`, token), false, 'one character off');
  assert.equal(csrfOk(token.slice(1), token), false, 'shorter');
  assert.equal(csrfOk(`${token}x`, token), false, 'longer');
  assert.equal(csrfOk('', token), false, 'empty');
  assert.equal(csrfOk(undefined, token), false, 'missing');
  assert.equal(csrfOk([token], token), false, 'a list');
  assert.equal(csrfOk('é'.repeat(32), token), false, 'same length in characters, longer in bytes: refused, not thrown');
  assert.equal(csrfOk('', ''), false, 'no expected token matches nothing');
  assert.equal(csrfOk(undefined, undefined), false);
  assert.equal(safeEqual('é', 'é'), true);
  assert.equal(safeEqual('a', 'b'), false);
  assert.equal(safeEqual(1, 1), false);
});

test('sameOrigin: no Origin or our own passes; another, or null, does not', () => {
  const req = (origin) => ({ headers: origin === undefined ? {} : { origin } });
  assert.equal(sameOrigin(req(undefined), 'https://support.example.com/'), true);
  assert.equal(sameOrigin(req('https://support.example.com'), 'https://support.example.com/console'), true);
  assert.equal(sameOrigin(req('https://evil.example.com'), 'https://support.example.com'), false);
  assert.equal(sameOrigin(req('http://support.example.com'), 'https://support.example.com'), false);
  assert.equal(sameOrigin(req('null'), 'https://support.example.com'), false);
});

test('csp: locked down by default, directives in order, omitted when null, injection refused', () => {
  assert.equal(csp(), "default-src 'none'; frame-ancestors 'none'; base-uri 'none'");
  assert.equal(csp({ 'style-src': "'self'", 'img-src': "'self'", 'form-action': "'self'" }),
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
  assert.equal(csp({ 'form-action': ["'self'", 'https://tenant.example.com'], 'script-src': null, 'img-src': false }),
    "default-src 'none'; form-action 'self' https://tenant.example.com; frame-ancestors 'none'; base-uri 'none'");
  assert.equal(csp({ 'default-src': "'self'", 'frame-ancestors': "'self'" }), "default-src 'self'; frame-ancestors 'self'; base-uri 'none'");
  assert.throws(() => csp({ 'script-src': "'self'; script-src *" }), TypeError);
  assert.throws(() => csp({ 'script-src': "'self', *" }), TypeError);
  assert.throws(() => csp({ 'script-src x': "'self'" }), TypeError);
});

test('securityHeaders: nosniff, no-store and DENY always; the CSP unless the page set its own; the rest when asked', () => {
  const reply = () => {
    const h = {};
    return { h, header(k, v) { h[k] = v; return this; }, getHeader: (k) => h[k] };
  };
  const a = reply();
  securityHeaders(a, { csp: csp() });
  assert.deepEqual(a.h, { 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY', 'cache-control': 'no-store', 'content-security-policy': csp() });
  const b = reply();
  b.header('content-security-policy', "script-src 'nonce-x'");
  securityHeaders(b, { csp: csp(), referrer: 'no-referrer', coop: 'same-origin', hsts: 31536000, frame: false });
  assert.deepEqual(b.h, {
    'content-security-policy': "script-src 'nonce-x'", 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer',
    'cache-control': 'no-store', 'cross-origin-opener-policy': 'same-origin', 'strict-transport-security': 'max-age=31536000'
  });
});
