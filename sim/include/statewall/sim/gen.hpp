// The trace generator behind `statewall gen`: deterministic packet traces built with the
// project's own packet builder. The same options and seed give the same bytes, on any machine
// (the generator uses its own PRNG and integer arithmetic only, never std:: distributions).
//
// Two sources of flows, freely combined:
//   - explicit flows, one text spec each (see parseFlowSpec), for examples and tests;
//   - a random mix of `flows` scenarios between `clients` and `servers`, for benchmarks.
// Packets come out in timestamp order (ties broken by flow creation order), streaming: memory
// grows with the number of flows alive at one time, not with the trace length.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "statewall/base/status.hpp"
#include "statewall/dataplane/packet.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/ip.hpp"

namespace statewall::sim {

// The scenarios a flow can play. Names are those of --mix and of explicit specs' `end=`/kind.
enum class Scenario : uint8_t {
  kTcp,          // handshake, request/response exchanges, FIN close (originator first)
  kTcpRst,       // handshake, data, then an RST (originator or responder, at random)
  kTcpRefused,   // SYN answered by RST/ACK: a closed port (Zeek REJ)
  kTcpNoAnswer,  // SYN and its retransmissions, never answered (Zeek S0)
  kTcpIdle,      // handshake, data, an idle gap longer than the timeout, then more data
  kUdp,          // one request, one response
  kUdpStream,    // several exchanges both ways
  kUdpUnreach,   // a datagram answered by ICMP port unreachable
  kIcmpEcho,     // echo requests and replies
  kScan,         // one source probing many ports of one server with SYNs
  kFlood,        // SYNs from many spoofed sources to one server port
  kCount
};
inline constexpr size_t kScenarioCount = static_cast<size_t>(Scenario::kCount);
std::string_view scenarioName(Scenario s);

// How an explicit TCP flow ends.
enum class TcpEnd : uint8_t {
  kFin,        // originator's FIN first, then the responder's, last ACK
  kFinServer,  // responder's FIN first
  kRst,        // originator sends RST
  kRstServer,  // responder sends RST
  kRefused,    // responder answers the SYN with RST/ACK
  kNoAnswer,   // SYN (plus retransmissions) only
  kOpen,       // no close: still open at the end of the trace
  kHalfOpen,   // originator's FIN only (Zeek S2)
};

// One flow, fully specified (explicit or drawn by the random mix).
struct FlowPlan {
  Scenario kind = Scenario::kTcp;
  uint8_t proto = 6;  // 6, 17, 1/58 (chosen from the address family for ICMP)
  rules::IpAddr src, dst;
  uint16_t sport = 0, dport = 0;
  uint64_t start_ns = 0;  // offset from the trace start
  uint32_t rtt_us = 2000;
  // TCP
  TcpEnd end = TcpEnd::kFin;
  uint32_t exchanges = 1;    // request/response rounds
  uint32_t req_bytes = 200;  // per request
  uint32_t resp_bytes = 1200;
  uint16_t mss = 1460;
  uint32_t retrans = 0;  // data segments sent twice
  uint64_t gap_ns = 0;   // idle gap before the last exchange (kTcpIdle / gap=)
  // UDP / ICMP
  uint32_t count = 1;           // UDP exchanges or ICMP echoes
  bool reply = true;            // the responder answers
  uint32_t interval_us = 0;     // between UDP/ICMP exchanges; 0 = one RTT
  uint64_t reply_delay_ns = 0;  // UDP/ICMP: the responder answers this late (0: at once)
  // Scan / flood
  uint16_t port_lo = 1, port_hi = 1024;
  rules::Cidr spoof;  // flood sources
  uint32_t flood_pps = 100000;
  // ICMP error in answer to the first packet (UDP unreachable; also tcp with error=...)
  std::optional<uint8_t> error_type;
  uint8_t error_code = 0;
  // Which end the error is addressed to: false = the originator (about its first packet, sent by
  // default from the destination), true = the responder (about the responder's first packet,
  // sent by default from the originator's side; the flow then runs its course around it).
  bool error_to_resp = false;
  std::optional<rules::IpAddr> error_from;
};

// Parses one explicit flow:
//   tcp  SRC:PORT -> DST:PORT [at=S] [rtt=MS] [data=N] [req=B] [resp=B] [mss=B] [retrans=N]
//        [gap=S] [end=fin|fin-server|rst|rst-server|refused|noanswer|open|half]
//        [error=unreach|ttl|ptb] [error-to=orig|resp] [error-from=ADDR]
//   udp  SRC:PORT -> DST:PORT [at=S] [rtt=MS] [count=N] [reply=yes|no] [len=B] [resp=B]
//        [interval=MS] [delay=S] [gap=S] [error=unreach|ttl|ptb] [error-to=orig|resp]
//        [error-from=ADDR]
//   icmp SRC -> DST [at=S] [rtt=MS] [count=N] [reply=yes|no] [interval=MS] [delay=S] [id=N]
//   scan SRC -> DST [ports=LO-HI] [at=S] [reply=yes|no]   (reply: closed ports answer RST)
//   flood CIDR -> DST:PORT [count=N] [rate=PPS] [at=S]
// IPv6 addresses with ports go in brackets: [2001:db8::1]:443. A failure ("flow 'TEXT': ...")
// otherwise.
base::Expected<FlowPlan> parseFlowSpec(const std::string& text);

struct GenOptions {
  uint64_t seed = 1;
  uint64_t start_ns = 1700000000ull * 1000000000ull;  // trace start (2023-11-14T22:13:20Z)
  dataplane::LinkType link = dataplane::LinkType::kEthernet;
  std::optional<uint16_t> vlan;  // one 802.1Q tag on every frame (Ethernet/SLL links)
  // --encap: encapsulation of every frame, outermost first (after `vlan`), as parseEncapList()
  // reads it: layer-2.5 headers of the link, then per tunnel the tunnel and the layer-2.5 headers
  // of the Ethernet frame inside it. Tunnel k (0 outermost) runs from 192.0.2.(2k+1) to
  // 192.0.2.(2k+2), the other way round for packets whose source is the higher address.
  // With tunnels, --stop-on-deny judges the inner packets (as `replay --decap`).
  std::vector<dataplane::EncapHeader> encap;

  std::vector<FlowPlan> explicit_flows;

  // --stop-on-deny: every packet is judged as it is generated, by the same Replay (and Engine)
  // as `statewall replay`, with this policy; after a denied packet its flow sends nothing more.
  // The denied packet itself is in the trace (it was sent; the firewall dropped it). A real
  // stack would retransmit it a few times and then give up; gen models only the giving up.
  rules::CompiledPolicyPtr stop_on_deny;

  // --flow-log FILE: the trace's packets as AWS VPC Flow Logs record them (sim/flowlog.hpp):
  // judged with this policy as they are generated (the replay's engine: which interfaces exist and
  // what each side's groups and ACLs decide), one record per interface, direction, flow and
  // action over windows of flow_log_window_s seconds. Text (version 5 fields) or JSON lines.
  std::string flow_log_path;
  rules::CompiledPolicyPtr flow_log_policy;
  uint32_t flow_log_window_s = 60;
  bool flow_log_jsonl = false;

  // Random mix.
  uint64_t flows = 0;                      // random flows to draw
  double duration_s = 60.0;                // random flow starts spread over [0, duration)
  std::vector<double> mix = defaultMix();  // weight per Scenario
  std::vector<rules::Cidr> clients;        // defaults: 198.51.100.0/24, 2001:db8:ff00::/64
  std::vector<rules::IpAddr> servers;      // defaults: 10.0.1.10, 2001:db8:1::10
  std::vector<uint16_t> tcp_ports = {443, 80};
  std::vector<uint16_t> udp_ports = {53, 123};
  double ipv6_share = 0.2;                 // of random flows, when both families have addresses
  uint32_t exchanges = 4;                  // mean TCP exchanges per random flow (1..2*mean-1)
  uint32_t req_lo = 100, req_hi = 600;     // TCP request bytes per exchange, uniform in [lo, hi]
  uint32_t resp_lo = 200, resp_hi = 8000;  // TCP response bytes per exchange
  uint32_t idle_gap_s = 700;               // kTcpIdle gap (longer than the default ICMP/UDP/other)
  uint32_t scan_ports = 200;               // ports per scan
  uint32_t flood_packets = 2000;           // SYNs per flood

  static std::vector<double> defaultMix();
};

// Parses --encap "vlan:100,vxlan:vni=42" (each item in encapText()'s form) and checks that the
// builder can frame it on `link`: layer-2.5 headers need an EtherType (no raw/null/loop/ppp link
// for the outer ones; inside a tunnel only VXLAN, GENEVE and ERSPAN carry an Ethernet frame); an
// Ethernet pseudowire follows an MPLS label and ends its stack; PPPoE is last in its group;
// Teredo carries IPv6 only, so it must be the innermost tunnel. A failure naming the item.
base::Expected<std::vector<dataplane::EncapHeader>> parseEncapList(const std::string& text,
                                                                   dataplane::LinkType link);

// Parses --mix "tcp=60,udp=10,..." (names from scenarioName) into weights; a failure naming the
// entry.
base::Expected<std::vector<double>> parseMix(const std::string& text);

struct GenPacket {
  uint64_t ts_ns = 0;
  std::vector<uint8_t> frame;
  uint64_t flow = 0;  // the flow that sent it, in order of creation from 0
};

// Produces the trace packet by packet, in timestamp order.
class TraceGenerator {
 public:
  explicit TraceGenerator(const GenOptions& options);
  ~TraceGenerator();
  TraceGenerator(const TraceGenerator&) = delete;
  TraceGenerator& operator=(const TraceGenerator&) = delete;

  // Fills *out with the next packet (reusing out->frame's capacity); false at the end.
  bool next(GenPacket* out);
  uint64_t flowsStarted() const;
  // The flow sends no more packets (e.g. after one was denied). false when it had none left to
  // send (ended, stopped already, or unknown).
  bool stopFlow(uint64_t flow);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct GenStats {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t flows = 0;
  uint64_t flows_stopped = 0;     // --stop-on-deny: flows cut short after a denied packet
  uint64_t flow_log_records = 0;  // --flow-log
  uint64_t first_ts_ns = 0;
  uint64_t last_ts_ns = 0;
};

// Generates the whole trace into a pcap file (nanosecond timestamps). A failure on I/O errors.
base::Status writeTrace(const GenOptions& options, const std::string& path, GenStats* stats);

}  // namespace statewall::sim
