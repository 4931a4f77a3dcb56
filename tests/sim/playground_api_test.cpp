// The playground's JSON API without a browser: Playground::handle() in-process (every answer
// checked against the engine's own explain/replay), then PlaygroundServer over loopback HTTP
// (limits, bad requests, the Host and content-type guards, loopback-only listening).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sim_test_util.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"
#include "statewall/sim/explain.hpp"
#include "statewall/sim/gen.hpp"
#include "statewall/sim/playground.hpp"

namespace statewall::sim {
namespace {

using Json = nlohmann::json;
const std::string kExamples = STATEWALL_EXAMPLES_DIR;

std::string inboundOnly() {
  return testing::readText(kExamples + "/teaching/inbound-only.yaml");
}
std::string untracked() {
  return testing::readText(kExamples + "/teaching/untracked.yaml");
}

struct Answer {
  int status = 0;
  Json body;
};

Answer call(const Playground& pg, const std::string& method, const std::string& path,
            const std::string& body = "") {
  PlaygroundReply r = pg.handle(method, path, body);
  Answer a;
  a.status = r.status;
  if (r.content_type == "application/json") a.body = Json::parse(r.body);
  return a;
}

Answer post(const Playground& pg, const std::string& path, const Json& body) {
  return call(pg, "POST", path, body.dump());
}

PlaygroundOptions options(const std::string& policy) {
  PlaygroundOptions o;
  o.policy_name = "p.yaml";
  o.policy_text = policy;
  return o;
}

std::string base64(const std::vector<uint8_t>& b) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < b.size(); i += 3) {
    const uint32_t v = uint32_t{b[i]} << 16 | uint32_t{b[i + 1]} << 8 | b[i + 2];
    for (int s = 18; s >= 0; s -= 6)
      out += k[(v >> s) & 63];
  }
  if (i + 1 == b.size()) {
    const uint32_t v = uint32_t{b[i]} << 16;
    out += std::string{k[v >> 18], k[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == b.size()) {
    const uint32_t v = uint32_t{b[i]} << 16 | uint32_t{b[i + 1]} << 8;
    out += std::string{k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], '='};
  }
  return out;
}

// The frames `statewall gen` makes of these flow specs.
std::vector<Frame> framesOf(const std::vector<std::string>& flows) {
  GenOptions go;
  for (const std::string& f : flows)
    go.explicit_flows.push_back(*parseFlowSpec(f));
  TraceGenerator gen(go);
  std::vector<Frame> frames;
  for (GenPacket p; gen.next(&p);)
    frames.push_back(Frame{p.ts_ns, p.frame});
  return frames;
}

rules::CompiledPolicyPtr compiledOf(const std::string& yaml) {
  auto loaded = rules::loadPolicyTexts({{"p.yaml", yaml}});
  return loaded.ok() ? rules::compile(*loaded.policy).policy : nullptr;
}

// ---- in-process ----

TEST(PlaygroundApi, StateHasThePolicyTheMachineAndTheQuiz) {
  Playground pg(options(inboundOnly()));
  Answer a = call(pg, "GET", "/api/state");
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(a.body["policy"], inboundOnly());
  EXPECT_EQ(a.body["tcp_machine"]["states"].size(), dataplane::kTcpStateCount);
  EXPECT_GT(a.body["tcp_machine"]["transitions"].size(), 10u);
  ASSERT_GE(a.body["quiz"].size(), 4u);
  for (const Json& q : a.body["quiz"]) {
    EXPECT_FALSE(q.contains("verdict")) << "the answer is revealed only after a guess";
    EXPECT_FALSE(q["summary"].get<std::string>().empty());
  }
  EXPECT_EQ(call(pg, "GET", "/").status, 200);
  EXPECT_EQ(call(pg, "GET", "/nope").status, 404);
  EXPECT_EQ(call(pg, "POST", "/api/state").status, 405);
  EXPECT_EQ(call(pg, "GET", "/api/check").status, 405);
}

TEST(PlaygroundApi, CheckGivesDiagnosticsAtTheirLine) {
  Playground pg(options(inboundOnly()));
  Answer ok = post(pg, "/api/check", {{"policy", inboundOnly()}});
  ASSERT_EQ(ok.status, 200);
  EXPECT_TRUE(ok.body["valid"]);
  ASSERT_EQ(ok.body["rules"].size(), 1u);
  EXPECT_EQ(ok.body["rules"][0]["label"], "web inbound rule 0");
  EXPECT_EQ(ok.body["rules"][0]["line"], 8);

  // A port range written backwards, on line 8: the loader's own message, at that line.
  std::string broken = inboundOnly();
  const size_t at = broken.find("ports: 443,");
  ASSERT_NE(at, std::string::npos);
  broken.replace(at, 11, "ports: 4430-443,");
  Answer bad = post(pg, "/api/check", {{"policy", broken}});
  ASSERT_EQ(bad.status, 200);
  EXPECT_FALSE(bad.body["valid"]);
  ASSERT_FALSE(bad.body["diagnostics"].empty());
  const Json& d = bad.body["diagnostics"][0];
  EXPECT_EQ(d["severity"], "error");
  EXPECT_EQ(d["line"], 8);
  EXPECT_GT(d["col"].get<int>(), 0);
  // The same as `statewall check` says for that text.
  auto loaded = rules::loadPolicyTexts({{"p.yaml", broken}});
  ASSERT_FALSE(loaded.diagnostics.empty());
  EXPECT_EQ(d["message"], loaded.diagnostics[0].message);

  // Not YAML at all.
  Answer junk = post(pg, "/api/check", {{"policy", "groups: [unclosed\n  - {"}});
  ASSERT_EQ(junk.status, 200);
  EXPECT_FALSE(junk.body["valid"]);
  EXPECT_GT(junk.body["diagnostics"][0]["line"].get<int>(), 0);
}

TEST(PlaygroundApi, BadRequestsGetClearErrors) {
  PlaygroundOptions o = options(inboundOnly());
  o.limits.max_body_bytes = 4096;
  o.limits.max_policy_bytes = 1024;
  Playground pg(o);
  struct Case {
    std::string path, body;
    int status;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"/api/check", "{not json", 400, "bad JSON"},
      {"/api/check", "[1,2]", 400, "bad request"},
      {"/api/check", "{}", 400, "bad request"},
      {"/api/check", R"({"policy": 7})", 400, "bad request"},
      {"/api/check", std::string(5000, ' '), 413, "payload too large"},
      {"/api/check", Json{{"policy", std::string(2000, '#')}}.dump(), 413, "policy too large"},
      {"/api/run", Json{{"policy", inboundOnly()}, {"flows", {"tcp nonsense"}}}.dump(), 400,
       "bad scenario"},
      {"/api/run", Json{{"policy", inboundOnly()}, {"flows", Json::array()}}.dump(), 400,
       "bad scenario"},
      {"/api/run", Json{{"policy", inboundOnly()}, {"flows", "tcp a -> b"}}.dump(), 400,
       "bad scenario"},
      {"/api/run",
       Json{{"policy", "version: 2\n"}, {"flows", {"icmp 1.2.3.4 -> 10.0.1.10"}}}.dump(), 400,
       "invalid policy"},
      {"/api/run", Json{{"policy", inboundOnly()}, {"pcap", "!!!"}}.dump(), 400, "bad trace"},
      {"/api/run", Json{{"policy", inboundOnly()}, {"pcap", "AAAA"}}.dump(), 400, "bad trace"},
      {"/api/run",
       Json{{"policy", inboundOnly()},
            {"flows", {"icmp 1.2.3.4 -> 10.0.1.10"}},
            {"whatif", {{"rule", "rule:99"}}}}
           .dump(),
       400, "bad what-if"},
      {"/api/run",
       Json{{"policy", inboundOnly()},
            {"flows", {"icmp 1.2.3.4 -> 10.0.1.10"}},
            {"whatif", {{"rule", "rule:0"}, {"at", "soon"}}}}
           .dump(),
       400, "bad what-if"},
      {"/api/quiz/answer", R"({"id": "nope", "guess": "allow"})", 404, "no such question"},
      {"/api/quiz/answer", R"({"id": "nope", "guess": "maybe"})", 400, "bad request"},
      {"/api/quiz/answer", R"({"id": 5, "guess": "allow"})", 400, "bad request"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path + " " + c.body.substr(0, 120));
    Answer a = call(pg, "POST", c.path, c.body);
    EXPECT_EQ(a.status, c.status) << a.body.dump();
    EXPECT_EQ(a.body.value("error", ""), c.error) << a.body.dump();
    EXPECT_FALSE(a.body.value("detail", "").empty());
  }
  // JSON nested a million deep: an error, not a stack overflow.
  PlaygroundOptions deep_o = options(inboundOnly());
  deep_o.limits.max_body_bytes = 4 << 20;
  Playground deep(deep_o);
  Answer d =
      call(deep, "POST", "/api/run", std::string(1'000'000, '[') + std::string(1'000'000, ']'));
  EXPECT_EQ(d.status, 400);
  EXPECT_EQ(d.body["error"], "bad request") << d.body.dump();
  // The bad flow is named by its line, with gen's own message.
  Answer a = post(pg, "/api/run",
                  {{"policy", inboundOnly()}, {"flows", {"icmp 1.2.3.4 -> 10.0.1.10", "tcp x"}}});
  EXPECT_EQ(a.body["detail"].get<std::string>().rfind("flow 2: ", 0), 0u) << a.body.dump();
}

TEST(PlaygroundApi, LimitsCapFlowsPacketsAndTraces) {
  PlaygroundOptions o = options(inboundOnly());
  o.limits.max_flows = 2;
  o.limits.max_packets = 5;
  o.limits.max_pcap_bytes = 100;
  Playground pg(o);
  Answer many = post(
      pg, "/api/run",
      {{"policy", inboundOnly()},
       {"flows",
        {"icmp 1.2.3.4 -> 10.0.1.10", "icmp 1.2.3.5 -> 10.0.1.10", "icmp 1.2.3.6 -> 10.0.1.10"}}});
  EXPECT_EQ(many.status, 413);
  Answer longer = post(
      pg, "/api/run",
      {{"policy", inboundOnly()}, {"flows", {"tcp 198.51.100.7:50000 -> 10.0.1.10:443 data=3"}}});
  ASSERT_EQ(longer.status, 200);
  EXPECT_EQ(longer.body["packets"].size(), 5u);
  EXPECT_TRUE(longer.body["truncated"]);
  Answer big = post(pg, "/api/run",
                    {{"policy", inboundOnly()}, {"pcap", base64(std::vector<uint8_t>(300, 0))}});
  EXPECT_EQ(big.status, 413);
}

TEST(PlaygroundApi, RunStepsAHandshakeAsTheEngineJudgesIt) {
  Playground pg(options(inboundOnly()));
  const std::string flow = "tcp 198.51.100.7:50000 -> 10.0.1.10:443 data=1";
  Answer a = post(pg, "/api/run", {{"policy", inboundOnly()}, {"flows", {flow}}});
  ASSERT_EQ(a.status, 200) << a.body.dump();
  const Json& ps = a.body["packets"];
  ASSERT_GE(ps.size(), 3u);
  EXPECT_EQ(a.body["disagreements"], 0);

  // The same frames through the explain API directly: the page shows exactly its verdicts.
  const auto compiled = compiledOf(inboundOnly());
  ASSERT_TRUE(compiled);
  ExplainOptions eo;
  eo.table_capacity = 1 << 14;
  auto ex = explainFrames(compiled, framesOf({flow}), eo);
  ASSERT_EQ(ex.size(), ps.size());
  for (size_t i = 0; i < ex.size(); ++i) {
    EXPECT_EQ(ps[i]["reason"], dataplane::reasonCode(ex[i].reason)) << i;
    EXPECT_EQ(ps[i]["summary"], ex[i].summary) << i;
  }

  // SYN: opened by web inbound rule 0 (line 8), crossing the interface's groups.
  EXPECT_EQ(ps[0]["reason"], "allow-rule");
  EXPECT_EQ(ps[0]["decided_by"]["label"], "web inbound rule 0");
  EXPECT_EQ(ps[0]["decided_by"]["line"], 8);
  EXPECT_EQ(ps[0]["tcp"]["after"], "SYN_SENT");
  ASSERT_EQ(ps[0]["table"].size(), 1u);
  EXPECT_EQ(ps[0]["table"][0]["conn"], 1);
  EXPECT_EQ(ps[0]["table"][0]["tcp_state"], "SYN_SENT");
  EXPECT_EQ(ps[0]["table"][0]["tracked_by"], Json::array({"web-1"}));
  EXPECT_DOUBLE_EQ(ps[0]["table"][0]["expires_in"].get<double>(), 120.0);
  bool sg_step = false;
  for (const Json& s : ps[0]["steps"]) {
    if (s["kind"] == "sg") {
      sg_step = true;
      EXPECT_EQ(s["rule"]["line"], 8);
    }
  }
  EXPECT_TRUE(sg_step);
  // SYN-ACK: a tracked reply with no outbound rule; the handshake's states, from the engine.
  EXPECT_EQ(ps[1]["reason"], "allow-tracked");
  EXPECT_EQ(ps[1]["tcp"]["before"], "SYN_SENT");
  EXPECT_EQ(ps[1]["tcp"]["after"], "SYN_RECV");
  EXPECT_EQ(ps[1]["table"][0]["tcp_state"], "SYN_RECV");
  EXPECT_EQ(ps[2]["tcp"]["after"], "ESTABLISHED");
  EXPECT_EQ(ps[2]["table"][0]["tcp_state"], "ESTABLISHED");
  EXPECT_DOUBLE_EQ(ps[2]["table"][0]["expires_in"].get<double>(), 432000.0);
}

// The table after each packet lists at most 16 connections, the packet's own among them, and
// says how many the engine holds (a trace of many flows must not make the answer explode).
TEST(PlaygroundApi, TableListsTheOwnConnectionWithinABound) {
  Playground pg(options(untracked()));
  Json flows = Json::array();
  for (int i = 0; i < 24; ++i)
    flows.push_back("icmp 198.51.100." + std::to_string(i + 1) + " -> 10.0.1.10 reply=no at=0." +
                    std::to_string(10 + i));
  std::string policy = untracked() + "\n";
  policy.replace(policy.find("proto: tcp, ports: 443"), 22, "proto: icmp");
  Answer a = post(pg, "/api/run", {{"policy", policy}, {"flows", flows}});
  ASSERT_EQ(a.status, 200) << a.body.dump();
  const Json& ps = a.body["packets"];
  ASSERT_EQ(ps.size(), 24u);
  const Json& last = ps.back();
  EXPECT_EQ(last["table_size"], 24);
  ASSERT_EQ(last["table"].size(), 16u);
  bool own = false;
  for (const Json& row : last["table"])
    own = own || row["conn"] == last["connection"]["number"];
  EXPECT_TRUE(own) << last["table"].dump();
}

TEST(PlaygroundApi, UploadedTraceRunsLikeTheFlowsThatMadeIt) {
  Playground pg(options(inboundOnly()));
  testing::TempDir dir;
  GenOptions go;
  go.explicit_flows.push_back(*parseFlowSpec("tcp 198.51.100.7:50000 -> 10.0.1.10:443"));
  ASSERT_EQ(writeTrace(go, dir.file("t.pcap"), nullptr).message(), "");
  Answer a =
      post(pg, "/api/run",
           {{"policy", inboundOnly()}, {"pcap", base64(testing::readBytes(dir.file("t.pcap")))}});
  ASSERT_EQ(a.status, 200) << a.body.dump();
  Answer b =
      post(pg, "/api/run",
           {{"policy", inboundOnly()}, {"flows", {"tcp 198.51.100.7:50000 -> 10.0.1.10:443"}}});
  ASSERT_EQ(a.body["packets"].size(), b.body["packets"].size());
  for (size_t i = 0; i < a.body["packets"].size(); ++i)
    EXPECT_EQ(a.body["packets"][i]["reason"], b.body["packets"][i]["reason"]);
  // A damaged trace: the reader's message, naming the upload rather than a temporary file.
  std::vector<uint8_t> cut = testing::readBytes(dir.file("t.pcap"));
  cut.resize(cut.size() - 7);
  Answer c = post(pg, "/api/run", {{"policy", inboundOnly()}, {"pcap", base64(cut)}});
  EXPECT_EQ(c.status, 400);
  EXPECT_NE(c.body["detail"].get<std::string>().find("uploaded trace"), std::string::npos)
      << c.body.dump();
}

// Removing the inbound rule mid-flow: a tracked connection carries on, an untracked flow stops.
TEST(PlaygroundApi, WhatIfCutsUntrackedFlowsAndSparesTrackedOnes) {
  auto withoutInboundRule = [](const std::string& policy) {
    Playground pg(options(policy));
    return post(pg, "/api/run",
                {{"policy", policy},
                 {"flows", {"tcp 198.51.100.7:50000 -> 10.0.1.10:443 data=3"}},
                 {"whatif", {{"rule", "rule:0"}, {"at", 0.005}}}});
  };
  {
    Answer a = withoutInboundRule(untracked());
    ASSERT_EQ(a.status, 200) << a.body.dump();
    const Json& w = a.body["whatif"];
    EXPECT_EQ(w["rule"], "web inbound rule 0");
    EXPECT_GT(w["changed"].get<int>(), 0);
    ASSERT_EQ(w["stop"].size(), 1u) << w.dump();
    EXPECT_EQ(w["stop"][0]["was"], "allow-untracked");
    EXPECT_EQ(w["stop"][0]["now"], "deny-sg");
    EXPECT_TRUE(w["stop"][0]["untracked"]);
    EXPECT_TRUE(w["survive"].empty());
    for (const Json& p : w["packets"]) {
      if (!p["after_change"]) {
        EXPECT_FALSE(p["changed"]) << p.dump();
      }
    }
  }
  {
    Answer a = withoutInboundRule(inboundOnly());
    ASSERT_EQ(a.status, 200) << a.body.dump();
    const Json& w = a.body["whatif"];
    EXPECT_EQ(w["changed"], 0) << w.dump();
    EXPECT_TRUE(w["stop"].empty());
    ASSERT_EQ(w["survive"].size(), 1u);
    EXPECT_EQ(w["survive"][0]["connection"], 1);
  }
}

TEST(PlaygroundApi, QuizRevealsTheEnginesAnswer) {
  Playground pg(options(inboundOnly()));
  Answer st = call(pg, "GET", "/api/state");
  std::map<std::string, std::string> want = {{"reply-without-outbound-rule", "allow-tracked"},
                                             {"acl-ephemeral-port-trap", "deny-acl"},
                                             {"icmp-error-is-related", "allow-related"},
                                             {"udp-reply-after-timeout", "deny-sg"}};
  for (const Json& q : st.body["quiz"]) {
    const std::string id = q["id"];
    SCOPED_TRACE(id);
    Answer a = post(pg, "/api/quiz/answer", {{"id", id}, {"guess", "allow"}});
    ASSERT_EQ(a.status, 200);
    ASSERT_TRUE(want.count(id));
    EXPECT_EQ(a.body["reason"], want[id]);
    EXPECT_EQ(a.body["correct"], a.body["verdict"] == "allow");
    // The answer is the explain API's for the question's own policy and flows.
    const auto compiled = compiledOf(q["policy"].get<std::string>());
    ASSERT_TRUE(compiled);
    ExplainOptions eo;
    eo.packets = {{q["packet"].get<uint64_t>(), q["packet"].get<uint64_t>()}};
    auto ex = explainFrames(compiled, framesOf(q["flows"].get<std::vector<std::string>>()), eo);
    ASSERT_EQ(ex.size(), 1u);
    EXPECT_EQ(a.body["reason"], dataplane::reasonCode(ex[0].reason));
    EXPECT_EQ(q["summary"], ex[0].summary);
  }
  EXPECT_EQ(want.size(), st.body["quiz"].size());
}

// ---- over HTTP ----

struct HttpAnswer {
  int status = 0;
  std::string head, body;
  bool closed = false;
};

// Sends `raw` to 127.0.0.1:port and reads until the server closes (bounded).
HttpAnswer httpExchange(uint16_t port, const std::string& raw, bool half_close = true) {
  HttpAnswer out;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return out;
  }
  size_t sent = 0;
  while (sent < raw.size()) {
    const ssize_t n = ::send(fd, raw.data() + sent, raw.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  if (half_close) ::shutdown(fd, SHUT_WR);
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) < 0) break;
    if (p.revents == 0) {
      if (std::chrono::steady_clock::now() > deadline) break;
      continue;
    }
    char buf[65536];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      out.closed = true;
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t end = got.find("\r\n\r\n");
  if (got.size() > 12 && end != std::string::npos) {
    out.status = std::stoi(got.substr(9, 3));
    out.head = got.substr(0, end);
    out.body = got.substr(end + 4);
  }
  return out;
}

std::string request(uint16_t port, const std::string& method, const std::string& path,
                    const std::string& body, const std::string& extra = "",
                    const std::string& type = "application/json") {
  std::string r = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                  "\r\nConnection: close\r\n" + extra;
  if (!body.empty() || method == "POST")
    r += "Content-Type: " + type + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}

class PlaygroundHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    PlaygroundOptions o = options(inboundOnly());
    o.limits.max_body_bytes = 64 * 1024;
    pg_ = std::make_unique<Playground>(o);
    PlaygroundServerOptions so;
    so.listen = "127.0.0.1:0";
    so.request_timeout_ms = 2000;
    server_ = std::make_unique<PlaygroundServer>(*pg_, so);
    ASSERT_EQ(server_->start().message(), "");
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }
  std::unique_ptr<Playground> pg_;
  std::unique_ptr<PlaygroundServer> server_;
  uint16_t port_ = 0;
};

TEST_F(PlaygroundHttp, ServesThePageAndTheApi) {
  HttpAnswer page = httpExchange(port_, request(port_, "GET", "/", ""));
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.head.find("text/html"), std::string::npos);
  EXPECT_NE(page.head.find("Content-Security-Policy: default-src 'none'"), std::string::npos);
  EXPECT_NE(page.body.find("statewall playground"), std::string::npos);
  // Nothing from the internet: no URL to any other host in the page.
  EXPECT_EQ(page.body.find("https://"), std::string::npos);
  EXPECT_EQ(page.body.find("src=\"http"), std::string::npos);

  HttpAnswer check = httpExchange(
      port_, request(port_, "POST", "/api/check", Json{{"policy", inboundOnly()}}.dump()));
  ASSERT_EQ(check.status, 200) << check.body;
  EXPECT_TRUE(Json::parse(check.body)["valid"]);

  HttpAnswer run =
      httpExchange(port_, request(port_, "POST", "/api/run",
                                  Json{{"policy", inboundOnly()},
                                       {"flows", {"tcp 198.51.100.7:50000 -> 10.0.1.10:443"}}}
                                      .dump()));
  ASSERT_EQ(run.status, 200) << run.body;
  EXPECT_EQ(Json::parse(run.body)["packets"][1]["reason"], "allow-tracked");
}

TEST_F(PlaygroundHttp, BadRequestsAreAnsweredAndTheServerCarriesOn) {
  // Broken JSON, a body above the limit (refused from its Content-Length, before it is sent),
  // not JSON at all, a malformed request line, a foreign Host (DNS rebinding), a cross-site
  // Origin, a form post.
  const std::string big = "POST /api/check HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
                          "\r\nContent-Type: application/json\r\nContent-Length: 900000000\r\n\r\n";
  struct Case {
    std::string raw;
    int status;
    std::string error;
  };
  const std::vector<Case> cases = {
      {request(port_, "POST", "/api/check", "{\"policy\": "), 400, "bad JSON"},
      {big, 413, "payload too large"},
      {"GARBAGE\r\n\r\n", 400, "bad request"},
      {"GET / HTTP/1.1\r\nHost: evil.example:" + std::to_string(port_) + "\r\n\r\n", 403,
       "wrong host"},
      {request(port_, "POST", "/api/check", Json{{"policy", "x"}}.dump(),
               "Origin: http://evil.example\r\n"),
       403, "cross-origin request"},
      {request(port_, "POST", "/api/check", "policy=x", "", "application/x-www-form-urlencoded"),
       415, "unsupported media type"},
      {"GET / HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
           "\r\nX: " + std::string(20000, 'a') + "\r\n\r\n",
       431, "header too large"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.raw.substr(0, 100));
    HttpAnswer a = httpExchange(port_, c.raw, /*half_close=*/c.status != 413);
    EXPECT_EQ(a.status, c.status) << a.head << "\n" << a.body;
    if (a.status == c.status) {
      EXPECT_EQ(Json::parse(a.body)["error"], c.error);
    }
  }
  // A client that sends half a request and waits is cut off at the deadline.
  HttpAnswer slow = httpExchange(port_, "GET / HTTP/1.1\r\nHost: 127.0.0.1", /*half_close=*/false);
  EXPECT_TRUE(slow.closed);
  // Still serving.
  EXPECT_EQ(httpExchange(port_, request(port_, "GET", "/api/state", "")).status, 200);
}

TEST(PlaygroundServerListen, RefusesNonLoopbackWithoutAllowRemote) {
  Playground pg(options(inboundOnly()));
  for (const std::string addr : {"0.0.0.0:0", "192.0.2.1:0", "[::]:0"}) {
    PlaygroundServerOptions so;
    so.listen = addr;
    PlaygroundServer s(pg, so);
    const base::Status started = s.start();
    EXPECT_FALSE(started.ok()) << addr;
    EXPECT_NE(started.message().find("--allow-remote"), std::string::npos) << started.message();
  }
  for (const std::string addr : {"127.0.0.1", "127.0.0.1:99999", "nohost:80"}) {
    PlaygroundServerOptions so;
    so.listen = addr;
    PlaygroundServer s(pg, so);
    const base::Status started = s.start();
    EXPECT_FALSE(started.ok()) << addr;
    EXPECT_NE(started.message().find(addr), std::string::npos) << started.message();
  }
  PlaygroundServerOptions so;
  so.listen = "0.0.0.0:0";
  so.allow_remote = true;
  PlaygroundServer s(pg, so);
  EXPECT_EQ(s.start().message(), "");
}

}  // namespace
}  // namespace statewall::sim
