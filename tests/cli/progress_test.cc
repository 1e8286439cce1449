// submit's progress on stderr: bar text, rate limits, line breaks.
#include "client/cli/progress.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

namespace loanledger::client::cli {
namespace {

TEST(Progress, BarShowsShareOfTheFileAndTheCounts) {
  const SubmitCounts counts{10, 2, 1, 0};
  EXPECT_EQ(Progress::BarText(counts, 50, 100),
            "[###############...............]  50%  applied=10 duplicates=2 batches=1 rejected=0");
  EXPECT_EQ(Progress::BarText(counts, 100, 100).substr(0, 39),
            "[##############################] 100%  ");
  EXPECT_EQ(Progress::BarText(counts, 0, 0),
            "applied=10 duplicates=2 batches=1 rejected=0");             // size unknown
  EXPECT_EQ(Progress::BarText(counts, 500, 100).substr(33, 4), "100%");  // clamped
}

TEST(Progress, TerminalRedrawsOneLineAndBreaksItBeforeOtherOutput) {
  std::ostringstream err;
  std::chrono::steady_clock::time_point now{};
  Progress p(err, /*terminal=*/true, 100, [&] { return now += std::chrono::milliseconds(150); });
  p.Update({1, 0, 1, 0}, 10);
  p.Update({2, 0, 2, 0}, 20);
  EXPECT_EQ(err.str().find('\n'), std::string::npos);
  EXPECT_EQ(err.str().rfind("\r[", 0), 0u);
  const std::string drawn = err.str();
  EXPECT_EQ(std::count(drawn.begin(), drawn.end(), '\r'), 2);  // both redraws of one line
  p.BreakLine();
  EXPECT_EQ(err.str().back(), '\n');
  p.BreakLine();  // nothing on screen: no second newline
  EXPECT_NE(err.str().substr(err.str().size() - 2), "\n\n");
  p.Finish({3, 0, 3, 0}, 100);
  EXPECT_NE(err.str().find("100%  applied=3"), std::string::npos);
  EXPECT_EQ(err.str().back(), '\n');
}

TEST(Progress, PlainLinesAreAtMostTwoASecond) {
  std::ostringstream err;
  std::chrono::steady_clock::time_point now{};
  Progress p(err, /*terminal=*/false, 0, [&] { return now += std::chrono::milliseconds(100); });
  for (int i = 0; i < 50; ++i) p.Update({static_cast<uint64_t>(i), 0, 0, 0}, 0);  // 5 seconds
  std::istringstream lines(err.str());
  int count = 0;
  for (std::string line; std::getline(lines, line);) {
    EXPECT_EQ(line.rfind("applied=", 0), 0u);
    ++count;
  }
  EXPECT_GE(count, 9);
  EXPECT_LE(count, 11);
  p.Finish({50, 0, 0, 0}, 0);  // the summary goes to stdout; nothing more here
  const std::string printed = err.str();
  EXPECT_EQ(std::count(printed.begin(), printed.end(), '\n'), count);
}

}  // namespace
}  // namespace loanledger::client::cli
