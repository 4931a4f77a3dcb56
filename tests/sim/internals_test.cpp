// The replay's private helpers: the allocation-free formatters of its output files (checked
// against libc) and the open-addressing map behind its flow tables (checked against
// std::unordered_map under random inserts and erases).
#include <arpa/inet.h>

#include <random>
#include <unordered_map>

#include <gtest/gtest.h>

#include "../sim/src/flat_map.hpp"
#include "../sim/src/out_file.hpp"

namespace statewall::sim::detail {
namespace {

std::string ip(const rules::IpAddr& a) {
  char buf[64];
  return std::string(buf, formatIp(a, buf));
}

std::string ntop(const rules::IpAddr& a) {
  char buf[INET6_ADDRSTRLEN];
  if (a.isV4()) {
    uint32_t v = htonl(a.v4());
    return inet_ntop(AF_INET, &v, buf, sizeof(buf));
  }
  uint8_t raw[16];
  a.toV6Bytes(raw);
  return inet_ntop(AF_INET6, raw, buf, sizeof(buf));
}

TEST(Internals, AddressesFormatLikeInetNtop) {
  for (const char* text :
       {"::", "::1", "1::", "2001:db8::1", "2001:db8:0:0:1:0:0:1", "2001:0:0:1:0:0:0:1",
        "fe80::1:2", "2001:db8:1:2:3:4:5:6", "2001:db8::ffff:0:1", "0:1:0:1:0:1:0:1",
        "ff02::1:ff00:2", "0.0.0.0", "255.255.255.255", "10.0.1.10"}) {
    auto a = rules::IpAddr::parse(text);
    ASSERT_TRUE(a) << text;
    EXPECT_EQ(ip(*a), ntop(*a)) << text;
  }
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    uint64_t hi = rng(), lo = rng();
    // Sprinkle zero groups so that "::" placement is exercised.
    for (int g = 0; g < 4; ++g) {
      if (rng() % 3 == 0) hi &= ~(0xFFFFull << (16 * g));
      if (rng() % 3 == 0) lo &= ~(0xFFFFull << (16 * g));
    }
    if (rng() % 8 == 0) hi = 0;
    if (rng() % 16 == 0) lo = (lo & 0xFFFFFFFFull) | 0x0000FFFF00000000ull;
    rules::IpAddr a = rules::IpAddr::v6(hi, lo);
    ASSERT_EQ(ip(a), ntop(a));
    ASSERT_EQ(ip(a), a.str());
    rules::IpAddr b = rules::IpAddr::v4(static_cast<uint32_t>(rng()));
    ASSERT_EQ(ip(b), ntop(b));
  }
}

TEST(Internals, TimestampsAndNumbers) {
  fmt::memory_buffer b;
  appendTs(b, 1700000000123456789ull, true);
  b.push_back(' ');
  appendTs(b, 1700000000123456789ull, false);
  b.push_back(' ');
  appendTs(b, 5, true);
  b.push_back(' ');
  appendU64(b, 0);
  b.push_back(' ');
  appendU64(b, 18446744073709551615ull);
  EXPECT_EQ(fmt::to_string(b),
            "1700000000.123456789 1700000000.123456 0.000000005 0 18446744073709551615");
}

struct IdHash {
  // Deliberately weak, so that probe chains are long and wrap around the table.
  size_t operator()(uint64_t x) const { return static_cast<size_t>(x % 97); }
};
struct IdEq {
  bool operator()(uint64_t a, uint64_t b) const { return a == b; }
};

TEST(Internals, FlatMapMatchesUnorderedMap) {
  FlatMap<uint64_t, uint64_t, IdHash, IdEq> m(16);
  std::unordered_map<uint64_t, uint64_t> ref;
  std::mt19937_64 rng(11);
  for (int step = 0; step < 200000; ++step) {
    uint64_t k = rng() % 3000;
    switch (rng() % 3) {
      case 0: {
        bool ins = false;
        uint64_t& v = m.findOrInsert(k, &ins);
        ASSERT_EQ(ins, ref.count(k) == 0) << step;
        v += k + 1;
        ref[k] += k + 1;
        break;
      }
      case 1:
        ASSERT_EQ(m.erase(k), ref.erase(k) == 1) << step;
        break;
      default: {
        uint64_t* v = m.find(k);
        auto it = ref.find(k);
        ASSERT_EQ(v != nullptr, it != ref.end()) << step;
        if (v != nullptr) {
          ASSERT_EQ(*v, it->second) << step;
        }
      }
    }
    ASSERT_EQ(m.size(), ref.size());
  }
  // The dense arrays hold exactly the live entries.
  for (size_t i = 0; i < m.size(); ++i)
    EXPECT_EQ(ref.at(m.keys()[i]), m.values()[i]);
}

}  // namespace
}  // namespace statewall::sim::detail

namespace statewall::sim::detail {
namespace {

// Every JSON string the replay writes is valid JSON whatever bytes a name holds: bytes that are
// not well-formed UTF-8 become U+FFFD, well-formed ones pass unchanged (issue 14: --verdicts and
// --connections wrote lines that were not JSON).
TEST(Internals, JsonStringsAreValidUtf8WhateverTheBytes) {
  struct Case {
    std::string in;
    std::string want;  // the literal written
  } cases[] = {
      {"plain", "\"plain\""},
      {"a\xff"
       "b",
       "\"a\\ufffdb\""},
      {"caf\xc3\xa9", "\"caf\xc3\xa9\""},                                    // U+00E9
      {"\xe2\x82\xac\xf0\x9f\x94\xa5", "\"\xe2\x82\xac\xf0\x9f\x94\xa5\""},  // U+20AC, U+1F525
      {"\xc3", "\"\\ufffd\""},                                               // cut short
      {"\xc0\xaf", "\"\\ufffd\\ufffd\""},                                    // overlong '/'
      {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},                         // a surrogate
      {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},              // above U+10FFFF
      {"q\"\\\n\x01", "\"q\\\"\\\\\\n\\u0001\""},
  };
  for (const Case& c : cases) {
    fmt::memory_buffer b;
    appendJsonString(b, c.in);
    EXPECT_EQ(fmt::to_string(b), c.want);
  }
}

}  // namespace
}  // namespace statewall::sim::detail
