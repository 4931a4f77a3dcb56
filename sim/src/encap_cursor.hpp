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

// "vlan:100, mpls:16" (dataplane::encapText of each).
inline std::string encapList(std::span<const dataplane::EncapHeader> hs) {
  std::string s;
  for (const auto& h : hs)
    s += (s.empty() ? "" : ", ") + dataplane::encapText(h);
  return s;
}

// Where a packet with these headers around it was judged, in words ("" for none):
//   "carried in vlan:100, mpls:16 (layer-2.5 headers, unwrapped)"
//   "judged inside vxlan:vni=42 between 10.0.0.1 and 10.0.0.2; the outer packet was not judged"
//   "judged inside gre between A and B, then vxlan:vni=42 between C and D; the outer packets
//    were not judged; carried in vlan:100 (layer-2.5 headers, unwrapped)"
inline std::string encapPhrase(std::span<const dataplane::EncapHeader> hs) {
  std::string tunnels;
  std::vector<dataplane::EncapHeader> l25;
  size_t n_tunnels = 0;
  for (const auto& h : hs) {
    if (!dataplane::encapIsTunnel(h.kind)) {
      l25.push_back(h);
      continue;
    }
    tunnels += (n_tunnels++ == 0 ? "judged inside " : ", then ") + dataplane::encapText(h);
    if (h.has_outer) tunnels += " between " + h.src.str() + " and " + h.dst.str();
  }
  std::string s;
  if (n_tunnels > 0) {
    s = tunnels + (n_tunnels == 1 ? "; the outer packet was not judged"
                                  : "; the outer packets were not judged");
  }
  if (!l25.empty()) {
    s += (s.empty() ? "" : "; ") + std::string("carried in ") + encapList(l25) +
         " (layer-2.5 headers, unwrapped)";
  }
  return s;
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

  // The encapsulation of packet `index` (1-based), outermost first, as the replay's parser walked
  // it: its layer-2.5 headers and, when the engine judged the packet inside tunnels
  // (`tunnel_depth` > 0, the ParsedPacket's), the tunnels too, with the options (the UDP tunnel
  // ports) it used. Empty when the packet has none or the cursor cannot reach it.
  std::vector<dataplane::EncapHeader> headers(uint64_t index, uint8_t tunnel_depth,
                                              const dataplane::ParseOptions& opts) {
    const uint8_t* data = nullptr;
    uint32_t caplen = 0;
    dataplane::LinkType link = dataplane::LinkType::kEthernet;
    if (!frame(index, &data, &caplen, &link)) return {};
    dataplane::ParseOptions o = opts;
    o.decap = tunnel_depth > 0;
    return dataplane::encapsulation(data, caplen, link, o);
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
