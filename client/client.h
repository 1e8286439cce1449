// The bank-side client library (docs/protocol.md): connect (TCP or TLS),
// authenticate, submit batches pipelined with a bound on batches in flight,
// reconnect and resend what was not acknowledged (safe: per-loan seq makes
// a resend a duplicate), and query. Depends on schema/ only. Errors are
// values (Status with a code), rejections carry reason codes per event.
//
// Thread safety: one Client is used by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/endpoint.h"
#include "schema/event.h"
#include "schema/query.h"
#include "schema/reason.h"
#include "schema/status.h"

namespace loanledger::client {

struct ClientOptions {
  // One server: host and port. Ignored when `servers` is not empty.
  std::string host = "127.0.0.1";
  uint16_t port = 7700;
  // Cluster mode (client/README.md): every server of the cluster, each
  // "HOST:PORT" or "[V6]:PORT" (client/endpoint.h). Connecting tries them in
  // order, starting with the last one that answered; a submission answered
  // NOT_LEADER follows the named leader (or, while none is known, tries the
  // others) and resends what was not acknowledged; a query that loses its
  // server tries the next. A malformed entry fails Connect with
  // kInvalidArgument.
  std::vector<std::string> servers;
  // How long a submission may look for a leader (NOT_LEADER answers, an
  // election under way, the named leader unreachable) before it fails with
  // kUnavailable; counted from the first NOT_LEADER since the last answer.
  uint32_t failover_timeout_ms = 30000;
  std::string token;  // bearer token (docs/protocol.md)
  bool tls = false;   // wrap the connection in TLS
  // PEM CA to verify the server's chain against; "" = the system's CA store
  // (OpenSSL's default paths). The host name (or IP address) of the server
  // entry is verified either way.
  std::string tls_ca_file;
  // With tls: verify nothing (no chain, no host name): encrypted but open to
  // a man in the middle. Only for tests and self-signed setups without a CA.
  bool tls_insecure = false;
  uint32_t batches_in_flight_max = 8;  // pipelining bound for SubmitStream
  uint32_t connect_timeout_ms = 5000;
  // Per request: no reply by then -> reconnect/resend or fail.
  uint32_t request_timeout_ms = 60000;
  // Per failure episode, with backoff; each attempt tries every server once.
  uint32_t reconnect_attempts_max = 5;
  std::string client_name = "loanledger-client";
};

enum class Role : uint8_t { kNone = 0, kInstitution = 1, kRegulator = 2, kAdmin = 3 };

struct Identity {
  Role role = Role::kNone;
  std::string institution_id;  // for kInstitution
  std::string server_version;
};

struct Rejection {
  uint32_t index = 0;  // index within the batch
  Reason reason = Reason::kOk;
  std::string message;
};

// The outcome of one batch: applied (durable), rejected whole, or skipped
// (not applied: an earlier batch of the same SubmitStream was rejected).
struct BatchOutcome {
  bool applied = false;
  bool skipped = false;
  uint64_t batch_no = 0;
  uint32_t events_applied = 0;
  uint32_t events_duplicate = 0;
  std::vector<Rejection> rejections;  // non-empty iff !applied && !skipped
};

struct VerifyOutcome {
  uint64_t batches_replayed = 0;
  uint64_t events_replayed = 0;
  uint64_t loans_checked = 0;
  uint64_t cells_checked = 0;
  std::vector<std::string> differences;  // "what: expected X actual Y"
};

struct CheckpointOutcome {
  std::string dir;          // on the server's machine
  uint64_t stream_seq = 0;  // cluster mode: the journal stream sequence it holds
  uint64_t batches = 0;
};

struct BackupOutcome {
  std::string dir;          // the backup directory, on the server's machine
  uint32_t backup_id = 0;   // 1, 2, ... in that directory
  uint64_t batches = 0;     // journal records it holds (every batch acknowledged before it began)
  uint64_t stream_seq = 0;  // cluster mode: the journal stream sequence it holds
  uint64_t size_bytes = 0;  // the whole backup
  uint64_t new_bytes = 0;   // copied this time (the rest was there from earlier backups)
  uint32_t files = 0;
  uint32_t backups_kept = 0;  // backups in the directory afterwards
};

struct CompactOutcome {
  uint64_t duration_ms = 0;
  uint64_t live_sst_bytes_before = 0;
  uint64_t live_sst_bytes_after = 0;
};

// Admin: category rules (docs/categories.md).
struct RulesVersionView {
  uint64_t number = 0;
  std::string version;
  std::string text;  // in RulesShow's current version only
  int64_t applied_ms = 0;
};
struct RulesShowOutcome {
  RulesVersionView current;
  std::vector<RulesVersionView> history;  // oldest first
  bool recompute_running = false;
  std::string recompute_version;
  uint64_t recompute_batches_done = 0;
  uint64_t recompute_batches_total = 0;
};

class Client {
 public:
  // Connects and authenticates: tries each server once, in order. Status
  // codes: kUnavailable (no server answered; the message names each tried
  // and why), kUnauthenticated (token refused), kInvalidArgument (a
  // malformed `servers` entry).
  static Result<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  virtual ~Client() = default;

  virtual const Identity& identity() const = 0;

  // Submits one batch and waits for its outcome.
  virtual Result<BatchOutcome> Submit(const std::vector<LoanEvent>& events) = 0;

  // Pipelined submission: `next` fills the next batch (returns false at the
  // end); up to batches_in_flight_max batches are in flight. `on_outcome` is
  // called once per batch in submission order with its index (0-based) and
  // outcome; return false from it to stop submitting (e.g. on a rejection).
  // After a lost connection, or a NOT_LEADER answer (cluster mode: the
  // client goes to the named leader, or tries the other servers while none
  // is known), unacknowledged batches are resent in order on the new
  // connection, with the same stream id and positions.
  // Once on_outcome returns false, `next` is not called again, but batches
  // already in flight still get their on_outcome call. The batches form one
  // stream (SubmitBatch.stream): once one is rejected, the server applies
  // none after it, so every later batch's outcome is `skipped` (also when
  // the connection is lost after the rejection: they are not resent). A
  // batch that `next` returns empty or above kBatchEventsMax ends the stream
  // with kInvalidArgument. Returns OK when every batch given was answered;
  // otherwise the error (kUnavailable after reconnect_attempts_max failed
  // reconnects or when no leader took the batches within
  // failover_timeout_ms, kPermissionDenied, kInvalidArgument, kIoError,
  // ...), and batches not yet answered are each wholly applied or wholly
  // absent.
  virtual Status SubmitStream(
      const std::function<bool(std::vector<LoanEvent>& batch)>& next,
      const std::function<bool(uint64_t batch_index, const BatchOutcome& outcome)>& on_outcome) = 0;

  // scope is implied by the token: an institution sees only its own figures.
  virtual Result<Report> QueryReport(const ReportQuery& query) = 0;
  virtual Result<Series> QuerySeries(const SeriesQuery& query) = 0;
  // kNotFound when unknown, kPermissionDenied for another institution's loan.
  virtual Result<LoanView> QueryLoan(const std::string& institution_id,
                                     const std::string& loan_id) = 0;
  virtual Result<VerifyOutcome> Verify() = 0;  // admin
  virtual Result<std::string> Stats() = 0;     // admin
  // admin: compacts the server's store (minutes on a large one).
  virtual Result<CompactOutcome> Compact() = 0;
  // admin: writes a checkpoint of the server's store to `dir` (absolute, not
  // existing) on the server's machine; a new cluster replica starts from a
  // copy of it (docs/cluster.md).
  virtual Result<CheckpointOutcome> Checkpoint(const std::string& dir) = 0;
  // Admin: the server's category rules; apply returns once the server has
  // switched to the new file (InvalidArgument naming the field and reason
  // for a bad one). Not pure: test doubles need not implement them.
  virtual Result<RulesShowOutcome> RulesShow() {
    return Status::Unavailable("rules show: not supported by this client");
  }
  virtual Result<RulesVersionView> RulesApply(const std::string& text) {
    (void)text;
    return Status::Unavailable("rules apply: not supported by this client");
  }
  // Admin: adds an incremental backup of the server's store to `dir`
  // (absolute, on the server's machine; deploy/README.md "Backups"); with
  // keep > 0 the server then deletes all but the newest `keep` backups.
  // Not pure, as the rules calls.
  virtual Result<BackupOutcome> Backup(const std::string& dir, uint32_t keep) {
    (void)dir;
    (void)keep;
    return Status::Unavailable("backup: not supported by this client");
  }
};

}  // namespace loanledger::client
