#include "statewall/control/client.hpp"

#include <sys/un.h>

#include <cctype>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "http_internal.hpp"
#include "query.hpp"

namespace statewall::control {
namespace {

namespace asio = boost::asio;
using boost::beast::error_code;
using Tcp = asio::ip::tcp;
using Local = asio::local::stream_protocol;

constexpr size_t kMaxUnixPath = sizeof(sockaddr_un::sun_path);

// Connects, writes `req` and reads the response, all on the calling thread; the io_context runs
// for at most options.timeout. `connect(handler)` starts the asynchronous connect.
template <class Socket, class Connect>
Status exchange(asio::io_context& io, Socket& socket, HttpRequest& req,
                const ClientOptions& options, std::string_view peer, Connect connect,
                ClientResponse* out) {
  http::response_parser<http::string_body> parser;
  parser.body_limit(options.max_response_bytes);
  boost::beast::flat_buffer buffer;
  error_code result;
  std::string_view stage = "connect";

  auto on_read = [&](error_code ec, size_t) { result = ec; };
  auto on_write = [&](error_code ec, size_t) {
    if (ec) {
      result = ec;
      return;
    }
    stage = "read response";
    http::async_read(socket, buffer, parser, on_read);
  };
  connect([&](error_code ec, auto&&...) {
    if (ec) {
      result = ec;
      return;
    }
    stage = "send request";
    http::async_write(socket, req, on_write);
  });
  io.run_for(options.timeout);
  if (!io.stopped()) {
    // Timed out: abort whatever is pending and let the handlers finish.
    error_code ignored;
    socket.close(ignored);
    io.run();
    return Status::failure(
        fmt::format("{}: no response within {} ms ({})", peer, options.timeout.count(), stage));
  }
  if (result) return Status::failure(fmt::format("{}: {}: {}", peer, stage, result.message()));
  const auto& res = parser.get();
  out->status = static_cast<int>(res.result_int());
  auto ct = res.find(http::field::content_type);
  out->content_type = ct == res.end() ? std::string() : std::string(ct->value());
  out->body = res.body();
  return Status::success();
}

// Longest line of a stream the client buffers while waiting for its newline.
constexpr size_t kMaxStreamLine = 1 << 20;

// Like exchange(), for a held stream of lines: the header within options.timeout, then chunks
// for as long as the server sends them (no timeout), each complete line handed to on_line.
template <class Socket, class Connect>
Status streamExchange(asio::io_context& io, Socket& socket, HttpRequest& req,
                      const ClientOptions& options, std::string_view peer, Connect connect,
                      const std::function<bool(std::string_view)>& on_line, ClientResponse* out) {
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);  // a stream has no end; error bodies are small
  boost::beast::flat_buffer buffer;
  error_code result;
  std::string_view stage = "connect";
  connect([&](error_code ec, auto&&...) {
    if (ec) {
      result = ec;
      return;
    }
    stage = "send request";
    http::async_write(socket, req, [&](error_code wec, size_t) {
      if (wec) {
        result = wec;
        return;
      }
      stage = "read response";
      http::async_read_header(socket, buffer, parser,
                              [&](error_code rec, size_t) { result = rec; });
    });
  });
  io.run_for(options.timeout);
  if (!io.stopped()) {
    error_code ignored;
    socket.close(ignored);
    io.run();
    return Status::failure(
        fmt::format("{}: no response within {} ms ({})", peer, options.timeout.count(), stage));
  }
  if (result) return Status::failure(fmt::format("{}: {}: {}", peer, stage, result.message()));
  out->status = static_cast<int>(parser.get().result_int());
  auto ct = parser.get().find(http::field::content_type);
  out->content_type = ct == parser.get().end() ? std::string() : std::string(ct->value());
  if (out->status != 200 || !parser.get().chunked()) {
    // An error (or an answer that is not a stream): read it whole, as request() would.
    parser.body_limit(options.max_response_bytes);
    io.restart();
    http::async_read(socket, buffer, parser, [&](error_code ec, size_t) { result = ec; });
    io.run_for(options.timeout);
    if (!io.stopped() || result)
      return Status::failure(fmt::format("{}: read response: {}", peer,
                                         result ? result.message() : std::string("timed out")));
    out->body = parser.get().body();
    return Status::success();
  }
  std::string pending;
  bool stopped = false;
  bool too_long = false;
  auto on_chunk = [&](std::uint64_t, boost::beast::string_view body, error_code& ec) -> size_t {
    pending.append(body.data(), body.size());
    size_t nl = 0;
    while (!stopped && (nl = pending.find('\n')) != std::string::npos) {
      if (!on_line(std::string_view(pending).substr(0, nl))) stopped = true;
      pending.erase(0, nl + 1);
    }
    too_long = pending.size() > kMaxStreamLine;
    if (stopped || too_long) ec = asio::error::operation_aborted;
    return body.size();
  };
  parser.on_chunk_body(on_chunk);
  while (!parser.is_done()) {
    io.restart();
    http::async_read_some(socket, buffer, parser, [&](error_code ec, size_t) { result = ec; });
    io.run();
    if (stopped) return Status::success();
    if (too_long)
      return Status::failure(
          fmt::format("{}: a streamed line longer than {} bytes", peer, kMaxStreamLine));
    if (result)
      return Status::failure(fmt::format("{}: the stream was cut before the server ended it: {}",
                                         peer, result.message()));
  }
  return Status::success();
}

// A request with this client's fixed headers (one request per connection).
HttpRequest makeRequest(std::string_view method, std::string_view target,
                        const std::string& token) {
  HttpRequest req;
  req.method_string(boost::beast::string_view(method.data(), method.size()));
  req.target(boost::beast::string_view(target.data(), target.size()));
  req.version(11);
  req.keep_alive(false);
  req.set(http::field::user_agent, "statewall-ctl");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  return req;
}

// Opens the transport `options` name (Unix socket or TCP URL), completes `req`'s Host header and
// calls ex(io, socket, peer, connect) to run the exchange over it.
template <class Exchange>
Status withTransport(const ClientOptions& options, HttpRequest& req, Exchange ex) {
  asio::io_context io;
  if (options.url.empty()) {
    if (options.unix_socket.empty()) return Status::failure("no control socket given");
    if (options.unix_socket.size() >= kMaxUnixPath)
      return Status::failure(fmt::format("{}: socket path too long", options.unix_socket));
    req.set(http::field::host, "localhost");
    req.prepare_payload();
    Local::socket socket(io);
    Local::endpoint ep(options.unix_socket);
    return ex(io, socket, std::string_view(options.unix_socket),
              [&](auto handler) { socket.async_connect(ep, handler); });
  }
  std::string host;
  uint16_t port = 0;
  Status s = parseHttpUrl(options.url, &host, &port);
  if (!s.ok()) return s;
  req.set(http::field::host, fmt::format("{}:{}", host, port));
  req.prepare_payload();
  Tcp::resolver resolver(io);
  error_code ec;
  auto resolved = resolver.resolve(host, std::to_string(port), ec);
  if (ec) return Status::failure(fmt::format("{}: cannot resolve: {}", host, ec.message()));
  // There is no TLS: a token travels in clear text, so it is sent to loopback addresses only.
  std::vector<Tcp::endpoint> endpoints;
  std::string refused;
  for (const auto& r : resolved) {
    if (options.token.empty() || r.endpoint().address().is_loopback()) {
      endpoints.push_back(r.endpoint());
    } else if (refused.empty()) {
      refused = r.endpoint().address().to_string();
    }
  }
  if (endpoints.empty())
    return Status::failure(fmt::format(
        "{}: refusing to send the bearer token in clear text to {}: not a loopback address (the "
        "control API has no TLS; reach a remote engine through an SSH tunnel to its loopback "
        "port)",
        options.url, refused));
  Tcp::socket socket(io);
  return ex(io, socket, std::string_view(options.url),
            [&](auto handler) { asio::async_connect(socket, endpoints, handler); });
}

}  // namespace

std::string percentEncode(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : in) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

Status parseHttpUrl(std::string_view url, std::string* host, uint16_t* port) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme)
    return Status::failure(fmt::format("{}: only http://HOST:PORT URLs are supported", url));
  std::string_view rest = url.substr(kScheme.size());
  while (!rest.empty() && rest.back() == '/')
    rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos)
    return Status::failure(fmt::format("{}: a path prefix is not supported", url));
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos ||
      (rest.find(']') != std::string_view::npos && colon < rest.find(']')))
    return Status::failure(fmt::format("{}: expected http://HOST:PORT", url));
  std::string_view h = rest.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  auto p = parseUnsigned(rest.substr(colon + 1), 1, 65535);
  if (h.empty() || !p) return Status::failure(fmt::format("{}: expected http://HOST:PORT", url));
  *host = std::string(h);
  *port = static_cast<uint16_t>(*p);
  return Status::success();
}

ControlClient::ControlClient(ClientOptions options) : options_(std::move(options)) {}

Status ControlClient::request(std::string_view method, std::string_view target,
                              std::string_view body, std::string_view content_type,
                              ClientResponse* out) const {
  HttpRequest req = makeRequest(method, target, options_.token);
  if (!content_type.empty())
    req.set(http::field::content_type,
            boost::beast::string_view(content_type.data(), content_type.size()));
  req.body() = std::string(body);

  return withTransport(
      options_, req, [&](asio::io_context& io, auto& socket, std::string_view peer, auto connect) {
        return exchange(io, socket, req, options_, peer, connect, out);
      });
}

Status ControlClient::stream(std::string_view target,
                             const std::function<bool(std::string_view)>& on_line,
                             ClientResponse* out) const {
  HttpRequest req = makeRequest("GET", target, options_.token);
  return withTransport(
      options_, req, [&](asio::io_context& io, auto& socket, std::string_view peer, auto connect) {
        return streamExchange(io, socket, req, options_, peer, connect, on_line, out);
      });
}

}  // namespace statewall::control
