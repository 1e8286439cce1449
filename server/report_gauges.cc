#include "server/report_gauges.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include "schema/category.h"

namespace loanledger::server {
namespace {

namespace pm = prometheus;

struct MeasureInfo {
  const char* suffix;  // after loanledger_report_ / loanledger_report_province_
  const char* help;
};

// In the order of Values() below.
constexpr std::array<MeasureInfo, ReportGauges::kMeasures> kMeasureInfo = {{
    {"balance_yuan", "Balance as of the report date, in yuan"},
    {"loans", "Loans with a balance > 0 as of the report date"},
    {"balance_year_ago_yuan", "Balance a year before the report date, in yuan"},
    {"yoy_growth_percent",
     "Year-on-year growth of the balance, in percent; NaN when there was no balance a year "
     "earlier"},
    {"ytd_increase_yuan", "Balance minus the balance on Dec 31 of the year before, in yuan"},
    {"disbursed_ytd_yuan", "Disbursed from Jan 1 of the report date's year to it, in yuan"},
    {"repaid_ytd_yuan", "Repaid from Jan 1 of the report date's year to it, in yuan"},
    {"written_off_ytd_yuan", "Written off from Jan 1 of the report date's year to it, in yuan"},
}};

double Yuan(int64_t fen) { return static_cast<double>(fen) / 100.0; }

std::array<double, ReportGauges::kMeasures> Values(const ReportRow& r) {
  return {Yuan(r.balance_fen),
          static_cast<double>(r.loan_count),
          Yuan(r.balance_year_ago_fen),
          r.yoy_growth_pct.value_or(std::numeric_limits<double>::quiet_NaN()),
          Yuan(r.ytd_increase_fen),
          Yuan(r.disbursed_ytd_fen),
          Yuan(r.repaid_ytd_fen),
          Yuan(r.written_off_ytd_fen)};
}

// A province without data: nothing, and no growth.
std::array<double, ReportGauges::kMeasures> Nothing() {
  std::array<double, ReportGauges::kMeasures> v{};
  v[3] = std::numeric_limits<double>::quiet_NaN();
  return v;
}

// The category's name under the rules the report was computed with.
std::string RowCategory(const ReportRow& r) {
  return r.category_name.empty() ? std::string(CategoryName(r.category)) : r.category_name;
}

std::string TwoDigits(uint8_t code) {
  return std::string(1, static_cast<char>('0' + code / 10)) + static_cast<char>('0' + code % 10);
}

}  // namespace

ReportGauges::ReportGauges(pm::Registry& registry) {
  date_ = &pm::BuildGauge()
               .Name("loanledger_report_date_timestamp_seconds")
               .Help(
                   "The latest business date the ledger holds (00:00 UTC, Unix seconds): the "
                   "date of every loanledger_report_ figure; 0 = no data")
               .Register(registry)
               .Add({});
  for (size_t m = 0; m < kMeasures; ++m) {
    const std::string suffix = kMeasureInfo[m].suffix;
    const std::string help = kMeasureInfo[m].help;
    national_[m] = &pm::BuildGauge()
                        .Name("loanledger_report_" + suffix)
                        .Help(help + ", by category, all provinces (`loanledger report`)")
                        .Register(registry);
    province_[m] = &pm::BuildGauge()
                        .Name("loanledger_report_province_" + suffix)
                        .Help(help +
                              ", by category and province (`loanledger report --by "
                              "province`)")
                        .Register(registry);
  }
  // Every family has its series from start-up, before the first Refresh.
  for (const CategoryRule& rule : CategoryRules()) GaugesOf(std::string(rule.name));
}

ReportGauges::Slots ReportGauges::AddSlots(bool province, const pm::Labels& labels) {
  Slots slots{};
  for (size_t m = 0; m < kMeasures; ++m) {
    slots[m] = &(province ? province_ : national_)[m]->Add(labels);
    slots[m]->Set(m == 3 ? std::numeric_limits<double>::quiet_NaN() : 0.0);
  }
  return slots;
}

void ReportGauges::RemoveSlots(bool province, const Slots& slots) {
  for (size_t m = 0; m < kMeasures; ++m) (province ? province_ : national_)[m]->Remove(slots[m]);
}

ReportGauges::CategoryGauges& ReportGauges::GaugesOf(const std::string& category) {
  auto it = categories_.find(category);
  if (it != categories_.end()) return it->second;
  CategoryGauges& g = categories_[category];
  g.national = AddSlots(false, {{"category", category}});
  for (uint8_t p : ProvinceCodes()) {
    const std::string code = TwoDigits(p);
    g.provinces[code] = AddSlots(true, {{"category", category}, {"province", code}});
  }
  return g;
}

bool ReportGauges::Refresh(const storage::Ledger& ledger, const Figures& figures) {
  // The latest date of this node's ledger; in a partitioned cluster the
  // figures are every partition's as of that date.
  const Day latest = ledger.LatestBusinessDate();
  // An empty ledger: the report of any date lists every category, at zero.
  ReportQuery q;
  q.date = latest != 0 ? latest : kDayMin;
  if (figures.fans_out()) {
    if (asking_.exchange(true)) return true;  // the last refresh still waits on a partition
    struct Both {
      std::mutex mu;
      std::optional<Result<Report>> national, by_province;
    };
    auto both = std::make_shared<Both>();
    auto land = [this, both, latest](bool province, Result<Report> r) {
      std::unique_lock lock(both->mu);
      (province ? both->by_province : both->national) = std::move(r);
      if (!both->national || !both->by_province) return;
      lock.unlock();
      try {
        if (both->national->ok() && both->by_province->ok())
          Set(latest, **both->national, **both->by_province);
      } catch (const std::exception& e) {
        spdlog::warn("report gauges: {}", e.what());
      }
      asking_ = false;
    };
    for (const bool province : {false, true}) {
      q.by = province ? GroupBy::kProvince : GroupBy::kNone;
      try {
        figures.QueryReportThen(q, [land, province](Result<Report> r) { land(province, r); });
      } catch (const std::exception& e) {  // before it was asked: nothing will answer it
        land(province, Status::Internal(e.what()));
      }
    }
    return true;
  }
  Result<Report> national = figures.QueryReport(q);
  q.by = GroupBy::kProvince;
  Result<Report> by_province = figures.QueryReport(q);
  if (!national.ok() || !by_province.ok()) return false;
  Set(latest, *national, *by_province);
  return true;
}

void ReportGauges::Set(Day date, const Report& national, const Report& by_province) {
  std::lock_guard lock(mu_);
  std::set<std::string> seen;
  for (const ReportRow& r : national.rows) {
    if (!r.group.empty()) continue;
    const std::string name = RowCategory(r);
    seen.insert(name);
    const auto v = Values(r);
    const Slots& s = GaugesOf(name).national;
    for (size_t m = 0; m < kMeasures; ++m) s[m]->Set(v[m]);
  }
  // Provinces: those in the report, then 0 for the others.
  std::map<std::string, std::set<std::string>> reported;  // category -> provinces set
  for (const ReportRow& r : by_province.rows) {
    const std::string name = RowCategory(r);
    CategoryGauges& g = GaugesOf(name);
    seen.insert(name);
    auto it = g.provinces.find(r.group);
    if (it == g.provinces.end()) continue;  // not a province code (never expected)
    const auto v = Values(r);
    for (size_t m = 0; m < kMeasures; ++m) it->second[m]->Set(v[m]);
    reported[name].insert(r.group);
  }
  const auto nothing = Nothing();
  for (auto it = categories_.begin(); it != categories_.end();) {
    if (!seen.contains(it->first) && !national.rows.empty()) {
      // A category the rules no longer define (an empty national report
      // is only the start-up call: keep what is registered).
      RemoveSlots(false, it->second.national);
      for (const auto& [code, slots] : it->second.provinces) RemoveSlots(true, slots);
      it = categories_.erase(it);
      continue;
    }
    const std::set<std::string>& have = reported[it->first];
    for (const auto& [code, slots] : it->second.provinces) {
      if (have.contains(code)) continue;
      for (size_t m = 0; m < kMeasures; ++m) slots[m]->Set(nothing[m]);
    }
    if (!seen.contains(it->first)) {
      for (size_t m = 0; m < kMeasures; ++m) it->second.national[m]->Set(nothing[m]);
    }
    ++it;
  }
  date_->Set(date == 0 ? 0.0 : static_cast<double>(date) * 86400.0);
}

}  // namespace loanledger::server
