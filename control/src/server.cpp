#include "statewall/control/server.hpp"

#include <pthread.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "http_internal.hpp"
#include "query.hpp"
#include "statewall/dataplane/engine.hpp"

namespace statewall::control {
namespace {

namespace asio = boost::asio;
using boost::beast::error_code;
using Tcp = asio::ip::tcp;
using Local = asio::local::stream_protocol;

// Parses "HOST:PORT" where HOST is a loopback address, "localhost", or "[::1]".
Status parseListen(std::string_view text, Tcp::endpoint* out) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos)
    return Status::failure(fmt::format("control listen address {}: expected HOST:PORT", text));
  std::string host(text.substr(0, colon));
  auto port = parseUnsigned(text.substr(colon + 1), 0, 65535);
  if (!port) return Status::failure(fmt::format("control listen address {}: bad port", text));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  error_code ec;
  asio::ip::address addr = asio::ip::make_address(host, ec);
  if (ec) return Status::failure(fmt::format("control listen address {}: bad host", text));
  if (!addr.is_loopback())
    return Status::failure(fmt::format(
        "control listen address {}: only loopback addresses are allowed (the API has no TLS)",
        text));
  *out = Tcp::endpoint(addr, static_cast<uint16_t>(*port));
  return Status::success();
}

// Shared by all sessions of one server. Outlives them (see ControlServer::Impl member order).
struct ServerState {
  ControlApi* api = nullptr;
  HttpLimits limits;
  std::chrono::milliseconds idle_timeout{};
  size_t max_connections = 0;
  std::string token;  // for TCP sessions
  std::atomic<size_t> active{0};
};

// One HTTP connection. All of its handlers run on its strand, so it needs no lock.
template <class Socket>
class Session : public std::enable_shared_from_this<Session<Socket>> {
 public:
  Session(Socket socket, ServerState& state, bool require_token)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        state_(state),
        require_token_(require_token) {
    state_.active.fetch_add(1, std::memory_order_relaxed);
  }
  ~Session() { state_.active.fetch_sub(1, std::memory_order_relaxed); }

  void start(bool over_limit) {
    if (over_limit) {
      res_ = makeError(http::status::service_unavailable, "too many connections",
                       "the control server is at its connection limit; retry later", true);
      write();
      return;
    }
    read();
  }

 private:
  // Bounds the next read or write. A deadline that fires closes the socket, which aborts the
  // operation and ends the session; the generation check ignores a deadline whose operation
  // finished while its completion was already queued.
  void arm() {
    uint64_t gen = ++timer_gen_;
    timer_.expires_after(state_.idle_timeout);
    timer_.async_wait([self = this->shared_from_this(), gen](error_code ec) {
      if (!ec && gen == self->timer_gen_) {
        error_code ignored;
        self->socket_.close(ignored);
      }
    });
  }

  void disarm() {
    ++timer_gen_;
    timer_.cancel();
  }

  void read() {
    parser_.emplace();
    applyLimits(*parser_, state_.limits);
    arm();  // one deadline for the whole request, header and body
    http::async_read_header(
        socket_, buffer_, *parser_,
        [self = this->shared_from_this()](error_code ec, size_t) { self->onHeader(ec); });
  }

  // Decisions that need only the header: refuse an unauthenticated TCP request before reading
  // (and buffering) its body, and answer "Expect: 100-continue".
  void onHeader(error_code ec) {
    if (ec || parser_->is_done()) {
      onRead(ec);
      return;
    }
    const HttpRequest& req = parser_->get();
    if (require_token_) {
      if (auto denied = authenticate(req, state_.token, /*close=*/true)) {
        disarm();
        res_ = std::move(*denied);
        write();
        return;
      }
    }
    auto expect = req.find(http::field::expect);
    if (expect != req.end() && boost::beast::iequals(expect->value(), "100-continue")) {
      continue_.emplace(http::status::continue_, req.version());
      http::async_write(socket_, *continue_,
                        [self = this->shared_from_this()](error_code wec, size_t) {
                          self->continue_.reset();
                          if (wec) {
                            self->onRead(wec);
                            return;
                          }
                          self->readBody();
                        });
      return;
    }
    readBody();
  }

  void readBody() {
    http::async_read(
        socket_, buffer_, *parser_,
        [self = this->shared_from_this()](error_code ec, size_t) { self->onRead(ec); });
  }

  void onRead(error_code ec) {
    disarm();
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::bad_descriptor) {
      shutdown();
      return;
    }
    if (ec) {
      // The stream cannot be resynchronised after a framing error: answer and close.
      res_ = parseErrorResponse(ec);
      write();
      return;
    }
    res_ = respond(*state_.api, parser_->get(), require_token_ ? state_.token : std::string_view());
    parser_.reset();
    write();
  }

  void write() {
    arm();
    http::async_write(socket_, res_, [self = this->shared_from_this()](error_code ec, size_t) {
      self->onWrite(ec);
    });
  }

  void onWrite(error_code ec) {
    disarm();
    if (ec || !res_.keep_alive()) {
      shutdown();
      return;
    }
    read();
  }

  void shutdown() {
    error_code ignored;
    socket_.shutdown(Socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  Socket socket_;
  asio::steady_timer timer_;
  ServerState& state_;
  bool require_token_;
  uint64_t timer_gen_ = 0;
  boost::beast::flat_buffer buffer_;
  std::optional<RequestParser> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  HttpResponse res_;
};

template <class Protocol>
class Listener : public std::enable_shared_from_this<Listener<Protocol>> {
 public:
  Listener(asio::io_context& io, ServerState& state, bool require_token)
      : io_(io), acceptor_(asio::make_strand(io)), state_(state), require_token_(require_token) {}

  // Opens and binds; `after_bind` runs before listen() so that nobody can connect until it
  // returned (the Unix socket gets its mode there).
  Status open(const typename Protocol::endpoint& ep, const std::function<Status()>& after_bind) {
    error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if constexpr (std::is_same_v<Protocol, Tcp>) {
      if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    }
    if (!ec) acceptor_.bind(ep, ec);
    if (ec) return Status::failure(ec.message());
    if (after_bind) {
      Status s = after_bind();
      if (!s.ok()) return s;
    }
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Status::failure(ec.message());
    return Status::success();
  }

  void accept() {
    acceptor_.async_accept(
        asio::make_strand(io_),
        [self = this->shared_from_this()](error_code ec, typename Protocol::socket socket) {
          self->onAccept(ec, std::move(socket));
        });
  }

  void close() {
    asio::post(acceptor_.get_executor(), [self = this->shared_from_this()] {
      error_code ignored;
      self->acceptor_.close(ignored);
    });
  }

  typename Protocol::acceptor& acceptor() { return acceptor_; }

 private:
  void onAccept(error_code ec, typename Protocol::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      bool over = state_.active.load(std::memory_order_relaxed) >= state_.max_connections;
      std::make_shared<Session<typename Protocol::socket>>(std::move(socket), state_,
                                                           require_token_)
          ->start(over);
    }
    // Transient accept errors (EMFILE, ECONNABORTED) must not stop the listener.
    accept();
  }

  asio::io_context& io_;
  typename Protocol::acceptor acceptor_;
  ServerState& state_;
  bool require_token_;
};

}  // namespace

struct ControlServer::Impl {
  // Declaration order is destruction order reversed: the io_context (and with it every pending
  // handler holding a session) goes before the state those sessions point to.
  ServerOptions options;
  ControlApi api;
  ServerState state;
  bool started = false;
  bool stopped = false;
  bool created_socket = false;
  uint16_t tcp_port = 0;
  asio::io_context io;
  std::optional<asio::steady_timer> sampler;
  std::shared_ptr<Listener<Local>> unix_listener;
  std::shared_ptr<Listener<Tcp>> tcp_listener;
  std::vector<std::thread> threads;

  Impl(dataplane::Engine& engine, ServerOptions opts, HostHooks hooks)
      : options(std::move(opts)), api(engine, std::move(hooks), options.api) {
    options.api.initial_sources.clear();
  }

  void sample() {
    api.sampleRates(std::chrono::steady_clock::now());
    sampler->expires_after(std::chrono::seconds(1));
    sampler->async_wait([this](error_code ec) {
      if (!ec) sample();
    });
  }

  Status openUnix() {
    const std::string& path = options.unix_socket;
    if (path.size() >= sizeof(sockaddr_un::sun_path))
      return Status::failure(fmt::format("{}: socket path too long", path));
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode))
        return Status::failure(fmt::format("{}: exists and is not a socket", path));
      // Replace the socket only when nobody answers on it (a stale file from a crash).
      Local::socket probe(io);
      error_code ec;
      probe.connect(Local::endpoint(path), ec);
      if (!ec) return Status::failure(fmt::format("{}: another server is listening there", path));
      if (::unlink(path.c_str()) != 0)
        return Status::failure(
            fmt::format("{}: cannot remove stale socket: {}", path, std::strerror(errno)));
    }
    unix_listener = std::make_shared<Listener<Local>>(io, state, /*require_token=*/false);
    Status s = unix_listener->open(Local::endpoint(path), [&]() {
      created_socket = true;
      // The socket file's mode decides who may connect: owner only. Set before listen().
      if (::chmod(path.c_str(), 0600) != 0)
        return Status::failure(fmt::format("cannot set mode 0600: {}", std::strerror(errno)));
      return Status::success();
    });
    if (!s.ok()) return Status::failure(fmt::format("{}: {}", path, s.message()));
    return Status::success();
  }

  Status openTcp() {
    Tcp::endpoint ep;
    Status s = parseListen(options.tcp_listen, &ep);
    if (!s.ok()) return s;
    if (options.token_file.empty())
      return Status::failure("a TCP control listener needs a token file (--control-token-file)");
    s = readTokenFile(options.token_file, &state.token);
    if (!s.ok()) return s;
    tcp_listener = std::make_shared<Listener<Tcp>>(io, state, /*require_token=*/true);
    s = tcp_listener->open(ep, nullptr);
    if (!s.ok())
      return Status::failure(fmt::format("control listen {}: {}", options.tcp_listen, s.message()));
    error_code ec;
    tcp_port = tcp_listener->acceptor().local_endpoint(ec).port();
    return Status::success();
  }
};

ControlServer::ControlServer(dataplane::Engine& engine, ServerOptions options, HostHooks hooks)
    : impl_(std::make_unique<Impl>(engine, std::move(options), std::move(hooks))) {}

ControlServer::~ControlServer() {
  stop();
}

Status ControlServer::start() {
  Impl& m = *impl_;
  if (m.started) return Status::failure("control server already started");
  m.started = true;
  if (m.options.unix_socket.empty() && m.options.tcp_listen.empty())
    return Status::failure("control server: no Unix socket and no TCP listener configured");
  m.state.api = &m.api;
  m.state.limits = m.options.limits;
  m.state.idle_timeout = m.options.idle_timeout;
  m.state.max_connections = std::max<size_t>(1, m.options.max_connections);
  Status s;
  if (!m.options.unix_socket.empty()) s = m.openUnix();
  if (s.ok() && !m.options.tcp_listen.empty()) s = m.openTcp();
  if (!s.ok()) {
    stop();
    return s;
  }
  if (m.unix_listener) m.unix_listener->accept();
  if (m.tcp_listener) m.tcp_listener->accept();
  m.sampler.emplace(m.io);
  m.sample();
  unsigned n = std::max(1u, m.options.threads);
  for (unsigned i = 0; i < n; ++i) {
    m.threads.emplace_back([&m] {
      pthread_setname_np(pthread_self(), "sw-control");
      if (m.options.thread_init) m.options.thread_init();
      m.io.run();
    });
  }
  return Status::success();
}

void ControlServer::stop() {
  Impl& m = *impl_;
  if (m.stopped) return;
  m.stopped = true;
  if (m.unix_listener) m.unix_listener->close();
  if (m.tcp_listener) m.tcp_listener->close();
  // Stop the loop; pending sessions are destroyed with the io_context's handlers.
  m.io.stop();
  for (auto& t : m.threads)
    t.join();
  m.threads.clear();
  if (m.created_socket) ::unlink(m.options.unix_socket.c_str());
}

uint16_t ControlServer::tcpPort() const {
  return impl_->tcp_port;
}

ControlApi& ControlServer::api() {
  return impl_->api;
}

}  // namespace statewall::control
