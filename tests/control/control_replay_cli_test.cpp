// `statewall replay --pace ... --control-socket ...` (the built binary): the API answers while the
// replay runs, a policy loaded mid-trace is what the summary reports, pacing changes no verdict,
// Ctrl-C ends a paced run with a summary and removes the socket, and the options' errors.
// No timing assertion: only what the replay and the API say.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include "common/wait_for.hpp"

#include "common/cli_fixture.hpp"
#include "statewall/control/client.hpp"

namespace statewall::control {
namespace {

using statewall::testing::waitFor;

using nlohmann::json;
using statewall::testing::CommandResult;

constexpr const char* kPolicyA = R"(version: 1
groups:
  web:
    inbound:
      - {proto: tcp, ports: 443, from: 198.51.100.0/24}
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
)";

constexpr const char* kPolicyB = R"(version: 1
groups:
  web:
    inbound:
      - {proto: tcp, ports: 8443, from: 198.51.100.0/24}
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
)";

constexpr const char* kToken = "replay-cli-test-token-0123456789";

class ReplayCliTest : public statewall::testing::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    policy_ = write("a.yaml", kPolicyA);
    token_ = write("token", kToken);
    socket_ = dir_ + "/ctl.sock";
  }

  // A trace of `seconds`: long connections to 443 and a new one to 443 and to 8443 every 100 ms.
  std::string trace(const std::string& name, int seconds) {
    std::vector<std::string> args = {"gen", "-q", "-o", dir_ + "/" + name};
    for (int i = 0; i < 5; ++i)
      args.insert(args.end(), {"--flow", "tcp 198.51.100." + std::to_string(10 + i) + ":4000" +
                                             std::to_string(i) + " -> 10.0.1.10:443 rtt=20 data=" +
                                             std::to_string(seconds * 50)});
    for (int k = 0; k < seconds * 10; ++k) {
      const std::string at = std::to_string(0.1 * k);
      args.insert(args.end(), {"--flow",
                               "tcp 198.51.100.100:" + std::to_string(50000 + k) +
                                   " -> 10.0.1.10:443 rtt=5 data=1 at=" + at,
                               "--flow",
                               "tcp 198.51.100.101:" + std::to_string(50000 + k) +
                                   " -> 10.0.1.10:8443 rtt=5 data=1 at=" + at});
    }
    CommandResult r = run(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return dir_ + "/" + name;
  }

  bool socketExists() const {
    struct stat st {};
    return ::stat(socket_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
  }

  std::string policy_, token_, socket_;
};

TEST_F(ReplayCliTest, ServesTheApiWhileAPacedReplayRuns) {
  const std::string t = trace("t.pcap", 3);
  const std::string b = write("b.yaml", kPolicyB);
  std::atomic<bool> done{false};
  CommandResult result;
  std::thread runner([&] {
    result = run({"replay", "--policy", policy_, t, "--json", "--pace", "2x", "--control-socket",
                  socket_, "--control-listen", "127.0.0.1:0", "--control-token-file", token_});
    done.store(true);
  });
  struct Join {
    std::thread& t;
    ~Join() {
      if (t.joinable()) t.join();
    }
  } join{runner};

  ASSERT_TRUE(waitFor([&] { return socketExists() || done.load(); }));
  ASSERT_FALSE(done.load()) << result.err;
  ClientOptions co;
  co.unix_socket = socket_;
  ControlClient client(co);
  // The long connections show up as the trace goes.
  json conns;
  ASSERT_TRUE(waitFor([&] {
    ClientResponse r;
    if (!client.request("GET", "/v1/connections?dport=443&state=established", "", "", &r).ok())
      return done.load();
    conns = json::parse(r.body, nullptr, false);
    return done.load() || (conns.is_object() && conns["matched"].get<int>() >= 5);
  }));
  ASSERT_FALSE(done.load()) << "the replay ended before the API saw its connections";
  {
    ClientResponse r;
    ASSERT_TRUE(client.request("GET", "/v1/policy", "", "", &r).ok());
    const json j = json::parse(r.body);
    EXPECT_EQ(j["version"], 1);
    ASSERT_EQ(j["documents"].size(), 1u);
    EXPECT_EQ(j["documents"][0]["text"], kPolicyA);
  }
  // `statewall ctl` loads B mid-trace.
  CommandResult load = run({"ctl", "--socket", socket_, "policy", "load", b});
  EXPECT_EQ(load.exit_code, 0) << load.out << load.err;
  EXPECT_FALSE(done.load()) << "the replay ended before the policy swap";
  runner.join();

  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("control API on unix " + socket_ + ", tcp 127.0.0.1:"),
            std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("the policy changed 1 time(s)"), std::string::npos) << result.err;
  const json s = json::parse(result.out);
  // The summary names B and counts hits against B's rules.
  EXPECT_EQ(s["policy"], json::array({b}));
  ASSERT_FALSE(s["rule_hits"].empty()) << s.dump();
  EXPECT_NE(s["rule_hits"].dump().find("8443"), std::string::npos) << s["rule_hits"].dump();
  EXPECT_EQ(s["rule_hits"].dump().find("tcp 443"), std::string::npos) << s["rule_hits"].dump();
  EXPECT_FALSE(socketExists()) << "the socket outlives the replay";
}

TEST_F(ReplayCliTest, PacingChangesNoVerdict) {
  const std::string t = trace("t.pcap", 1);
  CommandResult plain = run({"replay", "--policy", policy_, t, "--json"});
  CommandResult paced = run({"replay", "--policy", policy_, t, "--json", "--pace", "20x"});
  CommandResult served =
      run({"replay", "--policy", policy_, t, "--json", "--control-socket", socket_});  // full speed
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  ASSERT_EQ(paced.exit_code, 0) << paced.err;
  ASSERT_EQ(served.exit_code, 0) << served.err;
  const json a = json::parse(plain.out), b = json::parse(paced.out), c = json::parse(served.out);
  for (const char* key : {"packets", "reasons", "rule_hits", "connections", "top_denied"}) {
    EXPECT_EQ(a[key], b[key]) << key;
    EXPECT_EQ(a[key], c[key]) << key;
  }
  EXPECT_GT(a["packets"].get<int>(), 100);
}

// SIGINT as soon as the replay is ready (its control socket exists: the signal handler is in place
// before the server starts), not after a fixed time, which under load could come before it (exit
// 130): the run ends with a summary of what was judged, exit 2, and the socket is removed.
TEST_F(ReplayCliTest, InterruptEndsAPacedRunWithASummary) {
  const std::string t = trace("t.pcap", 30);  // 30 s of trace at its own pace
  const std::string out = dir_ + "/out.json", err = dir_ + "/err.txt";
  statewall::testing::Process replay(
      {statewall::testing::statewallBinary(), "replay", "--policy", policy_, t, "--json", "--pace",
       "realtime", "--control-socket", socket_},
      out, err);
  ASSERT_TRUE(replay.started());
  const bool ready = waitFor([&] { return replay.exited() || socketExists(); });
  const bool exited = replay.exited();
  if (!exited) replay.signal(SIGINT);
  const int code = replay.wait(std::chrono::seconds(120));
  ASSERT_TRUE(ready && !exited) << "the replay ended before it was ready: " << readFile(err);
  ASSERT_EQ(replay.termSignal(), 0)
      << "killed by signal " << replay.termSignal() << ": " << readFile(err);
  ASSERT_FALSE(replay.timedOut()) << readFile(err);
  EXPECT_EQ(code, 2) << readFile(err);
  EXPECT_NE(readFile(err).find("interrupted; the summary covers the"), std::string::npos)
      << readFile(err);
  const json s = json::parse(readFile(out), nullptr, false);
  ASSERT_TRUE(s.is_object()) << readFile(out);
  EXPECT_GE(s["packets"].get<int>(), 0);
  EXPECT_EQ(s["complete"], false);
  EXPECT_NE(s["error"]["message"].get<std::string>().find("interrupted"), std::string::npos);
  EXPECT_FALSE(socketExists()) << "the socket outlives the interrupted replay";
}

TEST_F(ReplayCliTest, OptionErrors) {
  const std::string t = trace("t.pcap", 1);
  struct Case {
    std::vector<std::string> extra;
    std::string expect;  // in stderr
  };
  const std::vector<Case> cases = {
      {{"--pace", "0x"}, "--pace 0x: expected realtime"},
      {{"--pace", "fast"}, "--pace fast"},
      {{"--pace", "-2x"}, "--pace"},
      {{"--pace", "10"}, "--pace 10:"},
      {{"--control-listen", "127.0.0.1:0"}, "needs --control-token-file"},
      {{"--control-token-file", token_}, "give --control-listen too"},
      {{"--control-listen", "0.0.0.0:0", "--control-token-file", token_}, "only loopback"},
      {{"--control-socket", dir_ + "/no-such-dir/c.sock"}, "no-such-dir"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"replay", "--policy", policy_, t};
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    CommandResult r = run(args);
    EXPECT_EQ(r.exit_code, 2) << c.expect << ": " << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
  }
}

// The replay's control options: a token file that others may read gets a warning, an endless one
// a clear error stating the limit.
TEST_F(ReplayCliTest, TokenFileWarningAndSizeCap) {
  const std::string t = trace("t.pcap", 1);
  auto serve = [&](const std::string& token_file) {
    return run({"replay", "--policy", policy_, t, "--control-listen", "127.0.0.1:0",
                "--control-token-file", token_file});
  };
  ASSERT_EQ(::chmod(token_.c_str(), 0600), 0);
  CommandResult quiet = serve(token_);
  EXPECT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_EQ(quiet.err.find("warning"), std::string::npos) << quiet.err;
  ASSERT_EQ(::chmod(token_.c_str(), 0644), 0);
  CommandResult open = serve(token_);
  EXPECT_EQ(open.exit_code, 0) << open.err;
  EXPECT_NE(open.err.find("statewall replay: warning: " + token_), std::string::npos) << open.err;
  EXPECT_NE(open.err.find("readable by other users"), std::string::npos) << open.err;
  CommandResult endless = serve("/dev/zero");
  EXPECT_EQ(endless.exit_code, 2) << endless.err;
  EXPECT_NE(endless.err.find("/dev/zero: the file is larger than the limit of 4096 bytes: the most "
                             "a token file may hold"),
            std::string::npos)
      << endless.err;
}

}  // namespace
}  // namespace statewall::control
