// The `loanledger` command line end to end in one process, against a fake
// Client: flags and usage errors, environment fallbacks, exit codes, token
// output, and `submit`'s line mapping, stop-on-rejection and summary.
#include "client/cli/app.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "client/cli/token.h"
#include "client/csv.h"
#include "schema/date.h"
#include "schema/rules.h"
#include "tests/cli/fake_client.h"

namespace loanledger::client::cli {
namespace {

using testing::FakeClient;
using testing::FakeLedger;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("loanledger_cli_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    CliContext ctx{out_, err_};
    ctx.connect = [this](const ClientOptions& options) -> Result<std::unique_ptr<Client>> {
      ledger_.last_options = options;
      ++connects_;
      if (!ledger_.connect_failure.ok()) return ledger_.connect_failure;
      return std::unique_ptr<Client>(new FakeClient(ledger_));
    };
    ctx.getenv = [this](const std::string& name) -> std::optional<std::string> {
      const auto it = env_.find(name);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
    ctx.now = [this] { return now_ += std::chrono::milliseconds(now_step_ms_); };
    if (gen_) ctx.gen = gen_;
    ctx.err_is_terminal = terminal_;
    return RunCli(args, ctx);
  }

  // Writes a file under the test's directory and returns its path.
  std::string WriteFile(const std::string& name, const std::string& content) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  std::vector<std::string> OutLines() const { return SplitLines(out_.str()); }
  std::vector<std::string> ErrLines() const { return SplitLines(err_.str()); }
  static std::vector<std::string> SplitLines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  std::filesystem::path dir_;
  std::ostringstream out_;
  std::ostringstream err_;
  FakeLedger ledger_;
  int connects_ = 0;
  std::map<std::string, std::string> env_ = {{"LOANLEDGER_TOKEN", "llt_test"}};
  std::chrono::steady_clock::time_point now_{};
  int now_step_ms_ = 1;
  std::function<int(const GenArgs&, CliContext&)> gen_;
  bool terminal_ = false;
};

// A valid event line for loan `loan` at `seq` (DISBURSE on the first, REPAY after).
std::string EventLine(const std::string& loan, uint64_t seq) {
  LoanEvent e;
  e.institution_id = "B0001";
  e.loan_id = loan;
  e.seq = seq;
  e.business_date = *ParseDate("2024-01-05") + static_cast<Day>(seq);
  e.kind = seq == 1 ? EventKind::kDisburse : EventKind::kRepay;
  e.amount_fen = seq == 1 ? 1'000'000 : 1;
  e.attributes = LoanAttributes{BorrowerType::kEnterprise,
                                EnterpriseSize::kSmall,
                                "C3911",
                                "310115",
                                36,
                                8'000'000,
                                false,
                                false,
                                true,
                                false,
                                false};
  std::string line;
  AppendCsvLine(e, line);
  line.pop_back();
  return line;
}

// A file of n events (loans L0.., two events each), "\n" line ends.
std::string EventsFile(size_t n) {
  std::string text = std::string(kCsvHeader) + "\n";
  for (size_t i = 0; i < n; ++i) text += EventLine("L" + std::to_string(i / 2), i % 2 + 1) + "\n";
  return text;
}

// ---- Exit codes ---------------------------------------------------------

TEST(ExitCodes, MapStatusCodesPerSpec) {
  EXPECT_EQ(ExitCodeFor(Status::InvalidArgument("x")), 1);
  EXPECT_EQ(ExitCodeFor(Status::PermissionDenied("x")), 2);
  EXPECT_EQ(ExitCodeFor(Status::Unavailable("x")), 3);
  EXPECT_EQ(ExitCodeFor(Status::Unauthenticated("x")), 3);
  EXPECT_EQ(ExitCodeFor(Status::NotFound("x")), 4);
  EXPECT_EQ(ExitCodeFor(Status::Internal("x")), 3);
  EXPECT_EQ(ExitCodeFor(Status::IoError("x")), 3);
  EXPECT_EQ(ExitCodeFor(Status::ResourceExhausted("x")), 3);
}

TEST(ServerAddress, ParsesHostPortAndBracketedV6) {
  ClientOptions o;
  EXPECT_TRUE(ParseServerAddress("127.0.0.1:7700", o));
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 7700);
  EXPECT_TRUE(ParseServerAddress("ledger.example:1", o));
  EXPECT_EQ(o.host, "ledger.example");
  EXPECT_TRUE(ParseServerAddress("[::1]:65535", o));
  EXPECT_EQ(o.host, "::1");
  EXPECT_EQ(o.port, 65535);
  for (const char* bad : {"", "host", ":7700", "host:", "host:0", "host:65536", "host:+1",
                          "host:12a", "::1:7700", "[]:1"}) {
    EXPECT_FALSE(ParseServerAddress(bad, o)) << bad;
  }
}

// ---- Usage ----------------------------------------------------------------

TEST_F(CliTest, UsageErrorsExitOne) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"frobnicate"},
      {"report"},
      {"report", "--date", "2024-02-30"},
      {"report", "--date", "2024-09-31"},
      {"report", "--date", "1989-12-31"},
      // Not a category name at all; an unknown but well-formed one is the
      // server's to judge (its rules file), then also exit 1.
      {"report", "--date", "2024-09-30", "--category", "no-pe"},
      {"report", "--date", "2024-09-30", "--by", "city"},
      {"report", "--date", "2024-09-30", "--format", "xml"},
      {"report", "--date", "2024-09-30", "--server", "nohostport"},
      {"series", "--category", "GREEN", "--from", "2024-01-01"},
      {"series", "--category", "GREEN", "--from", "2024-02-01", "--to", "2024-01-01"},
      {"series", "--category", "GREEN", "--from", "2024-01-01", "--to", "2024-12-31", "--step",
       "week"},
      {"loan", "--institution", "B0001"},
      {"loan", "--institution", "b 1", "--loan-id", "L1"},
      {"submit"},
      {"submit", "x.csv", "--batch-size", "0"},
      {"submit", "x.csv", "--batch-size", "65537"},
      {"submit", "does-not-exist.csv"},
      {"token"},
      {"token", "new"},
      {"token", "new", "--role", "king"},
      {"token", "new", "--role", "institution"},
      {"token", "new", "--role", "regulator", "--institution", "B0001"},
      {"token", "new", "--role", "admin", "--name", "has space"},
      {"token", "new", "--role", "admin", "--name", "a#b"},
      {"gen", "--scale", "0"},
      {"gen", "--scale", "1/0"},
      {"gen", "--scale", "x"},
      {"gen"},  // the generator is not linked into this test binary
  };
  for (const auto& args : cases) {
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(Run(args), 1) << joined << "\n" << err_.str();
    EXPECT_FALSE(err_.str().empty()) << joined;
  }
  EXPECT_EQ(connects_, 0);  // usage errors never reach the server
}

TEST_F(CliTest, MissingTokenIsAUsageError) {
  env_.clear();
  EXPECT_EQ(Run({"report", "--date", "2024-09-30"}), 1);
  EXPECT_NE(err_.str().find("LOANLEDGER_TOKEN"), std::string::npos);
  EXPECT_EQ(connects_, 0);
}

TEST_F(CliTest, HelpOnEveryCommandExitsZero) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--help"},
                                             {"submit", "--help"},
                                             {"report", "--help"},
                                             {"series", "--help"},
                                             {"loan", "--help"},
                                             {"token", "--help"},
                                             {"token", "new", "--help"},
                                             {"gen", "--help"}}) {
    EXPECT_EQ(Run(args), 0) << args[0];
    EXPECT_NE(out_.str().find("Usage"), std::string::npos) << out_.str();
  }
  Run({"report", "--help"});
  for (const char* flag : {"--date", "--category", "--by", "--format", "--server", "--token"}) {
    EXPECT_NE(out_.str().find(flag), std::string::npos) << flag;
  }
  Run({"submit", "--help"});
  EXPECT_NE(out_.str().find("--batch-size"), std::string::npos);
}

TEST_F(CliTest, VersionPrintsTheProjectVersionAndExitsZero) {
  EXPECT_EQ(Run({"--version"}), 0) << err_.str();
  EXPECT_EQ(out_.str().rfind("loanledger ", 0), 0u) << out_.str();
  EXPECT_NE(out_.str().find_first_of("0123456789"), std::string::npos) << out_.str();
  EXPECT_EQ(connects_, 0);
}

// One HOST:PORT rule with the server (schema/host_port.h): IPv6 in brackets.
TEST_F(CliTest, ServerAddressFollowsTheSharedHostPortRule) {
  ledger_.report = Report{};
  EXPECT_EQ(Run({"report", "--date", "2024-09-30", "--server", "::1:7700"}), 1);
  EXPECT_EQ(connects_, 0);
  EXPECT_EQ(Run({"report", "--date", "2024-09-30", "--server", "[::1]:7700"}), 0) << err_.str();
  EXPECT_EQ(ledger_.last_options.host, "::1");
  EXPECT_EQ(ledger_.last_options.port, 7700);
}

// ---- Connection settings --------------------------------------------------

TEST_F(CliTest, ServerAndTokenComeFromFlagsThenEnvironmentThenDefault) {
  ledger_.report = Report{};
  EXPECT_EQ(Run({"report", "--date", "2024-09-30"}), 0);
  EXPECT_EQ(ledger_.last_options.host, "127.0.0.1");
  EXPECT_EQ(ledger_.last_options.port, 7700);
  EXPECT_EQ(ledger_.last_options.token, "llt_test");
  env_["LOANLEDGER_SERVER"] = "10.0.0.1:7001";
  EXPECT_EQ(Run({"report", "--date", "2024-09-30"}), 0);
  EXPECT_EQ(ledger_.last_options.host, "10.0.0.1");
  EXPECT_EQ(ledger_.last_options.port, 7001);
  EXPECT_EQ(Run({"report", "--date", "2024-09-30", "--server", "h:9", "--token", "llt_flag"}), 0);
  EXPECT_EQ(ledger_.last_options.host, "h");
  EXPECT_EQ(ledger_.last_options.port, 9);
  EXPECT_EQ(ledger_.last_options.token, "llt_flag");
  EXPECT_EQ(Run({"--server", "g:8", "report", "--date", "2024-09-30"}),
            0);  // before the command too
  EXPECT_EQ(ledger_.last_options.host, "g");
  EXPECT_FALSE(ledger_.last_options.tls);
  EXPECT_EQ(Run({"report", "--date", "2024-09-30", "--tls-ca", "/ca.pem"}), 0);
  EXPECT_TRUE(ledger_.last_options.tls);
  EXPECT_EQ(ledger_.last_options.tls_ca_file, "/ca.pem");
  EXPECT_EQ(err_.str().find("does not verify"), std::string::npos) << err_.str();
  EXPECT_FALSE(ledger_.last_options.tls_insecure);
  // --tls alone verifies against the system CA store: no CA file, no warning.
  EXPECT_EQ(Run({"report", "--date", "2024-09-30", "--tls"}), 0);
  EXPECT_TRUE(ledger_.last_options.tls);
  EXPECT_EQ(ledger_.last_options.tls_ca_file, "");
  EXPECT_FALSE(ledger_.last_options.tls_insecure);
  EXPECT_EQ(err_.str().find("warning"), std::string::npos) << err_.str();
  // --tls-insecure is the explicit opt-out, with a warning.
  EXPECT_EQ(Run({"report", "--date", "2024-09-30", "--tls-insecure"}), 0);
  EXPECT_TRUE(ledger_.last_options.tls);
  EXPECT_TRUE(ledger_.last_options.tls_insecure);
  EXPECT_NE(err_.str().find("warning: --tls-insecure: the server's certificate is not verified"),
            std::string::npos)
      << err_.str();
  EXPECT_NE(Run({"report", "--date", "2024-09-30", "--tls-insecure", "--tls-ca", "/ca.pem"}), 0);
}

TEST_F(CliTest, ConnectionFailuresExitThree) {
  ledger_.connect_failure = Status::Unavailable("connection refused");
  EXPECT_EQ(Run({"report", "--date", "2024-09-30"}), 3);
  EXPECT_NE(err_.str().find("UNAVAILABLE"), std::string::npos);
  ledger_.connect_failure = Status::Unauthenticated("token refused");
  EXPECT_EQ(Run({"loan", "--institution", "B0001", "--loan-id", "L1"}), 3);
  EXPECT_EQ(Run({"series", "--category", "GREEN", "--from", "2024-01-01", "--to", "2024-03-31"}),
            3);
}

// ---- admin ------------------------------------------------------------------

TEST_F(CliTest, AdminVerifyPrintsTheSummaryAndExitsOneOnDifferences) {
  ledger_.verify = VerifyOutcome{3, 10, 2, 50, {}};
  EXPECT_EQ(Run({"admin", "verify"}), 0);
  EXPECT_EQ(OutLines().back(),
            "verify: batches_replayed=3 events_replayed=10 loans_checked=2 cells_checked=50 "
            "differences=0");
  ledger_.verify = VerifyOutcome{3, 10, 2, 50, {"cell GREEN/31 balance_fen: expected 5 actual 6"}};
  EXPECT_EQ(Run({"admin", "verify"}), 1);
  EXPECT_EQ(OutLines().front(), "difference: cell GREEN/31 balance_fen: expected 5 actual 6");
  EXPECT_NE(OutLines().back().find(" differences=1"), std::string::npos);
}

TEST_F(CliTest, AdminStatsAndCompactPrintTheServersAnswer) {
  ledger_.stats = std::string("batches_applied 7\nloans 3\n");
  EXPECT_EQ(Run({"admin", "stats"}), 0);
  EXPECT_EQ(out_.str(), "batches_applied 7\nloans 3\n");
  ledger_.compact = CompactOutcome{1500, 9000, 4000};
  EXPECT_EQ(Run({"admin", "compact"}), 0);
  EXPECT_EQ(out_.str(),
            "compact: duration_ms=1500 live_sst_bytes_before=9000 live_sst_bytes_after=4000\n");
}

TEST_F(CliTest, AdminBackupPassesDirAndKeepAndPrintsTheServersAnswer) {
  ledger_.backup = BackupOutcome{"", 3, 120, 0, 9000, 700, 12, 3};
  EXPECT_EQ(Run({"admin", "backup", "/srv/backup/ll", "--keep", "3"}), 0);
  EXPECT_EQ(ledger_.last_backup_dir, "/srv/backup/ll");
  EXPECT_EQ(ledger_.last_backup_keep, 3u);
  EXPECT_EQ(out_.str(),
            "backup: dir=/srv/backup/ll id=3 batches=120 stream_seq=0 size_bytes=9000 "
            "new_bytes=700 files=12 backups_kept=3\n");
  EXPECT_EQ(Run({"admin", "backup", "/srv/backup/ll"}), 0);
  EXPECT_EQ(ledger_.last_backup_keep, 0u);  // keep all
  EXPECT_EQ(Run({"admin", "backup"}), 1);   // DIR is required
  ledger_.backup = Status::InvalidArgument("backup directory relative must be an absolute path");
  EXPECT_EQ(Run({"admin", "backup", "relative"}), 1);
  EXPECT_NE(err_.str().find("absolute"), std::string::npos) << err_.str();
}

// `rules show` prints the current rules file (docs/categories.md): stdout is its
// text byte for byte, a JSON file that `rules apply` takes back; the version
// number, history and a running recompute go to stderr.
TEST_F(CliTest, AdminRulesShowPrintsTheCurrentFileAloneOnStdout) {
  const std::string text =
      R"({"version": "2025-q1", "categories": [{"name": "GREEN", "rule": {"flag": "green"}}]})";
  RulesShowOutcome show;
  show.current = RulesVersionView{2, "2025-q1", text, 1'700'000'000'000};
  show.history = {RulesVersionView{1, "2024-default", "", 1'600'000'000'000},
                  RulesVersionView{2, "2025-q1", "", 1'700'000'000'000}};
  show.recompute_running = true;
  show.recompute_version = "2025-q2";
  show.recompute_batches_done = 3;
  show.recompute_batches_total = 9;
  ledger_.rules_show = show;
  EXPECT_EQ(Run({"admin", "rules", "show"}), 0);
  EXPECT_EQ(out_.str(), text);  // no added line: the file as applied
  EXPECT_TRUE(nlohmann::json::accept(out_.str()));
  EXPECT_TRUE(Rules::Parse(out_.str()).ok());
  EXPECT_EQ(ErrLines(), (std::vector<std::string>{
                            "# rules version 2025-q1 (number 2, applied 2023-11-14T22:13:20Z)",
                            "# history: number=1 version=2024-default applied=2020-09-13T12:26:40Z",
                            "# history: number=2 version=2025-q1 applied=2023-11-14T22:13:20Z",
                            "# recomputing under 2025-q2: 3 of 9 journal batches"}));
  // The round trip: what `rules show` printed is a file `rules apply` checks and sends.
  const std::string saved = WriteFile("shown.json", out_.str());
  EXPECT_EQ(Run({"admin", "rules", "apply", saved}), 3);  // checked, then the fake cannot apply
  EXPECT_EQ(err_.str().find(saved + ":"), std::string::npos) << err_.str();
  ledger_.rules_show = Status::PermissionDenied("only an admin token may ask for RulesShowRequest");
  EXPECT_EQ(Run({"admin", "rules", "show"}), 2);
  EXPECT_EQ(out_.str(), "");
}

TEST_F(CliTest, AdminRequestsRefusedOrWithoutACommand) {
  // The fake refuses as a server does for a non-admin token.
  EXPECT_EQ(Run({"admin", "verify"}), 2);
  EXPECT_NE(err_.str().find("PERMISSION_DENIED"), std::string::npos) << err_.str();
  EXPECT_EQ(Run({"admin", "compact"}), 2);
  EXPECT_EQ(Run({"admin"}), 1);
  EXPECT_EQ(Run({"admin", "rebuild"}), 1);
  ledger_.connect_failure = Status::Unavailable("connection refused");
  EXPECT_EQ(Run({"admin", "stats"}), 3);
}

// ---- Queries --------------------------------------------------------------

TEST_F(CliTest, ReportPassesTheQueryAndPrintsJson) {
  Report report;
  report.date = *ParseDate("2024-09-30");
  ReportRow row;
  row.category = Category::kGreen;
  row.group = "31";
  row.balance_fen = 42;
  report.rows = {row};
  ledger_.report = report;
  ASSERT_EQ(Run({"report", "--date", "2024-09-30", "--category", "GREEN", "--category",
                 "SRDI,GREEN", "--by", "province", "--format", "json"}),
            0)
      << err_.str();
  EXPECT_EQ(ledger_.last_report_query.date, *ParseDate("2024-09-30"));
  EXPECT_EQ(ledger_.last_report_query.categories,
            (std::vector<Category>{Category::kGreen, Category::kSrdi}));
  EXPECT_EQ(ledger_.last_report_query.by, GroupBy::kProvince);
  const auto j = nlohmann::ordered_json::parse(out_.str());
  EXPECT_EQ(j["date"], "2024-09-30");
  EXPECT_EQ(j["rows"][0]["group"], "31");
  EXPECT_EQ(j["rows"][0]["balance_fen"], 42);
}

TEST_F(CliTest, SeriesPassesTheQueryAndNamesItInJson) {
  Series series;  // the fake answers with default header fields: the CLI names what was asked
  series.points = {{*ParseDate("2024-01-31"), "", 5, 1}};
  ledger_.series = series;
  ASSERT_EQ(Run({"series", "--category", "GREEN", "--from", "2024-01-01", "--to", "2024-03-15",
                 "--step", "quarter", "--format", "json"}),
            0)
      << err_.str();
  EXPECT_EQ(ledger_.last_series_query.category, Category::kGreen);
  EXPECT_EQ(ledger_.last_series_query.step, Step::kQuarter);
  EXPECT_EQ(ledger_.last_series_query.by, GroupBy::kNone);
  const auto j = nlohmann::ordered_json::parse(out_.str());
  EXPECT_EQ(j["category"], "GREEN");
  EXPECT_EQ(j["step"], "quarter");
  EXPECT_TRUE(j["group_by"].is_null());
  EXPECT_EQ(Run({"series", "--category", "TOTAL", "--from", "2024-01-01", "--to", "2024-03-15"}),
            0);
  EXPECT_EQ(ledger_.last_series_query.step, Step::kMonth);  // the default step
}

TEST_F(CliTest, LoanExitCodes) {
  EXPECT_EQ(Run({"loan", "--institution", "B0001", "--loan-id", "L404"}), 4);
  EXPECT_NE(err_.str().find("NOT_FOUND"), std::string::npos);
  ledger_.loan = Status::PermissionDenied("another institution's loan");
  EXPECT_EQ(Run({"loan", "--institution", "B0002", "--loan-id", "L1"}), 2);
  LoanView loan;
  loan.institution_id = "B0001";
  loan.loan_id = "L1";
  loan.attributes.enterprise_size = EnterpriseSize::kSmall;
  loan.categories = 1;
  ledger_.loan = loan;
  EXPECT_EQ(Run({"loan", "--institution", "B0001", "--loan-id", "L1", "--format", "json"}), 0);
  EXPECT_EQ(nlohmann::json::parse(out_.str())["categories"], nlohmann::json::parse(R"(["TOTAL"])"));
}

TEST_F(CliTest, ReportRefusedForTheRoleExitsTwo) {
  ledger_.report = Status::PermissionDenied("admin tokens do not read figures");
  EXPECT_EQ(Run({"report", "--date", "2024-09-30"}), 2);
}

// ---- token new --------------------------------------------------------------

TEST_F(CliTest, TokenNewPrintsTokenAndItsTokensFileLine) {
  ASSERT_EQ(Run({"token", "new", "--role", "institution", "--institution", "B0001", "--name",
                 "core-banking"}),
            0)
      << err_.str();
  const auto lines = OutLines();
  ASSERT_EQ(lines.size(), 2u);
  const std::string& token = lines[0];
  ASSERT_EQ(token.size(), 4u + 64u);
  EXPECT_EQ(token.substr(0, 4), "llt_");
  EXPECT_EQ(token.find_first_not_of("0123456789abcdef", 4), std::string::npos);
  EXPECT_EQ(lines[1], Sha256Hex(token) + " institution B0001 core-banking");
  EXPECT_EQ(connects_, 0);  // needs no server

  ASSERT_EQ(Run({"token", "new", "--role", "regulator"}), 0);
  const auto regulator = OutLines();
  ASSERT_EQ(regulator.size(), 2u);
  EXPECT_NE(regulator[0], token);
  EXPECT_EQ(regulator[1], Sha256Hex(regulator[0]) + " regulator -");
  ASSERT_EQ(Run({"token", "new", "--role", "admin", "--server", "x:1"}), 0);  // accepted, unused
  EXPECT_EQ(OutLines()[1].substr(64), " admin -");
}

// ---- gen ------------------------------------------------------------------

TEST_F(CliTest, GenPassesItsOptionsToTheGenerator) {
  GenArgs seen;
  gen_ = [&](const GenArgs& args, CliContext&) {
    seen = args;
    return 0;
  };
  EXPECT_EQ(Run({"gen", "--scale", "1/1000", "--seed", "7", "--out", "p.csv"}), 0);
  EXPECT_DOUBLE_EQ(seen.scale, 0.001);
  EXPECT_EQ(seen.seed, 7u);
  EXPECT_EQ(seen.out, "p.csv");
  EXPECT_EQ(Run({"gen"}), 0);
  EXPECT_DOUBLE_EQ(seen.scale, 1e-4);
  EXPECT_EQ(seen.banks, 0u);
  EXPECT_TRUE(seen.out_dir.empty());
  EXPECT_FALSE(seen.day || seen.before);
}

TEST_F(CliTest, GenWorkloadFlagsArePassedOrRefusedWithTheReason) {
  GenArgs seen;
  int calls = 0;
  gen_ = [&](const GenArgs& args, CliContext&) {
    seen = args;
    ++calls;
    return 0;
  };
  EXPECT_EQ(Run({"gen", "--banks", "200", "--out-dir", "banks", "--day", "2024-12-02"}), 0);
  EXPECT_EQ(seen.banks, 200u);
  EXPECT_EQ(seen.out_dir, "banks");
  EXPECT_EQ(seen.day, ParseDate("2024-12-02"));
  EXPECT_FALSE(seen.before);
  EXPECT_EQ(Run({"gen", "--before", "2024-12-02"}), 0);
  EXPECT_EQ(seen.before, ParseDate("2024-12-02"));
  EXPECT_FALSE(seen.day);
  ASSERT_EQ(calls, 2);
  const std::pair<std::vector<std::string>, std::string> refused[] = {
      {{"--banks", "0"}, "bad --banks \"0\""},
      {{"--banks", "10000"}, "bad --banks"},
      {{"--banks", "-3"}, "bad --banks"},
      {{"--banks", "12x"}, "bad --banks"},
      {{"--day", "2024-02-30"}, "bad --day \"2024-02-30\": expected YYYY-MM-DD"},
      {{"--before", "2024/01/01"}, "bad --before"},
      {{"--day", "2024-12-02", "--before", "2024-12-03"}, "--day or --before, not both"},
      {{"--out", "x.csv", "--out-dir", "d"}, "--out or --out-dir, not both"},
  };
  for (const auto& [flags, message] : refused) {
    std::vector<std::string> args = {"gen"};
    args.insert(args.end(), flags.begin(), flags.end());
    err_.str("");
    EXPECT_EQ(Run(args), kExitUsage) << flags[0];
    EXPECT_NE(err_.str().find(message), std::string::npos) << err_.str();
  }
  EXPECT_EQ(calls, 2);
}

// ---- submit -----------------------------------------------------------------

TEST_F(CliTest, SubmitAppliesEverythingAndPrintsTheSummaryLast) {
  const std::string path = WriteFile("ok.csv", EventsFile(25));
  ASSERT_EQ(Run({"submit", path, "--batch-size", "10"}), 0) << err_.str();
  ASSERT_FALSE(OutLines().empty());
  EXPECT_EQ(OutLines().back(), "applied=25 duplicates=0 batches=3 rejected=0");
  ASSERT_EQ(ledger_.batches_received.size(), 3u);
  EXPECT_EQ(ledger_.batches_received[0].size(), 10u);
  EXPECT_EQ(ledger_.batches_received[2].size(), 5u);
  // Rerunning the same file is safe: everything is a duplicate.
  ASSERT_EQ(Run({"submit", path, "--batch-size", "10"}), 0);
  EXPECT_EQ(OutLines().back(), "applied=0 duplicates=25 batches=3 rejected=0");
}

TEST_F(CliTest, SubmitDefaultBatchSizeIsTenThousand) {
  const std::string path = WriteFile("big.csv", EventsFile(10'001));
  ASSERT_EQ(Run({"submit", path}), 0) << err_.str();
  ASSERT_EQ(ledger_.batches_received.size(), 2u);
  EXPECT_EQ(ledger_.batches_received[0].size(), 10'000u);
  EXPECT_EQ(OutLines().back(), "applied=10001 duplicates=0 batches=2 rejected=0");
}

TEST_F(CliTest, SubmitRejectedBatchReportsPhysicalLinesAndStops) {
  // CRLF, blank lines and a BOM: LINE must still be the physical line.
  std::string text = "\xEF\xBB\xBF" + std::string(kCsvHeader) + "\r\n";
  std::vector<std::string> lines;
  for (int i = 0; i < 12; ++i) lines.push_back(EventLine("L" + std::to_string(i), 1));
  lines[5] = EventLine("BAD1", 1);
  lines[7] = EventLine("BAD2", 1);
  // Physical layout: header(1), blank(2), then each event followed by a blank line.
  text += "\r\n";
  for (const auto& line : lines) text += line + "\r\n\r\n";
  ledger_.reject_loan_ids = {"BAD1", "BAD2"};
  ledger_.in_flight_max = 1;
  const std::string path = WriteFile("rej.csv", text);
  EXPECT_EQ(Run({"submit", path, "--batch-size", "4"}), 2);
  // Event i sits on line 3 + 2i: BAD1 (i=5) on 13, BAD2 (i=7) on 17, both in the second batch.
  const std::string err = err_.str();
  EXPECT_NE(err.find(path + ":13: SEQ_GAP: scripted rejection"), std::string::npos) << err;
  EXPECT_NE(err.find(path + ":17: SEQ_GAP: scripted rejection"), std::string::npos) << err;
  EXPECT_EQ(OutLines().back(), "applied=4 duplicates=0 batches=1 rejected=2");
  EXPECT_EQ(ledger_.batches_received.size(), 2u);  // stopped: the third batch was never sent
}

TEST_F(CliTest, SubmitWithPipeliningAppliesNothingInFlightBehindARejection) {
  const std::string path = WriteFile("pipe.csv", [] {
    std::string text = std::string(kCsvHeader) + "\n";
    for (int i = 0; i < 9; ++i)
      text += EventLine(i == 1 ? "BAD" : "L" + std::to_string(i), 1) + "\n";
    return text;
  }());
  ledger_.reject_loan_ids = {"BAD"};
  ledger_.in_flight_max = 3;
  EXPECT_EQ(Run({"submit", path, "--batch-size", "2"}), 2);
  EXPECT_NE(err_.str().find(path + ":3: SEQ_GAP"), std::string::npos) << err_.str();
  // Batches 2 and 3 were already in flight: skipped by the stream rule, not
  // applied, not counted; batches 4 and 5 were never sent.
  EXPECT_EQ(ledger_.batches_received.size(), 1u);
  EXPECT_EQ(OutLines().back(), "applied=0 duplicates=0 batches=0 rejected=1");
}

TEST_F(CliTest, SubmitSkippedWithoutARejectionSeenStillExitsTwo) {
  const std::string path = WriteFile("skip.csv", [] {
    std::string text = std::string(kCsvHeader) + "\n";
    for (int i = 0; i < 6; ++i) text += EventLine("L" + std::to_string(i), 1) + "\n";
    return text;
  }());
  ledger_.skip_from_batch = 1;  // as if batch 1's rejection had been lost
  EXPECT_EQ(Run({"submit", path, "--batch-size", "2"}), 2);
  EXPECT_NE(err_.str().find(path + ": batch 1 not applied: it follows a rejected batch"),
            std::string::npos)
      << err_.str();
  EXPECT_EQ(OutLines().back(), "applied=2 duplicates=0 batches=1 rejected=0");
}

TEST_F(CliTest, SubmitUnparsableLineStopsBeforeItsBatchAndKeepsEarlierOnes) {
  std::string text = std::string(kCsvHeader) + "\n";
  for (int i = 0; i < 10; ++i) text += EventLine("L" + std::to_string(i), 1) + "\n";
  text += "\n";                        // line 12, blank
  text += EventLine("L10", 1) + "\n";  // 13
  // 14: a bad flag
  text += "B0001,L11,1,2024-01-06,DISBURSE,5,ENTERPRISE,SMALL,C3911,310115,36,0,1,1,2,0,1\n";
  text += EventLine("L12", 1) + "\n";  // 15
  text += "too,few,fields\n";          // 16: malformed, same batch
  text += EventLine("L13", 1) + "\n";  // 17
  const std::string path = WriteFile("bad.csv", text);
  ledger_.in_flight_max = 1;
  EXPECT_EQ(Run({"submit", path, "--batch-size", "5"}), 2);
  const std::string err = err_.str();
  EXPECT_NE(err.find(path + ":14: BAD_FLAG: green: must be 0 or 1 (got \"2\")"), std::string::npos)
      << err;
  EXPECT_NE(err.find(path + ":16: MALFORMED_RECORD:"), std::string::npos) << err;
  // Batches 1 and 2 (lines 2-11) were applied; the batch holding line 14 was never sent.
  EXPECT_EQ(ledger_.batches_received.size(), 2u);
  EXPECT_EQ(OutLines().back(), "applied=10 duplicates=0 batches=2 rejected=2");
}

TEST_F(CliTest, SubmitBadHeaderExitsTwoWithoutConnecting) {
  const std::string path = WriteFile("hdr.csv", "a,b,c\n" + EventLine("L1", 1) + "\n");
  EXPECT_EQ(Run({"submit", path}), 2);
  EXPECT_NE(err_.str().find(path + ":1: MALFORMED_RECORD: the header must be"), std::string::npos)
      << err_.str();
  EXPECT_EQ(OutLines().back(), "applied=0 duplicates=0 batches=0 rejected=0");
  EXPECT_EQ(connects_, 0);
  const std::string empty = WriteFile("empty.csv", "");
  EXPECT_EQ(Run({"submit", empty}), 2);
}

TEST_F(CliTest, SubmitConnectionAndRoleFailures) {
  const std::string path = WriteFile("ok.csv", EventsFile(3));
  ledger_.connect_failure = Status::Unauthenticated("token refused");
  EXPECT_EQ(Run({"submit", path}), 3);
  EXPECT_EQ(OutLines().back(), "applied=0 duplicates=0 batches=0 rejected=0");
  ledger_.connect_failure = Status::Ok();
  ledger_.submit_failure = Status::Unavailable("connection lost, 5 reconnects failed");
  EXPECT_EQ(Run({"submit", path}), 3);
  EXPECT_NE(err_.str().find("UNAVAILABLE"), std::string::npos);
  ledger_.submit_failure = Status::PermissionDenied("regulators submit nothing");
  EXPECT_EQ(Run({"submit", path}), 2);
}

TEST_F(CliTest, SubmitProgressLinesOnAPipeAreRateLimited) {
  const std::string path = WriteFile("ok.csv", EventsFile(100));
  now_step_ms_ = 200;  // each clock reading advances 200 ms: at most every third batch prints
  ASSERT_EQ(Run({"submit", path, "--batch-size", "5"}), 0);
  const auto lines = ErrLines();
  ASSERT_FALSE(lines.empty());
  EXPECT_LT(lines.size(), 20u / 2);
  for (const auto& line : lines) {
    EXPECT_EQ(line.rfind("applied=", 0), 0u) << line;
    EXPECT_NE(line.find(" duplicates="), std::string::npos);
    EXPECT_NE(line.find(" batches="), std::string::npos);
    EXPECT_NE(line.find(" rejected="), std::string::npos);
  }
  EXPECT_EQ(OutLines().size(), 1u);  // stdout holds only the summary
}

TEST_F(CliTest, SubmitOnATerminalDrawsABarThatEndsAtHundredPercent) {
  terminal_ = true;
  const std::string path = WriteFile("ok.csv", EventsFile(23));
  ASSERT_EQ(Run({"submit", path, "--batch-size", "5"}), 0);
  const std::string err = err_.str();
  EXPECT_EQ(err.rfind("\r[", 0), 0u) << err;
  EXPECT_NE(err.find("] 100%  applied=23 duplicates=0 batches=5 rejected=0"), std::string::npos)
      << err;
  EXPECT_EQ(err.back(), '\n');
  EXPECT_EQ(OutLines().back(), "applied=23 duplicates=0 batches=5 rejected=0");
}

TEST_F(CliTest, SubmitOnATerminalPrintsDiagnosticsOnTheirOwnLines) {
  terminal_ = true;
  const std::string path = WriteFile("bad.csv", EventsFile(6) + "x\n");
  EXPECT_EQ(Run({"submit", path, "--batch-size", "2"}), 2);
  EXPECT_NE(err_.str().find("\n" + path + ":8: MALFORMED_RECORD:"), std::string::npos)
      << err_.str();
}

}  // namespace
}  // namespace loanledger::client::cli
