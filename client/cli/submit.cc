#include "client/cli/submit.h"

#include <algorithm>
#include <limits>

#include "schema/check.h"
#include "schema/limits.h"

namespace loanledger::client::cli {
namespace {

size_t EstimatedWireBytes(const LoanEvent& e) {
  return kEventWireBytesOverhead + e.institution_id.size() + e.loan_id.size() +
         e.attributes.industry_code.size() + e.attributes.region_code.size();
}

}  // namespace

CsvSubmitter::CsvSubmitter(std::string file_name, std::istream& in, CsvReader& reader,
                           size_t batch_events_max, std::ostream& err, Progress& progress)
    : file_name_(std::move(file_name)),
      in_(in),
      reader_(reader),
      batch_events_max_(batch_events_max),
      err_(err),
      progress_(progress) {
  LL_CHECK(batch_events_max_ >= 1 && batch_events_max_ <= kBatchEventsMax);
}

uint64_t CsvSubmitter::Offset() {
  // At the end of the file tellg() fails (eof sets failbit on the last
  // read); the batch then reaches the end, whatever its size.
  if (in_.eof()) return std::numeric_limits<uint64_t>::max();
  const std::streamoff offset = in_.tellg();
  return offset < 0 ? 0 : static_cast<uint64_t>(offset);
}

SubmitResult CsvSubmitter::Run(Client& client) {
  const Status status = client.SubmitStream(
      [this](std::vector<LoanEvent>& batch) { return FillBatch(batch); },
      [this](uint64_t index, const BatchOutcome& outcome) { return OnOutcome(index, outcome); });
  ReportBadLines();
  progress_.Finish(counts_, bytes_acknowledged_);
  return SubmitResult{counts_, status, rejected_};
}

// Fills the next batch from the file. Returns false at the end of the file,
// after a rejection, or at an unparsable line (that batch is not sent).
bool CsvSubmitter::FillBatch(std::vector<LoanEvent>& batch) {
  batch.clear();
  if (stop_) return false;
  InFlight entry;
  size_t bytes = 0;
  LoanEvent event;
  while (batch.size() < batch_events_max_ && bytes < kSubmitBatchBytesBudget) {
    const CsvReader::Next next = reader_.ReadNext(event);
    if (next == CsvReader::Next::kEnd) break;
    if (next == CsvReader::Next::kBadLine) {
      bad_lines_.push_back(BadLine{reader_.line_number(), reader_.parse_error()});
      // Report every bad line this batch would have held, as the server
      // would for a rejected batch, then stop before sending it.
      ScanRestOfBatch(batch_events_max_ - batch.size() - 1);
      stop_ = true;
      batch.clear();
      return false;
    }
    bytes += EstimatedWireBytes(event);
    entry.lines.push_back(reader_.line_number());
    batch.push_back(std::move(event));
  }
  if (batch.empty()) return false;
  entry.end_offset = Offset();
  in_flight_.emplace(next_batch_index_++, std::move(entry));
  return true;
}

void CsvSubmitter::ScanRestOfBatch(size_t slots_left) {
  LoanEvent event;
  for (size_t i = 0; i < slots_left; ++i) {
    const CsvReader::Next next = reader_.ReadNext(event);
    if (next == CsvReader::Next::kEnd) return;
    if (next == CsvReader::Next::kBadLine) {
      bad_lines_.push_back(BadLine{reader_.line_number(), reader_.parse_error()});
    }
  }
}

bool CsvSubmitter::OnOutcome(uint64_t batch_index, const BatchOutcome& outcome) {
  const auto it = in_flight_.find(batch_index);
  LL_CHECK_MSG(it != in_flight_.end(), "SubmitStream reported a batch it was never given");
  if (outcome.applied) {
    counts_.applied += outcome.events_applied;
    counts_.duplicates += outcome.events_duplicate;
    counts_.batches += 1;
    bytes_acknowledged_ = std::max(bytes_acknowledged_, it->second.end_offset);
    progress_.Update(counts_, bytes_acknowledged_);
  } else if (outcome.skipped) {
    // In flight behind a rejected batch: the server applied none of it
    // (SubmitStream's stream rule), so the file stops at the rejection.
    if (!rejected_) {
      // The rejection itself was never reported (not expected: the server
      // judges a resent rejected batch again); say so rather than exit 0.
      progress_.BreakLine();
      err_ << file_name_ << ": batch " << batch_index
           << " not applied: it follows a rejected batch; rerun the file to see why\n";
      rejected_ = true;
    }
    stop_ = true;
  } else {
    ReportRejections(batch_index, it->second, outcome);
    stop_ = true;
  }
  in_flight_.erase(it);
  return !stop_;
}

void CsvSubmitter::ReportRejections(uint64_t batch_index, const InFlight& batch,
                                    const BatchOutcome& outcome) {
  progress_.BreakLine();
  std::vector<Rejection> rejections = outcome.rejections;
  std::sort(rejections.begin(), rejections.end(),
            [](const Rejection& a, const Rejection& b) { return a.index < b.index; });
  for (const Rejection& r : rejections) {
    if (r.index < batch.lines.size()) {
      err_ << FormatRejectionLine(file_name_, batch.lines[r.index], r.reason, r.message) << '\n';
    } else {
      // The server named an event the batch does not have: say so rather than guess a line.
      err_ << file_name_ << ": batch " << batch_index << " event " << r.index
           << " (not in the batch): " << ReasonName(r.reason) << ": " << r.message << '\n';
    }
  }
  if (rejections.empty()) {
    err_ << file_name_ << ": batch " << batch_index << " rejected without a reason\n";
  }
  counts_.rejected += rejections.size();
  rejected_ = true;
  err_.flush();
}

void CsvSubmitter::ReportBadLines() {
  if (bad_lines_.empty()) return;
  progress_.BreakLine();
  for (const BadLine& bad : bad_lines_) {
    err_ << FormatRejectionLine(file_name_, bad.line, bad.error.reason, bad.error.message) << '\n';
  }
  counts_.rejected += bad_lines_.size();
  rejected_ = true;
  err_.flush();
}

}  // namespace loanledger::client::cli
