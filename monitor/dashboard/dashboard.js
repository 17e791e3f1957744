// The dashboard's charts: polls /dashboard/series and draws it with uPlot (served by the monitor
// from node_modules/uplot/dist; no CDN). window.trickleCharts exposes the plots for tests.
'use strict';
(function () {
  var COLORS = ['#2f5bd3', '#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e'];
  var CHARTS = {
    progress: [['lazy', 'migrated lazily'], ['imported', 'imported'], ['backfilled', 'backfilled'], ['remaining', 'still to go']],
    migrations: [['lazy_migrations', 'lazy migrations'], ['merges_started', 'merges started'], ['merges_completed', 'merges completed'], ['squatter_refusals', 'refused until reset']],
    fanout: [['fanout_acknowledged', 'fan-out acknowledged'], ['fanout_failed', 'fan-out failed'], ['product_unavailable', 'product unavailable'], ['links_withdrawn', 'links withdrawn']],
    tenant: [['tenant_login_success', 'logins'], ['tenant_login_failure', 'failed logins'], ['tenant_password_change', 'password changes']]
  };
  var LABELS = { lazy: 'migrated lazily', imported: 'imported', backfilled: 'backfilled', remaining: 'still to go', total: 'people' };
  var plots = {};
  window.trickleCharts = plots;

  function width(el) { return Math.max(260, el.clientWidth - 4); }
  function draw(name, data) {
    var el = document.getElementById('chart-' + name);
    var series = [{}].concat(CHARTS[name].map(function (s, i) { return { label: s[1], stroke: COLORS[i], width: 2 }; }));
    var cols = [data.t].concat(CHARTS[name].map(function (s) { return data.series[s[0]] || data.t.map(function () { return null; }); }));
    if (!plots[name]) {
      plots[name] = new uPlot({ width: width(el), height: 220, series: series, axes: [{}, { size: 50 }], scales: { x: { time: true } } }, cols, el);
    } else {
      plots[name].setData(cols);
    }
  }
  function text(tag, cls, value) { var e = document.createElement(tag); if (cls) e.className = cls; e.textContent = value; return e; }
  function progress(p) {
    var box = document.getElementById('progress');
    box.textContent = '';
    if (!p) { box.appendChild(text('p', 'muted', 'no progress figures yet (POST /progress, or the demo)')); return; }
    ['total', 'lazy', 'imported', 'backfilled', 'remaining'].forEach(function (k) {
      if (typeof p[k] !== 'number') return;
      var c = text('div', 'card', LABELS[k]);
      c.setAttribute('data-key', k);
      c.insertBefore(text('b', '', String(p[k])), c.firstChild);
      box.appendChild(c);
    });
    var bar = document.getElementById('bar');
    bar.textContent = '';
    var total = p.total || ((p.lazy || 0) + (p.imported || 0) + (p.remaining || 0)) || 1;
    [['lazy', COLORS[0]], ['imported', COLORS[1]]].forEach(function (k) {
      var s = document.createElement('span');
      s.style.width = (100 * (p[k[0]] || 0) / total) + '%';
      s.style.background = k[1];
      bar.appendChild(s);
    });
  }
  function refresh() {
    fetch('/dashboard/series', { cache: 'no-store' }).then(function (r) { return r.json(); }).then(function (data) {
      Object.keys(CHARTS).forEach(function (name) { draw(name, data); });
      progress(data.progress);
      document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString() + ' · ' + data.t.length + ' samples every ' + (data.sampleMs / 1000) + ' s';
    }).catch(function () { document.getElementById('updated').textContent = 'monitor unreachable'; });
  }
  window.addEventListener('resize', function () {
    Object.keys(plots).forEach(function (name) { plots[name].setSize({ width: width(document.getElementById('chart-' + name)), height: 220 }); });
  });
  refresh();
  setInterval(refresh, 2000);
})();
