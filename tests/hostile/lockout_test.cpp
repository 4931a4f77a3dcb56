// The control plane under a lock-out attempt (issue 14): clients that open TCP connections to the
// control port and never send a request (so never a token) must not keep the administrator out.
// Loopback only; a bounded number of connections; every wait is for a condition, bounded.
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/wait_for.hpp"
#include "control/control_test_util.hpp"
#include "statewall/control/server.hpp"

namespace statewall::control {
namespace {

using statewall::testing::waitFor;
using testing::EngineHarness;
using testing::httpRequest;
using testing::parseResponse;
using testing::RawConn;
using testing::TempDir;

constexpr std::string_view kToken = "lockout-test-token-0123456789";

// True when the peer has closed `fd` (or reset it) without sending anything more; never blocks.
bool closedByPeer(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  char buf[4096];
  ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

TEST(LockoutTest, IdleTcpClientsNeitherLockOutTheUnixSocketNorHoldTheirSlots) {
  TempDir dir;
  EngineHarness h;
  ServerOptions o;
  o.unix_socket = dir.file("control.sock");
  o.tcp_listen = "127.0.0.1:0";
  o.token_file = dir.write("token", std::string(kToken));
  o.header_timeout = std::chrono::milliseconds(1000);
  // The default connection limits (64 per listener) and the default single server thread.
  const size_t limit = o.max_tcp_connections;
  ControlServer server(h.engine(), o);
  ASSERT_TRUE(server.start().ok());

  // More idle TCP connections than the TCP listener's limit; nothing is ever sent on them. Those
  // beyond the limit are answered 503 and closed at once; the others wait for their header.
  const size_t kIdle = limit + 36;
  std::vector<RawConn> idle;
  for (size_t i = 0; i < kIdle; ++i) {
    idle.push_back(RawConn::tcp(server.tcpPort()));
    ASSERT_TRUE(idle.back().connected()) << i;
  }
  // Once 36 of them have been refused, the server has accepted all of them (every slot is held).
  std::vector<RawConn> refused;
  ASSERT_TRUE(waitFor(
      [&] {
        for (auto it = idle.begin(); it != idle.end();) {
          pollfd p{it->fd(), POLLIN, 0};
          if (::poll(&p, 1, 0) > 0) {
            refused.push_back(std::move(*it));
            it = idle.erase(it);
          } else {
            ++it;
          }
        }
        return refused.size() >= kIdle - limit;
      },
      std::chrono::seconds(60)))
      << refused.size() << " refused";
  for (RawConn& r : refused)
    EXPECT_EQ(parseResponse(r.readAll()).status, 503);

  // Root on the Unix socket is served every time while the TCP slots are all held.
  for (int i = 0; i < 20; ++i) {
    RawConn c = RawConn::unixSocket(o.unix_socket);
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.send(httpRequest("GET", "/v1/stats")));
    auto r = parseResponse(c.readAll());
    ASSERT_EQ(r.status, 200) << "try " << i << ": " << r.body;
    EXPECT_TRUE(r.json().contains("packets"));
  }

  // The idle connections are closed once the header deadline has passed (the safety bound is far
  // longer than the deadline, and far shorter than the 30 s idle timeout).
  EXPECT_TRUE(waitFor(
      [&] {
        for (auto it = idle.begin(); it != idle.end();)
          it = closedByPeer(it->fd()) ? idle.erase(it) : it + 1;
        return idle.empty();
      },
      std::chrono::seconds(20)))
      << idle.size() << " idle connections still open";

  // Their slots are free again: an authenticated TCP client is served.
  int status = 0;
  ASSERT_TRUE(waitFor([&] {
    RawConn c = RawConn::tcp(server.tcpPort());
    c.send(httpRequest("GET", "/v1/stats", {},
                       "Authorization: Bearer " + std::string(kToken) + "\r\n"));
    status = parseResponse(c.readAll()).status;
    return status == 200;
  })) << status;
}

}  // namespace
}  // namespace statewall::control
