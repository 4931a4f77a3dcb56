// Reading and writing packet traces with libpcap: pcap and pcapng in, pcap out.
//
// TraceReader streams: it holds one packet at a time (plus stdio's buffer), whatever the file
// size. Every failure names the file and the byte offset where the damage starts, so a caller can
// report "what was processed before the damage" and stop. A mapped trace that another program cuts
// short while it is read ends with such an error (at the offset where the file now ends), not with
// SIGBUS: the reader installs a process-wide SIGBUS handler that handles faults in its own mappings
// only (a packet being judged at the very moment its bytes vanish may be judged on zeros; the error
// follows at once). Neither class is thread-safe; each instance belongs to one thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "statewall/dataplane/packet.hpp"

struct pcap;
struct pcap_dumper;

namespace statewall::sim {

// Where and why a trace could not be read.
struct TraceError {
  std::string file;
  uint64_t offset = 0;  // byte offset of the structure that is damaged (file header, record)
  std::string message;

  // "FILE: byte offset N: MESSAGE"
  std::string str() const;
};

enum class TraceFormat : uint8_t { kPcap, kPcapNg };

// One packet as read. `data` stays valid until the next call to TraceReader::next().
struct TracePacket {
  const uint8_t* data = nullptr;
  uint32_t caplen = 0;   // bytes present in the trace
  uint32_t wirelen = 0;  // bytes the packet had on the wire
  uint64_t ts_ns = 0;    // capture time, nanoseconds since the Unix epoch
};

// The parser's link type for a pcap DLT (EN10MB, RAW and the raw IPv4/IPv6 DLTs 228/229,
// LINUX_SLL, LINUX_SLL2); nullopt for link types the engine cannot parse.
std::optional<dataplane::LinkType> linkTypeFromDlt(int dlt);
// The DLT the generator and writers use for a link type.
int dltFromLinkType(dataplane::LinkType link);
// "EN10MB (Ethernet)" style name of a DLT, or "DLT 147" when libpcap does not know it.
std::string dltName(int dlt);

class TraceReader {
 public:
  enum class Status : uint8_t { kPacket, kEnd, kError };

  // How records are read. kAuto: a regular classic-pcap file is memory-mapped and its records
  // are parsed in place (no copies, no stdio: the replay's speed target needs it); pcapng,
  // unusual pcap variants and non-regular files go through libpcap. kLibpcap: always libpcap
  // (the reference the mapped reader is tested against). Both give the same packets and errors.
  enum class Backend : uint8_t { kAuto, kLibpcap };

  // Opens `path` and reads its file header. Returns nullptr and fills *err when the file is
  // missing, empty, not a pcap/pcapng trace, has a truncated header or an unsupported link type.
  static std::unique_ptr<TraceReader> open(const std::string& path, TraceError* err,
                                           Backend backend = Backend::kAuto);
  ~TraceReader();
  TraceReader(const TraceReader&) = delete;
  TraceReader& operator=(const TraceReader&) = delete;

  // Reads the next packet. kEnd at a clean end of file; kError (see error()) on a truncated or
  // damaged record. After kEnd or kError every further call returns the same status.
  Status next(TracePacket* out);
  // True when packet data stays valid until the reader is destroyed (the mapped reader), not
  // just until the next call: callers may then keep pointers instead of copying.
  bool stableData() const { return map_ != nullptr; }
  bool mapped() const { return map_ != nullptr; }

  const TraceError& error() const { return error_; }
  const std::string& path() const { return path_; }
  int dlt() const { return dlt_; }
  dataplane::LinkType linkType() const { return link_; }
  TraceFormat format() const { return format_; }
  // True when the file stores nanosecond timestamps (pcap magic a1b23c4d or a pcapng
  // if_tsresol of 9); writers of packets from this file then keep nanoseconds.
  bool nanoResolution() const { return nano_; }
  uint32_t snaplen() const { return snaplen_; }
  // Bytes of the file consumed so far: the end of the last packet record read.
  uint64_t offset() const { return offset_; }
  uint64_t fileSize() const { return file_size_; }
  uint64_t packetsRead() const { return packets_; }

 private:
  TraceReader() = default;
  Status nextMapped(TracePacket* out);
  Status fail(std::string message);
  bool stillMapped(size_t end);
  Status failShrunk();

  std::string path_;
  const uint8_t* map_ = nullptr;  // the whole file, read-only (mapped reader)
  size_t map_len_ = 0;
  int guard_ = -1;         // the mapping's slot in the SIGBUS guard (pcap_io.cpp)
  int fd_ = -1;            // the mapped file, to learn its size should it shrink
  size_t dropped_ = 0;     // mapped bytes below this were released with MADV_DONTNEED
  size_t prefetched_ = 0;  // cache lines below this were prefetched
  size_t populated_ = 0;   // page tables below this were filled (MADV_POPULATE_READ)
  bool swap_ = false;      // the file's byte order differs from ours
  FILE* file_ = nullptr;   // owned by pcap_ once pcap_ is open
  pcap* pcap_ = nullptr;
  int dlt_ = 0;
  dataplane::LinkType link_ = dataplane::LinkType::kEthernet;
  TraceFormat format_ = TraceFormat::kPcap;
  bool nano_ = false;
  uint32_t snaplen_ = 0;
  uint64_t offset_ = 0;
  uint64_t file_size_ = 0;
  uint64_t packets_ = 0;
  Status done_ = Status::kPacket;
  TraceError error_;
};

// Writes a classic pcap file through libpcap's pcap_dump: the packet bytes exactly as given.
class PcapWriter {
 public:
  // Creates (truncates) `path`. `nano` selects nanosecond timestamps (magic a1b23c4d).
  // Returns nullptr and fills *err on failure.
  static std::unique_ptr<PcapWriter> open(const std::string& path, int dlt, uint32_t snaplen,
                                          bool nano, std::string* err);
  ~PcapWriter();
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;

  void write(uint64_t ts_ns, const uint8_t* data, uint32_t caplen, uint32_t wirelen);
  // Flushes and closes; false with *err when any write failed (disk full, ...). Idempotent.
  bool close(std::string* err);
  const std::string& path() const { return path_; }
  uint64_t packetsWritten() const { return packets_; }

 private:
  PcapWriter() = default;

  std::string path_;
  pcap* dead_ = nullptr;
  pcap_dumper* dumper_ = nullptr;
  FILE* file_ = nullptr;  // owned by dumper_
  bool nano_ = false;
  uint64_t packets_ = 0;
};

}  // namespace statewall::sim
