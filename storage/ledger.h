// The ledger: loan states, journal and incremental aggregates in RocksDB
// (docs/data.md, docs/figures.md). This is storage's whole public header; it speaks in schema
// types only. Keyspace and formats: storage/README.md.
//
// Thread safety: every method may be called from any thread. Apply calls
// are serialized internally (one writer at a time; a caller with many
// batches should pass them to ApplyGroup to share one WAL sync). Queries run
// concurrently with each other and with a writer and always see whole
// batches.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "schema/event.h"
#include "schema/query.h"
#include "schema/reason.h"
#include "schema/rules.h"
#include "schema/status.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace loanledger::storage {

struct LedgerOptions {
  std::string path;  // data directory; created if missing
  bool sync = true;  // fsync the WAL before Apply returns (docs/data.md). Tests only set false.
  size_t block_cache_bytes = 256u << 20;  // RocksDB block cache shared by all column families
  // From this many stored loans, open reads them with two threads (tests
  // lower it to cover that path on a small store).
  uint64_t parallel_load_loans = 1'000'000;
  // Loan states are written to disk as periodic snapshots (a background
  // thread), not with every batch: a new one starts once this many events
  // were applied since the last one started. The journal written since is
  // replayed at open, so this bounds the work of a start after a crash (a
  // clean close writes a final snapshot). 0 = max(2M, loans / 2).
  uint64_t snapshot_events = 0;
  // Wall clock for journal timestamps (unix ms); injected so that tests are
  // deterministic. Business logic never reads it. Default: system clock.
  std::function<int64_t()> clock_ms;
  // A rules file (docs/categories.md, `loanledgerd --rules`): empty = the store's
  // current rules (the default file for a new store). When it differs from
  // the store's current rules, Open applies it (a recompute of every
  // aggregate from the journal) before returning. Must parse.
  std::string rules_text;
  // Tests only: the RocksDB environment (a fault-injecting file system);
  // null = RocksDB's default. Must outlive the ledger.
  rocksdb::Env* env = nullptr;
};

// One batch as submitted: atomic, exactly once per event (docs/data.md).
struct Batch {
  std::string submitter;  // who sent it (token name / principal), kept in the journal
  // Every event must carry this institution_id; "" = no restriction.
  std::string caller_institution;
  std::vector<LoanEvent> events;  // 1..kBatchEventsMax
  // 0, or the submitter's stream, and the batch's position in it: once a
  // batch of (caller_institution, stream) is rejected, the later ones
  // (higher stream_batch) are skipped, not applied, so a client that stops
  // at a rejection leaves nothing after it applied; the rejected batch
  // itself, resent, is judged again. The ledger remembers the last
  // kRejectedStreamsMax rejected streams, in memory only.
  uint64_t stream = 0;
  uint64_t stream_batch = 0;
};
inline constexpr size_t kRejectedStreamsMax = 65'536;

struct EventRejection {
  uint32_t index = 0;  // position of the event in the batch
  Reason reason = Reason::kOk;
  std::string message;  // readable detail naming the values
};

struct ApplyResult {
  bool applied = false;   // false: rejected whole, nothing changed
  bool skipped = false;   // not applied because an earlier batch of its stream was rejected
  uint64_t batch_no = 0;  // journal number when applied and not all duplicates; else 0
  uint32_t events_applied = 0;
  uint32_t events_duplicate = 0;           // seq <= last applied: skipped, counted
  std::vector<EventRejection> rejections;  // non-empty iff !applied && !skipped
};

// One difference found by Verify.
struct VerifyDifference {
  std::string what;      // e.g. "cell MANUFACTURING/31/B0001/2024-03-01 balance_fen"
  int64_t expected = 0;  // recomputed from the journal
  int64_t actual = 0;    // stored / maintained
};

struct VerifyReport {
  uint64_t batches_replayed = 0;
  uint64_t events_replayed = 0;
  uint64_t loans_checked = 0;
  uint64_t cells_checked = 0;
  std::vector<VerifyDifference> differences;  // empty = consistent (capped at 1000 entries)
};

struct CompactionReport {
  uint64_t duration_ms = 0;
  uint64_t live_sst_bytes_before = 0;
  uint64_t live_sst_bytes_after = 0;
};

// One version of the category rules applied to the store (docs/categories.md).
struct RulesVersion {
  uint64_t number = 0;     // 1, 2, ... in the order applied
  std::string version;     // the file's "version"
  std::string text;        // the file as applied
  int64_t applied_ms = 0;  // unix ms (the injected clock) when it took effect
};

// A rules change in progress (for metrics and `admin rules show`).
struct RulesProgress {
  bool running = false;
  std::string version;  // of the rules being applied
  uint64_t batches_done = 0;
  uint64_t batches_total = 0;    // journal batches to replay (more may land meanwhile)
  uint64_t completed = 0;        // recomputes that switched since open (apply, --rules, re-apply)
  int64_t last_duration_ms = 0;  // the newest completed one, start to switch; 0 before any
};

// RocksDB health and sizes, for metrics (docs/metrics.md).
struct LedgerStats {
  uint64_t memtable_bytes = 0;
  uint64_t pending_compaction_bytes = 0;
  uint64_t live_sst_bytes = 0;
  uint64_t block_cache_usage_bytes = 0;
  bool write_stopped = false;      // RocksDB is stalling or stopping writes
  uint64_t batches_applied = 0;    // journal records
  uint64_t loans = 0;              // loans known
  uint64_t snapshots_written = 0;  // loan snapshots written since open
  uint64_t snapshots_failed = 0;   // background snapshot attempts that failed (I/O) since open
  // Events applied since the newest written snapshot began, counting the
  // journal tail replayed at open: about what a start after a crash now
  // would replay. Keeps growing while snapshots fail.
  uint64_t events_since_snapshot = 0;
  // The error of the newest background snapshot attempt that failed since
  // open ("" = none); kept after a later success, beside snapshots_failed.
  std::string last_snapshot_error;
  // At open: loans whose categories were taken from the loan snapshot (it
  // was written under the rules in force), and loans classified under the
  // rules before serving (the journal's tail, older snapshots, a rules
  // change since the snapshot).
  uint64_t open_masks_from_snapshot = 0;
  uint64_t open_loans_classified = 0;
};

// Backups (backup.cc; storage/README.md, "Backups").
struct BackupOptions {
  // The backup directory: absolute, outside the data directory; created if
  // missing. A directory that exists must be empty or hold this store's
  // backups (its LOANLEDGER-BACKUP file names the store).
  std::string dir;
  uint32_t keep = 0;  // after the backup, delete all but the newest `keep` backups; 0 = keep all
};
struct BackupInfo {
  uint32_t id = 0;  // BackupEngine's id: 1, 2, ... in the order taken
  int64_t created_unix_s = 0;
  uint64_t batches = 0;        // journal records it holds (at least those applied before it began)
  uint64_t log_position = 0;   // cluster mode: the log position those batches reach
  uint64_t loan_snapshot = 0;  // replay_from of the loan snapshot it carries; 0 = none
  uint64_t size_bytes = 0;     // the whole backup (files shared with other backups included)
  uint64_t new_bytes = 0;      // Backup(): bytes copied that earlier backups lacked
  uint32_t files = 0;
  uint32_t backups_kept = 0;  // Backup(): backups in the directory afterwards
};
// The backups in `dir`, oldest first; NotFound when it holds none.
Result<std::vector<BackupInfo>> ListBackups(const std::string& dir);
// Restores backup `id` (0 = the newest) of `backup_dir` into `data_dir`,
// which must not exist or be empty (an interrupted restore into it may be
// run again), then opens it once as a check. Until the restore is whole, a
// ledger refuses to open `data_dir` (RocksDB finds no store in it). The
// BackupEngine checks every file's checksum as it copies.
Result<BackupInfo> RestoreBackup(const std::string& backup_dir, uint32_t id,
                                 const std::string& data_dir);
// Checks backup `id` (0 = the newest) of `backup_dir`: every file's size
// and checksum (BackupEngine::VerifyBackup), then restores it into
// `scratch_dir` (as RestoreBackup; removed afterwards) and runs
// Ledger::Verify on the copy. OK with the report when it could run (the
// backup is good when report.differences is empty).
struct BackupVerifyReport {
  BackupInfo backup;
  VerifyReport verify;
};
Result<BackupVerifyReport> VerifyBackup(const std::string& backup_dir, uint32_t id,
                                        const std::string& scratch_dir);

// Current balance of one category in one province, all institutions (for
// the category gauges; as of the latest business date).
struct CategoryBalance {
  Category category = Category::kTotal;
  uint8_t province = 0;
  int64_t balance_fen = 0;
  int64_t loan_count = 0;
  std::string category_name;  // under the current rules (docs/categories.md)
};

class Ledger {
 public:
  // Opens (creating if needed) the store at options.path and restores the
  // aggregates from disk; no replay from scratch.
  static Result<std::unique_ptr<Ledger>> Open(const LedgerOptions& options);
  virtual ~Ledger() = default;

  // Validates and applies one batch. Returns a Status only for operational
  // failures (I/O): then nothing of the batch is applied. A rejected batch is
  // an ApplyResult with applied == false. When applied, it is durable.
  virtual Result<ApplyResult> Apply(const Batch& batch) = 0;

  // Applies several batches in order, each atomic and independent of the
  // others' rejection, with one write and one WAL sync for all (group
  // commit). On an I/O failure none of them is applied.
  virtual Result<std::vector<ApplyResult>> ApplyGroup(std::span<const Batch* const> batches) = 0;

  // Cluster mode (ARCHITECTURE.md, "Two write paths"). The journal is then
  // also a replicated log that storage knows only as increasing positions,
  // kept in the same write as each record's effects (LogPosition).
  //
  // As ApplyGroup, but once the group is validated and before it is
  // written, `publish` gets the journal records of the batches that change
  // the ledger, in order, and returns the log position of the last one; an
  // error from it leaves nothing of the group applied and is returned. Not
  // called when no batch changes the ledger.
  using PublishRecords = std::function<Result<uint64_t>(std::span<const std::string> records)>;
  virtual Result<std::vector<ApplyResult>> ApplyGroupPublished(
      std::span<const Batch* const> batches, const PublishRecords& publish) = 0;
  // Applies records that a ledger's ApplyGroupPublished produced, at log
  // positions first_position, first_position + 1, ..., with one write.
  // Those at or below LogPosition() are skipped (applied already: by this
  // ledger as the leader, or before a restart); a gap after LogPosition()
  // is InvalidArgument. Each record must apply whole, as it did on the
  // leader: otherwise Corruption (this store diverged from the log) and
  // nothing is applied.
  virtual Status ApplyPublished(std::span<const std::string_view> records,
                                uint64_t first_position) = 0;
  // The log position of the last record applied; 0 = none.
  virtual uint64_t LogPosition() const = 0;
  // The records at log positions first_position..last_position, byte for
  // byte as published or applied here, in order; stops after the record
  // that brings their size to max_bytes (one record at least). Each record
  // is one journal batch, so position p is batch p + (batches -
  // LogPosition()). InvalidArgument unless 1 <= first <= last <=
  // LogPosition(). To put a log's lost tail back (docs/cluster.md).
  virtual Result<std::vector<std::string>> PublishedRecords(uint64_t first_position,
                                                            uint64_t last_position,
                                                            size_t max_bytes) const = 0;
  // A digest of the whole state (every loan and every cell) with the log
  // position it reflects: two ledgers at the same position that applied the
  // same records have the same digest, whatever their history of restarts.
  struct Digest {
    uint64_t log_position = 0;
    uint64_t batches = 0;  // journal records
    uint64_t loans = 0;
    std::string hex;  // 16 hex digits
  };
  virtual Digest StateDigest() const = 0;
  // Writes a consistent copy of the store to `dir` (must not exist), from
  // which Open starts a new replica: a RocksDB checkpoint (hard links where
  // the file system allows) plus the newest loan snapshot. Writers wait
  // meanwhile (a memtable flush and links: well under a second).
  struct CheckpointInfo {
    uint64_t log_position = 0;  // what the copy holds
    uint64_t batches = 0;
  };
  virtual Result<CheckpointInfo> Checkpoint(const std::string& dir) = 0;
  // Adds a backup of the store to the backup directory (BackupOptions),
  // incrementally: RocksDB's BackupEngine copies only the files the
  // directory's earlier backups lack, and the newest loan snapshot is copied
  // unless the directory holds it already (storage/README.md, "Backups").
  // Writers and queries go on meanwhile; loan snapshots wait until it ends.
  // The backup holds every batch applied before the call. A crash part way
  // leaves the earlier backups whole (the next backup clears the rest).
  virtual Result<BackupInfo> Backup(const BackupOptions& options) = 0;

  virtual Result<Report> QueryReport(const ReportQuery& query) const = 0;
  virtual Result<Series> QuerySeries(const SeriesQuery& query) const = 0;
  // NotFound when the loan is unknown.
  virtual Result<LoanView> QueryLoan(std::string_view institution_id,
                                     std::string_view loan_id) const = 0;

  // Recomputes everything from the journal and compares with what is
  // stored and maintained: the stored cells always; the in-memory loan
  // states and aggregates when no batch landed meanwhile (an idle ledger,
  // or `loanledgerd --verify`). Runs beside writers.
  virtual Result<VerifyReport> Verify() = 0;

  // Re-applies the store's current rules to every loan: recomputes every
  // cell from the journal (in the background, as ApplyRules does) and
  // replaces the stored and in-memory aggregates in one synced write.
  // Returns the number of cells now stored;
  // Corruption when the journal does not replay cleanly (run Verify).
  virtual Result<uint64_t> RebuildAggregates() = 0;

  // Compacts every column family down to the bottom level (the admin
  // "compaction" request, docs/cli.md): reclaims space now rather than as
  // RocksDB gets to it. Runs beside writers and queries, which go on; can
  // take minutes on a large store.
  virtual Result<CompactionReport> Compact() = 0;

  // Applies a new rules file (docs/categories.md): recomputes every aggregate from
  // the journal in the background while queries answer and batches apply
  // under the current rules, then switches atomically (one synced write of
  // every cell and the new version; a crash before it leaves the old
  // version whole). Blocks until switched. A file that does not parse is
  // InvalidArgument "FIELD: REASON" and changes nothing; the current
  // rules' own text again is a no-op. One change at a time (a second
  // caller waits).
  virtual Result<RulesVersion> ApplyRules(std::string_view text) = 0;
  virtual RulesVersion CurrentRules() const = 0;
  // Every version applied, oldest first.
  virtual Result<std::vector<RulesVersion>> RulesHistory() const = 0;
  virtual RulesProgress RulesRecompute() const = 0;

  virtual LedgerStats Stats() const = 0;
  // Current (latest-date) balance per category x province.
  virtual std::vector<CategoryBalance> CategoryBalances() const = 0;
  // The latest business date on which the aggregates hold a change (of a
  // balance, loan count or flow, in any category and province); 0 when the
  // ledger holds none. An event that changes no figure (a reclassification
  // within the same categories and province) does not move it. Restored at
  // open from the stored cells like every aggregate. For the report gauges.
  virtual Day LatestBusinessDate() const = 0;
};

}  // namespace loanledger::storage
