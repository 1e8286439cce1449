#include "server/server.h"

#include <prometheus/exposer.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "schema/check.h"
#include "schema/rules.h"
#include "server/asio.h"
#include "server/auth.h"
#include "server/batch_writer.h"
#include "server/cluster_glue.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/peer_guard.h"
#include "server/ready_file.h"
#include "server/service.h"
#include "server/session.h"
#include "storage/ledger.h"

namespace loanledger::server {
namespace {

using asio::redirect_error;
using asio::use_awaitable;
using boost::system::error_code;

// Pause after an accept error such as EMFILE, so that a full file table does
// not turn the accept loop into a busy loop.
constexpr auto kAcceptErrorPause = std::chrono::milliseconds(100);
// How often shutdown checks whether every session has ended.
constexpr auto kShutdownPoll = std::chrono::milliseconds(20);
// After the grace period and a forced close, sessions only wait for the
// writer and the query pool; past this something is stuck and we stop anyway.
constexpr auto kForcedCloseWaitMax = std::chrono::seconds(30);
// Refused connections are logged at most once per this period, with a count:
// a connection flood must not become a log flood.
constexpr auto kRefusedLogPeriod = std::chrono::seconds(1);

// A rules file's text, checked (docs/categories.md): a bad file is an
// error naming the file, the field and the reason.
Result<std::string> ReadRulesFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return Status::InvalidArgument("cannot read rules file " + path);
  std::string text;
  char buf[65536];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() <= kRulesFileBytesMax)
    text.append(buf, n);
  std::fclose(f);
  Result<std::shared_ptr<const Rules>> rules = Rules::Parse(text);
  if (!rules.ok())
    return Status::InvalidArgument("rules file " + path + ": " + rules.status().message());
  return text;
}

std::string FormatEndpoint(const tcp::endpoint& ep) {
  const std::string host = ep.address().to_string();
  return (ep.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(ep.port());
}

auto LogFailure(const char* what) {
  return [what](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("{}: {}", what, ex.what());
    }
  };
}

// Listener, session registry, signals, periodic metrics and shutdown. All
// its coroutines run on one strand (strand_).
class Server {
 public:
  Server(const ServerConfig& config, asio::io_context& ioc, SessionEnv env)
      : config_(config),
        ioc_(ioc),
        env_(std::move(env)),
        strand_(asio::make_strand(ioc)),
        acceptor_(strand_),
        signals_(strand_, SIGINT, SIGTERM),
        hangup_(strand_, SIGHUP),
        refresh_timer_(strand_) {}

  Status Bind(const HostPort& hp) {
    error_code ec;
    tcp::resolver resolver(ioc_);
    const auto results =
        resolver.resolve(hp.host, std::to_string(hp.port),
                         tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || results.empty()) {
      return Status::InvalidArgument("cannot resolve " + hp.host + ": " + ec.message());
    }
    const tcp::endpoint endpoint = results.begin()->endpoint();
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return Status::Unavailable("cannot listen on " + FormatEndpoint(endpoint) + ": " +
                                 ec.message());
    bound_ = FormatEndpoint(acceptor_.local_endpoint());
    return Status::Ok();
  }

  const std::string& bound() const { return bound_; }

  // Called on every metrics refresh, on the query pool. Before Start.
  void OnRefresh(std::function<void()> fn) { on_refresh_ = std::move(fn); }
  // Called on the strand at each SIGHUP (systemctl reload) until shutdown
  // begins. Before Start; from construction on, SIGHUP no longer ends the
  // process.
  void OnHangup(std::function<void()> fn) { on_hangup_ = std::move(fn); }

  void Start() {
    asio::co_spawn(strand_, AcceptLoop(), LogFailure("accept loop"));
    asio::co_spawn(strand_, RefreshMetrics(), LogFailure("metrics refresh"));
    WaitForSignal();
    WaitForHangup();
  }

 private:
  void WaitForHangup() {
    hangup_.async_wait([this](const error_code& ec, int) {
      if (ec) return;  // cancelled at the end of shutdown
      if (!stopping_ && on_hangup_) on_hangup_();
      WaitForHangup();
    });
  }

  void WaitForSignal() {
    signals_.async_wait([this](const error_code& ec, int signo) {
      if (ec) return;  // cancelled at the end of shutdown
      if (!stopping_) {
        asio::co_spawn(strand_, Shutdown(signo), LogFailure("shutdown"));
      } else {
        spdlog::warn("signal {} again: closing every connection now", signo);
        for (const auto& s : Snapshot()) s->ForceClose();
      }
      WaitForSignal();
    });
  }

  asio::awaitable<void> AcceptLoop() {
    while (!stopping_) {
      error_code ec;
      tcp::socket socket = co_await acceptor_.async_accept(asio::make_strand(ioc_),
                                                           redirect_error(use_awaitable, ec));
      if (stopping_ || ec == asio::error::operation_aborted) break;
      if (ec) {
        spdlog::warn("accept: {}", ec.message());
        asio::steady_timer pause(strand_, kAcceptErrorPause);
        co_await pause.async_wait(redirect_error(use_awaitable, ec));
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      if (SessionCount() >= config_.connections_max) {
        Refuse(socket, "connection cap reached", "too many connections; retry later");
        continue;
      }
      const tcp::endpoint peer = socket.remote_endpoint(ec);
      std::string address = ec ? std::string("?") : peer.address().to_string();
      if (!env_.peers->AdmitUnauthenticated(address)) {
        Refuse(socket, "too many unauthenticated connections from " + address,
               "too many connections from your address are waiting to authenticate; retry later");
        continue;
      }
      const uint64_t id = next_session_id_++;
      auto session =
          std::make_shared<Session>(env_, std::move(socket), id, std::move(address),
                                    [this](uint64_t closed) { OnSessionClosed(closed); });
      {
        std::lock_guard<std::mutex> lock(mu_);
        sessions_.emplace(id, session);
      }
      env_.metrics->connections.Increment();
      env_.metrics->connections_active.Increment();
      session->Start();
    }
  }

  // why: for the log; message: for the client.
  void Refuse(tcp::socket& socket, const std::string& why, std::string_view message) {
    env_.metrics->connections_refused.Increment();
    ++refused_unlogged_;
    const auto now = std::chrono::steady_clock::now();
    if (now - refused_logged_at_ >= kRefusedLogPeriod) {
      spdlog::warn("refusing connections ({}; cap {}): {} refused since the last such line", why,
                   config_.connections_max, refused_unlogged_);
      refused_logged_at_ = now;
      refused_unlogged_ = 0;
    }
    error_code ec;
    if (env_.tls == nullptr) {
      // Best effort: a fresh socket's send buffer takes one small frame.
      const wire::Frame frame = wire::EncodeError(0, wire::ErrorCode::RESOURCE_EXHAUSTED, message);
      socket.non_blocking(true, ec);
      asio::write(socket, asio::buffer(frame.data(), frame.size()), ec);
    }
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }

  asio::awaitable<void> RefreshMetrics() {
    while (!stopping_) {
      if (!refresh_running_.exchange(true)) {
        asio::post(*env_.query_pool, [this] {
          env_.metrics->SetLedgerStats(env_.ledger->Stats());
          const std::vector<storage::CategoryBalance> balances = env_.ledger->CategoryBalances();
          env_.metrics->SetCategoryBalances(balances);
          env_.metrics->report().Refresh(*env_.ledger, *env_.figures);
          env_.metrics->rules().Refresh(*env_.ledger);
          env_.metrics->process().Refresh();
          struct statvfs disk {};
          if (statvfs(config_.data_dir.c_str(), &disk) == 0) {
            env_.metrics->SetDataDisk(uint64_t{disk.f_bavail} * disk.f_frsize,
                                      uint64_t{disk.f_blocks} * disk.f_frsize);
          }
          if (on_refresh_) on_refresh_();
          refresh_running_ = false;
        });
      }
      error_code ec;
      refresh_timer_.expires_after(std::chrono::milliseconds(config_.metrics_refresh_ms));
      co_await refresh_timer_.async_wait(redirect_error(use_awaitable, ec));
    }
  }

  asio::awaitable<void> Shutdown(int signo) {
    stopping_ = true;
    NotifyStopping("stopping: finishing in-flight requests");
    spdlog::info("signal {}: stopping; no new connections, finishing in-flight requests", signo);
    error_code ec;
    acceptor_.close(ec);
    refresh_timer_.cancel();
    for (const auto& s : Snapshot()) s->BeginShutdown();
    co_await WaitForSessions(std::chrono::milliseconds(config_.shutdown_grace_ms));
    if (const size_t left = SessionCount(); left > 0) {
      spdlog::warn("shutdown grace period over: closing {} connections", left);
      for (const auto& s : Snapshot()) s->ForceClose();
      co_await WaitForSessions(kForcedCloseWaitMax);
    }
    // Batches still queued (of connections closed meanwhile) are applied:
    // never acknowledged, so either outcome is allowed, and applying keeps
    // the journal in arrival order.
    env_.writer->Stop();
    spdlog::info("writer drained");
    signals_.cancel();
    hangup_.cancel();
    if (SessionCount() > 0) {
      spdlog::error("{} sessions did not end; stopping the io threads", SessionCount());
      ioc_.stop();
    }
  }

  asio::awaitable<void> WaitForSessions(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    asio::steady_timer timer(strand_);
    while (SessionCount() > 0 && std::chrono::steady_clock::now() < deadline) {
      error_code ec;
      timer.expires_after(kShutdownPoll);
      co_await timer.async_wait(redirect_error(use_awaitable, ec));
    }
  }

  void OnSessionClosed(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t erased = sessions_.erase(id);
    LL_CHECK(erased == 1);
    env_.metrics->connections_active.Decrement();
  }

  size_t SessionCount() {
    std::lock_guard<std::mutex> lock(mu_);
    return sessions_.size();
  }

  std::vector<std::shared_ptr<Session>> Snapshot() {
    std::vector<std::shared_ptr<Session>> out;
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, weak] : sessions_) {
      if (auto s = weak.lock()) out.push_back(std::move(s));
    }
    return out;
  }

  const ServerConfig& config_;
  asio::io_context& ioc_;
  const SessionEnv env_;  // borrowed by every session
  asio::strand<asio::io_context::executor_type> strand_;
  tcp::acceptor acceptor_;
  asio::signal_set signals_;
  asio::signal_set hangup_;  // SIGHUP: on_hangup_ (reload the tokens file)
  asio::steady_timer refresh_timer_;
  std::string bound_;                          // "127.0.0.1:7700" once bound
  std::atomic<bool> stopping_ = false;         // set once, by Shutdown
  std::atomic<bool> refresh_running_ = false;  // a metrics refresh is on the query pool
  std::function<void()> on_refresh_;
  std::function<void()> on_hangup_;
  uint64_t next_session_id_ = 1;                             // strand only
  std::chrono::steady_clock::time_point refused_logged_at_;  // strand only: last refusal logged
  uint64_t refused_unlogged_ = 0;                            // strand only: refusals since then
  std::mutex mu_;  // guards sessions_ (sessions end on their own strands)
  std::unordered_map<uint64_t, std::weak_ptr<Session>> sessions_;
};

// SIGHUP: the tokens file again (docs/operations.md "Tokens"). New logins
// use the new file; sessions already authenticated keep their principal; a
// file that does not load changes nothing (the error names the line, never
// a token).
void ReloadTokens(const std::string& path, TokenTable& tokens) {
  NotifyReloading();
  Result<TokenTable> next = TokenTable::Load(path);
  if (!next.ok()) {
    spdlog::error("SIGHUP: tokens file refused, the {} tokens loaded before stay in force: {}",
                  tokens.size(), next.status().ToString());
    NotifyReady("serving; the last tokens reload failed (see the log)");
    return;
  }
  const size_t before = tokens.size();
  tokens.Replace(std::move(*next));
  spdlog::info("SIGHUP: {} tokens loaded from {} (were {}); open sessions keep their login",
               tokens.size(), path, before);
  NotifyReady("serving; tokens reloaded");
}

std::unique_ptr<asio::ssl::context> MakeTlsContext(const ServerConfig& config) {
  if (config.tls_cert.empty()) return nullptr;
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  ctx->use_certificate_chain_file(config.tls_cert);  // throws on error (start-up only)
  ctx->use_private_key_file(config.tls_key, asio::ssl::context::pem);
  return ctx;
}

// prometheus::Exposer's web server (civetweb) looks at its stop flag only
// between polls of its listener, 2 s each, so its destructor alone made every
// exit wait up to 2 s. A connection to the listener ends the poll: at scope
// exit one thread destroys the Exposer while this one connects to it, every
// 10 ms, until it is gone (refused once its listener is closed). Each attempt
// is given 20 ms (a local listener answers at once), so a port that drops
// connections cannot hold the exit beyond the 2 s it would have taken.
struct ExposerStopper {
  std::unique_ptr<prometheus::Exposer>& exposer;
  std::string host;
  int port;

  ~ExposerStopper() {
    std::atomic<bool> stopped{false};
    std::thread stopper([&] {
      exposer.reset();
      stopped.store(true);
    });
    boost::system::error_code ec;
    asio::ip::address ip = asio::ip::make_address(host, ec);
    if (!ec && ip.is_unspecified()) {
      ip = ip.is_v6() ? asio::ip::address(asio::ip::address_v6::loopback())
                      : asio::ip::address(asio::ip::address_v4::loopback());
    }
    asio::io_context ioc;
    while (!ec && !stopped.load()) {
      tcp::socket wake(ioc);
      wake.async_connect(tcp::endpoint(ip, static_cast<uint16_t>(port)),
                         [](const boost::system::error_code&) {});
      ioc.run_for(std::chrono::milliseconds(20));
      boost::system::error_code ignored;
      wake.close(ignored);
      ioc.restart();
      ioc.run();  // the connect's handler, aborted by close() if it had not completed
      ioc.restart();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stopper.join();
  }
};

int Serve(const ServerConfig& config, std::string_view version) {
  if (!config.ready_file.empty()) {
    if (Status s = RemoveReadyFile(config.ready_file); !s.ok()) {
      spdlog::error("--ready-file: {}", s.ToString());
      return 1;
    }
  }
  Result<TokenTable> tokens = TokenTable::Load(config.tokens_file);
  if (!tokens.ok()) {
    spdlog::error("{}", tokens.status().ToString());
    return 1;
  }
  spdlog::info("{} tokens loaded from {}", tokens->size(), config.tokens_file);
  const std::unique_ptr<asio::ssl::context> tls = MakeTlsContext(config);

  storage::LedgerOptions options;
  options.path = config.data_dir;
  options.sync = true;  // docs/data.md: an ack means the WAL is synced
  options.snapshot_events = config.snapshot_events;
  if (!config.rules_file.empty()) {
    Result<std::string> rules = ReadRulesFile(config.rules_file);
    if (!rules.ok()) {
      spdlog::error("{}", rules.status().message());
      return 1;
    }
    options.rules_text = std::move(rules).value();
  }
  const auto open_start = std::chrono::steady_clock::now();
  Result<std::unique_ptr<storage::Ledger>> ledger = storage::Ledger::Open(options);
  if (!ledger.ok()) {
    spdlog::error("cannot open the ledger in {}: {}", config.data_dir, ledger.status().ToString());
    return 1;
  }
  {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - open_start;
    const storage::LedgerStats st = (*ledger)->Stats();
    spdlog::info("ledger open in {:.2f} s: {} loans, {} batches", took.count(), st.loans,
                 st.batches_applied);
  }

  Metrics metrics(version);
  if (tls) {
    if (Result<int64_t> expiry = CertificateNotAfterSeconds(config.tls_cert); expiry.ok()) {
      metrics.process().SetTlsCertificateExpiry(*expiry);
    } else {
      spdlog::warn("loanledger_tls_cert_expiry_timestamp_seconds stays 0: {}",
                   expiry.status().ToString());
    }
  }
  Result<HostPort> metrics_at = ParseHostPort(config.metrics_listen);
  LL_CHECK(metrics_at.ok());  // checked by ParseFlags
  const std::string metrics_host = metrics_at->host.find(':') != std::string::npos
                                       ? "[" + metrics_at->host + "]"
                                       : metrics_at->host;
  auto exposer =
      std::make_unique<prometheus::Exposer>(metrics_host + ":" + std::to_string(metrics_at->port));
  exposer->RegisterCollectable(metrics.registry());
  const std::vector<int> metrics_ports = exposer->GetListeningPorts();
  LL_CHECK(!metrics_ports.empty());
  ExposerStopper stop_exposer{exposer, metrics_at->host, metrics_ports.front()};
  BoundAddresses bound;  // every listener, for --ready-file
  bound.Add("metrics",
            FormatHostPort(metrics_at->host, static_cast<uint16_t>(metrics_ports.front())));
  spdlog::info("metrics on {}", bound.entries().back().second);

  BatchWriter writer(**ledger, metrics, config.writer_queue_batches_max, config.group_batches_max);
  asio::thread_pool query_pool(config.query_threads);
  ByteBudget server_inflight_bytes(config.server_inflight_bytes_max);  // shared by all sessions
  PeerGuard peers(config);
  asio::io_context ioc(static_cast<int>(config.io_threads));
  {
    std::unique_ptr<cluster::Node> node;  // cluster mode; after the writer stops, before the ledger
    std::unique_ptr<ClusterMetrics> cluster_metrics;
    const Figures figures(**ledger, &node);  // P > 1: asks every partition (node set below)
    SessionEnv env;
    env.cluster = &node;
    env.figures = &figures;
    env.config = &config;
    env.tokens = &*tokens;
    env.ledger = ledger->get();
    env.writer = &writer;
    env.metrics = &metrics;
    env.query_pool = &query_pool;
    env.tls = tls.get();
    env.server_inflight_bytes = &server_inflight_bytes;
    env.peers = &peers;
    env.server_version = std::string(version);
    const SessionEnv http_env = env;  // the HTTP API (docs/http.md) borrows the same pieces
    Server server(config, ioc, std::move(env));
    Result<HostPort> listen_at = ParseHostPort(config.listen);
    LL_CHECK(listen_at.ok());
    if (Status s = server.Bind(*listen_at); !s.ok()) {
      spdlog::error("{}", s.ToString());
      return 1;
    }
    std::unique_ptr<HttpServer> http;
    if (!config.http_listen.empty()) {
      http = std::make_unique<HttpServer>(http_env, ioc);
      if (Status s = http->Bind(*ParseHostPort(config.http_listen)); !s.ok()) {
        spdlog::error("{}", s.ToString());
        return 1;
      }
      spdlog::info("http api on {} ({})", http->bound(), tls ? "https" : "http");
    }
    bound.Add("listen", server.bound());
    if (!config.nats.empty()) {
      spdlog::info("cluster mode: partition {} of {}, NATS {}", config.partition, config.partitions,
                   config.nats);
      Result<std::unique_ptr<cluster::Node>> started =
          StartClusterNode(config, server.bound(), **ledger);
      if (!started.ok()) {
        spdlog::error("cluster: {}", started.status().ToString());
        return 1;
      }
      node = std::move(*started);
      cluster_metrics = std::make_unique<ClusterMetrics>(*metrics.registry(), config.partition);
      writer.UseApply([n = node.get()](std::span<const storage::Batch* const> batches) {
        return n->ApplyGroup(batches);
      });
      server.OnRefresh([n = node.get(), m = cluster_metrics.get()] {
        n->RefreshStorage();  // every few seconds (ClusterOptions::storage_poll_ms), bounded
        m->Set(n->State());
      });
      if (node->partitions() > 1) figures.AnswerPeers(*node);
    }
    if (http) bound.Add("http", http->bound());
    if (!config.ready_file.empty()) {
      if (Status s = bound.WriteReadyFile(config.ready_file); !s.ok()) {
        spdlog::error("--ready-file: {}", s.ToString());
        return 1;
      }
    }
    server.OnHangup([&config, &tokens] { ReloadTokens(config.tokens_file, *tokens); });
    writer.Start();
    server.Start();
    if (http) http->Start();
    spdlog::info("loanledgerd {} ready ({}, {} io threads, {} query threads)", version,
                 tls ? "TLS" : "plain TCP", config.io_threads, config.query_threads);
    spdlog::info("listening on {}", server.bound());
    // After the ready file: a supervisor that reads it once READY=1 arrives finds it.
    NotifyReady("serving on " + server.bound());

    std::vector<std::thread> threads;
    for (uint32_t i = 1; i < config.io_threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
    ioc.run();
    for (std::thread& t : threads) t.join();
    if (!config.ready_file.empty()) {
      if (Status s = RemoveReadyFile(config.ready_file); !s.ok()) spdlog::warn("{}", s.ToString());
    }
    writer.Stop();      // normally done by Shutdown already
    query_pool.join();  // before `server`: a metrics refresh may be running on it
  }
  if (const uint64_t left = server_inflight_bytes.used(); left != 0) {
    spdlog::warn("{} request bytes still accounted at exit (sessions were stopped)", left);
  }
  spdlog::info("closing the ledger (writes a loan snapshot)");
  ledger->reset();
  spdlog::info("ledger closed; bye");
  return 0;
}

}  // namespace

int RunServer(const ServerConfig& config, std::string_view version) {
  std::signal(SIGPIPE, SIG_IGN);  // a peer gone mid-write is an error code, not a signal
  // A file-size limit (RLIMIT_FSIZE) reached by RocksDB is then an EFBIG
  // write error (the batch fails, reads go on) instead of killing the process.
  std::signal(SIGXFSZ, SIG_IGN);
  // A SIGHUP (systemctl reload) before the listeners are up, during a long
  // ledger open, must not end the process; the Server handles it from then.
  std::signal(SIGHUP, SIG_IGN);
  try {
    return Serve(config, version);
  } catch (const std::exception& e) {
    spdlog::error("start-up failed: {}", e.what());
    return 1;
  }
}

int RunVerify(const ServerConfig& config) {
  std::error_code ec;
  if (!std::filesystem::is_directory(config.data_dir, ec)) {
    std::fprintf(stderr, "verify: %s is not a data directory\n", config.data_dir.c_str());
    return 2;
  }
  storage::LedgerOptions options;
  options.path = config.data_dir;
  Result<std::unique_ptr<storage::Ledger>> ledger = storage::Ledger::Open(options);
  if (!ledger.ok()) {
    std::fprintf(stderr, "verify: cannot open %s: %s\n", config.data_dir.c_str(),
                 ledger.status().ToString().c_str());
    return 2;
  }
  Result<storage::VerifyReport> report = (*ledger)->Verify();
  if (!report.ok()) {
    std::fprintf(stderr, "verify: %s\n", report.status().ToString().c_str());
    return 2;
  }
  for (const storage::VerifyDifference& d : report->differences) {
    std::printf("difference: %s expected=%lld actual=%lld\n", d.what.c_str(),
                static_cast<long long>(d.expected), static_cast<long long>(d.actual));
  }
  std::printf(
      "verify: batches_replayed=%llu events_replayed=%llu loans_checked=%llu "
      "cells_checked=%llu differences=%zu\n",
      static_cast<unsigned long long>(report->batches_replayed),
      static_cast<unsigned long long>(report->events_replayed),
      static_cast<unsigned long long>(report->loans_checked),
      static_cast<unsigned long long>(report->cells_checked), report->differences.size());
  return report->differences.empty() ? 0 : 1;
}

}  // namespace loanledger::server
