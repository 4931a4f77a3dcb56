#include "stateless_compare.hpp"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "conn_tracker.hpp"
#include "statewall/sim/stateless.hpp"

namespace statewall::sim::detail {
namespace {

using dataplane::Reason;
using dataplane::Verdict;

constexpr size_t kMaxChangeFlows = 1 << 16;

}  // namespace

void StatelessCompare::packetsJudged(const JudgedBurst& b) {
  for (unsigned i = 0; i < b.n; ++i)
    b.stateless[i] = compare(b.parsed[i], b.verdicts[i], b.meta[i]);
}

Reason StatelessCompare::compare(const dataplane::ParsedPacket& p, const Verdict& v,
                                 const PacketMeta& m) {
  ReplaySummary& sum = *ctx_.summary;
  // Control traffic, unparsable packets and later fragments have no rule-only verdict of their
  // own: the comparison leaves them as they are.
  if (!hasRulesAloneVerdict(p, v)) {
    ++sum.stateless_by_reason[static_cast<size_t>(v.reason)];
    return v.reason;
  }
  const Reason sr = statelessReason(*ctx_.policy, p, v, &eval_);
  ++sum.stateless_by_reason[static_cast<size_t>(sr)];
  const bool a = v.allowed();
  const bool b = dataplane::reasonAllows(sr);
  if (a == b) return sr;
  (a ? sum.changed_to_deny : sum.changed_to_allow) += 1;
  TaggedKey k{keyOf(p), static_cast<uint32_t>(v.reason) << 8 | static_cast<uint32_t>(sr)};
  ChangeAgg* c = changes_.find(k);
  if (c == nullptr) {
    ++sum.changed_flows;
    if (changes_.size() >= kMaxChangeFlows) return sr;
    bool ins = false;
    c = &changes_.findOrInsert(k, &ins);
    c->key = k.flow;
    c->v = v;
    c->stateless = sr;
    c->has_deny = eval_.first_deny >= 0;
    if (c->has_deny) c->deny = eval_.checks[static_cast<size_t>(eval_.first_deny)];
    c->first_index = m.index;
    c->conn_number = ctx_.numbers->find(v.conn_id);
    c->texts = ctx_.texts;
  }
  ++c->packets;
  return sr;
}

std::string StatelessCompare::ruleOnlyDenial(const ChangeAgg& c) {
  const PolicyTexts& t = *c.texts;
  if (!c.has_deny) return "the rules deny it";
  if (c.deny.kind == rules::CheckKind::kAcl) {
    if (c.deny.acl.entry != rules::kNoAclEntry && c.deny.acl.entry < t.aclEntryCount()) {
      return fmt::format("{} denies it", t.aclLabel(c.deny.acl.entry));
    }
    return "a network ACL denies it";
  }
  if (c.deny.iface != rules::kNoIface && c.deny.iface < t.ifaceCount()) {
    return t.ifaceDeny(c.deny.iface, c.deny.dir);
  }
  return "no security-group rule allows it";
}

std::string StatelessCompare::whyChanged(const ChangeAgg& c) {
  const Verdict& v = c.v;
  switch (v.reason) {
    case Reason::kAllowTracked:
      return fmt::format(
          "part of tracked connection #{}: replies and continuations need no rule in a security "
          "group; judged by rules alone, {}",
          c.conn_number, ruleOnlyDenial(c));
    case Reason::kAllowRelated:
      return fmt::format(
          "an ICMP error about tracked connection #{} passes as related traffic; judged by rules "
          "alone, {}",
          c.conn_number, ruleOnlyDenial(c));
    case Reason::kDenyInvalid:
      return fmt::format("the TCP state machine rejects it ({}); the rules alone allow it",
                         v.why != nullptr ? v.why : "invalid");
    case Reason::kDenyTableFull:
      return "the connection table was full; the rules alone allow it";
    default:
      break;
  }
  if (dataplane::reasonAllows(v.reason)) {
    return fmt::format("{}; judged by rules alone, {}", c.texts->describe(v, c.conn_number),
                       ruleOnlyDenial(c));
  }
  return fmt::format("{}; the rules alone give {}", c.texts->describe(v, c.conn_number),
                     dataplane::reasonCode(c.stateless));
}

bool StatelessCompare::finish(std::string*) {
  ReplaySummary& sum = *ctx_.summary;
  std::vector<const ChangeAgg*> ch;
  for (const auto& c : changes_.values())
    ch.push_back(&c);
  std::sort(ch.begin(), ch.end(),
            [](const ChangeAgg* a, const ChangeAgg* b) { return a->first_index < b->first_index; });
  sum.changes.clear();
  for (const ChangeAgg* c : ch) {
    sum.changes.push_back(StatelessChange{c->key, c->v.reason, c->stateless, c->packets,
                                          c->first_index, whyChanged(*c)});
  }
  return true;
}

}  // namespace statewall::sim::detail
