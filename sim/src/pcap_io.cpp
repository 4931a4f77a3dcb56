#include "statewall/sim/pcap_io.hpp"

#include <fcntl.h>
#include <pcap/pcap.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

namespace statewall::sim {
namespace {

using dataplane::LinkType;

// Big stdio buffers: one read() per MiB instead of per 4 KiB keeps the reader off the profile.
constexpr size_t kReadBuffer = 1 << 20;
constexpr size_t kWriteBuffer = 1 << 20;

constexpr uint32_t kPcapMagicMicro = 0xa1b2c3d4;
constexpr uint32_t kPcapMagicNano = 0xa1b23c4d;
constexpr uint32_t kPcapNgShb = 0x0a0d0d0a;
constexpr uint32_t kPcapNgByteOrder = 0x1a2b3c4d;
constexpr uint32_t kPcapNgIdb = 1;
constexpr size_t kPcapFileHeader = 24;
constexpr size_t kPcapRecordHeader = 16;
constexpr size_t kPcapLinkTypeOffset = 20;

// Raw IPv4 / IPv6 link types (LINKTYPE_IPV4 / LINKTYPE_IPV6); not every pcap.h defines them.
constexpr int kDltIpv4 = 228;
constexpr int kDltIpv6 = 229;
constexpr int kDltLinuxSll2 = 276;

uint32_t load32(const uint8_t* p, bool swap) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return swap ? __builtin_bswap32(v) : v;
}
uint16_t load16(const uint8_t* p, bool swap) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return swap ? __builtin_bswap16(v) : v;
}

// What the first bytes of a file say, before libpcap reads it.
struct HeaderProbe {
  TraceFormat format = TraceFormat::kPcap;
  bool nano = false;
  bool swap = false;      // classic pcap in the other byte order
  bool mappable = false;  // classic pcap 2.4 without FCS bits: the mapped reader can take it
  int dlt = 0;            // classic pcap: the DLT of the header's link type
  uint32_t snaplen = 0;
  uint64_t linktype_offset = 0;  // where the link type field lives, for error messages
};

std::string hexMagic(const uint8_t* b, size_t n) {
  std::string s;
  for (size_t i = 0; i < n && i < 4; ++i)
    s += fmt::format("{:02x}", b[i]);
  return s;
}

// Reads the file header ourselves so that the common failures get a precise message and offset
// (libpcap's wording for them is terse and has no offset). Returns false and fills *err.
bool probeHeader(FILE* f, uint64_t size, const std::string& path, HeaderProbe* probe,
                 TraceError* err) {
  uint8_t buf[4096];
  size_t n = std::fread(buf, 1, sizeof(buf), f);
  std::rewind(f);
  auto fail = [&](uint64_t offset, std::string msg) {
    *err = TraceError{path, offset, std::move(msg)};
    return false;
  };
  if (n == 0) {
    return fail(0, size == 0 ? "empty file (0 bytes): not a pcap or pcapng trace"
                             : "cannot read the file header");
  }
  if (n < 4) {
    return fail(0, fmt::format("not a pcap or pcapng file: only {} bytes, magic {} incomplete", n,
                               hexMagic(buf, n)));
  }
  uint32_t magic = load32(buf, false);
  if (magic == kPcapMagicMicro || magic == kPcapMagicNano ||
      magic == __builtin_bswap32(kPcapMagicMicro) || magic == __builtin_bswap32(kPcapMagicNano)) {
    probe->format = TraceFormat::kPcap;
    probe->nano = magic == kPcapMagicNano || magic == __builtin_bswap32(kPcapMagicNano);
    probe->linktype_offset = kPcapLinkTypeOffset;
    if (n < kPcapFileHeader) {
      return fail(0, fmt::format("truncated pcap file header: {} of {} bytes", n, kPcapFileHeader));
    }
    probe->swap = magic != kPcapMagicMicro && magic != kPcapMagicNano;
    const uint16_t major = load16(buf + 4, probe->swap);
    const uint16_t minor = load16(buf + 6, probe->swap);
    const uint32_t linktype = load32(buf + 20, probe->swap);
    probe->snaplen = load32(buf + 16, probe->swap);
    // LINKTYPE_RAW (101) is DLT_RAW in memory; the other link types we read share their number.
    const uint32_t lt = linktype & 0xFFFF;
    probe->dlt = lt == 101 ? DLT_RAW : static_cast<int>(lt);
    probe->mappable = major == 2 && minor == 4 && (linktype & 0xFFFF0000u) == 0;
    return true;
  }
  if (magic == kPcapNgShb) {
    probe->format = TraceFormat::kPcapNg;
    if (n < 12) {
      return fail(0,
                  fmt::format("truncated pcapng section header block: {} of at least 28 bytes", n));
    }
    uint32_t bom = load32(buf + 8, false);
    bool swap;
    if (bom == kPcapNgByteOrder) {
      swap = false;
    } else if (bom == __builtin_bswap32(kPcapNgByteOrder)) {
      swap = true;
    } else {
      return fail(8, "pcapng section header block with an unknown byte-order magic");
    }
    uint32_t shb_len = load32(buf + 4, swap);
    if (shb_len < 28 || shb_len > size) {
      return fail(0, fmt::format("truncated pcapng section header block: block length {}, file "
                                 "has {} bytes",
                                 shb_len, size));
    }
    probe->linktype_offset = shb_len + 8;
    // The first interface description block usually follows the SHB; its if_tsresol option
    // tells whether timestamps are in nanoseconds.
    if (shb_len + 16 <= n && load32(buf + shb_len, swap) == kPcapNgIdb) {
      uint32_t idb_len = load32(buf + shb_len + 4, swap);
      size_t end = std::min<size_t>(n, shb_len + static_cast<size_t>(idb_len) - 4);
      size_t p = shb_len + 16;
      while (p + 4 <= end) {
        uint16_t code = load16(buf + p, swap);
        uint16_t len = load16(buf + p + 2, swap);
        if (code == 0) break;
        if (code == 9 && len >= 1 && p + 5 <= end) {
          uint8_t res = buf[p + 4];
          probe->nano = (res & 0x80) == 0 ? res > 6 : (res & 0x7f) > 19;
        }
        p += 4 + ((len + 3u) & ~3u);
      }
    }
    return true;
  }
  return fail(0, fmt::format("not a pcap or pcapng file (magic {})", hexMagic(buf, n)));
}

// ---- A trace that shrinks while it is mapped ----
//
// Touching a mapped page that lies wholly beyond the end of its file raises SIGBUS. Another
// program may cut a trace short while we read it (a capture being rotated, a file being
// rewritten); that must end the replay with an error, not kill it. Each mapped reader registers its
// mapping here; the SIGBUS handler puts a page of zeros where the vanished page was, records the
// lowest such offset, and lets the access continue; the reader checks the record before handing it
// out (see TraceReader::nextMapped). Faults outside every registered mapping go on to the handler
// that was installed before (or the default action: the process dies as it would have).
struct MapGuard {
  std::atomic<uintptr_t> base{0};
  std::atomic<size_t> len{0};
  std::atomic<uint64_t> fault{UINT64_MAX};  // lowest faulting offset from base
};
constexpr size_t kMaxGuards = 64;
MapGuard g_guards[kMaxGuards];
size_t g_page = 4096;
struct sigaction g_prev_bus {};
std::once_flag g_bus_once;

void onSigbus(int sig, siginfo_t* info, void* ctx) {
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  for (MapGuard& g : g_guards) {
    const uintptr_t base = g.base.load(std::memory_order_acquire);
    const size_t len = g.len.load(std::memory_order_relaxed);
    if (base <= 1 || addr < base || addr >= base + len) continue;  // 1: a slot being claimed
    const uintptr_t page = addr & ~(static_cast<uintptr_t>(g_page) - 1);
    void* m = ::mmap(reinterpret_cast<void*>(page), g_page, PROT_READ,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (m == MAP_FAILED) break;
    const uint64_t off = page > base ? page - base : 0;
    uint64_t cur = g.fault.load(std::memory_order_relaxed);
    while (off < cur && !g.fault.compare_exchange_weak(cur, off, std::memory_order_relaxed)) {
    }
    return;
  }
  if ((g_prev_bus.sa_flags & SA_SIGINFO) != 0 && g_prev_bus.sa_sigaction != nullptr) {
    g_prev_bus.sa_sigaction(sig, info, ctx);
    return;
  }
  if (g_prev_bus.sa_handler != SIG_DFL && g_prev_bus.sa_handler != SIG_IGN &&
      g_prev_bus.sa_handler != nullptr) {
    g_prev_bus.sa_handler(sig);
    return;
  }
  // Not ours: the default action, when the faulting access runs again.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGBUS, &dfl, nullptr);
}

// A slot for a new mapping; -1 when all are taken (the reader then does without the mapping).
int registerMapping(const uint8_t* base, size_t len) {
  std::call_once(g_bus_once, [] {
    g_page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    struct sigaction sa {};
    sa.sa_sigaction = onSigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, &g_prev_bus);
  });
  for (size_t i = 0; i < kMaxGuards; ++i) {
    uintptr_t expected = 0;
    // Claim the slot with a placeholder first: the length must be in place before the base.
    if (g_guards[i].base.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
      g_guards[i].fault.store(UINT64_MAX, std::memory_order_relaxed);
      g_guards[i].len.store(len, std::memory_order_relaxed);
      g_guards[i].base.store(reinterpret_cast<uintptr_t>(base), std::memory_order_release);
      return static_cast<int>(i);
    }
  }
  return -1;
}

void unregisterMapping(int slot) {
  if (slot < 0) return;
  g_guards[slot].len.store(0, std::memory_order_relaxed);
  g_guards[slot].base.store(0, std::memory_order_release);
}

uint64_t mappingFault(int slot) {
  return g_guards[slot].fault.load(std::memory_order_relaxed);
}

}  // namespace

std::string TraceError::str() const {
  return fmt::format("{}: byte offset {}: {}", file, offset, message);
}

std::optional<LinkType> linkTypeFromDlt(int dlt) {
  switch (dlt) {
    case DLT_EN10MB:
      return LinkType::kEthernet;
    case DLT_RAW:
    case kDltIpv4:
    case kDltIpv6:
      return LinkType::kRawIp;
    case DLT_LINUX_SLL:
      return LinkType::kLinuxSll;
    case kDltLinuxSll2:
      return LinkType::kLinuxSll2;
    default:
      return std::nullopt;
  }
}

int dltFromLinkType(LinkType link) {
  switch (link) {
    case LinkType::kEthernet:
      return DLT_EN10MB;
    case LinkType::kRawIp:
      return DLT_RAW;
    case LinkType::kLinuxSll:
      return DLT_LINUX_SLL;
    case LinkType::kLinuxSll2:
      return kDltLinuxSll2;
  }
  return DLT_EN10MB;
}

std::string dltName(int dlt) {
  const char* name = pcap_datalink_val_to_name(dlt);
  const char* desc = pcap_datalink_val_to_description(dlt);
  if (name == nullptr) return fmt::format("DLT {}", dlt);
  if (desc == nullptr) return fmt::format("{} (DLT {})", name, dlt);
  return fmt::format("{} ({}, DLT {})", name, desc, dlt);
}

std::unique_ptr<TraceReader> TraceReader::open(const std::string& path, TraceError* err,
                                               Backend backend) {
  std::unique_ptr<TraceReader> r(new TraceReader());
  r->path_ = path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    *err = TraceError{path, 0, fmt::format("cannot open: {}", std::strerror(errno))};
    return nullptr;
  }
  if (S_ISDIR(st.st_mode)) {
    *err = TraceError{path, 0, "cannot open: is a directory"};
    return nullptr;
  }
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    *err = TraceError{path, 0, fmt::format("cannot open: {}", std::strerror(errno))};
    return nullptr;
  }
  bool regular = S_ISREG(st.st_mode);
  r->file_size_ = regular ? static_cast<uint64_t>(st.st_size) : 0;
  HeaderProbe probe;
  if (regular && !probeHeader(f, r->file_size_, path, &probe, err)) {
    std::fclose(f);
    return nullptr;
  }
  if (regular && backend == Backend::kAuto && probe.format == TraceFormat::kPcap &&
      probe.mappable) {
    auto link = linkTypeFromDlt(probe.dlt);
    if (!link) {
      std::fclose(f);
      *err = TraceError{path, probe.linktype_offset,
                        fmt::format("unsupported link type {}; statewall reads Ethernet (EN10MB), "
                                    "raw IP (RAW, IPV4, IPV6) and Linux cooked (LINUX_SLL, "
                                    "LINUX_SLL2) captures",
                                    dltName(probe.dlt))};
      return nullptr;
    }
    void* m = ::mmap(nullptr, r->file_size_, PROT_READ, MAP_PRIVATE, ::fileno(f), 0);
    if (m == MAP_FAILED) {
      std::fclose(f);
      *err = TraceError{path, 0, fmt::format("cannot map the file: {}", std::strerror(errno))};
      return nullptr;
    }
    const int guard = registerMapping(static_cast<const uint8_t*>(m), r->file_size_);
    // Kept to learn the file's size again should it shrink (see nextMapped).
    const int fd = guard >= 0 ? ::dup(::fileno(f)) : -1;
    if (fd >= 0) {
      std::fclose(f);  // the mapping stays valid without the stream
      ::madvise(m, r->file_size_, MADV_SEQUENTIAL);
      r->map_ = static_cast<const uint8_t*>(m);
      r->map_len_ = r->file_size_;
      r->guard_ = guard;
      r->fd_ = fd;
      r->swap_ = probe.swap;
      r->format_ = TraceFormat::kPcap;
      r->nano_ = probe.nano;
      r->dlt_ = probe.dlt;
      r->snaplen_ = probe.snaplen;
      r->link_ = *link;
      r->offset_ = kPcapFileHeader;
      return r;
    }
    // No guard slot (too many readers at once) or no descriptor: libpcap reads it instead.
    unregisterMapping(guard);
    ::munmap(m, r->file_size_);
  }
  std::setvbuf(f, nullptr, _IOFBF, kReadBuffer);
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (p == nullptr) {
    std::fclose(f);
    *err = TraceError{path, 0, errbuf};
    return nullptr;
  }
  r->file_ = f;
  r->pcap_ = p;
  r->format_ = probe.format;
  r->nano_ = probe.nano;
  r->dlt_ = pcap_datalink(p);
  r->snaplen_ = static_cast<uint32_t>(pcap_snapshot(p));
  auto link = linkTypeFromDlt(r->dlt_);
  if (!link) {
    *err = TraceError{path, probe.linktype_offset,
                      fmt::format("unsupported link type {}; statewall reads Ethernet (EN10MB), "
                                  "raw IP (RAW, IPV4, IPV6) and Linux cooked (LINUX_SLL, "
                                  "LINUX_SLL2) captures",
                                  dltName(r->dlt_))};
    return nullptr;
  }
  r->link_ = *link;
  if (r->format_ == TraceFormat::kPcap) {
    r->offset_ = kPcapFileHeader;
  } else {
    long pos = std::ftell(f);
    r->offset_ = pos > 0 ? static_cast<uint64_t>(pos) : 0;
  }
  return r;
}

TraceReader::~TraceReader() {
  if (pcap_ != nullptr) pcap_close(pcap_);  // closes file_ too
  if (map_ != nullptr) {
    unregisterMapping(guard_);
    ::munmap(const_cast<uint8_t*>(map_), map_len_);
  }
  if (fd_ >= 0) ::close(fd_);
}

// The mapped file still holds its bytes [0, end). A page wholly beyond the file's end faults when
// touched (and the SIGBUS guard records it), but the bytes past the end of the file's last page
// read as zeros without a fault: so the page after `end` is touched, and where there is none in
// the mapping, the file's size is asked.
// Once something faulted, the file's size decides (the page after a record that is whole may be
// the one that vanished).
bool TraceReader::stillMapped(size_t end) {
  const size_t next_page = ((end - 1) | (g_page - 1)) + 1;
  if (next_page < map_len_ && mappingFault(guard_) == UINT64_MAX) {
    (void)*static_cast<const volatile uint8_t*>(map_ + next_page);
    if (mappingFault(guard_) == UINT64_MAX) return true;
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return mappingFault(guard_) == UINT64_MAX;
  return static_cast<uint64_t>(st.st_size) >= end;
}

TraceReader::Status TraceReader::failShrunk() {
  struct stat st {};
  uint64_t now = mappingFault(guard_);
  if (::fstat(fd_, &st) == 0) now = static_cast<uint64_t>(st.st_size);
  now = std::min<uint64_t>(now, map_len_);
  error_ = TraceError{
      path_, now,
      fmt::format("the file ended here: it shrank from {} to {} bytes while it was being read; "
                  "{} packets were read before the record at byte offset {}, which is gone or cut "
                  "off",
                  map_len_, now, packets_, offset_)};
  done_ = Status::kError;
  return done_;
}

TraceReader::Status TraceReader::fail(std::string message) {
  if (packets_ == 0) {
    error_ = TraceError{path_, offset_, fmt::format("damaged first record: {}", message)};
  } else {
    error_ = TraceError{path_, offset_,
                        fmt::format("damaged record after packet {}: {}", packets_, message)};
  }
  done_ = Status::kError;
  return done_;
}

// The mapped reader: same checks and the same wording as libpcap's savefile reader.
TraceReader::Status TraceReader::nextMapped(TracePacket* out) {
  constexpr uint32_t kMaxCaplen = 262144;  // libpcap's MAXIMUM_SNAPLEN
  const size_t left = map_len_ - offset_;
  if (left == 0) {
    done_ = Status::kEnd;
    return done_;
  }
  if (left < kPcapRecordHeader) {
    if (!stillMapped(map_len_)) return failShrunk();
    return fail(fmt::format("truncated dump file; tried to read {} header bytes, only got {}",
                            kPcapRecordHeader, left));
  }
  const uint8_t* h = map_ + offset_;
  const uint32_t sec = load32(h, swap_);
  const uint32_t frac = load32(h + 4, swap_);
  const uint32_t caplen = load32(h + 8, swap_);
  const uint32_t len = load32(h + 12, swap_);
  // libpcap's effective snapshot length: the header's, unless 0 or above the maximum.
  const uint32_t snap = snaplen_ == 0 || snaplen_ > kMaxCaplen ? kMaxCaplen : snaplen_;
  if (caplen > kMaxCaplen) {
    if (!stillMapped(offset_ + kPcapRecordHeader)) return failShrunk();
    return fail(caplen > snap
                    ? fmt::format("invalid packet capture length {}, bigger than snaplen of {}",
                                  caplen, snap)
                    : fmt::format("invalid packet capture length {}, bigger than maximum of {}",
                                  caplen, kMaxCaplen));
  }
  if (left - kPcapRecordHeader < caplen) {
    if (!stillMapped(map_len_)) return failShrunk();
    return fail(fmt::format("truncated dump file; tried to read {} captured bytes, only got {}",
                            caplen, left - kPcapRecordHeader));
  }
  if (!stillMapped(offset_ + kPcapRecordHeader + caplen)) return failShrunk();
  out->data = h + kPcapRecordHeader;
  // As libpcap does, a record longer than the snapshot length is cut to it.
  out->caplen = std::min(caplen, snap);
  out->wirelen = len;
  out->ts_ns = static_cast<uint64_t>(sec) * 1000000000ull +
               (nano_ ? static_cast<uint64_t>(frac) : static_cast<uint64_t>(frac) * 1000ull);
  offset_ += kPcapRecordHeader + caplen;
  ++packets_;
  // Records are read in file order: keep the cache lines some kilobytes ahead on their way in
  // (the hardware prefetchers stop at page boundaries, and a cold record header costs a full
  // memory latency).
  // Page tables are filled a chunk ahead in one call (MADV_POPULATE_READ, Linux 5.14; where it
  // is missing, the page faults fill them as usual), so the prefetches below find mapped pages.
  constexpr size_t kPopulateChunk = 2u << 20;
  if (populated_ < map_len_ && offset_ + kPopulateChunk > populated_) {
#ifdef MADV_POPULATE_READ
    const size_t end = std::min(map_len_, populated_ + kPopulateChunk);
    ::madvise(const_cast<uint8_t*>(map_) + populated_, end - populated_, MADV_POPULATE_READ);
    populated_ = end;
#else
    populated_ = map_len_;
#endif
  }
  constexpr size_t kAhead = 16384;
  const size_t want = std::min(map_len_, offset_ + kAhead);
  if (prefetched_ < offset_) prefetched_ = offset_ & ~size_t{63};
  while (prefetched_ < want) {
    __builtin_prefetch(map_ + prefetched_);
    prefetched_ += 64;
  }
  // Keep the resident set bounded: pages well behind the reader are released (they stay in the
  // page cache; touching them again would just map them back).
  constexpr size_t kReleaseChunk = 64u << 20;
  if (offset_ - dropped_ > 2 * kReleaseChunk) {
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    size_t upto = (offset_ - kReleaseChunk) & ~(page - 1);
    ::madvise(const_cast<uint8_t*>(map_) + dropped_, upto - dropped_, MADV_DONTNEED);
    dropped_ = upto;
  }
  return Status::kPacket;
}

TraceReader::Status TraceReader::next(TracePacket* out) {
  if (done_ != Status::kPacket) return done_;
  if (map_ != nullptr) return nextMapped(out);
  struct pcap_pkthdr* hdr = nullptr;
  const u_char* data = nullptr;
  int rc = pcap_next_ex(pcap_, &hdr, &data);
  if (rc == 1) {
    out->data = data;
    out->caplen = hdr->caplen;
    out->wirelen = hdr->len;
    out->ts_ns = static_cast<uint64_t>(hdr->ts.tv_sec) * 1000000000ull +
                 static_cast<uint64_t>(hdr->ts.tv_usec);
    ++packets_;
    // Where the next record starts (libpcap may have skipped bytes beyond the snapshot length,
    // so the record's caplen does not tell).
    long pos = std::ftell(file_);
    if (pos > 0) offset_ = static_cast<uint64_t>(pos);
    return Status::kPacket;
  }
  if (rc == PCAP_ERROR_BREAK) {  // end of file
    done_ = Status::kEnd;
    return done_;
  }
  std::string msg = pcap_geterr(pcap_);
  if (format_ == TraceFormat::kPcap) return fail(msg);
  // pcapng: libpcap reads blocks; the offset is that of the block after the last packet.
  error_ =
      TraceError{path_, offset_,
                 packets_ == 0 ? fmt::format("damaged first block: {}", msg)
                               : fmt::format("damaged block after packet {}: {}", packets_, msg)};
  done_ = Status::kError;
  return done_;
}

std::unique_ptr<PcapWriter> PcapWriter::open(const std::string& path, int dlt, uint32_t snaplen,
                                             bool nano, std::string* err) {
  std::unique_ptr<PcapWriter> w(new PcapWriter());
  w->path_ = path;
  w->nano_ = nano;
  w->dead_ = pcap_open_dead_with_tstamp_precision(
      dlt, static_cast<int>(snaplen == 0 ? 262144 : snaplen),
      nano ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO);
  if (w->dead_ == nullptr) {
    *err = fmt::format("{}: cannot create a pcap writer for {}", path, dltName(dlt));
    return nullptr;
  }
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    *err = fmt::format("{}: cannot create: {}", path, std::strerror(errno));
    return nullptr;
  }
  std::setvbuf(f, nullptr, _IOFBF, kWriteBuffer);
  w->dumper_ = pcap_dump_fopen(w->dead_, f);
  if (w->dumper_ == nullptr) {
    *err = fmt::format("{}: {}", path, pcap_geterr(w->dead_));
    std::fclose(f);
    return nullptr;
  }
  w->file_ = f;
  return w;
}

PcapWriter::~PcapWriter() {
  std::string ignored;
  close(&ignored);
  if (dead_ != nullptr) pcap_close(dead_);
}

void PcapWriter::write(uint64_t ts_ns, const uint8_t* data, uint32_t caplen, uint32_t wirelen) {
  struct pcap_pkthdr hdr {};
  hdr.ts.tv_sec = static_cast<time_t>(ts_ns / 1000000000ull);
  uint64_t frac = ts_ns % 1000000000ull;
  hdr.ts.tv_usec = static_cast<suseconds_t>(nano_ ? frac : frac / 1000);
  hdr.caplen = caplen;
  hdr.len = wirelen;
  pcap_dump(reinterpret_cast<u_char*>(dumper_), &hdr, data);
  ++packets_;
}

bool PcapWriter::close(std::string* err) {
  if (dumper_ == nullptr) return true;
  bool ok = pcap_dump_flush(dumper_) == 0 && std::ferror(file_) == 0;
  int saved = errno;
  pcap_dump_close(dumper_);  // fcloses file_
  dumper_ = nullptr;
  file_ = nullptr;
  if (!ok) *err = fmt::format("{}: write failed: {}", path_, std::strerror(saved));
  return ok;
}

}  // namespace statewall::sim
