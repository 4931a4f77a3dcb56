// Helpers shared by the control-plane tests: policies, an engine with a worker, temporary
// directories and raw HTTP over Unix and TCP sockets (plain POSIX, so the tests do not share code
// with the server they check).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/compile_policy.hpp"
#include "common/temp_dir.hpp"
#include "statewall/dataplane/engine.hpp"
#include "statewall/dataplane/packet_builder.hpp"
#include "statewall/rules/compiled.hpp"
#include "statewall/rules/loader.hpp"

namespace statewall::control::testing {

// web-1 (10.0.1.10) takes HTTPS from 10.9.0.0/16 (tracked: the peer is not 0.0.0.0/0) and DNS
// from anywhere (untracked: 0.0.0.0/0 with the default allow-all outbound rule).
inline constexpr std::string_view kPolicyA = R"(version: 1
groups:
  web:
    inbound:
      - {proto: tcp, ports: 443, from: 10.9.0.0/16, description: HTTPS from the clients}
      - {proto: udp, ports: 53, from: 0.0.0.0/0, description: DNS}
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
)";

// The same interface; HTTPS and DNS removed, 8443 added.
inline constexpr std::string_view kPolicyB = R"(version: 1
groups:
  web:
    inbound:
      - {proto: tcp, ports: 8443, from: 10.9.0.0/16}
interfaces:
  web-1: {addresses: [10.0.1.10], groups: [web]}
)";

// An unknown key at line 4, column 7.
inline constexpr std::string_view kPolicyBad = R"(version: 1
groups:
  web:
    inbnd:
      - {proto: tcp, ports: 443, from: 0.0.0.0/0}
)";

// Warnings are allowed here (tests/common/compile_policy.hpp); errors are test failures.
inline rules::CompiledPolicyPtr compileYaml(std::string_view text, std::string name = "test.yaml") {
  return statewall::testing::compileYaml(text, std::move(name),
                                         statewall::testing::Warnings::kAllow);
}

inline dataplane::EngineConfig smallEngineConfig() {
  dataplane::EngineConfig c;
  c.table_capacity = 4096;
  c.fragment_capacity = 64;
  return c;
}

// An engine with one worker, fed one packet at a time on the calling thread.
class EngineHarness {
 public:
  explicit EngineHarness(std::string_view policy_text = kPolicyA)
      : engine_(std::make_unique<dataplane::Engine>(smallEngineConfig(), compileYaml(policy_text))),
        worker_(engine_->makeWorker()) {}

  dataplane::Engine& engine() { return *engine_; }

  dataplane::Verdict send(const dataplane::Bytes& frame) {
    now_ns_ += 1'000'000;  // 1 ms per packet: the injected clock
    dataplane::PacketRef ref{frame.data(), static_cast<uint32_t>(frame.size())};
    dataplane::Verdict v;
    engine_->process(*worker_, &ref, 1, now_ns_, &v);
    return v;
  }
  uint64_t nowNs() const { return now_ns_; }

  // A full TCP handshake from client:sport to server:dport; returns the verdicts.
  std::vector<dataplane::Verdict> handshake(std::string_view client, uint16_t sport,
                                            std::string_view server, uint16_t dport) {
    using namespace dataplane;
    IpAddr c = ipAddr(client), s = ipAddr(server);
    std::vector<Verdict> out;
    out.push_back(send(buildTcp(
        {.src = c, .dst = s, .sport = sport, .dport = dport, .flags = kSyn, .seq = 1000})));
    out.push_back(send(buildTcp({.src = s,
                                 .dst = c,
                                 .sport = dport,
                                 .dport = sport,
                                 .flags = kSyn | kAck,
                                 .seq = 5000,
                                 .ack = 1001})));
    out.push_back(send(buildTcp({.src = c,
                                 .dst = s,
                                 .sport = sport,
                                 .dport = dport,
                                 .flags = kAck,
                                 .seq = 1001,
                                 .ack = 5001})));
    return out;
  }

  dataplane::Verdict udp(std::string_view src, uint16_t sport, std::string_view dst,
                         uint16_t dport) {
    using namespace dataplane;
    return send(buildUdp({.src = ipAddr(src),
                          .dst = ipAddr(dst),
                          .sport = sport,
                          .dport = dport,
                          .payload_len = 20}));
  }

 private:
  std::unique_ptr<dataplane::Engine> engine_;
  std::unique_ptr<dataplane::Engine::Worker> worker_;
  uint64_t now_ns_ = 1'000'000'000;
};

// The tests' one temporary directory (common/temp_dir.hpp).
using ::statewall::testing::TempDir;

// A connected blocking socket with a receive timeout (so that a broken server fails the test
// instead of hanging it; not a timing assertion).
class RawConn {
 public:
  static RawConn unixSocket(const std::string& path) {
    RawConn c;
    c.fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
    if (::connect(c.fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) c.close();
    c.setTimeout();
    return c;
  }
  static RawConn tcp(uint16_t port) {
    RawConn c;
    c.fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(c.fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) c.close();
    c.setTimeout();
    return c;
  }

  RawConn() = default;
  RawConn(RawConn&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  RawConn& operator=(RawConn&& o) noexcept {
    close();
    fd_ = o.fd_;
    o.fd_ = -1;
    return *this;
  }
  ~RawConn() { close(); }

  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Reads until the peer closes (or the safety timeout). Sets *eof when the peer closed.
  std::string readAll(bool* eof = nullptr) {
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n == 0) {
        if (eof) *eof = true;
        return out;
      }
      if (n < 0) {
        if (eof) *eof = errno == ECONNRESET;
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
  }
  // Reads one response whose body length is given by Content-Length.
  std::string readResponse() {
    std::string out;
    char buf[65536];
    for (;;) {
      size_t end = out.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t cl = out.find("Content-Length: ");
        size_t len = cl == std::string::npos || cl > end ? 0 : std::stoul(out.substr(cl + 16));
        if (out.size() >= end + 4 + len) return out;
      }
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return out;
      out.append(buf, static_cast<size_t>(n));
    }
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  void setTimeout() {
    if (fd_ < 0) return;
    timeval tv{30, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  int fd_ = -1;
};

struct ParsedResponse {
  int status = 0;
  std::string head;
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
  bool hasHeader(std::string_view line) const { return head.find(line) != std::string::npos; }
};

inline ParsedResponse parseResponse(const std::string& raw) {
  ParsedResponse r;
  size_t end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || end == std::string::npos) return r;
  r.status = std::atoi(raw.c_str() + 9);
  r.head = raw.substr(0, end);
  r.body = raw.substr(end + 4);
  return r;
}

inline std::string httpRequest(std::string_view method, std::string_view target,
                               std::string_view body = {}, std::string_view extra_headers = {},
                               bool close = true) {
  std::string r = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: x\r\n";
  r += extra_headers;
  if (close) r += "Connection: close\r\n";
  if (!body.empty() || method == "PUT" || method == "POST")
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += "\r\n";
  r += body;
  return r;
}

}  // namespace statewall::control::testing
