// libFuzzer target for parsePacket(). The first input byte picks the link type (its low 7 bits
// modulo kLinkTypeCount, in LinkType order) and decapsulation (bit 7: ParseOptions::decap, so
// the tunnel layers are reached); the rest is the frame. Besides ASan/UBSan findings it traps on
// results that break the parser's contract.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "statewall/dataplane/packet.hpp"

using statewall::dataplane::L3;
using statewall::dataplane::Layer;
using statewall::dataplane::LinkType;
using statewall::dataplane::ParsedPacket;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 65536 + 64) return 0;
  const auto link = static_cast<LinkType>((data[0] & 0x7f) % statewall::dataplane::kLinkTypeCount);
  statewall::dataplane::ParseOptions opts;
  opts.decap = (data[0] & 0x80) != 0;
  const uint32_t caplen = static_cast<uint32_t>(size - 1);
  ParsedPacket p;
  const bool ok = statewall::dataplane::parsePacket(data + 1, caplen, link, opts, &p);
  if (ok != (p.malformed == Layer::kNone)) __builtin_trap();
  if (ok != (p.malformed_why == nullptr)) __builtin_trap();
  if (p.tunnel_depth > opts.max_tunnel_depth || (!opts.decap && p.tunnel_depth != 0))
    __builtin_trap();
  // The general path gives the same verdict.
  ParsedPacket g;
  if (statewall::dataplane::parsePacketGeneral(data + 1, caplen, link, opts, &g) != ok ||
      g.malformed != p.malformed || g.tunnel_depth != p.tunnel_depth) {
    __builtin_trap();
  }
  // encapsulation() walks the headers as the parser does: the same VLAN and tunnel counts.
  const auto encap = statewall::dataplane::encapsulation(data + 1, caplen, link, opts);
  size_t vlans = 0;
  size_t tunnels = 0;
  for (const auto& h : encap) {
    vlans += h.kind == statewall::dataplane::EncapHeader::Kind::kVlan ? 1 : 0;
    tunnels += statewall::dataplane::encapIsTunnel(h.kind) ? 1 : 0;
  }
  if (ok && encap.size() < 32 && std::min<size_t>(vlans, 255) != p.vlan_count) __builtin_trap();
  if (ok && encap.size() < 32 && tunnels != p.tunnel_depth) __builtin_trap();
  if (!ok) return 0;
  if ((p.l3 == L3::kIpv4 || p.l3 == L3::kIpv6) && p.l3_offset + p.ip_len > caplen) __builtin_trap();
  if (p.l4_offset > caplen) __builtin_trap();
  // A first UDP fragment reports the whole datagram's payload; anything else fits its packet.
  if (!p.is_fragment && p.l4_payload_len > p.ip_len) __builtin_trap();
  if (p.tcp_opt.wscale > 14) __builtin_trap();
  if (p.icmp_is_error && !p.quoted.present) __builtin_trap();
  if (p.is_fragment && !p.first_fragment && (p.sport != 0 || p.dport != 0)) __builtin_trap();
  return 0;
}
