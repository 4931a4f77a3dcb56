#include "statewall/sim/pcap_io.hpp"

#include <pcap/pcap.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

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

std::unique_ptr<TraceReader> TraceReader::open(const std::string& path, TraceError* err) {
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
}

TraceReader::Status TraceReader::next(TracePacket* out) {
  if (done_ != Status::kPacket) return done_;
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
    if (format_ == TraceFormat::kPcap) {
      offset_ += kPcapRecordHeader + hdr->caplen;
    } else {
      long pos = std::ftell(file_);
      if (pos > 0) offset_ = static_cast<uint64_t>(pos);
    }
    return Status::kPacket;
  }
  if (rc == PCAP_ERROR_BREAK) {  // end of file
    done_ = Status::kEnd;
    return done_;
  }
  std::string msg = pcap_geterr(pcap_);
  const char* what = format_ == TraceFormat::kPcap ? "record" : "block";
  if (packets_ == 0) {
    error_ = TraceError{path_, offset_, fmt::format("damaged first {}: {}", what, msg)};
  } else {
    error_ = TraceError{path_, offset_,
                        fmt::format("damaged {} after packet {}: {}", what, packets_, msg)};
  }
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
