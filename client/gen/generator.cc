#include "client/gen/generator.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <ostream>
#include <vector>

#include "client/csv.h"
#include "client/gen/portfolio.h"
#include "client/gen/tables.h"
#include "schema/check.h"

namespace loanledger::gen {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// docs/domain.md, end of September 2024.
constexpr PublishedFigure kPublished[] = {
    {Category::kManufacturingMlt, "Medium- and long-term manufacturing loans", 0, 13.88, 14.8,
     false},
    {Category::kHighTechManufacturing, "High-tech manufacturing loans", 0, kNaN, 12.0, false},
    {Category::kSrdi, "Loans to specialized, refined and innovative (SRDI) enterprises", 0, 4.26,
     13.5, false},
    {Category::kInclusiveSmallMicro, "Inclusive small and micro loans", 0, 32.90, 14.5, false},
    {Category::kTechEnterprise, "Shanghai: loans to technology enterprises", kShanghai, 1.0, 10.0,
     true},
    {Category::kGreen, "Shanghai: green loans", kShanghai, 1.0, 10.0, true},
    {Category::kInclusiveSmallMicro, "Shanghai: inclusive small and micro loans", kShanghai, 1.0,
     10.0, true},
};

// CSV output is written in chunks of this size (one write call each).
constexpr size_t kCsvChunkBytes = 1u << 20;

// Events of a block are ordered by (date, position in the block), which keeps
// each loan's events in seq order (their dates never decrease): a stable
// counting sort over the days of the history window.
constexpr size_t kHistoryDays = kHistoryLast - kHistoryFirst + 1;

}  // namespace

Status ValidateGenOptions(const GenOptions& o) {
  if (!(o.scale >= kScaleMin && o.scale <= kScaleMax)) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "scale must be in [%g, %g] (got %g)", kScaleMin, kScaleMax,
                  o.scale);
    return Status::InvalidArgument(buf);
  }
  if (o.block_loans < 1 || o.block_loans > kBlockLoansMax) {
    return Status::InvalidArgument("block_loans must be in [1, " + std::to_string(kBlockLoansMax) +
                                   "]");
  }
  return Status::Ok();
}

class PortfolioGenerator::Impl {
 public:
  explicit Impl(const GenOptions& o) : options_(Checked(o)), planner_(o.scale, o.seed) {}

  bool Next(LoanEvent& out) {
    if (cursor_ == events_.size() && !FillBlock()) return false;
    const BlockEvent& e = events_[cursor_++];
    const BlockLoan& loan = loans_[e.loan];
    out.institution_id = Institutions()[loan.institution].id;
    out.loan_id.assign(loan.id, kLoanIdChars);
    out.seq = e.seq;
    out.business_date = e.event.business_date;
    out.kind = e.event.kind;
    out.amount_fen = e.event.amount_fen;
    out.attributes = loan.attributes[e.event.attributes_version];
    ++stats_.events;
    ++stats_.events_by_kind[static_cast<size_t>(e.event.kind)];
    return true;
  }

  const GenStats& stats() const { return stats_; }

 private:
  static const GenOptions& Checked(const GenOptions& o) {
    LL_CHECK(ValidateGenOptions(o).ok());  // before anything is built from them
    return o;
  }

  static constexpr size_t kLoanIdChars = 11;  // L + 10 digits
  struct BlockLoan {
    uint32_t institution;
    char id[kLoanIdChars + 1];
    LoanAttributes attributes[2];
  };
  struct BlockEvent {
    PlannedEvent event;
    uint32_t loan;  // index in loans_
    uint32_t seq;
  };

  // Plans the next block of loans and orders its events by date.
  bool FillBlock() {
    loans_.clear();
    events_.clear();
    cursor_ = 0;
    while (loans_.size() < options_.block_loans && planner_.Next(planned_)) {
      BlockLoan& b = loans_.emplace_back();
      b.institution = planned_.institution;
      LL_CHECK(planned_.number < 10'000'000'000ull);
      std::snprintf(b.id, sizeof b.id, "L%010llu",
                    static_cast<unsigned long long>(planned_.number));
      b.attributes[0] = planned_.attributes[0];
      b.attributes[1] = planned_.attributes[1];
      uint32_t seq = 0;
      for (const PlannedEvent& e : planned_.events) {
        LL_CHECK(e.business_date >= kHistoryFirst && e.business_date <= kHistoryLast);
        ++day_counts_[static_cast<size_t>(e.business_date - kHistoryFirst)];
        events_.push_back({e, static_cast<uint32_t>(loans_.size() - 1), ++seq});
      }
      ++stats_.loans;
      if (planned_.calibration) ++stats_.calibration_loans;
    }
    stats_.redraws = planner_.redraws();
    std::copy(&planner_.category_balance_fen()[0][0],
              &planner_.category_balance_fen()[0][0] + 2 * kCategoryCount,
              &stats_.category_balance_fen[0][0]);
    static_assert(kCalibratedCount == kQuantityCount);
    for (size_t q = 0; q < kQuantityCount; ++q) {
      const QuantityStats& from = planner_.quantities()[q];
      CalibrationFill& to = stats_.calibration[q];
      to.name = QuantityName(static_cast<Quantity>(q));
      for (size_t d = 0; d < 2; ++d) {
        to.target_fen[d] = from.target_fen[d];
        to.random_fen[d] = from.random_fen[d];
      }
      to.calibration_loans = from.calibration_loans;
    }
    SortByDate();
    return !events_.empty();
  }

  // Stable counting sort of events_ by date (positions keep their order
  // within a day). The records move, not an index: Next() then reads them
  // in memory order (a gather through an index missed the cache each time).
  void SortByDate() {
    size_t start = 0;
    for (uint32_t& count : day_counts_) {
      const uint32_t n = count;
      count = static_cast<uint32_t>(start);
      start += n;
    }
    sorted_.resize(events_.size());
    for (const BlockEvent& e : events_) {
      sorted_[day_counts_[static_cast<size_t>(e.event.business_date - kHistoryFirst)]++] = e;
    }
    events_.swap(sorted_);
    day_counts_.fill(0);
  }

  GenOptions options_;
  Planner planner_;
  PlannedLoan planned_;
  std::vector<BlockLoan> loans_;
  std::vector<BlockEvent> events_;
  std::vector<BlockEvent> sorted_;                   // scratch for SortByDate
  std::array<uint32_t, kHistoryDays> day_counts_{};  // events per day, then offsets
  size_t cursor_ = 0;
  GenStats stats_;
};

PortfolioGenerator::PortfolioGenerator(const GenOptions& options)
    : impl_(std::make_unique<Impl>(options)) {}
PortfolioGenerator::~PortfolioGenerator() = default;
bool PortfolioGenerator::Next(LoanEvent& out) { return impl_->Next(out); }
const GenStats& PortfolioGenerator::stats() const { return impl_->stats(); }

namespace {

Status WriteCsvCounting(const GenOptions& options, std::ostream& out, GenStats& stats) {
  if (Status s = ValidateGenOptions(options); !s.ok()) return s;
  PortfolioGenerator generator(options);
  std::string buffer;
  buffer.reserve(kCsvChunkBytes + 4096);
  buffer.append(client::kCsvHeader);
  buffer.push_back('\n');
  LoanEvent event;
  while (generator.Next(event)) {
    client::AppendCsvLine(event, buffer);
    if (buffer.size() >= kCsvChunkBytes) {
      out.write(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      if (!out) return Status::IoError("writing the CSV failed");
      buffer.clear();
    }
  }
  out.write(buffer.data(), static_cast<std::streamsize>(buffer.size()));
  out.flush();
  stats = generator.stats();
  if (!out) return Status::IoError("writing the CSV failed");
  return Status::Ok();
}

}  // namespace

Status WriteCsv(const GenOptions& options, std::ostream& out) {
  GenStats stats;
  return WriteCsvCounting(options, out, stats);
}

int RunGenCommand(const GenOptions& options, const std::string& out_path_or_empty) {
  if (Status s = ValidateGenOptions(options); !s.ok()) {
    std::fprintf(stderr, "loanledger gen: %s\n", s.message().c_str());
    return 1;
  }
  std::ofstream file;
  if (!out_path_or_empty.empty()) {
    file.open(out_path_or_empty, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::fprintf(stderr, "loanledger gen: cannot open %s for writing\n",
                   out_path_or_empty.c_str());
      return 1;
    }
  }
  std::ostream& out = out_path_or_empty.empty() ? std::cout : file;
  GenStats stats;
  if (Status s = WriteCsvCounting(options, out, stats); !s.ok()) {
    std::fprintf(stderr, "loanledger gen: %s\n", s.ToString().c_str());
    return 1;
  }
  if (file.is_open()) {
    file.close();
    if (!file) {
      std::fprintf(stderr, "loanledger gen: closing %s failed\n", out_path_or_empty.c_str());
      return 1;
    }
  }
  std::fprintf(stderr,
               "loanledger gen: scale=%g seed=%llu loans=%llu (calibration %llu) events=%llu\n",
               options.scale, static_cast<unsigned long long>(options.seed),
               static_cast<unsigned long long>(stats.loans),
               static_cast<unsigned long long>(stats.calibration_loans),
               static_cast<unsigned long long>(stats.events));
  return 0;
}

std::span<const PublishedFigure> PublishedFigures() { return kPublished; }

}  // namespace loanledger::gen
