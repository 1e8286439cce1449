// Query requests and answers (docs/figures.md). Storage computes them, the wire
// carries them, the CLI prints them; money is int64 fen throughout and only
// the growth percentage is a double.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schema/category.h"
#include "schema/date.h"
#include "schema/event.h"

namespace loanledger {

// On the wire. kRegionGroup: the rules file's region groups (docs/categories.md).
enum class GroupBy : uint8_t { kNone = 0, kProvince = 1, kInstitution = 2, kRegionGroup = 3 };
std::optional<GroupBy> ParseGroupBy(
    std::string_view text);  // none|province|institution|region_group
std::string_view GroupByName(GroupBy g);

struct ReportQuery {
  Day date = 0;                      // as of this date (events dated <= date)
  std::vector<Category> categories;  // empty = every category, in docs/categories.md order
  GroupBy by = GroupBy::kNone;
  std::optional<std::string> scope_institution;  // set = only this institution's loans
  // Categories by name, resolved under the ledger's current rules
  // (docs/categories.md); when non-empty, used instead of `categories`.
  std::vector<std::string> category_names;
};

struct ReportRow {
  Category category = Category::kTotal;
  std::string group;                     // "" without --by; province "31" or institution id
  int64_t balance_fen = 0;               // as of the date
  int64_t loan_count = 0;                // loans with balance > 0 as of the date
  int64_t balance_year_ago_fen = 0;      // as of YearAgo(date)
  std::optional<double> yoy_growth_pct;  // null when balance_year_ago_fen == 0
  int64_t ytd_increase_fen = 0;          // balance - balance at PreviousYearEnd(date)
  int64_t disbursed_ytd_fen = 0;         // flows Jan 1 .. date of date's year
  int64_t repaid_ytd_fen = 0;
  int64_t written_off_ytd_fen = 0;
  std::string category_name;  // under the rules the report was computed with ("" = CategoryName)
  bool operator==(const ReportRow&) const = default;
};

struct Report {
  Day date = 0;
  std::vector<ReportRow> rows;  // category order, then group ascending
  GroupBy by = GroupBy::kNone;  // the query's grouping (set by whoever asked; not on the wire)
  std::string rules_version;    // the rules' "version" it was computed under
  // A partitioned cluster's answer: each partition's journal stream position
  // it reflects (at least), by partition; empty elsewhere (docs/cluster.md).
  std::vector<uint64_t> stream_positions;
};

struct SeriesQuery {
  Category category = Category::kTotal;
  Day from = 0;
  Day to = 0;  // inclusive; from <= to
  Step step = Step::kMonth;
  GroupBy by = GroupBy::kNone;
  std::optional<std::string> scope_institution;
  std::string category_name;  // by name (rules file); when set, used instead of `category`
};

struct SeriesPoint {
  Day date = 0;       // a period end, or `to` for the clipped last period
  std::string group;  // "" without by
  int64_t balance_fen = 0;
  int64_t loan_count = 0;
  bool operator==(const SeriesPoint&) const = default;
};

struct Series {
  Category category = Category::kTotal;
  Step step = Step::kMonth;
  GroupBy by = GroupBy::kNone;
  std::vector<SeriesPoint> points;  // date ascending, then group ascending
  std::string category_name;        // under the rules it was computed with ("" = CategoryName)
  std::string rules_version;
  std::vector<uint64_t> stream_positions;  // as in Report
};

// The period ends of a series within from..to (docs/figures.md): each period end e
// with from <= e <= to, then `to` itself when its period is not complete.
std::vector<Day> SeriesDates(Day from, Day to, Step step);

struct LoanView {
  std::string institution_id;
  std::string loan_id;
  uint64_t last_seq = 0;
  Day last_business_date = 0;
  int64_t balance_fen = 0;
  LoanAttributes attributes;    // as of the latest event
  CategoryMask categories = 0;  // under the default rules' ids; see category_names
  // Its categories under the ledger's current rules, TOTAL first.
  std::vector<std::string> category_names;
};

// A category's name in an answer: the name the ledger gave under its rules
// (docs/categories.md), else the default rules' name of the id.
std::string CategoryLabel(Category c, const std::string& name_from_ledger);
// A loan's categories by name: the ledger's names, else the default ones.
std::vector<std::string> LoanCategoryNames(const LoanView& loan);

// yoy growth per docs/figures.md; nullopt when the base is 0.
std::optional<double> YoyGrowthPct(int64_t balance_fen, int64_t balance_year_ago_fen);

}  // namespace loanledger
