// `loanledger submit` (docs/cli.md): streams a CSV file into batches and submits
// them pipelined through Client::SubmitStream. A rejected batch, or a line
// that does not parse, is reported as "FILE:LINE: REASON: message" for each
// bad event, and submission stops; every batch acknowledged before stays
// applied, and rerunning the fixed file is safe (duplicates are skipped).
#pragma once

#include <cstdint>
#include <istream>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "client/cli/format.h"
#include "client/cli/progress.h"
#include "client/client.h"
#include "client/csv.h"

namespace loanledger::client::cli {

inline constexpr size_t kSubmitBatchEventsDefault = 10'000;
// A batch is also closed when its estimated wire size reaches this budget,
// so that long ids never push a full batch past kBatchBytesMax (16 MiB).
inline constexpr size_t kSubmitBatchBytesBudget = 14u << 20;
// Per-event wire size estimate beyond its strings (FlatBuffers table,
// offsets, string headers and padding), on the generous side.
inline constexpr size_t kEventWireBytesOverhead = 192;

struct SubmitResult {
  SubmitCounts counts;
  Status status;          // SubmitStream's own failure (connection, auth, role); OK otherwise
  bool rejected = false;  // a batch was rejected or a line did not parse
};

// Submits what remains of a CSV stream whose header has been read.
// Diagnostics go to err; progress to progress. One use per instance.
class CsvSubmitter {
 public:
  // file_name: as the user named it, for "FILE:LINE". in: the stream under
  // reader (tellg() gives progress offsets; -1 is tolerated).
  CsvSubmitter(std::string file_name, std::istream& in, CsvReader& reader, size_t batch_events_max,
               std::ostream& err, Progress& progress);

  SubmitResult Run(Client& client);

 private:
  struct InFlight {
    std::vector<uint64_t> lines;  // physical line of each event in the batch
    uint64_t end_offset = 0;      // file offset after the batch's last line; max = the end
  };
  struct BadLine {
    uint64_t line;
    CsvParseError error;
  };

  bool FillBatch(std::vector<LoanEvent>& batch);
  void ScanRestOfBatch(size_t slots_left);
  bool OnOutcome(uint64_t batch_index, const BatchOutcome& outcome);
  void ReportRejections(uint64_t batch_index, const InFlight& batch, const BatchOutcome& outcome);
  void ReportBadLines();
  uint64_t Offset();

  const std::string file_name_;
  std::istream& in_;                        // borrowed
  CsvReader& reader_;                       // borrowed
  const size_t batch_events_max_;           // 1..kBatchEventsMax
  std::ostream& err_;                       // borrowed
  Progress& progress_;                      // borrowed
  std::map<uint64_t, InFlight> in_flight_;  // by batch index; bounded by the client's in-flight cap
  uint64_t next_batch_index_ = 0;           // index the next filled batch gets
  std::vector<BadLine> bad_lines_;          // unparsable lines of the batch being filled
  bool stop_ = false;                       // a rejection or a bad line: submit nothing more
  bool rejected_ = false;                   // a batch was rejected or a line did not parse
  SubmitCounts counts_;
  uint64_t bytes_acknowledged_ = 0;  // file offset reached by acknowledged batches
};

}  // namespace loanledger::client::cli
