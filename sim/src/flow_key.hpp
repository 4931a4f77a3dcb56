// Flow keys of the replay's outputs: a packet's addresses as the summary lists them (FlowKey,
// sim/include/statewall/sim/replay.hpp), their hashes for the outputs' FlatMaps, and the protocol
// names the outputs print.
#pragma once

#include <cstdint>
#include <string_view>

#include "flat_map.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/rules/vocab.hpp"
#include "statewall/sim/replay.hpp"

namespace statewall::sim::detail {

// "tcp", "udp", "icmp", "icmpv6", "arp", "non-ip"; empty for another IP protocol.
inline std::string_view protoText(uint8_t proto, dataplane::L3 l3) {
  if (l3 == dataplane::L3::kArp) return "arp";
  if (l3 == dataplane::L3::kOther) return "non-ip";
  return rules::protoKeyword(proto);
}

// The packet's addresses as the summary lists them: ICMP type and code in the port fields.
inline FlowKey keyOf(const dataplane::ParsedPacket& p) {
  FlowKey k;
  k.ip = p.l3 == dataplane::L3::kIpv4 || p.l3 == dataplane::L3::kIpv6;
  if (!k.ip) return k;
  k.proto = p.proto;
  k.src = p.src;
  k.dst = p.dst;
  if (rules::protoIsIcmp(p.proto)) {
    k.sport = p.icmp_type;
    k.dport = p.icmp_code;
  } else {
    k.sport = p.sport;
    k.dport = p.dport;
  }
  return k;
}

struct FlowKeyHash {
  size_t operator()(const FlowKey& k) const {
    uint64_t h = mix64(k.src.lo ^ (k.src.hi * 31) ^ (uint64_t{k.proto} << 56));
    h = mix64(h ^ k.dst.lo ^ (k.dst.hi * 17));
    return static_cast<size_t>(mix64(h ^ (uint64_t{k.sport} << 16 | k.dport) ^ (k.ip ? 1 : 0)));
  }
};
struct FlowKeyEq {
  bool operator()(const FlowKey& a, const FlowKey& b) const { return a == b; }
};
struct U64Hash {
  size_t operator()(uint64_t x) const { return static_cast<size_t>(mix64(x)); }
};
struct U64Eq {
  bool operator()(uint64_t a, uint64_t b) const { return a == b; }
};

// A flow and what happened to it: the key of the denied-flow and stateless-change tables.
struct TaggedKey {
  FlowKey flow;
  uint32_t tag = 0;  // reason(s) and the detail that decided it
  friend bool operator==(const TaggedKey&, const TaggedKey&) = default;
};
struct TaggedKeyHash {
  size_t operator()(const TaggedKey& k) const {
    return static_cast<size_t>(mix64(FlowKeyHash{}(k.flow) ^ k.tag));
  }
};
struct TaggedKeyEq {
  bool operator()(const TaggedKey& a, const TaggedKey& b) const { return a == b; }
};

}  // namespace statewall::sim::detail
