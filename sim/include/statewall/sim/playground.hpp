// The playground behind `statewall playground`: a local page to learn security groups by doing.
// Playground answers the page's JSON requests; PlaygroundServer serves it over HTTP (Boost.Beast)
// with the page's assets embedded (nothing is loaded from the internet).
//
// Every state the page shows comes from the engine's own run, never from the page's script:
// verdicts, reasons, the checks in order and the TCP states from the explain API (sim::Explainer,
// the same as `statewall explain`), the connection table after each packet from the engine of a
// sim::Replay (the same driver as `statewall replay`), the policy's diagnostics from the loader
// and compiler (the same as `statewall check`), scenarios from `statewall gen`'s flow vocabulary.
//
// Endpoints (JSON in and out; errors are 4xx with {"error": ..., "detail": ...}):
//   GET  /                  the page
//   GET  /api/state         the starting policy, the TCP state machine (states and transitions
//                           from the engine's table), the quiz questions (without answers), limits
//   POST /api/check         {policy}: {valid, diagnostics: [{severity, line, col, message}],
//                           rules: [{id, label, text, line}]} (rule ids name rules for what-if)
//   POST /api/run           {policy, flows: [gen specs] | pcap: base64, whatif?: {rule, at}}:
//                           {packets: [...], connections, whatif?} (see playground.cpp)
//   POST /api/quiz/answer   {id, guess: "allow"|"deny"}: the engine's answer and its explanation
//
// A Playground holds no state between requests; handle() may be called from several threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "statewall/base/status.hpp"

namespace statewall::sim {

// What one request may ask for, so that no request can take the server's memory or time.
struct PlaygroundLimits {
  size_t max_body_bytes = size_t{2} << 20;      // a request body (a pcap travels as base64)
  size_t max_policy_bytes = size_t{256} << 10;  // the policy text
  size_t max_pcap_bytes = size_t{1} << 20;      // an uploaded trace, decoded
  size_t max_flows = 32;                        // flow specs in one scenario
  size_t max_packets = 2000;                    // packets judged and shown per run
};

struct PlaygroundOptions {
  std::string policy_name = "policy.yaml";  // names the policy in diagnostics
  std::string policy_text;                  // the policy the page starts with
  PlaygroundLimits limits;
};

struct PlaygroundReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

class Playground {
 public:
  explicit Playground(PlaygroundOptions options);
  ~Playground();
  Playground(const Playground&) = delete;
  Playground& operator=(const Playground&) = delete;

  // Answers one request (`target`: path and optional query). Never throws for bad input: a body
  // that is not JSON, a broken policy, a bad flow spec or an oversized trace is a 4xx naming
  // where and what.
  PlaygroundReply handle(std::string_view method, std::string_view target,
                         std::string_view body) const;

  const PlaygroundOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct PlaygroundServerOptions {
  // HOST:PORT ("127.0.0.1:8080", "[::1]:0", "localhost:0"); port 0 picks a free port.
  std::string listen = "127.0.0.1:8080";
  // The playground has no authentication: a non-loopback address is refused unless this is set.
  bool allow_remote = false;
  // A request must arrive whole, and its answer leave, within this time; otherwise the
  // connection is closed.
  uint32_t request_timeout_ms = 15'000;
  size_t max_connections = 32;  // beyond this, 503 and close
  size_t max_header_bytes = 16 * 1024;
};

// Serves a Playground on one thread of its own. Lifecycle: construct, start() once, stop() (or
// destroy) once, from the owning thread. The playground must outlive the server.
class PlaygroundServer {
 public:
  PlaygroundServer(const Playground& playground, PlaygroundServerOptions options);
  ~PlaygroundServer();
  PlaygroundServer(const PlaygroundServer&) = delete;
  PlaygroundServer& operator=(const PlaygroundServer&) = delete;

  // Binds and starts serving; a failure (the address, and why) when it cannot.
  base::Status start();
  void stop();
  uint16_t port() const;    // the bound port, after start()
  std::string url() const;  // "http://127.0.0.1:PORT/"

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The page (HTML with its stylesheet and script inline).
std::string_view playgroundPage();

}  // namespace statewall::sim
