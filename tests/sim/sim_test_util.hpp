// Helpers shared by the sim tests: temporary directories, files as bytes, small pcap builders.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/temp_dir.hpp"

namespace statewall::sim::testing {

// The tests' one temporary directory (common/temp_dir.hpp).
using ::statewall::testing::TempDir;

// (stdio rather than istreambuf_iterator: GCC 12 -O3 reports a false null dereference there.)
inline std::vector<uint8_t> readBytes(const std::string& path) {
  std::vector<uint8_t> out;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return out;
  uint8_t buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0)
    out.insert(out.end(), buf, buf + n);
  std::fclose(f);
  return out;
}

inline std::string readText(const std::string& path) {
  std::vector<uint8_t> b = readBytes(path);
  return std::string(b.begin(), b.end());
}

inline void writeBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

inline void writeText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

inline void put32le(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
inline void put16le(std::vector<uint8_t>& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}

// A classic little-endian pcap file header (microseconds unless nano).
inline std::vector<uint8_t> pcapHeader(uint32_t linktype, bool nano = false,
                                       uint32_t snaplen = 65535) {
  std::vector<uint8_t> b;
  put32le(b, nano ? 0xa1b23c4d : 0xa1b2c3d4);
  put16le(b, 2);
  put16le(b, 4);
  put32le(b, 0);
  put32le(b, 0);
  put32le(b, snaplen);
  put32le(b, linktype);
  return b;
}

inline void pcapRecord(std::vector<uint8_t>& b, uint32_t sec, uint32_t frac,
                       const std::vector<uint8_t>& data, uint32_t wirelen = 0) {
  put32le(b, sec);
  put32le(b, frac);
  put32le(b, static_cast<uint32_t>(data.size()));
  put32le(b, wirelen != 0 ? wirelen : static_cast<uint32_t>(data.size()));
  b.insert(b.end(), data.begin(), data.end());
}

// A little-endian pcapng file: section header, one interface (microsecond timestamps unless
// tsresol says otherwise), and one enhanced packet block per frame.
inline std::vector<uint8_t> pcapngFile(uint16_t linktype,
                                       const std::vector<std::vector<uint8_t>>& frames,
                                       uint64_t first_ts_units, int tsresol = -1) {
  std::vector<uint8_t> b;
  put32le(b, 0x0a0d0d0a);
  put32le(b, 28);
  put32le(b, 0x1a2b3c4d);
  put16le(b, 1);
  put16le(b, 0);
  put32le(b, 0xffffffff);
  put32le(b, 0xffffffff);
  put32le(b, 28);
  // IDB, with an if_tsresol option when asked.
  uint32_t idb_len = 20 + (tsresol >= 0 ? 12 : 0);
  put32le(b, 1);
  put32le(b, idb_len);
  put16le(b, linktype);
  put16le(b, 0);
  put32le(b, 65535);
  if (tsresol >= 0) {
    put16le(b, 9);
    put16le(b, 1);
    b.push_back(static_cast<uint8_t>(tsresol));
    b.push_back(0);
    b.push_back(0);
    b.push_back(0);
    put16le(b, 0);  // opt_endofopt
    put16le(b, 0);
  }
  put32le(b, idb_len);
  uint64_t ts = first_ts_units;
  for (const auto& f : frames) {
    uint32_t padded = static_cast<uint32_t>((f.size() + 3) & ~size_t{3});
    uint32_t len = 32 + padded;
    put32le(b, 6);
    put32le(b, len);
    put32le(b, 0);
    put32le(b, static_cast<uint32_t>(ts >> 32));
    put32le(b, static_cast<uint32_t>(ts));
    put32le(b, static_cast<uint32_t>(f.size()));
    put32le(b, static_cast<uint32_t>(f.size()));
    b.insert(b.end(), f.begin(), f.end());
    b.resize(b.size() + (padded - f.size()), 0);
    put32le(b, len);
    ts += 1000;
  }
  return b;
}

// Builds a pcapng file block by block (tests only): sections in either byte order, interfaces
// with options, enhanced / simple / obsolete packet blocks, and any other block.
class PcapngBuilder {
 public:
  // A section header block; what follows it is written in that byte order.
  PcapngBuilder& section(bool big_endian = false) {
    big_ = big_endian;
    block(0x0a0d0d0a, [&](std::vector<uint8_t>& b) {
      u32(b, 0x1a2b3c4d);
      u16(b, 1);
      u16(b, 0);
      u32(b, 0xffffffff);
      u32(b, 0xffffffff);
    });
    return *this;
  }
  // An interface description block; tsresol / tsoffset / name as options when given.
  PcapngBuilder& interface(uint16_t linktype, uint32_t snaplen = 0, int tsresol = -1,
                           std::optional<int64_t> tsoffset = std::nullopt,
                           const std::string& name = "") {
    block(1, [&](std::vector<uint8_t>& b) {
      u16(b, linktype);
      u16(b, 0);
      u32(b, snaplen);
      if (!name.empty()) option(b, 2, std::vector<uint8_t>(name.begin(), name.end()));
      if (tsresol >= 0) option(b, 9, {static_cast<uint8_t>(tsresol)});
      if (tsoffset) {
        std::vector<uint8_t> v;
        u64(v, static_cast<uint64_t>(*tsoffset));
        option(b, 14, v);
      }
      if (!name.empty() || tsresol >= 0 || tsoffset) option(b, 0, {});
    });
    return *this;
  }
  // An enhanced packet block (type 6), or an obsolete packet block (type 2, 16-bit interface id).
  PcapngBuilder& packet(uint32_t iface, uint64_t ts, const std::vector<uint8_t>& data,
                        uint32_t wirelen = 0, bool obsolete = false) {
    block(obsolete ? 2 : 6, [&](std::vector<uint8_t>& b) {
      if (obsolete) {
        u16(b, static_cast<uint16_t>(iface));
        u16(b, 0);
      } else {
        u32(b, iface);
      }
      u32(b, static_cast<uint32_t>(ts >> 32));
      u32(b, static_cast<uint32_t>(ts));
      u32(b, static_cast<uint32_t>(data.size()));
      u32(b, wirelen != 0 ? wirelen : static_cast<uint32_t>(data.size()));
      padded(b, data);
    });
    return *this;
  }
  PcapngBuilder& simplePacket(const std::vector<uint8_t>& data, uint32_t wirelen = 0) {
    block(3, [&](std::vector<uint8_t>& b) {
      u32(b, wirelen != 0 ? wirelen : static_cast<uint32_t>(data.size()));
      padded(b, data);
    });
    return *this;
  }
  // Any block: type, body (padded to 4), lengths.
  PcapngBuilder& raw(uint32_t type, const std::vector<uint8_t>& body) {
    block(type, [&](std::vector<uint8_t>& b) { padded(b, body); });
    return *this;
  }
  size_t size() const { return bytes_.size(); }
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  std::vector<uint8_t>& mutableBytes() { return bytes_; }

 private:
  template <class Body>
  void block(uint32_t type, Body body) {
    std::vector<uint8_t> b;
    body(b);
    const uint32_t len = static_cast<uint32_t>(12 + b.size());
    u32(bytes_, type);
    u32(bytes_, len);
    bytes_.insert(bytes_.end(), b.begin(), b.end());
    u32(bytes_, len);
  }
  void option(std::vector<uint8_t>& b, uint16_t code, const std::vector<uint8_t>& v) {
    u16(b, code);
    u16(b, static_cast<uint16_t>(v.size()));
    padded(b, v);
  }
  static void padded(std::vector<uint8_t>& b, const std::vector<uint8_t>& v) {
    b.insert(b.end(), v.begin(), v.end());
    b.resize(b.size() + ((4 - v.size() % 4) % 4), 0);
  }
  void u16(std::vector<uint8_t>& b, uint16_t v) const {
    for (int i = 0; i < 2; ++i)
      b.push_back(static_cast<uint8_t>(v >> (8 * (big_ ? 1 - i : i))));
  }
  void u32(std::vector<uint8_t>& b, uint32_t v) const {
    for (int i = 0; i < 4; ++i)
      b.push_back(static_cast<uint8_t>(v >> (8 * (big_ ? 3 - i : i))));
  }
  void u64(std::vector<uint8_t>& b, uint64_t v) const {
    for (int i = 0; i < 8; ++i)
      b.push_back(static_cast<uint8_t>(v >> (8 * (big_ ? 7 - i : i))));
  }

  std::vector<uint8_t> bytes_;
  bool big_ = false;
};

}  // namespace statewall::sim::testing
