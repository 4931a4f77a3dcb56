// Builds complete frames byte by byte, with correct lengths and checksums, for tests, fixtures and
// the trace generator. Allocates freely: never call it on the packet path.
//
// Every spec is an aggregate with sensible defaults, so fixtures name only what matters:
//   auto syn = buildTcp({.src = ipAddr("10.0.0.1"), .dst = ipAddr("10.0.1.10"), .dport = 443,
//                        .flags = kSyn, .mss = 1460, .wscale = 7});
//   auto raw = buildUdp({.src = ipAddr("2001:db8::1"), .dst = ipAddr("2001:db8::2")},
//                       {.link = LinkType::kRawIp});
// The address family of a spec's src decides IPv4 or IPv6. A spec that cannot be built (mixed
// families, options longer than 40 bytes, ARP on a raw IP link) is a programming error: the builder
// prints why and aborts.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "statewall/dataplane/packet.hpp"

namespace statewall::dataplane {

using MacAddr = std::array<uint8_t, 6>;
using Bytes = std::vector<uint8_t>;

// An address from text ("10.0.0.1", "2001:db8::1"); aborts on bad text (fixtures only).
IpAddr ipAddr(std::string_view text);

struct VlanTag {
  uint16_t vid = 0;
  uint16_t tpid = kEtherTypeVlan;  // 0x8100; 0x88a8 or 0x9100 for a QinQ outer tag
  uint8_t pcp = 0;
};

// A layer-2.5 header after the VLAN tags (docs/design.md "Encapsulation and tunnels"), outermost
// first. MPLS entries in a row form one label stack (the last gets the bottom-of-stack bit); after
// a stack comes the IP packet, or a kEthernetPw header (a pseudowire: control word, then an
// Ethernet header whose type continues the chain). PPPoE must be last (PPP then carries the IP).
struct Shim {
  enum class Kind : uint8_t { kVlan, kMpls, kPppoe, kPbb, kVnTag, kFabricPath, kCmd, kEthernetPw };
  Kind kind = Kind::kVlan;
  // VLAN id, MPLS label, PPPoE session id, PBB I-SID, VN-Tag word, FabricPath FTag, Cisco MetaData
  // SGT.
  uint32_t value = 0;
  uint16_t tpid = kEtherTypeVlan;  // kVlan only
  bool control_word = true;        // kEthernetPw only
};

// An IPv6 extension header placed between the fixed header and the transport header. The builder
// writes the next-header and length bytes; `body` is what follows them. Hop-by-hop and destination
// options are padded with Pad1/PadN to a multiple of 8 bytes (header total);
// routing and other bodies with zeros; AH (51) to a multiple of 8 (at least 16 bytes). A fragment
// header (44) takes a 6-byte body (offset/flags, identification) as given, e.g. for an atomic
// fragment; fragment() makes real fragments.
struct Ipv6ExtHeader {
  uint8_t type = kIpv6DestOpts;
  Bytes body{};
};

// One IP tunnel around the packet (docs/design.md "Encapsulation and tunnels"). The builder wraps
// the inner packet (with its Ethernet header and inner_shims for the kinds that carry Ethernet:
// VXLAN, GENEVE, ERSPAN, GRE with `ethernet`) in the tunnel's header and an outer IP packet
// (UDP for VXLAN, GENEVE, GTP-U, Teredo, AYIYA, GRE with a port) from outer_src to outer_dst.
// Aruba wraps it in an 802.11 data frame and LLC/SNAP inside GRE.
struct TunnelSpec {
  EncapHeader::Kind kind = EncapHeader::Kind::kVxlan;  // kGre .. kIpIp
  // As EncapHeader: GRE key, ERSPAN session, VXLAN/GENEVE VNI, GTP-U TEID; aux: GRE key present,
  // ERSPAN type (1, 2 or 3; 0 means 2).
  uint32_t value = 0;
  uint8_t aux = 0;
  IpAddr outer_src = IpAddr::v4(0xc0000201);  // 192.0.2.1
  IpAddr outer_dst = IpAddr::v4(0xc0000202);  // 192.0.2.2
  uint16_t sport = 0;  // UDP tunnels; 0: 49152 for VXLAN and GENEVE, else the tunnel's port
  // UDP tunnels; 0: the IANA port of the kind (4789, 6081, 2152, 3544, 5072). GRE: a port makes
  // it GRE in UDP (RFC 8086; IANA port 4754), 0 plain GRE.
  uint16_t dport = 0;
  bool ethernet = false;      // GRE: carry an Ethernet frame (transparent Ethernet bridging)
  bool gre_checksum = false;  // GRE: checksum present (filled in)
  bool gre_sequence = false;  // GRE: sequence number present (ERSPAN II and III always have one)
  Bytes geneve_options{};     // GENEVE: option bytes, padded with zeros to a multiple of 4
  // GENEVE: carry the IP packet itself (protocol type 0x0800 or 0x86dd), as AWS's Gateway Load
  // Balancer does, instead of an Ethernet frame (0x6558).
  bool geneve_ip = false;
  bool gtp_sequence = false;            // GTP-U: the optional sequence/N-PDU/next-extension fields
  std::vector<Bytes> gtp_extensions{};  // GTP-U: extension header contents (padded to 4n - 2)
  bool teredo_auth = false;             // Teredo: an authentication indicator (empty id and value)
  bool teredo_origin = false;           // Teredo: an origin indication
  std::vector<Shim> inner_shims{};      // layer-2.5 headers inside the tunnel's Ethernet frame
  // Aruba (802.11 in GRE; value: the GRE protocol type, 0 meaning 0x8200): the 802.11 data frame
  // from the distribution system to a station, with these variants.
  bool wlan_qos = false;           // QoS data (a QoS control field)
  bool wlan_four_address = false;  // To DS and From DS (a fourth address)
};
// A TunnelSpec from a parsed text form (parseEncapText(), e.g. "vxlan:vni=42:port=8472"): the
// kind, value, aux and destination port.
TunnelSpec tunnelSpecOf(const EncapHeader& h);

struct FrameOptions {
  LinkType link = LinkType::kEthernet;
  MacAddr src_mac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
  MacAddr dst_mac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
  std::vector<VlanTag> vlans{};  // outermost first; Ethernet and SLL links only
  std::vector<Shim> shims{};     // after the VLAN tags; Ethernet and SLL links only
  std::optional<uint8_t> ttl{};  // IPv4 TTL / IPv6 hop limit; default 64 (255 for ND)
  uint8_t tos = 0;               // IPv4 TOS / IPv6 traffic class
  uint16_t ip_id = 1;            // IPv4 identification
  bool dont_fragment = false;    // IPv4 DF
  Bytes ipv4_options{};          // raw option bytes, padded with EOL to a multiple of 4
  std::vector<Ipv6ExtHeader> ipv6_ext{};
  uint32_t flow_label = 0;
  uint16_t sll_packet_type = 0;  // 0: to this host, 4: outgoing
  uint16_t sll_hatype = 1;       // ARPHRD_ETHER
  uint32_t sll2_ifindex = 1;
  size_t trailer_len = 0;  // zero bytes after the IP datagram (Ethernet padding, say)
  // IP tunnels around the packet, outermost first; vlans and shims are those of the outer frame.
  std::vector<TunnelSpec> tunnels{};
};

// Shorthand for an IP packet with no link header (the form ICMP errors quote).
inline FrameOptions rawIp() {
  return FrameOptions{.link = LinkType::kRawIp};
}

inline constexpr IpAddr kDefaultSrc = IpAddr::v4(0x0a000001);  // 10.0.0.1
inline constexpr IpAddr kDefaultDst = IpAddr::v4(0x0a000002);  // 10.0.0.2

struct TcpSpec {
  IpAddr src = kDefaultSrc;
  IpAddr dst = kDefaultDst;
  uint16_t sport = 40000;
  uint16_t dport = 80;
  uint8_t flags = kAck;
  uint32_t seq = 1000;
  uint32_t ack = 0;
  uint16_t window = 65535;
  std::optional<uint16_t> mss{};
  std::optional<uint8_t> wscale{};
  bool sack_permitted = false;
  std::optional<std::pair<uint32_t, uint32_t>> ts{};  // (tsval, tsecr)
  std::vector<std::pair<uint32_t, uint32_t>> sack{};  // (left, right) blocks, at most 4
  Bytes raw_options{};  // appended after the named options (malformed ones too), then EOL padding
  size_t payload_len = 0;
  Bytes payload{};  // payload bytes, then a filler pattern up to payload_len
  uint16_t urgent = 0;
};

struct UdpSpec {
  IpAddr src = kDefaultSrc;
  IpAddr dst = kDefaultDst;
  uint16_t sport = 40000;
  uint16_t dport = 53;
  size_t payload_len = 0;
  Bytes payload{};
};

struct IcmpEchoSpec {
  IpAddr src = kDefaultSrc;
  IpAddr dst = kDefaultDst;
  uint16_t id = 0x1234;
  uint16_t seq = 1;
  bool reply = false;  // echo reply (0 / 129) instead of request (8 / 128)
  size_t payload_len = 0;
};

// An ICMP (IPv4) or ICMPv6 error from src (say a router) to dst, quoting an IP packet.
struct IcmpErrorSpec {
  IpAddr src = kDefaultDst;
  IpAddr dst = kDefaultSrc;
  uint8_t type = kIcmpDestUnreachable;  // for ICMPv6 set e.g. kIcmpv6DestUnreachable
  uint8_t code = 3;                     // port unreachable (ICMPv6: 4)
  uint32_t rest = 0;     // the 4 bytes after the checksum: MTU for packet-too-big, pointer, ...
  size_t max_quote = 0;  // 0: quote the whole offending packet; else at most this many bytes
};

struct ArpSpec {
  uint16_t op = 1;  // 1 request, 2 reply
  MacAddr sender_mac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
  IpAddr sender_ip = kDefaultSrc;
  MacAddr target_mac = {0, 0, 0, 0, 0, 0};
  IpAddr target_ip = kDefaultDst;
};

// IPv6 neighbour discovery: router solicitation/advertisement, neighbour solicitation/
// advertisement, redirect (133..137). Hop limit 255 unless FrameOptions::ttl says otherwise.
struct NdSpec {
  uint8_t type = kIcmpv6NeighborSolicit;
  IpAddr src = IpAddr::v6(0xfe80000000000000ull, 1);
  IpAddr dst = IpAddr::v6(0xff02000000000000ull, 0x00000001ff000002ull);
  IpAddr target = IpAddr::v6(0xfe80000000000000ull, 2);  // NS, NA and redirect only
  std::optional<MacAddr> link_addr{};  // source (NS, RS, RA) or target (NA) link-layer option
};

// Any IP protocol: the payload follows the IP header (and IPv6 extension headers) as given.
struct OtherProtoSpec {
  IpAddr src = kDefaultSrc;
  IpAddr dst = kDefaultDst;
  uint8_t proto = 47;  // GRE
  size_t payload_len = 8;
  Bytes payload{};
};

Bytes buildTcp(const TcpSpec& spec, const FrameOptions& opts = {});
Bytes buildUdp(const UdpSpec& spec, const FrameOptions& opts = {});
Bytes buildIcmpEcho(const IcmpEchoSpec& spec, const FrameOptions& opts = {});
// `offending_ip_packet` starts at its IP header (build it with rawIp()).
Bytes buildIcmpError(const IcmpErrorSpec& spec, const Bytes& offending_ip_packet,
                     const FrameOptions& opts = {});
Bytes buildArp(const ArpSpec& spec, const FrameOptions& opts = {});
Bytes buildNd(const NdSpec& spec, const FrameOptions& opts = {});
Bytes buildOtherProto(const OtherProtoSpec& spec, const FrameOptions& opts = {});
// A frame of any EtherType (L3::kOther) with `payload` after the link header and VLAN tags.
Bytes buildEthertype(uint16_t ethertype, const Bytes& payload, const FrameOptions& opts = {});

// The building blocks the functions above use, for hand-made (often malformed) packets:
// an IP packet around transport bytes `l4` (no checksum filled in there), and the link header.
Bytes buildIpPacket(const IpAddr& src, const IpAddr& dst, uint8_t proto,
                    std::span<const uint8_t> l4, const FrameOptions& opts = {});
Bytes addLinkHeader(const Bytes& l3_packet, uint16_t ethertype, const FrameOptions& opts = {});
// Bytes before the L3 header for these options: link header plus VLAN tags (with tunnels, before
// the outermost IP header).
size_t l3Offset(const FrameOptions& opts);

// Splits the IP datagram in `frame` (framed per `opts`) into fragments whose IP packets are at most
// `mtu` bytes, each with the same link header. IPv4 copies only options with the copy bit to later
// fragments; IPv6 inserts a fragment header (identification `ipv6_frag_id`) after the hop-by-hop,
// routing and preceding destination-options headers. A datagram that fits is returned unchanged.
std::vector<Bytes> fragment(const Bytes& frame, size_t mtu, const FrameOptions& opts = {},
                            uint32_t ipv6_frag_id = 0x5eed);

// RFC 1071 one's-complement checksum of `data`, starting from a partial sum `seed`.
uint16_t internetChecksum(std::span<const uint8_t> data, uint32_t seed = 0);
// TCP/UDP/ICMPv6 checksum including the IPv4 or IPv6 pseudo-header.
uint16_t transportChecksum(const IpAddr& src, const IpAddr& dst, uint8_t proto,
                           std::span<const uint8_t> l4);

}  // namespace statewall::dataplane
