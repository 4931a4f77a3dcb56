// VPC Flow Logs reader and writer (sim/flowlog.hpp): every field of versions 2 to 5, the S3
// header line and the console's ${field} format, gzip (one member and several, and cut short),
// NODATA/SKIPDATA, broken lines named by FILE:LINE, and the writer read back equal.
#include <zlib.h>

#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "sim_test_util.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/sim/flowlog.hpp"

namespace statewall::sim {
namespace {

using testing::TempDir;

rules::IpAddr ip(const char* s) {
  return *rules::IpAddr::parse(s);
}

std::vector<FlowLogRecord> readAll(const std::string& path, FlowLogError* err,
                                   const FlowLogFormat& fallback = FlowLogFormat::defaultV2(),
                                   std::vector<std::string>* ids = nullptr) {
  std::vector<FlowLogRecord> out;
  auto r = FlowLogReader::open(path, fallback, err);
  if (!r) return out;
  FlowLogRecord rec;
  for (;;) {
    auto res = r->next(&rec);
    if (res == FlowLogReader::Result::kEnd) break;
    if (res == FlowLogReader::Result::kError) {
      *err = r->error();
      break;
    }
    if (ids) ids->emplace_back(rec.interface_id);
    out.push_back(rec);
  }
  return out;
}

void writeGzip(const std::string& path, const std::vector<std::string>& members) {
  std::string all;
  for (const auto& m : members) {
    gzFile g = gzopen((path + ".part").c_str(), "wb");
    ASSERT_NE(g, nullptr);
    gzwrite(g, m.data(), static_cast<unsigned>(m.size()));
    gzclose(g);
    all += testing::readText(path + ".part");
  }
  testing::writeText(path, all);
}

// AWS's documented default-format example.
TEST(FlowLogRead, DefaultFormatEveryField) {
  TempDir dir;
  const std::string path = dir.file("v2.log");
  testing::writeText(path,
                     "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 "
                     "20 4249 1418530010 1418530070 ACCEPT OK\n"
                     "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 "
                     "4249 1418530010 1418530070 REJECT OK\n");
  FlowLogError err;
  auto recs = readAll(path, &err);
  ASSERT_TRUE(err.message.empty()) << err.str();
  ASSERT_EQ(recs.size(), 2u);
  const auto& r = recs[0];
  EXPECT_EQ(r.version, 2u);
  EXPECT_EQ(r.src, ip("172.31.16.139"));
  EXPECT_EQ(r.dst, ip("172.31.16.21"));
  EXPECT_EQ(r.pkt_src, r.src);  // no pkt-* fields: the packet's own addresses are these
  EXPECT_EQ(r.sport, 20641);
  EXPECT_EQ(r.dport, 22);
  EXPECT_EQ(r.proto, 6);
  EXPECT_EQ(r.packets, 20u);
  EXPECT_EQ(r.bytes, 4249u);
  EXPECT_EQ(r.start, 1418530010u);
  EXPECT_EQ(r.end, 1418530070u);
  EXPECT_EQ(r.action, FlowAction::kAccept);
  EXPECT_EQ(r.status, LogStatus::kOk);
  EXPECT_EQ(r.tcp_flags, -1);
  EXPECT_EQ(r.direction, FlowDirection::kUnknown);
  EXPECT_EQ(recs[1].action, FlowAction::kReject);
}

TEST(FlowLogRead, NoDataAndSkipData) {
  TempDir dir;
  const std::string path = dir.file("nodata.log");
  testing::writeText(path,
                     "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - "
                     "NODATA\n"
                     "2 123456789010 eni-11111111aaaaaaaaa - - - - - - - 1431280876 1431280934 - "
                     "SKIPDATA\n");
  FlowLogError err;
  std::vector<std::string> ids;
  auto recs = readAll(path, &err, FlowLogFormat::defaultV2(), &ids);
  ASSERT_TRUE(err.message.empty()) << err.str();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].status, LogStatus::kNoData);
  EXPECT_FALSE(recs[0].has_addrs);
  EXPECT_EQ(recs[0].action, FlowAction::kNone);
  EXPECT_EQ(recs[1].status, LogStatus::kSkipData);
  EXPECT_EQ(ids[1], "eni-11111111aaaaaaaaa");
}

// Version 3 (AWS's example of a custom format with the S3 header line), fields in another order.
TEST(FlowLogRead, Version3HeaderLine) {
  TempDir dir;
  const std::string path = dir.file("v3.log");
  testing::writeText(
      path,
      "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport "
      "dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags "
      "log-status\n"
      "3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 "
      "eni-1235b8ca123456789 123456789012 IPv4 52.213.180.42 10.0.0.62 43416 5001 52.213.180.42 "
      "10.0.0.62 6 568 8 1566848875 1566848933 ACCEPT 2 OK\n"
      "3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 "
      "eni-1235b8ca123456789 123456789012 IPv4 10.40.1.175 10.40.2.236 39812 80 10.20.33.164 "
      "10.40.2.236 6 3093 4 1566848875 1566848933 ACCEPT 18 OK\n");
  FlowLogError err;
  std::vector<std::string> ids;
  auto recs = readAll(path, &err, FlowLogFormat::defaultV2(), &ids);
  ASSERT_TRUE(err.message.empty()) << err.str();
  ASSERT_EQ(recs.size(), 2u);
  const auto& r = recs[0];
  EXPECT_EQ(r.version, 3u);
  EXPECT_EQ(ids[0], "eni-1235b8ca123456789");
  EXPECT_EQ(r.bytes, 568u);
  EXPECT_EQ(r.packets, 8u);
  EXPECT_EQ(r.tcp_flags, 2);
  EXPECT_EQ(recs[1].tcp_flags, 18);
  // pkt-srcaddr differs from srcaddr (the packet came through a middlebox): the packet's own.
  EXPECT_EQ(recs[1].src, ip("10.40.1.175"));
  EXPECT_EQ(recs[1].pkt_src, ip("10.20.33.164"));
  EXPECT_EQ(recs[1].pkt_dst, ip("10.40.2.236"));
}

// String fields are views into the reader's buffer: check them while they are valid.
TEST(FlowLogRead, Version4And5EveryField) {
  TempDir dir;
  const std::string path = dir.file("v5.log");
  testing::writeText(
      path,
      "version srcaddr dstaddr srcport dstport protocol start end type packets bytes account-id "
      "vpc-id subnet-id instance-id interface-id region az-id sublocation-type sublocation-id "
      "action tcp-flags pkt-srcaddr pkt-dstaddr pkt-src-aws-service pkt-dst-aws-service "
      "traffic-path flow-direction log-status\n"
      "5 52.95.128.179 10.0.0.71 80 34210 6 1616729292 1616729349 IPv4 14 15044 123456789012 "
      "vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-0c50d5961bcb2d47b eni-1235b8ca123456789 "
      "ap-southeast-2 apse2-az3 - - ACCEPT 19 52.95.128.179 10.0.0.71 S3 - - ingress OK\n"
      "5 2001:db8::1 2001:db8:1::10 443 50000 6 1616729292 1616729349 IPv6 3 300 123456789012 "
      "vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-0c50d5961bcb2d47b eni-1235b8ca123456789 "
      "ap-southeast-2 apse2-az3 wavelength wlz-1 REJECT 4 2001:db8::1 2001:db8:1::10 - - 8 "
      "egress OK\n");
  FlowLogError err;
  auto reader = FlowLogReader::open(path, FlowLogFormat::defaultV2(), &err);
  ASSERT_NE(reader, nullptr);
  FlowLogRecord r;
  ASSERT_EQ(reader->next(&r), FlowLogReader::Result::kRecord) << reader->error().str();
  EXPECT_EQ(reader->line(), 2u);
  EXPECT_EQ(r.version, 5u);
  EXPECT_EQ(r.account_id, "123456789012");
  EXPECT_EQ(r.vpc_id, "vpc-abcdefab012345678");
  EXPECT_EQ(r.subnet_id, "subnet-aaaaaaaa012345678");
  EXPECT_EQ(r.instance_id, "i-0c50d5961bcb2d47b");
  EXPECT_EQ(r.interface_id, "eni-1235b8ca123456789");
  EXPECT_EQ(r.type, "IPv4");
  EXPECT_EQ(r.src, ip("52.95.128.179"));
  EXPECT_EQ(r.dst, ip("10.0.0.71"));
  EXPECT_EQ(r.sport, 80);
  EXPECT_EQ(r.dport, 34210);
  EXPECT_EQ(r.proto, 6);
  EXPECT_EQ(r.start, 1616729292u);
  EXPECT_EQ(r.end, 1616729349u);
  EXPECT_EQ(r.packets, 14u);
  EXPECT_EQ(r.bytes, 15044u);
  EXPECT_EQ(r.action, FlowAction::kAccept);
  EXPECT_EQ(r.tcp_flags, 19);
  EXPECT_EQ(r.pkt_src, ip("52.95.128.179"));
  EXPECT_EQ(r.traffic_path, -1);
  EXPECT_EQ(r.direction, FlowDirection::kIngress);
  EXPECT_EQ(r.status, LogStatus::kOk);
  ASSERT_EQ(reader->next(&r), FlowLogReader::Result::kRecord) << reader->error().str();
  EXPECT_EQ(r.src, ip("2001:db8::1"));
  EXPECT_EQ(r.dst, ip("2001:db8:1::10"));
  EXPECT_EQ(r.type, "IPv6");
  EXPECT_EQ(r.action, FlowAction::kReject);
  EXPECT_EQ(r.traffic_path, 8);
  EXPECT_EQ(r.direction, FlowDirection::kEgress);
  EXPECT_EQ(reader->next(&r), FlowLogReader::Result::kEnd);
}

TEST(FlowLogRead, ConsoleFormatString) {
  auto f = FlowLogFormat::parse(
      "${version} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} "
      "${packets} ${bytes} ${start} ${end} ${action} ${log-status} ${flow-direction} "
      "${some-future-field}");
  ASSERT_TRUE(f) << f.message();
  EXPECT_EQ(f->fields.size(), 15u);
  EXPECT_EQ(f->fields[13], FlowLogField::kFlowDirection);
  EXPECT_EQ(f->fields[14], FlowLogField::kUnknown);  // newer AWS fields are read and ignored
  TempDir dir;
  const std::string path = dir.file("console.log");
  testing::writeText(path,
                     "5 eni-0a 10.0.1.10 198.51.100.7 443 40000 6 3 180 1700000000 1700000001 "
                     "ACCEPT OK egress whatever\n");
  FlowLogError e;
  auto recs = readAll(path, &e, *f);
  ASSERT_TRUE(e.message.empty()) << e.str();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].direction, FlowDirection::kEgress);
  EXPECT_EQ(recs[0].packets, 3u);

  auto unjudged = FlowLogFormat::parse("${version} ${srcaddr}");  // cannot be judged
  EXPECT_FALSE(unjudged);
  EXPECT_NE(unjudged.message().find("interface-id"), std::string::npos) << unjudged.message();
  EXPECT_FALSE(FlowLogFormat::parse("${version ${srcaddr}"));
  EXPECT_FALSE(FlowLogFormat::parse(""));
}

TEST(FlowLogRead, GzipOneAndSeveralMembers) {
  TempDir dir;
  const std::string line =
      "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 "
      "1418530010 1418530070 ACCEPT OK\n";
  const std::string header =
      "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
      "start end action log-status\n";
  const std::string one = dir.file("one.log.gz");
  writeGzip(one, {header + line + line});
  FlowLogError err;
  auto reader = FlowLogReader::open(one, FlowLogFormat::defaultV2(), &err);
  ASSERT_NE(reader, nullptr);
  EXPECT_TRUE(reader->gzip());
  reader.reset();
  EXPECT_EQ(readAll(one, &err).size(), 2u);
  EXPECT_TRUE(err.message.empty()) << err.str();
  const std::string two = dir.file("two.log.gz");
  writeGzip(two, {header + line, line + line});
  EXPECT_EQ(readAll(two, &err).size(), 3u);
  EXPECT_TRUE(err.message.empty()) << err.str();

  // Cut short: an error, never a silent end.
  std::string bytes = testing::readText(one);
  const std::string cut = dir.file("cut.log.gz");
  testing::writeText(cut, bytes.substr(0, bytes.size() - 12));
  readAll(cut, &err);
  EXPECT_FALSE(err.message.empty());
  EXPECT_NE(err.str().find("cut.log.gz"), std::string::npos) << err.str();
}

struct Broken {
  const char* line;
  const char* expect;  // in the message
};

TEST(FlowLogRead, BrokenLinesNameTheLine) {
  const std::string good =
      "2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1418530010 1418530070 ACCEPT OK\n";
  const Broken cases[] = {
      {"2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1418530010 ACCEPT OK", "expected 14"},
      {"2 123456789010 eni-1 10.0.0.999 10.0.0.2 1 2 6 1 40 1418530010 1418530070 ACCEPT OK",
       "srcaddr"},
      {"2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 70000 6 1 40 1418530010 1418530070 ACCEPT OK",
       "dstport"},
      {"2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1418530010 1418530070 ALLOW OK",
       "ACCEPT or REJECT"},
      {"2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1418530010 1418530070 ACCEPT MAYBE",
       "NODATA"},
      {"2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 x 40 1418530010 1418530070 ACCEPT OK",
       "packets"},
      {"2 123456789010 eni-1 10.0.0.1 2001:db8::2 1 2 6 1 40 1418530010 1418530070 ACCEPT OK",
       "families"},
      {"2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1418530070 1418530010 ACCEPT OK",
       "before start"},
      {"garbage here", "header"},
  };
  TempDir dir;
  for (const auto& c : cases) {
    const std::string path = dir.file("broken.log");
    testing::writeText(path, good + good + c.line + "\n" + good);
    FlowLogError err;
    auto recs = readAll(path, &err);
    EXPECT_EQ(recs.size(), 2u) << c.line;
    EXPECT_EQ(err.line, 3u) << c.line;
    EXPECT_NE(err.str().find(path + ":3: "), std::string::npos) << err.str();
    EXPECT_NE(err.message.find(c.expect), std::string::npos) << c.line << ": " << err.str();
  }
}

// The reader cuts fields eight bytes at a time and reads dotted quads itself: blanks of either
// kind and any run of them separate fields, at every offset; a line with one field too many is
// reported as such; and every address is read exactly as IpAddr::parse reads it (or refused).
TEST(FlowLogRead, FieldCuttingAndAddressesAgreeWithTheSlowPath) {
  TempDir dir;
  const std::string path = dir.file("cut.log");
  testing::writeText(path,
                     "2\t123456789010  eni-0123456789abcdef0\t \t10.0.0.1 10.0.0.2 1 2 6 1 40 "
                     "1418530010 1418530070 ACCEPT OK\n"
                     "2 1 eni-1234567 10.0.0.1 10.0.0.2 12345678 2 6 1 40 1418530010 "
                     "1418530070 REJECT OK   \n");
  FlowLogError err;
  std::vector<std::string> ids;
  auto recs = readAll(path, &err, FlowLogFormat::defaultV2(), &ids);
  ASSERT_EQ(recs.size(), 1u) << err.str();  // the second line's source port is out of range
  EXPECT_EQ(ids[0], "eni-0123456789abcdef0");
  EXPECT_EQ(recs[0].dst, ip("10.0.0.2"));
  EXPECT_NE(err.message.find("srcport"), std::string::npos) << err.str();

  testing::writeText(path,
                     "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1418530010 1418530070 ACCEPT OK x\n");
  readAll(path, &err);
  EXPECT_NE(err.message.find("expected 14 fields (the default format), found 15"),
            std::string::npos)
      << err.str();

  const char* addrs[] = {
      "0.0.0.0",     "255.255.255.255", "1.2.3.4",  "10.0.0.256", "010.0.0.1", "1.2.3",
      "1.2.3.4.5",   "1..2.3",          "1.2.3.04", "1234.1.1.1", "1.2.3.4x",  "::",
      "2001:db8::1", "::ffff:1.2.3.4",  "1.2.3.-",  ".1.2.3",     "00.0.0.0"};
  for (const char* a : addrs) {
    testing::writeText(path, fmt::format("2 1 eni-1 {} 10.0.0.2 1 2 6 1 40 1418530010 1418530070 "
                                         "ACCEPT OK\n",
                                         a));
    FlowLogError e;
    auto got = readAll(path, &e);
    const auto want = rules::IpAddr::parse(a);
    if (want && want->isV4()) {
      ASSERT_EQ(got.size(), 1u) << a << ": " << e.str();
      EXPECT_EQ(got[0].src, *want) << a;
    } else {
      EXPECT_TRUE(got.empty()) << a;  // refused, or IPv6 beside an IPv4 destination
    }
  }
}

// The writer's text is read back field for field; JSON lines carry the rule and reason.
TEST(FlowLogWrite, TextReadsBackEqual) {
  TempDir dir;
  const std::string path = dir.file("out.log");
  auto w_opened = FlowLogWriter::open(path, FlowLogWriter::Format::kText);
  ASSERT_TRUE(w_opened) << w_opened.message();
  auto w = std::move(*w_opened);
  FlowLogRecord r;
  r.version = 5;
  r.account_id = "123456789012";
  r.interface_id = "eni-0a1b2c3d4e5f60001";
  r.subnet_id = "subnet-1";
  r.src = r.pkt_src = ip("10.0.1.10");
  r.dst = r.pkt_dst = ip("198.51.100.7");
  r.has_addrs = true;
  r.sport = 443;
  r.dport = 45933;
  r.proto = 6;
  r.packets = 7;
  r.bytes = 1234;
  r.start = 1700000000;
  r.end = 1700000059;
  r.action = FlowAction::kAccept;
  r.tcp_flags = 19;
  r.type = "IPv4";
  r.direction = FlowDirection::kEgress;
  w->write(r);
  FlowLogRecord nodata;
  nodata.version = 5;
  nodata.interface_id = "eni-2";
  nodata.status = LogStatus::kNoData;
  nodata.start = 1700000000;
  nodata.end = 1700000060;
  w->write(nodata);
  ASSERT_EQ(w->close().message(), "");

  FlowLogError rerr;
  auto reader = FlowLogReader::open(path, FlowLogFormat::defaultV2(), &rerr);
  ASSERT_NE(reader, nullptr) << rerr.str();
  FlowLogRecord b;
  ASSERT_EQ(reader->next(&b), FlowLogReader::Result::kRecord) << reader->error().str();
  EXPECT_EQ(b.version, 5u);
  EXPECT_EQ(b.interface_id, r.interface_id);
  EXPECT_EQ(b.subnet_id, r.subnet_id);
  EXPECT_EQ(b.account_id, r.account_id);
  EXPECT_EQ(b.src, r.src);
  EXPECT_EQ(b.dst, r.dst);
  EXPECT_EQ(b.pkt_src, r.pkt_src);
  EXPECT_EQ(b.sport, r.sport);
  EXPECT_EQ(b.dport, r.dport);
  EXPECT_EQ(b.proto, r.proto);
  EXPECT_EQ(b.packets, r.packets);
  EXPECT_EQ(b.bytes, r.bytes);
  EXPECT_EQ(b.start, r.start);
  EXPECT_EQ(b.end, r.end);
  EXPECT_EQ(b.action, r.action);
  EXPECT_EQ(b.tcp_flags, r.tcp_flags);
  EXPECT_EQ(b.type, r.type);
  EXPECT_EQ(b.direction, r.direction);
  ASSERT_EQ(reader->next(&b), FlowLogReader::Result::kRecord) << reader->error().str();
  EXPECT_EQ(b.status, LogStatus::kNoData);
  EXPECT_EQ(reader->next(&b), FlowLogReader::Result::kEnd);

  const std::string jpath = dir.file("out.jsonl");
  auto j_opened = FlowLogWriter::open(jpath, FlowLogWriter::Format::kJsonl);
  ASSERT_TRUE(j_opened) << j_opened.message();
  auto j = std::move(*j_opened);
  j->write(r, "web outbound[0]", "allow-rule");
  ASSERT_TRUE(j->close().ok());
  const std::string text = testing::readText(jpath);
  EXPECT_NE(text.find("\"interface-id\":\"eni-0a1b2c3d4e5f60001\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"tcp-flags\":19"), std::string::npos) << text;
  EXPECT_NE(text.find("\"rule\":\"web outbound[0]\",\"reason\":\"allow-rule\""), std::string::npos)
      << text;
}

// The action at each side of a packet (docs/design.md "Direction"): the source's egress accepts
// what its own checks let out even when the destination denies it; the destination logs nothing
// for a packet its source denied.
TEST(FlowLogWrite, ActionAtEachSide) {
  rules::CompiledPolicy empty;
  dataplane::Verdict v;
  v.reason = dataplane::Reason::kAllowRule;
  EXPECT_EQ(actionAtSide(v, empty, true), FlowAction::kAccept);
  EXPECT_EQ(actionAtSide(v, empty, false), FlowAction::kAccept);
  v.reason = dataplane::Reason::kDenySg;
  v.deny_dir = rules::Direction::kInbound;
  EXPECT_EQ(actionAtSide(v, empty, true), FlowAction::kAccept);
  EXPECT_EQ(actionAtSide(v, empty, false), FlowAction::kReject);
  v.deny_dir = rules::Direction::kOutbound;
  EXPECT_EQ(actionAtSide(v, empty, true), FlowAction::kReject);
  EXPECT_EQ(actionAtSide(v, empty, false), FlowAction::kNone);
  v.reason = dataplane::Reason::kDenyInvalid;
  EXPECT_EQ(actionAtSide(v, empty, true), FlowAction::kReject);
  EXPECT_EQ(actionAtSide(v, empty, false), FlowAction::kReject);
}

}  // namespace
}  // namespace statewall::sim
