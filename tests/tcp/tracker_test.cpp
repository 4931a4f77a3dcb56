// Behaviour of the TCP tracker on whole packet sequences: handshakes, retransmissions, closes,
// resets, window scaling, the van Rooij bounds, sequence wrap-around, mid-stream pickup and a long
// lossy transfer.
#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "tcp/tcp_test_util.hpp"

namespace statewall::dataplane::testing {
namespace {

using S = TcpState;
using V = TcpVerdict;

#define EXPECT_ACCEPT(expr, state)                                         \
  do {                                                                     \
    const TcpResult r_ = (expr);                                           \
    EXPECT_EQ(r_.verdict, V::kAccept) << #expr << ": " << r_.why;          \
    EXPECT_EQ(r_.after, state) << #expr << ": " << tcpStateName(r_.after); \
  } while (0)

#define EXPECT_INVALID(expr, reason)                               \
  do {                                                             \
    const TcpResult r_ = (expr);                                   \
    EXPECT_EQ(r_.verdict, V::kInvalid) << #expr << ": " << r_.why; \
    EXPECT_STREQ(r_.why, reason) << #expr;                         \
    EXPECT_EQ(r_.after, r_.before);                                \
  } while (0)

constexpr const char* kSeqOver = "SEQ is over the upper bound (over the window of the receiver)";
constexpr const char* kSeqUnder = "SEQ is under the lower bound (older than one receive window)";
constexpr const char* kAckOver = "ACK is over the upper bound (acknowledges data not yet sent)";
constexpr const char* kAckUnder = "ACK is under the lower bound (older than one window)";
constexpr const char* kRstOut = "RST out of window";
constexpr const char* kRstBelowAck =
    "RST below the sequence the receiver acknowledged (outside its window: the receiver drops it)";

TEST(TcpTracker, FitsInHalfACacheLine) {
  EXPECT_LE(sizeof(TcpConnState), 32u);
  TcpConnState fresh;
  EXPECT_EQ(fresh.state(), S::kNone);
  EXPECT_FALSE(fresh.info(kO).learned);
}

TEST(TcpTracker, AckWordMovesOnlyForwards) {
  using tcp_detail::advanceAcks;
  using tcp_detail::maxackOf;
  using tcp_detail::packAcks;
  using tcp_detail::peerMaxendOf;
  std::atomic<uint64_t> w{packAcks(100, 5000)};
  advanceAcks(w, w.load(), true, 200, true, 4000);  // ack on, edge behind: only the ack moves
  EXPECT_EQ(maxackOf(w.load()), 200u);
  EXPECT_EQ(peerMaxendOf(w.load()), 5000u);
  advanceAcks(w, w.load(), false, 900, true, 6000);  // the ack half is not asked to move
  EXPECT_EQ(maxackOf(w.load()), 200u);
  EXPECT_EQ(peerMaxendOf(w.load()), 6000u);
  advanceAcks(w, w.load(), true, 150, true, 5999);  // both behind: nothing changes
  EXPECT_EQ(w.load(), packAcks(200, 6000));
  // Across the wrap: 0xFFFFFFF0 -> 0x10 is forwards.
  w.store(packAcks(0xFFFFFFF0u, 0xFFFFFFF0u));
  advanceAcks(w, w.load(), true, 0x10, true, 0x20);
  EXPECT_EQ(w.load(), packAcks(0x10, 0x20));
}

TEST(TcpTracker, HandshakeDataAndClose) {
  Conn c(1000, 900000);
  EXPECT_ACCEPT(c.syn(kO), S::kSynSent);
  EXPECT_EQ(c.cs.info(kO).end, 1001u);
  EXPECT_FALSE(c.cs.info(kR).learned);
  EXPECT_ACCEPT(c.synAck(kR), S::kSynRecv);
  EXPECT_EQ(c.cs.info(kR).end, 900001u);
  EXPECT_EQ(c.cs.info(kO).maxend, 1001u + 8192u);  // the responder's SYN-ACK window
  EXPECT_TRUE(c.cs.info(kR).acked_syn);
  EXPECT_ACCEPT(c.ack(kO), S::kEstablished);
  EXPECT_ACCEPT(c.data(kO, 1000), S::kEstablished);
  EXPECT_ACCEPT(c.ack(kR), S::kEstablished);
  EXPECT_ACCEPT(c.data(kR, 5000), S::kEstablished);
  EXPECT_ACCEPT(c.ack(kO), S::kEstablished);
  EXPECT_EQ(c.cs.info(kO).end, 2001u);
  EXPECT_EQ(c.cs.info(kR).end, 905001u);
  EXPECT_EQ(c.cs.info(kO).maxack, 905001u);
  EXPECT_EQ(c.cs.info(kR).maxack, 2001u);
  EXPECT_ACCEPT(c.fin(kO), S::kFinWait);
  EXPECT_ACCEPT(c.ack(kR), S::kCloseWait);
  EXPECT_ACCEPT(c.fin(kR), S::kLastAck);
  EXPECT_ACCEPT(c.ack(kO), S::kTimeWait);
  EXPECT_TRUE(c.cs.info(kO).fin_acked);
  EXPECT_TRUE(c.cs.info(kR).fin_acked);
  EXPECT_FALSE(c.cs.pickedUp());
}

TEST(TcpTracker, SimultaneousOpenBothOrders) {
  for (bool reply_acks_first : {false, true}) {
    SCOPED_TRACE(reply_acks_first ? "responder's SYN-ACK first" : "originator's SYN-ACK first");
    Conn c(5, 70000);
    EXPECT_ACCEPT(c.syn(kO), S::kSynSent);
    // The responder's SYN crossed the originator's: it acknowledges nothing.
    TcpSegment rsyn = c.seg(kR, kSyn);
    EXPECT_ACCEPT(c.put(kR, rsyn), S::kSynSent2);
    const TcpDir first = reply_acks_first ? kR : kO;
    EXPECT_ACCEPT(c.synAck(first), S::kSynRecv);
    EXPECT_ACCEPT(c.synAck(opposite(first)), S::kEstablished);
    EXPECT_ACCEPT(c.data(kO, 100), S::kEstablished);
    EXPECT_ACCEPT(c.data(kR, 100), S::kEstablished);
    EXPECT_ACCEPT(c.ack(kO), S::kEstablished);
    EXPECT_TRUE(c.cs.info(kO).acked_syn);
    EXPECT_TRUE(c.cs.info(kR).acked_syn);
  }
}

TEST(TcpTracker, Retransmissions) {
  Conn c(100, 200);
  EXPECT_ACCEPT(c.syn(kO), S::kSynSent);
  EXPECT_ACCEPT(c.syn(kO), S::kSynSent);
  EXPECT_ACCEPT(c.syn(kO), S::kSynSent);
  EXPECT_ACCEPT(c.synAck(kR), S::kSynRecv);
  EXPECT_ACCEPT(c.syn(kO), S::kSynRecv);     // SYN-ACK lost on the way
  EXPECT_ACCEPT(c.synAck(kR), S::kSynRecv);  // and sent again
  EXPECT_ACCEPT(c.ack(kO), S::kEstablished);
  EXPECT_ACCEPT(c.synAck(kR), S::kEstablished);  // the handshake ACK was lost
  EXPECT_ACCEPT(c.ack(kO), S::kEstablished);
  // A data segment, acknowledged, then retransmitted (the ACK was lost): still valid.
  const TcpSegment seg = c.seg(kO, kAck | kPsh, 1000);
  EXPECT_ACCEPT(c.put(kO, seg), S::kEstablished);
  EXPECT_ACCEPT(c.ack(kR), S::kEstablished);
  EXPECT_ACCEPT(c.put(kO, seg), S::kEstablished);
  // Duplicate ACKs.
  for (int i = 0; i < 3; ++i)
    EXPECT_ACCEPT(c.ack(kR), S::kEstablished);
  // A retransmission that overlaps old and new data.
  TcpSegment overlap = c.seg(kO, kAck | kPsh, 1500);
  overlap.seq -= 500;
  EXPECT_ACCEPT(c.put(kO, overlap), S::kEstablished);
  EXPECT_EQ(c.cs.info(kO).end, overlap.seq + 1500);
}

TEST(TcpTracker, FinFromOriginatorFirstWithHalfClose) {
  Conn c;
  c.establish();
  EXPECT_ACCEPT(c.fin(kO), S::kFinWait);
  EXPECT_ACCEPT(c.ack(kR), S::kCloseWait);
  // The responder keeps sending; the originator acknowledges.
  for (int i = 0; i < 5; ++i) {
    EXPECT_ACCEPT(c.data(kR, 700), S::kCloseWait);
    EXPECT_ACCEPT(c.ack(kO), S::kCloseWait);
  }
  EXPECT_ACCEPT(c.fin(kR), S::kLastAck);
  EXPECT_ACCEPT(c.ack(kO), S::kTimeWait);
  EXPECT_ACCEPT(c.ack(kO), S::kTimeWait);  // duplicate
}

TEST(TcpTracker, FinFromResponderFirst) {
  Conn c;
  c.establish();
  EXPECT_ACCEPT(c.fin(kR), S::kFinWait);
  EXPECT_ACCEPT(c.data(kO, 300), S::kCloseWait);  // data that also acknowledges the FIN
  EXPECT_ACCEPT(c.ack(kR), S::kCloseWait);
  EXPECT_ACCEPT(c.fin(kO), S::kLastAck);
  EXPECT_ACCEPT(c.ack(kR), S::kTimeWait);
}

TEST(TcpTracker, SimultaneousFins) {
  Conn c;
  c.establish();
  const TcpSegment ofin = c.seg(kO, kFin | kAck);
  const TcpSegment rfin = c.seg(kR, kFin | kAck);  // built before the originator's FIN arrived
  EXPECT_ACCEPT(c.put(kO, ofin), S::kFinWait);
  EXPECT_ACCEPT(c.put(kR, rfin), S::kLastAck);
  EXPECT_FALSE(c.cs.info(kO).fin_acked);
  EXPECT_FALSE(c.cs.info(kR).fin_acked);
  EXPECT_ACCEPT(c.ack(kO), S::kTimeWait);
  EXPECT_ACCEPT(c.ack(kR), S::kTimeWait);
  EXPECT_TRUE(c.cs.info(kO).fin_acked);
  EXPECT_TRUE(c.cs.info(kR).fin_acked);
}

TEST(TcpTracker, FinAckThatAcknowledgesTheOtherFin) {
  Conn c;
  c.establish();
  EXPECT_ACCEPT(c.fin(kO), S::kFinWait);
  EXPECT_ACCEPT(c.fin(kR), S::kLastAck);  // FIN+ACK covering the originator's FIN
  EXPECT_TRUE(c.cs.info(kO).fin_acked);
  EXPECT_FALSE(c.cs.info(kR).fin_acked);
  EXPECT_ACCEPT(c.ack(kO), S::kTimeWait);
}

// Linux (tcp_in_window), pf (pf_tcp_track_full) and Open vSwitch (conntrack-tcp.c) judge data
// sequenced after the sender's FIN by the window alone: in-window, it passes.
TEST(TcpTracker, InWindowDataAfterFinIsAccepted) {
  Conn c;
  c.establish();
  EXPECT_ACCEPT(c.fin(kO), S::kFinWait);
  EXPECT_ACCEPT(c.put(kO, c.seg(kO, kAck | kPsh, 10), false), S::kFinWait);
  EXPECT_ACCEPT(c.finAgain(kO), S::kFinWait);
  // Still bounded by the receiver's window.
  TcpSegment far = c.seg(kO, kAck | kPsh, 10);
  far.seq += 1u << 30;
  EXPECT_INVALID(c.put(kO, far, false), kSeqOver);
}

// After a RST closed a connection that had a reply, a late SYN-ACK passes inside the window, in
// either direction: Linux ignores it (lets it pass), pf and Open vSwitch check the window
// (tests/kernel: TcpResetCasesAgreeWithNfConntrack). One far outside the window is INVALID.
TEST(TcpTracker, SynAckAfterResetPassesInsideTheWindow) {
  for (TcpDir d : {kO, kR}) {
    Conn c;
    c.establish();
    EXPECT_ACCEPT(c.rst(kR), S::kClose);
    EXPECT_ACCEPT(c.put(d, c.seg(d, kSyn | kAck, 0), false), S::kClose);
    TcpSegment far = c.seg(d, kSyn | kAck, 0);
    far.seq += 0x40000000u;
    EXPECT_INVALID(c.put(d, far, false), kSeqOver);
    EXPECT_EQ(c.cs.state(), S::kClose);
  }
}

TEST(TcpTracker, RstAtTheExpectedSequenceCloses) {
  for (TcpDir d : {kO, kR}) {
    Conn c;
    c.establish();
    const TcpResult r = c.rst(d);
    EXPECT_EQ(r.verdict, V::kAccept);
    EXPECT_EQ(r.after, S::kClose);
    EXPECT_TRUE(r.closed);
    EXPECT_EQ(c.cs.state(), S::kClose);
  }
}

TEST(TcpTracker, RstAnywhereFromLastAckToNextSequenceCloses) {
  // The originator has 3000 bytes in flight; the responder acknowledged up to `acked`. A reset at
  // any sequence in [acked, next] may be exactly what the responder expects.
  for (uint32_t back : {0u, 1000u, 3000u}) {
    Conn c;
    c.establish();
    const uint32_t acked = c.o().nxt;
    EXPECT_ACCEPT(c.data(kO, 3000), S::kEstablished);
    ASSERT_EQ(c.cs.info(kR).maxack, acked);
    TcpSegment rst = c.seg(kO, kRst);
    rst.seq -= back;
    EXPECT_ACCEPT(c.put(kO, rst, false), S::kClose);
  }
}

TEST(TcpTracker, RstInWindowButNotExactDoesNotClose) {
  Conn c;
  c.establish();
  TcpSegment rst = c.seg(kO, kRst);
  rst.seq += 100;  // inside the responder's window, past what it expects
  const TcpResult r = c.put(kO, rst, false);
  EXPECT_EQ(r.verdict, V::kAccept);
  EXPECT_EQ(r.after, S::kEstablished);
  EXPECT_FALSE(r.closed);
  EXPECT_NE(std::string(r.why).find("challenge ACK"), std::string::npos);
  EXPECT_EQ(c.cs.state(), S::kEstablished);
  EXPECT_ACCEPT(c.data(kO, 10), S::kEstablished);
}

TEST(TcpTracker, RstOutOfWindowIsInvalidEvenWhenLoose) {
  for (bool loose : {false, true}) {
    for (int64_t delta : {int64_t{1} << 20, -(int64_t{1} << 20), int64_t{9000}}) {
      Conn c;
      c.establish();
      c.loose = loose;
      TcpSegment rst = c.seg(kR, kRst | kAck);
      rst.seq = static_cast<uint32_t>(rst.seq + delta);
      // Below what the originator acknowledged: outside its window (RFC 5961), INVALID as in
      // Linux (selftests conntrack_rst_invalid.pkt).
      EXPECT_INVALID(c.put(kR, rst, false), delta < 0 ? kRstBelowAck : kRstOut);
      EXPECT_EQ(c.cs.state(), S::kEstablished);
    }
  }
}

TEST(TcpTracker, RstAfterFinAtTheFinSequence) {
  Conn c;
  c.establish();
  EXPECT_ACCEPT(c.fin(kO), S::kFinWait);
  TcpSegment rst = c.seg(kO, kRst);
  rst.seq -= 1;  // some stacks reset with the FIN's own sequence number
  EXPECT_ACCEPT(c.put(kO, rst, false), S::kClose);
}

TEST(TcpTracker, StaleConnectionAnsweringTheSynIsReset) {
  // The responder still has an old connection: it answers the SYN with an ACK for the old one;
  // the originator resets that (seq = the ACK's ack) and sends its SYN again. The reset is about
  // the old connection: this attempt stays SYN_SENT, as in Linux (selftests
  // conntrack_syn_challenge_ack.pkt), and the SYN is a retransmission.
  Conn c;
  EXPECT_ACCEPT(c.syn(kO), S::kSynSent);
  TcpSegment stale;
  stale.flags = kAck;
  stale.seq = 0x50000000;
  stale.ack = 0x12345678;
  stale.win = 1000;
  EXPECT_ACCEPT(c.put(kR, stale, false), S::kSynSent);
  TcpSegment rst;
  rst.flags = kRst;
  rst.seq = 0x12345678;
  const TcpResult r = c.put(kO, rst, false);
  EXPECT_EQ(r.verdict, V::kAccept);
  EXPECT_FALSE(r.closed);
  EXPECT_EQ(c.cs.state(), S::kSynSent);
  EXPECT_ACCEPT(c.put(kO, c.seg(kO, kSyn), false), S::kSynSent);
  EXPECT_ACCEPT(c.synAck(kR), S::kSynRecv);
  EXPECT_ACCEPT(c.ack(kO), S::kEstablished);
}

TEST(TcpTracker, InWindowRstClosesOnceClosing) {
  // Linux selftests conntrack_inexact_rst.pkt (and pf, Open vSwitch): once a FIN was seen, a reset
  // in the window closes even at an inexact sequence; before, it only passes.
  Conn c;
  c.establish();
  TcpSegment early = c.seg(kR, kRst);
  early.seq += 100;
  EXPECT_ACCEPT(c.put(kR, early, false), S::kEstablished);
  EXPECT_ACCEPT(c.fin(kO), S::kFinWait);
  TcpSegment late = c.seg(kR, kRst);
  late.seq += 100;
  const TcpResult r = c.put(kR, late, false);
  EXPECT_EQ(r.verdict, V::kAccept) << r.why;
  EXPECT_EQ(r.after, S::kClose);
  EXPECT_TRUE(r.closed);
}

// Once the connection is over (reset, or closed by FINs) or a FIN is acknowledged, any reset
// passes and closes: Linux skips its checks there and pf and Open vSwitch take a segment without
// data in their loose branch (tests/kernel/FINDINGS.md 9). While a FIN is unacknowledged, an
// out-of-window reset stays INVALID (pf and Open vSwitch).
TEST(TcpTracker, AnyRstOnceTheConnectionIsOverOrAFinAcknowledged) {
  auto far = [](Conn& c, TcpDir d) {
    TcpSegment s = c.seg(d, kRst);
    s.seq += 0x40000000u;
    return c.put(d, s, false);
  };
  {
    Conn c;
    c.establish();
    EXPECT_ACCEPT(c.rst(kR), S::kClose);
    EXPECT_ACCEPT(far(c, kR), S::kClose);
    EXPECT_ACCEPT(far(c, kO), S::kClose);
  }
  {
    Conn c;
    c.establish();
    EXPECT_ACCEPT(c.fin(kO), S::kFinWait);
    EXPECT_INVALID(far(c, kR), kRstOut);
    EXPECT_ACCEPT(c.ack(kR), S::kCloseWait);
    const TcpResult r = far(c, kR);
    EXPECT_EQ(r.verdict, V::kAccept) << r.why;
    EXPECT_EQ(r.after, S::kClose);
    EXPECT_TRUE(r.closed);
  }
  {
    Conn c;
    c.establish();
    EXPECT_ACCEPT(c.fin(kO), S::kFinWait);
    EXPECT_ACCEPT(c.fin(kR), S::kLastAck);
    EXPECT_ACCEPT(c.ack(kO), S::kTimeWait);
    EXPECT_ACCEPT(far(c, kO), S::kClose);
  }
}

// A direction's first ACK sets its maxack whatever the peer's ISN: a responder ISN in the upper
// half of the sequence space used to leave the originator's maxack at 0, so a reset at the
// sequence the originator had acknowledged was "below" it (tests/kernel, seed 206).
TEST(TcpTracker, FirstAckSetsMaxackWhateverTheIsn) {
  for (uint32_t isn_r : {0x10u, 0x7fffffffu, 0x80000000u, 0xf0000000u, 0xffffffffu}) {
    Conn c(1000, isn_r);
    c.establish();
    EXPECT_EQ(c.cs.info(kO).maxack, c.r().nxt) << isn_r;
    const uint32_t acked = c.r().nxt;
    EXPECT_ACCEPT(c.data(kR, 1000), S::kEstablished);  // not acknowledged yet
    TcpSegment rst = c.seg(kR, kRst);
    rst.seq = acked;
    const TcpResult r = c.put(kR, rst, false);
    EXPECT_EQ(r.verdict, V::kAccept) << isn_r << ": " << r.why;
    EXPECT_EQ(r.after, S::kClose) << isn_r;
  }
}

TEST(TcpTracker, RstBelowTheAcknowledgedSequenceIsInvalid) {
  // Linux selftests conntrack_rst_invalid.pkt: resets below what the receiver acknowledged are
  // INVALID and leave ESTABLISHED; the exact next sequence closes.
  Conn c;
  c.establish();
  TcpSegment rst = c.seg(kR, kRst | kAck);
  rst.seq -= 1;
  EXPECT_INVALID(c.put(kR, rst, false), kRstBelowAck);
  EXPECT_ACCEPT(c.put(kR, c.seg(kR, kRst | kAck), false), S::kClose);
}

TEST(TcpTracker, SynReopensTimeWaitAndClose) {
  Conn c;
  c.establish();
  c.fin(kO);
  c.fin(kR);
  c.ack(kO);
  ASSERT_EQ(c.cs.state(), S::kTimeWait);
  TcpSegment syn = c.seg(kO, kSyn);
  syn.seq = c.o().nxt + 64000;
  const TcpResult r = c.put(kO, syn, false);
  EXPECT_EQ(r.verdict, V::kReopen);
  EXPECT_EQ(r.before, S::kTimeWait);
  EXPECT_EQ(r.after, S::kSynSent);
  EXPECT_EQ(c.cs.state(), S::kTimeWait);  // the caller replaces the entry
  // What the caller does: a fresh state initialised from the same SYN.
  TcpConnState fresh;
  EXPECT_EQ(fresh.initFromFirst(syn, false).after, S::kSynSent);
  EXPECT_EQ(fresh.info(kO).end, syn.seq + 1);

  Conn d;
  d.establish();
  d.rst(kR);
  ASSERT_EQ(d.cs.state(), S::kClose);
  EXPECT_EQ(d.put(kR, d.seg(kR, kSyn), false).verdict, V::kReopen);  // roles swap
}

// Handshake helper with window-scale options and raw windows.
void handshake(Conn& c, int8_t wo, int8_t wr, uint32_t syn_win_o = 65535,
               uint32_t syn_win_r = 65535) {
  c.o().wscale = wo;
  c.r().wscale = wr;
  c.o().win = syn_win_o;
  c.r().win = syn_win_r;
  ASSERT_EQ(c.syn(kO).verdict, V::kAccept);
  ASSERT_EQ(c.synAck(kR).verdict, V::kAccept);
  ASSERT_EQ(c.ack(kO).verdict, V::kAccept);
}

TEST(TcpTracker, WindowScalingNegotiated) {
  Conn c;
  handshake(c, 7, 9, 65535, /*syn_win_r=*/1000);
  EXPECT_TRUE(c.cs.info(kO).wscale_option);
  EXPECT_EQ(c.cs.info(kO).scale, 7);
  EXPECT_EQ(c.cs.info(kR).scale, 9);
  // The responder opens a 512000-byte window (raw 1000 << 9).
  EXPECT_ACCEPT(c.ack(kR), S::kEstablished);
  int sent = 0;
  while (sent + 1460 <= 512000) {
    const TcpResult r = c.put(kO, c.seg(kO, kAck, 1460));
    ASSERT_EQ(r.verdict, V::kAccept) << "at " << sent << ": " << r.why;
    sent += 1460;
  }
  EXPECT_INVALID(c.put(kO, c.seg(kO, kAck, 1460), false), kSeqOver);
}

TEST(TcpTracker, WindowScalingNotNegotiated) {
  // Only the SYN carries the option: windows are not scaled in either direction.
  Conn c;
  handshake(c, 7, -1, 65535, /*syn_win_r=*/1000);
  EXPECT_EQ(c.cs.info(kO).scale, 0);
  EXPECT_EQ(c.cs.info(kR).scale, 0);
  EXPECT_ACCEPT(c.ack(kR), S::kEstablished);  // 1000 bytes, not 512000
  EXPECT_ACCEPT(c.data(kO, 1000), S::kEstablished);
  EXPECT_INVALID(c.put(kO, c.seg(kO, kAck, 1), false), kSeqOver);

  // Only the SYN-ACK carries it: the same.
  Conn d;
  handshake(d, -1, 7, 65535, 1000);
  EXPECT_EQ(d.cs.info(kR).scale, 0);
  EXPECT_ACCEPT(d.ack(kR), S::kEstablished);
  EXPECT_INVALID(d.put(kO, d.seg(kO, kAck, 1460), false), kSeqOver);
}

TEST(TcpTracker, SynWindowsAreNotScaled) {
  // The originator's SYN announces 20000 bytes, unscaled although it carries scale 7. Right after
  // its SYN-ACK the responder may send that much (kept rounded up to the 128-byte scale unit),
  // not 20000 << 7.
  Conn c;
  c.o().wscale = 7;
  c.r().wscale = 7;
  c.o().win = 20000;
  EXPECT_ACCEPT(c.syn(kO), S::kSynSent);
  EXPECT_ACCEPT(c.synAck(kR), S::kSynRecv);
  EXPECT_EQ(c.cs.info(kO).maxwin, 20096u);
  EXPECT_ACCEPT(c.data(kR, 20000), S::kSynRecv);
  EXPECT_INVALID(c.put(kR, c.seg(kR, kAck, 200), false), kSeqOver);
}

TEST(TcpTracker, DataBeyondTheWindowIsInvalid) {
  Conn c;
  c.establish();  // the responder advertises 8192 bytes
  TcpSegment big = c.seg(kO, kAck | kPsh, 8193);
  EXPECT_INVALID(c.put(kO, big, false), kSeqOver);
  TcpSegment far = c.seg(kO, kAck | kPsh, 10);
  far.seq += 9000;
  EXPECT_INVALID(c.put(kO, far, false), kSeqOver);
  // Nothing changed: a valid segment right at the window's edge passes.
  EXPECT_ACCEPT(c.data(kO, 8192), S::kEstablished);
}

TEST(TcpTracker, FinAtTheEdgeOfAFullWindow) {
  Conn c;
  c.establish();
  EXPECT_ACCEPT(c.data(kO, 8192), S::kEstablished);  // fills the responder's window
  EXPECT_INVALID(c.put(kO, c.seg(kO, kAck | kPsh, 1), false), kSeqOver);
  EXPECT_ACCEPT(c.fin(kO), S::kFinWait);
}

TEST(TcpTracker, AckOfUnsentDataIsInvalid) {
  Conn c;
  c.establish();
  TcpSegment a = c.seg(kO, kAck);
  a.ack += 1;
  EXPECT_INVALID(c.put(kO, a, false), kAckOver);
  a.ack += 100000;
  EXPECT_INVALID(c.put(kO, a, false), kAckOver);
  EXPECT_ACCEPT(c.ack(kO), S::kEstablished);
}

TEST(TcpTracker, OldDataAndOldAcksAreInvalid) {
  Conn c;
  c.o().win = 60000;
  c.r().win = 60000;
  c.establish();
  const TcpSegment old_data = c.seg(kO, kAck | kPsh, 1000);
  const TcpSegment old_ack = c.seg(kO, kAck);
  // Move both directions forward by 150 KB, acknowledged as it goes.
  for (int i = 0; i < 150; ++i) {
    ASSERT_EQ(c.data(kO, 1000).verdict, V::kAccept);
    ASSERT_EQ(c.ack(kR).verdict, V::kAccept);
    ASSERT_EQ(c.data(kR, 1000).verdict, V::kAccept);
    ASSERT_EQ(c.ack(kO).verdict, V::kAccept);
  }
  EXPECT_INVALID(c.put(kO, old_data, false), kSeqUnder);
  TcpSegment a = old_ack;
  a.seq = c.o().nxt;  // a bare ACK: only its ack matters
  EXPECT_INVALID(c.put(kO, a, false), kAckUnder);
  // In loose mode both pass and the state machine still runs.
  c.loose = true;
  EXPECT_ACCEPT(c.put(kO, old_data, false), S::kEstablished);
  EXPECT_TRUE(c.put(kO, old_data, false).unchecked);
  EXPECT_ACCEPT(c.put(kO, a, false), S::kEstablished);
  EXPECT_FALSE(c.ack(kO).unchecked);  // a valid packet is checked in loose mode too
  TcpSegment bad_fin = c.seg(kO, kFin | kAck);
  bad_fin.seq += 1000000;
  EXPECT_ACCEPT(c.put(kO, bad_fin, false), S::kFinWait);
}

TEST(TcpTracker, InvalidPacketsChangeNothing) {
  Conn c;
  c.establish();
  const TcpDirInfo before_o = c.cs.info(kO);
  const TcpDirInfo before_r = c.cs.info(kR);
  TcpSegment s = c.seg(kO, kFin | kAck, 100);
  s.seq += 50000;  // out of window FIN with data
  EXPECT_EQ(c.put(kO, s, false).verdict, V::kInvalid);
  const TcpDirInfo after_o = c.cs.info(kO);
  const TcpDirInfo after_r = c.cs.info(kR);
  EXPECT_EQ(c.cs.state(), S::kEstablished);
  EXPECT_EQ(after_o.end, before_o.end);
  EXPECT_EQ(after_o.fin_sent, false);
  EXPECT_EQ(after_r.maxend, before_r.maxend);
  EXPECT_EQ(after_o.maxack, before_o.maxack);
}

TEST(TcpTracker, SequenceWrapAround) {
  Conn c(0xFFFFF000u, 0xFFFFFFF0u);
  c.o().win = 30000;
  c.r().win = 30000;
  c.establish();
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(c.data(kO, 1000).verdict, V::kAccept) << i;
    ASSERT_EQ(c.data(kR, 500).verdict, V::kAccept) << i;
    ASSERT_EQ(c.ack(kO).verdict, V::kAccept) << i;
  }
  EXPECT_LT(c.cs.info(kO).end, 0x00100000u);  // wrapped past 2^32
  EXPECT_LT(c.cs.info(kR).end, 0x00100000u);
  // The bounds still work after the wrap.
  EXPECT_INVALID(c.put(kO, c.seg(kO, kAck, 30001), false), kSeqOver);
  TcpSegment a = c.seg(kO, kAck);
  a.ack += 1;
  EXPECT_INVALID(c.put(kO, a, false), kAckOver);
  EXPECT_ACCEPT(c.fin(kO), S::kFinWait);
  EXPECT_ACCEPT(c.fin(kR), S::kLastAck);
  EXPECT_ACCEPT(c.ack(kO), S::kTimeWait);
}

TEST(TcpTracker, DataOnSyn) {
  Conn c;
  EXPECT_ACCEPT(c.put(kO, c.seg(kO, kSyn, 100)), S::kSynSent);  // TCP Fast Open
  EXPECT_EQ(c.cs.info(kO).end, 1000u + 101u);
  // The responder may accept the data (ack ISN+101) or only the SYN (ack ISN+1).
  TcpSegment sa = c.seg(kR, kSyn | kAck);
  sa.ack = 1001;
  EXPECT_ACCEPT(c.put(kR, sa, false), S::kSynRecv);
  EXPECT_ACCEPT(c.synAck(kR), S::kSynRecv);
  EXPECT_ACCEPT(c.ack(kO), S::kEstablished);
}

TEST(TcpTracker, NewSynAckIsnRestartsTheResponderWindow) {
  // SYN cookies: a retransmitted SYN gets a SYN-ACK with another ISN.
  Conn c(10, 1000000);
  EXPECT_ACCEPT(c.syn(kO), S::kSynSent);
  EXPECT_ACCEPT(c.synAck(kR), S::kSynRecv);
  c.r().isn = 3000000000u;
  c.r().nxt = c.r().isn;
  EXPECT_ACCEPT(c.synAck(kR), S::kSynRecv);
  EXPECT_EQ(c.cs.info(kR).end, 3000000001u);
  EXPECT_ACCEPT(c.ack(kO), S::kEstablished);
  EXPECT_ACCEPT(c.data(kR, 100), S::kEstablished);
}

TEST(TcpTracker, MidStreamPickup) {
  Conn c(0x10000000, 0x20000000);
  c.mid_stream = true;
  c.o().rcv = 0x20000000;  // the originator has received this much from the responder
  c.o().win = 1000;
  EXPECT_ACCEPT(c.data(kO, 500), S::kEstablished);
  EXPECT_TRUE(c.cs.pickedUp());
  EXPECT_EQ(c.cs.info(kO).scale, 14);  // unknown scale: assume the largest
  // Until the responder is seen, anything from the originator passes (loose)...
  TcpSegment odd = c.seg(kO, kAck, 100);
  odd.seq -= 1000000;
  EXPECT_ACCEPT(c.put(kO, odd, false), S::kEstablished);
  EXPECT_TRUE(c.put(kO, odd, false).unchecked);
  // ...and the responder's first packet is learned, even though it acknowledges data sent
  // before the pickup.
  c.r().rcv = c.o().nxt + 3000;
  c.r().win = 2000;
  EXPECT_ACCEPT(c.data(kR, 300), S::kEstablished);
  EXPECT_TRUE(c.cs.info(kR).learned);
  EXPECT_EQ(c.cs.info(kO).end, c.o().nxt + 3000);  // caught up with what the responder acked
  c.o().nxt += 3000;
  // From now on the bounds apply (with the largest scale).
  TcpSegment bogus = c.seg(kO, kAck);
  bogus.ack += 5000;  // acknowledges responder data never sent
  EXPECT_INVALID(c.put(kO, bogus, false), kAckOver);
  for (int i = 0; i < 50; ++i) {
    const TcpResult a = c.data(kO, 1400);
    ASSERT_EQ(a.verdict, V::kAccept) << a.why;
    EXPECT_FALSE(a.unchecked);
    ASSERT_EQ(c.data(kR, 200).verdict, V::kAccept);
  }
  EXPECT_ACCEPT(c.fin(kO), S::kFinWait);
  EXPECT_ACCEPT(c.fin(kR), S::kLastAck);
  EXPECT_ACCEPT(c.ack(kO), S::kTimeWait);
}

TEST(TcpTracker, PickupNeedsPermissionAndAnAckClassPacket) {
  TcpSegment s;
  s.flags = kAck | kPsh;
  s.seq = 1;
  s.ack = 2;
  s.win = 100;
  s.payload_len = 10;
  TcpConnState a;
  const TcpResult r = a.initFromFirst(s, false);
  EXPECT_EQ(r.verdict, V::kInvalid);
  EXPECT_EQ(a.state(), S::kNone);
  EXPECT_EQ(a.track(kO, s, true).verdict, V::kInvalid);  // still uninitialised
  for (uint8_t f : {uint8_t(kSyn | kAck), uint8_t(kFin | kAck), kRst, uint8_t(kSyn | kFin)}) {
    TcpConnState b;
    s.flags = f;
    EXPECT_EQ(b.initFromFirst(s, true).verdict, V::kInvalid) << int(f);
    EXPECT_EQ(b.state(), S::kNone);
  }
}

// A long one-way bulk transfer with a small reverse stream: window scaling, delayed ACKs, loss
// after the firewall (so retransmissions), reordering, window updates and a sequence wrap. Every
// segment a correct TCP sends must be valid.
TEST(TcpTracker, LongLossyTransferStaysValid) {
  std::mt19937 rng(12345);
  auto chance = [&rng](int one_in) {
    return std::uniform_int_distribution<int>(0, one_in - 1)(rng) == 0;
  };
  TcpConnState cs;
  const uint32_t isn_o = 0xFFFF0000u;
  const uint32_t isn_r = 0x7FFFFF00u;
  constexpr int kScaleO = 7;
  constexpr int kScaleR = 8;
  constexpr uint32_t kMss = 1448;
  int tracked = 0;
  auto track = [&](TcpDir d, const TcpSegment& s) {
    const TcpResult r = cs.track(d, s, false);
    ++tracked;
    EXPECT_EQ(r.verdict, V::kAccept) << tcpDirName(d) << " seq " << s.seq << " len "
                                     << s.payload_len << " ack " << s.ack << ": " << r.why;
    return r;
  };

  // Handshake.
  TcpSegment syn;
  syn.flags = kSyn;
  syn.seq = isn_o;
  syn.win = 64240;
  syn.wscale = kScaleO;
  ASSERT_EQ(cs.initFromFirst(syn, false).verdict, V::kAccept);
  TcpSegment sa;
  sa.flags = kSyn | kAck;
  sa.seq = isn_r;
  sa.ack = isn_o + 1;
  sa.win = 65160;
  sa.wscale = kScaleR;
  track(kR, sa);

  // Sender (originator) state.
  uint32_t snd_una = isn_o + 1, snd_nxt = isn_o + 1;
  uint32_t peer_wnd = 65160;  // bytes, from the SYN-ACK
  int dupacks = 0;
  // Receiver (responder) state.
  uint32_t rcv_nxt = isn_o + 1;
  std::map<uint32_t, uint32_t> ooo;  // seq -> len, out of order
  int unacked_segments = 0;
  uint32_t r_nxt = isn_r + 1;  // responder's own data
  uint32_t o_rcv = isn_r + 1;  // what the originator received from the responder
  auto r_win_raw = [&] {
    return uint32_t{4096} - std::uniform_int_distribution<uint32_t>(0, 511)(rng);
  };
  constexpr uint32_t kOWinRaw = 2048;  // 256 KB at scale 7

  TcpSegment hack;
  hack.flags = kAck;
  hack.seq = snd_nxt;
  hack.ack = o_rcv;
  hack.win = kOWinRaw;
  track(kO, hack);

  std::deque<TcpSegment> to_r;  // in flight towards the responder, already tracked
  std::deque<TcpSegment> to_o;

  auto o_sends = [&](uint32_t seq, uint32_t len) {
    TcpSegment s;
    s.flags = kAck | kPsh;
    s.seq = seq;
    s.ack = o_rcv;
    s.win = kOWinRaw;
    s.payload_len = len;
    track(kO, s);
    if (!chance(40)) {  // lost after the firewall otherwise
      if (!to_r.empty() && chance(10)) {
        to_r.insert(to_r.end() - 1, s);  // overtakes the previous one
      } else {
        to_r.push_back(s);
      }
    }
  };
  auto r_acks = [&] {
    TcpSegment a;
    a.flags = kAck;
    a.seq = r_nxt;
    a.ack = rcv_nxt;
    a.win = r_win_raw();
    track(kR, a);
    unacked_segments = 0;
    if (!chance(50)) to_o.push_back(a);
  };

  const uint64_t kTotal = 40ull * 1024 * 1024;  // 40 MB
  uint64_t delivered = 0;
  int idle = 0;
  for (int step = 0; step < 200000 && delivered < kTotal; ++step) {
    // The originator sends while the window allows.
    for (int burst = 0; burst < 4; ++burst) {
      const uint32_t in_flight = snd_nxt - snd_una;
      if (in_flight + kMss > peer_wnd) break;
      o_sends(snd_nxt, kMss);
      snd_nxt += kMss;
    }
    // The responder sometimes sends a little data of its own.
    if (chance(37)) {
      TcpSegment d;
      d.flags = kAck | kPsh;
      d.seq = r_nxt;
      d.ack = rcv_nxt;
      d.win = r_win_raw();
      d.payload_len = 300;
      track(kR, d);
      r_nxt += 300;
      to_o.push_back(d);
    }
    // Deliver to the responder.
    for (int n = 0; n < 3 && !to_r.empty(); ++n) {
      const TcpSegment s = to_r.front();
      to_r.pop_front();
      if (s.payload_len == 0) continue;  // the originator's pure ACKs: nothing to do here
      if (s.seq == rcv_nxt) {
        rcv_nxt += s.payload_len;
        delivered += s.payload_len;
        while (!ooo.empty() && ooo.begin()->first == rcv_nxt) {
          rcv_nxt += ooo.begin()->second;
          delivered += ooo.begin()->second;
          ooo.erase(ooo.begin());
        }
        if (++unacked_segments >= 2) r_acks();
      } else if (seqLater(s.seq, rcv_nxt)) {
        ooo[s.seq] = s.payload_len;
        r_acks();  // duplicate ACK
      } else {
        r_acks();  // old retransmission
      }
    }
    if (unacked_segments > 0 && to_r.empty()) r_acks();  // delayed-ACK timer
    // Deliver to the originator.
    bool acked_data = false;
    while (!to_o.empty()) {
      const TcpSegment s = to_o.front();
      to_o.pop_front();
      if (s.payload_len > 0 && s.seq == o_rcv) {
        o_rcv += s.payload_len;
        acked_data = true;
      }
      if (seqLater(s.ack, snd_una)) {
        snd_una = s.ack;
        dupacks = 0;
        idle = 0;
      } else if (s.ack == snd_una && s.payload_len == 0 && snd_nxt != snd_una) {
        ++dupacks;
      }
      peer_wnd = s.win << kScaleR;
    }
    if (acked_data) {
      TcpSegment a;
      a.flags = kAck;
      a.seq = snd_nxt;
      a.ack = o_rcv;
      a.win = kOWinRaw;
      track(kO, a);
      if (!chance(50)) to_r.push_back(a);
    }
    // Fast retransmit, or retransmission timeout when nothing moves.
    if (snd_nxt != snd_una && (dupacks >= 3 || ++idle > 8)) {
      o_sends(snd_una, std::min<uint32_t>(kMss, snd_nxt - snd_una));
      dupacks = 0;
      idle = 0;
    }
    if (HasFailure()) break;
  }
  EXPECT_GE(delivered, kTotal);
  EXPECT_GT(tracked, 30000);
  EXPECT_EQ(cs.state(), S::kEstablished);
  EXPECT_EQ(cs.info(kO).scale, kScaleO);
  EXPECT_EQ(cs.info(kR).scale, kScaleR);
  // The sequence space wrapped: the transfer started just below 2^32.
  EXPECT_LT(cs.info(kO).end, isn_o);
}

}  // namespace
}  // namespace statewall::dataplane::testing
