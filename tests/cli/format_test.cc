// The CLI's output formats (docs/cli.md): JSON shapes key by key and in order,
// null handling, CSV and table content, yuan formatting.
#include "client/cli/format.h"

#include <gtest/gtest.h>

#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

namespace loanledger::client::cli {
namespace {

using Json = nlohmann::ordered_json;

std::vector<std::string> Keys(const Json& object) {
  std::vector<std::string> keys;
  for (auto it = object.begin(); it != object.end(); ++it) keys.push_back(it.key());
  return keys;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

Day D(std::string_view text) { return *ParseDate(text); }

Report SampleReport(bool grouped) {
  Report report;
  report.date = D("2024-09-30");
  ReportRow a;
  a.category = Category::kManufacturingMlt;
  a.group = grouped ? "31" : "";
  a.balance_fen = 1'388'000'000'000;
  a.loan_count = 12;
  a.balance_year_ago_fen = 1'209'000'000'000;
  a.yoy_growth_pct = 14.8;
  a.ytd_increase_fen = -5;
  a.disbursed_ytd_fen = 100;
  a.repaid_ytd_fen = 200;
  a.written_off_ytd_fen = 0;
  ReportRow b;
  b.category = Category::kGreen;
  b.group = grouped ? "44" : "";
  b.balance_fen = 7;
  b.loan_count = 1;
  report.rows = {a, b};
  return report;
}

TEST(FormatYuan, ShowsFenExactlyAsYuanWithTwoDecimals) {
  EXPECT_EQ(FormatYuan(0), "0.00");
  EXPECT_EQ(FormatYuan(5), "0.05");
  EXPECT_EQ(FormatYuan(-5), "-0.05");
  EXPECT_EQ(FormatYuan(100), "1.00");
  EXPECT_EQ(FormatYuan(99'999), "999.99");
  EXPECT_EQ(FormatYuan(100'000), "1,000.00");
  EXPECT_EQ(FormatYuan(123'456'789), "1,234,567.89");
  EXPECT_EQ(FormatYuan(-123'456'789), "-1,234,567.89");
  EXPECT_EQ(FormatYuan(std::numeric_limits<int64_t>::max()), "92,233,720,368,547,758.07");
  EXPECT_EQ(FormatYuan(std::numeric_limits<int64_t>::min()), "-92,233,720,368,547,758.08");
}

TEST(FormatReport, JsonHasTheSpecShapeInOrder) {
  const Json j = Json::parse(FormatReport(SampleReport(false), OutputFormat::kJson));
  EXPECT_EQ(Keys(j), (std::vector<std::string>{"date", "rows"}));
  EXPECT_EQ(j["date"], "2024-09-30");
  ASSERT_EQ(j["rows"].size(), 2u);
  const Json& row = j["rows"][0];
  EXPECT_EQ(Keys(row), (std::vector<std::string>{"category", "group", "balance_fen", "loan_count",
                                                 "balance_year_ago_fen", "yoy_growth_pct",
                                                 "ytd_increase_fen", "disbursed_ytd_fen",
                                                 "repaid_ytd_fen", "written_off_ytd_fen"}));
  EXPECT_EQ(row["category"], "MANUFACTURING_MLT");
  EXPECT_TRUE(row["group"].is_null());
  EXPECT_TRUE(row["balance_fen"].is_number_integer());
  EXPECT_EQ(row["balance_fen"].get<int64_t>(), 1'388'000'000'000);
  EXPECT_EQ(row["loan_count"], 12);
  EXPECT_EQ(row["balance_year_ago_fen"].get<int64_t>(), 1'209'000'000'000);
  EXPECT_TRUE(row["yoy_growth_pct"].is_number_float());
  EXPECT_DOUBLE_EQ(row["yoy_growth_pct"].get<double>(), 14.8);
  EXPECT_EQ(row["ytd_increase_fen"], -5);
  EXPECT_EQ(row["disbursed_ytd_fen"], 100);
  EXPECT_EQ(row["repaid_ytd_fen"], 200);
  EXPECT_EQ(row["written_off_ytd_fen"], 0);
  EXPECT_EQ(j["rows"][1]["category"], "GREEN");
  EXPECT_TRUE(j["rows"][1]["yoy_growth_pct"].is_null());
}

TEST(FormatReport, JsonGroupIsTheProvinceOrInstitutionString) {
  const Json j = Json::parse(FormatReport(SampleReport(true), OutputFormat::kJson));
  EXPECT_EQ(j["rows"][0]["group"], "31");
  EXPECT_TRUE(j["rows"][0]["group"].is_string());
  EXPECT_EQ(j["rows"][1]["group"], "44");
}

TEST(FormatReport, JsonIsOneLine) {
  const std::string out = FormatReport(SampleReport(false), OutputFormat::kJson);
  EXPECT_EQ(Lines(out).size(), 1u);
  EXPECT_EQ(out.back(), '\n');
}

TEST(FormatReport, EmptyReportIsAnEmptyRowList) {
  Report report;
  report.date = D("2024-01-01");
  const Json j = Json::parse(FormatReport(report, OutputFormat::kJson));
  EXPECT_TRUE(j["rows"].is_array());
  EXPECT_TRUE(j["rows"].empty());
}

TEST(FormatReport, CsvHasHeaderAndFenFigures) {
  const auto lines = Lines(FormatReport(SampleReport(true), OutputFormat::kCsv));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0],
            "date,category,group,balance_fen,loan_count,balance_year_ago_fen,yoy_growth_pct,"
            "ytd_increase_fen,disbursed_ytd_fen,repaid_ytd_fen,written_off_ytd_fen");
  EXPECT_EQ(lines[1],
            "2024-09-30,MANUFACTURING_MLT,31,1388000000000,12,1209000000000,14.8,-5,100,200,0");
  EXPECT_EQ(lines[2], "2024-09-30,GREEN,44,7,1,0,,0,0,0,0");  // null yoy is an empty cell
}

TEST(FormatReport, TableShowsYuanAlignedAndHidesGroupWithoutBy) {
  const std::string table = FormatReport(SampleReport(false), OutputFormat::kTable);
  const auto lines = Lines(table);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_NE(lines[0].find("2024-09-30"), std::string::npos);
  EXPECT_EQ(lines[1].find("GROUP"), std::string::npos);
  EXPECT_NE(lines[2].find("13,880,000,000.00"), std::string::npos) << table;
  EXPECT_NE(lines[2].find("14.80"), std::string::npos) << table;
  EXPECT_NE(lines[3].find("0.07"), std::string::npos) << table;
  // Right-aligned BALANCE: the header and both rows end the column at the same place.
  const size_t end = lines[1].find("BALANCE") + std::string("BALANCE").size();
  EXPECT_EQ(lines[2].find("13,880,000,000.00") + std::string("13,880,000,000.00").size(), end);
  EXPECT_EQ(lines[3].find("0.07") + 4, end);
  const std::string grouped = FormatReport(SampleReport(true), OutputFormat::kTable);
  EXPECT_NE(Lines(grouped)[1].find("GROUP"), std::string::npos);
}

Series SampleSeries(GroupBy by) {
  Series s;
  s.category = Category::kGreen;
  s.step = Step::kMonth;
  s.by = by;
  const std::string group = by == GroupBy::kNone ? "" : "B0001";
  s.points = {{D("2024-01-31"), group, 100, 1}, {D("2024-02-15"), group, 250, 2}};
  return s;
}

TEST(FormatSeries, JsonHasTheSpecShapeInOrder) {
  const Json j = Json::parse(FormatSeries(SampleSeries(GroupBy::kNone), OutputFormat::kJson));
  EXPECT_EQ(Keys(j), (std::vector<std::string>{"category", "step", "group_by", "points"}));
  EXPECT_EQ(j["category"], "GREEN");
  EXPECT_EQ(j["step"], "month");
  EXPECT_TRUE(j["group_by"].is_null());
  ASSERT_EQ(j["points"].size(), 2u);
  EXPECT_EQ(Keys(j["points"][0]),
            (std::vector<std::string>{"date", "group", "balance_fen", "loan_count"}));
  EXPECT_EQ(j["points"][0]["date"], "2024-01-31");
  EXPECT_TRUE(j["points"][0]["group"].is_null());
  EXPECT_EQ(j["points"][1]["date"], "2024-02-15");
  EXPECT_EQ(j["points"][1]["balance_fen"], 250);
  EXPECT_EQ(j["points"][1]["loan_count"], 2);
}

TEST(FormatSeries, JsonGroupByNamesTheGrouping) {
  const Json j =
      Json::parse(FormatSeries(SampleSeries(GroupBy::kInstitution), OutputFormat::kJson));
  EXPECT_EQ(j["group_by"], "institution");
  EXPECT_EQ(j["points"][0]["group"], "B0001");
  Series province = SampleSeries(GroupBy::kProvince);
  province.step = Step::kQuarter;
  const Json p = Json::parse(FormatSeries(province, OutputFormat::kJson));
  EXPECT_EQ(p["group_by"], "province");
  EXPECT_EQ(p["step"], "quarter");
}

TEST(FormatSeries, CsvAndTable) {
  const auto csv = Lines(FormatSeries(SampleSeries(GroupBy::kNone), OutputFormat::kCsv));
  ASSERT_EQ(csv.size(), 3u);
  EXPECT_EQ(csv[0], "category,date,group,balance_fen,loan_count");
  EXPECT_EQ(csv[1], "GREEN,2024-01-31,,100,1");
  const auto table = Lines(FormatSeries(SampleSeries(GroupBy::kInstitution), OutputFormat::kTable));
  ASSERT_EQ(table.size(), 4u);
  EXPECT_NE(table[1].find("GROUP"), std::string::npos);
  EXPECT_NE(table[3].find("2.50"), std::string::npos);
}

LoanView SampleLoan() {
  LoanView loan;
  loan.institution_id = "B0001";
  loan.loan_id = "L000000001";
  loan.last_seq = 3;
  loan.last_business_date = D("2024-03-01");
  loan.balance_fen = 4'000'000'000;
  loan.attributes = LoanAttributes{BorrowerType::kEnterprise,
                                   EnterpriseSize::kSmall,
                                   "C3911",
                                   "310115",
                                   36,
                                   8'000'000'000,
                                   true,
                                   true,
                                   false,
                                   false,
                                   true};
  loan.categories = Classify(loan.attributes);
  return loan;
}

TEST(FormatLoan, JsonHasTheSpecShapeInOrder) {
  const Json j = Json::parse(FormatLoan(SampleLoan(), OutputFormat::kJson));
  EXPECT_EQ(Keys(j),
            (std::vector<std::string>{"institution_id", "loan_id", "last_seq", "last_business_date",
                                      "balance_fen", "attributes", "categories"}));
  EXPECT_EQ(j["institution_id"], "B0001");
  EXPECT_EQ(j["loan_id"], "L000000001");
  EXPECT_EQ(j["last_seq"], 3);
  EXPECT_EQ(j["last_business_date"], "2024-03-01");
  EXPECT_EQ(j["balance_fen"].get<int64_t>(), 4'000'000'000);
  const Json& a = j["attributes"];
  EXPECT_EQ(Keys(a), (std::vector<std::string>{"borrower_type", "enterprise_size", "industry_code",
                                               "region_code", "term_months", "credit_line_fen",
                                               "srdi", "tech_enterprise", "green", "elderly_care",
                                               "digital_economy"}));
  EXPECT_EQ(a["borrower_type"], "ENTERPRISE");
  EXPECT_EQ(a["enterprise_size"], "SMALL");
  EXPECT_EQ(a["industry_code"], "C3911");
  EXPECT_EQ(a["region_code"], "310115");
  EXPECT_EQ(a["term_months"], 36);
  EXPECT_EQ(a["credit_line_fen"].get<int64_t>(), 8'000'000'000);
  for (const char* flag : {"srdi", "tech_enterprise", "green", "elderly_care", "digital_economy"}) {
    EXPECT_TRUE(a[flag].is_boolean()) << flag;
  }
  EXPECT_EQ(a["srdi"], true);
  EXPECT_EQ(a["green"], false);
  // C3911 is high-tech manufacturing; credit line 80 million yuan is above the inclusive cap.
  EXPECT_EQ(j["categories"], Json::parse(R"(["TOTAL","MANUFACTURING","MANUFACTURING_MLT",
      "HIGH_TECH_MANUFACTURING","SRDI","TECH_ENTERPRISE","TECH_FINANCE","DIGITAL_ECONOMY"])"));
}

TEST(FormatLoan, CsvAndTable) {
  const auto csv = Lines(FormatLoan(SampleLoan(), OutputFormat::kCsv));
  ASSERT_EQ(csv.size(), 2u);
  EXPECT_EQ(csv[0],
            "institution_id,loan_id,last_seq,last_business_date,balance_fen,borrower_type,"
            "enterprise_size,"
            "industry_code,region_code,term_months,credit_line_fen,srdi,tech_enterprise,green,"
            "elderly_care,"
            "digital_economy,categories");
  EXPECT_EQ(csv[1],
            "B0001,L000000001,3,2024-03-01,4000000000,ENTERPRISE,SMALL,C3911,310115,36,8000000000,"
            "1,1,0,0,1,"
            "TOTAL;MANUFACTURING;MANUFACTURING_MLT;HIGH_TECH_MANUFACTURING;SRDI;TECH_ENTERPRISE;"
            "TECH_FINANCE;"
            "DIGITAL_ECONOMY");
  const std::string table = FormatLoan(SampleLoan(), OutputFormat::kTable);
  EXPECT_NE(table.find("40,000,000.00 yuan (4000000000 fen)"), std::string::npos) << table;
  EXPECT_NE(table.find("HIGH_TECH_MANUFACTURING"), std::string::npos);
}

TEST(FormatLoan, CsvQuotesALoanIdWithAQuote) {
  LoanView loan = SampleLoan();
  loan.loan_id = "L\"1";
  const auto csv = Lines(FormatLoan(loan, OutputFormat::kCsv));
  EXPECT_EQ(csv[1].substr(0, 13), "B0001,\"L\"\"1\",");
}

TEST(FormatSubmit, CountsLineAndRejectionLine) {
  EXPECT_EQ(FormatSubmitCounts({1, 2, 3, 4}), "applied=1 duplicates=2 batches=3 rejected=4");
  EXPECT_EQ(FormatRejectionLine("a.csv", 7, Reason::kSeqGap, "seq 5 after 3"),
            "a.csv:7: SEQ_GAP: seq 5 after 3");
  EXPECT_EQ(FormatRejectionLine("a.csv", 2, Reason::kOverdraw, ""),
            "a.csv:2: OVERDRAW: " + std::string(ReasonDescription(Reason::kOverdraw)));
}

TEST(FormatOptions, ParseOutputFormat) {
  EXPECT_EQ(ParseOutputFormat("table"), OutputFormat::kTable);
  EXPECT_EQ(ParseOutputFormat("csv"), OutputFormat::kCsv);
  EXPECT_EQ(ParseOutputFormat("json"), OutputFormat::kJson);
  EXPECT_FALSE(ParseOutputFormat("JSON").has_value());
}

}  // namespace
}  // namespace loanledger::client::cli

namespace loanledger::client::cli {
namespace {

// docs/categories.md, "Provinces": grouped by province, JSON, CSV and table name it.
TEST(FormatReport, ByProvinceNamesTheProvinceEverywhere) {
  Report report = SampleReport(true);
  report.by = GroupBy::kProvince;
  const Json j = Json::parse(FormatReport(report, OutputFormat::kJson));
  const Json& row = j["rows"][0];
  EXPECT_EQ(Keys(row), (std::vector<std::string>{
                           "category", "group", "group_name", "balance_fen", "loan_count",
                           "balance_year_ago_fen", "yoy_growth_pct", "ytd_increase_fen",
                           "disbursed_ytd_fen", "repaid_ytd_fen", "written_off_ytd_fen"}));
  EXPECT_EQ(row["group_name"], "上海市");
  EXPECT_EQ(j["rows"][1]["group_name"], "广东省");

  const auto csv = Lines(FormatReport(report, OutputFormat::kCsv));
  ASSERT_EQ(csv.size(), 3u);
  EXPECT_EQ(csv[0],
            "date,category,group,group_name,balance_fen,loan_count,balance_year_ago_fen,"
            "yoy_growth_pct,ytd_increase_fen,disbursed_ytd_fen,repaid_ytd_fen,written_off_ytd_fen");
  EXPECT_EQ(csv[1],
            "2024-09-30,MANUFACTURING_MLT,31,上海市,1388000000000,12,1209000000000,14.8,-5,100,200,"
            "0");

  const auto table = Lines(FormatReport(report, OutputFormat::kTable));
  ASSERT_EQ(table.size(), 4u);
  EXPECT_NE(table[1].find("NAME"), std::string::npos);
  EXPECT_NE(table[2].find("上海市"), std::string::npos);
  EXPECT_NE(table[3].find("广东省"), std::string::npos);
  // Wide characters count two columns: BALANCE still ends in one column.
  const size_t header_end = table[1].find("BALANCE") + 7;
  auto columns_before = [](const std::string& line, size_t bytes) {
    size_t cols = 0;
    for (size_t i = 0; i < bytes; ++i) {
      const auto c = static_cast<unsigned char>(line[i]);
      if ((c & 0xC0) == 0x80) continue;
      cols += c >= 0xE0 ? 2 : 1;  // the names are three-byte CJK
    }
    return cols;
  };
  EXPECT_EQ(columns_before(table[2], table[2].find("13,880,000,000.00") + 17), header_end);
  EXPECT_EQ(columns_before(table[3], table[3].find("0.07") + 4), header_end);
}

TEST(FormatReport, ByInstitutionHasNoGroupName) {
  Report report = SampleReport(true);
  report.by = GroupBy::kInstitution;
  const Json j = Json::parse(FormatReport(report, OutputFormat::kJson));
  EXPECT_FALSE(j["rows"][0].contains("group_name"));
  EXPECT_EQ(Lines(FormatReport(report, OutputFormat::kCsv))[0].find("group_name"),
            std::string::npos);
}

TEST(FormatSeries, ByProvinceNamesTheProvince) {
  Series series;
  series.category = Category::kGreen;
  series.by = GroupBy::kProvince;
  series.points = {SeriesPoint{D("2024-01-31"), "31", 5, 1},
                   SeriesPoint{D("2024-01-31"), "65", 7, 2}};
  const Json j = Json::parse(FormatSeries(series, OutputFormat::kJson));
  EXPECT_EQ(j["group_by"], "province");
  EXPECT_EQ(Keys(j["points"][0]),
            (std::vector<std::string>{"date", "group", "group_name", "balance_fen", "loan_count"}));
  EXPECT_EQ(j["points"][0]["group_name"], "上海市");
  EXPECT_EQ(j["points"][1]["group_name"], "新疆维吾尔自治区");
  const auto csv = Lines(FormatSeries(series, OutputFormat::kCsv));
  EXPECT_EQ(csv[0], "category,date,group,group_name,balance_fen,loan_count");
  EXPECT_EQ(csv[1], "GREEN,2024-01-31,31,上海市,5,1");
  EXPECT_NE(FormatSeries(series, OutputFormat::kTable).find("新疆维吾尔自治区"), std::string::npos);
}

}  // namespace
}  // namespace loanledger::client::cli
