// PlaygroundServer: HTTP/1.1 over Boost.Beast on one thread of its own (see playground.hpp).
//
// What bounds a request: its header (max_header_bytes, else 431) and body (the playground's
// max_body_bytes, checked against Content-Length before the body is read, else 413), a deadline
// for the whole exchange (request_timeout_ms, then the connection is closed), a connection limit
// (503 beyond it), and the Playground's own limits on what one request may ask the engine to do.
//
// The page has no authentication, so a browser must not be turned against it by another site:
// the Host header must name the address the server listens on (DNS rebinding), a request with an
// Origin must come from that same origin, and a POST must be application/json (which a cross-site
// form cannot send without a CORS preflight, which this server never grants).
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>

#include "statewall/rules/vocab.hpp"
#include "statewall/sim/playground.hpp"

namespace statewall::sim {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Tcp = asio::ip::tcp;
using beast::error_code;
using Response = http::response<http::string_body>;

Response jsonError(http::status status, std::string_view error, std::string_view detail) {
  Response res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.body() = nlohmann::json{{"error", error}, {"detail", detail}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  res.keep_alive(false);
  res.prepare_payload();
  return res;
}

// "HOST:PORT", "[V6]:PORT", "localhost:PORT" -> endpoint; a failure naming the address.
base::Expected<Tcp::endpoint> parseListen(const std::string& text, bool allow_remote) {
  using base::Status;
  const auto hp = rules::parseHostPort(text);
  if (!hp) return Status::failure(fmt::format("--listen {}: {}", text, hp.message()));
  const std::string& host = hp->host;
  error_code ec;
  const asio::ip::address addr = asio::ip::make_address(host, ec);
  if (ec) {
    return Status::failure(fmt::format("--listen {}: '{}' is not an IP address", text, host));
  }
  if (!addr.is_loopback() && !allow_remote) {
    return Status::failure(fmt::format(
        "--listen {}: not a loopback address; the playground has no authentication, so anyone "
        "who can reach it could use it (add --allow-remote to serve it there anyway)",
        text));
  }
  return Tcp::endpoint(addr, hp->port);
}

struct Shared {
  const Playground* playground = nullptr;
  PlaygroundServerOptions opt;
  uint16_t port = 0;
  std::atomic<size_t> active{0};
};

// Whether the Host header names this server (or any host, with allow_remote).
bool hostAllowed(const Shared& s, std::string_view host) {
  if (s.opt.allow_remote) return true;
  const std::string p = ":" + std::to_string(s.port);
  for (const char* name : {"127.0.0.1", "localhost", "[::1]"}) {
    if (host == std::string(name) + p) return true;
  }
  return false;
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Tcp::socket socket, Shared& shared) : stream_(std::move(socket)), shared_(shared) {
    shared_.active.fetch_add(1, std::memory_order_relaxed);
  }
  ~Session() { shared_.active.fetch_sub(1, std::memory_order_relaxed); }

  void start(bool over_limit) {
    if (over_limit) {
      res_ = jsonError(http::status::service_unavailable, "too many connections",
                       "the playground is at its connection limit; retry later");
      write(false);
      return;
    }
    read();
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(shared_.opt.max_header_bytes));
    parser_->body_limit(shared_.playground->options().limits.max_body_bytes);
    stream_.expires_after(std::chrono::milliseconds(shared_.opt.request_timeout_ms));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, size_t) { self->onRead(ec); });
  }

  void onRead(error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      close();
      return;
    }
    if (ec == http::error::body_limit) {
      res_ = jsonError(http::status::payload_too_large, "payload too large",
                       fmt::format("the request body may be at most {} bytes",
                                   shared_.playground->options().limits.max_body_bytes));
      write(false);
      return;
    }
    if (ec == http::error::header_limit) {
      res_ = jsonError(http::status::request_header_fields_too_large, "header too large",
                       "the request line and headers exceed the server's limit");
      write(false);
      return;
    }
    if (ec) {
      res_ = jsonError(http::status::bad_request, "bad request",
                       "malformed HTTP request: " + ec.message());
      write(false);
      return;
    }
    respond(parser_->get());
  }

  void respond(const http::request<http::string_body>& req) {
    const bool keep = req.keep_alive();
    const std::string_view host(req[http::field::host].data(), req[http::field::host].size());
    if (!hostAllowed(shared_, host)) {
      res_ = jsonError(http::status::forbidden, "wrong host",
                       fmt::format("Host '{}' does not name this server (use {})", host,
                                   fmt::format("http://127.0.0.1:{}/", shared_.port)));
      write(false);
      return;
    }
    auto origin = req.find(http::field::origin);
    if (origin != req.end() && origin->value() != fmt::format("http://{}", host)) {
      res_ = jsonError(http::status::forbidden, "cross-origin request",
                       "the playground answers only its own page");
      write(false);
      return;
    }
    if (req.method() == http::verb::post) {
      const auto ct = req[http::field::content_type];
      if (!beast::iequals(ct.substr(0, 16), "application/json")) {
        res_ = jsonError(http::status::unsupported_media_type, "unsupported media type",
                         "POST bodies must be Content-Type: application/json");
        write(false);
        return;
      }
    }
    const std::string_view method(req.method_string().data(), req.method_string().size());
    const std::string_view target(req.target().data(), req.target().size());
    PlaygroundReply r = shared_.playground->handle(method, target, req.body());
    res_ = Response{static_cast<http::status>(r.status), req.version()};
    res_.set(http::field::content_type, r.content_type);
    res_.set(http::field::cache_control, "no-store");
    // The page loads nothing from anywhere: say so to the browser too.
    res_.set("Content-Security-Policy",
             "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
             "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'");
    res_.set("X-Content-Type-Options", "nosniff");
    res_.body() = std::move(r.body);
    res_.keep_alive(keep);
    res_.prepare_payload();
    write(keep);
  }

  void write(bool keep) {
    stream_.expires_after(std::chrono::milliseconds(shared_.opt.request_timeout_ms));
    http::async_write(stream_, res_, [self = shared_from_this(), keep](error_code ec, size_t) {
      if (ec || !keep) {
        self->close();
        return;
      }
      self->read();
    });
  }

  void close() {
    error_code ignored;
    stream_.socket().shutdown(Tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  Shared& shared_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response res_;
};

}  // namespace

struct PlaygroundServer::Impl {
  Shared shared;
  asio::io_context ioc{1};
  std::optional<Tcp::acceptor> acceptor;
  std::thread thread;
  bool started = false;

  void accept() {
    acceptor->async_accept([this](error_code ec, Tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
      if (!ec) {
        const bool over =
            shared.active.load(std::memory_order_relaxed) >= shared.opt.max_connections;
        std::make_shared<Session>(std::move(socket), shared)->start(over);
      }
      accept();
    });
  }
};

PlaygroundServer::PlaygroundServer(const Playground& playground, PlaygroundServerOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->shared.playground = &playground;
  impl_->shared.opt = std::move(options);
}

PlaygroundServer::~PlaygroundServer() {
  stop();
}

base::Status PlaygroundServer::start() {
  const auto listen = parseListen(impl_->shared.opt.listen, impl_->shared.opt.allow_remote);
  if (!listen) return listen.status();
  const Tcp::endpoint& ep = *listen;
  error_code ec;
  impl_->acceptor.emplace(impl_->ioc);
  impl_->acceptor->open(ep.protocol(), ec);
  if (!ec) impl_->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor->bind(ep, ec);
  if (!ec) impl_->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return base::Status::failure(
        fmt::format("--listen {}: {}", impl_->shared.opt.listen, ec.message()));
  impl_->shared.port = impl_->acceptor->local_endpoint().port();
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
  impl_->started = true;
  return base::Status::success();
}

void PlaygroundServer::stop() {
  if (!impl_->started) return;
  impl_->started = false;
  asio::post(impl_->ioc, [this] {
    error_code ignored;
    impl_->acceptor->close(ignored);
    impl_->ioc.stop();
  });
  impl_->thread.join();
}

uint16_t PlaygroundServer::port() const {
  return impl_->shared.port;
}

std::string PlaygroundServer::url() const {
  const asio::ip::address a =
      impl_->acceptor ? impl_->acceptor->local_endpoint().address() : asio::ip::address();
  const std::string host = a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
  return fmt::format("http://{}:{}/", host == "0.0.0.0" ? "127.0.0.1" : host, impl_->shared.port);
}

}  // namespace statewall::sim
