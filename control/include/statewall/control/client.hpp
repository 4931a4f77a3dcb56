// A small synchronous HTTP/1.1 client for the control API, used by `statewall ctl` and the tests.
// One connection per request, over a Unix socket or TCP, with an overall timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "statewall/control/status.hpp"

namespace statewall::control {

struct ClientOptions {
  std::string unix_socket;  // used when url is empty
  std::string url;          // "http://HOST:PORT" (an optional path prefix is not supported)
  // Sent as "Authorization: Bearer TOKEN" when not empty; then the URL's host must be a loopback
  // address (or a name resolving to one): the token is never sent in clear text elsewhere.
  std::string token;
  std::chrono::milliseconds timeout{30'000};  // connect, write and read together
  size_t max_response_bytes = 256 * 1024 * 1024;
};

struct ClientResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};

class ControlClient {
 public:
  explicit ControlClient(ClientOptions options);

  // Sends one request and reads the response. Fails only when no HTTP response came back
  // (connection refused, timeout, malformed response); HTTP errors are responses.
  Status request(std::string_view method, std::string_view target, std::string_view body,
                 std::string_view content_type, ClientResponse* out) const;

  // GET of a held stream of lines (GET /v1/drops?follow=1): calls on_line with each line (without
  // its newline) as it arrives, until the server ends the stream (success) or on_line returns
  // false (success). The timeout covers the connection and the response header only; the stream
  // may then stay quiet for as long as it likes. A response other than 200 is returned in *out
  // (status and body) with success; out->status is 200 for a stream. Fails when the connection
  // breaks before the server ended the stream.
  Status stream(std::string_view target, const std::function<bool(std::string_view)>& on_line,
                ClientResponse* out) const;

 private:
  ClientOptions options_;
};

// Encodes everything but RFC 3986 unreserved characters, for query parameter values.
std::string percentEncode(std::string_view in);

// Splits "http://HOST:PORT" into host and port; IPv6 hosts in brackets.
Status parseHttpUrl(std::string_view url, std::string* host, uint16_t* port);

}  // namespace statewall::control
