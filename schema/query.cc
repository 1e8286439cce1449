#include "schema/query.h"

#include "schema/check.h"

namespace loanledger {

std::optional<GroupBy> ParseGroupBy(std::string_view text) {
  if (text == "none") return GroupBy::kNone;
  if (text == "province") return GroupBy::kProvince;
  if (text == "institution") return GroupBy::kInstitution;
  if (text == "region_group") return GroupBy::kRegionGroup;
  return std::nullopt;
}

std::string_view GroupByName(GroupBy g) {
  switch (g) {
    case GroupBy::kNone:
      return "none";
    case GroupBy::kProvince:
      return "province";
    case GroupBy::kInstitution:
      return "institution";
    case GroupBy::kRegionGroup:
      return "region_group";
  }
  return "?";
}

std::string CategoryLabel(Category c, const std::string& name_from_ledger) {
  if (!name_from_ledger.empty()) return name_from_ledger;
  if (static_cast<size_t>(c) < kCategoryCount) return std::string(CategoryName(c));
  return "#" + std::to_string(static_cast<unsigned>(c));
}

std::vector<std::string> LoanCategoryNames(const LoanView& loan) {
  if (!loan.category_names.empty()) return loan.category_names;
  std::vector<std::string> names;
  for (const CategoryRule& rule : CategoryRules()) {
    if (loan.categories & Bit(rule.category)) names.emplace_back(rule.name);
  }
  return names;
}

std::vector<Day> SeriesDates(Day from, Day to, Step step) {
  LL_CHECK(from <= to);
  std::vector<Day> dates;
  Day d = PeriodEnd(from, step);
  while (d < to) {
    dates.push_back(d);
    d = PeriodEnd(d + 1, step);
  }
  dates.push_back(to);  // the last period, clipped to `to` (or ending exactly there)
  return dates;
}

std::optional<double> YoyGrowthPct(int64_t balance_fen, int64_t balance_year_ago_fen) {
  if (balance_year_ago_fen == 0) return std::nullopt;
  // Exact integer difference first; only the ratio is floating point.
  const __int128 diff = static_cast<__int128>(balance_fen) - balance_year_ago_fen;
  if (diff == 0) return 0.0;  // not -0.0 when the year-ago balance is negative
  return static_cast<double>(diff) / static_cast<double>(balance_year_ago_fen) * 100.0;
}

}  // namespace loanledger
