// The report page: static HTML and SVG for the summary, the policy, the stateless contrast, the
// TCP state machine and the connection-table chart; an embedded JSON blob and a small script for
// the connection list with its ladders (report_assets.cpp).
#include <time.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <utility>

#include <fmt/format.h>

#include "report_assets.hpp"
#include "statewall/rules/policy.hpp"
#include "statewall/rules/vocab.hpp"
#include "statewall/sim/flow_text.hpp"
#include "statewall/sim/glossary.hpp"
#include "statewall/sim/report.hpp"

namespace statewall::sim {
namespace {

using dataplane::Reason;
using dataplane::TcpState;

constexpr size_t kReasons = dataplane::kReasonCount;

// How the page draws and explains a reason. A switch, not arrays in the order of
// STATEWALL_REASONS: a reason added to the engine fails to compile here (-Wswitch) instead of
// shifting every later reason's colour and words by one.
struct ReasonLook {
  std::string_view color;
  std::string_view meaning;
};

ReasonLook reasonLook(Reason r) {
  switch (r) {
    case Reason::kAllowRule:
      return {"#2e7d32",
              "a rule of the packet's own direction allows it (and it opens a connection)"};
    case Reason::kAllowTracked:
      return {"#1565c0", "part of a tracked connection: no rule needed"};
    case Reason::kAllowRelated:
      return {"#7b1fa2", "an ICMP error about a tracked connection"};
    case Reason::kAllowUntracked:
      return {"#00838f", "allowed by rules; an untracked flow (AWS rule)"};
    case Reason::kAllowUnprotected:
      return {"#6d7480", "neither address is protected; the policy lets such traffic pass"};
    case Reason::kAllowExempt:
      return {"#9e9d24",
              "traffic security groups do not filter (ARP, neighbour discovery, DHCP, the Amazon "
              "DNS server, instance metadata, time sync)"};
    case Reason::kDenySg:
      return {"#c62828", "no security-group rule of the interface allows it"};
    case Reason::kDenyAcl:
      return {"#e65100", "a network ACL entry (or its * default) denies it"};
    case Reason::kDenyInvalid:
      return {"#ad1457", "the TCP state machine rejects it (strict mode)"};
    case Reason::kDenyTableFull:
      return {"#5d4037", "the connection table was full"};
    case Reason::kDenyMalformed:
      return {"#263238", "cannot be parsed"};
  }
  return {"#000000", "?"};
}

std::string_view reasonColor(size_t r) {
  return reasonLook(static_cast<Reason>(r)).color;
}

std::string_view connStateMeaning(std::string_view s) {
  static const std::pair<std::string_view, std::string_view> kStates[] = {
      {"S0", "attempt seen, never answered (UDP: one way only)"},
      {"S1", "established, not closed"},
      {"SF", "established and closed normally (UDP: both ways)"},
      {"REJ", "attempt rejected (answered by a reset)"},
      {"S2", "established; the originator began to close, no answer"},
      {"S3", "established; the responder began to close, no answer"},
      {"RSTO", "established; the originator reset it"},
      {"RSTR", "established; the responder reset it"},
      {"RSTOS0", "the originator sent a SYN then a reset; no SYN-ACK seen"},
      {"RSTRH", "the responder sent a SYN-ACK then a reset; no SYN seen"},
      {"SH", "the originator sent a SYN then a FIN; no SYN-ACK seen"},
      {"SHR", "the responder sent a SYN-ACK then a FIN; no SYN seen (UDP: responder only)"},
      {"OTH", "no SYN seen: mid-stream traffic, or ICMP and other protocols"},
  };
  for (const auto& [k, v] : kStates) {
    if (k == s) return v;
  }
  return "";
}

class Html {
 public:
  void raw(std::string_view s) { b_.append(s); }
  template <class... T>
  void f(fmt::format_string<T...> fs, T&&... args) {
    fmt::format_to(std::back_inserter(b_), fs, std::forward<T>(args)...);
  }
  void text(std::string_view s) { raw(htmlEscape(s)); }
  std::string str() const { return fmt::to_string(b_); }

 private:
  fmt::memory_buffer b_;
};

std::string esc(std::string_view s) {
  return htmlEscape(s);
}

std::string pct(uint64_t part, uint64_t whole) {
  if (whole == 0) return "0%";
  double p = 100.0 * static_cast<double>(part) / static_cast<double>(whole);
  return p >= 10 || p == 0 ? fmt::format("{:.0f}%", p) : fmt::format("{:.1f}%", p);
}

double secs(uint64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

// ---- JSON blob ----

class Json {
 public:
  void raw(std::string_view s) { b_.append(s); }
  void str(std::string_view s) { raw(scriptJsonString(s)); }
  void num(uint64_t v) { fmt::format_to(std::back_inserter(b_), "{}", v); }
  void inum(int64_t v) { fmt::format_to(std::back_inserter(b_), "{}", v); }
  void dbl(double v, int digits) {
    if (!std::isfinite(v)) v = 0;
    fmt::format_to(std::back_inserter(b_), "{:.{}f}", v, digits);
  }
  std::string take() { return fmt::to_string(b_); }

 private:
  fmt::memory_buffer b_;
};

// "tcp", "udp", "icmp", "icmpv6", else "proto N".
std::string protoText(uint8_t proto) {
  const std::string name = rules::protoName(proto);
  return name[0] >= '0' && name[0] <= '9' ? fmt::format("proto {}", proto) : name;
}

// The checks between two endpoints, in the order a packet from `left` to `right` meets them:
// left's security groups (its interface), left's network ACL (its subnet's edge), right's ACL,
// right's groups. An unprotected side has none; an ACL does not see traffic within its subnet.
std::array<std::string, 4> ladderGates(const rules::CompiledPolicy& pol, const rules::IpAddr& left,
                                       const rules::IpAddr& right) {
  std::array<std::string, 4> g;
  auto side = [&](const rules::IpAddr& a, const rules::IpAddr& other, std::string* groups,
                  std::string* acl) {
    const rules::IfaceId i = pol.interfaceOf(a);
    if (i == rules::kNoIface) return;
    *groups = pol.iface(i).name;
    const rules::SubnetId sn = pol.subnetOfIface(i);
    if (pol.hasAcl(sn) && !pol.subnetContains(sn, other)) *acl = pol.subnet(sn).acl_name;
  };
  side(left, right, &g[0], &g[1]);
  side(right, left, &g[3], &g[2]);
  return g;
}

// " Terms: docs/glossary.md#a, #b." for the end of a note: where the words it uses are explained.
std::string glossaryNote(std::initializer_list<std::string_view> anchors) {
  std::string s = " <span class=\"gloss\">Terms: ";
  bool first = true;
  for (std::string_view a : anchors) {
    s += first ? "<code>" + glossaryRef(a) + "</code>" : ", <code>#" + std::string(a) + "</code>";
    first = false;
  }
  return s + ".</span>";
}

std::string arrowLabel(const LadderArrow& a) {
  std::string s;
  if (a.icmp_error) s = "ICMP error ";
  if (a.proto == dataplane::kIpProtoTcp && !a.icmp_error) {
    s += "[" + rules::tcpFlagLetters(a.tcp_flags) + "]";
  } else if (a.proto == dataplane::kIpProtoIcmp || a.proto == dataplane::kIpProtoIcmpv6) {
    // Names as people know them ("echo request"); numbers only for types without a name.
    const std::string name =
        icmpName(a.proto == dataplane::kIpProtoIcmpv6, a.icmp_type, a.icmp_code);
    s += name.empty() ? fmt::format("type {} code {}", a.icmp_type, a.icmp_code) : name;
  } else {
    s += protoText(a.proto);
  }
  if (a.flags & dataplane::kFlagNewConnection) s += "  new";
  if (a.flags & dataplane::kFlagTcpInvalid) s += "  INVALID";
  return s;
}

std::string dataBlob(const ReportData& d) {
  const rules::CompiledPolicy& pol = *d.policy;
  Json j;
  j.raw("{\"reasons\":[");
  for (size_t r = 0; r < kReasons; ++r) {
    if (r) j.raw(",");
    j.str(dataplane::kReasonCodes[r]);
  }
  j.raw("],\"allows\":[");
  for (size_t r = 0; r < kReasons; ++r)
    j.raw(r ? (dataplane::kReasonAllows[r] ? ",true" : ",false")
            : (dataplane::kReasonAllows[r] ? "true" : "false"));
  j.raw("],\"colors\":[");
  for (size_t r = 0; r < kReasons; ++r) {
    if (r) j.raw(",");
    j.str(reasonColor(r));
  }
  j.raw("],\"states\":[");
  for (size_t s = 0; s < dataplane::kTcpStateCount; ++s) {
    if (s) j.raw(",");
    j.str(dataplane::tcpStateName(static_cast<TcpState>(s)));
  }
  j.raw("],\"rules\":[");
  for (rules::RuleId r = 0; r < pol.ruleCount(); ++r) {
    const rules::RuleInfo& ri = pol.rule(r);
    if (r) j.raw(",");
    j.raw("[");
    j.str(rules::ruleLabel(ri));
    j.raw(",");
    j.str(ri.text);
    j.raw("]");
  }
  j.raw("],\"texts\":[");
  for (size_t t = 0; t < d.texts.size(); ++t) {
    if (t) j.raw(",");
    j.str(d.texts[t]);
  }
  j.raw("],\"limits\":{\"ladderConns\":");
  j.num(d.options.ladder_connections);
  j.raw(",\"ladderArrows\":");
  j.num(d.options.ladder_arrows);
  j.raw(",\"listed\":");
  j.num(d.connections.size());
  j.raw(",\"total\":");
  j.num(d.connections_total);
  j.raw("},\"conns\":[");
  const uint64_t t0 = d.summary.first_ts_ns;
  bool first = true;
  for (const ReportConnection& c : d.connections) {
    const ConnRecord& r = c.rec;
    if (!first) j.raw(",\n");
    first = false;
    j.raw("[");
    j.num(r.seq);
    j.raw(",");
    j.str(r.uid());
    j.raw(",");
    j.str(protoText(r.proto));
    j.raw(",");
    j.str(r.orig_h.str());
    j.raw(",");
    j.num(r.orig_p);
    j.raw(",");
    j.str(r.resp_h.str());
    j.raw(",");
    j.num(r.resp_p);
    j.raw(",");
    j.str(r.connState());
    j.raw(",");
    j.str(r.history_str());
    j.raw(",");
    j.num(r.orig.pkts);
    j.raw(",");
    j.num(r.resp.pkts);
    j.raw(",");
    j.num(c.packets);
    j.raw(",");
    j.num(c.allowed());
    j.raw(",");
    j.num(c.denied());
    j.raw(",");
    const uint64_t first_ns = c.arrows.empty() ? r.first_ns : c.arrows.front().ts_ns;
    const uint64_t start = std::min(r.first_ns, first_ns);
    j.dbl(start >= t0 ? secs(start - t0) : 0.0, 6);
    j.raw(",");
    j.dbl(r.last_ns >= start ? secs(r.last_ns - start) : 0.0, 6);
    j.raw(",");
    j.str(connEndName(r.end));
    j.raw(",");
    j.num(static_cast<uint64_t>(r.first_reason));
    j.raw(",");
    j.inum(r.opened_by != rules::kNoRule && r.opened_by < pol.ruleCount()
               ? static_cast<int64_t>(r.opened_by)
               : -1);
    j.raw(",");
    j.num(c.stateless_changed);
    j.raw(",[");
    bool f2 = true;
    for (size_t k = 0; k < kReasons; ++k) {
      if (c.by_reason[k] == 0) continue;
      if (!f2) j.raw(",");
      f2 = false;
      j.raw("[");
      j.num(k);
      j.raw(",");
      j.num(c.by_reason[k]);
      j.raw("]");
    }
    j.raw("],");
    j.num(r.icmp_errors);
    j.raw(",");
    if (!c.has_ladder) {
      j.raw("null");
    } else {
      j.raw("[");
      for (size_t k = 0; k < c.arrows.size(); ++k) {
        const LadderArrow& a = c.arrows[k];
        if (k) j.raw(",");
        j.raw(a.from_orig ? "[1," : "[0,");
        j.num(static_cast<uint64_t>(a.reason));
        j.raw(",");
        j.str(arrowLabel(a));
        j.raw(",");
        j.num(static_cast<uint64_t>(a.tcp_before));
        j.raw(",");
        j.num(static_cast<uint64_t>(a.tcp_after));
        j.raw(",");
        j.num(a.flags);
        j.raw(",");
        j.dbl(a.ts_ns >= start ? static_cast<double>(a.ts_ns - start) / 1e6 : 0.0, 3);
        j.raw(",");
        j.inum(a.stateless_differs ? static_cast<int64_t>(a.stateless) : -1);
        j.raw(",");
        j.num(a.index);
        j.raw(",");
        j.num(a.payload);
        j.raw(a.icmp_error ? ",1," : ",0,");
        j.num(a.text);
        j.raw(",");
        j.num(static_cast<uint64_t>(a.stop));
        j.raw("]");
      }
      j.raw("]");
    }
    // The places on its ladder, left to right (LadderStop): "" where there is none.
    j.raw(",[");
    const auto gates = ladderGates(pol, r.orig_h, r.resp_h);
    for (size_t k = 0; k < gates.size(); ++k) {
      if (k) j.raw(",");
      j.str(gates[k]);
    }
    j.raw("],");
    j.num(r.conn_number);  // #N; 0: a flow the engine did not track
    j.raw(",");
    j.str(c.encap);  // "" or where its first packet was judged: "carried in vlan:100 (...)"
    j.raw("]");
  }
  j.raw("]}");
  return j.take();
}

// ---- sections ----

void swatch(Html& h, Reason r) {
  h.f("<span class=\"swatch\" style=\"background:{}\"></span>",
      reasonColor(static_cast<size_t>(r)));
}

void header(Html& h, const ReportData& d) {
  const ReplaySummary& s = d.summary;
  h.raw("<header><h1>");
  h.text(d.options.title);
  h.raw("</h1><div class=\"meta\">Policy ");
  for (size_t i = 0; i < s.policy_files.size(); ++i)
    h.f("{}<code>{}</code>", i ? ", " : "", esc(s.policy_files[i]));
  h.raw(" \u00b7 trace ");
  for (size_t i = 0; i < s.traces.size(); ++i)
    h.f("{}<code>{}</code>", i ? ", " : "", esc(s.traces[i].path));
  h.f(" \u00b7 {} packets", rules::withThousands(s.packets));
  if (s.packets > 0) {
    h.f(" from {} over {:.3f} s", rules::utcText(s.first_ts_ns, 0),
        secs(s.last_ts_ns >= s.first_ts_ns ? s.last_ts_ns - s.first_ts_ns : 0));
  }
  if (s.error) {
    h.f("<div class=\"meta\"><strong>Incomplete:</strong> {}; the page covers the {} packets "
        "before it.</div>",
        esc(s.error->str()), rules::withThousands(s.packets));
  }
  h.raw(
      "</div></header>\n<nav><a href=\"#summary\">Summary</a><a href=\"#policy\">Policy and "
      "hits</a>"
      "<a href=\"#contrast\">Stateful vs stateless</a><a href=\"#tcp\">TCP state machine</a>"
      "<a href=\"#table\">Connection table</a><a href=\"#connections\">Connections</a></nav>\n");
}

void summarySection(Html& h, const ReportData& d) {
  const ReplaySummary& s = d.summary;
  uint64_t allowed = 0;
  for (size_t r = 0; r < kReasons; ++r) {
    if (dataplane::kReasonAllows[r]) allowed += s.packets_by_reason[r];
  }
  const uint64_t denied = s.packets - allowed;
  h.raw("<section id=\"summary\"><h2>Summary</h2><div class=\"cards\">");
  h.f("<div class=\"card\" id=\"card-packets\"><div class=\"k\">Packets</div><div "
      "class=\"v\">{}</div><div class=\"s\">{} bytes on the wire</div></div>",
      rules::withThousands(s.packets), rules::withThousands(s.bytes));
  h.f("<div class=\"card\" id=\"card-allowed\"><div class=\"k\">Allowed</div><div class=\"v\" "
      "style=\"color:#2e7d32\">{}</div><div class=\"s\">{} of the packets</div></div>",
      rules::withThousands(allowed), pct(allowed, s.packets));
  h.f("<div class=\"card\" id=\"card-denied\"><div class=\"k\">Denied</div><div class=\"v\" "
      "style=\"color:#c62828\">{}</div><div class=\"s\">{} of the packets</div></div>",
      rules::withThousands(denied), pct(denied, s.packets));
  h.f("<div class=\"card\" id=\"card-connections\"><div class=\"k\">Connections</div><div "
      "class=\"v\">{}</div><div class=\"s\">records in Zeek's conn.log vocabulary; {} table "
      "entries created</div></div>",
      rules::withThousands(d.connections_total), rules::withThousands(d.connections_created));
  h.f("<div class=\"card\" id=\"card-stateless\"><div class=\"k\">Stateless would differ</div>"
      "<div class=\"v\">{}</div><div class=\"s\">packets ({} denied instead, {} allowed "
      "instead)</div></div>",
      rules::withThousands(d.stateless_to_deny + d.stateless_to_allow),
      rules::withThousands(d.stateless_to_deny), rules::withThousands(d.stateless_to_allow));
  h.f("<div class=\"card\" id=\"card-table\"><div class=\"k\">Connection table</div><div "
      "class=\"v\">{}</div><div class=\"s\">peak entries; {} idle expiries</div></div>",
      rules::withThousands(d.table_peak), rules::withThousands(d.expiries_total));
  h.raw(
      "</div>\n<div class=\"grid2\"><div><h3>Packets by verdict and reason</h3>"
      "<table id=\"reasons\"><tr><th>verdict</th><th>reason</th><th class=\"n\">packets</th>"
      "<th class=\"n\">bytes</th><th>share</th></tr>");
  uint64_t maxp = 1;
  for (size_t r = 0; r < kReasons; ++r)
    maxp = std::max(maxp, s.packets_by_reason[r]);
  for (size_t r = 0; r < kReasons; ++r) {
    const uint64_t n = s.packets_by_reason[r];
    const double w = 160.0 * static_cast<double>(n) / static_cast<double>(maxp);
    h.f("<tr data-reason=\"{}\" data-packets=\"{}\"{}><td>{}</td><td>", dataplane::kReasonCodes[r],
        n, n == 0 ? " style=\"color:#8a94a6\"" : "",
        dataplane::kReasonAllows[r] ? "allow" : "deny");
    swatch(h, static_cast<Reason>(r));
    h.f("<span title=\"{}\">{}</span></td><td class=\"n\">{}</td><td class=\"n\">{}</td>"
        "<td><span class=\"bar\" style=\"width:{:.1f}px;background:{}\"></span> {}</td></tr>",
        esc(reasonLook(static_cast<Reason>(r)).meaning), dataplane::kReasonCodes[r],
        rules::withThousands(n), rules::withThousands(s.bytes_by_reason[r]), w, reasonColor(r),
        pct(n, s.packets));
  }
  h.raw("</table>");
  bool any_malformed = false;
  for (uint64_t m : s.malformed_by_layer)
    any_malformed = any_malformed || m != 0;
  if (any_malformed) {
    h.raw("<p class=\"note\">deny-malformed by layer: ");
    bool first = true;
    for (size_t l = 0; l < dataplane::kLayerCount; ++l) {
      if (s.malformed_by_layer[l] == 0) continue;
      h.f("{}{} {}", first ? "" : ", ", dataplane::kLayerNames[l],
          rules::withThousands(s.malformed_by_layer[l]));
      first = false;
    }
    h.raw("</p>");
  }
  if (d.unattributed_packets > 0) {
    h.f("<p class=\"note\">{} packets belong to no connection (ARP and neighbour discovery, "
        "non-IP frames, unparsable packets).</p>",
        rules::withThousands(d.unattributed_packets));
  }
  h.raw(
      "</div><div><h3>Connections by conn_state</h3><table id=\"conn-states\"><tr>"
      "<th>conn_state</th><th class=\"n\">connections</th><th>meaning (Zeek)</th></tr>");
  for (const auto& [st, n] : d.conn_states) {
    h.f("<tr data-state=\"{}\" data-count=\"{}\"><td><code>{}</code></td><td class=\"n\">{}</td>"
        "<td>{}</td></tr>",
        esc(st), n, esc(st), rules::withThousands(n), esc(connStateMeaning(st)));
  }
  if (d.conn_states.empty()) h.raw("<tr><td colspan=\"3\" class=\"note\">none</td></tr>");
  h.raw(
      "</table><h3>How connections ended</h3><table id=\"conn-ends\"><tr><th>end</th>"
      "<th class=\"n\">connections</th></tr>");
  for (auto e : {ConnEnd::kClosed, ConnEnd::kTimedOut, ConnEnd::kOpen}) {
    h.f("<tr><td>{}</td><td class=\"n\">{}</td></tr>", connEndName(e),
        rules::withThousands(d.conn_ends[static_cast<size_t>(e)]));
  }
  h.f("</table><p class=\"note\">The engine's own counters: {} connections created, {} expired "
      "(idle past their timeout by the end of the trace, whether or not the sweep had reclaimed "
      "them yet), {} unreplied ones evicted to make room in a full table, {} TCP packets marked "
      "INVALID.{}</p>",
      rules::withThousands(s.engine.connections_created),
      rules::withThousands(s.engine.connections_expired),
      rules::withThousands(s.engine.connections_evicted),
      rules::withThousands(s.engine.tcp_invalid),
      glossaryNote(
          {"zeek-conn_state", "zeek-history", "idle-timeout", "sweep", "eviction", "invalid"}));
  h.raw("</div></div></section>\n");
}

void hitCell(Html& h, uint64_t hits) {
  if (hits == 0) {
    h.raw("<td class=\"n\">0<span class=\"badge\">never hit</span></td>");
  } else {
    h.f("<td class=\"n\">{}</td>", rules::withThousands(hits));
  }
}

void policySection(Html& h, const ReportData& d) {
  const rules::CompiledPolicy& pol = *d.policy;
  const rules::Policy& src = pol.source();
  const ReplaySummary& s = d.summary;
  h.raw(
      "<section id=\"policy\"><h2>Policy and rule hits</h2><p class=\"note\">Hits are the "
      "engine's counters: a security-group rule counts the packets it allowed (first packets "
      "of connections, untracked flows); packets of tracked connections hit no rule. An ACL "
      "entry counts every packet it decided, both ways. Rows never hit are marked.</p>");
  // Which interfaces carry each group.
  std::vector<std::vector<std::string>> carriers(src.groups.size());
  for (rules::IfaceId i = 0; i < pol.ifaceCount(); ++i) {
    for (uint16_t g : pol.iface(i).groups) {
      if (g < carriers.size()) carriers[g].push_back(pol.iface(i).name);
    }
  }
  h.raw("<h3>Security groups</h3>");
  size_t never_sg = 0;
  for (size_t g = 0; g < src.groups.size(); ++g) {
    const rules::SecurityGroup& grp = src.groups[g];
    h.f("<div class=\"group\" data-group=\"{}\"><h3 style=\"margin-top:12px\">group "
        "<code>{}</code>",
        esc(grp.name), esc(grp.name));
    if (!grp.description.empty()) h.f(" <span class=\"note\">{}</span>", esc(grp.description));
    h.raw("</h3><p class=\"note\">on ");
    if (carriers[g].empty()) h.raw("no interface");
    for (size_t k = 0; k < carriers[g].size(); ++k)
      h.f("{}<code>{}</code>", k ? ", " : "", esc(carriers[g][k]));
    h.raw(
        "</p><table class=\"sg\"><tr><th>direction</th><th class=\"n\">#</th><th>rule</th>"
        "<th>description</th><th class=\"n\">hits</th></tr>");
    bool any = false;
    for (rules::RuleId r = 0; r < pol.ruleCount(); ++r) {
      const rules::RuleInfo& ri = pol.rule(r);
      if (ri.group != g) continue;
      any = true;
      const uint64_t hits = r < s.rule_hits.size() ? s.rule_hits[r] : 0;
      if (hits == 0) ++never_sg;
      h.f("<tr class=\"{}\" data-rule=\"{}\" data-hits=\"{}\"><td>{}</td><td class=\"n\">{}</td>"
          "<td><code>{}</code></td><td>{}</td>",
          hits == 0 ? "never" : "hit", r, hits, rules::directionName(ri.dir), ri.index,
          esc(ri.text), esc(ri.description));
      hitCell(h, hits);
      h.raw("</tr>");
    }
    if (!any) h.raw("<tr><td colspan=\"5\" class=\"note\">no rules</td></tr>");
    h.raw("</table></div>");
  }
  h.raw("<h3>Network ACLs</h3>");
  size_t never_acl = 0;
  for (rules::AclId a = 0; a < pol.aclCount(); ++a) {
    const rules::AclInfo& ai = pol.acl(a);
    h.f("<div class=\"acl\" data-acl=\"{}\"><h3 style=\"margin-top:12px\">ACL <code>{}</code></h3>"
        "<p class=\"note\">attached to ",
        esc(ai.name), esc(ai.name));
    bool any_subnet = false;
    for (rules::SubnetId sn = 0; sn < pol.subnetCount(); ++sn) {
      const rules::SubnetInfo& si = pol.subnet(sn);
      if (si.acl != a) continue;
      h.f("{}<code>{}</code> (", any_subnet ? ", " : "", esc(si.name));
      for (size_t k = 0; k < si.cidrs.size(); ++k)
        h.f("{}{}", k ? ", " : "", esc(si.cidrs[k].str()));
      h.raw(")");
      any_subnet = true;
    }
    if (!any_subnet) h.raw("no subnet");
    h.raw(
        "</p><table class=\"aclt\"><tr><th>direction</th><th class=\"n\">rule</th>"
        "<th>action</th><th>entry</th><th class=\"n\">hits</th></tr>");
    for (rules::AclEntryId e = 0; e < pol.aclEntryCount(); ++e) {
      const rules::AclEntryInfo& ei = pol.aclEntry(e);
      if (ei.acl != a) continue;
      const uint64_t hits = e < s.acl_hits.size() ? s.acl_hits[e] : 0;
      if (hits == 0) ++never_acl;
      h.f("<tr class=\"{}\" data-acl-entry=\"{}\" data-hits=\"{}\"><td>{}</td><td class=\"n\">{}"
          "</td><td><span class=\"badge {}\">{}</span></td><td><code>{}</code></td>",
          hits == 0 ? "never" : "hit", e, hits, rules::directionName(ei.dir),
          esc(ei.ruleNumberStr()), ei.allow ? "allow" : "deny", ei.allow ? "allow" : "deny",
          esc(ei.text));
      hitCell(h, hits);
      h.raw("</tr>");
    }
    h.raw("</table></div>");
  }
  if (pol.aclCount() == 0) h.raw("<p class=\"note\">The policy has no network ACL.</p>");
  h.f("<p class=\"note\" id=\"never-hit\">{} of {} security-group rules and {} of {} ACL entries "
      "were never hit.</p>",
      never_sg, pol.ruleCount(), never_acl, pol.aclEntryCount());
  h.raw(
      "<h3>Interfaces</h3><table id=\"interfaces\"><tr><th>interface</th><th>addresses</th>"
      "<th>groups</th><th>subnet</th></tr>");
  for (rules::IfaceId i = 0; i < pol.ifaceCount(); ++i) {
    const rules::InterfaceInfo& ii = pol.iface(i);
    h.f("<tr><td><code>{}</code></td><td>", esc(ii.name));
    for (size_t k = 0; k < ii.addresses.size(); ++k)
      h.f("{}<code>{}</code>", k ? ", " : "", esc(ii.addresses[k].str()));
    h.raw("</td><td>");
    for (size_t k = 0; k < ii.group_names.size(); ++k)
      h.f("{}<code>{}</code>", k ? ", " : "", esc(ii.group_names[k]));
    h.raw("</td><td>");
    if (ii.subnet != rules::kNoSubnet && ii.subnet < pol.subnetCount()) {
      h.f("<code>{}</code>", esc(pol.subnet(ii.subnet).name));
    } else {
      h.raw("<span class=\"note\">none</span>");
    }
    h.raw("</td></tr>");
  }
  h.raw("</table></section>\n");
}

void contrastSection(Html& h, const ReportData& d) {
  const ReplaySummary& s = d.summary;
  h.raw(
      "<section id=\"contrast\"><h2>Stateful vs stateless</h2><p class=\"note\">Each packet "
      "judged a second time by the same rules without connection tracking, as a stateless "
      "filter (or a network ACL) would: every packet must be allowed by a rule of its own "
      "direction on both sides. A security group needs no rule for replies; a stateless filter "
      "does.");
  h.raw(glossaryNote({"tracked", "untracked", "reply", "ephemeral-port", "related"}));
  h.raw("</p>");
  h.f("<div class=\"cards\"><div class=\"card\" id=\"stateless-to-deny\"><div class=\"k\">Allowed "
      "here, denied stateless</div><div class=\"v\" style=\"color:#c62828\">{}</div><div "
      "class=\"s\">packets: replies and continuations that need a rule without tracking</div>"
      "</div><div class=\"card\" id=\"stateless-to-allow\"><div class=\"k\">Denied here, allowed "
      "stateless</div><div class=\"v\" style=\"color:#2e7d32\">{}</div><div class=\"s\">packets: "
      "e.g. rejected by the TCP state machine or a full table</div></div></div>",
      rules::withThousands(d.stateless_to_deny), rules::withThousands(d.stateless_to_allow));
  h.raw(
      "<h3>Packets by reason, both ways</h3><table id=\"contrast-reasons\"><tr><th>reason</th>"
      "<th class=\"n\">stateful (statewall)</th><th class=\"n\">rules alone</th></tr>");
  for (size_t r = 0; r < kReasons; ++r) {
    if (s.packets_by_reason[r] == 0 && d.stateless_by_reason[r] == 0) continue;
    h.raw("<tr><td>");
    swatch(h, static_cast<Reason>(r));
    h.f("{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>", dataplane::kReasonCodes[r],
        rules::withThousands(s.packets_by_reason[r]),
        rules::withThousands(d.stateless_by_reason[r]));
  }
  h.raw("</table>");
  const size_t shown = std::min(s.changes.size(), d.options.max_changes);
  h.f("<h3>Flows a stateless filter would treat differently</h3><p class=\"note\">{} flows "
      "(by flow and pair of reasons), in order of their first packet{}.</p>",
      rules::withThousands(s.changed_flows),
      shown < s.changed_flows ? fmt::format("; the first {} are listed", shown) : "");
  if (shown > 0) {
    h.raw(
        "<table id=\"changes\"><tr><th>flow</th><th>statewall</th><th>rules alone</th>"
        "<th class=\"n\">packets</th><th class=\"n\">first</th><th>why</th></tr>");
    for (size_t i = 0; i < shown; ++i) {
      const StatelessChange& c = s.changes[i];
      h.f("<tr><td><code>{}</code></td><td>", esc(flowKeyWords(c.key)));
      swatch(h, c.stateful);
      h.f("{}</td><td>", dataplane::reasonCode(c.stateful));
      swatch(h, c.stateless);
      h.f("{}</td><td class=\"n\">{}</td><td class=\"n\">#{}</td><td>{}</td></tr>",
          dataplane::reasonCode(c.stateless), rules::withThousands(c.packets), c.first_index,
          esc(c.why));
    }
    h.raw("</table>");
  }
  h.raw("</section>\n");
}

// ---- TCP state machine ----

struct NodePos {
  double x, y;
};

constexpr double kNodeW = 142, kNodeH = 50;

NodePos nodePos(TcpState s) {
  switch (s) {
    case TcpState::kNone:
      return {85, 140};
    case TcpState::kSynSent:
      return {290, 250};
    case TcpState::kSynSent2:
      return {290, 445};
    case TcpState::kSynRecv:
      return {470, 85};
    case TcpState::kEstablished:
      return {625, 270};
    case TcpState::kFinWait:
      return {820, 85};
    case TcpState::kCloseWait:
      return {820, 445};
    case TcpState::kLastAck:
      return {960, 270};
    case TcpState::kTimeWait:
      return {1095, 85};
    case TcpState::kClose:
      return {1095, 445};
    default:
      return {0, 0};
  }
}

// Where the segment from the centre c towards p leaves the node box.
NodePos boxExit(NodePos c, NodePos p) {
  const double dx = p.x - c.x, dy = p.y - c.y;
  const double tx = dx != 0 ? (kNodeW / 2 + 3) / std::abs(dx) : 1e9;
  const double ty = dy != 0 ? (kNodeH / 2 + 3) / std::abs(dy) : 1e9;
  const double t = std::min(tx, ty);
  return {c.x + dx * t, c.y + dy * t};
}

void tcpSection(Html& h, const ReportData& d) {
  using dataplane::TcpAction;
  constexpr size_t kN = dataplane::kTcpStateCount;
  // Edges of the transition table (from != to), then the reopen edge.
  std::map<std::pair<size_t, size_t>, std::vector<std::string>> edges;
  for (const dataplane::TcpTransition& t : dataplane::tcpTransitions()) {
    if (t.action == TcpAction::kInvalid || t.action == TcpAction::kPass) continue;
    if (t.action == TcpAction::kReopen) continue;
    if (t.from == t.to) continue;
    auto& ev = edges[{static_cast<size_t>(t.from), static_cast<size_t>(t.to)}];
    std::string e(dataplane::tcpEventName(t.event));
    if (std::find(ev.begin(), ev.end(), e) == ev.end()) ev.push_back(e);
  }
  // Transitions the trace took that the table has no row for (should not happen) are drawn too.
  for (size_t a = 0; a < kN; ++a) {
    for (size_t b = 0; b < kN; ++b) {
      if (a != b && d.tcp_moves[a][b] > 0) edges[{a, b}];
    }
  }
  uint64_t total_moves = 0;
  for (size_t a = 0; a < kN; ++a) {
    for (size_t b = 0; b < kN; ++b)
      total_moves += d.tcp_moves[a][b];
  }
  h.raw(
      "<section id=\"tcp\"><h2>TCP state machine</h2><p class=\"note\">The engine's TCP "
      "states, with its transition table as edges. Each edge is "
      "labelled with the segments that can take it and how many packets of this trace took "
      "it; a box shows how many packets kept a connection in that state, how many the machine "
      "rejected (INVALID) there and how many connections expired idle in it. Denied packets "
      "still move the machine when the state check came before the ACL check.");
  h.raw(glossaryNote({"tcp-states", "invalid", "mid-stream-pickup", "idle-timeout"}));
  h.raw("</p>");
  const double W = 1180, H = 500;
  h.f("<div class=\"svgwrap\"><svg id=\"tcp-graph\" width=\"{:.0f}\" height=\"{:.0f}\" "
      "viewBox=\"0 0 {:.0f} {:.0f}\" role=\"img\"><title>TCP state machine with transition "
      "counts</title><defs><marker id=\"tcp-arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" "
      "markerWidth=\"9\" markerHeight=\"9\" markerUnits=\"userSpaceOnUse\" "
      "orient=\"auto-start-reverse\"><path d=\"M0 0L10 5L0 10z\" "
      "fill=\"#8a94a6\"/></marker><marker id=\"tcp-arrow-hot\" viewBox=\"0 0 10 10\" "
      "refX=\"9\" refY=\"5\" markerWidth=\"12\" markerHeight=\"12\" "
      "markerUnits=\"userSpaceOnUse\" orient=\"auto-start-reverse\"><path d=\"M0 0L10 5L0 10z\" "
      "fill=\"#1565c0\"/></marker>"
      "</defs>",
      W, H, W, H);
  uint64_t max_count = 1;
  for (const auto& [k, ev] : edges)
    max_count = std::max(max_count, d.tcp_moves[k.first][k.second]);
  auto drawEdge = [&](size_t a, size_t b, uint64_t count, const std::string& label,
                      const char* cls) {
    NodePos pa = nodePos(static_cast<TcpState>(a)), pb = nodePos(static_cast<TcpState>(b));
    const double dx = pb.x - pa.x, dy = pb.y - pa.y;
    const double len = std::max(1.0, std::sqrt(dx * dx + dy * dy));
    // Bend every edge to its left, so that A->B and B->A do not overlap.
    // Edges that would pass through another node or over another label bend further.
    double bend = 26;
    const TcpState from = static_cast<TcpState>(a), to = static_cast<TcpState>(b);
    if (from == TcpState::kNone && to == TcpState::kEstablished) bend = -110;
    if (from == TcpState::kSynSent2 && to == TcpState::kSynRecv) bend = 70;
    NodePos ctrl{(pa.x + pb.x) / 2 - dy / len * bend, (pa.y + pb.y) / 2 + dx / len * bend};
    NodePos s = boxExit(pa, ctrl), e = boxExit(pb, ctrl);
    NodePos mid{0.25 * s.x + 0.5 * ctrl.x + 0.25 * e.x, 0.25 * s.y + 0.5 * ctrl.y + 0.25 * e.y};
    const bool hot = count > 0;
    const double width = hot ? 1.5 + 3.5 * std::log1p(static_cast<double>(count)) /
                                         std::log1p(static_cast<double>(max_count))
                             : 1.2;
    h.f("<g class=\"{}\" data-from=\"{}\" data-to=\"{}\" data-count=\"{}\"><path d=\"M{:.1f} "
        "{:.1f}Q{:.1f} {:.1f} {:.1f} {:.1f}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{:.2f}\" "
        "marker-end=\"url(#{})\"{}/>",
        cls, dataplane::tcpStateName(static_cast<TcpState>(a)),
        dataplane::tcpStateName(static_cast<TcpState>(b)), count, s.x, s.y, ctrl.x, ctrl.y, e.x,
        e.y, hot ? "#1565c0" : "#aab3c2", width, hot ? "tcp-arrow-hot" : "tcp-arrow",
        hot ? "" : " stroke-dasharray=\"4 3\"");
    h.f("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"11\" "
        "fill=\"{}\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\"{}>{}</text>",
        mid.x, mid.y + 4, hot ? "#0d3c80" : "#7a8497", hot ? " font-weight=\"600\"" : "",
        esc(label));
    h.f("<title>{} \u2192 {}: {} packets</title></g>",
        dataplane::tcpStateName(static_cast<TcpState>(a)),
        dataplane::tcpStateName(static_cast<TcpState>(b)), count);
  };
  for (const auto& [k, ev] : edges) {
    std::string label;
    for (size_t i = 0; i < ev.size(); ++i)
      label += (i ? "/" : "") + ev[i];
    const uint64_t count = d.tcp_moves[k.first][k.second];
    label += (label.empty() ? "" : " \u00d7") + rules::withThousands(count);
    drawEdge(k.first, k.second, count, label, "tcp-edge");
  }
  // A SYN reopening a TIME_WAIT or CLOSE connection replaces the entry.
  drawEdge(static_cast<size_t>(TcpState::kTimeWait), static_cast<size_t>(TcpState::kSynSent),
           d.tcp_reopened, "reopen (SYN) \u00d7" + rules::withThousands(d.tcp_reopened),
           "tcp-edge reopen");
  for (size_t s = 0; s < kN; ++s) {
    const TcpState st = static_cast<TcpState>(s);
    NodePos p = nodePos(st);
    const uint64_t stay = d.tcp_moves[s][s];
    const bool start = st == TcpState::kNone;
    h.f("<g class=\"tcp-node\" data-state=\"{}\" data-stay=\"{}\" data-invalid=\"{}\" "
        "data-expired=\"{}\"><rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.0f}\" height=\"{:.0f}\" "
        "rx=\"9\" fill=\"{}\" stroke=\"{}\" stroke-width=\"1.5\"/>",
        dataplane::tcpStateName(st), stay, d.tcp_invalid[s], d.tcp_expired[s], p.x - kNodeW / 2,
        p.y - kNodeH / 2, kNodeW, kNodeH, start ? "#eef1f6" : "#fff",
        start ? "#8a94a6" : "#44506a");
    h.f("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"13\" "
        "font-weight=\"700\" fill=\"#1d2330\">{}</text>",
        p.x, p.y - 7, start ? "NONE (new)" : dataplane::tcpStateName(st));
    std::string sub =
        start ? "first packets"
              : fmt::format("stay {} \u00b7 inv {} \u00b7 exp {}", rules::withThousands(stay),
                            rules::withThousands(d.tcp_invalid[s]),
                            rules::withThousands(d.tcp_expired[s]));
    if (start && d.tcp_invalid[s] > 0) sub += fmt::format(" \u00b7 inv {}", d.tcp_invalid[s]);
    h.f("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"10.5\" "
        "fill=\"#5b6475\">{}</text></g>",
        p.x, p.y + 12, esc(sub));
  }
  h.raw("</svg></div>");
  h.f("<p class=\"note\">{} TCP packets of tracked connections; {} connections reopened by a "
      "SYN. stay = the packet left the state unchanged (data, ACKs, retransmissions), inv = "
      "rejected by the state machine (INVALID), exp = connections that expired idle in that "
      "state.</p></section>\n",
      rules::withThousands(total_moves), rules::withThousands(d.tcp_reopened));
}

// ---- connection table chart ----

void tableSection(Html& h, const ReportData& d) {
  const ReplaySummary& s = d.summary;
  h.raw("<section id=\"table\"><h2>Connection table over trace time</h2>");
  const double W = 1100, H = 280, ml = 64, mr = 20, mt = 14, mb = 46;
  const uint64_t t0 = s.first_ts_ns;
  uint64_t t1 = s.last_ts_ns;
  for (const TablePoint& p : d.table)
    t1 = std::max(t1, p.ts_ns);
  const double span = std::max(1e-9, secs(t1 > t0 ? t1 - t0 : 0));
  // A round step (1, 2 or 5 times a power of ten) giving at most five grid lines.
  double step = 1;
  for (double mag = 1; step == 1 && mag < 1e18; mag *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      if (static_cast<double>(d.table_peak) / (m * mag) <= 5) {
        step = m * mag;
        break;
      }
    }
    if (step != 1 || static_cast<double>(d.table_peak) <= 5) break;
  }
  const int ticks =
      std::max(1, static_cast<int>(std::ceil(static_cast<double>(d.table_peak) / step)));
  const double ymax = step * ticks;
  auto X = [&](uint64_t ts) { return ml + (W - ml - mr) * secs(ts > t0 ? ts - t0 : 0) / span; };
  auto Y = [&](double v) { return mt + (H - mt - mb) * (1 - v / ymax); };
  h.f("<div class=\"svgwrap\"><svg id=\"table-chart\" width=\"{:.0f}\" height=\"{:.0f}\" "
      "viewBox=\"0 0 {:.0f} {:.0f}\" role=\"img\"><title>Connection-table entries over trace "
      "time</title>",
      W, H, W, H);
  // Axes and grid.
  for (int i = 0; i <= ticks; ++i) {
    const double v = step * i;
    const double y = Y(v);
    h.f("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e3e7ee\"/>"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" font-size=\"11\" "
        "fill=\"#5b6475\">{}</text>",
        ml, y, W - mr, y, ml - 6, y + 4,
        rules::withThousands(static_cast<uint64_t>(std::llround(v))));
  }
  for (int i = 0; i <= 8; ++i) {
    const double x = ml + (W - ml - mr) * i / 8;
    h.f("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#c3cad6\"/>"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"11\" "
        "fill=\"#5b6475\">{:.{}f} s</text>",
        x, H - mb, x, H - mb + 5, x, H - mb + 18, span * i / 8, span < 8 ? 2 : 0);
  }
  h.f("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"11.5\" "
      "fill=\"#1d2330\">trace time since the first packet</text>",
      ml + (W - ml - mr) / 2, H - 8);
  // The step line.
  std::string pts = fmt::format("{:.1f},{:.1f}", X(t0), Y(0));
  double last_y = Y(0);
  for (const TablePoint& p : d.table) {
    const double x = X(p.ts_ns), y = Y(static_cast<double>(p.size));
    pts += fmt::format(" {:.1f},{:.1f} {:.1f},{:.1f}", x, last_y, x, y);
    last_y = y;
  }
  pts += fmt::format(" {:.1f},{:.1f}", X(t1), last_y);
  h.f("<polyline id=\"table-line\" points=\"{}\" fill=\"none\" stroke=\"#1565c0\" "
      "stroke-width=\"2\" data-points=\"{}\"/>",
      pts, d.table.size());
  // Idle expiries: one marker each when there are few; else a bar per time bucket, its height
  // growing with the count (log scale), so that floods of expiries stay readable.
  const bool each = d.expiries.size() == d.expiries_total;
  if (each) {
    for (const ExpiryEvent& e : d.expiries) {
      const double x = X(e.ts_ns);
      h.f("<path class=\"expiry\" d=\"M{:.1f} {:.1f}l-4 -8h8z\" fill=\"#c62828\" "
          "fill-opacity=\"0.75\"><title>idle timeout ({}) of connection #{} at {:.3f} s</title>"
          "</path>",
          x, H - mb - 1, rules::timeoutKeyName(e.key), e.conn_number,
          secs(e.ts_ns - std::min(e.ts_ns, t0)));
    }
  } else {
    uint64_t most = 1;
    for (const ExpiryBin& b : d.expiry_bins)
      most = std::max(most, b.count);
    for (const ExpiryBin& b : d.expiry_bins) {
      const double x0 = X(b.from_ns), x1 = std::max(x0 + 1.5, X(std::min(b.to_ns, t1)));
      const double hgt =
          3 + 22 * std::log1p(static_cast<double>(b.count)) / std::log1p(static_cast<double>(most));
      h.f("<rect class=\"expiry-bin\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" "
          "height=\"{:.1f}\" fill=\"#c62828\" fill-opacity=\"0.7\"><title>{} idle timeouts "
          "between {:.3f} s and {:.3f} s</title></rect>",
          x0, H - mb - hgt, x1 - x0, hgt, rules::withThousands(b.count), secs(b.from_ns - t0),
          secs(std::min(b.to_ns, t1) - t0));
    }
  }
  h.raw(
      "</svg></div><p class=\"legend\"><span><span class=\"swatch\" "
      "style=\"background:#1565c0\"></span>entries in the table</span><span><span "
      "class=\"swatch\" style=\"background:#c62828\"></span>idle timeouts fired (one marker each, "
      "or with many a bar per time slice, taller for more)</span></p>");
  std::string by_key;
  for (size_t k = 0; k < rules::kTimeoutKeyCount; ++k) {
    if (d.expiries_by_key[k] == 0) continue;
    by_key += fmt::format("{}{} {}", by_key.empty() ? "" : ", ",
                          rules::timeoutKeyName(static_cast<rules::TimeoutKey>(k)),
                          rules::withThousands(d.expiries_by_key[k]));
  }
  h.f("<p class=\"note\" id=\"table-how\">How the curve is computed: the replay does not expose "
      "the engine's table between bursts, so the page models it from the verdicts. +1 for every "
      "packet that created an entry ({} here; the engine counted {}). Every accepted packet of a "
      "connection (not INVALID, not a related ICMP error) pushes its idle deadline out by the "
      "policy's timeout for its state (TCP state after the packet, UDP one-way or stream, ICMP "
      "echo, other); when the trace clock passes a deadline with no packet, the entry leaves "
      "(a marker; {} idle expiries{}{}). A SYN that reopens a TIME_WAIT connection replaces its "
      "entry. Peak {}, {} entries at the end of the trace. The engine counted {} expiries: its "
      "sweep retires expired entries lazily, within about a second of trace time, and the "
      "replay sweeps once more at the last packet's time, so every connection idle past its "
      "timeout by then is counted. {}</p>",
      rules::withThousands(d.connections_created),
      rules::withThousands(s.engine.connections_created), rules::withThousands(d.expiries_total),
      by_key.empty() ? "" : ": ", by_key, rules::withThousands(d.table_peak),
      rules::withThousands(d.table_final), rules::withThousands(s.engine.connections_expired),
      d.expiries.size() < d.expiries_total
          ? fmt::format("With this many expiries the chart draws a bar per time slice ({} "
                        "slices hold expiries) rather than one marker each.",
                        d.expiry_bins.size())
          : std::string());
  h.raw("</section>\n");
}

void connectionsSection(Html& h, const ReportData& d) {
  h.raw("<section id=\"connections\"><h2>Connections</h2>");
  h.f("<p class=\"note\" id=\"conn-limits\">One card per connection with its ladder diagram: "
      "the originator on the left, the responder on the right, and between them the places "
      "where a packet is checked: the security groups at each protected interface, then the "
      "network ACL at the edge of each subnet (a side without groups or without an ACL is "
      "drawn faint). Each packet is an arrow coloured by its reason, labelled with its TCP "
      "flags and the state transition it caused, with its verdict at its head; a denied packet "
      "stops, crossed out, at the place that denied it. To stay fast on long traces "
      "the page lists the first {} of the trace's {} connections (by first packet), draws "
      "ladders for the first {} connections, at most {} packets each, and shows one page of "
      "cards at a time.{}</p>",
      rules::withThousands(d.connections.size()), rules::withThousands(d.connections_total),
      rules::withThousands(d.options.ladder_connections),
      rules::withThousands(d.options.ladder_arrows),
      glossaryNote({"originator", "security-group", "network-acl", "allow-and-deny-reasons",
                    "zeek-conn_state", "zeek-history"}));
  if (d.connections_forgotten_early > 0) {
    h.f("<p class=\"note\">{} flows without a connection were counted while still open: more "
        "such flows were open at once than the connection table holds, so the longest idle were "
        "let go to bound memory (a later packet of one counts as a new record).</p>",
        rules::withThousands(d.connections_forgotten_early));
  }
  h.raw("<p class=\"legend\">");
  for (size_t r = 0; r < kReasons; ++r) {
    h.raw("<span>");
    swatch(h, static_cast<Reason>(r));
    h.f("{}</span>", dataplane::kReasonCodes[r]);
  }
  h.raw(
      "<span><span class=\"swatch\" style=\"background:#fdeeee;outline:1px solid "
      "#e5b5b5\"></span>tinted row: a stateless filter would decide otherwise</span>");
  h.raw(
      "</p><div class=\"controls\"><input type=\"search\" id=\"conn-search\" "
      "placeholder=\"Filter: address, port, protocol, verdict or reason (e.g. 10.0.1.10 443 "
      "deny)\" aria-label=\"filter connections\"><label>per page <select "
      "id=\"conn-page-size\"><option>10</option><option>25</option><option>50</option>"
      "<option>100</option></select></label><button id=\"conn-prev\">\u2190 previous</button>"
      "<button id=\"conn-next\">next \u2192</button><span id=\"conn-status\" "
      "class=\"note\"></span></div><div id=\"conn-list\"></div>"
      "<noscript><p class=\"note\">The connection list needs JavaScript.</p></noscript>"
      "</section>\n");
}

}  // namespace

std::string htmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string scriptJsonString(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  auto u = [&out](unsigned cp) { out += fmt::format("\\u{:04x}", cp); };
  while (i < n) {
    const unsigned c = p[i];
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '<':
        case '>':
        case '&':
        case '\'':
          u(c);
          break;
        default:
          if (c < 0x20 || c == 0x7f) {
            u(c);
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    // A UTF-8 sequence: copied when well formed, else U+FFFD for the first byte.
    size_t len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
    bool ok = len != 0 && i + len <= n;
    unsigned cp = len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (p[i + k] & 0xC0) == 0x80;
      cp = cp << 6 | (p[i + k] & 0x3F);
    }
    if (ok && ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
               (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))) {
      ok = false;
    }
    if (!ok) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (cp == 0x2028 || cp == 0x2029) {
      u(cp);
    } else {
      out.append(s.substr(i, len));
    }
    i += len;
  }
  out.push_back('"');
  return out;
}

std::string renderReportHtml(const ReportData& d) {
  Html h;
  h.raw(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\"><title>");
  h.text(d.options.title);
  h.raw("</title><style>");
  h.raw(detail::kReportCss);
  h.raw("</style></head><body>\n");
  header(h, d);
  h.raw("<main>");
  summarySection(h, d);
  policySection(h, d);
  contrastSection(h, d);
  tcpSection(h, d);
  tableSection(h, d);
  connectionsSection(h, d);
  h.raw("</main>\n<script type=\"application/json\" id=\"report-data\">");
  h.raw(dataBlob(d));
  h.raw("</script>\n<script>");
  h.raw(detail::kReportJs);
  h.raw("</script>\n</body></html>\n");
  return h.str();
}

}  // namespace statewall::sim
