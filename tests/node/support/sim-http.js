// What the simulator's tests do over HTTP as a person or an operator's tool would: post a form,
// sign in through the hosted login page (answering its authenticator-app challenge with codes
// from otplib, an implementation independent of the simulator's), get a Management API token.
'use strict';
const assert = require('node:assert/strict');
const { authenticator } = require('otplib');

/** Posts form fields without following redirects. */
const form = (url, fields) => fetch(url, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });

/** A client-credentials token for the simulated Management API. */
async function m2mToken(base) {
  const r = await form(`${base}/oauth/token`, { grant_type: 'client_credentials', client_id: 'trickle-m2m', client_secret: 'm2m-secret', audience: `${base}/api/v2/` });
  assert.equal(r.status, 200);
  return (await r.json()).access_token;
}

/** Signs in through /authorize and the hosted login page; resolves to the login POST's response. */
async function signIn(base, email, password) {
  const page = await (await fetch(`${base}/authorize?client_id=trickle-demo&response_type=code&state=s&redirect_uri=${encodeURIComponent(base + '/app/callback')}`)).text();
  const tx = page.match(/name="state" value="([^"]+)"/)[1];
  return form(`${base}/u/login`, { state: tx, email, password });
}

/** Signs in at the simulator `sim`'s tenant; resolves to where the tenant sent the browser. */
async function signedInTo(sim, email, password) {
  return (await signIn(sim.tenant.url, email, password)).headers.get('location');
}

/** The tenant user holding `email` (its stored, lower-case address). */
const userOf = (sim, email) => [...sim.tenant.state.users.values()].find((u) => u.email === email.toLowerCase());

const STEP_MS = 30000;
const spent = new Map(); // secret → the last time step whose code was typed (a code works once)
/**
 * The code a person's authenticator app shows for `secret`, as otplib computes it: the current
 * step's, or, when that one was already typed, the next step's (the tenant accepts ±1 step).
 * Waits for a fresh step only when both are spent.
 */
async function totpCode(secret) {
  for (;;) {
    const now = Math.floor(Date.now() / STEP_MS);
    const last = spent.has(secret) ? spent.get(secret) : -Infinity;
    const step = last < now ? now : last + 1;
    if (step <= now + 1) {
      spent.set(secret, step);
      return authenticator.clone({ epoch: step * STEP_MS }).generate(secret);
    }
    await new Promise((r) => setTimeout(r, (now + 1) * STEP_MS - Date.now() + 20));
  }
}

/** True when a hosted-login response is the authenticator-app challenge. */
const isMfaPage = (html) => /action="\/u\/mfa-otp-challenge"/.test(html);

/** The TOTP secrets the tenant holds for the user with `email` (what their authenticator app holds). */
function totpSecretsOf(sim, email) {
  const user = [...sim.tenant.state.users.values()].find((u) => u.email === String(email).trim().toLowerCase());
  return ((user && user.mfa_factors) || []).map((f) => f && f.totp && f.totp.secret).filter(Boolean);
}

/**
 * Answers the challenge page `html` of a login with a code for `secret` (or `code` as typed).
 * Resolves to the response of the code's POST.
 */
async function answerMfa(base, html, { secret, code } = {}) {
  const tx = html.match(/name="state" value="([^"]+)"/)[1];
  return form(`${base}/u/mfa-otp-challenge`, { state: tx, code: code !== undefined ? code : await totpCode(secret) });
}

/**
 * Signs in like `signIn`, and answers the authenticator-app challenge when the tenant asks for
 * one, with a code for the secret the tenant enrolled for the person. Resolves to the last
 * response (the redirect back to the app, or to the merge service). `sim` gives the secrets.
 */
async function signInThroughMfa(sim, email, password) {
  const base = sim.tenant.url;
  const res = await signIn(base, email, password);
  if (res.status !== 200) return res;
  const html = await res.text();
  if (!isMfaPage(html)) return new Response(html, { status: res.status, headers: res.headers });
  const [secret] = totpSecretsOf(sim, email);
  return answerMfa(base, html, { secret });
}

module.exports = { signedInTo, userOf, form, m2mToken, signIn, signInThroughMfa, answerMfa, totpCode, totpSecretsOf, isMfaPage };
