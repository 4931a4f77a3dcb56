#include "statewall/control/server.hpp"

#include <malloc.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include "http_internal.hpp"
#include "query.hpp"
#include "statewall/dataplane/engine.hpp"
#include "statewall/rules/vocab.hpp"

namespace statewall::control {
namespace {

namespace asio = boost::asio;
using boost::beast::error_code;
using Tcp = asio::ip::tcp;
using Local = asio::local::stream_protocol;

// Parses "HOST:PORT" where HOST is a loopback address, "localhost", or "[::1]".
Status parseListen(std::string_view text, Tcp::endpoint* out) {
  const auto hp = rules::parseHostPort(text);
  if (!hp) return Status::failure(fmt::format("control listen address {}: {}", text, hp.message()));
  error_code ec;
  asio::ip::address addr = asio::ip::make_address(hp->host, ec);
  if (ec) return Status::failure(fmt::format("control listen address {}: bad host", text));
  if (!addr.is_loopback())
    return Status::failure(fmt::format(
        "control listen address {}: only loopback addresses are allowed (the API has no TLS)",
        text));
  *out = Tcp::endpoint(addr, hp->port);
  return Status::success();
}

// A session holding a drop log stream, as the server sees it. Both calls may come from any
// thread; they post to the session's strand.
class DropStream {
 public:
  virtual ~DropStream() = default;
  virtual void wake() = 0;    // the host has new drops
  virtual void finish() = 0;  // the server stops: send the end line and the last chunk, close
};

// Shared by all sessions of one server. Outlives them (see ControlServer::Impl member order).
struct ServerState {
  ControlApi* api = nullptr;
  HttpLimits limits;
  std::chrono::milliseconds header_timeout{};
  std::chrono::milliseconds idle_timeout{};
  std::string token;  // for TCP sessions
  // Runs the requests that compile a policy, one at a time, off the io threads.
  std::optional<asio::io_context::executor_type> load_executor;
  // Connections of each listener (those over its limit included, until they are closed). Here
  // rather than in the listeners: sessions outlive them while the io_context is destroyed.
  std::atomic<size_t> unix_active{0};
  std::atomic<size_t> tcp_active{0};
  std::atomic<size_t> health_active{0};
  // The held drop log streams (GET /v1/drops?follow=1), woken when the host has new drops and
  // ended when the server stops. open_streams counts those whose final chunk is not yet out.
  std::mutex streams_mu;
  std::vector<std::weak_ptr<DropStream>> streams;
  std::atomic<size_t> open_streams{0};

  void addStream(const std::shared_ptr<DropStream>& s) {
    std::lock_guard lock(streams_mu);
    std::erase_if(streams, [](const std::weak_ptr<DropStream>& w) { return w.expired(); });
    streams.push_back(s);
  }
  // Calls f on every live stream (from any thread; f only posts to the stream's strand).
  template <class F>
  void forEachStream(F f) {
    std::lock_guard lock(streams_mu);
    for (const auto& w : streams)
      if (auto s = w.lock()) f(*s);
  }
};

using Clock = std::chrono::steady_clock;

// How long stop() lets the drop log streams send their last chunk.
constexpr std::chrono::milliseconds kStreamEndGrace{1000};

// Builds the response to a complete request; nothing escapes (a failed allocation while building
// it, say, is a 503 rather than a dead server thread).
HttpResponse respondSafely(ControlApi& api, const HttpRequest& req, std::string_view token,
                           std::optional<uint64_t>* drops_stream_after = nullptr) {
  try {
    return respond(api, req, token, drops_stream_after);
  } catch (const std::bad_alloc&) {
    return makeError(http::status::service_unavailable, "out of memory",
                     "the request needed more memory than available", true);
  } catch (const std::exception& e) {
    return makeError(http::status::internal_server_error, "internal error", e.what(), true);
  }
}

// One HTTP connection. All of its handlers run on its strand, so it needs no lock.
template <class Socket>
class Session : public DropStream, public std::enable_shared_from_this<Session<Socket>> {
 public:
  // `active` is the connection count of the listener that accepted it.
  // `health_only`: every request is answered as GET /v1/health (ServerOptions::health_port).
  Session(Socket socket, ServerState& state, std::atomic<size_t>& active, bool require_token,
          bool health_only = false)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        state_(state),
        active_(active),
        require_token_(require_token),
        health_only_(health_only) {
    active_.fetch_add(1, std::memory_order_relaxed);
  }
  ~Session() override {
    endStream();
    active_.fetch_sub(1, std::memory_order_relaxed);
  }

  void wake() override {
    asio::post(socket_.get_executor(), [self = this->shared_from_this()] { self->pump(); });
  }
  void finish() override {
    asio::post(socket_.get_executor(), [self = this->shared_from_this()] {
      self->ending_ = true;
      self->pump();
    });
  }

  void start(bool over_limit) {
    if (over_limit) {
      res_ = makeError(http::status::service_unavailable, "too many connections",
                       "the control server is at its connection limit; retry later", true);
      // Closed as soon as the answer is out: lingering would let a flood of connections hold
      // file descriptors beyond the limit.
      linger_ = false;
      write();
      return;
    }
    read();
  }

 private:
  // Bounds the next read or write. A deadline that fires closes the socket, which aborts the
  // operation and ends the session; the generation check ignores a deadline whose operation
  // finished while its completion was already queued.
  void arm(std::chrono::milliseconds timeout) { armAt(Clock::now() + timeout); }
  void armAt(Clock::time_point deadline) {
    uint64_t gen = ++timer_gen_;
    timer_.expires_at(deadline);
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
    // The header (with the token) has a short deadline; the whole request a longer one.
    const Clock::time_point now = Clock::now();
    request_deadline_ = now + state_.idle_timeout;
    armAt(std::min(now + state_.header_timeout, request_deadline_));
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
    armAt(request_deadline_);
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
    HttpRequest req = parser_->release();
    parser_.reset();
    if (health_only_) {
      // A load balancer's health check: whatever it asks, the health is the answer.
      HttpRequest health{http::verb::get, "/v1/health", req.version()};
      health.keep_alive(req.keep_alive());
      res_ = respondSafely(*state_.api, health, "");
      write();
      return;
    }
    const std::string_view token = require_token_ ? state_.token : std::string_view();
    const auto method = req.method_string();
    const auto target = req.target();
    if (state_.load_executor && compilesPolicy(std::string_view(method.data(), method.size()),
                                               std::string_view(target.data(), target.size()))) {
      // Compiled on the load thread; the answer is written from this session's strand.
      asio::post(*state_.load_executor,
                 [self = this->shared_from_this(), req = std::move(req), token]() mutable {
                   HttpResponse res = respondSafely(*self->state_.api, req, token);
                   req = {};
                   // Give the memory of the policy texts and of a replaced policy back to the
                   // system at once (it is otherwise kept by the allocator).
                   ::malloc_trim(0);
                   asio::post(self->socket_.get_executor(), [self, res = std::move(res)]() mutable {
                     self->res_ = std::move(res);
                     self->write();
                   });
                 });
      return;
    }
    std::optional<uint64_t> stream_after;
    res_ = respondSafely(*state_.api, req, token, &stream_after);
    if (stream_after && res_.result() == http::status::ok) {
      startStream(*stream_after);
      return;
    }
    write();
  }

  // ---- a held drop log stream (GET /v1/drops?follow=1) ----
  // The header (chunked), then one chunk of JSON lines whenever the host says there are new
  // drops (wake()), one chunk in flight at most: a client that reads slowly holds the server to
  // one batch of lines, and its cursor falls behind in the host's bounded log (it is told what
  // it skipped) instead of anything queueing here. A chunk not taken within the idle timeout
  // closes the connection. The client's end is watched by a read that waits for its close. On
  // stop() (finish()) the stream ends with {"end": ...} and the last chunk.
  void startStream(uint64_t after) {
    stream_after_ = after;
    streaming_ = true;
    res_.keep_alive(false);
    res_.body().clear();
    res_.erase(http::field::content_length);
    res_.chunked(true);
    state_.open_streams.fetch_add(1, std::memory_order_relaxed);
    state_.addStream(this->shared_from_this());
    head_.emplace(res_);
    writing_ = true;
    arm(state_.idle_timeout);
    http::async_write_header(
        socket_, *head_,
        [self = this->shared_from_this()](error_code ec, size_t) { self->onChunkWritten(ec); });
    watchClose();
  }

  void watchClose() {
    socket_.async_read_some(asio::buffer(scratch_),
                            [self = this->shared_from_this()](error_code ec, size_t) {
                              if (ec) {
                                self->closeStream();
                                return;
                              }
                              self->watchClose();  // what a client sends meanwhile is ignored
                            });
  }

  void pump() {
    if (!streaming_ || writing_ || closed_) return;
    std::string lines;
    if (ending_) {
      lines = "{\"end\":\"the control server is stopping\"}\n";
    } else {
      lines = state_.api->dropLines(&stream_after_, SIZE_MAX);
      if (lines.empty()) return;
    }
    chunk_ = fmt::format("{:x}\r\n", lines.size());
    chunk_ += lines;
    chunk_ += "\r\n";
    if (ending_) {
      chunk_ += "0\r\n\r\n";
      ended_ = true;
    }
    writing_ = true;
    arm(state_.idle_timeout);
    asio::async_write(
        socket_, asio::buffer(chunk_),
        [self = this->shared_from_this()](error_code ec, size_t) { self->onChunkWritten(ec); });
  }

  void onChunkWritten(error_code ec) {
    disarm();
    writing_ = false;
    if (ec || ended_) {
      closeStream();
      return;
    }
    pump();
  }

  void closeStream() {
    if (closed_) return;
    closed_ = true;
    shutdown();
    endStream();
  }

  void endStream() {
    if (streaming_ && !stream_counted_out_) {
      stream_counted_out_ = true;
      state_.open_streams.fetch_sub(1, std::memory_order_relaxed);
    }
  }

  void write() {
    arm(state_.idle_timeout);
    http::async_write(socket_, res_, [self = this->shared_from_this()](error_code ec, size_t) {
      self->onWrite(ec);
    });
  }

  void onWrite(error_code ec) {
    disarm();
    if (ec || (!res_.keep_alive() && !linger_)) {
      shutdown();
      return;
    }
    if (!res_.keep_alive()) {
      linger();
      return;
    }
    read();
  }

  // Closes gracefully after a response that ends the connection while the client may still be
  // sending (a body refused from its header alone, a request that could not be parsed): stop
  // sending, then read and discard what comes (at most a request's worth, within the header
  // timeout) until the client closes. Closing at once with unread bytes would reset the
  // connection, and the client could lose the response.
  void linger() {
    error_code ignored;
    socket_.shutdown(Socket::shutdown_send, ignored);
    drained_ = 0;
    arm(state_.header_timeout);
    drain();
  }

  void drain() {
    socket_.async_read_some(
        asio::buffer(scratch_), [self = this->shared_from_this()](error_code ec, size_t n) {
          self->drained_ += n;
          if (ec || self->drained_ >
                        self->state_.limits.max_body_bytes + self->state_.limits.max_header_bytes) {
            self->disarm();
            self->shutdown();
            return;
          }
          self->drain();
        });
  }

  void shutdown() {
    error_code ignored;
    socket_.shutdown(Socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  Socket socket_;
  asio::steady_timer timer_;
  ServerState& state_;
  std::atomic<size_t>& active_;
  bool require_token_;
  bool health_only_;
  bool linger_ = true;
  uint64_t timer_gen_ = 0;
  Clock::time_point request_deadline_;
  size_t drained_ = 0;
  std::array<char, 16 * 1024> scratch_{};
  boost::beast::flat_buffer buffer_;
  std::optional<RequestParser> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  HttpResponse res_;
  // A drop log stream.
  std::optional<http::response_serializer<http::string_body>> head_;
  std::string chunk_;
  uint64_t stream_after_ = 0;
  bool streaming_ = false;
  bool writing_ = false;
  bool ending_ = false;
  bool ended_ = false;
  bool closed_ = false;
  bool stream_counted_out_ = false;
};

template <class Protocol>
class Listener : public std::enable_shared_from_this<Listener<Protocol>> {
 public:
  Listener(asio::io_context& io, ServerState& state, std::atomic<size_t>& active,
           size_t max_connections, bool require_token, bool health_only = false)
      : health_only_(health_only),
        io_(io),
        acceptor_(asio::make_strand(io)),
        retry_(acceptor_.get_executor()),
        state_(state),
        active_(active),
        max_connections_(std::max<size_t>(1, max_connections)),
        require_token_(require_token) {}

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
      self->retry_.cancel();
    });
  }

  typename Protocol::acceptor& acceptor() { return acceptor_; }

 private:
  void onAccept(error_code ec, typename Protocol::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // Transient accept errors (EMFILE, ECONNABORTED) must not stop the listener; a short pause
      // keeps one that persists (out of file descriptors) from spinning a server thread.
      retry_.expires_after(std::chrono::milliseconds(50));
      retry_.async_wait([self = this->shared_from_this()](error_code wec) {
        if (!wec && self->acceptor_.is_open()) self->accept();
      });
      return;
    }
    bool over = active_.load(std::memory_order_relaxed) >= max_connections_;
    std::make_shared<Session<typename Protocol::socket>>(std::move(socket), state_, active_,
                                                         require_token_, health_only_)
        ->start(over);
    accept();
  }

  bool health_only_;
  asio::io_context& io_;
  typename Protocol::acceptor acceptor_;
  asio::steady_timer retry_;
  ServerState& state_;
  std::atomic<size_t>& active_;  // this listener's connections
  size_t max_connections_;
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
  // Declared after `io`, so destroyed before it: queued loads hold sessions whose sockets
  // belong to `io`.
  asio::io_context load_io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> load_work;
  std::optional<asio::steady_timer> sampler;
  std::shared_ptr<Listener<Local>> unix_listener;
  std::shared_ptr<Listener<Tcp>> tcp_listener;
  std::shared_ptr<Listener<Tcp>> health_listener;
  std::vector<std::thread> threads;
  std::thread load_thread;

  Impl(dataplane::Engine& engine, ServerOptions opts, HostHooks hooks)
      : options(std::move(opts)), api(engine, std::move(hooks), options.api) {
    options.api.initial_sources.clear();
    if (!options.warn) {
      options.warn = [](const std::string& w) {
        std::fprintf(stderr, "statewall control: warning: %s\n", w.c_str());
      };
    }
  }

  void warn(const std::string& what) {
    try {
      options.warn(what);
    } catch (...) {  // NOLINT(bugprone-empty-catch): nothing left to report it with
    }
  }

  // A server thread: the host's thread_init, then the loop until stop(). An exception that
  // escapes a handler is reported and the loop resumes (Asio allows run() to be called again);
  // only that handler's connection is lost.
  void serve(asio::io_context& loop, const char* name) {
    pthread_setname_np(pthread_self(), name);
    if (options.thread_init) {
      try {
        options.thread_init();
      } catch (const std::exception& e) {
        warn(fmt::format("{} thread: its initialisation failed: {}", name, e.what()));
      } catch (...) {
        warn(fmt::format("{} thread: its initialisation failed", name));
      }
    }
    for (;;) {
      try {
        loop.run();
        return;
      } catch (const std::exception& e) {
        warn(fmt::format("{} thread: {} (a connection was dropped; the server goes on)", name,
                         e.what()));
      } catch (...) {
        warn(fmt::format("{} thread: unknown exception (a connection was dropped)", name));
      }
    }
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
    unix_listener = std::make_shared<Listener<Local>>(io, state, state.unix_active,
                                                      options.max_unix_connections,
                                                      /*require_token=*/false);
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
    std::string warning;
    s = readTokenFile(options.token_file, &state.token, &warning);
    if (!s.ok()) return s;
    if (!warning.empty()) warn(warning);
    tcp_listener =
        std::make_shared<Listener<Tcp>>(io, state, state.tcp_active, options.max_tcp_connections,
                                        /*require_token=*/true);
    s = tcp_listener->open(ep, nullptr);
    if (!s.ok())
      return Status::failure(fmt::format("control listen {}: {}", options.tcp_listen, s.message()));
    error_code ec;
    tcp_port = tcp_listener->acceptor().local_endpoint(ec).port();
    return Status::success();
  }

  Status openHealth() {
    health_listener = std::make_shared<Listener<Tcp>>(
        io, state, state.health_active, options.max_health_connections,
        /*require_token=*/false, /*health_only=*/true);
    const Status s = health_listener->open(
        Tcp::endpoint(asio::ip::address_v4::any(), options.health_port), nullptr);
    if (!s.ok())
      return Status::failure(
          fmt::format("health check port {}: {}", options.health_port, s.message()));
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
  if (m.options.unix_socket.empty() && m.options.tcp_listen.empty() && m.options.health_port == 0)
    return Status::failure("control server: no Unix socket and no TCP listener configured");
  m.state.api = &m.api;
  m.state.limits = m.options.limits;
  m.state.header_timeout = m.options.header_timeout;
  m.state.idle_timeout = m.options.idle_timeout;
  m.state.load_executor = m.load_io.get_executor();
  Status s;
  if (!m.options.unix_socket.empty()) s = m.openUnix();
  if (s.ok() && !m.options.tcp_listen.empty()) s = m.openTcp();
  if (s.ok() && m.options.health_port != 0) s = m.openHealth();
  if (!s.ok()) {
    stop();
    return s;
  }
  if (m.unix_listener) m.unix_listener->accept();
  if (m.tcp_listener) m.tcp_listener->accept();
  if (m.health_listener) m.health_listener->accept();
  m.sampler.emplace(m.io);
  m.sample();
  m.load_work.emplace(m.load_io.get_executor());
  m.load_thread = std::thread([&m] { m.serve(m.load_io, "sw-control-load"); });
  unsigned n = std::max(1u, m.options.threads);
  for (unsigned i = 0; i < n; ++i)
    m.threads.emplace_back([&m] { m.serve(m.io, "sw-control"); });
  return Status::success();
}

void ControlServer::stop() {
  Impl& m = *impl_;
  if (m.stopped) return;
  m.stopped = true;
  if (m.unix_listener) m.unix_listener->close();
  if (m.tcp_listener) m.tcp_listener->close();
  if (m.health_listener) m.health_listener->close();
  // Drop log streams end with their last chunk, so that a client sees a clean end rather than
  // a cut connection; a client that does not take it within a short grace is cut.
  m.state.forEachStream([](DropStream& s) { s.finish(); });
  const auto grace = std::chrono::steady_clock::now() + kStreamEndGrace;
  while (m.state.open_streams.load(std::memory_order_relaxed) > 0 &&
         std::chrono::steady_clock::now() < grace)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // Stop the loop; pending sessions are destroyed with the io_context's handlers.
  m.io.stop();
  for (auto& t : m.threads)
    t.join();
  m.threads.clear();
  // A compilation in progress finishes (it cannot be interrupted); queued ones are dropped with
  // their connections.
  m.load_work.reset();
  m.load_io.stop();
  if (m.load_thread.joinable()) m.load_thread.join();
  if (m.created_socket) ::unlink(m.options.unix_socket.c_str());
}

void ControlServer::notifyDrops() {
  impl_->state.forEachStream([](DropStream& s) { s.wake(); });
}

uint16_t ControlServer::tcpPort() const {
  return impl_->tcp_port;
}

ControlApi& ControlServer::api() {
  return impl_->api;
}

}  // namespace statewall::control
