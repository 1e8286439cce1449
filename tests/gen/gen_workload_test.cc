// The generator's workload modes (issue 14): --banks (N banks of skewed sizes,
// regional ones in one province), --out-dir (one file per institution,
// exactly the single file's events) and the day filters (--before D then
// --day D continue every loan's seq without a gap).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "client/csv.h"
#include "client/gen/banks.h"
#include "client/gen/generator.h"
#include "schema/date.h"
#include "schema/event.h"

namespace loanledger::gen {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir()
      : path_(fs::temp_directory_path() /
              ("loanledger_gen_workload_test_" + std::to_string(::getpid()) + "_" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::vector<std::string> ReadLines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string InstitutionOf(const std::string& csv_line) {
  return csv_line.substr(0, csv_line.find(','));
}

// Writes the whole stream to one file and to a directory; every file of the
// directory holds the header, then exactly its institution's lines of the
// single file, in the same order.
void ExpectDirectoryEqualsSingleFile(const GenOptions& options, const fs::path& dir) {
  const fs::path single = dir / "single.csv";
  GenOutput one;
  one.out_path = single.string();
  ASSERT_EQ(RunGenCommand(options, one), 0);
  GenOutput many;
  many.out_dir = (dir / "banks").string();
  ASSERT_EQ(RunGenCommand(options, many), 0);

  std::map<std::string, std::vector<std::string>> expected;
  const std::vector<std::string> lines = ReadLines(single);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], client::kCsvHeader);
  for (size_t i = 1; i < lines.size(); ++i) expected[InstitutionOf(lines[i])].push_back(lines[i]);

  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir / "banks")) {
    ++files;
    const std::string institution = entry.path().stem().string();
    EXPECT_EQ(entry.path().extension(), ".csv");
    std::vector<std::string> got = ReadLines(entry.path());
    ASSERT_FALSE(got.empty()) << institution;
    EXPECT_EQ(got[0], client::kCsvHeader) << institution;
    got.erase(got.begin());
    EXPECT_EQ(got, expected[institution]) << institution;
  }
  EXPECT_EQ(files, expected.size());
}

TEST(GenOutDir, PerInstitutionFilesHoldExactlyTheSingleFilesEvents) {
  TempDir dir;
  GenOptions options;
  options.scale = 1e-5;
  ExpectDirectoryEqualsSingleFile(options, dir.path());
}

TEST(GenOutDir, PerBankFilesWithBanksHoldExactlyTheSingleFilesEvents) {
  TempDir dir;
  GenOptions options;
  options.scale = 2e-5;
  options.banks = 200;
  ExpectDirectoryEqualsSingleFile(options, dir.path());
}

TEST(GenOutDir, RefusesADirectoryThatHoldsCsvFiles) {
  TempDir dir;
  std::ofstream(dir.path() / "old.csv") << "x\n";
  GenOptions options;
  options.scale = 1e-6;
  GenOutput output;
  output.out_dir = dir.path().string();
  EXPECT_EQ(RunGenCommand(options, output), 1);
  EXPECT_EQ(ReadLines(dir.path() / "old.csv"), std::vector<std::string>{"x"});
}

TEST(GenBanks, SizesAreSkewedAndRegionalBanksStayInOneProvince) {
  GenOptions options;
  options.scale = 1e-4;
  options.banks = 200;
  PortfolioGenerator generator(options);
  BankMap map(200, options.seed);
  std::map<std::string, std::set<std::string>> loans;      // by bank
  std::map<std::string, std::set<std::string>> provinces;  // by bank
  LoanEvent e;
  while (generator.Next(e)) {
    ASSERT_TRUE(IsValidInstitutionId(e.institution_id));
    loans[e.institution_id].insert(e.loan_id);
    provinces[e.institution_id].insert(e.attributes.region_code.substr(0, 2));
  }
  EXPECT_EQ(map.national(), 20u);
  EXPECT_GE(loans.size(), 190u);  // nearly every bank lends
  EXPECT_LE(loans.size(), 200u);
  std::vector<size_t> sizes;
  for (const auto& [bank, ids] : loans) sizes.push_back(ids.size());
  std::sort(sizes.rbegin(), sizes.rend());
  const size_t median = sizes[sizes.size() / 2];
  EXPECT_GE(sizes[0], 20 * median) << "largest " << sizes[0] << " median " << median;
  size_t total = 0, top4 = 0;
  for (size_t i = 0; i < sizes.size(); ++i) (i < 4 ? top4 : total) += sizes[i];
  total += top4;
  EXPECT_GE(top4 * 10, total * 3) << "the 4 largest banks hold at least 30% of the loans";
  for (const auto& [bank, set] : provinces) {
    const bool national = bank <= "B0020";
    if (!national) {
      EXPECT_EQ(set.size(), 1u) << bank << " is regional";
    }
  }
  EXPECT_GE(provinces["B0001"].size(), 31u);
}

TEST(GenBanks, BoundsAreChecked) {
  GenOptions options;
  options.banks = kBanksMax;
  EXPECT_TRUE(ValidateGenOptions(options).ok());
  options.banks = kBanksMax + 1;
  EXPECT_FALSE(ValidateGenOptions(options).ok());
  EXPECT_EQ(RunGenCommand(options, GenOutput{}), 1);
  options.banks = 1;
  options.scale = 1e-6;
  PortfolioGenerator one_bank(options);
  LoanEvent e;
  while (one_bank.Next(e)) ASSERT_EQ(e.institution_id, "B0001");
}

TEST(GenDays, BeforeThenDayContinueEveryLoanWithoutAGap) {
  TempDir dir;
  GenOptions options;
  options.scale = 1e-3;
  options.banks = 80;
  const Day day = *ParseDate("2024-06-03");
  GenOutput before;
  before.out_path = (dir.path() / "before.csv").string();
  before.last_day = day - 1;
  GenOutput on_day;
  on_day.out_path = (dir.path() / "day.csv").string();
  on_day.first_day = on_day.last_day = day;
  ASSERT_EQ(RunGenCommand(options, before), 0);
  ASSERT_EQ(RunGenCommand(options, on_day), 0);

  std::map<std::string, uint64_t> last_seq;  // by institution/loan, after the backfill
  std::vector<std::string> lines = ReadLines(before.out_path);
  LoanEvent e;
  for (size_t i = 1; i < lines.size(); ++i) {
    ASSERT_FALSE(client::ParseCsvLine(lines[i], e).has_value());
    ASSERT_LT(e.business_date, day);
    uint64_t& seq = last_seq[e.institution_id + "/" + e.loan_id];
    ASSERT_EQ(e.seq, seq + 1) << lines[i];
    seq = e.seq;
  }
  lines = ReadLines(on_day.out_path);
  ASSERT_GT(lines.size(), 100u);
  std::set<EventKind> kinds;
  std::set<std::string> provinces;
  for (size_t i = 1; i < lines.size(); ++i) {
    ASSERT_FALSE(client::ParseCsvLine(lines[i], e).has_value());
    ASSERT_EQ(e.business_date, day);
    uint64_t& seq = last_seq[e.institution_id + "/" + e.loan_id];
    ASSERT_EQ(e.seq, seq + 1) << lines[i];
    if (seq == 0) {
      EXPECT_EQ(e.kind, EventKind::kDisburse) << lines[i];
    }
    seq = e.seq;
    kinds.insert(e.kind);
    provinces.insert(e.attributes.region_code.substr(0, 2));
  }
  EXPECT_TRUE(kinds.count(EventKind::kRepay));
  EXPECT_TRUE(kinds.count(EventKind::kDisburse));
  EXPECT_GE(provinces.size(), 25u);
}

TEST(GenDays, AWorkingWeekHoldsEveryKindOfDailyEvent) {
  // Over one working week every kind a daily file carries appears.
  GenOptions options;
  options.scale = 1e-3;
  PortfolioGenerator generator(options);
  const Day first = *ParseDate("2024-06-03");
  std::set<EventKind> kinds;
  LoanEvent e;
  while (generator.Next(e)) {
    if (e.business_date >= first && e.business_date < first + 5) kinds.insert(e.kind);
  }
  EXPECT_TRUE(kinds.count(EventKind::kReclassify));
  EXPECT_TRUE(kinds.count(EventKind::kRepay));
  EXPECT_TRUE(kinds.count(EventKind::kDisburse));
}

TEST(GenDays, DaysOutsideTheHistoryAreRefused) {
  GenOutput output;
  EXPECT_TRUE(ValidateGenOutput(output).ok());
  output.last_day = kGenFirstDay - 1;  // --before 2022-01-01: nothing
  EXPECT_FALSE(ValidateGenOutput(output).ok());
  output = GenOutput{};
  output.first_day = output.last_day = kGenLastDay + 1;  // --day 2025-01-01
  EXPECT_FALSE(ValidateGenOutput(output).ok());
  GenOptions options;
  options.scale = 1e-6;
  EXPECT_EQ(RunGenCommand(options, output), 1);
}

}  // namespace
}  // namespace loanledger::gen
