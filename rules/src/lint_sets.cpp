// AddrSet, PacketSet and PolicySets: the exact set algebra behind `statewall lint` and
// `statewall diff`. Addresses are 128-bit integers here (IPv4 in the low 32 bits).
#include <algorithm>
#include <map>
#include <unordered_map>
#include <utility>

#include "statewall/rules/lint.hpp"
#include "statewall/rules/vocab.hpp"

namespace statewall::rules {
namespace {

__extension__ typedef unsigned __int128 U128;

U128 toU(const IpAddr& a) {
  return a.isV4() ? U128{a.v4()} : ((U128{a.hi} << 64) | U128{a.lo});
}

IpAddr fromU(U128 v, Family f) {
  return f == Family::kV4 ? IpAddr::v4(static_cast<uint32_t>(v))
                          : IpAddr::v6(static_cast<uint64_t>(v >> 64), static_cast<uint64_t>(v));
}

U128 familyMax(Family f) {
  return f == Family::kV4 ? U128{0xFFFFFFFFu} : ~U128{0};
}

unsigned familyBits(Family f) {
  return f == Family::kV4 ? 32 : 128;
}

// 2^k - 1 for k in 0..128.
U128 lowMask(unsigned k) {
  return k >= 128 ? ~U128{0} : ((U128{1} << k) - 1);
}

struct URange {
  U128 lo;
  U128 hi;
};

std::vector<URange> toU(const std::vector<AddrSet::Range>& v) {
  std::vector<URange> out;
  out.reserve(v.size());
  for (const auto& x : v)
    out.push_back({toU(x.first), toU(x.last)});
  return out;
}

}  // namespace

// ---- AddrSet ----

AddrSet AddrSet::of(const Cidr& c) {
  const Family f = c.family();
  const unsigned bits = familyBits(f);
  const unsigned host = bits - std::min<unsigned>(c.prefix, bits);
  const U128 lo = toU(c.addr) & ~lowMask(host);
  AddrSet s;
  s.ranges_.push_back({fromU(lo, f), fromU(lo | lowMask(host), f)});
  return s;
}

AddrSet AddrSet::universe(Family f) {
  AddrSet s;
  s.ranges_.push_back({fromU(0, f), fromU(familyMax(f), f)});
  return s;
}

AddrSet AddrSet::ofRange(const IpAddr& first, const IpAddr& last) {
  AddrSet s;
  if (first.family == last.family && toU(first) <= toU(last)) s.ranges_.push_back({first, last});
  return s;
}

bool AddrSet::contains(const IpAddr& a) const {
  if (ranges_.empty() || ranges_[0].first.family != a.family) return false;
  const U128 v = toU(a);
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), v,
                             [](U128 x, const Range& r) { return x < toU(r.first); });
  if (it == ranges_.begin()) return false;
  --it;
  return v <= toU(it->last);
}

// Builds sets from ranges that are already sorted, disjoint and non-adjacent.
struct AddrSetAccess {
  static AddrSet build(Family f, const std::vector<URange>& r) {
    AddrSet s;
    s.ranges_.reserve(r.size());
    for (const URange& x : r)
      s.ranges_.push_back({fromU(x.lo, f), fromU(x.hi, f)});
    return s;
  }
};

namespace {

AddrSet build(Family f, const std::vector<URange>& r) {
  return AddrSetAccess::build(f, r);
}

}  // namespace

AddrSet AddrSet::unite(const AddrSet& o) const {
  if (o.empty()) return *this;
  if (empty()) return o;
  const Family f = ranges_[0].first.family;
  const std::vector<URange> a = toU(ranges_), b = toU(o.ranges_);
  std::vector<URange> all;
  all.reserve(a.size() + b.size());
  std::merge(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(all),
             [](const URange& x, const URange& y) { return x.lo < y.lo; });
  std::vector<URange> out;
  const U128 max = familyMax(f);
  for (const URange& x : all) {
    if (!out.empty() && (out.back().hi == max || x.lo <= out.back().hi + 1)) {
      out.back().hi = std::max(out.back().hi, x.hi);
    } else {
      out.push_back(x);
    }
  }
  return build(f, out);
}

AddrSet AddrSet::intersect(const AddrSet& o) const {
  if (empty() || o.empty()) return {};
  const Family f = ranges_[0].first.family;
  const std::vector<URange> a = toU(ranges_), b = toU(o.ranges_);
  std::vector<URange> out;
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const U128 lo = std::max(a[i].lo, b[j].lo);
    const U128 hi = std::min(a[i].hi, b[j].hi);
    if (lo <= hi) out.push_back({lo, hi});
    if (a[i].hi < b[j].hi) {
      ++i;
    } else {
      ++j;
    }
  }
  return build(f, out);
}

AddrSet AddrSet::subtract(const AddrSet& o) const {
  if (empty() || o.empty()) return *this;
  const Family f = ranges_[0].first.family;
  const std::vector<URange> a = toU(ranges_), b = toU(o.ranges_);
  std::vector<URange> out;
  size_t j = 0;
  for (const URange& x : a) {
    U128 cur = x.lo;
    bool open = true;
    while (j < b.size() && b[j].hi < cur)
      ++j;
    for (size_t k = j; k < b.size() && b[k].lo <= x.hi; ++k) {
      if (b[k].lo > cur) out.push_back({cur, b[k].lo - 1});
      if (b[k].hi >= x.hi) {
        open = false;
        break;
      }
      cur = b[k].hi + 1;
    }
    if (open) out.push_back({cur, x.hi});
  }
  return build(f, out);
}

std::vector<Cidr> AddrSet::toCidrs() const {
  std::vector<Cidr> out;
  if (ranges_.empty()) return out;
  const Family f = ranges_[0].first.family;
  const unsigned bits = familyBits(f);
  const U128 max = familyMax(f);
  for (const Range& r : ranges_) {
    U128 lo = toU(r.first);
    const U128 hi = toU(r.last);
    while (true) {
      // The largest aligned block starting at lo that ends at or before hi.
      unsigned k = 0;
      while (k < bits && (lo & lowMask(k + 1)) == 0 && lowMask(k + 1) <= hi - lo)
        ++k;
      out.push_back(Cidr{fromU(lo, f), static_cast<uint8_t>(bits - k)});
      const U128 end = lo + lowMask(k);
      if (end >= hi || end == max) break;
      lo = end + 1;
    }
  }
  return out;
}

std::string AddrSet::str(size_t max_cidrs) const {
  const std::vector<Cidr> cidrs = toCidrs();
  if (cidrs.empty()) return "nothing";
  // "0.0.0.0/0 except 10.0.1.0/24" when that is shorter than the list of CIDRs.
  const Family f = ranges_[0].first.family;
  const std::vector<Cidr> rest = AddrSet::universe(f).subtract(*this).toCidrs();
  if (!rest.empty() && rest.size() < cidrs.size()) {
    std::string s = (f == Family::kV4 ? "0.0.0.0/0" : "::/0") + std::string(" except ");
    for (size_t i = 0; i < rest.size() && i < max_cidrs; ++i)
      s += (i == 0 ? "" : (i + 1 == rest.size() ? " and " : ", ")) + rest[i].str();
    if (rest.size() > max_cidrs) s += " and " + std::to_string(rest.size() - max_cidrs) + " more";
    return s;
  }
  std::string s;
  for (size_t i = 0; i < cidrs.size() && i < max_cidrs; ++i)
    s += (i ? ", " : "") + cidrs[i].str();
  if (cidrs.size() > max_cidrs) s += " and " + std::to_string(cidrs.size() - max_cidrs) + " more";
  return s;
}

// ---- PacketSet ----

namespace {

constexpr uint32_t kKeyEnd = 65536;

// The key range of a match, as the compiler's keyRange(): false when it covers nothing.
bool matchKeys(const Match& m, uint16_t* lo, uint16_t* hi) {
  *lo = 0;
  *hi = 65535;
  if (protoHasPorts(m.proto)) {
    if (m.port_lo > m.port_hi) return false;
    *lo = m.port_lo;
    *hi = m.port_hi;
  } else if (protoIsIcmp(m.proto)) {
    if (m.icmp_type == kAny) return true;
    if (m.icmp_type < 0 || m.icmp_type > 255) return false;
    if (m.icmp_code == kAny) {
      *lo = icmpKey(m.icmp_type, 0);
      *hi = icmpKey(m.icmp_type, 255);
    } else {
      if (m.icmp_code < 0 || m.icmp_code > 255) return false;
      *lo = *hi = icmpKey(m.icmp_type, m.icmp_code);
    }
  }
  return true;
}

std::string keyRangeStr(int proto, uint32_t lo, uint32_t hi) {
  if (protoHasPorts(proto)) {
    if (lo == 0 && hi == 65535) return " all";
    return lo == hi ? " " + std::to_string(lo)
                    : " " + std::to_string(lo) + "-" + std::to_string(hi);
  }
  if (protoIsIcmp(proto)) {
    if (lo == 0 && hi == 65535) return " any";
    auto one = [](uint32_t k) { return std::to_string(k >> 8) + "/" + std::to_string(k & 0xFF); };
    return lo == hi ? " type/code " + one(lo) : " type/code " + one(lo) + ".." + one(hi);
  }
  return "";
}

}  // namespace

bool PacketSet::KeyMap::empty() const {
  return pieces.size() == 1 && pieces[0].v4.empty() && pieces[0].v6.empty();
}

PacketSet::KeyMap PacketSet::combine(const KeyMap& a, const KeyMap& b, Op op) {
  KeyMap out;
  out.pieces.clear();
  size_t i = 0, j = 0;
  uint32_t pos = 0;
  while (true) {
    const Piece& x = a.pieces[i];
    const Piece& y = b.pieces[j];
    Piece v;
    v.start = pos;
    switch (op) {
      case Op::kUnite:
        v.v4 = x.v4.unite(y.v4);
        v.v6 = x.v6.unite(y.v6);
        break;
      case Op::kIntersect:
        v.v4 = x.v4.intersect(y.v4);
        v.v6 = x.v6.intersect(y.v6);
        break;
      case Op::kSubtract:
        v.v4 = x.v4.subtract(y.v4);
        v.v6 = x.v6.subtract(y.v6);
        break;
    }
    if (out.pieces.empty() || out.pieces.back().v4 != v.v4 || out.pieces.back().v6 != v.v6)
      out.pieces.push_back(std::move(v));
    const uint32_t na = i + 1 < a.pieces.size() ? a.pieces[i + 1].start : kKeyEnd;
    const uint32_t nb = j + 1 < b.pieces.size() ? b.pieces[j + 1].start : kKeyEnd;
    pos = std::min(na, nb);
    if (pos == kKeyEnd) break;
    if (na == pos) ++i;
    if (nb == pos) ++j;
  }
  return out;
}

const PacketSet::KeyMap& PacketSet::get(int proto) const {
  auto it = std::lower_bound(by_proto_.begin(), by_proto_.end(), proto,
                             [](const auto& e, int p) { return e.first < p; });
  return it != by_proto_.end() && it->first == proto ? it->second : other_;
}

void PacketSet::normalise() {
  if (by_proto_.size() >= 256) other_ = KeyMap{};  // no protocol left for other_ to stand for
  std::erase_if(by_proto_, [&](const auto& e) { return e.second == other_; });
}

PacketSet PacketSet::combine(const PacketSet& a, const PacketSet& b, Op op) {
  PacketSet out;
  size_t i = 0, j = 0;
  while (i < a.by_proto_.size() || j < b.by_proto_.size()) {
    int p;
    if (j >= b.by_proto_.size() ||
        (i < a.by_proto_.size() && a.by_proto_[i].first < b.by_proto_[j].first)) {
      p = a.by_proto_[i++].first;
    } else if (i >= a.by_proto_.size() || b.by_proto_[j].first < a.by_proto_[i].first) {
      p = b.by_proto_[j++].first;
    } else {
      p = a.by_proto_[i].first;
      ++i;
      ++j;
    }
    out.by_proto_.emplace_back(p, combine(a.get(p), b.get(p), op));
  }
  out.other_ = combine(a.other_, b.other_, op);
  out.normalise();
  return out;
}

PacketSet PacketSet::everything() {
  return box(kProtoAll, 0, 65535, AddrSet::universe(Family::kV4), AddrSet::universe(Family::kV6));
}

PacketSet PacketSet::box(int proto, uint16_t key_lo, uint16_t key_hi, const AddrSet& v4,
                         const AddrSet& v6) {
  PacketSet s;
  if (key_lo > key_hi || (v4.empty() && v6.empty())) return s;
  KeyMap km;
  km.pieces.clear();
  if (key_lo > 0) km.pieces.push_back(Piece{});
  km.pieces.push_back(Piece{key_lo, v4, v6});
  if (key_hi < 65535) km.pieces.push_back(Piece{static_cast<uint32_t>(key_hi) + 1, {}, {}});
  if (proto == kProtoAll) {
    s.other_ = std::move(km);
  } else if (proto >= 0 && proto <= 255) {
    s.by_proto_.emplace_back(proto, std::move(km));
  }
  return s;
}

PacketSet PacketSet::of(const Match& m, const AddrSet& v4, const AddrSet& v6) {
  uint16_t lo = 0, hi = 0;
  if (!matchKeys(m, &lo, &hi)) return {};
  if (m.proto == kProtoAll) return box(kProtoAll, 0, 65535, v4, v6);
  return box(m.proto, lo, hi, v4, v6);
}

PacketSet PacketSet::of(const Match& m, const std::vector<Cidr>& peers) {
  AddrSet v4, v6;
  for (const Cidr& c : peers)
    (c.addr.isV4() ? v4 : v6) = (c.addr.isV4() ? v4 : v6).unite(AddrSet::of(c));
  return of(m, v4, v6);
}

bool PacketSet::empty() const {
  if (!other_.empty()) return false;
  for (const auto& e : by_proto_)
    if (!e.second.empty()) return false;
  return true;
}

PacketSet PacketSet::unite(const PacketSet& o) const {
  return combine(*this, o, Op::kUnite);
}
PacketSet PacketSet::intersect(const PacketSet& o) const {
  return combine(*this, o, Op::kIntersect);
}
PacketSet PacketSet::subtract(const PacketSet& o) const {
  return combine(*this, o, Op::kSubtract);
}

PacketSet PacketSet::withAddresses(const AddrSet& v4, const AddrSet& v6) const {
  return intersect(box(kProtoAll, 0, 65535, v4, v6));
}

AddrSet PacketSet::addresses(int proto, Family f, uint16_t key_lo, uint16_t key_hi) const {
  const KeyMap& km = get(proto);
  AddrSet out;
  for (size_t i = 0; i < km.pieces.size(); ++i) {
    const uint32_t end = i + 1 < km.pieces.size() ? km.pieces[i + 1].start - 1 : 65535;
    if (end < key_lo || km.pieces[i].start > key_hi) continue;
    out = out.unite(f == Family::kV4 ? km.pieces[i].v4 : km.pieces[i].v6);
  }
  return out;
}

std::vector<std::pair<uint16_t, uint16_t>> PacketSet::keys(int proto, const IpAddr& a) const {
  const KeyMap& km = get(proto);
  std::vector<std::pair<uint16_t, uint16_t>> out;
  for (size_t i = 0; i < km.pieces.size(); ++i) {
    const Piece& p = km.pieces[i];
    if (!(a.isV4() ? p.v4 : p.v6).contains(a)) continue;
    const uint32_t end = i + 1 < km.pieces.size() ? km.pieces[i + 1].start - 1 : 65535;
    if (!out.empty() && out.back().second + 1u == p.start) {
      out.back().second = static_cast<uint16_t>(end);
    } else {
      out.emplace_back(static_cast<uint16_t>(p.start), static_cast<uint16_t>(end));
    }
  }
  return out;
}

std::vector<int> PacketSet::protocols() const {
  std::vector<int> out;
  for (const auto& e : by_proto_)
    if (!e.second.empty()) out.push_back(e.first);
  if (!other_.empty()) out.push_back(kProtoAll);
  return out;
}

std::optional<PacketSet::Point> PacketSet::sample(std::span<const int> protos,
                                                  std::span<const uint16_t> keys_pref,
                                                  std::span<const IpAddr> addrs) const {
  auto fromMap = [&](int proto, const KeyMap& km) -> std::optional<Point> {
    auto pickAddr = [&](const Piece& p) -> std::optional<IpAddr> {
      for (const IpAddr& a : addrs)
        if ((a.isV4() ? p.v4 : p.v6).contains(a)) return a;
      for (const AddrSet* s : {&p.v4, &p.v6}) {
        if (s->empty()) continue;
        const AddrSet::Range& r = s->ranges()[0];
        // Prefer x.x.x.1 over the all-zero address when the range has it.
        if (toU(r.first) == 0 && toU(r.last) > 0) return fromU(1, r.first.family);
        return r.first;
      }
      return std::nullopt;
    };
    for (uint16_t k : keys_pref) {
      for (size_t i = 0; i < km.pieces.size(); ++i) {
        const uint32_t end = i + 1 < km.pieces.size() ? km.pieces[i + 1].start - 1 : 65535;
        if (k < km.pieces[i].start || k > end) continue;
        if (auto a = pickAddr(km.pieces[i])) return Point{proto, k, *a};
      }
    }
    for (const Piece& p : km.pieces)
      if (auto a = pickAddr(p)) return Point{proto, static_cast<uint16_t>(p.start), *a};
    return std::nullopt;
  };
  for (int p : protos) {
    if (p < 0 || p > 255) continue;
    if (auto pt = fromMap(p, get(p))) return pt;
  }
  for (const auto& e : by_proto_)
    if (auto pt = fromMap(e.first, e.second)) return pt;
  if (!other_.empty()) {
    int p = 0;
    for (const auto& e : by_proto_) {
      if (e.first != p) break;
      ++p;
    }
    return fromMap(p, other_);
  }
  return std::nullopt;
}

std::string PacketSet::str() const {
  std::string s;
  auto add = [&](int proto, const KeyMap& km, const char* name) {
    for (size_t i = 0; i < km.pieces.size(); ++i) {
      const Piece& p = km.pieces[i];
      if (p.v4.empty() && p.v6.empty()) continue;
      const uint32_t end = i + 1 < km.pieces.size() ? km.pieces[i + 1].start - 1 : 65535;
      std::string addrs = p.v4.empty() ? "" : p.v4.str(8);
      if (!p.v6.empty()) addrs += (addrs.empty() ? "" : ", ") + p.v6.str(8);
      s += (s.empty() ? "" : "; ") + std::string(name) + keyRangeStr(proto, p.start, end) +
           " from " + addrs;
    }
  };
  for (const auto& e : by_proto_)
    add(e.first, e.second, protoName(e.first).c_str());
  add(kProtoAll, other_, by_proto_.empty() ? "all" : "all others");
  return s.empty() ? "nothing" : s;
}

bool operator==(const PacketSet& a, const PacketSet& b) {
  // The representation is not unique (which value stands for the unlisted protocols is a
  // choice), so equality is by content.
  if (a.other_ == b.other_ && a.by_proto_ == b.by_proto_) return true;
  return a.subtract(b).empty() && b.subtract(a).empty();
}

// ---- PolicySets ----

namespace {

// The union of many sets, pairwise in a balanced tree: each set takes part in log2(n) unions,
// where adding them one by one to a growing union costs time quadratic in n.
template <typename Set>
Set uniteAll(std::vector<Set> sets) {
  if (sets.empty()) return Set{};
  while (sets.size() > 1) {
    size_t out = 0;
    for (size_t i = 0; i < sets.size(); i += 2)
      sets[out++] = i + 1 < sets.size() ? sets[i].unite(sets[i + 1]) : std::move(sets[i]);
    sets.resize(out);
  }
  return std::move(sets[0]);
}

}  // namespace

PolicySets::PolicySets(const CompiledPolicy& policy) : p_(&policy) {
  const Policy& src = policy.source();
  for (size_t i = 0; i < src.groups.size(); ++i) {
    group_by_name_.emplace(src.groups[i].name, i);
    if (!src.groups[i].id.empty()) group_by_id_.emplace(src.groups[i].id, i);
  }
  for (size_t i = 0; i < src.prefix_lists.size(); ++i) {
    pl_by_name_.emplace(src.prefix_lists[i].name, i);
    if (!src.prefix_lists[i].id.empty()) pl_by_id_.emplace(src.prefix_lists[i].id, i);
  }
  RuleId base = 0;
  for (const SecurityGroup& g : src.groups) {
    rule_base_.push_back({base, base + static_cast<RuleId>(g.inbound.size())});
    base += static_cast<RuleId>(g.inbound.size() + g.outbound.size());
  }
  {
    std::vector<std::vector<AddrSet>> hosts(src.groups.size() * 2);
    for (size_t i = 0; i < policy.ifaceCount(); ++i) {
      const InterfaceInfo& itf = policy.iface(static_cast<IfaceId>(i));
      for (uint16_t g : itf.groups)
        for (const IpAddr& a : itf.addresses)
          hosts[g * 2 + (a.isV4() ? 0 : 1)].push_back(AddrSet::of(Cidr::host(a)));
    }
    members_.reserve(hosts.size());
    for (auto& h : hosts)
      members_.push_back(uniteAll(std::move(h)));
  }

  rules_.reserve(policy.ruleCount());
  rules_all_peer_.reserve(policy.ruleCount());
  for (RuleId r = 0; r < policy.ruleCount(); ++r) {
    const SgRule& rule = sgRule(r);
    AddrSet v4, v6;
    bool all4 = false, all6 = false;
    for (const Peer& peer : rule.peers) {
      AddrSet a4, a6;
      peerAddresses(peer, &a4, &a6);
      v4 = v4.unite(a4);
      v6 = v6.unite(a6);
      // As the compiler: a /0 CIDR, given directly or through a prefix list, is an all peer.
      if (peer.kind == PeerKind::kCidr && peer.cidr.prefix == 0) {
        (peer.cidr.addr.isV4() ? all4 : all6) = true;
      } else if (peer.kind == PeerKind::kPrefixList) {
        const long pl = prefixListIndex(peer.name);
        if (pl >= 0) {
          for (const Cidr& c : src.prefix_lists[static_cast<size_t>(pl)].cidrs)
            if (c.prefix == 0) (c.addr.isV4() ? all4 : all6) = true;
        }
      }
    }
    rules_.push_back(PacketSet::of(rule.match, v4, v6));
    rules_all_peer_.push_back(PacketSet::of(rule.match,
                                            all4 ? AddrSet::universe(Family::kV4) : AddrSet{},
                                            all6 ? AddrSet::universe(Family::kV6) : AddrSet{}));
  }

  // ACL entries: the compiler numbers them per (ACL, direction) in rule-number order, then '*'.
  acl_entry_lists_.assign(policy.aclCount() * 2, {});
  entries_.reserve(policy.aclEntryCount());
  for (AclEntryId e = 0; e < policy.aclEntryCount(); ++e) {
    const AclEntryInfo& info = policy.aclEntry(e);
    acl_entry_lists_[info.acl * 2 + static_cast<size_t>(info.dir)].push_back(e);
    if (info.rule_number == 0) {
      entries_.push_back(PacketSet::everything());
      continue;
    }
    const NetworkAcl& acl = src.acls[info.acl];
    const auto& list = info.dir == Direction::kInbound ? acl.inbound : acl.outbound;
    PacketSet set;
    for (const AclEntry& x : list) {
      if (x.rule_number == info.rule_number) {
        set = PacketSet::of(x.match, std::vector<Cidr>{x.cidr});
        break;
      }
    }
    entries_.push_back(std::move(set));
  }
  acl_allowed_.reserve(policy.aclCount() * 2);
  for (size_t i = 0; i < policy.aclCount() * 2; ++i) {
    PacketSet allowed, taken;
    for (AclEntryId e : acl_entry_lists_[i]) {
      if (policy.aclEntry(e).allow) allowed = allowed.unite(entries_[e].subtract(taken));
      taken = taken.unite(entries_[e]);
    }
    acl_allowed_.push_back(std::move(allowed));
  }

  // What each group allows, then each distinct list of groups, once.
  std::vector<PacketSet> group_allowed;
  group_allowed.reserve(src.groups.size() * 2);
  for (size_t g = 0; g < src.groups.size(); ++g) {
    for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
      std::vector<PacketSet> sets;
      for (RuleId r : groupRules(static_cast<uint16_t>(g), d))
        sets.push_back(rules_[r]);
      group_allowed.push_back(uniteAll(std::move(sets)));
    }
  }
  std::map<std::vector<uint16_t>, size_t> by_groups;  // group list -> first interface with it
  iface_allowed_.reserve(policy.ifaceCount() * 2);
  for (size_t i = 0; i < policy.ifaceCount(); ++i) {
    const InterfaceInfo& itf = policy.iface(static_cast<IfaceId>(i));
    auto [it, fresh] = by_groups.emplace(itf.groups, i);
    for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
      if (!fresh) {
        iface_allowed_.push_back(iface_allowed_[it->second * 2 + static_cast<size_t>(d)]);
        continue;
      }
      std::vector<PacketSet> sets;
      for (uint16_t g : itf.groups)
        sets.push_back(group_allowed[g * 2 + static_cast<size_t>(d)]);
      iface_allowed_.push_back(uniteAll(std::move(sets)));
    }
  }
}

void PolicySets::peerAddresses(const Peer& peer, AddrSet* v4, AddrSet* v6) const {
  *v4 = AddrSet{};
  *v6 = AddrSet{};
  auto add = [&](const Cidr& c) {
    AddrSet& s = c.addr.isV4() ? *v4 : *v6;
    s = s.unite(AddrSet::of(c));
  };
  switch (peer.kind) {
    case PeerKind::kCidr:
      add(peer.cidr);
      break;
    case PeerKind::kPrefixList: {
      const long pl = prefixListIndex(peer.name);
      if (pl >= 0)
        for (const Cidr& c : p_->source().prefix_lists[static_cast<size_t>(pl)].cidrs)
          add(c);
      break;
    }
    case PeerKind::kGroup: {
      const long g = groupIndex(peer.name);
      if (g >= 0) {
        *v4 = members_[static_cast<size_t>(g) * 2];
        *v6 = members_[static_cast<size_t>(g) * 2 + 1];
      }
      break;
    }
  }
}

std::vector<RuleId> PolicySets::groupRules(uint16_t g, Direction d) const {
  const SecurityGroup& sg = p_->source().groups[g];
  const size_t n = d == Direction::kInbound ? sg.inbound.size() : sg.outbound.size();
  std::vector<RuleId> out;
  out.reserve(n);
  for (size_t k = 0; k < n; ++k)
    out.push_back(rule_base_[g][static_cast<size_t>(d)] + static_cast<RuleId>(k));
  return out;
}

std::vector<AclEntryId> PolicySets::aclEntries(AclId a, Direction d) const {
  return acl_entry_lists_[a * 2 + static_cast<size_t>(d)];
}

AddrSet PolicySets::subnetAddresses(SubnetId s, Family f) const {
  AddrSet out;
  if (s == kNoSubnet) return out;
  for (const Cidr& c : p_->subnet(s).cidrs)
    if (c.family() == f) out = out.unite(AddrSet::of(c));
  return out;
}

const SgRule& PolicySets::sgRule(RuleId r) const {
  const RuleInfo& info = p_->rule(r);
  const SecurityGroup& g = p_->source().groups[info.group];
  return (info.dir == Direction::kInbound ? g.inbound : g.outbound)[info.index];
}

namespace {

long lookupRef(const std::string& ref, const std::unordered_map<std::string, size_t>& by_name,
               const std::unordered_map<std::string, size_t>& by_id) {
  if (auto it = by_name.find(ref); it != by_name.end()) return static_cast<long>(it->second);
  if (auto it = by_id.find(ref); it != by_id.end()) return static_cast<long>(it->second);
  return -1;
}

}  // namespace

long PolicySets::groupIndex(const std::string& ref) const {
  return lookupRef(ref, group_by_name_, group_by_id_);
}

long PolicySets::prefixListIndex(const std::string& ref) const {
  return lookupRef(ref, pl_by_name_, pl_by_id_);
}

}  // namespace statewall::rules
