// Loan snapshots (loan_snapshot.h): the background thread that writes them,
// and their files. Why: writing every touched loan's state into RocksDB
// with every group made RocksDB's flushes and compactions half of the
// machine's CPU under load (bench/RESULTS.md); a sequential file written
// now and then costs a fraction of that. The journal written since a
// snapshot began is its tail, replayed at open (ledger.cc).
#include <rocksdb/write_batch.h>

#include <chrono>
#include <filesystem>
#include <mutex>

#include "schema/check.h"
#include "schema/limits.h"
#include "storage/ledger_impl.h"
#include "storage/rocks_status.h"

namespace loanledger::storage {
namespace {

// The longest a piece holds loans_mu_ (shared), and the loans copied
// between two looks at the clock.
constexpr auto kPieceTime = std::chrono::milliseconds(3);
constexpr size_t kCopyStep = 4096;
// The automatic threshold: max(this, loans / 2) events.
constexpr uint64_t kSnapshotEventsMin = 2'000'000;

}  // namespace

std::string LedgerImpl::SnapshotDir() const { return options_.path + "/loan-snapshots"; }

std::string LedgerImpl::SnapshotPath(uint64_t replay_from) const {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.loans", static_cast<unsigned long long>(replay_from));
  return SnapshotDir() + "/" + name;
}

void LedgerImpl::RemoveOtherSnapshots() const {
  const std::string keep = snapshot_from_ == 0 ? std::string() : SnapshotPath(snapshot_from_);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(SnapshotDir(), ec)) {
    if (entry.path().string() != keep) std::filesystem::remove(entry.path(), ec);
  }
}

uint64_t LedgerImpl::SnapshotThreshold() const {
  if (options_.snapshot_events != 0) return options_.snapshot_events;
  return std::max(kSnapshotEventsMin, loan_count_ / 2);
}

Status LedgerImpl::WriteSnapshot(const std::atomic<bool>* stop) {
  std::lock_guard one(snapshot_write_mu_);
  uint64_t from = 0;
  size_t loans_at_start = 0;
  uint64_t start_events = 0;
  std::shared_ptr<const Rules> rules;  // the rules the snapshot's masks are under
  {
    // Between two groups: every slot is durable, and the batches from
    // `from` on are exactly those this snapshot may or may not hold.
    std::shared_lock loans_lock(loans_mu_);
    std::shared_lock agg_lock(agg_mu_);
    from = next_batch_no_;
    loans_at_start = loans_.size();
    start_events = events_total_.load();
    events_at_attempt_ = start_events;
    rules = rules_;
  }
  if (snapshot_from_ == 0 && from == 1) return Status::Ok();  // no loans
  // Nothing new, unless the newest snapshot's masks are outdated: then one
  // of the same replay_from replaces it (the same loan states, new masks).
  const bool outdated = snapshot_outdated_.exchange(false);
  if (from == snapshot_from_ && !outdated) return Status::Ok();
  // A failure leaves the outdated snapshot in force: try again next time.
  struct StillOutdated {
    LedgerImpl* l;
    bool on;
    ~StillOutdated() {
      if (on) l->snapshot_outdated_ = true;
    }
  } still_outdated{this, outdated};
  const RulesDigest digest = DigestOfRules(*rules);
  Result<std::unique_ptr<SnapshotWriter>> created =
      SnapshotWriter::Create(SnapshotPath(from), from, &digest);
  if (!created.ok()) return created.status();
  SnapshotWriter& w = **created;
  // Only the loans there at the start: a loan created later has its first
  // event in the journal from `from` on, which open replays (and a snapshot
  // that chased a growing table might never end). The writer holds
  // loans_mu_ for a whole group, fsync included, so under load a piece is
  // taken between two groups: as many loans as can be copied in
  // kPieceTime (about 200,000: a 10M-loan table in ~50 groups), encoded
  // and written once the lock is released. Each loan's categories under
  // `rules` go with it, so that an open under the same rules need not
  // classify it again: the writer's, when the piece was taken under those
  // rules (a rules change resets every loan's).
  LoanBlock piece;
  std::vector<RuleMask> masks;  // the classifier's mask ids -> masks, for this piece
  for (size_t pos = 0; pos < loans_at_start;) {
    if (stop != nullptr && stop->load()) return Status::Unavailable("snapshot abandoned: closing");
    piece.Clear();
    {
      std::shared_lock loans_lock(loans_mu_);
      const auto deadline = std::chrono::steady_clock::now() + kPieceTime;
      do {
        const size_t end = std::min(pos + kCopyStep, loans_at_start);
        loans_.ForEachIn(pos, end,
                         [&](std::string_view key, const LoanSlot& slot) { piece.Add(key, slot); });
        pos = end;
      } while (pos < loans_at_start && std::chrono::steady_clock::now() < deadline);
      // A slot's mask id names the categories of its attributes under
      // classifier_'s rules (set with them by the writer, reset by a
      // rules change; loans_mu_ held shared, so neither changes now).
      masks.clear();
      if (classifier_->rules() == rules) masks = classifier_->masks();
    }
    for (size_t i = 0; i < piece.size(); ++i) {
      const LoanSlot& slot = piece.slots[i];
      // A loan of the table: what DecodeLoanSlot checks when it reads it back.
      LL_CHECK(slot.exists && slot.last_seq > 0 && slot.balance_fen >= 0 &&
               slot.balance_fen <= kLoanBalanceFenMax);
      // Unresolved (after a rules change) or taken after a rules change:
      // classified here, under the snapshot's rules (Classify is pure).
      const RuleMask mask =
          slot.mask < masks.size() ? masks[slot.mask] : rules->Classify(slot.attributes.Unpack());
      w.Add(piece.Key(i), slot, &mask);
    }
    if (Status s = w.WritePending(); !s.ok()) return s;
  }
  if (Status s = w.Commit(); !s.ok()) return s;
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  rocksdb::Status s = db_->Put(wo, cf_meta_, kMetaLoanSnapshot, EncodeU64(from));
  if (!s.ok()) {
    std::error_code ec;
    // (A snapshot replacing one of the same replay_from stays: meta names it.)
    if (from != snapshot_from_) std::filesystem::remove(SnapshotPath(from), ec);
    return FromRocks(s, "record loan snapshot");
  }
  still_outdated.on = false;
  const uint64_t previous = snapshot_from_;
  snapshot_from_ = from;
  events_at_snapshot_ = start_events;
  ++snapshots_written_;
  if (previous != 0 && previous != from) {
    std::error_code ec;
    std::filesystem::remove(SnapshotPath(previous), ec);
  }
  return Status::Ok();
}

void LedgerImpl::SnapshotLoop() {
  for (;;) {
    {
      std::unique_lock lock(snap_mu_);
      snap_cv_.wait(lock, [&] { return snap_wanted_ || snapshot_stop_.load(); });
      if (snapshot_stop_.load()) return;
      snap_wanted_ = false;
    }
    // A failure (a full disk) leaves the previous snapshot in place; the
    // next attempt comes after another threshold's worth of events.
    Status s = WriteSnapshot(&snapshot_stop_);
    if (!s.ok() && !snapshot_stop_.load()) {
      ++snapshots_failed_;
      std::lock_guard lock(snapshot_error_mu_);
      last_snapshot_error_ = s.ToString();  // kept after a later success: stats show it
    }
    snapshot_busy_ = false;
  }
}

void LedgerImpl::StartSnapshots() {
  loaded_ = true;
  snap_thread_ = std::thread([this] { SnapshotLoop(); });
}

void LedgerImpl::StopSnapshots() {
  {
    std::lock_guard lock(snap_mu_);
    snapshot_stop_ = true;
  }
  snap_cv_.notify_all();
  if (snap_thread_.joinable()) snap_thread_.join();
}

}  // namespace loanledger::storage
