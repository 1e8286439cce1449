// The client library (client.h): request/reply, pipelined submission,
// reconnect and resend. Transport in connection.cc.
#include "client/client.h"

#include <algorithm>
#include <deque>
#include <random>
#include <thread>

#include "client/connection.h"
#include "schema/check.h"
#include "schema/limits.h"
#include "schema/wire.h"

namespace loanledger::client {
namespace {

using detail::Clock;
using detail::Connection;

// Verify recomputes the whole ledger from the journal: minutes for a national
// portfolio, so it gets at least this long instead of request_timeout_ms.
constexpr uint32_t kVerifyTimeoutMs = 3'600'000;  // Verify and Compact: an hour

// Reconnect backoff: 100 ms, doubling, at most 5 s between attempts.
constexpr auto kBackoffFirst = std::chrono::milliseconds(100);
constexpr auto kBackoffMax = std::chrono::milliseconds(5000);
// Looking for a leader (cluster mode): 50 ms, doubling, at most 100 ms between
// attempts, so that a new leader (elected within a few seconds) is found
// soon after it is (a cap of 250 ms left up to 250 ms between the election
// and the client's next attempt: docs/cluster.md, "Failover"). An attempt
// resends at most the batches in flight, less than a client sends while a
// leader answers.
constexpr auto kFailoverBackoffFirst = std::chrono::milliseconds(50);
constexpr auto kFailoverBackoffMax = std::chrono::milliseconds(100);

bool IsError(const wire::Message& m) { return m.body_type() == wire::Body::Error; }

// Errors after which the same request may succeed on a new connection.
bool Retryable(const Status& s) {
  return s.code() == Status::Code::kUnavailable || s.code() == Status::Code::kResourceExhausted;
}

BatchOutcome OutcomeOf(const wire::Message& m) {
  BatchOutcome o;
  if (const wire::Ack* ack = m.body_as_Ack()) {
    const wire::AckInfo info = wire::DecodeAck(*ack);
    o.applied = true;
    o.batch_no = info.batch_no;
    o.events_applied = info.events_applied;
    o.events_duplicate = info.events_duplicate;
    return o;
  }
  const wire::Rejected* rejected = m.body_as_Rejected();
  LL_CHECK(rejected != nullptr);
  if (rejected->skipped()) {
    o.skipped = true;
    return o;
  }
  for (wire::RejectionEntry& r : wire::DecodeRejected(*rejected)) {
    o.rejections.push_back(Rejection{r.index, r.reason, std::move(r.message)});
  }
  if (o.rejections.empty()) {
    o.rejections.push_back(Rejection{0, Reason::kOk, "rejected without a reason"});
  }
  return o;
}

class ClientImpl final : public Client {
 public:
  explicit ClientImpl(ClientOptions options) : options_(std::move(options)) {}

  Status Init() {
    if (Status s = ParseServers(); !s.ok()) return s;
    if (options_.tls) {
      Result<std::unique_ptr<detail::TlsContext>> tls = detail::TlsContext::Make(options_);
      if (!tls.ok()) return tls.status();
      tls_ = std::move(*tls);
    }
    return ConnectRound();
  }

  const Identity& identity() const override { return identity_; }

  Result<BatchOutcome> Submit(const std::vector<LoanEvent>& events) override {
    bool given = false;
    std::optional<BatchOutcome> outcome;
    Status s = SubmitStream(
        [&](std::vector<LoanEvent>& batch) {
          if (given) return false;
          batch = events;
          given = true;
          return true;
        },
        [&](uint64_t, const BatchOutcome& o) {
          outcome = o;
          return true;
        });
    if (!s.ok()) return s;
    LL_CHECK(outcome.has_value());
    return *outcome;
  }

  Status SubmitStream(const std::function<bool(std::vector<LoanEvent>& batch)>& next,
                      const std::function<bool(uint64_t batch_index, const BatchOutcome& outcome)>&
                          on_outcome) override;

  Result<Report> QueryReport(const ReportQuery& query) override {
    Result<wire::OwnedMessage> r = Call(
        [&](uint64_t id) { return wire::EncodeReportRequest(id, query); }, wire::Body::ReportReply);
    if (!r.ok()) return r.status();
    return wire::DecodeReportReply(*r->message->body_as_ReportReply());
  }

  Result<Series> QuerySeries(const SeriesQuery& query) override {
    Result<wire::OwnedMessage> r = Call(
        [&](uint64_t id) { return wire::EncodeSeriesRequest(id, query); }, wire::Body::SeriesReply);
    if (!r.ok()) return r.status();
    return wire::DecodeSeriesReply(*r->message->body_as_SeriesReply());
  }

  Result<LoanView> QueryLoan(const std::string& institution_id,
                             const std::string& loan_id) override {
    Result<wire::OwnedMessage> r =
        Call([&](uint64_t id) { return wire::EncodeLoanRequest(id, institution_id, loan_id); },
             wire::Body::LoanReply);
    if (!r.ok()) return r.status();
    return wire::DecodeLoanReply(*r->message->body_as_LoanReply());
  }

  Result<VerifyOutcome> Verify() override {
    Result<wire::OwnedMessage> r =
        Call([](uint64_t id) { return wire::EncodeVerifyRequest(id); }, wire::Body::VerifyReply,
             std::max(options_.request_timeout_ms, kVerifyTimeoutMs));
    if (!r.ok()) return r.status();
    const wire::VerifySummary s = wire::DecodeVerifyReply(*r->message->body_as_VerifyReply());
    VerifyOutcome out{s.batches_replayed, s.events_replayed, s.loans_checked, s.cells_checked, {}};
    for (const wire::VerifyDiff& d : s.differences) {
      out.differences.push_back(d.what + ": expected " + std::to_string(d.expected) + " actual " +
                                std::to_string(d.actual));
    }
    return out;
  }

  Result<CheckpointOutcome> Checkpoint(const std::string& dir) override {
    Result<wire::OwnedMessage> r =
        Call([&dir](uint64_t id) { return wire::EncodeCheckpointRequest(id, dir); },
             wire::Body::CheckpointReply, std::max(options_.request_timeout_ms, kVerifyTimeoutMs));
    if (!r.ok()) return r.status();
    const wire::CheckpointSummary s =
        wire::DecodeCheckpointReply(*r->message->body_as_CheckpointReply());
    return CheckpointOutcome{s.dir, s.stream_seq, s.batches};
  }

  Result<BackupOutcome> Backup(const std::string& dir, uint32_t keep) override {
    Result<wire::OwnedMessage> r =
        Call([&](uint64_t id) { return wire::EncodeBackupRequest(id, dir, keep); },
             wire::Body::BackupReply, std::max(options_.request_timeout_ms, kVerifyTimeoutMs));
    if (!r.ok()) return r.status();
    const wire::BackupSummary s = wire::DecodeBackupReply(*r->message->body_as_BackupReply());
    return BackupOutcome{s.dir,        s.backup_id, s.batches, s.stream_seq,
                         s.size_bytes, s.new_bytes, s.files,   s.backups_kept};
  }

  Result<CompactOutcome> Compact() override {
    Result<wire::OwnedMessage> r =
        Call([](uint64_t id) { return wire::EncodeCompactRequest(id); }, wire::Body::CompactReply,
             std::max(options_.request_timeout_ms, kVerifyTimeoutMs));
    if (!r.ok()) return r.status();
    const wire::CompactSummary s = wire::DecodeCompactReply(*r->message->body_as_CompactReply());
    return CompactOutcome{s.duration_ms, s.live_sst_bytes_before, s.live_sst_bytes_after};
  }

  Result<RulesShowOutcome> RulesShow() override {
    Result<wire::OwnedMessage> r = Call(
        [](uint64_t id) { return wire::EncodeRulesShowRequest(id); }, wire::Body::RulesShowReply);
    if (!r.ok()) return r.status();
    const wire::RulesShowInfo s = wire::DecodeRulesShowReply(*r->message->body_as_RulesShowReply());
    const auto view = [](const wire::RulesVersionInfo& v) {
      return RulesVersionView{v.number, v.version, v.text, v.applied_ms};
    };
    RulesShowOutcome out;
    out.current = view(s.current);
    for (const wire::RulesVersionInfo& v : s.history) out.history.push_back(view(v));
    out.recompute_running = s.recompute_running;
    out.recompute_version = s.recompute_version;
    out.recompute_batches_done = s.recompute_batches_done;
    out.recompute_batches_total = s.recompute_batches_total;
    return out;
  }

  Result<RulesVersionView> RulesApply(const std::string& text) override {
    // A recompute of every aggregate: minutes on a large store.
    Result<wire::OwnedMessage> r =
        Call([&text](uint64_t id) { return wire::EncodeRulesApplyRequest(id, text); },
             wire::Body::RulesApplyReply, std::max(options_.request_timeout_ms, kVerifyTimeoutMs));
    if (!r.ok()) return r.status();
    const wire::RulesVersionInfo v =
        wire::DecodeRulesApplyReply(*r->message->body_as_RulesApplyReply());
    return RulesVersionView{v.number, v.version, v.text, v.applied_ms};
  }

  Result<std::string> Stats() override {
    Result<wire::OwnedMessage> r =
        Call([](uint64_t id) { return wire::EncodeStatsRequest(id); }, wire::Body::StatsReply);
    if (!r.ok()) return r.status();
    return std::string(wire::View(r->message->body_as_StatsReply()->text()));
  }

 private:
  struct Pending {
    uint64_t index = 0;                        // batch index in the stream
    std::shared_ptr<const wire::Frame> frame;  // encoded once, resent as is
    uint64_t request_id = 0;                   // inside frame
    Clock::time_point sent;                    // for the request timeout
    std::optional<BatchOutcome> outcome;       // set when answered
  };

  // One search for a leader: from the first NOT_LEADER since the last answer
  // to the next answer (or the deadline).
  struct Failover {
    std::optional<Clock::time_point> deadline;  // set at the first NOT_LEADER
    uint32_t attempts = 0;                      // connections tried in this search
    std::vector<Endpoint> followed;             // leaders named and gone to in this search
    Clock::duration backoff = kFailoverBackoffFirst;
    std::string said;        // what the last NOT_LEADER said, for the final error
    std::string last_round;  // why the last round found no server, if it did not
  };

  Clock::time_point RequestDeadline(Clock::time_point from) const {
    return from + std::chrono::milliseconds(options_.request_timeout_ms);
  }

  // options_.servers (else host:port) into servers_.
  Status ParseServers() {
    if (options_.servers.empty()) {
      servers_.push_back(Endpoint{options_.host, options_.port});
      return Status::Ok();
    }
    for (const std::string& text : options_.servers) {
      std::optional<Endpoint> e = ParseEndpoint(text);
      if (!e) {
        return Status::InvalidArgument("bad server address \"" + text +
                                       "\": expected HOST:PORT or [V6]:PORT");
      }
      servers_.push_back(std::move(*e));
    }
    return Status::Ok();
  }

  // "a:1, b:2, c:3": every configured server, for messages.
  std::string ServerNames() const {
    std::string names;
    for (const Endpoint& e : servers_) names += (names.empty() ? "" : ", ") + FormatEndpoint(e);
    return names;
  }

  // Opens a connection to `at` and says Hello. kUnavailable,
  // kUnauthenticated, or the server's error. On success `at` becomes the
  // first server of the next round (the last one that worked).
  Status ConnectOnce(const Endpoint& at) {
    conn_.reset();
    Result<std::unique_ptr<Connection>> conn = Connection::Open(options_, at, tls_.get());
    if (!conn.ok()) return conn.status();
    const uint64_t id = next_request_id_++;
    (*conn)->Send(std::make_shared<const wire::Frame>(
        wire::EncodeHello(id, options_.token, options_.client_name)));
    const Clock::time_point deadline =
        Clock::now() + std::chrono::milliseconds(options_.connect_timeout_ms);
    Result<wire::OwnedMessage> reply = (*conn)->Receive(deadline);
    if (!reply.ok()) return reply.status();
    const wire::Message& m = *reply->message;
    if (IsError(m)) return wire::StatusFromError(*m.body_as_Error());
    if (m.body_type() != wire::Body::HelloOk) {
      return Status::Internal("expected HelloOk, got " +
                              std::string(wire::BodyName(m.body_type())));
    }
    const wire::HelloOkInfo info = wire::DecodeHelloOk(*m.body_as_HelloOk());
    identity_.role = static_cast<Role>(info.role);
    identity_.institution_id = info.institution_id;
    identity_.server_version = info.server_version;
    conn_ = std::move(*conn);
    connected_to_ = at;
    first_ = at;
    const auto it = std::find(servers_.begin(), servers_.end(), at);
    if (it != servers_.end()) next_ = static_cast<size_t>(it - servers_.begin());
    return Status::Ok();
  }

  // Makes the next round start after the server last connected to (it
  // failed, or cannot take what we ask): the next in the list.
  void MoveOn() {
    first_.reset();
    if (!connected_to_) return;
    const auto it = std::find(servers_.begin(), servers_.end(), *connected_to_);
    if (it != servers_.end())
      next_ = (static_cast<size_t>(it - servers_.begin()) + 1) % servers_.size();
  }

  // One round: first_ (when set), then servers_ from next_ on, wrapping,
  // each once, until one answers Hello. A refused token ends it at once.
  // With one server its status as is; otherwise kUnavailable naming each
  // server tried and what went wrong.
  Status ConnectRound() {
    std::vector<Endpoint> order;
    if (first_) order.push_back(*first_);
    for (size_t i = 0; i < servers_.size(); ++i) {
      const Endpoint& e = servers_[(next_ + i) % servers_.size()];
      if (std::find(order.begin(), order.end(), e) == order.end()) order.push_back(e);
    }
    LL_CHECK(!order.empty());
    Status last;
    std::string tried;
    for (const Endpoint& e : order) {
      last = ConnectOnce(e);
      if (last.ok() || last.code() == Status::Code::kUnauthenticated) return last;
      const std::string name = FormatEndpoint(e);
      std::string note = last.message();
      if (note.find(name) == std::string::npos) note = name + ": " + note;
      tried += (tried.empty() ? "" : "; ") + note;
    }
    if (order.size() == 1) return last;
    return Status::Unavailable("no server answered (tried " + std::to_string(order.size()) +
                               "): " + tried);
  }

  // Reconnects when there is no connection: up to reconnect_attempts_max
  // rounds over the servers with exponential backoff. A refused token ends
  // it at once.
  Status EnsureConnected() {
    if (conn_) return Status::Ok();
    Status last = Status::Unavailable("not connected");
    auto backoff = kBackoffFirst;
    for (uint32_t attempt = 0; attempt < std::max<uint32_t>(1, options_.reconnect_attempts_max);
         ++attempt) {
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, kBackoffMax);
      last = ConnectRound();
      if (last.ok() || last.code() == Status::Code::kUnauthenticated) return last;
    }
    return Status::Unavailable("cannot reconnect to " + ServerNames() + ": " + last.message());
  }

  // One request, one reply of type `expect`; resent on a new connection
  // after a connection failure (queries are idempotent).
  Result<wire::OwnedMessage> Call(const std::function<wire::Frame(uint64_t)>& make,
                                  wire::Body expect, uint32_t timeout_ms = 0) {
    if (timeout_ms == 0) timeout_ms = options_.request_timeout_ms;
    Status last = Status::Unavailable("not connected");
    for (uint32_t attempt = 0; attempt <= options_.reconnect_attempts_max; ++attempt) {
      if (Status s = EnsureConnected(); !s.ok()) return s;
      const uint64_t id = next_request_id_++;
      conn_->Send(std::make_shared<const wire::Frame>(make(id)));
      const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
      while (true) {
        Result<wire::OwnedMessage> reply = conn_->Receive(deadline);
        if (!reply.ok()) {
          last = reply.status();
          conn_.reset();
          MoveOn();  // another server may answer
          break;     // retry on a new connection
        }
        const wire::Message& m = *reply->message;
        if (m.request_id() != id && m.request_id() != 0) continue;  // a stale reply
        if (IsError(m)) {
          Status s = wire::StatusFromError(*m.body_as_Error());
          // Any node answers a query; one that says NOT_LEADER is not ready.
          const bool elsewhere = Retryable(s) || s.code() == Status::Code::kNotLeader;
          if (m.request_id() == 0 || elsewhere) {
            conn_.reset();
            if (!elsewhere) return s;
            last = s.code() == Status::Code::kNotLeader ? Status::Unavailable("not leader") : s;
            MoveOn();
            break;
          }
          return s;
        }
        if (m.body_type() != expect) {
          return Status::Internal("expected " + std::string(wire::BodyName(expect)) + ", got " +
                                  std::string(wire::BodyName(m.body_type())));
        }
        return reply;
      }
    }
    return Status::Unavailable("giving up after " +
                               std::to_string(options_.reconnect_attempts_max) +
                               " reconnects: " + last.message());
  }

  // After a lost connection: reconnect and resend every unanswered batch in
  // order (a batch applied before the loss comes back as duplicates).
  Status Resend(std::deque<Pending>& pending, uint32_t& failures, const Status& why) {
    conn_.reset();
    if (++failures > options_.reconnect_attempts_max) {
      return Status::Unavailable("giving up after " + std::to_string(failures - 1) +
                                 " reconnects: " + why.message());
    }
    if (Status s = EnsureConnected(); !s.ok()) return s;
    SendUnanswered(pending);
    return Status::Ok();
  }

  // Sends every unanswered batch again, in order, on the connection.
  void SendUnanswered(std::deque<Pending>& pending) {
    const Clock::time_point now = Clock::now();
    for (Pending& p : pending) {
      if (p.outcome) continue;
      p.sent = now;
      conn_->Send(p.frame);
    }
  }

  // Cluster mode: the server answered NOT_LEADER naming `leader` ("" while
  // none is known). Connects to the leader, or, when it is unknown or
  // unreachable, to the next servers, and resends every unanswered batch
  // in order (their stream id and positions are inside the frames). The
  // reply loop then judges the new server's answer; another NOT_LEADER
  // comes back here. The first attempt of a search, and going to a leader
  // named for the first time in it, are immediate; others back off (an
  // election takes a few seconds; two nodes may name each other for a
  // while); kUnavailable once failover_timeout_ms has passed since the
  // search began.
  Status FollowLeader(std::deque<Pending>& pending, const std::string& leader, Failover& f) {
    const std::string from = connected_to_ ? FormatEndpoint(*connected_to_) : "the server";
    conn_.reset();
    MoveOn();
    f.said = from + (leader.empty() ? " knows no leader yet" : " names the leader " + leader);
    f.last_round.clear();
    bool new_leader = false;  // named, and not yet gone to in this search
    if (std::optional<Endpoint> named = ParseEndpoint(leader)) {
      first_ = *named;
      if (std::find(f.followed.begin(), f.followed.end(), *named) == f.followed.end()) {
        f.followed.push_back(*named);
        new_leader = true;
      }
    }
    if (!f.deadline) {
      f.deadline = Clock::now() + std::chrono::milliseconds(options_.failover_timeout_ms);
    }
    while (true) {
      const bool immediate = f.attempts++ == 0 || new_leader;
      new_leader = false;
      if (!immediate) {
        const Clock::time_point now = Clock::now();
        if (now >= *f.deadline) break;
        std::this_thread::sleep_for(std::min<Clock::duration>(f.backoff, *f.deadline - now));
        f.backoff = std::min<Clock::duration>(f.backoff * 2, kFailoverBackoffMax);
      }
      if (Clock::now() >= *f.deadline) break;
      const Status s = ConnectRound();
      if (s.ok()) {
        SendUnanswered(pending);
        return Status::Ok();
      }
      if (s.code() == Status::Code::kUnauthenticated) return s;
      f.last_round = s.message();
    }
    return Status::Unavailable("no leader took the submission within " +
                               std::to_string(options_.failover_timeout_ms) + " ms (servers " +
                               ServerNames() + "): " + f.said +
                               (f.last_round.empty() ? "" : "; then " + f.last_round));
  }

  ClientOptions options_;
  std::vector<Endpoint> servers_;            // options_.servers, else host:port; never empty
  std::optional<Endpoint> connected_to_;     // the server of conn_, or of the last connection
  std::optional<Endpoint> first_;            // tried first in the next round (may be off the list)
  size_t next_ = 0;                          // then servers_ from this index on, wrapping
  std::unique_ptr<detail::TlsContext> tls_;  // null without TLS
  std::unique_ptr<Connection> conn_;         // null after a failure until reconnected
  Identity identity_;
  uint64_t next_request_id_ = 1;                 // never reused within this client
  std::mt19937_64 rng_{std::random_device{}()};  // stream ids
};

Status ClientImpl::SubmitStream(
    const std::function<bool(std::vector<LoanEvent>& batch)>& next,
    const std::function<bool(uint64_t batch_index, const BatchOutcome& outcome)>& on_outcome) {
  const size_t in_flight_max = std::max<uint32_t>(1, options_.batches_in_flight_max);
  std::deque<Pending> pending;
  bool input_done = false;
  bool stop = false;  // on_outcome said so, or a batch could not be sent
  Status result;      // returned at the end (error for a batch we refused to send)
  uint64_t next_index = 0;
  uint32_t failures = 0;  // reconnects since the last reply
  Failover failover;      // the search for a leader since the last reply
  // The server skips this stream's batches after a rejected one
  // (SubmitBatch.stream); nonzero and random, so that two streams of one
  // institution never share it.
  const uint64_t stream = std::uniform_int_distribution<uint64_t>(1)(rng_);
  bool rejected = false;  // a batch of this stream was rejected
  std::vector<LoanEvent> batch;
  // After a rejection, batches still unanswered were skipped or never
  // taken: they are not applied, and must not be resent (a restarted
  // server no longer knows the stream was rejected): drop the broken
  // connection and report them skipped.
  auto skip_unanswered = [&] {
    conn_.reset();
    for (Pending& p : pending) {
      if (!p.outcome) p.outcome = BatchOutcome{.skipped = true};
    }
    while (!pending.empty()) {
      on_outcome(pending.front().index, *pending.front().outcome);
      pending.pop_front();
    }
  };
  while (true) {
    while (!input_done && !stop && pending.size() < in_flight_max) {
      batch.clear();
      if (!next(batch)) {
        input_done = true;
        break;
      }
      const uint64_t index = next_index++;
      if (batch.empty() || batch.size() > kBatchEventsMax) {
        result = Status::InvalidArgument("batch " + std::to_string(index) + " has " +
                                         std::to_string(batch.size()) + " events; 1.." +
                                         std::to_string(kBatchEventsMax) + " allowed");
        stop = true;
        break;
      }
      const uint64_t id = next_request_id_++;
      auto frame =
          std::make_shared<const wire::Frame>(wire::EncodeSubmitBatch(id, batch, stream, index));
      if (frame->size() - wire::kFrameHeaderBytes > kFrameBytesMaxDefault) {
        result = Status::InvalidArgument("batch " + std::to_string(index) + " encodes to " +
                                         std::to_string(frame->size()) +
                                         " bytes, above the frame limit; use smaller batches");
        stop = true;
        break;
      }
      if (Status s = EnsureConnected(); !s.ok()) return s;
      pending.push_back(Pending{index, frame, id, Clock::now(), std::nullopt});
      conn_->Send(frame);
    }
    if (pending.empty()) break;
    if (Status s = EnsureConnected(); !s.ok()) return s;

    Result<wire::OwnedMessage> reply = conn_->Receive(RequestDeadline(pending.front().sent));
    if (!reply.ok()) {
      if (rejected) {
        skip_unanswered();
        break;
      }
      if (Status s = Resend(pending, failures, reply.status()); !s.ok()) return s;
      continue;
    }
    const wire::Message& m = *reply->message;
    auto it = std::find_if(pending.begin(), pending.end(),
                           [&](const Pending& p) { return p.request_id == m.request_id(); });
    if (IsError(m)) {
      Status s = wire::StatusFromError(*m.body_as_Error());
      if (s.code() == Status::Code::kNotLeader) {
        if (rejected) {
          skip_unanswered();
          break;
        }
        if (Status r = FollowLeader(pending, s.message(), failover); !r.ok()) return r;
        continue;
      }
      if (Retryable(s) || (m.request_id() == 0 && s.code() == Status::Code::kUnavailable)) {
        if (rejected) {
          skip_unanswered();
          break;
        }
        if (Status r = Resend(pending, failures, s); !r.ok()) return r;
        continue;
      }
      return s;  // permission, invalid batch, storage failure, bad frame: not ours to retry
    }
    if (it == pending.end() || it->outcome) continue;  // stale (an earlier connection's)
    if (m.body_type() != wire::Body::Ack && m.body_type() != wire::Body::Rejected) {
      return Status::Internal("expected Ack or Rejected, got " +
                              std::string(wire::BodyName(m.body_type())));
    }
    it->outcome = OutcomeOf(m);
    if (!it->outcome->applied) rejected = true;
    failures = 0;
    failover = Failover{};
    while (!pending.empty() && pending.front().outcome) {
      if (!on_outcome(pending.front().index, *pending.front().outcome)) stop = true;
      pending.pop_front();
    }
  }
  return result;
}

}  // namespace

Result<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  auto client = std::make_unique<ClientImpl>(options);
  if (Status s = client->Init(); !s.ok()) return s;
  return std::unique_ptr<Client>(std::move(client));
}

}  // namespace loanledger::client
