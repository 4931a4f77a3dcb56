// --connections: the connection log. Attributes every judged packet to its connection
// (conn_tracker.hpp), hands the records that end to every observer (the summary counts their
// states) and writes them, in Zeek's conn.log vocabulary, as JSON lines or Zeek's TSV.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "conn_tracker.hpp"
#include "out_file.hpp"
#include "replay_observer.hpp"

namespace statewall::sim::detail {

class ConnLogOutput final : public ReplayObserver {
 public:
  // `observers`: the driver's list (this one among them), given each record that ends.
  ConnLogOutput(const ReplayContext& ctx, const std::vector<ReplayObserver*>* observers)
      : ctx_(ctx), fanout_(observers), tracker_(&fanout_, ctx.numbers) {}

  // Creates the file (and writes the TSV header). false with *err.
  bool open(const std::string& path, ConnFormat format, std::string* err);

  void packetsJudged(const JudgedBurst& b) override;
  void connectionsEnded(const ConnRecord* records, size_t n) override;
  bool finish(std::string* err) override;

  // Ends every record (the run is over; before the observers' finish()), at `clock`.
  void endAll(uint64_t clock);

 private:
  struct Fanout final : ConnSink {
    explicit Fanout(const std::vector<ReplayObserver*>* o) : observers(o) {}
    void connectionsEnded(const ConnRecord* records, size_t n) override {
      for (ReplayObserver* o : *observers)
        o->connectionsEnded(records, n);
    }
    const std::vector<ReplayObserver*>* observers;
  };

  bool decap() const { return ctx_.options->parse.decap; }
  void observeTunnels(const dataplane::PacketRef& frame, const dataplane::Verdict& v, uint64_t ts);
  void writeJson(const ConnRecord& r, std::string_view state);
  void writeTsv(const ConnRecord& r, std::string_view state);

  const ReplayContext& ctx_;
  Fanout fanout_;
  ConnTracker tracker_;
  std::array<ConnTracker::Carrier, ConnRecord::kMaxParents> carriers_{};
  OutFile out_;
  ConnFormat format_ = ConnFormat::kJsonl;
};

}  // namespace statewall::sim::detail
