// Reading and writing packet traces: pcap and pcapng in; pcap (through libpcap) or pcapng out.
//
// pcapng is read by our own reader (libpcap refuses a file whose interfaces have different link
// types): several sections in either byte order, each with its own interfaces; every packet
// carries its interface's link type (TracePacket::link), so one file may mix Ethernet, Linux
// cooked, raw IP and BSD loopback interfaces. Packets of an interface whose link type the engine
// cannot parse are skipped and counted per interface (interfaces()); a file in which every
// interface declared before the first packet has such a link type is refused at open, as a
// classic pcap of that link type is.
//
// TraceReader streams: it holds one packet at a time (plus stdio's buffer; streamed pcapng: one
// block, at most 16 MiB), whatever the file size. Every failure names the file and the byte offset
// where the damage starts, so a caller can report "what was processed before the damage" and stop.
// A mapped trace that another program cuts short while it is read ends with such an error (at the
// offset where the file now ends), not with SIGBUS: the reader installs a process-wide SIGBUS
// handler that handles faults in its own mappings only (a packet being judged at the very moment
// its bytes vanish may be judged on zeros; the error follows at once). Neither class is
// thread-safe; each instance belongs to one thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "statewall/base/status.hpp"
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
  // The link type of the packet's interface (classic pcap: the file's), as the parser takes it
  // and as the file names it (its DLT, which writers of the packet keep).
  dataplane::LinkType link = dataplane::LinkType::kEthernet;
  int dlt = 0;
  uint32_t interface = 0;  // index into TraceReader::interfaces()
};

// An interface of a trace: the one of a classic pcap file, or a pcapng interface description
// block (numbered from 0 in each section, as the file numbers them).
struct TraceInterface {
  uint32_t section = 0;  // pcapng section, from 0
  uint32_t index = 0;    // interface id within the section
  int dlt = 0;
  std::optional<dataplane::LinkType> link;  // nullopt: the engine cannot parse this link type
  uint32_t snaplen = 0;
  std::string name;         // pcapng if_name, when given
  uint64_t offset = 0;      // where its link type is in the file
  uint64_t packets = 0;     // packets read (pcapng only; classic pcap: TraceReader::packetsRead())
  uint64_t skipped = 0;     // packets skipped because the link type is not one the engine parses
  bool ts_pow2 = false;     // pcapng if_tsresol: timestamps in units of 2^-ts_exp s
  uint8_t ts_exp = 6;       // (or 10^-ts_exp s); microseconds unless the interface says otherwise
  int64_t ts_offset_s = 0;  // pcapng if_tsoffset, seconds added to every timestamp
};

// The parser's link type for a pcap DLT (EN10MB, RAW and the raw IPv4/IPv6 DLTs 228/229,
// LINUX_SLL, LINUX_SLL2, NULL and LOOP); nullopt for link types the engine cannot parse.
std::optional<dataplane::LinkType> linkTypeFromDlt(int dlt);
// The DLT the generator and writers use for a link type.
int dltFromLinkType(dataplane::LinkType link);
// "EN10MB (Ethernet)" style name of a DLT, or "DLT 147" when libpcap does not know it.
std::string dltName(int dlt);

class TraceReader {
 public:
  enum class Status : uint8_t { kPacket, kEnd, kError };

  // How records are read. kAuto: a regular classic-pcap file is memory-mapped and its records
  // are parsed in place (no copies, no stdio: the replay's speed target needs it); unusual pcap
  // variants and non-regular classic files go through libpcap; pcapng is read by our own reader
  // (mapped when the file is regular, streamed through stdio otherwise). kLibpcap: always libpcap
  // (the reference the mapped reader is tested against; for classic pcap both give the same
  // packets and errors; libpcap refuses pcapng files whose interfaces differ in link type).
  enum class Backend : uint8_t { kAuto, kLibpcap };

  // Opens `path` and reads its file header (pcapng: the blocks before the first packet). Returns
  // nullptr and fills *err when the file is missing, empty, not a pcap/pcapng trace, has a
  // truncated or damaged header or an unsupported link type (pcapng: on every interface declared
  // before the first packet).
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
  // The first interface's link type (classic pcap: the file's). A pcapng file may have others:
  // each packet says its own (TracePacket::link).
  int dlt() const { return dlt_; }
  dataplane::LinkType linkType() const { return link_; }
  // Every interface declared so far, in file order (pcapng: sections one after the other).
  const std::vector<TraceInterface>& interfaces() const { return ifaces_; }
  // Packets skipped so far because their interface's link type is not one the engine parses.
  uint64_t packetsSkipped() const { return skipped_; }
  TraceFormat format() const { return format_; }
  // True when the file stores nanosecond timestamps (pcap magic a1b23c4d or a pcapng
  // if_tsresol finer than microseconds on its first interface); writers of packets from this
  // file then keep nanoseconds.
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
  void afterRecord();
  // pcapng (pcap_io.cpp): the block loop; `stop_at_packet` leaves the first packet block unread
  // (open() reads the blocks before it).
  Status nextNg(TracePacket* out, bool stop_at_packet);
  static std::unique_ptr<TraceReader> openNg(std::unique_ptr<TraceReader> r, FILE* f, bool regular,
                                             TraceError* err);
  Status loadBlock(const uint8_t** block, uint32_t* len);
  bool blockLength(const uint8_t* b, uint32_t* len);
  Status failNg(uint64_t offset, std::string message);
  bool readSectionHeader(const uint8_t* b, uint32_t len);
  bool readInterface(const uint8_t* b, uint32_t len);
  size_t readStream(uint8_t* dst, size_t n);

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
  uint64_t skipped_ = 0;
  Status done_ = Status::kPacket;
  TraceError error_;
  std::vector<TraceInterface> ifaces_;
  // pcapng
  bool ng_ = false;              // our pcapng reader (mapped or streamed)
  size_t section_first_ = 0;     // the current section's interface 0 in ifaces_
  uint32_t section_ = 0;         // the current section's number
  bool section_seen_ = false;    // a section header block has been read
  bool pending_ = false;         // streamed: buf_ holds the block at offset_, not yet consumed
  std::vector<uint8_t> buf_;     // streamed: the current block
  std::vector<uint8_t> prefix_;  // streamed: bytes read from a pipe before the reader knew it
  uint64_t last_ts_ns_ = 0;      // for simple packet blocks, which carry no timestamp
};

// Writes a classic pcap file through libpcap's pcap_dump, or a pcapng file (our own: libpcap
// writes none) whose packets may have different link types: the packet bytes exactly as given.
class PcapWriter {
 public:
  // Creates (truncates) `path`: classic pcap of one link type. `nano` selects nanosecond
  // timestamps (magic a1b23c4d). A failure ("PATH: cannot create: ...") when it cannot.
  static base::Expected<std::unique_ptr<PcapWriter>> open(const std::string& path, int dlt,
                                                          uint32_t snaplen, bool nano);
  // Creates (truncates) `path`: pcapng, little-endian, one section; an interface (nanosecond
  // timestamps, no snaplen) for each link type, declared when its first packet is written.
  static base::Expected<std::unique_ptr<PcapWriter>> openNg(const std::string& path);
  ~PcapWriter();
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;

  // A packet of the file's link type (classic pcap) or of link type `dlt` (pcapng; -1: the
  // first interface's). A classic file cannot hold a packet of another link type: it is not
  // written, and close() says how many were not.
  void write(uint64_t ts_ns, const uint8_t* data, uint32_t caplen, uint32_t wirelen, int dlt = -1);
  // Flushes and closes; a failure when any write failed (disk full, ...) or packets of another
  // link type were given to a classic file. Idempotent (success once closed).
  base::Status close();
  bool pcapng() const { return ng_; }
  const std::string& path() const { return path_; }
  uint64_t packetsWritten() const { return packets_; }

 private:
  PcapWriter() = default;

  std::string path_;
  pcap* dead_ = nullptr;
  pcap_dumper* dumper_ = nullptr;
  FILE* file_ = nullptr;  // owned by dumper_ (classic), by us (pcapng)
  bool nano_ = false;
  bool ng_ = false;
  int dlt_ = 0;                 // classic: the file's link type
  std::vector<int> ng_dlts_;    // pcapng: the link type of each interface declared
  std::vector<uint8_t> block_;  // pcapng: the block being written
  uint64_t packets_ = 0;
  uint64_t refused_ = 0;  // classic: packets of another link type, not written
  int refused_dlt_ = 0;
};

}  // namespace statewall::sim
