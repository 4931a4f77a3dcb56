// `statewall replay` and `statewall gen` as a user runs them: exit codes, messages, the golden
// summary of the example, --json, --expect, and bad input.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include "common/text_diff.hpp"

#include "common/alias_bomb.hpp"
#include "common/run_command.hpp"
#include "sim_test_util.hpp"

namespace statewall::sim {
namespace {

using statewall::testing::firstDifference;

using testing::TempDir;

const std::string kBinary = std::string(STATEWALL_BINARY_DIR) + "/apps/statewall/statewall";
const std::string kRepo = std::string(STATEWALL_EXAMPLES_DIR) + "/..";

struct CliRun {
  int rc = -1;
  std::string out;
  std::string err;
};

// Runs `statewall ARGS` in the repository root (so that example paths are relative).
CliRun statewall(const std::string& args, const TempDir& /*dir*/) {
  const auto r = statewall::testing::runShell("cd '" + kRepo + "' && '" + kBinary + "' " + args);
  return CliRun{r.exit_code, r.out, r.err};
}

const char* kPolicy = "--policy examples/three-tier.yaml";

// The packet count of the "total" row of a text summary's verdict table.
int summaryTotal(const std::string& text) {
  size_t at = text.find("\n  total ");
  if (at == std::string::npos) return -1;
  std::string digits;
  for (size_t i = at + 9; i < text.size() && text[i] != '\n'; ++i) {
    if (text[i] >= '0' && text[i] <= '9') {
      digits += text[i];
    } else if (text[i] == ',') {
      continue;
    } else if (!digits.empty()) {
      break;
    }
  }
  return digits.empty() ? -1 : std::stoi(digits);
}

// The example replay is the project's showcase: its text and JSON summaries are golden files.
// Regenerate after an intended change with STATEWALL_UPDATE_GOLDEN=1.
TEST(Cli, ExampleSummaryMatchesGoldenFiles) {
  TempDir dir;
  for (bool json : {false, true}) {
    CliRun r = statewall(
        std::string("replay ") + kPolicy + " examples/three-tier.pcap" + (json ? " --json" : ""),
        dir);
    ASSERT_EQ(r.rc, 0) << r.err;
    std::string golden = kRepo + "/tests/sim/golden/three-tier." + (json ? "json" : "txt");
    if (std::getenv("STATEWALL_UPDATE_GOLDEN") != nullptr) testing::writeText(golden, r.out);
    EXPECT_EQ(firstDifference(r.out, testing::readText(golden)), "")
        << "output differs from " << golden
        << " (STATEWALL_UPDATE_GOLDEN=1 rewrites it after an intended change)";
    if (json) {
      auto j = nlohmann::json::parse(r.out);
      EXPECT_EQ(j["complete"], true);
      EXPECT_EQ(j["packets"].get<uint64_t>(), j["verdicts"]["allow"]["packets"].get<uint64_t>() +
                                                  j["verdicts"]["deny"]["packets"].get<uint64_t>());
    }
  }
}

TEST(Cli, ExampleExpectationsHold) {
  TempDir dir;
  CliRun r = statewall(std::string("replay ") + kPolicy +
                           " examples/three-tier.pcap --expect examples/three-tier-expect.yaml",
                       dir);
  EXPECT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("Expectations: "), std::string::npos);
  EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << r.out;
}

TEST(Cli, FailingExpectationExitsOneAndSaysWhatHappened) {
  TempDir dir;
  testing::writeText(dir.file("e.yaml"), R"(expect:
  - name: nobody may reach web-1 on 443
    flow: tcp * -> 10.0.1.10:443
    verdict: deny
  - name: https is allowed
    flow: tcp 198.51.100.0/24 -> 10.0.1.10:443
    verdict: allow
)");
  CliRun r = statewall(
      std::string("replay ") + kPolicy + " examples/three-tier.pcap --expect " + dir.file("e.yaml"),
      dir);
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_NE(r.out.find("Expectations: 1 of 2 hold"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("FAIL  " + dir.file("e.yaml") + ":2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("allow-rule"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("1 of 2 expectations failed"), std::string::npos) << r.err;

  CliRun j = statewall(std::string("replay --json ") + kPolicy +
                           " examples/three-tier.pcap --expect " + dir.file("e.yaml"),
                       dir);
  EXPECT_EQ(j.rc, 1);
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["expectations"]["passed"], false);
  EXPECT_EQ(doc["expectations"]["results"][0]["passed"], false);
  EXPECT_EQ(doc["expectations"]["results"][1]["passed"], true);
}

TEST(Cli, UsageAndInputErrorsExitTwo) {
  TempDir dir;
  testing::writeText(dir.file("bad-expect.yaml"),
                     "expect:\n  - flow: tcp * -> *\n    verdict: perhaps\n");
  testing::writeText(dir.file("bad-policy.yaml"),
                     "version: 1\ngroups: {web: {inbound: [{proto: tcp, ports: 99999}]}}\n");
  struct Case {
    std::string args;
    std::string err;
  } cases[] = {
      {"replay examples/three-tier.pcap", "--policy"},
      {"replay " + std::string(kPolicy), "traces"},
      {"replay " + std::string(kPolicy) + " examples/three-tier.pcap --expect " +
           dir.file("bad-expect.yaml"),
       dir.file("bad-expect.yaml") + ":3:14"},
      {"replay --policy " + dir.file("bad-policy.yaml") + " examples/three-tier.pcap",
       dir.file("bad-policy.yaml") + ":2"},
      {"replay " + std::string(kPolicy) + " examples/three-tier.pcap --connections-format csv",
       "connections-format"},
      {"replay " + std::string(kPolicy) +
           " examples/three-tier.pcap --verdicts /nonexistent/v.jsonl",
       "/nonexistent/v.jsonl: cannot create"},
      {"gen --seed 1", "--out"},
      {"gen --seed 1 --out " + dir.file("x.pcap"), "nothing to generate"},
      {"gen --out " + dir.file("x.pcap") + " --flow 'tcp 1.2.3.4 -> 5.6.7.8'", "needs a port"},
  };
  for (const auto& c : cases) {
    CliRun r = statewall(c.args, dir);
    EXPECT_EQ(r.rc, 2) << c.args << "\n" << r.out << r.err;
    EXPECT_NE(r.err.find(c.err), std::string::npos) << c.args << "\n" << r.err;
  }
}

TEST(Cli, BadTracesNameFileAndOffsetAndKeepTheSummary) {
  TempDir dir;
  // A trace of the example, cut in the middle of its 10th record.
  auto bytes = testing::readBytes(kRepo + "/examples/three-tier.pcap");
  ASSERT_GT(bytes.size(), 1000u);
  size_t off = 24;
  for (int i = 0; i < 9; ++i) {
    uint32_t caplen = bytes[off + 8] | bytes[off + 9] << 8 | bytes[off + 10] << 16 |
                      static_cast<uint32_t>(bytes[off + 11]) << 24;
    off += 16 + caplen;
  }
  const size_t tenth = off;
  std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(tenth + 16 + 10));
  testing::writeBytes(dir.file("cut.pcap"), cut);
  std::vector<uint8_t> header_only(bytes.begin(), bytes.begin() + 13);
  testing::writeBytes(dir.file("header.pcap"), header_only);
  testing::writeBytes(dir.file("empty.pcap"), {});
  testing::writeText(dir.file("text.pcap"), "this is not a capture\n");
  auto user0 = testing::pcapHeader(147);
  testing::pcapRecord(user0, 1, 0, {1, 2, 3, 4});
  testing::writeBytes(dir.file("user0.pcap"), user0);

  struct Case {
    std::string file;
    std::string offset;
    std::string what;
    int packets;
  } cases[] = {
      {dir.file("cut.pcap"), "byte offset " + std::to_string(tenth), "truncated", 9},
      {dir.file("header.pcap"), "byte offset 0", "truncated pcap file header: 13 of 24 bytes", 0},
      {dir.file("empty.pcap"), "byte offset 0", "empty file", 0},
      {dir.file("text.pcap"), "byte offset 0", "not a pcap or pcapng file", 0},
      {dir.file("user0.pcap"), "byte offset 20", "unsupported link type", 0},
      {dir.file("missing.pcap"), "byte offset 0", "No such file", 0},
  };
  for (const auto& c : cases) {
    for (bool json : {false, true}) {
      CliRun r =
          statewall(std::string("replay ") + kPolicy + " " + c.file + (json ? " --json" : ""), dir);
      EXPECT_EQ(r.rc, 2) << c.file;
      EXPECT_NE(r.err.find(c.file + ": " + c.offset + ": "), std::string::npos) << r.err;
      EXPECT_NE(r.err.find(c.what), std::string::npos) << r.err;
      if (json) {
        auto doc = nlohmann::json::parse(r.out);
        EXPECT_EQ(doc["complete"], false);
        EXPECT_EQ(doc["packets"], c.packets) << c.file;
        EXPECT_EQ(doc["error"]["file"], c.file);
      } else {
        EXPECT_NE(r.out.find("INCOMPLETE"), std::string::npos) << r.out;
        EXPECT_EQ(summaryTotal(r.out), c.packets) << r.out;
      }
    }
  }
}

TEST(Cli, GenIsDeterministic) {
  TempDir dir;
  const std::string common =
      " --flows 200 --duration 10 --mix tcp=5,udp=2,icmp=1,scan=1,flood=1,refused=1 "
      "--flow 'tcp 198.51.100.7 -> 10.0.1.10:443 data=3'";
  CliRun a = statewall("gen --seed 42 --out " + dir.file("a.pcap") + common, dir);
  CliRun b = statewall("gen --seed 42 --out " + dir.file("b.pcap") + common, dir);
  CliRun c = statewall("gen --seed 43 --out " + dir.file("c.pcap") + common, dir);
  ASSERT_EQ(a.rc, 0) << a.err;
  ASSERT_EQ(b.rc, 0) << b.err;
  ASSERT_EQ(c.rc, 0) << c.err;
  EXPECT_NE(a.err.find("wrote "), std::string::npos);
  auto ba = testing::readBytes(dir.file("a.pcap"));
  EXPECT_GT(ba.size(), 10000u);
  EXPECT_EQ(ba, testing::readBytes(dir.file("b.pcap")));
  EXPECT_NE(ba, testing::readBytes(dir.file("c.pcap")));
  // And it replays.
  CliRun r = statewall(std::string("replay ") + kPolicy + " " + dir.file("a.pcap"), dir);
  EXPECT_EQ(r.rc, 0) << r.err;
}

// Hostile policy input (issue 14): invalid UTF-8, an alias bomb, endless files. Every command
// exits with a clear error or valid JSON; none aborts (before: SIGABRT, exit 134, from an
// uncaught JSON exception, and bad_alloc on /dev/zero).
TEST(Cli, HostilePolicyInputGetsAClearErrorOrValidJson) {
  TempDir dir;
  const std::string bad = dir.file("bad.yaml");
  testing::writeText(bad, "version: 1\ngroups:\n  web:\n    description: \"caf\xE9 \xFF\"\n");
  // A valid policy under a file name that is not UTF-8: file names go into --json output.
  const std::string odd = dir.file("p\xFF.yaml");
  {
    std::ifstream in(kRepo + "/examples/three-tier.yaml");
    std::stringstream text;
    text << in.rdbuf();
    testing::writeText(odd, text.str());
  }
  const std::string pcap = " examples/three-tier.pcap";
  const std::string flow = " 'tcp 10.0.2.10:40000 -> 10.0.3.10:5432'";

  // check --json on the invalid policy: valid JSON naming the position.
  CliRun c = statewall("check --json '" + bad + "'", dir);
  EXPECT_EQ(c.rc, 1) << c.err;
  nlohmann::json j = nlohmann::json::parse(c.out);  // throws: the test fails
  EXPECT_EQ(j["errors"][0]["location"], bad + ":4:22");
  EXPECT_NE(j["errors"][0]["message"].get<std::string>().find("invalid UTF-8 at byte 47 (0xE9)"),
            std::string::npos)
      << c.out;

  // Every other command refuses the policy with the same message (exit 2).
  for (const std::string& args :
       {"replay --json --policy '" + bad + "'" + pcap,
        "explain --json --policy '" + bad + "'" + pcap + " --packet 1",
        "query --json --policy '" + bad + "'" + flow, "lint --json --policy '" + bad + "'",
        "diff --json --policy '" + bad + "' --against examples/three-tier.yaml",
        "replay --policy examples/three-tier.yaml" + pcap + " --expect '" + bad + "'"}) {
    CliRun r = statewall(args, dir);
    EXPECT_EQ(r.rc, 2) << args << "\n" << r.out << r.err;
    EXPECT_NE(r.err.find(bad + ":4:22: error: invalid UTF-8 at byte 47 (0xE9)"), std::string::npos)
        << args << "\n"
        << r.err;
  }

  // A name that is not UTF-8 comes out as U+FFFD in valid JSON.
  for (const std::string& args :
       {"check --json '" + odd + "'", "lint --json --min-severity info --policy '" + odd + "'",
        "query --json --policy '" + odd + "'" + flow,
        "diff --json --policy '" + odd + "' --against examples/three-tier.yaml"}) {
    CliRun r = statewall(args, dir);
    EXPECT_TRUE(r.rc == 0 || r.rc == 1) << args << "\n" << r.err;
    EXPECT_TRUE(nlohmann::json::accept(r.out)) << args << "\n" << r.out.substr(0, 400);
  }
  // replay's and explain's JSON come from sim/src; whatever a writer there does with such a
  // name, the process never aborts: valid JSON, or main()'s "internal error" and exit 2.
  for (const std::string& args : {"replay --json --policy '" + odd + "'" + pcap,
                                  "explain --json --policy '" + odd + "'" + pcap + " --packet 1"}) {
    CliRun r = statewall(args, dir);
    if (r.rc == 2) {
      EXPECT_NE(r.err.find("statewall: internal error: "), std::string::npos) << args << r.err;
    } else {
      EXPECT_EQ(r.rc, 0) << args << "\n" << r.err;
      EXPECT_TRUE(nlohmann::json::accept(r.out)) << args << "\n" << r.out.substr(0, 400);
    }
  }
  CliRun odd_check = statewall("check --json '" + odd + "'", dir);
  EXPECT_EQ(nlohmann::json::parse(odd_check.out)["files"][0], dir.file("p\xEF\xBF\xBD.yaml"));
}

TEST(Cli, EndlessFilesAreRefusedWithTheLimit) {
  TempDir dir;
  CliRun c = statewall("check /dev/zero", dir);
  EXPECT_EQ(c.rc, 1) << c.err;
  EXPECT_NE(c.err.find("/dev/zero: error: the file is larger than the limit of 33554432 bytes "
                       "(32 MiB)"),
            std::string::npos)
      << c.out << c.err;
  CliRun e = statewall(
      std::string("replay ") + kPolicy + " examples/three-tier.pcap --expect /dev/zero", dir);
  EXPECT_EQ(e.rc, 2) << e.err;
  EXPECT_NE(e.err.find("/dev/zero: error: the file is larger than the limit"), std::string::npos)
      << e.err;
}

TEST(Cli, AliasBombFailsFastNamingTheLimit) {
  TempDir dir;
  const std::string t = statewall::testing::yamlAliasBomb();
  testing::writeText(dir.file("bomb.yaml"), t);
  CliRun c = statewall("check '" + dir.file("bomb.yaml") + "'", dir);
  EXPECT_EQ(c.rc, 1) << c.err;
  EXPECT_NE(c.err.find(dir.file("bomb.yaml") +
                       ":55:18: error: the document expands to more than 2000000 YAML nodes"),
            std::string::npos)
      << c.err;
}

}  // namespace
}  // namespace statewall::sim

namespace statewall::sim {
namespace {

// The example trace (little-endian, nanoseconds) as one pcapng file whose packets alternate
// between an Ethernet, a Linux cooked (SLL2) and a raw-IP interface, as `tcpdump -i any --pcapng`
// or a multi-interface Wireshark capture has them.
std::vector<uint8_t> mixedPcapngOfExample() {
  const std::vector<uint8_t> in = testing::readBytes(kRepo + "/examples/three-tier.pcap");
  auto le32 = [&](size_t at) {
    return static_cast<uint32_t>(in[at] | in[at + 1] << 8 | in[at + 2] << 16 | in[at + 3] << 24);
  };
  EXPECT_EQ(le32(0), 0xa1b23c4du);
  testing::PcapngBuilder b;
  b.section().interface(1, 0, 9).interface(276, 0, 9).interface(101, 0, 9);
  size_t i = 0;
  for (size_t at = 24; at + 16 <= in.size(); ++i) {
    const uint64_t ts = uint64_t{le32(at)} * 1000000000 + le32(at + 4);
    const uint32_t caplen = le32(at + 8);
    std::vector<uint8_t> eth, f;
    for (size_t k = at + 16; k < at + 16 + caplen && k < in.size(); ++k)
      eth.push_back(in[k]);
    at += 16 + caplen;
    const bool ip = eth.size() > 14 && eth.at(12) == 0x08 && eth.at(13) == 0x00;
    if (i % 3 == 0 || !ip) {
      b.packet(0, ts, eth);
      continue;
    }
    if (i % 3 == 1) {  // SLL2: protocol, reserved, ifindex, hatype, packet type, addr len, addr
      f = {0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0};
    }
    for (size_t k = 14; k < eth.size(); ++k)
      f.push_back(eth[k]);
    b.packet(i % 3 == 1 ? 1 : 2, ts, f);
  }
  return b.bytes();
}

// Every command that reads traces takes a pcapng file whose interfaces differ in link type, and
// says of it what it says of the same packets all Ethernet (before: "damaged", exit 2).
TEST(Cli, PcapngWithInterfacesOfDifferentLinkTypes) {
  TempDir dir;
  const std::string mixed = dir.file("mixed.pcapng");
  testing::writeBytes(mixed, mixedPcapngOfExample());

  CliRun a = statewall(std::string("replay ") + kPolicy + " examples/three-tier.pcap --json", dir);
  CliRun b = statewall(std::string("replay ") + kPolicy + " '" + mixed + "' --json", dir);
  ASSERT_EQ(a.rc, 0) << a.err;
  ASSERT_EQ(b.rc, 0) << b.err;
  auto ja = nlohmann::json::parse(a.out), jb = nlohmann::json::parse(b.out);
  EXPECT_EQ(jb["complete"], true);
  // (Bytes differ: a cooked or raw header is not an Ethernet header.)
  for (const char* v : {"allow", "deny"})
    EXPECT_EQ(ja["verdicts"][v]["packets"], jb["verdicts"][v]["packets"]) << v;
  EXPECT_EQ(ja["rule_hits"], jb["rule_hits"]);
  EXPECT_EQ(jb["traces"][0]["link_types"], nlohmann::json::parse("[1, 276, 12]"));

  CliRun text = statewall(std::string("replay ") + kPolicy + " '" + mixed + "'", dir);
  EXPECT_EQ(text.rc, 0) << text.err;
  EXPECT_NE(text.out.find("pcapng, EN10MB (Ethernet, DLT 1) + LINUX_SLL2"), std::string::npos)
      << text.out;

  // explain: the same narration, packet for packet.
  CliRun ea = statewall(std::string("explain ") + kPolicy + " examples/three-tier.pcap", dir);
  CliRun eb = statewall(std::string("explain ") + kPolicy + " '" + mixed + "'", dir);
  ASSERT_EQ(ea.rc, 0) << ea.err;
  ASSERT_EQ(eb.rc, 0) << eb.err;
  EXPECT_EQ(firstDifference(eb.out, ea.out), "");

  // report: a page, as for the Ethernet trace.
  CliRun r = statewall(
      std::string("report ") + kPolicy + " '" + mixed + "' -q -o '" + dir.file("r.html") + "'",
      dir);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_GT(testing::readBytes(dir.file("r.html")).size(), 1000u);

  // diff: the same changes.
  const std::string against = dir.file("open.yaml");
  std::string policy = testing::readText(kRepo + "/examples/three-tier.yaml");
  testing::writeText(against, policy + "\n");
  CliRun da = statewall(std::string("diff ") + kPolicy + " --against '" + against +
                            "' examples/three-tier.pcap --json",
                        dir);
  CliRun db = statewall(
      std::string("diff ") + kPolicy + " --against '" + against + "' '" + mixed + "' --json", dir);
  ASSERT_EQ(da.rc, db.rc) << da.err << db.err;
  ASSERT_NE(db.rc, 2) << db.err;
  EXPECT_EQ(nlohmann::json::parse(da.out)["summary"], nlohmann::json::parse(db.out)["summary"]);
  EXPECT_EQ(nlohmann::json::parse(db.out)["packets"], ja["packets"]);
}

// Packets of an interface whose link type statewall does not read are skipped, and every
// command says so (the rest of the file is judged).
TEST(Cli, PcapngInterfaceOfAnUnreadLinkTypeIsSkippedWithAWarning) {
  TempDir dir;
  testing::PcapngBuilder b;
  b.section().interface(1, 0, 9).interface(189, 0, 9, std::nullopt, "usbmon1");  // USB_LINUX
  for (uint32_t i = 0; i < 6; ++i)
    b.packet(i % 2, 1700000000ull * 1000000000 + i, std::vector<uint8_t>(64, 0x45));
  const std::string path = dir.file("usb.pcapng");
  testing::writeBytes(path, b.bytes());
  CliRun r = statewall(std::string("replay ") + kPolicy + " '" + path + "'", dir);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("3 packets of interface 1 (usbmon1) were skipped"), std::string::npos)
      << r.out;
  EXPECT_EQ(summaryTotal(r.out), 3) << r.out;
  CliRun j = statewall(std::string("replay ") + kPolicy + " '" + path + "' --json", dir);
  ASSERT_EQ(j.rc, 0) << j.err;
  auto js = nlohmann::json::parse(j.out);
  EXPECT_EQ(js["traces"][0]["skipped_packets"], 3);
  EXPECT_EQ(js["traces"][0]["skipped_interfaces"][0]["name"], "usbmon1");
  EXPECT_EQ(js["traces"][0]["skipped_interfaces"][0]["link_type"], 189);
  CliRun rep = statewall(
      std::string("report ") + kPolicy + " '" + path + "' -q -o '" + dir.file("r.html") + "'", dir);
  EXPECT_EQ(rep.rc, 0) << rep.err;
  EXPECT_NE(rep.err.find("warning: " + path + ": 3 packets of interface 1 (usbmon1)"),
            std::string::npos)
      << rep.err;
  CliRun d = statewall(
      std::string("diff ") + kPolicy + " --against examples/three-tier.yaml '" + path + "'", dir);
  EXPECT_NE(d.err.find("3 packets of interface 1 (usbmon1) were skipped"), std::string::npos)
      << d.err;
}

}  // namespace
}  // namespace statewall::sim
