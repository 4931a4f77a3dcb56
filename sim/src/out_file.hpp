// Buffered text output for the replay's per-packet and per-connection files: records are
// formatted into one growing fmt buffer (no allocation once it has grown) and written with
// fwrite in large blocks. Also non-allocating formatters for addresses and JSON strings.
#pragma once

#include <arpa/inet.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "statewall/rules/ip.hpp"

namespace statewall::sim::detail {

class OutFile {
 public:
  OutFile() = default;
  ~OutFile() {
    std::string ignored;
    close(&ignored);
  }
  OutFile(const OutFile&) = delete;
  OutFile& operator=(const OutFile&) = delete;

  bool open(const std::string& path, std::string* err) {
    path_ = path;
    file_ = std::fopen(path.c_str(), "wb");
    if (file_ == nullptr) {
      *err = fmt::format("{}: cannot create: {}", path, std::strerror(errno));
      return false;
    }
    buf_.reserve(kFlushAt + 4096);
    return true;
  }
  bool isOpen() const { return file_ != nullptr; }
  fmt::memory_buffer& buf() { return buf_; }
  void append(std::string_view s) { buf_.append(s.data(), s.data() + s.size()); }
  // Call after each record.
  void maybeFlush() {
    if (buf_.size() >= kFlushAt) flush();
  }
  void flush() {
    if (file_ != nullptr && buf_.size() > 0) {
      if (std::fwrite(buf_.data(), 1, buf_.size(), file_) != buf_.size()) failed_ = true;
    }
    buf_.clear();
  }
  bool close(std::string* err) {
    if (file_ == nullptr) return true;
    flush();
    int saved = errno;
    bool ok = !failed_ && std::fflush(file_) == 0 && std::ferror(file_) == 0;
    if (!ok) saved = errno;
    if (std::fclose(file_) != 0) ok = false;
    file_ = nullptr;
    if (!ok) *err = fmt::format("{}: write failed: {}", path_, std::strerror(saved));
    return ok;
  }

 private:
  static constexpr size_t kFlushAt = 1 << 20;
  std::string path_;
  FILE* file_ = nullptr;
  fmt::memory_buffer buf_;
  bool failed_ = false;
};

// Text form of an address into `out` (at least 46 bytes); returns the length. No allocation.
inline size_t formatIp(const rules::IpAddr& a, char* out) {
  if (a.isV4()) {
    uint32_t v = a.v4();
    auto r = fmt::format_to(out, "{}.{}.{}.{}", v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255);
    return static_cast<size_t>(r - out);
  }
  uint8_t raw[16];
  a.toV6Bytes(raw);
  if (::inet_ntop(AF_INET6, raw, out, 46) == nullptr) {
    out[0] = '?';
    return 1;
  }
  return std::strlen(out);
}

inline void appendIp(fmt::memory_buffer& b, const rules::IpAddr& a) {
  char tmp[64];
  size_t n = formatIp(a, tmp);
  b.append(tmp, tmp + n);
}

// A JSON string literal (with quotes) for arbitrary UTF-8 text; control characters escaped.
inline void appendJsonString(fmt::memory_buffer& b, std::string_view s) {
  b.push_back('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        b.append(std::string_view("\\\""));
        break;
      case '\\':
        b.append(std::string_view("\\\\"));
        break;
      case '\n':
        b.append(std::string_view("\\n"));
        break;
      case '\r':
        b.append(std::string_view("\\r"));
        break;
      case '\t':
        b.append(std::string_view("\\t"));
        break;
      default:
        if (c < 0x20) {
          fmt::format_to(std::back_inserter(b), "\\u{:04x}", c);
        } else {
          b.push_back(ch);
        }
    }
  }
  b.push_back('"');
}

inline std::string jsonString(std::string_view s) {
  fmt::memory_buffer b;
  appendJsonString(b, s);
  return fmt::to_string(b);
}

// Trace timestamps as seconds with 6 or 9 decimals (the resolution of the input file).
inline void appendTs(fmt::memory_buffer& b, uint64_t ts_ns, bool nano) {
  if (nano) {
    fmt::format_to(std::back_inserter(b), "{}.{:09}", ts_ns / 1000000000ull, ts_ns % 1000000000ull);
  } else {
    fmt::format_to(std::back_inserter(b), "{}.{:06}", ts_ns / 1000000000ull,
                   (ts_ns % 1000000000ull) / 1000);
  }
}

}  // namespace statewall::sim::detail
