// HTTP/1.1 framing of the control API, without sockets: what ControlServer does with the bytes of
// one request. Exposed for tests and the fuzzer.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "statewall/control/api.hpp"

namespace statewall::control {

struct HttpLimits {
  size_t max_header_bytes = 16 * 1024;       // request line and headers; larger -> 431
  size_t max_body_bytes = 16 * 1024 * 1024;  // larger -> 413 (checked against Content-Length first)
};

// True when `authorization` is exactly "Bearer <token>". Compares in time that depends only on the
// length of `token`, not on where the presented value differs. An empty token never matches.
bool bearerMatches(std::string_view authorization, std::string_view token);

// Parses one HTTP/1.1 request from `bytes` with `limits`, checks the bearer token when `token` is
// not empty (401 otherwise), routes it through `api` and returns the serialized response. Bytes
// after the first request are ignored. Returns an empty string when `bytes` end before the
// request does (the server would wait for more).
std::string handleRawRequest(ControlApi& api, std::string_view bytes, const HttpLimits& limits,
                             std::string_view token);

}  // namespace statewall::control
