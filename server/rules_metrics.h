// The category rules' metrics (docs/metrics.md "Rules", docs/categories.md
// "Rules files"): the version in force and the progress of a rules change's
// recompute, refreshed with the other gauges (about once a second), and the
// same figures as `admin stats` lines.
//
//   loanledger_rules_version_number                 the version in force (1, 2, ...)
//   loanledger_rules_recompute_running              1 while a recompute runs
//   loanledger_rules_recompute_batches_done         journal batches replayed by it
//   loanledger_rules_recompute_batches_total        journal batches it replays
//   loanledger_rules_recomputes_total               recomputes completed since start
//   loanledger_rules_recompute_last_duration_seconds  the newest completed one
//
// A recompute's progress is done / total; total grows by the batches that
// land while it runs (it replays them too, under the writer's lock, before
// the switch). done and total keep their last values after it ends.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <string>

#include "storage/ledger.h"

namespace loanledger::server {

class RulesMetrics {
 public:
  // Registers the families (each exported from start-up, at 0).
  explicit RulesMetrics(prometheus::Registry& registry);
  RulesMetrics(const RulesMetrics&) = delete;
  RulesMetrics& operator=(const RulesMetrics&) = delete;

  // Reads the ledger's rules version and recompute progress (two atomic
  // reads and a short lock; never waits for a recompute).
  void Refresh(const storage::Ledger& ledger);

 private:
  prometheus::Gauge* version_number_ = nullptr;
  prometheus::Gauge* running_ = nullptr;
  prometheus::Gauge* batches_done_ = nullptr;
  prometheus::Gauge* batches_total_ = nullptr;
  prometheus::Counter* completed_ = nullptr;
  prometheus::Gauge* last_duration_ = nullptr;
};

// The `admin stats` lines of the same figures: rules_version_number,
// rules_recompute_running, rules_recompute_batches_done,
// rules_recompute_batches_total, rules_recomputes_completed,
// rules_recompute_last_duration_ms (docs/cli.md).
std::string RulesStatsText(const storage::Ledger& ledger);

}  // namespace loanledger::server
