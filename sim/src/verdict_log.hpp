// --verdicts: one JSON object per packet, in input order (the keys: replay.hpp). Hand-assembled
// into a reused buffer, with no format-string parsing: it runs for every packet.
#pragma once

#include <string>

#include "out_file.hpp"
#include "replay_observer.hpp"

namespace statewall::sim::detail {

class VerdictLog final : public ReplayObserver {
 public:
  explicit VerdictLog(const ReplayContext& ctx) : ctx_(ctx) {}

  bool open(const std::string& path, std::string* err) { return out_.open(path, err); }

  void packetsJudged(const JudgedBurst& b) override;
  bool finish(std::string* err) override { return out_.close(err); }

 private:
  void write(const dataplane::PacketRef& frame, const dataplane::ParsedPacket& p,
             const dataplane::Verdict& v, const PacketMeta& m, const dataplane::Reason* stateless);
  void appendRule(fmt::memory_buffer& b, const dataplane::Verdict& v);

  const ReplayContext& ctx_;
  OutFile out_;
};

}  // namespace statewall::sim::detail
