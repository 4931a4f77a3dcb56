// The packet parser: one frame in, the fields the engine needs out (ParsedPacket), or the layer
// that could not be parsed (deny-malformed). No allocation, no exceptions, every read
// bounds-checked.
//
// What "malformed" means, per layer (the parser stops at the first failure; the fields of the
// layers parsed before it stay filled in, so a deny-malformed can still be attributed to
// addresses):
//   link         frame shorter than the Ethernet header (14); raw IP frame empty or with a version
//                nibble other than 4 or 6.
//   sll          frame shorter than the SLL (16) or SLL2 (20) header.
//   vlan         a tag cut short, or more than two tags (802.1Q inside 802.1ad/QinQ is the limit).
//   ipv4         fewer than 20 bytes, version not 4, IHL below 5, total length below the header
//                length or above the captured bytes (snaplen-truncated captures count as malformed:
//                the engine cannot judge what it cannot see). The header checksum is not checked:
//                captures taken with checksum offload carry bad ones.
//   ipv4-options an option with a length byte missing, below 2 or running past the header.
//   ipv6         fewer than 40 bytes, version not 6, payload length above the captured bytes.
//   ipv6-ext     an extension header cut short or running past the payload, a hop-by-hop header
//                anywhere but first, more than kMaxIpv6ExtHeaders headers, or a hop-by-hop /
//                destination option that runs past its header.
//   fragment     a non-last fragment whose payload is not a multiple of 8, a fragment that would
//                end beyond 65535 bytes, a second IPv6 fragment header, a first fragment too short
//                to hold the transport header (RFC 1858 / RFC 7112 tiny fragments), an IPv4 TCP
//                fragment at offset 8 (RFC 1858 overlap attack).
//   tcp          fewer than 20 bytes, data offset below 5 or past the segment.
//   tcp-options  an option with a length byte missing, below 2 or running past the header, or a
//                known option (MSS 4, WS 3, SACK-permitted 2, SACK 2+8n with n in 1..4, TS 10)
//                with the wrong length.
//   udp          fewer than 8 bytes, length field below 8 or above the IP payload (or, in a first
//                fragment, below the fragment's payload). A length below the IP payload is fine:
//                the rest is padding, as Linux treats it.
//   icmp/icmpv6  fewer than 8 bytes (type, code, checksum and the 4-byte rest of header).
//   icmp-quoted  an ICMP error whose quote does not hold the offending packet's IP header (20 bytes
//                with IHL >= 5 for IPv4, 40 for IPv6) or quotes the other IP version. A quote with
//                the IP header but fewer than 8 bytes of transport header is not malformed:
//                QuotedHeader::has_l4 is false then.
//   ppp          a PPP frame without its protocol field; a PPP_SERIAL frame shorter than 4 bytes or
//                that is neither HDLC-framed PPP (ff 03) nor Cisco HDLC (0f/8f 00).
//   fabricpath   a Cisco FabricPath header (EtherType 0x8903: FTag/TTL, then the inner frame's
//                addresses and type; 16 bytes after the outer type) cut short.
//   cmd          a Cisco MetaData header (EtherType 0x8909: version, length, option, SGT, type;
//                8 bytes) cut short, or not version 1.
// With ParseOptions::decap (docs/design.md "Encapsulation and tunnels"), the tunnel layers: a
// header cut short or whose lengths run past the tunnel's payload; an inner Ethernet frame
// shorter than 14 bytes; and
//   gre          (checksum, key and sequence fields as the flags announce);
//   erspan       type II header not version 1, type III not version 2, or its subheader past the
//                payload;
//   vxlan        fewer than 8 bytes;
//   geneve       version not 0, options past the payload;
//   gtp-u        version not 1 or protocol type GTP', length field past the UDP payload, optional
//                fields or an extension header (length 0 included) past the GTP length;
//   teredo       authentication or origin indication cut short, or not followed by IPv6;
//   ayiya        identity or signature past the payload;
//   802.11       Aruba's 802.11-in-GRE: the 802.11 data header (24 bytes; 30 with four
//                addresses, 2 more with QoS, 4 more with an HT control field) or the LLC/SNAP
//                header after it (8 bytes) cut short;
//   tunnel-depth more nested tunnels than ParseOptions::max_tunnel_depth.
// The packet inside a tunnel is checked layer by layer like any packet (its "ipv4", "tcp" ...),
// bounded by the tunnel's payload rather than the frame.
// Not decapsulated (judged as the outer packet, even with decap): fragmented outer packets, GRE
// version 1 (PPTP) or with source routes, GRE/GENEVE payloads other than IP, MPLS and Ethernet (and
// Aruba's 802.11 for GRE),
// GTP-U messages other than G-PDU or with a non-IP payload, UDP 3544 payloads that are not Teredo,
// AYIYA other than forward (opcode 1) of IPv4/IPv6; Aruba 802.11 frames that are not data frames
// with a payload, protected (encrypted) frames, A-MSDU aggregates (several packets in one frame)
// and payloads other than LLC/SNAP with an EtherType.
// Not malformed: bad IPv4/TCP/UDP/ICMP checksums, Ethernet padding beyond the IP total length,
// ARP (L3::kArp, even if short) and other EtherTypes (L3::kOther), ESP and no-next-header (parsing
// stops there), unknown IP protocols (no ports), TCP flag combinations (the tracker judges those).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "statewall/rules/ip.hpp"

namespace statewall::dataplane {

using rules::Family;
using rules::IpAddr;

// How the capture or port delivers frames (pcap DLT_EN10MB, DLT_RAW, DLT_LINUX_SLL,
// DLT_LINUX_SLL2, DLT_NULL, DLT_LOOP, DLT_PPP, DLT_PPP_SERIAL).
enum class LinkType : uint8_t {
  kEthernet,
  kRawIp,  // IPv4 or IPv6, chosen by the version nibble
  kLinuxSll,
  kLinuxSll2,
  // BSD loopback: a 4-byte address family (AF_INET 2; AF_INET6 24, 28 or 30 as the BSDs number
  // it), in the capturing host's byte order for NULL and in network byte order for LOOP. Both
  // byte orders are accepted for both: the values cannot be mistaken for one another.
  kNull,
  kLoop,
  // PPP (DLT_PPP, RFC 1661 framing as libpcap writes it): an optional address/control pair
  // 0xff 0x03, then the protocol field (1 byte when its low bit is set, RFC 1661 protocol field
  // compression; else 2), then the datagram.
  kPpp,
  // PPP in HDLC-like framing (DLT_PPP_SERIAL, RFC 1662): address 0xff, control 0x03, 2-byte
  // protocol; also Cisco HDLC (address 0x0f or 0x8f, control 0, then an EtherType), which
  // captures of serial links label the same way.
  kPppHdlc,
};
inline constexpr unsigned kLinkTypeCount = 8;

// X(enumerator, name): the layers a deny-malformed names, in one table so that names, counters and
// JSON codes cannot drift apart.
#define STATEWALL_LAYERS(X)       \
  X(kNone, "none")                \
  X(kLink, "link")                \
  X(kVlan, "vlan")                \
  X(kSll, "sll")                  \
  X(kMpls, "mpls")                \
  X(kPppoe, "pppoe")              \
  X(kPbb, "pbb")                  \
  X(kVnTag, "vn-tag")             \
  X(kFabricPath, "fabricpath")    \
  X(kCmd, "cmd")                  \
  X(kIpv4, "ipv4")                \
  X(kIpv4Options, "ipv4-options") \
  X(kIpv6, "ipv6")                \
  X(kIpv6Ext, "ipv6-ext")         \
  X(kFragment, "fragment")        \
  X(kTcp, "tcp")                  \
  X(kTcpOptions, "tcp-options")   \
  X(kUdp, "udp")                  \
  X(kIcmp, "icmp")                \
  X(kIcmpv6, "icmpv6")            \
  X(kIcmpQuoted, "icmp-quoted")   \
  X(kPpp, "ppp")                  \
  X(kGre, "gre")                  \
  X(kErspan, "erspan")            \
  X(kVxlan, "vxlan")              \
  X(kGeneve, "geneve")            \
  X(kGtpU, "gtp-u")               \
  X(kTeredo, "teredo")            \
  X(kAyiya, "ayiya")              \
  X(kWlan, "802.11")              \
  X(kTunnelDepth, "tunnel-depth")

enum class Layer : uint8_t {
#define STATEWALL_LAYER_ENUM(e, name) e,
  STATEWALL_LAYERS(STATEWALL_LAYER_ENUM)
#undef STATEWALL_LAYER_ENUM
};

inline constexpr size_t kLayerCount = 0
#define STATEWALL_LAYER_COUNT(e, name) +1
    STATEWALL_LAYERS(STATEWALL_LAYER_COUNT)
#undef STATEWALL_LAYER_COUNT
    ;

inline constexpr std::array<std::string_view, kLayerCount> kLayerNames = {
#define STATEWALL_LAYER_NAME(e, name) name,
    STATEWALL_LAYERS(STATEWALL_LAYER_NAME)
#undef STATEWALL_LAYER_NAME
};

constexpr std::string_view layerName(Layer l) {
  return kLayerNames[static_cast<size_t>(l)];
}

enum class L3 : uint8_t {
  kIpv4,
  kIpv6,
  kArp,
  kOther,  // another EtherType (or an 802.3 length field): not IP
};

// TCP header flags (the low 8 bits of the flags field; NS is ignored).
inline constexpr uint8_t kFin = 0x01;
inline constexpr uint8_t kSyn = 0x02;
inline constexpr uint8_t kRst = 0x04;
inline constexpr uint8_t kPsh = 0x08;
inline constexpr uint8_t kAck = 0x10;
inline constexpr uint8_t kUrg = 0x20;
inline constexpr uint8_t kEce = 0x40;
inline constexpr uint8_t kCwr = 0x80;

// IP protocol numbers the parser looks inside.
inline constexpr uint8_t kIpProtoIcmp = 1;
inline constexpr uint8_t kIpProtoTcp = 6;
inline constexpr uint8_t kIpProtoUdp = 17;
inline constexpr uint8_t kIpProtoEsp = 50;
inline constexpr uint8_t kIpProtoAh = 51;
inline constexpr uint8_t kIpProtoIcmpv6 = 58;
inline constexpr uint8_t kIpProtoNoNext = 59;
// IPv6 extension headers.
inline constexpr uint8_t kIpv6HopByHop = 0;
inline constexpr uint8_t kIpv6Routing = 43;
inline constexpr uint8_t kIpv6Fragment = 44;
inline constexpr uint8_t kIpv6DestOpts = 60;
inline constexpr int kMaxIpv6ExtHeaders = 8;  // a longer chain is malformed (ipv6-ext)

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;   // 802.1Q
inline constexpr uint16_t kEtherTypeQinQ = 0x88a8;   // 802.1ad
inline constexpr uint16_t kEtherTypeQinQ1 = 0x9100;  // pre-standard QinQ outer tag
// ParsedPacket keeps the VIDs of the two outermost tags; a stack may be deeper (vlan_count).
inline constexpr int kMaxVlanTags = 2;
// Layer-2.5 headers between the link header and IP (docs/design.md "Encapsulation and tunnels").
inline constexpr uint16_t kEtherTypeMpls = 0x8847;       // MPLS unicast
inline constexpr uint16_t kEtherTypeMplsMulti = 0x8848;  // MPLS multicast
inline constexpr uint16_t kEtherTypePppoeSession = 0x8864;
inline constexpr uint16_t kEtherTypePbb = 0x88e7;         // 802.1ah backbone service instance tag
inline constexpr uint16_t kEtherTypeVnTag = 0x8926;       // Cisco VN-Tag
inline constexpr uint16_t kEtherTypeFabricPath = 0x8903;  // Cisco FabricPath (DCE)
inline constexpr uint16_t kEtherTypeCmd = 0x8909;         // Cisco MetaData (an SGT)
inline constexpr uint16_t kPppIpv4 = 0x0021;              // PPP protocol numbers
inline constexpr uint16_t kPppIpv6 = 0x0057;
// IP tunnels (ParseOptions::decap).
inline constexpr uint8_t kIpProtoIpIp = 4;   // IPv4 in IP
inline constexpr uint8_t kIpProtoIpv6 = 41;  // IPv6 in IP
inline constexpr uint8_t kIpProtoGre = 47;
inline constexpr uint16_t kEtherTypeTeb =
    0x6558;  // transparent Ethernet bridging (an Ethernet frame)
inline constexpr uint16_t kEtherTypeErspan2 =
    0x88be;  // ERSPAN type II (type I without GRE sequence)
inline constexpr uint16_t kEtherTypeErspan3 = 0x22eb;
// GRE protocol types of Aruba access points' 802.11-in-GRE (0x8200, 0x8210, ... 0x8370 in steps of
// 0x10, and 0x9000): an 802.11 frame as the access point received it.
constexpr bool isArubaGreType(uint16_t t) {
  return (t & 0x000f) == 0 &&
         ((t >> 8) == 0x82 || ((t >> 8) == 0x83 && t <= 0x8370) || t == 0x9000);
}

// ICMP types the parser interprets.
inline constexpr uint8_t kIcmpEchoReply = 0;
inline constexpr uint8_t kIcmpDestUnreachable = 3;
inline constexpr uint8_t kIcmpSourceQuench = 4;
inline constexpr uint8_t kIcmpRedirect = 5;
inline constexpr uint8_t kIcmpEchoRequest = 8;
inline constexpr uint8_t kIcmpTimeExceeded = 11;
inline constexpr uint8_t kIcmpParamProblem = 12;
inline constexpr uint8_t kIcmpTimestamp = 13;
inline constexpr uint8_t kIcmpTimestampReply = 14;
inline constexpr uint8_t kIcmpInfoRequest = 15;
inline constexpr uint8_t kIcmpInfoReply = 16;
inline constexpr uint8_t kIcmpAddressMask = 17;
inline constexpr uint8_t kIcmpAddressMaskReply = 18;
inline constexpr uint8_t kIcmpv6DestUnreachable = 1;
inline constexpr uint8_t kIcmpv6PacketTooBig = 2;
inline constexpr uint8_t kIcmpv6TimeExceeded = 3;
inline constexpr uint8_t kIcmpv6ParamProblem = 4;
inline constexpr uint8_t kIcmpv6EchoRequest = 128;
inline constexpr uint8_t kIcmpv6EchoReply = 129;
inline constexpr uint8_t kIcmpv6RouterSolicit = 133;
inline constexpr uint8_t kIcmpv6RouterAdvert = 134;
inline constexpr uint8_t kIcmpv6NeighborSolicit = 135;
inline constexpr uint8_t kIcmpv6NeighborAdvert = 136;
inline constexpr uint8_t kIcmpv6Redirect = 137;

// ICMP/ICMPv6 error messages, which quote the packet they are about (v4 destination unreachable,
// source quench, redirect, time exceeded, parameter problem; v6 types 1 to 4).
constexpr bool icmpIsError(bool v6, uint8_t type) {
  if (v6) return type >= kIcmpv6DestUnreachable && type <= kIcmpv6ParamProblem;
  return type == kIcmpDestUnreachable || type == kIcmpSourceQuench || type == kIcmpRedirect ||
         type == kIcmpTimeExceeded || type == kIcmpParamProblem;
}

// The errors that may be related to a connection (docs/design.md "Connection tracking"):
// destination unreachable, time exceeded, parameter problem, and ICMPv6 packet too big. Redirects
// and source quench are judged by the rules like any packet.
constexpr bool icmpErrorMayBeRelated(bool v6, uint8_t type) {
  if (v6) return icmpIsError(true, type);
  return type == kIcmpDestUnreachable || type == kIcmpTimeExceeded || type == kIcmpParamProblem;
}

// The errors path-MTU discovery depends on: v4 fragmentation needed (type 3 code 4), v6 packet
// too big (type 2).
constexpr bool icmpIsPathMtuError(bool v6, uint8_t type, uint8_t code) {
  return v6 ? type == kIcmpv6PacketTooBig : type == kIcmpDestUnreachable && code == 4;
}

// ICMP/ICMPv6 queries (docs/design.md "Connection tracking"): request/reply pairs echo 8/0,
// timestamp 13/14, information 15/16, address mask 17/18, ICMPv6 echo 128/129. Each carries an
// identifier at bytes 4-5. Returns the request type of the pair `type` belongs to (as request or
// reply), or -1 when `type` is not a query; *is_request says which of the two it is.
constexpr int icmpQueryRequestType(bool v6, uint8_t type, bool* is_request) {
  if (v6) {
    if (type != kIcmpv6EchoRequest && type != kIcmpv6EchoReply) return -1;
    *is_request = type == kIcmpv6EchoRequest;
    return kIcmpv6EchoRequest;
  }
  switch (type) {
    case kIcmpEchoRequest:
    case kIcmpTimestamp:
    case kIcmpInfoRequest:
    case kIcmpAddressMask:
      *is_request = true;
      return type;
    case kIcmpEchoReply:
      *is_request = false;
      return kIcmpEchoRequest;
    case kIcmpTimestampReply:
    case kIcmpInfoReply:
    case kIcmpAddressMaskReply:
      *is_request = false;
      return type - 1;
    default:
      return -1;
  }
}

// Why an ICMPv6 neighbour-discovery message (types 133..137) is not valid per RFC 4861 (sections
// 6.1.1, 6.1.2, 7.1.1, 7.1.2, 8.1) and RFC 6980; such a message gets no exemption and is judged by
// the rules like any ICMPv6 packet. X(enumerator, text).
#define STATEWALL_ND_PROBLEMS(X)                                                                   \
  X(kNone, "valid")                                                                                \
  X(kHopLimit, "its hop limit is not 255, so it may have been sent from off the link")             \
  X(kCode, "its ICMP code is not 0")                                                               \
  X(kTooShort, "it is shorter than the fixed part of its message type")                            \
  X(kSourceNotLinkLocal, "a router advertisement or redirect must come from a link-local address") \
  X(kBadOption, "an option has length 0 or runs past the message")                                 \
  X(kFragmented, "it is fragmented (RFC 6980 forbids fragmented neighbour discovery)")

enum class NdProblem : uint8_t {
#define STATEWALL_ND_PROBLEM_ENUM(e, text) e,
  STATEWALL_ND_PROBLEMS(STATEWALL_ND_PROBLEM_ENUM)
#undef STATEWALL_ND_PROBLEM_ENUM
};

constexpr const char* ndProblemText(NdProblem p) {
  constexpr const char* kTexts[] = {
#define STATEWALL_ND_PROBLEM_TEXT(e, text) text,
      STATEWALL_ND_PROBLEMS(STATEWALL_ND_PROBLEM_TEXT)
#undef STATEWALL_ND_PROBLEM_TEXT
  };
  return kTexts[static_cast<size_t>(p)];
}

struct TcpOptions {
  uint16_t mss = 0;    // 0: absent
  int8_t wscale = -1;  // -1: absent; values above 14 are clamped to 14 (RFC 7323 2.3)
  bool sack_permitted = false;
  bool has_sack = false;
  bool has_ts = false;
  uint32_t tsval = 0;
  uint32_t tsecr = 0;
  // With has_sack: the right edge of the SACK block furthest ahead in sequence space, which the
  // window check may use in place of the ACK number (as Linux conntrack's tcp_sack() does).
  uint32_t sack_right_edge = 0;
};

// The offending packet quoted by an ICMP/ICMPv6 error, as sent (so its source is our side).
struct QuotedHeader {
  bool present = false;  // the quoted IP header was parsed
  bool has_l4 = false;   // the first 8 bytes of its transport header were quoted too
  uint8_t proto = 0;     // upper-layer protocol after any IPv6 extension headers
  uint8_t icmp_type = 0;
  Family family = Family::kV4;
  uint16_t sport = 0;  // TCP/UDP, host order
  uint16_t dport = 0;
  uint16_t icmp_id = 0;  // quoted ICMP query (echo, timestamp, ...) request or reply
  uint32_t tcp_seq = 0;
  IpAddr src{};
  IpAddr dst{};
};

// Result of parsePacket(). Hot fields first: the first 64 bytes hold what a flow lookup needs
// except the addresses.
struct ParsedPacket {
  Layer malformed = Layer::kNone;
  L3 l3 = L3::kOther;
  Family family = Family::kV4;
  uint8_t proto = 0;  // upper-layer protocol (after IPv6 extension headers); 0 when not IP
  uint8_t ttl_or_hlim = 0;
  uint8_t tcp_flags = 0;
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;

  uint16_t sport = 0;  // host order; 0 where the protocol has none or in a non-first fragment
  uint16_t dport = 0;
  uint16_t window = 0;   // TCP window as sent (unscaled)
  uint16_t icmp_id = 0;  // ICMP/ICMPv6 query identifier (icmp_is_query_request/reply)
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint32_t ip_len = 0;  // bytes of the IP datagram (header + payload) as its header says
  // TCP: segment payload bytes (header excluded), the length window tracking uses. UDP: the UDP
  // length field minus 8. 0 otherwise. In a first fragment, TCP counts only this fragment's bytes.
  uint32_t l4_payload_len = 0;

  // IPv4 (MF/offset) and IPv6 (fragment header) fragments. Only the first fragment (offset 0)
  // carries transport fields. An IPv6 atomic fragment (offset 0, M clear) is not a fragment.
  bool is_fragment = false;
  bool first_fragment = false;
  bool more_fragments = false;
  bool icmp_is_error = false;  // v4 types 3, 4, 5, 11, 12; v6 types 1..4: `quoted` is filled in
  bool icmp_is_query_request = false;  // echo, timestamp, information, address mask request
  bool icmp_is_query_reply = false;    // their replies (icmpQueryRequestType())
  bool is_nd = false;  // ICMPv6 neighbour discovery, types 133..137; valid when nd_problem is kNone
  uint8_t vlan_count = 0;    // VLAN tags in the frame (255 at most); vlan_ids has the first two
  uint16_t frag_offset = 0;  // in 8-byte units
  uint16_t frag_len = 0;     // fragments: bytes of the datagram's payload this one carries
  uint16_t l3_offset = 0;    // byte offset of the IP (or ARP) header in the frame
  uint32_t frag_id = 0;      // IPv4 identification or IPv6 fragment identification

  IpAddr src{};  // IP source; for ARP the sender protocol address when it is IPv4-over-Ethernet
  IpAddr dst{};  // IP destination; for ARP the target protocol address
  TcpOptions tcp_opt{};
  uint16_t vlan_ids[kMaxVlanTags] = {0, 0};  // 12-bit VIDs, outermost first
  uint16_t l4_offset = 0;                    // byte offset of the transport header (0: none)
  NdProblem nd_problem = NdProblem::kNone;   // is_nd: why the message is not valid RFC 4861 ND
  // With ParseOptions::decap: the tunnels around the packet described (0: not in a tunnel).
  // vlan_count/vlan_ids then count the tags of the whole frame, outer ones first.
  uint8_t tunnel_depth = 0;
  // With malformed != kNone: a static string saying what was wrong, e.g.
  // "IPv4 total length exceeds captured bytes".
  const char* malformed_why = nullptr;
  QuotedHeader quoted{};
};

// One encapsulation header of a frame, for outputs that name a packet's encapsulation
// ("vlan:100", "mpls:16", "vxlan:vni=42"): the parser itself records only what the engine needs.
// Layer-2.5 headers (vlan .. pw-eth) carry only kind and value; a tunnel (gre .. ip-in-ip) also
// carries the flow of the packet that carries it (has_outer), for outputs that name an inner
// connection's tunnel the way Zeek's tunnel_parents does.
struct EncapHeader {
  enum class Kind : uint8_t {
    kVlan,
    kMpls,
    kPppoe,
    kPbb,
    kVnTag,
    kFabricPath,
    kCmd,
    kPseudowire,
    // Tunnels (docs/design.md "Encapsulation and tunnels"): only with ParseOptions::decap.
    kGre,
    kErspan,
    kVxlan,
    kGeneve,
    kGtpU,
    kTeredo,
    kAyiya,
    kIpIp,
    kAruba,
  };
  Kind kind = Kind::kVlan;
  // VLAN id, MPLS label, PPPoE session id, PBB I-SID, VN-Tag word, FabricPath FTag, Cisco
  // MetaData SGT; GRE key, ERSPAN session id, VXLAN/GENEVE VNI, GTP-U TEID, Aruba GRE protocol
  // type; 0 for the rest.
  uint32_t value = 0;
  // GRE: 1 when the header carries a key (so "gre:key=0" and "gre" differ); ERSPAN: its type
  // (1, 2 or 3). 0 otherwise.
  uint8_t aux = 0;
  // Tunnels: the carrying packet's flow (its IP addresses, protocol and, for UDP, ports).
  bool has_outer = false;
  uint8_t proto = 0;
  Family family = Family::kV4;
  uint16_t sport = 0;
  uint16_t dport = 0;
  IpAddr src{};
  IpAddr dst{};
};

// "vlan", "mpls", "pppoe", "pbb", "vn-tag", "fabricpath", "cmd" (Cisco MetaData), "pw-eth" (an
// Ethernet pseudowire inside MPLS), "gre", "erspan", "vxlan", "geneve", "gtp-u", "teredo", "ayiya",
// "ip-in-ip", "aruba" (Aruba's 802.11 in GRE).
std::string_view encapKindName(EncapHeader::Kind k);
// True for the kinds that are IP tunnels (kGre and after).
constexpr bool encapIsTunnel(EncapHeader::Kind k) {
  return k >= EncapHeader::Kind::kGre;
}

// One header as text, the form `statewall gen --encap` reads back (parseEncapText()):
//   vlan:100  mpls:16  pppoe:7  pbb:4096  vn-tag:2147549184  fabricpath:1 (FTag)  cmd:42 (SGT)
//   pw-eth
//   gre (no key)  gre:key=5  erspan:type=1  erspan:session=3 (type II)  erspan:session=3:type=3
//   vxlan:vni=42  geneve:vni=7  gtp-u:teid=0x1234  teredo  ayiya  ip-in-ip
//   aruba:proto=0x8210 (the GRE protocol type; "aruba" alone is 0x8200)
//   gre:port=4754 (GRE carried in UDP, RFC 8086: the only case where the carrying flow shows)
// The carrying flow (has_outer) is otherwise not part of the text.
std::string encapText(const EncapHeader& h);
// Reads encapText()'s form (also "vlan" for VID 0, "mpls" for label 0, "vxlan" and "geneve" for
// VNI 0, "gtp-u" for TEID 0; numbers decimal or 0x-hex). A UDP tunnel also takes ":port=N", the
// destination port of its carrying packet (h->dport; for `statewall gen`, not part of
// encapText()). Returns "" and fills *h, or an error text naming what was wrong.
std::string parseEncapText(std::string_view text, EncapHeader* h);

// Which UDP destination (then source) ports carry which tunnel, for decapsulation.
struct TunnelPort {
  uint16_t port = 0;
  EncapHeader::Kind kind = EncapHeader::Kind::kVxlan;
};

// How parsePacket() treats IP tunnels (docs/design.md "Encapsulation and tunnels"). Layer-2.5
// headers are always unwrapped; tunnels only with decap. A fixed-size value: no allocation, cheap
// to copy into EngineConfig.
struct ParseOptions {
  static constexpr size_t kMaxTunnelPorts = 16;
  // false: a tunnel is judged as its outer packet (GRE, UDP 4789, ...). true: as the innermost
  // packet; ParsedPacket::tunnel_depth counts the tunnels around it.
  bool decap = false;
  // Nested tunnels decapsulated at most; one more is deny-malformed at layer "tunnel-depth"
  // (0: every tunnel is).
  uint8_t max_tunnel_depth = 4;
  // With decap, a UDP datagram on a port outside tunnel_ports whose payload is plainly Teredo
  // (IPv6 in UDP, RFC 4380: its headers, or an address in 2001::/32, and consistent lengths) is
  // decapsulated as Teredo, as Zeek finds Teredo relays on ephemeral ports (--detect-teredo).
  bool detect_teredo = false;
  uint8_t tunnel_port_count = 6;
  // UDP port -> tunnel kind (the IANA ports); tunnel_ports[0, tunnel_port_count) are in use.
  std::array<TunnelPort, kMaxTunnelPorts> tunnel_ports = {{
      {4789, EncapHeader::Kind::kVxlan},
      {6081, EncapHeader::Kind::kGeneve},
      {2152, EncapHeader::Kind::kGtpU},
      {3544, EncapHeader::Kind::kTeredo},
      {5072, EncapHeader::Kind::kAyiya},
      {4754, EncapHeader::Kind::kGre},  // GRE in UDP (RFC 8086)
  }};

  // Maps `port` to `kind` (replacing what the port carried). False when the table is full or the
  // kind is not a UDP tunnel (vxlan, geneve, gtp-u, teredo, ayiya, gre: GRE in UDP, RFC 8086).
  bool addTunnelPort(uint16_t port, EncapHeader::Kind kind);
  // The tunnel a UDP packet between these ports carries (the destination port first), or false.
  bool udpTunnel(uint16_t sport, uint16_t dport, EncapHeader::Kind* kind) const {
    for (uint32_t i = 0; i < tunnel_port_count; ++i) {
      if (tunnel_ports[i].port == dport) {
        *kind = tunnel_ports[i].kind;
        return true;
      }
    }
    for (uint32_t i = 0; i < tunnel_port_count; ++i) {
      if (tunnel_ports[i].port == sport) {
        *kind = tunnel_ports[i].kind;
        return true;
      }
    }
    return false;
  }
};

// Adds one `--tunnel-port KIND=PORT` ("vxlan=8472") to *opts. Returns "" or an error text naming
// what was wrong (unknown kind, bad port, table full).
std::string parseTunnelPort(std::string_view text, ParseOptions* opts);

// Parses one frame of `caplen` bytes. Returns true when every layer present parsed; false sets
// out->malformed and out->malformed_why. Overwrites every field of *out. Thread-safe (no state);
// reads only data[0, caplen). Tunnels are judged as their outer packet (ParseOptions{}).
bool parsePacket(const uint8_t* data, uint32_t caplen, LinkType link, ParsedPacket* out) noexcept;
// The same with options: with opts.decap, *out describes the innermost packet of the frame's
// tunnels (out->tunnel_depth of them; offsets stay offsets into the frame). A fragmented outer
// packet is not decapsulated. Without decap, exactly the 4-argument parsePacket().
bool parsePacket(const uint8_t* data, uint32_t caplen, LinkType link, const ParseOptions& opts,
                 ParsedPacket* out) noexcept;
// parsePacket() without its fast path for IPv4/TCP in Ethernet or raw IP frames: the same result
// for every frame (tests/parser compare the two). For tests.
bool parsePacketGeneral(const uint8_t* data, uint32_t caplen, LinkType link,
                        ParsedPacket* out) noexcept;
bool parsePacketGeneral(const uint8_t* data, uint32_t caplen, LinkType link,
                        const ParseOptions& opts, ParsedPacket* out) noexcept;

// Whether a packet carries a tunnel to decapsulate (findInnerPacket()).
enum class TunnelFound : uint8_t { kNone, kTunnel, kMalformed };

// Where the packet inside a tunnel lies, for findInnerPacket().
struct InnerPacket {
  EncapHeader::Kind kind = EncapHeader::Kind::kGre;
  uint32_t off = 0;  // frame bytes [off, end): the inner packet (past an inner Ethernet header)
  uint32_t end = 0;
  uint16_t type = 0;           // its EtherType (kEtherTypeIpv4, kEtherTypeIpv6, MPLS, ARP, ...)
  Layer layer = Layer::kNone;  // kMalformed: the tunnel's layer and what is wrong with it
  const char* why = nullptr;
};

// One step of decapsulation, as parsePacket() with opts.decap takes it: whether `outer`, the
// result of parsing the frame `data` without decap, carries one of opts' tunnels (kNone for a
// fragment, another protocol or port, or a payload that is not decapsulated), where its inner
// packet lies (kTunnel) or what is malformed in the tunnel's header (kMalformed; the layers
// packet.hpp lists). The inner packet itself is not checked: parse it from inner->off. For the
// appliance's Gateway Load Balancer mode, which judges the inner packet and returns the outer.
TunnelFound findInnerPacket(const uint8_t* data, const ParsedPacket& outer,
                            const ParseOptions& opts, InnerPacket* inner) noexcept;

// The encapsulation headers of a frame, outermost first, walked exactly as parsePacket() walks
// them with `opts` (it stops where the parser would fail): the layer-2.5 headers and, with
// opts.decap, each tunnel followed by the layer-2.5 headers inside it. At most 32 entries.
// Allocates: for outputs, never on the packet path.
std::vector<EncapHeader> encapsulation(const uint8_t* data, uint32_t caplen, LinkType link,
                                       const ParseOptions& opts = {});

}  // namespace statewall::dataplane
