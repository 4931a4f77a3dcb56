// Test driver for the report page (tests/sim/report_browser_test.cpp): injected as the first
// element of <head>, so that it sees every script error. After load it inspects the DOM, types
// into the search box and writes what it found as JSON into <pre id="driver-result">, which the
// test reads back from chromium --dump-dom. Not part of the product.
(function () {
  'use strict';
  var errors = [];
  window.onerror = function (msg, src, line, col) {
    errors.push(String(msg) + ' at ' + line + ':' + col);
  };
  window.addEventListener('unhandledrejection', function (e) {
    errors.push('unhandled rejection: ' + String(e.reason));
  });
  // Resources that failed to load (the page should load none at all).
  window.addEventListener('error', function (e) {
    if (e.target && e.target !== window) {
      errors.push('resource: ' + (e.target.src || e.target.href || e.target.tagName));
    }
  }, true);

  function cards() {
    return Array.prototype.slice.call(document.querySelectorAll('#conn-list .conn'));
  }
  function info(c) {
    var r = { uid: c.getAttribute('data-uid'), ladders: c.querySelectorAll('svg.ladder').length,
              allow: 0, deny: 0, reasons: {}, indexes: [],
              stateless: c.querySelectorAll('svg.ladder rect.stateless-row').length,
              stops: [], labels: [], heads: [], gates: [] };
    // The ladder's checkpoints by position: the x of each gate line and what it is.
    var gateAt = {};
    c.querySelectorAll('svg.ladder text.gate-name').forEach(function (t) {
      gateAt[t.getAttribute('x')] = t.getAttribute('data-gate');
      r.gates.push(t.textContent);
    });
    c.querySelectorAll('svg.ladder g.arrow').forEach(function (a) {
      // Where a denied packet stops: the gate under its cross ('between' when none).
      var cross = a.querySelector('path');
      if (cross) {
        var x = parseFloat(cross.getAttribute('d').slice(1)) + 6;
        r.stops.push(gateAt[String(x)] || 'between');
      } else {
        r.stops.push('');
      }
      r.labels.push(a.querySelector('text.arrow-label').textContent);
      // The verdict sits beyond the arrow's head.
      var line = a.querySelector('line'), tip = parseFloat(a.querySelector('polygon')
          .getAttribute('points'));
      var x1 = parseFloat(line.getAttribute('x1'));
      var v = a.querySelector('text.verdict'), vx = parseFloat(v.getAttribute('x'));
      r.heads.push(tip > x1 ? vx > tip : vx < tip);
      r[a.getAttribute('data-verdict')] += 1;
      var reason = a.getAttribute('data-reason');
      r.reasons[reason] = (r.reasons[reason] || 0) + 1;
      r.indexes.push(parseInt(a.getAttribute('data-index'), 10));
    });
    return r;
  }
  function type(q) {
    var s = document.getElementById('conn-search');
    s.value = q;
    s.dispatchEvent(new Event('input', { bubbles: true }));
  }
  function pageSize(n) {
    var sel = document.getElementById('conn-page-size');
    sel.value = String(n);
    sel.dispatchEvent(new Event('change', { bubbles: true }));
  }
  function uids() {
    return cards().map(function (c) { return c.getAttribute('data-uid'); });
  }

  function run() {
    var out = { errors: errors, ready: document.body.getAttribute('data-report-ready') };
    try {
      out.initial_cards = cards().length;
      pageSize(100);
      out.cards = cards().map(info);
      out.status = document.getElementById('conn-status').textContent;
      out.queries = {};
      ['10.0.3.10', '5432', 'deny-acl', 'deny', 'udp', '198.51.100.', 'tcp 10.0.1.10 443',
       'no-such-thing'].forEach(function (q) {
        type(q);
        out.queries[q] = { uids: uids(),
                           matches: parseInt(document.getElementById('conn-status')
                                                 .getAttribute('data-matches'), 10) };
      });
      type('');
      out.after_clear = cards().length;
      pageSize(10);
      out.page1 = uids();
      document.getElementById('conn-next').click();
      out.page2 = uids();
      out.tcp_edges = document.querySelectorAll('#tcp-graph g.tcp-edge').length;
      out.tcp_nodes = document.querySelectorAll('#tcp-graph g.tcp-node').length;
      out.expiry_markers = document.querySelectorAll('#table-chart .expiry').length;
      out.never_hit_rows = document.querySelectorAll('tr.never').length;
      out.images = document.querySelectorAll('img').length;
      out.pwned = window.__pwned === true;
      out.group_headings = Array.prototype.map.call(
          document.querySelectorAll('#policy .group h3 > code'),
          function (e) { return e.textContent; });
    } catch (e) {
      out.exception = String(e) + ' ' + (e && e.stack);
    }
    var pre = document.createElement('pre');
    pre.id = 'driver-result';
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  }
  window.addEventListener('load', function () { setTimeout(run, 10); });
})();
