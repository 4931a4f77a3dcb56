// VPC Flow Logs: field names, formats and the streaming reader (sim/flowlog.hpp).
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "statewall/sim/flowlog.hpp"

namespace statewall::sim {
namespace {

constexpr size_t kBufSize = 1 << 20;
// A line longer than this is an error, not a reason to grow without bound.
constexpr size_t kMaxLine = 64 * 1024;

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

// Unsigned decimal of at most 20 digits; false on anything else. Nineteen digits cannot overflow,
// so only a twentieth is checked.
bool parseU64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  const size_t safe = std::min<size_t>(s.size(), 19);
  for (size_t i = 0; i < safe; ++i) {
    const unsigned d = static_cast<unsigned char>(s[i]) - unsigned{'0'};
    if (d > 9) return false;
    v = v * 10 + d;
  }
  if (s.size() == 20) {
    const unsigned d = static_cast<unsigned char>(s[19]) - unsigned{'0'};
    if (d > 9 || v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

// The first blank (space or tab) in [p, e), or e. Eight bytes at a time: a byte equal to ' ' or
// '\t' becomes zero after the XOR, and the exact zero-byte test marks it with its high bit.
const char* findBlank(const char* p, const char* e) {
  constexpr uint64_t k01 = 0x0101010101010101ull, k7f = 0x7f7f7f7f7f7f7f7full;
  auto zeroBytes = [](uint64_t v) { return ~(((v & k7f) + k7f) | v | k7f); };
  while (e - p >= 8) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    const uint64_t m = zeroBytes(x ^ (k01 * ' ')) | zeroBytes(x ^ (k01 * '\t'));
    if (m != 0) {
      if constexpr (std::endian::native == std::endian::little) {
        return p + (std::countr_zero(m) >> 3);
      } else {
        return p + (std::countl_zero(m) >> 3);
      }
    }
    p += 8;
  }
  while (p < e && *p != ' ' && *p != '\t')
    ++p;
  return p;
}

bool parseAddrSlow(std::string_view s, rules::IpAddr* out) {
  auto a = rules::IpAddr::parse(s);
  if (!a) return false;
  *out = *a;
  return true;
}

// Dotted quad without leading zeros, the common case, without the copy inet_pton needs; anything
// else (IPv6, or a quad this does not take) is decided by IpAddr::parse.
bool parseAddr(std::string_view s, rules::IpAddr* out) {
  const char* p = s.data();
  const char* const e = p + s.size();
  uint32_t v = 0;
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (p == e || *p != '.') return parseAddrSlow(s, out);
      ++p;
    }
    unsigned d = 0;
    if (p == e || (d = static_cast<unsigned char>(*p) - unsigned{'0'}) > 9) {
      return parseAddrSlow(s, out);
    }
    unsigned cur = d;
    ++p;
    for (int more = 0; more < 2 && p < e; ++more, ++p) {
      if ((d = static_cast<unsigned char>(*p) - unsigned{'0'}) > 9) break;
      if (cur == 0) return parseAddrSlow(s, out);  // a leading zero
      cur = cur * 10 + d;
    }
    if (cur > 255) return parseAddrSlow(s, out);
    v = v << 8 | cur;
  }
  if (p != e) return parseAddrSlow(s, out);
  *out = rules::IpAddr::v4(v);
  return true;
}

// The number of blank-separated fields of a line.
size_t countFields(std::string_view line) {
  size_t n = 0;
  bool in = false;
  for (char c : line) {
    const bool blank = c == ' ' || c == '\t';
    if (!blank && !in) ++n;
    in = !blank;
  }
  return n;
}

std::string afterLine(uint64_t line) {
  return line == 0 ? std::string("before its first line") : fmt::format("after line {}", line);
}

}  // namespace

std::string FlowLogError::str() const {
  if (line == 0) return fmt::format("{}: {}", path, message);
  return fmt::format("{}:{}: {}", path, line, message);
}

std::unique_ptr<FlowLogReader> FlowLogReader::open(const std::string& path,
                                                   const FlowLogFormat& fallback,
                                                   FlowLogError* err) {
  std::unique_ptr<FlowLogReader> r(new FlowLogReader());
  r->path_ = path;
  r->format_ = fallback;
  r->error_.path = path;
  r->fd_ = path == "-" ? ::dup(0) : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (r->fd_ < 0) {
    *err = FlowLogError{path, 0, std::string("cannot open: ") + std::strerror(errno)};
    return nullptr;
  }
  r->buf_.resize(kBufSize);
  // gzip is recognised by its magic bytes, whatever the name says.
  uint8_t magic[2] = {0, 0};
  ssize_t got = 0;
  while (got < 2) {
    ssize_t n = ::read(r->fd_, magic + got, static_cast<size_t>(2 - got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += n;
  }
  if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    r->gzip_ = true;
    if (path != "-" && ::lseek(r->fd_, 0, SEEK_SET) == 0) {
      r->gz_ = gzdopen(r->fd_, "rb");
    } else {
      *err = FlowLogError{path, 0, "a gzip log must be a file (not a pipe)"};
      return nullptr;
    }
    if (r->gz_ == nullptr) {
      *err = FlowLogError{path, 0, "cannot read the gzip stream"};
      return nullptr;
    }
    r->fd_ = -1;  // gzclose closes it
    gzbuffer(static_cast<gzFile>(r->gz_), 256 * 1024);
  } else {
    std::memcpy(r->buf_.data(), magic, static_cast<size_t>(got));
    r->end_ = static_cast<size_t>(got);
  }
  return r;
}

FlowLogReader::~FlowLogReader() {
  if (gz_ != nullptr) gzclose(static_cast<gzFile>(gz_));
  if (fd_ >= 0) ::close(fd_);
}

bool FlowLogReader::fail(std::string message) {
  error_.line = line_;
  error_.message = std::move(message);
  return false;
}

bool FlowLogReader::fill() {
  if (eof_) return false;
  if (begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == buf_.size()) return true;  // full: the caller's line-length check decides
  char* at = buf_.data() + end_;
  const size_t room = buf_.size() - end_;
  ssize_t n;
  if (gz_ != nullptr) {
    auto* gz = static_cast<gzFile>(gz_);
    int k = gzread(gz, at, static_cast<unsigned>(room));
    if (k < 0) {
      int code = 0;
      const char* msg = gzerror(gz, &code);
      error_.line = 0;
      error_.message = fmt::format("bad gzip data {}: {}", afterLine(line_), msg ? msg : "?");
      return false;
    }
    n = k;
    if (k == 0) {
      // gzread reports a stream cut short as the end of data; gzerror says so.
      int code = 0;
      const char* msg = gzerror(gz, &code);
      if (code != Z_OK && code != Z_BUF_ERROR) {
        error_.line = 0;
        error_.message = fmt::format("bad gzip data {}: {}", afterLine(line_), msg ? msg : "?");
        return false;
      }
      if (code == Z_BUF_ERROR) {
        error_.line = 0;
        error_.message = "the gzip stream is cut short " + afterLine(line_);
        return false;
      }
    }
  } else {
    do {
      n = ::read(fd_, at, room);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      error_.line = 0;
      error_.message = std::string("read error: ") + std::strerror(errno);
      return false;
    }
  }
  if (n == 0) eof_ = true;
  end_ += static_cast<size_t>(n);
  return true;
}

FlowLogReader::Result FlowLogReader::next(FlowLogRecord* out) {
  error_.message.clear();
  for (;;) {
    const char* base = buf_.data();
    const void* nl = std::memchr(base + begin_, '\n', end_ - begin_);
    std::string_view line;
    if (nl != nullptr) {
      const size_t at = static_cast<size_t>(static_cast<const char*>(nl) - base);
      line = std::string_view(base + begin_, at - begin_);
      begin_ = at + 1;
    } else if (eof_) {
      if (begin_ == end_) return Result::kEnd;
      line = std::string_view(base + begin_, end_ - begin_);  // a last line without '\n'
      begin_ = end_;
    } else {
      if (end_ - begin_ >= kMaxLine) {
        ++line_;
        fail(fmt::format("line longer than {} bytes", kMaxLine));
        return Result::kError;
      }
      if (!fill()) {
        if (error_.message.empty()) continue;
        return Result::kError;
      }
      continue;
    }
    ++line_;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const size_t first = line.find_first_not_of(" \t");
    if (!isDigit(line[first])) {
      // A header line (S3 delivery writes one at the top of every file).
      auto f = FlowLogFormat::parse(line);
      if (!f) {
        fail("not a record and not a header line: " + f.message());
        return Result::kError;
      }
      format_ = std::move(*f);
      continue;
    }
    if (!parseLine(line, out)) return Result::kError;
    return Result::kRecord;
  }
}

bool FlowLogReader::parseLine(std::string_view line, FlowLogRecord* out) {
  // One pass: each field is cut at the next blank and stored as it is found. The field count is
  // checked first whenever the line is rejected, so that a short or long line is reported as such
  // and not as its first field of the wrong kind.
  const size_t want = format_.fields.size();
  tokens_.resize(want);
  size_t got = 0;
  const char* p = line.data();
  const char* const e = p + line.size();
  for (;;) {
    while (p < e && (*p == ' ' || *p == '\t'))
      ++p;
    if (p == e) break;
    const char* s = p;
    p = findBlank(p, e);
    if (got == want) {
      got = countFields(line);
      break;
    }
    tokens_[got++] = std::string_view(s, static_cast<size_t>(p - s));
  }
  if (got != want) {
    return fail(fmt::format("expected {} fields ({}), found {}", want,
                            want == 14 ? "the default format" : "as the header says", got));
  }
  *out = FlowLogRecord{};
  bool pkt_src = false, pkt_dst = false, addrs = false;
  for (size_t k = 0; k < want; ++k) {
    const std::string_view t = tokens_[k];
    const FlowLogField f = format_.fields[k];
    if (t == "-") continue;  // absent: NODATA/SKIPDATA records, or a field that does not apply
    auto bad = [&](std::string_view expected) {
      return fail(
          fmt::format("field {} ({}) is '{}': expected {}", k + 1, format_.names[k], t, expected));
    };
    uint64_t v = 0;
    switch (f) {
      case FlowLogField::kVersion:
        if (!parseU64(t, &v) || v < 2 || v > 1000) return bad("a version number (2, 3, 4, 5, ...)");
        out->version = static_cast<uint32_t>(v);
        break;
      case FlowLogField::kAccountId:
        out->account_id = t;
        break;
      case FlowLogField::kInterfaceId:
        out->interface_id = t;
        break;
      case FlowLogField::kVpcId:
        out->vpc_id = t;
        break;
      case FlowLogField::kSubnetId:
        out->subnet_id = t;
        break;
      case FlowLogField::kInstanceId:
        out->instance_id = t;
        break;
      case FlowLogField::kType:
        out->type = t;
        break;
      case FlowLogField::kSrcAddr:
        if (!parseAddr(t, &out->src)) return bad("an IPv4 or IPv6 address");
        addrs = true;
        break;
      case FlowLogField::kDstAddr:
        if (!parseAddr(t, &out->dst)) return bad("an IPv4 or IPv6 address");
        break;
      case FlowLogField::kPktSrcAddr:
        if (!parseAddr(t, &out->pkt_src)) return bad("an IPv4 or IPv6 address");
        pkt_src = true;
        break;
      case FlowLogField::kPktDstAddr:
        if (!parseAddr(t, &out->pkt_dst)) return bad("an IPv4 or IPv6 address");
        pkt_dst = true;
        break;
      case FlowLogField::kSrcPort:
      case FlowLogField::kDstPort:
        if (!parseU64(t, &v) || v > 65535) return bad("a port 0..65535");
        (f == FlowLogField::kSrcPort ? out->sport : out->dport) = static_cast<uint16_t>(v);
        break;
      case FlowLogField::kProtocol:
        if (!parseU64(t, &v) || v > 255) return bad("an IP protocol number 0..255");
        out->proto = static_cast<uint8_t>(v);
        break;
      case FlowLogField::kPackets:
        if (!parseU64(t, &v)) return bad("a packet count");
        out->packets = v;
        break;
      case FlowLogField::kBytes:
        if (!parseU64(t, &v)) return bad("a byte count");
        out->bytes = v;
        break;
      case FlowLogField::kStart:
      case FlowLogField::kEnd:
        // Seconds since 1970, at most year 2100 (the engine's clock counts nanoseconds).
        if (!parseU64(t, &v) || v > 4102444800ull) return bad("seconds since 1970");
        (f == FlowLogField::kStart ? out->start : out->end) = v;
        break;
      case FlowLogField::kAction:
        if (t == "ACCEPT") {
          out->action = FlowAction::kAccept;
        } else if (t == "REJECT") {
          out->action = FlowAction::kReject;
        } else {
          return bad("ACCEPT or REJECT");
        }
        break;
      case FlowLogField::kLogStatus:
        if (t == "OK") {
          out->status = LogStatus::kOk;
        } else if (t == "NODATA") {
          out->status = LogStatus::kNoData;
        } else if (t == "SKIPDATA") {
          out->status = LogStatus::kSkipData;
        } else {
          return bad("OK, NODATA or SKIPDATA");
        }
        break;
      case FlowLogField::kTcpFlags:
        if (!parseU64(t, &v) || v > 255) return bad("TCP flags 0..255");
        out->tcp_flags = static_cast<int>(v);
        break;
      case FlowLogField::kFlowDirection:
        if (t == "ingress") {
          out->direction = FlowDirection::kIngress;
        } else if (t == "egress") {
          out->direction = FlowDirection::kEgress;
        } else {
          return bad("ingress or egress");
        }
        break;
      case FlowLogField::kTrafficPath:
        if (!parseU64(t, &v) || v > 255) return bad("a traffic path number");
        out->traffic_path = static_cast<int>(v);
        break;
      default:
        break;  // read and not needed
    }
  }
  out->has_addrs = addrs;
  out->pkt_src = pkt_src ? out->pkt_src : out->src;
  out->pkt_dst = pkt_dst ? out->pkt_dst : out->dst;
  if (out->status == LogStatus::kOk) {
    if (!addrs || out->interface_id.empty() || out->action == FlowAction::kNone) {
      return fail("an OK record needs interface-id, srcaddr, dstaddr and action");
    }
    if (out->src.family != out->dst.family || out->pkt_src.family != out->pkt_dst.family) {
      return fail("source and destination addresses of different families");
    }
    if (out->end != 0 && out->end < out->start) {
      return fail(fmt::format("end {} is before start {}", out->end, out->start));
    }
    if (out->end == 0) out->end = out->start;
  }
  return true;
}

}  // namespace statewall::sim
