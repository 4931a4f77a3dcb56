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
  HttpLimits limits;
  size_t max_connections = 64;  // beyond it new connections get 503 and are closed
  // A request must arrive whole within this time after the previous response (or the connection
  // opening), and a response must be written within it; otherwise the connection is closed.
  std::chrono::milliseconds idle_timeout{30'000};
  unsigned threads = 1;  // io_context threads, named "sw-control"
  // Runs first on each server thread, e.g. to pin it to a CPU that no packet thread uses (a thread
  // inherits its creator's affinity: under DPDK that may be an lcore's). Optional.
  std::function<void()> thread_init;
  ApiOptions api;
};

inline constexpr size_t kMinTokenLength = 16;

// Reads a bearer token from a file (trimmed of surrounding whitespace).
Status readTokenFile(const std::string& path, std::string* token);

// The engine must outlive the server. Lifecycle: construct, start() once, stop() (or destroy) once.
// start() binds the listeners and starts the threads; stop() closes the listeners and every
// connection, joins the threads and removes the socket file. Both are for the owning thread only.
class ControlServer {
 public:
  ControlServer(dataplane::Engine& engine, ServerOptions options, HostHooks hooks = {});
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  Status start();
  void stop();

  // The bound TCP port (useful with port 0); 0 without a TCP listener or before start().
  uint16_t tcpPort() const;
  ControlApi& api();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace statewall::control
