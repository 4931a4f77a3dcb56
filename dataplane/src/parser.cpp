// The packet parser. Every read is preceded by a length check against the bytes that remain of the
// enclosing layer; offsets are 32-bit and never exceed caplen, so no arithmetic can wrap.
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "statewall/dataplane/byte_order.hpp"
#include "statewall/dataplane/packet.hpp"

namespace statewall::dataplane {
namespace {

inline IpAddr v4Addr(const uint8_t* p) {
  return IpAddr::v4(be32(p));
}
inline IpAddr v6Addr(const uint8_t* p) {
  return IpAddr::v6(be64(p), be64(p + 8));
}

// Sequence-space "a is after b" (RFC 1982 serial arithmetic).
inline bool seqAfter(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) > 0;
}

// BSD loopback address families (DLT_NULL / DLT_LOOP): IPv4, and IPv6 as NetBSD/OpenBSD,
// FreeBSD and Darwin number it.
constexpr uint32_t kBsdAfInet = 2;
constexpr uint32_t kBsdAfInet6Bsd = 24;
constexpr uint32_t kBsdAfInet6FreeBsd = 28;
constexpr uint32_t kBsdAfInet6Darwin = 30;

[[gnu::cold]] bool fail(ParsedPacket* out, Layer layer, const char* why) noexcept {
  out->malformed = layer;
  out->malformed_why = why;
  return false;
}

// Walks the type-length-value options of an IPv4 header or an IPv6 hop-by-hop/destination options
// header. `single_byte` is the kind that has no length byte besides end-of-list (IPv4: EOL 0 and
// NOP 1; IPv6: Pad1 0). Returns false when an option runs past `len`.
[[gnu::noinline]] bool tlvOptionsFit(const uint8_t* p, uint32_t len, bool ipv4) noexcept {
  uint32_t i = 0;
  while (i < len) {
    const uint8_t kind = p[i];
    if (ipv4 && kind == 0) return true;  // end of option list; the rest is padding
    if (kind == 0 || (ipv4 && kind == 1)) {
      ++i;
      continue;
    }
    if (len - i < 2) return false;
    const uint32_t olen = p[i + 1];
    // IPv4 option lengths count the kind and length bytes; IPv6 ones count only the data.
    const uint32_t total = ipv4 ? olen : olen + 2;
    if (total < 2 || total > len - i) return false;
    i += total;
  }
  return true;
}

[[gnu::noinline]] bool parseTcpOptions(const uint8_t* p, uint32_t len, TcpOptions* o,
                                       ParsedPacket* out) noexcept {
  uint32_t i = 0;
  while (i < len) {
    const uint8_t kind = p[i];
    if (kind == 0) break;  // end of option list
    if (kind == 1) {       // NOP
      ++i;
      continue;
    }
    if (len - i < 2) return fail(out, Layer::kTcpOptions, "TCP option length byte missing");
    const uint32_t olen = p[i + 1];
    if (olen < 2) return fail(out, Layer::kTcpOptions, "TCP option length below 2");
    if (olen > len - i) return fail(out, Layer::kTcpOptions, "TCP option runs past the header");
    const uint8_t* v = p + i + 2;
    switch (kind) {
      case 2:
        if (olen != 4) return fail(out, Layer::kTcpOptions, "TCP MSS option length is not 4");
        o->mss = be16(v);
        break;
      case 3:
        if (olen != 3) {
          return fail(out, Layer::kTcpOptions, "TCP window scale option length is not 3");
        }
        o->wscale = static_cast<int8_t>(v[0] > 14 ? 14 : v[0]);
        break;
      case 4:
        if (olen != 2) {
          return fail(out, Layer::kTcpOptions, "TCP SACK-permitted option length is not 2");
        }
        o->sack_permitted = true;
        break;
      case 5: {
        if (olen < 10 || olen > 34 || (olen - 2) % 8 != 0) {
          return fail(out, Layer::kTcpOptions, "TCP SACK option length is not 2 + 8n (n 1..4)");
        }
        uint32_t edge = be32(v + 4);
        for (uint32_t b = 8; b + 8 <= olen - 2; b += 8) {
          const uint32_t right = be32(v + b + 4);
          if (seqAfter(right, edge)) edge = right;
        }
        o->has_sack = true;
        o->sack_right_edge = edge;
        break;
      }
      case 8:
        if (olen != 10) {
          return fail(out, Layer::kTcpOptions, "TCP timestamp option length is not 10");
        }
        o->has_ts = true;
        o->tsval = be32(v);
        o->tsecr = be32(v + 4);
        break;
      default:
        break;  // unknown options are skipped by their length
    }
    i += olen;
  }
  return true;
}

// Transport header of an unfragmented packet or first fragment: `p` holds `len` bytes of IP
// payload.
inline bool parseTcp(const uint8_t* p, uint32_t len, bool first_frag, ParsedPacket* out) noexcept {
  if (len < 20) {
    return first_frag ? fail(out, Layer::kFragment, "first fragment too short for the TCP header")
                      : fail(out, Layer::kTcp, "TCP header truncated");
  }
  const uint32_t doff = static_cast<uint32_t>(p[12] >> 4) * 4;
  out->sport = be16(p);
  out->dport = be16(p + 2);
  out->seq = be32(p + 4);
  out->ack = be32(p + 8);
  out->tcp_flags = p[13];
  out->window = be16(p + 14);
  if (doff < 20) return fail(out, Layer::kTcp, "TCP data offset below 5");
  if (doff > len) {
    return first_frag ? fail(out, Layer::kFragment, "first fragment too short for the TCP options")
                      : fail(out, Layer::kTcp, "TCP data offset runs past the segment");
  }
  out->l4_payload_len = len - doff;
  if (doff == 20) return true;
  // Fast path for the layout Linux and most stacks put on every established segment:
  // NOP, NOP, timestamp.
  if (doff == 32 && be32(p + 20) == 0x0101080au) {
    out->tcp_opt.has_ts = true;
    out->tcp_opt.tsval = be32(p + 24);
    out->tcp_opt.tsecr = be32(p + 28);
    return true;
  }
  return parseTcpOptions(p + 20, doff - 20, &out->tcp_opt, out);
}

inline bool parseUdp(const uint8_t* p, uint32_t len, bool first_frag, ParsedPacket* out) noexcept {
  if (len < 8) {
    return first_frag ? fail(out, Layer::kFragment, "first fragment too short for the UDP header")
                      : fail(out, Layer::kUdp, "UDP header truncated");
  }
  const uint32_t ulen = be16(p + 4);
  out->sport = be16(p);
  out->dport = be16(p + 2);
  if (ulen < 8) return fail(out, Layer::kUdp, "UDP length below 8");
  if (first_frag) {
    if (ulen < len) return fail(out, Layer::kUdp, "UDP length shorter than its first fragment");
  } else if (ulen > len) {
    return fail(out, Layer::kUdp, "UDP length exceeds the IP payload");
  }
  out->l4_payload_len = ulen - 8;
  return true;
}

// Fills q's transport fields from the `len` quoted bytes of its L4 header.
inline void parseQuotedL4(const uint8_t* p, uint32_t len, bool v6, QuotedHeader* q) noexcept {
  if (len < 8) return;
  q->has_l4 = true;
  if (q->proto == kIpProtoTcp || q->proto == kIpProtoUdp) {
    q->sport = be16(p);
    q->dport = be16(p + 2);
    if (q->proto == kIpProtoTcp) q->tcp_seq = be32(p + 4);
  } else if (q->proto == (v6 ? kIpProtoIcmpv6 : kIpProtoIcmp)) {
    q->icmp_type = p[0];
    bool request;
    if (icmpQueryRequestType(v6, p[0], &request) >= 0) q->icmp_id = be16(p + 4);
  }
}

[[gnu::noinline]] bool parseQuotedV4(const uint8_t* p, uint32_t len, ParsedPacket* out) noexcept {
  QuotedHeader* q = &out->quoted;
  if (len < 20 || (p[0] >> 4) != 4 || (p[0] & 15) < 5 || (p[0] & 15) * 4u > len) {
    return fail(out, Layer::kIcmpQuoted, "ICMP error does not quote a whole IPv4 header");
  }
  const uint32_t ihl = (p[0] & 15) * 4u;
  q->present = true;
  q->family = Family::kV4;
  q->proto = p[9];
  q->src = v4Addr(p + 12);
  q->dst = v4Addr(p + 16);
  if ((be16(p + 6) & 0x1fff) != 0) return true;  // a non-first fragment has no transport header
  parseQuotedL4(p + ihl, len - ihl, false, q);
  return true;
}

[[gnu::noinline]] bool parseQuotedV6(const uint8_t* p, uint32_t len, ParsedPacket* out) noexcept {
  QuotedHeader* q = &out->quoted;
  if (len < 40 || (p[0] >> 4) != 6) {
    return fail(out, Layer::kIcmpQuoted, "ICMPv6 error does not quote a whole IPv6 header");
  }
  q->present = true;
  q->family = Family::kV6;
  q->src = v6Addr(p + 8);
  q->dst = v6Addr(p + 24);
  // Follow the quoted extension chain as far as the quote goes; a short quote only loses has_l4.
  uint8_t nh = p[6];
  uint32_t off = 40;
  for (int n = 0; n <= kMaxIpv6ExtHeaders; ++n) {
    if (nh != kIpv6HopByHop && nh != kIpv6Routing && nh != kIpv6DestOpts && nh != kIpv6Fragment &&
        nh != kIpProtoAh) {
      q->proto = nh;
      parseQuotedL4(p + off, len - off, true, q);
      return true;
    }
    if (n == kMaxIpv6ExtHeaders || len - off < 8) break;
    uint32_t hlen;
    if (nh == kIpv6Fragment) {
      if ((be16(p + off + 2) & 0xfff8) != 0) {  // non-first fragment: no transport header
        q->proto = p[off];
        return true;
      }
      hlen = 8;
    } else if (nh == kIpProtoAh) {
      hlen = (uint32_t{p[off + 1]} + 2) * 4;
    } else {
      hlen = (uint32_t{p[off + 1]} + 1) * 8;
    }
    if (hlen > len - off) break;
    nh = p[off];
    off += hlen;
  }
  q->proto = nh;  // the chain did not end inside the quote
  return true;
}

// RFC 4861's validity checks of a neighbour-discovery message of `len` bytes (type 133..137): the
// hop limit proves it was sent on the link; the fixed part's length per type; RAs and redirects
// only from link-local routers; options of non-zero length within the message. RFC 6980: never
// fragmented. The first problem found, or kNone.
[[gnu::noinline]] NdProblem ndProblem(const uint8_t* p, uint32_t len, bool first_frag,
                                      const ParsedPacket& pp) noexcept {
  if (pp.ttl_or_hlim != 255) return NdProblem::kHopLimit;
  if (p[1] != 0) return NdProblem::kCode;
  if (first_frag) return NdProblem::kFragmented;
  // Fixed part, ICMP header included: RS 8, RA 16, NS 24, NA 24, redirect 40.
  static constexpr uint8_t kFixed[] = {8, 16, 24, 24, 40};
  const uint32_t fixed = kFixed[p[0] - kIcmpv6RouterSolicit];
  if (len < fixed) return NdProblem::kTooShort;
  if ((p[0] == kIcmpv6RouterAdvert || p[0] == kIcmpv6Redirect) &&
      (pp.src.hi >> 54) != (0xfe80000000000000ull >> 54)) {
    return NdProblem::kSourceNotLinkLocal;
  }
  for (uint32_t off = fixed; off < len;) {
    if (len - off < 2 || p[off + 1] == 0 || uint32_t{p[off + 1]} * 8 > len - off) {
      return NdProblem::kBadOption;
    }
    off += uint32_t{p[off + 1]} * 8;
  }
  return NdProblem::kNone;
}

inline bool parseIcmp(const uint8_t* p, uint32_t len, bool first_frag, ParsedPacket* out) noexcept {
  if (len < 8) {
    return first_frag ? fail(out, Layer::kFragment, "first fragment too short for the ICMP header")
                      : fail(out, Layer::kIcmp, "ICMP header truncated");
  }
  const uint8_t type = p[0];
  out->icmp_type = type;
  out->icmp_code = p[1];
  bool request;
  if (icmpQueryRequestType(false, type, &request) >= 0) {
    out->icmp_id = be16(p + 4);
    out->icmp_is_query_request = request;
    out->icmp_is_query_reply = !request;
  } else if (icmpIsError(false, type)) {
    out->icmp_is_error = true;
    return parseQuotedV4(p + 8, len - 8, out);
  }
  return true;
}

inline bool parseIcmpv6(const uint8_t* p, uint32_t len, bool first_frag,
                        ParsedPacket* out) noexcept {
  if (len < 8) {
    return first_frag
               ? fail(out, Layer::kFragment, "first fragment too short for the ICMPv6 header")
               : fail(out, Layer::kIcmpv6, "ICMPv6 header truncated");
  }
  const uint8_t type = p[0];
  out->icmp_type = type;
  out->icmp_code = p[1];
  if (type == kIcmpv6EchoRequest || type == kIcmpv6EchoReply) {
    out->icmp_id = be16(p + 4);
    out->icmp_is_query_request = type == kIcmpv6EchoRequest;
    out->icmp_is_query_reply = type == kIcmpv6EchoReply;
  } else if (icmpIsError(true, type)) {
    out->icmp_is_error = true;
    return parseQuotedV6(p + 8, len - 8, out);
  } else if (type >= kIcmpv6RouterSolicit && type <= kIcmpv6Redirect) {
    out->is_nd = true;
    out->nd_problem = ndProblem(p, len, first_frag, *out);
  }
  return true;
}

// `p` points at the transport header (frame offset `off`), `len` bytes of it belong to the
// datagram.
inline bool parseL4(const uint8_t* p, uint32_t off, uint32_t len, bool first_frag,
                    ParsedPacket* out) noexcept {
  out->l4_offset = static_cast<uint16_t>(off);
  switch (out->proto) {
    case kIpProtoTcp:
      return parseTcp(p, len, first_frag, out);
    case kIpProtoUdp:
      return parseUdp(p, len, first_frag, out);
    case kIpProtoIcmp:
      if (out->family == Family::kV4) return parseIcmp(p, len, first_frag, out);
      break;
    case kIpProtoIcmpv6:
      if (out->family == Family::kV6) return parseIcmpv6(p, len, first_frag, out);
      break;
    default:
      break;
  }
  out->l4_offset = 0;  // a protocol whose header we do not read
  return true;
}

// Checks shared by IPv4 and IPv6 fragments; `payload` is this fragment's share of the datagram.
inline bool checkFragment(uint32_t offset_units, bool more, uint32_t payload,
                          ParsedPacket* out) noexcept {
  if (more && payload % 8 != 0) {
    return fail(out, Layer::kFragment, "non-last fragment payload is not a multiple of 8");
  }
  if (offset_units * 8 + payload > 65535) {
    return fail(out, Layer::kFragment, "fragment ends beyond 65535 bytes");
  }
  out->frag_len = static_cast<uint16_t>(payload);
  return true;
}

bool parseIpv4(const uint8_t* frame, uint32_t off, uint32_t caplen, ParsedPacket* out) noexcept {
  const uint8_t* p = frame + off;
  const uint32_t avail = caplen - off;
  out->l3 = L3::kIpv4;
  out->family = Family::kV4;
  out->l3_offset = static_cast<uint16_t>(off);
  if (avail < 20) return fail(out, Layer::kIpv4, "IPv4 header truncated");
  if ((p[0] >> 4) != 4) return fail(out, Layer::kIpv4, "IPv4 version field is not 4");
  const uint32_t ihl = (p[0] & 15) * 4u;
  const uint32_t total = be16(p + 2);
  out->ttl_or_hlim = p[8];
  out->proto = p[9];
  out->src = v4Addr(p + 12);
  out->dst = v4Addr(p + 16);
  out->ip_len = total;
  if (ihl < 20) return fail(out, Layer::kIpv4, "IPv4 header length (IHL) below 5");
  if (total < ihl) return fail(out, Layer::kIpv4, "IPv4 total length below the header length");
  if (total > avail) return fail(out, Layer::kIpv4, "IPv4 total length exceeds captured bytes");
  if (ihl > 20 && !tlvOptionsFit(p + 20, ihl - 20, true)) {
    return fail(out, Layer::kIpv4Options, "IPv4 option runs past the header or has length < 2");
  }
  const uint16_t frag = be16(p + 6);
  const uint32_t payload = total - ihl;
  bool first_frag = false;
  if ((frag & 0x3fff) != 0) {  // MF or a non-zero offset
    const uint32_t offset_units = frag & 0x1fff;
    const bool more = (frag & 0x2000) != 0;
    out->is_fragment = true;
    out->more_fragments = more;
    out->frag_offset = static_cast<uint16_t>(offset_units);
    out->frag_id = be16(p + 4);
    if (!checkFragment(offset_units, more, payload, out)) return false;
    if (offset_units != 0) {
      if (offset_units == 1 && out->proto == kIpProtoTcp) {
        return fail(out, Layer::kFragment, "TCP fragment at offset 8 overlaps the header");
      }
      return true;
    }
    out->first_fragment = true;
    first_frag = true;
  }
  return parseL4(p + ihl, off + ihl, payload, first_frag, out);
}

bool parseIpv6(const uint8_t* frame, uint32_t off, uint32_t caplen, ParsedPacket* out) noexcept {
  const uint8_t* p = frame + off;
  const uint32_t avail = caplen - off;
  out->l3 = L3::kIpv6;
  out->family = Family::kV6;
  out->l3_offset = static_cast<uint16_t>(off);
  if (avail < 40) return fail(out, Layer::kIpv6, "IPv6 header truncated");
  if ((p[0] >> 4) != 6) return fail(out, Layer::kIpv6, "IPv6 version field is not 6");
  const uint32_t end = 40 + uint32_t{be16(p + 4)};
  out->ttl_or_hlim = p[7];
  out->src = v6Addr(p + 8);
  out->dst = v6Addr(p + 24);
  out->ip_len = end;
  uint8_t nh = p[6];
  out->proto = nh;
  if (end > avail) return fail(out, Layer::kIpv6, "IPv6 payload length exceeds captured bytes");

  uint32_t pos = 40;
  bool first_frag = false;
  bool seen_frag_header = false;
  // The common case, an upper-layer header straight after the fixed header, skips the loop.
  for (int count = 0;; ++count) {
    const bool ext = nh == kIpv6HopByHop || nh == kIpv6Routing || nh == kIpv6DestOpts ||
                     nh == kIpv6Fragment || nh == kIpProtoAh;
    if (!ext) break;
    const Layer short_layer = first_frag ? Layer::kFragment : Layer::kIpv6Ext;
    const char* short_why = first_frag ? "first fragment does not hold the whole header chain"
                                       : "IPv6 extension header truncated";
    if (count == kMaxIpv6ExtHeaders) {
      return fail(out, Layer::kIpv6Ext, "more than 8 IPv6 extension headers");
    }
    if (end - pos < 8) return fail(out, short_layer, short_why);
    const uint8_t* h = p + pos;
    if (nh == kIpv6Fragment) {
      if (seen_frag_header) {
        return fail(out, Layer::kFragment, "more than one IPv6 fragment header");
      }
      seen_frag_header = true;
      const uint16_t fo = be16(h + 2);
      const uint32_t offset_units = fo >> 3;
      const bool more = (fo & 1) != 0;
      nh = h[0];
      pos += 8;
      out->frag_id = be32(h + 4);
      if (offset_units == 0 && !more) continue;  // atomic fragment (RFC 6946): a whole packet
      out->is_fragment = true;
      out->more_fragments = more;
      out->frag_offset = static_cast<uint16_t>(offset_units);
      if (!checkFragment(offset_units, more, end - pos, out)) return false;
      if (offset_units != 0) {
        out->proto = nh;  // what follows is the middle of the datagram, not headers
        return true;
      }
      out->first_fragment = true;
      first_frag = true;
      continue;
    }
    if (nh == kIpv6HopByHop && count != 0) {
      return fail(out, Layer::kIpv6Ext, "IPv6 hop-by-hop header is not the first header");
    }
    const uint32_t hlen = nh == kIpProtoAh ? (uint32_t{h[1]} + 2) * 4 : (uint32_t{h[1]} + 1) * 8;
    if (hlen > end - pos) return fail(out, short_layer, short_why);
    if ((nh == kIpv6HopByHop || nh == kIpv6DestOpts) && !tlvOptionsFit(h + 2, hlen - 2, false)) {
      return fail(out, Layer::kIpv6Ext, "IPv6 option runs past its extension header");
    }
    nh = h[0];
    pos += hlen;
  }
  out->proto = nh;
  return parseL4(p + pos, off + pos, end - pos, first_frag, out);
}

inline void parseArp(const uint8_t* frame, uint32_t off, uint32_t caplen,
                     ParsedPacket* out) noexcept {
  const uint8_t* p = frame + off;
  out->l3 = L3::kArp;
  out->l3_offset = static_cast<uint16_t>(off);
  // Ethernet/IPv4 ARP: htype 1, ptype 0x0800, hlen 6, plen 4; 28 bytes.
  if (caplen - off >= 28 && be16(p) == 1 && be16(p + 2) == kEtherTypeIpv4 && p[4] == 6 &&
      p[5] == 4) {
    out->src = v4Addr(p + 14);
    out->dst = v4Addr(p + 24);
  }
}

inline bool isVlanTpid(uint16_t t) {
  return t == kEtherTypeVlan || t == kEtherTypeQinQ || t == kEtherTypeQinQ1;
}

// A type field that names a layer-2.5 header (docs/design.md "Encapsulation and tunnels": always
// unwrapped, in replay and in statewalld alike).
inline bool isL25Type(uint16_t t) {
  return isVlanTpid(t) || t == kEtherTypeMpls || t == kEtherTypeMplsMulti ||
         t == kEtherTypePppoeSession || t == kEtherTypePbb || t == kEtherTypeVnTag ||
         t == kEtherTypeFabricPath || t == kEtherTypeCmd;
}

// A PPP protocol or an MPLS payload that is not IP ends the walk with no IP type: L3 other.
constexpr uint16_t kNoIpType = 0;

// The EtherType of what a PPP protocol number carries (IPv4, IPv6, MPLS), or kNoIpType (LCP,
// IPCP and the other control protocols: L3 other).
constexpr uint16_t pppToEtherType(uint16_t proto) {
  switch (proto) {
    case kPppIpv4:
      return kEtherTypeIpv4;
    case kPppIpv6:
      return kEtherTypeIpv6;
    case 0x0281:
      return kEtherTypeMpls;
    case 0x0283:
      return kEtherTypeMplsMulti;
    default:
      return kNoIpType;
  }
}

// One step over a layer-2.5 header at `off` whose type field said `type`. On success, `off` and
// `type` name what follows (an EtherType, or kNoIpType), and `kind`/`value` what was passed;
// on failure `layer`/`why` say what was wrong. Each step consumes at least 4 bytes, so a walk
// over a frame ends. MPLS label entries are one step each; after the bottom of the stack the
// first nibble guesses the payload (4: IPv4, 6: IPv6, 0: a pseudowire control word and an
// Ethernet frame, otherwise an Ethernet frame without control word), as analysers do.
struct L25Step {
  uint32_t off;
  uint16_t type;
  bool mpls_next = false;  // inside an MPLS label stack (the next entry is a label)
  bool pw_next = false;    // an MPLS stack ended on an Ethernet pseudowire (its frame is next)
  EncapHeader::Kind kind = EncapHeader::Kind::kVlan;
  uint32_t value = 0;
  Layer layer = Layer::kNone;
  const char* why = nullptr;
};

[[gnu::noinline]] bool stepL25(const uint8_t* data, uint32_t caplen, L25Step* s) noexcept {
  const uint32_t left = caplen - s->off;
  const uint8_t* p = data + s->off;
  auto bad = [&](Layer l, const char* why) {
    s->layer = l;
    s->why = why;
    return false;
  };
  if (s->pw_next) {
    s->pw_next = false;
    // The MPLS step saw at least one byte here.
    const uint32_t cw = (data[s->off] >> 4) == 0 ? 4 : 0;
    if (left < cw + 14) return bad(Layer::kMpls, "Ethernet pseudowire frame truncated");
    s->kind = EncapHeader::Kind::kPseudowire;
    s->value = 0;
    s->type = be16(p + cw + 12);
    s->off += cw + 14;
    return true;
  }
  if (s->mpls_next || s->type == kEtherTypeMpls || s->type == kEtherTypeMplsMulti) {
    if (left < 4) return bad(Layer::kMpls, "MPLS label entry truncated");
    const uint32_t entry = be32(p);
    s->kind = EncapHeader::Kind::kMpls;
    s->value = entry >> 12;
    s->off += 4;
    s->mpls_next = (entry & 0x100) == 0;  // bottom-of-stack bit clear: another label follows
    if (s->mpls_next) return true;
    if (caplen - s->off < 1) return bad(Layer::kMpls, "MPLS label stack with no payload");
    const uint8_t nibble = data[s->off] >> 4;
    if (nibble == 4) {
      s->type = kEtherTypeIpv4;
    } else if (nibble == 6) {
      s->type = kEtherTypeIpv6;
    } else {
      // An Ethernet pseudowire: its frame's type field is the next step's type.
      s->pw_next = true;
    }
    return true;
  }
  if (isVlanTpid(s->type)) {
    if (left < 4) return bad(Layer::kVlan, "VLAN tag truncated");
    s->kind = EncapHeader::Kind::kVlan;
    s->value = be16(p) & 0x0fff;
    s->type = be16(p + 2);
    s->off += 4;
    return true;
  }
  switch (s->type) {
    case kEtherTypePppoeSession: {
      // version/type 0x11, code 0, session id, payload length, then the PPP protocol.
      if (left < 8) return bad(Layer::kPppoe, "PPPoE session header truncated");
      if (p[0] != 0x11 || p[1] != 0)
        return bad(Layer::kPppoe, "PPPoE session header is not version 1 type 1 code 0");
      const uint32_t plen = be16(p + 4);
      if (plen < 2 || plen > left - 6)
        return bad(Layer::kPppoe, "PPPoE payload length runs past the frame");
      s->kind = EncapHeader::Kind::kPppoe;
      s->value = be16(p + 2);
      s->type = pppToEtherType(be16(p + 6));
      s->off += 8;
      return true;
    }
    case kEtherTypePbb:
      // I-TAG (priority, flags, 24-bit I-SID), then the customer frame's addresses and type.
      if (left < 4 + 14) return bad(Layer::kPbb, "802.1ah (PBB) header truncated");
      s->kind = EncapHeader::Kind::kPbb;
      s->value = be32(p) & 0x00ffffff;
      s->type = be16(p + 16);
      s->off += 18;
      return true;
    case kEtherTypeVnTag:
      if (left < 6) return bad(Layer::kVnTag, "VN-Tag truncated");
      s->kind = EncapHeader::Kind::kVnTag;
      s->value = be32(p);
      s->type = be16(p + 4);
      s->off += 6;
      return true;
    case kEtherTypeFabricPath:
      // FTag (10 bits) and TTL, then the inner frame's addresses and type (the outer addresses
      // are the switches').
      if (left < 16) return bad(Layer::kFabricPath, "Cisco FabricPath header truncated");
      s->kind = EncapHeader::Kind::kFabricPath;
      s->value = be16(p) >> 6;
      s->type = be16(p + 14);
      s->off += 16;
      return true;
    case kEtherTypeCmd:
      // Version 1, length, option length and type (the SGT option), SGT, then the type.
      if (left < 8) return bad(Layer::kCmd, "Cisco MetaData header truncated");
      if (p[0] != 1) return bad(Layer::kCmd, "Cisco MetaData header is not version 1");
      s->kind = EncapHeader::Kind::kCmd;
      s->value = be16(p + 4);
      s->type = be16(p + 6);
      s->off += 8;
      return true;
    default:
      return bad(Layer::kLink, "not a layer-2.5 type");
  }
}

const ParsedPacket kBlank{};

// *out = ParsedPacket{}, but as 16-byte vector moves: GCC turns the direct form (and a copy of a
// constant it can see) into `rep stos`, whose start-up cost was half the parse time of a TCP ACK.
// The empty asm hides where the template comes from, so the copy stays a plain inline memcpy.
inline void resetParsed(ParsedPacket* out) noexcept {
  const ParsedPacket* blank = &kBlank;
  asm("" : "+r"(blank));
  *out = *blank;
}

// The fast path for the frame most traffic is: Ethernet, IPv4 without options and not
// fragmented, TCP without options or with the NOP-NOP-timestamp block; and the same IPv4 packet
// as a raw IP frame (the packet inside a Gateway Load Balancer's GENEVE, say). It makes the same
// checks as the general path (parseIpv4(), parseL4(), parseTcp()) and writes the same fields; any
// frame that would take another branch there (a short or malformed one included) returns false
// without writing, and the general path parses it. tests/parser compare the two on random
// frames and on the fixture table's.
template <bool kEthernet>
inline bool parseIpv4Tcp(const uint8_t* data, uint32_t caplen, ParsedPacket* out) noexcept {
  constexpr uint32_t kIp = kEthernet ? 14 : 0;
  if (caplen < kIp + 40) return false;
  const uint8_t* ip = data + kIp;
  // Raw IP: a first byte of 0x45 is what makes the general path read an IPv4 header.
  if ((kEthernet && be16(data + 12) != kEtherTypeIpv4) || ip[0] != 0x45 || ip[9] != kIpProtoTcp ||
      (be16(ip + 6) & 0x3fff) != 0) {
    return false;
  }
  const uint32_t total = be16(ip + 2);
  const uint8_t* tcp = ip + 20;
  const uint32_t doff = static_cast<uint32_t>(tcp[12] >> 4) * 4;
  // total >= 40: the TCP header fits (parseTcp's len >= 20); doff within the segment.
  if (total > caplen - kIp || total < 40 || doff < 20 || doff > total - 20) return false;
  const bool ts = doff == 32 && be32(tcp + 20) == 0x0101080au;
  if (doff != 20 && !ts) return false;
  resetParsed(out);
  // The first 32 bytes as four 8-byte stores: the engine reads these fields right after (two
  // ports as one 4-byte load, say), and a load is forwarded from a store that contains it but
  // waits for the cache when it spans several narrower stores.
  static_assert(offsetof(ParsedPacket, malformed) == 0 && offsetof(ParsedPacket, l3) == 1 &&
                offsetof(ParsedPacket, family) == 2 && offsetof(ParsedPacket, proto) == 3 &&
                offsetof(ParsedPacket, ttl_or_hlim) == 4 &&
                offsetof(ParsedPacket, tcp_flags) == 5 && offsetof(ParsedPacket, icmp_type) == 6 &&
                offsetof(ParsedPacket, icmp_code) == 7 && offsetof(ParsedPacket, sport) == 8 &&
                offsetof(ParsedPacket, dport) == 10 && offsetof(ParsedPacket, window) == 12 &&
                offsetof(ParsedPacket, icmp_id) == 14 && offsetof(ParsedPacket, seq) == 16 &&
                offsetof(ParsedPacket, ack) == 20 && offsetof(ParsedPacket, ip_len) == 24 &&
                offsetof(ParsedPacket, l4_payload_len) == 28);
  static_assert(static_cast<uint8_t>(Layer::kNone) == 0 && sizeof(L3) == 1 && sizeof(Family) == 1 &&
                std::endian::native == std::endian::little);
  // Each word stored on its own (an array copied with memcpy goes through the stack and back
  // as 16-byte loads, itself a forwarding stall).
  auto* base = reinterpret_cast<unsigned char*>(out);
  const uint64_t w0 = uint64_t{static_cast<uint8_t>(L3::kIpv4)} << 8 |
                      uint64_t{static_cast<uint8_t>(Family::kV4)} << 16 |
                      uint64_t{kIpProtoTcp} << 24 | uint64_t{ip[8]} << 32 | uint64_t{tcp[13]} << 40;
  const uint64_t w1 =
      uint64_t{be16(tcp)} | uint64_t{be16(tcp + 2)} << 16 | uint64_t{be16(tcp + 14)} << 32;
  const uint64_t w2 = uint64_t{be32(tcp + 4)} | uint64_t{be32(tcp + 8)} << 32;
  const uint64_t w3 = uint64_t{total} | uint64_t{total - 20 - doff} << 32;
  std::memcpy(base, &w0, 8);
  std::memcpy(base + 8, &w1, 8);
  std::memcpy(base + 16, &w2, 8);
  std::memcpy(base + 24, &w3, 8);
  out->l3_offset = kIp;
  out->src = v4Addr(ip + 12);
  out->dst = v4Addr(ip + 16);
  out->l4_offset = kIp + 20;
  if (ts) {
    out->tcp_opt.has_ts = true;
    out->tcp_opt.tsval = be32(tcp + 24);
    out->tcp_opt.tsecr = be32(tcp + 28);
  }
  return true;
}

}  // namespace

bool parsePacket(const uint8_t* data, uint32_t caplen, LinkType link, ParsedPacket* out) noexcept {
  if (link == LinkType::kEthernet) {
    if (parseIpv4Tcp<true>(data, caplen, out)) return true;
  } else if (link == LinkType::kRawIp && parseIpv4Tcp<false>(data, caplen, out)) {
    return true;
  }
  return parsePacketGeneral(data, caplen, link, out);
}

namespace {

// The encapsulation headers a walk passed, for encapsulation(); fixed-size so that parsing never
// allocates.
struct EncapTrace {
  static constexpr uint32_t kMax = 32;
  std::array<EncapHeader, kMax> h{};
  uint32_t n = 0;
  void add(const EncapHeader& e) {
    if (n < kMax) h[n++] = e;
  }
};

// A tunnel found in a parsed packet (docs/design.md "Encapsulation and tunnels"): what it is and
// where its inner packet lies, frame bytes [off, end), starting with a header of EtherType
// `type` (an inner Ethernet header is already passed). Or, when malformed, the layer and why.
struct TunnelStep {
  EncapHeader::Kind kind = EncapHeader::Kind::kGre;
  uint8_t aux = 0;
  uint32_t value = 0;
  uint32_t off = 0;
  uint32_t end = 0;
  uint16_t type = 0;
  Layer layer = Layer::kNone;
  const char* why = nullptr;
};

[[gnu::cold]] TunnelFound badTunnel(TunnelStep* t, Layer layer, const char* why) {
  t->layer = layer;
  t->why = why;
  return TunnelFound::kMalformed;
}

// The EtherType of an IP packet at p (the version nibble), or kNoIpType.
inline uint16_t ipTypeByVersion(const uint8_t* p, uint32_t len) {
  if (len == 0) return kNoIpType;
  const uint8_t v = p[0] >> 4;
  return v == 4 ? kEtherTypeIpv4 : v == 6 ? kEtherTypeIpv6 : kNoIpType;
}

// Where the payload of the (unfragmented, already validated) IP packet at pp.l3_offset begins.
inline uint32_t ipPayloadOffset(const uint8_t* data, const ParsedPacket& pp) {
  const uint8_t* p = data + pp.l3_offset;
  if (pp.family == Family::kV4) return pp.l3_offset + (p[0] & 15) * 4u;
  uint8_t nh = p[6];
  uint32_t pos = 40;
  for (int n = 0; n < kMaxIpv6ExtHeaders; ++n) {
    if (nh != kIpv6HopByHop && nh != kIpv6Routing && nh != kIpv6DestOpts && nh != kIpv6Fragment &&
        nh != kIpProtoAh) {
      break;
    }
    const uint8_t* h = p + pos;
    const uint32_t hlen = nh == kIpv6Fragment ? 8
                          : nh == kIpProtoAh  ? (uint32_t{h[1]} + 2) * 4
                                              : (uint32_t{h[1]} + 1) * 8;
    nh = h[0];
    pos += hlen;
  }
  return pp.l3_offset + pos;
}

// Aruba's 802.11 in GRE (packet.hpp isArubaGreType()): the 802.11 frame as the access point
// received it, bytes data[off, end). Only a data frame that carries a payload, is not protected and
// is not an A-MSDU aggregate, and whose LLC/SNAP header names an EtherType, is decapsulated; any
// other frame is judged as the GRE packet it is (an encrypted payload cannot be read, and an
// aggregate holds several packets where a verdict is for one).
TunnelFound parseWlan(const uint8_t* data, uint32_t off, uint32_t end, TunnelStep* t) {
  const uint8_t* p = data + off;
  const uint32_t len = end - off;
  if (len < 24) return badTunnel(t, Layer::kWlan, "802.11 header truncated");
  const uint8_t fc = p[0];
  const uint8_t flags = p[1];
  // Frame control: protocol version 0, type 2 (data), subtype bit 2 clear (the subtypes with it
  // set, null and CF-only frames, carry no payload); bit 3 of the subtype marks QoS data.
  if ((fc & 0x0f) != 0x08 || (fc & 0x40) != 0) return TunnelFound::kNone;
  if ((flags & 0x40) != 0) return TunnelFound::kNone;  // protected: the payload is encrypted
  // To DS and From DS both set: a fourth address.
  uint32_t hlen = (flags & 0x03) == 0x03 ? 30 : 24;
  if ((fc & 0x80) != 0) {
    // QoS control (its bit 7 marks an A-MSDU), then with the Order bit an HT control field.
    hlen += (flags & 0x80) != 0 ? 6 : 2;
    if (hlen > len) return badTunnel(t, Layer::kWlan, "802.11 QoS header runs past the packet");
    if ((p[(flags & 0x03) == 0x03 ? 30 : 24] & 0x80) != 0) return TunnelFound::kNone;
  } else if (hlen > len) {
    return badTunnel(t, Layer::kWlan, "802.11 four-address header runs past the packet");
  }
  if (len - hlen < 8) return badTunnel(t, Layer::kWlan, "802.11 LLC/SNAP header truncated");
  const uint8_t* llc = p + hlen;
  // SNAP (DSAP and SSAP 0xaa, UI), OUI 0 (RFC 1042) or 00-00-f8 (802.1H bridge tunnel).
  if (llc[0] != 0xaa || llc[1] != 0xaa || llc[2] != 0x03 || llc[3] != 0 || llc[4] != 0 ||
      (llc[5] != 0 && llc[5] != 0xf8)) {
    return TunnelFound::kNone;
  }
  t->kind = EncapHeader::Kind::kAruba;
  t->off = off + hlen + 8;
  t->end = end;
  t->type = be16(llc + 6);
  return TunnelFound::kTunnel;
}

// GRE (RFC 2784, RFC 2890 key and sequence number) and ERSPAN inside it: payload bytes
// data[off, end). Version 1 (PPTP), source routes (RFC 1701) and payloads other than IP, MPLS,
// Ethernet and Aruba's 802.11 are not decapsulated: such a packet is judged as the GRE packet it
// is.
TunnelFound parseGre(const uint8_t* data, uint32_t off, uint32_t end, TunnelStep* t) {
  const uint8_t* p = data + off;
  const uint32_t len = end - off;
  if (len < 4) return badTunnel(t, Layer::kGre, "GRE header truncated");
  const uint16_t flags = be16(p);
  const uint16_t proto = be16(p + 2);
  if ((flags & 0x7) != 0 || (flags & 0x4000) != 0) return TunnelFound::kNone;
  const bool csum = (flags & 0x8000) != 0;
  const bool key = (flags & 0x2000) != 0;
  const bool seq = (flags & 0x1000) != 0;
  const uint32_t hlen = 4 + (csum ? 4 : 0) + (key ? 4 : 0) + (seq ? 4 : 0);
  if (hlen > len) return badTunnel(t, Layer::kGre, "GRE optional fields run past the packet");
  t->kind = EncapHeader::Kind::kGre;
  t->aux = key ? 1 : 0;
  t->value = key ? be32(p + 4 + (csum ? 4 : 0)) : 0;
  t->off = off + hlen;
  t->end = end;
  const uint8_t* e = p + hlen;
  const uint32_t elen = len - hlen;
  switch (proto) {
    case kEtherTypeIpv4:
    case kEtherTypeIpv6:
    case kEtherTypeMpls:
    case kEtherTypeMplsMulti:
    case kEtherTypeTeb:
      t->type = proto;
      return TunnelFound::kTunnel;
    case kEtherTypeErspan2:
      t->kind = EncapHeader::Kind::kErspan;
      t->type = kEtherTypeTeb;
      if (!seq) {  // type I: no ERSPAN header, the mirrored frame follows GRE
        t->aux = 1;
        t->value = 0;
        return TunnelFound::kTunnel;
      }
      if (elen < 8) return badTunnel(t, Layer::kErspan, "ERSPAN type II header truncated");
      if ((e[0] >> 4) != 1) return badTunnel(t, Layer::kErspan, "ERSPAN type II version is not 1");
      t->aux = 2;
      t->value = be16(e + 2) & 0x3ff;
      t->off += 8;
      return TunnelFound::kTunnel;
    case kEtherTypeErspan3: {
      t->kind = EncapHeader::Kind::kErspan;
      if (elen < 12) return badTunnel(t, Layer::kErspan, "ERSPAN type III header truncated");
      if ((e[0] >> 4) != 2) return badTunnel(t, Layer::kErspan, "ERSPAN type III version is not 2");
      // Word 2: security group tag, P, frame type (5 bits), hardware id, D, granularity, O.
      const uint32_t sub = (e[11] & 1) != 0 ? 8 : 0;  // O: a platform-specific subheader
      if (12 + sub > elen) {
        return badTunnel(t, Layer::kErspan, "ERSPAN type III subheader runs past the packet");
      }
      t->aux = 3;
      t->value = be16(e + 2) & 0x3ff;
      t->off += 12 + sub;
      const uint8_t frame_type = (e[10] >> 2) & 0x1f;  // 0 Ethernet, 2 IP
      t->type = frame_type == 2 ? ipTypeByVersion(data + t->off, end - t->off) : kEtherTypeTeb;
      if (t->type == kNoIpType) {
        return badTunnel(t, Layer::kErspan, "ERSPAN type III IP frame is neither IPv4 nor IPv6");
      }
      return TunnelFound::kTunnel;
    }
    default:
      if (!isArubaGreType(proto)) return TunnelFound::kNone;
      t->aux = 0;
      t->value = proto;
      return parseWlan(data, t->off, end, t);
  }
}

// A UDP tunnel's payload, bytes data[off, end), of the kind its port says.
TunnelFound parseUdpTunnel(const uint8_t* data, uint32_t off, uint32_t end, EncapHeader::Kind kind,
                           TunnelStep* t) {
  const uint8_t* p = data + off;
  const uint32_t len = end - off;
  t->kind = kind;
  t->end = end;
  switch (kind) {
    case EncapHeader::Kind::kVxlan:
      // RFC 7348: flags (I: the VNI is valid), 24 reserved bits, VNI, 8 reserved bits.
      if (len < 8) return badTunnel(t, Layer::kVxlan, "VXLAN header truncated");
      t->value = be32(p + 4) >> 8;
      t->off = off + 8;
      t->type = kEtherTypeTeb;
      return TunnelFound::kTunnel;
    case EncapHeader::Kind::kGeneve: {
      // RFC 8926: version and option length (4-byte units), flags, protocol type, VNI, options.
      if (len < 8) return badTunnel(t, Layer::kGeneve, "GENEVE header truncated");
      if ((p[0] >> 6) != 0) return badTunnel(t, Layer::kGeneve, "GENEVE version is not 0");
      const uint32_t hlen = 8 + (p[0] & 0x3fu) * 4;
      if (hlen > len) return badTunnel(t, Layer::kGeneve, "GENEVE options run past the packet");
      const uint16_t proto = be16(p + 2);
      if (proto != kEtherTypeTeb && proto != kEtherTypeIpv4 && proto != kEtherTypeIpv6)
        return TunnelFound::kNone;
      t->value = be32(p + 4) >> 8;
      t->off = off + hlen;
      t->type = proto;
      return TunnelFound::kTunnel;
    }
    case EncapHeader::Kind::kGtpU: {
      // 3GPP TS 29.281: flags (version 1, PT 1, E, S, PN), message type, length of what follows
      // the first 8 bytes, TEID; with E, S or PN a sequence number, N-PDU number and next
      // extension type; then extension headers (length in 4-byte units, the last byte naming
      // the next). Only a G-PDU (type 255) carries a user packet.
      if (len < 8) return badTunnel(t, Layer::kGtpU, "GTP-U header truncated");
      if ((p[0] >> 5) != 1 || (p[0] & 0x10) == 0)
        return badTunnel(t, Layer::kGtpU, "GTP-U version is not 1 or protocol type is not GTP");
      const uint32_t total = 8 + uint32_t{be16(p + 2)};
      if (total > len) return badTunnel(t, Layer::kGtpU, "GTP-U length runs past the packet");
      if (p[1] != 0xff) return TunnelFound::kNone;  // signalling (echo, error indication, ...)
      uint32_t hlen = 8;
      if ((p[0] & 0x07) != 0) {
        hlen = 12;
        if (hlen > total)
          return badTunnel(t, Layer::kGtpU, "GTP-U optional fields run past its length");
        uint8_t next = (p[0] & 0x04) != 0 ? p[11] : 0;
        while (next != 0) {
          if (hlen >= total)
            return badTunnel(t, Layer::kGtpU, "GTP-U extension header runs past its length");
          const uint32_t elen = uint32_t{p[hlen]} * 4;
          if (elen == 0) return badTunnel(t, Layer::kGtpU, "GTP-U extension header of length 0");
          if (elen > total - hlen)
            return badTunnel(t, Layer::kGtpU, "GTP-U extension header runs past its length");
          next = p[hlen + elen - 1];
          hlen += elen;
        }
      }
      t->value = be32(p + 4);
      t->off = off + hlen;
      t->end = off + total;
      t->type = ipTypeByVersion(p + hlen, total - hlen);
      return t->type == kNoIpType ? TunnelFound::kNone : TunnelFound::kTunnel;
    }
    case EncapHeader::Kind::kTeredo: {
      // RFC 4380 5.1.1: an optional authentication indicator (0x0001, id length, auth length,
      // client id, authentication value, 8-byte nonce, confirmation byte), then an optional
      // origin indication (0x0000, port, address: 8 bytes), then an IPv6 packet. A payload that
      // is none of these is not Teredo: judged as the UDP packet it is.
      uint32_t pos = 0;
      if (len >= 2 && p[0] == 0 && p[1] == 1) {
        if (len < 4) return badTunnel(t, Layer::kTeredo, "Teredo authentication header truncated");
        pos = 4 + uint32_t{p[2]} + p[3] + 9;
        if (pos > len) {
          return badTunnel(t, Layer::kTeredo, "Teredo authentication header runs past the packet");
        }
      }
      if (len - pos >= 2 && p[pos] == 0 && p[pos + 1] == 0) {
        if (len - pos < 8)
          return badTunnel(t, Layer::kTeredo, "Teredo origin indication truncated");
        pos += 8;
      }
      if (ipTypeByVersion(p + pos, len - pos) != kEtherTypeIpv6) {
        if (pos == 0) return TunnelFound::kNone;
        return badTunnel(t, Layer::kTeredo, "Teredo header not followed by an IPv6 packet");
      }
      t->value = 0;
      t->off = off + pos;
      t->type = kEtherTypeIpv6;
      return TunnelFound::kTunnel;
    }
    case EncapHeader::Kind::kAyiya: {
      // Anything In Anything: identity length (log2) and type, signature length (4-byte units)
      // and hash method, authentication method and opcode, next header, epoch time; then the
      // identity and the signature. Only opcode 1 (forward) carries a packet.
      if (len < 8) return badTunnel(t, Layer::kAyiya, "AYIYA header truncated");
      const uint32_t hlen = 8 + (1u << (p[0] >> 4)) + (p[1] >> 4) * 4u;
      if (hlen > len) {
        return badTunnel(t, Layer::kAyiya, "AYIYA identity or signature runs past the packet");
      }
      if ((p[2] & 0x0f) != 1) return TunnelFound::kNone;
      if (p[3] != kIpProtoIpIp && p[3] != kIpProtoIpv6) return TunnelFound::kNone;
      t->value = 0;
      t->off = off + hlen;
      t->type = p[3] == kIpProtoIpIp ? kEtherTypeIpv4 : kEtherTypeIpv6;
      return TunnelFound::kTunnel;
    }
    case EncapHeader::Kind::kGre:
      // RFC 8086: a GRE header and its payload make the UDP payload.
      return parseGre(data, off, end, t);
    default:
      return TunnelFound::kNone;
  }
}

// Whether a UDP payload on a port that is not in the tunnel table is Teredo by its content
// (ParseOptions::detect_teredo; docs/semantics.md "Tunnels: what `--decap` judges"): optional
// authentication and origin indication headers, then an IPv6 header whose payload length is what
// the datagram holds (or a bubble: no next header, nothing after it). Without either header one of
// the IPv6 addresses must be in 2001::/32, the Teredo prefix, as no other IPv6-in-UDP uses it.
bool looksLikeTeredo(const uint8_t* p, uint32_t len) {
  uint32_t pos = 0;
  bool headers = false;
  if (len >= 4 && p[0] == 0 && p[1] == 1) {
    pos = 4 + uint32_t{p[2]} + p[3] + 9;
    headers = true;
  }
  if (pos + 8 <= len && p[pos] == 0 && p[pos + 1] == 0) {
    pos += 8;
    headers = true;
  }
  if (pos > len || len - pos < 40 || (p[pos] >> 4) != 6) return false;
  const uint8_t* ip = p + pos;
  const uint32_t plen = be16(ip + 4);
  const bool bubble = ip[6] == kIpProtoNoNext && plen == 0;
  if (!bubble && 40 + plen != len - pos) return false;
  if (headers) return true;
  auto teredo = [](const uint8_t* a) { return be32(a) == 0x20010000u; };
  return teredo(ip + 8) || teredo(ip + 24);
}

// Whether the packet just parsed is a tunnel to decapsulate, and where its inner packet lies. An
// inner Ethernet header (VXLAN, GENEVE, GRE bridging, ERSPAN) is passed here, so that every
// failure of the tunnel's own headers is reported with the outer packet's fields in place.
[[gnu::noinline]] TunnelFound findTunnel(const uint8_t* data, const ParsedPacket& pp,
                                         const ParseOptions& opts, TunnelStep* t) noexcept {
  if ((pp.l3 != L3::kIpv4 && pp.l3 != L3::kIpv6) || pp.is_fragment) return TunnelFound::kNone;
  const uint32_t ip_end = pp.l3_offset + pp.ip_len;
  TunnelFound f;
  Layer layer;
  switch (pp.proto) {
    case kIpProtoUdp: {
      EncapHeader::Kind kind;
      const uint32_t off = pp.l4_offset + 8u;
      if (!opts.udpTunnel(pp.sport, pp.dport, &kind)) {
        if (!opts.detect_teredo || !looksLikeTeredo(data + off, pp.l4_payload_len))
          return TunnelFound::kNone;
        kind = EncapHeader::Kind::kTeredo;
      }
      f = parseUdpTunnel(data, off, off + pp.l4_payload_len, kind, t);
      layer = kind == EncapHeader::Kind::kVxlan       ? Layer::kVxlan
              : kind == EncapHeader::Kind::kGeneve    ? Layer::kGeneve
              : kind == EncapHeader::Kind::kGtpU      ? Layer::kGtpU
              : kind == EncapHeader::Kind::kTeredo    ? Layer::kTeredo
              : kind == EncapHeader::Kind::kAyiya     ? Layer::kAyiya
              : t->kind == EncapHeader::Kind::kErspan ? Layer::kErspan
                                                      : Layer::kGre;
      break;
    }
    case kIpProtoGre:
      f = parseGre(data, ipPayloadOffset(data, pp), ip_end, t);
      layer = t->kind == EncapHeader::Kind::kErspan ? Layer::kErspan : Layer::kGre;
      break;
    case kIpProtoIpIp:
    case kIpProtoIpv6:
      t->kind = EncapHeader::Kind::kIpIp;
      t->off = ipPayloadOffset(data, pp);
      t->end = ip_end;
      t->type = pp.proto == kIpProtoIpIp ? kEtherTypeIpv4 : kEtherTypeIpv6;
      return TunnelFound::kTunnel;
    default:
      return TunnelFound::kNone;
  }
  if (f != TunnelFound::kTunnel || t->type != kEtherTypeTeb) return f;
  if (t->end - t->off < 14)
    return badTunnel(t, layer, "Ethernet frame inside the tunnel truncated");
  t->type = be16(data + t->off + 12);
  t->off += 14;
  return TunnelFound::kTunnel;
}

// The layer-2.5 headers from `off` (a header of EtherType `ethertype`), then the IP packet, within
// frame bytes [0, end). Tail calls into the IP parsers, so that a frame without tunnels costs what
// it did before decapsulation existed (the loop below kept parseIpv4() inlined in it, 3-5 % more
// instructions per frame on the general path).
bool parseLayers(const uint8_t* data, uint32_t off, uint32_t end, uint16_t ethertype,
                 ParsedPacket* out, EncapTrace* trace) noexcept {
  if (isL25Type(ethertype)) [[unlikely]] {
    L25Step st{.off = off, .type = ethertype};
    do {
      if (!stepL25(data, end, &st)) return fail(out, st.layer, st.why);
      if (trace != nullptr) trace->add({.kind = st.kind, .value = st.value});
      if (st.kind == EncapHeader::Kind::kVlan) {
        if (out->vlan_count < kMaxVlanTags)
          out->vlan_ids[out->vlan_count] = static_cast<uint16_t>(st.value);
        if (out->vlan_count < 255) ++out->vlan_count;
      }
    } while (st.mpls_next || st.pw_next || isL25Type(st.type));
    off = st.off;
    ethertype = st.type;
  }
  switch (ethertype) {
    case kEtherTypeIpv4:
      return parseIpv4(data, off, end, out);
    case kEtherTypeIpv6:
      return parseIpv6(data, off, end, out);
    case kEtherTypeArp:
      parseArp(data, off, end, out);
      return true;
    default:
      return true;  // L3::kOther
  }
}

// With decap: parseLayers(), then each tunnel found starts the walk again at its inner packet,
// bounded by the tunnel's payload ([off, end)).
[[gnu::noinline]] bool parseTunnels(const uint8_t* data, uint32_t off, uint32_t end,
                                    uint16_t ethertype, const ParseOptions& opts, ParsedPacket* out,
                                    EncapTrace* trace) noexcept {
  uint8_t depth = 0;
  for (;;) {
    if (!parseLayers(data, off, end, ethertype, out, trace)) return false;
    TunnelStep t;
    const TunnelFound found = findTunnel(data, *out, opts, &t);
    if (found == TunnelFound::kNone) return true;
    if (found == TunnelFound::kMalformed) return fail(out, t.layer, t.why);
    if (depth >= opts.max_tunnel_depth) {
      return fail(out, Layer::kTunnelDepth, "more nested tunnels than the decapsulation limit");
    }
    if (trace != nullptr) {
      trace->add({.kind = t.kind,
                  .value = t.value,
                  .aux = t.aux,
                  .has_outer = true,
                  .proto = out->proto,
                  .family = out->family,
                  .sport = out->proto == kIpProtoUdp ? out->sport : uint16_t{0},
                  .dport = out->proto == kIpProtoUdp ? out->dport : uint16_t{0},
                  .src = out->src,
                  .dst = out->dst});
    }
    // The inner packet replaces the outer one; the frame's VLAN tags stay counted.
    const uint8_t vlan_count = out->vlan_count;
    const uint16_t vlan0 = out->vlan_ids[0];
    const uint16_t vlan1 = out->vlan_ids[1];
    resetParsed(out);
    out->vlan_count = vlan_count;
    out->vlan_ids[0] = vlan0;
    out->vlan_ids[1] = vlan1;
    out->tunnel_depth = ++depth;
    off = t.off;
    end = t.end;
    ethertype = t.type;
  }
}

bool parseFrame(const uint8_t* data, uint32_t caplen, LinkType link, const ParseOptions* opts,
                ParsedPacket* out, EncapTrace* trace) noexcept {
  resetParsed(out);
  uint32_t off;
  uint16_t ethertype;
  switch (link) {
    case LinkType::kEthernet:
      if (caplen < 14) return fail(out, Layer::kLink, "Ethernet header truncated");
      ethertype = be16(data + 12);
      off = 14;
      break;
    case LinkType::kRawIp:
      if (caplen < 1) return fail(out, Layer::kLink, "empty raw IP packet");
      ethertype = ipTypeByVersion(data, caplen);
      if (ethertype == kNoIpType)
        return fail(out, Layer::kLink, "raw IP packet with a version other than 4 or 6");
      off = 0;
      break;
    case LinkType::kLinuxSll:
      // packet type, ARPHRD type, address length, 8 address bytes, protocol.
      if (caplen < 16) return fail(out, Layer::kSll, "Linux cooked (SLL) header truncated");
      ethertype = be16(data + 14);
      off = 16;
      if (be16(data + 2) == 824) return true;  // ARPHRD_NETLINK: protocol is a netlink family
      break;
    case LinkType::kLinuxSll2:
      // protocol, reserved, interface index, ARPHRD type, packet type, address length, address.
      if (caplen < 20) return fail(out, Layer::kSll, "Linux cooked (SLL2) header truncated");
      ethertype = be16(data);
      off = 20;
      if (be16(data + 8) == 824) return true;
      break;
    case LinkType::kNull:
    case LinkType::kLoop: {
      if (caplen < 4) return fail(out, Layer::kLink, "BSD loopback header truncated");
      uint32_t af = be32(data);
      if (af > 0xffff) af = __builtin_bswap32(af);  // little-endian (host order of the capture)
      if (af == kBsdAfInet) {
        ethertype = kEtherTypeIpv4;
      } else if (af == kBsdAfInet6Bsd || af == kBsdAfInet6FreeBsd || af == kBsdAfInet6Darwin) {
        ethertype = kEtherTypeIpv6;
      } else {
        return true;  // another address family: L3::kOther, like another EtherType
      }
      off = 4;
      break;
    }
    case LinkType::kPpp: {
      // An optional HDLC address/control pair, then a 1-byte (compressed, odd) or 2-byte protocol.
      off = caplen >= 2 && data[0] == 0xff && data[1] == 0x03 ? 2 : 0;
      if (caplen - off < 1) return fail(out, Layer::kPpp, "PPP header truncated");
      uint16_t proto = data[off];
      if ((proto & 1) != 0) {
        off += 1;
      } else {
        if (caplen - off < 2) return fail(out, Layer::kPpp, "PPP header truncated");
        proto = be16(data + off);
        off += 2;
      }
      ethertype = pppToEtherType(proto);
      break;
    }
    case LinkType::kPppHdlc:
      if (caplen < 4) return fail(out, Layer::kPpp, "PPP/HDLC header truncated");
      if (data[0] == 0xff && data[1] == 0x03) {
        ethertype = pppToEtherType(be16(data + 2));
      } else if ((data[0] == 0x0f || data[0] == 0x8f) && data[1] == 0) {
        ethertype = be16(data + 2);  // Cisco HDLC: an EtherType
      } else {
        return fail(out, Layer::kPpp, "neither PPP in HDLC framing (ff 03) nor Cisco HDLC");
      }
      off = 4;
      break;
    default:
      return fail(out, Layer::kLink, "unknown link type");
  }
  if (opts == nullptr) return parseLayers(data, off, caplen, ethertype, out, trace);
  return parseTunnels(data, off, caplen, ethertype, *opts, out, trace);
}

}  // namespace

bool parsePacketGeneral(const uint8_t* data, uint32_t caplen, LinkType link,
                        ParsedPacket* out) noexcept {
  return parseFrame(data, caplen, link, nullptr, out, nullptr);
}

bool parsePacketGeneral(const uint8_t* data, uint32_t caplen, LinkType link,
                        const ParseOptions& opts, ParsedPacket* out) noexcept {
  return parseFrame(data, caplen, link, opts.decap ? &opts : nullptr, out, nullptr);
}

bool parsePacket(const uint8_t* data, uint32_t caplen, LinkType link, const ParseOptions& opts,
                 ParsedPacket* out) noexcept {
  // The fast path's frames (TCP) are never tunnels: the same result with or without decap.
  if (link == LinkType::kEthernet) {
    if (parseIpv4Tcp<true>(data, caplen, out)) return true;
  } else if (link == LinkType::kRawIp && parseIpv4Tcp<false>(data, caplen, out)) {
    return true;
  }
  return parseFrame(data, caplen, link, opts.decap ? &opts : nullptr, out, nullptr);
}

TunnelFound findInnerPacket(const uint8_t* data, const ParsedPacket& outer,
                            const ParseOptions& opts, InnerPacket* inner) noexcept {
  TunnelStep t;
  const TunnelFound found = findTunnel(data, outer, opts, &t);
  if (found == TunnelFound::kMalformed) {
    inner->layer = t.layer;
    inner->why = t.why;
  } else if (found == TunnelFound::kTunnel) {
    inner->kind = t.kind;
    inner->off = t.off;
    inner->end = t.end;
    inner->type = t.type;
  }
  return found;
}

std::vector<EncapHeader> encapsulation(const uint8_t* data, uint32_t caplen, LinkType link,
                                       const ParseOptions& opts) {
  EncapTrace trace;
  ParsedPacket scratch;
  parseFrame(data, caplen, link, opts.decap ? &opts : nullptr, &scratch, &trace);
  return {trace.h.begin(), trace.h.begin() + trace.n};
}

}  // namespace statewall::dataplane
