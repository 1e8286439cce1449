// The analysts' output options (docs/cli.md): `--unit` (exact decimals from
// int64 fen, around 2^53 and below zero), `--bom`, and `series` with several
// categories and the YoY/YTD measures — the growth computed on the client
// checked against a model ledger, the command line against a fake Client.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "client/cli/app.h"
#include "client/cli/format.h"
#include "client/cli/series_growth.h"
#include "tests/cli/fake_client.h"

namespace loanledger::client::cli {
namespace {

using Json = nlohmann::ordered_json;
using testing::FakeClient;
using testing::FakeLedger;

constexpr int64_t kTwo53 = int64_t{1} << 53;  // 9,007,199,254,740,992
constexpr std::string_view kBom = "\xEF\xBB\xBF";

Day D(std::string_view text) { return *ParseDate(text); }

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// ---- FormatAmount -----------------------------------------------------------

TEST(FormatAmount, EveryUnitIsExactAroundTwoToThe53) {
  // 2^53 + 1 has no double: a formatter going through double would print ...992.
  const int64_t v = kTwo53 + 1;  // 9007199254740993 fen
  EXPECT_EQ(FormatAmount(v, AmountUnit::kFen, true), "9,007,199,254,740,993");
  EXPECT_EQ(FormatAmount(v, AmountUnit::kFen, false), "9007199254740993");
  EXPECT_EQ(FormatAmount(v, AmountUnit::kYuan, true), "90,071,992,547,409.93");
  EXPECT_EQ(FormatAmount(v, AmountUnit::kYuan, false), "90071992547409.93");
  EXPECT_EQ(FormatAmount(v, AmountUnit::kWan, true), "9,007,199,254.740993");
  EXPECT_EQ(FormatAmount(v, AmountUnit::kWan, false), "9007199254.740993");
  EXPECT_EQ(FormatAmount(v, AmountUnit::kYi, true), "900,719.9254740993");
  EXPECT_EQ(FormatAmount(v, AmountUnit::kYi, false), "900719.9254740993");
  EXPECT_EQ(FormatAmount(kTwo53 - 1, AmountUnit::kYi, false), "900719.9254740991");
  EXPECT_EQ(FormatAmount(kTwo53, AmountUnit::kWan, false), "9007199254.740992");
}

TEST(FormatAmount, NegativeValuesInEveryUnit) {
  const int64_t v = -(kTwo53 + 1);
  EXPECT_EQ(FormatAmount(v, AmountUnit::kFen, true), "-9,007,199,254,740,993");
  EXPECT_EQ(FormatAmount(v, AmountUnit::kYuan, false), "-90071992547409.93");
  EXPECT_EQ(FormatAmount(v, AmountUnit::kWan, true), "-9,007,199,254.740993");
  EXPECT_EQ(FormatAmount(v, AmountUnit::kYi, false), "-900719.9254740993");
  EXPECT_EQ(FormatAmount(-5, AmountUnit::kFen, false), "-5");
  EXPECT_EQ(FormatAmount(-5, AmountUnit::kYuan, false), "-0.05");
  EXPECT_EQ(FormatAmount(-5, AmountUnit::kWan, false), "-0.000005");
  EXPECT_EQ(FormatAmount(-5, AmountUnit::kYi, false), "-0.0000000005");
  EXPECT_EQ(FormatAmount(-1'000'000, AmountUnit::kWan, true), "-1.000000");
  EXPECT_EQ(FormatAmount(0, AmountUnit::kYi, true), "0.0000000000");
  EXPECT_EQ(FormatAmount(0, AmountUnit::kFen, true), "0");
}

TEST(FormatAmount, Int64Bounds) {
  const int64_t max = std::numeric_limits<int64_t>::max();  // 9223372036854775807
  const int64_t min = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(FormatAmount(max, AmountUnit::kFen, false), "9223372036854775807");
  EXPECT_EQ(FormatAmount(max, AmountUnit::kWan, true), "9,223,372,036,854.775807");
  EXPECT_EQ(FormatAmount(max, AmountUnit::kYi, false), "922337203.6854775807");
  EXPECT_EQ(FormatAmount(min, AmountUnit::kFen, true), "-9,223,372,036,854,775,808");
  EXPECT_EQ(FormatAmount(min, AmountUnit::kYuan, false), "-92233720368547758.08");
  EXPECT_EQ(FormatAmount(min, AmountUnit::kYi, true), "-922,337,203.6854775808");
  EXPECT_EQ(FormatYuan(min), FormatAmount(min, AmountUnit::kYuan, true));
}

TEST(FormatAmount, UnitNamesRoundTrip) {
  for (AmountUnit u : {AmountUnit::kFen, AmountUnit::kYuan, AmountUnit::kWan, AmountUnit::kYi})
    EXPECT_EQ(ParseAmountUnit(AmountUnitName(u)), u);
  EXPECT_EQ(ParseAmountUnit("jiao"), std::nullopt);
}

// ---- Report and series with --unit, --bom -------------------------------------

Report BigReport() {
  Report report;
  report.date = D("2024-09-30");
  report.by = GroupBy::kProvince;
  ReportRow r;
  r.category = Category::kTotal;
  r.group = "31";
  r.balance_fen = kTwo53 + 1;
  r.loan_count = 3;
  r.balance_year_ago_fen = kTwo53 + 3;
  r.yoy_growth_pct = YoyGrowthPct(r.balance_fen, r.balance_year_ago_fen);
  r.ytd_increase_fen = -(kTwo53 + 1);
  r.disbursed_ytd_fen = 1;
  r.repaid_ytd_fen = 10'000'000'000;
  r.written_off_ytd_fen = 0;
  report.rows = {r};
  return report;
}

TEST(ReportUnits, CsvColumnsNameTheUnitAndAmountsAreExact) {
  const Report report = BigReport();
  const auto fen = Lines(FormatReport(report, OutputOptions{.format = OutputFormat::kCsv}));
  ASSERT_EQ(fen.size(), 2u);
  EXPECT_EQ(fen[0],
            "date,category,group,group_name,balance_fen,loan_count,balance_year_ago_fen,"
            "yoy_growth_pct,ytd_increase_fen,disbursed_ytd_fen,repaid_ytd_fen,written_off_ytd_fen");
  EXPECT_EQ(
      FormatReport(report, OutputFormat::kCsv),
      FormatReport(report, OutputOptions{.format = OutputFormat::kCsv, .unit = AmountUnit::kFen}));
  const auto wan = Lines(
      FormatReport(report, OutputOptions{.format = OutputFormat::kCsv, .unit = AmountUnit::kWan}));
  ASSERT_EQ(wan.size(), 2u);
  EXPECT_EQ(wan[0],
            "date,category,group,group_name,balance_wan,loan_count,balance_year_ago_wan,"
            "yoy_growth_pct,ytd_increase_wan,disbursed_ytd_wan,repaid_ytd_wan,written_off_ytd_wan");
  EXPECT_EQ(wan[1].substr(0, wan[1].find(",-2.")),  // the growth % is the only double
            "2024-09-30,TOTAL,31,上海市,9007199254.740993,3,9007199254.740995");
  EXPECT_NE(wan[1].find(",-9007199254.740993,0.000001,10000.000000,0.000000"), std::string::npos)
      << wan[1];
  const auto yi = Lines(
      FormatReport(report, OutputOptions{.format = OutputFormat::kCsv, .unit = AmountUnit::kYi}));
  EXPECT_NE(yi[1].find(",900719.9254740993,3,900719.9254740995,"), std::string::npos) << yi[1];
}

TEST(ReportUnits, TableTitleStatesTheUnitAndDefaultStaysYuan) {
  const Report report = BigReport();
  const std::string yuan = FormatReport(report, OutputFormat::kTable);
  EXPECT_EQ(Lines(yuan)[0], "Report as of 2024-09-30 (amounts in yuan)");
  EXPECT_NE(yuan.find("90,071,992,547,409.93"), std::string::npos) << yuan;
  EXPECT_EQ(yuan, FormatReport(report, OutputOptions{.format = OutputFormat::kTable,
                                                     .unit = AmountUnit::kYuan}));
  const std::string wan =
      FormatReport(report, OutputOptions{.format = OutputFormat::kTable, .unit = AmountUnit::kWan});
  EXPECT_EQ(Lines(wan)[0], "Report as of 2024-09-30 (amounts in wan, 10,000 yuan)");
  EXPECT_NE(wan.find("-9,007,199,254.740993"), std::string::npos) << wan;
  const std::string yi =
      FormatReport(report, OutputOptions{.format = OutputFormat::kTable, .unit = AmountUnit::kYi});
  EXPECT_EQ(Lines(yi)[0], "Report as of 2024-09-30 (amounts in yi, 100,000,000 yuan)");
  EXPECT_NE(yi.find("-900,719.9254740993"), std::string::npos) << yi;
  const std::string fen =
      FormatReport(report, OutputOptions{.format = OutputFormat::kTable, .unit = AmountUnit::kFen});
  EXPECT_EQ(Lines(fen)[0], "Report as of 2024-09-30 (amounts in fen, 0.01 yuan)");
  EXPECT_NE(fen.find("9,007,199,254,740,993"), std::string::npos) << fen;
}

TEST(ReportUnits, JsonIgnoresTheUnitAndStaysFen) {
  const Report report = BigReport();
  const std::string json = FormatReport(report, OutputFormat::kJson);
  EXPECT_EQ(json, FormatReport(report, OutputOptions{.format = OutputFormat::kJson,
                                                     .unit = AmountUnit::kYi,
                                                     .bom = true}));
  EXPECT_NE(json.find("\"balance_fen\":9007199254740993"), std::string::npos) << json;
}

TEST(Bom, OnlyCsvStartsWithTheUtf8ByteOrderMark) {
  const Report report = BigReport();
  const std::string with = FormatReport(report, {.format = OutputFormat::kCsv, .bom = true});
  const std::string without = FormatReport(report, {.format = OutputFormat::kCsv});
  ASSERT_GE(with.size(), 3u);
  EXPECT_EQ(with.substr(0, 3), kBom);
  EXPECT_EQ(with.substr(3), without);
  EXPECT_EQ(without.substr(0, 5), "date,");
  for (OutputFormat f : {OutputFormat::kTable, OutputFormat::kJson}) {
    EXPECT_EQ(FormatReport(report, {.format = f, .bom = true}), FormatReport(report, f));
  }
  Series series;
  series.points = {{D("2024-01-31"), "", 5, 1}};
  const std::string s = FormatSeriesAnswers({{series, {}}}, kSeriesMeasuresDefault,
                                            {.format = OutputFormat::kCsv, .bom = true});
  EXPECT_EQ(s, std::string(kBom) + FormatSeries(series, OutputFormat::kCsv));
  LoanView loan;
  loan.institution_id = "B0001";
  loan.loan_id = "L1";
  EXPECT_EQ(FormatLoan(loan, {.format = OutputFormat::kCsv, .bom = true}),
            std::string(kBom) + FormatLoan(loan, OutputFormat::kCsv));
}

// ---- ComputeSeriesGrowth against a model ----------------------------------------

// A model ledger: each group's balance is a pure function of the date (0
// before the group's first date), so every base balance is known exactly.
struct ModelLedger {
  std::vector<std::string> groups = {"31", "44"};
  std::vector<SeriesQuery> queries;

  static int64_t Balance(Day d, const std::string& group) {
    if (d < kDayMin) return 0;
    if (group == "44") return d < D("2023-07-01") ? 0 : int64_t{d - D("2023-07-01")} * 7'919 + 11;
    // Large and irregular: above 2^53, with dips (int64: a Day times a million overflows int).
    return kTwo53 + 20'000'000'001 + int64_t{d - kDayMin} * 1'000'003 -
           int64_t{d % 17} * 999'999'937;
  }

  Result<Series> Answer(const SeriesQuery& q) {
    EXPECT_GE(q.from, kDayMin);
    EXPECT_LE(q.from, q.to);
    queries.push_back(q);
    Series s;
    s.step = q.step;
    s.by = q.by;
    for (Day d : SeriesDates(q.from, q.to, q.step)) {
      for (const std::string& g : q.by == GroupBy::kNone ? std::vector<std::string>{""} : groups)
        s.points.push_back({d, g, Balance(d, g), 1});
    }
    return s;
  }
};

void ExpectGrowthLikeTheReport(Step step, std::string_view from, std::string_view to, GroupBy by) {
  SCOPED_TRACE(std::string(StepName(step)) + " " + std::string(from) + ".." + std::string(to));
  ModelLedger model;
  SeriesQuery q;
  q.from = D(from);
  q.to = D(to);
  q.step = step;
  q.by = by;
  const Result<Series> main = model.Answer(q);
  ASSERT_TRUE(main.ok());
  const Result<std::vector<SeriesGrowth>> growth =
      ComputeSeriesGrowth(q, *main, [&](const SeriesQuery& x) { return model.Answer(x); });
  ASSERT_TRUE(growth.ok()) << growth.status().ToString();
  ASSERT_EQ(growth->size(), main->points.size());
  for (size_t i = 0; i < growth->size(); ++i) {
    const SeriesPoint& p = main->points[i];
    // What the ledger's report computes (storage/query.cc MakeRow).
    const int64_t year_ago = ModelLedger::Balance(YearAgo(p.date), p.group);
    const SeriesGrowth expected{
        year_ago, YoyGrowthPct(p.balance_fen, year_ago),
        p.balance_fen - ModelLedger::Balance(PreviousYearEnd(p.date), p.group)};
    EXPECT_EQ((*growth)[i], expected) << FormatDate(p.date) << " " << p.group;
  }
  // The main query, the year-ago range, and a few single days at most.
  const size_t years = static_cast<size_t>(CivilFromDays(q.to).year - CivilFromDays(q.from).year);
  EXPECT_LE(model.queries.size(), 3 + years) << model.queries.size();
}

TEST(SeriesGrowth, EqualsTheReportsFiguresForEveryStep) {
  for (GroupBy by : {GroupBy::kNone, GroupBy::kProvince}) {
    // Feb 2025's month end has no month-end year-ago (2024-02-28, not 29).
    ExpectGrowthLikeTheReport(Step::kMonth, "2024-01-15", "2026-03-10", by);
    ExpectGrowthLikeTheReport(Step::kMonth, "2024-02-01", "2024-03-31", by);  // Feb 29 -> Feb 28
    ExpectGrowthLikeTheReport(Step::kDay, "2024-02-20", "2025-03-05", by);
    ExpectGrowthLikeTheReport(Step::kQuarter, "2023-05-05", "2025-08-19", by);
    ExpectGrowthLikeTheReport(Step::kYear, "2021-06-30", "2025-06-30", by);
    ExpectGrowthLikeTheReport(Step::kMonth, "2025-04-01", "2025-06-15", by);  // within one year
    ExpectGrowthLikeTheReport(Step::kMonth, "2025-12-31", "2025-12-31", by);
    // Bases before 1990-01-01 are 0 and not asked (the server refuses them).
    ExpectGrowthLikeTheReport(Step::kMonth, "1990-01-01", "1991-03-31", by);
    ExpectGrowthLikeTheReport(Step::kDay, "1990-01-01", "1990-01-01", by);
  }
}

TEST(SeriesGrowth, AFailedBaseQueryFailsTheAnswer) {
  SeriesQuery q;
  q.from = D("2024-01-01");
  q.to = D("2024-03-31");
  int calls = 0;
  const Result<SeriesAnswer> a =
      QuerySeriesAnswer(q, kSeriesMeasuresAll, [&](const SeriesQuery& x) -> Result<Series> {
        if (++calls == 1) return ModelLedger{}.Answer(x);
        return Status::Unavailable("server gone");
      });
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), Status::Code::kUnavailable);
}

TEST(SeriesGrowth, DefaultMeasuresAskOneQuery) {
  SeriesQuery q;
  q.from = D("2024-01-01");
  q.to = D("2024-12-31");
  ModelLedger model;
  const Result<SeriesAnswer> a = QuerySeriesAnswer(
      q, kSeriesMeasuresDefault, [&](const SeriesQuery& x) { return model.Answer(x); });
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(model.queries.size(), 1u);
  EXPECT_TRUE(a->growth.empty());
}

TEST(SeriesMeasures, ParsesNamesAndAll) {
  EXPECT_EQ(ParseSeriesMeasures({"all"}), kSeriesMeasuresAll);
  EXPECT_EQ(ParseSeriesMeasures({"balance", "loans"}), kSeriesMeasuresDefault);
  EXPECT_EQ(ParseSeriesMeasures({"yoy"}), SeriesMeasures{kMeasureYoy});
  EXPECT_EQ(ParseSeriesMeasures({"ytd", "balance"}), SeriesMeasures(kMeasureYtd | kMeasureBalance));
  EXPECT_EQ(ParseSeriesMeasures({}), std::nullopt);
  EXPECT_EQ(ParseSeriesMeasures({"growth"}), std::nullopt);
}

// ---- The command line against a fake Client ----------------------------------------

class OutputCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ledger_.series_answer = [this](const SeriesQuery& q) -> Result<Series> {
      Result<Series> s = model_.Answer(q);
      // The server names the category by the rules' name.
      s->category_name = q.category_name;
      s->rules_version = "2024-default";
      // Each category its own figures: GREEN a third of TOTAL's.
      if (q.category_name == "GREEN") {
        for (SeriesPoint& p : s->points) p.balance_fen /= 3;
      }
      return s;
    };
  }

  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    CliContext ctx{out_, err_};
    ctx.connect = [this](const ClientOptions&) -> Result<std::unique_ptr<Client>> {
      return std::unique_ptr<Client>(new FakeClient(ledger_));
    };
    ctx.getenv = [](const std::string& name) -> std::optional<std::string> {
      if (name == "LOANLEDGER_TOKEN") return std::string("llt_test");
      return std::nullopt;
    };
    return RunCli(args, ctx);
  }

  // `series` over 2024-01-01..2024-04-15 by province with extra flags.
  std::string AskSeries(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"series",     "--from", "2024-01-01", "--to",
                                     "2024-04-15", "--by",   "province"};
    args.insert(args.end(), extra.begin(), extra.end());
    EXPECT_EQ(Run(args), 0) << err_.str();
    return out_.str();
  }

  FakeLedger ledger_;
  ModelLedger model_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(OutputCliTest, SeveralCategoriesEqualTheSingleCategoryCalls) {
  for (const std::vector<std::string>& measures :
       {std::vector<std::string>{}, std::vector<std::string>{"--measures", "all"},
        std::vector<std::string>{"--measures", "yoy,loans"}}) {
    auto with = [&](std::vector<std::string> args) {
      args.insert(args.end(), measures.begin(), measures.end());
      return args;
    };
    const std::string total_csv = AskSeries(with({"--category", "TOTAL", "--format", "csv"}));
    const std::string green_csv = AskSeries(with({"--category", "GREEN", "--format", "csv"}));
    const std::string both_csv = AskSeries(with({"--category", "TOTAL,GREEN", "--format", "csv"}));
    const size_t header_end = green_csv.find('\n') + 1;
    EXPECT_EQ(both_csv, total_csv + green_csv.substr(header_end));
    // Repeated --category is the same as a list; a repeated name counts once.
    EXPECT_EQ(AskSeries(with({"--category", "TOTAL", "--category", "GREEN", "--category", "TOTAL",
                              "--format", "csv"})),
              both_csv);

    const std::string total_json = AskSeries(with({"--category", "TOTAL", "--format", "json"}));
    const std::string green_json = AskSeries(with({"--category", "GREEN", "--format", "json"}));
    const std::string both_json =
        AskSeries(with({"--category", "TOTAL,GREEN", "--format", "json"}));
    EXPECT_EQ(both_json, "[" + total_json.substr(0, total_json.size() - 1) + "," +
                             green_json.substr(0, green_json.size() - 1) + "]\n");

    const std::string table = AskSeries(with({"--category", "TOTAL,GREEN"}));
    const auto lines = Lines(table);
    EXPECT_EQ(lines[0], "Series of TOTAL, GREEN by month, per province (amounts in yuan)");
    EXPECT_EQ(lines[1].rfind("CATEGORY  DATE", 0), 0u) << table;
    // Four dates, two provinces, two categories.
    EXPECT_EQ(lines.size(), 2u + 4 * 2 * 2) << table;
  }
}

TEST_F(OutputCliTest, DefaultSeriesOutputIsUnchanged) {
  ::loanledger::Series expected = *model_.Answer([] {
    SeriesQuery q;
    q.from = D("2024-01-01");
    q.to = D("2024-04-15");
    q.by = GroupBy::kProvince;
    return q;
  }());
  expected.category_name = "TOTAL";
  expected.rules_version = "2024-default";
  for (OutputFormat f : {OutputFormat::kTable, OutputFormat::kCsv, OutputFormat::kJson}) {
    const char* name = f == OutputFormat::kTable ? "table"
                       : f == OutputFormat::kCsv ? "csv"
                                                 : "json";
    EXPECT_EQ(AskSeries({"--category", "TOTAL", "--format", name}), FormatSeries(expected, f));
  }
  EXPECT_EQ(ledger_.series_queries.size(), 3u);  // no base queries for the default measures
}

TEST_F(OutputCliTest, AllMeasuresInEveryFormat) {
  const Json j =
      Json::parse(AskSeries({"--category", "TOTAL", "--measures", "all", "--format", "json"}));
  ASSERT_EQ(j["points"].size(), 8u);
  std::vector<std::string> keys;
  for (auto it = j["points"][0].begin(); it != j["points"][0].end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"date", "group", "group_name", "balance_fen",
                                            "loan_count", "balance_year_ago_fen", "yoy_growth_pct",
                                            "ytd_increase_fen"}));
  const Json& p = j["points"][7];  // 2024-04-15, province 44
  EXPECT_EQ(p["date"], "2024-04-15");
  EXPECT_EQ(p["group"], "44");
  const int64_t now = ModelLedger::Balance(D("2024-04-15"), "44");
  const int64_t year_ago = ModelLedger::Balance(D("2023-04-15"), "44");
  EXPECT_EQ(year_ago, 0);
  EXPECT_EQ(p["balance_fen"], now);
  EXPECT_EQ(p["balance_year_ago_fen"], 0);
  EXPECT_TRUE(p["yoy_growth_pct"].is_null());
  EXPECT_EQ(p["ytd_increase_fen"], now - ModelLedger::Balance(D("2023-12-31"), "44"));
  // Amounts above 2^53 come through exactly (province 31).
  const int64_t big = ModelLedger::Balance(D("2024-04-15"), "31");
  ASSERT_GT(big, kTwo53);
  EXPECT_EQ(j["points"][6]["balance_fen"].get<int64_t>(), big);

  const auto csv = Lines(
      AskSeries({"--category", "TOTAL", "--measures", "all", "--format", "csv", "--unit", "wan"}));
  EXPECT_EQ(csv[0],
            "category,date,group,group_name,balance_wan,loan_count,balance_year_ago_wan,"
            "yoy_growth_pct,ytd_increase_wan");
  EXPECT_EQ(csv[8].rfind("TOTAL,2024-04-15,44,广东省," +
                             FormatAmount(now, AmountUnit::kWan, false) + ",1,0.000000,,",
                         0),
            0u)
      << csv[8];
  const auto table =
      Lines(AskSeries({"--category", "TOTAL", "--measures", "ytd,balance", "--unit", "yi"}));
  EXPECT_EQ(table[0], "Series of TOTAL by month, per province (amounts in yi, 100,000,000 yuan)");
  EXPECT_LT(table[1].find("BALANCE"), table[1].find("YTD INCREASE")) << table[1];
  EXPECT_NE(table[1].find("YTD INCREASE"), std::string::npos) << table[1];
  EXPECT_EQ(table[1].find("LOANS"), std::string::npos) << table[1];
  EXPECT_NE(table[2].find(
                FormatAmount(ModelLedger::Balance(D("2024-01-31"), "31"), AmountUnit::kYi, true)),
            std::string::npos)
      << table[2];
}

TEST_F(OutputCliTest, BomFlagOnReportSeriesAndLoan) {
  ledger_.report = BigReport();
  ASSERT_EQ(Run({"report", "--date", "2024-09-30", "--format", "csv", "--bom"}), 0) << err_.str();
  EXPECT_EQ(out_.str().substr(0, 8), std::string(kBom) + "date,");
  ASSERT_EQ(Run({"report", "--date", "2024-09-30", "--format", "csv"}), 0);
  EXPECT_EQ(out_.str().substr(0, 5), "date,");
  ASSERT_EQ(Run({"report", "--date", "2024-09-30", "--bom"}), 0);
  EXPECT_EQ(out_.str().substr(0, 6), "Report");
  EXPECT_EQ(AskSeries({"--category", "GREEN", "--format", "csv", "--bom"}).substr(0, 12),
            std::string(kBom) + "category,");
  LoanView loan;
  loan.institution_id = "B0001";
  loan.loan_id = "L1";
  ledger_.loan = loan;
  ASSERT_EQ(Run({"loan", "--institution", "B0001", "--loan-id", "L1", "--format", "csv", "--bom"}),
            0);
  EXPECT_EQ(out_.str().substr(0, 3), kBom);
}

TEST_F(OutputCliTest, ReportUnitFlag) {
  ledger_.report = BigReport();
  ASSERT_EQ(Run({"report", "--date", "2024-09-30", "--format", "csv", "--unit", "yi"}), 0);
  EXPECT_NE(out_.str().find(",900719.9254740993,3,"), std::string::npos) << out_.str();
  ASSERT_EQ(Run({"report", "--date", "2024-09-30", "--unit", "fen"}), 0);
  EXPECT_NE(out_.str().find("-9,007,199,254,740,993"), std::string::npos) << out_.str();
  ASSERT_EQ(Run({"report", "--date", "2024-09-30", "--by", "province", "--format", "json", "--unit",
                 "wan"}),
            0);
  EXPECT_EQ(out_.str(), FormatReport(BigReport(), OutputFormat::kJson));
}

TEST_F(OutputCliTest, BadValuesAreUsageErrors) {
  EXPECT_EQ(Run({"report", "--date", "2024-09-30", "--unit", "jiao"}), 1);
  EXPECT_EQ(Run({"series", "--category", "GREEN", "--from", "2024-01-01", "--to", "2024-03-01",
                 "--measures", "growth"}),
            1);
  EXPECT_EQ(
      Run({"series", "--category", "GREEN,bad", "--from", "2024-01-01", "--to", "2024-03-01"}), 1);
  EXPECT_EQ(Run({"loan", "--institution", "B0001", "--loan-id", "L1", "--unit", "wan"}), 1);
}

TEST_F(OutputCliTest, HelpExplainsTheNewOptions) {
  ASSERT_EQ(Run({"series", "--help"}), 0);
  for (const char* word : {"--measures", "yoy", "ytd", "--unit", "wan", "--bom", "Excel", "A,B"})
    EXPECT_NE(out_.str().find(word), std::string::npos) << word;
  ASSERT_EQ(Run({"report", "--help"}), 0);
  for (const char* word : {"--unit", "yi", "--bom"})
    EXPECT_NE(out_.str().find(word), std::string::npos) << word;
}

}  // namespace
}  // namespace loanledger::client::cli
