// TraceReader / PcapWriter: formats, link types, byte-exact round trips and every kind of damage.
#include <pcap/pcap.h>
#include <unistd.h>

#include <algorithm>

#include <gtest/gtest.h>

#include "sim_test_util.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/sim/pcap_io.hpp"

namespace statewall::sim {
namespace {

using dataplane::LinkType;
using testing::TempDir;

std::vector<uint8_t> frameOf(int i) {
  dataplane::TcpSpec t;
  t.sport = static_cast<uint16_t>(40000 + i);
  t.payload_len = static_cast<size_t>(i * 7);
  return dataplane::buildTcp(t);
}

std::vector<std::vector<uint8_t>> readAll(TraceReader& r, std::vector<uint64_t>* ts = nullptr) {
  std::vector<std::vector<uint8_t>> out;
  TracePacket p;
  while (r.next(&p) == TraceReader::Status::kPacket) {
    out.emplace_back(p.data, p.data + p.caplen);
    if (ts != nullptr) ts->push_back(p.ts_ns);
  }
  return out;
}

TEST(PcapIo, WriterRoundTripIsByteExactMicroAndNano) {
  TempDir dir;
  for (bool nano : {false, true}) {
    std::string path = dir.file(nano ? "n.pcap" : "u.pcap");
    std::string err;
    auto w = PcapWriter::open(path, DLT_EN10MB, 65535, nano, &err);
    ASSERT_TRUE(w) << err;
    std::vector<std::vector<uint8_t>> frames;
    for (int i = 0; i < 50; ++i) {
      frames.push_back(frameOf(i));
      w->write(1700000000ull * 1000000000ull + static_cast<uint64_t>(i) * 1234567,
               frames.back().data(), static_cast<uint32_t>(frames.back().size()),
               static_cast<uint32_t>(frames.back().size()) + (i == 3 ? 100 : 0));
    }
    ASSERT_TRUE(w->close(&err)) << err;

    TraceError terr;
    auto r = TraceReader::open(path, &terr);
    ASSERT_TRUE(r) << terr.str();
    EXPECT_EQ(r->format(), TraceFormat::kPcap);
    EXPECT_EQ(r->linkType(), LinkType::kEthernet);
    EXPECT_EQ(r->nanoResolution(), nano);
    std::vector<uint64_t> ts;
    TracePacket p;
    int i = 0;
    while (r->next(&p) == TraceReader::Status::kPacket) {
      ASSERT_LT(i, 50);
      EXPECT_EQ(std::vector<uint8_t>(p.data, p.data + p.caplen), frames[i]);
      EXPECT_EQ(p.wirelen, p.caplen + (i == 3 ? 100u : 0u));
      uint64_t want = 1700000000ull * 1000000000ull + static_cast<uint64_t>(i) * 1234567;
      EXPECT_EQ(p.ts_ns, nano ? want : want / 1000 * 1000);
      ++i;
    }
    EXPECT_EQ(i, 50);
    EXPECT_EQ(r->next(&p), TraceReader::Status::kEnd);
    EXPECT_EQ(r->offset(), r->fileSize());
  }
}

TEST(PcapIo, ReadsEveryLinkTypeTheEngineParses) {
  TempDir dir;
  struct Case {
    uint32_t linktype;  // as stored in the file (LINKTYPE_*)
    LinkType want;
  } cases[] = {{1, LinkType::kEthernet}, {101, LinkType::kRawIp},    {228, LinkType::kRawIp},
               {229, LinkType::kRawIp},  {113, LinkType::kLinuxSll}, {276, LinkType::kLinuxSll2}};
  for (const auto& c : cases) {
    auto bytes = testing::pcapHeader(c.linktype);
    testing::pcapRecord(bytes, 1, 2, {0x45, 0, 0, 20});
    std::string path = dir.file("l" + std::to_string(c.linktype) + ".pcap");
    testing::writeBytes(path, bytes);
    TraceError err;
    auto r = TraceReader::open(path, &err);
    ASSERT_TRUE(r) << c.linktype << ": " << err.str();
    EXPECT_EQ(r->linkType(), c.want) << c.linktype;
    TracePacket p;
    EXPECT_EQ(r->next(&p), TraceReader::Status::kPacket);
    EXPECT_EQ(p.ts_ns, 1000002000u);
  }
}

TEST(PcapIo, ReadsPcapng) {
  TempDir dir;
  std::vector<std::vector<uint8_t>> frames = {frameOf(1), frameOf(2), frameOf(3)};
  std::string path = dir.file("t.pcapng");
  testing::writeBytes(path, testing::pcapngFile(1, frames, 1700000000ull * 1000000));
  TraceError err;
  auto r = TraceReader::open(path, &err);
  ASSERT_TRUE(r) << err.str();
  EXPECT_EQ(r->format(), TraceFormat::kPcapNg);
  EXPECT_FALSE(r->nanoResolution());
  std::vector<uint64_t> ts;
  EXPECT_EQ(readAll(*r, &ts), frames);
  ASSERT_EQ(ts.size(), 3u);
  EXPECT_EQ(ts[0], 1700000000ull * 1000000000ull);
  EXPECT_EQ(ts[1] - ts[0], 1000000u);  // 1000 microsecond units
  EXPECT_EQ(r->offset(), r->fileSize());

  std::string nano = dir.file("n.pcapng");
  testing::writeBytes(nano, testing::pcapngFile(1, frames, 5, 9));
  auto rn = TraceReader::open(nano, &err);
  ASSERT_TRUE(rn) << err.str();
  EXPECT_TRUE(rn->nanoResolution());
  ts.clear();
  EXPECT_EQ(readAll(*rn, &ts), frames);
  EXPECT_EQ(ts[0], 5u);
}

TEST(PcapIo, MissingFile) {
  TempDir dir;
  TraceError err;
  EXPECT_FALSE(TraceReader::open(dir.file("nope.pcap"), &err));
  EXPECT_EQ(err.file, dir.file("nope.pcap"));
  EXPECT_EQ(err.offset, 0u);
  EXPECT_NE(err.str().find("No such file"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find("byte offset 0"), std::string::npos) << err.str();
}

TEST(PcapIo, EmptyFile) {
  TempDir dir;
  testing::writeBytes(dir.file("e.pcap"), {});
  TraceError err;
  EXPECT_FALSE(TraceReader::open(dir.file("e.pcap"), &err));
  EXPECT_EQ(err.offset, 0u);
  EXPECT_NE(err.message.find("empty file"), std::string::npos) << err.str();
}

TEST(PcapIo, NotAPcap) {
  TempDir dir;
  testing::writeText(dir.file("x.pcap"), "GET / HTTP/1.1\r\nHost: example\r\n\r\n");
  TraceError err;
  EXPECT_FALSE(TraceReader::open(dir.file("x.pcap"), &err));
  EXPECT_EQ(err.offset, 0u);
  EXPECT_NE(err.message.find("not a pcap or pcapng file"), std::string::npos) << err.str();
  EXPECT_NE(err.message.find("47455420"), std::string::npos) << err.str();  // "GET "
}

TEST(PcapIo, TruncatedFileHeader) {
  TempDir dir;
  auto h = testing::pcapHeader(1);
  h.resize(10);
  testing::writeBytes(dir.file("h.pcap"), h);
  TraceError err;
  EXPECT_FALSE(TraceReader::open(dir.file("h.pcap"), &err));
  EXPECT_EQ(err.offset, 0u);
  EXPECT_NE(err.message.find("truncated pcap file header: 10 of 24 bytes"), std::string::npos)
      << err.str();
}

TEST(PcapIo, UnknownLinkType) {
  TempDir dir;
  auto h = testing::pcapHeader(147);  // LINKTYPE_USER0
  testing::pcapRecord(h, 1, 0, {1, 2, 3});
  testing::writeBytes(dir.file("u.pcap"), h);
  TraceError err;
  EXPECT_FALSE(TraceReader::open(dir.file("u.pcap"), &err));
  EXPECT_EQ(err.offset, 20u);  // the link-type field of the file header
  EXPECT_NE(err.message.find("unsupported link type"), std::string::npos) << err.str();
  EXPECT_NE(err.message.find("147"), std::string::npos) << err.str();

  std::vector<std::vector<uint8_t>> frames = {{1, 2, 3}};
  testing::writeBytes(dir.file("u.pcapng"), testing::pcapngFile(147, frames, 0));
  EXPECT_FALSE(TraceReader::open(dir.file("u.pcapng"), &err));
  EXPECT_EQ(err.offset, 28u + 8u);  // the IDB's link-type field after the 28-byte SHB
}

TEST(PcapIo, TruncatedMidRecordReportsTheRecordOffset) {
  TempDir dir;
  auto bytes = testing::pcapHeader(1);
  std::vector<size_t> starts;
  for (int i = 0; i < 5; ++i) {
    starts.push_back(bytes.size());
    testing::pcapRecord(bytes, 1, static_cast<uint32_t>(i), frameOf(i));
  }
  // Cut in the middle of the 4th record's data, then in the middle of the 5th record's header.
  struct Cut {
    size_t keep;
    uint64_t want_packets;
    size_t want_offset;
  } cuts[] = {{starts[3] + 16 + 5, 3, starts[3]}, {starts[4] + 7, 4, starts[4]}};
  for (const auto& c : cuts) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(c.keep));
    std::string path = dir.file("cut" + std::to_string(c.keep) + ".pcap");
    testing::writeBytes(path, cut);
    TraceError err;
    auto r = TraceReader::open(path, &err);
    ASSERT_TRUE(r) << err.str();
    auto got = readAll(*r);
    EXPECT_EQ(got.size(), c.want_packets);
    TracePacket p;
    EXPECT_EQ(r->next(&p), TraceReader::Status::kError);
    EXPECT_EQ(r->error().offset, c.want_offset) << r->error().str();
    EXPECT_EQ(r->error().file, path);
    EXPECT_NE(r->error().message.find("truncated"), std::string::npos) << r->error().str();
    EXPECT_NE(r->error().message.find("after packet " + std::to_string(c.want_packets)),
              std::string::npos)
        << r->error().str();
  }
}

TEST(PcapIo, TruncatedPcapngBlock) {
  TempDir dir;
  std::vector<std::vector<uint8_t>> frames = {frameOf(1), frameOf(2), frameOf(3)};
  auto bytes = testing::pcapngFile(1, frames, 0);
  bytes.resize(bytes.size() - 10);
  testing::writeBytes(dir.file("t.pcapng"), bytes);
  TraceError err;
  auto r = TraceReader::open(dir.file("t.pcapng"), &err);
  ASSERT_TRUE(r) << err.str();
  EXPECT_EQ(readAll(*r).size(), 2u);
  TracePacket p;
  EXPECT_EQ(r->next(&p), TraceReader::Status::kError);
  // The third block starts right after the second one.
  size_t third = 28 + 20 + 2 * 32 + ((frames[0].size() + 3) & ~size_t{3}) +
                 ((frames[1].size() + 3) & ~size_t{3});
  EXPECT_EQ(r->error().offset, third) << r->error().str();
}

// What a reader produced, to compare the mapped reader with libpcap.
struct ReadResult {
  std::vector<std::vector<uint8_t>> frames;
  std::vector<uint64_t> ts;
  std::vector<uint32_t> wirelen;
  TraceReader::Status end = TraceReader::Status::kEnd;
  std::string error;
  uint64_t offset = 0;
  bool open_failed = false;
  bool mapped = false;
};

ReadResult readWith(const std::string& path, TraceReader::Backend b) {
  ReadResult out;
  TraceError err;
  auto r = TraceReader::open(path, &err, b);
  if (!r) {
    out.open_failed = true;
    out.error = err.str();
    return out;
  }
  out.mapped = r->mapped();
  TracePacket p;
  while ((out.end = r->next(&p)) == TraceReader::Status::kPacket) {
    out.frames.emplace_back(p.data, p.data + p.caplen);
    out.ts.push_back(p.ts_ns);
    out.wirelen.push_back(p.wirelen);
  }
  if (out.end == TraceReader::Status::kError) out.error = r->error().str();
  out.offset = r->offset();
  return out;
}

// The same classic pcap in big-endian byte order: every 16- and 32-bit field reversed.
std::vector<uint8_t> bigEndian(const std::vector<uint8_t>& le) {
  std::vector<uint8_t> b;
  b.reserve(le.size());
  auto get32 = [&](size_t at) {
    return static_cast<uint32_t>(le[at]) | static_cast<uint32_t>(le[at + 1]) << 8 |
           static_cast<uint32_t>(le[at + 2]) << 16 | static_cast<uint32_t>(le[at + 3]) << 24;
  };
  auto put32 = [&](uint32_t v) {
    for (int i = 3; i >= 0; --i)
      b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  auto put16 = [&](uint32_t v) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
  };
  put32(get32(0));
  put16(static_cast<uint32_t>(le[4] | le[5] << 8));
  put16(static_cast<uint32_t>(le[6] | le[7] << 8));
  for (size_t at : {8, 12, 16, 20})
    put32(get32(at));
  size_t off = 24;
  while (off + 16 <= le.size()) {
    const uint32_t caplen = get32(off + 8);
    for (size_t k = 0; k < 4; ++k)
      put32(get32(off + 4 * k));
    const size_t end = std::min(le.size(), off + 16 + caplen);
    for (size_t i = off + 16; i < end; ++i)
      b.push_back(le[i]);
    off += 16 + caplen;
  }
  return b;
}

TEST(PcapIo, MappedReaderAgreesWithLibpcap) {
  TempDir dir;
  std::vector<std::string> files;
  for (bool nano : {false, true}) {
    auto bytes = testing::pcapHeader(1, nano);
    for (int i = 0; i < 40; ++i) {
      testing::pcapRecord(bytes, 1700000000u + static_cast<uint32_t>(i),
                          999999u - static_cast<uint32_t>(i), frameOf(i), i % 7 == 0 ? 1514 : 0);
    }
    std::string tag = nano ? "n" : "u";
    testing::writeBytes(dir.file(tag + ".pcap"), bytes);
    testing::writeBytes(dir.file(tag + "-be.pcap"), bigEndian(bytes));
    files.push_back(dir.file(tag + ".pcap"));
    files.push_back(dir.file(tag + "-be.pcap"));
    for (size_t cut : {bytes.size() - 1, bytes.size() - 30, size_t{24 + 7}, size_t{24}}) {
      std::vector<uint8_t> c(bytes.begin(), bytes.begin() + static_cast<long>(cut));
      std::string name = dir.file(tag + "-cut" + std::to_string(cut) + ".pcap");
      testing::writeBytes(name, c);
      files.push_back(name);
    }
  }
  // A record claiming more than libpcap's maximum capture length.
  auto huge = testing::pcapHeader(1);
  testing::pcapRecord(huge, 1, 0, frameOf(1));
  auto tail = huge.size();
  testing::pcapRecord(huge, 2, 0, frameOf(2));
  huge[tail + 8] = 0;
  huge[tail + 9] = 0;
  huge[tail + 10] = 0x10;  // 1 MiB
  huge[tail + 11] = 0;
  testing::writeBytes(dir.file("huge.pcap"), huge);
  files.push_back(dir.file("huge.pcap"));
  // Records longer than the header's snapshot length are cut to it (as libpcap does); a
  // snapshot length of 0 means the maximum.
  for (uint32_t snap : {60u, 0u}) {
    auto b = testing::pcapHeader(1, false, snap);
    for (int i = 0; i < 5; ++i)
      testing::pcapRecord(b, 1, 0, frameOf(20 + i));
    std::string name = dir.file("snap" + std::to_string(snap) + ".pcap");
    testing::writeBytes(name, b);
    files.push_back(name);
  }

  for (const auto& f : files) {
    SCOPED_TRACE(f);
    ReadResult a = readWith(f, TraceReader::Backend::kAuto);
    ReadResult l = readWith(f, TraceReader::Backend::kLibpcap);
    EXPECT_TRUE(a.mapped);
    EXPECT_FALSE(l.mapped);
    EXPECT_EQ(a.open_failed, l.open_failed);
    EXPECT_EQ(a.frames, l.frames);
    EXPECT_EQ(a.ts, l.ts);
    EXPECT_EQ(a.wirelen, l.wirelen);
    EXPECT_EQ(a.end, l.end);
    EXPECT_EQ(a.error, l.error);
    EXPECT_EQ(a.offset, l.offset);
  }
}

}  // namespace
}  // namespace statewall::sim

namespace statewall::sim {
namespace {

// A mapped trace that another program cuts short while it is read: an error at the offset where
// the file now ends, every record before it read (issue 14: it was SIGBUS). Cuts far from the end
// (the vanished pages fault), in the file's last page (no fault: the size is asked), and to 0.
TEST(PcapIo, TraceThatShrinksWhileMappedEndsWithAnError) {
  TempDir dir;
  auto bytes = testing::pcapHeader(1);
  std::vector<size_t> ends;
  for (int i = 0; i < 400; ++i) {
    testing::pcapRecord(bytes, 1, static_cast<uint32_t>(i), frameOf(i % 60));
    ends.push_back(bytes.size());
  }
  ASSERT_GT(bytes.size(), 8u * 4096);
  const size_t cuts[] = {ends[200] + 16 + 9, ends[200], bytes.size() - 30, 0, 4096 * 3};
  for (size_t cut : cuts) {
    const std::string path = dir.file("shrink" + std::to_string(cut) + ".pcap");
    testing::writeBytes(path, bytes);
    TraceError err;
    auto r = TraceReader::open(path, &err);
    ASSERT_TRUE(r) << err.str();
    ASSERT_TRUE(r->mapped());
    TracePacket p;
    for (int i = 0; i < 5; ++i)
      ASSERT_EQ(r->next(&p), TraceReader::Status::kPacket);
    ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(cut)), 0);
    uint64_t n = 5;
    TraceReader::Status st;
    while ((st = r->next(&p)) == TraceReader::Status::kPacket) {
      // Every byte handed out is still the file's.
      ASSERT_EQ(p.caplen, frameOf(static_cast<int>(n % 60)).size());
      ASSERT_TRUE(std::equal(p.data, p.data + p.caplen, frameOf(static_cast<int>(n % 60)).begin()));
      ++n;
    }
    ASSERT_EQ(st, TraceReader::Status::kError) << cut;
    const uint64_t whole =
        static_cast<uint64_t>(std::upper_bound(ends.begin(), ends.end(), cut) - ends.begin());
    EXPECT_EQ(n, std::max<uint64_t>(5, whole)) << cut;
    EXPECT_EQ(r->error().offset, cut) << r->error().str();
    EXPECT_NE(r->error().message.find("shrank"), std::string::npos) << r->error().str();
  }
}

}  // namespace
}  // namespace statewall::sim
