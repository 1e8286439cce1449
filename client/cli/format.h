// Output of the `loanledger` CLI (docs/cli.md) as pure functions from schema
// types to strings, so every format is testable without a server.
//
// Three formats per query: `table` (aligned columns for people; amounts in
// yuan with two decimals, which is the fen figure exactly), `csv` (a header
// then one line per row; amounts in fen) and `json` (the docs/cli.md shapes, keys
// in that order, amounts in fen, one line). `--unit` changes the unit of
// tables and CSV, exactly (no floating point touches an amount).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schema/query.h"
#include "schema/reason.h"

namespace loanledger::client::cli {

enum class OutputFormat : uint8_t { kTable, kCsv, kJson };
std::optional<OutputFormat> ParseOutputFormat(std::string_view text);  // table|csv|json

// The unit amounts are shown in by `table` and `csv` (`--unit`, docs/cli.md):
// 1 yuan = 100 fen, 1 wan = 10^4 yuan, 1 yi = 10^8 yuan. JSON is always fen.
enum class AmountUnit : uint8_t { kFen, kYuan, kWan, kYi };
std::optional<AmountUnit> ParseAmountUnit(std::string_view text);  // fen|yuan|wan|yi
std::string_view AmountUnitName(AmountUnit unit);

// Fen in `unit` as an exact decimal with every digit the unit needs (fen 0,
// yuan 2, wan 6, yi 10 decimals), thousands separators in the integer part
// when `separators`: FormatAmount(-123456789, kWan, true) -> "-123.456789".
// Integer arithmetic only: exact for every int64, 2^53 and beyond.
std::string FormatAmount(int64_t fen, AmountUnit unit, bool separators);

// Fen as yuan with thousands separators and exactly two decimals:
// 123456789 -> "1,234,567.89", -5 -> "-0.05". Exact for every int64.
std::string FormatYuan(int64_t fen);

struct OutputOptions {
  OutputFormat format = OutputFormat::kTable;
  // Amounts in tables and CSV; nullopt = yuan in tables, fen in CSV (as
  // before --unit existed). Ignored by JSON, whose amounts are fen.
  std::optional<AmountUnit> unit;
  bool bom = false;  // CSV only: the UTF-8 byte order mark first, for Excel
};

// The measures of a series' points (`series --measures`, docs/cli.md), a
// bit set. kYoy shows balance_year_ago and yoy_growth_pct, kYtd
// ytd_increase, each as `report` computes them (docs/figures.md).
enum SeriesMeasure : uint8_t {
  kMeasureBalance = 1,
  kMeasureLoans = 2,
  kMeasureYoy = 4,
  kMeasureYtd = 8,
};
using SeriesMeasures = uint8_t;
inline constexpr SeriesMeasures kSeriesMeasuresDefault = kMeasureBalance | kMeasureLoans;
inline constexpr SeriesMeasures kSeriesMeasuresAll =
    kMeasureBalance | kMeasureLoans | kMeasureYoy | kMeasureYtd;
// Names balance, loans, yoy, ytd or all; nullopt on an unknown or no name.
std::optional<SeriesMeasures> ParseSeriesMeasures(const std::vector<std::string>& names);

// YoY and YTD of one series point, computed from exact balances.
struct SeriesGrowth {
  int64_t balance_year_ago_fen = 0;      // as of YearAgo(date)
  std::optional<double> yoy_growth_pct;  // YoyGrowthPct: null when the base is 0
  int64_t ytd_increase_fen = 0;          // balance - balance at PreviousYearEnd(date)
  bool operator==(const SeriesGrowth&) const = default;
};

// One category's series and, when YoY or YTD is asked, one SeriesGrowth per
// point (same order).
struct SeriesAnswer {
  Series series;
  std::vector<SeriesGrowth> growth;
};

// Each returns the whole output, ending in '\n'.
std::string FormatReport(const Report& report, OutputFormat format);
std::string FormatReport(const Report& report, const OutputOptions& options);
// The caller's step and grouping are part of the JSON shape (`step`, `group_by`).
std::string FormatSeries(const Series& series, OutputFormat format);
// Several categories, in the order asked: one table with a CATEGORY column,
// one CSV header, a JSON array of series objects. One category with the
// default measures prints exactly what FormatSeries prints.
std::string FormatSeriesAnswers(const std::vector<SeriesAnswer>& answers, SeriesMeasures measures,
                                const OutputOptions& options);
std::string FormatLoan(const LoanView& loan, OutputFormat format);
std::string FormatLoan(const LoanView& loan, const OutputOptions& options);  // unit not used

// The figures `submit` reports (docs/cli.md).
struct SubmitCounts {
  uint64_t applied = 0;     // events applied, in acknowledged batches
  uint64_t duplicates = 0;  // events skipped as duplicates, in acknowledged batches
  uint64_t batches = 0;     // batches acknowledged (applied)
  uint64_t rejected = 0;    // events rejected (by the server or unparsable in the file)
  bool operator==(const SubmitCounts&) const = default;
};
// "applied=N duplicates=N batches=N rejected=N" (no newline).
std::string FormatSubmitCounts(const SubmitCounts& counts);

// "FILE:LINE: REASON_NAME: message" (no newline); the reason's description
// stands in for an empty message.
std::string FormatRejectionLine(std::string_view file, uint64_t line, Reason reason,
                                std::string_view message);

}  // namespace loanledger::client::cli
