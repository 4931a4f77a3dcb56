// The report page's stylesheet and script, as raw string literals (no build step needed).
#include "report_assets.hpp"

namespace statewall::sim::detail {

const std::string_view kReportCss = R"CSS(
:root { --fg:#1d2330; --muted:#5b6475; --line:#d9dee7; --bg:#f5f7fa; --card:#fff; --accent:#1f5fbf; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
  color:var(--fg); background:var(--bg); }
header { background:#18233a; color:#fff; padding:18px 28px 14px; }
header h1 { margin:0 0 4px; font-size:22px; font-weight:600; }
header .meta { color:#c4cde0; font-size:13px; }
header .meta code { color:#fff; }
nav { position:sticky; top:0; z-index:5; background:#fff; border-bottom:1px solid var(--line);
  padding:6px 28px; display:flex; gap:18px; flex-wrap:wrap; font-size:13px; }
nav a { color:var(--accent); text-decoration:none; }
main { padding:8px 28px 40px; max-width:1280px; }
section { margin:22px 0 30px; }
h2 { font-size:19px; margin:0 0 10px; border-bottom:2px solid var(--line); padding-bottom:4px; }
h3 { font-size:15px; margin:18px 0 6px; }
p.note, .note { color:var(--muted); font-size:13px; margin:6px 0; }
code, .mono { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12.5px; }
.cards { display:grid; grid-template-columns:repeat(auto-fill,minmax(180px,1fr)); gap:12px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
.card .k { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.card .v { font-size:26px; font-weight:600; margin-top:2px; }
.card .s { color:var(--muted); font-size:12px; }
.grid2 { display:grid; grid-template-columns:1fr 1fr; gap:16px; }
@media (max-width:900px) { .grid2 { grid-template-columns:1fr; } }
table { border-collapse:collapse; background:var(--card); width:100%; }
th, td { border:1px solid var(--line); padding:4px 8px; text-align:left; vertical-align:top; }
th { background:#eef1f6; font-weight:600; font-size:13px; }
td { overflow-wrap:anywhere; }
#reasons td:nth-child(2) { white-space:nowrap; }
td.n, th.n { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
tr.never td { background:#fff8e6; }
.badge { display:inline-block; font-size:11px; border-radius:9px; padding:0 7px; margin-left:6px;
  background:#f3d27a; color:#4a3800; white-space:nowrap; }
.badge.deny { background:#f6c9c9; color:#6b1010; }
.badge.allow { background:#cfe9d2; color:#12431a; }
.swatch { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:6px;
  vertical-align:baseline; }
.bar { height:10px; border-radius:2px; display:inline-block; vertical-align:middle; min-width:1px; }
.svgwrap { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:8px;
  overflow-x:auto; }
svg text { font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif; }
.controls { display:flex; gap:12px; align-items:center; flex-wrap:wrap; margin:8px 0 12px; }
.controls input[type=search] { width:480px; max-width:100%; padding:6px 10px; font-size:14px;
  border:1px solid #aab3c2; border-radius:6px; }
.controls button, .controls select { padding:4px 10px; font-size:13px; }
.conn { background:var(--card); border:1px solid var(--line); border-radius:8px; margin:0 0 12px;
  padding:8px 12px; }
.conn .head { display:flex; flex-wrap:wrap; gap:4px 14px; align-items:baseline; }
.conn .head .flow { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-weight:600; }
.conn .head .id { color:var(--muted); }
.conn .sub { color:var(--muted); font-size:12.5px; margin:2px 0 4px; }
.conn svg.ladder { display:block; margin-top:4px; }
.legend span { margin-right:14px; white-space:nowrap; font-size:12.5px; }
.empty { color:var(--muted); padding:16px; text-align:center; }
details summary { cursor:pointer; color:var(--accent); }
)CSS";

const std::string_view kReportJs = R"JS(
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('report-data').textContent);
  var SVG = 'http://www.w3.org/2000/svg';
  // Connection fields (see renderReportHtml).
  var C = { seq:0, uid:1, proto:2, oh:3, op:4, rh:5, rp:6, state:7, hist:8, opk:9, rpk:10,
            pk:11, allow:12, deny:13, start:14, dur:15, end:16, first:17, opened:18, changed:19,
            byReason:20, icmpErr:21, arrows:22, gates:23, conn:24, encap:25 };
  // Arrow fields.
  var A = { left:0, reason:1, label:2, before:3, after:4, flags:5, t:6, stateless:7, index:8,
            payload:9, icmpErr:10, text:11, stop:12 };
  // LadderStop (report.hpp): where a denied packet stops.
  var STOPS = ['', 'groups', 'acl', 'acl', 'groups', 'between'];
  var FLAG_NAMES = ['new', 'reply', 'tcp-invalid', 'untracked', 'control', 'fragment',
                    'mid-stream', 'reopened', 'closed'];

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function sv(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function isPorted(c) { return c[C.proto] === 'tcp' || c[C.proto] === 'udp'; }
  function endpoint(h, p, ported) {
    if (!ported) return h;
    return h.indexOf(':') >= 0 ? '[' + h + ']:' + p : h + ':' + p;
  }
  function fmtNum(n) { return Number(n).toLocaleString('en-US'); }

  // Search terms of every connection, computed once.
  var terms = D.conns.map(function (c) {
    var t = [c[C.proto], c[C.oh], c[C.rh], c[C.state], c[C.uid], c[C.end],
             String(c[C.seq] + 1), '#' + (c[C.seq] + 1)];
    if (isPorted(c)) {
      t.push(String(c[C.op]), String(c[C.rp]), endpoint(c[C.oh], c[C.op], true),
             endpoint(c[C.rh], c[C.rp], true));
    }
    if (c[C.encap]) c[C.encap].split(/[\s,;()]+/).forEach(function (w) { if (w) t.push(w); });
    if (c[C.allow] > 0) t.push('allow', 'allowed');
    if (c[C.deny] > 0) t.push('deny', 'denied');
    if (c[C.changed] > 0) t.push('stateless');
    c[C.byReason].forEach(function (rn) { t.push(D.reasons[rn[0]]); });
    return t.map(function (s) { return String(s).toLowerCase(); });
  });

  // A token matches a term when equal; a token ending in '.' or ':' (an address prefix) also
  // matches the terms it begins. Every token of the query must match.
  function matches(i, tokens) {
    var t = terms[i];
    for (var k = 0; k < tokens.length; k++) {
      var tok = tokens[k], hit = false;
      var prefix = /[.:]$/.test(tok);
      for (var j = 0; j < t.length && !hit; j++) {
        hit = t[j] === tok || (prefix && t[j].lastIndexOf(tok, 0) === 0);
      }
      if (!hit) return false;
    }
    return true;
  }

  var state = { query: '', page: 0, size: 10, hits: [] };
  var list = document.getElementById('conn-list');
  var status = document.getElementById('conn-status');
  var search = document.getElementById('conn-search');
  var sizeSel = document.getElementById('conn-page-size');
  var prev = document.getElementById('conn-prev');
  var next = document.getElementById('conn-next');

  function filter() {
    var tokens = state.query.toLowerCase().split(/[\s,]+/).filter(function (s) { return s; });
    state.hits = [];
    for (var i = 0; i < D.conns.length; i++) {
      if (tokens.length === 0 || matches(i, tokens)) state.hits.push(i);
    }
  }

  function arrowLabel(a) {
    var s = a[A.label];
    var b = D.states[a[A.before]], f = D.states[a[A.after]];
    if (a[A.before] !== 0 || a[A.after] !== 0) {
      s += '   ' + (b === f ? b : b + ' \u2192 ' + f);
    }
    if (a[A.payload] > 0) s += '   (' + a[A.payload] + ' B)';
    return s;
  }

  function connName(c) {
    return c[C.conn] ? 'connection #' + c[C.conn] : 'a flow without a connection';
  }

  function ladder(c) {
    var arrows = c[C.arrows], gates = c[C.gates];
    // Lanes: originator, its interface's groups, its subnet's ACL, (between the subnets), the
    // responder's subnet's ACL, its groups, the responder. Verdicts sit at each arrow's head.
    var W = 1100, top = 46, row = 26, xL = 240, xR = 860, mid = (xL + xR) / 2;
    var gx = [null, 350, 440, 660, 750, mid];
    var H = top + arrows.length * row + 14;
    var svg = sv('svg', { 'class': 'ladder', width: W, height: H, viewBox: '0 0 ' + W + ' ' + H,
                          role: 'img' });
    svg.appendChild(sv('title', {}, 'Ladder diagram of ' + connName(c)));
    var ported = isPorted(c);
    var lanes = [[xL, endpoint(c[C.oh], c[C.op], ported), 'originator', 'end'],
                 [xR, endpoint(c[C.rh], c[C.rp], ported), 'responder', 'end']];
    var kinds = [null, 'groups', 'acl', 'acl', 'groups'];
    for (var g = 1; g <= 4; g++) {
      var name = gates[g - 1];
      var role = kinds[g] === 'groups' ? 'security groups' : 'network ACL';
      lanes.push([gx[g], name ? (name.length > 14 ? name.slice(0, 13) + '\u2026' : name)
                                : (kinds[g] === 'groups' ? 'no groups' : 'no ACL'),
                  name ? (kinds[g] === 'groups' ? 'groups (interface)' : 'ACL (subnet edge)') : '',
                  name ? 'gate' : 'none', kinds[g], name, role]);
    }
    lanes.forEach(function (l) {
      var end = l[3] === 'end', none = l[3] === 'none';
      // A long left-hand endpoint (IPv6) starts at the margin rather than running off it.
      var longLeft = l[0] === xL && l[1].length > 24;
      var t = sv('text', { x: longLeft ? 4 : l[0], y: 16,
                           'text-anchor': longLeft ? 'start' : 'middle',
                           'font-size': end ? (l[1].length > 30 ? 12 : 13) : 11,
                           'font-weight': none ? 400 : 600, fill: none ? '#aab2c0' : '#1d2330' },
                     l[1]);
      if (!end) {
        t.setAttribute('class', 'gate-name');
        t.setAttribute('data-gate', l[4]);
        if (l[5]) t.appendChild(sv('title', {}, l[6] + ' ' + l[5]));
      }
      svg.appendChild(t);
      svg.appendChild(sv('text', { x: l[0], y: 31, 'text-anchor': 'middle',
                                    'font-size': end ? 11 : 9.5, fill: '#5b6475' }, l[2]));
      svg.appendChild(sv('line', { x1: l[0], y1: top - 8, x2: l[0], y2: H - 4,
                                    stroke: end ? '#c3cad6' : (none ? '#e3e7ee' : '#8a94a6'),
                                    'stroke-width': end ? 2 : (none ? 1 : 3),
                                    'stroke-dasharray': end ? '' : '6 4',
                                    'class': end ? 'lane' : 'gate' }));
    });
    arrows.forEach(function (a, i) {
      var y = top + i * row + 16;
      var r = a[A.reason], allow = D.allows[r], color = D.colors[r];
      var stop = a[A.stop] || 0;
      var g = sv('g', { 'class': 'arrow', 'data-verdict': allow ? 'allow' : 'deny',
                        'data-reason': D.reasons[r], 'data-index': a[A.index],
                        'data-stop': allow ? '' : STOPS[stop] });
      var left = a[A.left];
      var x1 = left ? xL : xR, x2 = allow ? (left ? xR : xL) : gx[stop] || mid;
      var dir = x2 > x1 ? 1 : -1;
      var tip = allow ? x2 - dir * 2 : x2 - dir * 10;
      g.appendChild(sv('line', { x1: x1, y1: y, x2: tip - dir * 8, y2: y, stroke: color,
                                 'stroke-width': 2,
                                 'stroke-dasharray': a[A.icmpErr] ? '5 3' : '' }));
      g.appendChild(sv('polygon', { points: (tip) + ',' + y + ' ' + (tip - dir * 9) + ',' + (y - 4.5) +
                                            ' ' + (tip - dir * 9) + ',' + (y + 4.5), fill: color }));
      if (!allow) {
        g.appendChild(sv('path', { d: 'M' + (x2 - 6) + ' ' + (y - 6) + 'L' + (x2 + 6) + ' ' + (y + 6) +
                                      'M' + (x2 + 6) + ' ' + (y - 6) + 'L' + (x2 - 6) + ' ' + (y + 6),
                                   stroke: color, 'stroke-width': 3 }));
      }
      // The label over the stretch the packet travelled.
      var lx = (x1 + x2) / 2;
      var label = sv('text', { x: lx, y: y - 5, 'text-anchor': 'middle', 'font-size': 11.5,
                               fill: '#1d2330', 'class': 'mono arrow-label', stroke: '#fff',
                               'stroke-width': 4, 'paint-order': 'stroke' }, arrowLabel(a));
      g.appendChild(label);
      g.appendChild(sv('text', { x: 8, y: y + 4, 'font-size': 11, fill: '#5b6475' },
                       '+' + a[A.t].toFixed(3) + ' ms'));
      g.appendChild(sv('text', { x: 8, y: y - 8, 'font-size': 9.5, fill: '#8a94a6' },
                       'pkt ' + a[A.index]));
      // The verdict at the arrow's head: right of the responder for a packet going right, left
      // of the originator for a reply going left.
      var rt = left ? sv('text', { x: xR + 14, y: y + 4, 'font-size': 12, 'class': 'verdict' })
                    : sv('text', { x: xL - 12, y: y + 4, 'font-size': 12, 'text-anchor': 'end',
                                   'class': 'verdict' });
      rt.appendChild(sv('tspan', { fill: color, 'font-weight': 600 }, D.reasons[r]));
      g.appendChild(rt);
      if (a[A.stateless] >= 0) {
        // A stateless filter would decide otherwise: the row is tinted and says how (at the
        // right, where there is room).
        g.insertBefore(sv('rect', { x: 4, y: y - 17, width: W - 8, height: row - 1, rx: 3,
                                    fill: '#fdeeee', 'class': 'stateless-row' }), g.firstChild);
        var st = left ? rt : sv('text', { x: xR + 14, y: y + 4, 'font-size': 12 });
        st.appendChild(sv('tspan', { fill: '#8e1b1b', 'font-size': 10.5, dx: left ? 6 : 0 },
                          'stateless: ' + D.reasons[a[A.stateless]]));
        if (!left) g.appendChild(st);
      }
      var flags = [];
      FLAG_NAMES.forEach(function (n, bit) { if (a[A.flags] & (1 << bit)) flags.push(n); });
      g.appendChild(sv('title', {}, 'packet ' + a[A.index] + ': ' + D.texts[a[A.text]] +
                       (flags.length ? ' [' + flags.join(', ') + ']' : '') +
                       (a[A.stateless] >= 0 ? '; a stateless filter: ' + D.reasons[a[A.stateless]] : '')));
      svg.appendChild(g);
    });
    return svg;
  }

  function card(i) {
    var c = D.conns[i];
    var d = el('div', 'conn');
    d.setAttribute('data-uid', c[C.uid]);
    d.setAttribute('data-seq', c[C.seq] + 1);
    var h = el('div', 'head');
    // The connection's number in the run, as explain and replay's outputs give it.
    h.appendChild(el('span', 'id', c[C.conn] ? '#' + c[C.conn] : 'no connection'));
    var ported = isPorted(c);
    h.appendChild(el('span', 'flow', c[C.proto] + ' ' + endpoint(c[C.oh], c[C.op], ported) +
                     ' \u2192 ' + endpoint(c[C.rh], c[C.rp], ported)));
    h.appendChild(el('span', 'badge', c[C.state]));
    var v = el('span', '');
    if (c[C.allow] > 0) v.appendChild(el('span', 'badge allow', c[C.allow] + ' allowed'));
    if (c[C.deny] > 0) v.appendChild(el('span', 'badge deny', c[C.deny] + ' denied'));
    h.appendChild(v);
    d.appendChild(h);
    var reasons = c[C.byReason].map(function (rn) { return D.reasons[rn[0]] + ' ' + rn[1]; });
    var sub = c[C.pk] + ' packets (' + reasons.join(', ') + ')' +
              ' \u00b7 orig ' + c[C.opk] + ' / resp ' + c[C.rpk] +
              ' \u00b7 history ' + (c[C.hist] || '-') +
              ' \u00b7 ' + c[C.end] + ' \u00b7 starts at ' + c[C.start].toFixed(3) + ' s, lasts ' +
              c[C.dur].toFixed(3) + ' s';
    if (c[C.opened] >= 0) {
      var rl = D.rules[c[C.opened]];
      sub += ' \u00b7 opened by ' + rl[0] + ' "' + rl[1] + '"';
    }
    if (c[C.encap]) sub += ' \u00b7 ' + c[C.encap];
    if (c[C.icmpErr] > 0) sub += ' \u00b7 ' + c[C.icmpErr] + ' ICMP error(s)';
    if (c[C.changed] > 0) sub += ' \u00b7 ' + c[C.changed] + ' packet(s) a stateless filter would treat otherwise';
    d.appendChild(el('div', 'sub', sub));
    var arrows = c[C.arrows];
    if (arrows) {
      d.appendChild(ladder(c));
      if (arrows.length < c[C.pk]) {
        d.appendChild(el('div', 'note', 'Ladder shows the first ' + arrows.length + ' of ' +
                         c[C.pk] + ' packets.'));
      }
    } else {
      d.appendChild(el('div', 'note', 'No ladder: only the first ' + D.limits.ladderConns +
                       ' connections of the trace get one.'));
    }
    return d;
  }

  function render() {
    var total = state.hits.length;
    var pages = Math.max(1, Math.ceil(total / state.size));
    if (state.page >= pages) state.page = pages - 1;
    var from = state.page * state.size, to = Math.min(total, from + state.size);
    while (list.firstChild) list.removeChild(list.firstChild);
    for (var k = from; k < to; k++) list.appendChild(card(state.hits[k]));
    if (total === 0) list.appendChild(el('div', 'empty', 'No connection matches.'));
    status.textContent = (total === 0 ? 'No' : 'Showing ' + (from + 1) + '\u2013' + to + ' of ' +
                          fmtNum(total)) + ' matching connection' + (total === 1 ? '' : 's') +
                         ' (' + fmtNum(D.conns.length) + ' listed) \u00b7 page ' +
                         (state.page + 1) + ' of ' + pages;
    status.setAttribute('data-matches', total);
    prev.disabled = state.page === 0;
    next.disabled = state.page + 1 >= pages;
  }

  search.addEventListener('input', function () {
    state.query = search.value;
    state.page = 0;
    filter();
    render();
  });
  sizeSel.addEventListener('change', function () {
    state.size = parseInt(sizeSel.value, 10) || 10;
    state.page = 0;
    render();
  });
  prev.addEventListener('click', function () { if (state.page > 0) { state.page--; render(); } });
  next.addEventListener('click', function () { state.page++; render(); });

  state.size = parseInt(sizeSel.value, 10) || 10;
  // report.html#q=deny opens the list filtered (a link to share).
  if (/^#q=/.test(location.hash)) search.value = decodeURIComponent(location.hash.slice(3));
  state.query = search.value;
  filter();
  render();
  document.body.setAttribute('data-report-ready', '1');
})();
)JS";

}  // namespace statewall::sim::detail
