// The tenant's hosted pages (Universal Login's sign-in, the one-time code, password reset) and
// their one layout, written with lib/web.js's `html`: every value is escaped unless it is markup
// made here. Each function returns the page as a string, ready to send.
'use strict';
const { html } = require('../../lib/web');

const STYLE = `body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;padding:2rem 2.5rem;border-radius:10px;box-shadow:0 2px 12px #0002;width:22rem}h1{font-size:1.3rem;margin-top:0}
label{display:block;margin:.8rem 0 .2rem;font-size:.9rem}input[type=text],input[type=password]{width:100%;padding:.55rem;box-sizing:border-box;border:1px solid #bbb;border-radius:6px}
button{margin-top:1.2rem;width:100%;padding:.65rem;border:0;border-radius:6px;background:#3b5bdb;color:#fff;font-size:1rem;cursor:pointer}
.social{display:block;text-align:center;padding:.6rem;border:1px solid #bbb;border-radius:6px;text-decoration:none;color:#222}.error{background:#ffe3e3;color:#a00;padding:.5rem .7rem;border-radius:6px}.note{color:#555;font-size:.85rem}a{color:#3b5bdb}`;

/** The layout: `body` is html`…`. */
const page = (title, body) => String(html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>${STYLE}</style></head>
<body><main>${body}</main></body></html>`);

const alert = (error) => error && html`<p class="error" role="alert">${error}</p>`;

/** A page with a heading and an optional sentence under it. */
const notice = (title, heading, sentence) => page(title, html`<h1>${heading}</h1>${sentence && html`<p>${sentence}</p>`}`);
/** A page that only says what went wrong: `heading`, and an optional sentence after it. */
const errorPage = (heading, sentence) => notice('Error', heading, sentence);
/** The answer to a form or callback whose login transaction is unknown or over. */
const loginExpired = () => errorPage('This login has expired', 'Go back to the application and try again.');

/** The sign-in form, with a button per enabled social connection (`connections`: [{name, label}]). */
function loginPage(tx, connections, error) {
  const federated = (c) => `/u/login/federated?state=${encodeURIComponent(tx.state)}&connection=${encodeURIComponent(c.name)}`;
  const social = connections.length > 0 && html`<p class="note">or</p>${connections.map((c) => html`<p><a class="social" data-connection="${c.name}" href="${federated(c)}">Continue with ${c.label}</a></p>`)}`;
  return page('Sign in', html`<h1>Sign in</h1>${alert(error)}
<form method="post" action="/u/login"><input type="hidden" name="state" value="${tx.state}">
<label for="email">Email</label><input id="email" name="email" type="text" inputmode="email" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Continue</button></form>
<p class="note"><a href="/lo/reset?state=${encodeURIComponent(tx.state)}">Forgot password?</a></p>${social}`);
}

const mfaPage = (tx, error) => page('Verify your identity', html`<h1>Verify your identity</h1>${alert(error)}
<p class="note">Your account is protected by an authenticator app.</p>
<form method="post" action="/u/mfa-otp-challenge"><input type="hidden" name="state" value="${tx.state}">
<label for="code">Enter the code from your authenticator app</label><input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required autofocus>
<button type="submit">Continue</button></form>`);

const resetForm = (state, error) => page('Reset your password', html`<h1>Reset your password</h1>${alert(error)}
<form method="post" action="/lo/reset"><input type="hidden" name="state" value="${state}">
<label for="email">Email</label><input id="email" name="email" type="text" inputmode="email" autocomplete="email" required><button type="submit">Send me a link</button></form>`);

const resetSent = () => notice('Check your inbox', 'Check your inbox', 'If an account exists for this address, a link to choose a new password is on its way.');

const newPasswordForm = (ticket) => page('Choose a new password', html`<h1>Choose a new password</h1>
<form method="post" action="/lo/reset/confirm"><input type="hidden" name="ticket" value="${ticket}">
<label for="password">New password</label><input id="password" name="password" type="password" minlength="8" required autocomplete="new-password">
<button type="submit">Set password</button></form>`);

const linkExpired = () => page('Link expired', html`<h1>This link has expired or was used</h1><p><a href="/lo/reset">Ask for a new one</a></p>`);

/** Sends a page with its status. */
const send = (reply, status, body) => reply.code(status).type('text/html').send(body);

/** The demo application's callback: the code it was given, or the error. */
function appCallback(q) {
  if (q.error) return page('Not signed in', html`<h1>Not signed in</h1><p class="error" id="error">${q.error}: ${q.error_description}</p>`);
  return page('Signed in', html`<h1>Back at the app</h1><p>Authorization code:</p><p><code id="code">${q.code}</code></p>`);
}

module.exports = { send, page, notice, errorPage, loginExpired, loginPage, mfaPage, resetForm, resetSent, newPasswordForm, linkExpired, appCallback };
