// Every row of the TCP transition table, driven by real packet sequences: each case builds a
// connection in the row's state with two simulated endpoints, sends one segment, and checks the
// verdict, the new state and which row applied. The expectations are written here independently
// of the table; a final test checks that every table row is exercised by at least one case.
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tcp/tcp_test_util.hpp"

namespace statewall::dataplane::testing {
namespace {

using S = TcpState;
using E = TcpEvent;
using G = TcpGuard;
using V = TcpVerdict;

// Starting points, each reached by a valid packet sequence.
enum class Scn {
  kFresh,        // no packet yet
  kSynSent,      // O: SYN
  kSynSent2,     // O: SYN, R: SYN (simultaneous open)
  kSynRecv,      // O: SYN, R: SYN-ACK (normal open)
  kSynRecvSim,   // O: SYN, R: SYN, O: SYN-ACK (simultaneous open, originator acked first)
  kEstablished,  // handshake plus data both ways
  kFinWaitO,     // originator sent FIN
  kFinWaitR,     // responder sent FIN
  kCloseWaitO,   // originator's FIN acknowledged
  kCloseWaitR,   // responder's FIN acknowledged
  kLastAckO,     // originator closed first (FIN acked), responder's FIN pending
  kLastAckR,     // responder closed first (FIN acked), originator's FIN pending
  kLastAckBoth,  // simultaneous close: both FINs pending
  kTimeWait,     // both FINs acknowledged
  kClose,        // established, then a valid RST
};

void expectOk(const TcpResult& r) {
  ASSERT_EQ(r.verdict, V::kAccept) << "setup packet rejected: " << r.why;
}

void build(Conn& c, Scn scn) {
  switch (scn) {
    case Scn::kFresh:
      return;
    case Scn::kSynSent:
      expectOk(c.syn(kO));
      return;
    case Scn::kSynSent2:
      build(c, Scn::kSynSent);
      expectOk(c.syn(kR));
      return;
    case Scn::kSynRecv:
      build(c, Scn::kSynSent);
      expectOk(c.synAck(kR));
      return;
    case Scn::kSynRecvSim:
      build(c, Scn::kSynSent2);
      expectOk(c.synAck(kO));
      return;
    case Scn::kEstablished:
      c.establish();
      return;
    case Scn::kFinWaitO:
      build(c, Scn::kEstablished);
      expectOk(c.fin(kO));
      return;
    case Scn::kFinWaitR:
      build(c, Scn::kEstablished);
      expectOk(c.fin(kR));
      return;
    case Scn::kCloseWaitO:
      build(c, Scn::kFinWaitO);
      expectOk(c.ack(kR));
      return;
    case Scn::kCloseWaitR:
      build(c, Scn::kFinWaitR);
      expectOk(c.ack(kO));
      return;
    case Scn::kLastAckO:
      build(c, Scn::kCloseWaitO);
      expectOk(c.fin(kR));
      return;
    case Scn::kLastAckR:
      build(c, Scn::kCloseWaitR);
      expectOk(c.fin(kO));
      return;
    case Scn::kLastAckBoth: {
      build(c, Scn::kFinWaitO);
      TcpSegment s = c.seg(kR, kFin | kAck);
      s.ack -= 1;  // sent before the originator's FIN arrived
      expectOk(c.put(kR, s));
      return;
    }
    case Scn::kTimeWait:
      build(c, Scn::kLastAckO);
      expectOk(c.ack(kO));
      return;
    case Scn::kClose:
      build(c, Scn::kEstablished);
      expectOk(c.rst(kO));
      return;
  }
}

using Stim = std::function<TcpResult(Conn&)>;

struct Case {
  std::string name;
  Scn scn;
  S from;
  TcpDir dir;
  E event;
  G guard;
  Stim stim;
  V verdict;
  S after;
};

// Stimuli.
Stim syn(TcpDir d) {
  return [d](Conn& c) { return c.syn(d); };
}
Stim synNewIsn(TcpDir d) {
  return [d](Conn& c) {
    TcpSegment s = c.seg(d, kSyn);
    s.seq += 0x10000000;
    return c.put(d, s, false);
  };
}
Stim synAck(TcpDir d) {
  return [d](Conn& c) { return c.synAck(d); };
}
Stim fin(TcpDir d) {
  return [d](Conn& c) { return c.fin(d); };
}
Stim finAgain(TcpDir d) {
  return [d](Conn& c) { return c.finAgain(d); };
}
Stim ack(TcpDir d) {
  return [d](Conn& c) { return c.ack(d); };
}
Stim data(TcpDir d, uint32_t len) {
  return [d, len](Conn& c) { return c.data(d, len); };
}
Stim rst(TcpDir d) {
  return [d](Conn& c) { return c.rst(d); };
}

std::vector<Case> cases() {
  std::vector<Case> v;
  auto add = [&v](std::string name, Scn scn, S from, TcpDir dir, E ev, G g, Stim stim, V verdict,
                  S after) {
    v.push_back(Case{std::move(name), scn, from, dir, ev, g, std::move(stim), verdict, after});
  };
  const G kAlw = G::kAlways;

  // NONE: the first packet.
  add("first SYN opens", Scn::kFresh, S::kNone, kO, E::kSegSyn, kAlw, syn(kO), V::kAccept,
      S::kSynSent);
  add("first SYN-ACK cannot open", Scn::kFresh, S::kNone, kO, E::kSegSynAck, kAlw, synAck(kO),
      V::kInvalid, S::kNone);
  add("first FIN cannot open", Scn::kFresh, S::kNone, kO, E::kSegFin, kAlw, fin(kO), V::kInvalid,
      S::kNone);
  add(
      "first ACK: pickup allowed", Scn::kFresh, S::kNone, kO, E::kSegAck, kAlw,
      [](Conn& c) {
        c.mid_stream = true;
        return c.data(kO, 10);
      },
      V::kAccept, S::kEstablished);
  add("first ACK: pickup not allowed", Scn::kFresh, S::kNone, kO, E::kSegAck, kAlw, data(kO, 10),
      V::kInvalid, S::kNone);
  add("first RST cannot open", Scn::kFresh, S::kNone, kO, E::kSegRst, kAlw, rst(kO), V::kInvalid,
      S::kNone);

  // SYN_SENT.
  add("SYN_SENT O retransmitted SYN", Scn::kSynSent, S::kSynSent, kO, E::kSegSyn, kAlw, syn(kO),
      V::kAccept, S::kSynSent);
  add("SYN_SENT O SYN with a new ISN", Scn::kSynSent, S::kSynSent, kO, E::kSegSyn, kAlw,
      synNewIsn(kO), V::kAccept, S::kSynSent);
  add("SYN_SENT O SYN-ACK", Scn::kSynSent, S::kSynSent, kO, E::kSegSynAck, kAlw, synAck(kO),
      V::kInvalid, S::kSynSent);
  add("SYN_SENT O FIN", Scn::kSynSent, S::kSynSent, kO, E::kSegFin, kAlw, fin(kO), V::kInvalid,
      S::kSynSent);
  add("SYN_SENT O ACK", Scn::kSynSent, S::kSynSent, kO, E::kSegAck, kAlw, ack(kO), V::kInvalid,
      S::kSynSent);
  add("SYN_SENT O RST at its next sequence", Scn::kSynSent, S::kSynSent, kO, E::kSegRst, kAlw,
      rst(kO), V::kAccept, S::kClose);
  add(
      "SYN_SENT O RST elsewhere", Scn::kSynSent, S::kSynSent, kO, E::kSegRst, kAlw,
      [](Conn& c) {
        TcpSegment s = c.seg(kO, kRst);
        s.seq += 5000;
        return c.put(kO, s, false);
      },
      V::kInvalid, S::kSynSent);
  add("SYN_SENT R SYN: simultaneous open", Scn::kSynSent, S::kSynSent, kR, E::kSegSyn, kAlw,
      syn(kR), V::kAccept, S::kSynSent2);
  add("SYN_SENT R SYN-ACK", Scn::kSynSent, S::kSynSent, kR, E::kSegSynAck, kAlw, synAck(kR),
      V::kAccept, S::kSynRecv);
  add(
      "SYN_SENT R SYN-ACK acking the wrong sequence", Scn::kSynSent, S::kSynSent, kR, E::kSegSynAck,
      kAlw,
      [](Conn& c) {
        TcpSegment s = c.seg(kR, kSyn | kAck);
        s.ack += 10;
        return c.put(kR, s, false);
      },
      V::kInvalid, S::kSynSent);
  add("SYN_SENT R FIN", Scn::kSynSent, S::kSynSent, kR, E::kSegFin, kAlw, fin(kR), V::kInvalid,
      S::kSynSent);
  add(
      "SYN_SENT R stale ACK passes", Scn::kSynSent, S::kSynSent, kR, E::kSegAck, kAlw,
      [](Conn& c) {
        TcpSegment s;
        s.flags = kAck;
        s.seq = 777777;
        s.ack = 123456;
        s.win = 100;
        return c.put(kR, s, false);
      },
      V::kAccept, S::kSynSent);
  add(
      "SYN_SENT R RST+ACK acknowledging the SYN", Scn::kSynSent, S::kSynSent, kR, E::kSegRst, kAlw,
      [](Conn& c) { return c.send(kR, kRst | kAck); }, V::kAccept, S::kClose);
  // The responder's first packet: without an ACK any sequence number is taken (Linux, pf and
  // Open vSwitch; docs/semantics.md "Resets").
  add("SYN_SENT R RST without ACK", Scn::kSynSent, S::kSynSent, kR, E::kSegRst, kAlw, rst(kR),
      V::kAccept, S::kClose);
  add(
      "SYN_SENT R RST+ACK acknowledging one short of the SYN (inside its window)", Scn::kSynSent,
      S::kSynSent, kR, E::kSegRst, kAlw,
      [](Conn& c) {
        TcpSegment s = c.seg(kR, kRst | kAck);
        s.ack -= 1;
        return c.put(kR, s, false);
      },
      V::kAccept, S::kClose);
  add(
      "SYN_SENT R RST+ACK with a wrong ack", Scn::kSynSent, S::kSynSent, kR, E::kSegRst, kAlw,
      [](Conn& c) {
        TcpSegment s = c.seg(kR, kRst | kAck);
        s.ack += 1;
        return c.put(kR, s, false);
      },
      V::kInvalid, S::kSynSent);

  // SYN_SENT2.
  add("SYN_SENT2 O SYN", Scn::kSynSent2, S::kSynSent2, kO, E::kSegSyn, kAlw, syn(kO), V::kAccept,
      S::kSynSent2);
  add("SYN_SENT2 O SYN-ACK", Scn::kSynSent2, S::kSynSent2, kO, E::kSegSynAck, kAlw, synAck(kO),
      V::kAccept, S::kSynRecv);
  add("SYN_SENT2 O FIN", Scn::kSynSent2, S::kSynSent2, kO, E::kSegFin, kAlw, fin(kO), V::kInvalid,
      S::kSynSent2);
  add("SYN_SENT2 O ACK", Scn::kSynSent2, S::kSynSent2, kO, E::kSegAck, kAlw, ack(kO), V::kInvalid,
      S::kSynSent2);
  add("SYN_SENT2 O RST", Scn::kSynSent2, S::kSynSent2, kO, E::kSegRst, kAlw, rst(kO), V::kAccept,
      S::kClose);
  add("SYN_SENT2 R SYN", Scn::kSynSent2, S::kSynSent2, kR, E::kSegSyn, kAlw, syn(kR), V::kAccept,
      S::kSynSent2);
  add("SYN_SENT2 R SYN-ACK", Scn::kSynSent2, S::kSynSent2, kR, E::kSegSynAck, kAlw, synAck(kR),
      V::kAccept, S::kSynRecv);
  add("SYN_SENT2 R FIN", Scn::kSynSent2, S::kSynSent2, kR, E::kSegFin, kAlw, fin(kR), V::kInvalid,
      S::kSynSent2);
  add("SYN_SENT2 R ACK", Scn::kSynSent2, S::kSynSent2, kR, E::kSegAck, kAlw, ack(kR), V::kInvalid,
      S::kSynSent2);
  add("SYN_SENT2 R RST", Scn::kSynSent2, S::kSynSent2, kR, E::kSegRst, kAlw, rst(kR), V::kAccept,
      S::kClose);

  // SYN_RECV.
  add("SYN_RECV O retransmitted SYN", Scn::kSynRecv, S::kSynRecv, kO, E::kSegSyn, kAlw, syn(kO),
      V::kAccept, S::kSynRecv);
  add("SYN_RECV O SYN with a new ISN", Scn::kSynRecv, S::kSynRecv, kO, E::kSegSyn, kAlw,
      synNewIsn(kO), V::kInvalid, S::kSynRecv);
  add("SYN_RECV O SYN-ACK completes", Scn::kSynRecv, S::kSynRecv, kO, E::kSegSynAck,
      G::kFirstAckOfSyn, synAck(kO), V::kAccept, S::kEstablished);
  add("SYN_RECV(sim) O SYN-ACK again", Scn::kSynRecvSim, S::kSynRecv, kO, E::kSegSynAck, kAlw,
      synAck(kO), V::kAccept, S::kSynRecv);
  add("SYN_RECV O FIN", Scn::kSynRecv, S::kSynRecv, kO, E::kSegFin, kAlw, fin(kO), V::kAccept,
      S::kFinWait);
  add("SYN_RECV O handshake ACK", Scn::kSynRecv, S::kSynRecv, kO, E::kSegAck, G::kFirstAckOfSyn,
      ack(kO), V::kAccept, S::kEstablished);
  add("SYN_RECV(sim) O ACK after its SYN-ACK", Scn::kSynRecvSim, S::kSynRecv, kO, E::kSegAck, kAlw,
      ack(kO), V::kAccept, S::kSynRecv);
  add("SYN_RECV O RST", Scn::kSynRecv, S::kSynRecv, kO, E::kSegRst, kAlw, rst(kO), V::kAccept,
      S::kClose);
  add("SYN_RECV(sim) R SYN", Scn::kSynRecvSim, S::kSynRecv, kR, E::kSegSyn, kAlw, syn(kR),
      V::kAccept, S::kSynRecv);
  add("SYN_RECV(sim) R SYN-ACK completes", Scn::kSynRecvSim, S::kSynRecv, kR, E::kSegSynAck,
      G::kFirstAckOfSyn, synAck(kR), V::kAccept, S::kEstablished);
  add("SYN_RECV R retransmitted SYN-ACK", Scn::kSynRecv, S::kSynRecv, kR, E::kSegSynAck, kAlw,
      synAck(kR), V::kAccept, S::kSynRecv);
  add(
      "SYN_RECV R SYN-ACK with a new ISN", Scn::kSynRecv, S::kSynRecv, kR, E::kSegSynAck, kAlw,
      [](Conn& c) {
        c.r().isn += 0x20000000;
        c.r().nxt = c.r().isn;
        return c.synAck(kR);
      },
      V::kAccept, S::kSynRecv);
  add("SYN_RECV R FIN", Scn::kSynRecv, S::kSynRecv, kR, E::kSegFin, kAlw, fin(kR), V::kAccept,
      S::kFinWait);
  add("SYN_RECV(sim) R ACK completes", Scn::kSynRecvSim, S::kSynRecv, kR, E::kSegAck,
      G::kFirstAckOfSyn, ack(kR), V::kAccept, S::kEstablished);
  add("SYN_RECV R data before the handshake ACK", Scn::kSynRecv, S::kSynRecv, kR, E::kSegAck, kAlw,
      data(kR, 10), V::kAccept, S::kSynRecv);
  add("SYN_RECV R RST", Scn::kSynRecv, S::kSynRecv, kR, E::kSegRst, kAlw, rst(kR), V::kAccept,
      S::kClose);

  // ESTABLISHED.
  add("ESTABLISHED O late SYN", Scn::kEstablished, S::kEstablished, kO, E::kSegSyn, kAlw, syn(kO),
      V::kAccept, S::kEstablished);
  add("ESTABLISHED O SYN with a new ISN", Scn::kEstablished, S::kEstablished, kO, E::kSegSyn, kAlw,
      synNewIsn(kO), V::kInvalid, S::kEstablished);
  add("ESTABLISHED O late SYN-ACK", Scn::kEstablished, S::kEstablished, kO, E::kSegSynAck, kAlw,
      synAck(kO), V::kAccept, S::kEstablished);
  add("ESTABLISHED O FIN", Scn::kEstablished, S::kEstablished, kO, E::kSegFin, kAlw, fin(kO),
      V::kAccept, S::kFinWait);
  add("ESTABLISHED O data", Scn::kEstablished, S::kEstablished, kO, E::kSegAck, kAlw, data(kO, 50),
      V::kAccept, S::kEstablished);
  add("ESTABLISHED O RST", Scn::kEstablished, S::kEstablished, kO, E::kSegRst, kAlw, rst(kO),
      V::kAccept, S::kClose);
  add("ESTABLISHED R late SYN", Scn::kEstablished, S::kEstablished, kR, E::kSegSyn, kAlw, syn(kR),
      V::kAccept, S::kEstablished);
  add("ESTABLISHED R late SYN-ACK", Scn::kEstablished, S::kEstablished, kR, E::kSegSynAck, kAlw,
      synAck(kR), V::kAccept, S::kEstablished);
  add("ESTABLISHED R FIN", Scn::kEstablished, S::kEstablished, kR, E::kSegFin, kAlw, fin(kR),
      V::kAccept, S::kFinWait);
  add("ESTABLISHED R data", Scn::kEstablished, S::kEstablished, kR, E::kSegAck, kAlw, data(kR, 50),
      V::kAccept, S::kEstablished);
  add("ESTABLISHED R RST", Scn::kEstablished, S::kEstablished, kR, E::kSegRst, kAlw, rst(kR),
      V::kAccept, S::kClose);

  // FIN_WAIT.
  add("FIN_WAIT O late SYN", Scn::kFinWaitO, S::kFinWait, kO, E::kSegSyn, kAlw, syn(kO), V::kAccept,
      S::kFinWait);
  add("FIN_WAIT O late SYN-ACK", Scn::kFinWaitO, S::kFinWait, kO, E::kSegSynAck, kAlw, synAck(kO),
      V::kAccept, S::kFinWait);
  add("FIN_WAIT O retransmitted FIN", Scn::kFinWaitO, S::kFinWait, kO, E::kSegFin, G::kFinRepeated,
      finAgain(kO), V::kAccept, S::kFinWait);
  add("FIN_WAIT(R closed) O FIN", Scn::kFinWaitR, S::kFinWait, kO, E::kSegFin, kAlw, fin(kO),
      V::kAccept, S::kLastAck);
  add("FIN_WAIT(R closed) O ACK of the FIN", Scn::kFinWaitR, S::kFinWait, kO, E::kSegAck,
      G::kAcksPendingFin, ack(kO), V::kAccept, S::kCloseWait);
  add("FIN_WAIT O ACK", Scn::kFinWaitO, S::kFinWait, kO, E::kSegAck, kAlw, ack(kO), V::kAccept,
      S::kFinWait);
  add("FIN_WAIT O RST", Scn::kFinWaitO, S::kFinWait, kO, E::kSegRst, kAlw, rst(kO), V::kAccept,
      S::kClose);
  add("FIN_WAIT R late SYN", Scn::kFinWaitO, S::kFinWait, kR, E::kSegSyn, kAlw, syn(kR), V::kAccept,
      S::kFinWait);
  add("FIN_WAIT R late SYN-ACK", Scn::kFinWaitO, S::kFinWait, kR, E::kSegSynAck, kAlw, synAck(kR),
      V::kAccept, S::kFinWait);
  add("FIN_WAIT(R closed) R retransmitted FIN", Scn::kFinWaitR, S::kFinWait, kR, E::kSegFin,
      G::kFinRepeated, finAgain(kR), V::kAccept, S::kFinWait);
  add("FIN_WAIT R FIN", Scn::kFinWaitO, S::kFinWait, kR, E::kSegFin, kAlw, fin(kR), V::kAccept,
      S::kLastAck);
  add("FIN_WAIT R ACK of the FIN", Scn::kFinWaitO, S::kFinWait, kR, E::kSegAck, G::kAcksPendingFin,
      ack(kR), V::kAccept, S::kCloseWait);
  add("FIN_WAIT(R closed) R ACK", Scn::kFinWaitR, S::kFinWait, kR, E::kSegAck, kAlw, ack(kR),
      V::kAccept, S::kFinWait);
  add(
      "FIN_WAIT R data not acking the FIN", Scn::kFinWaitO, S::kFinWait, kR, E::kSegAck, kAlw,
      [](Conn& c) {
        TcpSegment s = c.seg(kR, kAck | kPsh, 20);
        s.ack -= 1;
        return c.put(kR, s, false);
      },
      V::kAccept, S::kFinWait);
  add("FIN_WAIT R RST", Scn::kFinWaitO, S::kFinWait, kR, E::kSegRst, kAlw, rst(kR), V::kAccept,
      S::kClose);

  // CLOSE_WAIT.
  add("CLOSE_WAIT O late SYN", Scn::kCloseWaitO, S::kCloseWait, kO, E::kSegSyn, kAlw, syn(kO),
      V::kAccept, S::kCloseWait);
  add("CLOSE_WAIT O late SYN-ACK", Scn::kCloseWaitO, S::kCloseWait, kO, E::kSegSynAck, kAlw,
      synAck(kO), V::kAccept, S::kCloseWait);
  add("CLOSE_WAIT O retransmitted FIN", Scn::kCloseWaitO, S::kCloseWait, kO, E::kSegFin,
      G::kFinRepeated, finAgain(kO), V::kAccept, S::kCloseWait);
  add("CLOSE_WAIT(R closed) O FIN", Scn::kCloseWaitR, S::kCloseWait, kO, E::kSegFin, kAlw, fin(kO),
      V::kAccept, S::kLastAck);
  add("CLOSE_WAIT O ACK", Scn::kCloseWaitO, S::kCloseWait, kO, E::kSegAck, kAlw, ack(kO),
      V::kAccept, S::kCloseWait);
  add("CLOSE_WAIT O RST", Scn::kCloseWaitO, S::kCloseWait, kO, E::kSegRst, kAlw, rst(kO),
      V::kAccept, S::kClose);
  add("CLOSE_WAIT R late SYN", Scn::kCloseWaitO, S::kCloseWait, kR, E::kSegSyn, kAlw, syn(kR),
      V::kAccept, S::kCloseWait);
  add("CLOSE_WAIT R late SYN-ACK", Scn::kCloseWaitO, S::kCloseWait, kR, E::kSegSynAck, kAlw,
      synAck(kR), V::kAccept, S::kCloseWait);
  add("CLOSE_WAIT(R closed) R retransmitted FIN", Scn::kCloseWaitR, S::kCloseWait, kR, E::kSegFin,
      G::kFinRepeated, finAgain(kR), V::kAccept, S::kCloseWait);
  add("CLOSE_WAIT R FIN", Scn::kCloseWaitO, S::kCloseWait, kR, E::kSegFin, kAlw, fin(kR),
      V::kAccept, S::kLastAck);
  add("CLOSE_WAIT R data (half-closed)", Scn::kCloseWaitO, S::kCloseWait, kR, E::kSegAck, kAlw,
      data(kR, 30), V::kAccept, S::kCloseWait);
  add("CLOSE_WAIT R RST", Scn::kCloseWaitO, S::kCloseWait, kR, E::kSegRst, kAlw, rst(kR),
      V::kAccept, S::kClose);

  // LAST_ACK.
  add("LAST_ACK O late SYN", Scn::kLastAckO, S::kLastAck, kO, E::kSegSyn, kAlw, syn(kO), V::kAccept,
      S::kLastAck);
  add("LAST_ACK O late SYN-ACK", Scn::kLastAckO, S::kLastAck, kO, E::kSegSynAck, kAlw, synAck(kO),
      V::kAccept, S::kLastAck);
  add("LAST_ACK O FIN again acking R's FIN", Scn::kLastAckO, S::kLastAck, kO, E::kSegFin,
      G::kAcksPendingFin, finAgain(kO), V::kAccept, S::kTimeWait);
  add("LAST_ACK(R closed) O FIN again", Scn::kLastAckR, S::kLastAck, kO, E::kSegFin, kAlw,
      finAgain(kO), V::kAccept, S::kLastAck);
  add("LAST_ACK O ACK of R's FIN", Scn::kLastAckO, S::kLastAck, kO, E::kSegAck, G::kAcksPendingFin,
      ack(kO), V::kAccept, S::kTimeWait);
  add("LAST_ACK(both pending) O ACK of R's FIN", Scn::kLastAckBoth, S::kLastAck, kO, E::kSegAck,
      G::kAcksPendingFin, ack(kO), V::kAccept, S::kTimeWait);
  add("LAST_ACK(R closed) O ACK", Scn::kLastAckR, S::kLastAck, kO, E::kSegAck, kAlw, ack(kO),
      V::kAccept, S::kLastAck);
  add("LAST_ACK O RST", Scn::kLastAckO, S::kLastAck, kO, E::kSegRst, kAlw, rst(kO), V::kAccept,
      S::kClose);
  add("LAST_ACK R late SYN", Scn::kLastAckO, S::kLastAck, kR, E::kSegSyn, kAlw, syn(kR), V::kAccept,
      S::kLastAck);
  add("LAST_ACK R late SYN-ACK", Scn::kLastAckO, S::kLastAck, kR, E::kSegSynAck, kAlw, synAck(kR),
      V::kAccept, S::kLastAck);
  add("LAST_ACK(R closed) R FIN again acking O's FIN", Scn::kLastAckR, S::kLastAck, kR, E::kSegFin,
      G::kAcksPendingFin, finAgain(kR), V::kAccept, S::kTimeWait);
  add("LAST_ACK R FIN again", Scn::kLastAckO, S::kLastAck, kR, E::kSegFin, kAlw, finAgain(kR),
      V::kAccept, S::kLastAck);
  add("LAST_ACK(R closed) R ACK of O's FIN", Scn::kLastAckR, S::kLastAck, kR, E::kSegAck,
      G::kAcksPendingFin, ack(kR), V::kAccept, S::kTimeWait);
  add("LAST_ACK R ACK", Scn::kLastAckO, S::kLastAck, kR, E::kSegAck, kAlw, ack(kR), V::kAccept,
      S::kLastAck);
  add("LAST_ACK R RST", Scn::kLastAckO, S::kLastAck, kR, E::kSegRst, kAlw, rst(kR), V::kAccept,
      S::kClose);

  // TIME_WAIT.
  add("TIME_WAIT O new SYN reopens", Scn::kTimeWait, S::kTimeWait, kO, E::kSegSyn, kAlw,
      synNewIsn(kO), V::kReopen, S::kSynSent);
  add("TIME_WAIT O late SYN-ACK", Scn::kTimeWait, S::kTimeWait, kO, E::kSegSynAck, kAlw, synAck(kO),
      V::kAccept, S::kTimeWait);
  add("TIME_WAIT O late FIN", Scn::kTimeWait, S::kTimeWait, kO, E::kSegFin, kAlw, finAgain(kO),
      V::kAccept, S::kTimeWait);
  add("TIME_WAIT O late ACK", Scn::kTimeWait, S::kTimeWait, kO, E::kSegAck, kAlw, ack(kO),
      V::kAccept, S::kTimeWait);
  add("TIME_WAIT O RST", Scn::kTimeWait, S::kTimeWait, kO, E::kSegRst, kAlw, rst(kO), V::kAccept,
      S::kClose);
  add("TIME_WAIT R new SYN reopens", Scn::kTimeWait, S::kTimeWait, kR, E::kSegSyn, kAlw,
      synNewIsn(kR), V::kReopen, S::kSynSent);
  add("TIME_WAIT R late SYN-ACK", Scn::kTimeWait, S::kTimeWait, kR, E::kSegSynAck, kAlw, synAck(kR),
      V::kAccept, S::kTimeWait);
  add("TIME_WAIT R late FIN", Scn::kTimeWait, S::kTimeWait, kR, E::kSegFin, kAlw, finAgain(kR),
      V::kAccept, S::kTimeWait);
  add("TIME_WAIT R late ACK", Scn::kTimeWait, S::kTimeWait, kR, E::kSegAck, kAlw, ack(kR),
      V::kAccept, S::kTimeWait);
  add("TIME_WAIT R RST", Scn::kTimeWait, S::kTimeWait, kR, E::kSegRst, kAlw, rst(kR), V::kAccept,
      S::kClose);

  // CLOSE.
  add("CLOSE O SYN reopens", Scn::kClose, S::kClose, kO, E::kSegSyn, kAlw, synNewIsn(kO),
      V::kReopen, S::kSynSent);
  add("CLOSE O late SYN-ACK after the reset, in the window", Scn::kClose, S::kClose, kO,
      E::kSegSynAck, kAlw, synAck(kO), V::kAccept, S::kClose);
  add("CLOSE O straggler FIN", Scn::kClose, S::kClose, kO, E::kSegFin, kAlw, fin(kO), V::kAccept,
      S::kClose);
  add("CLOSE O straggler data", Scn::kClose, S::kClose, kO, E::kSegAck, kAlw, data(kO, 10),
      V::kAccept, S::kClose);
  add("CLOSE O repeated RST", Scn::kClose, S::kClose, kO, E::kSegRst, kAlw, rst(kO), V::kAccept,
      S::kClose);
  add("CLOSE R SYN reopens", Scn::kClose, S::kClose, kR, E::kSegSyn, kAlw, synNewIsn(kR),
      V::kReopen, S::kSynSent);
  add("CLOSE R late SYN-ACK after the reset, in the window", Scn::kClose, S::kClose, kR,
      E::kSegSynAck, kAlw, synAck(kR), V::kAccept, S::kClose);
  add("CLOSE R straggler FIN", Scn::kClose, S::kClose, kR, E::kSegFin, kAlw, fin(kR), V::kAccept,
      S::kClose);
  add("CLOSE R straggler ACK", Scn::kClose, S::kClose, kR, E::kSegAck, kAlw, ack(kR), V::kAccept,
      S::kClose);
  add("CLOSE R RST", Scn::kClose, S::kClose, kR, E::kSegRst, kAlw, rst(kR), V::kAccept, S::kClose);
  return v;
}

TEST(TcpTransitions, EveryCaseMatchesItsRow) {
  for (const Case& k : cases()) {
    SCOPED_TRACE(k.name);
    Conn c;
    build(c, k.scn);
    ASSERT_EQ(c.cs.state(), k.from) << "setup reached " << tcpStateName(c.cs.state());
    const int row = rowIndex(k.from, k.dir, k.event, k.guard);
    ASSERT_GE(row, 0) << "no such row in the table";
    const TcpResult r = k.stim(c);
    EXPECT_EQ(r.verdict, k.verdict) << tcpVerdictName(r.verdict) << ": " << r.why;
    EXPECT_EQ(r.before, k.from);
    EXPECT_EQ(r.after, k.after) << tcpStateName(r.after);
    EXPECT_EQ(r.transition, row) << "applied row " << r.transition;
    ASSERT_NE(r.why, nullptr);
    EXPECT_GT(std::string(r.why).size(), 0u);
    // The entry's state follows the verdict: INVALID and REOPEN leave it alone.
    const S now = c.cs.state();
    if (r.verdict == V::kAccept) {
      EXPECT_EQ(now, k.after);
    } else {
      EXPECT_EQ(now, k.from);
    }
    EXPECT_EQ(r.closed, r.verdict == V::kAccept && k.from != S::kClose && k.after == S::kClose);
    if (r.verdict == V::kInvalid && k.from != S::kNone) {
      // Loose mode never rescues a flag/state violation (kInvalid rows).
      const TcpTransition& t = tcpTransitions()[static_cast<size_t>(row)];
      if (t.action == TcpAction::kInvalid) {
        Conn again;
        build(again, k.scn);
        again.loose = true;
        EXPECT_EQ(k.stim(again).verdict, V::kInvalid);
      }
    }
  }
}

TEST(TcpTransitions, EveryRowIsExercised) {
  std::set<int> covered;
  for (const Case& k : cases())
    covered.insert(rowIndex(k.from, k.dir, k.event, k.guard));
  const auto rows = tcpTransitions();
  for (size_t i = 0; i < rows.size(); ++i) {
    const TcpTransition& t = rows[i];
    EXPECT_TRUE(covered.count(static_cast<int>(i)))
        << "no case for row " << i << ": " << tcpStateName(t.from) << " " << tcpDirName(t.dir)
        << " " << tcpEventName(t.event) << " [" << tcpGuardName(t.guard) << "]";
  }
  EXPECT_GE(rows.size(), 100u);
}

TEST(TcpTransitions, InvalidFlagCombinationsInEveryState) {
  const uint8_t bad[] = {
      0,    kSyn | kFin,    kSyn | kRst,       kSyn | kFin | kAck, kFin, kFin | kRst | kAck,
      kPsh, tcp_flag::kUrg, kSyn | kRst | kAck};
  const Scn scns[] = {Scn::kFresh,       Scn::kSynSent,  Scn::kSynSent2,   Scn::kSynRecv,
                      Scn::kEstablished, Scn::kFinWaitO, Scn::kCloseWaitO, Scn::kLastAckO,
                      Scn::kTimeWait,    Scn::kClose};
  for (Scn scn : scns) {
    for (uint8_t f : bad) {
      for (TcpDir d : {kO, kR}) {
        SCOPED_TRACE(::testing::Message() << "scenario " << static_cast<int>(scn) << " flags "
                                          << static_cast<int>(f) << " dir " << tcpDirName(d));
        Conn c;
        build(c, scn);
        const S before = c.cs.state();
        c.loose = true;
        const TcpResult r = c.put(d, c.seg(d, f, 0), false);
        EXPECT_EQ(r.verdict, V::kInvalid);
        EXPECT_STREQ(r.why, "invalid flag combination");
        EXPECT_EQ(r.transition, -1);
        EXPECT_EQ(c.cs.state(), before);
      }
    }
  }
}

TEST(TcpTransitions, EventClassification) {
  EXPECT_EQ(tcpEventOf(kSyn), E::kSegSyn);
  EXPECT_EQ(tcpEventOf(kSyn | tcp_flag::kEce | tcp_flag::kCwr), E::kSegSyn);  // ECN setup
  EXPECT_EQ(tcpEventOf(kSyn | kAck), E::kSegSynAck);
  EXPECT_EQ(tcpEventOf(kSyn | kAck | tcp_flag::kEce), E::kSegSynAck);
  EXPECT_EQ(tcpEventOf(kFin | kAck), E::kSegFin);
  EXPECT_EQ(tcpEventOf(kFin | kAck | kPsh | tcp_flag::kUrg), E::kSegFin);
  EXPECT_EQ(tcpEventOf(kAck), E::kSegAck);
  EXPECT_EQ(tcpEventOf(kAck | kPsh), E::kSegAck);
  EXPECT_EQ(tcpEventOf(kAck | tcp_flag::kUrg), E::kSegAck);
  EXPECT_EQ(tcpEventOf(kRst), E::kSegRst);
  EXPECT_EQ(tcpEventOf(kRst | kAck), E::kSegRst);
  EXPECT_EQ(tcpEventOf(0), E::kSegInvalid);
  EXPECT_EQ(tcpEventOf(kSyn | kFin), E::kSegInvalid);
  EXPECT_EQ(tcpEventOf(kSyn | kRst), E::kSegInvalid);
  EXPECT_EQ(tcpEventOf(kFin), E::kSegInvalid);  // FIN without ACK
  EXPECT_EQ(tcpEventOf(kSyn | tcp_flag::kUrg), E::kSegInvalid);
  EXPECT_EQ(tcpEventOf(kRst | kFin | kAck), E::kSegInvalid);
}

TEST(TcpTransitions, TableIsPrintable) {
  // What a report would draw: every row names its states, event and action.
  std::set<S> reachable;
  forEachTransition([&](const TcpTransition& t) {
    EXPECT_NE(tcpStateName(t.from), "?");
    EXPECT_NE(tcpStateName(t.to), "?");
    EXPECT_NE(tcpEventName(t.event), "INVALID");
    EXPECT_NE(tcpActionName(t.action), "?");
    EXPECT_GT(std::string(t.what).size(), 5u);
    reachable.insert(t.to);
  });
  // Every state is the target of some row.
  for (size_t i = 1; i < kTcpStateCount; ++i) {
    EXPECT_TRUE(reachable.count(static_cast<S>(i))) << tcpStateName(static_cast<S>(i));
  }
}

TEST(TcpTransitions, NamesAndTimeouts) {
  using K = rules::TimeoutKey;
  const struct {
    S s;
    const char* name;
    K key;
  } want[] = {
      {S::kNone, "NONE", K::kTcpClose},
      {S::kSynSent, "SYN_SENT", K::kTcpSynSent},
      {S::kSynSent2, "SYN_SENT2", K::kTcpSynSent},
      {S::kSynRecv, "SYN_RECV", K::kTcpSynRecv},
      {S::kEstablished, "ESTABLISHED", K::kTcpEstablished},
      {S::kFinWait, "FIN_WAIT", K::kTcpFinWait},
      {S::kCloseWait, "CLOSE_WAIT", K::kTcpCloseWait},
      {S::kLastAck, "LAST_ACK", K::kTcpLastAck},
      {S::kTimeWait, "TIME_WAIT", K::kTcpTimeWait},
      {S::kClose, "CLOSE", K::kTcpClose},
  };
  static_assert(sizeof(want) / sizeof(want[0]) == kTcpStateCount);
  for (const auto& w : want) {
    EXPECT_EQ(tcpStateName(w.s), w.name);
    EXPECT_EQ(tcpTimeoutKey(w.s), w.key) << w.name;
  }
  EXPECT_EQ(tcpDirName(kO), "original");
  EXPECT_EQ(tcpDirName(kR), "reply");
  EXPECT_EQ(opposite(kO), kR);
}

}  // namespace
}  // namespace statewall::dataplane::testing
