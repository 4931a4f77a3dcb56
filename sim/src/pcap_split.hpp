// --allowed / --denied: the judged packets split into two captures, each packet with its own
// timestamp, lengths and link type. Classic pcap of the inputs' link type, as the inputs are;
// pcapng when an input is pcapng or the inputs differ in link type (a classic pcap holds one).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "replay_observer.hpp"
#include "statewall/sim/pcap_io.hpp"

namespace statewall::sim::detail {

class PcapSplit final : public ReplayObserver {
 public:
  PcapSplit(std::string allowed_path, std::string denied_path)
      : allowed_path_(std::move(allowed_path)), denied_path_(std::move(denied_path)) {}

  // Whether the files can be created (they are written once the inputs' format is known).
  bool check(std::string* err) const;
  bool isOpen() const { return open_; }
  // Learns the format from the traces (their headers; pcapng: the blocks before the first
  // packet) and opens the files. false with *err when a file cannot be created. Timestamps of
  // the first readable trace's resolution: nano() says which.
  bool openForTraces(const std::vector<std::string>& paths, std::string* err);
  // The same for frames in memory (nanosecond timestamps).
  bool openForFrames(const std::vector<Frame>& frames, std::string* err);
  bool nano() const { return nano_; }

  void packetsJudged(const JudgedBurst& b) override;
  bool finish(std::string* err) override;

 private:
  base::Status openFiles();

  std::string allowed_path_, denied_path_;
  std::unique_ptr<PcapWriter> allowed_, denied_;
  bool open_ = false;
  int dlt_ = 0;      // classic pcap: the inputs' one link type
  bool ng_ = false;  // pcapng: the inputs are pcapng or differ in link type
  uint32_t snaplen_ = 262144;
  bool nano_ = true;
};

}  // namespace statewall::sim::detail
