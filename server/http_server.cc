#include "server/http_server.h"

// clang-format off
#include "server/asio.h"  // first: <utility> before Asio (docs/toolchain.md)
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
// clang-format on
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <mutex>
#include <unordered_map>

#include "schema/limits.h"
#include "server/auth.h"
#include "server/http_api.h"
#include "server/metrics.h"
#include "server/peer_guard.h"
#include "server/session.h"

namespace loanledger::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using asio::redirect_error;
using asio::use_awaitable;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

constexpr auto kAcceptErrorPause = std::chrono::milliseconds(100);

std::string FormatEndpoint(const tcp::endpoint& ep) {
  const std::string host = ep.address().to_string();
  return (ep.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(ep.port());
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<Impl> {
  // One connection's handle for shutdown: closes it when it is between requests.
  struct Conn {
    asio::any_io_executor executor;  // the connection's strand
    beast::tcp_stream* stream = nullptr;
    bool busy = false;  // a request is being answered (strand only)
  };

  Impl(const SessionEnv& e, asio::io_context& io)
      : env(e),
        ioc(io),
        strand(asio::make_strand(io)),
        acceptor(strand),
        signals(strand, SIGINT, SIGTERM) {
    api.tokens = env.tokens;
    api.figures = env.figures;
    api.server_version = env.server_version;
    api.tls = env.tls != nullptr;
    api.reply_bytes_max = wire::kReplyFrameBytesMax;
  }

  const SessionEnv& env;
  asio::io_context& ioc;
  asio::strand<asio::io_context::executor_type> strand;
  tcp::acceptor acceptor;
  asio::signal_set signals;
  HttpApiEnv api;
  std::string bound;
  std::atomic<bool> stopping = false;
  std::mutex mu;  // guards conns and next_id
  std::unordered_map<uint64_t, std::shared_ptr<Conn>> conns;
  uint64_t next_id = 1;

  const ServerConfig& config() const { return *env.config; }
  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(config().http_timeout_ms);
  }

  asio::awaitable<void> AcceptLoop(std::shared_ptr<Impl> self) {
    while (!stopping) {
      error_code ec;
      tcp::socket socket =
          co_await acceptor.async_accept(asio::make_strand(ioc), redirect_error(use_awaitable, ec));
      if (stopping || ec == asio::error::operation_aborted) break;
      if (ec) {
        spdlog::warn("http accept: {}", ec.message());
        asio::steady_timer pause(strand, kAcceptErrorPause);
        co_await pause.async_wait(redirect_error(use_awaitable, ec));
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      auto conn = std::make_shared<Conn>();
      uint64_t id = 0;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (conns.size() >= config().http_connections_max) {
          id = 0;
        } else {
          id = next_id++;
          conns.emplace(id, conn);
        }
      }
      if (id == 0) {
        Refuse(socket);
        continue;
      }
      conn->executor = socket.get_executor();
      asio::co_spawn(conn->executor, Connection(self, std::move(socket), conn, id),
                     [self, id](std::exception_ptr e) {
                       if (e) {
                         try {
                           std::rethrow_exception(e);
                         } catch (const std::exception& ex) {
                           spdlog::warn("http connection {}: {}", id, ex.what());
                         }
                       }
                       std::lock_guard<std::mutex> lock(self->mu);
                       self->conns.erase(id);
                     });
    }
  }

  // Over the connection cap: a 503 when plain HTTP (best effort, the
  // socket's buffer takes it), then close.
  void Refuse(tcp::socket& socket) {
    env.metrics->connections_refused.Increment();
    error_code ec;
    if (env.tls == nullptr) {
      static constexpr std::string_view kBody =
          "{\"error\":\"UNAVAILABLE\",\"message\":\"too many connections; retry later\"}\n";
      const std::string response =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; "
          "charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
          std::to_string(kBody.size()) + "\r\n\r\n" + std::string(kBody);
      socket.non_blocking(true, ec);
      asio::write(socket, asio::buffer(response), ec);
    }
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }

  asio::awaitable<void> Connection(std::shared_ptr<Impl> /*keeps Impl alive*/, tcp::socket socket,
                                   std::shared_ptr<Conn> conn, uint64_t id) {
    error_code ec;
    const tcp::endpoint peer = socket.remote_endpoint(ec);
    const std::string address = ec ? std::string("?") : peer.address().to_string();
    if (stopping) co_return;
    beast::tcp_stream stream(std::move(socket));
    conn->stream = &stream;
    if (env.tls == nullptr) {
      co_await Serve(stream, stream, *conn, address, id);
    } else {
      asio::ssl::stream<beast::tcp_stream&> tls(stream, *env.tls);
      stream.expires_after(timeout());
      co_await tls.async_handshake(asio::ssl::stream_base::server,
                                   redirect_error(use_awaitable, ec));
      if (ec) {
        spdlog::debug("http connection {} {}: TLS handshake: {}", id, address, ec.message());
      } else {
        co_await Serve(tls, stream, *conn, address, id);
        if (!conn->busy) {
          stream.expires_after(std::chrono::seconds(1));
          co_await tls.async_shutdown(redirect_error(use_awaitable, ec));
        }
      }
    }
    conn->stream = nullptr;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.close();
  }

  template <typename Stream>
  asio::awaitable<void> Serve(Stream& stream, beast::tcp_stream& tcp, Conn& conn,
                              const std::string& address, uint64_t id) {
    beast::flat_buffer buffer(config().http_request_bytes_max);
    for (;;) {
      http::request_parser<http::empty_body> parser;
      parser.header_limit(config().http_request_bytes_max);
      parser.body_limit(0);
      tcp.expires_after(timeout());
      error_code ec;
      co_await http::async_read(stream, buffer, parser, redirect_error(use_awaitable, ec));
      if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
          ec == beast::error::timeout || ec == asio::error::eof ||
          ec == asio::error::connection_reset) {
        co_return;
      }
      conn.busy = true;
      const Clock::time_point start = Clock::now();
      HttpReply reply;
      bool keep_alive = false;
      std::string method = "?";
      std::string target = "?";
      if (ec) {
        // A head over the limit, a body, or bytes that are not HTTP: say so, close.
        const bool too_large =
            ec == http::error::header_limit || ec == http::error::buffer_overflow;
        reply = HttpError(400, too_large ? "RESOURCE_EXHAUSTED" : "INVALID_ARGUMENT",
                          too_large ? "request head larger than " +
                                          std::to_string(config().http_request_bytes_max) + " bytes"
                                    : "bad HTTP request: " + ec.message());
      } else {
        const http::request<http::empty_body>& req = parser.get();
        HttpRequest request;
        request.method = std::string(req.method_string());
        request.target = std::string(req.target());
        if (auto it = req.find(http::field::authorization); it != req.end()) {
          request.authorization = std::string(it->value());
        }
        method = request.method;
        target = request.target.substr(0, request.target.find('?'));
        keep_alive = req.keep_alive();
        HttpPlan plan = PlanHttpRequest(api, request, stopping);
        if (plan.auth_failed) {
          env.metrics->auth_failures.Increment();
          const PeerGuard::Verdict verdict = env.peers->OnAuthFailure(address, Clock::now());
          spdlog::warn("http {} {}: unknown token ({} failures from this address)", id, address,
                       verdict.failures);
          if (verdict.delay.count() > 0) {
            asio::steady_timer pause(co_await asio::this_coro::executor, verdict.delay);
            co_await pause.async_wait(redirect_error(use_awaitable, ec));
          }
        }
        if (plan.reply) {
          reply = std::move(*plan.reply);
        } else {
          reply = co_await OnQueryPool(std::move(plan.query));
          if (plan.kind) env.metrics->ObserveQuery(*plan.kind, SecondsSince(start));
        }
      }
      if (stopping) keep_alive = false;
      http::response<http::string_body> res{static_cast<http::status>(reply.status), 11};
      res.set(http::field::server, "loanledgerd/" + env.server_version);
      res.set(http::field::content_type, reply.content_type);
      res.set(http::field::cache_control, "no-store");
      for (const auto& [name, value] : reply.headers) res.set(name, value);
      res.keep_alive(keep_alive);
      res.body() = std::move(reply.body);
      res.prepare_payload();
      tcp.expires_after(timeout());
      co_await http::async_write(stream, res, redirect_error(use_awaitable, ec));
      // Never the Authorization header; the path without its query.
      spdlog::debug("http {} {} {} {} -> {} ({:.1f} ms)", id, address, method, target, reply.status,
                    SecondsSince(start) * 1e3);
      conn.busy = false;
      if (ec || !keep_alive) co_return;
    }
  }

  // Starts query on the query pool and resumes on the connection's strand
  // with its reply, whichever thread gives it (a timer is the wake-up, as in
  // session.cc).
  asio::awaitable<HttpReply> OnQueryPool(std::function<void(HttpDone)> query) {
    struct Pending {
      explicit Pending(asio::any_io_executor ex) : wake(std::move(ex)) {}
      asio::steady_timer wake;
      HttpReply reply;
    };
    auto pending = std::make_shared<Pending>(co_await asio::this_coro::executor);
    pending->wake.expires_at(asio::steady_timer::time_point::max());
    asio::post(*env.query_pool, [pending, query = std::move(query)] {
      query([pending](HttpReply reply) {
        // Handed over on the strand: the reply may come on a NATS thread.
        auto moved = std::make_shared<HttpReply>(std::move(reply));
        asio::post(pending->wake.get_executor(), [pending, moved] {
          pending->reply = std::move(*moved);
          pending->wake.cancel();
        });
      });
    });
    error_code ec;
    co_await pending->wake.async_wait(redirect_error(use_awaitable, ec));
    co_return std::move(pending->reply);
  }

  void WaitForSignal() {
    signals.async_wait([self = shared_from_this()](const error_code& ec, int) {
      if (ec) return;
      self->Stop();
    });
  }

  // Stops accepting; idle connections close now, busy ones after their
  // response.
  void Stop() {
    if (stopping.exchange(true)) return;
    error_code ec;
    acceptor.close(ec);
    signals.cancel(ec);
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [id, conn] : conns) {
      asio::post(conn->executor, [conn] {
        if (conn->stream != nullptr && !conn->busy) conn->stream->cancel();
      });
    }
  }
};

HttpServer::HttpServer(const SessionEnv& env, asio::io_context& ioc)
    : impl_(std::make_shared<Impl>(env, ioc)) {}

HttpServer::~HttpServer() {
  if (impl_) impl_->Stop();
}

Status HttpServer::Bind(const HostPort& hp) {
  error_code ec;
  tcp::resolver resolver(impl_->ioc);
  const auto results =
      resolver.resolve(hp.host, std::to_string(hp.port),
                       tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return Status::InvalidArgument("cannot resolve " + hp.host + ": " + ec.message());
  }
  const tcp::endpoint endpoint = results.begin()->endpoint();
  tcp::acceptor& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::Unavailable("cannot listen (http) on " + FormatEndpoint(endpoint) + ": " +
                               ec.message());
  }
  impl_->bound = FormatEndpoint(acceptor.local_endpoint());
  return Status::Ok();
}

const std::string& HttpServer::bound() const { return impl_->bound; }

void HttpServer::Start() {
  auto self = impl_;
  asio::co_spawn(impl_->strand, impl_->AcceptLoop(self), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("http accept loop: {}", ex.what());
    }
  });
  impl_->WaitForSignal();
}

}  // namespace loanledger::server
