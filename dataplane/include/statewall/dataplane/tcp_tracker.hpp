// TCP connection tracking (docs/design.md "Connection tracking", TCP): the SYN / SYN-ACK / ACK /
// FIN / RST state machine of one connection plus sequence-window tracking after van Rooij ("Real
// stateful TCP packet filtering in IP Filter"), the idea behind Linux conntrack's tcp_in_window()
// and pf's pf_tcp_track_full(). Written from scratch for statewall; the transition table below is
// our own and is exposed as data (tcpTransitions()) so reports can print and draw it.
//
// TcpConnState is the TCP part of one connection-table entry: 32 bytes of atomics, no locks, no
// allocation, no exceptions. Both directions of one connection may be tracked by different threads
// at the same time; see the concurrency notes on TcpConnState.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "statewall/rules/policy.hpp"

namespace statewall::dataplane {

// TCP header flag bits (byte 13 of the TCP header).
namespace tcp_flag {
inline constexpr uint8_t kFin = 0x01;
inline constexpr uint8_t kSyn = 0x02;
inline constexpr uint8_t kRst = 0x04;
inline constexpr uint8_t kPsh = 0x08;
inline constexpr uint8_t kAck = 0x10;
inline constexpr uint8_t kUrg = 0x20;
inline constexpr uint8_t kEce = 0x40;
inline constexpr uint8_t kCwr = 0x80;
}  // namespace tcp_flag

// Connection states. kNone = not initialised (no tracked packet yet). kSynSent2 = both sides sent a
// SYN and neither has acknowledged the other's yet (simultaneous open). FIN_WAIT = one side sent a
// FIN that is not acknowledged yet; CLOSE_WAIT = that FIN is acknowledged and the other side is
// still open; LAST_ACK = both sides sent a FIN and one is unacknowledged; TIME_WAIT = the last
// pending FIN was acknowledged; CLOSE = a valid RST ended the connection.
enum class TcpState : uint8_t {
  kNone,
  kSynSent,
  kSynSent2,
  kSynRecv,
  kEstablished,
  kFinWait,
  kCloseWait,
  kLastAck,
  kTimeWait,
  kClose,
  kCount
};
inline constexpr size_t kTcpStateCount = static_cast<size_t>(TcpState::kCount);

// "NONE", "SYN_SENT", "SYN_SENT2", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK",
// "TIME_WAIT", "CLOSE".
std::string_view tcpStateName(TcpState s);
// The idle-timeout class of each state (SYN_SENT and SYN_SENT2 share kTcpSynSent; NONE maps to
// kTcpClose: an entry that never got a valid packet should not linger).
rules::TimeoutKey tcpTimeoutKey(TcpState s);

// Direction of a packet relative to the connection's originator (the sender of its first packet).
enum class TcpDir : uint8_t { kOriginal = 0, kReply = 1 };
constexpr TcpDir opposite(TcpDir d) {
  return d == TcpDir::kOriginal ? TcpDir::kReply : TcpDir::kOriginal;
}
std::string_view tcpDirName(TcpDir d);  // "original" / "reply"

// The fields of one TCP segment the tracker needs; the engine fills it from the parser's output.
struct TcpSegment {
  uint8_t flags = 0;  // tcp_flag bits
  uint32_t seq = 0;
  uint32_t ack = 0;          // meaningful when flags has kAck
  uint32_t win = 0;          // raw 16-bit header value (not scaled)
  uint32_t payload_len = 0;  // TCP payload bytes (after the TCP header and options)
  int8_t wscale = -1;        // window-scale option (SYN / SYN-ACK only); -1 = absent
  bool sack_permitted = false;
};

// What a segment's flags say, before any state is consulted. PSH, ECE and CWR are ignored, URG is
// allowed with ACK. kInvalid: any other combination (SYN+FIN, SYN+RST, FIN+RST, FIN without ACK,
// no flags at all, ...).
enum class TcpEvent : uint8_t { kSegSyn, kSegSynAck, kSegFin, kSegAck, kSegRst, kSegInvalid };
inline constexpr size_t kTcpEventCount = 5;  // events that have rows in the table (not kInvalid)
TcpEvent tcpEventOf(uint8_t flags);
std::string_view tcpEventName(TcpEvent e);  // "SYN", "SYN-ACK", "FIN", "ACK", "RST", "INVALID"

// A condition that refines a row: rows with the same (from, dir, event) are tried in table order
// and the first whose guard holds applies; the last row of each group has kAlways.
enum class TcpGuard : uint8_t {
  kAlways,
  kFirstAckOfSyn,   // the sender has not acknowledged the peer's SYN before (its handshake half)
  kAcksPendingFin,  // the segment acknowledges a FIN of the peer that was not acknowledged yet
  kFinRepeated,     // the sender's FIN was seen before: this FIN is a retransmission
};
std::string_view tcpGuardName(TcpGuard g);  // "", "first ACK of the peer's SYN", ...

// What a row does with a segment.
enum class TcpAction : uint8_t {
  kTrack,    // window-checked (van Rooij); if it passes (or the check is loose) move to `to`
  kPass,     // accept without a window check and without a state change
  kReset,    // RST validated by sequence number; at the expected sequence it moves to CLOSE
  kReopen,   // the caller replaces the entry with a new connection opened by this SYN
  kInvalid,  // never valid in this state, loose or not
};
std::string_view tcpActionName(TcpAction a);  // "track", "pass", "reset", "reopen", "invalid"

struct TcpTransition {
  TcpState from;
  TcpDir dir;
  TcpEvent event;
  TcpGuard guard;
  TcpAction action;
  TcpState to;       // == from for rows that keep the state; kSynSent for kReopen
  const char* what;  // static text: why the row exists, or the reason for kInvalid rows
};

// The whole transition table, grouped by (from, dir, event), guarded rows first. Rows with from ==
// kNone are the first packet of a connection (initFromFirst, original direction only).
std::span<const TcpTransition> tcpTransitions();
template <class Fn>
void forEachTransition(Fn&& fn) {
  for (const TcpTransition& t : tcpTransitions())
    fn(t);
}

enum class TcpVerdict : uint8_t {
  kAccept,   // valid for the state machine and the windows (or loose)
  kInvalid,  // fails the state machine or the window check; the state is unchanged
  kReopen,   // a SYN on a TIME_WAIT/CLOSE connection: the caller replaces the entry with a new
             // connection whose originator is this packet's sender (the entry is left untouched)
};
std::string_view tcpVerdictName(TcpVerdict v);  // "accept", "invalid", "reopen"

struct TcpResult {
  TcpVerdict verdict = TcpVerdict::kInvalid;
  TcpState before = TcpState::kNone;
  TcpState after = TcpState::kNone;
  const char* why = "";     // static text, never null
  bool closed = false;      // this RST moved the connection to CLOSE
  bool unchecked = false;   // accepted without passing the window check: it failed and the call
                            // was loose, or a picked-up connection is still learning its windows
  int16_t transition = -1;  // index of the applied row in tcpTransitions(); -1 = none
};

// The control word's layout and the helpers that the inline fast path (TcpConnState::
// trackEstablishedAck) shares with tcp_tracker.cpp. Not an API.
namespace tcp_detail {

// Sequence arithmetic modulo 2^32.
constexpr bool seqBefore(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) < 0;
}
constexpr bool seqAfter(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) > 0;
}

// Raises `x` to `v` if `v` is later in sequence space; never moves it backwards. Lock-free: a
// failed CAS means another thread moved x, and we re-compare against the newer value.
inline void advanceSeq(std::atomic<uint32_t>& x, uint32_t v) {
  uint32_t cur = x.load(std::memory_order_acquire);
  while (seqAfter(v, cur)) {
    if (x.compare_exchange_weak(cur, v, std::memory_order_acq_rel, std::memory_order_acquire)) {
      return;
    }
  }
}

// An acknowledgement word (TcpConnState::acks_): two sequence numbers that the same direction's
// acknowledgements set, so that one CAS moves both: its highest ack (low half) and how far the
// other direction may send, that ack + its window (high half, the other direction's maxend).
constexpr uint64_t packAcks(uint32_t maxack, uint32_t peer_maxend) {
  return uint64_t{peer_maxend} << 32 | maxack;
}
constexpr uint32_t maxackOf(uint64_t w) {
  return static_cast<uint32_t>(w);
}
constexpr uint32_t peerMaxendOf(uint64_t w) {
  return static_cast<uint32_t>(w >> 32);
}

// Raises each half of the acknowledgement word `x` that is asked to move (move_ack, move_edge)
// to its value (ack, edge) if that is later in sequence space; never moves a half backwards.
// `cur`: a recent load of x (the CAS corrects a stale one). One CAS when anything moves, none
// otherwise; a failed CAS re-compares both halves against the newer word.
inline void advanceAcks(std::atomic<uint64_t>& x, uint64_t cur, bool move_ack, uint32_t ack,
                        bool move_edge, uint32_t edge) {
  for (;;) {
    const uint32_t old_ack = maxackOf(cur);
    const uint32_t old_edge = peerMaxendOf(cur);
    const uint32_t new_ack = move_ack && seqAfter(ack, old_ack) ? ack : old_ack;
    const uint32_t new_edge = move_edge && seqAfter(edge, old_edge) ? edge : old_edge;
    if (new_ack == old_ack && new_edge == old_edge) return;
    if (x.compare_exchange_weak(cur, packAcks(new_ack, new_edge), std::memory_order_acq_rel,
                                std::memory_order_acquire)) {
      return;
    }
  }
}

// The control word.
//   bits 0-3    state
//   bit 4       picked up mid-stream (window scales unknown: assume the maximum, 14)
//   bit 5       window scaling negotiated (both SYNs carried the option)
//   bits 8-15   flags of the original direction, bits 16-23 of the reply direction (DirFlag)
//   bits 24-27  window-scale option of the original direction, 28-31 of the reply direction
//   bits 32-47  largest window the original direction advertised, 48-63 the reply direction,
//               in units of that direction's scale (bytes while the scale is not negotiated)
inline constexpr uint64_t kStateMask = 0xF;
inline constexpr uint64_t kPickupBit = uint64_t{1} << 4;
inline constexpr uint64_t kScaleNegotiatedBit = uint64_t{1} << 5;
inline constexpr unsigned kMaxWscale = 14;           // RFC 7323 limit
inline constexpr uint32_t kMaxAckWindowMin = 66000;  // ACK lower-bound slack when windows are small

enum DirFlag : uint64_t {
  kLearned = 0x01,    // a packet of this direction initialised its bounds
  kWscaleOpt = 0x02,  // its SYN carried the window-scale option
  kSackPerm = 0x04,   // its SYN carried SACK-permitted
  kFinSent = 0x08,
  kFinAcked = 0x10,   // the peer acknowledged its FIN
  kAckedSyn = 0x20,   // it acknowledged the peer's SYN
  kMaxAckSet = 0x40,  // its maxack (the low half of its acknowledgement word) holds an ack it sent
};

constexpr unsigned flagShift(int d) {
  return 8 + 8 * static_cast<unsigned>(d);
}
constexpr unsigned scaleShift(int d) {
  return 24 + 4 * static_cast<unsigned>(d);
}
constexpr unsigned winShift(int d) {
  return 32 + 16 * static_cast<unsigned>(d);
}

// The single row of (ESTABLISHED, original / reply, ACK) in tcpTransitions() (tcp_tracker.cpp
// checks the indices at compile time) and its text.
inline constexpr int16_t kEstablishedAckRow[2] = {42, 47};
extern const char kEstablishedAckWhat[];

}  // namespace tcp_detail

// A consistent-enough copy of one direction's tracking data, for logs and tests.
struct TcpDirInfo {
  bool learned = false;         // a packet of this direction was tracked
  bool wscale_option = false;   // its SYN carried the window-scale option
  bool sack_permitted = false;  // its SYN carried SACK-permitted
  bool fin_sent = false;
  bool fin_acked = false;
  bool acked_syn = false;  // it acknowledged the peer's SYN
  uint8_t scale = 0;       // effective window scale applied to its windows (14 when unknown)
  uint32_t end = 0;        // highest seq + len sent
  uint32_t maxend = 0;     // highest seq it may send (peer's ack + window)
  uint32_t maxack = 0;     // highest ack it sent
  uint32_t maxwin = 0;     // largest window it advertised, in bytes
};

// The TCP state of one connection. Layout: one 64-bit control word (state, per-direction flags,
// window scales and maximum windows) and, per direction, the three sequence bounds: its end (the
// highest sequence it sent), and in the direction's acknowledgement word its maxack (the highest
// ack it sent) with the other direction's maxend (that ack + its window): the two bounds an ACK
// moves, in one word so that one CAS moves both.
//
// Concurrency (who may call what):
// - initFromFirst() only before the entry is published to other threads (plain relaxed stores;
//   the table's publication provides the release).
// - track(), state() and info() from any number of threads at once, for either direction.
//
// Why it is correct without locks:
// - Every state change, and every change of a flag, scale or maximum window, is one CAS on the
//   control word computed from a snapshot of it; on conflict track() recomputes everything from the
//   new snapshot. So state transitions are linearised by that CAS (or, for packets that change
//   nothing in the word, by the snapshot load) and a packet never sees half of another's update.
// - The sequence bounds (end, maxend, maxack) only move forward in sequence space, by CAS loops
//   that keep the later of two values (the two halves of an acknowledgement word each
//   independently), before the control CAS. Each bound has one writing direction (end and maxack
//   by the sender, maxend by the peer's acknowledgements). A thread may therefore
//   check a packet against bounds that are a little older than the newest packet of the other
//   direction: that is exactly network reordering, which the van Rooij bounds already tolerate
//   (one window of slack backwards), and bounds never move backwards. Causally related packets
//   (an ACK of data, an ACK of a FIN) cannot overtake: the ACK only exists after the data was
//   forwarded, i.e. after its track() returned.
// - A direction's first packet initialises its bounds with plain stores before the CAS that sets
//   its "learned" flag (release), so a thread that sees the flag (acquire) sees the bounds.
//   Two packets of the same unlearned direction racing both write plausible values; one CAS wins.
class TcpConnState {
 public:
  constexpr TcpConnState() = default;
  TcpConnState(const TcpConnState&) = delete;
  TcpConnState& operator=(const TcpConnState&) = delete;

  // Initialises the entry from the connection's first packet (direction kOriginal). A SYN opens
  // normally (SYN_SENT). Any other packet is a mid-stream pickup: allowed only when `mid_stream`
  // (the caller's rules permit it) and only for an ACK-class packet; it creates an ESTABLISHED
  // entry whose window scales are unknown and that is loose until both directions were seen.
  // Returns kAccept, or kInvalid (state left kNone) when the packet cannot open a connection.
  TcpResult initFromFirst(const TcpSegment& seg, bool mid_stream) noexcept;

  // Tracks one packet of direction `dir`. `loose`: window failures do not make the packet INVALID
  // (like Linux nf_conntrack_tcp_be_liberal) and the state still advances; the flag and state
  // checks and the RST sequence check still apply.
  // An ACK of an ESTABLISHED connection that passes the window check takes the inline fast
  // path (trackEstablishedAck); every other packet takes the general algorithm, trackGeneral().
  TcpResult track(TcpDir dir, const TcpSegment& seg, bool loose) noexcept {
    TcpResult r;
    if (dir == TcpDir::kOriginal ? trackEstablishedAck<0>(seg, &r)
                                 : trackEstablishedAck<1>(seg, &r)) {
      return r;
    }
    return trackGeneral(dir, seg, loose);
  }
  // track() without the fast path: the reference the fast path is tested against (tests/tcp
  // compare the two on random segment sequences). Same contract as track().
  TcpResult trackGeneral(TcpDir dir, const TcpSegment& seg, bool loose) noexcept;

  // The fast path alone, for the packet most connections carry: an ACK (with or without data)
  // of an ESTABLISHED connection whose two sides are learned and have sent no FIN, that passes
  // the window check and does not raise its sender's largest window. It is the general
  // algorithm specialised to that case (the same loads, window check and bound advances in the
  // same order, and no control-word write: the general algorithm writes none there either), so
  // the same concurrency argument holds. Returns true with *out as track() would set it;
  // returns false, having written nothing, for every other packet (the general algorithm then
  // decides it, whatever `loose` is). kDir: 0 original, 1 reply.
  template <int kDir>
  bool trackEstablishedAck(const TcpSegment& seg, TcpResult* out) noexcept;

  TcpState state() const noexcept;
  bool pickedUp() const noexcept;  // created by a mid-stream pickup
  TcpDirInfo info(TcpDir dir) const noexcept;

 private:
  friend struct TcpTrackImpl;  // the tracking algorithm, in tcp_tracker.cpp

  std::atomic<uint64_t> ctl_{0};
  std::atomic<uint32_t> end_[2] = {};   // per direction: the highest seq + len it sent
  std::atomic<uint64_t> acks_[2] = {};  // per direction: tcp_detail::packAcks(maxack, peer maxend)
};

static_assert(sizeof(TcpConnState) <= 32, "TCP state must fit in half of a 64-byte IPv4 entry");

template <int kDir>
inline bool TcpConnState::trackEstablishedAck(const TcpSegment& seg, TcpResult* out) noexcept {
  using namespace tcp_detail;
  constexpr int s = kDir;
  constexpr int r = 1 - kDir;
  // tcpEventOf() == kSegAck: ACK with only PSH, ECE, CWR or URG besides (so no RST: has_ack).
  if ((seg.flags & ~(tcp_flag::kPsh | tcp_flag::kEce | tcp_flag::kCwr | tcp_flag::kUrg)) !=
      tcp_flag::kAck) {
    return false;
  }
  const uint64_t c = ctl_.load(std::memory_order_acquire);
  // ESTABLISHED; the sender learned, its ACK flags already set (so the general algorithm's flag
  // updates change nothing) and no FIN sent (its FIN flag would not change either); the receiver
  // learned (the ACK checks apply) and no FIN sent (the pending-FIN guard cannot hold).
  constexpr uint64_t kSndNeed = kLearned | kMaxAckSet | kAckedSyn;
  const uint64_t snd_flags = c >> flagShift(s);
  const uint64_t rcv_flags = c >> flagShift(r);
  if ((c & kStateMask) != static_cast<uint64_t>(TcpState::kEstablished) ||
      (snd_flags & (kSndNeed | kFinSent)) != kSndNeed ||
      (rcv_flags & (kLearned | kFinSent)) != kLearned) {
    return false;
  }
  // A window above the sender's largest so far changes the control word: general algorithm.
  const uint32_t win = seg.win < 0xFFFF ? seg.win : 0xFFFF;
  const uint32_t snd_win_units = static_cast<uint32_t>(c >> winShift(s)) & 0xFFFF;
  if (win > snd_win_units) return false;
  // Effective window scales (Ctl::effScale): 14 for a pickup, the options once negotiated.
  const unsigned snd_scale = (c & kPickupBit) != 0 ? kMaxWscale
                             : (c & kScaleNegotiatedBit) != 0
                                 ? static_cast<unsigned>(c >> scaleShift(s)) & 0xF
                                 : 0;
  const unsigned rcv_scale = (c & kPickupBit) != 0 ? kMaxWscale
                             : (c & kScaleNegotiatedBit) != 0
                                 ? static_cast<unsigned>(c >> scaleShift(r)) & 0xF
                                 : 0;
  const uint32_t snd_maxwin = snd_win_units << snd_scale;
  const uint32_t rcv_maxwin = (static_cast<uint32_t>(c >> winShift(r)) & 0xFFFF) << rcv_scale;
  const uint32_t rcv_end = end_[r].load(std::memory_order_acquire);
  const uint64_t snd_acks = acks_[s].load(std::memory_order_acquire);
  const uint32_t rcv_maxend = peerMaxendOf(snd_acks);
  const uint32_t snd_end = end_[s].load(std::memory_order_acquire);
  const uint32_t snd_maxend = peerMaxendOf(acks_[r].load(std::memory_order_acquire));
  const uint32_t snd_maxack = maxackOf(snd_acks);
  // The van Rooij bounds (windowCheck() in tcp_tracker.cpp) for this case. A bare ACK has
  // nothing sequenced: its end is the sender's end so far.
  const uint32_t end = seg.seq + seg.payload_len;
  const uint32_t data_end = end == seg.seq ? snd_end : end;
  const uint32_t ack_slack = snd_maxwin > kMaxAckWindowMin ? snd_maxwin : kMaxAckWindowMin;
  if (seqAfter(data_end, snd_maxend) || seqBefore(data_end, snd_end - rcv_maxwin) ||
      seqAfter(seg.ack, rcv_end) || seqBefore(seg.ack, rcv_end - ack_slack)) {
    return false;
  }
  // The general algorithm's advances, in its order; each writes only when its bound moves on.
  if (seqAfter(data_end, snd_end)) advanceSeq(end_[s], data_end);
  const uint32_t win_bytes = win << snd_scale;
  const uint32_t edge = seg.ack + (win_bytes > 1 ? win_bytes : 1);
  const bool ack_moves = seqAfter(seg.ack, snd_maxack);
  const bool edge_moves = seqAfter(edge, rcv_maxend);
  if (ack_moves || edge_moves) advanceAcks(acks_[s], snd_acks, true, seg.ack, true, edge);
  out->verdict = TcpVerdict::kAccept;
  out->before = TcpState::kEstablished;
  out->after = TcpState::kEstablished;
  out->why = kEstablishedAckWhat;
  out->closed = false;
  out->unchecked = false;
  out->transition = kEstablishedAckRow[s];
  return true;
}
static_assert(std::atomic<uint64_t>::is_always_lock_free &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "lock-free atomics are required");

}  // namespace statewall::dataplane
