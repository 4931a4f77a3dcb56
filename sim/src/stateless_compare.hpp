// --stateless: every packet also judged by the rules alone
// (sim/include/statewall/sim/stateless.hpp); the summary counts the rules-only reasons and lists
// the flows whose verdict would change. Writes each packet's rules-only reason into the burst for
// the verdict log.
#pragma once

#include <memory>
#include <string>

#include "flat_map.hpp"
#include "flow_key.hpp"
#include "replay_observer.hpp"
#include "statewall/rules/evaluate.hpp"

namespace statewall::sim::detail {

class StatelessCompare final : public ReplayObserver {
 public:
  explicit StatelessCompare(const ReplayContext& ctx) : ctx_(ctx) {}

  void packetsJudged(const JudgedBurst& b) override;
  bool finish(std::string* err) override;

 private:
  struct ChangeAgg {
    FlowKey key;
    dataplane::Verdict v;
    dataplane::Reason stateless = dataplane::Reason::kDenySg;
    rules::Check deny;  // the rules-only check that denied it (when has_deny)
    bool has_deny = false;
    uint64_t packets = 0;
    uint64_t first_index = 0;
    uint64_t conn_number = 0;  // of v.conn_id
    std::shared_ptr<const PolicyTexts> texts;
  };

  dataplane::Reason compare(const dataplane::ParsedPacket& p, const dataplane::Verdict& v,
                            const PacketMeta& m);
  static std::string ruleOnlyDenial(const ChangeAgg& c);
  static std::string whyChanged(const ChangeAgg& c);

  const ReplayContext& ctx_;
  rules::Evaluation eval_;
  FlatMap<TaggedKey, ChangeAgg, TaggedKeyHash, TaggedKeyEq> changes_{1024};
};

}  // namespace statewall::sim::detail
