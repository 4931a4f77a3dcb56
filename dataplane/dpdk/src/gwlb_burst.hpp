// The GWLB mode's step in the lcore loop (private; statewall/dpdk/gwlb.hpp has the rest).
#pragma once

#include "statewall/dpdk/gwlb.hpp"

#include <rte_mbuf.h>

namespace statewall::dpdk {

// Keeps the GENEVE frames to `address` of a received burst (compacted to the front): refs[i]
// becomes the packet inside, outer[i] says where its outer header is. Frees every other frame,
// counting malformed GENEVE and frames that are not GENEVE to us, but for the frames the kernel
// wants (gwlbForKernel()) when `to_kernel` is not null (--exception-tap): those are appended to
// to_kernel[*nkernel] (room for k) and left to the caller. Returns how many were kept.
// The lcore that owns `c` only.
unsigned gwlbDecapBurst(const rules::IpAddr& address, const dataplane::ParseOptions& parse,
                        GwlbCounters& c, dataplane::PacketRef* refs, rte_mbuf** pkts,
                        GwlbOuter* outer, unsigned k, rte_mbuf** to_kernel,
                        unsigned* nkernel) noexcept;

// gwlbReturnFrame() on the mbuf's first segment (gwlbDecapBurst() checked that it holds the
// outer headers).
inline void gwlbReturnMbuf(rte_mbuf* m, const GwlbOuter& outer) noexcept {
  gwlbReturnFrame(rte_pktmbuf_mtod(m, uint8_t*), outer);
}

}  // namespace statewall::dpdk
