// Both directions of the same connections tracked by two threads at once (run under TSan, label
// `concurrency`). Each thread plays one endpoint of every connection. Like a real network, an
// endpoint only acknowledges what the other endpoint has already sent, i.e. what the other thread
// tracked and then published; nothing else orders the two threads. No timing assertions.
#include <atomic>
#include <barrier>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tcp/tcp_test_util.hpp"

namespace statewall::dataplane::testing {
namespace {

using S = TcpState;
using V = TcpVerdict;

constexpr int kConns = 2000;
constexpr int kRounds = 100;
constexpr uint32_t kMss = 1000;
constexpr int8_t kScale = 4;
constexpr uint32_t kWinBytes = 60000;  // both receivers
constexpr uint32_t kWinRaw = kWinBytes >> kScale;

// What one endpoint has put on the wire, published after tracking.
struct Wire {
  std::atomic<uint32_t> sent{0};   // end of everything sent
  std::atomic<uint32_t> acked{0};  // highest ack sent (0 = none yet)
  std::atomic<bool> fin{false};
};

struct Flow {
  TcpConnState cs;
  Wire wire[2];
  uint32_t isn[2] = {0, 0};
  std::atomic<int> meet{0};  // rendezvous of the two threads on this flow
  TcpResult fin_result[2];
  TcpResult last_ack_result[2];
};

struct Failures {
  std::atomic<int> count{0};
  std::string first[2];  // one message per thread, written only by that thread
  void note(int side, const std::string& msg) {
    if (first[side].empty()) first[side] = msg;
    count.fetch_add(1);
  }
};

TcpSegment make(uint8_t flags, uint32_t seq, uint32_t ack, uint32_t len) {
  TcpSegment s;
  s.flags = flags;
  s.seq = seq;
  s.ack = ack;
  s.win = kWinRaw;
  s.payload_len = len;
  return s;
}

void spinUntil(const std::atomic<bool>& flag) {
  while (!flag.load(std::memory_order_acquire))
    std::this_thread::yield();
}

// Both threads arrive at this flow before either goes on, so that their next packets for it are
// tracked as close together in time as possible.
// The last to arrive would otherwise be done before the other notices, hence a short delay that
// differs from flow to flow.
void rendezvous(std::atomic<int>& meet, int parties, unsigned jitter) {
  const bool last = meet.fetch_add(1, std::memory_order_acq_rel) + 1 == parties;
  for (int spins = 0; meet.load(std::memory_order_acquire) < parties; ++spins) {
    if (spins > 100000) std::this_thread::yield();
  }
  if (last) {
    for (unsigned k = 0; k < jitter; ++k)
      meet.load(std::memory_order_relaxed);
  }
}

// One endpoint of every flow. side 0 = originator, 1 = responder.
void endpoint(int side, std::vector<std::unique_ptr<Flow>>& flows, std::barrier<>& sync,
              Failures& fail) {
  const TcpDir dir = side == 0 ? kO : kR;
  const int peer = 1 - side;
  std::vector<uint32_t> nxt(flows.size());
  auto track = [&](Flow& f, const TcpSegment& s, const char* what) {
    const TcpResult r = f.cs.track(dir, s, /*loose=*/false);
    if (r.verdict != V::kAccept) {
      fail.note(side, std::string(what) + " " + std::string(tcpDirName(dir)) + ": " + r.why);
    }
    return r;
  };

  // Handshake: the responder answers every SYN; the originator acknowledges every SYN-ACK.
  for (size_t i = 0; i < flows.size(); ++i) {
    Flow& f = *flows[i];
    if (side == 1) {
      TcpSegment sa = make(kSyn | kAck, f.isn[1], f.isn[0] + 1, 0);
      sa.win = 65535;
      sa.wscale = kScale;
      track(f, sa, "SYN-ACK");
      nxt[i] = f.isn[1] + 1;
      f.wire[1].acked.store(f.isn[0] + 1, std::memory_order_release);
      f.wire[1].sent.store(nxt[i], std::memory_order_release);
    } else {
      nxt[i] = f.isn[0] + 1;
      uint32_t peer_sent;
      while ((peer_sent = f.wire[1].sent.load(std::memory_order_acquire)) == 0) {
        std::this_thread::yield();
      }
      track(f, make(kAck, nxt[i], peer_sent, 0), "handshake ACK");
      f.wire[0].acked.store(peer_sent, std::memory_order_release);
    }
  }
  sync.arrive_and_wait();

  // Data both ways, windows permitting; otherwise a bare ACK.
  for (int round = 0; round < kRounds; ++round) {
    for (size_t i = 0; i < flows.size(); ++i) {
      Flow& f = *flows[i];
      const uint32_t peer_sent = f.wire[peer].sent.load(std::memory_order_acquire);
      const uint32_t peer_acked = f.wire[peer].acked.load(std::memory_order_acquire);
      const bool window_ok = nxt[i] + kMss - peer_acked <= kWinBytes;
      const bool want_data = (round + static_cast<int>(i) + side) % 3 != 0;
      const uint32_t len = window_ok && want_data ? kMss : 0;
      track(f, make(len ? kAck | kPsh : kAck, nxt[i], peer_sent, len), "data");
      nxt[i] += len;
      f.wire[side].sent.store(nxt[i], std::memory_order_release);
      f.wire[side].acked.store(peer_sent, std::memory_order_release);
    }
  }
  sync.arrive_and_wait();

  // Both sides close at once, then acknowledge the other's FIN once they have seen it.
  for (size_t i = 0; i < flows.size(); ++i) {
    Flow& f = *flows[i];
    rendezvous(f.meet, 2, static_cast<unsigned>(i % 97));
    const uint32_t peer_sent = f.wire[peer].sent.load(std::memory_order_acquire);
    f.fin_result[side] = track(f, make(kFin | kAck, nxt[i], peer_sent, 0), "FIN");
    nxt[i] += 1;
    f.wire[side].sent.store(nxt[i], std::memory_order_release);
    f.wire[side].fin.store(true, std::memory_order_release);
  }
  for (size_t i = 0; i < flows.size(); ++i) {
    Flow& f = *flows[i];
    spinUntil(f.wire[peer].fin);
    const uint32_t peer_sent = f.wire[peer].sent.load(std::memory_order_acquire);
    f.last_ack_result[side] = track(f, make(kAck, nxt[i], peer_sent, 0), "last ACK");
  }
}

std::vector<std::unique_ptr<Flow>> openFlows() {
  std::vector<std::unique_ptr<Flow>> flows;
  for (int i = 0; i < kConns; ++i) {
    auto f = std::make_unique<Flow>();
    // Spread the ISNs so that some connections wrap around 2^32 during the transfer.
    f->isn[0] = static_cast<uint32_t>(0xFFFF0000u + static_cast<uint32_t>(i) * 2654435761u);
    f->isn[1] = static_cast<uint32_t>(0xFFFFF000u - static_cast<uint32_t>(i) * 40503u);
    TcpSegment syn = make(kSyn, f->isn[0], 0, 0);
    syn.win = 65535;
    syn.wscale = kScale;
    EXPECT_EQ(f->cs.initFromFirst(syn, false).verdict, V::kAccept);
    f->wire[0].sent.store(f->isn[0] + 1, std::memory_order_relaxed);  // the SYN is out
    flows.push_back(std::move(f));
  }
  return flows;
}

TEST(TcpConcurrency, BothDirectionsOnTwoThreads) {
  auto flows = openFlows();
  Failures fail;
  std::barrier<> sync(2);
  std::thread responder(endpoint, 1, std::ref(flows), std::ref(sync), std::ref(fail));
  endpoint(0, flows, sync, fail);
  responder.join();

  EXPECT_EQ(fail.count.load(), 0) << fail.first[0] << " / " << fail.first[1];
  for (const auto& fp : flows) {
    const Flow& f = *fp;
    EXPECT_EQ(f.cs.state(), S::kTimeWait);
    const TcpDirInfo o = f.cs.info(kO);
    const TcpDirInfo r = f.cs.info(kR);
    EXPECT_TRUE(o.fin_sent && o.fin_acked && r.fin_sent && r.fin_acked);
    EXPECT_EQ(o.end, f.wire[0].sent.load());
    EXPECT_EQ(r.end, f.wire[1].sent.load());
    EXPECT_EQ(o.scale, kScale);
    // The two concurrent FINs were linearised: one saw ESTABLISHED, the other FIN_WAIT.
    const TcpResult& f0 = f.fin_result[0];
    const TcpResult& f1 = f.fin_result[1];
    const bool order_a = f0.before == S::kEstablished && f0.after == S::kFinWait &&
                         f1.before == S::kFinWait && f1.after == S::kLastAck;
    const bool order_b = f1.before == S::kEstablished && f1.after == S::kFinWait &&
                         f0.before == S::kFinWait && f0.after == S::kLastAck;
    EXPECT_TRUE(order_a != order_b)
        << tcpStateName(f0.before) << "->" << tcpStateName(f0.after) << ", "
        << tcpStateName(f1.before) << "->" << tcpStateName(f1.after);
    // Exactly one final ACK moved the connection to TIME_WAIT.
    int to_time_wait = 0;
    for (const TcpResult& a : f.last_ack_result) {
      if (a.before == S::kLastAck && a.after == S::kTimeWait) ++to_time_wait;
    }
    EXPECT_EQ(to_time_wait, 1);
  }
}

// The same SYN-ACK tracked by two threads at once (a duplicate on two queues): both pass, the
// responder's half is learned once, and exactly one of them made the SYN_SENT -> SYN_RECV move.
TEST(TcpConcurrency, DuplicateSynAckOnTwoThreads) {
  auto flows = openFlows();
  std::barrier<> sync(2);
  std::vector<TcpResult> res[2];
  res[0].resize(flows.size());
  res[1].resize(flows.size());
  auto run = [&](int t) {
    sync.arrive_and_wait();
    for (size_t i = 0; i < flows.size(); ++i) {
      Flow& f = *flows[i];
      TcpSegment sa = make(kSyn | kAck, f.isn[1], f.isn[0] + 1, 0);
      sa.win = 65535;
      sa.wscale = kScale;
      rendezvous(f.meet, 2, static_cast<unsigned>(i % 97));
      res[t][i] = f.cs.track(kR, sa, false);
    }
  };
  std::thread other(run, 1);
  run(0);
  other.join();
  for (size_t i = 0; i < flows.size(); ++i) {
    const Flow& f = *flows[i];
    EXPECT_EQ(f.cs.state(), S::kSynRecv);
    EXPECT_EQ(res[0][i].verdict, V::kAccept) << res[0][i].why;
    EXPECT_EQ(res[1][i].verdict, V::kAccept) << res[1][i].why;
    const int moved = (res[0][i].before == S::kSynSent) + (res[1][i].before == S::kSynSent);
    EXPECT_EQ(moved, 1);
    const TcpDirInfo r = f.cs.info(kR);
    EXPECT_TRUE(r.learned);
    EXPECT_EQ(r.end, f.isn[1] + 1);
    EXPECT_EQ(r.scale, kScale);
  }
}

// A reset from one side while the other keeps sending: every flow ends in CLOSE, the RST is the
// packet that closed it, and the originator's data in flight is accepted before or after it.
TEST(TcpConcurrency, ResetRacingData) {
  auto flows = openFlows();
  for (auto& fp : flows) {
    Flow& f = *fp;
    TcpSegment sa = make(kSyn | kAck, f.isn[1], f.isn[0] + 1, 0);
    sa.wscale = kScale;
    ASSERT_EQ(f.cs.track(kR, sa, false).verdict, V::kAccept);
    ASSERT_EQ(f.cs.track(kO, make(kAck, f.isn[0] + 1, f.isn[1] + 1, 0), false).verdict, V::kAccept);
  }
  std::barrier<> sync(2);
  std::vector<TcpResult> rst(flows.size());
  std::atomic<int> bad{0};
  std::thread responder([&] {
    sync.arrive_and_wait();
    for (size_t i = 0; i < flows.size(); ++i) {
      Flow& f = *flows[i];
      rst[i] = f.cs.track(kR, make(kRst | kAck, f.isn[1] + 1, f.isn[0] + 1, 0), false);
    }
  });
  sync.arrive_and_wait();
  for (int round = 0; round < 20; ++round) {
    for (size_t i = 0; i < flows.size(); ++i) {
      Flow& f = *flows[i];
      const uint32_t seq = f.isn[0] + 1 + static_cast<uint32_t>(round) * 100;
      const TcpResult r = f.cs.track(kO, make(kAck | kPsh, seq, f.isn[1] + 1, 100), false);
      if (r.verdict != V::kAccept) bad.fetch_add(1);
    }
  }
  responder.join();
  EXPECT_EQ(bad.load(), 0);
  for (size_t i = 0; i < flows.size(); ++i) {
    EXPECT_EQ(flows[i]->cs.state(), S::kClose);
    EXPECT_EQ(rst[i].verdict, V::kAccept) << rst[i].why;
    EXPECT_TRUE(rst[i].closed);
  }
}

// The acknowledgement word (tcp_detail::advanceAcks): its two halves move on independently, each
// only forwards in sequence space, across the wrap. Two threads move one half each from stale
// snapshots while a third raises both to values that are behind: no advance is lost.
TEST(TcpAckWord, HalvesAdvanceIndependentlyUnderContention) {
  using tcp_detail::advanceAcks;
  using tcp_detail::maxackOf;
  using tcp_detail::packAcks;
  using tcp_detail::peerMaxendOf;
  constexpr uint32_t kStart = 0xFFFF0000u;  // both halves cross 2^32
  constexpr uint32_t kSteps = 200000;
  std::atomic<uint64_t> word{packAcks(kStart, kStart)};
  std::barrier<> sync(3);
  auto mover = [&](bool ack_half) {
    sync.arrive_and_wait();
    for (uint32_t i = 1; i <= kSteps; ++i) {
      const uint32_t v = kStart + i;
      // A snapshot taken before the other thread's latest moves: the CAS must correct it.
      const uint64_t stale = packAcks(kStart, kStart);
      advanceAcks(word, stale, ack_half, v, !ack_half, v);
    }
  };
  std::thread a(mover, true);
  std::thread b(mover, false);
  sync.arrive_and_wait();
  for (uint32_t i = 1; i <= kSteps; i += 7) {
    // Behind both halves most of the time: must never move either backwards.
    advanceAcks(word, word.load(), true, kStart + i / 2, true, kStart + i / 2);
  }
  a.join();
  b.join();
  EXPECT_EQ(maxackOf(word.load()), kStart + kSteps);
  EXPECT_EQ(peerMaxendOf(word.load()), kStart + kSteps);
}

}  // namespace
}  // namespace statewall::dataplane::testing
