#include "server/session.h"

#include <spdlog/spdlog.h>

#include <array>
#include <exception>
#include <string>
#include <vector>

#include "schema/check.h"
#include "server/batch_writer.h"
#include "server/cluster_glue.h"
#include "server/metrics.h"
#include "server/peer_guard.h"
#include "storage/ledger.h"

namespace loanledger::server {
namespace {

using asio::redirect_error;
using asio::use_awaitable;
using boost::system::error_code;
using Clock = Session::Clock;

// Poll period while the server-wide byte budget is full (the session is
// not reading meanwhile; 2 ms is well below a WAL sync). A full writer
// queue is not polled: the writer wakes the session (HandleSubmit).
constexpr auto kBusyPoll = std::chrono::milliseconds(2);
// After a final error frame the session shuts its sending side and reads and
// discards what the peer still sends, for at most this long and this much:
// closing with unread input sends a RST that can destroy the error frame
// before the peer reads it.
constexpr uint32_t kLingerMs = 1000;
constexpr size_t kLingerBytesMax = size_t{1} << 20;
// A frame up to this size (a Hello, a query, a small batch) is admitted
// whatever the server-wide budget: the per-connection bound still holds, and
// this times connections_max is small (16 MiB at the defaults), so clients
// that stall large frames cannot starve everyone else's small requests.
constexpr uint64_t kSmallFrameBytes = uint64_t{64} << 10;
// A throttled address's failed Hellos are logged once when the throttling
// starts and then every this many failures (the rest at debug level): a
// guessing burst must not flood the log.
constexpr uint32_t kAuthFailureLogEvery = 100;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

auto LogException(uint64_t id) {
  return [id](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("session {}: unexpected exception: {}", id, ex.what());
    } catch (...) {
      spdlog::error("session {}: unexpected exception", id);
    }
  };
}

wire::Frame ErrorFrame(uint64_t request_id, const Status& status) {
  LL_CHECK(!status.ok());
  if (status.code() == Status::Code::kNotLeader) {
    const std::string& leader = status.message();
    return wire::EncodeError(request_id, wire::ErrorCode::NOT_LEADER,
                             leader.empty()
                                 ? "this node does not lead the partition; no leader is known yet"
                                 : "this node does not lead the partition; the leader is " + leader,
                             leader);
  }
  return wire::EncodeError(request_id, wire::ErrorCodeFor(status.code()), status.message());
}

std::string StatsText(const storage::LedgerStats& s, size_t writer_queue, double connections) {
  std::string text;
  auto line = [&](const char* key, uint64_t value) {
    text += key;
    text += ' ';
    text += std::to_string(value);
    text += '\n';
  };
  line("batches_applied", s.batches_applied);
  line("loans", s.loans);
  line("loan_snapshots_written", s.snapshots_written);
  line("loan_snapshots_failed", s.snapshots_failed);
  if (!s.last_snapshot_error.empty()) {
    text += "loan_snapshot_last_error " + s.last_snapshot_error + '\n';
  }
  line("events_since_loan_snapshot", s.events_since_snapshot);
  line("rocksdb_memtable_bytes", s.memtable_bytes);
  line("rocksdb_pending_compaction_bytes", s.pending_compaction_bytes);
  line("rocksdb_live_sst_bytes", s.live_sst_bytes);
  line("rocksdb_block_cache_usage_bytes", s.block_cache_usage_bytes);
  line("rocksdb_write_stopped", s.write_stopped ? 1 : 0);
  line("writer_queue_batches", writer_queue);
  line("connections_active", static_cast<uint64_t>(connections));
  return text;
}

}  // namespace

Session::Session(const SessionEnv& env, tcp::socket socket, uint64_t id, std::string peer_address,
                 std::function<void(uint64_t)> on_closed)
    : env_(env),
      id_(id),
      on_closed_(std::move(on_closed)),
      socket_(std::move(socket)),
      executor_(socket_.get_executor()),
      peer_address_(std::move(peer_address)),
      read_deadline_(executor_),
      write_deadline_(executor_),
      reader_wake_(executor_),
      writer_wake_(executor_),
      writer_room_(executor_) {
  error_code ec;
  const tcp::endpoint peer = socket_.remote_endpoint(ec);
  peer_ = ec ? std::string("?") : peer.address().to_string() + ":" + std::to_string(peer.port());
  if (env_.tls != nullptr) tls_.emplace(socket_, *env_.tls);
  Disarm(read_deadline_);
  Disarm(write_deadline_);
}

// The unauthenticated slot is released at the Hello or at the end of
// WriteLoop, which every started session reaches (it holds the session);
// not here: env_ may be gone when an io_context is destroyed with sessions.
Session::~Session() = default;

void Session::ReleasePeerSlot() {
  if (!holds_peer_slot_) return;
  holds_peer_slot_ = false;
  if (env_.peers != nullptr) env_.peers->ReleaseUnauthenticated(peer_address_);
}

void Session::Start() { asio::co_spawn(executor_, Run(shared_from_this()), LogException(id_)); }

void Session::BeginShutdown() {
  asio::post(executor_, [self = shared_from_this()] {
    self->stop_reading_ = true;
    Wake(self->reader_wake_);
    // A read waiting for the next header ends at once (EOF); a frame being
    // received is finished and answered.
    if (self->read_phase_ == ReadPhase::kHeader && !self->closed_) {
      error_code ec;
      self->socket_.shutdown(tcp::socket::shutdown_receive, ec);
    }
  });
}

void Session::ForceClose() {
  asio::post(executor_, [self = shared_from_this()] { self->Close(); });
}

Session::Awaitable Session::Run(std::shared_ptr<Session> self) {
  asio::co_spawn(executor_, Watchdog(self, read_deadline_), LogException(id_));
  asio::co_spawn(executor_, Watchdog(self, write_deadline_), LogException(id_));
  asio::co_spawn(executor_, WriteLoop(self), LogException(id_));
  // One deadline for the TLS handshake and the whole first frame: trickling
  // it a byte at a time does not earn a fresh read timeout for its body.
  hello_deadline_ = Clock::now() + std::chrono::milliseconds(env_.config->hello_timeout_ms);
  try {
    bool ready = true;
    if (tls_) {
      error_code ec;
      read_phase_ = ReadPhase::kHeader;
      ArmRead(env_.config->hello_timeout_ms);
      co_await tls_->async_handshake(asio::ssl::stream_base::server,
                                     redirect_error(use_awaitable, ec));
      Disarm(read_deadline_);
      read_phase_ = ReadPhase::kNone;
      if (ec) {
        spdlog::info("session {} {}: TLS handshake failed: {}", id_, peer_, ec.message());
        ready = false;
        Close();
      }
    }
    if (ready) co_await ReadLoop();
  } catch (const std::exception& e) {
    spdlog::error("session {} {}: reader: {}", id_, peer_, e.what());
    Close();
  }
  read_phase_ = ReadPhase::kNone;
  reader_done_ = true;
  Wake(writer_wake_);
}

Session::Awaitable Session::ReadLoop() {
  const ServerConfig& cfg = *env_.config;
  wire::FrameLimits limits = wire::kRequestLimits;
  limits.frame_bytes_max = cfg.frame_bytes_max;
  // Until the Hello succeeds only a Hello-sized frame is accepted: an
  // unauthenticated peer cannot make us allocate a batch-sized buffer.
  wire::FrameLimits hello_limits = limits;
  hello_limits.frame_bytes_max = std::min(cfg.hello_frame_bytes_max, cfg.frame_bytes_max);
  wire::FrameReader reader(hello_limits);
  bool full_limits = false;  // reader has `limits` (after the Hello)
  while (!stop_reading_ && !closed_) {
    if (principal_ && !full_limits) {
      reader = wire::FrameReader(limits);
      full_limits = true;
    }
    // Backpressure: at the bound we stop reading; TCP pushes back.
    while (in_flight_requests_ >= cfg.inflight_requests_max && !stop_reading_ && !closed_) {
      co_await WaitFor(reader_wake_);
    }
    if (stop_reading_ || closed_) break;
    error_code ec;
    read_phase_ = ReadPhase::kHeader;
    ArmRead(principal_ ? cfg.idle_timeout_ms : cfg.hello_timeout_ms);
    co_await ReadExactly(asio::buffer(reader.header(), wire::kFrameHeaderBytes), ec);
    Disarm(read_deadline_);
    read_phase_ = ReadPhase::kNone;
    if (ec) {
      if (ec != asio::error::eof)
        spdlog::debug("session {} {}: read: {}", id_, peer_, ec.message());
      break;
    }
    // Reserve the budgets before OnHeader allocates the body buffer, so that
    // a connection waiting for room holds no buffer. A length OnHeader will
    // refuse is not waited for.
    const uint64_t declared = wire::DecodeFrameLength(reader.header());
    bool reserved = false;
    if (declared >= wire::kFrameBodyBytesMin && declared <= reader.limits().frame_bytes_max) {
      reserved = co_await ReserveFrame(declared);
      if (!reserved) break;  // closed while waiting
    }
    if (Status s = reader.OnHeader(); !s.ok()) {
      if (reserved) ReleaseBytes(declared);
      env_.metrics->bad_frames.Increment();
      const std::string why = principal_ ? s.message() : s.message() + " before a Hello";
      spdlog::warn("session {} {}: bad frame: {}; closing", id_, peer_, why);
      Finish(wire::EncodeError(0, wire::ErrorCode::BAD_FRAME, why));
      break;
    }
    const uint64_t n = reader.body_size();
    LL_CHECK(reserved && n == declared);
    read_phase_ = ReadPhase::kBody;
    ArmRead(cfg.read_timeout_ms);
    co_await ReadExactly(asio::buffer(reader.body(), n), ec);
    Disarm(read_deadline_);
    read_phase_ = ReadPhase::kNone;
    if (ec) {
      // A truncated frame: the peer stopped sending (read timeout) or
      // closed inside it. Nothing of it is applied; say why, then close.
      ReleaseBytes(n);
      if (!closed_) {
        env_.metrics->bad_frames.Increment();
        std::string why = "connection ended inside a frame (" + ec.message() + ")";
        if (body_timed_out_) {
          why = principal_ ? "frame body incomplete after the read timeout"
                           : "Hello incomplete after the hello timeout";
        }
        spdlog::warn("session {} {}: bad frame: {}; closing", id_, peer_, why);
        Finish(wire::EncodeError(0, wire::ErrorCode::BAD_FRAME, why));
      }
      break;
    }
    const Clock::time_point received = Clock::now();
    Result<const wire::Message*> message = reader.OnBody();
    if (!message.ok()) {
      ReleaseBytes(n);
      env_.metrics->bad_frames.Increment();
      spdlog::warn("session {} {}: bad frame: {}; closing", id_, peer_, message.status().message());
      Finish(wire::EncodeError(0, wire::ErrorCode::BAD_FRAME, message.status().message()));
      break;
    }
    ++in_flight_requests_;
    co_await Dispatch(**message, n, received);
    reader.Shrink();
  }
}

Session::Awaitable Session::WriteLoop(std::shared_ptr<Session> self) {
  try {
    while (true) {
      while (replies_.empty() && !(reader_done_ && in_flight_requests_ == 0)) {
        co_await WaitFor(writer_wake_);
      }
      if (replies_.empty()) break;  // the reader is done and every request answered
      Reply reply = std::move(replies_.front());
      replies_.pop_front();
      if (!closed_) {
        error_code ec;
        Arm(write_deadline_, env_.config->write_timeout_ms);
        co_await WriteAll(asio::buffer(reply.frame.data(), reply.frame.size()), ec);
        Disarm(write_deadline_);
        if (ec) {
          spdlog::debug("session {} {}: write: {}", id_, peer_, ec.message());
          Close();
        }
      }
      LL_CHECK(reply_bytes_ >= reply.frame.size());
      reply_bytes_ -= reply.frame.size();
      Wake(reader_wake_);  // the byte bound may have room again
      if (reply.counted) {
        LL_CHECK(in_flight_requests_ > 0);
        --in_flight_requests_;
        Wake(reader_wake_);
      }
    }
    if (final_frame_ && !closed_) {
      error_code ec;
      Arm(write_deadline_, env_.config->write_timeout_ms);
      co_await WriteAll(asio::buffer(final_frame_->data(), final_frame_->size()), ec);
      Disarm(write_deadline_);
      if (!ec) co_await Linger();
    }
  } catch (const std::exception& e) {
    spdlog::error("session {} {}: writer: {}", id_, peer_, e.what());
  }
  Close();
  LL_CHECK(closed_);
  ReleasePeerSlot();
  spdlog::debug("session {} {}: closed", id_, peer_);
  if (on_closed_) {
    auto on_closed = std::move(on_closed_);
    on_closed_ = nullptr;
    on_closed(id_);
  }
  (void)self;  // kept the session alive until here
}

Session::Awaitable Session::Watchdog(std::shared_ptr<Session> self, asio::steady_timer& deadline) {
  while (!closed_) {
    error_code ec;
    co_await deadline.async_wait(redirect_error(use_awaitable, ec));
    if (closed_) break;
    if (deadline.expiry() > Clock::now()) continue;  // re-armed or disarmed meanwhile
    const bool reading = &deadline == &read_deadline_;
    if (reading && read_phase_ == ReadPhase::kHeader && principal_ && in_flight_requests_ > 0) {
      // Waiting for the next request while earlier ones are being worked
      // on is not idleness.
      Arm(read_deadline_, env_.config->idle_timeout_ms);
      continue;
    }
    if (reading && read_phase_ == ReadPhase::kBody && !body_timed_out_) {
      // End the body read (EOF) so that the reader answers BAD_FRAME; close
      // for good if even that does not happen within the linger time.
      body_timed_out_ = true;
      env_.metrics->timeouts.Increment();
      spdlog::info("session {} {}: read timeout inside a frame", id_, peer_);
      error_code shutdown_ec;
      socket_.shutdown(tcp::socket::shutdown_receive, shutdown_ec);
      Arm(read_deadline_, kLingerMs);
      continue;
    }
    if (!(reading && read_phase_ == ReadPhase::kLinger)) {
      env_.metrics->timeouts.Increment();
      spdlog::info("session {} {}: {} timeout; closing", id_, peer_,
                   !reading                            ? "write"
                   : !principal_                       ? "hello"
                   : read_phase_ == ReadPhase::kHeader ? "idle"
                                                       : "read");
    }
    Close();
  }
  (void)self;
}

Session::Awaitable Session::Dispatch(const wire::Message& message, uint64_t frame_bytes,
                                     Clock::time_point received) {
  const uint64_t id = message.request_id();
  const wire::Body type = message.body_type();
  if (!principal_) {
    if (type == wire::Body::Hello) {
      co_await HandleHello(message, frame_bytes);
    } else {
      --in_flight_requests_;
      ReleaseBytes(frame_bytes);
      spdlog::warn("session {} {}: {} before Hello; closing", id_, peer_, wire::BodyName(type));
      Finish(wire::EncodeError(id, wire::ErrorCode::UNAUTHENTICATED,
                               "the first frame must be Hello with a token"));
    }
    co_return;
  }
  switch (type) {
    case wire::Body::Hello:
      CompleteError(id, frame_bytes, Status::Code::kInvalidArgument, "already authenticated");
      break;
    case wire::Body::SubmitBatch:
      co_await HandleSubmit(message, frame_bytes, received);
      break;
    case wire::Body::ReportRequest:
    case wire::Body::SeriesRequest:
    case wire::Body::LoanRequest:
      HandleQuery(message, frame_bytes);
      break;
    case wire::Body::VerifyRequest:
    case wire::Body::StatsRequest:
    case wire::Body::CompactRequest:
    case wire::Body::CheckpointRequest:
    case wire::Body::RulesShowRequest:
    case wire::Body::RulesApplyRequest:
      HandleAdmin(message, frame_bytes);
      break;
    default: {
      --in_flight_requests_;
      ReleaseBytes(frame_bytes);
      env_.metrics->bad_frames.Increment();
      const std::string why =
          "message type " + std::string(wire::BodyName(type)) + " is not a request";
      spdlog::warn("session {} {}: {}; closing", id_, peer_, why);
      Finish(wire::EncodeError(id, wire::ErrorCode::BAD_FRAME, why));
      break;
    }
  }
}

Session::Awaitable Session::HandleHello(const wire::Message& message, uint64_t frame_bytes) {
  const wire::Hello* hello = message.body_as_Hello();
  LL_CHECK(hello != nullptr);  // the frame verifier refuses a message without body
  const Principal* principal = env_.tokens->Authenticate(wire::View(hello->token()));
  if (principal == nullptr) {
    env_.metrics->auth_failures.Increment();
    const uint64_t request_id = message.request_id();
    const PeerGuard::Verdict verdict = env_.peers->OnAuthFailure(peer_address_, Clock::now());
    if (verdict.delay.count() == 0) {
      spdlog::warn("session {} {}: token refused (client '{}'); closing", id_, peer_,
                   wire::View(hello->client_name()));
    } else {
      env_.metrics->auth_throttled.Increment();
      const bool first = verdict.failures == env_.config->auth_failures_free + 1;
      spdlog::log(first || verdict.failures % kAuthFailureLogEvery == 0 ? spdlog::level::warn
                                                                        : spdlog::level::debug,
                  "session {} {}: token refused (client '{}'); {} failed Hellos from {} within "
                  "{} ms: answering after {} ms, then closing",
                  id_, peer_, wire::View(hello->client_name()), verdict.failures, peer_address_,
                  env_.config->auth_failure_window_ms, verdict.delay.count());
      // Not reading meanwhile (this is the reader). `message` points into
      // the reader's buffer, untouched until we return; a shutdown or a
      // close wakes the timer early.
      reader_wake_.expires_after(verdict.delay);
      error_code ec;
      co_await reader_wake_.async_wait(redirect_error(use_awaitable, ec));
    }
    --in_flight_requests_;
    ReleaseBytes(frame_bytes);
    Finish(wire::EncodeError(request_id, wire::ErrorCode::UNAUTHENTICATED, "token refused"));
    co_return;
  }
  principal_ = *principal;
  ReleasePeerSlot();
  spdlog::info("session {} {}: authenticated {} as {}{}{} (client '{}')", id_, peer_,
               principal->name, RoleName(principal->role),
               principal->institution_id.empty() ? "" : " of ", principal->institution_id,
               wire::View(hello->client_name()));
  Complete(frame_bytes,
           wire::EncodeHelloOk(
               message.request_id(),
               wire::HelloOkInfo{principal->role, principal->institution_id, env_.server_version}));
}

Session::Awaitable Session::HandleSubmit(const wire::Message& message, uint64_t frame_bytes,
                                         Clock::time_point received) {
  const uint64_t id = message.request_id();
  if (principal_->role != wire::Role::INSTITUTION) {
    CompleteError(id, frame_bytes, Status::Code::kPermissionDenied,
                  "role " + std::string(RoleName(principal_->role)) + " may not submit batches");
    co_return;
  }
  const wire::SubmitBatch& body = *message.body_as_SubmitBatch();
  Result<std::vector<LoanEvent>> events = wire::DecodeSubmitBatch(body);
  if (!events.ok()) {
    CompleteError(id, frame_bytes, events.status().code(), events.status().message());
    co_return;
  }
  BatchWriter::Job job;
  job.batch.submitter = principal_->name;
  job.batch.caller_institution = principal_->institution_id;
  job.batch.events = std::move(*events);
  job.batch.stream = body.stream();
  job.batch.stream_batch = body.stream_batch();
  job.done = [self = shared_from_this(), id, frame_bytes,
              received](Result<storage::ApplyResult> result) {
    // Writer thread: hand the result to the session's strand.
    asio::post(self->executor_, [self, id, frame_bytes, received, result = std::move(result)]() {
      self->OnBatchDone(id, frame_bytes, received, result);
    });
  };
  env_.metrics->inflight_batches.Increment();
  // When the queue is full the writer calls on_room once it takes batches
  // off the queue (on its thread: posted to the strand), or Close() wakes
  // the session. The flag keeps a wake that lands before the wait.
  auto on_room = [self = shared_from_this()] {
    asio::post(self->executor_, [self] {
      self->writer_has_room_ = true;
      Wake(self->writer_room_);
    });
  };
  while (true) {
    writer_has_room_ = false;
    switch (env_.writer->TryEnqueue(job, on_room)) {
      case BatchWriter::Enqueue::kQueued:
        co_return;
      case BatchWriter::Enqueue::kStopped:
        env_.metrics->inflight_batches.Decrement();
        CompleteError(id, frame_bytes, Status::Code::kUnavailable,
                      "server is shutting down; resend the batch");
        co_return;
      case BatchWriter::Enqueue::kFull:
        break;
    }
    if (closed_) {
      // Nobody to answer; the batch was never acknowledged, so dropping it
      // is allowed (the client resends it).
      env_.metrics->inflight_batches.Decrement();
      CompleteError(id, frame_bytes, Status::Code::kUnavailable, "connection closed");
      co_return;
    }
    while (!writer_has_room_ && !closed_) co_await WaitFor(writer_room_);
  }
}

void Session::OnBatchDone(uint64_t request_id, uint64_t frame_bytes, Clock::time_point received,
                          Result<storage::ApplyResult> result) {
  env_.metrics->inflight_batches.Decrement();
  if (!result.ok()) {
    Complete(frame_bytes, ErrorFrame(request_id, result.status()));
    return;
  }
  env_.metrics->ack_latency.Observe(SecondsSince(received));
  const storage::ApplyResult& r = *result;
  if (r.applied) {
    Complete(frame_bytes, wire::EncodeAck(request_id, wire::AckInfo{r.batch_no, r.events_applied,
                                                                    r.events_duplicate}));
    return;
  }
  std::vector<wire::RejectionEntry> entries;
  entries.reserve(r.rejections.size());
  for (const storage::EventRejection& e : r.rejections) {
    entries.push_back(wire::RejectionEntry{e.index, e.reason, e.message});
  }
  Complete(frame_bytes, wire::EncodeRejected(request_id, entries, r.skipped));
}

template <typename F>
wire::Frame Session::RunQuery(uint64_t request_id, std::optional<QueryKind> kind, F& run) const {
  const Clock::time_point start = Clock::now();
  wire::Frame frame;
  try {
    frame = run();
  } catch (const std::exception& e) {
    frame = wire::EncodeError(request_id, wire::ErrorCode::INTERNAL, e.what());
  }
  if (kind) env_.metrics->ObserveQuery(*kind, SecondsSince(start));
  if (frame.size() > wire::kFrameHeaderBytes + wire::kReplyFrameBytesMax) {
    frame =
        wire::EncodeError(request_id, wire::ErrorCode::RESOURCE_EXHAUSTED,
                          "the reply would exceed " + std::to_string(wire::kReplyFrameBytesMax) +
                              " bytes; narrow the query");
  }
  return frame;
}

template <typename F>
void Session::RunOnQueryPool(uint64_t request_id, uint64_t frame_bytes,
                             std::optional<QueryKind> kind, F run) {
  asio::post(*env_.query_pool, [self = shared_from_this(), request_id, frame_bytes, kind,
                                run = std::move(run)]() mutable {
    auto frame = std::make_shared<wire::Frame>(self->RunQuery(request_id, kind, run));
    asio::post(self->executor_,
               [self, frame_bytes, frame] { self->Complete(frame_bytes, std::move(*frame)); });
  });
}

void Session::HandleQuery(const wire::Message& message, uint64_t frame_bytes) {
  const uint64_t id = message.request_id();
  const Principal& p = *principal_;
  if (p.role != wire::Role::INSTITUTION && p.role != wire::Role::REGULATOR) {
    CompleteError(id, frame_bytes, Status::Code::kPermissionDenied,
                  "role " + std::string(RoleName(p.role)) + " may not read figures");
    return;
  }
  std::optional<std::string> scope;
  if (p.role == wire::Role::INSTITUTION) scope = p.institution_id;
  storage::Ledger* ledger = env_.ledger;
  switch (message.body_type()) {
    case wire::Body::ReportRequest: {
      Result<ReportQuery> q = wire::DecodeReportRequest(*message.body_as_ReportRequest());
      if (!q.ok()) return CompleteError(id, frame_bytes, q.status().code(), q.status().message());
      q->scope_institution = scope;
      const bool by_institution = q->by == GroupBy::kInstitution;
      auto run = [ledger, id, query = std::move(*q)] {
        Result<Report> r = ledger->QueryReport(query);
        return r.ok() ? wire::EncodeReportReply(id, *r) : ErrorFrame(id, r.status());
      };
      if (by_institution) {
        RunOnQueryPool(id, frame_bytes, QueryKind::kReport, std::move(run));
        return;
      }
      // Answered here, on the strand, not on the query pool. Such a report
      // is at most a row per category and province, read from in-memory
      // series (measured p50 0.04 ms, with or without by province), while
      // the hand-off to a pool thread and back is two thread wake-ups, and
      // on a busy machine each waits for a core: under bench/run_load.sh on
      // 2 cores those waits made the server's part of the report p99
      // 13-20 ms (bench/RESULTS.md).
      // The cost: while the writer publishes a group the ledger's aggregate
      // lock makes this io thread wait too (measured: 0.3% of reports, up
      // to ~10 ms), delaying the other connections it serves. By-institution
      // reports grow with the number of institutions and stay on the pool.
      Complete(frame_bytes, RunQuery(id, QueryKind::kReport, run));
      return;
    }
    case wire::Body::SeriesRequest: {
      Result<SeriesQuery> q = wire::DecodeSeriesRequest(*message.body_as_SeriesRequest());
      if (!q.ok()) return CompleteError(id, frame_bytes, q.status().code(), q.status().message());
      q->scope_institution = scope;
      RunOnQueryPool(id, frame_bytes, QueryKind::kSeries, [ledger, id, query = std::move(*q)] {
        Result<Series> r = ledger->QuerySeries(query);
        return r.ok() ? wire::EncodeSeriesReply(id, *r) : ErrorFrame(id, r.status());
      });
      return;
    }
    case wire::Body::LoanRequest: {
      const wire::LoanRequest* req = message.body_as_LoanRequest();
      std::string institution(wire::View(req->institution_id()));
      std::string loan(wire::View(req->loan_id()));
      if (scope && institution != *scope) {
        return CompleteError(id, frame_bytes, Status::Code::kPermissionDenied,
                             "an institution may read only its own loans");
      }
      RunOnQueryPool(id, frame_bytes, QueryKind::kLoan,
                     [ledger, id, institution = std::move(institution), loan = std::move(loan)] {
                       Result<LoanView> r = ledger->QueryLoan(institution, loan);
                       return r.ok() ? wire::EncodeLoanReply(id, *r) : ErrorFrame(id, r.status());
                     });
      return;
    }
    default:
      LL_CHECK(false);
  }
}

void Session::HandleAdmin(const wire::Message& message, uint64_t frame_bytes) {
  const uint64_t id = message.request_id();
  if (principal_->role != wire::Role::ADMIN) {
    return CompleteError(
        id, frame_bytes, Status::Code::kPermissionDenied,
        "only an admin token may ask for " + std::string(wire::BodyName(message.body_type())));
  }
  storage::Ledger* ledger = env_.ledger;
  if (message.body_type() == wire::Body::VerifyRequest) {
    spdlog::info("session {} {}: verify requested by {}", id_, peer_, principal_->name);
    RunOnQueryPool(id, frame_bytes, std::nullopt, [ledger, id] {
      Result<storage::VerifyReport> r = ledger->Verify();
      if (!r.ok()) return ErrorFrame(id, r.status());
      wire::VerifySummary s{
          r->batches_replayed, r->events_replayed, r->loans_checked, r->cells_checked, {}};
      for (const storage::VerifyDifference& d : r->differences) {
        s.differences.push_back(wire::VerifyDiff{d.what, d.expected, d.actual});
      }
      return wire::EncodeVerifyReply(id, s);
    });
    return;
  }
  if (message.body_type() == wire::Body::CheckpointRequest) {
    const std::string dir(wire::View(message.body_as_CheckpointRequest()->dir()));
    spdlog::info("session {} {}: checkpoint to {} requested by {}", id_, peer_, dir,
                 principal_->name);
    RunOnQueryPool(id, frame_bytes, std::nullopt, [ledger, id, dir] {
      if (dir.empty() || dir.front() != '/') {
        return ErrorFrame(id, Status::InvalidArgument(
                                  "checkpoint directory must be an absolute path on the server"));
      }
      Result<storage::Ledger::CheckpointInfo> r = ledger->Checkpoint(dir);
      if (!r.ok()) return ErrorFrame(id, r.status());
      spdlog::info("checkpoint written to {}: stream seq {}, {} batches", dir, r->log_position,
                   r->batches);
      return wire::EncodeCheckpointReply(id,
                                         wire::CheckpointSummary{dir, r->log_position, r->batches});
    });
    return;
  }
  if (message.body_type() == wire::Body::CompactRequest) {
    // On the query pool like Verify: it may take minutes, and the session
    // goes on answering meanwhile.
    spdlog::info("session {} {}: compaction requested by {}", id_, peer_, principal_->name);
    RunOnQueryPool(id, frame_bytes, std::nullopt, [ledger, id] {
      Result<storage::CompactionReport> r = ledger->Compact();
      if (!r.ok()) return ErrorFrame(id, r.status());
      spdlog::info("compaction done in {} ms: live SST bytes {} -> {}", r->duration_ms,
                   r->live_sst_bytes_before, r->live_sst_bytes_after);
      return wire::EncodeCompactReply(
          id,
          wire::CompactSummary{r->duration_ms, r->live_sst_bytes_before, r->live_sst_bytes_after});
    });
    return;
  }
  if (message.body_type() == wire::Body::RulesShowRequest ||
      message.body_type() == wire::Body::RulesApplyRequest) {
    return HandleRules(message, frame_bytes);
  }
  LL_CHECK(message.body_type() == wire::Body::StatsRequest);
  BatchWriter* writer = env_.writer;
  Metrics* metrics = env_.metrics;
  const cluster::Node* node = env_.cluster != nullptr ? env_.cluster->get() : nullptr;
  RunOnQueryPool(id, frame_bytes, std::nullopt, [ledger, writer, metrics, node, id] {
    std::string text =
        StatsText(ledger->Stats(), writer->depth(), metrics->connections_active.Value());
    if (node != nullptr) {
      // The digest pauses the writer for one pass over the loans: an admin
      // request, not a metric.
      text += ClusterStatsText(node->State());
      const storage::Ledger::Digest d = ledger->StateDigest();
      text += "state_digest " + d.hex + " at stream seq " + std::to_string(d.log_position) + '\n';
    }
    return wire::EncodeStatsReply(id, text);
  });
}

// Admin: the category rules (docs/categories.md). Apply recomputes every
// aggregate in the background (minutes on a large store) on the query
// pool, as Compact does; queries and batches go on meanwhile.
void Session::HandleRules(const wire::Message& message, uint64_t frame_bytes) {
  const uint64_t id = message.request_id();
  storage::Ledger* ledger = env_.ledger;
  const auto info = [](const storage::RulesVersion& v, bool with_text) {
    return wire::RulesVersionInfo{v.number, v.version, with_text ? v.text : std::string(),
                                  v.applied_ms};
  };
  if (message.body_type() == wire::Body::RulesShowRequest) {
    RunOnQueryPool(id, frame_bytes, std::nullopt, [ledger, id, info] {
      wire::RulesShowInfo show;
      show.current = info(ledger->CurrentRules(), true);
      Result<std::vector<storage::RulesVersion>> history = ledger->RulesHistory();
      if (!history.ok()) return ErrorFrame(id, history.status());
      for (const storage::RulesVersion& v : *history) show.history.push_back(info(v, false));
      const storage::RulesProgress p = ledger->RulesRecompute();
      show.recompute_running = p.running;
      show.recompute_version = p.version;
      show.recompute_batches_done = p.batches_done;
      show.recompute_batches_total = p.batches_total;
      return wire::EncodeRulesShowReply(id, show);
    });
    return;
  }
  std::string text(wire::View(message.body_as_RulesApplyRequest()->text()));
  spdlog::info("session {} {}: rules apply requested by {} ({} bytes)", id_, peer_,
               principal_->name, text.size());
  RunOnQueryPool(id, frame_bytes, std::nullopt, [ledger, id, info, text = std::move(text)] {
    Result<storage::RulesVersion> r = ledger->ApplyRules(text);
    if (!r.ok()) {
      spdlog::warn("rules apply refused: {}", r.status().ToString());
      return ErrorFrame(id, r.status());
    }
    spdlog::info("rules version {} ({}) in force", r->number, r->version);
    return wire::EncodeRulesApplyReply(id, info(*r, false));
  });
}

void Session::Complete(uint64_t frame_bytes, wire::Frame reply) {
  ReleaseBytes(frame_bytes);
  reply_bytes_ += reply.size();
  replies_.push_back(Reply{std::move(reply), true});
  LL_CHECK(replies_.size() <= in_flight_requests_);
  Wake(writer_wake_);
}

void Session::CompleteError(uint64_t request_id, uint64_t frame_bytes, Status::Code code,
                            std::string_view message) {
  LL_CHECK(code != Status::Code::kOk);
  Complete(frame_bytes, wire::EncodeError(request_id, wire::ErrorCodeFor(code), message));
}

void Session::Finish(wire::Frame final_frame) {
  if (!final_frame_) final_frame_ = std::move(final_frame);
  stop_reading_ = true;
  Wake(reader_wake_);
  Wake(writer_wake_);
}

asio::awaitable<bool> Session::ReserveFrame(uint64_t n) {
  const uint64_t bound = env_.config->inflight_bytes_max;
  // The connection's bound: request bytes in process plus reply bytes the
  // client has not taken yet (a client that pipelines and never reads stops
  // being read once its unread replies reach the bound). A frame is always
  // admitted when the connection holds nothing.
  while (!closed_ && in_flight_bytes_ + reply_bytes_ > 0 &&
         in_flight_bytes_ + reply_bytes_ + n > bound) {
    co_await WaitFor(reader_wake_);
  }
  while (!closed_) {
    if (ReserveServerBytes(n)) {
      in_flight_bytes_ += n;
      co_return true;
    }
    error_code ec;
    asio::steady_timer pause(executor_, kBusyPoll);
    co_await pause.async_wait(redirect_error(use_awaitable, ec));
  }
  co_return false;
}

bool Session::ReserveServerBytes(uint64_t n) {
  std::atomic<uint64_t>& budget = *env_.server_inflight_bytes;
  if (n <= kSmallFrameBytes) {
    budget.fetch_add(n);
    return true;
  }
  uint64_t current = budget.load();
  do {
    // A frame is always admitted when nothing else is in flight.
    if (current > 0 && current + n > env_.config->server_inflight_bytes_max) return false;
  } while (!budget.compare_exchange_weak(current, current + n));
  return true;
}

void Session::ReleaseBytes(uint64_t n) {
  LL_CHECK(in_flight_bytes_ >= n);
  in_flight_bytes_ -= n;
  const uint64_t before = env_.server_inflight_bytes->fetch_sub(n);
  LL_CHECK(before >= n);
  Wake(reader_wake_);
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  read_deadline_.cancel();
  write_deadline_.cancel();
  Wake(reader_wake_);
  Wake(writer_wake_);
  Wake(writer_room_);
}

Session::Awaitable Session::WaitFor(asio::steady_timer& event) {
  event.expires_at(asio::steady_timer::time_point::max());
  error_code ec;
  co_await event.async_wait(redirect_error(use_awaitable, ec));
}

void Session::Arm(asio::steady_timer& deadline, uint32_t ms) {
  deadline.expires_after(std::chrono::milliseconds(ms));
}

void Session::ArmRead(uint32_t ms) {
  const Clock::time_point at = Clock::now() + std::chrono::milliseconds(ms);
  read_deadline_.expires_at(principal_ ? at : std::min(at, hello_deadline_));
}

void Session::Disarm(asio::steady_timer& deadline) {
  deadline.expires_at(asio::steady_timer::time_point::max());
}

Session::Awaitable Session::ReadExactly(asio::mutable_buffer buffer, error_code& ec) {
  if (tls_) {
    co_await asio::async_read(*tls_, buffer, redirect_error(use_awaitable, ec));
  } else {
    co_await asio::async_read(socket_, buffer, redirect_error(use_awaitable, ec));
  }
}

Session::Awaitable Session::WriteAll(asio::const_buffer buffer, error_code& ec) {
  if (tls_) {
    co_await asio::async_write(*tls_, buffer, redirect_error(use_awaitable, ec));
  } else {
    co_await asio::async_write(socket_, buffer, redirect_error(use_awaitable, ec));
  }
}

Session::Awaitable Session::Linger() {
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  read_phase_ = ReadPhase::kLinger;
  Arm(read_deadline_, kLingerMs);
  std::array<char, 4096> scratch;
  size_t discarded = 0;
  while (!closed_ && discarded < kLingerBytesMax) {
    const size_t k =
        co_await socket_.async_read_some(asio::buffer(scratch), redirect_error(use_awaitable, ec));
    if (ec) break;
    discarded += k;
  }
  Disarm(read_deadline_);
  read_phase_ = ReadPhase::kNone;
}

}  // namespace loanledger::server
