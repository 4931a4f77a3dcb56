#include "verdict_log.hpp"

#include "conn_tracker.hpp"
#include "flow_key.hpp"
#include "statewall/rules/vocab.hpp"

namespace statewall::sim::detail {
namespace {

using dataplane::kFlagReply;
using dataplane::L3;
using dataplane::ParsedPacket;
using dataplane::Reason;
using dataplane::Verdict;

constexpr uint16_t kEthernetHeaderLen = 14;  // destination, source, EtherType

void appendFlags(fmt::memory_buffer& b, uint16_t flags) {
  static constexpr std::string_view kNames[] = {"new",        "reply",    "tcp-invalid",
                                                "untracked",  "control",  "fragment",
                                                "mid-stream", "reopened", "closed"};
  b.append(std::string_view(",\"flags\":["));
  bool first = true;
  for (size_t bit = 0; bit < std::size(kNames); ++bit) {
    if (flags & (1u << bit)) {
      if (!first) b.push_back(',');
      first = false;
      b.push_back('"');
      b.append(kNames[bit]);
      b.push_back('"');
    }
  }
  b.push_back(']');
}

// "encap": the frame's layer-2.5 headers and, with decapsulation, its tunnels, outermost first
// ("vlan:100", "vxlan:vni=42"); nothing for a plain frame. Only a frame whose IP header is not
// right after an Ethernet header is walked again (and only one that has headers allocates).
void appendEncap(fmt::memory_buffer& b, const dataplane::PacketRef& frame, const ParsedPacket& p,
                 const dataplane::ParseOptions& parse) {
  if (frame.link == dataplane::LinkType::kEthernet && p.l3_offset == kEthernetHeaderLen) return;
  const std::vector<dataplane::EncapHeader> headers =
      dataplane::encapsulation(frame.data, frame.len, frame.link, parse);
  if (headers.empty()) return;
  b.append(std::string_view(",\"encap\":["));
  for (size_t i = 0; i < headers.size(); ++i) {
    if (i > 0) b.push_back(',');
    appendJsonString(b, dataplane::encapText(headers[i]));
  }
  b.push_back(']');
}

}  // namespace

void VerdictLog::packetsJudged(const JudgedBurst& b) {
  for (unsigned i = 0; i < b.n; ++i)
    write(b.refs[i], b.parsed[i], b.verdicts[i], b.meta[i],
          b.stateless != nullptr ? &b.stateless[i] : nullptr);
}

void VerdictLog::write(const dataplane::PacketRef& frame, const ParsedPacket& p, const Verdict& v,
                       const PacketMeta& m, const Reason* stateless) {
  const rules::CompiledPolicy& policy = *ctx_.policy;
  const bool nano = ctx_.nano;
  auto& b = out_.buf();
  auto lit = [&b](std::string_view x) { b.append(x); };
  auto num = [&b](uint64_t x) { appendU64(b, x); };
  auto str = [&b](std::string_view x) {  // x holds no characters that need escaping
    b.push_back('"');
    b.append(x);
    b.push_back('"');
  };
  lit("{\"index\":");
  num(m.index);
  lit(",\"ts\":");
  appendTs(b, m.ts, nano);
  appendEncap(b, frame, p, ctx_.options->parse);
  const bool ip = p.l3 == L3::kIpv4 || p.l3 == L3::kIpv6;
  std::string_view pname = protoText(p.proto, p.l3);
  lit(",\"proto\":");
  if (!pname.empty()) {
    str(pname);
  } else {
    num(p.proto);
  }
  if (ip || p.l3 == L3::kArp) {
    lit(",\"src\":\"");
    appendIp(b, p.src);
    lit("\",\"dst\":\"");
    appendIp(b, p.dst);
    b.push_back('"');
  }
  if (ip && p.malformed == dataplane::Layer::kNone) {
    if (rules::protoIsIcmp(p.proto)) {
      lit(",\"icmp_type\":");
      num(p.icmp_type);
      lit(",\"icmp_code\":");
      num(p.icmp_code);
      if (p.icmp_is_query_request || p.icmp_is_query_reply) {
        lit(",\"icmp_id\":");
        num(p.icmp_id);
      }
    } else if (p.proto == dataplane::kIpProtoTcp || p.proto == dataplane::kIpProtoUdp) {
      lit(",\"sport\":");
      num(p.sport);
      lit(",\"dport\":");
      num(p.dport);
    }
    if (p.proto == dataplane::kIpProtoTcp && !(p.is_fragment && !p.first_fragment)) {
      char flags[8];
      const size_t fl = rules::tcpFlagLetters(p.tcp_flags, flags);
      lit(",\"tcp_flags\":");
      str(std::string_view(flags, fl));
    }
    if (p.is_fragment) {
      lit(",\"fragment\":{\"id\":");
      num(p.frag_id);
      lit(",\"offset\":");
      num(p.frag_offset * 8u);
      lit(p.more_fragments ? ",\"more\":true}" : ",\"more\":false}");
    }
  }
  if (ip) {
    rules::IfaceId si = policy.interfaceOf(p.src);
    rules::IfaceId di = policy.interfaceOf(p.dst);
    lit(si != rules::kNoIface && di != rules::kNoIface ? ",\"direction\":\"internal\""
        : di != rules::kNoIface                        ? ",\"direction\":\"inbound\""
        : si != rules::kNoIface                        ? ",\"direction\":\"outbound\""
                                                       : ",\"direction\":\"unprotected\"");
  }
  lit((v.flags & kFlagReply) != 0 ? ",\"reply\":true" : ",\"reply\":false");
  lit(v.allowed() ? ",\"verdict\":\"allow\",\"reason\":" : ",\"verdict\":\"deny\",\"reason\":");
  str(dataplane::reasonCode(v.reason));
  lit(",\"rule\":");
  appendRule(b, v);
  if (v.conn_id != 0) {
    lit(",\"conn\":");
    num(ctx_.numbers->find(v.conn_id));
    lit(",\"engine_id\":");
    num(v.conn_id);
  } else {
    lit(",\"conn\":null");
  }
  if (p.proto == dataplane::kIpProtoTcp && ip) {
    lit(",\"tcp_before\":");
    str(dataplane::tcpStateName(v.tcp_before));
    lit(",\"tcp_after\":");
    str(dataplane::tcpStateName(v.tcp_after));
  }
  if (v.reason == Reason::kDenyMalformed) {
    lit(",\"layer\":");
    str(dataplane::layerName(v.malformed_layer));
  }
  if (v.reason == Reason::kAllowExempt) {
    lit(",\"exemption\":");
    str(rules::exemptionName(v.exemption));
  }
  if (v.why != nullptr) {
    lit(",\"why\":");
    appendJsonString(b, v.why);
  }
  if (v.flags != 0) appendFlags(b, v.flags);
  if (stateless != nullptr) {
    lit(dataplane::reasonAllows(*stateless) ? ",\"stateless\":{\"verdict\":\"allow\",\"reason\":"
                                            : ",\"stateless\":{\"verdict\":\"deny\",\"reason\":");
    str(dataplane::reasonCode(*stateless));
    b.push_back('}');
  }
  lit("}\n");
  out_.maybeFlush();
}

void VerdictLog::appendRule(fmt::memory_buffer& b, const Verdict& v) {
  const PolicyTexts& texts = *ctx_.texts;
  if (v.reason == Reason::kDenyAcl && v.acl_entry != rules::kNoAclEntry &&
      v.acl_entry < texts.aclEntryCount()) {
    b.append(texts.aclJson(v.acl_entry));
  } else if (v.reason == Reason::kDenySg && v.deny_iface != rules::kNoIface &&
             v.deny_iface < texts.ifaceCount()) {
    b.append(texts.ifaceJson(v.deny_iface, v.deny_dir));
  } else if (v.rule != rules::kNoRule && v.rule < texts.ruleCount()) {
    b.append(texts.ruleJson(v.rule));
  } else {
    b.append(std::string_view("null"));
  }
}

}  // namespace statewall::sim::detail
