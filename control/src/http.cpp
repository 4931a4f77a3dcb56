#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/write.hpp>
#include <cstdint>
#include <optional>
#include <sstream>

#include "http_internal.hpp"
#include "statewall/control/http.hpp"

namespace statewall::control {

bool bearerMatches(std::string_view authorization, std::string_view token) {
  constexpr std::string_view kScheme = "Bearer ";
  if (token.empty()) return false;
  // The scheme is public; only the token comparison must not leak where it differs.
  if (authorization.size() < kScheme.size() || authorization.substr(0, kScheme.size()) != kScheme)
    return false;
  std::string_view given = authorization.substr(kScheme.size());
  // Loop over the expected token's length whatever was given, so the time depends only on it.
  volatile unsigned char diff = given.size() == token.size() ? 0 : 1;
  for (size_t i = 0; i < token.size(); ++i) {
    unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff = diff | static_cast<unsigned char>(g ^ static_cast<unsigned char>(token[i]));
  }
  return diff == 0;
}

void applyLimits(RequestParser& parser, const HttpLimits& limits) {
  parser.header_limit(static_cast<std::uint32_t>(
      std::min<size_t>(limits.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
  parser.body_limit(limits.max_body_bytes);
}

HttpResponse makeError(http::status status, std::string_view error, std::string_view detail,
                       bool close) {
  HttpResponse res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::server, "statewall");
  res.body() = errorBody(error, detail);
  res.keep_alive(!close);
  res.prepare_payload();
  return res;
}

HttpResponse parseErrorResponse(const boost::beast::error_code& ec) {
  if (ec == http::error::body_limit)
    return makeError(http::status::payload_too_large, "payload too large",
                     "the request body exceeds the server's limit", true);
  if (ec == http::error::header_limit)
    return makeError(http::status::request_header_fields_too_large,
                     "request header fields too large",
                     "the request line and headers exceed the server's limit", true);
  return makeError(http::status::bad_request, "bad request",
                   "malformed HTTP request: " + ec.message(), true);
}

std::optional<HttpResponse> authenticate(const HttpRequest& req, std::string_view token,
                                         bool close) {
  if (token.empty()) return std::nullopt;
  auto auth = req.find(http::field::authorization);
  std::string_view value;
  if (auth != req.end()) value = std::string_view(auth->value().data(), auth->value().size());
  if (bearerMatches(value, token)) return std::nullopt;
  HttpResponse res =
      makeError(http::status::unauthorized, "unauthorized",
                auth == req.end() ? "missing Authorization: Bearer token" : "wrong token", close);
  res.set(http::field::www_authenticate, "Bearer");
  res.version(req.version());
  return res;
}

HttpResponse respond(ControlApi& api, const HttpRequest& req, std::string_view token,
                     std::optional<uint64_t>* drops_stream_after) {
  bool close = !req.keep_alive();
  if (auto denied = authenticate(req, token, close)) return std::move(*denied);
  ApiRequest areq;
  areq.method = std::string(req.method_string());
  areq.target = std::string(req.target());
  auto ct = req.find(http::field::content_type);
  if (ct != req.end()) areq.content_type = std::string(ct->value());
  areq.body = req.body();
  ApiResponse ares = api.handle(areq);
  if (ares.drops_stream_after) {
    if (drops_stream_after != nullptr) {
      *drops_stream_after = ares.drops_stream_after;
    } else {
      // No connection to hold: what there is now.
      uint64_t after = *ares.drops_stream_after;
      for (std::string part; !(part = api.dropLines(&after, SIZE_MAX)).empty();)
        ares.body += part;
    }
  }

  HttpResponse res{static_cast<http::status>(ares.status), req.version()};
  res.set(http::field::server, "statewall");
  res.set(http::field::content_type, ares.content_type);
  if (!ares.allow.empty()) res.set(http::field::allow, ares.allow);
  res.body() = std::move(ares.body);
  res.keep_alive(!close);
  res.prepare_payload();
  return res;
}

std::string handleRawRequest(ControlApi& api, std::string_view bytes, const HttpLimits& limits,
                             std::string_view token) {
  RequestParser parser;
  applyLimits(parser, limits);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t used = 0;
  while (used < bytes.size() && !parser.is_done()) {
    size_t n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    if (ec == http::error::need_more) {
      // The parser wants a bigger view of the input; everything is already in it.
      ec = {};
      if (n == 0) break;
    }
    if (ec) break;
    used += n;
    if (n == 0) break;
  }
  HttpResponse res;
  if (ec) {
    res = parseErrorResponse(ec);
  } else if (!parser.is_done()) {
    return std::string();
  } else {
    res = respond(api, parser.get(), token);
  }
  std::ostringstream out;
  out << res;
  return out.str();
}

}  // namespace statewall::control
