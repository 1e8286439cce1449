#include "client/cli/progress.h"

#include <algorithm>

#include "schema/check.h"

namespace loanledger::client::cli {

Progress::Progress(std::ostream& err, bool terminal, uint64_t total_bytes, Clock now)
    : err_(err), terminal_(terminal), total_bytes_(total_bytes), now_(std::move(now)) {
  LL_CHECK(now_ != nullptr);
}

std::string Progress::BarText(const SubmitCounts& counts, uint64_t bytes_done,
                              uint64_t total_bytes) {
  std::string text;
  if (total_bytes > 0) {
    const uint64_t done = std::min(bytes_done, total_bytes);
    const auto percent = static_cast<int>(done * 100 / total_bytes);
    const auto filled = static_cast<int>(done * kProgressBarCells / total_bytes);
    text += '[';
    text.append(static_cast<size_t>(filled), '#');
    text.append(static_cast<size_t>(kProgressBarCells - filled), '.');
    text += "] ";
    if (percent < 100) text += ' ';
    if (percent < 10) text += ' ';
    text += std::to_string(percent);
    text += "%  ";
  }
  text += FormatSubmitCounts(counts);
  return text;
}

void Progress::Update(const SubmitCounts& counts, uint64_t bytes_done) {
  const auto now = now_();
  const auto interval = terminal_ ? std::chrono::milliseconds(kProgressBarInterval)
                                  : std::chrono::milliseconds(kProgressLineInterval);
  if (started_ && now - last_ < interval) return;
  started_ = true;
  last_ = now;
  Draw(counts, bytes_done);
}

void Progress::Draw(const SubmitCounts& counts, uint64_t bytes_done) {
  if (terminal_) {
    // "\r" back to the line start, "\x1b[K" clears what a longer line left.
    err_ << '\r' << BarText(counts, bytes_done, total_bytes_) << "\x1b[K" << std::flush;
    bar_on_screen_ = true;
  } else {
    err_ << FormatSubmitCounts(counts) << '\n' << std::flush;
  }
}

void Progress::BreakLine() {
  if (!bar_on_screen_) return;
  err_ << '\n' << std::flush;
  bar_on_screen_ = false;
}

void Progress::Finish(const SubmitCounts& counts, uint64_t bytes_done) {
  if (!terminal_) return;  // the final figures go to stdout anyway
  Draw(counts, bytes_done);
  BreakLine();
}

}  // namespace loanledger::client::cli
