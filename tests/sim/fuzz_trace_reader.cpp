// libFuzzer target for TraceReader: the input is a trace file (pcap or pcapng). It is read twice,
// mapped (a memfd: a regular file) and streamed (a pipe: our pcapng reader's heap buffers, where
// ASan sees every read), and both must give the same packets, link types and error. Besides
// ASan/UBSan findings it traps on packets that break the reader's contract.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "statewall/sim/pcap_io.hpp"

using statewall::sim::TracePacket;
using statewall::sim::TraceReader;

namespace {

struct Outcome {
  bool opened = false;
  std::vector<std::vector<uint8_t>> data;
  std::vector<uint64_t> meta;  // ts, wirelen, dlt, link per packet
  TraceReader::Status end = TraceReader::Status::kEnd;
  std::string error;
};

Outcome readAll(const std::string& path) {
  Outcome o;
  statewall::sim::TraceError err;
  auto r = TraceReader::open(path, &err);
  if (!r) {
    o.error = err.message;
    return o;
  }
  o.opened = true;
  TracePacket p;
  while ((o.end = r->next(&p)) == TraceReader::Status::kPacket) {
    if (p.interface >= r->interfaces().size()) __builtin_trap();
    if (!r->interfaces()[p.interface].link) __builtin_trap();  // skipped interfaces stay skipped
    if (*r->interfaces()[p.interface].link != p.link) __builtin_trap();
    o.data.emplace_back(p.data, p.data + p.caplen);
    o.meta.insert(o.meta.end(), {p.ts_ns, p.wirelen, static_cast<uint64_t>(p.dlt),
                                 static_cast<uint64_t>(p.link)});
  }
  if (o.end == TraceReader::Status::kError) o.error = r->error().message;
  if (r->next(&p) != o.end) __builtin_trap();  // the end is sticky
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 60000) return 0;  // fits in a pipe's buffer: written before it is read
  const int mfd = ::memfd_create("trace", 0);
  if (mfd < 0) return 0;
  if (size > 0 && ::write(mfd, data, size) != static_cast<ssize_t>(size)) {
    ::close(mfd);
    return 0;
  }
  const Outcome mapped = readAll("/proc/self/fd/" + std::to_string(mfd));
  ::close(mfd);

  int fds[2];
  if (::pipe(fds) != 0) return 0;
  if (size > 0 && ::write(fds[1], data, size) != static_cast<ssize_t>(size)) {
    ::close(fds[0]);
    ::close(fds[1]);
    return 0;
  }
  ::close(fds[1]);
  const Outcome streamed = readAll("/proc/self/fd/" + std::to_string(fds[0]));
  ::close(fds[0]);

  // pcapng: both readers are ours and must agree. (Classic pcap from a pipe goes through
  // libpcap, whose empty-file and header wording differs.)
  const bool ng =
      size >= 4 && data[0] == 0x0a && data[1] == 0x0d && data[2] == 0x0d && data[3] == 0x0a;
  if (ng && mapped.opened && streamed.opened) {
    if (mapped.data != streamed.data || mapped.meta != streamed.meta) __builtin_trap();
    if (mapped.end != streamed.end || mapped.error != streamed.error) __builtin_trap();
  }
  return 0;
}
