// What the engine knows about one tracked connection: the one statement of a connection's tracked
// sides, idle-timeout class, mid-stream pickup and UDP stream promotion (docs/design.md
// "Connection tracking", "Idle timeouts"). Outputs read these facts from the engine
// (Engine::forEachConnection, or per packet through Engine::process's opt-in conn_out array)
// instead of working them out again from the packets and the rules.
#pragma once

#include <cstdint>

#include "statewall/dataplane/packet.hpp"
#include "statewall/dataplane/tcp_tracker.hpp"
#include "statewall/rules/compiled.hpp"

namespace statewall::dataplane {

struct ConnectionInfo {
  uint64_t id = 0;  // the engine's connection id; 0: no connection
  uint8_t proto = 0;
  rules::IpAddr orig_src, orig_dst;         // as the originator sent its first packet
  uint16_t orig_sport = 0, orig_dport = 0;  // ICMP query: the id, then the request type
  TcpState tcp_state = TcpState::kNone;
  // Whether each side's groups track the connection: they allowed its opening packet by a rule
  // that makes it tracked (not the untracked AWS rule). The connection helps a packet only on a
  // side that is protected and tracks it.
  bool src_side_tracked = false, dst_side_tracked = false;
  // Whether each side's address is a protected interface. A protected side with no tracked
  // side is an untracked flow (docs/design.md): its packets are judged by the rules both ways
  // and the entry is kept only for the log; with no protected side the flow is unprotected.
  bool src_side_protected = false, dst_side_protected = false;
  bool replied = false;     // the responder has sent a packet
  bool stream = false;      // UDP: the originator sent again after a reply (udp_stream timeout)
  bool mid_stream = false;  // TCP picked up without its SYN: loose window checks
  bool icmp_query = false;  // an ICMP/ICMPv6 query pair keyed by (request type, identifier)
  rules::RuleId opened_by = rules::kNoRule;
  uint64_t expires_ns = 0;
  // The idle timeout (seconds) of timeoutKey() that applies to this connection: the policy's, or
  // the override of the interfaces that track it (docs/design.md "Idle timeouts", per interface).
  // Filled on Engine::process's conn_out only; 0 from forEachConnection.
  uint32_t timeout_s = 0;

  // The sides (originator's, responder's) whose tracking helps the connection's packets.
  bool srcSideTracks() const { return src_side_protected && src_side_tracked; }
  bool dstSideTracks() const { return dst_side_protected && dst_side_tracked; }

  // The idle-timeout class the engine refreshes the connection with: TCP by its state, UDP one-way
  // or stream, ICMP queries, other protocols.
  rules::TimeoutKey timeoutKey() const {
    if (proto == kIpProtoTcp) return tcpTimeoutKey(tcp_state);
    if (proto == kIpProtoUdp)
      return stream ? rules::TimeoutKey::kUdpStream : rules::TimeoutKey::kUdp;
    if (icmp_query) return rules::TimeoutKey::kIcmp;
    return rules::TimeoutKey::kOther;
  }
};

}  // namespace statewall::dataplane
