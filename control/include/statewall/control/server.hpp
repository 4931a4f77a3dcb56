// The control server: serves ControlApi over HTTP/1.1 on a Unix socket and, optionally, on a
// loopback TCP port that requires a bearer token. It runs on its own threads (an Asio
// io_context), never on a packet thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "statewall/control/api.hpp"
#include "statewall/control/http.hpp"
#include "statewall/control/status.hpp"

namespace statewall::control {

inline constexpr std::string_view kDefaultSocketPath = "/run/statewall/control.sock";

struct ServerOptions {
  // Path of the Unix socket, created with mode 0600. A stale socket file (nobody listening) is
  // replaced; any other existing file is an error. Empty = no Unix socket.
  std::string unix_socket;
  // "127.0.0.1:PORT", "[::1]:PORT" or "localhost:PORT"; loopback addresses only. Port 0 picks a
  // free port (see ControlServer::tcpPort()). Empty = no TCP listener.
  std::string tcp_listen;
  // File holding the bearer token that every TCP request must present; required with tcp_listen.
  // Surrounding whitespace is ignored; the token must be at least kMinTokenLength bytes.
  std::string token_file;
  // A load balancer's health check: on this TCP port of every IPv4 address, without a token,
  // every request is answered as GET /v1/health (200 healthy, 503 not). It reveals nothing else.
  // 0 = none.
  uint16_t health_port = 0;
  size_t max_health_connections = 16;
  HttpLimits limits;
  // Connection limits, one per listener, so that the clients of one never starve the other (the
  // Unix socket, root's way in, stays served however many TCP clients there are). Beyond its
  // limit a listener answers 503 and closes the connection.
  size_t max_unix_connections = 64;
  size_t max_tcp_connections = 64;
  // The request line and headers (and so, on TCP, the token) must arrive within this time of the
  // connection opening or of the previous response; otherwise the connection is closed. Keeps
  // clients that never send a request from holding connection slots.
  std::chrono::milliseconds header_timeout{5'000};
  // A request must arrive whole within this time of the connection opening or of the previous
  // response, and a response must be written within it; otherwise the connection is closed.
  std::chrono::milliseconds idle_timeout{30'000};
  unsigned threads = 1;  // io_context threads, named "sw-control"
  // Runs first on each server thread (the io threads and the "sw-control-load" thread that
  // compiles policies), e.g. to pin it to a CPU that no packet thread uses (a thread inherits its
  // creator's affinity: under DPDK that may be an lcore's). Optional.
  std::function<void()> thread_init;
  // Told what the operator should know but that does not stop the server: a token file that
  // other users may read, an exception caught on a server thread. Called from start() or from a
  // server thread. Default: written to stderr.
  std::function<void(const std::string&)> warn;
  ApiOptions api;
};

inline constexpr size_t kMinTokenLength = 16;
inline constexpr size_t kMaxTokenFileBytes = 4096;

// Reads a bearer token from a file (trimmed of surrounding whitespace) of at most
// kMaxTokenFileBytes. When the file is readable or writable by its group or others, sets
// *warning (if given) to a message saying so; the token is still returned.
Status readTokenFile(const std::string& path, std::string* token, std::string* warning = nullptr);

// The engine must outlive the server. Lifecycle: construct, start() once, stop() (or destroy) once.
// start() binds the listeners and starts the threads; stop() closes the listeners, ends the drop
// log streams (their last chunk, within a second) and every other connection, waits for a policy
// compilation in progress, joins the threads and removes the socket file. Both are for the owning
// thread only.
//
// Requests that compile a policy (see compilesPolicy() in api.hpp) run one at a time on a thread
// of their own, so that the io threads keep answering stats and connection listings meanwhile.
class ControlServer {
 public:
  ControlServer(dataplane::Engine& engine, ServerOptions options, HostHooks hooks = {});
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  Status start();
  void stop();

  // The host has appended to its drop log (HostHooks::drops): the held GET /v1/drops?follow=1
  // streams send what is new. Any thread; never blocks on a client (it posts to the server's
  // threads).
  void notifyDrops();

  // The bound TCP port (useful with port 0); 0 without a TCP listener or before start().
  uint16_t tcpPort() const;
  ControlApi& api();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace statewall::control
