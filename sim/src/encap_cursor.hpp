// The encapsulation headers of the packets a Replay judges, for explain and report: the replay's
// observer hands them the parsed packet (the innermost one, with --decap), not the frame, and the
// headers around it ("vlan:100", "vxlan:vni=42" between which addresses) are only in the frame's
// bytes (dataplane::encapsulation()).
//
// The cursor reads the same traces a second time, in the order Replay::runFiles reads them (file
// after file, every packet TraceReader returns is the next index), or looks the packet up in the
// frames given to Replay::runFrames. Indexes asked for must not decrease. A trace that is not a
// regular file (a pipe) cannot be read twice: the cursor is then off and names no encapsulation.
// Not on any packet path (it allocates).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "statewall/dataplane/packet.hpp"
#include "statewall/sim/pcap_io.hpp"
#include "statewall/sim/replay.hpp"

namespace statewall::sim::detail {

// One encapsulation header as the outputs name it ("vlan:100", "mpls:16", "pw-eth").
inline std::string encapName(const dataplane::EncapHeader& h) {
  if (h.kind == dataplane::EncapHeader::Kind::kPseudowire) {
    return std::string(dataplane::encapKindName(h.kind));
  }
  return std::string(dataplane::encapKindName(h.kind)) + ":" + std::to_string(h.value);
}

// "vlan:100, mpls:16"
inline std::string encapList(std::span<const dataplane::EncapHeader> hs) {
  std::string s;
  for (const auto& h : hs)
    s += (s.empty() ? "" : ", ") + encapName(h);
  return s;
}

// Where a packet was judged, in words, for a frame with these headers (none: ""):
//   "carried in vlan:100, mpls:16 (layer-2.5 headers, unwrapped)"
inline std::string encapPhrase(std::span<const dataplane::EncapHeader> hs) {
  if (hs.empty()) return "";
  return "carried in " + encapList(hs) + " (layer-2.5 headers, unwrapped)";
}

class EncapCursor {
 public:
  // The traces Replay::runFiles reads. Off when one of them is not a regular file.
  void openFiles(const std::vector<std::string>& paths) {
    for (const auto& p : paths) {
      struct stat st {};
      if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
    }
    paths_ = paths;
    on_ = true;
  }

  // Frames given to Replay::runFrames; the first of them is packet `first_index`. The vector
  // must outlive the calls that ask about its packets.
  void useFrames(const std::vector<Frame>* frames, uint64_t first_index) {
    frames_ = frames;
    frames_first_ = first_index;
    on_ = true;
  }

  bool on() const { return on_; }

  // The encapsulation of packet `index` (1-based), outermost first, walked as the replay's
  // parser walked it; empty when the packet has none or the cursor cannot reach it.
  std::vector<dataplane::EncapHeader> headers(uint64_t index) {
    const uint8_t* data = nullptr;
    uint32_t caplen = 0;
    dataplane::LinkType link = dataplane::LinkType::kEthernet;
    if (!frame(index, &data, &caplen, &link)) return {};
    return dataplane::encapsulation(data, caplen, link);
  }

 private:
  bool frame(uint64_t index, const uint8_t** data, uint32_t* caplen, dataplane::LinkType* link) {
    if (!on_) return false;
    if (frames_ != nullptr) {
      if (index < frames_first_ || index - frames_first_ >= frames_->size()) return false;
      const Frame& f = (*frames_)[index - frames_first_];
      *data = f.bytes.data();
      *caplen = static_cast<uint32_t>(f.bytes.size());
      *link = f.link;
      return true;
    }
    while (read_ < index) {
      if (!reader_) {
        if (next_path_ >= paths_.size()) return off();
        TraceError err;
        reader_ = TraceReader::open(paths_[next_path_++], &err);
        if (!reader_) return off();
      }
      if (reader_->next(&pkt_) != TraceReader::Status::kPacket) {
        if (reader_->error().message.empty()) {
          reader_.reset();  // the end of this trace: the next one continues the numbering
          continue;
        }
        return off();
      }
      ++read_;
    }
    if (read_ != index) return false;  // an index asked for before (they must not decrease)
    *data = pkt_.data;
    *caplen = pkt_.caplen;
    *link = pkt_.link;
    return true;
  }

  bool off() {
    on_ = false;
    reader_.reset();
    return false;
  }

  bool on_ = false;
  const std::vector<Frame>* frames_ = nullptr;
  uint64_t frames_first_ = 1;
  std::vector<std::string> paths_;
  size_t next_path_ = 0;
  std::unique_ptr<TraceReader> reader_;
  TracePacket pkt_;
  uint64_t read_ = 0;  // packets read from the traces so far
};

}  // namespace statewall::sim::detail
