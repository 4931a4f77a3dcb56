// The fixture table (fixtures.hpp), one scenario family: UDP, ICMP and other protocols; ICMP
// errors. Every expectation follows docs/design.md; where it leaves a detail to the TCP tracker,
// the tracker's published transition table (tcpTransitions()) is the reference.
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
// UDP, ICMP, other protocols.
// ---------------------------------------------------------------------------------------------

void udpIcmpOther() {
  const std::string p = mainPolicy();
  {
    Fx fx("udp4_request_response", "a request opens, the response is tracked", p);
    fx.add("request", udp(kExt4, 5353, kSrv4, 53),
           allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.add("response", udp(kSrv4, 53, kExt4, 5353), tracked(kSrv53, kAnyState, kFlagReply));
    fx.wait(5);
    fx.add("second request", udp(kExt4, 5353, kSrv4, 53), tracked(kSrv53));
    fx.add("response from another port", udp(kSrv4, 54, kExt4, 5353), denySg(kSrvOut));
    fx.add("request to a closed port", udp(kExt4, 5353, kSrv4, 54), denySg(kSrvIn));
    put(fx);
  }
  {
    Fx fx("udp4_timeout",
          "one request and one response: the UDP timeout (AWS 30 s) applies, not the stream one",
          p);
    fx.add("request A", udp(kExt4, 5354, kSrv4, 53), allowRule(kSrv53));
    fx.add("response A", udp(kSrv4, 53, kExt4, 5354), tracked(kSrv53));
    fx.add("request B", udp(kExt4, 5357, kSrv4, 53), allowRule(kSrv53));
    fx.add("response B", udp(kSrv4, 53, kExt4, 5357), tracked(kSrv53));
    fx.wait(29);
    fx.add("late response A after 29 s", udp(kSrv4, 53, kExt4, 5354), tracked(kSrv53));
    fx.wait(2);
    fx.add("response B after 31 s idle", udp(kSrv4, 53, kExt4, 5357), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("udp4_one_way_then_new", "a request nobody answers expires; the next opens anew", p);
    fx.add("request", udp(kExt4, 5355, kSrv4, 53),
           allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.wait(31);
    fx.add("request after 31 s", udp(kExt4, 5355, kSrv4, 53),
           allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.add("response", udp(kSrv4, 53, kExt4, 5355), tracked(kSrv53));
    put(fx);
  }
  {
    Fx fx("udp4_stream", "several exchanges make a stream: the 180 s UDP stream timeout", p);
    fx.add("request 1", udp(kExt4, 5356, kSrv4, 53), allowRule(kSrv53));
    for (int i = 0; i < 3; ++i) {
      fx.add("response", udp(kSrv4, 53, kExt4, 5356), tracked(kSrv53));
      fx.wait(1);
      fx.add("request", udp(kExt4, 5356, kSrv4, 53), tracked(kSrv53));
    }
    fx.add("response", udp(kSrv4, 53, kExt4, 5356), tracked(kSrv53));
    fx.wait(170);
    fx.add("response after 170 s idle", udp(kSrv4, 53, kExt4, 5356), tracked(kSrv53));
    fx.wait(181);
    fx.add("response after 181 s idle", udp(kSrv4, 53, kExt4, 5356), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("udp6_request_response", "UDP over IPv6", p);
    fx.add("request", udp(kExt6, 6000, kSrv6, 53),
           allowRule(kSrv53, kAnyState, kFlagNewConnection));
    fx.add("response", udp(kSrv6, 53, kExt6, 6000), tracked(kSrv53, kAnyState, kFlagReply));
    fx.add("request to port 54", udp(kExt6, 6000, kSrv6, 54), denySg(kSrvIn));
    fx.wait(31);
    fx.add("response after 31 s", udp(kSrv6, 53, kExt6, 6000), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("icmp4_echo", "echo request/reply tracked by identifier", p);
    fx.add("echo request", echo(kExt4, kSrv4, 0x1234, false),
           allowRule(kSrvPing, kAnyState, kFlagNewConnection));
    fx.add("echo reply", echo(kSrv4, kExt4, 0x1234, true),
           tracked(kSrvPing, kAnyState, kFlagReply));
    fx.add("echo reply with another id", echo(kSrv4, kExt4, 0x9999, true), denySg(kSrvOut));
    fx.add("echo request with another id", echo(kExt4, kSrv4, 0x4321, false, 1),
           allowRule(kSrvPing));
    fx.add("its reply", echo(kSrv4, kExt4, 0x4321, true), tracked(kSrvPing));
    fx.add("srv pings out", echo(kSrv4, kExt4, 0x5555, false), denySg(kSrvOut));
    fx.add("unsolicited echo reply to srv", echo(kExt4, kSrv4, 0x6666, true), denySg(kSrvIn));
    put(fx);
  }
  {
    Fx fx("icmp4_echo_timeout", "ICMP idle timeout 30 s", p);
    fx.add("echo request", echo(kExt4, kSrv4, 0x0101, false), allowRule(kSrvPing));
    fx.wait(29);
    fx.add("reply after 29 s", echo(kSrv4, kExt4, 0x0101, true), tracked(kSrvPing));
    fx.wait(31);
    fx.add("reply after 31 s idle", echo(kSrv4, kExt4, 0x0101, true), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("icmp6_echo", "ICMPv6 echo request/reply", p);
    fx.add("echo request", echo(kExt6, kSrv6, 0x0042, false),
           allowRule(kSrvPing6, kAnyState, kFlagNewConnection));
    fx.add("echo reply", echo(kSrv6, kExt6, 0x0042, true),
           tracked(kSrvPing6, kAnyState, kFlagReply));
    fx.add("echo reply, wrong id", echo(kSrv6, kExt6, 0x0043, true), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("other_proto_gre", "protocol 47 by address pair: a reply within 600 s passes", p);
    fx.add("GRE in", other(kExt4, kSrv4, 47), allowRule(kSrvGre, kAnyState, kFlagNewConnection));
    fx.wait(599);
    fx.add("GRE reply after 599 s", other(kSrv4, kExt4, 47),
           tracked(kSrvGre, kAnyState, kFlagReply));
    fx.wait(601);
    fx.add("GRE reply after 601 s idle", other(kSrv4, kExt4, 47), denySg(kSrvOut));
    fx.add("GRE to srv from another host", other(kExt4b, kSrv4, 47), allowRule(kSrvGre));
    fx.add("GRE from srv to a third host", other(kSrv4, "198.51.100.9", 47), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("other_proto_sctp6", "protocol 132 over IPv6", p);
    fx.add("SCTP in", other(kExt6, kSrv6, 132), allowRule(kSrvSctp, kAnyState, kFlagNewConnection));
    fx.wait(300);
    fx.add("SCTP reply", other(kSrv6, kExt6, 132), tracked(kSrvSctp, kAnyState, kFlagReply));
    fx.add("SCTP over IPv4 (rule is ::/0 only)", other(kExt4, kSrv4, 132), denySg(kSrvIn));
    fx.add("protocol 50 (ESP) to srv", other(kExt4, kSrv4, 50), denySg(kSrvIn));
    put(fx);
  }
}

// ICMP errors quoting a tracked connection are RELATED.
void icmpErrors() {
  const std::string p = mainPolicy();
  {
    Fx fx("icmp4_error_tcp_related",
          "time exceeded and frag-needed quoting a tracked TCP connection", p);
    Tcp t(kExt4, 43000, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add(
        "router -> srv: time exceeded about srv's reply",
        icmpError(kRouter4, kSrv4, kIcmpTimeExceeded, 0, t.sIp(kData, t.ss().nxt, t.cs().nxt, 100)),
        related(kSrv80));
    fx.add("srv -> C: frag needed about C's data",
           icmpError(kSrv4, kExt4, kIcmpDestUnreachable, 4,
                     t.cIp(kData, t.cs().nxt, t.ss().nxt, 1400), 1400),
           related(kSrv80));
    fx.add("router -> srv: quote truncated to IP + 8 bytes",
           icmpError(kRouter4, kSrv4, kIcmpDestUnreachable, 1,
                     t.sIp(kData, t.ss().nxt, t.cs().nxt, 100), 0, 28),
           related(kSrv80));
    Tcp other_conn(kExt4, 43999, kSrv4, 80);
    fx.add("router -> srv: error about a connection never seen",
           icmpError(kRouter4, kSrv4, kIcmpTimeExceeded, 0, other_conn.sIp(kData, 1, 1, 100)),
           denySg(kSrvIn));
    fx.add("srv -> C: error about a connection never seen",
           icmpError(kSrv4, kExt4, kIcmpDestUnreachable, 3, other_conn.cIp(kData, 1, 1, 100)),
           denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("icmp4_error_udp_related", "port unreachable about a tracked UDP flow", p);
    fx.add("request", udp(kExt4, 7000, kSrv4, 53), allowRule(kSrv53));
    fx.add("srv -> C: port unreachable",
           icmpError(kSrv4, kExt4, kIcmpDestUnreachable, 3,
                     buildUdp({.src = ipAddr(kExt4),
                               .dst = ipAddr(kSrv4),
                               .sport = 7000,
                               .dport = 53,
                               .payload_len = 32},
                              rawIp())),
           related(kSrv53));
    fx.add("srv -> C: port unreachable about port 7001",
           icmpError(kSrv4, kExt4, kIcmpDestUnreachable, 3,
                     buildUdp({.src = ipAddr(kExt4),
                               .dst = ipAddr(kSrv4),
                               .sport = 7001,
                               .dport = 53,
                               .payload_len = 32},
                              rawIp())),
           denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("icmp4_error_echo_related", "time exceeded about a tracked echo request", p);
    fx.add("cli pings out", echo(kCli4, kExt4, 0x7777, false),
           allowRule(kCliOut, kAnyState, kFlagNewConnection));
    fx.add("router -> cli: time exceeded",
           icmpError(
               kRouter4, kCli4, kIcmpTimeExceeded, 0,
               buildIcmpEcho({.src = ipAddr(kCli4), .dst = ipAddr(kExt4), .id = 0x7777}, rawIp())),
           related(kCliOut));
    fx.add("router -> cli: time exceeded about another id",
           icmpError(
               kRouter4, kCli4, kIcmpTimeExceeded, 0,
               buildIcmpEcho({.src = ipAddr(kCli4), .dst = ipAddr(kExt4), .id = 0x7778}, rawIp())),
           denySg(kCliIn));
    put(fx);
  }
  {
    Fx fx("icmp6_error_tcp_related", "packet too big about a tracked IPv6 TCP connection", p);
    Tcp t(kExt6, 43001, kSrv6, 80);
    established(fx, t, kSrv80);
    fx.add("router -> srv: packet too big",
           icmpError(kRouter6, kSrv6, kIcmpv6PacketTooBig, 0,
                     t.sIp(kData, t.ss().nxt, t.cs().nxt, 1400), 1280),
           related(kSrv80));
    fx.add("router -> srv: time exceeded",
           icmpError(kRouter6, kSrv6, kIcmpv6TimeExceeded, 0,
                     t.sIp(kData, t.ss().nxt, t.cs().nxt, 100)),
           related(kSrv80));
    Tcp never(kExt6, 43002, kSrv6, 80);
    fx.add("router -> srv: packet too big about a connection never seen",
           icmpError(kRouter6, kSrv6, kIcmpv6PacketTooBig, 0, never.sIp(kData, 1, 1, 1400), 1280),
           denySg(kSrvIn));
    put(fx);
  }
  {
    Fx fx("icmp6_error_udp_related", "ICMPv6 port unreachable about a tracked UDP flow", p);
    fx.add("request", udp(kExt6, 7002, kSrv6, 53), allowRule(kSrv53));
    fx.add("srv -> C: port unreachable",
           icmpError(kSrv6, kExt6, kIcmpv6DestUnreachable, 4,
                     buildUdp({.src = ipAddr(kExt6),
                               .dst = ipAddr(kSrv6),
                               .sport = 7002,
                               .dport = 53,
                               .payload_len = 32},
                              rawIp())),
           related(kSrv53));
    put(fx);
  }
  {
    Fx fx("icmp6_error_echo_related", "ICMPv6 time exceeded about a tracked echo request", p);
    fx.add("cli pings out", echo(kCli6, kExt6, 0x0808, false), allowRule(kCliOut));
    fx.add("router -> cli: time exceeded",
           icmpError(
               kRouter6, kCli6, kIcmpv6TimeExceeded, 0,
               buildIcmpEcho({.src = ipAddr(kCli6), .dst = ipAddr(kExt6), .id = 0x0808}, rawIp())),
           related(kCliOut));
    fx.add("echo reply", echo(kExt6, kCli6, 0x0808, true), tracked(kCliOut));
    put(fx);
  }
}

}  // namespace statewall::fixtures::dsl
