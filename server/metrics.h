// Prometheus metrics of loanledgerd (docs/metrics.md). Every family is registered
// once, at start-up, and every label value is created then too (labels come
// from bounded sets: reasons, results, query kinds, categories x provinces);
// the hot path only increments references held here. prometheus-cpp metrics
// are thread-safe.
//
// docs/metrics.md describes every family.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "schema/category.h"
#include "schema/reason.h"
#include "server/process_metrics.h"
#include "server/report_gauges.h"
#include "server/rules_metrics.h"
#include "storage/ledger.h"

namespace loanledger::server {

enum class QueryKind : uint8_t { kReport = 0, kSeries = 1, kLoan = 2 };

class Metrics {
 public:
  // Registers every family; version goes into loanledger_build_info.
  explicit Metrics(std::string_view version);
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // For the Exposer.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // Per batch result (called by the writer thread).
  void OnBatchApplied(uint32_t events_applied, uint32_t events_duplicate, double apply_seconds);
  void OnBatchRejected(std::span<const storage::EventRejection> rejections, double apply_seconds);
  void OnBatchFailed();
  void ObserveQuery(QueryKind kind, double seconds);

  // Periodic refresh (about once a second), never per event.
  void SetLedgerStats(const storage::LedgerStats& stats);
  void SetCategoryBalances(std::span<const storage::CategoryBalance> balances);
  // The file system holding --data (statvfs: free = f_bavail * f_frsize).
  void SetDataDisk(uint64_t free_bytes, uint64_t size_bytes);
  // The loanledger_report_* gauges: the report as of the ledger's latest
  // business date (server/report_gauges.h).
  ReportGauges& report() { return *report_; }
  // The rules version and recompute gauges (server/rules_metrics.h).
  RulesMetrics& rules() { return *rules_; }
  // The process_* families and the TLS certificate's expiry
  // (server/process_metrics.h).
  ProcessMetrics& process() { return *process_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;  // owns every family below

 public:
  // Required families (docs/metrics.md) ------------------------------------
  prometheus::Counter& events_applied;    // loanledger_events_applied_total
  prometheus::Counter& events_duplicate;  // loanledger_events_duplicate_total
  prometheus::Counter& batches_applied;   // loanledger_batches_total{result="applied"}
  prometheus::Counter& batches_rejected;  // loanledger_batches_total{result="rejected"}
  prometheus::Counter& batches_failed;    // loanledger_batches_total{result="failed"}
  prometheus::Counter& auth_failures;     // loanledger_auth_failures_total
  prometheus::Counter& connections;       // loanledger_connections_total
  prometheus::Gauge& connections_active;  // loanledger_connections_active
  prometheus::Gauge& inflight_batches;    // loanledger_inflight_batches
  prometheus::Histogram& batch_apply;     // loanledger_batch_apply_seconds
  prometheus::Histogram& ack_latency;     // loanledger_ack_latency_seconds
  // Extras ----------------------------------------------------------------
  prometheus::Counter& bad_frames;           // loanledger_bad_frames_total
  prometheus::Counter& connections_refused;  // loanledger_connections_refused_total (cap reached)
  prometheus::Counter& timeouts;             // loanledger_connection_timeouts_total
  prometheus::Gauge& writer_queue;           // loanledger_writer_queue_batches
  prometheus::Histogram& group_commit;       // loanledger_group_commit_batches (batches per sync)
  prometheus::Counter& auth_throttled;       // loanledger_auth_throttled_total (answered late)

 private:
  // loanledger_events_rejected_total{reason}, indexed by the Reason value.
  static constexpr size_t kReasonSlots = 64;
  std::array<prometheus::Counter*, kReasonSlots> rejected_by_reason_{};
  prometheus::Counter* rejected_other_ = nullptr;  // a reason above kReasonSlots (never expected)
  std::array<prometheus::Histogram*, 3> query_seconds_{};  // by QueryKind
  // loanledger_category_balance_yuan / _loans by [category][province code 0..99].
  std::array<std::array<prometheus::Gauge*, 100>, kCategoryCount> category_balance_{};
  std::array<std::array<prometheus::Gauge*, 100>, kCategoryCount> category_loans_{};
  prometheus::Gauge* rocksdb_memtable_ = nullptr;
  prometheus::Gauge* rocksdb_pending_compaction_ = nullptr;
  prometheus::Gauge* rocksdb_live_sst_ = nullptr;
  prometheus::Gauge* rocksdb_block_cache_ = nullptr;
  prometheus::Gauge* rocksdb_write_stall_ = nullptr;
  prometheus::Gauge* data_disk_free_ = nullptr;
  prometheus::Gauge* data_disk_size_ = nullptr;
  prometheus::Gauge* ledger_batches_ = nullptr;
  prometheus::Gauge* ledger_loans_ = nullptr;
  prometheus::Gauge* ledger_events_since_snapshot_ = nullptr;
  prometheus::Counter* ledger_snapshots_ = nullptr;
  prometheus::Counter* ledger_snapshot_failures_ = nullptr;
  std::unique_ptr<ReportGauges> report_;
  std::unique_ptr<RulesMetrics> rules_;
  std::unique_ptr<ProcessMetrics> process_;
};

}  // namespace loanledger::server
