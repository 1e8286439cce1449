// YoY and YTD of a series' points (`series --measures yoy,ytd`, docs/cli.md),
// computed on the client from exact int64 balances the way `report` computes
// them (docs/figures.md): balance at YearAgo(date) and at
// PreviousYearEnd(date), YoyGrowthPct for the only floating-point figure.
//
// The server's series answers balances at period ends only, so the base
// balances come from more series queries: one over the year-ago range with
// the same step (which holds most year-ago dates and year ends), then a
// one-day query for each base date that range does not hold (e.g. Feb 28
// when the year before was a leap year). A few queries in all, whatever the
// number of points.
#pragma once

#include <functional>
#include <vector>

#include "client/cli/format.h"
#include "schema/query.h"
#include "schema/status.h"

namespace loanledger::client::cli {

// Asks the server for a series (Client::QuerySeries in the CLI).
using SeriesFetch = std::function<Result<Series>(const SeriesQuery&)>;

// One SeriesGrowth per point of `main`, which answered `query`. A group
// absent from a base query had no balance then (0). Dates before
// 1990-01-01 have no events: balance 0, not asked.
// REQUIRES: main.points are SeriesDates(query.from, query.to, query.step) ×
// groups, as the server answers.
Result<std::vector<SeriesGrowth>> ComputeSeriesGrowth(const SeriesQuery& query, const Series& main,
                                                      const SeriesFetch& fetch);

// One category's answer to `query` with the measures asked: the series,
// named by what was asked (category, step, group_by, as docs/cli.md
// shows them), and its growth when kMeasureYoy or kMeasureYtd is set.
Result<SeriesAnswer> QuerySeriesAnswer(const SeriesQuery& query, SeriesMeasures measures,
                                       const SeriesFetch& fetch);

}  // namespace loanledger::client::cli
