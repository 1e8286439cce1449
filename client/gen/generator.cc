#include "client/gen/generator.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <ostream>
#include <unordered_map>
#include <vector>

#include "client/csv.h"
#include "client/gen/banks.h"
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
static_assert(kGenFirstDay == kHistoryFirst && kGenLastDay == kHistoryLast);

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
  if (o.banks > kBanksMax) {
    return Status::InvalidArgument("banks must be in [1, " + std::to_string(kBanksMax) + "] (got " +
                                   std::to_string(o.banks) + ")");
  }
  return Status::Ok();
}

Status ValidateGenOutput(const GenOutput& o) {
  if (o.first_day < kGenFirstDay || o.last_day > kGenLastDay || o.first_day > o.last_day) {
    return Status::InvalidArgument("the days asked for (" + FormatDate(o.first_day) + " to " +
                                   FormatDate(o.last_day) + ") are not within the history, " +
                                   FormatDate(kGenFirstDay) + " to " + FormatDate(kGenLastDay));
  }
  return Status::Ok();
}

class PortfolioGenerator::Impl {
 public:
  explicit Impl(const GenOptions& o) : options_(Checked(o)), planner_(o.scale, o.seed) {
    if (o.banks > 0) bank_map_.emplace(o.banks, o.seed);
  }

  bool Next(LoanEvent& out) {
    if (cursor_ == events_.size() && !FillBlock()) return false;
    const BlockEvent& e = events_[cursor_++];
    const BlockLoan& loan = loans_[e.loan];
    out.institution_id = bank_map_ ? bank_map_->For(loan.institution, loan.number)
                                   : Institutions()[loan.institution].id;
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
    uint64_t number;  // PlannedLoan::number
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
      b.number = planned_.number;
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
  std::optional<BankMap> bank_map_;  // with GenOptions::banks > 0
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

bool Wanted(const GenOutput& output, const LoanEvent& event) {
  return event.business_date >= output.first_day && event.business_date <= output.last_day;
}

// Counts of what a gen command wrote.
struct Written {
  uint64_t events = 0;  // events written (after the day filter)
  uint64_t files = 0;   // files written (one with a single output)
};

Status WriteCsvCounting(const GenOptions& options, const GenOutput& output, std::ostream& out,
                        GenStats& stats, Written& written) {
  if (Status s = ValidateGenOptions(options); !s.ok()) return s;
  if (Status s = ValidateGenOutput(output); !s.ok()) return s;
  PortfolioGenerator generator(options);
  std::string buffer;
  buffer.reserve(kCsvChunkBytes + 4096);
  buffer.append(client::kCsvHeader);
  buffer.push_back('\n');
  LoanEvent event;
  while (generator.Next(event)) {
    if (!Wanted(output, event)) continue;
    client::AppendCsvLine(event, buffer);
    ++written.events;
    if (buffer.size() >= kCsvChunkBytes) {
      out.write(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      if (!out) return Status::IoError("writing the CSV failed");
      buffer.clear();
    }
  }
  out.write(buffer.data(), static_cast<std::streamsize>(buffer.size()));
  out.flush();
  stats = generator.stats();
  written.files = 1;
  if (!out) return Status::IoError("writing the CSV failed");
  return Status::Ok();
}

// Buffered CSV files, one per institution, in a directory: each file gets
// the header and its institution's events in stream order. Files are opened
// to append a full buffer and closed again, so that thousands of banks need
// no more than one descriptor.
class CsvDirectoryWriter {
 public:
  // Bytes buffered over all institutions, at most (about: one line more each).
  static constexpr size_t kBufferedBytesMax = 64u << 20;
  static constexpr size_t kBufferBytesMin = 16u << 10;

  CsvDirectoryWriter(std::filesystem::path dir, uint32_t banks)
      : dir_(std::move(dir)),
        buffer_bytes_max_(
            std::max(kBufferBytesMin, kBufferedBytesMax / std::max<size_t>(banks, 160))) {}

  Status Add(const LoanEvent& event) {
    auto [it, inserted] = sinks_.try_emplace(event.institution_id);
    Sink& sink = it->second;
    if (inserted) {
      sink.buffer.append(client::kCsvHeader);
      sink.buffer.push_back('\n');
    }
    client::AppendCsvLine(event, sink.buffer);
    if (sink.buffer.size() >= buffer_bytes_max_) return Flush(it->first, sink);
    return Status::Ok();
  }

  Status FlushAll() {
    for (auto& [id, sink] : sinks_) {
      if (Status s = Flush(id, sink); !s.ok()) return s;
    }
    return Status::Ok();
  }

  uint64_t files() const { return sinks_.size(); }

 private:
  struct Sink {
    std::string buffer;
    bool created = false;  // the file exists (truncated once, then appended to)
  };

  Status Flush(const std::string& institution_id, Sink& sink) {
    const std::string path = (dir_ / (institution_id + ".csv")).string();
    std::FILE* f = std::fopen(path.c_str(), sink.created ? "ab" : "wb");
    if (f == nullptr) return Status::IoError("cannot open " + path + " for writing");
    const size_t n = std::fwrite(sink.buffer.data(), 1, sink.buffer.size(), f);
    const bool closed = std::fclose(f) == 0;
    if (n != sink.buffer.size() || !closed) return Status::IoError("writing " + path + " failed");
    sink.created = true;
    sink.buffer.clear();
    return Status::Ok();
  }

  std::filesystem::path dir_;
  size_t buffer_bytes_max_;
  std::unordered_map<std::string, Sink> sinks_;  // by institution id
};

// The directory for --out-dir: created when missing; one that already holds
// CSV files is refused, so that files of an earlier run never mix in.
Status PrepareOutDir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    return Status::IoError("cannot create the directory " + dir.string());
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".csv") {
      return Status::InvalidArgument(dir.string() +
                                     " already holds CSV files; give a new or empty directory");
    }
  }
  if (ec) return Status::IoError("cannot list the directory " + dir.string());
  return Status::Ok();
}

Status WriteCsvDirectory(const GenOptions& options, const GenOutput& output, GenStats& stats,
                         Written& written) {
  if (Status s = ValidateGenOptions(options); !s.ok()) return s;
  if (Status s = ValidateGenOutput(output); !s.ok()) return s;
  if (Status s = PrepareOutDir(output.out_dir); !s.ok()) return s;
  PortfolioGenerator generator(options);
  CsvDirectoryWriter writer(output.out_dir, options.banks);
  LoanEvent event;
  while (generator.Next(event)) {
    if (!Wanted(output, event)) continue;
    if (Status s = writer.Add(event); !s.ok()) return s;
    ++written.events;
  }
  if (Status s = writer.FlushAll(); !s.ok()) return s;
  stats = generator.stats();
  written.files = writer.files();
  return Status::Ok();
}

int WriteToFileOrStdout(const GenOptions& options, const GenOutput& output, GenStats& stats,
                        Written& written) {
  std::ofstream file;
  if (!output.out_path.empty()) {
    file.open(output.out_path, std::ios::binary | std::ios::trunc);
    if (!file) {
      std::fprintf(stderr, "loanledger gen: cannot open %s for writing\n", output.out_path.c_str());
      return 1;
    }
  }
  std::ostream& out = output.out_path.empty() ? std::cout : file;
  if (Status s = WriteCsvCounting(options, output, out, stats, written); !s.ok()) {
    std::fprintf(stderr, "loanledger gen: %s\n", s.ToString().c_str());
    return 1;
  }
  if (file.is_open()) {
    file.close();
    if (!file) {
      std::fprintf(stderr, "loanledger gen: closing %s failed\n", output.out_path.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace

Status WriteCsv(const GenOptions& options, std::ostream& out) {
  GenStats stats;
  Written written;
  return WriteCsvCounting(options, GenOutput{}, out, stats, written);
}

int RunGenCommand(const GenOptions& options, const GenOutput& output) {
  if (Status s = ValidateGenOptions(options); !s.ok()) {
    std::fprintf(stderr, "loanledger gen: %s\n", s.message().c_str());
    return 1;
  }
  if (Status s = ValidateGenOutput(output); !s.ok()) {
    std::fprintf(stderr, "loanledger gen: %s\n", s.message().c_str());
    return 1;
  }
  GenStats stats;
  Written written;
  if (!output.out_dir.empty()) {
    if (Status s = WriteCsvDirectory(options, output, stats, written); !s.ok()) {
      std::fprintf(stderr, "loanledger gen: %s\n", s.message().c_str());
      return 1;
    }
  } else if (const int code = WriteToFileOrStdout(options, output, stats, written); code != 0) {
    return code;
  }
  std::fprintf(stderr,
               "loanledger gen: scale=%g seed=%llu loans=%llu (calibration %llu) events=%llu",
               options.scale, static_cast<unsigned long long>(options.seed),
               static_cast<unsigned long long>(stats.loans),
               static_cast<unsigned long long>(stats.calibration_loans),
               static_cast<unsigned long long>(stats.events));
  if (output.summary_extra) {
    std::fprintf(stderr, " written=%llu files=%llu",
                 static_cast<unsigned long long>(written.events),
                 static_cast<unsigned long long>(written.files));
  }
  std::fprintf(stderr, "\n");
  return 0;
}

int RunGenCommand(const GenOptions& options, const std::string& out_path_or_empty) {
  GenOutput output;
  output.out_path = out_path_or_empty;
  return RunGenCommand(options, output);
}

std::span<const PublishedFigure> PublishedFigures() { return kPublished; }

}  // namespace loanledger::gen
