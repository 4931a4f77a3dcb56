#include "statewall/dpdk/gwlb.hpp"

#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>

#include "gwlb_burst.hpp"
#include "statewall/dpdk/exception.hpp"

namespace statewall::dpdk {

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

GwlbFrame gwlbClassify(const uint8_t* data, uint32_t len, const rules::IpAddr& address,
                       const dataplane::ParseOptions& parse, dataplane::PacketRef* inner,
                       GwlbOuter* outer, const char** why) noexcept {
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

void gwlbReturnFrame(uint8_t* frame, const GwlbOuter& outer) noexcept {
  uint8_t tmp[16];
  std::memcpy(tmp, frame, 6);
  std::memmove(frame, frame + 6, 6);
  std::memcpy(frame + 6, tmp, 6);
  // IPv4: source at 12, destination at 16; IPv6: at 8 and 24.
  uint8_t* ip = frame + outer.l3_offset;
  const size_t n = outer.v6 ? 16 : 4;
  uint8_t* src = ip + (outer.v6 ? 8 : 12);
  uint8_t* dst = src + n;
  std::memcpy(tmp, src, n);
  std::memcpy(src, dst, n);
  std::memcpy(dst, tmp, n);
}

unsigned gwlbDecapBurst(const rules::IpAddr& address, const dataplane::ParseOptions& parse,
                        GwlbCounters& c, dataplane::PacketRef* refs, rte_mbuf** pkts,
                        GwlbOuter* outer, unsigned k, rte_mbuf** to_kernel,
                        unsigned* nkernel) noexcept {
  unsigned kept = 0;
  uint64_t malformed = 0, other = 0;
  rte_mbuf* drop[dataplane::kMaxBurst];
  unsigned ndrop = 0;
  for (unsigned i = 0; i < k; ++i) {
    const char* why = nullptr;
    dataplane::PacketRef inner;
    GwlbOuter o;
    GwlbFrame f = gwlbClassify(refs[i].data, refs[i].len, address, parse, &inner, &o, &why);
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

void gwlbReturnMbuf(rte_mbuf* m, const GwlbOuter& outer) noexcept {
  gwlbReturnFrame(rte_pktmbuf_mtod(m, uint8_t*), outer);
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
