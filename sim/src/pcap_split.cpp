#include "pcap_split.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

namespace statewall::sim::detail {
namespace {

// The std::string* methods (their caller, replay.cpp, still passes one) report a Status.
bool reported(const base::Status& s, std::string* err) {
  if (!s.ok()) *err = s.message();
  return s.ok();
}

}  // namespace

bool PcapSplit::check(std::string* err) const {
  for (const std::string* path : {&allowed_path_, &denied_path_}) {
    if (path->empty()) continue;
    FILE* f = std::fopen(path->c_str(), "wb");
    if (f == nullptr) {
      *err = fmt::format("{}: cannot create: {}", *path, std::strerror(errno));
      return false;
    }
    std::fclose(f);
  }
  return true;
}

base::Status PcapSplit::openFiles() {
  if (open_) return base::Status::success();
  open_ = true;
  for (auto [path, out] :
       {std::pair{&allowed_path_, &allowed_}, std::pair{&denied_path_, &denied_}}) {
    if (path->empty()) continue;
    auto w = ng_ ? PcapWriter::openNg(*path) : PcapWriter::open(*path, dlt_, snaplen_, nano_);
    if (!w) return w.status();
    *out = std::move(*w);
  }
  return base::Status::success();
}

bool PcapSplit::openForTraces(const std::vector<std::string>& paths, std::string* err) {
  if (open_ || paths.empty()) return true;
  bool first = true;
  for (const auto& path : paths) {
    TraceError terr;
    auto reader = TraceReader::open(path, &terr);
    if (!reader) continue;  // the run reports it when it gets there
    if (first) {
      dlt_ = reader->dlt();
      nano_ = reader->nanoResolution();
      snaplen_ = std::max<uint32_t>(reader->snaplen(), 1);
      first = false;
    }
    if (reader->format() == TraceFormat::kPcapNg || reader->dlt() != dlt_) ng_ = true;
  }
  return reported(openFiles(), err);
}

bool PcapSplit::openForFrames(const std::vector<Frame>& frames, std::string* err) {
  if (open_ || frames.empty()) return true;
  dlt_ = dltFromLinkType(frames.front().link);
  nano_ = true;
  for (const auto& f : frames)
    if (f.link != frames.front().link) ng_ = true;
  return reported(openFiles(), err);
}

void PcapSplit::packetsJudged(const JudgedBurst& b) {
  for (unsigned i = 0; i < b.n; ++i) {
    PcapWriter* w = b.verdicts[i].allowed() ? allowed_.get() : denied_.get();
    const PacketMeta& m = b.meta[i];
    if (w != nullptr) w->write(m.ts, b.refs[i].data, b.refs[i].len, m.wirelen, m.dlt);
  }
}

bool PcapSplit::finish(std::string* err) {
  bool ok = true;
  // Files that never saw a trace still become valid (empty) captures.
  if (!open_ && !reported(openFiles(), err)) ok = false;
  for (auto* w : {allowed_.get(), denied_.get()}) {
    if (w == nullptr) continue;
    if (const base::Status s = w->close(); !s.ok()) {
      ok = false;
      *err = s.message();
    }
  }
  return ok;
}

}  // namespace statewall::sim::detail
