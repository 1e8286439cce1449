// The report gauges (issue 20): the ledger's own figures as of the latest
// business date it holds, computed from its in-memory aggregates by the same
// report query as `loanledger report --date <that date>`, so that Grafana
// shows what the report gives rather than wall-clock arithmetic over scrapes.
//
//   loanledger_report_date_timestamp_seconds          the date, 00:00 UTC (0 = no data)
//   loanledger_report_<measure>{category}             national figures
//   loanledger_report_province_<measure>{category,province}
//
// measures: balance_yuan, loans, balance_year_ago_yuan, yoy_growth_percent,
// ytd_increase_yuan, disbursed_ytd_yuan, repaid_ytd_yuan,
// written_off_ytd_yuan (deploy/metrics.txt). Labels: every category the
// report returns (whatever the rules define) x every province code, created
// when a category first appears and removed when it disappears. A province
// without data reads 0; a growth without a base (no balance a year earlier)
// reads NaN, the report's null. Money is fen / 100 as a double: the exact
// figures are `loanledger report`.
#pragma once

#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include "schema/date.h"
#include "schema/query.h"
#include "server/figures.h"
#include "storage/ledger.h"

namespace loanledger::server {

class ReportGauges {
 public:
  // Registers the families (each exported from start-up; the date gauge at 0).
  explicit ReportGauges(prometheus::Registry& registry);
  ReportGauges(const ReportGauges&) = delete;
  ReportGauges& operator=(const ReportGauges&) = delete;

  // Queries the ledger (its latest business date, then the report at that
  // date nationally and by province: in memory, a few hundred rows) and sets
  // every gauge. An empty ledger sets the date to 0 and every figure to 0
  // (growth NaN). Returns false, changing nothing, when a query fails.
  // In a partitioned cluster (figures.fans_out()) the two reports are asked
  // at once and the gauges set when both have come, on the thread that
  // brings the last (nothing waits for the other partitions); it returns
  // true once they are asked, and does not ask again while they are out.
  // Must outlive the cluster node.
  bool Refresh(const storage::Ledger& ledger, const Figures& figures);

  // Sets the gauges from reports of one date (by = kNone and kProvince).
  void Set(Day date, const Report& national, const Report& by_province);

  static constexpr size_t kMeasures = 8;

 private:
  using Slots = std::array<prometheus::Gauge*, kMeasures>;
  struct CategoryGauges {
    Slots national{};
    std::map<std::string, Slots> provinces;  // by two-digit code, every province
  };
  Slots AddSlots(bool province, const prometheus::Labels& labels);
  void RemoveSlots(bool province, const Slots& slots);
  CategoryGauges& GaugesOf(const std::string& category);

  std::atomic<bool> asking_{false};  // a partitioned cluster's refresh is out
  std::mutex mu_;                    // one Set at a time
  prometheus::Gauge* date_ = nullptr;
  std::array<prometheus::Family<prometheus::Gauge>*, kMeasures> national_{};
  std::array<prometheus::Family<prometheus::Gauge>*, kMeasures> province_{};
  std::map<std::string, CategoryGauges> categories_;  // by category name
};

}  // namespace loanledger::server
