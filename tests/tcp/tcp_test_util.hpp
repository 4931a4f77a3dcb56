// Test harness for the TCP tracker: two simulated endpoints that build well-formed segments from
// their own sequence state, and a tracker that sees every segment "on the wire".
#pragma once

#include <cstdint>

#include "statewall/dataplane/tcp_tracker.hpp"

namespace statewall::dataplane::testing {

inline constexpr TcpDir kO = TcpDir::kOriginal;
inline constexpr TcpDir kR = TcpDir::kReply;
inline constexpr uint8_t kSyn = tcp_flag::kSyn;
inline constexpr uint8_t kAck = tcp_flag::kAck;
inline constexpr uint8_t kFin = tcp_flag::kFin;
inline constexpr uint8_t kRst = tcp_flag::kRst;
inline constexpr uint8_t kPsh = tcp_flag::kPsh;

inline bool seqLater(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) > 0;
}

struct Endpoint {
  uint32_t isn = 0;
  uint32_t nxt = 0;     // next sequence number it sends
  uint32_t rcv = 0;     // next sequence it expects from the peer (the ack it sends)
  uint32_t win = 8192;  // raw window field it advertises
  int8_t wscale = -1;   // option it puts on its SYN / SYN-ACK
};

class Conn {
 public:
  explicit Conn(uint32_t isn_o = 1000, uint32_t isn_r = 500000) {
    ep[0].isn = ep[0].nxt = isn_o;
    ep[1].isn = ep[1].nxt = isn_r;
  }

  // A segment from endpoint `d` as its TCP stack would build it now.
  TcpSegment seg(TcpDir d, uint8_t flags, uint32_t len = 0) const {
    const Endpoint& me = ep[idx(d)];
    TcpSegment s;
    s.flags = flags;
    s.seq = (flags & kSyn) != 0 ? me.isn : me.nxt;
    s.ack = (flags & kAck) != 0 ? me.rcv : 0;
    s.win = me.win;
    s.payload_len = len;
    if ((flags & kSyn) != 0) {
      s.wscale = me.wscale;
      s.sack_permitted = true;
    }
    return s;
  }

  // Tracks `s` (the first packet goes through initFromFirst) and, when `deliver`, updates both
  // endpoints as if the segment arrived.
  TcpResult put(TcpDir d, const TcpSegment& s, bool deliver = true) {
    const TcpResult r =
        cs.state() == TcpState::kNone ? cs.initFromFirst(s, mid_stream) : cs.track(d, s, loose);
    if (deliver) {
      Endpoint& me = ep[idx(d)];
      Endpoint& peer = ep[1 - idx(d)];
      const bool syn = (s.flags & kSyn) != 0;
      const uint32_t end = s.seq + s.payload_len + (syn ? 1u : 0u) + ((s.flags & kFin) ? 1u : 0u);
      if (seqLater(end, me.nxt)) me.nxt = end;
      if (syn || seqLater(end, peer.rcv)) peer.rcv = end;
    }
    return r;
  }
  TcpResult send(TcpDir d, uint8_t flags, uint32_t len = 0) { return put(d, seg(d, flags, len)); }

  // Common segments.
  TcpResult syn(TcpDir d) { return send(d, kSyn); }
  TcpResult synAck(TcpDir d) { return send(d, kSyn | kAck); }
  TcpResult ack(TcpDir d) { return send(d, kAck); }
  TcpResult data(TcpDir d, uint32_t len) { return send(d, kAck | kPsh, len); }
  TcpResult fin(TcpDir d) { return send(d, kFin | kAck); }
  // Retransmission of the FIN already sent by d (its sequence is nxt - 1).
  TcpResult finAgain(TcpDir d) {
    TcpSegment s = seg(d, kFin | kAck);
    s.seq = ep[idx(d)].nxt - 1;
    return put(d, s);
  }
  TcpResult rst(TcpDir d) { return send(d, kRst); }

  // Drives a fresh connection through a normal handshake (with some data both ways).
  void establish() {
    syn(kO);
    synAck(kR);
    ack(kO);
    data(kO, 100);
    ack(kR);
    data(kR, 200);
    ack(kO);
  }

  static int idx(TcpDir d) { return static_cast<int>(d); }
  Endpoint& o() { return ep[0]; }
  Endpoint& r() { return ep[1]; }

  TcpConnState cs;
  Endpoint ep[2];
  bool loose = false;
  bool mid_stream = false;
};

// Index of the table row with this key, or -1.
inline int rowIndex(TcpState from, TcpDir dir, TcpEvent ev, TcpGuard guard) {
  const auto rows = tcpTransitions();
  for (size_t i = 0; i < rows.size(); ++i) {
    const TcpTransition& t = rows[i];
    if (t.from == from && t.dir == dir && t.event == ev && t.guard == guard) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

}  // namespace statewall::dataplane::testing
