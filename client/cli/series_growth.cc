#include "client/cli/series_growth.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "schema/check.h"

namespace loanledger::client::cli {
namespace {

// Balances known from the series fetched so far: the dates they cover
// (every date of their SeriesDates, whatever groups answered) and each
// (date, group)'s balance.
struct KnownBalances {
  std::set<Day> covered;
  std::map<std::pair<Day, std::string>, int64_t> balance_fen;

  void Add(const SeriesQuery& query, const Series& series) {
    for (Day d : SeriesDates(query.from, query.to, query.step)) covered.insert(d);
    for (const SeriesPoint& p : series.points) balance_fen[{p.date, p.group}] = p.balance_fen;
  }

  // REQUIRES: d is covered or before kDayMin.
  int64_t At(Day d, const std::string& group) const {
    if (d < kDayMin) return 0;  // no event is dated before kDayMin
    LL_CHECK_MSG(covered.count(d) == 1, "a base date was not fetched");
    const auto it = balance_fen.find({d, group});
    return it == balance_fen.end() ? 0 : it->second;
  }
};

}  // namespace

Result<std::vector<SeriesGrowth>> ComputeSeriesGrowth(const SeriesQuery& query, const Series& main,
                                                      const SeriesFetch& fetch) {
  LL_CHECK(query.from <= query.to);
  std::vector<SeriesGrowth> growth;
  if (main.points.empty()) return growth;
  KnownBalances known;
  known.Add(query, main);

  // The year-ago range with the same step: YearAgo of a period end is a
  // period end of the year before (but Feb 28 after a leap year, and the
  // clipped last date maps to that range's own clipped date), and it holds
  // every Dec 31 from YearAgo(from) on.
  if (const Day to = YearAgo(query.to); to >= kDayMin) {
    SeriesQuery shifted = query;
    shifted.from = std::max(YearAgo(query.from), kDayMin);
    shifted.to = to;
    Result<Series> s = fetch(shifted);
    if (!s.ok()) return s.status();
    known.Add(shifted, *s);
  }
  // Any base date still missing: one day each.
  std::set<Day> bases;
  for (const SeriesPoint& p : main.points) {
    bases.insert(YearAgo(p.date));
    bases.insert(PreviousYearEnd(p.date));
  }
  for (Day d : bases) {
    if (d < kDayMin || known.covered.count(d) == 1) continue;
    SeriesQuery one = query;
    one.from = d;
    one.to = d;
    one.step = Step::kDay;
    Result<Series> s = fetch(one);
    if (!s.ok()) return s.status();
    known.Add(one, *s);
  }

  growth.reserve(main.points.size());
  for (const SeriesPoint& p : main.points) {
    SeriesGrowth g;
    g.balance_year_ago_fen = known.At(YearAgo(p.date), p.group);
    g.yoy_growth_pct = YoyGrowthPct(p.balance_fen, g.balance_year_ago_fen);
    // Balances are >= 0 (the ledger checks), so the difference fits in int64.
    g.ytd_increase_fen = p.balance_fen - known.At(PreviousYearEnd(p.date), p.group);
    growth.push_back(g);
  }
  LL_CHECK(growth.size() == main.points.size());
  return growth;
}

Result<SeriesAnswer> QuerySeriesAnswer(const SeriesQuery& query, SeriesMeasures measures,
                                       const SeriesFetch& fetch) {
  Result<Series> series = fetch(query);
  if (!series.ok()) return series.status();
  SeriesAnswer answer{std::move(*series), {}};
  if (answer.series.category_name.empty()) answer.series.category = query.category;
  answer.series.step = query.step;
  answer.series.by = query.by;
  if (measures & (kMeasureYoy | kMeasureYtd)) {
    Result<std::vector<SeriesGrowth>> growth = ComputeSeriesGrowth(query, answer.series, fetch);
    if (!growth.ok()) return growth.status();
    answer.growth = std::move(*growth);
  }
  return answer;
}

}  // namespace loanledger::client::cli
