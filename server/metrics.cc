#include "server/metrics.h"

#include <optional>
#include <string>

#include "schema/check.h"

namespace loanledger::server {
namespace {

namespace pm = prometheus;

// Latency buckets from 0.25 ms (a small batch with a fast disk) to 10 s (a
// stalled disk): a sync costs 0.1-10 ms on real hardware.
const pm::Histogram::BucketBoundaries& LatencyBuckets() {
  static const pm::Histogram::BucketBoundaries kBuckets{
      0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return kBuckets;
}

pm::Family<pm::Counter>& CounterFamily(pm::Registry& r, const std::string& name,
                                       const std::string& help) {
  return pm::BuildCounter().Name(name).Help(help).Register(r);
}
pm::Family<pm::Gauge>& GaugeFamily(pm::Registry& r, const std::string& name,
                                   const std::string& help) {
  return pm::BuildGauge().Name(name).Help(help).Register(r);
}
pm::Histogram& SingleHistogram(pm::Registry& r, const std::string& name, const std::string& help,
                               const pm::Histogram::BucketBoundaries& buckets) {
  return pm::BuildHistogram().Name(name).Help(help).Register(r).Add({}, buckets);
}

// Registered once; the Registry's Merge behaviour returns the same family on
// the later calls.
pm::Family<pm::Counter>& BatchesFamily(pm::Registry& r) {
  return CounterFamily(r, "loanledger_batches_total",
                       "Batches by result: applied, rejected (business), failed (I/O)");
}

std::string ProvinceLabel(uint8_t code) {
  std::string s = std::to_string(code);
  return s.size() == 1 ? "0" + s : s;
}

}  // namespace

Metrics::Metrics(std::string_view version)
    : registry_(std::make_shared<pm::Registry>()),
      events_applied(
          CounterFamily(*registry_, "loanledger_events_applied_total", "Events applied (durable)")
              .Add({})),
      events_duplicate(CounterFamily(*registry_, "loanledger_events_duplicate_total",
                                     "Events skipped as duplicates (seq <= last applied)")
                           .Add({})),
      batches_applied(BatchesFamily(*registry_).Add({{"result", "applied"}})),
      batches_rejected(BatchesFamily(*registry_).Add({{"result", "rejected"}})),
      batches_failed(BatchesFamily(*registry_).Add({{"result", "failed"}})),
      auth_failures(CounterFamily(*registry_, "loanledger_auth_failures_total",
                                  "Hello frames whose token was refused")
                        .Add({})),
      connections(
          CounterFamily(*registry_, "loanledger_connections_total", "Client connections accepted")
              .Add({})),
      connections_active(
          GaugeFamily(*registry_, "loanledger_connections_active", "Client connections open now")
              .Add({})),
      inflight_batches(GaugeFamily(*registry_, "loanledger_inflight_batches",
                                   "Batches received and not yet answered")
                           .Add({})),
      batch_apply(SingleHistogram(*registry_, "loanledger_batch_apply_seconds",
                                  "Time to apply and sync the group commit a batch was part of",
                                  LatencyBuckets())),
      ack_latency(SingleHistogram(*registry_, "loanledger_ack_latency_seconds",
                                  "From a batch's last byte received to its durable answer",
                                  LatencyBuckets())),
      bad_frames(CounterFamily(*registry_, "loanledger_bad_frames_total",
                               "Frames refused (oversize, unverifiable, unexpected type)")
                     .Add({})),
      connections_refused(CounterFamily(*registry_, "loanledger_connections_refused_total",
                                        "Connections closed at accept: connection cap reached, or "
                                        "too many unauthenticated ones from one address")
                              .Add({})),
      timeouts(CounterFamily(*registry_, "loanledger_connection_timeouts_total",
                             "Connections closed by a read, idle, hello or write timeout")
                   .Add({})),
      writer_queue(GaugeFamily(*registry_, "loanledger_writer_queue_batches",
                               "Batches waiting for the writer thread")
                       .Add({})),
      group_commit(
          SingleHistogram(*registry_, "loanledger_group_commit_batches",
                          "Batches applied per group commit (one WAL sync)",
                          pm::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256})),
      auth_throttled(CounterFamily(*registry_, "loanledger_auth_throttled_total",
                                   "Failed Hellos answered only after a delay (per-address "
                                   "backoff, server/peer_guard.h)")
                         .Add({})) {
  auto& rejected = CounterFamily(*registry_, "loanledger_events_rejected_total",
                                 "Events named in batch rejections, by reason");
  for (size_t v = 1; v < kReasonSlots; ++v) {
    const std::string_view name = ReasonName(static_cast<Reason>(v));
    if (name == "UNKNOWN") continue;
    rejected_by_reason_[v] = &rejected.Add({{"reason", std::string(name)}});
  }
  rejected_other_ = &rejected.Add({{"reason", "UNKNOWN"}});

  auto& query = pm::BuildHistogram()
                    .Name("loanledger_query_seconds")
                    .Help("Query time by kind (report, series, loan)")
                    .Register(*registry_);
  query_seconds_[0] = &query.Add({{"kind", "report"}}, LatencyBuckets());
  query_seconds_[1] = &query.Add({{"kind", "series"}}, LatencyBuckets());
  query_seconds_[2] = &query.Add({{"kind", "loan"}}, LatencyBuckets());

  auto& balance = GaugeFamily(*registry_, "loanledger_category_balance_yuan",
                              "Current balance by category and province, in yuan (for looking; "
                              "reports use fen)");
  auto& loans = GaugeFamily(*registry_, "loanledger_category_loans",
                            "Loans with a balance > 0 by category and province");
  for (const CategoryRule& rule : CategoryRules()) {
    const auto c = static_cast<size_t>(rule.category);
    LL_CHECK(c < kCategoryCount);
    for (uint8_t p : ProvinceCodes()) {
      LL_CHECK(p < 100);
      const pm::Labels labels{{"category", std::string(rule.name)}, {"province", ProvinceLabel(p)}};
      category_balance_[c][p] = &balance.Add(labels);
      category_loans_[c][p] = &loans.Add(labels);
    }
  }

  rocksdb_memtable_ = &GaugeFamily(*registry_, "loanledger_rocksdb_memtable_bytes",
                                   "RocksDB memtable size (all column families)")
                           .Add({});
  rocksdb_pending_compaction_ =
      &GaugeFamily(*registry_, "loanledger_rocksdb_pending_compaction_bytes",
                   "RocksDB estimated bytes pending compaction")
           .Add({});
  rocksdb_live_sst_ =
      &GaugeFamily(*registry_, "loanledger_rocksdb_live_sst_bytes", "RocksDB live SST file bytes")
           .Add({});
  rocksdb_block_cache_ = &GaugeFamily(*registry_, "loanledger_rocksdb_block_cache_usage_bytes",
                                      "RocksDB block cache usage")
                              .Add({});
  rocksdb_write_stall_ = &GaugeFamily(*registry_, "loanledger_rocksdb_write_stall",
                                      "1 when RocksDB is stalling or stopping writes")
                              .Add({});
  data_disk_free_ = &GaugeFamily(*registry_, "loanledger_data_disk_free_bytes",
                                 "Free bytes (for unprivileged writers) on the --data file system")
                         .Add({});
  data_disk_size_ =
      &GaugeFamily(*registry_, "loanledger_data_disk_size_bytes", "Size of the --data file system")
           .Add({});
  ledger_batches_ =
      &GaugeFamily(*registry_, "loanledger_ledger_batches", "Batches in the journal").Add({});
  ledger_loans_ = &GaugeFamily(*registry_, "loanledger_ledger_loans", "Loans known").Add({});
  ledger_events_since_snapshot_ =
      &GaugeFamily(*registry_, "loanledger_ledger_events_since_snapshot",
                   "Events applied since the newest loan snapshot began (the journal a start after "
                   "a crash replays)")
           .Add({});
  ledger_snapshot_failures_ = &prometheus::BuildCounter()
                                   .Name("loanledger_ledger_snapshot_failures_total")
                                   .Help("Loan snapshot attempts that failed (see the data disk)")
                                   .Register(*registry_)
                                   .Add({});
  ledger_snapshots_ = &prometheus::BuildCounter()
                           .Name("loanledger_ledger_snapshots_total")
                           .Help("Loan snapshots written since start")
                           .Register(*registry_)
                           .Add({});
  report_ = std::make_unique<ReportGauges>(*registry_);
  rules_ = std::make_unique<RulesMetrics>(*registry_);
  process_ = std::make_unique<ProcessMetrics>(*registry_);
  GaugeFamily(*registry_, "loanledger_build_info", "Build information; value is 1")
      .Add({{"version", std::string(version)}})
      .Set(1);
}

void Metrics::OnBatchApplied(uint32_t applied, uint32_t duplicate, double apply_seconds) {
  batches_applied.Increment();
  events_applied.Increment(applied);
  events_duplicate.Increment(duplicate);
  batch_apply.Observe(apply_seconds);
}

void Metrics::OnBatchRejected(std::span<const storage::EventRejection> rejections,
                              double apply_seconds) {
  batches_rejected.Increment();
  batch_apply.Observe(apply_seconds);
  for (const storage::EventRejection& r : rejections) {
    const auto v = static_cast<size_t>(r.reason);
    prometheus::Counter* c = v < kReasonSlots ? rejected_by_reason_[v] : nullptr;
    (c != nullptr ? c : rejected_other_)->Increment();
  }
}

void Metrics::OnBatchFailed() { batches_failed.Increment(); }

void Metrics::ObserveQuery(QueryKind kind, double seconds) {
  const auto k = static_cast<size_t>(kind);
  LL_CHECK(k < query_seconds_.size());
  query_seconds_[k]->Observe(seconds);
}

void Metrics::SetLedgerStats(const storage::LedgerStats& s) {
  rocksdb_memtable_->Set(static_cast<double>(s.memtable_bytes));
  rocksdb_pending_compaction_->Set(static_cast<double>(s.pending_compaction_bytes));
  rocksdb_live_sst_->Set(static_cast<double>(s.live_sst_bytes));
  rocksdb_block_cache_->Set(static_cast<double>(s.block_cache_usage_bytes));
  rocksdb_write_stall_->Set(s.write_stopped ? 1 : 0);
  ledger_batches_->Set(static_cast<double>(s.batches_applied));
  ledger_loans_->Set(static_cast<double>(s.loans));
  ledger_events_since_snapshot_->Set(static_cast<double>(s.events_since_snapshot));
  const double failed = static_cast<double>(s.snapshots_failed);
  if (failed > ledger_snapshot_failures_->Value()) {
    ledger_snapshot_failures_->Increment(failed - ledger_snapshot_failures_->Value());
  }
  const double written = static_cast<double>(s.snapshots_written);
  if (written > ledger_snapshots_->Value())
    ledger_snapshots_->Increment(written - ledger_snapshots_->Value());
}

void Metrics::SetDataDisk(uint64_t free_bytes, uint64_t size_bytes) {
  data_disk_free_->Set(static_cast<double>(free_bytes));
  data_disk_size_->Set(static_cast<double>(size_bytes));
}

void Metrics::SetCategoryBalances(std::span<const storage::CategoryBalance> balances) {
  // Provinces absent from the answer have no balance: reset first.
  for (auto& row : category_balance_) {
    for (prometheus::Gauge* g : row) {
      if (g != nullptr) g->Set(0);
    }
  }
  for (auto& row : category_loans_) {
    for (prometheus::Gauge* g : row) {
      if (g != nullptr) g->Set(0);
    }
  }
  for (const storage::CategoryBalance& b : balances) {
    // Gauges exist for the default rules' categories (docs/categories.md);
    // under another rules file a category is matched by name, and one the
    // default file lacks has no gauge.
    std::optional<Category> named = b.category_name.empty() ? std::optional<Category>(b.category)
                                                            : ParseCategory(b.category_name);
    if (!named) continue;
    const auto c = static_cast<size_t>(*named);
    if (c >= kCategoryCount || b.province >= 100) continue;

    prometheus::Gauge* balance = category_balance_[c][b.province];
    prometheus::Gauge* loans = category_loans_[c][b.province];
    if (balance == nullptr || loans == nullptr) continue;  // not a province code
    balance->Set(static_cast<double>(b.balance_fen) / 100.0);
    loans->Set(static_cast<double>(b.loan_count));
  }
}

}  // namespace loanledger::server
