// End to end: the real `loanledgerd` on 127.0.0.1 (port 0, started by the
// integration tests' harness: tests/integration/server_harness.h; a fresh
// data directory and tokens made by `loanledger token new`) and the real
// `loanledger` binary, run as separate processes. Checks the docs/cli.md
// contract from the outside: figures, FILE:LINE diagnostics, exit codes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/server_harness.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

constexpr auto kServerStopTimeout = std::chrono::seconds(20);

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Starts argv with stdout and stderr sent to files; returns the pid.
pid_t Spawn(const std::vector<std::string>& argv, const fs::path& out, const fs::path& err) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

int WaitExit(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

struct ProcessResult {
  int code = -1;
  std::string out;
  std::string err;
};

class CliE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("loanledger_cli_e2e_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "data");
    institution_token_ =
        NewToken({"--role", "institution", "--institution", "B0001", "--name", "bank-b0001"});
    regulator_token_ = NewToken({"--role", "regulator", "--name", "analyst"});
    admin_token_ = NewToken({"--role", "admin", "--name", "operator"});
    std::ofstream(dir_ / "tokens") << "# made by the e2e test\n" << tokens_lines_;
    StartServer();
  }

  static void TearDownTestSuite() {
    if (server_process_) {
      server_process_->Stop(SIGTERM, kServerStopTimeout);
      server_process_.reset();
    }
    fs::remove_all(dir_);
  }

  // `loanledger token new ...`: keeps line 2 for the tokens file, returns line 1.
  static std::string NewToken(std::vector<std::string> args) {
    args.insert(args.begin(), {"token", "new"});
    const ProcessResult r = Cli(args);
    const auto lines = Lines(r.out);
    EXPECT_EQ(r.code, 0) << r.err;
    if (lines.size() != 2) {
      ADD_FAILURE() << "token new printed: " << r.out;
      return "";
    }
    tokens_lines_ += lines[1] + "\n";
    return lines[0];
  }

  static void StartServer() {
    loanledger::testing::ServerProcess::Options options;
    options.data_dir = (dir_ / "data").string();
    options.tokens_file = (dir_ / "tokens").string();
    options.log_file = (dir_ / "server.err").string();
    std::string error;
    server_process_ = loanledger::testing::ServerProcess::Start(options, &error);
    ASSERT_NE(server_process_, nullptr) << error;
    server_ = server_process_->addresses().at("listen");
  }

  static ProcessResult Cli(const std::vector<std::string>& args) {
    static int n = 0;
    const fs::path out = dir_ / ("cli." + std::to_string(++n) + ".out");
    const fs::path err = dir_ / ("cli." + std::to_string(n) + ".err");
    std::vector<std::string> argv = {LOANLEDGER_CLI_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r;
    const pid_t pid = Spawn(argv, out, err);
    if (pid <= 0) return r;
    r.code = WaitExit(pid);
    r.out = ReadFile(out);
    r.err = ReadFile(err);
    return r;
  }

  // A command against the test server with a token.
  static ProcessResult Ask(std::vector<std::string> args, const std::string& token) {
    args.insert(args.end(), {"--server", server_, "--token", token});
    return Cli(args);
  }

  static std::string WriteCsv(const std::string& name, const std::vector<std::string>& lines) {
    const fs::path path = dir_ / name;
    std::ofstream out(path, std::ios::binary);
    out << "institution_id,loan_id,seq,business_date,event,amount_fen,borrower_type,enterprise_"
           "size,"
           "industry_code,region_code,term_months,credit_line_fen,srdi,tech_enterprise,green,"
           "elderly_care,digital_economy\n";
    for (const std::string& line : lines) out << line << "\n";
    return path.string();
  }

  static inline fs::path dir_;
  static inline std::unique_ptr<loanledger::testing::ServerProcess> server_process_;
  static inline std::string server_;  // HOST:PORT it listens on
  static inline std::string tokens_lines_;
  static inline std::string institution_token_;
  static inline std::string regulator_token_;
  static inline std::string admin_token_;
};

// The figures below follow docs/figures.md by hand:
//   L1 (Shanghai, green, manufacturing): +1,000,000 on 2023-06-01, -200,000 on 2024-03-01.
//   L2 (Guangdong, household):           +500,000 on 2024-02-01.
TEST_F(CliE2eTest, SubmitThenReportShowsTheExpectedFigures) {
  const std::string csv = WriteCsv(
      "portfolio.csv",
      {"B0001,L1,1,2023-06-01,DISBURSE,1000000,ENTERPRISE,SMALL,C3911,310115,36,800000000,0,0,1,0,"
       "0",
       "B0001,L1,2,2024-03-01,REPAY,200000,ENTERPRISE,SMALL,C3911,310115,36,800000000,0,0,1,0,0",
       "B0001,L2,1,2024-02-01,DISBURSE,500000,INDIVIDUAL,NA,,440300,12,0,0,0,0,0,0"});
  const ProcessResult submit = Ask({"submit", csv}, institution_token_);
  ASSERT_EQ(submit.code, 0) << submit.err;
  EXPECT_EQ(Lines(submit.out).back(), "applied=3 duplicates=0 batches=1 rejected=0");

  const ProcessResult again = Ask({"submit", csv, "--batch-size", "2"}, institution_token_);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(Lines(again.out).back(), "applied=0 duplicates=3 batches=2 rejected=0");

  const ProcessResult report = Ask({"report", "--date", "2024-09-30", "--category", "TOTAL",
                                    "--category", "GREEN", "--format", "json"},
                                   regulator_token_);
  ASSERT_EQ(report.code, 0) << report.err;
  const Json j = Json::parse(report.out);
  const Json expected = Json::parse(R"({"date":"2024-09-30","rows":[
    {"category":"TOTAL","group":null,"balance_fen":1300000,"loan_count":2,
     "balance_year_ago_fen":1000000,"yoy_growth_pct":30.0,"ytd_increase_fen":300000,
     "disbursed_ytd_fen":500000,"repaid_ytd_fen":200000,"written_off_ytd_fen":0},
    {"category":"GREEN","group":null,"balance_fen":800000,"loan_count":1,
     "balance_year_ago_fen":1000000,"yoy_growth_pct":-20.0,"ytd_increase_fen":-200000,
     "disbursed_ytd_fen":0,"repaid_ytd_fen":200000,"written_off_ytd_fen":0}],
    "rules_version":"2024-default"})");
  // yoy is a double ((1.3M - 1M) / 1M * 100 is 30.000000000000004): compare it
  // with a tolerance, everything else exactly, keys in order.
  ASSERT_EQ(j["rows"].size(), 2u) << report.out;
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_NEAR(j["rows"][i]["yoy_growth_pct"].get<double>(),
                expected["rows"][i]["yoy_growth_pct"].get<double>(), 1e-9);
  }
  Json exact = j;
  Json exact_expected = expected;
  for (size_t i = 0; i < 2; ++i)
    exact["rows"][i]["yoy_growth_pct"] = exact_expected["rows"][i]["yoy_growth_pct"] = 0;
  EXPECT_EQ(exact.dump(), exact_expected.dump());

  const ProcessResult by = Ask({"report", "--date", "2024-09-30", "--category", "TOTAL", "--by",
                                "province", "--format", "json"},
                               institution_token_);
  ASSERT_EQ(by.code, 0) << by.err;
  const Json rows = Json::parse(by.out)["rows"];
  ASSERT_EQ(rows.size(), 2u) << by.out;
  EXPECT_EQ(rows[0]["group"], "31");
  EXPECT_EQ(rows[0]["balance_fen"], 800000);
  EXPECT_EQ(rows[1]["group"], "44");
  EXPECT_EQ(rows[1]["balance_fen"], 500000);
  EXPECT_TRUE(rows[1]["yoy_growth_pct"].is_null());

  const ProcessResult loan =
      Ask({"loan", "--institution", "B0001", "--loan-id", "L1", "--format", "json"},
          institution_token_);
  ASSERT_EQ(loan.code, 0) << loan.err;
  const Json l = Json::parse(loan.out);
  EXPECT_EQ(l["last_seq"], 2);
  EXPECT_EQ(l["last_business_date"], "2024-03-01");
  EXPECT_EQ(l["balance_fen"], 800000);
  EXPECT_EQ(l["attributes"]["green"], true);

  const ProcessResult series = Ask({"series", "--category", "TOTAL", "--from", "2024-01-01", "--to",
                                    "2024-03-15", "--format", "json"},
                                   regulator_token_);
  ASSERT_EQ(series.code, 0) << series.err;
  const Json s = Json::parse(series.out);
  EXPECT_EQ(s["step"], "month");
  ASSERT_EQ(s["points"].size(), 3u) << series.out;
  EXPECT_EQ(s["points"][0]["date"], "2024-01-31");
  EXPECT_EQ(s["points"][0]["balance_fen"], 1000000);
  EXPECT_EQ(s["points"][1]["balance_fen"], 1500000);
  EXPECT_EQ(s["points"][2]["date"], "2024-03-15");
  EXPECT_EQ(s["points"][2]["balance_fen"], 1300000);
}

TEST_F(CliE2eTest, BadCsvLineReportsFileAndLineAndExitsTwo) {
  const std::string csv =
      WriteCsv("bad.csv",
               {"B0001,B1,1,2024-01-02,DISBURSE,100,ENTERPRISE,LARGE,C27,110000,6,0,0,0,0,0,0", "",
                "B0001,B2,1,2024-01-02,DISBURSE,100,ENTERPRISE,LARGE,C27,110000,6,0,0,0,7,0,0"});
  const ProcessResult r = Ask({"submit", csv, "--batch-size", "1"}, institution_token_);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find(csv + ":4: BAD_FLAG:"), std::string::npos) << r.err;
  EXPECT_EQ(Lines(r.out).back(), "applied=1 duplicates=0 batches=1 rejected=1");
}

TEST_F(CliE2eTest, ServerRejectionReportsFileAndLineAndExitsTwo) {
  const std::string csv = WriteCsv(
      "gap.csv", {"B0001,G1,1,2024-01-02,DISBURSE,100,ENTERPRISE,LARGE,C27,110000,6,0,0,0,0,0,0",
                  "B0001,G2,3,2024-01-02,DISBURSE,100,ENTERPRISE,LARGE,C27,110000,6,0,0,0,0,0,0",
                  "B0001,G3,1,2024-01-02,REPAY,100,ENTERPRISE,LARGE,C27,110000,6,0,0,0,0,0,0"});
  const ProcessResult r = Ask({"submit", csv}, institution_token_);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find(csv + ":3: SEQ_GAP"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(csv + ":4: "), std::string::npos) << r.err;  // a REPAY as first event
  EXPECT_EQ(r.err.find(csv + ":2: "), std::string::npos) << r.err;
  EXPECT_EQ(Lines(r.out).back(), "applied=0 duplicates=0 batches=0 rejected=2");
  // The batch was rejected whole: G1 was not applied.
  EXPECT_EQ(Ask({"loan", "--institution", "B0001", "--loan-id", "G1"}, institution_token_).code, 4);
}

TEST_F(CliE2eTest, SubmitStopsAtARejectedBatchAndAppliesNothingAfterIt) {
  // One event per batch, so that many batches are in flight behind the
  // rejected one (line 4: a REPAY as a loan's first event).
  std::vector<std::string> lines;
  for (int i = 1; i <= 40; ++i) {
    const char* kind = i == 3 ? "REPAY" : "DISBURSE";
    lines.push_back("B0001,S" + std::to_string(i) + ",1,2024-01-02," + kind +
                    ",100,ENTERPRISE,LARGE,C27,110000,6,0,0,0,0,0,0");
  }
  const std::string csv = WriteCsv("stop.csv", lines);
  ProcessResult r = Ask({"submit", csv, "--batch-size", "1"}, institution_token_);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find(csv + ":4: FIRST_EVENT_NOT_DISBURSE"), std::string::npos) << r.err;
  EXPECT_EQ(Lines(r.out).back(), "applied=2 duplicates=0 batches=2 rejected=1");
  EXPECT_EQ(Ask({"loan", "--institution", "B0001", "--loan-id", "S2"}, institution_token_).code, 0);
  for (const char* after : {"S4", "S5", "S20", "S40"}) {
    EXPECT_EQ(Ask({"loan", "--institution", "B0001", "--loan-id", after}, institution_token_).code,
              4)
        << after << " was applied after the rejected batch";
  }
  // Fixed and rerun: the first two are duplicates, the rest applied.
  lines[2].replace(lines[2].find("REPAY"), 5, "DISBURSE");
  WriteCsv("stop.csv", lines);
  r = Ask({"submit", csv, "--batch-size", "1"}, institution_token_);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Lines(r.out).back(), "applied=38 duplicates=2 batches=40 rejected=0");
}

TEST_F(CliE2eTest, AdminVerifiesStatsAndCompacts) {
  const std::string csv =
      WriteCsv("admin.csv",
               {"B0001,A1,1,2024-01-02,DISBURSE,100,ENTERPRISE,LARGE,C27,110000,6,0,0,0,0,0,0"});
  ASSERT_EQ(Ask({"submit", csv}, institution_token_).code, 0);
  ProcessResult r = Ask({"admin", "verify"}, admin_token_);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Lines(r.out).back().rfind("verify: batches_replayed=", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(" differences=0"), std::string::npos) << r.out;
  r = Ask({"admin", "stats"}, admin_token_);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\nloans "), std::string::npos) << r.out;
  r = Ask({"admin", "compact"}, admin_token_);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("compact: duration_ms=", 0), 0u) << r.out;
  // Figures are unchanged by a compaction.
  r = Ask({"loan", "--institution", "B0001", "--loan-id", "A1", "--format", "json"},
          institution_token_);
  EXPECT_NE(r.out.find("\"balance_fen\":100"), std::string::npos) << r.out;
  // Only an admin may ask: refused for the role, exit 2.
  EXPECT_EQ(Ask({"admin", "compact"}, institution_token_).code, 2);
  EXPECT_EQ(Ask({"admin", "verify"}, regulator_token_).code, 2);
  EXPECT_EQ(Ask({"admin"}, admin_token_).code, 1);
}

TEST_F(CliE2eTest, WrongTokenExitsThree) {
  const ProcessResult r = Ask({"report", "--date", "2024-09-30"}, "llt_" + std::string(64, '0'));
  EXPECT_EQ(r.code, 3) << r.err;
}

TEST_F(CliE2eTest, NoServerExitsThree) {
  const ProcessResult r = Cli(
      {"report", "--date", "2024-09-30", "--server", "127.0.0.1:1", "--token", institution_token_});
  EXPECT_EQ(r.code, 3) << r.err;
}

TEST_F(CliE2eTest, UnknownLoanExitsFour) {
  const ProcessResult r =
      Ask({"loan", "--institution", "B0001", "--loan-id", "NOSUCHLOAN"}, institution_token_);
  EXPECT_EQ(r.code, 4) << r.err;
}

TEST_F(CliE2eTest, RegulatorCannotSubmit) {
  const std::string csv = WriteCsv(
      "reg.csv", {"B0001,R1,1,2024-01-02,DISBURSE,100,ENTERPRISE,LARGE,C27,110000,6,0,0,0,0,0,0"});
  const ProcessResult r = Ask({"submit", csv}, regulator_token_);
  EXPECT_EQ(r.code, 2) << r.err;
}

// `series --measures all` (docs/cli.md): YoY and YTD computed by the CLI from
// series balances equal the server's report at every point, per province,
// for several categories in one call; and that call equals single calls.
TEST_F(CliE2eTest, SeriesMeasuresEqualTheReportAndCategoriesEqualSingleCalls) {
  const std::string csv = WriteCsv(
      "growth.csv",
      {"B0001,E1,1,2023-01-15,DISBURSE,5000000,ENTERPRISE,SMALL,C3911,320100,36,0,0,0,1,0,0",
       "B0001,E1,2,2024-02-10,REPAY,1000000,ENTERPRISE,SMALL,C3911,320100,36,0,0,0,1,0,0",
       "B0001,E1,3,2025-01-20,REPAY,500000,ENTERPRISE,SMALL,C3911,320100,36,0,0,0,1,0,0",
       "B0001,E2,1,2023-11-30,DISBURSE,3000000,ENTERPRISE,LARGE,C27,330100,6,0,0,0,0,0,0",
       "B0001,E2,2,2024-12-31,REPAY,3000000,ENTERPRISE,LARGE,C27,330100,6,0,0,0,0,0,0",
       "B0001,E3,1,2024-02-29,DISBURSE,700000,INDIVIDUAL,NA,,320100,12,0,0,0,0,0,0",
       "B0001,E3,2,2025-02-28,REPAY,100000,INDIVIDUAL,NA,,320100,12,0,0,0,0,0,0",
       "B0001,E4,1,2024-06-15,DISBURSE,2000000,ENTERPRISE,SMALL,C3911,110000,36,0,0,0,1,0,0",
       "B0001,E5,1,2022-12-31,DISBURSE,1234567,ENTERPRISE,SMALL,C3911,330100,36,0,0,0,1,0,0",
       "B0001,E5,2,2024-03-01,REPAY,234567,ENTERPRISE,SMALL,C3911,330100,36,0,0,0,1,0,0"});
  ASSERT_EQ(Ask({"submit", csv}, institution_token_).code, 0);

  for (const char* step : {"month", "quarter"}) {
    SCOPED_TRACE(step);
    const std::vector<std::string> series_args = {
        "series", "--from", "2024-01-01", "--to", "2025-03-15", "--step", step, "--by", "province"};
    auto series = [&](std::vector<std::string> extra) {
      std::vector<std::string> args = series_args;
      args.insert(args.end(), extra.begin(), extra.end());
      const ProcessResult r = Ask(args, regulator_token_);
      EXPECT_EQ(r.code, 0) << r.err;
      return r.out;
    };
    const Json all =
        Json::parse(series({"--category", "TOTAL,GREEN", "--measures", "all", "--format", "json"}));
    ASSERT_TRUE(all.is_array()) << all.dump();
    ASSERT_EQ(all.size(), 2u);
    // The report of every point's date, by (category, group).
    std::map<std::string, std::map<std::pair<std::string, std::string>, Json>> reports;
    size_t points = 0;
    for (const Json& one : all) {
      for (const Json& p : one["points"]) {
        ++points;
        const std::string date = p["date"].get<std::string>();
        if (!reports.count(date)) {
          const ProcessResult r = Ask({"report", "--date", date, "--category", "TOTAL,GREEN",
                                       "--by", "province", "--format", "json"},
                                      regulator_token_);
          ASSERT_EQ(r.code, 0) << r.err;
          const Json answer = Json::parse(r.out);
          for (const Json& row : answer["rows"])
            reports[date][{row["category"].get<std::string>(), row["group"].get<std::string>()}] =
                row;
        }
        const auto it =
            reports[date].find({one["category"].get<std::string>(), p["group"].get<std::string>()});
        ASSERT_NE(it, reports[date].end()) << p.dump();
        const Json& row = it->second;
        for (const char* key : {"balance_fen", "loan_count", "balance_year_ago_fen",
                                "yoy_growth_pct", "ytd_increase_fen"})
          EXPECT_EQ(p[key], row[key]) << key << " " << one["category"] << " " << p.dump();
      }
    }
    EXPECT_GE(points, 2u * 5);
    // Somewhere a negative YTD and a null YoY (province 11 had nothing a year before).
    EXPECT_NE(all.dump().find("\"ytd_increase_fen\":-"), std::string::npos);
    EXPECT_NE(all.dump().find("\"yoy_growth_pct\":null"), std::string::npos);

    // Several categories in one call = the single calls, in every format.
    const std::string total_json = series({"--category", "TOTAL", "--format", "json"});
    const std::string green_json = series({"--category", "GREEN", "--format", "json"});
    EXPECT_EQ(series({"--category", "TOTAL,GREEN", "--format", "json"}),
              "[" + total_json.substr(0, total_json.size() - 1) + "," +
                  green_json.substr(0, green_json.size() - 1) + "]\n");
    const std::string total_csv =
        series({"--category", "TOTAL", "--format", "csv", "--measures", "all", "--unit", "wan"});
    const std::string green_csv =
        series({"--category", "GREEN", "--format", "csv", "--measures", "all", "--unit", "wan"});
    EXPECT_EQ(series({"--category", "TOTAL", "--category", "GREEN", "--format", "csv", "--measures",
                      "all", "--unit", "wan"}),
              total_csv + green_csv.substr(green_csv.find('\n') + 1));
    const std::string table = series({"--category", "TOTAL,GREEN", "--measures", "all"});
    EXPECT_EQ(Lines(table)[0].rfind("Series of TOTAL, GREEN by ", 0), 0u) << table;
    EXPECT_NE(Lines(table)[1].find("YOY %"), std::string::npos) << table;
  }
}

// `--unit` on the real binaries: amounts above 2^53 and below zero exact in
// every unit (9 loans of 10^15 fen and one of 7,199,254,740,993 in province
// 65, one 10^15 loan repaid in 2024), JSON in fen whatever the unit.
TEST_F(CliE2eTest, UnitsAreExactAboveTwoToThe53AndBelowZero) {
  std::vector<std::string> lines;
  for (int i = 1; i <= 10; ++i) {
    const std::string amount = i == 10 ? "7199254740993" : "1000000000000000";
    lines.push_back("B0001,U" + std::to_string(i) + ",1,2023-03-01,DISBURSE," + amount +
                    ",ENTERPRISE,LARGE,C27,650102,60,0,0,0,0,0,0");
  }
  lines.push_back(
      "B0001,U1,2,2024-05-06,REPAY,1000000000000000,ENTERPRISE,LARGE,C27,650102,60,0,0,"
      "0,0,0,0");
  ASSERT_EQ(Ask({"submit", WriteCsv("big.csv", lines)}, institution_token_).code, 0);

  auto row65 = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"report", "--date",   "2024-09-30", "--category", "TOTAL",
                                     "--by",   "province", "--format",   "csv"};
    args.insert(args.end(), extra.begin(), extra.end());
    const ProcessResult r = Ask(args, regulator_token_);
    EXPECT_EQ(r.code, 0) << r.err;
    for (const std::string& line : Lines(r.out))
      if (line.find(",65,") != std::string::npos) return line;
    ADD_FAILURE() << "no province 65 in " << r.out;
    return std::string();
  };
  // balance, loans, year ago (2^53 + 1), then ytd, disbursed, repaid, written off.
  const std::map<std::string, std::pair<std::string, std::string>> expected = {
      {"fen", {",8007199254740993,9,9007199254740993,", ",-1000000000000000,0,1000000000000000,0"}},
      {"yuan",
       {",80071992547409.93,9,90071992547409.93,",
        ",-10000000000000.00,0.00,10000000000000.00,0.00"}},
      {"wan",
       {",8007199254.740993,9,9007199254.740993,",
        ",-1000000000.000000,0.000000,1000000000.000000,0.000000"}},
      {"yi",
       {",800719.9254740993,9,900719.9254740993,",
        ",-100000.0000000000,0.0000000000,100000.0000000000,0.0000000000"}},
  };
  for (const auto& [unit, parts] : expected) {
    const std::string line = row65({"--unit", unit});
    EXPECT_NE(line.find(parts.first), std::string::npos) << unit << ": " << line;
    EXPECT_NE(line.find(parts.second), std::string::npos) << unit << ": " << line;
  }
  EXPECT_EQ(row65({}), row65({"--unit", "fen"}));  // CSV's default unit

  ProcessResult r = Ask({"report", "--date", "2024-09-30", "--category", "TOTAL", "--by",
                         "province", "--unit", "wan"},
                        regulator_token_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Lines(r.out)[0], "Report as of 2024-09-30 (amounts in wan, 10,000 yuan)");
  EXPECT_NE(r.out.find("9,007,199,254.740993"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("-1,000,000,000.000000"), std::string::npos) << r.out;
  r = Ask({"report", "--date", "2024-09-30", "--category", "TOTAL", "--by", "province"},
          regulator_token_);
  EXPECT_EQ(Lines(r.out)[0], "Report as of 2024-09-30 (amounts in yuan)");  // the default
  EXPECT_NE(r.out.find("90,071,992,547,409.93"), std::string::npos) << r.out;
  r = Ask({"report", "--date", "2024-09-30", "--category", "TOTAL", "--by", "province", "--format",
           "json", "--unit", "yi"},
          regulator_token_);
  EXPECT_NE(r.out.find("\"balance_year_ago_fen\":9007199254740993"), std::string::npos) << r.out;

  r = Ask({"series", "--category", "TOTAL", "--from", "2023-12-31", "--to", "2023-12-31", "--by",
           "province", "--measures", "all", "--format", "csv", "--unit", "yi"},
          regulator_token_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("TOTAL,2023-12-31,65,新疆维吾尔自治区,900719.9254740993,10,0.0000000000,,"
                       "900719.9254740993\n"),
            std::string::npos)
      << r.out;
}

// `--bom`: the UTF-8 byte order mark before CSV when asked, and only then.
TEST_F(CliE2eTest, BomOnlyWhenAsked) {
  const std::string csv = WriteCsv(
      "bom.csv", {"B0001,M1,1,2024-01-02,DISBURSE,100,ENTERPRISE,LARGE,C27,310000,6,0,0,0,0,0,0"});
  ASSERT_EQ(Ask({"submit", csv}, institution_token_).code, 0);
  const std::vector<std::string> report = {"report",   "--date",   "2024-09-30", "--by",
                                           "province", "--format", "csv"};
  const std::vector<std::string> series = {"series",     "--category", "TOTAL",
                                           "--from",     "2024-01-01", "--to",
                                           "2024-02-01", "--format",   "csv"};
  for (std::vector<std::string> args : {report, series}) {
    const ProcessResult without = Ask(args, regulator_token_);
    ASSERT_EQ(without.code, 0) << without.err;
    args.push_back("--bom");
    const ProcessResult with = Ask(args, regulator_token_);
    ASSERT_EQ(with.code, 0) << with.err;
    ASSERT_GE(with.out.size(), 3u);
    EXPECT_EQ(with.out.substr(0, 3), "\xEF\xBB\xBF");
    EXPECT_EQ(with.out.substr(3), without.out);
    EXPECT_NE(static_cast<unsigned char>(without.out[0]), 0xEF);
  }
  const ProcessResult json =
      Ask({"report", "--date", "2024-09-30", "--format", "json", "--bom"}, regulator_token_);
  EXPECT_EQ(json.out.substr(0, 1), "{");
}

}  // namespace
