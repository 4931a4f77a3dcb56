#include "statewall/dpdk/gwlb.hpp"

#include <rte_mbuf.h>

#include "gwlb_burst.hpp"
#include "statewall/dataplane/byte_order.hpp"
#include "statewall/dpdk/exception.hpp"

namespace statewall::dpdk {

using dataplane::be16;
using dataplane::be32;
using dataplane::EncapHeader;
using dataplane::L3;
using dataplane::Layer;
using dataplane::TunnelFound;

dataplane::ParseOptions gwlbParseOptions() {
  dataplane::ParseOptions p;
  p.decap = true;
  p.max_tunnel_depth = 1;
  p.tunnel_port_count = 1;
  p.tunnel_ports[0] = {kGenevePort, EncapHeader::Kind::kGeneve};
  return p;
}

namespace {

// The outer headers of the frames gwlbClassifyFast() takes: Ethernet, then IPv4 without options.
constexpr uint16_t kFastL3 = 14;
constexpr uint32_t kFastHeaders = kFastL3 + 20;

// What gwlbClassifyFast() needs of the address and the parse options, worked out once per burst.
struct FastKey {
  uint32_t dst = 0;  // the appliance's IPv4 address, host order
  bool on = false;   // false: an IPv6 address, or 6081 is not GENEVE in the options: never fast
};

FastKey fastKey(const rules::IpAddr& address, const dataplane::ParseOptions& parse) {
  // With both ports 6081, udpTunnel() gives the tunnel of destination port 6081, which the
  // general path finds whatever the source port; false when no entry has that port.
  EncapHeader::Kind kind;
  const bool geneve =
      parse.udpTunnel(kGenevePort, kGenevePort, &kind) && kind == EncapHeader::Kind::kGeneve;
  return {address.v4(), geneve && rules::IpAddr::v4(address.v4()) == address};
}

// The frame nearly every packet from the load balancer is: Ethernet, IPv4 without options and
// not fragmented, UDP to the appliance's port 6081, GENEVE version 0 carrying IPv4 or IPv6, its
// options skipped by their length. It makes the checks parsePacket() and findInnerPacket() make
// on that frame (parseIpv4(), parseUdp(), parseUdpTunnel()) and gives what gwlbClassifyGeneral()
// gives; any other frame (VLAN tags, an IPv6 outer header, a fragment, a length out of bounds, an
// inner Ethernet frame) returns false without writing, and the general path judges it. `key.on`
// must hold. tests/dpdk/gwlb_test.cpp compares the two paths.
inline bool gwlbClassifyFast(const uint8_t* data, uint32_t len, const FastKey& key,
                             dataplane::PacketRef* inner, GwlbOuter* outer) noexcept {
  constexpr uint32_t kUdp = kFastHeaders, kGeneve = kUdp + 8;
  if (len < kGeneve + 8) return false;
  const uint8_t* ip = data + kFastL3;
  if (be16(data + 12) != dataplane::kEtherTypeIpv4 || ip[0] != 0x45 ||
      ip[9] != dataplane::kIpProtoUdp || (be16(ip + 6) & 0x3fff) != 0 || be32(ip + 16) != key.dst) {
    return false;
  }
  // The UDP header and GENEVE's fixed header within the IP packet, the IP packet within the frame.
  const uint32_t total = be16(ip + 2);
  if (total > len - kFastL3 || total < 20 + 8 + 8) return false;
  const uint8_t* udp = data + kUdp;
  const uint32_t ulen = be16(udp + 4);
  if (be16(udp + 2) != kGenevePort || ulen < 8 + 8 || ulen > total - 20) return false;
  const uint8_t* g = data + kGeneve;
  const uint32_t hlen = 8 + (g[0] & 0x3fu) * 4;
  const uint16_t proto = be16(g + 2);
  if ((g[0] >> 6) != 0 || hlen > ulen - 8 ||
      (proto != dataplane::kEtherTypeIpv4 && proto != dataplane::kEtherTypeIpv6)) {
    return false;
  }
  *inner = {g + hlen, ulen - 8 - hlen, dataplane::LinkType::kRawIp};
  *outer = {kFastL3, false};
  return true;
}

}  // namespace

GwlbFrame gwlbClassify(const uint8_t* data, uint32_t len, const rules::IpAddr& address,
                       const dataplane::ParseOptions& parse, dataplane::PacketRef* inner,
                       GwlbOuter* outer, const char** why) noexcept {
  const FastKey key = fastKey(address, parse);
  if (key.on && gwlbClassifyFast(data, len, key, inner, outer)) return GwlbFrame::kGeneve;
  return gwlbClassifyGeneral(data, len, address, parse, inner, outer, why);
}

// Out of line: inlined into gwlbDecapBurst(), its locals made the fast path's loop spill registers.
[[gnu::noinline]] GwlbFrame gwlbClassifyGeneral(const uint8_t* data, uint32_t len,
                                                const rules::IpAddr& address,
                                                const dataplane::ParseOptions& parse,
                                                dataplane::PacketRef* inner, GwlbOuter* outer,
                                                const char** why) noexcept {
  // The outer packet, as a firewall on the path would see it (no decapsulation).
  dataplane::ParsedPacket p;
  dataplane::parsePacket(data, len, dataplane::LinkType::kEthernet, &p);
  if ((p.l3 != L3::kIpv4 && p.l3 != L3::kIpv6) || p.dst != address) return GwlbFrame::kNotGeneve;
  if (p.proto != dataplane::kIpProtoUdp) return GwlbFrame::kNotGeneve;
  if (p.malformed != Layer::kNone) {
    // UDP to us whose IP or UDP header is broken: its port cannot be trusted, but the kernel
    // has no use for it either.
    *why = p.malformed_why;
    return GwlbFrame::kMalformed;
  }
  if (p.dport != kGenevePort) return GwlbFrame::kNotGeneve;
  if (p.is_fragment) {
    *why = "fragmented outer packet (the load balancer does not fragment GENEVE)";
    return GwlbFrame::kMalformed;
  }
  dataplane::InnerPacket in;
  switch (dataplane::findInnerPacket(data, p, parse, &in)) {
    case TunnelFound::kMalformed:
      *why = in.why;
      return GwlbFrame::kMalformed;
    case TunnelFound::kNone:
      *why = "GENEVE protocol type is neither IPv4, IPv6 nor Ethernet";
      return GwlbFrame::kMalformed;
    case TunnelFound::kTunnel:
      break;
  }
  if (in.type != dataplane::kEtherTypeIpv4 && in.type != dataplane::kEtherTypeIpv6) {
    *why = "the packet inside GENEVE is neither IPv4 nor IPv6";
    return GwlbFrame::kMalformed;
  }
  *inner = {data + in.off, in.end - in.off, dataplane::LinkType::kRawIp};
  *outer = {p.l3_offset, p.l3 == L3::kIpv6};
  return GwlbFrame::kGeneve;
}

unsigned gwlbDecapBurst(const rules::IpAddr& address, const dataplane::ParseOptions& parse,
                        GwlbCounters& c, dataplane::PacketRef* refs, rte_mbuf** pkts,
                        GwlbOuter* outer, unsigned k, rte_mbuf** to_kernel,
                        unsigned* nkernel) noexcept {
  unsigned kept = 0;
  uint64_t malformed = 0, other = 0;
  rte_mbuf* drop[dataplane::kMaxBurst];
  unsigned ndrop = 0;
  const FastKey key = fastKey(address, parse);
  for (unsigned i = 0; i < k; ++i) {
    // The common frame, its outer headers in the first segment, straight into the kept slots
    // (kept <= i: refs[i] is read before refs[kept] is written).
    if (key.on && pkts[i]->data_len >= kFastHeaders &&
        gwlbClassifyFast(refs[i].data, refs[i].len, key, &refs[kept], &outer[kept])) {
      pkts[kept++] = pkts[i];
      continue;
    }
    const char* why = nullptr;
    dataplane::PacketRef inner;
    GwlbOuter o;
    GwlbFrame f = gwlbClassifyGeneral(refs[i].data, refs[i].len, address, parse, &inner, &o, &why);
    // The rewrite happens in the mbuf's first segment: it must hold the outer headers (it
    // always does with mbufs of the usual sizes).
    if (f == GwlbFrame::kGeneve && pkts[i]->data_len < o.l3_offset + (o.v6 ? 40u : 20u))
      f = GwlbFrame::kMalformed;
    if (f == GwlbFrame::kGeneve) {
      refs[kept] = inner;
      outer[kept] = o;
      pkts[kept++] = pkts[i];
      continue;
    }
    if (f == GwlbFrame::kNotGeneve && to_kernel != nullptr &&
        gwlbForKernel(refs[i].data, refs[i].len, address)) {
      to_kernel[(*nkernel)++] = pkts[i];
      continue;
    }
    if (f == GwlbFrame::kMalformed)
      ++malformed;
    else
      ++other;
    drop[ndrop++] = pkts[i];
  }
  if (ndrop > 0) rte_pktmbuf_free_bulk(drop, ndrop);
  if (kept > 0) GwlbCounters::add(c.geneve, kept);
  if (malformed > 0) GwlbCounters::add(c.malformed, malformed);
  if (other > 0) GwlbCounters::add(c.not_geneve, other);
  return kept;
}

GwlbStats GwlbStats::snapshot(const GwlbCounters& c) {
  GwlbStats s;
  s.geneve = c.geneve.load(std::memory_order_relaxed);
  s.returned = c.returned.load(std::memory_order_relaxed);
  s.malformed = c.malformed.load(std::memory_order_relaxed);
  s.not_geneve = c.not_geneve.load(std::memory_order_relaxed);
  s.to_kernel = c.to_kernel.load(std::memory_order_relaxed);
  s.from_kernel = c.from_kernel.load(std::memory_order_relaxed);
  s.kernel_dropped = c.kernel_dropped.load(std::memory_order_relaxed);
  return s;
}

GwlbStats& GwlbStats::operator+=(const GwlbStats& o) {
  geneve += o.geneve;
  returned += o.returned;
  malformed += o.malformed;
  not_geneve += o.not_geneve;
  to_kernel += o.to_kernel;
  from_kernel += o.from_kernel;
  kernel_dropped += o.kernel_dropped;
  return *this;
}

std::string formatGwlbStats(const GwlbStats& s) {
  return "gwlb: geneve " + std::to_string(s.geneve) + ", returned " + std::to_string(s.returned) +
         ", malformed " + std::to_string(s.malformed) + ", not geneve " +
         std::to_string(s.not_geneve) + " (dropped); to kernel " + std::to_string(s.to_kernel) +
         ", from kernel " + std::to_string(s.from_kernel) + ", kernel dropped " +
         std::to_string(s.kernel_dropped);
}

}  // namespace statewall::dpdk
