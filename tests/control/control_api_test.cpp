// ControlApi without sockets: every endpoint and error path, through ControlApi::handle() and
// through the HTTP framing of handleRawRequest().
#include <gtest/gtest.h>

#include <cstdio>
#include <set>

#include "common/protocol_spellings.hpp"
#include "control_test_util.hpp"
#include "statewall/control/api.hpp"
#include "statewall/control/http.hpp"

namespace statewall::control {
namespace {

using dataplane::Reason;
using nlohmann::json;
using testing::EngineHarness;
using testing::kPolicyA;
using testing::kPolicyB;
using testing::kPolicyBad;

class ApiTest : public ::testing::Test {
 protected:
  ApiTest() : api_(h_.engine(), hooks(), options()) {}

  // The API reads the engine's injected clock, as a host passes its own.
  HostHooks hooks() {
    HostHooks k;
    k.now_ns = [this] { return h_.nowNs(); };
    return k;
  }

  static ApiOptions options() {
    ApiOptions o;
    o.initial_sources = {{"a.yaml", std::string(kPolicyA)}};
    o.default_page_size = 3;
    o.max_page_size = 50;
    return o;
  }

  ApiResponse call(std::string method, std::string target, std::string body = {},
                   std::string content_type = {}) {
    return api_.handle(
        {std::move(method), std::move(target), std::move(content_type), std::move(body)});
  }
  json callJson(std::string method, std::string target, int want_status, std::string body = {},
                std::string content_type = {}) {
    ApiResponse r = call(method, target, std::move(body), std::move(content_type));
    EXPECT_EQ(r.status, want_status) << method << " " << target << ": " << r.body;
    json j = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.body;
    return j;
  }
  // An error response: status, JSON {error, detail}.
  json expectError(std::string method, std::string target, int status, std::string body = {},
                   std::string content_type = {}) {
    json j = callJson(std::move(method), std::move(target), status, std::move(body),
                      std::move(content_type));
    EXPECT_TRUE(j.contains("error") && j["error"].is_string()) << j.dump();
    EXPECT_TRUE(j.contains("detail") && j["detail"].is_string()) << j.dump();
    return j;
  }

  EngineHarness h_;
  ControlApi api_;
};

TEST_F(ApiTest, GetPolicyDescribesTheRunningPolicyAndItsSource) {
  json j = callJson("GET", "/v1/policy", 200);
  EXPECT_EQ(j["version"], h_.engine().policyVersion());
  EXPECT_EQ(j["origin"], "host");
  EXPECT_TRUE(j["loaded_at"].is_string());
  EXPECT_EQ(j["summary"]["groups"], 1);
  EXPECT_EQ(j["summary"]["rules"], h_.engine().policy()->ruleCount());
  ASSERT_TRUE(j["rules"].is_array());
  bool https = false;
  for (const auto& r : j["rules"])
    https = https || (r["group"] == "web" && r["direction"] == "inbound" &&
                      r["text"].get<std::string>().find("443") != std::string::npos &&
                      r["description"] == "HTTPS from the clients");
  EXPECT_TRUE(https) << j["rules"].dump();
  ASSERT_EQ(j["documents"].size(), 1u);
  EXPECT_EQ(j["documents"][0]["name"], "a.yaml");
  EXPECT_EQ(j["documents"][0]["text"], std::string(kPolicyA));
  EXPECT_EQ(j["interfaces"][0]["name"], "web-1");
  EXPECT_EQ(j["interfaces"][0]["addresses"][0], "10.0.1.10");
  EXPECT_EQ(j["timeouts"]["profile"], "aws");
  EXPECT_EQ(j["timeouts"]["tcp_established"], 432000);
}

TEST_F(ApiTest, PutPolicyPublishesAndGetShowsIt) {
  auto before = h_.engine().policy();
  uint64_t v0 = h_.engine().policyVersion();
  json j = callJson("PUT", "/v1/policy?name=b.yaml", 200, std::string(kPolicyB));
  EXPECT_EQ(j["valid"], true);
  EXPECT_GT(j["version"].get<uint64_t>(), v0);
  EXPECT_EQ(j["version"], h_.engine().policyVersion());
  EXPECT_NE(h_.engine().policy(), before);
  EXPECT_EQ(h_.engine().policy()->ruleCount(), j["summary"]["rules"].get<size_t>());

  json g = callJson("GET", "/v1/policy", 200);
  EXPECT_EQ(g["version"], j["version"]);
  EXPECT_EQ(g["origin"], "api");
  EXPECT_EQ(g["documents"][0]["name"], "b.yaml");
  EXPECT_EQ(g["files"][0], "b.yaml");
  bool has8443 = false;
  for (const auto& r : g["rules"])
    has8443 = has8443 || r["text"].get<std::string>().find("8443") != std::string::npos;
  EXPECT_TRUE(has8443);
}

TEST_F(ApiTest, PolicyPublishedBehindTheApisBackHasNoKnownSource) {
  h_.engine().publish(testing::compileYaml(kPolicyB));
  json g = callJson("GET", "/v1/policy", 200);
  EXPECT_EQ(g["origin"], "host");
  EXPECT_TRUE(g["loaded_at"].is_null());
  EXPECT_TRUE(g["documents"].empty());
}

TEST_F(ApiTest, BadPolicyIsRejectedWithLocationsAndTheRunningOneStays) {
  auto before = h_.engine().policy();
  uint64_t v0 = h_.engine().policyVersion();
  json j = expectError("PUT", "/v1/policy?name=bad.yaml", 400, std::string(kPolicyBad));
  EXPECT_EQ(j["error"], "invalid policy");
  EXPECT_EQ(j["detail"].get<std::string>().rfind("bad.yaml:4:", 0), 0u) << j["detail"];
  ASSERT_FALSE(j["diagnostics"].empty());
  EXPECT_EQ(j["diagnostics"][0]["file"], "bad.yaml");
  EXPECT_EQ(j["diagnostics"][0]["line"], 4);
  EXPECT_EQ(j["diagnostics"][0]["severity"], "error");
  EXPECT_EQ(h_.engine().policy(), before);
  EXPECT_EQ(h_.engine().policyVersion(), v0);
  EXPECT_EQ(callJson("GET", "/v1/policy", 200)["documents"][0]["name"], "a.yaml");
}

TEST_F(ApiTest, BadYamlSyntaxIsRejected) {
  auto before = h_.engine().policy();
  json j = expectError("PUT", "/v1/policy", 400, "groups: [web\n  - {");
  EXPECT_EQ(j["error"], "invalid policy");
  EXPECT_EQ(j["detail"].get<std::string>().rfind("policy:", 0), 0u) << j["detail"];
  EXPECT_EQ(h_.engine().policy(), before);
  // An empty body is not a policy either (or at least publishes nothing with errors).
  ApiResponse r = call("PUT", "/v1/policy", "");
  if (r.status != 200) {
    EXPECT_EQ(r.status, 400);
  }
}

TEST_F(ApiTest, BadAwsJsonIsRejected) {
  auto before = h_.engine().policy();
  json j =
      expectError("PUT", "/v1/policy?name=sg.json", 400, R"({"SecurityGroups": [{"GroupId": 5}]})");
  EXPECT_EQ(j["error"], "invalid policy");
  EXPECT_NE(j["detail"].get<std::string>().find("sg.json"), std::string::npos);
  EXPECT_EQ(h_.engine().policy(), before);
}

TEST_F(ApiTest, CheckValidatesWithoutPublishing) {
  auto before = h_.engine().policy();
  json ok = callJson("POST", "/v1/policy/check?name=b.yaml", 200, std::string(kPolicyB));
  EXPECT_EQ(ok["valid"], true);
  EXPECT_FALSE(ok.contains("version"));
  json bad = callJson("POST", "/v1/policy/check?name=bad.yaml", 200, std::string(kPolicyBad));
  EXPECT_EQ(bad["valid"], false);
  ASSERT_FALSE(bad["diagnostics"].empty());
  EXPECT_EQ(bad["diagnostics"][0]["text"].get<std::string>().rfind("bad.yaml:4:", 0), 0u);
  EXPECT_EQ(h_.engine().policy(), before);
}

TEST_F(ApiTest, BundleOfSeveralDocuments) {
  json bundle = {{"documents",
                  {{{"name", "groups.yaml"},
                    {"text",
                     "version: 1\ngroups:\n  web:\n    inbound:\n      - {proto: tcp, "
                     "ports: 22, from: pl:office}\n"}},
                   {{"name", "rest.yaml"},
                    {"text",
                     "version: 1\nprefix_lists:\n  office: [203.0.113.0/24]\n"
                     "interfaces:\n  web-1: {addresses: [10.0.1.10], groups: [web]}\n"}}}}};
  json j = callJson("PUT", "/v1/policy", 200, bundle.dump(), std::string(kBundleContentType));
  EXPECT_EQ(j["summary"]["prefix_lists"], 1);
  json g = callJson("GET", "/v1/policy", 200);
  ASSERT_EQ(g["documents"].size(), 2u);
  EXPECT_EQ(g["documents"][1]["name"], "rest.yaml");

  std::string ct(kBundleContentType);
  EXPECT_EQ(expectError("PUT", "/v1/policy", 400, "{not json", ct)["error"], "bad request");
  expectError("PUT", "/v1/policy", 400, R"({"documents": []})", ct);
  expectError("PUT", "/v1/policy", 400, R"({"documents": [{"name": "x"}]})", ct);
  expectError("PUT", "/v1/policy", 400, R"({"documents": [{"name": "", "text": ""}]})", ct);
  expectError("PUT", "/v1/policy", 400, R"({"docs": []})", ct);
  expectError("PUT", "/v1/policy", 400, R"([1, 2])", ct);
  // Content-Type parameters are allowed.
  callJson("POST", "/v1/policy/check", 200, bundle.dump(), ct + "; charset=utf-8");
}

// The proto filter accepts exactly the shared vocabulary's spellings (rules::parseIpProtocol).
TEST_F(ApiTest, ConnectionFilterProtoTakesEverySharedSpelling) {
  for (const auto& sp : statewall::testing::kProtocolSpellings) {
    std::string q;
    for (unsigned char c : sp.text) {
      char esc[4];
      std::snprintf(esc, sizeof(esc), "%%%02X", c);
      q += esc;
    }
    const std::string target = "/v1/connections?proto=" + q;
    if (sp.proto) {
      callJson("GET", target, 200);
    } else {
      expectError("GET", target, 400);
    }
  }
}

TEST_F(ApiTest, PolicyRequestErrors) {
  expectError("PUT", "/v1/policy?nme=x", 400, std::string(kPolicyA));
  expectError("PUT", "/v1/policy?name=", 400, std::string(kPolicyA));
  expectError("PUT", "/v1/policy?name=" + std::string(300, 'x'), 400, std::string(kPolicyA));
  expectError("GET", "/v1/policy?verbose=1", 400);
}

TEST_F(ApiTest, UnknownPathsAndWrongMethods) {
  EXPECT_EQ(expectError("GET", "/v1/nothing", 404)["error"], "not found");
  expectError("GET", "/", 404);
  expectError("GET", "/v1/policy/", 404);
  expectError("GET", "/v2/policy", 404);
  struct Case {
    const char* method;
    const char* path;
    const char* allow;
  };
  for (Case c :
       {Case{"POST", "/v1/policy", "GET, PUT"}, Case{"DELETE", "/v1/policy", "GET, PUT"},
        Case{"GET", "/v1/policy/check", "POST"}, Case{"PUT", "/v1/connections", "GET, DELETE"},
        Case{"POST", "/v1/stats", "GET"}, Case{"HEAD", "/metrics", "GET"},
        Case{"GET", "/v1/timeouts", "PUT"}, Case{"BREW", "/v1/stats", "GET"}}) {
    ApiResponse r = call(c.method, c.path);
    EXPECT_EQ(r.status, 405) << c.method << " " << c.path;
    EXPECT_EQ(r.allow, c.allow) << c.method << " " << c.path;
    EXPECT_EQ(json::parse(r.body)["error"], "method not allowed");
  }
  expectError("GET", "v1/stats", 400);
  expectError("GET", "/v1/connections?proto=%zz", 400);
  expectError("GET", "/v1/connections?proto=%4", 400);
  expectError("GET", "/v1/connections?proto=tcp%00", 400);
  expectError("GET", "/v1/%73tats", 400);
}

class ConnectionsTest : public ApiTest {
 protected:
  void SetUp() override {
    // Five HTTPS connections from 10.9.0.1..5, and one DNS flow.
    for (int i = 1; i <= 5; ++i) {
      auto v = h_.handshake("10.9.0." + std::to_string(i), static_cast<uint16_t>(40000 + i),
                            "10.0.1.10", 443);
      ASSERT_EQ(v[0].reason, Reason::kAllowRule);
      ASSERT_EQ(v[1].reason, Reason::kAllowTracked);
      ASSERT_EQ(v[2].reason, Reason::kAllowTracked);
    }
    ASSERT_EQ(h_.udp("10.9.0.1", 5353, "10.0.1.10", 53).reason, Reason::kAllowUntracked);
  }

  std::vector<json> tcpConnections(const std::string& query) {
    json j = callJson("GET", "/v1/connections?proto=tcp" + query, 200);
    return j["connections"].get<std::vector<json>>();
  }
};

TEST_F(ConnectionsTest, ListsTrackedConnectionsWithTheirFields) {
  json j = callJson("GET", "/v1/connections?proto=tcp&src=10.9.0.3", 200);
  ASSERT_EQ(j["connections"].size(), 1u) << j.dump();
  EXPECT_EQ(j["matched"], 1);
  const json& c = j["connections"][0];
  EXPECT_EQ(c["proto"], "tcp");
  EXPECT_EQ(c["src"], "10.9.0.3");
  EXPECT_EQ(c["sport"], 40003);
  EXPECT_EQ(c["dst"], "10.0.1.10");
  EXPECT_EQ(c["dport"], 443);
  EXPECT_EQ(c["state"], "established");
  EXPECT_EQ(c["replied"], true);
  EXPECT_EQ(c["dst_side_tracked"], true);
  EXPECT_TRUE(c["id"].is_number_unsigned());
  EXPECT_TRUE(c["expires_ns"].is_number_unsigned());
  // Established: the AWS profile's 432000 s from its last packet, a few ms before now.
  EXPECT_LE(c["expires_in_s"].get<double>(), 432000.0);
  EXPECT_GT(c["expires_in_s"].get<double>(), 431999.0);
  EXPECT_NEAR(c["expires_in_s"].get<double>(),
              static_cast<double>(c["expires_ns"].get<uint64_t>() - h_.nowNs()) / 1e9, 1e-6);
  EXPECT_NE(c["rule"].get<std::string>().find("443"), std::string::npos) << c.dump();
  // The id filter finds the same connection.
  json byId = callJson("GET", "/v1/connections?id=" + c["id"].dump(), 200);
  ASSERT_EQ(byId["connections"].size(), 1u);
  EXPECT_EQ(byId["connections"][0], c);
}

TEST_F(ConnectionsTest, Filters) {
  EXPECT_EQ(tcpConnections("&limit=50").size(), 5u);
  EXPECT_EQ(tcpConnections("&dport=443&limit=50").size(), 5u);
  EXPECT_EQ(tcpConnections("&dport=80").size(), 0u);
  EXPECT_EQ(tcpConnections("&sport=40002").size(), 1u);
  EXPECT_EQ(tcpConnections("&port=40004").size(), 1u);
  EXPECT_EQ(tcpConnections("&port=443&limit=50").size(), 5u);
  EXPECT_EQ(tcpConnections("&src=10.9.0.0%2F30&limit=50").size(), 3u);  // .1 .2 .3
  EXPECT_EQ(tcpConnections("&src=10.9.0.0/30&limit=50").size(), 3u);
  EXPECT_EQ(tcpConnections("&dst=10.0.1.10&limit=50").size(), 5u);
  EXPECT_EQ(tcpConnections("&addr=10.9.0.5").size(), 1u);
  EXPECT_EQ(tcpConnections("&addr=10.0.1.0/24&limit=50").size(), 5u);
  EXPECT_EQ(tcpConnections("&state=ESTABLISHED&limit=50").size(), 5u);
  EXPECT_EQ(tcpConnections("&state=syn-sent").size(), 0u);
  EXPECT_EQ(tcpConnections("&src=2001:db8::/32").size(), 0u);
  json all = callJson("GET", "/v1/connections?proto=6&limit=50", 200);
  EXPECT_EQ(all["matched"], 5);
  EXPECT_EQ(callJson("GET", "/v1/connections?proto=icmp", 200)["matched"], 0);

  for (const char* bad : {"proto=xyz", "proto=256", "src=10.9.0.0/33", "src=nonsense",
                          "dport=65536", "dport=-1", "port=", "state=open", "id=x", "limit=0",
                          "limit=51", "after=-1", "colour=red", "all=true"}) {
    json e = expectError("GET", std::string("/v1/connections?") + bad, 400);
    EXPECT_EQ(e["error"], "bad request") << bad;
  }
}

TEST_F(ConnectionsTest, PagesInIdOrderWithoutGapsOrRepeats) {
  std::vector<uint64_t> ids;
  std::string query = "/v1/connections?proto=tcp&limit=2";
  int pages = 0;
  for (;;) {
    json j = callJson("GET", query, 200);
    EXPECT_EQ(j["matched"], 5);
    for (const auto& c : j["connections"])
      ids.push_back(c["id"].get<uint64_t>());
    ++pages;
    ASSERT_LE(pages, 5);
    if (j["next_after"].is_null()) break;
    EXPECT_EQ(j["connections"].size(), 2u);
    EXPECT_EQ(j["next_after"], j["connections"].back()["id"]);
    query = "/v1/connections?proto=tcp&limit=2&after=" + j["next_after"].dump();
  }
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::set<uint64_t>(ids.begin(), ids.end()).size(), 5u);
  // The default page size applies without limit=.
  json d = callJson("GET", "/v1/connections?proto=tcp", 200);
  EXPECT_EQ(d["connections"].size(), 3u);
  EXPECT_FALSE(d["next_after"].is_null());
}

TEST_F(ConnectionsTest, DeleteFlushesMatchingConnectionsOnly) {
  expectError("DELETE", "/v1/connections", 400);
  expectError("DELETE", "/v1/connections?limit=3", 400);
  expectError("DELETE", "/v1/connections?all=yes", 400);
  json d = callJson("DELETE", "/v1/connections?proto=tcp&src=10.9.0.1", 200);
  EXPECT_EQ(d["deleted"], 1);
  EXPECT_EQ(tcpConnections("&limit=50").size(), 4u);
  EXPECT_EQ(tcpConnections("&src=10.9.0.1").size(), 0u);
  EXPECT_EQ(callJson("DELETE", "/v1/connections?proto=tcp&src=10.9.0.1", 200)["deleted"], 0);

  // A flushed connection is gone from the engine: its next ACK from the server side no longer
  // matches a tracked entry, so it is judged by the (outbound allow-all) rules, not as tracked.
  dataplane::Verdict v = h_.send(dataplane::buildTcp({.src = dataplane::ipAddr("10.0.1.10"),
                                                      .dst = dataplane::ipAddr("10.9.0.1"),
                                                      .sport = 443,
                                                      .dport = 40001,
                                                      .flags = dataplane::kAck,
                                                      .seq = 5001,
                                                      .ack = 1001}));
  EXPECT_NE(v.reason, Reason::kAllowTracked);

  json all = callJson("DELETE", "/v1/connections?all=true", 200);
  EXPECT_GE(all["deleted"].get<uint64_t>(), 4u);
  EXPECT_EQ(callJson("GET", "/v1/connections", 200)["matched"], 0);
  EXPECT_EQ(h_.engine().connectionCount(), 0u);
}

TEST_F(ConnectionsTest, StatsCountReasonsRulesAndFill) {
  EXPECT_EQ(h_.send(dataplane::buildTcp({.src = dataplane::ipAddr("10.9.0.9"),
                                         .dst = dataplane::ipAddr("10.0.1.10"),
                                         .dport = 22,
                                         .flags = dataplane::kSyn}))
                .reason,
            Reason::kDenySg);
  json j = callJson("GET", "/v1/stats", 200);
  EXPECT_EQ(j["policy_version"], h_.engine().policyVersion());
  EXPECT_EQ(j["packets"], 17);  // 5 handshakes, one DNS packet, one denied SYN
  EXPECT_EQ(j["reasons"]["allow-rule"]["packets"], 5);
  EXPECT_EQ(j["reasons"]["allow-tracked"]["packets"], 10);
  EXPECT_EQ(j["reasons"]["allow-untracked"]["packets"], 1);
  EXPECT_EQ(j["reasons"]["deny-sg"]["packets"], 1);
  EXPECT_GT(j["reasons"]["deny-sg"]["bytes"].get<uint64_t>(), 0u);
  uint64_t sum = 0;
  for (const auto& [k, v] : j["reasons"].items())
    sum += v["packets"].get<uint64_t>();
  EXPECT_EQ(sum, 17u);
  EXPECT_EQ(j["reasons"].size(), dataplane::kReasonCount);
  EXPECT_EQ(j["connections"]["capacity"], h_.engine().capacity());
  EXPECT_EQ(j["connections"]["live"], h_.engine().connectionCount());
  EXPECT_GE(j["connections"]["live"].get<uint64_t>(), 5u);
  EXPECT_GT(j["connections"]["fill"].get<double>(), 0.0);
  EXPECT_GE(j["connections"]["created"].get<uint64_t>(), 5u);
  ASSERT_EQ(j["rules"].size(), h_.engine().policy()->ruleCount());
  uint64_t https_hits = 0, dns_hits = 0;
  for (const auto& r : j["rules"]) {
    if (r["text"].get<std::string>().find("443") != std::string::npos) https_hits = r["hits"];
    if (r["text"].get<std::string>().find("53") != std::string::npos) dns_hits = r["hits"];
  }
  EXPECT_GE(https_hits, 5u);
  EXPECT_GE(dns_hits, 1u);
  EXPECT_TRUE(j["rates"].is_null());  // no samples yet
  EXPECT_TRUE(j["lcores"].empty());

  api_.sampleRates(std::chrono::steady_clock::time_point(std::chrono::seconds(100)));
  h_.udp("10.9.0.1", 5353, "10.0.1.10", 53);
  h_.udp("10.9.0.1", 5353, "10.0.1.10", 53);
  api_.sampleRates(std::chrono::steady_clock::time_point(std::chrono::seconds(102)));
  json r = callJson("GET", "/v1/stats", 200)["rates"];
  EXPECT_DOUBLE_EQ(r["interval_s"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(r["packets_per_second"].get<double>(), 1.0);
  EXPECT_GT(r["bytes_per_second"].get<double>(), 0.0);
}

TEST_F(ConnectionsTest, MetricsInPrometheusFormat) {
  ApiResponse r = call("GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type.rfind("text/plain; version=0.0.4", 0), 0u);
  const std::string& m = r.body;
  EXPECT_NE(m.find("# TYPE statewall_packets_total counter\n"), std::string::npos);
  EXPECT_NE(m.find("statewall_packets_total{reason=\"allow-rule\"} 5\n"), std::string::npos) << m;
  EXPECT_NE(m.find("statewall_packets_total{reason=\"allow-tracked\"} 10\n"), std::string::npos);
  EXPECT_NE(m.find("statewall_packets_total{reason=\"deny-malformed\"} 0\n"), std::string::npos);
  EXPECT_NE(m.find("statewall_connections_capacity " + std::to_string(h_.engine().capacity())),
            std::string::npos);
  EXPECT_NE(m.find("statewall_policy_version " + std::to_string(h_.engine().policyVersion())),
            std::string::npos);
  const std::string hits =
      "statewall_rule_hits_total{rule=\"0\",group=\"web\",direction=\"inbound\",index=\"0\"} ";
  size_t at = m.find(hits);
  ASSERT_NE(at, std::string::npos) << m;
  EXPECT_GE(std::stoull(m.substr(at + hits.size())), 5u);
  // Every sample line is "name{labels} value" or "name value"; every family has HELP and TYPE.
  std::istringstream in(m);
  std::string line;
  std::set<std::string> typed;
  while (std::getline(in, line)) {
    ASSERT_FALSE(line.empty());
    if (line.rfind("# TYPE ", 0) == 0) typed.insert(line.substr(7, line.find(' ', 7) - 7));
    if (line[0] == '#') continue;
    std::string name = line.substr(0, line.find_first_of("{ "));
    EXPECT_TRUE(typed.count(name)) << line;
    EXPECT_NE(line.rfind(' '), std::string::npos);
  }
  expectError("GET", "/metrics?x=1", 400);
}

TEST_F(ApiTest, TimeoutsChangeAtRunTimeByRepublishing) {
  auto before = h_.engine().policy();
  uint64_t v0 = h_.engine().policyVersion();
  json j = callJson("PUT", "/v1/timeouts", 200, R"({"tcp_established": 3600, "udp": 45})");
  EXPECT_GT(j["version"].get<uint64_t>(), v0);
  EXPECT_EQ(j["timeouts"]["tcp_established"], 3600);
  EXPECT_EQ(j["timeouts"]["udp"], 45);
  auto after = h_.engine().policy();
  ASSERT_NE(after, before);
  EXPECT_EQ(after->timeouts().get(rules::TimeoutKey::kTcpEstablished), 3600u);
  EXPECT_EQ(after->timeouts().get(rules::TimeoutKey::kUdp), 45u);
  EXPECT_EQ(after->timeouts().get(rules::TimeoutKey::kIcmp),
            before->timeouts().get(rules::TimeoutKey::kIcmp));
  EXPECT_EQ(after->ruleCount(), before->ruleCount());
  json g = callJson("GET", "/v1/policy", 200);
  EXPECT_EQ(g["timeouts_changed"], true);
  EXPECT_EQ(g["timeouts"]["tcp_established"], 3600);
  EXPECT_EQ(g["documents"][0]["name"], "a.yaml");  // the source is still known

  json l = callJson("PUT", "/v1/timeouts", 200, R"({"profile": "linux", "tcp_close": 5})");
  EXPECT_EQ(l["timeouts"]["profile"], "linux");
  EXPECT_EQ(l["timeouts"]["tcp_close"], 5);
  EXPECT_EQ(l["timeouts"]["tcp_syn_recv"], 60);
}

TEST_F(ApiTest, InvalidTimeoutsKeepThePolicy) {
  auto before = h_.engine().policy();
  EXPECT_EQ(expectError("PUT", "/v1/timeouts", 400, "{")["error"], "bad json");
  for (const char* body :
       {R"({})", R"([])", R"({"tcp_establshed": 60})", R"({"udp": "45"})", R"({"udp": -1})",
        R"({"udp": 4.5})", R"({"udp": 99999999999})", R"({"udp": 5})", R"({"tcp_established": 10})",
        R"({"profile": "bsd"})", R"({"tcp_close": 0})"}) {
    json e = expectError("PUT", "/v1/timeouts", 400, body);
    EXPECT_EQ(e["error"], "invalid timeouts") << body;
  }
  expectError("PUT", "/v1/timeouts?x=1", 400, R"({"udp": 45})");
  EXPECT_EQ(h_.engine().policy(), before);
}

TEST_F(ApiTest, HotSwapKeepsTrackedConnectionsAndStopsUntrackedFlows) {
  auto hs = h_.handshake("10.9.0.1", 40001, "10.0.1.10", 443);
  ASSERT_EQ(hs[2].reason, Reason::kAllowTracked);
  ASSERT_EQ(h_.udp("10.9.0.2", 5353, "10.0.1.10", 53).reason, Reason::kAllowUntracked);
  callJson("PUT", "/v1/policy?name=b.yaml", 200, std::string(kPolicyB));

  using namespace dataplane;
  IpAddr c = ipAddr("10.9.0.1"), s = ipAddr("10.0.1.10");
  // The tracked connection continues in both directions.
  EXPECT_EQ(h_.send(buildTcp({.src = c,
                              .dst = s,
                              .sport = 40001,
                              .dport = 443,
                              .flags = kAck,
                              .seq = 1001,
                              .ack = 5001,
                              .payload_len = 100}))
                .reason,
            Reason::kAllowTracked);
  EXPECT_EQ(h_.send(buildTcp({.src = s,
                              .dst = c,
                              .sport = 443,
                              .dport = 40001,
                              .flags = kAck,
                              .seq = 5001,
                              .ack = 1101}))
                .reason,
            Reason::kAllowTracked);
  // The untracked DNS flow stops at once; new HTTPS connections are denied; 8443 is allowed.
  EXPECT_EQ(h_.udp("10.9.0.2", 5353, "10.0.1.10", 53).reason, Reason::kDenySg);
  EXPECT_EQ(
      h_.send(buildTcp({.src = c, .dst = s, .sport = 40002, .dport = 443, .flags = kSyn})).reason,
      Reason::kDenySg);
  EXPECT_EQ(
      h_.send(buildTcp({.src = c, .dst = s, .sport = 40003, .dport = 8443, .flags = kSyn})).reason,
      Reason::kAllowRule);
}

TEST_F(ApiTest, HostHooksFeedStatsAndSeePublishes) {
  std::vector<uint64_t> published;
  HostHooks hooks;
  hooks.now_ns = [] { return uint64_t{0}; };
  hooks.lcore_rates = [] { return std::vector<LcoreRate>{{0, 1000.0, 64000.0}, {3, 10.5, 640.0}}; };
  hooks.on_publish = [&](uint64_t v) { published.push_back(v); };
  ControlApi api(h_.engine(), hooks);
  ApiResponse r = api.handle({"GET", "/v1/stats", "", ""});
  json j = json::parse(r.body);
  ASSERT_EQ(j["lcores"].size(), 2u);
  EXPECT_EQ(j["lcores"][1]["lcore"], 3);
  EXPECT_DOUBLE_EQ(j["lcores"][1]["packets_per_second"].get<double>(), 10.5);
  std::string m = api.handle({"GET", "/metrics", "", ""}).body;
  EXPECT_NE(m.find("statewall_lcore_packets_per_second{lcore=\"3\"} 10.500\n"), std::string::npos);

  ASSERT_EQ(api.handle({"PUT", "/v1/policy", "", std::string(kPolicyB)}).status, 200);
  ASSERT_EQ(api.handle({"PUT", "/v1/timeouts", "", R"({"udp": 50})"}).status, 200);
  ASSERT_EQ(published.size(), 2u);
  EXPECT_EQ(published[1], h_.engine().policyVersion());

  // With now_ns = 0 a connection reports its whole lifetime as the time left.
  h_.handshake("10.9.0.1", 40001, "10.0.1.10", 8443);
  json c = json::parse(api.handle({"GET", "/v1/connections?dport=8443", "", ""}).body);
  ASSERT_EQ(c["connections"].size(), 1u);
  EXPECT_DOUBLE_EQ(c["connections"][0]["expires_in_s"].get<double>(),
                   static_cast<double>(c["connections"][0]["expires_ns"].get<uint64_t>()) / 1e9);
}

// The host's I/O side (statewalld's ports and mbufs) in /metrics and /v1/stats, with build info
// and uptime; a host without it has no port series.
TEST_F(ApiTest, HostIoInMetricsAndStats) {
  HostHooks hooks;
  hooks.io = [] {
    HostIo io;
    io.ports.push_back({"inside", "net_af_packet0", 10, 1000, 20, 2000, 3, 4, 5, 6});
    io.ports.push_back({"outside", "0000:03:00.0", 11, 1100, 21, 2100, 0, 0, 0, 0});
    io.tx_dropped = 7;
    io.oversize = 8;
    io.mbufs_capacity = 4095;
    io.mbufs_in_use = 1500;
    return io;
  };
  ApiOptions o;
  o.dpdk_version = "DPDK 22.11.4";
  ControlApi api(h_.engine(), hooks, o);
  const std::string m = api.handle({"GET", "/metrics", "", ""}).body;
  for (const char* line : {
           "# TYPE statewall_port_rx_packets_total counter\n",
           "statewall_port_rx_packets_total{port=\"inside\",device=\"net_af_packet0\"} 10\n",
           "statewall_port_rx_bytes_total{port=\"inside\",device=\"net_af_packet0\"} 1000\n",
           "statewall_port_tx_packets_total{port=\"outside\",device=\"0000:03:00.0\"} 21\n",
           "statewall_port_tx_bytes_total{port=\"outside\",device=\"0000:03:00.0\"} 2100\n",
           "statewall_port_rx_missed_total{port=\"inside\",device=\"net_af_packet0\"} 3\n",
           "statewall_port_rx_nombuf_total{port=\"inside\",device=\"net_af_packet0\"} 6\n",
           "statewall_tx_dropped_total 7\n",
           "statewall_oversize_total 8\n",
           "statewall_mbufs_capacity 4095\n",
           "statewall_mbufs_in_use 1500\n",
           "# TYPE statewall_uptime_seconds gauge\n",
           "# TYPE statewall_connections_fill_ratio gauge\n",
           "dpdk_version=\"DPDK 22.11.4\"} 1\n",
       })
    EXPECT_NE(m.find(line), std::string::npos) << line << " missing from\n" << m;
  EXPECT_NE(m.find("statewall_build_info{version=\"0."), std::string::npos) << m;
  EXPECT_NE(m.find(",commit=\""), std::string::npos) << m;
  const json j = json::parse(api.handle({"GET", "/v1/stats", "", ""}).body);
  ASSERT_EQ(j["io"]["ports"].size(), 2u) << j.dump();
  EXPECT_EQ(j["io"]["ports"][0]["rx_nombuf"], 6);
  EXPECT_EQ(j["io"]["mbufs"]["in_use"], 1500);
  EXPECT_GE(j["uptime_s"].get<double>(), 0.0);

  // Without the hook: no port series, "io": null.
  const std::string plain = api_.handle({"GET", "/metrics", "", ""}).body;
  EXPECT_EQ(plain.find("statewall_port_rx_packets_total"), std::string::npos);
  EXPECT_NE(plain.find("statewall_build_info{"), std::string::npos);
  EXPECT_TRUE(json::parse(api_.handle({"GET", "/v1/stats", "", ""}).body)["io"].is_null());
}

TEST_F(ApiTest, HealthFollowsTheHostAndVersionSaysWhatThisBuildIs) {
  json h = callJson("GET", "/v1/health", 200);
  EXPECT_EQ(h["status"], "ok");
  EXPECT_EQ(h["policy_version"], h_.engine().policyVersion());

  HostHealth health;
  HostHooks hooks;
  hooks.health = [&health] { return health; };
  ApiOptions o;
  o.dpdk_version = "DPDK 22.11.4";
  ControlApi api(h_.engine(), hooks, o);
  ApiResponse r = api.handle({"GET", "/v1/health", "", ""});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(api.handle({"GET", "/healthz", "", ""}).status, 200);
  health = {false, "lcore 1 made no progress for 6.0 s"};
  EXPECT_EQ(api.handle({"GET", "/healthz", "", ""}).status, 503);
  r = api.handle({"GET", "/v1/health", "", ""});
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(json::parse(r.body)["status"], "unhealthy");
  EXPECT_EQ(json::parse(r.body)["detail"], "lcore 1 made no progress for 6.0 s");

  const json v = json::parse(api.handle({"GET", "/v1/version", "", ""}).body);
  EXPECT_EQ(v["version"].get<std::string>().rfind("0.", 0), 0u) << v.dump();
  EXPECT_FALSE(v["commit"].get<std::string>().empty()) << v.dump();
  EXPECT_TRUE(v["build_type"].is_string()) << v.dump();
  EXPECT_EQ(v["dpdk_version"], "DPDK 22.11.4");
  EXPECT_TRUE(callJson("GET", "/v1/version", 200)["dpdk_version"].is_null());
  expectError("POST", "/v1/health", 405);
  expectError("GET", "/v1/version?x=1", 400);
}

// GET /v1/drops: the host's drop log after a cursor, with the deciding or nearest rule named
// while the policy that judged the packet runs.
TEST_F(ApiTest, DropsFromTheHostsLog) {
  EXPECT_EQ(call("GET", "/v1/drops").status, 404);  // a host without a drop log
  const uint64_t version = h_.engine().policyVersion();
  std::vector<DropEvent> log;
  for (uint64_t i = 1; i <= 3; ++i) {
    DropEvent e;
    e.seq = i;
    e.policy_version = version;
    e.ip = true;
    e.src = *rules::IpAddr::parse("198.51.100.7");
    e.dst = *rules::IpAddr::parse("10.0.1.10");
    e.proto = 6;
    e.sport = 40000;
    e.dport = 22;
    e.port = "outside";
    e.reason = static_cast<uint8_t>(Reason::kDenySg);
    e.deny_iface = 0;
    log.push_back(e);
  }
  log[2].reason = static_cast<uint8_t>(Reason::kDenyInvalid);
  log[2].why = "SYN with ACK";
  HostHooks hooks;
  hooks.drops = [&](uint64_t after, size_t limit) {
    DropsPage p;
    for (const DropEvent& e : log)
      if (e.seq > after && p.drops.size() < limit) p.drops.push_back(e);
    p.unlogged = 5;
    return p;
  };
  ControlApi api(h_.engine(), hooks);
  json j = json::parse(api.handle({"GET", "/v1/drops?limit=2", "", ""}).body);
  ASSERT_EQ(j["drops"].size(), 2u) << j.dump();
  EXPECT_EQ(j["next_after"], 2);
  EXPECT_EQ(j["unlogged"], 5);
  const json& d = j["drops"][0];
  EXPECT_EQ(d["src"], "198.51.100.7");
  EXPECT_EQ(d["dport"], 22);
  EXPECT_EQ(d["proto"], "tcp");
  EXPECT_EQ(d["reason"], "deny-sg");
  EXPECT_EQ(d["port"], "outside");
  EXPECT_EQ(d["rule"], "no inbound rule of web-1 (groups web) allows it") << d.dump();
  j = json::parse(api.handle({"GET", "/v1/drops?after=2", "", ""}).body);
  ASSERT_EQ(j["drops"].size(), 1u);
  EXPECT_EQ(j["drops"][0]["rule"], "SYN with ACK");
  // After a policy change the interface ids are another policy's: not named.
  ASSERT_EQ(api.handle({"PUT", "/v1/policy", "", std::string(kPolicyB)}).status, 200);
  j = json::parse(api.handle({"GET", "/v1/drops", "", ""}).body);
  EXPECT_EQ(j["drops"][0]["rule"],
            "no allowing rule (policy version " + std::to_string(version) + ", since replaced)");
  EXPECT_EQ(api.handle({"GET", "/v1/drops?limit=0", "", ""}).status, 400);
  EXPECT_EQ(api.handle({"GET", "/v1/drops?x=1", "", ""}).status, 400);
}

// JSON request bodies with a key twice are refused, naming the key (as the YAML loader refuses
// duplicates), instead of silently keeping one of the values.
TEST_F(ApiTest, DuplicateJsonKeysAreRejected) {
  auto before = h_.engine().policy();
  json t = expectError("PUT", "/v1/timeouts", 400,
                       R"({"udp": 40, "tcp_established": 600, "udp": 50})", "application/json");
  EXPECT_NE(t["detail"].get<std::string>().find("duplicate key \"udp\""), std::string::npos)
      << t.dump();
  EXPECT_EQ(h_.engine().policy(), before);

  const std::string ctype(kBundleContentType);
  const std::string doc = json(std::string(kPolicyB)).dump();
  json inner = expectError(
      "PUT", "/v1/policy", 400,
      R"({"documents": [{"name": "b.yaml", "text": )" + doc + R"(, "name": "c.yaml"}]})", ctype);
  EXPECT_NE(inner["detail"].get<std::string>().find("duplicate key \"name\" in documents[0]"),
            std::string::npos)
      << inner.dump();
  json outer = expectError(
      "POST", "/v1/policy/check", 400,
      R"({"documents": [], "documents": [{"name": "b.yaml", "text": )" + doc + "}]}", ctype);
  EXPECT_NE(outer["detail"].get<std::string>().find("duplicate key \"documents\""),
            std::string::npos)
      << outer.dump();
  EXPECT_EQ(h_.engine().policy(), before);
  // The same keys once each are fine.
  callJson("PUT", "/v1/timeouts", 200, R"({"udp": 40, "tcp_established": 600})",
           "application/json");
}

// ---- HTTP framing -----------------------------------------------------------------------------

class RawTest : public ApiTest {
 protected:
  testing::ParsedResponse raw(const std::string& bytes, std::string_view token = {}) {
    HttpLimits limits;
    limits.max_body_bytes = 1024;
    limits.max_header_bytes = 512;
    return testing::parseResponse(handleRawRequest(api_, bytes, limits, token));
  }
};

TEST_F(RawTest, RoutesACompleteRequest) {
  auto r = raw(testing::httpRequest("GET", "/v1/stats"));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.hasHeader("Content-Type: application/json"));
  EXPECT_TRUE(r.hasHeader("Connection: close"));
  EXPECT_EQ(r.json()["policy_version"], h_.engine().policyVersion());

  auto keep = raw(testing::httpRequest("GET", "/v1/stats", {}, {}, /*close=*/false));
  EXPECT_EQ(keep.status, 200);
  EXPECT_FALSE(keep.hasHeader("Connection: close"));

  auto put = raw(testing::httpRequest("POST", "/v1/policy/check", kPolicyB));
  EXPECT_EQ(put.status, 200);
  EXPECT_EQ(put.json()["valid"], true);
  // Chunked bodies are accepted too.
  auto chunked =
      raw("PUT /v1/timeouts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
          "5\r\n{\"udp\r\n6\r\n\": 50}\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.status, 200) << chunked.body;
  auto notfound = raw(testing::httpRequest("GET", "/nope"));
  EXPECT_EQ(notfound.status, 404);
  EXPECT_EQ(notfound.json()["error"], "not found");
  auto wrong = raw(testing::httpRequest("PATCH", "/v1/policy"));
  EXPECT_EQ(wrong.status, 405);
  EXPECT_TRUE(wrong.hasHeader("Allow: GET, PUT"));
}

TEST_F(RawTest, MalformedAndOversizedRequests) {
  for (const char* bad :
       {"GARBAGE\r\n\r\n", "GET /v1/stats HTTX/1.1\r\n\r\n",
        "GET /v1/stats HTTP/1.1\r\nBad Header\r\n\r\n",
        "PUT /v1/policy HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        "PUT /v1/timeouts HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"}) {
    auto r = raw(bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.json()["error"], "bad request") << bad;
    EXPECT_TRUE(r.hasHeader("Connection: close"));
  }
  auto big = raw(testing::httpRequest("PUT", "/v1/policy", std::string(2000, 'x')));
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(big.json()["error"], "payload too large");
  // Content-Length alone decides: the body need not be sent.
  auto announced = raw("PUT /v1/policy HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n");
  EXPECT_EQ(announced.status, 413);
  auto chunked = raw("PUT /v1/policy HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n" +
                     std::string(2000, 'x') + "\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.status, 413);
  auto header = raw(
      testing::httpRequest("GET", "/v1/stats", {}, "X-Filler: " + std::string(1000, 'a') + "\r\n"));
  EXPECT_EQ(header.status, 431);
  EXPECT_EQ(header.json()["error"], "request header fields too large");
  // Cut short: the server would wait for the rest.
  HttpLimits limits;
  EXPECT_EQ(handleRawRequest(api_, "GET /v1/stats HTTP/1.1\r\nHost:", limits, {}), "");
  EXPECT_EQ(handleRawRequest(api_, "PUT /v1/timeouts HTTP/1.1\r\nContent-Length: 10\r\n\r\n{",
                             limits, {}),
            "");
  EXPECT_EQ(handleRawRequest(api_, "", limits, {}), "");
}

TEST_F(RawTest, BearerTokenIsRequiredWhenConfigured) {
  const std::string token = "0123456789abcdef-secret";
  auto missing = raw(testing::httpRequest("GET", "/v1/stats"), token);
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(missing.json()["error"], "unauthorized");
  EXPECT_TRUE(missing.hasHeader("WWW-Authenticate: Bearer"));
  for (std::string auth :
       std::vector<std::string>{"Bearer 0123456789abcdef-secreT", "Bearer 0123456789abcdef-secre",
                                "Bearer 0123456789abcdef-secrett", "Basic 0123456789abcdef-secret",
                                "Bearer", "bearer 0123456789abcdef-secret", "Bearer  " + token}) {
    auto r =
        raw(testing::httpRequest("GET", "/v1/stats", {}, "Authorization: " + auth + "\r\n"), token);
    EXPECT_EQ(r.status, 401) << auth;
  }
  // A rejected request does not reach the API: the policy stays.
  auto before = h_.engine().policy();
  auto put = raw(testing::httpRequest("PUT", "/v1/policy", kPolicyB, "Authorization: Bearer x\r\n"),
                 token);
  EXPECT_EQ(put.status, 401);
  EXPECT_EQ(h_.engine().policy(), before);
  auto ok =
      raw(testing::httpRequest("GET", "/v1/stats", {}, "Authorization: Bearer " + token + "\r\n"),
          token);
  EXPECT_EQ(ok.status, 200);
}

TEST(BearerTest, MatchesExactlyTheConfiguredToken) {
  EXPECT_TRUE(bearerMatches("Bearer abc", "abc"));
  EXPECT_FALSE(bearerMatches("Bearer abd", "abc"));
  EXPECT_FALSE(bearerMatches("Bearer ab", "abc"));
  EXPECT_FALSE(bearerMatches("Bearer abcd", "abc"));
  EXPECT_FALSE(bearerMatches("Bearer ", "abc"));
  EXPECT_FALSE(bearerMatches("", "abc"));
  EXPECT_FALSE(bearerMatches("Bearer ", ""));
  EXPECT_FALSE(bearerMatches("Token abc", "abc"));
  EXPECT_FALSE(bearerMatches(std::string_view("Bearer ab\0", 10), "abc"));
}

}  // namespace
}  // namespace statewall::control
