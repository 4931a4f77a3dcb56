// TraceReader / PcapWriter: formats, link types, byte-exact round trips and every kind of damage.
#include <pcap/pcap.h>
#include <unistd.h>

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <thread>

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
    auto w_opened = PcapWriter::open(path, DLT_EN10MB, 65535, nano);
    ASSERT_TRUE(w_opened) << w_opened.message();
    auto w = std::move(*w_opened);
    std::vector<std::vector<uint8_t>> frames;
    for (int i = 0; i < 50; ++i) {
      frames.push_back(frameOf(i));
      w->write(1700000000ull * 1000000000ull + static_cast<uint64_t>(i) * 1234567,
               frames.back().data(), static_cast<uint32_t>(frames.back().size()),
               static_cast<uint32_t>(frames.back().size()) + (i == 3 ? 100 : 0));
    }
    ASSERT_EQ(w->close().message(), "");

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

// ---- pcapng: our own reader (issue 14/16: interfaces of different link types were refused) ----

namespace statewall::sim {
namespace {

using testing::PcapngBuilder;

// `frame` (Ethernet, no VLAN) re-framed for another link type.
std::vector<uint8_t> reframed(const std::vector<uint8_t>& eth, LinkType link) {
  if (link == LinkType::kEthernet) return eth;
  const uint16_t type = static_cast<uint16_t>(eth[12] << 8 | eth[13]);
  const std::vector<uint8_t> l3(eth.begin() + 14, eth.end());
  if (link == LinkType::kRawIp) return l3;
  return dataplane::addLinkHeader(l3, type, {.link = link});
}

struct Read {
  std::vector<TracePacket> pkts;
  std::vector<std::vector<uint8_t>> data;
  TraceReader::Status end = TraceReader::Status::kEnd;
  TraceError error;
};

Read readPackets(TraceReader& r) {
  Read out;
  TracePacket p;
  while ((out.end = r.next(&p)) == TraceReader::Status::kPacket) {
    out.pkts.push_back(p);
    out.data.emplace_back(p.data, p.data + p.caplen);
  }
  out.error = r.error();
  return out;
}

// One file, five interfaces of five link types; each packet comes back with its interface's link
// type, DLT and bytes. Read mapped, and streamed through a FIFO.
TEST(Pcapng, InterfacesOfDifferentLinkTypes) {
  TempDir dir;
  const LinkType links[] = {LinkType::kEthernet, LinkType::kLinuxSll, LinkType::kRawIp,
                            LinkType::kNull, LinkType::kLinuxSll2};
  const int dlts[] = {DLT_EN10MB, DLT_LINUX_SLL, DLT_RAW, 0, 276};
  const uint16_t linktypes[] = {1, 113, 101, 0, 276};
  PcapngBuilder b;
  b.section();
  for (uint16_t lt : linktypes)
    b.interface(lt, 0, 9);
  std::vector<std::vector<uint8_t>> want;
  for (int i = 0; i < 20; ++i) {
    want.push_back(reframed(frameOf(i), links[i % 5]));
    b.packet(static_cast<uint32_t>(i % 5), 1700000000ull * 1000000000 + static_cast<uint64_t>(i),
             want.back());
  }
  const std::string path = dir.file("mixed.pcapng");
  testing::writeBytes(path, b.bytes());

  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (bool streamed : {false, true}) {
    SCOPED_TRACE(streamed ? "streamed" : "mapped");
    std::thread writer;
    if (streamed) writer = std::thread([&] { testing::writeBytes(fifo, b.bytes()); });
    TraceError err;
    auto r = TraceReader::open(streamed ? fifo : path, &err);
    ASSERT_TRUE(r) << err.str();
    EXPECT_EQ(r->mapped(), !streamed);
    EXPECT_EQ(r->format(), TraceFormat::kPcapNg);
    EXPECT_EQ(r->linkType(), LinkType::kEthernet);
    EXPECT_TRUE(r->nanoResolution());
    Read got = readPackets(*r);
    if (writer.joinable()) writer.join();
    EXPECT_EQ(got.end, TraceReader::Status::kEnd) << got.error.str();
    ASSERT_EQ(got.data, want);
    for (size_t i = 0; i < got.pkts.size(); ++i) {
      EXPECT_EQ(got.pkts[i].link, links[i % 5]) << i;
      EXPECT_EQ(got.pkts[i].dlt, dlts[i % 5]) << i;
      EXPECT_EQ(got.pkts[i].interface, i % 5) << i;
      EXPECT_EQ(got.pkts[i].ts_ns, 1700000000ull * 1000000000 + i);
    }
    ASSERT_EQ(r->interfaces().size(), 5u);
    EXPECT_EQ(r->interfaces()[3].packets, 4u);
    EXPECT_EQ(r->offset(), b.size());
  }
}

// Sections: the second in big-endian byte order numbers its interfaces from 0 again.
TEST(Pcapng, SectionsInBothByteOrders) {
  TempDir dir;
  PcapngBuilder b;
  b.section(false).interface(1, 0, -1, std::nullopt, "eth0").packet(0, 5, frameOf(1));
  b.section(true).interface(101).interface(1).packet(0, 7, reframed(frameOf(2), LinkType::kRawIp));
  b.packet(1, 8, frameOf(3));
  testing::writeBytes(dir.file("s.pcapng"), b.bytes());
  TraceError err;
  auto r = TraceReader::open(dir.file("s.pcapng"), &err);
  ASSERT_TRUE(r) << err.str();
  Read got = readPackets(*r);
  EXPECT_EQ(got.end, TraceReader::Status::kEnd) << got.error.str();
  ASSERT_EQ(got.pkts.size(), 3u);
  EXPECT_EQ(got.data[0], frameOf(1));
  EXPECT_EQ(got.pkts[0].ts_ns, 5000u);  // microseconds by default
  EXPECT_EQ(got.pkts[1].link, LinkType::kRawIp);
  EXPECT_EQ(got.data[1], reframed(frameOf(2), LinkType::kRawIp));
  EXPECT_EQ(got.pkts[1].ts_ns, 7000u);
  EXPECT_EQ(got.pkts[2].link, LinkType::kEthernet);
  EXPECT_EQ(got.data[2], frameOf(3));
  ASSERT_EQ(r->interfaces().size(), 3u);
  EXPECT_EQ(r->interfaces()[0].name, "eth0");
  EXPECT_EQ(r->interfaces()[1].section, 1u);
  EXPECT_EQ(r->interfaces()[1].index, 0u);
  EXPECT_EQ(r->interfaces()[2].index, 1u);
  // The whole file big-endian.
  PcapngBuilder be;
  be.section(true).interface(1, 0, 9).packet(0, 0x0102030405ull, frameOf(4));
  testing::writeBytes(dir.file("be.pcapng"), be.bytes());
  r = TraceReader::open(dir.file("be.pcapng"), &err);
  ASSERT_TRUE(r) << err.str();
  got = readPackets(*r);
  ASSERT_EQ(got.pkts.size(), 1u) << got.error.str();
  EXPECT_EQ(got.data[0], frameOf(4));
  EXPECT_EQ(got.pkts[0].ts_ns, 0x0102030405ull);
}

// if_tsresol as a power of 10 and of 2, and if_tsoffset.
TEST(Pcapng, TimestampResolutionsAndOffset) {
  TempDir dir;
  PcapngBuilder b;
  b.section();
  b.interface(1);                             // 0: microseconds
  b.interface(1, 0, 9);                       // 1: nanoseconds
  b.interface(1, 0, 3);                       // 2: milliseconds
  b.interface(1, 0, 0x80 | 20);               // 3: 2^-20 s
  b.interface(1, 0, 12, int64_t{100});        // 4: picoseconds, +100 s
  b.interface(1, 0, 0x80 | 30, int64_t{-1});  // 5: 2^-30 s, -1 s
  b.packet(0, 1234567, frameOf(0));
  b.packet(1, 1234567, frameOf(0));
  b.packet(2, 1234567, frameOf(0));
  b.packet(3, (3ull << 20) + (1ull << 19), frameOf(0));
  b.packet(4, 2500000000000ull, frameOf(0));
  b.packet(5, 5ull << 30, frameOf(0));
  testing::writeBytes(dir.file("t.pcapng"), b.bytes());
  TraceError err;
  auto r = TraceReader::open(dir.file("t.pcapng"), &err);
  ASSERT_TRUE(r) << err.str();
  EXPECT_FALSE(r->nanoResolution());  // the first interface's
  Read got = readPackets(*r);
  ASSERT_EQ(got.pkts.size(), 6u) << got.error.str();
  EXPECT_EQ(got.pkts[0].ts_ns, 1234567000u);
  EXPECT_EQ(got.pkts[1].ts_ns, 1234567u);
  EXPECT_EQ(got.pkts[2].ts_ns, 1234567000000u);
  EXPECT_EQ(got.pkts[3].ts_ns, 3500000000u);
  EXPECT_EQ(got.pkts[4].ts_ns, 102500000000u);
  EXPECT_EQ(got.pkts[5].ts_ns, 4000000000u);
}

// Simple packet blocks (interface 0, cut to its snaplen, the previous packet's time), obsolete
// packet blocks, and blocks of other types skipped by their length.
TEST(Pcapng, SimpleAndObsoletePacketsOtherBlocksSkipped) {
  TempDir dir;
  PcapngBuilder b;
  b.section().interface(1, 60).interface(113);
  b.raw(4, {1, 0, 4, 0, 10, 0, 0, 1, 0, 0, 0, 0});  // name resolution block
  b.packet(0, 42, frameOf(1));
  b.simplePacket(frameOf(5));
  b.raw(5, std::vector<uint8_t>(20, 7));  // interface statistics
  b.raw(0x40000bad, {1, 2, 3});           // custom block
  b.packet(1, 43, reframed(frameOf(2), LinkType::kLinuxSll), 0, /*obsolete=*/true);
  testing::writeBytes(dir.file("o.pcapng"), b.bytes());
  TraceError err;
  auto r = TraceReader::open(dir.file("o.pcapng"), &err);
  ASSERT_TRUE(r) << err.str();
  Read got = readPackets(*r);
  EXPECT_EQ(got.end, TraceReader::Status::kEnd) << got.error.str();
  ASSERT_EQ(got.pkts.size(), 3u);
  ASSERT_GT(frameOf(5).size(), 60u);
  EXPECT_EQ(got.pkts[1].caplen, 60u);
  EXPECT_EQ(got.pkts[1].wirelen, frameOf(5).size());
  EXPECT_TRUE(std::equal(got.data[1].begin(), got.data[1].end(), frameOf(5).begin()));
  EXPECT_EQ(got.pkts[1].ts_ns, 42000u);
  EXPECT_EQ(got.pkts[2].link, LinkType::kLinuxSll);
  EXPECT_EQ(got.pkts[2].ts_ns, 43000u);
  EXPECT_EQ(got.data[2], reframed(frameOf(2), LinkType::kLinuxSll));
}

// An interface of a link type the engine does not parse: its packets are skipped and counted;
// the file is refused only when every interface before the first packet is of such a type.
TEST(Pcapng, UnsupportedInterfaceSkipped) {
  TempDir dir;
  PcapngBuilder b;
  b.section().interface(1).interface(147, 0, -1, std::nullopt, "usb0");
  for (int i = 0; i < 6; ++i)
    b.packet(static_cast<uint32_t>(i % 2), static_cast<uint64_t>(i), frameOf(i));
  testing::writeBytes(dir.file("u.pcapng"), b.bytes());
  TraceError err;
  auto r = TraceReader::open(dir.file("u.pcapng"), &err);
  ASSERT_TRUE(r) << err.str();
  Read got = readPackets(*r);
  EXPECT_EQ(got.end, TraceReader::Status::kEnd) << got.error.str();
  ASSERT_EQ(got.data, (std::vector<std::vector<uint8_t>>{frameOf(0), frameOf(2), frameOf(4)}));
  EXPECT_EQ(r->packetsSkipped(), 3u);
  EXPECT_EQ(r->interfaces()[1].skipped, 3u);
  EXPECT_EQ(r->interfaces()[1].name, "usb0");
  EXPECT_EQ(r->packetsRead(), 3u);

  PcapngBuilder all;
  all.section().interface(147).interface(148).packet(0, 1, frameOf(1));
  testing::writeBytes(dir.file("all.pcapng"), all.bytes());
  EXPECT_FALSE(TraceReader::open(dir.file("all.pcapng"), &err));
  EXPECT_EQ(err.offset, 28u + 8u);
  EXPECT_NE(err.message.find("unsupported link type"), std::string::npos) << err.str();
  EXPECT_NE(err.message.find("interface 0"), std::string::npos) << err.str();
  EXPECT_NE(err.message.find("every other of the 2 interfaces"), std::string::npos) << err.str();
}

// Every kind of damage: the packets before it, then an error at the damaged block's offset that
// says what is wrong. Mapped and streamed alike.
TEST(Pcapng, DamagedBlocks) {
  TempDir dir;
  auto good = [] {
    PcapngBuilder b;
    b.section().interface(1).packet(0, 1, frameOf(1));
    return b;
  };
  struct Case {
    std::string name;
    std::vector<uint8_t> bytes;
    size_t at;
    std::string says;
  };
  std::vector<Case> cases;
  auto add = [&](std::string name, auto patch, std::string says) {
    PcapngBuilder b = good();
    const size_t at = b.size();
    patch(b, at);
    cases.push_back({std::move(name), b.bytes(), at, std::move(says)});
  };
  auto set32 = [](PcapngBuilder& b, size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i)
      b.mutableBytes()[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
  };
  add(
      "length not a multiple of 4",
      [&](PcapngBuilder& b, size_t at) {
        b.packet(0, 2, frameOf(2));
        set32(b, at + 4, 50);
      },
      "block length 50 is not a multiple of 4");
  add(
      "shorter than 12",
      [&](PcapngBuilder& b, size_t at) {
        b.packet(0, 2, frameOf(2));
        set32(b, at + 4, 8);
      },
      "block length 8 is shorter than the 12 bytes");
  add(
      "past the end",
      [&](PcapngBuilder& b, size_t) {
        b.packet(0, 2, frameOf(2));
        b.mutableBytes().resize(b.size() - 9);
      },
      "runs past the end of the file");
  add(
      "trailing length",
      [&](PcapngBuilder& b, size_t) {
        b.packet(0, 2, frameOf(2));
        set32(b, b.size() - 4, 1000);
      },
      "trailing block length 1000 differs from the block length");
  add(
      "interface without a description",
      [&](PcapngBuilder& b, size_t) { b.packet(3, 2, frameOf(2)); },
      "enhanced packet block for interface 3, but section 0 declares 1 interface before it");
  add(
      "captured length beyond the block",
      [&](PcapngBuilder& b, size_t at) {
        b.packet(0, 2, frameOf(2));
        set32(b, at + 20, 5000);
      },
      "captured length 5000 does not fit in the block");
  add(
      "simple packet without an interface",
      [&](PcapngBuilder& b, size_t) { b.section().simplePacket(frameOf(2)); }, "");
  cases.back().at += 28;
  cases.back().says = "simple packet block, but section 1 declares no interface";
  add(
      "unknown byte-order magic",
      [&](PcapngBuilder& b, size_t at) {
        b.section();
        set32(b, at + 8, 0x11223344);
      },
      "unknown byte-order magic");
  add(
      "a few bytes after the last block",
      [&](PcapngBuilder& b, size_t) { b.mutableBytes().resize(b.size() + 6, 0); },
      "truncated block: 6 bytes left");
  add(
      "option past the block",
      [&](PcapngBuilder& b, size_t at) {
        b.interface(1, 0, 9);
        b.mutableBytes()[at + 16 + 2] = 200;  // if_tsresol's length
      },
      "option 9 of 200 bytes runs past the end of the block");
  cases.back().at += 16;  // the option's offset

  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir.file("d.pcapng");
    testing::writeBytes(path, c.bytes);
    for (bool streamed : {false, true}) {
      SCOPED_TRACE(streamed ? "streamed" : "mapped");
      std::thread writer;
      if (streamed) writer = std::thread([&] { testing::writeBytes(fifo, c.bytes); });
      TraceError err;
      auto r = TraceReader::open(streamed ? fifo : path, &err);
      ASSERT_TRUE(r) << err.str();
      Read got = readPackets(*r);
      if (writer.joinable()) writer.join();
      EXPECT_EQ(got.pkts.size(), 1u);
      ASSERT_EQ(got.end, TraceReader::Status::kError);
      EXPECT_EQ(got.error.offset, c.at) << got.error.str();
      EXPECT_EQ(got.error.file, streamed ? fifo : path);
      EXPECT_NE(got.error.message.find(c.says), std::string::npos) << got.error.str();
      EXPECT_NE(got.error.message.find("after packet 1"), std::string::npos) << got.error.str();
    }
  }
}

// A mapped pcapng file that another program cuts short while it is read: an error at the offset
// where the file now ends (the SIGBUS guard), never a crash.
TEST(Pcapng, FileThatShrinksWhileMappedEndsWithAnError) {
  TempDir dir;
  PcapngBuilder b;
  b.section().interface(1).interface(113);
  std::vector<size_t> ends;
  for (int i = 0; i < 400; ++i) {
    b.packet(static_cast<uint32_t>(i % 2), static_cast<uint64_t>(i),
             reframed(frameOf(i % 60), i % 2 == 0 ? LinkType::kEthernet : LinkType::kLinuxSll));
    ends.push_back(b.size());
  }
  ASSERT_GT(b.size(), 8u * 4096);
  for (size_t cut : {ends[200] + 9, b.size() - 30, size_t{4096 * 3}}) {
    SCOPED_TRACE(cut);
    const std::string path = dir.file("shrink" + std::to_string(cut) + ".pcapng");
    testing::writeBytes(path, b.bytes());
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
    while ((st = r->next(&p)) == TraceReader::Status::kPacket)
      ++n;
    ASSERT_EQ(st, TraceReader::Status::kError);
    const uint64_t whole =
        static_cast<uint64_t>(std::upper_bound(ends.begin(), ends.end(), cut) - ends.begin());
    EXPECT_EQ(n, whole);
    EXPECT_EQ(r->error().offset, cut) << r->error().str();
    EXPECT_NE(r->error().message.find("shrank"), std::string::npos) << r->error().str();
  }
}

// The writer's pcapng: one interface per link type, read back by our reader and by libpcap.
TEST(Pcapng, WriterMixesLinkTypes) {
  TempDir dir;
  auto w_opened = PcapWriter::openNg(dir.file("w.pcapng"));
  ASSERT_TRUE(w_opened) << w_opened.message();
  auto w = std::move(*w_opened);
  const std::vector<uint8_t> a = frameOf(1), b = reframed(frameOf(2), LinkType::kRawIp);
  w->write(1000000001, a.data(), static_cast<uint32_t>(a.size()), 1514, DLT_EN10MB);
  w->write(2000000002, b.data(), static_cast<uint32_t>(b.size()), static_cast<uint32_t>(b.size()),
           DLT_RAW);
  w->write(3000000003, a.data(), static_cast<uint32_t>(a.size()), static_cast<uint32_t>(a.size()),
           DLT_EN10MB);
  ASSERT_EQ(w->close().message(), "");
  TraceError terr;
  auto r = TraceReader::open(dir.file("w.pcapng"), &terr);
  ASSERT_TRUE(r) << terr.str();
  Read got = readPackets(*r);
  ASSERT_EQ(got.pkts.size(), 3u) << got.error.str();
  EXPECT_EQ(got.data, (std::vector<std::vector<uint8_t>>{a, b, a}));
  EXPECT_EQ(got.pkts[0].wirelen, 1514u);
  EXPECT_EQ(got.pkts[1].link, LinkType::kRawIp);
  EXPECT_EQ(got.pkts[1].ts_ns, 2000000002u);
  EXPECT_EQ(r->interfaces().size(), 2u);
  // A classic pcap holds one link type: the others are not written, and close() says so.
  auto c_opened = PcapWriter::open(dir.file("c.pcap"), DLT_EN10MB, 65535, true);
  ASSERT_TRUE(c_opened) << c_opened.message();
  auto c = std::move(*c_opened);
  c->write(1, a.data(), static_cast<uint32_t>(a.size()), static_cast<uint32_t>(a.size()),
           DLT_EN10MB);
  c->write(2, b.data(), static_cast<uint32_t>(b.size()), static_cast<uint32_t>(b.size()), DLT_RAW);
  const base::Status closed = c->close();
  EXPECT_FALSE(closed.ok());
  EXPECT_NE(closed.message().find("1 packets of link type RAW"), std::string::npos)
      << closed.message();
}

}  // namespace
}  // namespace statewall::sim

namespace statewall::sim {
namespace {

// The fuzz_trace_reader seeds (tests/fuzz/corpus/fuzz_trace_reader), made here so that they stay
// what the reader reads: STATEWALL_UPDATE_GOLDEN=1 rewrites them after an intended change.
TEST(Pcapng, FuzzSeedsAreCurrent) {
  std::map<std::string, std::vector<uint8_t>> seeds;
  {
    testing::PcapngBuilder b;
    b.section()
        .interface(1, 0, 9, std::nullopt, "eth0")
        .interface(113)
        .interface(101, 0, 0x80 | 20);
    b.interface(0).interface(108).interface(276);
    const LinkType links[] = {LinkType::kEthernet, LinkType::kLinuxSll, LinkType::kRawIp,
                              LinkType::kNull,     LinkType::kLoop,     LinkType::kLinuxSll2};
    for (uint32_t i = 0; i < 6; ++i)
      b.packet(i, 1000 + i, reframed(frameOf(static_cast<int>(i)), links[i]));
    b.simplePacket(frameOf(7));
    seeds["mixed-link-types.pcapng"] = b.bytes();
  }
  {
    testing::PcapngBuilder b;
    b.section(true).interface(1, 0, 9, int64_t{5}).packet(0, 77, frameOf(1));
    b.raw(5, std::vector<uint8_t>(16, 1));
    b.packet(0, 78, frameOf(2), 0, /*obsolete=*/true);
    seeds["big-endian.pcapng"] = b.bytes();
  }
  {
    testing::PcapngBuilder b;
    b.section().interface(1).packet(0, 1, frameOf(1));
    b.section(true).interface(101).interface(147).packet(1, 2, frameOf(2));
    b.packet(0, 3, reframed(frameOf(3), LinkType::kRawIp));
    seeds["two-sections-one-unsupported.pcapng"] = b.bytes();
  }
  {
    auto h = testing::pcapHeader(1, true);
    testing::pcapRecord(h, 1, 2, frameOf(1));
    seeds["classic.pcap"] = h;
  }
  const std::string dir =
      std::string(STATEWALL_EXAMPLES_DIR) + "/../tests/fuzz/corpus/fuzz_trace_reader";
  for (const auto& [name, bytes] : seeds) {
    const std::string path = dir + "/" + name;
    if (std::getenv("STATEWALL_UPDATE_GOLDEN") != nullptr) testing::writeBytes(path, bytes);
    EXPECT_EQ(testing::readBytes(path), bytes)
        << path << " differs (STATEWALL_UPDATE_GOLDEN=1 rewrites it after an intended change)";
    // And each reads without an error.
    TraceError err;
    auto r = TraceReader::open(path, &err);
    ASSERT_TRUE(r) << err.str();
    Read got = readPackets(*r);
    EXPECT_EQ(got.end, TraceReader::Status::kEnd) << got.error.str();
    EXPECT_FALSE(got.pkts.empty()) << name;
  }
}

}  // namespace
}  // namespace statewall::sim
