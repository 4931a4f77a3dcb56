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

#include "statewall/rules/loader.hpp"

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
constexpr uint32_t kPcapNgOpb = 2;  // obsolete packet block
constexpr uint32_t kPcapNgSpb = 3;  // simple packet block
constexpr uint32_t kPcapNgEpb = 6;  // enhanced packet block
// A block larger than this is taken for damage (libpcap's limit too): a streamed block is held
// in memory whole.
constexpr uint32_t kPcapNgMaxBlock = 16u << 20;
constexpr size_t kPcapFileHeader = 24;
constexpr size_t kPcapRecordHeader = 16;
constexpr size_t kPcapLinkTypeOffset = 20;

// Raw IPv4 / IPv6 link types (LINKTYPE_IPV4 / LINKTYPE_IPV6); not every pcap.h defines them.
constexpr int kDltIpv4 = 228;
constexpr int kDltIpv6 = 229;
constexpr int kDltLinuxSll2 = 276;
constexpr int kDltNull = 0;
constexpr int kDltLoop = 108;       // LINKTYPE_LOOP; DLT_LOOP in memory except on OpenBSD
constexpr int kDltPpp = 9;          // DLT_PPP
constexpr int kDltPppSerial = 50;   // DLT_PPP_SERIAL (LINKTYPE_PPP_HDLC)
constexpr int kDltCiscoHdlc = 104;  // DLT_C_HDLC: read as PPP-in-HDLC (the parser takes both)

constexpr const char* kLinkTypesRead =
    "statewall reads Ethernet (EN10MB), raw IP (RAW, IPV4, IPV6), Linux cooked (LINUX_SLL, "
    "LINUX_SLL2), BSD loopback (NULL, LOOP) and PPP (PPP, PPP_SERIAL, C_HDLC) captures";

// LINKTYPE_RAW (101) is DLT_RAW in memory; the other link types we read share their number.
int dltOfLinktype(uint32_t linktype) {
  return linktype == 101 ? DLT_RAW : static_cast<int>(linktype);
}

uint32_t load32(const uint8_t* p, bool swap) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return swap ? __builtin_bswap32(v) : v;
}
uint64_t load64(const uint8_t* p, bool swap) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return swap ? __builtin_bswap64(v) : v;
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
    probe->dlt = dltOfLinktype(linktype & 0xFFFF);
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

// A stream that yields `prefix` and then the rest of `f` (a pipe whose first bytes were read to
// learn its format); closing it closes `f`. nullptr (and `f` closed) on failure.
struct PrefixedStream {
  std::vector<uint8_t> prefix;
  size_t pos = 0;
  FILE* f = nullptr;
};
FILE* withPrefix(FILE* f, const std::vector<uint8_t>& prefix) {
  auto* ps = new PrefixedStream{prefix, 0, f};
  cookie_io_functions_t io{};
  io.read = [](void* c, char* buf, size_t n) -> ssize_t {
    auto* p = static_cast<PrefixedStream*>(c);
    if (p->pos < p->prefix.size()) {
      const size_t k = std::min(n, p->prefix.size() - p->pos);
      std::memcpy(buf, p->prefix.data() + p->pos, k);
      p->pos += k;
      return static_cast<ssize_t>(k);
    }
    const size_t got = std::fread(buf, 1, n, p->f);
    return got == 0 && std::ferror(p->f) ? -1 : static_cast<ssize_t>(got);
  };
  io.close = [](void* c) -> int {
    auto* p = static_cast<PrefixedStream*>(c);
    const int rc = std::fclose(p->f);
    delete p;
    return rc;
  };
  FILE* out = ::fopencookie(ps, "rb", io);
  if (out == nullptr) {
    std::fclose(f);
    delete ps;
  }
  return out;
}

TraceInterface classicInterface(int dlt, std::optional<LinkType> link, uint32_t snaplen,
                                uint64_t offset) {
  TraceInterface i;
  i.dlt = dlt;
  i.link = link;
  i.snaplen = snaplen;
  i.offset = offset;
  return i;
}

std::string blockName(uint32_t type) {
  switch (type) {
    case kPcapNgShb:
      return "section header block";
    case kPcapNgIdb:
      return "interface description block";
    case kPcapNgEpb:
      return "enhanced packet block";
    case kPcapNgSpb:
      return "simple packet block";
    case kPcapNgOpb:
      return "packet block";
    default:
      return fmt::format("block of type 0x{:08x}", type);
  }
}

// A pcapng timestamp in the interface's units (if_tsresol) and with its offset (if_tsoffset), as
// nanoseconds since the epoch; clamped to what a uint64_t holds.
uint64_t tsNs(uint64_t units, const TraceInterface& i) {
  __extension__ typedef unsigned __int128 U128;
  __extension__ typedef __int128 I128;
  constexpr uint64_t kPow10[] = {1ull,
                                 10ull,
                                 100ull,
                                 1000ull,
                                 10000ull,
                                 100000ull,
                                 1000000ull,
                                 10000000ull,
                                 100000000ull,
                                 1000000000ull,
                                 10000000000ull,
                                 100000000000ull,
                                 1000000000000ull,
                                 10000000000000ull,
                                 100000000000000ull,
                                 1000000000000000ull,
                                 10000000000000000ull,
                                 100000000000000000ull,
                                 1000000000000000000ull,
                                 10000000000000000000ull};
  U128 ns;
  if (i.ts_pow2) {
    ns = (static_cast<U128>(units) * 1000000000u) >> i.ts_exp;  // ts_exp <= 127
  } else if (i.ts_exp <= 9) {
    ns = static_cast<U128>(units) * kPow10[9 - i.ts_exp];
  } else {
    ns = i.ts_exp - 9 < 20 ? units / kPow10[i.ts_exp - 9] : 0;
  }
  const I128 t = static_cast<I128>(ns) + static_cast<I128>(i.ts_offset_s) * 1000000000;
  if (t < 0) return 0;
  if (t > static_cast<I128>(UINT64_MAX)) return UINT64_MAX;
  return static_cast<uint64_t>(t);
}

}  // namespace

std::string TraceError::str() const {
  return fmt::format("{}: byte offset {}: {}", file, offset, message);
}

std::optional<LinkType> linkTypeFromDlt(int dlt) {
  switch (dlt) {
    case kDltNull:
      return LinkType::kNull;
    case kDltLoop:
      return LinkType::kLoop;
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
    case kDltPpp:
      return LinkType::kPpp;
    case kDltPppSerial:
    case kDltCiscoHdlc:
      return LinkType::kPppHdlc;
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
    case LinkType::kNull:
      return kDltNull;
    case LinkType::kLoop:
      return kDltLoop;
    case LinkType::kPpp:
      return kDltPpp;
    case LinkType::kPppHdlc:
      return kDltPppSerial;
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
  if (backend == Backend::kAuto && (!regular || probe.format == TraceFormat::kPcapNg)) {
    // pcapng by our own reader; a pipe is told apart by its first four bytes.
    if (!regular) {
      uint8_t magic[4];
      const size_t got = std::fread(magic, 1, 4, f);
      r->prefix_.assign(magic, magic + got);
      if (got < 4 || load32(magic, false) != kPcapNgShb) {
        // Classic pcap (or not a trace): libpcap reads it, the four bytes given back first.
        f = withPrefix(f, r->prefix_);
        r->prefix_.clear();
        if (f == nullptr) {
          *err = TraceError{path, 0, "cannot read the stream"};
          return nullptr;
        }
      }
    }
    if (regular || !r->prefix_.empty()) return openNg(std::move(r), f, regular, err);
  }
  if (regular && backend == Backend::kAuto && probe.format == TraceFormat::kPcap &&
      probe.mappable) {
    auto link = linkTypeFromDlt(probe.dlt);
    if (!link) {
      std::fclose(f);
      *err = TraceError{
          path, probe.linktype_offset,
          fmt::format("unsupported link type {}; {}", dltName(probe.dlt), kLinkTypesRead)};
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
      r->ifaces_.push_back(classicInterface(probe.dlt, link, probe.snaplen, probe.linktype_offset));
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
    *err =
        TraceError{path, probe.linktype_offset,
                   fmt::format("unsupported link type {}; {}", dltName(r->dlt_), kLinkTypesRead)};
    return nullptr;
  }
  r->link_ = *link;
  r->ifaces_.push_back(classicInterface(r->dlt_, link, r->snaplen_, probe.linktype_offset));
  if (r->format_ == TraceFormat::kPcap) {
    r->offset_ = kPcapFileHeader;
  } else {
    long pos = std::ftell(f);
    r->offset_ = pos > 0 ? static_cast<uint64_t>(pos) : 0;
  }
  return r;
}

TraceReader::~TraceReader() {
  if (pcap_ != nullptr) {
    pcap_close(pcap_);  // closes file_ too
  } else if (file_ != nullptr) {
    std::fclose(file_);
  }
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
  out->link = link_;
  out->dlt = dlt_;
  out->interface = 0;
  afterRecord();
  return Status::kPacket;
}

void TraceReader::afterRecord() {
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
}

TraceReader::Status TraceReader::next(TracePacket* out) {
  if (done_ != Status::kPacket) return done_;
  if (ng_) return nextNg(out, false);
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
    out->link = link_;
    out->dlt = dlt_;
    out->interface = 0;
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

// ---- pcapng ----

std::unique_ptr<TraceReader> TraceReader::openNg(std::unique_ptr<TraceReader> r, FILE* f,
                                                 bool regular, TraceError* err) {
  r->format_ = TraceFormat::kPcapNg;
  r->ng_ = true;
  if (regular) {
    void* m = ::mmap(nullptr, r->file_size_, PROT_READ, MAP_PRIVATE, ::fileno(f), 0);
    if (m != MAP_FAILED) {
      const int guard = registerMapping(static_cast<const uint8_t*>(m), r->file_size_);
      const int fd = guard >= 0 ? ::dup(::fileno(f)) : -1;
      if (fd >= 0) {
        std::fclose(f);
        f = nullptr;
        ::madvise(m, r->file_size_, MADV_SEQUENTIAL);
        r->map_ = static_cast<const uint8_t*>(m);
        r->map_len_ = r->file_size_;
        r->guard_ = guard;
        r->fd_ = fd;
      } else {
        unregisterMapping(guard);
        ::munmap(m, r->file_size_);
      }
    }
    // Without a mapping (no guard slot left, mmap refused): streamed like a pipe.
  }
  if (f != nullptr) {
    std::setvbuf(f, nullptr, _IOFBF, kReadBuffer);
    r->file_ = f;
  }
  // The blocks before the first packet: the interfaces, which say how to read what follows.
  TracePacket unused;
  const Status st = r->nextNg(&unused, /*stop_at_packet=*/true);
  const TraceInterface* first = nullptr;
  for (const TraceInterface& i : r->ifaces_) {
    if (i.link) {
      first = &i;
      break;
    }
  }
  if (first == nullptr && !r->ifaces_.empty() && st != Status::kError) {
    const TraceInterface& i = r->ifaces_.front();
    const size_t n = r->ifaces_.size();
    *err = TraceError{
        r->path_, i.offset,
        fmt::format("unsupported link type {} on interface {}{}{}; {}", dltName(i.dlt), i.index,
                    i.name.empty() ? "" : " (" + i.name + ")",
                    n == 1 ? "" : fmt::format(", as on every other of the {} interfaces", n),
                    kLinkTypesRead)};
    return nullptr;
  }
  if (first != nullptr) {
    r->dlt_ = first->dlt;
    r->link_ = *first->link;
    r->snaplen_ = first->snaplen == 0 ? 262144 : first->snaplen;
    r->nano_ = first->ts_pow2 ? first->ts_exp > 19 : first->ts_exp > 6;
  } else {
    r->dlt_ = r->ifaces_.empty() ? DLT_EN10MB : r->ifaces_.front().dlt;
    r->link_ = LinkType::kEthernet;
    r->snaplen_ = 262144;
  }
  return r;  // damage before the first packet: next() reports it
}

TraceReader::Status TraceReader::failNg(uint64_t offset, std::string message) {
  error_ = TraceError{
      path_, offset,
      packets_ == 0 ? fmt::format("damaged pcapng block before the first packet: {}", message)
                    : fmt::format("damaged pcapng block after packet {}: {}", packets_, message)};
  done_ = Status::kError;
  pending_ = false;
  return done_;
}

size_t TraceReader::readStream(uint8_t* dst, size_t n) {
  size_t got = 0;
  if (!prefix_.empty()) {
    got = std::min(n, prefix_.size());
    std::memcpy(dst, prefix_.data(), got);
    prefix_.erase(prefix_.begin(), prefix_.begin() + static_cast<long>(got));
  }
  if (got < n) got += std::fread(dst + got, 1, n - got, file_);
  return got;
}

// The length of the block whose first 12 bytes are at `b`, checked; at a section header block,
// the new section's byte order first. false after failNg().
bool TraceReader::blockLength(const uint8_t* b, uint32_t* len) {
  if (load32(b, false) == kPcapNgShb) {
    const uint32_t bom = load32(b + 8, false);
    if (bom == kPcapNgByteOrder) {
      swap_ = false;
    } else if (bom == __builtin_bswap32(kPcapNgByteOrder)) {
      swap_ = true;
    } else {
      failNg(offset_, fmt::format("section header block with an unknown byte-order magic {:08x}",
                                  __builtin_bswap32(bom)));
      return false;
    }
  }
  const uint32_t type = load32(b, swap_);
  const uint32_t l = load32(b + 4, swap_);
  if (l < 12) {
    failNg(offset_, fmt::format("{}: block length {} is shorter than the 12 bytes of a block's "
                                "type, length and trailing length",
                                blockName(type), l));
    return false;
  }
  if (l % 4 != 0) {
    failNg(offset_, fmt::format("{}: block length {} is not a multiple of 4", blockName(type), l));
    return false;
  }
  if (l > kPcapNgMaxBlock) {
    failNg(offset_, fmt::format("{}: block length {} is more than the {} bytes a block may have",
                                blockName(type), l, kPcapNgMaxBlock));
    return false;
  }
  *len = l;
  return true;
}

// Makes the block at offset_ readable whole: *block, *len (its total length, checked against the
// trailing copy). kEnd at the end of the file between blocks.
TraceReader::Status TraceReader::loadBlock(const uint8_t** block, uint32_t* len) {
  uint32_t l = 0;
  if (map_ != nullptr) {
    const size_t left = map_len_ - offset_;
    if (left == 0) return Status::kEnd;
    if (left < 12) {
      if (!stillMapped(map_len_)) return failShrunk();
      return failNg(offset_,
                    fmt::format("truncated block: {} bytes left, a block has at least 12", left));
    }
    const uint8_t* b = map_ + offset_;
    if (!blockLength(b, &l)) return stillMapped(offset_ + 12) ? done_ : failShrunk();
    if (l > left) {
      if (!stillMapped(map_len_)) return failShrunk();
      return failNg(offset_,
                    fmt::format("{} of {} bytes runs past the end of the file ({} bytes left)",
                                blockName(load32(b, swap_)), l, left));
    }
    if (!stillMapped(offset_ + l)) return failShrunk();
    *block = b;
  } else {
    if (!pending_) {
      buf_.resize(12);
      const size_t got = readStream(buf_.data(), 12);
      if (got == 0 && !std::ferror(file_)) return Status::kEnd;
      if (got < 12) {
        return failNg(
            offset_,
            std::ferror(file_) != 0
                ? fmt::format("read error: {}", std::strerror(errno))
                : fmt::format("truncated block: {} bytes left, a block has at least 12", got));
      }
      if (!blockLength(buf_.data(), &l)) return done_;
      buf_.resize(l);
      const size_t rest = readStream(buf_.data() + 12, l - 12);
      if (rest < l - 12) {
        return failNg(offset_,
                      fmt::format("{} of {} bytes runs past the end of the file ({} bytes left)",
                                  blockName(load32(buf_.data(), swap_)), l, 12 + rest));
      }
      pending_ = true;
    }
    *block = buf_.data();
    l = static_cast<uint32_t>(buf_.size());
  }
  const uint32_t trailing = load32(*block + l - 4, swap_);
  if (trailing != l) {
    return failNg(offset_, fmt::format("{}: trailing block length {} differs from the block "
                                       "length {}",
                                       blockName(load32(*block, swap_)), trailing, l));
  }
  *len = l;
  return Status::kPacket;
}

bool TraceReader::readSectionHeader(const uint8_t* b, uint32_t len) {
  if (len < 28) {
    failNg(offset_, fmt::format("section header block of {} bytes is shorter than its 28-byte "
                                "minimum",
                                len));
    return false;
  }
  const uint16_t major = load16(b + 12, swap_);
  const uint16_t minor = load16(b + 14, swap_);
  if (major != 1) {
    failNg(offset_ + 12, fmt::format("section header block of pcapng version {}.{}; statewall "
                                     "reads version 1",
                                     major, minor));
    return false;
  }
  if (section_seen_) ++section_;
  section_seen_ = true;
  section_first_ = ifaces_.size();  // the new section numbers its interfaces from 0
  return true;
}

bool TraceReader::readInterface(const uint8_t* b, uint32_t len) {
  if (len < 20) {
    failNg(offset_, fmt::format("interface description block of {} bytes is shorter than its "
                                "20-byte minimum",
                                len));
    return false;
  }
  TraceInterface i;
  i.section = section_;
  i.index = static_cast<uint32_t>(ifaces_.size() - section_first_);
  i.dlt = dltOfLinktype(load16(b + 8, swap_));
  i.link = linkTypeFromDlt(i.dlt);
  i.snaplen = load32(b + 12, swap_);
  i.offset = offset_ + 8;
  // Options: code, length, value padded to 4 bytes; opt_endofopt (0) or the block's end stops.
  size_t p = 16;
  const size_t end = len - 4;
  while (p + 4 <= end) {
    const uint16_t code = load16(b + p, swap_);
    const uint16_t olen = load16(b + p + 2, swap_);
    if (code == 0) break;
    if (olen > end - p - 4) {
      failNg(offset_ + p, fmt::format("interface description block: option {} of {} bytes runs "
                                      "past the end of the block",
                                      code, olen));
      return false;
    }
    const uint8_t* v = b + p + 4;
    if (code == 2) {  // if_name
      std::string_view name(reinterpret_cast<const char*>(v), olen);
      name = name.substr(0, name.find('\0'));
      i.name = rules::replaceInvalidUtf8(name);  // it ends up in messages and JSON
    } else if (code == 9 && olen >= 1) {         // if_tsresol
      i.ts_pow2 = (v[0] & 0x80) != 0;
      i.ts_exp = v[0] & 0x7f;
    } else if (code == 14 && olen >= 8) {  // if_tsoffset
      i.ts_offset_s = static_cast<int64_t>(load64(v, swap_));
    }
    p += 4 + ((olen + 3u) & ~3u);
  }
  ifaces_.push_back(std::move(i));
  return true;
}

// The block loop: section headers and interfaces are taken in, other blocks skipped by their
// length, until a packet of an interface whose link type the engine parses (those of other
// interfaces are counted and skipped).
TraceReader::Status TraceReader::nextNg(TracePacket* out, bool stop_at_packet) {
  for (;;) {
    const uint8_t* b = nullptr;
    uint32_t len = 0;
    const Status st = loadBlock(&b, &len);
    if (st == Status::kEnd) {
      done_ = Status::kEnd;
      return done_;
    }
    if (st == Status::kError) return st;
    const uint64_t at = offset_;
    const uint32_t type = load32(b, swap_);
    auto consume = [&] {
      offset_ += len;
      pending_ = false;
    };
    if (type == kPcapNgShb) {
      if (!readSectionHeader(b, len)) return done_;
      consume();
      continue;
    }
    if (!section_seen_) {
      return failNg(at, "the file does not begin with a section header block");
    }
    if (type == kPcapNgIdb) {
      if (!readInterface(b, len)) return done_;
      consume();
      continue;
    }
    if (type != kPcapNgEpb && type != kPcapNgSpb && type != kPcapNgOpb) {
      consume();  // name resolution, statistics, custom, decryption secrets, ...
      continue;
    }
    if (stop_at_packet) return Status::kPacket;
    const size_t declared = ifaces_.size() - section_first_;
    uint32_t id = 0;
    uint32_t caplen = 0;
    uint32_t wirelen = 0;
    uint64_t ts_ns = last_ts_ns_;
    const uint8_t* data = nullptr;
    if (type == kPcapNgSpb) {
      if (len < 16) {
        return failNg(at, fmt::format("simple packet block of {} bytes is shorter than its "
                                      "16-byte minimum",
                                      len));
      }
      if (declared == 0) {
        return failNg(at, fmt::format("simple packet block, but section {} declares no interface "
                                      "before it",
                                      section_));
      }
      wirelen = load32(b + 8, swap_);
      caplen = std::min(wirelen, len - 16);
      const uint32_t snap = ifaces_[section_first_].snaplen;
      if (snap != 0) caplen = std::min(caplen, snap);
      data = b + 12;
    } else {
      if (len < 32) {
        return failNg(at, fmt::format("{} of {} bytes is shorter than its 32-byte minimum",
                                      blockName(type), len));
      }
      id = type == kPcapNgEpb ? load32(b + 8, swap_) : load16(b + 8, swap_);
      if (id >= declared) {
        return failNg(
            at, fmt::format("{} for interface {}, but section {} declares {} "
                            "interface{} before it",
                            blockName(type), id, section_, declared, declared == 1 ? "" : "s"));
      }
      caplen = load32(b + 20, swap_);
      wirelen = load32(b + 24, swap_);
      if (caplen > len - 32) {
        return failNg(at, fmt::format("{}: captured length {} does not fit in the block of {} "
                                      "bytes",
                                      blockName(type), caplen, len));
      }
      const uint64_t units = uint64_t{load32(b + 12, swap_)} << 32 | load32(b + 16, swap_);
      ts_ns = tsNs(units, ifaces_[section_first_ + id]);
      data = b + 28;
    }
    consume();
    TraceInterface& iface = ifaces_[section_first_ + id];
    if (!iface.link) {
      ++iface.skipped;
      ++skipped_;
      continue;
    }
    ++iface.packets;
    ++packets_;
    last_ts_ns_ = ts_ns;
    out->data = data;
    out->caplen = caplen;
    out->wirelen = wirelen;
    out->ts_ns = ts_ns;
    out->link = *iface.link;
    out->dlt = iface.dlt;
    out->interface = static_cast<uint32_t>(section_first_ + id);
    if (map_ != nullptr) afterRecord();
    return Status::kPacket;
  }
}

base::Expected<std::unique_ptr<PcapWriter>> PcapWriter::open(const std::string& path, int dlt,
                                                             uint32_t snaplen, bool nano) {
  std::unique_ptr<PcapWriter> w(new PcapWriter());
  w->path_ = path;
  w->nano_ = nano;
  w->dlt_ = dlt;
  w->dead_ = pcap_open_dead_with_tstamp_precision(
      dlt, static_cast<int>(snaplen == 0 ? 262144 : snaplen),
      nano ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO);
  if (w->dead_ == nullptr) {
    return base::Status::failure(
        fmt::format("{}: cannot create a pcap writer for {}", path, dltName(dlt)));
  }
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return base::Status::failure(fmt::format("{}: cannot create: {}", path, std::strerror(errno)));
  }
  std::setvbuf(f, nullptr, _IOFBF, kWriteBuffer);
  w->dumper_ = pcap_dump_fopen(w->dead_, f);
  if (w->dumper_ == nullptr) {
    std::string why = fmt::format("{}: {}", path, pcap_geterr(w->dead_));
    std::fclose(f);
    return base::Status::failure(std::move(why));
  }
  w->file_ = f;
  return w;
}

namespace {

void put32le(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put16le(std::vector<uint8_t>& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}

}  // namespace

base::Expected<std::unique_ptr<PcapWriter>> PcapWriter::openNg(const std::string& path) {
  std::unique_ptr<PcapWriter> w(new PcapWriter());
  w->path_ = path;
  w->nano_ = true;
  w->ng_ = true;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return base::Status::failure(fmt::format("{}: cannot create: {}", path, std::strerror(errno)));
  }
  std::setvbuf(f, nullptr, _IOFBF, kWriteBuffer);
  w->file_ = f;
  // Section header: byte-order magic, version 1.0, section length unknown (-1).
  std::vector<uint8_t>& b = w->block_;
  put32le(b, kPcapNgShb);
  put32le(b, 28);
  put32le(b, kPcapNgByteOrder);
  put16le(b, 1);
  put16le(b, 0);
  put32le(b, 0xffffffffu);
  put32le(b, 0xffffffffu);
  put32le(b, 28);
  std::fwrite(b.data(), 1, b.size(), f);
  return w;
}

PcapWriter::~PcapWriter() {
  (void)close();
  if (dead_ != nullptr) pcap_close(dead_);
}

void PcapWriter::write(uint64_t ts_ns, const uint8_t* data, uint32_t caplen, uint32_t wirelen,
                       int dlt) {
  if (ng_) {
    if (file_ == nullptr) return;
    if (dlt < 0) dlt = ng_dlts_.empty() ? DLT_EN10MB : ng_dlts_.front();
    size_t id = std::find(ng_dlts_.begin(), ng_dlts_.end(), dlt) - ng_dlts_.begin();
    std::vector<uint8_t>& b = block_;
    b.clear();
    if (id == ng_dlts_.size()) {
      // A new interface for this link type: no snaplen, nanosecond timestamps (if_tsresol 9).
      ng_dlts_.push_back(dlt);
      put32le(b, kPcapNgIdb);
      put32le(b, 32);
      put16le(b, static_cast<uint16_t>(dlt == DLT_RAW ? 101 : dlt));  // LINKTYPE_RAW
      put16le(b, 0);
      put32le(b, 0);
      put16le(b, 9);
      put16le(b, 1);
      put32le(b, 9);  // the value 9, then 3 bytes of padding
      put32le(b, 0);  // opt_endofopt
      put32le(b, 32);
    }
    const uint32_t padded = (caplen + 3u) & ~3u;
    put32le(b, kPcapNgEpb);
    put32le(b, 32 + padded);
    put32le(b, static_cast<uint32_t>(id));
    put32le(b, static_cast<uint32_t>(ts_ns >> 32));
    put32le(b, static_cast<uint32_t>(ts_ns));
    put32le(b, caplen);
    put32le(b, wirelen);
    std::fwrite(b.data(), 1, b.size(), file_);
    b.clear();
    std::fwrite(data, 1, caplen, file_);
    b.resize(padded - caplen, 0);
    put32le(b, 32 + padded);
    std::fwrite(b.data(), 1, b.size(), file_);
    ++packets_;
    return;
  }
  if (dlt >= 0 && dlt != dlt_) {
    ++refused_;
    refused_dlt_ = dlt;
    return;
  }
  struct pcap_pkthdr hdr {};
  hdr.ts.tv_sec = static_cast<time_t>(ts_ns / 1000000000ull);
  uint64_t frac = ts_ns % 1000000000ull;
  hdr.ts.tv_usec = static_cast<suseconds_t>(nano_ ? frac : frac / 1000);
  hdr.caplen = caplen;
  hdr.len = wirelen;
  pcap_dump(reinterpret_cast<u_char*>(dumper_), &hdr, data);
  ++packets_;
}

base::Status PcapWriter::close() {
  using base::Status;
  if (ng_) {
    if (file_ == nullptr) return Status::success();
    const bool ok = std::fflush(file_) == 0 && std::ferror(file_) == 0;
    const int saved = errno;
    const bool closed = std::fclose(file_) == 0;
    file_ = nullptr;
    if (!ok || !closed)
      return Status::failure(fmt::format("{}: write failed: {}", path_, std::strerror(saved)));
    return Status::success();
  }
  if (dumper_ == nullptr) return Status::success();
  const bool ok = pcap_dump_flush(dumper_) == 0 && std::ferror(file_) == 0;
  const int saved = errno;
  pcap_dump_close(dumper_);  // fcloses file_
  dumper_ = nullptr;
  file_ = nullptr;
  if (!ok) return Status::failure(fmt::format("{}: write failed: {}", path_, std::strerror(saved)));
  if (refused_ > 0) {
    return Status::failure(
        fmt::format("{}: {} packets of link type {} were not written: a pcap file holds packets "
                    "of one link type ({}); a pcapng file can hold them all",
                    path_, refused_, dltName(refused_dlt_), dltName(dlt_)));
  }
  return Status::success();
}

}  // namespace statewall::sim
