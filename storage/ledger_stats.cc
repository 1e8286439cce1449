// Compaction on request, the store's counters and RocksDB's figures
// (`admin stats`), and the category balances behind the report gauges.
#include <algorithm>
#include <chrono>
#include <mutex>
#include <shared_mutex>

#include "storage/ledger_impl.h"
#include "storage/rocks_status.h"

namespace loanledger::storage {

Result<CompactionReport> LedgerImpl::Compact() {
  CompactionReport report;
  report.live_sst_bytes_before = Stats().live_sst_bytes;
  const auto start = std::chrono::steady_clock::now();
  rocksdb::CompactRangeOptions options;
  options.exclusive_manual_compaction = false;  // background compactions go on meanwhile
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  for (rocksdb::ColumnFamilyHandle* cf : handles_) {
    rocksdb::Status s = db_->CompactRange(options, cf, nullptr, nullptr);
    if (!s.ok()) return FromRocks(s, "compact " + cf->GetName());
  }
  report.duration_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 std::chrono::steady_clock::now() - start)
                                                 .count());
  report.live_sst_bytes_after = Stats().live_sst_bytes;
  return report;
}

LedgerStats LedgerImpl::Stats() const {
  LedgerStats st;
  auto prop = [&](const std::string& name) {
    uint64_t v = 0;
    return db_->GetAggregatedIntProperty(name, &v) ? v : 0;
  };
  st.memtable_bytes = prop("rocksdb.cur-size-all-mem-tables");
  st.pending_compaction_bytes = prop("rocksdb.estimate-pending-compaction-bytes");
  st.live_sst_bytes = prop("rocksdb.live-sst-files-size");
  uint64_t v = 0;
  if (db_->GetIntProperty("rocksdb.block-cache-usage", &v)) st.block_cache_usage_bytes = v;
  st.write_stopped =
      prop("rocksdb.is-write-stopped") != 0 || prop("rocksdb.actual-delayed-write-rate") != 0;
  std::shared_lock lock(agg_mu_);
  st.batches_applied = next_batch_no_ - 1;
  st.loans = loan_count_;
  st.snapshots_written = snapshots_written_.load();
  st.snapshots_failed = snapshots_failed_.load();
  st.events_since_snapshot = events_total_.load() - events_at_snapshot_.load();
  st.open_masks_from_snapshot = open_masks_from_snapshot_;
  st.open_loans_classified = open_loans_classified_;
  lock.unlock();
  std::lock_guard error_lock(snapshot_error_mu_);
  st.last_snapshot_error = last_snapshot_error_;
  return st;
}

std::vector<CategoryBalance> LedgerImpl::CategoryBalances() const {
  std::vector<CategoryBalance> out;
  std::shared_lock lock(agg_mu_);
  for (size_t i = 0; i < rules_->category_count(); ++i) {
    const auto c = static_cast<Category>(i);
    for (uint8_t p : ProvinceCodes()) {
      const DaySeries* s = agg_.Find(c, p, 0);
      if (s == nullptr) continue;
      const Measures t = s->Total();
      out.push_back(
          CategoryBalance{c, p, t.balance_fen, t.loan_count, std::string(rules_->CategoryName(c))});
    }
  }
  return out;
}

Day LedgerImpl::LatestBusinessDate() const {
  // The (category, province) rollups see every cell change; the national
  // ones miss a loan moving between provinces (its TOTAL change nets out).
  Day latest = 0;
  std::shared_lock lock(agg_mu_);
  for (size_t i = 0; i < rules_->category_count(); ++i) {
    for (uint8_t p : ProvinceCodes()) {
      const DaySeries* s = agg_.Find(static_cast<Category>(i), p, 0);
      if (s != nullptr) latest = std::max(latest, s->LastDay());
    }
  }
  return latest;
}

}  // namespace loanledger::storage
