// TCP state machine and window tracking; see tcp_tracker.hpp for the model and the concurrency
// argument. Sequence numbers are compared modulo 2^32 (seqBefore / seqAfter).
#include "statewall/dataplane/tcp_tracker.hpp"

#include <algorithm>
#include <array>

namespace statewall::dataplane {

namespace tcp_detail {
const char kEstablishedAckWhat[] = "data or ACK";
}  // namespace tcp_detail

namespace {

// Sequence arithmetic, the control word's layout and advanceSeq() are in tcp_tracker.hpp
// (tcp_detail), shared with the inline fast path.
using namespace tcp_detail;
using S = TcpState;
using E = TcpEvent;
using G = TcpGuard;
using A = TcpAction;
constexpr TcpDir kO = TcpDir::kOriginal;
constexpr TcpDir kR = TcpDir::kReply;

// ---------------------------------------------------------------------------------------------
// The transition table. One group of rows per (from, dir, event); inside a group the guarded rows
// come first and the last row (kAlways) is the default. kTrack rows are window-checked; a kTrack
// row whose `to` equals `from` accepts the packet without a state change (retransmissions,
// ordinary data, late packets). tableIsWellFormed() below checks the shape at compile time.
// ---------------------------------------------------------------------------------------------
constexpr TcpTransition kRows[] = {
    // NONE: the first packet of a connection (initFromFirst), always the original direction.
    {S::kNone, kO, E::kSegSyn, G::kAlways, A::kTrack, S::kSynSent, "a SYN opens the connection"},
    {S::kNone, kO, E::kSegSynAck, G::kAlways, A::kInvalid, S::kNone,
     "SYN-ACK without a tracked SYN"},
    {S::kNone, kO, E::kSegFin, G::kAlways, A::kInvalid, S::kNone, "FIN cannot open a connection"},
    {S::kNone, kO, E::kSegAck, G::kAlways, A::kTrack, S::kEstablished,
     "mid-stream pickup: a loose entry that learns the windows from traffic"},
    {S::kNone, kO, E::kSegRst, G::kAlways, A::kInvalid, S::kNone, "RST cannot open a connection"},

    // SYN_SENT: the originator's SYN is out, nothing from the responder yet.
    {S::kSynSent, kO, E::kSegSyn, G::kAlways, A::kTrack, S::kSynSent,
     "retransmitted SYN, or a new attempt with a new ISN (restarts the originator's window)"},
    {S::kSynSent, kO, E::kSegSynAck, G::kAlways, A::kInvalid, S::kSynSent,
     "SYN-ACK from the originator before the responder's SYN"},
    {S::kSynSent, kO, E::kSegFin, G::kAlways, A::kInvalid, S::kSynSent,
     "FIN before the handshake completed"},
    {S::kSynSent, kO, E::kSegAck, G::kAlways, A::kInvalid, S::kSynSent,
     "ACK from the originator before the responder answered"},
    {S::kSynSent, kO, E::kSegRst, G::kAlways, A::kReset, S::kClose,
     "the originator aborts its connection attempt"},
    {S::kSynSent, kR, E::kSegSyn, G::kAlways, A::kTrack, S::kSynSent2,
     "simultaneous open: the responder sends a SYN of its own"},
    {S::kSynSent, kR, E::kSegSynAck, G::kAlways, A::kTrack, S::kSynRecv,
     "the responder acknowledges the SYN"},
    {S::kSynSent, kR, E::kSegFin, G::kAlways, A::kInvalid, S::kSynSent,
     "FIN before the handshake completed"},
    {S::kSynSent, kR, E::kSegAck, G::kAlways, A::kPass, S::kSynSent,
     "ACK without SYN from the responder (a stale connection answering the SYN): passed so that "
     "the originator can reset it"},
    {S::kSynSent, kR, E::kSegRst, G::kAlways, A::kReset, S::kClose,
     "the responder refuses the SYN (any sequence number; an ACK, if set, within the SYN's "
     "window)"},

    // SYN_SENT2: both sides sent a SYN, neither is acknowledged.
    {S::kSynSent2, kO, E::kSegSyn, G::kAlways, A::kTrack, S::kSynSent2, "retransmitted SYN"},
    {S::kSynSent2, kO, E::kSegSynAck, G::kAlways, A::kTrack, S::kSynRecv,
     "the originator acknowledges the responder's SYN"},
    {S::kSynSent2, kO, E::kSegFin, G::kAlways, A::kInvalid, S::kSynSent2,
     "FIN before the handshake completed"},
    {S::kSynSent2, kO, E::kSegAck, G::kAlways, A::kInvalid, S::kSynSent2,
     "ACK without SYN during a simultaneous open"},
    {S::kSynSent2, kO, E::kSegRst, G::kAlways, A::kReset, S::kClose,
     "reset during a simultaneous open"},
    {S::kSynSent2, kR, E::kSegSyn, G::kAlways, A::kTrack, S::kSynSent2, "retransmitted SYN"},
    {S::kSynSent2, kR, E::kSegSynAck, G::kAlways, A::kTrack, S::kSynRecv,
     "the responder acknowledges the originator's SYN"},
    {S::kSynSent2, kR, E::kSegFin, G::kAlways, A::kInvalid, S::kSynSent2,
     "FIN before the handshake completed"},
    {S::kSynSent2, kR, E::kSegAck, G::kAlways, A::kInvalid, S::kSynSent2,
     "ACK without SYN during a simultaneous open"},
    {S::kSynSent2, kR, E::kSegRst, G::kAlways, A::kReset, S::kClose,
     "reset during a simultaneous open"},

    // SYN_RECV: one side acknowledged the other's SYN; the other side's acknowledgement is due.
    {S::kSynRecv, kO, E::kSegSyn, G::kAlways, A::kTrack, S::kSynRecv,
     "retransmitted SYN (a new ISN fails the window check)"},
    {S::kSynRecv, kO, E::kSegSynAck, G::kFirstAckOfSyn, A::kTrack, S::kEstablished,
     "simultaneous open: the originator's SYN-ACK completes the handshake"},
    {S::kSynRecv, kO, E::kSegSynAck, G::kAlways, A::kTrack, S::kSynRecv,
     "retransmitted SYN-ACK of a simultaneous open"},
    {S::kSynRecv, kO, E::kSegFin, G::kAlways, A::kTrack, S::kFinWait,
     "the originator closes right after the handshake"},
    {S::kSynRecv, kO, E::kSegAck, G::kFirstAckOfSyn, A::kTrack, S::kEstablished,
     "the originator acknowledges the SYN-ACK: handshake complete"},
    {S::kSynRecv, kO, E::kSegAck, G::kAlways, A::kTrack, S::kSynRecv,
     "the originator's half is done; waiting for the responder's acknowledgement"},
    {S::kSynRecv, kO, E::kSegRst, G::kAlways, A::kReset, S::kClose, "reset during the handshake"},
    {S::kSynRecv, kR, E::kSegSyn, G::kAlways, A::kTrack, S::kSynRecv,
     "retransmitted SYN of a simultaneous open"},
    {S::kSynRecv, kR, E::kSegSynAck, G::kFirstAckOfSyn, A::kTrack, S::kEstablished,
     "simultaneous open: the responder's SYN-ACK completes the handshake"},
    {S::kSynRecv, kR, E::kSegSynAck, G::kAlways, A::kTrack, S::kSynRecv,
     "retransmitted SYN-ACK (a new ISN restarts the responder's window, e.g. SYN cookies)"},
    {S::kSynRecv, kR, E::kSegFin, G::kAlways, A::kTrack, S::kFinWait,
     "the responder closes right after the handshake"},
    {S::kSynRecv, kR, E::kSegAck, G::kFirstAckOfSyn, A::kTrack, S::kEstablished,
     "the responder acknowledges the originator's SYN-ACK: handshake complete"},
    {S::kSynRecv, kR, E::kSegAck, G::kAlways, A::kTrack, S::kSynRecv,
     "data or ACK from the responder before the originator's handshake ACK"},
    {S::kSynRecv, kR, E::kSegRst, G::kAlways, A::kReset, S::kClose, "reset during the handshake"},

    // ESTABLISHED.
    {S::kEstablished, kO, E::kSegSyn, G::kAlways, A::kTrack, S::kEstablished,
     "late retransmitted SYN (a new SYN on an open connection fails the window check)"},
    {S::kEstablished, kO, E::kSegSynAck, G::kAlways, A::kTrack, S::kEstablished,
     "late retransmitted SYN-ACK"},
    {S::kEstablished, kO, E::kSegFin, G::kAlways, A::kTrack, S::kFinWait,
     "the originator closes first"},
    {S::kEstablished, kO, E::kSegAck, G::kAlways, A::kTrack, S::kEstablished, kEstablishedAckWhat},
    {S::kEstablished, kO, E::kSegRst, G::kAlways, A::kReset, S::kClose,
     "reset of an open connection"},
    {S::kEstablished, kR, E::kSegSyn, G::kAlways, A::kTrack, S::kEstablished,
     "late retransmitted SYN (a new SYN on an open connection fails the window check)"},
    {S::kEstablished, kR, E::kSegSynAck, G::kAlways, A::kTrack, S::kEstablished,
     "late retransmitted SYN-ACK"},
    {S::kEstablished, kR, E::kSegFin, G::kAlways, A::kTrack, S::kFinWait,
     "the responder closes first"},
    {S::kEstablished, kR, E::kSegAck, G::kAlways, A::kTrack, S::kEstablished, kEstablishedAckWhat},
    {S::kEstablished, kR, E::kSegRst, G::kAlways, A::kReset, S::kClose,
     "reset of an open connection"},

    // FIN_WAIT: one FIN seen and not acknowledged; either direction may be the closer.
    {S::kFinWait, kO, E::kSegSyn, G::kAlways, A::kTrack, S::kFinWait, "late retransmitted SYN"},
    {S::kFinWait, kO, E::kSegSynAck, G::kAlways, A::kTrack, S::kFinWait,
     "late retransmitted SYN-ACK"},
    {S::kFinWait, kO, E::kSegFin, G::kFinRepeated, A::kTrack, S::kFinWait, "retransmitted FIN"},
    {S::kFinWait, kO, E::kSegFin, G::kAlways, A::kTrack, S::kLastAck,
     "the originator closes too: FINs in both directions"},
    {S::kFinWait, kO, E::kSegAck, G::kAcksPendingFin, A::kTrack, S::kCloseWait,
     "the originator acknowledges the responder's FIN"},
    {S::kFinWait, kO, E::kSegAck, G::kAlways, A::kTrack, S::kFinWait,
     "data or ACK while one FIN is unacknowledged"},
    {S::kFinWait, kO, E::kSegRst, G::kAlways, A::kReset, S::kClose, "reset while closing"},
    {S::kFinWait, kR, E::kSegSyn, G::kAlways, A::kTrack, S::kFinWait, "late retransmitted SYN"},
    {S::kFinWait, kR, E::kSegSynAck, G::kAlways, A::kTrack, S::kFinWait,
     "late retransmitted SYN-ACK"},
    {S::kFinWait, kR, E::kSegFin, G::kFinRepeated, A::kTrack, S::kFinWait, "retransmitted FIN"},
    {S::kFinWait, kR, E::kSegFin, G::kAlways, A::kTrack, S::kLastAck,
     "the responder closes too: FINs in both directions"},
    {S::kFinWait, kR, E::kSegAck, G::kAcksPendingFin, A::kTrack, S::kCloseWait,
     "the responder acknowledges the originator's FIN"},
    {S::kFinWait, kR, E::kSegAck, G::kAlways, A::kTrack, S::kFinWait,
     "data or ACK while one FIN is unacknowledged"},
    {S::kFinWait, kR, E::kSegRst, G::kAlways, A::kReset, S::kClose, "reset while closing"},

    // CLOSE_WAIT: one side's FIN is acknowledged, the other side is still open.
    {S::kCloseWait, kO, E::kSegSyn, G::kAlways, A::kTrack, S::kCloseWait, "late retransmitted SYN"},
    {S::kCloseWait, kO, E::kSegSynAck, G::kAlways, A::kTrack, S::kCloseWait,
     "late retransmitted SYN-ACK"},
    {S::kCloseWait, kO, E::kSegFin, G::kFinRepeated, A::kTrack, S::kCloseWait, "retransmitted FIN"},
    {S::kCloseWait, kO, E::kSegFin, G::kAlways, A::kTrack, S::kLastAck,
     "the originator, still open, closes too"},
    {S::kCloseWait, kO, E::kSegAck, G::kAlways, A::kTrack, S::kCloseWait,
     "data or ACK while half-closed"},
    {S::kCloseWait, kO, E::kSegRst, G::kAlways, A::kReset, S::kClose, "reset while closing"},
    {S::kCloseWait, kR, E::kSegSyn, G::kAlways, A::kTrack, S::kCloseWait, "late retransmitted SYN"},
    {S::kCloseWait, kR, E::kSegSynAck, G::kAlways, A::kTrack, S::kCloseWait,
     "late retransmitted SYN-ACK"},
    {S::kCloseWait, kR, E::kSegFin, G::kFinRepeated, A::kTrack, S::kCloseWait, "retransmitted FIN"},
    {S::kCloseWait, kR, E::kSegFin, G::kAlways, A::kTrack, S::kLastAck,
     "the responder, still open, closes too"},
    {S::kCloseWait, kR, E::kSegAck, G::kAlways, A::kTrack, S::kCloseWait,
     "data or ACK while half-closed"},
    {S::kCloseWait, kR, E::kSegRst, G::kAlways, A::kReset, S::kClose, "reset while closing"},

    // LAST_ACK: FINs in both directions, at least one unacknowledged.
    {S::kLastAck, kO, E::kSegSyn, G::kAlways, A::kTrack, S::kLastAck, "late retransmitted SYN"},
    {S::kLastAck, kO, E::kSegSynAck, G::kAlways, A::kTrack, S::kLastAck,
     "late retransmitted SYN-ACK"},
    {S::kLastAck, kO, E::kSegFin, G::kAcksPendingFin, A::kTrack, S::kTimeWait,
     "retransmitted FIN that acknowledges the responder's FIN"},
    {S::kLastAck, kO, E::kSegFin, G::kAlways, A::kTrack, S::kLastAck, "retransmitted FIN"},
    {S::kLastAck, kO, E::kSegAck, G::kAcksPendingFin, A::kTrack, S::kTimeWait,
     "the originator acknowledges the responder's FIN"},
    {S::kLastAck, kO, E::kSegAck, G::kAlways, A::kTrack, S::kLastAck, "ACK while a FIN is pending"},
    {S::kLastAck, kO, E::kSegRst, G::kAlways, A::kReset, S::kClose, "reset while closing"},
    {S::kLastAck, kR, E::kSegSyn, G::kAlways, A::kTrack, S::kLastAck, "late retransmitted SYN"},
    {S::kLastAck, kR, E::kSegSynAck, G::kAlways, A::kTrack, S::kLastAck,
     "late retransmitted SYN-ACK"},
    {S::kLastAck, kR, E::kSegFin, G::kAcksPendingFin, A::kTrack, S::kTimeWait,
     "retransmitted FIN that acknowledges the originator's FIN"},
    {S::kLastAck, kR, E::kSegFin, G::kAlways, A::kTrack, S::kLastAck, "retransmitted FIN"},
    {S::kLastAck, kR, E::kSegAck, G::kAcksPendingFin, A::kTrack, S::kTimeWait,
     "the responder acknowledges the originator's FIN"},
    {S::kLastAck, kR, E::kSegAck, G::kAlways, A::kTrack, S::kLastAck, "ACK while a FIN is pending"},
    {S::kLastAck, kR, E::kSegRst, G::kAlways, A::kReset, S::kClose, "reset while closing"},

    // TIME_WAIT: closed by FINs. Late packets pass if they are in the window.
    {S::kTimeWait, kO, E::kSegSyn, G::kAlways, A::kReopen, S::kSynSent,
     "a new SYN reopens the connection"},
    {S::kTimeWait, kO, E::kSegSynAck, G::kAlways, A::kTrack, S::kTimeWait, "late SYN-ACK"},
    {S::kTimeWait, kO, E::kSegFin, G::kAlways, A::kTrack, S::kTimeWait, "late retransmitted FIN"},
    {S::kTimeWait, kO, E::kSegAck, G::kAlways, A::kTrack, S::kTimeWait, "late ACK"},
    {S::kTimeWait, kO, E::kSegRst, G::kAlways, A::kReset, S::kClose,
     "reset after the close (any sequence number)"},
    {S::kTimeWait, kR, E::kSegSyn, G::kAlways, A::kReopen, S::kSynSent,
     "a new SYN from the former responder reopens the connection (roles swap)"},
    {S::kTimeWait, kR, E::kSegSynAck, G::kAlways, A::kTrack, S::kTimeWait, "late SYN-ACK"},
    {S::kTimeWait, kR, E::kSegFin, G::kAlways, A::kTrack, S::kTimeWait, "late retransmitted FIN"},
    {S::kTimeWait, kR, E::kSegAck, G::kAlways, A::kTrack, S::kTimeWait, "late ACK"},
    {S::kTimeWait, kR, E::kSegRst, G::kAlways, A::kReset, S::kClose,
     "reset after the close (any sequence number)"},

    // CLOSE: ended by a RST. Stragglers in the window pass; a SYN starts over.
    {S::kClose, kO, E::kSegSyn, G::kAlways, A::kReopen, S::kSynSent,
     "a new SYN reopens the connection"},
    // A late SYN-ACK after the reset of a connection that had a reply: Linux ignores it (lets
    // it pass), pf and Open vSwitch pass it inside the window. (A reset before any reply removed
    // the entry: a SYN-ACK then finds none.) docs/semantics.md, "After a reset".
    {S::kClose, kO, E::kSegSynAck, G::kAlways, A::kTrack, S::kClose,
     "late SYN-ACK after the reset (checked against the window)"},
    {S::kClose, kO, E::kSegFin, G::kAlways, A::kTrack, S::kClose, "straggler after the reset"},
    {S::kClose, kO, E::kSegAck, G::kAlways, A::kTrack, S::kClose, "straggler after the reset"},
    {S::kClose, kO, E::kSegRst, G::kAlways, A::kReset, S::kClose,
     "repeated reset (any sequence number)"},
    {S::kClose, kR, E::kSegSyn, G::kAlways, A::kReopen, S::kSynSent,
     "a new SYN from the former responder reopens the connection (roles swap)"},
    {S::kClose, kR, E::kSegSynAck, G::kAlways, A::kTrack, S::kClose,
     "late SYN-ACK after the reset (checked against the window)"},
    {S::kClose, kR, E::kSegFin, G::kAlways, A::kTrack, S::kClose, "straggler after the reset"},
    {S::kClose, kR, E::kSegAck, G::kAlways, A::kTrack, S::kClose, "straggler after the reset"},
    {S::kClose, kR, E::kSegRst, G::kAlways, A::kReset, S::kClose,
     "repeated reset (any sequence number)"},
};
constexpr size_t kRowCount = sizeof(kRows) / sizeof(kRows[0]);
static_assert(kRowCount < 256, "row indices are stored in uint8_t");

constexpr size_t keyOf(TcpState s, TcpDir d, TcpEvent e) {
  return (static_cast<size_t>(s) * 2 + static_cast<size_t>(d)) * kTcpEventCount +
         static_cast<size_t>(e);
}
constexpr size_t kKeyCount = kTcpStateCount * 2 * kTcpEventCount;

struct Group {
  uint8_t first = 0;
  uint8_t count = 0;
};

constexpr std::array<Group, kKeyCount> buildIndex() {
  std::array<Group, kKeyCount> idx{};
  for (size_t i = 0; i < kRowCount; ++i) {
    Group& g = idx[keyOf(kRows[i].from, kRows[i].dir, kRows[i].event)];
    if (g.count == 0) g.first = static_cast<uint8_t>(i);
    ++g.count;
  }
  return idx;
}
constexpr std::array<Group, kKeyCount> kIndex = buildIndex();

// Every (state, dir, event) except (NONE, reply, *) has a group; groups are contiguous, end in
// exactly one kAlways row, have no repeated guard, and kReopen/kInvalid rows are never guarded.
constexpr bool tableIsWellFormed() {
  for (size_t s = 0; s < kTcpStateCount; ++s) {
    for (size_t d = 0; d < 2; ++d) {
      for (size_t e = 0; e < kTcpEventCount; ++e) {
        const auto st = static_cast<TcpState>(s);
        const auto dir = static_cast<TcpDir>(d);
        const Group g = kIndex[keyOf(st, dir, static_cast<TcpEvent>(e))];
        const bool expected = !(st == S::kNone && dir == kR);
        if ((g.count != 0) != expected) return false;
        for (size_t i = g.first; i < size_t{g.first} + g.count; ++i) {
          const TcpTransition& t = kRows[i];
          if (t.from != st || t.dir != dir || static_cast<size_t>(t.event) != e) return false;
          const bool last = i + 1 == size_t{g.first} + g.count;
          if ((t.guard == G::kAlways) != last) return false;
          for (size_t j = g.first; j < i; ++j) {
            if (kRows[j].guard == t.guard) return false;
          }
          if (t.guard != G::kAlways && (t.action == A::kInvalid || t.action == A::kReopen)) {
            return false;
          }
          if (t.action == A::kReset && t.to != S::kClose) return false;
          if (t.action == A::kReopen && t.to != S::kSynSent) return false;
          if ((t.action == A::kInvalid || t.action == A::kPass) && t.to != t.from) return false;
        }
      }
    }
  }
  return true;
}
static_assert(tableIsWellFormed(), "TCP transition table is malformed");
// The inline fast path (tcp_tracker.hpp) names the single row of (ESTABLISHED, dir, ACK).
static_assert(kIndex[keyOf(S::kEstablished, kO, E::kSegAck)].count == 1 &&
              kIndex[keyOf(S::kEstablished, kO, E::kSegAck)].first == kEstablishedAckRow[0] &&
              kIndex[keyOf(S::kEstablished, kR, E::kSegAck)].count == 1 &&
              kIndex[keyOf(S::kEstablished, kR, E::kSegAck)].first == kEstablishedAckRow[1]);
static_assert(kRows[kEstablishedAckRow[0]].action == A::kTrack &&
              kRows[kEstablishedAckRow[1]].action == A::kTrack);

struct Ctl {
  uint64_t v = 0;

  TcpState state() const { return static_cast<TcpState>(v & kStateMask); }
  void setState(TcpState s) { v = (v & ~kStateMask) | static_cast<uint64_t>(s); }
  bool pickup() const { return (v & kPickupBit) != 0; }
  bool negotiated() const { return (v & kScaleNegotiatedBit) != 0; }
  bool has(int d, uint64_t f) const { return ((v >> flagShift(d)) & f) != 0; }
  void set(int d, uint64_t f) { v |= f << flagShift(d); }
  void clear(int d, uint64_t f) { v &= ~(f << flagShift(d)); }
  unsigned scaleOpt(int d) const { return static_cast<unsigned>((v >> scaleShift(d)) & 0xF); }
  void setScaleOpt(int d, unsigned s) {
    v = (v & ~(uint64_t{0xF} << scaleShift(d))) | (uint64_t{s & 0xF} << scaleShift(d));
  }
  uint32_t winUnits(int d) const { return static_cast<uint32_t>((v >> winShift(d)) & 0xFFFF); }
  void setWinUnits(int d, uint32_t w) {
    v = (v & ~(uint64_t{0xFFFF} << winShift(d))) |
        (uint64_t{std::min<uint32_t>(w, 0xFFFF)} << winShift(d));
  }
  // The shift applied to windows this direction advertises (outside SYNs).
  unsigned effScale(int d) const {
    if (pickup()) return kMaxWscale;
    return negotiated() ? scaleOpt(d) : 0;
  }
  uint32_t maxWinBytes(int d) const { return winUnits(d) << effScale(d); }
};

constexpr uint32_t ceilShift(uint32_t w, unsigned s) {
  return (w + (uint32_t{1} << s) - 1) >> s;
}

const char* const kWhyFlags = "invalid flag combination";
const char* const kWhyUninit = "connection not initialised";
const char* const kWhyNoPickup = "first packet is not a SYN and mid-stream pickup is not allowed";
const char* const kWhySeqOver = "SEQ is over the upper bound (over the window of the receiver)";
const char* const kWhySeqUnder = "SEQ is under the lower bound (older than one receive window)";
const char* const kWhyAckOver = "ACK is over the upper bound (acknowledges data not yet sent)";
const char* const kWhyAckUnder = "ACK is under the lower bound (older than one window)";
const char* const kWhyRstOut = "RST out of window";
const char* const kWhyRstBelowAck =
    "RST below the sequence the receiver acknowledged (outside its window: the receiver drops it)";
const char* const kWhyRstOldConnection =
    "RST answering the responder's stray ACK: it resets an older connection, this attempt goes on";
const char* const kWhyRstInWindow =
    "RST in window but not at the expected sequence number: passed without closing (the receiver "
    "answers it with a challenge ACK)";

TcpResult makeResult(TcpVerdict v, TcpState before, TcpState after, const char* why, int row,
                     bool closed = false) {
  TcpResult r;
  r.verdict = v;
  r.before = before;
  r.after = after;
  r.why = why;
  r.closed = closed;
  r.transition = static_cast<int16_t>(row);
  return r;
}

// The fields of a segment the algorithm derives once.
struct Pkt {
  const TcpSegment& seg;
  TcpEvent event;
  bool syn, fin, rst, has_ack;
  uint32_t end;  // seq + payload + SYN + FIN
  uint32_t win;  // raw window, clamped to 16 bits
};

Pkt makePkt(const TcpSegment& seg, TcpEvent ev) {
  const bool syn = (seg.flags & tcp_flag::kSyn) != 0;
  const bool fin = (seg.flags & tcp_flag::kFin) != 0;
  const bool rst = (seg.flags & tcp_flag::kRst) != 0;
  // Some stacks send RST+ACK with ack 0: treat that ACK as absent.
  const bool has_ack = (seg.flags & tcp_flag::kAck) != 0 && !(rst && seg.ack == 0);
  const uint32_t end = seg.seq + seg.payload_len + (syn ? 1u : 0u) + (fin ? 1u : 0u);
  return Pkt{seg, ev, syn, fin, rst, has_ack, end, std::min<uint32_t>(seg.win, 0xFFFF)};
}

struct BoundsCopy {
  uint32_t end, maxend, maxack;
};

}  // namespace

// The algorithm, with access to TcpConnState's private members.
struct TcpTrackImpl {
  // Direction d's bounds: its end, its maxack (the low half of its acknowledgement word) and its
  // maxend (the high half of the other direction's).
  static BoundsCopy load(const TcpConnState& cs, int d) {
    return BoundsCopy{cs.end_[d].load(std::memory_order_acquire),
                      peerMaxendOf(cs.acks_[1 - d].load(std::memory_order_acquire)),
                      maxackOf(cs.acks_[d].load(std::memory_order_acquire))};
  }
  // Sets one half of an acknowledgement word, leaving the other half as another thread may be
  // moving it.
  static void setHalf(std::atomic<uint64_t>& x, bool high, uint32_t v) {
    uint64_t cur = x.load(std::memory_order_relaxed);
    for (;;) {
      const uint64_t n = high ? packAcks(maxackOf(cur), v) : packAcks(v, peerMaxendOf(cur));
      if (n == cur ||
          x.compare_exchange_weak(cur, n, std::memory_order_relaxed, std::memory_order_relaxed)) {
        return;
      }
    }
  }
  // Overwrites direction d's bounds (a direction learning or restarting: see doTrack()).
  static void store(TcpConnState& cs, int d, const BoundsCopy& v) {
    cs.end_[d].store(v.end, std::memory_order_relaxed);
    setHalf(cs.acks_[1 - d], true, v.maxend);
    setHalf(cs.acks_[d], false, v.maxack);
  }
  // Both directions' bounds of an entry not yet published (init()): plain stores.
  static void storeBoth(TcpConnState& cs, const BoundsCopy& o, const BoundsCopy& r) {
    cs.end_[0].store(o.end, std::memory_order_relaxed);
    cs.end_[1].store(r.end, std::memory_order_relaxed);
    cs.acks_[0].store(packAcks(o.maxack, r.maxend), std::memory_order_relaxed);
    cs.acks_[1].store(packAcks(r.maxack, o.maxend), std::memory_order_relaxed);
  }

  // Installs `n` if the control word still equals `c`; otherwise loads the current word into `c`.
  static bool cas(TcpConnState& cs, Ctl& c, Ctl n) {
    return cs.ctl_.compare_exchange_strong(c.v, n.v, std::memory_order_acq_rel,
                                           std::memory_order_acquire);
  }

  static bool guardHolds(TcpGuard g, Ctl c, int s, int r, const Pkt& p, const BoundsCopy& rcv) {
    switch (g) {
      case G::kAlways:
        return true;
      case G::kFirstAckOfSyn:
        return p.has_ack && !c.has(s, kAckedSyn);
      case G::kAcksPendingFin:
        return p.has_ack && c.has(r, kFinSent) && !c.has(r, kFinAcked) &&
               !seqBefore(p.seg.ack, rcv.end);
      case G::kFinRepeated:
        return c.has(s, kFinSent);
    }
    return false;
  }

  // The van Rooij bounds for a packet from s (with bounds `snd`) to r (bounds `rcv`); returns
  // null when the packet is inside them, else the reason.
  static const char* windowCheck(Ctl c, int s, int r, const Pkt& p, const BoundsCopy& snd,
                                 const BoundsCopy& rcv) {
    uint32_t end = p.end;
    if (end == p.seg.seq) end = snd.end;  // nothing sequenced (a bare ACK): only its ACK matters
    // Data sequenced after the sender's own FIN is not checked apart: Linux, pf and Open vSwitch
    // judge it by the window alone (docs/semantics.md, "Data after a FIN").
    // I: the data ends inside what the receiver said it can take (its ack + window). A FIN right
    // at the edge of a full window is tolerated: its sequence number carries no data.
    if (seqAfter(end - (p.fin ? 1u : 0u), snd.maxend)) return kWhySeqOver;
    // II: the data is not older than one receive window (retransmissions are fine).
    if (seqBefore(end, snd.end - c.maxWinBytes(r))) return kWhySeqUnder;
    if (p.has_ack && c.has(r, kLearned)) {
      // III: nothing is acknowledged that the receiver has not sent.
      if (seqAfter(p.seg.ack, rcv.end)) return kWhyAckOver;
      // IV: the ACK is not older than one window of the sender.
      const uint32_t slack = std::max(c.maxWinBytes(s), kMaxAckWindowMin);
      if (seqBefore(p.seg.ack, rcv.end - slack)) return kWhyAckUnder;
    }
    return nullptr;
  }

  // Sets s's flags, scale option and window from a SYN or SYN-ACK and, when this is the second
  // SYN of the handshake, decides window scaling for both directions (only if both SYNs carried
  // the option; otherwise both scales are 0).
  static void learnFromSyn(Ctl& n, int s, int r, const Pkt& p, bool restart) {
    n.set(s, kLearned);
    n.clear(s, kWscaleOpt | kSackPerm);
    const bool opt = p.seg.wscale >= 0;
    if (opt) n.set(s, kWscaleOpt);
    n.setScaleOpt(s, opt ? std::min<unsigned>(static_cast<unsigned>(p.seg.wscale), kMaxWscale) : 0);
    if (p.seg.sack_permitted) n.set(s, kSackPerm);
    if (n.has(r, kLearned) && !restart) {
      if (n.has(s, kWscaleOpt) && n.has(r, kWscaleOpt)) {
        n.v |= kScaleNegotiatedBit;
        // r's window so far came from its SYN, in bytes: convert it to r's units.
        n.setWinUnits(r, ceilShift(n.winUnits(r), n.scaleOpt(r)));
      } else {
        n.setScaleOpt(s, 0);
        n.setScaleOpt(r, 0);
      }
    }
    // SYN windows are never scaled: store them in the units later windows will use.
    n.setWinUnits(s, n.negotiated() ? ceilShift(p.win, n.scaleOpt(s)) : p.win);
  }

  enum class Step : uint8_t { kDone, kRetry };

  static Step doTrack(TcpConnState& cs, Ctl& c, int s, int r, const Pkt& p, const BoundsCopy& rcv,
                      const TcpTransition& t, int row, bool loose, TcpResult& out) {
    const TcpState st = c.state();
    BoundsCopy snd = load(cs, s);
    const bool s_learned = c.has(s, kLearned);
    const bool r_learned = c.has(r, kLearned);
    // Mid-stream pickups stay loose until both directions have been seen once.
    const bool pickup_phase = c.pickup() && !(s_learned && r_learned);
    Ctl n = c;
    bool init = false;

    if (p.syn) {
      // A handshake packet with a new ISN restarts that side's window, but only where a side may
      // legitimately restart: a new connection attempt, or a new SYN-ACK (SYN cookies).
      const bool may_restart =
          (st == S::kSynSent && s == 0) ||
          (st == S::kSynRecv && s == 1 && p.event == E::kSegSynAck && t.to == S::kSynRecv);
      const bool restart = s_learned && may_restart && p.end != snd.end;
      if (!s_learned || restart) {
        learnFromSyn(n, s, r, p, restart);
        // Until the peer acknowledges something, the window its SYN announced bounds our data.
        const uint32_t peer_win = r_learned ? std::max<uint32_t>(n.maxWinBytes(r), 1) : 0;
        snd = BoundsCopy{p.end, p.end + peer_win, p.has_ack ? p.seg.ack : 0};
        if (p.has_ack) n.set(s, kMaxAckSet);
        init = true;
      }
    } else if (!s_learned) {
      // First packet of the other direction of a pickup: its bounds were seeded from the peer's
      // ACKs; take whichever is later.
      n.set(s, kLearned);
      snd.end = seqAfter(p.end, snd.end) ? p.end : snd.end;
      snd.maxend = seqAfter(snd.end, snd.maxend) ? snd.end : snd.maxend;
      snd.maxack = p.has_ack ? p.seg.ack : 0;
      if (p.has_ack) n.set(s, kMaxAckSet);
      init = true;
    }

    const char* fail = pickup_phase ? nullptr : windowCheck(n, s, r, p, snd, rcv);
    if (fail != nullptr && !loose) {
      out = makeResult(TcpVerdict::kInvalid, st, st, fail, row);
      return Step::kDone;
    }
    const bool update = fail == nullptr;

    n.setState(t.to);
    if (p.has_ack) {
      n.set(s, kMaxAckSet);
      if (n.has(r, kLearned)) n.set(s, kAckedSyn);
      // The same condition as G::kAcksPendingFin, so the flag and the row agree. A SYN-ACK never
      // acknowledges a FIN (the table has no FIN guard on SYN rows).
      if (!p.syn && guardHolds(G::kAcksPendingFin, c, s, r, p, rcv)) n.set(r, kFinAcked);
    }
    if (p.fin) n.set(s, kFinSent);
    if (!p.syn && update && p.win > n.winUnits(s)) n.setWinUnits(s, p.win);

    // Bounds are written before the control CAS (release): a thread that sees this packet's
    // flags (say kFinSent) also sees its sequence end, so "ACK of that FIN" is judged against the
    // FIN's own sequence. If the CAS fails we retry; the advances are idempotent maxima.
    if (init) store(cs, s, snd);
    // The direction's first ACK sets its maxack outright (as Linux sets td_maxack): the advance
    // below only moves forward in sequence space, and from the 0 a maxack starts at, half of all
    // sequence numbers are behind.
    if (p.has_ack && !c.has(s, kMaxAckSet)) setHalf(cs.acks_[s], false, p.seg.ack);
    if (update) {
      uint32_t end = p.end;
      if (end == p.seg.seq) end = snd.end;
      advanceSeq(cs.end_[s], end);
      if (p.has_ack) {
        // maxack and the peer's maxend by one CAS.
        const uint32_t win_bytes = p.syn ? p.win : (p.win << n.effScale(s));
        const uint32_t edge = p.seg.ack + std::max<uint32_t>(win_bytes, 1);
        advanceAcks(cs.acks_[s], cs.acks_[s].load(std::memory_order_acquire), true, p.seg.ack, true,
                    edge);
      }
      if (pickup_phase) {
        // While learning a picked-up connection: keep maxend >= end, and whatever the peer
        // acknowledges was sent (perhaps before the pickup).
        advanceAcks(cs.acks_[r], cs.acks_[r].load(std::memory_order_acquire), false, 0, true, end);
        if (p.has_ack) advanceSeq(cs.end_[r], p.seg.ack);
      }
    }
    if (n.v != c.v && !cas(cs, c, n)) return Step::kRetry;
    out = makeResult(TcpVerdict::kAccept, st, t.to, t.what, row);
    out.unchecked = !update || pickup_phase;
    return Step::kDone;
  }

  static Step doReset(TcpConnState& cs, Ctl& c, int s, int r, const Pkt& p, const BoundsCopy& rcv,
                      const TcpTransition& t, int row, TcpResult& out) {
    const TcpState st = c.state();
    const BoundsCopy snd = load(cs, s);
    const uint32_t seq = p.seg.seq;
    const bool r_learned = c.has(r, kLearned);
    // Once the connection is over (reset, or closed by FINs) or a FIN is acknowledged, any reset
    // passes and closes: Linux checks none there (tcp_can_early_drop), pf and Open vSwitch take
    // it in their loose branch, which ignores the sequence number of a segment without data
    // (docs/semantics.md "Resets").
    const bool over =
        st == S::kClose || st == S::kTimeWait || c.has(0, kFinAcked) || c.has(1, kFinAcked);
    if (over) {
      // Nothing to check.
    } else if (!c.has(s, kLearned)) {
      if (st == S::kSynSent && s == 1) {
        // The responder's first packet. Without an ACK, any sequence number: it is where the
        // responder's sequence space starts (Linux, pf and Open vSwitch all take it; RFC 9293
        // has the host drop it). With an ACK, that ACK must be inside bounds III and IV of the
        // SYN, as for any ACK.
        if (p.has_ack && seqAfter(p.seg.ack, rcv.end)) {
          out = makeResult(TcpVerdict::kInvalid, st, st, kWhyAckOver, row);
          return Step::kDone;
        }
        if (p.has_ack && seqBefore(p.seg.ack, rcv.end - kMaxAckWindowMin)) {
          out = makeResult(TcpVerdict::kInvalid, st, st, kWhyAckUnder, row);
          return Step::kDone;
        }
      } else if (!c.pickup()) {
        out = makeResult(TcpVerdict::kInvalid, st, st, kWhyRstOut, row);
        return Step::kDone;
      }
      // A pickup's unseen side: nothing to check against yet (the entry is loose).
    } else {
      const bool maxack = c.has(r, kMaxAckSet);
      // SYN_SENT: the responder answered the SYN with a bare ACK (a challenge ACK of an older
      // connection on the same ports) and the originator resets that old connection with the
      // ACK's number. The reset is not about this attempt, which goes on (Linux conntrack keeps
      // SYN_SENT: selftests conntrack_syn_challenge_ack.pkt).
      if (st == S::kSynSent && s == 0 && maxack && seq == rcv.maxack && seq != snd.end) {
        out = makeResult(TcpVerdict::kAccept, st, st, kWhyRstOldConnection, row);
        return Step::kDone;
      }
      // The receiver accepts a reset at exactly the sequence it expects next (RFC 5961): the
      // sender's next sequence, or what the receiver last acknowledged, or anything in between.
      const bool exact =
          seq == snd.end || (c.has(s, kFinSent) && seq + 1 == snd.end) ||
          (maxack && seq == rcv.maxack) ||
          (maxack && r_learned && !seqBefore(seq, rcv.maxack) && !seqAfter(seq, snd.end));
      if (!exact) {
        // Once a FIN or RST was seen, an in-window reset closes (Linux, pf and Open vSwitch
        // agree: selftests conntrack_inexact_rst.pkt); before, it only passes, for the
        // receiver's challenge ACK, and one below what the receiver acknowledged is outside its
        // window: the receiver drops it (RFC 5961) and Linux marks it INVALID (selftests
        // conntrack_rst_invalid.pkt).
        const bool closing = st >= S::kFinWait;
        if (!closing && maxack && seqBefore(seq, rcv.maxack)) {
          out = makeResult(TcpVerdict::kInvalid, st, st, kWhyRstBelowAck, row);
          return Step::kDone;
        }
        const bool in_window =
            r_learned && !seqAfter(seq, snd.maxend) && !seqBefore(seq, snd.end - c.maxWinBytes(r));
        if (!in_window || !closing) {
          out = in_window ? makeResult(TcpVerdict::kAccept, st, st, kWhyRstInWindow, row)
                          : makeResult(TcpVerdict::kInvalid, st, st, kWhyRstOut, row);
          return Step::kDone;
        }
      }
    }
    Ctl n = c;
    n.setState(S::kClose);
    if (n.v != c.v && !cas(cs, c, n)) return Step::kRetry;
    out = makeResult(TcpVerdict::kAccept, st, S::kClose, t.what, row, st != S::kClose);
    return Step::kDone;
  }

  // SYN_SENT, ACK from the responder: remember its ack (the sequence the originator's RST must
  // carry to reset the stale connection) and let it through.
  static Step doPass(TcpConnState& cs, Ctl& c, int s, const Pkt& p, const TcpTransition& t, int row,
                     TcpResult& out) {
    const TcpState st = c.state();
    if (p.has_ack) {
      setHalf(cs.acks_[s], false, p.seg.ack);
      Ctl n = c;
      n.set(s, kMaxAckSet);
      if (n.v != c.v && !cas(cs, c, n)) return Step::kRetry;
    }
    out = makeResult(TcpVerdict::kAccept, st, st, t.what, row);
    return Step::kDone;
  }

  static int findRow(Ctl c, TcpDir dir, const Pkt& p, const BoundsCopy& rcv) {
    const int s = static_cast<int>(dir);
    const Group g = kIndex[keyOf(c.state(), dir, p.event)];
    for (int i = g.first; i < g.first + g.count; ++i) {
      if (guardHolds(kRows[i].guard, c, s, 1 - s, p, rcv)) return i;
    }
    return -1;  // only for (NONE, reply): the caller handles NONE before
  }

  static TcpResult track(TcpConnState& cs, TcpDir dir, const TcpSegment& seg, bool loose) {
    const TcpEvent ev = tcpEventOf(seg.flags);
    Ctl c{cs.ctl_.load(std::memory_order_acquire)};
    if (ev == E::kSegInvalid)
      return makeResult(TcpVerdict::kInvalid, c.state(), c.state(), kWhyFlags, -1);
    const Pkt p = makePkt(seg, ev);
    const int s = static_cast<int>(dir);
    const int r = 1 - s;
    for (;;) {
      const TcpState st = c.state();
      if (st == S::kNone) return makeResult(TcpVerdict::kInvalid, st, st, kWhyUninit, -1);
      const BoundsCopy rcv = load(cs, r);
      const int row = findRow(c, dir, p, rcv);
      const TcpTransition& t = kRows[row];
      TcpResult out;
      Step step = Step::kDone;
      switch (t.action) {
        case A::kInvalid:
          return makeResult(TcpVerdict::kInvalid, st, st, t.what, row);
        case A::kReopen:
          return makeResult(TcpVerdict::kReopen, st, t.to, t.what, row);
        case A::kPass:
          step = doPass(cs, c, s, p, t, row, out);
          break;
        case A::kReset:
          step = doReset(cs, c, s, r, p, rcv, t, row, out);
          break;
        case A::kTrack:
          step = doTrack(cs, c, s, r, p, rcv, t, row, loose, out);
          break;
      }
      if (step == Step::kDone) return out;
      // Another thread changed the control word between our snapshot and our CAS: start over
      // from the new snapshot (the CAS stored it in c).
    }
  }

  static TcpResult init(TcpConnState& cs, const TcpSegment& seg, bool mid_stream) {
    const TcpEvent ev = tcpEventOf(seg.flags);
    if (ev == E::kSegInvalid)
      return makeResult(TcpVerdict::kInvalid, S::kNone, S::kNone, kWhyFlags, -1);
    const Pkt p = makePkt(seg, ev);
    const int row = kIndex[keyOf(S::kNone, kO, ev)].first;
    const TcpTransition& t = kRows[row];
    if (t.action == A::kInvalid)
      return makeResult(TcpVerdict::kInvalid, S::kNone, S::kNone, t.what, row);
    Ctl n;
    n.setState(t.to);
    if (ev == E::kSegSyn) {
      learnFromSyn(n, 0, 1, p, false);
      storeBoth(cs, BoundsCopy{p.end, p.end, 0}, BoundsCopy{0, 0, 0});
    } else {
      if (!mid_stream)
        return makeResult(TcpVerdict::kInvalid, S::kNone, S::kNone, kWhyNoPickup, row);
      // Pickup: the scales are unknown, so windows are taken at the largest scale (14) until
      // the connection closes. The reply side is seeded from this packet's ACK and window.
      n.v |= kPickupBit;
      n.set(0, kLearned | kAckedSyn | kMaxAckSet);
      n.set(1, kAckedSyn);
      n.setWinUnits(0, p.win);
      const uint32_t end = p.end;
      const uint32_t win_bytes = p.win << kMaxWscale;
      storeBoth(cs, BoundsCopy{end, end, seg.ack},
                BoundsCopy{seg.ack, seg.ack + std::max<uint32_t>(win_bytes, 1), 0});
    }
    cs.ctl_.store(n.v, std::memory_order_relaxed);
    return makeResult(TcpVerdict::kAccept, S::kNone, t.to, t.what, row);
  }
};

// ---------------------------------------------------------------------------------------------
// Public API.
// ---------------------------------------------------------------------------------------------

std::string_view tcpStateName(TcpState s) {
  switch (s) {
    case S::kNone:
      return "NONE";
    case S::kSynSent:
      return "SYN_SENT";
    case S::kSynSent2:
      return "SYN_SENT2";
    case S::kSynRecv:
      return "SYN_RECV";
    case S::kEstablished:
      return "ESTABLISHED";
    case S::kFinWait:
      return "FIN_WAIT";
    case S::kCloseWait:
      return "CLOSE_WAIT";
    case S::kLastAck:
      return "LAST_ACK";
    case S::kTimeWait:
      return "TIME_WAIT";
    case S::kClose:
      return "CLOSE";
    case S::kCount:
      break;
  }
  return "?";
}

rules::TimeoutKey tcpTimeoutKey(TcpState s) {
  using K = rules::TimeoutKey;
  switch (s) {
    case S::kSynSent:
    case S::kSynSent2:
      return K::kTcpSynSent;
    case S::kSynRecv:
      return K::kTcpSynRecv;
    case S::kEstablished:
      return K::kTcpEstablished;
    case S::kFinWait:
      return K::kTcpFinWait;
    case S::kCloseWait:
      return K::kTcpCloseWait;
    case S::kLastAck:
      return K::kTcpLastAck;
    case S::kTimeWait:
      return K::kTcpTimeWait;
    case S::kNone:
    case S::kClose:
    case S::kCount:
      break;
  }
  return K::kTcpClose;
}

std::string_view tcpDirName(TcpDir d) {
  return d == kO ? "original" : "reply";
}

TcpEvent tcpEventOf(uint8_t flags) {
  using namespace tcp_flag;
  uint8_t f = static_cast<uint8_t>(flags & ~(kPsh | kEce | kCwr));
  if ((f & kAck) != 0) f = static_cast<uint8_t>(f & ~kUrg);
  switch (f) {
    case kSyn:
      return E::kSegSyn;
    case kSyn | kAck:
      return E::kSegSynAck;
    case kFin | kAck:
      return E::kSegFin;
    case kAck:
      return E::kSegAck;
    case kRst:
    case kRst | kAck:
      return E::kSegRst;
    default:
      return E::kSegInvalid;
  }
}

std::string_view tcpEventName(TcpEvent e) {
  switch (e) {
    case E::kSegSyn:
      return "SYN";
    case E::kSegSynAck:
      return "SYN-ACK";
    case E::kSegFin:
      return "FIN";
    case E::kSegAck:
      return "ACK";
    case E::kSegRst:
      return "RST";
    case E::kSegInvalid:
      return "INVALID";
  }
  return "?";
}

std::string_view tcpGuardName(TcpGuard g) {
  switch (g) {
    case G::kAlways:
      return "";
    case G::kFirstAckOfSyn:
      return "first ACK of the peer's SYN";
    case G::kAcksPendingFin:
      return "acknowledges the peer's pending FIN";
    case G::kFinRepeated:
      return "FIN already seen from this side";
  }
  return "?";
}

std::string_view tcpActionName(TcpAction a) {
  switch (a) {
    case A::kTrack:
      return "track";
    case A::kPass:
      return "pass";
    case A::kReset:
      return "reset";
    case A::kReopen:
      return "reopen";
    case A::kInvalid:
      return "invalid";
  }
  return "?";
}

std::string_view tcpVerdictName(TcpVerdict v) {
  switch (v) {
    case TcpVerdict::kAccept:
      return "accept";
    case TcpVerdict::kInvalid:
      return "invalid";
    case TcpVerdict::kReopen:
      return "reopen";
  }
  return "?";
}

std::span<const TcpTransition> tcpTransitions() {
  return {kRows, kRowCount};
}

TcpResult TcpConnState::initFromFirst(const TcpSegment& seg, bool mid_stream) noexcept {
  return TcpTrackImpl::init(*this, seg, mid_stream);
}

TcpResult TcpConnState::trackGeneral(TcpDir dir, const TcpSegment& seg, bool loose) noexcept {
  return TcpTrackImpl::track(*this, dir, seg, loose);
}

TcpState TcpConnState::state() const noexcept {
  return Ctl{ctl_.load(std::memory_order_acquire)}.state();
}

bool TcpConnState::pickedUp() const noexcept {
  return Ctl{ctl_.load(std::memory_order_acquire)}.pickup();
}

TcpDirInfo TcpConnState::info(TcpDir dir) const noexcept {
  const Ctl c{ctl_.load(std::memory_order_acquire)};
  const int d = static_cast<int>(dir);
  TcpDirInfo i;
  i.learned = c.has(d, kLearned);
  i.wscale_option = c.has(d, kWscaleOpt);
  i.sack_permitted = c.has(d, kSackPerm);
  i.fin_sent = c.has(d, kFinSent);
  i.fin_acked = c.has(d, kFinAcked);
  i.acked_syn = c.has(d, kAckedSyn);
  i.scale = static_cast<uint8_t>(c.effScale(d));
  i.end = end_[d].load(std::memory_order_acquire);
  i.maxend = tcp_detail::peerMaxendOf(acks_[1 - d].load(std::memory_order_acquire));
  i.maxack = tcp_detail::maxackOf(acks_[d].load(std::memory_order_acquire));
  i.maxwin = c.maxWinBytes(d);
  return i;
}

}  // namespace statewall::dataplane
