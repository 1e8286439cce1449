// The national portfolio generator (docs/domain.md): a synthetic book of individual
// loans with their history from 2022-01-01 to 2024-12-31, calibrated so that
// the report for 2024-09-30 shows scale x the central bank's published
// balances and their year-on-year growth. The model and the calibration are
// described in client/gen/README.md.
//
// Entry points: PortfolioGenerator (pull events one by one), WriteCsv (the
// CSV form of docs/data.md), RunGenCommand (`loanledger gen`), PublishedFigures.
// Depends on schema/ and the CSV writer (client/csv.h) only.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "schema/category.h"
#include "schema/date.h"
#include "schema/event.h"
#include "schema/status.h"

namespace loanledger::gen {

// The date whose report is calibrated (docs/domain.md) and its year-ago date.
inline constexpr std::string_view kReferenceDate = "2024-09-30";
inline constexpr std::string_view kYearAgoReferenceDate = "2023-09-30";

// Bounds of GenOptions::scale: 1 is the national book (tens of millions of
// loans); below 1e-7 the portfolio is a handful of calibration loans.
inline constexpr double kScaleMin = 1e-7;
inline constexpr double kScaleMax = 10.0;
// Loans generated and merged by date at a time: bounds memory (about 1 KB a
// loan) while interleaving loans the way a bank reports them, day by day.
inline constexpr uint32_t kBlockLoansDefault = 4096;
inline constexpr uint32_t kBlockLoansMax = 1u << 20;

struct GenOptions {
  double scale = 1e-4;                        // share of the national book, kScaleMin..kScaleMax
  uint64_t seed = 1;                          // same seed (and scale) -> byte-identical output
  uint32_t block_loans = kBlockLoansDefault;  // 1..kBlockLoansMax; changes the order, not the loans
  uint32_t banks = 0;  // 0: the model's 160 banks; 1..kBanksMax: that many, skewed (banks.h)
};

// OK, or InvalidArgument naming the bad option.
Status ValidateGenOptions(const GenOptions& options);

// One calibrated balance: its targets and how much of them the random loans
// reached before calibration loans closed the gap.
struct CalibrationFill {
  std::string_view name;       // e.g. "MANUFACTURING_MLT", "Shanghai GREEN"
  int64_t target_fen[2] = {};  // [0] 2023-09-30, [1] 2024-09-30
  int64_t random_fen[2] = {};  // reached by the random loans
  uint64_t calibration_loans = 0;
};
inline constexpr size_t kCalibratedCount = 7;

// Counters of what the generator has produced so far. The calibration fields
// are final once Next() has returned false.
struct GenStats {
  uint64_t loans = 0;               // loans started (random and calibration)
  uint64_t calibration_loans = 0;   // of which calibration loans (the last ones)
  uint64_t events = 0;              // events returned by Next()
  uint64_t events_by_kind[5] = {};  // indexed by EventKind (1..4)
  uint64_t redraws = 0;             // random loans drawn again to stay under a target
  // As-of balances of the whole portfolio per category, national, for
  // [0] 2023-09-30 and [1] 2024-09-30 (what the server's report must show).
  int64_t category_balance_fen[2][kCategoryCount] = {};
  CalibrationFill
      calibration[kCalibratedCount];  // national inclusive is split: Shanghai and the rest
};

// Streams the portfolio's events: per loan in seq order; loans interleaved by
// business date within blocks of GenOptions::block_loans loans; the
// calibration loans come last. Deterministic in (scale, seed, block_loans).
// Thread safety: one instance per thread.
class PortfolioGenerator {
 public:
  // REQUIRES: ValidateGenOptions(options).ok().
  explicit PortfolioGenerator(const GenOptions& options);
  ~PortfolioGenerator();
  PortfolioGenerator(const PortfolioGenerator&) = delete;
  PortfolioGenerator& operator=(const PortfolioGenerator&) = delete;

  // Fills `out` with the next event; false at the end (out untouched).
  bool Next(LoanEvent& out);
  const GenStats& stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes the CSV header and every event (the CSV form of docs/data.md), buffered.
// IoError when the stream fails; InvalidArgument for bad options.
Status WriteCsv(const GenOptions& options, std::ostream& out);

// Where `loanledger gen` writes, and which of the stream's events: only those
// dated first_day..last_day (inclusive; the whole history by default). Each
// loan's events keep their order, so the events before a day (a backfill)
// followed by the events of that day (a daily file) apply cleanly.
inline constexpr Day kGenFirstDay = 18993;  // 2022-01-01, the first day of the history
inline constexpr Day kGenLastDay = 20088;   // 2024-12-31, the last
struct GenOutput {
  std::string out_path;          // one CSV file; "" = stdout. Unused with out_dir
  std::string out_dir;           // "": one file; else DIR/<institution_id>.csv per institution
  Day first_day = kGenFirstDay;  // only events dated first_day..last_day
  Day last_day = kGenLastDay;
  bool summary_extra = false;  // the summary line also gives written=N (and files=N)
};
// OK, or InvalidArgument: days outside the history or in the wrong order.
Status ValidateGenOutput(const GenOutput& output);

// `loanledger gen [--scale S] [--seed N] [--banks N] [--out FILE | --out-dir DIR]
// [--day D | --before D]`: as RunGenCommand below, to one file or one file per
// institution (DIR is created; refused when it already holds CSV files).
int RunGenCommand(const GenOptions& options, const GenOutput& output);

// `loanledger gen [--scale S] [--seed N] [--out FILE]`: the CSV to the file,
// or to stdout when out_path_or_empty is empty; a one-line summary to
// stderr. Returns the process exit code: 0 ok, 1 bad options or the output
// cannot be written.
int RunGenCommand(const GenOptions& options, const std::string& out_path_or_empty);

// The published figures the portfolio is calibrated to
// (docs/domain.md), for printing next to a report.
struct PublishedFigure {
  Category category;
  std::string_view label;        // what was published, in words
  uint8_t province;              // 0: national; else the province code (31 = Shanghai)
  double balance_trillion_yuan;  // NaN when no balance was published
  double yoy_pct;                // year-on-year growth in percent; NaN when not published
  bool lower_bound;              // true: "above" balance_trillion_yuan, growth at least yoy_pct
};
std::span<const PublishedFigure> PublishedFigures();

}  // namespace loanledger::gen
