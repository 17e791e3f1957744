// The simulator's own pages: a live dashboard at /_sim, the mail catcher's inbox at /_sim/mail,
// and JSON endpoints for tests and the demo (state, mail, product modes, faults).
'use strict';

const { esc, html, raw } = require('../lib/web');

/** Counts for the dashboard, from the tenant's store and the products' databases. */
function snapshot(tenantState, products) {
  const users = [...tenantState.users.values()];
  const fanoutPending = {};
  const fanoutAcked = {};
  let pendingMerge = 0;
  let merged = 0;
  let bulk = 0;
  for (const u of users) {
    const meta = u.app_metadata || {};
    const t = meta.trickle || { accounts: [] };
    const accounts = Array.isArray(t.accounts) ? t.accounts : [];
    if (meta.bulkImported) bulk++;
    if (!meta.migrated && accounts.some((a) => !a.proof)) pendingMerge++;
    if (meta.migrated && new Set(accounts.map((a) => a.product)).size > 1) merged++;
    for (const a of accounts) {
      if (!a.proof) continue;
      const bucket = a.fanout ? fanoutAcked : fanoutPending;
      bucket[a.product] = (bucket[a.product] || 0) + 1;
    }
  }
  return {
    tenant: { users: users.length, ...tenantState.counters, pending_merge: pendingMerge, merged_people: merged, bulk_imported: bulk },
    products: products.map((p) => ({ name: p.name, format: p.format, ...p.stats(), fanout_acknowledged: fanoutAcked[p.name] || 0, fanout_pending: fanoutPending[p.name] || 0 })),
    events: tenantState.events.slice(-25).reverse()
  };
}

const DASHBOARD = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>trickle simulator</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font-family:system-ui,sans-serif;margin:1.5rem 2rem;color:#222;background:#fafbfc}h1{font-size:1.4rem}
.cards{display:flex;flex-wrap:wrap;gap:.8rem}.card{background:#fff;border:1px solid #e1e4e8;border-radius:8px;padding:.7rem 1rem;min-width:8rem}
.card b{display:block;font-size:1.6rem}table{border-collapse:collapse;margin:1rem 0;background:#fff}td,th{border:1px solid #e1e4e8;padding:.35rem .7rem;text-align:left}
.down{color:#b00;font-weight:bold}.up{color:#080}#events li{font-family:ui-monospace,monospace;font-size:.85rem}nav a{margin-right:1rem}</style></head>
<body><h1>trickle simulator</h1><nav><a href="/_sim/mail">Mail</a><a id="login-link" href="#">Sign in as a user</a></nav>
<h2>Tenant</h2><div class="cards" id="tenant"></div>
<h2>Products</h2><table><thead><tr><th>product</th><th>password format</th><th>accounts</th><th>Auth0 id written</th><th>fan-out acknowledged</th><th>fan-out pending</th><th>state</th></tr></thead><tbody id="products"></tbody></table>
<h2>Recent events</h2><ol id="events"></ol><p id="updated" class="note"></p>
<script>
const labels={users:'users in tenant',lazy_migrated:'migrated lazily',pending_merge:'pending merge',merged_people:'merged',bulk_imported:'bulk imported',logins:'logins',merge_redirects:'merge redirects',wrong_password:'wrong passwords',resets:'reset mails',denied:'denied'};
const esc=(s)=>String(s==null?'':s).replace(/[&<>"']/g,(c)=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
async function refresh(){try{const s=await (await fetch('/_sim/api/state')).json();
document.getElementById('tenant').innerHTML=Object.entries(labels).map(([k,l])=>'<div class="card" data-key="'+k+'"><b>'+esc(s.tenant[k]||0)+'</b>'+esc(l)+'</div>').join('');
document.getElementById('products').innerHTML=s.products.map(p=>'<tr data-product="'+esc(p.name)+'"><td>'+esc(p.name)+'</td><td>'+esc(p.format)+'</td><td>'+p.accounts+'</td><td>'+p.linked+'</td><td>'+p.fanout_acknowledged+'</td><td>'+p.fanout_pending+'</td><td class="'+(p.mode==='up'?'up':'down')+'">'+esc(p.mode)+(p.delayMs?' (+'+p.delayMs+' ms)':'')+'</td></tr>').join('');
document.getElementById('events').innerHTML=s.events.map(e=>'<li>'+esc(e.at.slice(11,19))+' '+esc(e.type)+' '+esc(e.user_id||e.reason||'')+'</li>').join('');
document.getElementById('updated').textContent='updated '+new Date().toLocaleTimeString();}catch(e){document.getElementById('updated').textContent='simulator unreachable';}}
document.getElementById('login-link').href='/authorize?client_id=trickle-demo&response_type=code&state=dashboard&redirect_uri='+encodeURIComponent(location.origin+'/app/callback');
refresh();setInterval(refresh,1000);
</script></body></html>`;

// A mail's text with its links clickable. The text is escaped first, so a URL can hold no quote
// or angle bracket and stays inside the href it is copied into.
const linkify = (text) => raw(esc(text).replace(/(https?:\/\/\S+)/g, '<a href="$1">$1</a>'));

/** The mail catcher's inbox, newest first. */
function mailPage(messages) {
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Mail</title>
<style>body{font-family:system-ui,sans-serif;margin:1.5rem 2rem}article{border:1px solid #ddd;border-radius:8px;padding:.6rem 1rem;margin:.8rem 0}pre{white-space:pre-wrap}</style></head>
<body><h1>Mail caught by the simulator (${messages.length})</h1><p><a href="/_sim">Dashboard</a></p>
${messages.slice().reverse().map((m) => html`<article><b>${m.subject}</b><br>to ${m.to.join(', ')} at ${m.at}<pre>${linkify(m.text)}</pre></article>`)}</body></html>`;
}

/** Registers the /_sim routes on the tenant's server (before it listens). */
function simRoutes(app, { tenantState, products, mail }) {
  app.get('/_sim', async (req, reply) => reply.type('text/html').send(DASHBOARD));
  app.get('/_sim/api/state', async () => snapshot(tenantState, products));
  app.get('/_sim/api/mail', async () => mail.messages);
  app.get('/_sim/mail', async (req, reply) => reply.type('text/html').send(String(mailPage(mail.messages))));
  app.post('/_sim/api/products/:name/mode', async (req, reply) => {
    const p = products.find((x) => x.name === req.params.name);
    const mode = req.body && req.body.mode;
    if (!p) return reply.code(404).send({ error: 'no such product' });
    if (!['up', 'down', 'hang', 'slow', 'readonly'].includes(mode)) return reply.code(400).send({ error: 'mode must be up, down, hang, slow or readonly' });
    p.setMode(mode, Number(req.body.delayMs) || undefined);
    return p.stats();
  });
  app.post('/_sim/api/mail/mode', async (req, reply) => {
    const mode = req.body && req.body.mode;
    if (!['up', 'reject'].includes(mode)) return reply.code(400).send({ error: 'mode must be up or reject' });
    return mail.setMode(mode);
  });
  app.post('/_sim/api/faults', async (req) => {
    const body = req.body || {};
    for (const k of ['latencyMs', 'errorRate', 'stormRate', 'dropRate']) if (typeof body[k] === 'number') tenantState.faults[k] = body[k];
    return tenantState.faults;
  });
}

module.exports = { simRoutes, snapshot };
