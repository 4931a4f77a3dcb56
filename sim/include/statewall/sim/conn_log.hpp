// Per-connection records for `statewall replay --connections`, in the vocabulary of Zeek's
// conn.log: uid, originator/responder, conn_state (S0 S1 SF REJ S2 S3 RSTO RSTR RSTOS0 RSTRH SH SHR
// OTH), history letters, packets and bytes each way; plus what a firewall adds: how the
// connection ended, the rule that opened it, and how many of its packets were denied.
//
// conn_state and history follow Zeek's documented definitions (base/protocols/conn/main.zeek):
// history letters are upper case for the originator and lower case for the responder:
//   S SYN without ACK, H SYN+ACK, A pure ACK, D payload, F FIN, R RST, T retransmitted payload,
//   W zero window, Q SYN with FIN or RST, I FIN with RST.
// Each letter appears once per direction, except T and W which appear again when their count
// reaches 10, 100, 1000, ... The records are plain data, built by the replay (single-threaded).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "statewall/dataplane/packet.hpp"
#include "statewall/dataplane/verdict.hpp"
#include "statewall/rules/compiled.hpp"

namespace statewall::sim {

enum class ConnEnd : uint8_t { kOpen, kClosed, kTimedOut };
std::string_view connEndName(ConnEnd e);  // "open", "closed", "timed-out"

// A port a server is likely to listen on: the system ports (below 1024) and a few registered ones
// common for services (proxies, databases, alternative HTTP). Used only to orient a record whose
// first packet does not show who opened the connection.
bool likelyServerPort(uint16_t port);

// What one endpoint sent.
struct ConnSide {
  uint64_t pkts = 0;
  uint64_t payload_bytes = 0;  // Zeek orig_bytes / resp_bytes: transport payload
  uint64_t ip_bytes = 0;       // Zeek orig_ip_bytes / resp_ip_bytes
  bool any = false;
  bool syn = false;     // SYN without ACK
  bool synack = false;  // SYN with ACK
  bool fin = false;
  bool rst = false;
  // The side's end state as Zeek keeps it (docs/semantics.md, "The connection log against Zeek"):
  // a RST does not reset a side that had closed once its peer has closed too, and a side reset
  // after its own FIN goes back to closed when the peer then closes.
  bool reset = false;
  bool reset_after_fin = false;
  uint32_t next_seq = 0;  // highest sequence end seen, to spot retransmissions
  bool seq_valid = false;
  uint32_t retrans = 0;
  uint32_t zero_win = 0;
  uint16_t letters = 0;  // letters already recorded once (bit per letter)
};

struct ConnRecord {
  uint64_t seq = 0;          // creation order within the replay; the uid derives from it
  uint64_t conn_id = 0;      // the engine's connection id; 0 for a flow the engine did not track
  uint64_t conn_number = 0;  // the connection's number in the run (#N, what people read)
  uint8_t proto = 0;
  rules::IpAddr orig_h;
  rules::IpAddr resp_h;
  uint16_t orig_p = 0;  // ICMP: the first packet's type (as Zeek logs ICMP)
  uint16_t resp_p = 0;  // ICMP: its code
  uint64_t first_ns = 0;
  uint64_t last_ns = 0;
  ConnSide orig;
  ConnSide resp;
  uint64_t denied_pkts = 0;
  uint64_t icmp_errors = 0;  // ICMP errors about this connection (allow-related or denied)
  rules::RuleId opened_by = rules::kNoRule;
  dataplane::Reason first_reason = dataplane::Reason::kAllowRule;
  bool engine_closed = false;  // the engine reported that a packet ended it (RST, TIME_WAIT)
  // The first packet seen was a SYN-ACK, or another non-SYN from a likely server port: as Zeek
  // does, the record names its receiver the originator and history starts with '^'.
  bool flipped = false;
  ConnEnd end = ConnEnd::kOpen;
  char history[48] = {};
  uint8_t history_len = 0;
  // With decapsulation (`statewall replay --decap`): a tunnel's own record is the flow of the
  // packets that carried inner packets (e.g. UDP 4789 between two VTEPs), of kind `tunnel`; a
  // connection seen inside tunnels lists their records' seqs in `parents` (Zeek's
  // tunnel_parents), outermost first, at most kMaxParents.
  static constexpr size_t kMaxParents = 4;
  // TCP: when Zeek would have removed this connection (5 s after its close completed, a side's
  // FIN with the peer closed or silent, or after a RST; 0: not yet). A packet after it starts a
  // new record, as Zeek starts a new connection (docs/semantics.md "The connection log against
  // Zeek"). Set by observe().
  uint64_t zeek_removal_ns = 0;
  // TCP: 5 s after the originator's SYN (Zeek's tcp_attempt_delay): a packet after it, while the
  // responder has sent nothing and the originator neither closed nor reset, starts a new record.
  uint64_t zeek_attempt_ns = 0;
  // The record began before the engine tracked its flow (packets without a connection, then a
  // mid-stream pickup): its sides are told by address and port, not by the engine's originator.
  bool sided_by_address = false;
  bool is_tunnel = false;
  dataplane::EncapHeader::Kind tunnel = dataplane::EncapHeader::Kind::kVlan;  // is_tunnel: its kind
  uint8_t parent_count = 0;
  uint64_t parents[kMaxParents] = {};

  std::string_view history_str() const { return std::string_view(history, history_len); }
  // Zeek's conn_state for what was seen.
  std::string_view connState() const;
  bool tcpClosed() const { return orig.rst || resp.rst || (orig.fin && resp.fin); }
  // Whether a packet at ts_ns belongs to a new record (see zeek_removal_ns).
  bool removedBefore(uint64_t ts_ns) const {
    return (zeek_removal_ns != 0 && ts_ns > zeek_removal_ns) ||
           (zeek_attempt_ns != 0 && ts_ns > zeek_attempt_ns && !resp.any && !orig.fin &&
            !orig.reset);
  }
  // Whether `p` was sent by the sender of the record's first packet (TCP and UDP).
  bool fromFirstSender(const dataplane::ParsedPacket& p) const {
    return flipped ? (p.src == resp_h && p.sport == resp_p)
                   : (p.src == orig_h && p.sport == orig_p);
  }
  // "C" followed by 17 base-62 characters, derived from seq: stable across runs.
  std::string uid() const { return uidOf(seq); }
  static std::string uidOf(uint64_t seq);
  // Adds a tunnel's record (its seq) to parents, once.
  void addParent(uint64_t parent_seq);

  // Sets the endpoints from the record's first packet, sent by its originator unless `reply`.
  // A TCP SYN-ACK as first packet flips the roles (see `flipped`), and so, when not `reply`, does
  // another first packet that is not a SYN when it comes from a likely server port
  // (likelyServerPort()) to one that is not, as Zeek guesses the responder of a connection it did
  // not see open.
  void begin(const dataplane::ParsedPacket& p, bool reply);
  // Adds one packet. `from_orig`: sent by the side that sent the record's first packet (or, for
  // a tracked connection, by the engine's originator); the record applies its own flip.
  void observe(const dataplane::ParsedPacket& p, bool from_orig, uint64_t ts_ns);
};

}  // namespace statewall::sim
