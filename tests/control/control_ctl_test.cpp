// `statewall ctl` (the built binary) against a ControlServer in this process: every subcommand,
// tables and --json, exit codes, Unix socket and TCP with a token.

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include <map>

#include "common/run_command.hpp"
#include "control_test_util.hpp"
#include "statewall/control/server.hpp"

namespace statewall::control {
namespace {

using nlohmann::json;
using testing::kPolicyA;
using testing::kPolicyB;
using testing::kPolicyBad;

constexpr std::string_view kToken = "ctl-test-token-0123456789";

using CtlRun = statewall::testing::CommandResult;

class CtlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.unix_socket = dir_.file("control.sock");
    o.tcp_listen = "127.0.0.1:0";
    o.token_file = dir_.write("token", std::string(kToken));
    o.api.initial_sources = {{"a.yaml", std::string(kPolicyA)}};
    server_ = std::make_unique<ControlServer>(h_.engine(), o);
    Status s = server_->start();
    ASSERT_TRUE(s.ok()) << s.message();
    socket_ = o.unix_socket;
    a_ = dir_.write("a.yaml", kPolicyA);
    b_ = dir_.write("b.yaml", kPolicyB);
    bad_ = dir_.write("bad.yaml", kPolicyBad);
  }

  // Runs `statewall ctl ARGS` with the Unix socket unless `args` names another endpoint.
  CtlRun ctl(const std::string& args, bool with_socket = true) {
    return statewall::testing::runShell(std::string(STATEWALL_BINARY_DIR) +
                                        "/apps/statewall/statewall ctl " +
                                        (with_socket ? "--socket " + socket_ + " " : "") + args);
  }

  testing::TempDir dir_;
  testing::EngineHarness h_;
  std::unique_ptr<ControlServer> server_;
  std::string socket_, a_, b_, bad_;
};

TEST_F(CtlTest, PolicyCheckLoadShow) {
  CtlRun check = ctl("policy check " + b_);
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_NE(check.out.find("policy is valid"), std::string::npos) << check.out;

  auto before = h_.engine().policy();
  CtlRun bad = ctl("policy check " + bad_);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find(bad_ + ":4:"), std::string::npos) << bad.err;
  CtlRun rejected = ctl("policy load " + bad_);
  EXPECT_EQ(rejected.exit_code, 1);
  EXPECT_NE(rejected.err.find(bad_ + ":4:"), std::string::npos) << rejected.err;
  EXPECT_NE(rejected.err.find("the running policy stays"), std::string::npos);
  EXPECT_EQ(h_.engine().policy(), before);

  CtlRun load = ctl("policy load " + b_);
  EXPECT_EQ(load.exit_code, 0) << load.err;
  EXPECT_NE(load.out.find("policy loaded: version " + std::to_string(h_.engine().policyVersion())),
            std::string::npos)
      << load.out;
  EXPECT_NE(h_.engine().policy(), before);

  CtlRun show = ctl("policy show");
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("8443"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("web-1"), std::string::npos);
  EXPECT_NE(show.out.find("RULE"), std::string::npos);
  CtlRun source = ctl("policy show --source");
  EXPECT_EQ(source.exit_code, 0);
  EXPECT_EQ(source.out, kPolicyB);
  CtlRun js = ctl("--json policy show");
  EXPECT_EQ(js.exit_code, 0);
  json j = json::parse(js.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << js.out;
  EXPECT_EQ(j["version"], h_.engine().policyVersion());
  EXPECT_EQ(j["documents"][0]["name"], b_);
}

TEST_F(CtlTest, PolicyLoadOfSeveralFiles) {
  std::string groups = dir_.write("groups.yaml",
                                  "version: 1\ngroups:\n  web:\n    inbound:\n"
                                  "      - {proto: tcp, ports: 22, from: pl:office}\n");
  std::string rest = dir_.write("rest.yaml",
                                "version: 1\nprefix_lists:\n  office: [203.0.113.0/24]\n"
                                "interfaces:\n  web-1: {addresses: [10.0.1.10], groups: [web]}\n");
  CtlRun load = ctl("policy load " + groups + " " + rest);
  EXPECT_EQ(load.exit_code, 0) << load.err;
  CtlRun src = ctl("policy show --source");
  EXPECT_NE(src.out.find("# ---- " + rest), std::string::npos) << src.out;
  EXPECT_EQ(h_.engine().policy()->source().prefix_lists.size(), 1u);
  CtlRun missing = ctl("policy load " + dir_.file("missing.yaml"));
  EXPECT_EQ(missing.exit_code, 2);
}

TEST_F(CtlTest, ConnectionsAndFlush) {
  h_.handshake("10.9.0.1", 40001, "10.0.1.10", 443);
  h_.handshake("10.9.0.2", 40002, "10.0.1.10", 443);
  CtlRun list = ctl("connections");
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("10.9.0.1:40001"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("10.0.1.10:443"), std::string::npos);
  EXPECT_NE(list.out.find("established"), std::string::npos);
  EXPECT_NE(list.out.find("2 shown, 2 matching"), std::string::npos);

  CtlRun filtered = ctl("--json connections --proto tcp --src 10.9.0.2");
  EXPECT_EQ(filtered.exit_code, 0);
  json j = json::parse(filtered.out, nullptr, false);
  ASSERT_EQ(j["connections"].size(), 1u) << filtered.out;
  EXPECT_EQ(j["connections"][0]["sport"], 40002);

  CtlRun paged = ctl("connections --limit 1");
  EXPECT_NE(paged.out.find("more: add --after"), std::string::npos) << paged.out;

  CtlRun badstate = ctl("connections --state bogus");
  EXPECT_EQ(badstate.exit_code, 2);
  EXPECT_NE(badstate.err.find("HTTP 400"), std::string::npos) << badstate.err;

  CtlRun nofilter = ctl("flush");
  EXPECT_EQ(nofilter.exit_code, 2);
  CtlRun one = ctl("flush --src 10.9.0.1 --dport 443");
  EXPECT_EQ(one.exit_code, 0) << one.err;
  EXPECT_NE(one.out.find("deleted 1 connections"), std::string::npos) << one.out;
  CtlRun all = ctl("--json flush --all");
  EXPECT_EQ(all.exit_code, 0);
  EXPECT_EQ(json::parse(all.out)["deleted"], 1);
  EXPECT_EQ(h_.engine().connectionCount(), 0u);
}

// Connections are shown by a short number (#1, #2, ... as the control plane first shows them),
// the same from one listing to the next; the engine's long id stays in JSON "id" and the last
// column, for --id and --after (issue 20). Failed before: the rows began with ids like 4294967296
// and JSON had no "number".
TEST_F(CtlTest, ConnectionsHaveShortNumbers) {
  h_.handshake("10.9.0.1", 40001, "10.0.1.10", 443);
  h_.handshake("10.9.0.2", 40002, "10.0.1.10", 443);
  const json first = json::parse(ctl("--json connections").out);
  ASSERT_EQ(first["connections"].size(), 2u) << first.dump();
  EXPECT_EQ(first["connections"][0]["number"], 1) << first.dump();
  EXPECT_EQ(first["connections"][1]["number"], 2) << first.dump();
  h_.handshake("10.9.0.3", 40003, "10.0.1.10", 443);
  const json again = json::parse(ctl("--json connections").out);
  ASSERT_EQ(again["connections"].size(), 3u) << again.dump();
  std::map<int, int> number_of;  // sport -> number, from the first listing
  for (const json& c : first["connections"])
    number_of[c["sport"].get<int>()] = c["number"].get<int>();
  number_of[40003] = 3;
  for (const json& c : again["connections"]) {
    EXPECT_EQ(c["number"], number_of[c["sport"].get<int>()]) << c.dump();
    EXPECT_GT(c["id"].get<uint64_t>(), 0u);
  }
  CtlRun list = ctl("connections");
  EXPECT_EQ(list.exit_code, 0) << list.err;
  std::istringstream in(list.out);
  std::string header;
  std::getline(in, header);
  EXPECT_EQ(header.rfind("CONN", 0), 0u) << list.out;
  std::string row;
  for (std::string line; std::getline(in, line);) {
    if (line.find("10.9.0.1:40001") != std::string::npos) row = line;
  }
  EXPECT_EQ(row.rfind("#" + std::to_string(number_of[40001]) + " ", 0), 0u) << list.out;
}

// After a policy with other rules is loaded, a connection the earlier one opened shows that its
// rule belongs to the earlier policy: never the text of the running policy's rule with the same
// number, and never a bare number.
TEST_F(CtlTest, ConnectionsOpenedByAnEarlierPolicySayItsRuleIsGone) {
  h_.handshake("10.9.0.1", 40001, "10.0.1.10", 443);
  CtlRun before = ctl("connections");
  EXPECT_NE(before.out.find("web inbound[0]: tcp 443"), std::string::npos) << before.out;
  ASSERT_EQ(ctl("policy load " + b_).exit_code, 0);
  h_.handshake("10.9.0.1", 40002, "10.0.1.10", 8443);
  CtlRun after = ctl("connections");
  EXPECT_EQ(after.exit_code, 0) << after.err;
  EXPECT_NE(after.out.find("rule 0 of an earlier policy"), std::string::npos) << after.out;
  // The new connection's rule is the running policy's rule 0, shown once (for it alone).
  const size_t first = after.out.find("tcp 8443");
  EXPECT_NE(first, std::string::npos) << after.out;
  EXPECT_EQ(after.out.find("tcp 8443", first + 1), std::string::npos) << after.out;
  json j = json::parse(ctl("--json connections").out);
  ASSERT_EQ(j["connections"].size(), 2u);
  for (const json& c : j["connections"]) {
    const bool old = c["sport"] == 40001;
    EXPECT_EQ(c["opened_by_policy"], old ? "earlier" : "running") << c.dump();
    EXPECT_EQ(c.contains("rule"), !old) << c.dump();
  }
}

// An untracked flow (DNS from 0.0.0.0/0, all outbound allowed: docs/design.md) has an entry, but
// no packet passes because of it: ctl says so instead of showing a state and an expiry that read
// as tracking. (Failed before: the row read like a tracked connection, "udp ... 30s", and JSON
// had no way to tell.)
TEST_F(CtlTest, UntrackedFlowsAreShownAsUntracked) {
  ASSERT_EQ(h_.udp("10.9.0.1", 5353, "10.0.1.10", 53).reason, dataplane::Reason::kAllowUntracked);
  h_.handshake("10.9.0.2", 40002, "10.0.1.10", 443);
  const json j = json::parse(ctl("--json connections").out);
  ASSERT_EQ(j["connections"].size(), 2u) << j.dump();
  for (const json& c : j["connections"])
    EXPECT_EQ(c["tracking"], c["proto"] == "udp" ? "untracked" : "tracked") << c.dump();
  CtlRun list = ctl("connections");
  EXPECT_EQ(list.exit_code, 0) << list.err;
  std::string udp_row, tcp_row;
  std::istringstream in(list.out);
  for (std::string line; std::getline(in, line);) {
    if (line.find("10.9.0.1:5353") != std::string::npos) udp_row = line;
    if (line.find("10.9.0.2:40002") != std::string::npos) tcp_row = line;
  }
  EXPECT_NE(udp_row.find("untracked: entry kept for the log"), std::string::npos) << list.out;
  EXPECT_EQ(udp_row.find("30s"), std::string::npos) << udp_row;  // no expiry shown as tracking
  EXPECT_NE(tcp_row.find("established"), std::string::npos) << list.out;
  EXPECT_EQ(tcp_row.find("untracked"), std::string::npos) << tcp_row;
}

TEST_F(CtlTest, Stats) {
  h_.handshake("10.9.0.1", 40001, "10.0.1.10", 443);
  CtlRun st = ctl("stats");
  EXPECT_EQ(st.exit_code, 0) << st.err;
  EXPECT_NE(st.out.find("allow-rule"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("deny-malformed"), std::string::npos);
  EXPECT_NE(st.out.find("connections 1 live"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("HITS"), std::string::npos);
  // Options of `ctl` may also follow the subcommand.
  CtlRun js = ctl("stats --json --socket " + socket_, /*with_socket=*/false);
  EXPECT_EQ(js.exit_code, 0) << js.err;
  json j = json::parse(js.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << js.out;
  EXPECT_EQ(j["packets"], 3);
  EXPECT_EQ(j["reasons"]["allow-rule"]["packets"], 1);
}

TEST_F(CtlTest, TimeoutsSet) {
  CtlRun ok = ctl("timeouts set tcp_established=3600 udp=45");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("tcp_established"), std::string::npos);
  EXPECT_EQ(h_.engine().policy()->timeouts().get(rules::TimeoutKey::kTcpEstablished), 3600u);
  EXPECT_EQ(h_.engine().policy()->timeouts().get(rules::TimeoutKey::kUdp), 45u);
  CtlRun linux = ctl("timeouts set --profile linux");
  EXPECT_EQ(linux.exit_code, 0) << linux.err;
  EXPECT_EQ(h_.engine().policy()->timeouts().profile, rules::TimeoutProfile::kLinux);

  auto before = h_.engine().policy();
  EXPECT_EQ(ctl("timeouts set bogus=1").exit_code, 2);
  EXPECT_EQ(ctl("timeouts set udp=abc").exit_code, 2);
  EXPECT_EQ(ctl("timeouts set udp").exit_code, 2);
  EXPECT_EQ(ctl("timeouts set").exit_code, 2);
  CtlRun range = ctl("timeouts set --profile aws udp=5");
  EXPECT_EQ(range.exit_code, 2);
  EXPECT_NE(range.err.find("invalid timeouts"), std::string::npos) << range.err;
  EXPECT_EQ(h_.engine().policy(), before);
}

TEST_F(CtlTest, TcpWithTokenAndTransportErrors) {
  std::string url = "http://127.0.0.1:" + std::to_string(server_->tcpPort());
  CtlRun ok = ctl("--url " + url + " --token-file " + dir_.file("token") + " stats", false);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  std::string wrong = dir_.write("wrong", "wrong-token-0123456789");
  CtlRun bad = ctl("--url " + url + " --token-file " + wrong + " stats", false);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("HTTP 401"), std::string::npos) << bad.err;
  CtlRun none = ctl("--url " + url + " stats", false);
  EXPECT_EQ(none.exit_code, 2);
  CtlRun gone = ctl("--socket " + dir_.file("nothing.sock") + " stats", false);
  EXPECT_EQ(gone.exit_code, 2);
  EXPECT_NE(gone.err.find("nothing.sock"), std::string::npos) << gone.err;
  CtlRun usage = ctl("policy", true);
  EXPECT_EQ(usage.exit_code, 2);
  CtlRun both = ctl("--url " + url + " stats", true);  // --socket and --url together
  EXPECT_EQ(both.exit_code, 2);
}

// File reads are capped: an endless policy or token file is a clear error that states the limit
// (never an out-of-memory abort); the token is never sent in clear text to another host; a token
// file that others may read gets a warning.
TEST_F(CtlTest, EndlessFilesRemoteUrlsAndOpenTokenFiles) {
  for (const std::string& args :
       std::vector<std::string>{"policy load /dev/zero", "policy check " + a_ + " /dev/zero"}) {
    CtlRun r = ctl(args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.err;
    EXPECT_NE(r.err.find("/dev/zero: the file is larger than the limit of 16777216 bytes (16 MiB)"),
              std::string::npos)
        << args << ": " << r.err;
    EXPECT_EQ(r.err.find("bad_alloc"), std::string::npos) << r.err;
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(server_->tcpPort());
  CtlRun token = ctl("--url " + url + " --token-file /dev/zero stats", false);
  EXPECT_EQ(token.exit_code, 2) << token.err;
  EXPECT_NE(token.err.find("/dev/zero: the file is larger than the limit of 4096 bytes: the most a "
                           "token file may hold"),
            std::string::npos)
      << token.err;

  const std::string tok = dir_.file("token");
  ASSERT_EQ(::chmod(tok.c_str(), 0600), 0);
  // TEST-NET-1: never reached, the client refuses before connecting.
  CtlRun remote = ctl("--url http://192.0.2.1:9180 --token-file " + tok + " stats", false);
  EXPECT_EQ(remote.exit_code, 2);
  EXPECT_NE(remote.err.find("not a loopback address"), std::string::npos) << remote.err;
  EXPECT_EQ(remote.out, "");

  CtlRun quiet = ctl("--url " + url + " --token-file " + tok + " stats", false);
  EXPECT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_EQ(quiet.err, "");
  ASSERT_EQ(::chmod(tok.c_str(), 0640), 0);
  CtlRun open = ctl("--url " + url + " --token-file " + tok + " stats", false);
  EXPECT_EQ(open.exit_code, 0) << open.err;
  EXPECT_NE(open.err.find("readable by other users"), std::string::npos) << open.err;
}

}  // namespace
}  // namespace statewall::control
