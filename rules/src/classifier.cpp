// The query side of CompiledPolicy: read-only, allocation-free, exception-free.
#include <cstddef>
#include <cstdint>

#include "statewall/rules/compiled.hpp"

namespace statewall::rules {
namespace {

// Index of the last element <= key in a sorted array whose first element is <= every key.
// Branch-free halving so the loop runs the same number of times for every key.
template <typename T, typename Less>
inline size_t lastNotAbove(const T* base, size_t n, const Less& key_less_than) {
  const T* p = base;
  while (n > 1) {
    const size_t half = n / 2;
    p = key_less_than(p[half]) ? p : p + half;
    n -= half;
  }
  return static_cast<size_t>(p - base);
}

// Cidr::contains without the out-of-line maskAddr call.
inline bool cidrHolds(const Cidr& c, const IpAddr& a) {
  if (a.family != c.addr.family) return false;
  const unsigned p = c.prefix;
  if (a.isV4()) {
    const uint32_t mask = p == 0 ? 0u : ~0u << (32 - p);
    return (a.v4() & mask) == c.addr.v4();
  }
  const uint64_t mhi = p == 0 ? 0 : (p >= 64 ? ~0ull : ~0ull << (64 - p));
  const uint64_t mlo = p <= 64 ? 0 : (p >= 128 ? ~0ull : ~0ull << (128 - p));
  return (a.hi & mhi) == c.addr.hi && (a.lo & mlo) == c.addr.lo;
}

inline uint16_t flowKey(const FlowSpec& f) {
  if (protoHasPorts(f.proto)) return f.dport;
  if (protoIsIcmp(f.proto)) return static_cast<uint16_t>((f.icmp_type << 8) | f.icmp_code);
  return 0;
}

}  // namespace

IfaceId CompiledPolicy::interfaceOf(const IpAddr& a) const {
  if (addr_hash_.empty()) return kNoIface;
  size_t h = IpAddrHash{}(a)&addr_hash_mask_;
  // The table is at most half full, so a probe sequence always reaches an empty slot.
  while (addr_hash_[h].iface != kNoIface) {
    if (addr_hash_[h].addr == a) return addr_hash_[h].iface;
    h = (h + 1) & addr_hash_mask_;
  }
  return kNoIface;
}

bool CompiledPolicy::subnetContains(SubnetId s, const IpAddr& a) const {
  if (s >= subnet_hot_.size()) return false;
  const SubnetHot& h = subnet_hot_[s];
  for (size_t k = 0; k < h.n_cidrs; ++k)
    if (cidrHolds(subnet_cidrs_[h.cidr_offset + k], a)) return true;
  return false;
}

uint32_t CompiledPolicy::lookup(const Matcher& mt, uint16_t key, const IpAddr& a,
                                bool* untracked) const {
  const size_t i = lastNotAbove(interval_starts_.data() + mt.offset, mt.count,
                                [key](uint16_t start) { return key < start; });
  const IntervalValue& iv = interval_values_[mt.offset + i];
  *untracked = iv.untracked != 0;
  if (a.isV4()) {
    const uint32_t x = a.v4();
    const V4Range* t = v4_ranges_.data() + iv.table_offset;
    return t[lastNotAbove(t, iv.table_count, [x](const V4Range& r) { return x < r.start; })].value;
  }
  const uint64_t hi = a.hi;
  const uint64_t lo = a.lo;
  const V6Range* t = v6_ranges_.data() + iv.table_offset;
  return t[lastNotAbove(
               t, iv.table_count,
               [hi, lo](const V6Range& r) { return hi < r.hi || (hi == r.hi && lo < r.lo); })]
      .value;
}

SgVerdict CompiledPolicy::classify(IfaceId i, Direction d, const FlowSpec& f) const {
  SgVerdict v;
  if (i >= iface_hot_.size()) return v;
  const Matcher& m = sg_matcher_[slotIndex(iface_hot_[i].group_set, d, f.proto, f.remote)];
  bool untracked = false;
  v.rule = lookup(m, flowKey(f), f.remote, &untracked);
  v.untracked = untracked && v.rule != kNoRule;
  return v;
}

AclVerdict CompiledPolicy::aclCheck(SubnetId s, Direction d, const FlowSpec& f) const {
  AclVerdict v;
  if (s >= subnet_hot_.size() || subnet_hot_[s].acl == kNoAcl) {
    v.allow = true;
    return v;
  }
  const AclId a = subnet_hot_[s].acl;
  const Matcher& m = acl_matcher_[slotIndex(a, d, f.proto, f.remote)];
  bool unused = false;
  AclEntryId e = lookup(m, flowKey(f), f.remote, &unused);
  if (e == kNoRule) e = acl_default_[a][static_cast<size_t>(d)];
  const AclEntryHot& hot = acl_hot_[e];
  v.allow = hot.allow != 0;
  v.acl = a;
  v.rule_number = hot.rule_number;
  v.entry = e;
  return v;
}

}  // namespace statewall::rules
