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
  if (s >= subnets_.size()) return false;
  for (const Cidr& c : subnets_[s].cidrs)
    if (c.contains(a)) return true;
  return false;
}

uint32_t CompiledPolicy::lookup(uint32_t m, uint16_t key, const IpAddr& a, bool* untracked) const {
  const Matcher& mt = matchers_[m];
  const size_t i = lastNotAbove(interval_starts_.data() + mt.offset, mt.count,
                                [key](uint16_t start) { return key < start; });
  const IntervalValue& iv = interval_values_[mt.offset + i];
  *untracked = iv.untracked != 0;
  if (a.isV4()) {
    const AddrTable& t = v4_tables_[iv.table];
    const uint32_t x = a.v4();
    const size_t j = lastNotAbove(v4_starts_.data() + t.offset, t.count,
                                  [x](uint32_t start) { return x < start; });
    return v4_values_[t.offset + j];
  }
  const AddrTable& t = v6_tables_[iv.table];
  const uint64_t hi = a.hi;
  const uint64_t lo = a.lo;
  const size_t j = lastNotAbove(v6_starts_.data() + t.offset, t.count, [hi, lo](const V6Start& s) {
    return hi < s.hi || (hi == s.hi && lo < s.lo);
  });
  return v6_values_[t.offset + j];
}

SgVerdict CompiledPolicy::classify(IfaceId i, Direction d, const FlowSpec& f) const {
  SgVerdict v;
  if (i >= iface_group_set_.size()) return v;
  const uint32_t m = sg_matcher_[slotIndex(iface_group_set_[i], d, f.proto, f.remote)];
  bool untracked = false;
  v.rule = lookup(m, flowKey(f), f.remote, &untracked);
  v.untracked = untracked && v.rule != kNoRule;
  return v;
}

AclVerdict CompiledPolicy::aclCheck(SubnetId s, Direction d, const FlowSpec& f) const {
  AclVerdict v;
  if (s >= subnets_.size() || subnets_[s].acl == kNoAcl) {
    v.allow = true;
    return v;
  }
  const AclId a = subnets_[s].acl;
  const uint32_t m = acl_matcher_[slotIndex(a, d, f.proto, f.remote)];
  bool unused = false;
  AclEntryId e = lookup(m, flowKey(f), f.remote, &unused);
  if (e == kNoRule) e = acls_[a].default_entry[static_cast<size_t>(d)];
  const AclEntryHot& hot = acl_hot_[e];
  v.allow = hot.allow != 0;
  v.acl = a;
  v.rule_number = hot.rule_number;
  v.entry = e;
  return v;
}

}  // namespace statewall::rules
