#include "statewall/dataplane/packet_builder.hpp"

#include <algorithm>
#include <string>

#include "statewall/base/check.hpp"

namespace statewall::dataplane {
namespace {

void put8(Bytes& b, uint8_t v) {
  b.push_back(v);
}
void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void put32(Bytes& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v >> 16));
  put16(b, static_cast<uint16_t>(v));
}
void putAddr(Bytes& b, const IpAddr& a) {
  if (a.isV4()) {
    put32(b, a.v4());
  } else {
    uint8_t raw[16];
    a.toV6Bytes(raw);
    b.insert(b.end(), raw, raw + 16);
  }
}
void putMac(Bytes& b, const MacAddr& m) {
  b.insert(b.end(), m.begin(), m.end());
}
void set16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
uint16_t get16(const Bytes& b, size_t at) {
  return static_cast<uint16_t>((b[at] << 8) | b[at + 1]);
}

// `given` bytes, then a recognisable filler up to `len` bytes in total.
void putPayload(Bytes& b, const Bytes& given, size_t len) {
  b.insert(b.end(), given.begin(), given.end());
  for (size_t i = given.size(); i < len; ++i)
    b.push_back(static_cast<uint8_t>('a' + i % 26));
}

void checkFamilies(const IpAddr& src, const IpAddr& dst) {
  if (src.family != dst.family)
    STATEWALL_FAIL("source and destination addresses of different families");
}

bool linkHasEtherType(LinkType l) {
  return l == LinkType::kEthernet || l == LinkType::kLinuxSll || l == LinkType::kLinuxSll2;
}

uint16_t etherTypeFor(const IpAddr& a) {
  return a.isV4() ? kEtherTypeIpv4 : kEtherTypeIpv6;
}

uint8_t ttlOr(const FrameOptions& opts, uint8_t dflt) {
  return opts.ttl ? *opts.ttl : dflt;
}

Bytes ipv4Header(const IpAddr& src, const IpAddr& dst, uint8_t proto, size_t l4_len,
                 const FrameOptions& opts, uint8_t ttl) {
  Bytes options = opts.ipv4_options;
  while (options.size() % 4 != 0)
    options.push_back(0);  // EOL padding
  if (options.size() > 40) STATEWALL_FAIL("IPv4 options longer than 40 bytes");
  const size_t ihl = 20 + options.size();
  const size_t total = ihl + l4_len;
  if (total > 65535) STATEWALL_FAIL("IPv4 datagram longer than 65535 bytes");
  Bytes h;
  put8(h, static_cast<uint8_t>(0x40 | (ihl / 4)));
  put8(h, opts.tos);
  put16(h, static_cast<uint16_t>(total));
  put16(h, opts.ip_id);
  put16(h, opts.dont_fragment ? 0x4000 : 0);
  put8(h, ttl);
  put8(h, proto);
  put16(h, 0);
  putAddr(h, src);
  putAddr(h, dst);
  h.insert(h.end(), options.begin(), options.end());
  set16(h, 10, internetChecksum(h));
  return h;
}

// One extension header, padded as packet_builder.hpp describes, with `next` as its next header.
Bytes ipv6Ext(const Ipv6ExtHeader& e, uint8_t next) {
  Bytes h;
  put8(h, next);
  put8(h, 0);
  h.insert(h.end(), e.body.begin(), e.body.end());
  if (e.type == kIpv6Fragment) {
    h.resize(8, 0);
    h[1] = 0;
    return h;
  }
  if (e.type == kIpProtoAh) {
    if (h.size() < 16) h.resize(16, 0);
    while (h.size() % 8 != 0)
      h.push_back(0);
    h[1] = static_cast<uint8_t>(h.size() / 4 - 2);
    return h;
  }
  const size_t pad = (8 - h.size() % 8) % 8;
  if (e.type == kIpv6HopByHop || e.type == kIpv6DestOpts) {
    if (pad == 1) {
      put8(h, 0);  // Pad1
    } else if (pad >= 2) {
      put8(h, 1);  // PadN
      put8(h, static_cast<uint8_t>(pad - 2));
      h.resize(h.size() + pad - 2, 0);
    }
  } else {
    h.resize(h.size() + pad, 0);
  }
  if (h.size() / 8 - 1 > 255) STATEWALL_FAIL("IPv6 extension header longer than 2048 bytes");
  h[1] = static_cast<uint8_t>(h.size() / 8 - 1);
  return h;
}

Bytes ipv6Headers(const IpAddr& src, const IpAddr& dst, uint8_t proto, size_t l4_len,
                  const FrameOptions& opts, uint8_t hlim) {
  Bytes ext;
  for (size_t i = 0; i < opts.ipv6_ext.size(); ++i) {
    const uint8_t next = i + 1 < opts.ipv6_ext.size() ? opts.ipv6_ext[i + 1].type : proto;
    Bytes one = ipv6Ext(opts.ipv6_ext[i], next);
    ext.insert(ext.end(), one.begin(), one.end());
  }
  const size_t plen = ext.size() + l4_len;
  if (plen > 65535) STATEWALL_FAIL("IPv6 payload longer than 65535 bytes");
  Bytes h;
  put32(h, 0x60000000u | (uint32_t{opts.tos} << 20) | (opts.flow_label & 0xfffff));
  put16(h, static_cast<uint16_t>(plen));
  put8(h, opts.ipv6_ext.empty() ? proto : opts.ipv6_ext.front().type);
  put8(h, hlim);
  putAddr(h, src);
  putAddr(h, dst);
  h.insert(h.end(), ext.begin(), ext.end());
  return h;
}

Bytes ipPacket(const IpAddr& src, const IpAddr& dst, uint8_t proto, std::span<const uint8_t> l4,
               const FrameOptions& opts, uint8_t default_ttl) {
  checkFamilies(src, dst);
  const uint8_t ttl = ttlOr(opts, default_ttl);
  Bytes p = src.isV4() ? ipv4Header(src, dst, proto, l4.size(), opts, ttl)
                       : ipv6Headers(src, dst, proto, l4.size(), opts, ttl);
  p.insert(p.end(), l4.begin(), l4.end());
  return p;
}

Bytes frameFor(const IpAddr& src, const IpAddr& dst, uint8_t proto, const Bytes& l4,
               const FrameOptions& opts, uint8_t default_ttl = 64) {
  return addLinkHeader(ipPacket(src, dst, proto, l4, opts, default_ttl), etherTypeFor(src), opts);
}

Bytes tcpOptions(const TcpSpec& s) {
  Bytes o;
  if (s.mss) {
    put8(o, 2);
    put8(o, 4);
    put16(o, *s.mss);
  }
  if (s.sack_permitted && s.ts) {
    put8(o, 4);
    put8(o, 2);
  } else if (s.sack_permitted) {
    put8(o, 1);
    put8(o, 1);
    put8(o, 4);
    put8(o, 2);
  } else if (s.ts) {
    put8(o, 1);
    put8(o, 1);
  }
  if (s.ts) {
    put8(o, 8);
    put8(o, 10);
    put32(o, s.ts->first);
    put32(o, s.ts->second);
  }
  if (s.wscale) {
    put8(o, 1);
    put8(o, 3);
    put8(o, 3);
    put8(o, *s.wscale);
  }
  if (!s.sack.empty()) {
    if (s.sack.size() > 4) STATEWALL_FAIL("more than 4 SACK blocks");
    put8(o, 1);
    put8(o, 1);
    put8(o, 5);
    put8(o, static_cast<uint8_t>(2 + 8 * s.sack.size()));
    for (const auto& [left, right] : s.sack) {
      put32(o, left);
      put32(o, right);
    }
  }
  o.insert(o.end(), s.raw_options.begin(), s.raw_options.end());
  while (o.size() % 4 != 0)
    o.push_back(0);  // EOL padding
  if (o.size() > 40) STATEWALL_FAIL("TCP options longer than 40 bytes");
  return o;
}

}  // namespace

IpAddr ipAddr(std::string_view text) {
  auto a = IpAddr::parse(text);
  if (!a) STATEWALL_FAIL(("bad IP address: " + std::string(text)).c_str());
  return *a;
}

uint16_t internetChecksum(std::span<const uint8_t> data, uint32_t seed) {
  uint64_t sum = seed;
  size_t i = 0;
  for (; i + 1 < data.size(); i += 2)
    sum += (uint32_t{data[i]} << 8) | data[i + 1];
  if (i < data.size()) sum += uint32_t{data[i]} << 8;
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

uint16_t transportChecksum(const IpAddr& src, const IpAddr& dst, uint8_t proto,
                           std::span<const uint8_t> l4) {
  checkFamilies(src, dst);
  Bytes pseudo;
  putAddr(pseudo, src);
  putAddr(pseudo, dst);
  if (src.isV4()) {
    put8(pseudo, 0);
    put8(pseudo, proto);
    put16(pseudo, static_cast<uint16_t>(l4.size()));
  } else {
    put32(pseudo, static_cast<uint32_t>(l4.size()));
    put32(pseudo, proto);
  }
  // Sum the pseudo-header without complementing, then continue over the transport bytes.
  uint32_t seed = 0;
  for (size_t i = 0; i < pseudo.size(); i += 2)
    seed += (uint32_t{pseudo[i]} << 8) | pseudo[i + 1];
  return internetChecksum(l4, seed);
}

// The bytes the layer-2.5 headers take (shimTypeAndBody() writes them).
size_t shimBytes(const std::vector<Shim>& shims) {
  size_t n = 0;
  for (const Shim& h : shims) {
    switch (h.kind) {
      case Shim::Kind::kVlan:
      case Shim::Kind::kMpls:
        n += 4;
        break;
      case Shim::Kind::kPppoe:
        n += 8;
        break;
      case Shim::Kind::kPbb:
        n += 18;
        break;
      case Shim::Kind::kVnTag:
        n += 6;
        break;
      case Shim::Kind::kFabricPath:
        n += 16;
        break;
      case Shim::Kind::kCmd:
        n += 8;
        break;
      case Shim::Kind::kEthernetPw:
        n += (h.control_word ? 4 : 0) + 14;
        break;
    }
  }
  return n;
}

// The type field that introduces a shim (kNoType: an MPLS payload or PPP follows without one).
constexpr uint32_t kNoType = 0x10000;
uint32_t shimType(const Shim& h) {
  switch (h.kind) {
    case Shim::Kind::kVlan:
      return h.tpid;
    case Shim::Kind::kMpls:
      return kEtherTypeMpls;
    case Shim::Kind::kPppoe:
      return kEtherTypePppoeSession;
    case Shim::Kind::kPbb:
      return kEtherTypePbb;
    case Shim::Kind::kVnTag:
      return kEtherTypeVnTag;
    case Shim::Kind::kFabricPath:
      return kEtherTypeFabricPath;
    case Shim::Kind::kCmd:
      return kEtherTypeCmd;
    case Shim::Kind::kEthernetPw:
      return kNoType;
  }
  return kNoType;
}

// Writes the shims after the link header and VLAN tags, then the final type field for `ethertype`
// when one is due. Dies on a chain the parser could not read back (see Shim).
void putShims(Bytes& f, const FrameOptions& opts, uint16_t ethertype, size_t l3_len) {
  // The caller wrote the type field that introduces the first shim; after that, each header that
  // ends in a type field leaves one pending.
  bool type_pending = false;
  const std::vector<Shim>& sh = opts.shims;
  for (size_t i = 0; i < sh.size(); ++i) {
    const Shim& h = sh[i];
    const bool in_stack = i > 0 && sh[i - 1].kind == Shim::Kind::kMpls;
    if (h.kind == Shim::Kind::kEthernetPw) {
      if (!in_stack) STATEWALL_FAIL("an Ethernet pseudowire shim must follow an MPLS label");
      if (h.control_word) put32(f, 0);
      putMac(f, opts.dst_mac);
      putMac(f, opts.src_mac);
      type_pending = true;
      continue;
    }
    if (h.kind == Shim::Kind::kMpls && in_stack) {
      // Another label of the same stack: no type field in between.
    } else if (i > 0) {
      if (!type_pending)
        STATEWALL_FAIL("a shim after an MPLS stack must be an Ethernet pseudowire");
      put16(f, static_cast<uint16_t>(shimType(h)));
    }
    switch (h.kind) {
      case Shim::Kind::kVlan:
        put16(f, static_cast<uint16_t>(h.value & 0x0fff));
        type_pending = true;
        break;
      case Shim::Kind::kMpls: {
        const bool bottom = i + 1 == sh.size() || sh[i + 1].kind != Shim::Kind::kMpls;
        put32(f, (h.value & 0xfffff) << 12 | (bottom ? 0x100u : 0u) | 64u);
        type_pending = false;
        break;
      }
      case Shim::Kind::kPppoe:
        if (i + 1 != sh.size()) STATEWALL_FAIL("a PPPoE shim must be the last one");
        if (ethertype != kEtherTypeIpv4 && ethertype != kEtherTypeIpv6)
          STATEWALL_FAIL("PPPoE carries only IPv4 and IPv6 here");
        put8(f, 0x11);
        put8(f, 0);
        put16(f, static_cast<uint16_t>(h.value));
        put16(f, static_cast<uint16_t>(l3_len + 2));
        put16(f, ethertype == kEtherTypeIpv4 ? kPppIpv4 : kPppIpv6);
        type_pending = false;
        break;
      case Shim::Kind::kPbb:
        put32(f, h.value & 0x00ffffff);
        putMac(f, opts.dst_mac);
        putMac(f, opts.src_mac);
        type_pending = true;
        break;
      case Shim::Kind::kVnTag:
        put32(f, h.value);
        type_pending = true;
        break;
      case Shim::Kind::kFabricPath:
        put16(f, static_cast<uint16_t>((h.value & 0x3ff) << 6 | 0x3f));  // FTag, TTL 63
        putMac(f, opts.dst_mac);
        putMac(f, opts.src_mac);
        type_pending = true;
        break;
      case Shim::Kind::kCmd:
        put8(f, 1);   // version
        put8(f, 1);   // length
        put16(f, 1);  // option: SGT
        put16(f, static_cast<uint16_t>(h.value));
        type_pending = true;
        break;
      case Shim::Kind::kEthernetPw:
        break;
    }
  }
  if (type_pending) {
    put16(f, ethertype);
  } else if (!sh.empty() && sh.back().kind == Shim::Kind::kMpls && ethertype != kEtherTypeIpv4 &&
             ethertype != kEtherTypeIpv6) {
    STATEWALL_FAIL("an MPLS stack carries IPv4, IPv6 or an Ethernet pseudowire");
  }
}

size_t l3Offset(const FrameOptions& opts) {
  size_t base = 0;
  switch (opts.link) {
    case LinkType::kEthernet:
      base = 14;
      break;
    case LinkType::kRawIp:
      return 0;
    case LinkType::kLinuxSll:
      base = 16;
      break;
    case LinkType::kLinuxSll2:
      base = 20;
      break;
    case LinkType::kNull:
    case LinkType::kLoop:
    case LinkType::kPpp:
    case LinkType::kPppHdlc:
      return 4;
  }
  return base + 4 * opts.vlans.size() + shimBytes(opts.shims);
}

TunnelSpec tunnelSpecOf(const EncapHeader& h) {
  if (!encapIsTunnel(h.kind)) STATEWALL_FAIL("tunnelSpecOf: not a tunnel kind");
  TunnelSpec t;
  t.kind = h.kind;
  t.value = h.value;
  t.aux = h.aux;
  t.dport = h.dport;
  return t;
}

namespace {

using Kind = EncapHeader::Kind;

// The IANA port of a UDP tunnel: the default tunnel port table's (ParseOptions), or 0.
uint16_t udpTunnelPort(Kind k) {
  const ParseOptions defaults;
  for (uint32_t i = 0; i < defaults.tunnel_port_count; ++i)
    if (defaults.tunnel_ports[i].kind == k) return defaults.tunnel_ports[i].port;
  return 0;
}

bool carriesEthernet(const TunnelSpec& t) {
  return t.kind == Kind::kVxlan || (t.kind == Kind::kGeneve && !t.geneve_ip) ||
         t.kind == Kind::kErspan || (t.kind == Kind::kGre && t.ethernet);
}

// The GRE header (RFC 2784/2890) for protocol `proto`; `key` and `seq` as given.
Bytes greHeader(bool csum, bool key, uint32_t key_value, bool seq, uint16_t proto) {
  Bytes g;
  put16(g, static_cast<uint16_t>((csum ? 0x8000 : 0) | (key ? 0x2000 : 0) | (seq ? 0x1000 : 0)));
  put16(g, proto);
  if (csum) put32(g, 0);
  if (key) put32(g, key_value);
  if (seq) put32(g, 1);
  return g;
}

// The tunnel's own header followed by `inner` (a frame or IP packet of EtherType inner_type):
// the outer packet's transport bytes before any UDP header. Sets *proto to the outer protocol.
Bytes tunnelBody(const TunnelSpec& t, const Bytes& inner, uint16_t inner_type, uint8_t* proto) {
  Bytes b;
  *proto = kIpProtoUdp;
  switch (t.kind) {
    case Kind::kGre: {
      const bool key = t.aux != 0;
      b = greHeader(t.gre_checksum, key, t.value, t.gre_sequence,
                    t.ethernet ? kEtherTypeTeb : inner_type);
      b.insert(b.end(), inner.begin(), inner.end());
      if (t.gre_checksum) set16(b, 4, internetChecksum(b));
      // With a port (gre:port=4754), GRE in UDP (RFC 8086).
      *proto = t.dport != 0 ? kIpProtoUdp : kIpProtoGre;
      return b;
    }
    case Kind::kErspan: {
      const uint8_t type = t.aux == 0 ? 2 : t.aux;
      if (type == 1) {
        b = greHeader(false, false, 0, false, kEtherTypeErspan2);
      } else if (type == 2) {
        b = greHeader(false, false, 0, true, kEtherTypeErspan2);
        put16(b, 0x1000);  // version 1, VLAN 0
        put16(b, static_cast<uint16_t>(t.value & 0x3ff));
        put32(b, 0);  // reserved, index
      } else if (type == 3) {
        b = greHeader(false, false, 0, true, kEtherTypeErspan3);
        put16(b, 0x2000);  // version 2, VLAN 0
        put16(b, static_cast<uint16_t>(t.value & 0x3ff));
        put32(b, 0);  // timestamp
        put16(b, 0);  // security group tag
        put16(b, 0);  // P, frame type 0 (Ethernet), hardware id, D, granularity, O
      } else {
        STATEWALL_FAIL("ERSPAN type must be 1, 2 or 3");
      }
      b.insert(b.end(), inner.begin(), inner.end());
      *proto = kIpProtoGre;
      return b;
    }
    case Kind::kVxlan:
      put32(b, 0x08000000);  // I flag
      put32(b, (t.value & 0xffffff) << 8);
      break;
    case Kind::kGeneve: {
      Bytes opt = t.geneve_options;
      while (opt.size() % 4 != 0)
        opt.push_back(0);
      if (opt.size() > 63 * 4) STATEWALL_FAIL("GENEVE options longer than 252 bytes");
      put8(b, static_cast<uint8_t>(opt.size() / 4));
      put8(b, 0);
      put16(b, t.geneve_ip ? inner_type : kEtherTypeTeb);
      put32(b, (t.value & 0xffffff) << 8);
      b.insert(b.end(), opt.begin(), opt.end());
      break;
    }
    case Kind::kGtpU: {
      if (inner_type != kEtherTypeIpv4 && inner_type != kEtherTypeIpv6)
        STATEWALL_FAIL("GTP-U carries IPv4 or IPv6");
      const bool ext = !t.gtp_extensions.empty();
      Bytes opt;
      if (t.gtp_sequence || ext) {
        put16(opt, 1);              // sequence number
        put8(opt, 0);               // N-PDU number
        put8(opt, ext ? 0x85 : 0);  // next extension: PDU session container
        for (size_t i = 0; i < t.gtp_extensions.size(); ++i) {
          Bytes e = t.gtp_extensions[i];
          while ((e.size() + 2) % 4 != 0)
            e.push_back(0);
          if ((e.size() + 2) / 4 > 255) STATEWALL_FAIL("GTP-U extension header too long");
          put8(opt, static_cast<uint8_t>((e.size() + 2) / 4));
          opt.insert(opt.end(), e.begin(), e.end());
          put8(opt, i + 1 < t.gtp_extensions.size() ? 0x85 : 0);
        }
      }
      put8(b, static_cast<uint8_t>(0x30 | (ext ? 0x04 : 0) | (t.gtp_sequence ? 0x02 : 0)));
      put8(b, 0xff);  // G-PDU
      if (opt.size() + inner.size() > 65535)
        STATEWALL_FAIL("GTP-U payload longer than 65535 bytes");
      put16(b, static_cast<uint16_t>(opt.size() + inner.size()));
      put32(b, t.value);
      b.insert(b.end(), opt.begin(), opt.end());
      break;
    }
    case Kind::kTeredo:
      if (inner_type != kEtherTypeIpv6) STATEWALL_FAIL("Teredo carries IPv6");
      if (t.teredo_auth) {
        put16(b, 1);
        put8(b, 0);            // client id length
        put8(b, 0);            // authentication value length
        put32(b, 0x01020304);  // nonce
        put32(b, 0x05060708);
        put8(b, 0);  // confirmation
      }
      if (t.teredo_origin) {
        put16(b, 0);
        put16(b, static_cast<uint16_t>(~40000u));  // obfuscated port and address
        put32(b, ~0xc6336414u);
      }
      break;
    case Kind::kAyiya:
      if (inner_type != kEtherTypeIpv4 && inner_type != kEtherTypeIpv6)
        STATEWALL_FAIL("AYIYA carries IPv4 or IPv6");
      put8(b, 0x41);  // identity 2^4 = 16 bytes, type 1 (an IPv6 address)
      put8(b, 0x52);  // signature 5 * 4 = 20 bytes (SHA-1), hash method 2
      put8(b, 0x21);  // authentication method 2, opcode 1 (forward)
      put8(b, inner_type == kEtherTypeIpv4 ? kIpProtoIpIp : kIpProtoIpv6);
      put32(b, 1700000000);  // epoch time
      b.resize(b.size() + 16 + 20, 0);
      break;
    case Kind::kIpIp:
      if (inner_type != kEtherTypeIpv4 && inner_type != kEtherTypeIpv6)
        STATEWALL_FAIL("IP-in-IP carries IPv4 or IPv6");
      *proto = inner_type == kEtherTypeIpv4 ? kIpProtoIpIp : kIpProtoIpv6;
      return inner;
    case Kind::kAruba: {
      const uint16_t gre_type = t.value == 0 ? uint16_t{0x8200} : static_cast<uint16_t>(t.value);
      if (!isArubaGreType(gre_type)) STATEWALL_FAIL("not an Aruba GRE protocol type");
      b = greHeader(false, false, 0, false, gre_type);
      // Frame control: data (QoS data), From DS (To DS too with four addresses); duration.
      put8(b, t.wlan_qos ? 0x88 : 0x08);
      put8(b, t.wlan_four_address ? 0x03 : 0x02);
      put16(b, 0);
      for (int i = 0; i < (t.wlan_four_address ? 4 : 3); ++i) {
        if (i == 3) put16(b, 0);  // the sequence control comes before the fourth address
        putMac(b, MacAddr{0x02, 0, 0, 0, 0x11, static_cast<uint8_t>(i)});
      }
      if (!t.wlan_four_address) put16(b, 0);  // sequence control
      if (t.wlan_qos) put16(b, 0);            // QoS control: TID 0, no A-MSDU
      put8(b, 0xaa);                          // LLC/SNAP, RFC 1042
      put8(b, 0xaa);
      put8(b, 0x03);
      put8(b, 0);
      put16(b, 0);
      put16(b, inner_type);
      b.insert(b.end(), inner.begin(), inner.end());
      *proto = kIpProtoGre;
      return b;
    }
    default:
      STATEWALL_FAIL("not a tunnel kind");
  }
  b.insert(b.end(), inner.begin(), inner.end());
  return b;
}

// Wraps `packet` (EtherType *type) in opts.tunnels, innermost first; returns the outermost IP
// packet and sets *type to its EtherType.
Bytes wrapTunnels(Bytes packet, uint16_t* type, const FrameOptions& opts) {
  for (size_t i = opts.tunnels.size(); i-- > 0;) {
    const TunnelSpec& t = opts.tunnels[i];
    checkFamilies(t.outer_src, t.outer_dst);
    if (carriesEthernet(t)) {
      FrameOptions eth{
          .link = LinkType::kEthernet, .src_mac = opts.src_mac, .dst_mac = opts.dst_mac};
      eth.shims = t.inner_shims;
      packet = addLinkHeader(packet, *type, eth);
    } else if (!t.inner_shims.empty()) {
      STATEWALL_FAIL("layer-2.5 headers inside a tunnel need one that carries Ethernet");
    }
    uint8_t proto;
    Bytes l4 = tunnelBody(t, packet, *type, &proto);
    if (proto == kIpProtoUdp) {
      const uint16_t port = udpTunnelPort(t.kind);
      Bytes u;
      put16(u, t.sport != 0                                        ? t.sport
               : t.kind == Kind::kVxlan || t.kind == Kind::kGeneve ? uint16_t{49152}
                                                                   : port);
      put16(u, t.dport != 0 ? t.dport : port);
      if (l4.size() + 8 > 65535) STATEWALL_FAIL("tunnel UDP datagram longer than 65535 bytes");
      put16(u, static_cast<uint16_t>(l4.size() + 8));
      put16(u, 0);
      u.insert(u.end(), l4.begin(), l4.end());
      const uint16_t sum = transportChecksum(t.outer_src, t.outer_dst, kIpProtoUdp, u);
      set16(u, 6, sum == 0 ? 0xffff : sum);
      l4 = std::move(u);
    }
    packet = ipPacket(t.outer_src, t.outer_dst, proto, l4, FrameOptions{}, 64);
    *type = etherTypeFor(t.outer_src);
  }
  return packet;
}

}  // namespace

Bytes addLinkHeader(const Bytes& inner_packet, uint16_t inner_type, const FrameOptions& opts) {
  uint16_t ethertype = inner_type;
  const Bytes wrapped =
      opts.tunnels.empty() ? Bytes{} : wrapTunnels(inner_packet, &ethertype, opts);
  const Bytes& l3_packet = opts.tunnels.empty() ? inner_packet : wrapped;
  Bytes f;
  // With VLAN tags the link header's type field names the outer tag; each tag then names the next,
  // the last one the first shim (or the IP packet).
  if (!opts.shims.empty() && shimType(opts.shims.front()) == kNoType)
    STATEWALL_FAIL("the first shim must be one with a type field (not an Ethernet pseudowire)");
  const uint16_t after_vlans =
      opts.shims.empty() ? ethertype : static_cast<uint16_t>(shimType(opts.shims.front()));
  const uint16_t first_type = opts.vlans.empty() ? after_vlans : opts.vlans.front().tpid;
  switch (opts.link) {
    case LinkType::kEthernet:
      putMac(f, opts.dst_mac);
      putMac(f, opts.src_mac);
      put16(f, first_type);
      break;
    case LinkType::kRawIp:
      if (!opts.vlans.empty() || !opts.shims.empty())
        STATEWALL_FAIL("VLAN tags or shims on a raw IP link");
      if (ethertype != kEtherTypeIpv4 && ethertype != kEtherTypeIpv6) {
        STATEWALL_FAIL("a raw IP link carries only IPv4 and IPv6");
      }
      break;
    case LinkType::kLinuxSll:
      put16(f, opts.sll_packet_type);
      put16(f, opts.sll_hatype);
      put16(f, 6);
      putMac(f, opts.src_mac);
      put16(f, 0);
      put16(f, first_type);
      break;
    case LinkType::kLinuxSll2:
      put16(f, first_type);
      put16(f, 0);
      put32(f, opts.sll2_ifindex);
      put16(f, opts.sll_hatype);
      put8(f, static_cast<uint8_t>(opts.sll_packet_type));
      put8(f, 6);
      putMac(f, opts.src_mac);
      put16(f, 0);
      break;
    case LinkType::kNull:
    case LinkType::kLoop: {
      if (!opts.vlans.empty() || !opts.shims.empty())
        STATEWALL_FAIL("VLAN tags or shims on a BSD loopback link");
      if (ethertype != kEtherTypeIpv4 && ethertype != kEtherTypeIpv6) {
        STATEWALL_FAIL("a BSD loopback link carries only IPv4 and IPv6 here");
      }
      // AF_INET 2, AF_INET6 30 (Darwin); NULL in a little-endian host's order, LOOP in network
      // order.
      const uint32_t af = ethertype == kEtherTypeIpv4 ? 2 : 30;
      put32(f, opts.link == LinkType::kLoop ? af : __builtin_bswap32(af));
      break;
    }
    case LinkType::kPpp:
    case LinkType::kPppHdlc:
      if (!opts.vlans.empty() || !opts.shims.empty())
        STATEWALL_FAIL("VLAN tags or shims on a PPP link");
      if (ethertype != kEtherTypeIpv4 && ethertype != kEtherTypeIpv6) {
        STATEWALL_FAIL("a PPP link carries only IPv4 and IPv6 here");
      }
      // HDLC-like framing (address 0xff, control 0x03), then the 2-byte PPP protocol: the form
      // both DLT_PPP and DLT_PPP_SERIAL captures usually hold.
      put8(f, 0xff);
      put8(f, 0x03);
      put16(f, ethertype == kEtherTypeIpv4 ? kPppIpv4 : kPppIpv6);
      break;
  }
  for (size_t i = 0; i < opts.vlans.size(); ++i) {
    const VlanTag& t = opts.vlans[i];
    put16(f, static_cast<uint16_t>((t.pcp & 7) << 13 | (t.vid & 0x0fff)));
    put16(f, i + 1 < opts.vlans.size() ? opts.vlans[i + 1].tpid : after_vlans);
  }
  putShims(f, opts, ethertype, l3_packet.size());
  f.insert(f.end(), l3_packet.begin(), l3_packet.end());
  f.resize(f.size() + opts.trailer_len, 0);
  return f;
}

Bytes buildIpPacket(const IpAddr& src, const IpAddr& dst, uint8_t proto,
                    std::span<const uint8_t> l4, const FrameOptions& opts) {
  return ipPacket(src, dst, proto, l4, opts, 64);
}

Bytes buildTcp(const TcpSpec& s, const FrameOptions& opts) {
  checkFamilies(s.src, s.dst);
  const Bytes options = tcpOptions(s);
  Bytes t;
  put16(t, s.sport);
  put16(t, s.dport);
  put32(t, s.seq);
  put32(t, s.ack);
  put8(t, static_cast<uint8_t>(((20 + options.size()) / 4) << 4));
  put8(t, s.flags);
  put16(t, s.window);
  put16(t, 0);
  put16(t, s.urgent);
  t.insert(t.end(), options.begin(), options.end());
  putPayload(t, s.payload, s.payload_len);
  set16(t, 16, transportChecksum(s.src, s.dst, kIpProtoTcp, t));
  return frameFor(s.src, s.dst, kIpProtoTcp, t, opts);
}

Bytes buildUdp(const UdpSpec& s, const FrameOptions& opts) {
  checkFamilies(s.src, s.dst);
  Bytes u;
  put16(u, s.sport);
  put16(u, s.dport);
  put16(u, 0);
  put16(u, 0);
  putPayload(u, s.payload, s.payload_len);
  if (u.size() > 65535) STATEWALL_FAIL("UDP datagram longer than 65535 bytes");
  set16(u, 4, static_cast<uint16_t>(u.size()));
  const uint16_t sum = transportChecksum(s.src, s.dst, kIpProtoUdp, u);
  set16(u, 6, sum == 0 ? 0xffff : sum);  // 0 means "no checksum" in UDP
  return frameFor(s.src, s.dst, kIpProtoUdp, u, opts);
}

namespace {

// An ICMP or ICMPv6 message: type, code, checksum, then `body`.
Bytes icmpMessage(const IpAddr& src, const IpAddr& dst, uint8_t type, uint8_t code,
                  const Bytes& body) {
  Bytes m;
  put8(m, type);
  put8(m, code);
  put16(m, 0);
  m.insert(m.end(), body.begin(), body.end());
  const uint16_t sum =
      src.isV4() ? internetChecksum(m) : transportChecksum(src, dst, kIpProtoIcmpv6, m);
  set16(m, 2, sum);
  return m;
}

uint8_t icmpProto(const IpAddr& a) {
  return a.isV4() ? kIpProtoIcmp : kIpProtoIcmpv6;
}

}  // namespace

Bytes buildIcmpEcho(const IcmpEchoSpec& s, const FrameOptions& opts) {
  checkFamilies(s.src, s.dst);
  Bytes body;
  put16(body, s.id);
  put16(body, s.seq);
  putPayload(body, {}, s.payload_len);
  const uint8_t type = s.src.isV4() ? (s.reply ? kIcmpEchoReply : kIcmpEchoRequest)
                                    : (s.reply ? kIcmpv6EchoReply : kIcmpv6EchoRequest);
  return frameFor(s.src, s.dst, icmpProto(s.src), icmpMessage(s.src, s.dst, type, 0, body), opts);
}

Bytes buildIcmpError(const IcmpErrorSpec& s, const Bytes& offending_ip_packet,
                     const FrameOptions& opts) {
  checkFamilies(s.src, s.dst);
  if (!offending_ip_packet.empty() && (offending_ip_packet[0] >> 4) != 4 &&
      (offending_ip_packet[0] >> 4) != 6) {
    STATEWALL_FAIL("the offending packet must start at its IP header (build it with rawIp())");
  }
  Bytes body;
  put32(body, s.rest);
  size_t quote = offending_ip_packet.size();
  if (s.max_quote != 0) quote = std::min(quote, s.max_quote);
  body.insert(body.end(), offending_ip_packet.begin(),
              offending_ip_packet.begin() + static_cast<std::ptrdiff_t>(quote));
  return frameFor(s.src, s.dst, icmpProto(s.src), icmpMessage(s.src, s.dst, s.type, s.code, body),
                  opts);
}

Bytes buildArp(const ArpSpec& s, const FrameOptions& opts) {
  if (!s.sender_ip.isV4() || !s.target_ip.isV4()) STATEWALL_FAIL("ARP carries IPv4 addresses");
  if (opts.tunnels.empty() && !linkHasEtherType(opts.link))
    STATEWALL_FAIL("ARP on a raw IP, BSD loopback or PPP link");
  Bytes a;
  put16(a, 1);  // Ethernet
  put16(a, kEtherTypeIpv4);
  put8(a, 6);
  put8(a, 4);
  put16(a, s.op);
  putMac(a, s.sender_mac);
  putAddr(a, s.sender_ip);
  putMac(a, s.target_mac);
  putAddr(a, s.target_ip);
  return addLinkHeader(a, kEtherTypeArp, opts);
}

Bytes buildNd(const NdSpec& s, const FrameOptions& opts) {
  checkFamilies(s.src, s.dst);
  if (s.src.isV4()) STATEWALL_FAIL("neighbour discovery is IPv6");
  Bytes body;
  uint8_t lla_option = 1;  // source link-layer address
  switch (s.type) {
    case kIcmpv6RouterSolicit:
      put32(body, 0);
      break;
    case kIcmpv6RouterAdvert:
      put8(body, 64);     // current hop limit
      put8(body, 0);      // flags
      put16(body, 1800);  // router lifetime
      put32(body, 0);     // reachable time
      put32(body, 0);     // retransmission timer
      break;
    case kIcmpv6NeighborSolicit:
      put32(body, 0);
      putAddr(body, s.target);
      break;
    case kIcmpv6NeighborAdvert:
      put32(body, 0x60000000);  // solicited, override
      putAddr(body, s.target);
      lla_option = 2;  // target link-layer address
      break;
    case kIcmpv6Redirect:
      put32(body, 0);
      putAddr(body, s.target);
      putAddr(body, s.dst);
      lla_option = 2;
      break;
    default:
      STATEWALL_FAIL("ND type must be 133..137");
  }
  if (s.link_addr) {
    put8(body, lla_option);
    put8(body, 1);  // length in units of 8 bytes
    putMac(body, *s.link_addr);
  }
  return frameFor(s.src, s.dst, kIpProtoIcmpv6, icmpMessage(s.src, s.dst, s.type, 0, body), opts,
                  255);
}

Bytes buildOtherProto(const OtherProtoSpec& s, const FrameOptions& opts) {
  Bytes p;
  putPayload(p, s.payload, s.payload_len);
  return frameFor(s.src, s.dst, s.proto, p, opts);
}

Bytes buildEthertype(uint16_t ethertype, const Bytes& payload, const FrameOptions& opts) {
  if (opts.tunnels.empty() && !linkHasEtherType(opts.link))
    STATEWALL_FAIL("a raw IP, BSD loopback or PPP link has no EtherType");
  return addLinkHeader(payload, ethertype, opts);
}

namespace {

std::vector<Bytes> fragmentV4(const Bytes& link, const Bytes& ip, size_t mtu,
                              const FrameOptions& opts) {
  const size_t ihl = (ip[0] & 15) * 4u;
  const size_t total = get16(ip, 2);
  if (ihl < 20 || total < ihl || total > ip.size()) STATEWALL_FAIL("fragment: bad IPv4 header");
  // Later fragments carry only the options whose copy bit is set (RFC 791).
  Bytes copied;
  for (size_t i = 20; i < ihl;) {
    const uint8_t kind = ip[i];
    if (kind == 0) break;
    if (kind == 1) {
      ++i;
      continue;
    }
    const size_t len = i + 1 < ihl ? ip[i + 1] : 0;
    if (len < 2 || i + len > ihl) STATEWALL_FAIL("fragment: bad IPv4 option");
    if (kind & 0x80) copied.insert(copied.end(), ip.begin() + i, ip.begin() + i + len);
    i += len;
  }
  while (copied.size() % 4 != 0)
    copied.push_back(0);
  const uint16_t orig_frag = get16(ip, 6);
  const size_t base_units = orig_frag & 0x1fff;
  const bool orig_more = (orig_frag & 0x2000) != 0;
  const size_t data_len = total - ihl;

  std::vector<Bytes> out;
  size_t done = 0;
  while (done < data_len) {
    const bool first = done == 0;
    const size_t hlen = first ? ihl : 20 + copied.size();
    if (mtu < hlen + 8) STATEWALL_FAIL("fragment: MTU too small for the IPv4 header plus 8 bytes");
    size_t chunk = std::min(data_len - done, (mtu - hlen) / 8 * 8);
    const bool last = done + chunk == data_len;
    Bytes h(ip.begin(), ip.begin() + 20);
    if (first) {
      h.assign(ip.begin(), ip.begin() + static_cast<std::ptrdiff_t>(ihl));
    } else {
      h.insert(h.end(), copied.begin(), copied.end());
    }
    h[0] = static_cast<uint8_t>(0x40 | (hlen / 4));
    set16(h, 2, static_cast<uint16_t>(hlen + chunk));
    const uint16_t more = (!last || orig_more) ? 0x2000 : 0;
    set16(h, 6, static_cast<uint16_t>((orig_frag & 0x4000) | more | (base_units + done / 8)));
    set16(h, 10, 0);
    set16(h, 10, internetChecksum(h));
    Bytes f = link;
    f.insert(f.end(), h.begin(), h.end());
    f.insert(f.end(), ip.begin() + static_cast<std::ptrdiff_t>(ihl + done),
             ip.begin() + static_cast<std::ptrdiff_t>(ihl + done + chunk));
    f.resize(f.size() + opts.trailer_len, 0);
    out.push_back(std::move(f));
    done += chunk;
  }
  return out;
}

std::vector<Bytes> fragmentV6(const Bytes& link, const Bytes& ip, size_t mtu,
                              const FrameOptions& opts, uint32_t id) {
  if (ip.size() < 40) STATEWALL_FAIL("fragment: bad IPv6 header");
  const size_t end = 40 + get16(ip, 4);
  if (end > ip.size()) STATEWALL_FAIL("fragment: IPv6 payload length exceeds the packet");
  // The unfragmentable part ends after the last hop-by-hop or routing header (RFC 8200 4.5).
  size_t unfrag_end = 40;
  size_t nh_at = 6;  // where the next-header byte naming the first fragmentable header sits
  size_t pos = 40;
  uint8_t nh = ip[6];
  while ((nh == kIpv6HopByHop || nh == kIpv6Routing || nh == kIpv6DestOpts) && pos + 8 <= end) {
    const size_t hlen = (size_t{ip[pos + 1]} + 1) * 8;
    if (pos + hlen > end) break;
    if (nh != kIpv6DestOpts) {
      unfrag_end = pos + hlen;
      nh_at = pos;
    }
    nh = ip[pos];
    pos += hlen;
  }
  const uint8_t frag_next = ip[nh_at];
  const size_t data_len = end - unfrag_end;
  if (mtu < unfrag_end + 16)
    STATEWALL_FAIL("fragment: MTU too small for the IPv6 headers plus 8 bytes");
  const size_t max_chunk = (mtu - unfrag_end - 8) / 8 * 8;

  std::vector<Bytes> out;
  size_t done = 0;
  while (done < data_len) {
    const size_t chunk = std::min(data_len - done, max_chunk);
    const bool last = done + chunk == data_len;
    Bytes p(ip.begin(), ip.begin() + static_cast<std::ptrdiff_t>(unfrag_end));
    p[nh_at] = kIpv6Fragment;
    set16(p, 4, static_cast<uint16_t>(unfrag_end - 40 + 8 + chunk));
    put8(p, frag_next);
    put8(p, 0);
    put16(p, static_cast<uint16_t>(done | (last ? 0 : 1)));  // offset in bytes = units << 3
    put32(p, id);
    p.insert(p.end(), ip.begin() + static_cast<std::ptrdiff_t>(unfrag_end + done),
             ip.begin() + static_cast<std::ptrdiff_t>(unfrag_end + done + chunk));
    Bytes f = link;
    f.insert(f.end(), p.begin(), p.end());
    f.resize(f.size() + opts.trailer_len, 0);
    out.push_back(std::move(f));
    done += chunk;
  }
  return out;
}

}  // namespace

std::vector<Bytes> fragment(const Bytes& frame, size_t mtu, const FrameOptions& opts,
                            uint32_t ipv6_frag_id) {
  const size_t l3 = l3Offset(opts);
  if (frame.size() <= l3) STATEWALL_FAIL("fragment: frame shorter than its link header");
  for (const Shim& h : opts.shims)
    if (h.kind == Shim::Kind::kPppoe)
      STATEWALL_FAIL("fragment: a PPPoE shim's length would be wrong");
  const Bytes link(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(l3));
  Bytes ip(frame.begin() + static_cast<std::ptrdiff_t>(l3), frame.end());
  const unsigned version = frame[l3] >> 4;
  size_t ip_len = 0;
  if (version == 4 && ip.size() >= 20) {
    ip_len = get16(ip, 2);
  } else if (version == 6 && ip.size() >= 40) {
    ip_len = 40 + size_t{get16(ip, 4)};
  } else {
    STATEWALL_FAIL("fragment: not an IPv4 or IPv6 packet");
  }
  if (ip_len > ip.size()) STATEWALL_FAIL("fragment: IP length exceeds the frame");
  if (ip_len <= mtu) return {frame};
  ip.resize(ip_len);  // drop any trailer; each fragment gets opts.trailer_len again
  return version == 4 ? fragmentV4(link, ip, mtu, opts)
                      : fragmentV6(link, ip, mtu, opts, ipv6_frag_id);
}

}  // namespace statewall::dataplane
