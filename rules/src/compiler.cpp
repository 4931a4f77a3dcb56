// compile(): Policy -> CompiledPolicy. Runs once per policy load; allocation is fine here.
//
// For every distinct ordered list of groups carried by an interface (a "group set"), for each
// direction, protocol slot and address family, the rules that can apply are turned into a
// Matcher:
//   1. the 16-bit key space (destination port, or ICMP type << 8 | code) is cut at every rule's
//      range boundaries into elementary intervals;
//   2. in each interval, the rules covering it are merged into one address-range table whose
//      ranges carry the highest-priority (lowest-rank) rule whose CIDRs hold the range;
//   3. equal neighbouring intervals are merged; tables and matchers are deduplicated.
// CIDRs are either nested or disjoint, so step 2 is a single sorted sweep with a stack.
// ACLs use the same builder with their entries in rule-number order.
#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "statewall/rules/compiled.hpp"

namespace statewall::rules {
namespace {

__extension__ typedef unsigned __int128 U128;

constexpr uint32_t kNoRank = 0xFFFFFFFF;
constexpr int kSlotUnlisted = -2;  // the slot for protocols that no rule names: only 'all' applies

U128 toU128(const IpAddr& a) {
  return a.isV4() ? U128{a.v4()} : ((U128{a.hi} << 64) | U128{a.lo});
}

U128 familyMax(bool v4) {
  return v4 ? U128{0xFFFFFFFFu} : ~U128{0};
}

// The inclusive address range of a CIDR in its family's integer space.
std::pair<U128, U128> cidrRange(const Cidr& c) {
  const bool v4 = c.addr.isV4();
  const unsigned bits = v4 ? 32 : 128;
  const U128 lo = toU128(maskAddr(c.addr, c.prefix));  // canonical already after validation
  const unsigned host_bits = bits - std::min<unsigned>(c.prefix, bits);
  const U128 host_mask =
      host_bits == 0 ? U128{0} : (host_bits >= 128 ? ~U128{0} : ((U128{1} << host_bits) - 1));
  return {lo, lo | host_mask};
}

// The key range a match covers in a slot: ports for TCP/UDP, (type << 8 | code) for ICMP,
// everything for 'all' and protocols without ports. false when it covers nothing.
bool keyRange(const Match& m, uint16_t* lo, uint16_t* hi) {
  *lo = 0;
  *hi = 65535;
  if (protoHasPorts(m.proto)) {
    if (m.port_lo > m.port_hi) return false;
    *lo = m.port_lo;
    *hi = m.port_hi;
  } else if (protoIsIcmp(m.proto)) {
    if (m.icmp_type == kAny || m.icmp_type < 0) return m.icmp_type == kAny;
    if (m.icmp_type > 255) return false;
    const auto t = static_cast<uint16_t>(m.icmp_type << 8);
    if (m.icmp_code == kAny) {
      *lo = t;
      *hi = static_cast<uint16_t>(t | 0xFF);
    } else {
      if (m.icmp_code < 0 || m.icmp_code > 255) return false;
      *lo = *hi = static_cast<uint16_t>(t | m.icmp_code);
    }
  }
  return true;
}

bool protoMatchesSlot(int rule_proto, int slot_proto) {
  return rule_proto == kProtoAll || rule_proto == slot_proto;
}

// One rule or ACL entry as the matcher builder sees it, in priority order (rank = position).
struct Candidate {
  uint16_t key_lo = 0;
  uint16_t key_hi = 65535;
  const Cidr* cidrs = nullptr;  // of the family being built
  size_t n_cidrs = 0;
  uint32_t id = 0;        // RuleId or AclEntryId
  bool all_peer = false;  // one of the CIDRs is /0
};

template <typename T>
size_t hashBytes(const std::vector<T>& v, size_t seed) {
  size_t h = seed ^ 0xcbf29ce484222325ull;
  const auto* p = reinterpret_cast<const unsigned char*>(v.data());
  for (size_t i = 0; i < v.size() * sizeof(T); ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

// Builds the private structures of a CompiledPolicy. A friend of CompiledPolicy.
class PolicyCompiler {
 public:
  PolicyCompiler(const Policy& p, CompiledPolicy* out, Diagnostics* diags)
      : p_(p), out_(out), diags_(diags) {}

  bool run() {
    out_->source_ = p_;
    indexNames();
    buildGroupsAndRules();
    buildAcls();
    buildSubnets();
    buildInterfaces();
    if (hasErrors(*diags_)) return false;
    expandPeers();
    buildProtoSlots();
    initPools();
    buildSgMatchers();
    buildAclMatchers();
    return !hasErrors(*diags_);
  }

 private:
  void error(const SourceLoc& loc, std::string msg) {
    diags_->push_back(Diagnostic{Severity::kError, loc, std::move(msg)});
  }

  template <typename T>
  static void indexByNameAndId(const std::vector<T>& v,
                               std::unordered_map<std::string, size_t>* by_name,
                               std::unordered_map<std::string, size_t>* by_id) {
    for (size_t i = 0; i < v.size(); ++i) {
      by_name->emplace(v[i].name, i);
      if (!v[i].id.empty()) by_id->emplace(v[i].id, i);
    }
  }

  static long resolve(const std::string& ref,
                      const std::unordered_map<std::string, size_t>& by_name,
                      const std::unordered_map<std::string, size_t>& by_id) {
    if (auto it = by_name.find(ref); it != by_name.end()) return static_cast<long>(it->second);
    if (auto it = by_id.find(ref); it != by_id.end()) return static_cast<long>(it->second);
    return -1;
  }

  void indexNames() {
    indexByNameAndId(p_.groups, &group_by_name_, &group_by_id_);
    indexByNameAndId(p_.prefix_lists, &pl_by_name_, &pl_by_id_);
    indexByNameAndId(p_.acls, &acl_by_name_, &acl_by_id_);
  }

  void buildGroupsAndRules() {
    if (p_.groups.size() > 0xFFFF) error(SourceLoc{}, "too many security groups");
    rule_base_.resize(p_.groups.size());
    for (size_t g = 0; g < p_.groups.size(); ++g) {
      const SecurityGroup& sg = p_.groups[g];
      for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
        const auto& list = d == Direction::kInbound ? sg.inbound : sg.outbound;
        rule_base_[g][static_cast<size_t>(d)] = static_cast<RuleId>(out_->rules_.size());
        for (size_t k = 0; k < list.size(); ++k) {
          const SgRule& r = list[k];
          RuleInfo info;
          info.group = static_cast<uint16_t>(g);
          info.dir = d;
          info.index = static_cast<uint32_t>(k);
          info.group_name = sg.name;
          info.text = r.str(d);
          info.description = r.description;
          info.loc = r.loc;
          out_->rules_.push_back(std::move(info));
          rule_ptr_.push_back(&r);
          for (const Peer& peer : r.peers) {
            if (peer.kind == PeerKind::kGroup &&
                resolve(peer.name, group_by_name_, group_by_id_) < 0) {
              error(peer.loc, "unknown security group '" + peer.name + "' in a rule of group '" +
                                  sg.name + "'");
            } else if (peer.kind == PeerKind::kPrefixList &&
                       resolve(peer.name, pl_by_name_, pl_by_id_) < 0) {
              error(peer.loc,
                    "unknown prefix list '" + peer.name + "' in a rule of group '" + sg.name + "'");
            }
          }
        }
      }
    }
  }

  void buildAcls() {
    if (p_.acls.size() >= kNoAcl) error(SourceLoc{}, "too many network ACLs");
    for (size_t a = 0; a < p_.acls.size(); ++a) {
      const NetworkAcl& acl = p_.acls[a];
      AclInfo info;
      info.name = acl.name;
      info.id = acl.id;
      info.loc = acl.loc;
      for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
        std::vector<const AclEntry*> sorted;
        for (const AclEntry& e : d == Direction::kInbound ? acl.inbound : acl.outbound)
          sorted.push_back(&e);
        // The loader sorts already; sorting again keeps compile() correct on any Policy.
        std::stable_sort(sorted.begin(), sorted.end(), [](const AclEntry* x, const AclEntry* y) {
          return x->rule_number < y->rule_number;
        });
        for (const AclEntry* e : sorted) {
          AclEntryInfo ei;
          ei.acl = static_cast<AclId>(a);
          ei.dir = d;
          ei.rule_number = e->rule_number;
          ei.allow = e->allow;
          ei.acl_name = acl.name;
          ei.text = e->str(d);
          ei.loc = e->loc;
          ei.index = static_cast<uint32_t>(
              e - (d == Direction::kInbound ? acl.inbound.data() : acl.outbound.data()));
          acl_entries_sorted_[a][static_cast<size_t>(d)].push_back(
              {e, static_cast<AclEntryId>(out_->acl_entries_.size())});
          out_->acl_entries_.push_back(std::move(ei));
        }
        AclEntryInfo star;
        star.acl = static_cast<AclId>(a);
        star.dir = d;
        star.rule_number = 0;
        star.allow = false;
        star.acl_name = acl.name;
        star.text = std::string("* deny all ") + (d == Direction::kInbound ? "from" : "to") +
                    " 0.0.0.0/0, ::/0";
        info.default_entry[static_cast<size_t>(d)] =
            static_cast<AclEntryId>(out_->acl_entries_.size());
        out_->acl_entries_.push_back(std::move(star));
      }
      out_->acl_default_.push_back(info.default_entry);
      out_->acls_.push_back(std::move(info));
    }
    for (const AclEntryInfo& e : out_->acl_entries_)
      out_->acl_hot_.push_back({e.rule_number, e.acl, static_cast<uint8_t>(e.allow ? 1 : 0)});
  }

  void buildSubnets() {
    if (p_.subnets.size() >= kNoSubnet) error(SourceLoc{}, "too many subnets");
    for (const Subnet& s : p_.subnets) {
      SubnetInfo info;
      info.name = s.name;
      info.id = s.id;
      info.cidrs = s.cidrs;
      info.loc = s.loc;
      if (!s.acl.empty()) {
        long a = resolve(s.acl, acl_by_name_, acl_by_id_);
        if (a < 0) {
          error(s.loc, "subnet '" + s.name + "' names unknown network ACL '" + s.acl + "'");
        } else {
          info.acl = static_cast<AclId>(a);
          info.acl_name = p_.acls[static_cast<size_t>(a)].name;
        }
      }
      out_->subnet_hot_.push_back({static_cast<uint32_t>(out_->subnet_cidrs_.size()),
                                   static_cast<uint16_t>(s.cidrs.size()), info.acl});
      out_->subnet_cidrs_.insert(out_->subnet_cidrs_.end(), s.cidrs.begin(), s.cidrs.end());
      out_->subnets_.push_back(std::move(info));
    }
  }

  SubnetId subnetFor(const std::vector<IpAddr>& addrs) const {
    for (const IpAddr& a : addrs) {
      SubnetId best = kNoSubnet;
      int best_prefix = -1;
      for (size_t s = 0; s < out_->subnets_.size(); ++s) {
        for (const Cidr& c : out_->subnets_[s].cidrs) {
          if (c.contains(a) && c.prefix > best_prefix) {
            best = static_cast<SubnetId>(s);
            best_prefix = c.prefix;
          }
        }
      }
      if (best != kNoSubnet) return best;
    }
    return kNoSubnet;
  }

  void buildInterfaces() {
    if (p_.interfaces.size() >= kNoIface) error(SourceLoc{}, "too many interfaces");
    size_t n_addrs = 0;
    for (const Interface& i : p_.interfaces)
      n_addrs += i.addresses.size();
    size_t cap = 16;
    while (cap < 2 * n_addrs)
      cap *= 2;
    out_->addr_hash_.assign(cap, {});
    out_->addr_hash_mask_ = cap - 1;

    std::map<std::vector<uint16_t>, uint32_t> set_ids;
    for (size_t i = 0; i < p_.interfaces.size(); ++i) {
      const Interface& itf = p_.interfaces[i];
      InterfaceInfo info;
      info.name = itf.name;
      info.id = itf.id;
      info.addresses = itf.addresses;
      info.timeouts = itf.timeouts;
      info.loc = itf.loc;
      if (itf.groups.size() > kMaxGroupsPerInterface) {
        error(itf.loc, "interface '" + itf.name + "' has " + std::to_string(itf.groups.size()) +
                           " security groups; at most " + std::to_string(kMaxGroupsPerInterface) +
                           " are allowed");
      }
      for (const std::string& gname : itf.groups) {
        long g = resolve(gname, group_by_name_, group_by_id_);
        if (g < 0) {
          error(itf.loc,
                "interface '" + itf.name + "' names unknown security group '" + gname + "'");
          continue;
        }
        info.groups.push_back(static_cast<uint16_t>(g));
        info.group_names.push_back(p_.groups[static_cast<size_t>(g)].name);
      }
      info.subnet = subnetFor(itf.addresses);
      auto [it, inserted] = set_ids.emplace(info.groups, static_cast<uint32_t>(group_sets_.size()));
      if (inserted) group_sets_.push_back(info.groups);
      out_->iface_hot_.push_back({it->second, info.subnet});
      for (const IpAddr& a : itf.addresses)
        insertAddress(a, static_cast<IfaceId>(i), itf);
      out_->ifaces_.push_back(std::move(info));
    }
  }

  void insertAddress(const IpAddr& a, IfaceId id, const Interface& itf) {
    size_t h = IpAddrHash{}(a)&out_->addr_hash_mask_;
    while (out_->addr_hash_[h].iface != kNoIface) {
      if (out_->addr_hash_[h].addr == a) {
        if (out_->addr_hash_[h].iface != id) {
          error(itf.loc, "address " + a.str() + " of interface '" + itf.name +
                             "' also belongs to interface '" +
                             p_.interfaces[out_->addr_hash_[h].iface].name + "'");
        }
        return;
      }
      h = (h + 1) & out_->addr_hash_mask_;
    }
    out_->addr_hash_[h] = {a, id};
  }

  // Every rule's peers as CIDRs per family; group references become the host addresses of the
  // interfaces carrying the group (self reference included).
  void expandPeers() {
    std::vector<std::vector<IpAddr>> group_addrs(p_.groups.size());
    for (const InterfaceInfo& itf : out_->ifaces_) {
      for (uint16_t g : itf.groups)
        group_addrs[g].insert(group_addrs[g].end(), itf.addresses.begin(), itf.addresses.end());
    }
    rule_cidrs_.resize(rule_ptr_.size());
    rule_all_peer_.resize(rule_ptr_.size());
    out_->rule_peers_.resize(rule_ptr_.size());
    for (size_t r = 0; r < rule_ptr_.size(); ++r) {
      CompiledPolicy::RulePeers& meta = out_->rule_peers_[r];
      auto add = [&](const Cidr& c) {
        const size_t f = c.addr.isV4() ? 0 : 1;
        rule_cidrs_[r][f].push_back(c);
        if (c.prefix == 0) rule_all_peer_[r][f] = true;
        meta.per_peer.back().push_back(c);
      };
      for (const Peer& peer : rule_ptr_[r]->peers) {
        meta.per_peer.emplace_back();
        switch (peer.kind) {
          case PeerKind::kCidr:
            add(peer.cidr);
            break;
          case PeerKind::kPrefixList:
            for (const Cidr& c :
                 p_.prefix_lists[static_cast<size_t>(resolve(peer.name, pl_by_name_, pl_by_id_))]
                     .cidrs)
              add(c);
            break;
          case PeerKind::kGroup:
            for (const IpAddr& a :
                 group_addrs[static_cast<size_t>(resolve(peer.name, group_by_name_, group_by_id_))])
              add(Cidr::host(a));
            break;
        }
      }
      meta.by_family = rule_cidrs_[r];
      meta.all = rule_all_peer_[r];
    }
  }

  void buildProtoSlots() {
    slot_proto_ = {kProtoTcp, kProtoUdp, kProtoIcmp, kProtoIcmpV6, kSlotUnlisted};
    out_->proto_slot_.fill(4);
    out_->proto_slot_[kProtoTcp] = 0;
    out_->proto_slot_[kProtoUdp] = 1;
    out_->proto_slot_[kProtoIcmp] = 2;
    out_->proto_slot_[kProtoIcmpV6] = 3;
    auto note = [&](int proto) {
      if (proto < 0 || proto > 255 || out_->proto_slot_[static_cast<size_t>(proto)] != 4) return;
      out_->proto_slot_[static_cast<size_t>(proto)] = static_cast<uint8_t>(slot_proto_.size());
      slot_proto_.push_back(proto);
    };
    for (const SgRule* r : rule_ptr_)
      note(r->match.proto);
    for (const NetworkAcl& a : p_.acls) {
      for (const AclEntry& e : a.inbound)
        note(e.match.proto);
      for (const AclEntry& e : a.outbound)
        note(e.match.proto);
    }
    out_->proto_slots_ = slot_proto_.size();
  }

  // Index 0 of every pool is the empty structure: one interval, one range, no rule.
  void initPools() {
    out_->v4_tables_.push_back({0, 1});
    out_->v4_ranges_.push_back({0, kNoRule});
    out_->v6_tables_.push_back({0, 1});
    out_->v6_ranges_.push_back({0, 0, kNoRule, 0});
    out_->matchers_.push_back({0, 1});
    out_->interval_starts_.push_back(0);
    out_->interval_values_.push_back(CompiledPolicy::IntervalValue{});  // table 0 of either family
  }

  // The address-range table for the candidates `cands` (indices into `all`, in rank order).
  uint32_t buildTable(const std::vector<Candidate>& all, const std::vector<uint32_t>& cands,
                      bool v4) {
    struct Item {
      U128 lo, hi;
      uint32_t rank;
    };
    std::vector<Item> items;
    for (uint32_t rank = 0; rank < cands.size(); ++rank) {
      const Candidate& c = all[cands[rank]];
      for (size_t k = 0; k < c.n_cidrs; ++k) {
        auto [lo, hi] = cidrRange(c.cidrs[k]);
        items.push_back({lo, hi, rank});
      }
    }
    if (items.empty()) return 0;
    std::sort(items.begin(), items.end(), [](const Item& x, const Item& y) {
      if (x.lo != y.lo) return x.lo < y.lo;
      if (x.hi != y.hi) return x.hi > y.hi;
      return x.rank < y.rank;
    });
    const U128 max = familyMax(v4);
    std::vector<std::pair<U128, uint32_t>> out;  // (range start, rank)
    auto emit = [&](U128 pos, uint32_t r) {
      if (!out.empty() && out.back().first == pos) {
        out.back().second = r;
        if (out.size() >= 2 && out[out.size() - 2].second == r) out.pop_back();
        return;
      }
      if (!out.empty() && out.back().second == r) return;
      out.push_back({pos, r});
    };
    struct Open {
      U128 hi;
      uint32_t eff;
    };
    std::vector<Open> stack;
    auto close = [&](bool all_open, U128 pos) {
      while (!stack.empty() && (all_open || stack.back().hi < pos)) {
        const Open top = stack.back();
        stack.pop_back();
        if (top.hi == max) continue;
        emit(top.hi + 1, stack.empty() ? kNoRank : stack.back().eff);
      }
    };
    emit(0, kNoRank);
    for (const Item& it : items) {
      close(false, it.lo);
      const uint32_t eff = stack.empty() ? it.rank : std::min(it.rank, stack.back().eff);
      stack.push_back({it.hi, eff});
      emit(it.lo, eff);
    }
    close(true, 0);

    auto value = [&](uint32_t rank) { return rank == kNoRank ? kNoRule : all[cands[rank]].id; };
    if (v4) {
      std::vector<CompiledPolicy::V4Range> ranges;
      for (auto& [s, r] : out) {
        CompiledPolicy::V4Range x{};
        x.start = static_cast<uint32_t>(s);
        x.value = value(r);
        ranges.push_back(x);
      }
      return internTable(ranges, &out_->v4_tables_, &out_->v4_ranges_, &v4_table_ids_);
    }
    std::vector<CompiledPolicy::V6Range> ranges;
    for (auto& [s, r] : out) {
      CompiledPolicy::V6Range x{};
      x.hi = static_cast<uint64_t>(s >> 64);
      x.lo = static_cast<uint64_t>(s);
      x.value = value(r);
      ranges.push_back(x);
    }
    return internTable(ranges, &out_->v6_tables_, &out_->v6_ranges_, &v6_table_ids_);
  }

  // Adds a table to the family's pool unless an identical one is there already.
  template <typename R>
  uint32_t internTable(const std::vector<R>& ranges, std::vector<CompiledPolicy::AddrTable>* tables,
                       std::vector<R>* pool,
                       std::unordered_map<size_t, std::vector<uint32_t>>* ids) {
    const size_t h = hashBytes(ranges, 0);
    auto& bucket = (*ids)[h];
    for (uint32_t id : bucket) {
      const auto& t = (*tables)[id];
      if (t.count == ranges.size() &&
          std::memcmp(&(*pool)[t.offset], ranges.data(), sizeof(R) * ranges.size()) == 0)
        return id;
    }
    const auto id = static_cast<uint32_t>(tables->size());
    tables->push_back({static_cast<uint32_t>(pool->size()), static_cast<uint32_t>(ranges.size())});
    pool->insert(pool->end(), ranges.begin(), ranges.end());
    bucket.push_back(id);
    return id;
  }

  // A Matcher for candidates in priority order. untracked_ok: TCP/UDP and the reverse direction
  // allows everything, so an all-addresses rule makes the flow untracked.
  uint32_t buildMatcher(const std::vector<Candidate>& cands, bool v4, bool untracked_ok) {
    if (cands.empty()) return 0;
    std::vector<uint32_t> bounds{0};
    for (const Candidate& c : cands) {
      bounds.push_back(c.key_lo);
      if (c.key_hi < 65535) bounds.push_back(static_cast<uint32_t>(c.key_hi) + 1);
    }
    std::sort(bounds.begin(), bounds.end());
    bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());

    struct Value {
      uint32_t table;  // AddrTable index in the family's pool
      uint32_t untracked;
    };
    std::map<std::vector<uint32_t>, uint32_t> table_memo;
    std::vector<uint16_t> starts;
    std::vector<Value> values;
    std::vector<uint32_t> covering;
    for (uint32_t b : bounds) {
      covering.clear();
      bool all_peer = false;
      for (uint32_t i = 0; i < cands.size(); ++i) {
        if (cands[i].key_lo <= b && b <= cands[i].key_hi) {
          covering.push_back(i);
          all_peer = all_peer || cands[i].all_peer;
        }
      }
      auto it = table_memo.find(covering);
      if (it == table_memo.end())
        it = table_memo.emplace(covering, buildTable(cands, covering, v4)).first;
      const Value v{it->second, (untracked_ok && all_peer) ? 1u : 0u};
      if (!values.empty() && values.back().table == v.table &&
          values.back().untracked == v.untracked)
        continue;
      starts.push_back(static_cast<uint16_t>(b));
      values.push_back(v);
    }
    if (starts.size() == 1 && values[0].table == 0 && values[0].untracked == 0) return 0;

    // Deduplicate whole matchers (table ids are per family, hence the family in the key).
    std::vector<uint32_t> key{v4 ? 4u : 6u};
    for (size_t i = 0; i < starts.size(); ++i) {
      key.push_back(starts[i]);
      key.push_back(values[i].table);
      key.push_back(values[i].untracked);
    }
    auto [it, inserted] =
        matcher_ids_.emplace(std::move(key), static_cast<uint32_t>(out_->matchers_.size()));
    if (!inserted) return it->second;
    out_->matchers_.push_back({static_cast<uint32_t>(out_->interval_starts_.size()),
                               static_cast<uint32_t>(starts.size())});
    out_->interval_starts_.insert(out_->interval_starts_.end(), starts.begin(), starts.end());
    const auto& tables = v4 ? out_->v4_tables_ : out_->v6_tables_;
    for (const Value& v : values) {
      CompiledPolicy::IntervalValue iv;
      iv.table_offset = tables[v.table].offset;
      iv.table_count = tables[v.table].count & 0x7FFFFFFF;
      iv.untracked = v.untracked;
      out_->interval_values_.push_back(iv);
    }
    return it->second;
  }

  // Does direction `d` of the group set allow all addresses of the family on all ports of the
  // slot's protocol with a single rule (proto all, or the protocol with ports 0-65535)?
  bool allowsEverything(const std::vector<uint16_t>& set, Direction d, int slot_proto,
                        size_t fam) const {
    for (uint16_t g : set) {
      const SecurityGroup& sg = p_.groups[g];
      const auto& list = d == Direction::kInbound ? sg.inbound : sg.outbound;
      const RuleId base = rule_base_[g][static_cast<size_t>(d)];
      for (size_t k = 0; k < list.size(); ++k) {
        const Match& m = list[k].match;
        const bool all_ports = m.proto == kProtoAll || (m.proto == slot_proto && m.allPorts());
        if (all_ports && rule_all_peer_[base + k][fam]) return true;
      }
    }
    return false;
  }

  void buildSgMatchers() {
    const size_t n_slots = slot_proto_.size();
    out_->sg_matcher_.assign(group_sets_.size() * 2 * n_slots * 2, out_->matchers_[0]);
    std::vector<Candidate> cands;
    for (size_t s = 0; s < group_sets_.size(); ++s) {
      const std::vector<uint16_t>& set = group_sets_[s];
      for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
        const Direction rev = d == Direction::kInbound ? Direction::kOutbound : Direction::kInbound;
        for (size_t slot = 0; slot < n_slots; ++slot) {
          const int sp = slot_proto_[slot];
          for (size_t fam = 0; fam < 2; ++fam) {
            cands.clear();
            for (uint16_t g : set) {
              const SecurityGroup& sg = p_.groups[g];
              const auto& list = d == Direction::kInbound ? sg.inbound : sg.outbound;
              const RuleId base = rule_base_[g][static_cast<size_t>(d)];
              for (size_t k = 0; k < list.size(); ++k) {
                const Match& m = list[k].match;
                const RuleId id = base + static_cast<RuleId>(k);
                Candidate c;
                if (!protoMatchesSlot(m.proto, sp) || !keyRange(m, &c.key_lo, &c.key_hi)) continue;
                const auto& cidrs = rule_cidrs_[id][fam];
                if (cidrs.empty()) continue;
                c.cidrs = cidrs.data();
                c.n_cidrs = cidrs.size();
                c.id = id;
                c.all_peer = rule_all_peer_[id][fam];
                cands.push_back(c);
              }
            }
            const bool untracked_ok =
                (sp == kProtoTcp || sp == kProtoUdp) && allowsEverything(set, rev, sp, fam);
            const size_t idx = ((s * 2 + static_cast<size_t>(d)) * n_slots + slot) * 2 + fam;
            out_->sg_matcher_[idx] = out_->matchers_[buildMatcher(cands, fam == 0, untracked_ok)];
          }
        }
      }
    }
  }

  void buildAclMatchers() {
    const size_t n_slots = slot_proto_.size();
    out_->acl_matcher_.assign(p_.acls.size() * 2 * n_slots * 2, out_->matchers_[0]);
    std::vector<Candidate> cands;
    for (size_t a = 0; a < p_.acls.size(); ++a) {
      for (Direction d : {Direction::kInbound, Direction::kOutbound}) {
        const auto& entries = acl_entries_sorted_[a][static_cast<size_t>(d)];
        for (size_t slot = 0; slot < n_slots; ++slot) {
          for (size_t fam = 0; fam < 2; ++fam) {
            cands.clear();
            for (const auto& [e, id] : entries) {
              Candidate c;
              if (!protoMatchesSlot(e->match.proto, slot_proto_[slot]) ||
                  !keyRange(e->match, &c.key_lo, &c.key_hi))
                continue;
              if ((e->cidr.addr.isV4() ? 0u : 1u) != fam) continue;
              c.cidrs = &e->cidr;
              c.n_cidrs = 1;
              c.id = id;
              cands.push_back(c);
            }
            const size_t idx = ((a * 2 + static_cast<size_t>(d)) * n_slots + slot) * 2 + fam;
            out_->acl_matcher_[idx] = out_->matchers_[buildMatcher(cands, fam == 0, false)];
          }
        }
      }
    }
  }

  const Policy& p_;
  CompiledPolicy* out_;
  Diagnostics* diags_;

  std::unordered_map<std::string, size_t> group_by_name_, group_by_id_;
  std::unordered_map<std::string, size_t> pl_by_name_, pl_by_id_;
  std::unordered_map<std::string, size_t> acl_by_name_, acl_by_id_;

  std::vector<std::array<RuleId, 2>> rule_base_;  // per group and direction: first RuleId
  std::vector<const SgRule*> rule_ptr_;           // per RuleId (points into p_)
  std::vector<std::array<std::vector<Cidr>, 2>> rule_cidrs_;  // per RuleId and family
  std::vector<std::array<bool, 2>> rule_all_peer_;
  std::map<size_t, std::array<std::vector<std::pair<const AclEntry*, AclEntryId>>, 2>>
      acl_entries_sorted_;
  std::vector<std::vector<uint16_t>> group_sets_;
  std::vector<int> slot_proto_;

  std::unordered_map<size_t, std::vector<uint32_t>> v4_table_ids_, v6_table_ids_;
  std::map<std::vector<uint32_t>, uint32_t> matcher_ids_;
};

CompiledPolicy::CompiledPolicy() = default;
CompiledPolicy::~CompiledPolicy() = default;

const SgRule& CompiledPolicy::sourceRule(RuleId r) const {
  const RuleInfo& ri = rules_[r];
  const SecurityGroup& g = source_.groups[ri.group];
  return ri.dir == Direction::kInbound ? g.inbound[ri.index] : g.outbound[ri.index];
}

const AclEntry* CompiledPolicy::sourceAclEntry(AclEntryId e) const {
  const AclEntryInfo& ai = acl_entries_[e];
  if (ai.rule_number == 0 || ai.acl >= source_.acls.size()) return nullptr;
  const NetworkAcl& acl = source_.acls[ai.acl];
  return &(ai.dir == Direction::kInbound ? acl.inbound : acl.outbound)[ai.index];
}

CompiledPolicy::Stats CompiledPolicy::stats() const {
  Stats s;
  s.group_sets = 0;
  for (const IfaceHot& h : iface_hot_)
    s.group_sets = std::max<size_t>(s.group_sets, h.group_set + 1);
  s.matchers = matchers_.size();
  s.port_intervals = interval_starts_.size();
  s.addr_tables = v4_tables_.size() + v6_tables_.size();
  s.addr_ranges = v4_ranges_.size() + v6_ranges_.size();
  return s;
}

CompileResult compile(const Policy& policy) {
  CompileResult result;
  auto compiled = std::make_shared<CompiledPolicy>();
  PolicyCompiler compiler(policy, compiled.get(), &result.diagnostics);
  if (compiler.run()) result.policy = std::move(compiled);
  return result;
}

}  // namespace statewall::rules
