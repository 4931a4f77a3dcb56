// The summary's tallies: packets and bytes by reason, per trace, malformed layers, timestamps
// going backwards, packets the capture cut short, the connection log's states and ends, and the
// top denied flows (lossy counting once there are too many distinct ones).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "flat_map.hpp"
#include "flow_key.hpp"
#include "replay_observer.hpp"

namespace statewall::sim::detail {

class SummaryTally final : public ReplayObserver {
 public:
  explicit SummaryTally(const ReplayContext& ctx) : ctx_(ctx) {}

  void packetsJudged(const JudgedBurst& b) override;
  void connectionsEnded(const ConnRecord* records, size_t n) override;
  bool finish(std::string* err) override;

 private:
  // Per denied flow, what the summary lists; the texts are made at the end, for the flows shown
  // (with the policy texts in force when the flow was first seen), so that a flood of new flows
  // costs no allocation per packet.
  struct DeniedAgg {
    FlowKey key;
    dataplane::Verdict v;
    uint64_t packets = 0;
    uint64_t bytes = 0;
    uint64_t first_index = 0;
    std::shared_ptr<const PolicyTexts> texts;
  };

  void noteDenied(const dataplane::ParsedPacket& p, const dataplane::Verdict& v,
                  const PacketMeta& m);

  const ReplayContext& ctx_;
  uint64_t prev_ts_ = 0;  // the previous packet's timestamp, in input order
  // Bounded: when full, the rarest are dropped and the counts become estimates.
  FlatMap<TaggedKey, DeniedAgg, TaggedKeyHash, TaggedKeyEq> denied_{4096};
  uint64_t denied_floor_ = 0;
  std::vector<std::pair<std::string, uint64_t>> states_seen_;
};

}  // namespace statewall::sim::detail
