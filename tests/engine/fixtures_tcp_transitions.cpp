// The fixture table (fixtures.hpp), one scenario family: One fixture per row of the TCP transition
// table. Every expectation follows docs/design.md; where it leaves a detail to the TCP tracker, the
// tracker's published transition table (tcpTransitions()) is the reference.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "engine/fixture_dsl.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::fixtures::dsl {

// ---------------------------------------------------------------------------------------------
// One fixture per row of the TCP transition table (tcpTransitions()): a connection between an
// internet client C and srv:80 is brought to the row's state, then one segment of the row's
// direction and event is sent. Rows that reopen from the responder's side run under kPeerPolicy
// (srv may not open connections).
// ---------------------------------------------------------------------------------------------

namespace {

enum class Setup {
  kNone,
  kSynSent,
  kSynSent2,
  kSynRecv,       // C SYN, S SYN-ACK: S acknowledged C's SYN, C has not acknowledged S's
  kSynRecvSimul,  // C SYN, S SYN, C SYN-ACK: C acknowledged S's SYN, S has not
  kEstablished,
  kFinWaitC,  // C sent the FIN
  kFinWaitS,
  kCloseWaitC,  // C's FIN acknowledged, S open
  kCloseWaitS,
  kLastAckC,  // C closed first; S's FIN is pending
  kLastAckS,  // S closed first; C's FIN is pending
  kTimeWait,
  kClose,
};

void runSetup(Setup s, Fx& fx, Tcp& t, const std::string& r) {
  using S = Setup;
  auto syn = [&] { fx.add("setup: C SYN", t.c(kSyn), allowRule(r, TcpState::kSynSent)); };
  auto est = [&] {
    handshake(fx, t, r);
    fx.add("setup: C data", t.c(kData, 100), tracked(r, TcpState::kEstablished));
    fx.add("setup: S data", t.s(kData, 200), tracked(r, TcpState::kEstablished));
  };
  switch (s) {
    case S::kNone:
      return;
    case S::kSynSent:
      syn();
      return;
    case S::kSynSent2:
      syn();
      fx.add("setup: S SYN", t.s(kSyn), tracked(r, TcpState::kSynSent2));
      return;
    case S::kSynRecv:
      syn();
      fx.add("setup: S SYN-ACK", t.s(kSynAck), tracked(r, TcpState::kSynRecv));
      return;
    case S::kSynRecvSimul:
      syn();
      fx.add("setup: S SYN", t.s(kSyn), tracked(r, TcpState::kSynSent2));
      fx.add("setup: C SYN-ACK", t.cAt(kSynAck, t.cs().isn, t.ss().nxt),
             tracked(r, TcpState::kSynRecv));
      return;
    case S::kEstablished:
      est();
      return;
    case S::kFinWaitC:
    case S::kCloseWaitC:
    case S::kLastAckC:
    case S::kTimeWait:
      est();
      fx.add("setup: C FIN", t.c(kFinAck), tracked(r, TcpState::kFinWait));
      if (s == S::kFinWaitC) return;
      fx.add("setup: S ACK", t.s(kAck), tracked(r, TcpState::kCloseWait));
      if (s == S::kCloseWaitC) return;
      fx.add("setup: S FIN", t.s(kFinAck), tracked(r, TcpState::kLastAck));
      if (s == S::kLastAckC) return;
      fx.add("setup: C ACK", t.c(kAck), tracked(r, TcpState::kTimeWait));
      return;
    case S::kFinWaitS:
    case S::kCloseWaitS:
    case S::kLastAckS:
      est();
      fx.add("setup: S FIN", t.s(kFinAck), tracked(r, TcpState::kFinWait));
      if (s == S::kFinWaitS) return;
      fx.add("setup: C ACK", t.c(kAck), tracked(r, TcpState::kCloseWait));
      if (s == S::kCloseWaitS) return;
      fx.add("setup: C FIN", t.c(kFinAck), tracked(r, TcpState::kLastAck));
      return;
    case S::kClose:
      est();
      fx.add("setup: C RST", t.cAt(kRst, t.cs().nxt, 0), tracked(r, TcpState::kClose));
      return;
  }
}

struct RowCase {
  Setup setup;
  std::function<Bytes(Tcp&)> packet;
  const char* what;
};

// The scenario for one row, or nullopt when the table has a row this function does not know
// (the table check test reports it).
std::optional<RowCase> rowCase(const TcpTransition& row) {
  using S = Setup;
  const bool o = row.dir == TcpDir::kOriginal;
  const TcpState st = row.from;
  const TcpEvent ev = row.event;
  const TcpGuard g = row.guard;
  // Segments of the sender X to the peer Y; "nxt" acknowledges all Y sent.
  auto xAt = [o](Tcp& t, uint8_t f, uint32_t seq, uint32_t ack, size_t len = 0) {
    return o ? t.cAt(f, seq, ack, len) : t.sAt(f, seq, ack, len);
  };
  auto x = [o](Tcp& t, uint8_t f, size_t len = 0) { return o ? t.c(f, len) : t.s(f, len); };
  auto me = [o](Tcp& t) -> Tcp::Side& { return o ? t.cs() : t.ss(); };
  auto peer = [o](Tcp& t) -> Tcp::Side& { return o ? t.ss() : t.cs(); };

  // Retransmission of X's SYN; X's (late) SYN-ACK acknowledging Y's SYN.
  auto synAgain = [=](Tcp& t) { return xAt(t, kSyn, me(t).isn, 0); };
  auto synAckLate = [=](Tcp& t) { return xAt(t, kSynAck, me(t).isn, peer(t).isn + 1); };
  auto reopen = [=](Tcp& t) { return xAt(t, kSyn, me(t).isn + 30000000u, 0); };
  auto finNew = [=](Tcp& t) { return x(t, kFinAck); };
  auto finAgain = [=](Tcp& t) { return xAt(t, kFinAck, me(t).fin, peer(t).nxt); };
  auto finAgainNotAcking = [=](Tcp& t) { return xAt(t, kFinAck, me(t).fin, peer(t).fin); };
  auto ack = [=](Tcp& t) { return x(t, kAck); };
  auto ackNotAcking = [=](Tcp& t) { return xAt(t, kAck, me(t).nxt, peer(t).fin); };
  auto data = [=](Tcp& t) { return x(t, kData, 100); };
  auto rstExact = [=](Tcp& t) { return xAt(t, kRst, me(t).nxt, 0); };

  switch (st) {
    case TcpState::kNone:
      switch (ev) {
        case TcpEvent::kSegSyn:
          return RowCase{S::kNone, [](Tcp& t) { return t.c(kSyn); }, "first SYN"};
        case TcpEvent::kSegSynAck:
          return RowCase{S::kNone, [](Tcp& t) { return t.cAt(kSynAck, t.cs().isn, 1); },
                         "first packet SYN-ACK"};
        case TcpEvent::kSegFin:
          return RowCase{S::kNone, [](Tcp& t) { return t.cAt(kFinAck, t.cs().isn, 1); },
                         "first packet FIN"};
        case TcpEvent::kSegAck:
          return RowCase{S::kNone, [](Tcp& t) { return t.c(kData, 100); }, "first packet data"};
        case TcpEvent::kSegRst:
          return RowCase{S::kNone, [](Tcp& t) { return t.cAt(kRst, t.cs().isn, 0); },
                         "first packet RST"};
        default:
          return std::nullopt;
      }
    case TcpState::kSynSent:
      switch (ev) {
        case TcpEvent::kSegSyn:
          return o ? RowCase{S::kSynSent, synAgain, "C SYN again"}
                   : RowCase{S::kSynSent, [](Tcp& t) { return t.s(kSyn); }, "S SYN"};
        case TcpEvent::kSegSynAck:
          return o ? RowCase{S::kSynSent, [](Tcp& t) { return t.cAt(kSynAck, t.cs().isn, 1); },
                             "C SYN-ACK"}
                   : RowCase{S::kSynSent, [](Tcp& t) { return t.s(kSynAck); }, "S SYN-ACK"};
        case TcpEvent::kSegFin:
          return RowCase{S::kSynSent,
                         [=](Tcp& t) { return xAt(t, kFinAck, me(t).nxt, peer(t).isn + 1); },
                         "FIN"};
        case TcpEvent::kSegAck:
          return RowCase{S::kSynSent, [=](Tcp& t) { return xAt(t, kAck, me(t).nxt, peer(t).nxt); },
                         "bare ACK"};
        case TcpEvent::kSegRst:
          return o ? RowCase{S::kSynSent, rstExact, "C RST"}
                   : RowCase{S::kSynSent, [](Tcp& t) { return t.sAt(kRstAck, 0, t.cs().nxt); },
                             "S RST+ACK of the SYN"};
        default:
          return std::nullopt;
      }
    case TcpState::kSynSent2:
      switch (ev) {
        case TcpEvent::kSegSyn:
          return RowCase{S::kSynSent2, synAgain, "SYN again"};
        case TcpEvent::kSegSynAck:
          return RowCase{S::kSynSent2, synAckLate, "SYN-ACK"};
        case TcpEvent::kSegFin:
          return RowCase{S::kSynSent2,
                         [=](Tcp& t) { return xAt(t, kFinAck, me(t).nxt, peer(t).nxt); }, "FIN"};
        case TcpEvent::kSegAck:
          return RowCase{S::kSynSent2, ack, "bare ACK"};
        case TcpEvent::kSegRst:
          return RowCase{S::kSynSent2, rstExact, "RST"};
        default:
          return std::nullopt;
      }
    case TcpState::kSynRecv: {
      // Which side has acknowledged the other's SYN decides the guard.
      const S acked_by_s = S::kSynRecv, acked_by_c = S::kSynRecvSimul;
      const bool first = g == TcpGuard::kFirstAckOfSyn;
      // The sender has not acknowledged yet (first) -> the other side did.
      const S for_first = o ? acked_by_s : acked_by_c;
      const S for_again = o ? acked_by_c : acked_by_s;
      switch (ev) {
        case TcpEvent::kSegSyn:
          return RowCase{o ? acked_by_s : acked_by_c, synAgain, "SYN again"};
        case TcpEvent::kSegSynAck:
          return RowCase{first ? for_first : for_again, synAckLate, "SYN-ACK"};
        case TcpEvent::kSegFin:
          return RowCase{acked_by_s, finNew, "FIN right after the handshake"};
        case TcpEvent::kSegAck:
          // A bare ACK: in the simultaneous-open setup nobody has acknowledged C's window yet,
          // so C may not send data.
          return RowCase{first ? for_first : for_again, ack, "ACK"};
        case TcpEvent::kSegRst:
          return RowCase{acked_by_s, rstExact, "RST"};
        default:
          return std::nullopt;
      }
    }
    case TcpState::kEstablished:
      switch (ev) {
        case TcpEvent::kSegSyn:
          return RowCase{S::kEstablished, synAgain, "late SYN"};
        case TcpEvent::kSegSynAck:
          return RowCase{S::kEstablished, synAckLate, "late SYN-ACK"};
        case TcpEvent::kSegFin:
          return RowCase{S::kEstablished, finNew, "FIN"};
        case TcpEvent::kSegAck:
          return RowCase{S::kEstablished, data, "data"};
        case TcpEvent::kSegRst:
          return RowCase{S::kEstablished, rstExact, "RST"};
        default:
          return std::nullopt;
      }
    case TcpState::kFinWait: {
      // "own" = the sender is the side that sent the pending FIN.
      const S own = o ? S::kFinWaitC : S::kFinWaitS;
      const S theirs = o ? S::kFinWaitS : S::kFinWaitC;
      switch (ev) {
        case TcpEvent::kSegSyn:
          return RowCase{S::kFinWaitC, synAgain, "late SYN"};
        case TcpEvent::kSegSynAck:
          return RowCase{S::kFinWaitC, synAckLate, "late SYN-ACK"};
        case TcpEvent::kSegFin:
          return g == TcpGuard::kFinRepeated ? RowCase{own, finAgain, "FIN again"}
                                             : RowCase{theirs, finNew, "FIN of the other side"};
        case TcpEvent::kSegAck:
          return g == TcpGuard::kAcksPendingFin ? RowCase{theirs, ack, "ACK of the FIN"}
                                                : RowCase{own, ack, "ACK after own FIN"};
        case TcpEvent::kSegRst:
          return RowCase{S::kFinWaitC, rstExact, "RST"};
        default:
          return std::nullopt;
      }
    }
    case TcpState::kCloseWait: {
      const S own = o ? S::kCloseWaitC : S::kCloseWaitS;  // sender's FIN acknowledged
      const S theirs = o ? S::kCloseWaitS : S::kCloseWaitC;
      switch (ev) {
        case TcpEvent::kSegSyn:
          return RowCase{S::kCloseWaitC, synAgain, "late SYN"};
        case TcpEvent::kSegSynAck:
          return RowCase{S::kCloseWaitC, synAckLate, "late SYN-ACK"};
        case TcpEvent::kSegFin:
          return g == TcpGuard::kFinRepeated ? RowCase{own, finAgain, "FIN again"}
                                             : RowCase{theirs, finNew, "FIN of the open side"};
        case TcpEvent::kSegAck:
          return RowCase{theirs, data, "data from the open side"};
        case TcpEvent::kSegRst:
          return RowCase{S::kCloseWaitC, rstExact, "RST"};
        default:
          return std::nullopt;
      }
    }
    case TcpState::kLastAck: {
      // The sender acknowledges the peer's pending FIN: the peer closed last.
      const S peer_pending = o ? S::kLastAckC : S::kLastAckS;
      const bool acks = g == TcpGuard::kAcksPendingFin;
      switch (ev) {
        case TcpEvent::kSegSyn:
          return RowCase{S::kLastAckC, synAgain, "late SYN"};
        case TcpEvent::kSegSynAck:
          return RowCase{S::kLastAckC, synAckLate, "late SYN-ACK"};
        case TcpEvent::kSegFin:
          return acks ? RowCase{peer_pending, finAgain, "FIN again, acknowledging the peer's"}
                      : RowCase{peer_pending, finAgainNotAcking, "FIN again, not acknowledging"};
        case TcpEvent::kSegAck:
          return acks ? RowCase{peer_pending, ack, "ACK of the last FIN"}
                      : RowCase{peer_pending, ackNotAcking, "ACK below the last FIN"};
        case TcpEvent::kSegRst:
          return RowCase{S::kLastAckC, rstExact, "RST"};
        default:
          return std::nullopt;
      }
    }
    case TcpState::kTimeWait:
    case TcpState::kClose: {
      const S s = st == TcpState::kTimeWait ? S::kTimeWait : S::kClose;
      switch (ev) {
        case TcpEvent::kSegSyn:
          return RowCase{s, reopen, "SYN with a new ISN"};
        case TcpEvent::kSegSynAck:
          return RowCase{s, synAckLate, "late SYN-ACK"};
        case TcpEvent::kSegFin:
          // In TIME_WAIT both FINs were sent: retransmit; after an RST a FIN is new.
          return s == S::kTimeWait ? RowCase{s, finAgain, "late FIN"} : RowCase{s, finNew, "FIN"};
        case TcpEvent::kSegAck:
          return s == S::kTimeWait ? RowCase{s, ack, "late ACK"} : RowCase{s, data, "late data"};
        case TcpEvent::kSegRst:
          return RowCase{s, rstExact, "RST"};
        default:
          return std::nullopt;
      }
    }
    default:
      return std::nullopt;
  }
}

std::string lower(std::string_view s) {
  std::string out;
  for (char ch : s)
    out += (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : (ch == '-' ? '_' : ch);
  return out;
}

}  // namespace

void tcpTransitionRows() {
  const auto rows = tcpTransitions();
  uint16_t port = 20000;
  for (size_t i = 0; i < rows.size(); ++i) {
    const TcpTransition& row = rows[i];
    const std::optional<RowCase> rc = rowCase(row);
    if (!rc) continue;  // reported by the table test (transitionRowsWithoutFixture())
    const bool o = row.dir == TcpDir::kOriginal;
    const bool peer_policy = row.action == TcpAction::kReopen && !o;
    const std::string rule = peer_policy ? kPeerRule : kSrv80;
    std::string name = "tcp_row_" + std::to_string(i) + "_" + lower(tcpStateName(row.from)) + "_" +
                       std::string(tcpDirName(row.dir)) + "_" + lower(tcpEventName(row.event));
    if (row.guard != TcpGuard::kAlways) name += "_guarded";
    std::string desc =
        "transition row " + std::to_string(i) + ": " + std::string(tcpStateName(row.from)) + " " +
        std::string(tcpDirName(row.dir)) + " " + std::string(tcpEventName(row.event));
    if (row.guard != TcpGuard::kAlways) desc += " [" + std::string(tcpGuardName(row.guard)) + "]";
    desc += " -> " + std::string(tcpActionName(row.action)) + " " +
            std::string(tcpStateName(row.to)) + " (" + row.what + ")";
    Fx fx(name, desc, peer_policy ? kPeerPolicy : mainPolicy());
    Tcp t = peer_policy ? Tcp("10.0.5.1", port, "10.0.5.2", 80) : Tcp(kExt4, port, kSrv4, 80);
    ++port;
    runSetup(rc->setup, fx, t, rule);
    Bytes pkt = rc->packet(t);
    const std::string note = std::string(o ? "C " : "S ") + rc->what;
    const bool first = row.from == TcpState::kNone;
    X x{Reason::kAllowTracked};
    switch (row.action) {
      case TcpAction::kTrack:
      case TcpAction::kPass:
      case TcpAction::kReset: {
        uint16_t flags = o ? uint16_t{0} : uint16_t{kFlagReply};
        if (row.to != row.from && (row.to == TcpState::kClose || row.to == TcpState::kTimeWait)) {
          flags = static_cast<uint16_t>(flags | kFlagConnClosed);
        }
        if (first) {
          // The first packet: a SYN opens; an ACK-class packet is a mid-stream pickup.
          const uint16_t f = row.event == TcpEvent::kSegSyn
                                 ? uint16_t{kFlagNewConnection}
                                 : static_cast<uint16_t>(kFlagNewConnection | kFlagMidStream);
          x = allowRule(rule, row.to, f);
        } else {
          x = tracked(rule, row.to, flags);
        }
        break;
      }
      case TcpAction::kInvalid:
        // No help from the connection: C's packet passes by srv's port-80 rule, S's packet has
        // no outbound rule.
        x = o ? allowRule(rule, first ? St{} : St{row.from}, kFlagTcpInvalid)
              : denySg(kSrvOut, row.from, kFlagTcpInvalid);
        break;
      case TcpAction::kReopen:
        // A new connection: its own rules must allow it.
        x = allowRule(rule, TcpState::kSynSent, kFlagReopened);
        break;
    }
    // A reopening SYN starts a new connection: which state it "found" is not specified.
    if (row.action != TcpAction::kReopen) x.before = row.from;
    fx.add(note, pkt, x);
    put(fx);
  }
}

}  // namespace statewall::fixtures::dsl

namespace statewall::fixtures {

std::vector<size_t> transitionRowsWithoutFixture() {
  std::vector<size_t> missing;
  const auto rows = dataplane::tcpTransitions();
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!dsl::rowCase(rows[i])) missing.push_back(i);
  }
  return missing;
}

}  // namespace statewall::fixtures
