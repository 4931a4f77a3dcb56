// ControlServer on a temporary Unix socket and a port-0 loopback TCP listener, driven with raw
// HTTP and with ControlClient: listeners, authentication, limits, slow and abusive clients, many
// concurrent clients, start-up errors.
#include <pthread.h>
#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "common/wait_for.hpp"
#include "control_test_util.hpp"
#include "statewall/control/client.hpp"
#include "statewall/control/server.hpp"

namespace statewall::control {
namespace {

using nlohmann::json;
using statewall::testing::waitFor;
using testing::EngineHarness;
using testing::httpRequest;
using testing::parseResponse;
using testing::RawConn;
using testing::TempDir;

constexpr std::string_view kToken = "test-token-0123456789abcdef";

class ServerTest : public ::testing::Test {
 protected:
  ServerOptions baseOptions() {
    ServerOptions o;
    o.unix_socket = dir_.file("control.sock");
    o.tcp_listen = "127.0.0.1:0";
    o.token_file = dir_.write("token", std::string(kToken) + "\n");
    ::chmod(o.token_file.c_str(), 0600);
    o.limits.max_body_bytes = 64 * 1024;
    o.limits.max_header_bytes = 4096;
    o.threads = 2;
    return o;
  }
  void start(ServerOptions o, HostHooks hooks = {}) {
    options_ = o;
    server_ = std::make_unique<ControlServer>(h_.engine(), std::move(o), std::move(hooks));
    Status s = server_->start();
    ASSERT_TRUE(s.ok()) << s.message();
  }

  testing::ParsedResponse overUnix(const std::string& req) {
    RawConn c = RawConn::unixSocket(options_.unix_socket);
    EXPECT_TRUE(c.connected());
    c.send(req);
    return parseResponse(c.readAll());
  }
  testing::ParsedResponse overTcp(const std::string& req) {
    RawConn c = RawConn::tcp(server_->tcpPort());
    EXPECT_TRUE(c.connected());
    c.send(req);
    return parseResponse(c.readAll());
  }
  std::string auth() const { return "Authorization: Bearer " + std::string(kToken) + "\r\n"; }

  // The server still answers a plain request on both listeners.
  void expectServing() {
    EXPECT_EQ(overUnix(httpRequest("GET", "/v1/stats")).status, 200);
    EXPECT_EQ(overTcp(httpRequest("GET", "/v1/stats", {}, auth())).status, 200);
  }

  TempDir dir_;
  EngineHarness h_;
  ServerOptions options_;
  std::unique_ptr<ControlServer> server_;
};

TEST_F(ServerTest, ServesOnAUnixSocketWithMode0600AndOnTcp) {
  start(baseOptions());
  struct stat st {};
  ASSERT_EQ(::lstat(options_.unix_socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(server_->tcpPort(), 0);

  auto r = overUnix(httpRequest("GET", "/v1/stats"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json()["policy_version"], h_.engine().policyVersion());
  auto t = overTcp(httpRequest("GET", "/v1/policy", {}, auth()));
  EXPECT_EQ(t.status, 200);
  EXPECT_EQ(t.json()["summary"]["groups"], 1);

  server_->stop();
  EXPECT_NE(::lstat(options_.unix_socket.c_str(), &st), 0) << "socket file left behind";
  EXPECT_FALSE(RawConn::unixSocket(options_.unix_socket).connected());
}

TEST_F(ServerTest, TcpRequiresTheBearerTokenUnixDoesNot) {
  start(baseOptions());
  auto missing = overTcp(httpRequest("GET", "/v1/stats"));
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(missing.json()["error"], "unauthorized");
  EXPECT_TRUE(missing.hasHeader("WWW-Authenticate: Bearer"));
  auto wrong =
      overTcp(httpRequest("GET", "/v1/stats", {}, "Authorization: Bearer not-the-token\r\n"));
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.json()["detail"], "wrong token");
  auto before = h_.engine().policy();
  EXPECT_EQ(overTcp(httpRequest("PUT", "/v1/policy", testing::kPolicyB)).status, 401);
  EXPECT_EQ(h_.engine().policy(), before);
  EXPECT_EQ(overTcp(httpRequest("PUT", "/v1/policy", testing::kPolicyB, auth())).status, 200);
  EXPECT_NE(h_.engine().policy(), before);
  EXPECT_EQ(overUnix(httpRequest("GET", "/v1/stats")).status, 200);
}

TEST_F(ServerTest, UnauthenticatedBodiesAreNotRead) {
  start(baseOptions());
  // The header announces a body the client never sends: the server answers 401 from the header
  // alone instead of waiting for (and buffering) the body.
  RawConn c = RawConn::tcp(server_->tcpPort());
  ASSERT_TRUE(c.send("PUT /v1/policy HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n"));
  auto r = parseResponse(c.readAll());
  EXPECT_EQ(r.status, 401);
  EXPECT_TRUE(r.hasHeader("Connection: close"));
}

TEST_F(ServerTest, ExpectContinueGetsAnInterimResponse) {
  start(baseOptions());
  for (bool tcp : {false, true}) {
    RawConn c = tcp ? RawConn::tcp(server_->tcpPort()) : RawConn::unixSocket(options_.unix_socket);
    std::string body(testing::kPolicyB);
    ASSERT_TRUE(c.send("POST /v1/policy/check HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
                       (tcp ? auth() : std::string()) + "Expect: 100-continue\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n"));
    std::string interim = c.readResponse();
    EXPECT_EQ(interim.rfind("HTTP/1.1 100 Continue\r\n", 0), 0u) << interim;
    ASSERT_TRUE(c.send(body));
    auto r = parseResponse(c.readAll());
    EXPECT_EQ(r.status, 200) << tcp;
    EXPECT_EQ(r.json()["valid"], true);
  }
}

TEST_F(ServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  start(baseOptions());
  RawConn c = RawConn::unixSocket(options_.unix_socket);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.send(httpRequest("GET", "/v1/stats", {}, {}, /*close=*/false)));
    auto r = parseResponse(c.readResponse());
    EXPECT_EQ(r.status, 200) << i;
    EXPECT_FALSE(r.hasHeader("Connection: close"));
  }
  // Pipelined: two requests in one write, two responses in order.
  ASSERT_TRUE(c.send(httpRequest("GET", "/nope", {}, {}, false) + httpRequest("GET", "/metrics")));
  std::string both = c.readAll();
  size_t second = both.find("HTTP/1.1", 1);
  ASSERT_NE(second, std::string::npos) << both;
  EXPECT_EQ(parseResponse(both.substr(0, second)).status, 404);
  EXPECT_EQ(parseResponse(both.substr(second)).status, 200);
}

TEST_F(ServerTest, MalformedRequestsGet400AndTheServerKeepsServing) {
  start(baseOptions());
  for (const char* bad :
       {"GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nNo colon here\r\n\r\n", "\x01\x02\x03\r\n\r\n",
        "PUT /v1/policy HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        "PUT /v1/policy HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"}) {
    auto r = overUnix(bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.json()["error"], "bad request");
    auto t = overTcp(bad);
    EXPECT_EQ(t.status, 400) << bad;
  }
  // A client that connects and leaves, or resets mid-request.
  { RawConn c = RawConn::unixSocket(options_.unix_socket); }
  {
    RawConn c = RawConn::tcp(server_->tcpPort());
    c.send("PUT /v1/policy HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc");
  }
  expectServing();
}

TEST_F(ServerTest, OversizedBodiesAndHeadersAreRefused) {
  start(baseOptions());
  // Announced too large: refused before the body is sent.
  {
    RawConn c = RawConn::unixSocket(options_.unix_socket);
    c.send("PUT /v1/policy HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n");
    auto r = parseResponse(c.readAll());
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(r.json()["error"], "payload too large");
  }
  // Sent too large (chunked, so the size is only known while reading).
  {
    RawConn c = RawConn::unixSocket(options_.unix_socket);
    std::string chunk(32 * 1024, 'y');
    std::string req = "PUT /v1/policy HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i)
      req += "8000\r\n" + chunk + "\r\n";
    req += "0\r\n\r\n";
    c.send(req);  // may fail part way once the server closed: that is fine
    auto r = parseResponse(c.readAll());
    EXPECT_EQ(r.status, 413);
  }
  auto h = overTcp(
      httpRequest("GET", "/v1/stats", {}, auth() + "X-Big: " + std::string(8000, 'h') + "\r\n"));
  EXPECT_EQ(h.status, 431);
  auto before = h_.engine().policy();
  expectServing();
  EXPECT_EQ(h_.engine().policy(), before);
}

TEST_F(ServerTest, SlowAndIdleClientsAreClosed) {
  ServerOptions o = baseOptions();
  o.idle_timeout = std::chrono::milliseconds(200);
  start(o);
  // Half a request, then nothing: the server closes without answering.
  RawConn slow = RawConn::unixSocket(options_.unix_socket);
  ASSERT_TRUE(slow.send("GET /v1/stats HTTP/1.1\r\nHost: x\r\n"));
  bool eof = false;
  EXPECT_EQ(slow.readAll(&eof), "");
  EXPECT_TRUE(eof);
  // A keep-alive connection left idle after a response is closed too.
  RawConn idle = RawConn::tcp(server_->tcpPort());
  ASSERT_TRUE(idle.send(httpRequest("GET", "/v1/stats", {}, auth(), /*close=*/false)));
  EXPECT_EQ(parseResponse(idle.readResponse()).status, 200);
  eof = false;
  EXPECT_EQ(idle.readAll(&eof), "");
  EXPECT_TRUE(eof);
  // A client trickling a byte at a time cannot hold the connection past the deadline either.
  RawConn trickle = RawConn::unixSocket(options_.unix_socket);
  std::string req = httpRequest("GET", "/v1/stats");
  bool closed = false;
  for (size_t i = 0; i < req.size() - 1 && !closed; ++i) {
    closed = !trickle.send(req.substr(i, 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  eof = false;
  std::string got = trickle.readAll(&eof);
  EXPECT_TRUE(eof || closed);
  EXPECT_EQ(got, "");
  expectServing();
}

TEST_F(ServerTest, ConnectionLimitAnswers503AndRecovers) {
  ServerOptions o = baseOptions();
  o.max_unix_connections = 3;
  start(o);
  std::vector<RawConn> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(RawConn::unixSocket(options_.unix_socket));
    // One full exchange on each, so the server has certainly accepted it.
    ASSERT_TRUE(held.back().send(httpRequest("GET", "/v1/stats", {}, {}, false)));
    ASSERT_EQ(parseResponse(held.back().readResponse()).status, 200);
  }
  RawConn extra = RawConn::unixSocket(options_.unix_socket);
  auto r = parseResponse(extra.readAll());
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.json()["error"], "too many connections");
  held.clear();
  // The slots come back once the held connections are gone (the server notices the closes
  // asynchronously, so retry a bounded number of times).
  int status = 0;
  for (int i = 0; i < 200 && status != 200; ++i) {
    status = overUnix(httpRequest("GET", "/v1/stats")).status;
    if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(status, 200);
}

TEST_F(ServerTest, HundredConcurrentClients) {
  ServerOptions o = baseOptions();
  o.max_unix_connections = 256;
  o.max_tcp_connections = 256;
  start(o);
  constexpr int kClients = 100;
  constexpr int kRequestsEach = 5;
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      ClientOptions co;
      if (i % 2 == 0) {
        co.unix_socket = options_.unix_socket;
      } else {
        co.url = "http://127.0.0.1:" + std::to_string(server_->tcpPort());
        co.token = std::string(kToken);
      }
      ControlClient client(co);
      for (int k = 0; k < kRequestsEach; ++k) {
        ClientResponse res;
        const char* target = (k % 3 == 0)   ? "/v1/stats"
                             : (k % 3 == 1) ? "/metrics"
                                            : "/v1/connections";
        Status s = client.request("GET", target, "", "", &res);
        if (s.ok() && res.status == 200)
          ok.fetch_add(1);
        else
          failed.fetch_add(1);
      }
    });
  }
  // Meanwhile this thread keeps pushing packets through the engine (its worker belongs to this
  // thread): the control threads never hold it up.
  uint64_t packets = 0;
  while (ok.load() + failed.load() < kClients * kRequestsEach && packets < 10'000'000) {
    h_.udp("10.9.0.7", static_cast<uint16_t>(1024 + packets % 1000), "10.0.1.10", 53);
    ++packets;
  }
  for (auto& t : threads)
    t.join();
  EXPECT_GT(packets, 0u);
  EXPECT_EQ(ok.load(), kClients * kRequestsEach);
  EXPECT_EQ(failed.load(), 0);
  expectServing();
}

TEST_F(ServerTest, ClientReportsTransportErrors) {
  start(baseOptions());
  ClientResponse res;
  ClientOptions missing;
  missing.unix_socket = dir_.file("no-such.sock");
  Status s = ControlClient(missing).request("GET", "/v1/stats", "", "", &res);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("no-such.sock"), std::string::npos) << s.message();

  ClientOptions bad_url;
  bad_url.url = "https://127.0.0.1:1";
  EXPECT_FALSE(ControlClient(bad_url).request("GET", "/v1/stats", "", "", &res).ok());

  // A socket that accepts connections into its backlog but never answers: the client gives up.
  TempDir d;
  std::string path = d.file("mute.sock");
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  ClientOptions mute;
  mute.unix_socket = path;
  mute.timeout = std::chrono::milliseconds(100);
  s = ControlClient(mute).request("GET", "/v1/stats", "", "", &res);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("no response"), std::string::npos) << s.message();
  ::close(fd);

  // HTTP errors are responses, not transport errors.
  ClientOptions good;
  good.url = "http://127.0.0.1:" + std::to_string(server_->tcpPort());
  s = ControlClient(good).request("GET", "/v1/stats", "", "", &res);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(res.status, 401);
  good.token = std::string(kToken);
  ASSERT_TRUE(ControlClient(good)
                  .request("PUT", "/v1/timeouts", R"({"udp": 40})", "application/json", &res)
                  .ok());
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "application/json");
  EXPECT_EQ(json::parse(res.body)["timeouts"]["udp"], 40);
}

TEST(ParseHttpUrlTest, AcceptsHostAndPortOnly) {
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(parseHttpUrl("http://127.0.0.1:8080", &host, &port).ok());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 8080);
  ASSERT_TRUE(parseHttpUrl("http://[::1]:9/", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 9);
  for (const char* bad :
       {"127.0.0.1:80", "http://127.0.0.1", "http://127.0.0.1:0", "http://127.0.0.1:99999",
        "http://:80", "http://h:80/api", "http://[::1]"})
    EXPECT_FALSE(parseHttpUrl(bad, &host, &port).ok()) << bad;
}

TEST_F(ServerTest, StartUpErrors) {
  auto startWith = [&](ServerOptions o) {
    ControlServer s(h_.engine(), std::move(o));
    return s.start();
  };
  ServerOptions none;
  EXPECT_FALSE(startWith(none).ok());

  ServerOptions wide = baseOptions();
  wide.unix_socket.clear();
  wide.tcp_listen = "0.0.0.0:0";
  Status s = startWith(wide);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("loopback"), std::string::npos) << s.message();

  for (const char* bad : {"127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", "nohost:1"}) {
    ServerOptions o = baseOptions();
    o.unix_socket.clear();
    o.tcp_listen = bad;
    EXPECT_FALSE(startWith(o).ok()) << bad;
  }

  ServerOptions no_token = baseOptions();
  no_token.unix_socket.clear();
  no_token.token_file.clear();
  EXPECT_FALSE(startWith(no_token).ok());
  no_token.token_file = dir_.file("missing-token");
  EXPECT_FALSE(startWith(no_token).ok());
  no_token.token_file = dir_.write("short", "abc\n");
  s = startWith(no_token);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("at least"), std::string::npos) << s.message();
  no_token.token_file = dir_.write("spaces", "0123456789 abcdefghij\n");
  EXPECT_FALSE(startWith(no_token).ok());

  // An existing regular file is never replaced.
  ServerOptions file = baseOptions();
  file.tcp_listen.clear();
  file.unix_socket = dir_.write("not-a-socket", "precious");
  s = startWith(file);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not a socket"), std::string::npos) << s.message();
  struct stat st {};
  ASSERT_EQ(::stat(file.unix_socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));

  ServerOptions too_long = baseOptions();
  too_long.tcp_listen.clear();
  too_long.unix_socket = dir_.file(std::string(200, 'l'));
  EXPECT_FALSE(startWith(too_long).ok());
}

TEST_F(ServerTest, StaleSocketIsReplacedButALiveOneIsNot) {
  ServerOptions o = baseOptions();
  o.tcp_listen.clear();
  // A socket file nobody listens on, as a crashed server leaves behind.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, o.unix_socket.c_str(), sizeof(sa.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  ::close(fd);
  start(o);
  EXPECT_EQ(overUnix(httpRequest("GET", "/v1/stats")).status, 200);

  ControlServer second(h_.engine(), o);
  Status s = second.start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("another server"), std::string::npos) << s.message();
  // The first server's socket survived the attempt.
  EXPECT_EQ(overUnix(httpRequest("GET", "/v1/stats")).status, 200);
}

TEST_F(ServerTest, ThreadInitRunsOnEveryServerThread) {
  ServerOptions o = baseOptions();
  o.threads = 3;
  std::atomic<int> inits{0}, load_inits{0};
  o.thread_init = [&inits, &load_inits] {
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof(name));
    if (std::string_view(name) == "sw-control") inits.fetch_add(1);
    if (std::string_view(name) == "sw-control-load") load_inits.fetch_add(1);
  };
  start(o);
  // Every thread runs thread_init before serving; a request handled proves the loop runs.
  EXPECT_EQ(overUnix(httpRequest("GET", "/v1/stats")).status, 200);
  server_->stop();  // joins the threads: all of them have run thread_init by now
  EXPECT_EQ(inits.load(), 3);
  // The thread that compiles policies too (statewalld pins it off the forwarding CPUs).
  EXPECT_EQ(load_inits.load(), 1);
}

// An exception on a server thread (here from the host's thread_init) is reported, and the server
// keeps serving instead of taking the process down.
TEST_F(ServerTest, AnExceptionOnAServerThreadDoesNotStopIt) {
  ServerOptions o = baseOptions();
  o.threads = 1;
  std::mutex mu;
  std::vector<std::string> warnings;
  o.warn = [&](const std::string& w) {
    std::lock_guard lock(mu);
    warnings.push_back(w);
  };
  o.thread_init = [] { throw std::runtime_error("no CPU for you"); };
  start(o);
  expectServing();
  EXPECT_EQ(overUnix(httpRequest("POST", "/v1/policy/check", testing::kPolicyB)).status, 200);
  server_->stop();
  std::lock_guard lock(mu);
  ASSERT_FALSE(warnings.empty());
  EXPECT_NE(warnings[0].find("no CPU for you"), std::string::npos) << warnings[0];
}

// A client that sends a whole request, body included, before reading the answer gets the 401:
// the server reads and discards the body (up to the body limit) and closes gracefully instead of
// resetting the connection under the client's feet.
TEST_F(ServerTest, UnauthenticatedBodyGets401AndAGracefulClose) {
  ServerOptions o = baseOptions();
  o.limits.max_body_bytes = 16 * 1024 * 1024;
  start(o);
  // More than the socket buffers hold: the client is still sending when the answer comes.
  const std::string request = httpRequest("PUT", "/v1/policy", std::string(12 * 1024 * 1024, 'x'));
  RawConn c = RawConn::tcp(server_->tcpPort());
  ASSERT_TRUE(c.connected());
  std::atomic<bool> sent{false};
  int send_errno = 0;
  std::thread writer([&] {
    sent = c.send(request);
    send_errno = errno;
  });
  std::string got;
  ssize_t last = 0;
  int last_errno = 0;
  char buf[65536];
  while ((last = ::recv(c.fd(), buf, sizeof buf, 0)) > 0)
    got.append(buf, static_cast<size_t>(last));
  last_errno = errno;
  writer.join();
  EXPECT_TRUE(sent.load()) << "sending the body failed: " << std::strerror(send_errno);
  auto r = parseResponse(got);
  EXPECT_EQ(r.status, 401) << got;
  EXPECT_TRUE(r.hasHeader("Connection: close"));
  EXPECT_EQ(last, 0) << "the read ended with " << std::strerror(last_errno);
  expectServing();
}

// A policy of a few MB; rule i of group g allows TCP port 1000+i from 10.(g).(i).0/24.
std::string generatedPolicy(int groups, int rules) {
  std::string y = "version: 1\ngroups:\n";
  for (int g = 0; g < groups; ++g) {
    y += "  g" + std::to_string(g) + ":\n    inbound:\n";
    for (int i = 0; i < rules; ++i)
      y += "      - {proto: tcp, ports: " + std::to_string(1000 + i) + ", from: 10." +
           std::to_string(g % 250) + "." + std::to_string(i % 250) + ".0/24, description: rule " +
           std::to_string(i) + " of group " + std::to_string(g) + "}\n";
  }
  y += "interfaces:\n";
  for (int g = 0; g < groups; ++g)
    y += "  i" + std::to_string(g) + ": {addresses: [10.200." + std::to_string(g / 250) + "." +
         std::to_string(g % 250 + 1) + "], groups: [g" + std::to_string(g) + "]}\n";
  return y;
}

// One server thread (the default): a policy load, held inside its publication, does not keep
// stats or connection listings from being answered; they even say that the load is running.
TEST_F(ServerTest, StatsAndConnectionsAreAnsweredWhileAPolicyLoads) {
  ServerOptions o = baseOptions();
  o.threads = 1;
  o.limits.max_body_bytes = 16 * 1024 * 1024;
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  HostHooks hooks;
  hooks.publish_guard = [&](const std::function<void()>& publish) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return release; });
    publish();
  };
  start(o, hooks);
  const auto before = h_.engine().policyVersion();
  const std::string big = generatedPolicy(100, 50);
  ClientResponse load;
  Status load_status;
  std::thread loader([&] {
    ClientOptions co;
    co.unix_socket = options_.unix_socket;
    co.timeout = std::chrono::minutes(10);
    load_status = ControlClient(co).request("PUT", "/v1/policy?name=big.yaml", big,
                                            "application/yaml", &load);
  });
  auto loadsRunning = [](const testing::ParsedResponse& r) {
    json j = r.json();
    return r.status == 200 && j.contains("policy_loads") ? j["policy_loads"].value("running", -1)
                                                         : -1;
  };
  // Wait until the server says the load is running: it cannot finish while its publication is
  // held, and the answer saying so was itself given while the load ran.
  const bool running =
      waitFor([&] { return loadsRunning(overUnix(httpRequest("GET", "/v1/stats"))) == 1; },
              std::chrono::seconds(60));
  EXPECT_TRUE(running) << "no GET /v1/stats answer while the load ran";
  if (running) {
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(overUnix(httpRequest("GET", "/v1/connections")).status, 200);
      EXPECT_EQ(loadsRunning(overTcp(httpRequest("GET", "/v1/stats", {}, auth()))), 1);
      EXPECT_EQ(loadsRunning(overUnix(httpRequest("GET", "/v1/stats"))), 1);
    }
    EXPECT_EQ(h_.engine().policyVersion(), before);
  }
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  loader.join();
  ASSERT_TRUE(load_status.ok()) << load_status.message();
  EXPECT_EQ(load.status, 200) << load.body.substr(0, 500);
  EXPECT_GE(h_.engine().policy()->ruleCount(), 100u * 50u);
  auto after = overUnix(httpRequest("GET", "/v1/stats"));
  EXPECT_EQ(loadsRunning(after), 0);
}

// The token file is read with a size cap: an endless file is an error that states the limit.
// A token file that others may read is accepted with a warning.
TEST_F(ServerTest, TokenFileSizeCapAndPermissionWarning) {
  ServerOptions o = baseOptions();
  o.token_file = "/dev/zero";
  ControlServer endless(h_.engine(), o);
  Status s = endless.start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/dev/zero"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("4096 bytes"), std::string::npos) << s.message();

  std::vector<std::string> warnings;
  o = baseOptions();
  o.warn = [&](const std::string& w) { warnings.push_back(w); };
  ASSERT_EQ(::chmod(o.token_file.c_str(), 0600), 0);
  {
    ControlServer quiet(h_.engine(), o);
    ASSERT_TRUE(quiet.start().ok());
  }
  EXPECT_TRUE(warnings.empty()) << warnings[0];
  ASSERT_EQ(::chmod(o.token_file.c_str(), 0644), 0);
  start(o);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find(o.token_file), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("readable by other users"), std::string::npos) << warnings[0];
  expectServing();
}

// The client sends a token over plain HTTP to loopback addresses only.
TEST(ClientTest, RefusesToSendTheTokenInClearTextToAnotherHost) {
  ClientOptions co;
  co.url = "http://192.0.2.1:9180";  // TEST-NET-1: never reached, the client refuses first
  co.token = std::string(kToken);
  co.timeout = std::chrono::milliseconds(200);
  ClientResponse res;
  Status s = ControlClient(co).request("GET", "/v1/stats", "", "", &res);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not a loopback address"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("192.0.2.1"), std::string::npos) << s.message();
}

TEST_F(ServerTest, TokenFileWhitespaceIsTrimmed) {
  ServerOptions o = baseOptions();
  o.token_file = dir_.write("token2", "\n  " + std::string(kToken) + " \r\n");
  start(o);
  EXPECT_EQ(overTcp(httpRequest("GET", "/v1/stats", {}, auth())).status, 200);
  std::string t;
  ASSERT_TRUE(readTokenFile(o.token_file, &t).ok());
  EXPECT_EQ(t, kToken);
}

}  // namespace
}  // namespace statewall::control

namespace statewall::control {
namespace {

// GET /v1/drops?follow=1 is a held stream: JSON lines pushed when the host says it has new drops
// (notifyDrops), other requests answered meanwhile, a client that never reads costing nothing to
// the others, a client that fell behind told what it skipped, and a clean end (last chunk) when
// the server stops. (Failed before: follow was an unknown parameter, 400.)
TEST_F(ServerTest, DropsFollowIsAHeldStreamThatEndsCleanly) {
  std::mutex log_mu;
  std::vector<DropEvent> log;
  auto add = [&](uint64_t seq) {
    DropEvent e;
    e.seq = seq;
    e.ip = true;
    e.proto = 6;
    e.sport = 40000;
    e.dport = static_cast<uint16_t>(seq);
    e.port = "outside";
    e.reason = static_cast<uint8_t>(dataplane::Reason::kDenySg);
    e.why = "test";
    std::lock_guard lock(log_mu);
    log.push_back(e);
  };
  HostHooks hooks;
  hooks.drops = [&](uint64_t after, size_t limit) {
    DropsPage p;
    std::lock_guard lock(log_mu);
    for (const DropEvent& e : log)
      if (e.seq > after && p.drops.size() < limit) p.drops.push_back(e);
    return p;
  };
  add(1);
  start(baseOptions(), hooks);

  // A client that asks for the stream and never reads a byte of it.
  RawConn stuck = RawConn::unixSocket(options_.unix_socket);
  ASSERT_TRUE(stuck.connected());
  stuck.send(httpRequest("GET", "/v1/drops?follow=1"));

  std::mutex lines_mu;
  std::vector<json> lines;
  ClientResponse res;
  Status result = Status::failure("not ended");
  std::thread follower([&] {
    ClientOptions co;
    co.unix_socket = options_.unix_socket;
    result = ControlClient(co).stream(
        "/v1/drops?follow=1",
        [&](std::string_view line) {
          std::lock_guard lock(lines_mu);
          lines.push_back(json::parse(line));
          return true;
        },
        &res);
  });
  auto count = [&] {
    std::lock_guard lock(lines_mu);
    return lines.size();
  };
  ASSERT_TRUE(waitFor([&] { return count() == 1; }, std::chrono::seconds(30)));
  {
    std::lock_guard lock(lines_mu);
    EXPECT_EQ(lines[0]["seq"], 1) << lines[0].dump();
    EXPECT_EQ(lines[0]["dport"], 1);
    EXPECT_EQ(lines[0]["reason"], "deny-sg");
  }
  // The stream holds its connection; everything else is answered meanwhile.
  expectServing();
  EXPECT_EQ(overUnix(httpRequest("GET", "/v1/drops?after=0")).status, 200);

  add(2);
  add(3);
  server_->notifyDrops();
  ASSERT_TRUE(waitFor([&] { return count() == 3; }, std::chrono::seconds(30)));
  // Events 4..9 pushed out of the host's log before this client read them.
  {
    std::lock_guard lock(log_mu);
    log.clear();
  }
  add(10);
  server_->notifyDrops();
  ASSERT_TRUE(waitFor([&] { return count() == 5; }, std::chrono::seconds(30)));
  {
    std::lock_guard lock(lines_mu);
    EXPECT_EQ(lines[1]["seq"], 2);
    EXPECT_EQ(lines[2]["seq"], 3);
    EXPECT_EQ(lines[3]["skipped"], 6) << lines[3].dump();
    EXPECT_EQ(lines[4]["seq"], 10);
  }
  // Malformed follow values are refused like any parameter.
  EXPECT_EQ(overUnix(httpRequest("GET", "/v1/drops?follow=maybe")).status, 400);

  server_->stop();
  follower.join();
  EXPECT_TRUE(result.ok()) << result.message();  // the last chunk came: not a cut connection
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "application/x-ndjson");
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_TRUE(lines[5].contains("end")) << lines[5].dump();
}

}  // namespace
}  // namespace statewall::control
