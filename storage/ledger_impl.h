// LedgerImpl: the RocksDB-backed Ledger. Internal to storage/; the public
// contract is ledger.h. Split over ledger.cc (open, recovery, migration),
// ledger_apply.cc (the apply path), ledger_stats.cc (compaction, stats),
// rocks_options.cc (RocksDB tuning), snapshot.cc, query.cc (report,
// series, loan), verify.cc, rules_store.cc and replication.cc.
#pragma once

#include <rocksdb/db.h>

#include <atomic>
#include <bit>
#include <condition_variable>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "storage/aggregator.h"
#include "storage/classifier.h"
#include "storage/codec.h"
#include "storage/ledger.h"
#include "storage/loan_slot.h"
#include "storage/loan_snapshot.h"
#include "storage/loan_table.h"
#include "storage/rejected_streams.h"

namespace loanledger::storage {

// What EmitDeltas needs of a loan before an event (a copy of LoanSlot would
// copy its strings for every event).
struct SlotBefore {
  bool exists = false;
  int64_t balance_fen = 0;
  RuleMask mask = 0;  // the file's categories (TOTAL implicit)
  uint8_t province = 0;
  RegionGroupMask region_groups = 0;  // only computed when the rules have region groups
};

// Region-group cells share the cell keyspace with provinces: their
// "province" byte is kRegionGroupCellBase + the group's index (provinces
// are 11..65). They roll up by institution only, never into the
// all-provinces series. Internal to storage/.
inline constexpr uint8_t kRegionGroupCellBase = kRegionGroupCellByteMin;

// The outcome of applying one event to a loan: rejected, a duplicate, or
// the loan's new state.
struct EventStep {
  enum class Kind { kApplied, kDuplicate, kRejected } kind = Kind::kRejected;
  Reason reason = Reason::kOk;
  std::string message;
  RuleMask mask = 0;                  // kApplied: the loan's categories after the event
  RegionGroupMask region_groups = 0;  // kApplied: its region groups after the event
};

// Applies e to `slot` (docs/data.md exactly-once and state rules, not the field
// rules of ValidateEvent, which the caller has checked), with the ledger's
// capacity: a DISBURSE over `disbursed_room_fen` (kLedgerDisbursedFenMax less
// the lifetime disbursements) is rejected. On kApplied, slot holds the new
// state and *before sums up the state before; otherwise slot is unchanged.
// Pure but for the classifier's table of masks.
EventStep StepLoan(const LoanEvent& e, LoanSlot* slot, SlotBefore* before, Classifier* classifier,
                   int64_t disbursed_room_fen);
// StepLoan's room for replays of accepted batches (open, verify): their
// capacity was checked when they were accepted.
inline constexpr int64_t kDisbursedRoomUnchecked = std::numeric_limits<int64_t>::max();

// Emits the cell changes of one applied event: the old state's balance
// leaves the old categories/province, the new state's enters the new ones,
// and the event's flow counts under the new attributes (docs/figures.md). `add` is
// called with (category, province, day, change); region-group cells come
// as provinces kRegionGroupCellBase + g. `step` is StepLoan's kApplied.
template <typename AddFn>
void EmitDeltas(const SlotBefore& before, const LoanSlot& after, const EventStep& step,
                const LoanEvent& e, AddFn&& add);

// The loan keys of a run of events, built once into one buffer, and their
// LoanTable hashes: lookups are hashed first so that each can be prefetched
// a few events ahead (in a large table each is a cache miss).
struct EventKeys {
  std::string keys;          // the keys, concatenated
  std::vector<size_t> ends;  // end of each key in keys
  std::vector<uint64_t> hashes;

  void Build(std::span<const LoanEvent> events) {
    keys.clear();
    ends.clear();
    hashes.clear();
    for (const LoanEvent& e : events) {
      const size_t begin = keys.size();
      keys.append(e.institution_id).push_back('\0');
      keys.append(e.loan_id);
      ends.push_back(keys.size());
      hashes.push_back(LoanTable::Hash(std::string_view(keys).substr(begin)));
    }
  }
  std::string_view Key(size_t i) const {
    const size_t begin = i == 0 ? 0 : ends[i - 1];
    return std::string_view(keys).substr(begin, ends[i] - begin);
  }
};

// Sums of int64 cell values per packed cell key.
using DeltaMap = std::unordered_map<uint64_t, Measures>;

// A replay of the journal from nothing (verify.cc): loan states and every
// cell's day change, under one classifier's rules.
struct JournalReplay {
  std::unordered_map<std::string, LoanSlot> loans;
  std::map<uint64_t, Measures> cells;  // packed cell -> day change
  uint64_t batches = 0;
  uint64_t events = 0;
  uint64_t next_batch_no = 1;  // one past the last record replayed
};
// Replays the journal records >= out->next_batch_no visible to `ro` into
// *out (so a replay can be continued later). Problems are reported
// through `problem(what)`; *progress (optional) counts the batches.
Status ReplayJournal(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf_journal,
                     const rocksdb::ReadOptions& ro,
                     const std::unordered_map<std::string, uint32_t>& ids, Classifier* classifier,
                     JournalReplay* out, const std::function<void(std::string)>& problem,
                     std::atomic<uint64_t>* progress);
// The institution dictionary visible to `ro`.
Status ReadInstitutions(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf_meta,
                        const rocksdb::ReadOptions& ro,
                        std::unordered_map<std::string, uint32_t>* ids,
                        std::vector<std::string>* names);

class LedgerImpl final : public Ledger {
 public:
  LedgerImpl(LedgerOptions options, std::unique_ptr<rocksdb::DB> db,
             std::vector<rocksdb::ColumnFamilyHandle*> handles);
  ~LedgerImpl() override;
  Status Load();
  Status EnableCompactions();  // after Load (CfOptions says why they start off)
  void StartSnapshots();       // after Load: the thread that writes loan snapshots
  std::string MiddleLoanKey() const;

  Result<ApplyResult> Apply(const Batch& batch) override;
  Result<std::vector<ApplyResult>> ApplyGroup(std::span<const Batch* const> batches) override;
  Result<std::vector<ApplyResult>> ApplyGroupPublished(std::span<const Batch* const> batches,
                                                       const PublishRecords& publish) override;
  Status ApplyPublished(std::span<const std::string_view> records,
                        uint64_t first_position) override;
  uint64_t LogPosition() const override;
  Result<std::vector<std::string>> PublishedRecords(uint64_t first_position, uint64_t last_position,
                                                    size_t max_bytes) const override;
  Digest StateDigest() const override;
  Result<CheckpointInfo> Checkpoint(const std::string& dir) override;
  Result<BackupInfo> Backup(const BackupOptions& options) override;  // backup.cc
  Result<Report> QueryReport(const ReportQuery& query) const override;
  Result<Series> QuerySeries(const SeriesQuery& query) const override;
  Result<LoanView> QueryLoan(std::string_view institution_id,
                             std::string_view loan_id) const override;
  Result<VerifyReport> Verify() override;
  Result<uint64_t> RebuildAggregates() override;
  Result<CompactionReport> Compact() override;
  Result<RulesVersion> ApplyRules(std::string_view text) override;
  RulesVersion CurrentRules() const override;
  Result<std::vector<RulesVersion>> RulesHistory() const override;
  RulesProgress RulesRecompute() const override;
  // Rules (rules_store.cc): the store's current version, read before Load;
  // after Load, the first version recorded and --rules applied.
  Status LoadRules();
  Status InitRules(const std::string& text);
  void ClassifyUnresolvedLoans();  // REQUIRES: write_mu_ and loans_mu_ held (rules_store.cc)
  LedgerStats Stats() const override;
  std::vector<CategoryBalance> CategoryBalances() const override;
  Day LatestBusinessDate() const override;

 private:
  struct Group;  // the state of one ApplyGroup call (ledger_apply.cc)

  // Open (ledger.cc). A reader decodes loans and hands blocks to a sink,
  // which returns false when the reader should stop.
  using BlockSink = std::function<bool(LoanBlock&&)>;
  using BlockReader = std::function<Status(const BlockSink&)>;
  Status LoadCounters(bool new_store);          // next_batch and loans from meta, checked
  Status LoadLoans(uint32_t format);            // the loan table, from the store's format
  Status LoadLoansFromColumnFamily();           // format 1
  Status LoadLoansFromSnapshot(uint64_t from);  // format 2: the newest snapshot
  // Readers' threads -> loans_. use_masks: the blocks' masks are under
  // classifier_'s rules (else every loan read is left unresolved).
  Status InsertLoanBlocks(std::vector<BlockReader> readers, bool use_masks);
  Status ReplayJournalTail(uint64_t from);  // journal batches >= from into loans_
  Status MigrateFromFormat1();
  // The cells column family into agg_ (on its own thread during LoadLoans).
  Status LoadCells();
  // Loan snapshots (snapshot.cc).
  std::string SnapshotDir() const;
  std::string SnapshotPath(uint64_t replay_from) const;
  void RemoveOtherSnapshots() const;  // all but the newest (and stray .tmp files)
  // Writes the table to a new snapshot, in pieces, each read under
  // loans_mu_ shared (writers go on between pieces); then records it in
  // meta and removes the previous one. Stops early when *stop turns true.
  Status WriteSnapshot(const std::atomic<bool>* stop);
  void SnapshotLoop();
  uint64_t SnapshotThreshold() const;  // REQUIRES: the writer (reads loan_count_)
  void StopSnapshots();

  Result<std::vector<ApplyResult>> ApplyGroupWith(std::span<const Batch* const> batches,
                                                  const PublishRecords* publish);
  Status LoadLogPosition();   // from Load
  void StartGroup(Group* g);  // REQUIRES: write_mu_ and loans_mu_ held
  Status PublishGroup(const PublishRecords& publish, Group* g);
  ApplyResult ProcessBatch(const Batch& batch, Group* g);
  // ProcessBatch's steps (ledger_apply.cc).
  struct BatchWork;  // the state of one ProcessBatch call
  void ProcessEvent(const Batch& batch, size_t i, Group* g, BatchWork* w);
  LoanSlot& TouchSlot(std::string_view key, uint64_t hash, uint64_t stamp, Group* g);
  ApplyResult RejectBatch(Group* g, BatchWork* w);
  ApplyResult AcceptBatch(const Batch& batch, Group* g, BatchWork* w);
  Status Commit(Group* g);
  void Unwind(Group* g, size_t to);  // undoes slot changes back to undo-log position `to`
  uint32_t InstitutionIdFor(const std::string& name, Group* g,
                            std::vector<std::pair<std::string, uint32_t>>* local_new);
  // Query helpers (query.cc); REQUIRES agg_mu_ held (shared).
  std::optional<uint32_t> ScopeId(const std::optional<std::string>& scope, bool* unknown) const;
  ReportRow MakeRow(Category c, std::string group, const DaySeries* s, Day date) const;
  // Recomputes every cell from the journal under `rules` in the background
  // (queries and writers go on), then, holding the writer's lock, replays
  // the batches that landed meanwhile and switches stored cells, in-memory
  // aggregates and rules in one synced write. `record`: also store the
  // rules as a new version. Returns the number of cells now stored.
  Result<uint64_t> RecomputeAndSwitch(std::shared_ptr<const Rules> rules, bool record,
                                      RulesVersion* recorded);

  const LedgerOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* cf_meta_ = nullptr;  // default CF: meta keys
  rocksdb::ColumnFamilyHandle* cf_loans_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_journal_ = nullptr;
  rocksdb::ColumnFamilyHandle* cf_cells_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // owned; destroyed before db_

  mutable std::mutex
      write_mu_;  // serializes ApplyGroup (one writer at a time) and guards next_batch_no_
  RejectedStreams rejected_streams_{kRejectedStreamsMax};  // guarded by write_mu_

  // Guarded by agg_mu_ (the writer publishes under the exclusive lock):
  mutable std::shared_mutex agg_mu_;
  Aggregator agg_;
  std::map<std::string, uint32_t, std::less<>> institution_ids_;  // name -> id, sorted by name
  std::vector<std::string> institution_names_;                    // id -> name; [0] unused
  uint64_t next_batch_no_ = 1;
  uint64_t log_position_ =
      0;  // cluster mode: the last replicated record applied (meta log_position)
  // Every loan's state: the writer validates against it and QueryLoan reads
  // it; its durable copy is the newest snapshot plus the journal since.
  // Guarded by loans_mu_: the writer holds it exclusively for a whole group
  // (slots change in place until durable); QueryLoan takes it shared.
  mutable std::shared_mutex loans_mu_;
  LoanTable loans_;
  uint64_t loan_count_ = 0;   // == loans_.size() between groups; also kept in meta
  uint64_t touch_stamp_ = 0;  // batch counter for LoanSlot::stamp (writer only)

  // Loan snapshots.
  std::mutex snapshot_write_mu_;  // one snapshot written at a time; guards the two below
  uint64_t snapshot_from_ = 0;    // replay_from of the newest snapshot; 0 = none
  std::atomic<uint64_t> snapshots_written_{0};
  std::atomic<uint64_t> snapshots_failed_{0};
  mutable std::mutex snapshot_error_mu_;  // guards last_snapshot_error_
  std::string last_snapshot_error_;       // the newest failed attempt's error; "" = none
  bool loaded_ = false;  // Open succeeded: the table is whole (set by StartSnapshots)
  // Events applied since open, counting the journal tail replayed at open
  // (the writer adds to it in Commit, under loans_mu_), and its value when
  // the newest snapshot attempt began and when the newest snapshot that was
  // written began (both set under loans_mu_ shared, between two groups).
  // A failed snapshot leaves the second behind, so the metric keeps growing
  // while the next attempt waits for another interval.
  std::atomic<uint64_t> events_total_{0};
  std::atomic<uint64_t> events_at_attempt_{0};
  std::atomic<uint64_t> events_at_snapshot_{0};
  std::atomic<bool> snapshot_busy_{false};  // a snapshot was requested and is not finished
  std::atomic<bool> snapshot_stop_{false};  // closing: a running snapshot gives up
  // Open: loans whose mask came from the snapshot, and loans classified
  // by InitRules (LedgerStats); set before serving.
  uint64_t open_masks_from_snapshot_ = 0;
  uint64_t open_loans_classified_ = 0;
  // The newest snapshot's masks are not those of the rules in force (an
  // older file format, a rules change since): the next snapshot is written
  // even if no batch came since, so that the next open need not classify.
  std::atomic<bool> snapshot_outdated_{false};
  std::mutex snap_mu_;  // guards snap_wanted_
  std::condition_variable snap_cv_;
  bool snap_wanted_ = false;
  std::thread snap_thread_;

  // Category rules (docs/categories.md). classifier_ is the writer's (write_mu_ and
  // loans_mu_ exclusive); rules_ and rules_current_ change only with all
  // three locks held exclusively, so any one of them held shared reads them.
  std::unique_ptr<Classifier> classifier_;
  std::shared_ptr<const Rules> rules_;
  RulesVersion rules_current_;
  std::mutex rules_apply_mu_;  // one rules change at a time
  std::atomic<bool> recompute_running_{false};
  std::atomic<uint64_t> recompute_batches_done_{0};
  std::atomic<uint64_t> recompute_batches_total_{0};
  std::atomic<uint64_t> recompute_completed_{0};
  std::atomic<int64_t> recompute_last_duration_ms_{0};
  std::string recompute_version_;    // guarded by rules_apply_mu_... read via recompute_mu_
  mutable std::mutex recompute_mu_;  // guards recompute_version_
};

// Calls fn(category) for TOTAL and every category of mask.
template <typename Fn>
inline void ForEachCategory(RuleMask mask, Fn&& fn) {
  fn(Category::kTotal);
  for (RuleMask m = mask; m != 0; m &= m - 1) fn(static_cast<Category>(1 + std::countr_zero(m)));
}

// Calls fn(cell province) for the province and every region group.
template <typename Fn>
inline void ForEachPlace(uint8_t province, RegionGroupMask groups, Fn&& fn) {
  fn(province);
  for (RegionGroupMask g = groups; g != 0; g &= g - 1)
    fn(static_cast<uint8_t>(kRegionGroupCellBase + std::countr_zero(g)));
}

template <typename AddFn>
void EmitDeltas(const SlotBefore& before, const LoanSlot& after, const EventStep& step,
                const LoanEvent& e, AddFn&& add) {
  Measures flow;
  switch (e.kind) {
    case EventKind::kDisburse:
      flow.disbursed_fen = e.amount_fen;
      break;
    case EventKind::kRepay:
      flow.repaid_fen = e.amount_fen;
      break;
    case EventKind::kWriteOff:
      flow.written_off_fen = e.amount_fen;
      break;
    case EventKind::kReclassify:
      break;
  }
  const int64_t b0 = before.exists ? before.balance_fen : 0;
  const int64_t b1 = after.balance_fen;
  const int64_t n0 = b0 > 0 ? 1 : 0;
  const int64_t n1 = b1 > 0 ? 1 : 0;
  const Day day = e.business_date;
  const uint8_t province = after.province();
  if (before.exists && before.mask == step.mask && before.province == province &&
      before.region_groups == step.region_groups) {
    // Same cells before and after: one combined change per category.
    Measures m = flow;
    m.balance_fen = b1 - b0;
    m.loan_count = n1 - n0;
    ForEachCategory(step.mask, [&](Category c) {
      ForEachPlace(province, step.region_groups, [&](uint8_t p) { add(c, p, day, m); });
    });
    return;
  }
  if (before.exists) {
    const Measures out{-b0, -n0, 0, 0, 0};
    ForEachCategory(before.mask, [&](Category c) {
      ForEachPlace(before.province, before.region_groups, [&](uint8_t p) { add(c, p, day, out); });
    });
  }
  Measures in = flow;
  in.balance_fen = b1;
  in.loan_count = n1;
  ForEachCategory(step.mask, [&](Category c) {
    ForEachPlace(province, step.region_groups, [&](uint8_t p) { add(c, p, day, in); });
  });
}

}  // namespace loanledger::storage
