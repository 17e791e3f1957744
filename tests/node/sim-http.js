// What the simulator's tests do over HTTP as a person or an operator's tool would: post a form,
// sign in through the hosted login page, get a Management API token.
'use strict';
const assert = require('node:assert/strict');

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

module.exports = { form, m2mToken, signIn };
