// Fixtures for the bypasses docs/design.md closes (docs/design.md "Connection tracking"): ICMP
// errors related only to their own connection, ICMP queries as request/reply pairs, valid neighbour
// discovery, the AWS service exemptions, overlapping fragments, checks before the tracking.
#include "engine/fixture_dsl.hpp"

namespace statewall::fixtures::dsl {

namespace {

using rules::Exemption;

// An ICMP (IPv4) or ICMPv6 query of any type: type, code 0, checksum, id, sequence, then
// `payload_len` bytes (12 for a timestamp, 4 for an address mask).
Bytes icmpQuery(std::string_view src, std::string_view dst, uint8_t type, uint16_t id,
                size_t payload_len = 0, const FrameOptions& o = {}) {
  const IpAddr s = ipAddr(src), d = ipAddr(dst);
  Bytes m = {type, 0, 0, 0, static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id), 0, 1};
  m.resize(8 + payload_len, 0);
  const uint16_t sum = s.isV4() ? internetChecksum(m) : transportChecksum(s, d, kIpProtoIcmpv6, m);
  m[2] = static_cast<uint8_t>(sum >> 8);
  m[3] = static_cast<uint8_t>(sum);
  const uint8_t proto = s.isV4() ? kIpProtoIcmp : kIpProtoIcmpv6;
  if (o.link == LinkType::kRawIp) return buildIpPacket(s, d, proto, m, o);
  return addLinkHeader(buildIpPacket(s, d, proto, m, {.link = LinkType::kRawIp}),
                       s.isV4() ? kEtherTypeIpv4 : kEtherTypeIpv6, o);
}

Bytes echoIp(std::string_view src, std::string_view dst, uint16_t id, bool reply) {
  return buildIcmpEcho({.src = ipAddr(src), .dst = ipAddr(dst), .id = id, .reply = reply}, rawIp());
}

// ---------------------------------------------------------------------------------------------
// ICMP errors: related only about the packet's own connection, sent back to its sender.
// ---------------------------------------------------------------------------------------------

void icmpErrorsOwnConnection() {
  const std::string p = mainPolicy();
  {
    Fx fx("bypass_icmp4_error_to_wrong_host",
          "an error quoting a tracked packet is related only when it goes back to that packet's "
          "sender",
          p);
    Tcp t(kExt4, 45000, kSrv4, 80);
    established(fx, t, kSrv80);
    fx.add(
        "router -> srv: time exceeded about srv's own reply (related)",
        icmpError(kRouter4, kSrv4, kIcmpTimeExceeded, 0, t.sIp(kData, t.ss().nxt, t.cs().nxt, 100)),
        related(kSrv80));
    fx.add("router -> srv: unreachable about C's packet to srv (srv did not send it)",
           icmpError(kRouter4, kSrv4, kIcmpDestUnreachable, 1,
                     t.cIp(kData, t.cs().nxt, t.ss().nxt, 100)),
           denySg(kSrvIn));
    fx.add("router -> cli: frag needed about srv's packet (cli has nothing to do with it)",
           icmpError(kRouter4, kCli4, kIcmpDestUnreachable, 4,
                     t.sIp(kData, t.ss().nxt, t.cs().nxt, 1400), 1400),
           denySg(kCliIn));
    fx.add(
        "off-path host -> srv: parameter problem about srv's reply, addressed right (related)",
        icmpError(kExt4b, kSrv4, kIcmpParamProblem, 0, t.sIp(kData, t.ss().nxt, t.cs().nxt, 100)),
        related(kSrv80));
    fx.add("router -> srv: redirect about srv's reply (redirects are never related)",
           icmpError(kRouter4, kSrv4, kIcmpRedirect, 1, t.sIp(kData, t.ss().nxt, t.cs().nxt, 100)),
           denySg(kSrvIn));
    fx.add(
        "router -> srv: source quench about srv's reply (never related)",
        icmpError(kRouter4, kSrv4, kIcmpSourceQuench, 0, t.sIp(kData, t.ss().nxt, t.cs().nxt, 100)),
        denySg(kSrvIn));
    put(fx);
  }
  {
    Fx fx("bypass_icmp6_error_to_wrong_host",
          "ICMPv6 errors: related only when sent back to the quoted packet's sender", p);
    Tcp t(kExt6, 45001, kSrv6, 80);
    established(fx, t, kSrv80);
    fx.add("router -> srv: packet too big about srv's reply (related)",
           icmpError(kRouter6, kSrv6, kIcmpv6PacketTooBig, 0,
                     t.sIp(kData, t.ss().nxt, t.cs().nxt, 1400), 1280),
           related(kSrv80));
    fx.add("router -> srv: packet too big about C's packet (srv did not send it)",
           icmpError(kRouter6, kSrv6, kIcmpv6PacketTooBig, 0,
                     t.cIp(kData, t.cs().nxt, t.ss().nxt, 1400), 1280),
           denySg(kSrvIn));
    fx.add("router -> cli: destination unreachable about srv's packet",
           icmpError(kRouter6, kCli6, kIcmpv6DestUnreachable, 3,
                     t.sIp(kData, t.ss().nxt, t.cs().nxt, 100)),
           denySg(kCliIn));
    fx.add("router -> cli: time exceeded about srv's packet",
           icmpError(kRouter6, kCli6, kIcmpv6TimeExceeded, 0,
                     t.sIp(kData, t.ss().nxt, t.cs().nxt, 100)),
           denySg(kCliIn));
    fx.add("router -> srv: parameter problem about srv's reply (related)",
           icmpError(kRouter6, kSrv6, kIcmpv6ParamProblem, 0,
                     t.sIp(kData, t.ss().nxt, t.cs().nxt, 100)),
           related(kSrv80));
    fx.add("router -> cli: parameter problem about srv's packet",
           icmpError(kRouter6, kCli6, kIcmpv6ParamProblem, 0,
                     t.sIp(kData, t.ss().nxt, t.cs().nxt, 100)),
           denySg(kCliIn));
    put(fx);
  }
  {
    Fx fx("bypass_icmp_error_query_direction",
          "an error quoting an ICMP query is related only when the query went its pair's way", p);
    fx.add("cli pings out", echo(kCli4, kExt4, 0x0777, false),
           allowRule(kCliOut, kAnyState, kFlagNewConnection));
    fx.add("router -> cli: time exceeded about cli's echo request (related)",
           icmpError(kRouter4, kCli4, kIcmpTimeExceeded, 0, echoIp(kCli4, kExt4, 0x0777, false)),
           related(kCliOut));
    fx.add("router -> cli: time exceeded about an echo reply cli never sends",
           icmpError(kRouter4, kCli4, kIcmpTimeExceeded, 0, echoIp(kCli4, kExt4, 0x0777, true)),
           denySg(kCliIn));
    fx.add("cli pings out over IPv6", echo(kCli6, kExt6, 0x0778, false),
           allowRule(kCliOut, kAnyState, kFlagNewConnection));
    fx.add(
        "router -> cli: ICMPv6 unreachable about an echo reply cli never sends",
        icmpError(kRouter6, kCli6, kIcmpv6DestUnreachable, 0, echoIp(kCli6, kExt6, 0x0778, true)),
        denySg(kCliIn));
    fx.add("cli asks the time", icmpQuery(kCli4, kExt4, kIcmpTimestamp, 0x0779, 12),
           allowRule(kCliOut, kAnyState, kFlagNewConnection));
    fx.add("router -> cli: unreachable about cli's timestamp request (related)",
           icmpError(kRouter4, kCli4, kIcmpDestUnreachable, 1,
                     icmpQuery(kCli4, kExt4, kIcmpTimestamp, 0x0779, 12, rawIp())),
           related(kCliOut));
    put(fx);
  }
}

// ---------------------------------------------------------------------------------------------
// ICMP queries: request/reply pairs keyed by (request type, id).
// ---------------------------------------------------------------------------------------------

void icmpQueries() {
  const std::string p = mainPolicy();
  {
    Fx fx("bypass_icmp4_echo_pairs",
          "an echo reply sent the request's way, or a request sent back, is a new packet", p);
    fx.add("ext pings srv", echo(kExt4, kSrv4, 0x0a01, false),
           allowRule(kSrvPing, kAnyState, kFlagNewConnection));
    fx.add("ext sends an echo reply the request's way", echo(kExt4, kSrv4, 0x0a01, true),
           denySg(kSrvIn));
    fx.add("srv sends an echo request back with the same id", echo(kSrv4, kExt4, 0x0a01, false),
           denySg(kSrvOut));
    fx.add("srv's echo reply", echo(kSrv4, kExt4, 0x0a01, true),
           tracked(kSrvPing, kAnyState, kFlagReply));
    // An id equal to the request type (8) gives both roles the same key.
    fx.add("ext pings srv with id 8", echo(kExt4, kSrv4, 8, false),
           allowRule(kSrvPing, kAnyState, kFlagNewConnection));
    fx.add("srv sends an echo request back with id 8", echo(kSrv4, kExt4, 8, false),
           denySg(kSrvOut));
    fx.add("ext sends an echo reply with id 8 the request's way", echo(kExt4, kSrv4, 8, true),
           denySg(kSrvIn));
    fx.add("srv's echo reply with id 8", echo(kSrv4, kExt4, 8, true),
           tracked(kSrvPing, kAnyState, kFlagReply));
    put(fx);
  }
  {
    Fx fx("bypass_icmp6_echo_pairs", "ICMPv6 echo: request and reply each only their own way", p);
    fx.add("ext pings srv", echo(kExt6, kSrv6, 0x0a02, false),
           allowRule(kSrvPing6, kAnyState, kFlagNewConnection));
    fx.add("ext sends an echo reply the request's way", echo(kExt6, kSrv6, 0x0a02, true),
           denySg(kSrvIn));
    fx.add("srv sends an echo request back", echo(kSrv6, kExt6, 0x0a02, false), denySg(kSrvOut));
    fx.add("srv's echo reply", echo(kSrv6, kExt6, 0x0a02, true),
           tracked(kSrvPing6, kAnyState, kFlagReply));
    put(fx);
  }
  {
    Fx fx("bypass_icmp4_other_queries",
          "timestamp, information and address-mask replies to allowed requests are tracked", p);
    fx.add("cli: timestamp request", icmpQuery(kCli4, kExt4, kIcmpTimestamp, 0x0b01, 12),
           allowRule(kCliOut, kAnyState, kFlagNewConnection));
    fx.add("timestamp reply", icmpQuery(kExt4, kCli4, kIcmpTimestampReply, 0x0b01, 12),
           tracked(kCliOut, kAnyState, kFlagReply));
    fx.add("timestamp reply with another id",
           icmpQuery(kExt4, kCli4, kIcmpTimestampReply, 0x0b02, 12), denySg(kCliIn));
    fx.add("an echo reply with the timestamp's id (another pair)", echo(kExt4, kCli4, 0x0b01, true),
           denySg(kCliIn));
    fx.add("cli: information request", icmpQuery(kCli4, kExt4, kIcmpInfoRequest, 0x0b03),
           allowRule(kCliOut, kAnyState, kFlagNewConnection));
    fx.add("information reply", icmpQuery(kExt4, kCli4, kIcmpInfoReply, 0x0b03),
           tracked(kCliOut, kAnyState, kFlagReply));
    fx.add("cli: address-mask request", icmpQuery(kCli4, kExt4, kIcmpAddressMask, 0x0b04, 4),
           allowRule(kCliOut, kAnyState, kFlagNewConnection));
    fx.add("address-mask reply", icmpQuery(kExt4, kCli4, kIcmpAddressMaskReply, 0x0b04, 4),
           tracked(kCliOut, kAnyState, kFlagReply));
    fx.add("address-mask reply with no request",
           icmpQuery(kExt4, kCli4, kIcmpAddressMaskReply, 1, 4), denySg(kCliIn));
    fx.add("srv: timestamp reply with no request",
           icmpQuery(kSrv4, kExt4, kIcmpTimestampReply, 9, 12), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("bypass_icmp4_timestamp_allowed_inbound",
          "a timestamp request allowed by an inbound rule: its reply is tracked",
          mainPolicy("", "      - {proto: icmp, icmp: {type: 13, code: -1}, from: 0.0.0.0/0}\n"));
    const std::string rule = "srv inbound icmp type 13 code any from 0.0.0.0/0";
    fx.add("ext asks srv the time", icmpQuery(kExt4, kSrv4, kIcmpTimestamp, 0x0c01, 12),
           allowRule(rule, kAnyState, kFlagNewConnection));
    fx.add("srv's timestamp reply", icmpQuery(kSrv4, kExt4, kIcmpTimestampReply, 0x0c01, 12),
           tracked(rule, kAnyState, kFlagReply));
    fx.add("srv's echo reply with that id", echo(kSrv4, kExt4, 0x0c01, true), denySg(kSrvOut));
    put(fx);
  }
}

// ---------------------------------------------------------------------------------------------
// Neighbour discovery: exempt only when valid (RFC 4861).
// ---------------------------------------------------------------------------------------------

void neighbourDiscovery() {
  const std::string p = mainPolicy();
  const X nd = exemptControl(Exemption::kNeighbourDiscovery);
  Fx fx("bypass_nd_validity",
        "neighbour discovery is exempt only when valid: hop limit 255, link-local routers, sane "
        "lengths; otherwise the rules judge it",
        p);
  fx.add("NS, hop limit 255", buildNd({.dst = ipAddr(kSrv6), .target = ipAddr(kSrv6)}), nd);
  fx.add(
      "NS to srv with hop limit 64 (routed from off the link)",
      buildNd({.src = ipAddr(kExt6), .dst = ipAddr(kSrv6), .target = ipAddr(kSrv6)}, {.ttl = 64}),
      denySg(kSrvIn));
  fx.add("NA to srv with hop limit 254",
         buildNd({.type = kIcmpv6NeighborAdvert,
                  .src = ipAddr("fe80::9"),
                  .dst = ipAddr(kSrv6),
                  .target = ipAddr("fe80::9")},
                 {.ttl = 254}),
         denySg(kSrvIn));
  fx.add("RA from a link-local router",
         buildNd({.type = kIcmpv6RouterAdvert, .src = ipAddr("fe80::1"), .dst = ipAddr(kSrv6)}),
         nd);
  fx.add("RA to srv from a global address",
         buildNd({.type = kIcmpv6RouterAdvert, .src = ipAddr(kExt6), .dst = ipAddr(kSrv6)}),
         denySg(kSrvIn));
  fx.add("redirect to srv from a global address",
         buildNd({.type = kIcmpv6Redirect,
                  .src = ipAddr(kRouter6),
                  .dst = ipAddr(kSrv6),
                  .target = ipAddr("fe80::2")}),
         denySg(kSrvIn));
  fx.add("redirect from a link-local router",
         buildNd({.type = kIcmpv6Redirect,
                  .src = ipAddr("fe80::1"),
                  .dst = ipAddr(kSrv6),
                  .target = ipAddr("fe80::2")}),
         nd);
  {
    // A neighbour solicitation cut to its first 8 bytes (no target address).
    Bytes m = {kIcmpv6NeighborSolicit, 0, 0, 0, 0, 0, 0, 0};
    const uint16_t sum = transportChecksum(ipAddr("fe80::1"), ipAddr(kSrv6), kIpProtoIcmpv6, m);
    m[2] = static_cast<uint8_t>(sum >> 8);
    m[3] = static_cast<uint8_t>(sum);
    fx.add("NS of 8 bytes (no target)",
           addLinkHeader(buildIpPacket(ipAddr("fe80::1"), ipAddr(kSrv6), kIpProtoIcmpv6, m,
                                       {.link = LinkType::kRawIp, .ttl = 255}),
                         kEtherTypeIpv6),
           denySg(kSrvIn));
    // A router solicitation with an option of length 0.
    Bytes rs = {kIcmpv6RouterSolicit, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
    const uint16_t rs_sum =
        transportChecksum(ipAddr("fe80::5"), ipAddr("ff02::2"), kIpProtoIcmpv6, rs);
    rs[2] = static_cast<uint8_t>(rs_sum >> 8);
    rs[3] = static_cast<uint8_t>(rs_sum);
    fx.add("RS with a zero-length option (neither address protected)",
           addLinkHeader(buildIpPacket(ipAddr("fe80::5"), ipAddr("ff02::2"), kIpProtoIcmpv6, rs,
                                       {.link = LinkType::kRawIp, .ttl = 255}),
                         kEtherTypeIpv6),
           unprotected());
  }
  put(fx);
}

// ---------------------------------------------------------------------------------------------
// AWS service exemptions.
// ---------------------------------------------------------------------------------------------

void serviceExemptions() {
  {
    Fx fx("bypass_exempt_services",
          "srv has no outbound rules, yet reaches instance metadata, Amazon DNS and Time Sync "
          "(allow-exempt, no connection entry)",
          mainPolicy());
    Tcp md(kSrv4, 40100, "169.254.169.254", 80);
    fx.add("srv -> metadata SYN", md.c(kSyn), exempt(Exemption::kInstanceMetadata));
    fx.add("metadata -> srv SYN-ACK", md.s(kSynAck), exempt(Exemption::kInstanceMetadata));
    fx.add("srv -> metadata ACK", md.c(kAck), exempt(Exemption::kInstanceMetadata));
    fx.add("srv -> Amazon DNS", udp(kSrv4, 40101, "169.254.169.253", 53),
           exempt(Exemption::kAmazonDns));
    fx.add("Amazon DNS -> srv", udp("169.254.169.253", 53, kSrv4, 40101),
           exempt(Exemption::kAmazonDns));
    fx.add("srv -> Time Sync", udp(kSrv4, 123, "169.254.169.123", 123),
           exempt(Exemption::kTimeSync));
    fx.add("srv pings metadata", echo(kSrv4, "169.254.169.254", 5, false),
           exempt(Exemption::kInstanceMetadata));
    fx.add("srv -> IPv6 metadata", udp(kSrv6, 40102, "fd00:ec2::254", 80),
           exempt(Exemption::kInstanceMetadata));
    fx.add("srv -> IPv6 Amazon DNS", udp(kSrv6, 40103, "fd00:ec2::253", 53),
           exempt(Exemption::kAmazonDns));
    fx.add("srv -> IPv6 Time Sync", udp(kSrv6, 123, "fd00:ec2::123", 123),
           exempt(Exemption::kTimeSync));
    fx.add("srv -> 10.0.0.2 (no vpc_cidrs: not known as Amazon DNS)",
           udp(kSrv4, 40104, "10.0.0.2", 53), denySg(kSrvOut));
    fx.add("srv -> 169.254.169.250 (no service there)", udp(kSrv4, 40105, "169.254.169.250", 53),
           denySg(kSrvOut));
    auto frags = fragment(udp(kSrv4, 40107, "169.254.169.254", 80, 3000), 1280);
    fx.add("first fragment to metadata", frags[0], exempt(Exemption::kInstanceMetadata));
    fx.add("its later fragment names the same exemption", frags[1],
           exempt(Exemption::kInstanceMetadata, kFlagFragment));
    fx.add("an unprotected host -> metadata: not an interface's traffic",
           udp("192.0.2.9", 40106, "169.254.169.254", 80), unprotected());
    put(fx);
  }
  {
    Fx fx("bypass_exempt_vpc_dns_and_dhcp",
          "vpc_cidrs make base + 2 an Amazon DNS address; DHCP between a client and the VPC",
          mainPolicy("unprotected: deny\nvpc_cidrs: [10.0.0.0/16, \"2001:db8::/48\"]\n"));
    fx.add("srv -> 10.0.0.2:53", udp(kSrv4, 40200, "10.0.0.2", 53), exempt(Exemption::kAmazonDns));
    fx.add("10.0.0.2 -> srv", udp("10.0.0.2", 53, kSrv4, 40200), exempt(Exemption::kAmazonDns));
    fx.add("srv -> 2001:db8::2", udp(kSrv6, 40201, "2001:db8::2", 53),
           exempt(Exemption::kAmazonDns));
    fx.add("srv -> 10.0.0.3 (not base + 2)", udp(kSrv4, 40202, "10.0.0.3", 53), denySg(kSrvOut));
    fx.add("DHCP discover 0.0.0.0 -> broadcast", udp("0.0.0.0", 68, "255.255.255.255", 67, 300),
           exempt(Exemption::kDhcp));
    fx.add("DHCP offer from the VPC's server to broadcast",
           udp("10.0.0.1", 67, "255.255.255.255", 68, 300), exempt(Exemption::kDhcp));
    fx.add("DHCP renew srv -> VPC server", udp(kSrv4, 68, "10.0.0.1", 67, 300),
           exempt(Exemption::kDhcp));
    fx.add("DHCP ack VPC server -> srv", udp("10.0.0.1", 67, kSrv4, 68, 300),
           exempt(Exemption::kDhcp));
    fx.add("UDP 67 -> 68 from the internet to srv: not the VPC's DHCP",
           udp(kExt4, 67, kSrv4, 68, 300), denySg(kSrvIn));
    fx.add("UDP 68 -> 67 srv -> internet", udp(kSrv4, 68, kExt4, 67, 300), denySg(kSrvOut));
    put(fx);
  }
  {
    Fx fx("bypass_exempt_off", "`exempt: false` turns the service exemptions off (not in AWS)",
          mainPolicy("exempt: false\nvpc_cidrs: [10.0.0.0/16]\n"));
    Tcp md(kSrv4, 40300, "169.254.169.254", 80);
    fx.add("srv -> metadata SYN", md.c(kSyn), denySg(kSrvOut));
    fx.add("srv -> 10.0.0.2", udp(kSrv4, 40301, "10.0.0.2", 53), denySg(kSrvOut));
    fx.add("DHCP renew srv -> VPC server", udp(kSrv4, 68, "10.0.0.1", 67, 300), denySg(kSrvOut));
    fx.add("ARP stays exempt", buildArp({}), exemptControl(Exemption::kArp));
    fx.add("valid ND stays exempt", buildNd({}), exemptControl(Exemption::kNeighbourDiscovery));
    put(fx);
  }
}

}  // namespace

void bypassFixtures() {
  icmpErrorsOwnConnection();
  icmpQueries();
  neighbourDiscovery();
  serviceExemptions();
}

}  // namespace statewall::fixtures::dsl
