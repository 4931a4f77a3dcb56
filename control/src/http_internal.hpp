// Beast glue shared by the server, the client and handleRawRequest(). Private to control/.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "statewall/control/api.hpp"
#include "statewall/control/http.hpp"

namespace statewall::control {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;
using RequestParser = http::request_parser<http::string_body>;

// A parser with the server's header and body limits applied.
void applyLimits(RequestParser& parser, const HttpLimits& limits);

// The 401 response for a request (its header is enough) that lacks the bearer token; nullopt when
// `token` is empty or matches. `close` sets Connection: close.
std::optional<HttpResponse> authenticate(const HttpRequest& req, std::string_view token,
                                         bool close);

// Authenticates (when `token` is not empty), routes and builds the response to a complete
// request. Keep-alive follows the request. A drop log stream (GET /v1/drops?follow=1) sets
// *drops_stream_after to its cursor and returns the header to send before the lines (the caller
// holds the connection); without drops_stream_after the body has the lines available now.
HttpResponse respond(ControlApi& api, const HttpRequest& req, std::string_view token,
                     std::optional<uint64_t>* drops_stream_after = nullptr);

// The response to a request that could not be read: 413 (body limit), 431 (header limit),
// or 400. The connection must be closed after it (Connection: close is set).
HttpResponse parseErrorResponse(const boost::beast::error_code& ec);

// A JSON error response; `close` sets Connection: close.
HttpResponse makeError(http::status status, std::string_view error, std::string_view detail,
                       bool close);

}  // namespace statewall::control
