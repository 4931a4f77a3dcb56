#include "statewall/sim/explain.hpp"

#include <algorithm>
#include <array>
#include <set>
#include <tuple>
#include <unordered_map>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "conn_tracker.hpp"
#include "encap_cursor.hpp"
#include "explain_words.hpp"
#include "statewall/dataplane/tcp_tracker.hpp"
#include "statewall/rules/vocab.hpp"
#include "statewall/rules/vocab_json.hpp"
#include "statewall/sim/flow_text.hpp"
#include "statewall/sim/glossary.hpp"
#include "statewall/sim/stateless.hpp"

namespace statewall::sim {

using dataplane::L3;
using dataplane::ParsedPacket;
using dataplane::Reason;
using dataplane::TcpState;
using dataplane::Verdict;
using rules::CheckKind;
using rules::CompiledPolicy;
using rules::Direction;
using rules::Flow5;
using rules::IpAddr;
using rules::RuleId;
using Json = nlohmann::ordered_json;

namespace {

std::string endpointStr(const IpAddr& a, uint16_t port) {
  return rules::endpointText(a, port);
}

// The set flags' letters (rules::tcpFlagLetters); "none" when no flag is set.
std::string tcpFlagsStr(uint8_t fl) {
  std::string s = rules::tcpFlagLetters(fl);
  return s.empty() ? "none" : s;
}

Flow5 reverseFlow(const Flow5& f) {
  Flow5 r = f;
  r.src = f.dst;
  r.dst = f.src;
  r.sport = f.dport;
  r.dport = f.sport;
  return r;
}

std::string capitalized(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

}  // namespace

// ---- explanations ----

namespace {

struct ConnMemo {
  uint64_t number = 0;
  uint64_t engine_id = 0;
  uint64_t first_index = 0;
  uint64_t last_ts_ns = 0;  // its last packet that the engine accepted
  // The engine's facts of the connection after its latest packet (dataplane/conn_facts.hpp): its
  // tracked sides, timeout class, stream promotion, the rule that opened it.
  dataplane::ConnectionInfo facts;
};

std::string fmtSeconds(uint64_t ns) {
  return fmt::format("{}.{:06}", ns / 1000000000ull, (ns % 1000000000ull) / 1000ull);
}

// Wraps `text` at `width` columns; the first line starts after `first` (already printed), the
// others with `indent` spaces.
std::string wrap(const std::string& text, size_t first, size_t indent, size_t width = 100) {
  std::string out;
  size_t col = first;
  size_t i = 0;
  bool line_start = true;
  while (i < text.size()) {
    size_t j = text.find(' ', i);
    if (j == std::string::npos) j = text.size();
    const std::string word = text.substr(i, j - i);
    if (!line_start && col + 1 + word.size() > width) {
      out += "\n" + std::string(indent, ' ');
      col = indent;
      line_start = true;
    }
    if (!line_start) {
      out += ' ';
      ++col;
    }
    out += word;
    col += word.size();
    line_start = false;
    i = j + 1;
  }
  return out;
}

}  // namespace

struct Explainer::Impl {
  rules::CompiledPolicyPtr policy;
  ExplainOptions opt;
  Replay replay;
  NearMissSearch near;
  ExplainStats stats;
  const Sink* sink = nullptr;

  detail::EncapCursor frames;  // the frames' encapsulation headers (the observer has no frame)
  std::unordered_map<uint64_t, ConnMemo> conns;  // by engine id
  // The bidirectional flow (the connection log's key) -> engine id of its latest connection.
  std::unordered_map<FlowKey, uint64_t, detail::FlowKeyHash, detail::FlowKeyEq> by_flow;

  Impl(rules::CompiledPolicyPtr p, ExplainOptions o)
      : policy(std::move(p)), opt(std::move(o)), replay(policy, replayOptions(opt)), near(*policy) {
    replay.setObserver(
        [this](uint64_t index, uint64_t ts, const Verdict& v, const ParsedPacket& pp,
               const dataplane::ConnectionInfo& conn) { observe(index, ts, v, pp, conn); });
  }

  static ReplayOptions replayOptions(const ExplainOptions& o) {
    ReplayOptions r;
    r.pass_non_ip = o.pass_non_ip;
    r.table_capacity = o.table_capacity;
    r.parse = o.parse;
    return r;
  }

  const CompiledPolicy& cp() const { return *policy; }

  // ---- selection ----

  // Datagrams whose first fragment the flow pattern selected: their later fragments (which carry
  // no ports) are selected too. Bounded: forgotten wholesale when it grows large.
  std::set<std::tuple<IpAddr, IpAddr, uint32_t, uint8_t>> datagrams;

  bool selected(uint64_t index, const ParsedPacket& p) {
    if (opt.packets.empty() && !opt.flow) return true;
    for (const auto& [lo, hi] : opt.packets)
      if (index >= lo && index <= hi) return true;
    if (!opt.flow || (p.l3 != L3::kIpv4 && p.l3 != L3::kIpv6)) return false;
    if (p.is_fragment && !p.first_fragment) {
      return datagrams.count({p.src, p.dst, p.frag_id, p.proto}) != 0;
    }
    const bool hit = flowMatches(p);
    if (hit && p.is_fragment) {
      if (datagrams.size() >= 65536) datagrams.clear();
      datagrams.insert({p.src, p.dst, p.frag_id, p.proto});
    }
    return hit;
  }

  bool flowMatches(const ParsedPacket& p) const {
    const FlowPattern& f = *opt.flow;
    if (f.matches(p.proto, p.src, p.dst, p.sport, p.dport, p.icmp_type, p.icmp_code)) return true;
    FlowPattern any_type = f;
    any_type.icmp_type = any_type.icmp_code = -1;
    if (any_type.matches(p.proto, p.dst, p.src, p.dport, p.sport, p.icmp_type, p.icmp_code)) {
      return true;
    }
    if (p.icmp_is_error && p.quoted.present) {
      const dataplane::QuotedHeader& q = p.quoted;
      return any_type.matches(q.proto, q.src, q.dst, q.sport, q.dport, 0, 0) ||
             any_type.matches(q.proto, q.dst, q.src, q.dport, q.sport, 0, 0);
    }
    return false;
  }

  void observe(uint64_t index, uint64_t ts, const Verdict& v, const ParsedPacket& p,
               const dataplane::ConnectionInfo& conn) {
    ++stats.packets;
    if (stats.packets == 1) stats.first_ts_ns = ts;
    const bool judged = hasRulesAloneVerdict(p, v);
    // The connection as it was before this packet, and an earlier connection of the same tuple.
    std::optional<ConnMemo> before;
    std::optional<ConnMemo> earlier;
    if (judged) {
      if (v.conn_id != 0 && !(v.flags & dataplane::kFlagNewConnection) && !p.icmp_is_error) {
        auto it = conns.find(v.conn_id);
        if (it != conns.end()) before = it->second;
      }
      auto t = by_flow.find(detail::ConnTracker::flowKeyOf(p));
      if (t != by_flow.end() && t->second != v.conn_id) {
        auto it = conns.find(t->second);
        if (it != conns.end()) earlier = it->second;
      }
    }
    const bool sel = selected(index, p);
    if (judged) remember(index, ts, v, p, conn);
    if (!sel) return;
    ++stats.selected;
    if (opt.limit != 0 && stats.shown >= opt.limit) return;
    ++stats.shown;
    PacketExplanation e = explain(index, ts, v, p, judged, before, earlier);
    if (sink != nullptr && *sink) (*sink)(e);
  }

  // ---- connection memory ----

  void remember(uint64_t index, uint64_t ts, const Verdict& v, const ParsedPacket& p,
                const dataplane::ConnectionInfo& conn) {
    if (v.conn_id == 0 || p.icmp_is_error) return;  // an error is about a connection, not of it
    auto it = conns.find(v.conn_id);
    if ((v.flags & dataplane::kFlagNewConnection) || it == conns.end()) {
      ConnMemo m;
      // The replay's number, the one its other outputs and the report show.
      m.number = replay.connectionNumber(v.conn_id);
      m.engine_id = v.conn_id;
      m.first_index = index;
      it = conns.insert_or_assign(v.conn_id, std::move(m)).first;
      by_flow[detail::ConnTracker::flowKeyOf(p)] = v.conn_id;
    }
    ConnMemo& m = it->second;
    if (conn.id == v.conn_id) {
      m.facts = conn;
    } else if (v.tcp_after != TcpState::kNone) {
      m.facts.tcp_state = v.tcp_after;  // the entry is gone (a reset before any reply)
    }
    if (!v.allowed() || (v.flags & dataplane::kFlagTcpInvalid)) return;
    m.last_ts_ns = ts;
  }

  // The interfaces whose groups track the connection.
  std::vector<std::string> trackedSides(const ConnMemo& m) const {
    std::vector<std::string> out;
    auto add = [&](const rules::IpAddr& a) {
      const rules::IfaceId i = cp().interfaceOf(a);
      if (i != rules::kNoIface) out.push_back(cp().iface(i).name);
    };
    if (m.facts.srcSideTracks()) add(m.facts.orig_src);
    if (m.facts.dstSideTracks()) add(m.facts.orig_dst);
    return out;
  }

  // ---- texts and JSON pieces ----

  std::string ruleLabel(RuleId r) const {
    if (r == rules::kNoRule || r >= cp().ruleCount()) return "no rule";
    return rules::ruleLabelLong(cp().rule(r));
  }
  Json ruleJson(RuleId r) const {
    if (r == rules::kNoRule || r >= cp().ruleCount()) return nullptr;
    const rules::RuleInfo& ri = cp().rule(r);
    Json j = rules::ruleJson<Json>(ri);
    j["description"] = ri.description;
    return j;
  }
  std::string aclLabel(rules::AclEntryId e) const {
    const rules::AclEntryInfo& ai = cp().aclEntry(e);
    return fmt::format("rule {} '{}'", ai.ruleNumberStr(), rules::aclEntryTextWithoutNumber(ai));
  }
  Json aclJson(rules::AclEntryId e) const {
    if (e == rules::kNoAclEntry || e >= cp().aclEntryCount()) return nullptr;
    return rules::aclEntryJson<Json>(cp().aclEntry(e));
  }
  std::string groupsStr(rules::IfaceId i) const {
    std::string s;
    for (const auto& g : cp().iface(i).group_names)
      s += (s.empty() ? "" : ", ") + g;
    return s.empty() ? "no groups" : "groups " + s;
  }
  std::string ifaceWords(rules::IfaceId i) const {
    const rules::InterfaceInfo& itf = cp().iface(i);
    return fmt::format(
        "{}: {}, {}", itf.name,
        itf.subnet == rules::kNoSubnet ? "no subnet" : "subnet " + cp().subnet(itf.subnet).name,
        groupsStr(i));
  }
  Json sideJson(const IpAddr& a, rules::IfaceId i) const {
    Json j = {{"address", a.str()}};
    if (i == rules::kNoIface) {
      j["interface"] = nullptr;
      return j;
    }
    const rules::InterfaceInfo& itf = cp().iface(i);
    j["interface"] = itf.name;
    j["subnet"] =
        itf.subnet == rules::kNoSubnet ? Json(nullptr) : Json(cp().subnet(itf.subnet).name);
    j["groups"] = itf.group_names;
    return j;
  }
  Json connJson(const ConnMemo& m, bool reply) const {
    return Json{{"number", m.number},
                {"engine_id", m.engine_id},
                {"opened_by_packet", m.first_index},
                {"rule", ruleJson(m.facts.opened_by)},
                {"reply", reply}};
  }
  // The idle timeout that applies to a connection, as the engine refreshes it (an interface's
  // override included); the policy's when the engine no longer holds the connection.
  uint32_t timeoutSeconds(const dataplane::ConnectionInfo& c) const {
    return c.timeout_s != 0 ? c.timeout_s : cp().timeouts().get(c.timeoutKey());
  }
  std::string timeoutWords(const dataplane::ConnectionInfo& c) const {
    return fmt::format("{}, {} s", rules::timeoutKeyName(c.timeoutKey()), timeoutSeconds(c));
  }
  Json timeoutJson(const dataplane::ConnectionInfo& c) const {
    return Json{{"key", rules::timeoutKeyName(c.timeoutKey())}, {"seconds", timeoutSeconds(c)}};
  }

  // "the security groups of db-1 (outbound): no outbound rule allows tcp port 42000 to 10.0.2.10"
  std::string sgDenyWords(const rules::Check& c, const Flow5& f) const {
    const bool in = c.dir == Direction::kInbound;
    const std::string dir(rules::directionName(c.dir));
    return fmt::format("no {} rule of {} ({}) allows {} {} {}", dir, cp().iface(c.iface).name,
                       groupsStr(c.iface), detail::packetWords(f), in ? "from" : "to",
                       (in ? f.src : f.dst).str());
  }
  std::string checkName(const rules::Check& c) const {
    const std::string dir(rules::directionName(c.dir));
    if (c.kind == CheckKind::kSg) {
      return fmt::format("the security groups of {} ({})", cp().iface(c.iface).name, dir);
    }
    const rules::AclEntryInfo& ai = cp().aclEntry(c.acl.entry);
    return fmt::format("network ACL {} ({})", ai.acl_name, dir);
  }
  std::string checkVerdictWords(const rules::Check& c, const Flow5& f) const {
    if (c.kind == CheckKind::kSg) {
      if (c.sg.allowed()) return fmt::format("{} allows it", ruleLabel(c.sg.rule));
      return sgDenyWords(c, f);
    }
    const rules::AclEntryInfo& ai = cp().aclEntry(c.acl.entry);
    if (ai.rule_number == 0) return "no numbered rule matches; the default rule * denies it";
    return fmt::format("{} {} it", aclLabel(c.acl.entry), ai.allow ? "allows" : "denies");
  }

  std::string summaryOf(const ParsedPacket& p, bool judged) const {
    if (p.l3 == L3::kArp) return fmt::format("arp {} -> {}", p.src.str(), p.dst.str());
    if (p.l3 == L3::kOther) return "non-ip frame";
    std::string proto = rules::protoName(p.proto);
    if (p.malformed != dataplane::Layer::kNone && p.src == IpAddr{} && p.dst == IpAddr{}) {
      return "unparsable frame";
    }
    const bool ports = (p.proto == dataplane::kIpProtoTcp || p.proto == dataplane::kIpProtoUdp) &&
                       judged && (!p.is_fragment || p.first_fragment);
    std::string s = ports ? fmt::format("{} {} -> {}", proto, endpointStr(p.src, p.sport),
                                        endpointStr(p.dst, p.dport))
                          : fmt::format("{} {} -> {}", proto, p.src.str(), p.dst.str());
    if (!judged) return s;
    if (p.proto == dataplane::kIpProtoTcp) s += " flags " + tcpFlagsStr(p.tcp_flags);
    if (p.proto == dataplane::kIpProtoIcmp || p.proto == dataplane::kIpProtoIcmpv6) {
      const std::string name = icmpName(p.family == rules::Family::kV6, p.icmp_type, p.icmp_code);
      s += name.empty() ? "" : " " + name;
      s += fmt::format(" (type {} code {})", p.icmp_type, p.icmp_code);
      if (p.icmp_is_query_request || p.icmp_is_query_reply) s += fmt::format(" id {}", p.icmp_id);
    }
    return s;
  }

  Json packetJson(const ParsedPacket& p) const {
    Json j;
    if (p.l3 == L3::kArp) {
      j["proto"] = "arp";
    } else if (p.l3 == L3::kOther) {
      j["proto"] = "non-ip";
      return j;
    } else {
      j["proto"] = rules::protoName(p.proto);
    }
    if (p.malformed != dataplane::Layer::kNone) {
      // Only what the parser got to before the damage.
      if (p.proto == 0) j["proto"] = nullptr;
      if (p.src == IpAddr{} && p.dst == IpAddr{}) return j;
    }
    j["src"] = p.src.str();
    j["dst"] = p.dst.str();
    if (p.l3 == L3::kArp || p.malformed != dataplane::Layer::kNone) return j;
    if (p.proto == dataplane::kIpProtoTcp || p.proto == dataplane::kIpProtoUdp) {
      j["sport"] = p.sport;
      j["dport"] = p.dport;
    }
    if (p.proto == dataplane::kIpProtoTcp) j["tcp_flags"] = tcpFlagsStr(p.tcp_flags);
    if (p.proto == dataplane::kIpProtoIcmp || p.proto == dataplane::kIpProtoIcmpv6) {
      j["icmp_type"] = p.icmp_type;
      j["icmp_code"] = p.icmp_code;
      if (p.icmp_is_query_request || p.icmp_is_query_reply) j["icmp_id"] = p.icmp_id;
    }
    j["ip_len"] = p.ip_len;
    return j;
  }

  // ---- the explanation of one packet ----

  struct Builder {
    PacketExplanation* e;
    Json* steps;
    void add(const std::string& kind, const std::string& text, Json extra = Json::object()) {
      e->steps.push_back(ExplainStep{kind, text});
      Json s = {{"kind", kind}, {"text", text}};
      for (auto& [k, val] : extra.items())
        s[k] = std::move(val);
      steps->push_back(std::move(s));
    }
  };

  PacketExplanation explain(uint64_t index, uint64_t ts, const Verdict& v, const ParsedPacket& p,
                            bool judged, const std::optional<ConnMemo>& before,
                            const std::optional<ConnMemo>& earlier) {
    ts_now_ = ts;
    PacketExplanation e;
    e.index = index;
    e.ts_ns = ts;
    e.reason = v.reason;
    e.summary = summaryOf(p, judged);
    Json steps = Json::array();
    Json near_json = Json::array();
    Json stateless_json = nullptr;
    Json conn_json = nullptr;
    Json direction_json = nullptr;
    Builder b{&e, &steps};
    const std::vector<dataplane::EncapHeader> encap =
        frames.headers(index, p.tunnel_depth, opt.parse);
    explainEncapsulation(b, encap, p);
    const ConnMemo* memo = nullptr;
    if (v.conn_id != 0) {
      auto it = conns.find(v.conn_id);
      if (it != conns.end()) memo = &it->second;
    }
    const bool reply = (v.flags & dataplane::kFlagReply) != 0;
    if (memo != nullptr && judged) {
      e.connection = memo->number;
      conn_json = connJson(*memo, reply && !p.icmp_is_error);
    }

    if (!judged) {
      explainUnjudged(b, v, p);
      if (opt.contrast) {
        e.stateless = v.reason;
        e.stateless_text = fmt::format(
            "A stateless filter with the same rules has nothing else to judge it by: the same "
            "({}).",
            dataplane::reasonCode(v.reason));
        stateless_json = Json{{"verdict", v.allowed() ? "allow" : "deny"},
                              {"reason", dataplane::reasonCode(v.reason)},
                              {"changed", false},
                              {"text", e.stateless_text}};
      }
    } else {
      const Flow5 f = dataplane::ruleFlowOf(p);
      rules::Evaluation ev;
      rules::evaluate(cp(), f, rules::EvalMode::kFull, &ev);
      direction_json = ev.unprotected                         ? "unprotected"
                       : ev.src_protected && ev.dst_protected ? "internal"
                       : ev.src_protected                     ? "outbound"
                                                              : "inbound";
      explainJudged(b, e, near_json, v, p, f, ev, memo, before, earlier);
      if (opt.contrast) stateless_json = contrast(e, v, f, ev, memo);
    }

    if (opt.json) {
      Json j;
      j["index"] = index;
      j["ts"] = Json::parse(fmtSeconds(ts));
      j["t"] = Json::parse(fmtSeconds(ts - stats.first_ts_ns));
      j["packet"] = packetJson(p);
      if (!encap.empty()) {
        Json names = Json::array();
        for (const auto& h : encap)
          names.push_back(dataplane::encapText(h));
        j["packet"]["encap"] = std::move(names);
      }
      j["summary"] = e.summary;
      j["verdict"] = v.allowed() ? "allow" : "deny";
      j["reason"] = dataplane::reasonCode(v.reason);
      j["direction"] = direction_json;
      j["connection"] = conn_json;
      j["steps"] = std::move(steps);
      j["near_misses"] = std::move(near_json);
      j["stateless"] = std::move(stateless_json);
      e.json = j.dump(2, ' ', false, Json::error_handler_t::replace);
    }
    if (opt.text) e.text = formatText(e, ts);
    return e;
  }

  // The headers around the packet judged (docs/design.md "Encapsulation and tunnels"): layer-2.5
  // headers are always unwrapped; with --decap the packet inside the tunnels is judged; without
  // it, the outer packet of a tunnel is judged as itself.
  void explainEncapsulation(Builder& b, const std::vector<dataplane::EncapHeader>& hs,
                            const ParsedPacket& p) const {
    std::vector<std::string> sentences;
    Json names = Json::array();
    Json tunnels = Json::array();
    bool tunnel = false;
    for (const auto& h : hs) {
      names.push_back(dataplane::encapText(h));
      if (!dataplane::encapIsTunnel(h.kind)) continue;
      tunnel = true;
      Json t = {{"header", dataplane::encapText(h)}};
      if (h.has_outer) {
        Json o = {{"proto", rules::protoName(h.proto)}, {"src", h.src.str()}, {"dst", h.dst.str()}};
        if (h.proto == dataplane::kIpProtoUdp) {
          o["sport"] = h.sport;
          o["dport"] = h.dport;
        }
        t["outer"] = std::move(o);
      }
      tunnels.push_back(std::move(t));
    }
    if (tunnel) {
      sentences.push_back(capitalized(detail::encapPhrase(hs)) +
                          " (--decap: the packet inside the tunnel is judged, as a firewall at "
                          "the tunnel's end sees it).");
    } else if (!hs.empty()) {
      sentences.push_back(
          fmt::format("The frame carries {}: layer-2.5 headers are always "
                      "unwrapped, and the IP packet inside is what is judged.",
                      detail::encapList(hs)));
    }
    // The outer packet of a tunnel, judged as itself (no --decap).
    std::string carried;
    dataplane::EncapHeader::Kind kind{};
    if (p.tunnel_depth == 0 && !opt.parse.decap && p.malformed == dataplane::Layer::kNone) {
      if (p.proto == dataplane::kIpProtoUdp && (!p.is_fragment || p.first_fragment) &&
          opt.parse.udpTunnel(p.sport, p.dport, &kind)) {
        carried = fmt::format("{} (UDP port {})", dataplane::encapKindName(kind),
                              opt.parse.udpTunnel(0, p.dport, &kind) ? p.dport : p.sport);
      } else if (p.proto == dataplane::kIpProtoGre) {
        carried = "GRE";
      } else if (p.proto == dataplane::kIpProtoIpIp || p.proto == dataplane::kIpProtoIpv6) {
        carried = "IP-in-IP";
      }
    }
    if (!carried.empty()) {
      sentences.push_back(fmt::format(
          "It carries a {} tunnel: without --decap the outer packet is what is judged, as a "
          "firewall on the tunnel's path sees it; --decap judges the packet inside.",
          carried));
    }
    if (sentences.empty()) return;
    std::string text;
    for (const auto& x : sentences)
      text += (text.empty() ? "" : " ") + x;
    Json extra = {{"headers", std::move(names)}, {"tunnels", std::move(tunnels)}};
    if (!carried.empty()) extra["outer_of"] = carried;
    b.add("encapsulation", text, std::move(extra));
  }

  void explainUnjudged(Builder& b, const Verdict& v, const ParsedPacket& p) {
    if (v.reason == Reason::kAllowExempt) {
      const std::string name(rules::exemptionName(v.exemption));
      const std::string words(rules::exemptionWords(v.exemption));
      if (v.flags & dataplane::kFlagControl) {
        b.add("exempt",
              fmt::format("{} is exempt: {} passes without any rule, whatever the policy says "
                          "(allow-exempt, exemption {}).",
                          capitalized(words),
                          p.l3 == L3::kArp ? "address resolution"
                                           : "valid neighbour discovery (hop limit 255, RFC 4861)",
                          name),
              Json{{"exemption", name}});
        return;
      }
      const rules::IfaceId si = cp().interfaceOf(p.src);
      const rules::IfaceId iface = si != rules::kNoIface ? si : cp().interfaceOf(p.dst);
      const std::string who = iface != rules::kNoIface ? cp().iface(iface).name : "an interface";
      const std::string service_addr =
          si != rules::kNoIface || p.src.v4() == 0 ? p.dst.str() : p.src.str();
      b.add("exempt",
            fmt::format("Exempt: traffic between {} and {} ({}) passes without any security-group "
                        "or network-ACL rule, as AWS does for the VPC's own services "
                        "(allow-exempt, exemption {}). The policy's 'exempt: false' turns this "
                        "off.",
                        who, words, service_addr, name),
            Json{{"exemption", name}, {"interface", who}, {"service", service_addr}});
      return;
    }
    // A fragment the engine's fragment record refused (it parsed; docs/design.md "Fragments"):
    // its first fragment was not seen, or it repeats or overlaps bytes of its datagram.
    if (v.reason == Reason::kDenyMalformed && v.malformed_layer == dataplane::Layer::kFragment &&
        p.malformed == dataplane::Layer::kNone) {
      const std::string what = (v.flags & dataplane::kFlagFragment)
                                   ? fmt::format("A later fragment (IP id {}, offset {} bytes)",
                                                 p.frag_id, p.frag_offset * 8u)
                                   : fmt::format("A first fragment (IP id {})", p.frag_id);
      const std::string why = v.why != nullptr ? v.why : "refused by the fragment record";
      b.add("malformed",
            fmt::format("{} is denied (deny-malformed) before any rule or connection sees it: {}. "
                        "This is not a matter of the policy: no rule would pass it.",
                        what, why),
            Json{{"layer", "fragment"}, {"why", why}});
      return;
    }
    if (v.flags & dataplane::kFlagFragment) {
      b.add("fragment",
            fmt::format("A later fragment (IP id {}, offset {} bytes): it carries no ports of its "
                        "own, so it takes the verdict of its datagram's first fragment ({}).",
                        p.frag_id, p.frag_offset * 8u, dataplane::reasonCode(v.reason)));
      return;
    }
    if (p.l3 == L3::kOther && v.reason == Reason::kAllowUnprotected) {
      b.add("unprotected", "Not an IP packet; --pass-non-ip lets such frames pass.",
            Json{{"allowed", true}});
      return;
    }
    const std::string layer(dataplane::layerName(v.malformed_layer));
    b.add("malformed",
          fmt::format("It cannot be parsed at the {} layer: {}. A packet the engine cannot read is "
                      "denied (deny-malformed) before any rule is consulted.",
                      layer, v.why != nullptr ? v.why : "malformed"),
          Json{{"layer", layer}, {"why", v.why != nullptr ? v.why : ""}});
  }

  void explainJudged(Builder& b, PacketExplanation& e, Json& near_json, const Verdict& v,
                     const ParsedPacket& p, const Flow5& f, const rules::Evaluation& ev,
                     const ConnMemo* memo, const std::optional<ConnMemo>& before,
                     const std::optional<ConnMemo>& earlier) {
    const bool reply = (v.flags & dataplane::kFlagReply) != 0;
    const bool invalid = (v.flags & dataplane::kFlagTcpInvalid) != 0;
    const bool tcp = p.proto == dataplane::kIpProtoTcp;

    // 1. Direction.
    {
      std::string text;
      if (ev.unprotected) {
        text = fmt::format(
            "Unprotected: neither {} nor {} is a protected interface address; the policy's "
            "'unprotected: {}' decides.",
            f.src.str(), f.dst.str(), cp().unprotectedAllow() ? "allow" : "deny");
      } else {
        auto side = [&](const IpAddr& a, rules::IfaceId i) {
          return i == rules::kNoIface ? fmt::format("{} (not a protected address)", a.str())
                                      : fmt::format("{} ({})", a.str(), ifaceWords(i));
        };
        const char* what = ev.src_protected && ev.dst_protected
                               ? "Internal: both sides are protected and both must allow it"
                           : ev.src_protected ? "Outbound"
                                              : "Inbound";
        text = fmt::format("{}: from {} to {}.", what, side(f.src, ev.src_iface),
                           side(f.dst, ev.dst_iface));
        if (ev.src_protected && ev.dst_protected) {
          text += " The source's outbound checks come first, then the destination's inbound ones.";
        }
      }
      b.add("direction", text,
            Json{{"source", sideJson(f.src, ev.src_iface)},
                 {"destination", sideJson(f.dst, ev.dst_iface)}});
    }

    // 2. An earlier connection of the same tuple that timed out.
    if (earlier && (v.conn_id == 0 || (v.flags & dataplane::kFlagNewConnection)) &&
        ts_now_ > earlier->last_ts_ns) {
      const uint64_t idle = ts_now_ - earlier->last_ts_ns;
      if (idle > uint64_t{timeoutSeconds(earlier->facts)} * 1000000000ull) {
        b.add("expired",
              fmt::format("Connection #{} of these addresses and ports (opened by packet {}) is "
                          "gone: its last packet was {} s before this one, longer than its idle "
                          "timeout ({}). The engine judges this packet as a first packet.",
                          earlier->number, earlier->first_index, fmtSeconds(idle),
                          timeoutWords(earlier->facts)),
              Json{{"connection", connJson(*earlier, false)},
                   {"idle_seconds", Json::parse(fmtSeconds(idle))},
                   {"timeout", timeoutJson(earlier->facts)}});
      }
    }

    // 3. Which checks the engine ran.
    std::array<bool, 4> ran{};
    // An ICMP error related to a connection (even when an ACL denies it) meets no security group:
    // the engine records its connection in conn_id (Verdict::conn_id).
    const bool related = p.icmp_is_error && v.conn_id != 0;
    const bool strict_invalid = v.reason == Reason::kDenyInvalid;
    bool src_tracked = false, dst_tracked = false;
    if (before && !invalid) {
      src_tracked = reply ? before->facts.dst_side_tracked : before->facts.src_side_tracked;
      dst_tracked = reply ? before->facts.src_side_tracked : before->facts.dst_side_tracked;
      const bool help = (ev.src_protected && src_tracked) || (ev.dst_protected && dst_tracked);
      if (!reply && !help) src_tracked = dst_tracked = false;  // judged as a first packet
    }
    for (int i = 0; i < ev.n_checks; ++i) {
      const rules::Check& c = ev.checks[static_cast<size_t>(i)];
      if (strict_invalid) {
        ran[static_cast<size_t>(i)] = false;
      } else if (c.kind == CheckKind::kAcl) {
        ran[static_cast<size_t>(i)] = true;
      } else if (related) {
        ran[static_cast<size_t>(i)] = false;
      } else {
        const bool tracked_side = c.dir == Direction::kOutbound ? src_tracked : dst_tracked;
        ran[static_cast<size_t>(i)] = !tracked_side;
      }
    }
    // The check that denied it: the one the verdict names (the engine's own record), else the
    // first check that ran and said no.
    int decisive = -1;
    if (v.reason == Reason::kDenyAcl || v.reason == Reason::kDenySg) {
      for (int i = 0; i < ev.n_checks && decisive < 0; ++i) {
        const rules::Check& c = ev.checks[static_cast<size_t>(i)];
        const bool named =
            c.kind == CheckKind::kAcl
                ? v.reason == Reason::kDenyAcl && c.acl.entry == v.acl_entry
                : v.reason == Reason::kDenySg && c.iface == v.deny_iface && c.dir == v.deny_dir;
        if (named && !c.allowed) {
          decisive = i;
          ran[static_cast<size_t>(i)] = true;
        }
      }
      for (int i = 0; i < ev.n_checks && decisive < 0; ++i) {
        if (ran[static_cast<size_t>(i)] && !ev.checks[static_cast<size_t>(i)].allowed) decisive = i;
      }
    }

    // 4. The connection the packet belongs to, and the TCP state machine.
    if (p.is_nd) {
      b.add("nd-invalid",
            fmt::format("IPv6 neighbour discovery, but not valid (RFC 4861): {}. Only valid "
                        "neighbour discovery is exempt; this packet is judged by the rules like "
                        "any ICMPv6 packet.",
                        dataplane::ndProblemText(p.nd_problem)),
            Json{{"problem", dataplane::ndProblemText(p.nd_problem)}});
    }
    if (p.icmp_is_error && !related) {
      const std::string why = v.why != nullptr ? v.why : "it quotes no tracked connection";
      b.add("not-related",
            fmt::format("An ICMP error, but not related to any connection: {}. It is judged by the "
                        "rules like any ICMP packet.",
                        why),
            Json{{"why", why}});
    }
    // The groups a connection spares the packet: the related error's (all of them) or the tracked
    // sides'. When a check before them (an arriving packet's subnet ACL) denies the packet, they
    // are not reached (docs/design.md "Direction"): narrated after that check, in the engine's
    // order, saying what they would have done, never which rule the packet lacks.
    const bool spared_steps = related || (before && !invalid && !strict_invalid);
    int first_sg = -1;
    for (int i = 0; i < ev.n_checks && first_sg < 0; ++i) {
      if (ev.checks[static_cast<size_t>(i)].kind == CheckKind::kSg) first_sg = i;
    }
    auto reachedAt = [&](int i) { return decisive < 0 || i <= decisive; };
    auto groupsWords = [&](const rules::Check& c) {
      return fmt::format("The security groups of {} ({})", cp().iface(c.iface).name,
                         rules::directionName(c.dir));
    };
    auto relatedStep = [&](bool reached) {
      const dataplane::QuotedHeader& q = p.quoted;
      const std::string quoted =
          (q.proto == dataplane::kIpProtoTcp || q.proto == dataplane::kIpProtoUdp)
              ? fmt::format("{} {} -> {}", rules::protoName(q.proto), endpointStr(q.src, q.sport),
                            endpointStr(q.dst, q.dport))
              : fmt::format("{} {} -> {}", rules::protoName(q.proto), q.src.str(), q.dst.str());
      std::string conn =
          memo != nullptr
              ? fmt::format("connection #{}, opened by packet {} under {}", memo->number,
                            memo->first_index, ruleLabel(memo->facts.opened_by))
              : fmt::format("a tracked connection (engine id {})", v.conn_id);
      Json qj = {{"proto", rules::protoName(q.proto)}, {"src", q.src.str()}, {"dst", q.dst.str()}};
      if (q.proto == dataplane::kIpProtoTcp || q.proto == dataplane::kIpProtoUdp) {
        qj["sport"] = q.sport;
        qj["dport"] = q.dport;
      }
      const std::string text =
          reached ? fmt::format(
                        "An ICMP error quoting {}, a packet of {}, sent back to that "
                        "packet's sender: it is related traffic and needs no "
                        "security-group rule (network ACLs still apply).",
                        quoted, conn)
                  : fmt::format(
                        "(not reached) {}: as an ICMP error quoting {}, a packet of {}, "
                        "sent back to that packet's sender, it would be related traffic "
                        "there and need no rule.",
                        groupsWords(ev.checks[static_cast<size_t>(first_sg)]), quoted, conn);
      b.add("related", text,
            Json{{"connection", memo != nullptr ? connJson(*memo, false) : Json(nullptr)},
                 {"quoted", qj},
                 {"reached", reached}});
    };
    auto trackedStep = [&](const rules::Check& c, bool reached) {
      const std::string name = cp().iface(c.iface).name;
      const std::string conn =
          fmt::format("{} connection #{}, opened by packet {} under {}",
                      reply ? "a reply on" : "a packet continuing", before->number,
                      before->first_index, ruleLabel(before->facts.opened_by));
      const std::string text =
          reached ? fmt::format("{} are not consulted: this is {}.", groupsWords(c), conn)
                  : fmt::format("(not reached) {}: as {}, it would pass them without any rule.",
                                groupsWords(c), conn);
      b.add("tracked", text,
            Json{{"interface", name},
                 {"direction", rules::directionName(c.dir)},
                 {"connection", connJson(*before, reply)},
                 {"reached", reached}});
    };
    // The spared groups of check i (not run), if they get a step of their own there.
    auto sparedStepAt = [&](int i, bool reached) {
      const rules::Check& c = ev.checks[static_cast<size_t>(i)];
      if (!spared_steps || c.kind != CheckKind::kSg || ran[static_cast<size_t>(i)]) return;
      if (reachedAt(i) != reached) return;
      if (related) {
        if (i == first_sg) relatedStep(reached);
      } else {
        trackedStep(c, reached);
      }
    };
    if (related && first_sg < 0) relatedStep(true);
    for (int i = 0; i < ev.n_checks; ++i)
      sparedStepAt(i, true);
    auto tcpStep = [&]() {
      if (!tcp) return;
      const std::string bs(dataplane::tcpStateName(v.tcp_before));
      const std::string as(dataplane::tcpStateName(v.tcp_after));
      std::string text;
      if (v.tcp_before == TcpState::kNone && v.tcp_after == TcpState::kNone) {
        return;  // denied before the state machine, or opened nothing
      }
      if (v.tcp_before == TcpState::kNone) {
        text =
            fmt::format("TCP: no connection before; after this packet the connection is {}.", as);
      } else if (v.tcp_before == v.tcp_after) {
        text = fmt::format("TCP state: {} (unchanged).", bs);
      } else {
        text = fmt::format("TCP state: {} -> {}.", bs, as);
      }
      b.add("tcp", text, Json{{"before", bs}, {"after", as}});
    };
    const bool existing = v.conn_id != 0 && !(v.flags & dataplane::kFlagNewConnection);
    if (existing) tcpStep();
    if (invalid) {
      const char* why = v.why != nullptr ? v.why : "invalid for the TCP state machine";
      std::string text = fmt::format("The TCP tracker marks it INVALID: {}. ", why);
      if (strict_invalid) {
        text +=
            "The policy is strict: an INVALID packet is denied (deny-invalid), whatever the "
            "rules say.";
      } else {
        text +=
            "It gets no help from any connection: it passes only if the rules of its own "
            "direction allow it (with 'strict: true' it would be denied).";
      }
      b.add("invalid", text, Json{{"why", why}, {"strict", strict_invalid}});
    }

    // 5. The checks, in the engine's order.
    for (int i = 0; i < ev.n_checks; ++i) {
      sparedStepAt(i, false);
      if (!ran[static_cast<size_t>(i)]) continue;
      const rules::Check& c = ev.checks[static_cast<size_t>(i)];
      const bool reached = reachedAt(i);
      const std::string dir(rules::directionName(c.dir));
      std::string text = fmt::format("{}{}: {}.", reached ? "" : "(not reached) ",
                                     capitalized(checkName(c)), checkVerdictWords(c, f));
      if (i == decisive) text += " This decides: the packet is denied.";
      if (c.kind == CheckKind::kAcl) {
        const rules::AclEntryInfo& ai = cp().aclEntry(c.acl.entry);
        const std::string subnet = c.subnet == rules::kNoSubnet ? "" : cp().subnet(c.subnet).name;
        if (i != decisive && reached) {
          text = fmt::format("{}: {} ({} {}).", capitalized(checkName(c)), checkVerdictWords(c, f),
                             c.dir == Direction::kInbound ? "entering" : "leaving", subnet);
        }
        b.add("acl", text,
              Json{{"acl", ai.acl_name},
                   {"direction", dir},
                   {"subnet", subnet},
                   {"entry", aclJson(c.acl.entry)},
                   {"allowed", c.allowed},
                   {"decisive", i == decisive},
                   {"reached", reached}});
      } else {
        const rules::InterfaceInfo& itf = cp().iface(c.iface);
        b.add("sg", text,
              Json{{"interface", itf.name},
                   {"direction", dir},
                   {"groups", itf.group_names},
                   {"allowed", c.allowed},
                   {"rule", c.sg.allowed() ? ruleJson(c.sg.rule) : Json(nullptr)},
                   {"decisive", i == decisive},
                   {"reached", reached}});
      }
    }
    if (ev.unprotected) {
      b.add("unprotected",
            fmt::format("Neither address is protected: 'unprotected: {}' {} it.",
                        cp().unprotectedAllow() ? "allow" : "deny",
                        cp().unprotectedAllow() ? "passes" : "denies"),
            Json{{"allowed", cp().unprotectedAllow()}});
    }
    if (strict_invalid) {
      // Nothing else ran.
    } else if (!existing) {
      tcpStep();
    }

    // 6. Tracking.
    explainTracking(b, v, f, ev, memo, before);

    // 7. Near misses of the check that denied it.
    if (decisive >= 0) {
      const rules::Check& c = ev.checks[static_cast<size_t>(decisive)];
      if (c.kind == CheckKind::kSg) {
        e.near_misses = near.securityGroups(c.iface, c.dir, f);
      } else {
        e.near_misses = near.acl(c.subnet, c.dir, f, c.acl.entry);
      }
      for (const NearMiss& n : e.near_misses) {
        Json j = {{"check", n.acl ? "acl" : "sg"}};
        if (n.acl) {
          j["entry"] = aclJson(n.entry);
        } else {
          j["rule"] = ruleJson(n.rule);
        }
        j["field"] = missFieldName(n.field);
        j["wanted"] = n.wanted;
        j["got"] = n.got;
        j["text"] = n.text;
        near_json.push_back(std::move(j));
      }
    }
  }

  void explainTracking(Builder& b, const Verdict& v, const Flow5& f, const rules::Evaluation& ev,
                       const ConnMemo* memo, const std::optional<ConnMemo>& before) {
    switch (v.reason) {
      case Reason::kAllowRule:
      case Reason::kAllowUnprotected: {
        if (v.conn_id == 0 || memo == nullptr) {
          if (!(v.flags & dataplane::kFlagTcpInvalid)) {
            b.add("tracking",
                  "No connection entry: this kind of packet opens none (only TCP, UDP, ICMP "
                  "query requests and other protocols' first packets do).",
                  Json{{"tracked", false}, {"sides", Json::array()}, {"timeout", nullptr}});
          }
          return;
        }
        const std::vector<std::string> sides = trackedSides(*memo);
        std::string text;
        const bool opened = (v.flags & dataplane::kFlagNewConnection) != 0;
        if (v.reason == Reason::kAllowUnprotected) {
          text = fmt::format(
              "{} connection #{} (unprotected traffic is tracked too, so it shows in the "
              "connection log). Idle timeout: {}.",
              opened ? "This packet opens" : "It belongs to", memo->number,
              timeoutWords(memo->facts));
        } else {
          std::string who;
          for (size_t i = 0; i < sides.size(); ++i)
            who += (i ? " and " : "") + sides[i] + "'s";
          text = fmt::format(
              "Tracked: {} connection #{}{}. {} the replies pass {} groups without needing any "
              "rule. Idle timeout: {}.",
              opened ? "this packet opens" : "from this packet on, the engine tracks", memo->number,
              (v.flags & dataplane::kFlagMidStream) ? " (picked up mid-stream)" : "",
              sides.empty() ? "Nothing in particular:" : "From now on", who.empty() ? "the" : who,
              timeoutWords(memo->facts));
        }
        b.add("tracking", text,
              Json{{"tracked", true}, {"sides", sides}, {"timeout", timeoutJson(memo->facts)}});
        return;
      }
      case Reason::kAllowTracked:
      case Reason::kAllowRelated: {
        if (memo == nullptr) return;
        if (v.reason == Reason::kAllowRelated) {
          b.add("tracking",
                fmt::format("An ICMP error does not refresh connection #{}.", memo->number),
                Json{{"tracked", true}, {"sides", Json::array()}, {"timeout", nullptr}});
          return;
        }
        const std::vector<std::string> sides = trackedSides(*memo);
        const rules::TimeoutKey k = memo->facts.timeoutKey();
        // A UDP connection whose originator sends again after a reply is a stream (more than one
        // exchange): its timeout changes from udp's to udp_stream's (docs/design.md, "Tracking").
        const bool became_stream = before && !before->facts.stream && memo->facts.stream;
        std::string why_longer;
        if (became_stream) {
          why_longer = fmt::format(
              " The timeout changed from {} s ({}) to {} s: the originator sent again after a "
              "reply, so the connection is now a stream (more than one exchange).",
              timeoutSeconds(before->facts), rules::timeoutKeyName(before->facts.timeoutKey()),
              timeoutSeconds(memo->facts));
        }
        Json tj{{"tracked", true}, {"sides", sides}, {"timeout", timeoutJson(memo->facts)}};
        if (became_stream) tj["became_stream"] = true;
        b.add("tracking",
              fmt::format("Tracked: connection #{} is refreshed; it expires after {} s idle "
                          "({}).{}",
                          memo->number, timeoutSeconds(memo->facts), rules::timeoutKeyName(k),
                          why_longer),
              tj);
        return;
      }
      case Reason::kAllowUntracked: {
        // The request direction of the flow: this packet, or (for a reply) its reverse.
        Flow5 request = f;
        rules::Evaluation rev;
        const rules::Evaluation* req_ev = &ev;
        bool is_reply = false;
        if (!ev.untracked) {
          request = reverseFlow(f);
          rules::evaluate(cp(), request, rules::EvalMode::kFull, &rev);
          req_ev = &rev;
          is_reply = true;
        }
        std::string text = "Untracked (the AWS rule)";
        Json rule_j = nullptr, rev_j = nullptr;
        for (int i = 0; i < req_ev->n_checks; ++i) {
          const rules::Check& c = req_ev->checks[static_cast<size_t>(i)];
          if (c.kind != CheckKind::kSg || !c.sg.untracked) continue;
          const auto [r1, r2] = near.untrackedPair(c.iface, c.dir, request);
          const bool in = c.dir == Direction::kInbound;
          const std::string name = cp().iface(c.iface).name;
          text += fmt::format(
              ": {} allows {} {} all addresses, and {} allows all traffic {} all addresses on "
              "all ports, so {} does not track this flow",
              ruleLabel(r1), detail::packetWords(request), in ? "from" : "to", ruleLabel(r2),
              in ? "to" : "from", name);
          rule_j = ruleJson(r1);
          rev_j = ruleJson(r2);
          break;
        }
        text +=
            ". Every packet of it, the replies included, is judged by the rules of its own "
            "direction";
        if (is_reply) {
          text += fmt::format("; this reply passes by {}", ruleLabel(v.rule));
        }
        text +=
            ". Removing one of these rules cuts the flow at once rather than when a timeout "
            "ends.";
        b.add("untracked", text, Json{{"rule", rule_j}, {"reverse_rule", rev_j}});
        return;
      }
      case Reason::kDenyTableFull:
        b.add("table-full",
              "The rules allow it, but it would need a new connection entry, the connection "
              "table is full and no unreplied connection near it could be evicted to make room "
              "(established and replied ones never are): denied (deny-table-full).");
        return;
      default:
        if (memo != nullptr && v.conn_id != 0) {
          b.add("tracking",
                fmt::format("Connection #{} exists, but that does not help: {}.", memo->number,
                            v.reason == Reason::kDenyAcl
                                ? "a network ACL is stateless and judges every packet"
                                : "the packet is denied"),
                Json{{"tracked", true}, {"sides", Json::array()}, {"timeout", nullptr}});
        }
        return;
    }
  }

  Json contrast(PacketExplanation& e, const Verdict& v, const Flow5& f, const rules::Evaluation& ev,
                const ConnMemo* memo) {
    const Reason sr = rulesAloneReason(ev);
    const bool a = v.allowed();
    const bool s = dataplane::reasonAllows(sr);
    std::string text;
    Json check = nullptr;
    if (s) {
      std::string by;
      for (int i = 0; i < ev.n_checks; ++i) {
        const rules::Check& c = ev.checks[static_cast<size_t>(i)];
        if (c.kind == CheckKind::kSg && c.sg.allowed()) {
          by += (by.empty() ? "" : " and ") + ruleLabel(c.sg.rule);
        }
      }
      text = fmt::format("A stateless filter with the same rules would {} it",
                         a ? "also allow" : "allow");
      if (!by.empty()) {
        text += fmt::format(": {} {} it by the rules alone", by,
                            by.find(" and ") == std::string::npos ? "allows" : "allow");
      } else if (ev.unprotected) {
        text += ": neither address is protected";
      }
      if (!a) {
        if (v.reason == Reason::kDenyInvalid) {
          text += "; only the TCP state machine rejects it";
        } else if (v.reason == Reason::kDenyTableFull) {
          text += "; a stateless filter keeps no table that could fill up";
        } else {
          text +=
              fmt::format("; what denies it here is state: {}", dataplane::reasonCode(v.reason));
        }
      }
      text += ".";
    } else {
      const rules::Check& c = ev.checks[static_cast<size_t>(std::max(ev.first_deny, 0))];
      const std::string what = ev.first_deny < 0
                                   ? "'unprotected: deny' denies it"
                                   : fmt::format("{}: {}", checkName(c), checkVerdictWords(c, f));
      text = fmt::format("A stateless filter with the same rules would {} it ({}): {}.",
                         a ? "deny" : "also deny", dataplane::reasonCode(sr), what);
      if (ev.first_deny >= 0) {
        check = Json{{"kind", c.kind == CheckKind::kSg ? "sg" : "acl"},
                     {"direction", rules::directionName(c.dir)}};
        if (c.kind == CheckKind::kSg) {
          check["interface"] = cp().iface(c.iface).name;
        } else {
          check["entry"] = aclJson(c.acl.entry);
        }
      }
      if (a && v.reason == Reason::kAllowTracked) {
        text += fmt::format(
            " Connection tracking is what lets it through: as part of connection #{} it needs "
            "no security-group rule.",
            memo != nullptr ? memo->number : 0);
      } else if (a && v.reason == Reason::kAllowRelated) {
        text += " It passes here only as an ICMP error related to a tracked connection.";
      }
    }
    e.stateless = sr;
    e.stateless_text = text;
    Json j = {{"verdict", s ? "allow" : "deny"},
              {"reason", dataplane::reasonCode(sr)},
              {"changed", a != s},
              {"text", text}};
    if (!check.is_null()) j["check"] = check;
    return j;
  }

  std::string formatText(const PacketExplanation& e, uint64_t ts) const {
    std::string out = fmt::format("packet {} at {} s: {}\n", e.index,
                                  fmtSeconds(ts - stats.first_ts_ns), e.summary);
    out += fmt::format("  verdict: {} ({})\n", dataplane::reasonAllows(e.reason) ? "allow" : "deny",
                       dataplane::reasonCode(e.reason));
    int n = 0;
    for (const ExplainStep& s : e.steps) {
      const std::string num = fmt::format("  {}. ", ++n);
      out += num + wrap(s.text, num.size(), num.size()) + "\n";
    }
    if (!e.near_misses.empty()) {
      out += "  near misses:\n";
      for (const NearMiss& m : e.near_misses)
        out += "    - " + wrap(m.text, 6, 6) + "\n";
    } else if (e.reason == Reason::kDenySg || e.reason == Reason::kDenyAcl) {
      out += "  near misses: none (no rule matches all but one field)\n";
    }
    if (e.stateless) out += "  stateless: " + wrap(e.stateless_text, 13, 4) + "\n";
    // The glossary entries of the terms this packet's words use, each the first time in the run.
    std::string terms;
    for (std::string_view a : glossaryAnchorsIn(out)) {
      if (!glossary_seen_.insert(a).second) continue;
      terms += (terms.empty() ? "" : ", ") + std::string("#") + std::string(a);
    }
    if (!terms.empty()) {
      out += "  glossary: " + wrap(std::string(kGlossaryPath) + " " + terms, 12, 4) + "\n";
    }
    return out;
  }

  uint64_t ts_now_ = 0;
  mutable std::set<std::string_view> glossary_seen_;  // anchors already pointed to
};

Explainer::Explainer(rules::CompiledPolicyPtr policy, ExplainOptions options)
    : impl_(std::make_unique<Impl>(std::move(policy), std::move(options))) {}
Explainer::~Explainer() = default;

bool Explainer::runFiles(const std::vector<std::string>& paths, const Sink& sink) {
  impl_->sink = &sink;
  impl_->frames.openFiles(paths);
  const bool ok = impl_->replay.runFiles(paths);
  std::string err;
  impl_->replay.finish(&err);
  impl_->sink = nullptr;
  if (!ok) impl_->stats.error = impl_->replay.summary().error;
  return ok;
}

void Explainer::runFrames(const std::vector<Frame>& frames, const Sink& sink) {
  impl_->sink = &sink;
  impl_->frames.useFrames(&frames, impl_->stats.packets + 1);
  impl_->replay.runFrames(frames);
  impl_->sink = nullptr;
}

const ExplainStats& Explainer::stats() const {
  return impl_->stats;
}

std::vector<PacketExplanation> explainFrames(rules::CompiledPolicyPtr policy,
                                             const std::vector<Frame>& frames,
                                             const ExplainOptions& options) {
  std::vector<PacketExplanation> out;
  Explainer x(std::move(policy), options);
  x.runFrames(frames, [&](const PacketExplanation& e) { out.push_back(e); });
  return out;
}

}  // namespace statewall::sim
