// Report, series and loan queries (docs/figures.md). Every figure is an as-of sum
// over the in-memory day series; nothing here touches the journal.
#include <rocksdb/db.h>

#include "schema/check.h"
#include "schema/limits.h"
#include "storage/ledger_impl.h"

namespace loanledger::storage {
namespace {

std::string ProvinceLabel(uint8_t p) {
  return std::string{static_cast<char>('0' + p / 10), static_cast<char>('0' + p % 10)};
}

Status CheckDate(Day d, std::string_view what) {
  if (d < kDayMin || d > kDayMax) {
    return Status::InvalidArgument(std::string(what) + " must be within 1990-01-01..2199-12-31");
  }
  return Status::Ok();
}

// One group of a grouped query: its label and its series (null = no data).
struct GroupSeries {
  std::string label;
  const DaySeries* series;
};

}  // namespace

std::optional<uint32_t> LedgerImpl::ScopeId(const std::optional<std::string>& scope,
                                            bool* unknown) const {
  *unknown = false;
  if (!scope) return std::nullopt;
  auto it = institution_ids_.find(*scope);
  if (it == institution_ids_.end()) {
    *unknown = true;  // an institution with no loans yet: every figure is 0
    return std::nullopt;
  }
  return it->second;
}

ReportRow LedgerImpl::MakeRow(Category c, std::string group, const DaySeries* s, Day date) const {
  ReportRow row;
  row.category = c;
  row.group = std::move(group);
  if (s == nullptr) return row;
  const Measures now = s->AsOf(date);
  const Measures year_ago = s->AsOf(YearAgo(date));
  const Measures year_start = s->AsOf(PreviousYearEnd(date));
  row.balance_fen = now.balance_fen;
  row.loan_count = now.loan_count;
  row.balance_year_ago_fen = year_ago.balance_fen;
  row.yoy_growth_pct = YoyGrowthPct(now.balance_fen, year_ago.balance_fen);
  row.ytd_increase_fen = now.balance_fen - year_start.balance_fen;
  row.disbursed_ytd_fen = now.disbursed_fen - year_start.disbursed_fen;
  row.repaid_ytd_fen = now.repaid_fen - year_start.repaid_fen;
  row.written_off_ytd_fen = now.written_off_fen - year_start.written_off_fen;
  LL_CHECK(row.balance_fen >= 0 && row.loan_count >= 0);
  return row;
}

// The groups of category c for `by`, within the caller's scope. REQUIRES agg_mu_ shared.
static std::vector<GroupSeries> Groups(const Aggregator& agg,
                                       const std::map<std::string, uint32_t, std::less<>>& ids,
                                       const Rules& rules, Category c, GroupBy by,
                                       std::optional<uint32_t> scope, bool scope_unknown) {
  std::vector<GroupSeries> groups;
  const uint32_t inst = scope.value_or(0);
  switch (by) {
    case GroupBy::kNone:
      groups.push_back({"", scope_unknown ? nullptr : agg.Find(c, 0, inst)});
      break;
    case GroupBy::kProvince:
      if (scope_unknown) break;
      for (uint8_t p : ProvinceCodes()) {
        const DaySeries* s = agg.Find(c, p, inst);
        if (s != nullptr && !s->empty()) groups.push_back({ProvinceLabel(p), s});
      }
      break;
    case GroupBy::kInstitution:
      if (scope_unknown) break;
      for (const auto& [name, id] : ids) {
        if (scope && id != *scope) continue;
        const DaySeries* s = agg.Find(c, 0, id);
        if (s != nullptr && !s->empty()) groups.push_back({name, s});
      }
      break;
    case GroupBy::kRegionGroup:
      if (scope_unknown) break;
      for (size_t g = 0; g < rules.region_group_count(); ++g) {
        const DaySeries* s = agg.Find(c, static_cast<uint8_t>(kRegionGroupCellBase + g), inst);
        if (s != nullptr && !s->empty()) groups.push_back({rules.RegionGroupName(g), s});
      }
      break;
  }
  return groups;
}

Result<Report> LedgerImpl::QueryReport(const ReportQuery& q) const {
  if (Status s = CheckDate(q.date, "date"); !s.ok()) return s;
  std::shared_lock lock(agg_mu_);
  const Rules& rules = *rules_;
  std::vector<Category> categories = q.categories;
  if (!q.category_names.empty()) {
    categories.clear();
    for (const std::string& name : q.category_names) {
      const std::optional<Category> c = rules.FindCategory(name);
      if (!c) {
        return Status::InvalidArgument("unknown category " + name + " (rules version " +
                                       rules.version() + ")");
      }
      categories.push_back(*c);
    }
  }
  if (categories.empty()) {
    for (size_t i = 0; i < rules.category_count(); ++i)
      categories.push_back(static_cast<Category>(i));
  }
  for (Category c : categories) {
    if (static_cast<size_t>(c) >= rules.category_count())
      return Status::InvalidArgument("unknown category");
  }
  Report report;
  report.date = q.date;
  report.rules_version = rules.version();
  bool unknown = false;
  const std::optional<uint32_t> scope = ScopeId(q.scope_institution, &unknown);
  for (Category c : categories) {
    for (GroupSeries& g : Groups(agg_, institution_ids_, rules, c, q.by, scope, unknown)) {
      report.rows.push_back(MakeRow(c, std::move(g.label), g.series, q.date));
      report.rows.back().category_name = rules.CategoryName(c);
    }
  }
  return report;
}

Result<Series> LedgerImpl::QuerySeries(const SeriesQuery& q) const {
  if (Status s = CheckDate(q.from, "from"); !s.ok()) return s;
  if (Status s = CheckDate(q.to, "to"); !s.ok()) return s;
  if (q.from > q.to) return Status::InvalidArgument("from must not be after to");
  std::shared_lock lock(agg_mu_);
  const Rules& rules = *rules_;
  Category category = q.category;
  if (!q.category_name.empty()) {
    const std::optional<Category> c = rules.FindCategory(q.category_name);
    if (!c) {
      return Status::InvalidArgument("unknown category " + q.category_name + " (rules version " +
                                     rules.version() + ")");
    }
    category = *c;
  }
  if (static_cast<size_t>(category) >= rules.category_count())
    return Status::InvalidArgument("unknown category");
  const std::vector<Day> dates = SeriesDates(q.from, q.to, q.step);
  Series series;
  series.category = category;
  series.category_name = rules.CategoryName(category);
  series.rules_version = rules.version();
  series.step = q.step;
  series.by = q.by;
  bool unknown = false;
  const std::optional<uint32_t> scope = ScopeId(q.scope_institution, &unknown);
  const std::vector<GroupSeries> groups =
      Groups(agg_, institution_ids_, rules, category, q.by, scope, unknown);
  if (dates.size() * std::max<size_t>(groups.size(), 1) > kSeriesPointsMax) {
    return Status::ResourceExhausted("a series returns at most " +
                                     std::to_string(kSeriesPointsMax) +
                                     " points; narrow the range or use a longer step");
  }
  for (Day d : dates) {
    for (const GroupSeries& g : groups) {
      const Measures m = g.series == nullptr ? Measures{} : g.series->AsOf(d);
      series.points.push_back(SeriesPoint{d, g.label, m.balance_fen, m.loan_count});
    }
  }
  return series;
}

Result<LoanView> LedgerImpl::QueryLoan(std::string_view institution_id,
                                       std::string_view loan_id) const {
  if (!IsValidInstitutionId(institution_id) || !IsValidLoanId(loan_id)) {
    return Status::InvalidArgument("invalid institution_id or loan_id");
  }
  std::shared_lock lock(loans_mu_);
  const LoanSlot* slot = loans_.Find(LoanKey(institution_id, loan_id));
  if (slot == nullptr) {
    return Status::NotFound("no loan " + std::string(loan_id) + " at " +
                            std::string(institution_id));
  }
  const LoanState state = slot->ToState();
  LoanView view;
  view.institution_id = institution_id;
  view.loan_id = loan_id;
  view.last_seq = state.last_seq;
  view.last_business_date = state.last_date;
  view.balance_fen = state.balance_fen;
  const RuleMask mask = rules_->Classify(state.attributes);  // rules_: loans_mu_ held
  view.categories = CategoryMask{1} | static_cast<CategoryMask>(mask << 1);  // ids < 32
  view.category_names = rules_->Names(mask);
  view.attributes = state.attributes;
  return view;
}

}  // namespace loanledger::storage
