// The playground's page: HTML with its stylesheet and script inline (nothing is loaded from
// anywhere; the server's Content-Security-Policy forbids it too). The script only draws what the
// server answers: every verdict, gate, rule, TCP state, connection and timeout on the page is a
// field of an /api response, never computed here. Strings from the server are inserted with
// textContent. Element ids and data-* attributes are what tests/sim/playground_driver.js reads.
#include <string_view>

#include "statewall/sim/playground.hpp"

namespace statewall::sim {
namespace {

const std::string_view kPage = R"PAGE(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>statewall playground</title>
<style>
:root { --fg:#1d2330; --muted:#5b6475; --line:#d9dee7; --bg:#f5f7fa; --card:#fff; --accent:#1f5fbf;
  --allow:#2e8b3d; --deny:#c0392b; --warn:#f3d27a; }
* { box-sizing:border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif; color:var(--fg);
  background:var(--bg); }
header { background:#18233a; color:#fff; padding:12px 24px; }
header h1 { margin:0; font-size:20px; font-weight:600; }
header .meta { color:#c4cde0; font-size:13px; }
main { display:grid; grid-template-columns:minmax(380px,1fr) minmax(520px,1.4fr); gap:16px; padding:14px 24px 40px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 14px; margin-bottom:14px; }
h2 { font-size:16px; margin:0 0 8px; }
h3 { font-size:14px; margin:10px 0 4px; }
.mono, textarea, pre, code { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12.5px; }
.editor { display:flex; border:1px solid #aab3c2; border-radius:6px; overflow:hidden; height:360px; }
#gutter { width:42px; background:#eef1f6; color:var(--muted); text-align:right; overflow:hidden;
  padding:6px 0; user-select:none; }
#gutter div, #policy { line-height:18px; }
#gutter div { padding-right:6px; height:18px; }
#gutter div.err { background:#f6c9c9; color:#6b1010; font-weight:700; }
#gutter div.warn { background:#fff1c2; }
#gutter div.decides { background:#ffe066; color:#000; font-weight:700; }
#policy { flex:1; border:0; padding:6px 8px; resize:none; white-space:pre; overflow:auto; outline:none; }
#diagnostics { list-style:none; padding:0; margin:6px 0 0; }
#diagnostics li { padding:2px 6px; border-radius:4px; margin:2px 0; cursor:pointer; }
#diagnostics li.error { background:#fbe3e3; }
#diagnostics li.warning { background:#fff6d6; }
.status { font-size:12.5px; padding:1px 8px; border-radius:9px; display:inline-block; }
.status.valid, .status.done { background:#cfe9d2; color:#12431a; }
.status.invalid, .status.error { background:#f6c9c9; color:#6b1010; }
.status.checking, .status.running { background:#e3e8f2; }
#flows { width:100%; height:90px; }
.row { display:flex; gap:6px; align-items:center; flex-wrap:wrap; margin:6px 0; }
input[type=text], input[type=number], select { padding:3px 6px; font-size:13px; }
button { padding:4px 10px; font-size:13px; cursor:pointer; }
.lane { display:flex; align-items:stretch; gap:0; margin:8px 0; overflow-x:auto; }
.end { border:2px solid #5b6475; border-radius:8px; padding:6px 8px; min-width:110px; font-size:12px; background:#fafbfd; }
.end b { display:block; font-size:12.5px; }
.wire { flex:0 0 28px; position:relative; }
.wire::after { content:""; position:absolute; left:0; right:0; top:50%; border-top:3px solid var(--allow); }
.wire.dead::after { border-top:3px dashed #c4cad6; }
.gate { border:2px solid #888; border-radius:6px; padding:4px 6px; width:150px; font-size:11.5px; background:#fff; }
.gate .kind { font-size:10.5px; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); }
.gate .name { font-weight:600; }
.gate[data-state=pass] { border-color:var(--allow); background:#eef8ef; }
.gate[data-state=tracked] { border-color:#3a78c9; background:#eaf1fb; }
.gate[data-state=stop] { border-color:var(--deny); background:#fbe3e3; }
.gate[data-state=not-reached] { border-style:dashed; opacity:.6; }
.gate[data-state=none] { border-style:dotted; color:var(--muted); }
.gate.acl { border-radius:2px; }
.verdict { font-weight:700; }
.verdict.allow { color:var(--allow); }
.verdict.deny { color:var(--deny); }
table { border-collapse:collapse; width:100%; font-size:12.5px; }
th, td { border:1px solid var(--line); padding:2px 6px; text-align:left; }
th { background:#eef1f6; }
tr.expired td { color:var(--muted); text-decoration:line-through; }
tr.current td { background:#fff8d6; }
#explanation { white-space:pre-wrap; background:#f8f9fb; border:1px solid var(--line); padding:6px; max-height:260px; overflow:auto; }
svg text { font-family:system-ui,Arial,sans-serif; }
#tcp-machine .state rect { fill:#fff; stroke:#8a93a6; }
#tcp-machine .state.before rect { fill:#e3e8f2; }
#tcp-machine .state.current rect { fill:#ffe066; stroke:#000; stroke-width:2; }
#tcp-machine line { stroke:#c4cad6; }
#tcp-machine line.taken { stroke:#000; stroke-width:2.5; }
.quiz { border:1px solid var(--line); border-radius:6px; padding:6px 10px; margin:6px 0; }
.quiz .lesson { color:var(--muted); font-size:12px; }
.quiz .reveal { margin-top:4px; }
.quiz .reveal[data-correct=true] .mark { color:var(--allow); font-weight:700; }
.quiz .reveal[data-correct=false] .mark { color:var(--deny); font-weight:700; }
.changed td { background:#fbe3e3; }
.note { color:var(--muted); font-size:12.5px; }
#error-banner { display:none; background:#f6c9c9; color:#6b1010; padding:6px 24px; }
</style>
</head>
<body>
<header><h1>statewall playground</h1>
<div class="meta">Every verdict, gate, rule, TCP state and timeout here comes from statewall's own
engine (the same as <code>statewall replay</code> and <code>explain</code>). Terms such as untracked,
related, INVALID or ephemeral port are explained in docs/glossary.md.</div></header>
<div id="error-banner"></div>
<main>
<div>
<section id="policy-section">
  <h2>Policy <span id="policy-status" class="status checking" data-state="checking">checking</span></h2>
  <div class="editor"><div id="gutter"></div>
  <textarea id="policy" spellcheck="false" wrap="off" aria-label="policy YAML"></textarea></div>
  <ul id="diagnostics"></ul>
</section>
<section id="scenario-section">
  <h2>Scenario</h2>
  <div class="note">One flow per line, in <code>statewall gen</code>'s words (e.g.
  <code>tcp 198.51.100.7:50000 -&gt; 10.0.1.10:443 data=1</code>, <code>udp A:P -&gt; B:P delay=40</code>,
  <code>icmp A -&gt; B</code>).</div>
  <div class="row">
    <select id="b-proto"><option>tcp</option><option>udp</option><option>icmp</option></select>
    <input id="b-client" type="text" value="198.51.100.7" size="14" title="client address">
    <input id="b-cport" type="text" value="50000" size="6" title="client port">
    &rarr;
    <input id="b-server" type="text" value="10.0.1.10" size="14" title="server address">
    <input id="b-sport" type="text" value="443" size="6" title="server port">
    <input id="b-extra" type="text" value="data=1" size="16" title="options: at=S data=N end=fin|rst|... delay=S gap=S error=ptb">
    <button id="b-add" type="button">add flow</button>
  </div>
  <textarea id="flows" spellcheck="false" aria-label="flows"></textarea>
  <div class="row"><label>or load a pcap: <input id="pcap" type="file" accept=".pcap,.pcapng,.cap"></label>
    <button id="pcap-clear" type="button">use the flows</button></div>
  <div class="row"><button id="run" type="button">Run through the engine</button>
    <span id="run-status" class="status" data-state="idle"></span></div>
</section>
<section id="whatif-section">
  <h2>What if a rule goes away?</h2>
  <div class="row">Turn off <select id="whatif-rule"></select> at
    <input id="whatif-at" type="number" value="0.005" step="0.001" min="0" style="width:90px"> s
    <button id="whatif-run" type="button">re-run</button></div>
  <div id="whatif-result" data-state="idle"></div>
</section>
<section id="quiz-section">
  <h2>Quiz: predict, then reveal</h2>
  <div class="note">From docs/teaching.md's lessons. Guess, and the engine answers.</div>
  <div id="quiz-list"></div>
</section>
</div>
<div>
<section id="step-section">
  <h2>Step packet by packet</h2>
  <div class="row"><button id="step-first" type="button">|&#x25C0;</button>
    <button id="step-prev" type="button">&#x25C0; prev</button>
    <button id="step-next" type="button">next &#x25B6;</button>
    <button id="step-last" type="button">&#x25B6;|</button>
    <span id="step-label" class="mono"></span></div>
  <input id="scrubber" type="range" min="1" max="1" value="1" style="width:100%">
  <svg id="timeline" width="100%" height="90" viewBox="0 0 800 90" preserveAspectRatio="none"></svg>
  <div id="packet-head"></div>
  <div id="lane" class="lane"></div>
  <div id="decided-by" class="note"></div>
  <h3>TCP state machine (the engine's states and transitions)</h3>
  <svg id="tcp-machine" viewBox="0 0 800 210" width="100%" height="210"></svg>
  <h3>Connection table after this packet</h3>
  <table id="conn-table"><thead><tr><th>#</th><th>flow</th><th>state</th><th>tracked by</th>
    <th>replied</th><th>idle timeout</th></tr></thead><tbody></tbody></table>
  <h3>What the engine says</h3>
  <pre id="explanation"></pre>
</section>
</div>
</main>
<script>
(function () {
  'use strict';
  var S = { machine: null, rules: [], run: null, at: 0, pcap: null, checkSeq: 0, checkTimer: null };
  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
  function banner(msg) {
    var b = $('error-banner');
    b.textContent = msg || '';
    b.style.display = msg ? 'block' : 'none';
  }
  function api(method, path, body) {
    var init = { method: method, headers: {} };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (r) {
      return r.json().then(function (j) { return { status: r.status, body: j }; },
                           function () { return { status: r.status, body: { error: 'bad answer', detail: 'not JSON' } }; });
    });
  }
  function errText(b) { return (b.error || 'error') + (b.detail ? ': ' + b.detail : ''); }

  // ---- the policy editor ----
  function lineCount() { return $('policy').value.split('\n').length; }
  function drawGutter(marks) {
    var g = $('gutter');
    clear(g);
    var n = lineCount();
    for (var i = 1; i <= n; i++) {
      var d = el('div', { 'data-line': i }, i);
      if (marks && marks[i]) d.className = marks[i];
      g.appendChild(d);
    }
    g.scrollTop = $('policy').scrollTop;
  }
  S.marks = {};
  function remark() {
    var m = {};
    for (var k in S.diagMarks) m[k] = S.diagMarks[k];
    if (S.decides) m[S.decides] = m[S.decides] ? m[S.decides] + ' decides' : 'decides';
    drawGutter(m);
  }
  S.diagMarks = {};
  function setStatus(id, state, text) {
    var s = $(id);
    s.className = 'status ' + state;
    s.setAttribute('data-state', state);
    s.textContent = text;
  }
  function check() {
    var seq = ++S.checkSeq;
    setStatus('policy-status', 'checking', 'checking');
    api('POST', '/api/check', { policy: $('policy').value }).then(function (r) {
      if (seq !== S.checkSeq) return;  // a newer edit is being checked
      S.checked = (S.checked || 0) + 1;
      $('policy-status').setAttribute('data-checked', S.checked);
      var list = $('diagnostics');
      clear(list);
      S.diagMarks = {};
      if (r.status !== 200) {
        setStatus('policy-status', 'invalid', 'not checked');
        list.appendChild(el('li', { 'class': 'error' }, errText(r.body)));
        remark();
        return;
      }
      var errors = 0;
      r.body.diagnostics.forEach(function (d) {
        var li = el('li', { 'class': d.severity, 'data-line': d.line, 'data-col': d.col },
                    'line ' + d.line + ', column ' + d.col + ': ' + d.severity + ': ' + d.message);
        li.addEventListener('click', function () { goToLine(d.line); });
        list.appendChild(li);
        if (d.severity === 'error') errors++;
        if (d.line > 0) S.diagMarks[d.line] = d.severity === 'error' ? 'err' : (S.diagMarks[d.line] || 'warn');
      });
      if (r.body.valid) {
        setStatus('policy-status', 'valid', 'valid');
        setRules(r.body.rules);
      } else {
        setStatus('policy-status', 'invalid', errors + (errors === 1 ? ' error' : ' errors'));
      }
      remark();
    }, function (e) { setStatus('policy-status', 'invalid', 'no answer'); banner('server: ' + e); });
  }
  function goToLine(line) {
    var t = $('policy'), lines = t.value.split('\n'), pos = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) pos += lines[i].length + 1;
    t.focus();
    t.setSelectionRange(pos, pos);
    t.scrollTop = Math.max(0, (line - 4) * 18);
    $('gutter').scrollTop = t.scrollTop;
  }
  $('policy').addEventListener('input', function () {
    remark();
    clearTimeout(S.checkTimer);
    S.checkTimer = setTimeout(check, 300);
  });
  $('policy').addEventListener('scroll', function () { $('gutter').scrollTop = $('policy').scrollTop; });
  function setRules(rules) {
    S.rules = rules;
    var sel = $('whatif-rule'), prev = sel.value;
    clear(sel);
    rules.forEach(function (r) {
      var o = el('option', { value: r.id }, r.label + ': ' + r.text);
      sel.appendChild(o);
    });
    if (prev) sel.value = prev;
  }

  // ---- the scenario ----
  $('b-add').addEventListener('click', function () {
    var p = $('b-proto').value, c = $('b-client').value.trim(), s = $('b-server').value.trim();
    var spec = p === 'icmp' ? 'icmp ' + c + ' -> ' + s
                            : p + ' ' + c + ':' + $('b-cport').value.trim() + ' -> ' + s + ':' + $('b-sport').value.trim();
    var extra = $('b-extra').value.trim();
    if (extra) spec += ' ' + extra;
    var f = $('flows');
    f.value = (f.value.trim() ? f.value.replace(/\s+$/, '') + '\n' : '') + spec;
  });
  $('pcap').addEventListener('change', function () {
    var file = this.files[0];
    if (!file) return;
    var rd = new FileReader();
    rd.onload = function () {
      var s = rd.result, i = s.indexOf(',');
      S.pcap = i >= 0 ? s.slice(i + 1) : s;
      setStatus('run-status', 'idle', 'pcap loaded: ' + file.name);
    };
    rd.readAsDataURL(file);
  });
  $('pcap-clear').addEventListener('click', function () { S.pcap = null; $('pcap').value = ''; });
  function request(extra) {
    var body = { policy: $('policy').value };
    if (S.pcap) body.pcap = S.pcap;
    else body.flows = $('flows').value.split('\n').filter(function (l) { return l.trim() !== ''; });
    if (extra) for (var k in extra) body[k] = extra[k];
    return body;
  }
  function run() {
    setStatus('run-status', 'running', 'running');
    clear($('whatif-result'));  // about the previous scenario
    $('whatif-result').setAttribute('data-state', 'idle');
    return api('POST', '/api/run', request()).then(function (r) {
      S.runs = (S.runs || 0) + 1;
      $('run-status').setAttribute('data-runs', S.runs);
      if (r.status !== 200) {
        setStatus('run-status', 'error', errText(r.body));
        return;
      }
      S.run = r.body;
      if (r.body.rules) setRules(r.body.rules);
      var n = r.body.packets.length;
      setStatus('run-status', 'done', n + ' packets' + (r.body.truncated ? ' (the rest left out)' : '') +
                (r.body.disagreements ? '; ' + r.body.disagreements + ' packets judged differently by the two runs' : ''));
      $('scrubber').max = Math.max(1, n);
      show(1);
    }, function (e) { setStatus('run-status', 'error', String(e)); });
  }
  $('run').addEventListener('click', run);

  // ---- stepping ----
  function packet() { return S.run && S.run.packets[S.at - 1]; }
  function show(i) {
    if (!S.run || !S.run.packets.length) return;
    var n = S.run.packets.length;
    S.at = Math.min(Math.max(1, i), n);
    $('scrubber').value = S.at;
    var p = packet();
    $('step-label').textContent = 'packet ' + S.at + ' of ' + n + ', t = ' + p.t.toFixed(6) + ' s';
    $('step-section').setAttribute('data-packet', S.at);
    var head = $('packet-head');
    clear(head);
    head.appendChild(el('span', { 'class': 'mono' }, p.summary + '  '));
    head.appendChild(el('span', { 'class': 'verdict ' + p.verdict, id: 'verdict', 'data-reason': p.reason },
                        p.verdict + ' (' + p.reason + ')'));
    if (p.connection) head.appendChild(el('span', { 'class': 'note' }, '  connection #' + p.connection.number +
                                          (p.connection.reply ? ', reply' : '')));
    drawLane(p);
    var d = p.decided_by;
    S.decides = d && d.line ? d.line : (d && d.acl_line ? d.acl_line : 0);
    $('decided-by').textContent = d ? 'decided by: ' + d.label + (d.text ? " '" + d.text + "'" : '') +
                                      (S.decides ? ' (policy line ' + S.decides + ')' : '')
                                    : 'decided by: no rule (see the explanation)';
    $('decided-by').setAttribute('data-line', S.decides || '');
    remark();
    drawMachine(p.tcp);
    drawTable(p);
    $('explanation').textContent = p.explanation + (p.disagreement ? '\nNOTE: ' + p.disagreement : '');
    drawTimeline();
  }
  $('step-first').addEventListener('click', function () { show(1); });
  $('step-prev').addEventListener('click', function () { show(S.at - 1); });
  $('step-next').addEventListener('click', function () { show(S.at + 1); });
  $('step-last').addEventListener('click', function () { show(1e9); });
  $('scrubber').addEventListener('input', function () { show(parseInt(this.value, 10)); });

  // The gates of one packet, in the engine's order: the source's groups, then its subnet's ACL;
  // the destination's subnet ACL, then its groups. Each gate's state is a step's own fields.
  function stepFor(steps, kinds, dir) {
    for (var i = 0; i < steps.length; i++)
      if (kinds.indexOf(steps[i].kind) >= 0 && steps[i].direction === dir) return steps[i];
    return null;
  }
  function gate(kind, dir, title, step, noneText) {
    var g = el('div', { 'class': 'gate ' + kind, 'data-kind': kind, 'data-dir': dir });
    var state = 'none', what = noneText;
    if (step) {
      if (step.reached === false) { state = 'not-reached'; }
      else if (step.kind === 'tracked' || step.kind === 'related') { state = 'tracked'; }
      else { state = step.allowed ? 'pass' : 'stop'; }
      what = step.kind === 'tracked' ? 'not consulted: connection #' + (step.connection && step.connection.number !== undefined ? step.connection.number : step.connection)
           : step.kind === 'related' ? 'related ICMP error: passes without a rule'
           : step.kind === 'acl' ? (step.entry ? 'rule ' + step.entry.number + ' ' + step.entry.action + (step.entry.line ? ' (line ' + step.entry.line + ')' : '') : '')
           : step.rule ? step.rule.group + ' ' + step.rule.direction + ' rule ' + step.rule.index + (step.rule.line ? ' (line ' + step.rule.line + ')' : '')
           : 'no rule allows it';
      if (step.reached === false) {
        what = step.kind === 'tracked' || step.kind === 'related' ? 'would pass as part of connection #' +
               (step.connection && step.connection.number !== undefined ? step.connection.number : step.connection)
             : step.allowed ? 'would pass' : 'would stop it';
      }
    }
    g.setAttribute('data-state', state);
    if (step && step.decisive) g.setAttribute('data-decisive', 'true');
    g.appendChild(el('div', { 'class': 'kind' }, kind === 'acl' ? 'network ACL (subnet edge)' : 'security groups (interface)'));
    g.appendChild(el('div', { 'class': 'name' }, title));
    g.appendChild(el('div', null, state === 'none' ? what : state.replace('-', ' ') + ': ' + what));
    return g;
  }
  function drawLane(p) {
    var lane = $('lane');
    clear(lane);
    var steps = p.steps || [], dirStep = null;
    for (var i = 0; i < steps.length; i++) if (steps[i].kind === 'direction') dirStep = steps[i];
    var src = dirStep ? dirStep.source : null, dst = dirStep ? dirStep.destination : null;
    var items = [];
    items.push(endBox('from', src, p.packet && p.packet.src));
    if (src && src.interface) {
      items.push(gate('sg', 'outbound', src.interface + ' (outbound)', stepFor(steps, ['sg', 'tracked', 'related'], 'outbound'), 'no check'));
      items.push(gate('acl', 'outbound', src.subnet ? 'subnet ' + src.subnet + ' (outbound)' : 'no subnet', stepFor(steps, ['acl'], 'outbound'),
                      src.subnet ? 'no ACL on this path' : 'no network ACL'));
    }
    if (dst && dst.interface) {
      items.push(gate('acl', 'inbound', dst.subnet ? 'subnet ' + dst.subnet + ' (inbound)' : 'no subnet', stepFor(steps, ['acl'], 'inbound'),
                      dst.subnet ? 'no ACL on this path' : 'no network ACL'));
      items.push(gate('sg', 'inbound', dst.interface + ' (inbound)', stepFor(steps, ['sg', 'tracked', 'related'], 'inbound'), 'no check'));
    }
    items.push(endBox('to', dst, p.packet && p.packet.dst));
    // The wire is live up to the gate that stops the packet.
    var dead = false;
    items.forEach(function (it, k) {
      if (k > 0) lane.appendChild(el('div', { 'class': 'wire' + (dead ? ' dead' : '') }));
      lane.appendChild(it);
      if (it.getAttribute('data-state') === 'stop') dead = true;
    });
    if (!dirStep) lane.appendChild(el('div', { 'class': 'note' }, ' (not an IP packet the rules judge)'));
  }
  function endBox(which, side, addr) {
    var b = el('div', { 'class': 'end', 'data-end': which });
    b.appendChild(el('b', null, (which === 'from' ? 'from ' : 'to ') + ((side && side.address) || addr || '?')));
    b.appendChild(el('span', null, side && side.interface ? side.interface + ' (' + (side.groups || []).join(', ') + ')'
                                                            : 'not protected'));
    return b;
  }

  // ---- the TCP state machine ----
  function drawMachine(tcp) {
    var m = $('tcp-machine');
    clear(m);
    if (!S.machine) return;
    var pos = {}, states = S.machine.states;
    states.forEach(function (s, i) {
      var col = i % 5, row = Math.floor(i / 5);
      pos[s] = { x: 20 + col * 155, y: 20 + row * 120 };
    });
    var seen = {};
    S.machine.transitions.forEach(function (t) {
      var k = t.from + '>' + t.to;
      if (seen[k] || !pos[t.from] || !pos[t.to]) return;
      seen[k] = 1;
      var a = pos[t.from], b = pos[t.to];
      var taken = tcp && tcp.before === t.from && tcp.after === t.to;
      m.appendChild(svg('line', { x1: a.x + 60, y1: a.y + 16, x2: b.x + 60, y2: b.y + 16,
                                  'class': taken ? 'taken' : '', 'data-edge': k }));
    });
    states.forEach(function (s) {
      var g = svg('g', { 'class': 'state', 'data-state': s });
      if (tcp && tcp.after === s) g.setAttribute('class', 'state current');
      else if (tcp && tcp.before === s) g.setAttribute('class', 'state before');
      g.appendChild(svg('rect', { x: pos[s].x, y: pos[s].y, width: 120, height: 32, rx: 8 }));
      g.appendChild(svg('text', { x: pos[s].x + 60, y: pos[s].y + 21, 'text-anchor': 'middle', 'font-size': 12 }, s));
      m.appendChild(g);
    });
    m.setAttribute('data-current', tcp ? tcp.after : '');
  }

  // ---- the connection table ----
  function secs(x) {
    if (x >= 86400) return (x / 86400).toFixed(1) + ' d';
    if (x >= 100) return Math.round(x) + ' s';
    return x.toFixed(3) + ' s';
  }
  function drawTable(p) {
    var tb = $('conn-table').tBodies[0];
    clear(tb);
    (p.table || []).forEach(function (c) {
      var tr = el('tr', { 'data-conn': c.conn, 'data-tracked': c.tracked, 'data-state': c.tcp_state || '',
                          'data-expires-in': c.expires_in });
      if (c.expired) tr.className = 'expired';
      else if (p.connection && p.connection.number === c.conn) tr.className = 'current';
      tr.appendChild(el('td', null, '#' + c.conn));
      tr.appendChild(el('td', { 'class': 'mono' }, c.proto + ' ' + c.orig + ' -> ' + c.resp));
      tr.appendChild(el('td', null, c.tcp_state || (c.replied ? 'replied' : 'unreplied')));
      tr.appendChild(el('td', null, c.tracked ? c.tracked_by.join(', ') : 'nobody: untracked (the engine follows the flow, but every packet of it meets the rules)'));
      tr.appendChild(el('td', null, c.replied ? 'yes' : 'no'));
      tr.appendChild(el('td', null, c.expired ? 'expired (idle past its timeout)' : 'expires in ' + secs(c.expires_in)));
      tb.appendChild(tr);
    });
    if (p.table_size > (p.table || []).length) {
      var more = el('tr'); more.appendChild(el('td', { colspan: 6, 'class': 'note' }, (p.table_size - p.table.length) +
        ' more connections in the table (this packet\'s own is listed first)'));
      tb.appendChild(more);
    }
    if (!(p.table || []).length) {
      var tr = el('tr'); tr.appendChild(el('td', { colspan: 6, 'class': 'note' }, 'no connection in the table'));
      tb.appendChild(tr);
    }
  }

  // ---- the timeline: packets, and each connection from its first packet to its idle timeout ----
  function drawTimeline() {
    var t = $('timeline');
    clear(t);
    var ps = S.run.packets, last = ps[ps.length - 1].t, span = Math.max(last * 1.15, 0.001);
    function x(v) { return 10 + Math.min(v, span) / span * 780; }
    // Each connection as the engine's table stands after the packet shown: from its first packet
    // to when it would expire if idle from then on.
    var conns = {}, order = [];
    ps.slice(0, S.at).forEach(function (p) {
      (p.table || []).forEach(function (c) {
        if (!conns[c.conn]) { conns[c.conn] = { first: p.t }; order.push(c.conn); }
        conns[c.conn].exp = p.t + c.expires_in;
      });
    });
    order.slice(0, 5).forEach(function (n, k) {
      var c = conns[n], y = 40 + k * 9;
      var x2 = x(c.exp);
      t.appendChild(svg('rect', { x: x(c.first), y: y, width: Math.max(1, x2 - x(c.first)), height: 6,
                                  fill: '#9fc1ec', 'data-conn': n }));
      if (c.exp <= span) t.appendChild(svg('line', { x1: x2, x2: x2, y1: y - 2, y2: y + 8, stroke: '#c0392b',
                                                     'stroke-width': 2, 'class': 'expiry', 'data-conn': n }));
      t.appendChild(svg('text', { x: Math.min(x(c.first) + 2, 760), y: y + 6, 'font-size': 8 }, '#' + n +
                        (c.exp > span ? ' (times out after ' + secs(c.exp - c.first) + ')' : ' times out')));
    });
    ps.forEach(function (p, i) {
      t.appendChild(svg('line', { x1: x(p.t), x2: x(p.t), y1: 6, y2: 30,
                                  stroke: p.verdict === 'allow' ? '#2e8b3d' : '#c0392b',
                                  'stroke-width': i + 1 === S.at ? 4 : 1.5, 'class': 'tick' }));
    });
    t.appendChild(svg('text', { x: 10, y: 88, 'font-size': 9 }, '0 s'));
    t.appendChild(svg('text', { x: 740, y: 88, 'font-size': 9 }, secs(span)));
  }

  // ---- what-if ----
  $('whatif-run').addEventListener('click', function () {
    var out = $('whatif-result');
    out.setAttribute('data-state', 'running');
    clear(out);
    out.appendChild(el('div', { 'class': 'note' }, 'running...'));
    api('POST', '/api/run', request({ whatif: { rule: $('whatif-rule').value,
                                               at: parseFloat($('whatif-at').value) || 0 } })).then(function (r) {
      clear(out);
      if (r.status !== 200) {
        out.setAttribute('data-state', 'error');
        out.appendChild(el('div', { 'class': 'status error' }, errText(r.body)));
        return;
      }
      var w = r.body.whatif;
      out.appendChild(el('p', null, 'Without ' + w.rule + ' from t = ' + w.at + ' s: ' + w.changed +
                         ' packet' + (w.changed === 1 ? '' : 's') + ' change verdict.'));
      out.appendChild(el('h3', null, 'Tracked connections that survive'));
      var ul = el('ul', { id: 'whatif-survive' });
      w.survive.forEach(function (s) { ul.appendChild(el('li', { 'data-conn': s.connection }, '#' + s.connection + ' ' + s.summary + ' (from packet ' + s.first_index + ', still allow-tracked)')); });
      if (!w.survive.length) ul.appendChild(el('li', { 'class': 'note' }, 'none'));
      out.appendChild(ul);
      out.appendChild(el('h3', null, 'Flows that stop'));
      var ul2 = el('ul', { id: 'whatif-stop' });
      w.stop.forEach(function (s) {
        ul2.appendChild(el('li', { 'data-was': s.was, 'data-now': s.now },
                           s.summary + ': was ' + s.was + (s.untracked ? ' (untracked: no connection to lean on)' : '') +
                           ', now ' + s.now + ' from packet ' + s.first_index));
      });
      if (!w.stop.length) ul2.appendChild(el('li', { 'class': 'note' }, 'none'));
      out.appendChild(ul2);
      var tbl = el('table', { id: 'whatif-packets' });
      var hr = el('tr'); ['packet', 'before', 'after the change'].forEach(function (h) { hr.appendChild(el('th', null, h)); });
      tbl.appendChild(hr);
      w.packets.forEach(function (p) {
        var tr = el('tr', { 'data-changed': p.changed });
        if (p.changed) tr.className = 'changed';
        tr.appendChild(el('td', null, p.index + (p.after_change ? '' : ' (before)')));
        tr.appendChild(el('td', null, p.before.reason));
        tr.appendChild(el('td', null, p.after.reason));
        tbl.appendChild(tr);
      });
      out.appendChild(tbl);
      out.setAttribute('data-state', 'done');
    }, function (e) { out.setAttribute('data-state', 'error'); out.textContent = String(e); });
  });

  // ---- quiz ----
  function drawQuiz(list) {
    var q = $('quiz-list');
    clear(q);
    list.forEach(function (item) {
      var d = el('div', { 'class': 'quiz', 'data-id': item.id });
      d.appendChild(el('div', { 'class': 'lesson' }, 'docs/teaching.md ' + item.lesson));
      d.appendChild(el('div', null, item.question));
      d.appendChild(el('div', { 'class': 'mono' }, 'packet ' + item.packet + ': ' + item.summary));
      var row = el('div', { 'class': 'row' });
      ['allow', 'deny'].forEach(function (g) {
        var b = el('button', { type: 'button', 'class': 'guess', 'data-guess': g }, g === 'allow' ? 'it passes' : 'it is dropped');
        b.addEventListener('click', function () { answer(item, g, d); });
        row.appendChild(b);
      });
      var load = el('button', { type: 'button', 'class': 'load', 'data-id': item.id }, 'try it in the playground');
      load.addEventListener('click', function () {
        $('policy').value = item.policy;
        $('flows').value = item.flows.join('\n');
        S.pcap = null;
        check();
        run().then(function () { show(item.packet); });
      });
      row.appendChild(load);
      d.appendChild(row);
      d.appendChild(el('div', { 'class': 'reveal', 'data-state': 'hidden' }));
      q.appendChild(d);
    });
  }
  function answer(item, guess, d) {
    var rv = d.querySelector('.reveal');
    rv.setAttribute('data-state', 'asking');
    api('POST', '/api/quiz/answer', { id: item.id, guess: guess }).then(function (r) {
      clear(rv);
      if (r.status !== 200) { rv.setAttribute('data-state', 'error'); rv.textContent = errText(r.body); return; }
      var a = r.body;
      rv.setAttribute('data-verdict', a.verdict);
      rv.setAttribute('data-reason', a.reason);
      rv.setAttribute('data-correct', a.correct);
      rv.appendChild(el('span', { 'class': 'mark' }, a.correct ? 'Right. ' : 'Not quite. '));
      rv.appendChild(el('span', null, 'The engine: ' + a.verdict + ' (' + a.reason + ').'));
      rv.appendChild(el('pre', { 'class': 'why' }, a.explanation));
      rv.setAttribute('data-state', 'revealed');
    });
  }

  // ---- start ----
  api('GET', '/api/state').then(function (r) {
    if (r.status !== 200) { banner(errText(r.body)); return; }
    S.machine = r.body.tcp_machine;
    $('policy').value = r.body.policy;
    $('flows').value = r.body.flows.join('\n');
    drawQuiz(r.body.quiz);
    drawMachine(null);
    remark();
    check();
    document.body.setAttribute('data-ready', '1');
  }, function (e) { banner('cannot reach the playground server: ' + e); });
})();
</script>
</body>
</html>
)PAGE";

}  // namespace

std::string_view playgroundPage() {
  return kPage;
}

}  // namespace statewall::sim
