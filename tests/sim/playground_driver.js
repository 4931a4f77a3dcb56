// Test driver for the playground page (tests/sim/playground_browser_test.cpp): evaluated in the
// page over the DevTools protocol. window.__pg.step({verb, arg}) performs one step of
// docs/teaching.md's playground chapter as a person would (typing into the policy, clicking the
// buttons) and checks what the page then shows; every wait is for a DOM state, bounded.
// Not part of the product.
(function () {
  'use strict';
  var errors = [];
  window.addEventListener('error', function (e) { errors.push(String(e.message)); });
  window.addEventListener('unhandledrejection', function (e) { errors.push('rejection: ' + String(e.reason)); });

  function $(id) { return document.getElementById(id); }
  function pause() { return new Promise(function (r) { setTimeout(r, 20); }); }
  // Polls cond() until it returns something truthy; fails after `ms`.
  async function until(cond, what, ms) {
    var end = Date.now() + (ms || 120000);
    for (;;) {
      var v = cond();
      if (v) return v;
      if (Date.now() > end) throw new Error('timed out waiting for ' + what);
      await pause();
    }
  }
  function fail(msg) { throw new Error(msg); }
  // `a` -> `b`  (backquoted texts)
  function quoted(arg) {
    var m = arg.match(/`([^`]*)`/g) || [];
    return m.map(function (x) { return x.slice(1, -1); });
  }
  function checked() { return parseInt($('policy-status').getAttribute('data-checked') || '0', 10); }
  function runs() { return parseInt($('run-status').getAttribute('data-runs') || '0', 10); }
  function gates() {
    return Array.prototype.map.call(document.querySelectorAll('#lane .gate'), function (g) {
      return g.getAttribute('data-kind') + ' ' + g.textContent.replace(/\s+/g, ' ') + ' => ' + g.getAttribute('data-state');
    });
  }

  var verbs = {
    'ready': async function () {
      await until(function () { return document.body.getAttribute('data-ready') === '1' && checked() > 0; },
                  'the page to load and check its policy');
      return 'policy ' + $('policy-status').getAttribute('data-state');
    },
    'edit policy': async function (arg) {
      var q = quoted(arg), t = $('policy');
      if (q.length !== 2) fail('edit policy: expected `old` -> `new`');
      if (t.value.indexOf(q[0]) < 0) fail('edit policy: `' + q[0] + '` is not in the policy');
      var before = checked();
      t.value = t.value.replace(q[0], q[1]);
      t.dispatchEvent(new Event('input', { bubbles: true }));
      await until(function () {
        return checked() > before && $('policy-status').getAttribute('data-state') !== 'checking';
      }, 'the edit to be checked');
      return 'policy ' + $('policy-status').getAttribute('data-state');
    },
    'see error at line': async function (arg) {
      var line = parseInt(arg, 10);
      var g = document.querySelector('#gutter div[data-line="' + line + '"]');
      if (!g || !/\berr\b/.test(g.className)) fail('line ' + line + ' is not marked in the gutter');
      var d = document.querySelector('#diagnostics li.error[data-line="' + line + '"]');
      if (!d) fail('no error listed at line ' + line + ': ' + $('diagnostics').textContent);
      if ($('policy-status').getAttribute('data-state') !== 'invalid') fail('the policy is not shown as invalid');
      return d.textContent;
    },
    'see policy': async function (arg) {
      var st = $('policy-status').getAttribute('data-state');
      if (st !== arg.trim()) fail('policy is ' + st + ', expected ' + arg);
      if (arg.trim() === 'valid' && document.querySelector('#gutter div.err')) fail('a line is still marked');
      return st;
    },
    'flows': async function (arg) {
      $('flows').value = arg.trim();
      return arg.trim();
    },
    'run': async function () {
      var before = runs();
      $('run').click();
      await until(function () { return runs() > before; }, 'the run');
      var st = $('run-status').getAttribute('data-state');
      if (st !== 'done') fail('run: ' + $('run-status').textContent);
      return $('run-status').textContent;
    },
    'step': async function (arg) {
      var want = parseInt(arg, 10);
      var at = parseInt($('step-section').getAttribute('data-packet') || '0', 10);
      if (want < at) { $('step-first').click(); }
      await until(function () {
        var now = parseInt($('step-section').getAttribute('data-packet') || '0', 10);
        if (now === want) return true;
        $('step-next').click();
        return false;
      }, 'packet ' + want);
      return $('packet-head').textContent;
    },
    'see packet': async function (arg) {
      var r = $('verdict').getAttribute('data-reason');
      if (r !== arg.trim()) fail('packet shows ' + r + ', expected ' + arg);
      return $('packet-head').textContent;
    },
    // "sg inbound pass", "acl inbound stop": the gate of that kind and direction, in that state.
    'see gate': async function (arg) {
      var w = arg.trim().split(/\s+/);
      var hit = document.querySelectorAll('#lane .gate[data-kind="' + w[0] + '"][data-dir="' + w[1] + '"]');
      if (!hit.length) fail('no ' + w[0] + ' ' + w[1] + ' gate: ' + gates().join(' | '));
      if (hit[0].getAttribute('data-state') !== w[2]) fail('gate is ' + hit[0].getAttribute('data-state') + ': ' + gates().join(' | '));
      return gates().join(' | ');
    },
    'see lit line': async function (arg) {
      var line = parseInt(arg, 10);
      var g = document.querySelector('#gutter div[data-line="' + line + '"]');
      if (!g || !/\bdecides\b/.test(g.className)) fail('line ' + line + ' is not lit: ' + $('decided-by').textContent);
      return $('decided-by').textContent;
    },
    'see TCP state': async function (arg) {
      var cur = $('tcp-machine').getAttribute('data-current');
      if (cur !== arg.trim()) fail('TCP state shows ' + cur + ', expected ' + arg);
      var node = document.querySelector('#tcp-machine g.state.current');
      if (!node || node.getAttribute('data-state') !== arg.trim()) fail('the state is not highlighted');
      return cur;
    },
    // "#1 ESTABLISHED tracked" / "#1 ... untracked"
    'see connection': async function (arg) {
      var w = arg.trim().split(/\s+/), n = w[0].replace('#', '');
      var tr = document.querySelector('#conn-table tr[data-conn="' + n + '"]');
      if (!tr) fail('no connection #' + n + ' in the table');
      if (w[1] && tr.getAttribute('data-state') !== w[1]) fail('#' + n + ' is ' + tr.getAttribute('data-state'));
      if (w[2] && String(tr.getAttribute('data-tracked') === 'true') !== String(w[2] === 'tracked')) fail('#' + n + ' tracked=' + tr.getAttribute('data-tracked'));
      return tr.textContent;
    },
    // "#1 432000": the connection's idle timeout after this packet (seconds, as the engine's table
    // says), and its bar on the timeline.
    'see idle timeout': async function (arg) {
      var w = arg.trim().split(/\s+/), n = w[0].replace('#', '');
      var tr = document.querySelector('#conn-table tr[data-conn="' + n + '"]');
      if (!tr) fail('no connection #' + n + ' in the table');
      var left = parseFloat(tr.getAttribute('data-expires-in'));
      if (Math.round(left) !== parseInt(w[1], 10)) fail('#' + n + ' expires in ' + left + ' s');
      if (!document.querySelector('#timeline rect[data-conn="' + n + '"]')) fail('no timeline bar for #' + n);
      return tr.textContent;
    },
    'what-if': async function (arg) {
      var q = quoted(arg), at = arg.match(/at\s+([0-9.]+)/);
      var sel = $('whatif-rule'), found = false;
      Array.prototype.forEach.call(sel.options, function (o) {
        if (!found && o.textContent.indexOf(q[0] + ':') === 0) { sel.value = o.value; found = true; }
      });
      if (!found) fail('no rule ' + q[0] + ' to turn off');
      $('whatif-at').value = at ? at[1] : '0';
      var out = $('whatif-result');
      out.setAttribute('data-state', 'asked');
      $('whatif-run').click();
      await until(function () { var s = out.getAttribute('data-state'); return s === 'done' || s === 'error'; }, 'the what-if');
      if (out.getAttribute('data-state') !== 'done') fail('what-if: ' + out.textContent);
      return out.querySelector('p').textContent;
    },
    'see what-if stops': async function (arg) {
      var li = document.querySelector('#whatif-stop li[data-was="' + arg.trim() + '"]');
      if (!li) fail('no stopped flow that was ' + arg + ': ' + $('whatif-stop').textContent);
      return li.textContent;
    },
    'see what-if keeps': async function (arg) {
      var li = document.querySelector('#whatif-survive li[data-conn="' + arg.trim().replace('#', '') + '"]');
      if (!li) fail('connection ' + arg + ' does not survive: ' + $('whatif-survive').textContent);
      return li.textContent;
    },
    // "ID allow|deny": answers a question as a guess.
    'quiz': async function (arg) {
      var w = arg.trim().split(/\s+/);
      var q = document.querySelector('.quiz[data-id="' + w[0] + '"]');
      if (!q) fail('no quiz question ' + w[0]);
      var rv = q.querySelector('.reveal');
      if (rv.getAttribute('data-state') !== 'hidden') fail('the answer was shown before the guess');
      q.querySelector('.guess[data-guess="' + w[1] + '"]').click();
      await until(function () { var s = rv.getAttribute('data-state'); return s === 'revealed' || s === 'error'; }, 'the answer');
      window.__pgLastQuiz = q;
      return rv.textContent.slice(0, 200);
    },
    // Loads a question's policy and flows into the playground, runs them and shows its packet.
    'try quiz': async function (arg) {
      var b = document.querySelector('.quiz .load[data-id="' + arg.trim() + '"]');
      if (!b) fail('no quiz question ' + arg);
      var before = runs(), checks = checked();
      b.click();
      await until(function () {
        return runs() > before && checked() > checks && $('policy-status').getAttribute('data-state') !== 'checking';
      }, 'the question to run');
      var q = b.closest('.quiz');
      var want = (q.textContent.match(/packet ([0-9]+):/) || [])[1];
      await until(function () { return $('step-section').getAttribute('data-packet') === want; }, 'packet ' + want);
      return $('packet-head').textContent;
    },
    'see quiz answer': async function (arg) {
      var rv = window.__pgLastQuiz && window.__pgLastQuiz.querySelector('.reveal');
      if (!rv) fail('no question answered');
      if (rv.getAttribute('data-reason') !== arg.trim()) fail('the answer is ' + rv.getAttribute('data-reason'));
      return rv.getAttribute('data-verdict') + ' ' + rv.getAttribute('data-reason') + ' correct=' + rv.getAttribute('data-correct');
    },
  };

  window.__pg = {
    step: async function (s) {
      try {
        var f = verbs[s.verb];
        if (!f) return { ok: false, detail: 'unknown step verb: ' + s.verb };
        var observed = await f(s.arg || '');
        return { ok: errors.length === 0, detail: errors.join('; '), observed: String(observed) };
      } catch (e) {
        return { ok: false, detail: String(e && e.message || e), errors: errors };
      }
    },
    errors: function () { return errors; },
  };
})();
