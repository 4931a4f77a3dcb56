// The fixture table (fixtures.hpp), one scenario family: Timeouts, table capacity, policy swaps.
// Every expectation follows docs/design.md; where it leaves a detail to the TCP tracker, the
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
// Timeouts, table capacity, policy swaps.
// ---------------------------------------------------------------------------------------------

void timeoutFixtures() {
  // Linux profile with short overrides, one per state (seconds).
  const std::string p = mainPolicy(
      "timeouts: {profile: linux, tcp_syn_sent: 5, tcp_syn_recv: 6, tcp_established: 50, "
      "tcp_fin_wait: 7, tcp_close_wait: 8, tcp_last_ack: 9, tcp_time_wait: 10, tcp_close: 3, "
      "udp: 11, udp_stream: 40, icmp: 4, other: 20}\n");

  // Two connections brought to a state at the same time; the responder's probe passes just
  // before the state's timeout on the first and is denied just after it on the second.
  struct Case {
    const char* name;
    const char* state_name;
    double timeout;
    TcpState state;
    std::function<void(Fx&, Tcp&)> setup;
    std::function<Bytes(Tcp&)> probe;
    TcpState after_probe;
  };
  const std::vector<Case> cases = {
      {"timeout_tcp_syn_sent", "SYN_SENT", 5, TcpState::kSynSent,
       [](Fx& fx, Tcp& t) { fx.add("C SYN", t.c(kSyn), allowRule(kSrv80, TcpState::kSynSent)); },
       [](Tcp& t) { return t.s(kSynAck); }, TcpState::kSynRecv},
      {"timeout_tcp_syn_recv", "SYN_RECV", 6, TcpState::kSynRecv,
       [](Fx& fx, Tcp& t) {
         fx.add("C SYN", t.c(kSyn), allowRule(kSrv80, TcpState::kSynSent));
         fx.add("S SYN-ACK", t.s(kSynAck), tracked(kSrv80, TcpState::kSynRecv));
       },
       [](Tcp& t) { return t.sAt(kSynAck, t.ss().isn, t.cs().nxt); }, TcpState::kSynRecv},
      {"timeout_tcp_established", "ESTABLISHED", 50, TcpState::kEstablished,
       [](Fx& fx, Tcp& t) { handshake(fx, t, kSrv80); }, [](Tcp& t) { return t.s(kData, 10); },
       TcpState::kEstablished},
      {"timeout_tcp_fin_wait", "FIN_WAIT", 7, TcpState::kFinWait,
       [](Fx& fx, Tcp& t) {
         handshake(fx, t, kSrv80);
         fx.add("C FIN", t.c(kFinAck), tracked(kSrv80, TcpState::kFinWait));
       },
       [](Tcp& t) { return t.s(kAck); }, TcpState::kCloseWait},
      {"timeout_tcp_close_wait", "CLOSE_WAIT", 8, TcpState::kCloseWait,
       [](Fx& fx, Tcp& t) {
         handshake(fx, t, kSrv80);
         fx.add("C FIN", t.c(kFinAck), tracked(kSrv80, TcpState::kFinWait));
         fx.add("S ACK", t.s(kAck), tracked(kSrv80, TcpState::kCloseWait));
       },
       [](Tcp& t) { return t.s(kData, 10); }, TcpState::kCloseWait},
      {"timeout_tcp_last_ack", "LAST_ACK", 9, TcpState::kLastAck,
       [](Fx& fx, Tcp& t) {
         handshake(fx, t, kSrv80);
         fx.add("C FIN", t.c(kFinAck), tracked(kSrv80, TcpState::kFinWait));
         fx.add("S ACK", t.s(kAck), tracked(kSrv80, TcpState::kCloseWait));
         fx.add("S FIN", t.s(kFinAck), tracked(kSrv80, TcpState::kLastAck));
       },
       [](Tcp& t) { return t.sAt(kFinAck, t.ss().fin, t.cs().nxt); }, TcpState::kLastAck},
      {"timeout_tcp_time_wait", "TIME_WAIT", 10, TcpState::kTimeWait,
       [](Fx& fx, Tcp& t) {
         handshake(fx, t, kSrv80);
         fx.add("C FIN", t.c(kFinAck), tracked(kSrv80, TcpState::kFinWait));
         fx.add("S FIN+ACK", t.s(kFinAck), tracked(kSrv80, TcpState::kLastAck));
         fx.add("C ACK", t.c(kAck), tracked(kSrv80, TcpState::kTimeWait));
       },
       [](Tcp& t) { return t.sAt(kFinAck, t.ss().fin, t.cs().nxt); }, TcpState::kTimeWait},
      {"timeout_tcp_close", "CLOSE", 3, TcpState::kClose,
       [](Fx& fx, Tcp& t) {
         handshake(fx, t, kSrv80);
         fx.add("C RST", t.cAt(kRst, t.cs().nxt, 0), tracked(kSrv80, TcpState::kClose));
       },
       [](Tcp& t) { return t.s(kData, 10); }, TcpState::kClose},
  };
  uint16_t port = 30000;
  for (const Case& c : cases) {
    Fx fx(c.name,
          std::string("idle timeout of ") + c.state_name + " overridden to " +
              std::to_string(static_cast<int>(c.timeout)) + " s",
          p);
    Tcp a(kExt4, port++, kSrv4, 80);
    Tcp b(kExt4, port++, kSrv4, 80);
    c.setup(fx, a);
    c.setup(fx, b);
    fx.wait(c.timeout - 0.5);
    fx.add("S probe on conn 1 just before the timeout", c.probe(a), tracked(kSrv80, c.after_probe));
    fx.wait(1);
    fx.add("S probe on conn 2 just after the timeout", c.probe(b), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("timeout_udp_icmp_other", "UDP, UDP stream, ICMP and other-protocol overrides", p);
    fx.add("UDP request A", udp(kExt4, 31000, kSrv4, 53), allowRule(kSrv53));
    fx.add("UDP request B", udp(kExt4, 31001, kSrv4, 53), allowRule(kSrv53));
    fx.add("echo request A", echo(kExt4, kSrv4, 0x31, false), allowRule(kSrvPing));
    fx.add("echo request B", echo(kExt4, kSrv4, 0x32, false), allowRule(kSrvPing));
    fx.add("GRE A", other(kExt4, kSrv4, 47), allowRule(kSrvGre));
    fx.add("GRE B", other(kExt4b, kSrv4, 47), allowRule(kSrvGre));
    fx.wait(3.5);
    fx.add("echo reply A at 3.5 s (icmp 4 s)", echo(kSrv4, kExt4, 0x31, true), tracked(kSrvPing));
    fx.wait(1);
    fx.add("echo reply B at 4.5 s", echo(kSrv4, kExt4, 0x32, true), denySg(kSrvOut));
    fx.wait(6);  // 10.5 s
    fx.add("UDP response A at 10.5 s (udp 11 s)", udp(kSrv4, 53, kExt4, 31000), tracked(kSrv53));
    fx.wait(1);  // 11.5 s
    fx.add("UDP response B at 11.5 s", udp(kSrv4, 53, kExt4, 31001), denySg(kSrvOut));
    fx.wait(8);  // 19.5 s
    fx.add("GRE reply A at 19.5 s (other 20 s)", other(kSrv4, kExt4, 47), tracked(kSrvGre));
    fx.wait(1);  // 20.5 s
    fx.add("GRE reply B at 20.5 s", other(kSrv4, kExt4b, 47), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("timeout_udp_stream_override", "a UDP stream lives udp_stream (40 s) when idle", p);
    fx.add("request", udp(kExt4, 31002, kSrv4, 53), allowRule(kSrv53));
    for (int i = 0; i < 3; ++i) {
      fx.add("response", udp(kSrv4, 53, kExt4, 31002), tracked(kSrv53));
      fx.add("request", udp(kExt4, 31002, kSrv4, 53), tracked(kSrv53));
    }
    fx.add("response", udp(kSrv4, 53, kExt4, 31002), tracked(kSrv53));
    fx.wait(39);
    fx.add("response after 39 s", udp(kSrv4, 53, kExt4, 31002), tracked(kSrv53));
    fx.wait(41);
    fx.add("response after 41 s idle", udp(kSrv4, 53, kExt4, 31002), denySg(kSrvOut));
    put(fx);
  }
}

void tableFull() {
  // Early drop (docs/design.md, connection tracking): a full table evicts an unreplied entry near
  // the new key, the oldest it finds; established and replied connections are never evicted.
  {
    Fx fx("table_full_evicts_unreplied",
          "a table of 2 full of unanswered SYNs: a new connection evicts the oldest unreplied one",
          mainPolicy());
    fx.capacity(2);
    Tcp a(kExt4, 32000, kSrv4, 80);
    Tcp b(kExt4, 32001, kSrv4, 80);
    Tcp c(kExt4, 32002, kSrv4, 80);
    fx.add("SYN A", a.c(kSyn), allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.wait(1);
    fx.add("SYN B", b.c(kSyn), allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.add("SYN C: evicts A, the oldest unreplied", c.c(kSyn),
           allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.add("SYN-ACK for A: A is gone", a.s(kSynAck), denySg(kSrvOut));
    fx.add("S SYN-ACK B", b.s(kSynAck), tracked(kSrv80, TcpState::kSynRecv, kFlagReply));
    fx.wait(1);
    // B has a reply now: C (SYN_SENT) is the only one that may go.
    fx.add("UDP request D: evicts C", udp(kExt4, 32003, kSrv4, 53),
           allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.add("SYN-ACK for C: C is gone", c.s(kSynAck), denySg(kSrvOut));
    fx.add("UDP response D", udp(kSrv4, 53, kExt4, 32003), tracked(kSrv53, kAnyState, kFlagReply));
    Tcp e(kExt4, 32004, kSrv4, 80);
    fx.add("SYN E: B and D have replies, no room", e.c(kSyn), denyFull());
    fx.add("echo request: no room", echo(kExt4, kSrv4, 1, false), denyFull());
    fx.add("C ACK B", b.c(kAck), tracked(kSrv80, TcpState::kEstablished));
    fx.add("UDP request D again", udp(kExt4, 32003, kSrv4, 53), tracked(kSrv53));
    put(fx);
  }
  {
    Fx fx("table_full_echo_evicted",
          "an unanswered echo request is unreplied too: a new SYN evicts it", mainPolicy());
    fx.capacity(2);
    Tcp a(kExt4, 32010, kSrv4, 80);
    established(fx, a, kSrv80);
    fx.add("echo request", echo(kExt4, kSrv4, 7, false),
           allowRule(kSrvPing, kAnyState, kFlagNewConnection));
    Tcp b(kExt4, 32011, kSrv4, 80);
    fx.add("SYN B: evicts the echo", b.c(kSyn),
           allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.add("echo reply: its request was evicted", echo(kSrv4, kExt4, 7, true), denySg(kSrvOut));
    fx.add("S data A", a.s(kData, 10), tracked(kSrv80, TcpState::kEstablished, kFlagReply));
    put(fx);
  }
  {
    Fx fx("table_full",
          "a table of 2 full of established or replied connections: a third is denied; they keep "
          "going",
          mainPolicy());
    fx.capacity(2);
    Tcp a(kExt4, 32020, kSrv4, 80);
    established(fx, a, kSrv80);
    fx.add("UDP request B", udp(kExt4, 32021, kSrv4, 53),
           allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.add("UDP response B", udp(kSrv4, 53, kExt4, 32021), tracked(kSrv53, kAnyState, kFlagReply));
    Tcp c(kExt4, 32022, kSrv4, 80);
    fx.add("SYN C: no room", c.c(kSyn), denyFull());
    fx.add("echo request: no room", echo(kExt4, kSrv4, 1, false), denyFull());
    fx.add("UDP request: no room", udp(kExt4, 1, kSrv4, 53), denyFull());
    fx.add("ARP needs no entry", buildArp({}), exemptControl(rules::Exemption::kArp));
    fx.add("SYN C again: still no room", c.cAt(kSyn, c.cs().isn, 0), denyFull());
    fx.add("S data A", a.s(kData, 10), tracked(kSrv80, TcpState::kEstablished));
    fx.add("C ACK A", a.c(kAck), tracked(kSrv80, TcpState::kEstablished));
    // B (UDP, replied: 30 s) times out: its entry makes room (swept, or reaped by the SYN).
    fx.wait(31);
    fx.add("S data A after 31 s", a.s(kData, 10), tracked(kSrv80, TcpState::kEstablished));
    fx.add("SYN C after B expired", c.cAt(kSyn, c.cs().isn, 0),
           allowRule(kSrv80, TcpState::kSynSent, kFlagNewConnection));
    fx.add("UDP response for B: B is gone", udp(kSrv4, 53, kExt4, 32021), denySg(kSrvOut));
    put(fx);
  }
}

void policySwaps() {
  {
    Fx fx("swap_tracked_survives",
          "removing port 80 keeps its tracked connection; new connections follow the new policy",
          mainPolicy());
    Tcp t(kExt4, 33000, kSrv4, 80);
    established(fx, t, kSrv80);
    Tcp n(kExt4, 33001, kSrv4, 8080);
    fx.add("SYN to 8080 before the swap", n.c(kSyn), denySg(kSrvIn));
    fx.swap(
        mainPolicy("", "      - {proto: tcp, ports: 8080, from: [0.0.0.0/0, \"::/0\"]}\n", false));
    fx.add("C data on the old connection", t.c(kData, 100), trackedAnyRule(TcpState::kEstablished));
    fx.add("S data on the old connection", t.s(kData, 100), trackedAnyRule(TcpState::kEstablished));
    Tcp m(kExt4, 33002, kSrv4, 80);
    fx.add("new SYN to 80", m.c(kSyn), denySg(kSrvIn));
    Tcp k(kExt4, 33003, kSrv4, 8080);
    fx.add("new SYN to 8080", k.c(kSyn), allowRule(kSrv8080, TcpState::kSynSent));
    fx.add("its SYN-ACK", k.s(kSynAck), tracked(kSrv8080, TcpState::kSynRecv));
    fx.add("old connection closes", t.c(kFinAck), trackedAnyRule(TcpState::kFinWait));
    put(fx);
  }
  {
    Fx fx("swap_unprotected_setting", "`unprotected` flips from deny to allow",
          mainPolicy("unprotected: deny\n"));
    fx.add("UDP between unprotected hosts", udp("192.0.2.1", 1, "192.0.2.2", 2), denySg("none"));
    fx.swap(mainPolicy("unprotected: allow\n"));
    fx.add("the same after the swap", udp("192.0.2.1", 1, "192.0.2.2", 2), unprotected());
    put(fx);
  }
  {
    Fx fx("swap_strict_mode", "turning on strict mode applies to tracked connections at once",
          mainPolicy());
    Tcp t(kExt4, 33010, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add("C data out of window, loose", t.cAt(kData, t.cs().nxt + 300000, t.ss().nxt, 10),
           allowRule(kSrv80, TcpState::kEstablished, kFlagTcpInvalid));
    fx.swap(mainPolicy("strict: true\n"));
    fx.add("C data out of window, strict", t.cAt(kData, t.cs().nxt + 300000, t.ss().nxt, 10),
           denyInvalid(TcpState::kEstablished));
    fx.add("C data in window", t.c(kData, 10), trackedAnyRule(TcpState::kEstablished));
    put(fx);
  }
}

}  // namespace statewall::fixtures::dsl
