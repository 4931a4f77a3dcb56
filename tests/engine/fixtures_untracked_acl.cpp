// The fixture table (fixtures.hpp), one scenario family: Untracked flows, tiers, network ACLs.
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
// Untracked flows, tiers, ACLs.
// ---------------------------------------------------------------------------------------------

void untrackedFlows() {
  {
    Fx fx("untracked_tcp",
          "inbound from 0.0.0.0/0 plus allow-all outbound: untracked both ways (AWS)", awsPolicy());
    Tcp t(kExt4, 46000, kBastion4, 22);
    fx.add("C SYN", t.c(kSyn), untracked(kBastionSsh));
    fx.add("S SYN-ACK, by the outbound rule", t.s(kSynAck), untracked(kBastionOut));
    fx.add("C ACK", t.c(kAck), untracked(kBastionSsh));
    fx.add("C data", t.c(kData, 100), untracked(kBastionSsh));
    fx.add("S data", t.s(kData, 100), untracked(kBastionOut));
    put(fx);
  }
  {
    Fx fx("untracked_cut_by_policy_swap",
          "removing the inbound rule stops an untracked flow at once", awsPolicy());
    Tcp t(kExt4, 46001, kBastion4, 22);
    fx.add("C SYN", t.c(kSyn), untracked(kBastionSsh));
    fx.add("S SYN-ACK", t.s(kSynAck), untracked(kBastionOut));
    fx.add("C ACK", t.c(kAck), untracked(kBastionSsh));
    fx.swap(awsPolicy(false));
    fx.add("C data after the rule is removed", t.c(kData, 100), denySg("bastion-1 inbound"));
    fx.add("C data again", t.c(kData, 100), denySg("bastion-1 inbound"));
    put(fx);
  }
  {
    Fx fx("untracked_becomes_tracked",
          "outbound rules shrink: the flow is no longer untracked; its next packet is picked up "
          "mid-stream by its own rule",
          awsPolicy());
    Tcp t(kExt4, 46002, kBastion4, 22);
    fx.add("C SYN", t.c(kSyn), untracked(kBastionSsh));
    fx.add("S SYN-ACK", t.s(kSynAck), untracked(kBastionOut));
    fx.add("C ACK", t.c(kAck), untracked(kBastionSsh));
    fx.swap(awsPolicy(true, false));
    fx.add("C data", t.c(kData, 100),
           allowRule(kBastionSsh, TcpState::kEstablished, kFlagMidStream));
    fx.add("S data: tracked now", t.s(kData, 100), trackedAnyRule(TcpState::kEstablished));
    put(fx);
  }
  {
    Fx fx("untracked_udp6", "UDP from ::/0 is untracked too", awsPolicy());
    fx.add("request", udp(kExt6, 4500, kBastion6, 500), untracked(kBastionIke));
    fx.add("response", udp(kBastion6, 500, kExt6, 4500), untracked(kBastionOut));
    put(fx);
  }
  {
    Fx fx("untracked_not_for_narrow_or_icmp",
          "a rule from a narrower CIDR is tracked; ICMP is always tracked", awsPolicy());
    Tcp t(kExt4, 46003, kBastion4, 2222);
    handshake(fx, t, kBastion2222);
    fx.add("echo request", echo(kExt4, kBastion4, 0x0a0a, false),
           allowRule(kBastionPing, kAnyState, kFlagNewConnection));
    fx.add("echo reply", echo(kBastion4, kExt4, 0x0a0a, true), tracked(kBastionPing));
    put(fx);
  }
  {
    Fx fx("untracked_needs_no_entry",
          "with the table full, an untracked flow still passes: it needs no entry", awsPolicy());
    fx.capacity(2);
    Tcp a(kExt4, 46010, kBastion4, 2222);
    Tcp b(kExt4, 46011, kBastion4, 2222);
    Tcp c(kExt4, 46012, kBastion4, 2222);
    fx.add("tracked SYN 1", a.c(kSyn), allowRule(kBastion2222, TcpState::kSynSent));
    fx.add("tracked SYN 2", b.c(kSyn), allowRule(kBastion2222, TcpState::kSynSent));
    // Replied: a full table may not evict them (early drop takes only unreplied entries).
    fx.add("SYN-ACK 1", a.s(kSynAck), tracked(kBastion2222, TcpState::kSynRecv));
    fx.add("SYN-ACK 2", b.s(kSynAck), tracked(kBastion2222, TcpState::kSynRecv));
    fx.add("tracked SYN 3: table full", c.c(kSyn), denyFull());
    Tcp u(kExt4, 46013, kBastion4, 22);
    fx.add("untracked SYN", u.c(kSyn), untracked(kBastionSsh));
    fx.add("untracked SYN-ACK", u.s(kSynAck), untracked(kBastionOut));
    put(fx);
  }
}

void tierFixtures() {
  const std::string app_web = "app inbound tcp 8080 from sg:web";
  const std::string db_app = "db inbound tcp 5432 from sg:app";
  const std::string db_self = "db inbound all from sg:db";
  const std::string web_443 = "web inbound tcp 443 from 0.0.0.0/0, ::/0";
  {
    Fx fx("tiers_web_app_db", "web -> app -> db, each allowed by group references on both sides",
          kTierPolicy);
    Tcp in(kExt4, 47000, "10.0.1.10", 443);
    established(fx, in, web_443);
    Tcp wa("10.0.1.10", 47001, "10.0.2.10", 8080);
    established(fx, wa, app_web);
    Tcp ad("10.0.2.10", 47002, "10.0.3.10", 5432);
    established(fx, ad, db_app);
    put(fx);
  }
  {
    Fx fx("tiers_receiver_denies",
          "web's outbound rule allows 5432 to the db subnet, but db only accepts it from app",
          kTierPolicy);
    Tcp t("10.0.1.10", 47010, "10.0.3.10", 5432);
    fx.add("web -> db SYN", t.c(kSyn), denySg("db-1 inbound"));
    Tcp u("10.0.2.10", 47011, "10.0.3.10", 22);
    fx.add("app -> db port 22: app's outbound denies first", u.c(kSyn), denySg("app-1 outbound"));
    Tcp v("10.0.3.10", 47012, "10.0.2.10", 8080);
    fx.add("db -> app: db's outbound denies", v.c(kSyn), denySg("db-1 outbound"));
    Tcp w(kExt4, 47013, "10.0.2.10", 8080);
    fx.add("internet -> app", w.c(kSyn), denySg("app-1 inbound"));
    put(fx);
  }
  {
    Fx fx("tiers_self_reference", "db to db through the self-referencing rule", kTierPolicy);
    Tcp t("10.0.3.10", 47020, "10.0.3.11", 5433);
    established(fx, t, db_self);
    fx.add("UDP db-2 -> db-1", udp("10.0.3.11", 9999, "10.0.3.10", 9999), allowRule(db_self));
    fx.add("its reply", udp("10.0.3.10", 9999, "10.0.3.11", 9999), tracked(db_self));
    fx.add("echo db-1 -> db-2", echo("10.0.3.10", "10.0.3.11", 3, false), allowRule(db_self));
    put(fx);
  }
  {
    Fx fx("tiers_ipv6_web", "IPv6 to the web tier; app and db have no IPv6 rule", kTierPolicy);
    Tcp t(kExt6, 47030, "2001:db8:1::10", 443);
    established(fx, t, web_443);
    Tcp u(kExt6, 47031, "2001:db8:1::10", 80);
    fx.add("port 80 over IPv6", u.c(kSyn), denySg("web-1 inbound"));
    put(fx);
  }
}

void aclFixtures() {
  {
    Fx fx("acl_allows_both_ways", "inbound and outbound ACL rules both allow the flow",
          aclPolicy());
    Tcp t(kExt4, 48000, kSrv4, 80);
    established(fx, t, kAclSrv80);
    put(fx);
  }
  {
    Fx fx("acl_numbered_deny", "a numbered deny beats the security group (ACL before SG inbound)",
          aclPolicy());
    Tcp t("203.0.113.5", 48001, kSrv4, 80);
    fx.add("SYN from the blocked network", t.c(kSyn), denyAcl("pub-acl 90"));
    put(fx);
  }
  {
    Fx fx("acl_default_deny", "no ACL rule matches: the '*' entry denies (before the SG)",
          aclPolicy());
    Tcp t(kExt4, 48002, kSrv4, 22);
    fx.add("SYN to port 22", t.c(kSyn), denyAcl("pub-acl *"));
    fx.add("UDP to port 53", udp(kExt4, 1, kSrv4, 53), denyAcl("pub-acl *"));
    put(fx);
  }
  {
    Fx fx("acl_ephemeral_port_trap",
          "the SG tracks the reply, but the stateless outbound ACL has no rule for the client's "
          "ephemeral port",
          aclPolicy());
    Tcp t("192.0.2.77", 48003, kSrv4, 80);
    fx.add("C SYN", t.c(kSyn), allowRule(kAclSrv80, TcpState::kSynSent));
    fx.add("S SYN-ACK to port 48003", t.s(kSynAck), denyAcl("pub-acl *"));
    put(fx);
  }
  {
    Fx fx("acl_outbound_numbered_deny",
          "srv's SG allows NTP out, the outbound ACL's rule 200 denies UDP (SG, then ACL)",
          aclPolicy());
    fx.add("NTP request", udp(kSrv4, 123, kExt4, 123), denyAcl("pub-acl 200"));
    put(fx);
  }
  {
    Fx fx("acl_not_inside_subnet",
          "srv-1 to srv-2 in the same subnet: the ACL (which allows neither) does not apply",
          aclPolicy());
    Tcp t(kSrv4, 48004, "10.0.1.11", 8000);
    established(fx, t, kAclSrv8000);
    put(fx);
  }
  {
    Fx fx("acl_sees_tracked_packets",
          "ACLs are stateless: after the ephemeral rule is removed, the tracked replies stop",
          aclPolicy());
    Tcp t(kExt4, 48005, kSrv4, 80);
    established(fx, t, kAclSrv80);
    fx.swap(aclPolicy(false));
    fx.add("C data", t.c(kData, 100), trackedAnyRule(TcpState::kEstablished));
    fx.add("S data", t.s(kData, 100), denyAcl("pub-acl *"));
    put(fx);
  }
  {
    Fx fx("acl_ipv6", "IPv6 through the subnet's ACL", aclPolicy());
    Tcp t(kExt6, 48006, kSrv6, 80);
    established(fx, t, kAclSrv80);
    Tcp u(kExt6, 48007, kSrv6, 443);
    fx.add("SYN to 443", u.c(kSyn), denyAcl("pub-acl *"));
    put(fx);
  }
}

}  // namespace statewall::fixtures::dsl
