// A hostile policy through the control API (issue: a 5 KB alias bomb grew statewalld by 475 MB):
// the server answers 400 naming the limit and where it was exceeded, keeps the policy in force,
// and keeps serving.
#include <string>

#include <gtest/gtest.h>

#include "common/alias_bomb.hpp"
#include "control_test_util.hpp"
#include "statewall/control/server.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::control {
namespace {

using nlohmann::json;
using testing::EngineHarness;
using testing::httpRequest;
using testing::parseResponse;
using testing::RawConn;
using testing::TempDir;

class PolicyBombTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.unix_socket = dir_.file("control.sock");
    o.threads = 2;  // the default body limit (16 MiB), as statewalld runs it
    socket_ = o.unix_socket;
    server_ = std::make_unique<ControlServer>(h_.engine(), std::move(o));
    Status s = server_->start();
    ASSERT_TRUE(s.ok()) << s.message();
  }
  testing::ParsedResponse request(const std::string& req) {
    RawConn c = RawConn::unixSocket(socket_);
    EXPECT_TRUE(c.connected());
    c.send(req);
    return parseResponse(c.readAll());
  }

  TempDir dir_;
  EngineHarness h_;
  std::string socket_;
  std::unique_ptr<ControlServer> server_;
};

TEST_F(PolicyBombTest, AliasBombIsRefusedWith400AndThePolicyStays) {
  const auto before = h_.engine().policy();
  const auto version = h_.engine().policyVersion();
  const std::string bomb = statewall::testing::yamlAliasBomb();
  ASSERT_LT(bomb.size(), 16u * 1024);

  auto r = request(httpRequest("PUT", "/v1/policy?name=bomb.yaml", bomb));
  EXPECT_EQ(r.status, 400) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["error"], "invalid policy");
  const std::string detail = j["detail"].get<std::string>();
  EXPECT_EQ(detail.rfind("bomb.yaml:55:18: ", 0), 0u) << detail;
  EXPECT_NE(detail.find("more than " + std::to_string(rules::kMaxYamlNodes) + " YAML nodes"),
            std::string::npos)
      << detail;
  EXPECT_EQ(h_.engine().policy(), before);
  EXPECT_EQ(h_.engine().policyVersion(), version);

  // The same through the check endpoint, and the server still serves.
  auto c = request(httpRequest("POST", "/v1/policy/check?name=bomb.yaml", bomb));
  EXPECT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(json::parse(c.body)["valid"], false);
  EXPECT_EQ(request(httpRequest("GET", "/v1/stats")).status, 200);
  EXPECT_EQ(h_.engine().policy(), before);
}

TEST_F(PolicyBombTest, InvalidUtf8IsRefusedWith400AndValidJson) {
  const auto before = h_.engine().policy();
  auto r = request(httpRequest("PUT", "/v1/policy?name=bad.yaml",
                               "version: 1\ngroups:\n  web: {description: \"a\xFF\"}\n"));
  EXPECT_EQ(r.status, 400) << r.body;
  json j = json::parse(r.body);  // throws (fails the test) if the body is not valid JSON
  EXPECT_EQ(j["detail"].get<std::string>().rfind("bad.yaml:3:24: ", 0), 0u) << j["detail"];
  EXPECT_NE(j["detail"].get<std::string>().find("invalid UTF-8 at byte 42 (0xFF)"),
            std::string::npos)
      << j["detail"];
  EXPECT_EQ(h_.engine().policy(), before);
}

}  // namespace
}  // namespace statewall::control
