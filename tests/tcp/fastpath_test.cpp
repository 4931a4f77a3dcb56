// The tracker's fast path (TcpConnState::track() for in-window ACKs of ESTABLISHED connections)
// against the general algorithm (trackGeneral()): the same random segment sequences go through two
// trackers, one with each, and every result and the whole tracked state must be the same after
// every segment. The sequences are mostly what real endpoints send (handshakes, data, ACKs, window
// changes, closes) with retransmissions, reordering-like stale segments, out-of-window jumps,
// flag combinations and resets mixed in, so that the fast path sees both the packets it takes and
// the ones it must hand to the general path.
#include <array>
#include <cstdint>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "tcp/tcp_test_util.hpp"

namespace statewall::dataplane::testing {
namespace {

using S = TcpState;
using V = TcpVerdict;

std::string describe(const TcpSegment& s) {
  return "flags=" + std::to_string(s.flags) + " seq=" + std::to_string(s.seq) +
         " ack=" + std::to_string(s.ack) + " win=" + std::to_string(s.win) +
         " len=" + std::to_string(s.payload_len) + " wscale=" + std::to_string(s.wscale);
}

void expectSameInfo(const TcpConnState& a, const TcpConnState& b, TcpDir d, const std::string& at) {
  const TcpDirInfo x = a.info(d);
  const TcpDirInfo y = b.info(d);
  EXPECT_EQ(x.learned, y.learned) << at;
  EXPECT_EQ(x.wscale_option, y.wscale_option) << at;
  EXPECT_EQ(x.sack_permitted, y.sack_permitted) << at;
  EXPECT_EQ(x.fin_sent, y.fin_sent) << at;
  EXPECT_EQ(x.fin_acked, y.fin_acked) << at;
  EXPECT_EQ(x.acked_syn, y.acked_syn) << at;
  EXPECT_EQ(x.scale, y.scale) << at;
  EXPECT_EQ(x.end, y.end) << at;
  EXPECT_EQ(x.maxend, y.maxend) << at;
  EXPECT_EQ(x.maxack, y.maxack) << at;
  EXPECT_EQ(x.maxwin, y.maxwin) << at;
}

struct Counts {
  uint64_t segments = 0;
  uint64_t established_acks_accepted = 0;  // what the fast path exists for
  uint64_t established_acks_other = 0;     // ACKs in ESTABLISHED it must hand on
  uint64_t invalid = 0;
};

// Moves the model's endpoints on as if segment s from d arrived (Conn::put() without tracking).
void deliverTo(Conn& m, TcpDir d, const TcpSegment& s) {
  Endpoint& me = m.ep[Conn::idx(d)];
  Endpoint& peer = m.ep[1 - Conn::idx(d)];
  const bool syn = (s.flags & kSyn) != 0;
  const uint32_t end = s.seq + s.payload_len + (syn ? 1u : 0u) + ((s.flags & kFin) ? 1u : 0u);
  if (seqLater(end, me.nxt)) me.nxt = end;
  if (syn || seqLater(end, peer.rcv)) peer.rcv = end;
}

// One random connection: `steps` segments through both trackers.
void runSequence(uint64_t seed, int steps, Counts* counts) {
  std::mt19937_64 rng(seed);
  auto chance = [&](unsigned percent) { return rng() % 100 < percent; };
  auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };

  Conn model(static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng()));
  model.ep[0].wscale = chance(70) ? static_cast<int8_t>(pick(15)) : int8_t{-1};
  model.ep[1].wscale = chance(70) ? static_cast<int8_t>(pick(15)) : int8_t{-1};
  model.ep[0].win = 1 + pick(65535);
  model.ep[1].win = 1 + pick(65535);
  const bool loose = chance(20);
  const bool pickup = chance(15);

  TcpConnState fast;
  TcpConnState general;
  bool started = false;

  for (int i = 0; i < steps; ++i) {
    TcpDir d = chance(50) ? kO : kR;
    uint8_t flags;
    uint32_t len = 0;
    if (!started) {
      d = kO;
      flags = pickup ? (kAck | kPsh) : kSyn;
      len = pickup ? pick(1000) : 0;
    } else if (general.state() == S::kSynSent) {
      flags = d == kR ? static_cast<uint8_t>(kSyn | kAck) : kSyn;
    } else if (general.state() == S::kSynRecv && chance(60)) {
      flags = kAck;
      d = kO;
    } else {
      const uint32_t k = pick(100);
      if (k < 55) {
        flags = kAck | (chance(50) ? kPsh : 0);
        len = chance(50) ? 0 : pick(1460) + 1;
      } else if (k < 60) {
        flags = kAck | (chance(50) ? tcp_flag::kUrg : tcp_flag::kEce);
        len = pick(100);
      } else if (k < 63) {
        flags = kFin | kAck;
      } else if (k < 65) {
        flags = chance(50) ? kRst : static_cast<uint8_t>(kRst | kAck);
      } else if (k < 67) {
        flags = kSyn;
      } else if (k < 69) {
        flags = kSyn | kAck;
      } else if (k < 71) {
        flags = static_cast<uint8_t>(rng());
      } else {
        flags = kAck;
        len = pick(3) == 0 ? pick(64000) : 0;
      }
    }
    TcpSegment s = model.seg(d, flags, len);
    // Perturbations: retransmissions, stale or future sequence and ack numbers, window changes
    // (including growth, which the fast path leaves to the general path).
    const uint32_t k = pick(100);
    const bool perturbed = k < 21;
    if (k < 8) {
      s.seq -= pick(3000);
    } else if (k < 12) {
      s.seq += pick(1u << 20);
    } else if (k < 16) {
      s.ack -= pick(200000);
    } else if (k < 19) {
      s.ack += pick(5000);
    } else if (k < 21) {
      s.seq += 0x80000000u;
    }
    if (chance(10)) {
      model.ep[Conn::idx(d)].win = chance(80) ? 1 + pick(65535) : pick(4);
      s.win = model.ep[Conn::idx(d)].win;
    }
    // A segment reaches its receiver when the firewall passed it and it was not lost on the
    // way (a perturbed segment is one the receiver drops).
    const bool arrives = !perturbed && chance(95);

    TcpResult a;
    TcpResult b;
    if (!started) {
      a = fast.initFromFirst(s, pickup);
      b = general.initFromFirst(s, pickup);
      started = a.verdict == V::kAccept;
      if (arrives && started) deliverTo(model, d, s);
    } else {
      const S before = general.state();
      a = fast.track(d, s, loose);
      b = general.trackGeneral(d, s, loose);
      if (arrives && b.verdict == V::kAccept) deliverTo(model, d, s);
      if (before == S::kEstablished && tcpEventOf(s.flags) == TcpEvent::kSegAck) {
        if (b.verdict == V::kAccept && !b.unchecked) {
          ++counts->established_acks_accepted;
        } else {
          ++counts->established_acks_other;
        }
      }
    }
    ++counts->segments;
    if (b.verdict == V::kInvalid) ++counts->invalid;

    const std::string at = "seed " + std::to_string(seed) + " step " + std::to_string(i) + " dir " +
                           std::string(tcpDirName(d)) + " " + describe(s);
    ASSERT_EQ(a.verdict, b.verdict) << at;
    ASSERT_EQ(a.before, b.before) << at;
    ASSERT_EQ(a.after, b.after) << at;
    ASSERT_STREQ(a.why, b.why) << at;
    ASSERT_EQ(a.closed, b.closed) << at;
    ASSERT_EQ(a.unchecked, b.unchecked) << at;
    ASSERT_EQ(a.transition, b.transition) << at;
    ASSERT_EQ(fast.state(), general.state()) << at;
    ASSERT_EQ(fast.pickedUp(), general.pickedUp()) << at;
    expectSameInfo(fast, general, kO, at);
    expectSameInfo(fast, general, kR, at);
    if (::testing::Test::HasFailure()) return;
    // A sequence ends when a SYN would reopen the connection (the engine replaces the entry),
    // and soon after the connection closed or could not start.
    if (b.verdict == V::kReopen) return;
    const S now = general.state();
    if ((now == S::kClose || now == S::kTimeWait || now == S::kLastAck || !started) && chance(20))
      return;
  }
}

TEST(TcpFastPath, SameResultsAsTheGeneralAlgorithm) {
  Counts counts;
  for (uint64_t seed = 1; seed <= 10000; ++seed) {
    runSequence(seed, 300, &counts);
    if (HasFailure()) return;
  }
  // The sequences exercise both sides of the fast path's boundary, plenty of each.
  EXPECT_GT(counts.established_acks_accepted, 100000u);
  EXPECT_GT(counts.established_acks_other, 30000u);
  EXPECT_GT(counts.invalid, 100000u);
  RecordProperty("segments", std::to_string(counts.segments));
}

// A long transfer in both directions with window scaling and sequence numbers wrapping around:
// almost every segment is the fast path's case, and the two trackers must stay identical.
TEST(TcpFastPath, LongTransferAcrossSequenceWrap) {
  Conn m(0xFFFF0000u, 0xFFFFFF00u);
  m.ep[0].wscale = 7;
  m.ep[1].wscale = 7;
  TcpConnState fast;
  TcpConnState general;
  const struct {
    TcpDir d;
    uint8_t flags;
  } handshake[] = {{kO, kSyn}, {kR, static_cast<uint8_t>(kSyn | kAck)}, {kO, kAck}};
  for (const auto& h : handshake) {
    const TcpSegment s = m.seg(h.d, h.flags);
    if (h.flags == kSyn) {
      ASSERT_EQ(fast.initFromFirst(s, false).verdict, V::kAccept);
      ASSERT_EQ(general.initFromFirst(s, false).verdict, V::kAccept);
    } else {
      ASSERT_EQ(fast.track(h.d, s, false).verdict, V::kAccept);
      ASSERT_EQ(general.trackGeneral(h.d, s, false).verdict, V::kAccept);
    }
    deliverTo(m, h.d, s);
  }
  ASSERT_EQ(fast.state(), S::kEstablished);
  for (int i = 0; i < 20000; ++i) {
    const TcpDir d = i % 3 == 0 ? kR : kO;
    const uint32_t len = i % 3 == 0 ? 0 : 1400;
    const TcpSegment s = m.seg(d, kAck, len);
    const TcpResult a = fast.track(d, s, false);
    const TcpResult b = general.trackGeneral(d, s, false);
    deliverTo(m, d, s);
    ASSERT_EQ(a.verdict, V::kAccept) << i << ": " << a.why;
    ASSERT_EQ(a.verdict, b.verdict) << i;
    ASSERT_EQ(a.transition, b.transition) << i;
    ASSERT_STREQ(a.why, b.why) << i;
    ASSERT_EQ(a.unchecked, b.unchecked) << i;
    expectSameInfo(fast, general, kO, std::to_string(i));
    expectSameInfo(fast, general, kR, std::to_string(i));
    if (HasFailure()) return;
  }
  // The originator's sequence wrapped past 2^32.
  EXPECT_LT(fast.info(kO).end, 0xFFFF0000u);
}

}  // namespace
}  // namespace statewall::dataplane::testing
