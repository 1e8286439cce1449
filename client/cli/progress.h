// Progress of `loanledger submit` on stderr (docs/cli.md): a live bar on a
// terminal; otherwise lines "applied=N duplicates=N batches=N rejected=N",
// rate-limited to a few a second. Counts are what is acknowledged so far.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <ostream>

#include "client/cli/format.h"

namespace loanledger::client::cli {

// At most two progress lines a second when stderr is not a terminal (a log
// file should stay readable), ten bar redraws a second on a terminal.
inline constexpr std::chrono::milliseconds kProgressLineInterval{500};
inline constexpr std::chrono::milliseconds kProgressBarInterval{100};
inline constexpr int kProgressBarCells = 30;

class Progress {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // total_bytes: the file's size for the bar's percentage; 0 = unknown.
  Progress(std::ostream& err, bool terminal, uint64_t total_bytes, Clock now);

  // Shows counts (rate-limited). bytes_done: how far into the file the
  // acknowledged batches reach.
  void Update(const SubmitCounts& counts, uint64_t bytes_done);
  // Ends the bar's line so that other stderr output starts on its own line
  // (no-op without a bar on screen).
  void BreakLine();
  // Draws the final state (terminal only) and ends the line.
  void Finish(const SubmitCounts& counts, uint64_t bytes_done);

  // The bar line without "\r" or escapes (exposed for tests).
  static std::string BarText(const SubmitCounts& counts, uint64_t bytes_done, uint64_t total_bytes);

 private:
  void Draw(const SubmitCounts& counts, uint64_t bytes_done);

  std::ostream& err_;                           // borrowed; stderr in the CLI
  const bool terminal_;                         // live bar vs plain lines
  const uint64_t total_bytes_;                  // 0 = unknown
  Clock now_;                                   // injected for tests
  std::chrono::steady_clock::time_point last_;  // last output
  bool started_ = false;                        // anything printed yet
  bool bar_on_screen_ = false;                  // the cursor is on the bar's line
};

}  // namespace loanledger::client::cli
