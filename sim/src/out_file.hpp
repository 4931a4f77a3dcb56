// Buffered text output for the replay's per-packet and per-connection files: records are
// formatted into one growing fmt buffer (no allocation once it has grown) and written with
// fwrite in large blocks. Also non-allocating formatters for addresses and JSON strings.
#pragma once

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

// Decimal digits of v into out; returns the count. No allocation, no locale, no format parsing.
inline size_t formatU64(uint64_t v, char* out) {
  char tmp[20];
  size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; ++i)
    out[i] = tmp[n - 1 - i];
  return n;
}

// Text form of an address into `out` (at least 46 bytes); returns the length. The same text as
// inet_ntop: IPv6 in the RFC 5952 form (lower case, the longest run of two or more zero groups as
// "::", the first if tied), with inet_ntop's dotted quad for IPv4-compatible and -mapped ones.
inline size_t formatIp(const rules::IpAddr& a, char* out) {
  if (a.isV4()) {
    const uint32_t v = a.v4();
    size_t n = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
      n += formatU64((v >> shift) & 255, out + n);
      if (shift != 0) out[n++] = '.';
    }
    return n;
  }
  uint16_t g[8];
  for (int i = 0; i < 4; ++i) {
    g[i] = static_cast<uint16_t>(a.hi >> (48 - 16 * i));
    g[4 + i] = static_cast<uint16_t>(a.lo >> (48 - 16 * i));
  }
  int best = -1, best_len = 0;
  for (int i = 0; i < 8;) {
    if (g[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && g[j] == 0)
      ++j;
    if (j - i > best_len && j - i >= 2) {
      best = i;
      best_len = j - i;
    }
    i = j;
  }
  size_t n = 0;
  // As inet_ntop (and so rules::IpAddr::str()) writes them: IPv4-compatible (::/96) and
  // IPv4-mapped (::ffff:0:0/96) addresses end in a dotted quad.
  if (best == 0 && (best_len == 6 || (best_len == 5 && g[5] == 0xffff))) {
    out[n++] = ':';
    out[n++] = ':';
    if (best_len == 5) {
      for (char c : {'f', 'f', 'f', 'f', ':'})
        out[n++] = c;
    }
    const uint32_t v4 = static_cast<uint32_t>(g[6]) << 16 | g[7];
    for (int shift = 24; shift >= 0; shift -= 8) {
      n += formatU64((v4 >> shift) & 255, out + n);
      if (shift != 0) out[n++] = '.';
    }
    return n;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      out[n++] = ':';
      if (i == 0) out[n++] = ':';
      i += best_len - 1;
      continue;
    }
    const uint16_t x = g[i];
    bool started = false;
    for (int shift = 12; shift >= 0; shift -= 4) {
      const unsigned d = (x >> shift) & 15;
      if (d != 0 || started || shift == 0) {
        out[n++] = kHex[d];
        started = true;
      }
    }
    if (i != 7) out[n++] = ':';
  }
  return n;
}

inline void appendU64(fmt::memory_buffer& b, uint64_t v) {
  char tmp[20];
  size_t n = formatU64(v, tmp);
  b.append(tmp, tmp + n);
}

inline void appendIp(fmt::memory_buffer& b, const rules::IpAddr& a) {
  char tmp[64];
  size_t n = formatIp(a, tmp);
  b.append(tmp, tmp + n);
}

// The length of the well-formed UTF-8 sequence at the start of s (RFC 3629: no overlong forms,
// no surrogates, nothing above U+10FFFF), or 0 when the first byte does not start one.
inline size_t utf8SequenceLength(std::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 2; i < n; ++i) {
    if ((b(i) & 0xC0) != 0x80) return 0;
  }
  return n;
}

// A JSON string literal (with quotes) for any bytes: control characters escaped, and each byte
// that is not part of well-formed UTF-8 (a policy name or comment may hold anything) written as
// U+FFFD, so that every line of --verdicts and --connections is valid JSON.
inline void appendJsonString(fmt::memory_buffer& b, std::string_view s) {
  b.push_back('"');
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = utf8SequenceLength(s.substr(i));
      if (n == 0) {
        b.append(std::string_view("\\ufffd"));
        ++i;
      } else {
        b.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
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
          b.push_back(static_cast<char>(c));
        }
    }
    ++i;
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
  appendU64(b, ts_ns / 1000000000ull);
  uint64_t frac = ts_ns % 1000000000ull;
  int digits = 9;
  if (!nano) {
    frac /= 1000;
    digits = 6;
  }
  char tmp[10];
  tmp[0] = '.';
  for (int i = digits; i >= 1; --i) {
    tmp[i] = static_cast<char>('0' + frac % 10);
    frac /= 10;
  }
  b.append(tmp, tmp + digits + 1);
}

}  // namespace statewall::sim::detail
