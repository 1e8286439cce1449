// A session's requests: dispatch by message type, the Hello (authentication
// and the throttling of failed Hellos), the role checks, submitted batches
// (the batch writer's queue) and queries. Admin requests: session_admin.cc.
#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "schema/check.h"
#include "server/batch_writer.h"
#include "server/metrics.h"
#include "server/peer_guard.h"
#include "server/session.h"
#include "server/session_internal.h"
#include "storage/ledger.h"

namespace loanledger::server {
namespace {

using asio::redirect_error;
using asio::use_awaitable;
using boost::system::error_code;
using session_internal::ErrorFrame;
using session_internal::SecondsSince;

// A throttled address's failed Hellos are logged once when the throttling
// starts and then every this many failures (the rest at debug level): a
// guessing burst must not flood the log.
constexpr uint32_t kAuthFailureLogEvery = 100;

}  // namespace

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
    case wire::Body::BackupRequest:
    case wire::Body::RulesShowRequest:
    case wire::Body::RulesApplyRequest:
      HandleAdmin(message, frame_bytes);
      break;
    default: {
      --in_flight_requests_;
      ReleaseBytes(frame_bytes);
      FinishBadFrame(id, "message type " + std::string(wire::BodyName(type)) + " is not a request");
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
  if (Status s = CheckPartition(); !s.ok()) {
    Complete(frame_bytes, ErrorFrame(id, s));
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

// A partitioned cluster: an institution's batches go to its partition's
// leader (docs/cluster.md); this node names it, and the client follows.
Status Session::CheckPartition() const {
  if (env_.cluster == nullptr || *env_.cluster == nullptr) return Status::Ok();
  const cluster::Node& node = **env_.cluster;
  if (node.partitions() < 2) return Status::Ok();
  const uint32_t p = node.PartitionOf(principal_->institution_id);
  if (p == node.partition()) return Status::Ok();
  return Status::NotLeader(node.LeaderAddress(p));
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
  const Figures* figures = env_.figures;
  switch (message.body_type()) {
    case wire::Body::ReportRequest: {
      Result<ReportQuery> q = wire::DecodeReportRequest(*message.body_as_ReportRequest());
      if (!q.ok()) return CompleteError(id, frame_bytes, q.status().code(), q.status().message());
      q->scope_institution = scope;
      // A partitioned cluster: this node's part is computed here, like a
      // single node's report (by institution, where it grows with the
      // institutions, on the pool); the others' answers complete it on a
      // NATS thread. No thread waits for the network, and there is no
      // hand-off to the query pool and back (bench/RESULTS.md, "Partitions").
      const bool by_institution = q->by == GroupBy::kInstitution;
      if (figures->fans_out()) {
        RunFannedOut<Report>(
            id, frame_bytes, QueryKind::kReport, /*on_pool=*/by_institution,
            [figures, query = std::move(*q)](std::function<void(Result<Report>)> reply) {
              figures->QueryReportThen(query, std::move(reply));
            },
            [id](const Report& r) { return wire::EncodeReportReply(id, r); });
        return;
      }
      auto run = [figures, id, query = std::move(*q)] {
        Result<Report> r = figures->QueryReport(query);
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
      // A series' own part may be long: on the pool, either way.
      if (figures->fans_out()) {
        RunFannedOut<Series>(
            id, frame_bytes, QueryKind::kSeries, /*on_pool=*/true,
            [figures, query = std::move(*q)](std::function<void(Result<Series>)> reply) {
              figures->QuerySeriesThen(query, std::move(reply));
            },
            [id](const Series& r) { return wire::EncodeSeriesReply(id, r); });
        return;
      }
      RunOnQueryPool(id, frame_bytes, QueryKind::kSeries, [figures, id, query = std::move(*q)] {
        Result<Series> r = figures->QuerySeries(query);
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
      if (figures->fans_out()) {
        RunFannedOut<LoanView>(
            id, frame_bytes, QueryKind::kLoan, /*on_pool=*/true,
            [figures, institution = std::move(institution),
             loan = std::move(loan)](std::function<void(Result<LoanView>)> reply) {
              figures->QueryLoanThen(institution, loan, std::move(reply));
            },
            [id](const LoanView& r) { return wire::EncodeLoanReply(id, r); });
        return;
      }
      RunOnQueryPool(id, frame_bytes, QueryKind::kLoan,
                     [figures, id, institution = std::move(institution), loan = std::move(loan)] {
                       Result<LoanView> r = figures->QueryLoan(institution, loan);
                       return r.ok() ? wire::EncodeLoanReply(id, *r) : ErrorFrame(id, r.status());
                     });
      return;
    }
    default:
      LL_CHECK(false);
  }
}

}  // namespace loanledger::server
