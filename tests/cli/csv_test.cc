// The CSV form (docs/data.md) as client/csv.h reads and writes it: every field
// rule and its reason, line numbering, line ends, and the round trip.
#include "client/csv.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace loanledger::client {
namespace {

constexpr std::string_view kSpecLine =
    "B0001,L000000001,1,2023-01-05,DISBURSE,5000000000,ENTERPRISE,SMALL,C3911,310115,36,8000000000,"
    "1,1,0,0,1";

std::vector<std::string> Split(std::string_view line) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    fields.emplace_back(line.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (comma == std::string_view::npos) return fields;
    start = comma + 1;
  }
}

std::string Join(const std::vector<std::string>& fields) {
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) line += ',';
    line += fields[i];
  }
  return line;
}

// The spec line with field `index` replaced by value.
std::string WithField(size_t index, std::string_view value, std::string_view base = kSpecLine) {
  std::vector<std::string> fields = Split(base);
  fields.at(index) = std::string(value);
  return Join(fields);
}

std::optional<Reason> ReasonOf(const std::string& line) {
  LoanEvent event;
  const std::optional<CsvParseError> error = ParseCsvLine(line, event);
  if (!error) return std::nullopt;
  return error->reason;
}

TEST(CsvHeader, MatchesTheSpecColumnOrder) {
  EXPECT_EQ(
      kCsvHeader,
      "institution_id,loan_id,seq,business_date,event,amount_fen,borrower_type,enterprise_size,"
      "industry_code,region_code,term_months,credit_line_fen,srdi,tech_enterprise,green,"
      "elderly_care,digital_economy");
  EXPECT_EQ(Split(kCsvHeader).size(), 17u);
}

TEST(CsvParse, TheSpecExampleLineParsesToItsValues) {
  LoanEvent e;
  ASSERT_FALSE(ParseCsvLine(kSpecLine, e).has_value());
  EXPECT_EQ(e.institution_id, "B0001");
  EXPECT_EQ(e.loan_id, "L000000001");
  EXPECT_EQ(e.seq, 1u);
  EXPECT_EQ(FormatDate(e.business_date), "2023-01-05");
  EXPECT_EQ(e.kind, EventKind::kDisburse);
  EXPECT_EQ(e.amount_fen, 5000000000);
  EXPECT_EQ(e.attributes.borrower_type, BorrowerType::kEnterprise);
  EXPECT_EQ(e.attributes.enterprise_size, EnterpriseSize::kSmall);
  EXPECT_EQ(e.attributes.industry_code, "C3911");
  EXPECT_EQ(e.attributes.region_code, "310115");
  EXPECT_EQ(e.attributes.term_months, 36);
  EXPECT_EQ(e.attributes.credit_line_fen, 8000000000);
  EXPECT_TRUE(e.attributes.srdi);
  EXPECT_TRUE(e.attributes.tech_enterprise);
  EXPECT_FALSE(e.attributes.green);
  EXPECT_FALSE(e.attributes.elderly_care);
  EXPECT_TRUE(e.attributes.digital_economy);
}

TEST(CsvParse, WrongFieldCountIsMalformed) {
  EXPECT_EQ(ReasonOf(std::string(kSpecLine) + ",0"), Reason::kMalformedRecord);
  EXPECT_EQ(ReasonOf(std::string(kSpecLine.substr(0, kSpecLine.rfind(',')))),
            Reason::kMalformedRecord);
  EXPECT_EQ(ReasonOf(""), Reason::kMalformedRecord);
  EXPECT_EQ(ReasonOf("   "), Reason::kMalformedRecord);
  LoanEvent e;
  const auto error = ParseCsvLine(std::string(kSpecLine) + ",0", e);
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->message.find("got 18"), std::string::npos) << error->message;
}

TEST(CsvParse, FailureLeavesTheOutputUntouched) {
  LoanEvent e;
  e.loan_id = "untouched";
  ASSERT_TRUE(ParseCsvLine(WithField(2, "x"), e).has_value());
  EXPECT_EQ(e.loan_id, "untouched");
}

struct FieldCase {
  size_t field;
  std::string value;
  std::optional<Reason> reason;  // nullopt = accepted
  std::string base = std::string(kSpecLine);
};

void ExpectCases(const std::vector<FieldCase>& cases) {
  for (const FieldCase& c : cases) {
    const std::string line = WithField(c.field, c.value, c.base);
    LoanEvent e;
    const std::optional<CsvParseError> error = ParseCsvLine(line, e);
    if (!c.reason) {
      EXPECT_FALSE(error.has_value()) << line << " -> " << (error ? error->message : "");
    } else {
      ASSERT_TRUE(error.has_value()) << line;
      EXPECT_EQ(error->reason, *c.reason)
          << line << " -> " << ReasonName(error->reason) << " " << error->message;
      EXPECT_FALSE(error->message.empty());
    }
  }
}

TEST(CsvParse, InstitutionIdRule) {
  ExpectCases({{0, "", Reason::kBadInstitutionId},
               {0, "b0001", Reason::kBadInstitutionId},
               {0, "B 1", Reason::kBadInstitutionId},
               {0, std::string(33, 'B'), Reason::kBadInstitutionId},
               {0, std::string(32, 'B'), std::nullopt},
               {0, "A-Z_09", std::nullopt}});
}

TEST(CsvParse, LoanIdRule) {
  ExpectCases({{1, "", Reason::kBadLoanId},
               {1, std::string(65, 'L'), Reason::kBadLoanId},
               {1, "L\x01", Reason::kBadLoanId},
               {1, "L\xC3\xA9", Reason::kBadLoanId},
               {1, std::string(64, 'L'), std::nullopt},
               {1, "loan #7 \"x\"", std::nullopt}});
}

TEST(CsvParse, SeqIsDigitsOnlyAtLeastOneAndInRange) {
  ExpectCases({{2, "0", Reason::kBadSeq},
               {2, "-1", Reason::kBadSeq},
               {2, "+1", Reason::kBadSeq},
               {2, " 1", Reason::kBadSeq},
               {2, "1 ", Reason::kBadSeq},
               {2, "1.0", Reason::kBadSeq},
               {2, "", Reason::kBadSeq},
               {2, "0x10", Reason::kBadSeq},
               {2, "18446744073709551616", Reason::kBadSeq},
               {2, "18446744073709551615", std::nullopt},
               {2, "007", std::nullopt}});
}

TEST(CsvParse, BusinessDateIsARealDateInRange) {
  ExpectCases({{3, "2023-1-05", Reason::kBadBusinessDate},
               {3, "2023-02-29", Reason::kBadBusinessDate},
               {3, "2024-02-30", Reason::kBadBusinessDate},
               {3, "1989-12-31", Reason::kBadBusinessDate},
               {3, "2200-01-01", Reason::kBadBusinessDate},
               {3, "2023/01/05", Reason::kBadBusinessDate},
               {3, "", Reason::kBadBusinessDate},
               {3, "1990-01-01", std::nullopt},
               {3, "2199-12-31", std::nullopt},
               {3, "2024-02-29", std::nullopt}});
}

TEST(CsvParse, EventKindNamesAreExact) {
  ExpectCases({{4, "disburse", Reason::kBadEventKind},
               {4, "PAY", Reason::kBadEventKind},
               {4, "", Reason::kBadEventKind},
               {4, "REPAY", std::nullopt},
               {4, "WRITE_OFF", std::nullopt}});
}

TEST(CsvParse, AmountRules) {
  const std::string reclassify = WithField(4, "RECLASSIFY");
  ExpectCases({{5, "0", Reason::kBadAmount},
               {5, "-5", Reason::kBadAmount},
               {5, "1e3", Reason::kBadAmount},
               {5, "", Reason::kBadAmount},
               {5, "1000000000000001", Reason::kBadAmount},
               {5, "99999999999999999999", Reason::kBadAmount},
               {5, "1000000000000000", std::nullopt},
               {5, "1", std::nullopt},
               {5, "5", Reason::kBadAmount, reclassify},
               {5, "0", std::nullopt, reclassify}});
}

TEST(CsvParse, BorrowerTypeAndEnterpriseSize) {
  const std::string individual = WithField(7, "NA", WithField(6, "INDIVIDUAL"));
  ExpectCases({{6, "COMPANY", Reason::kBadBorrowerType},
               {6, "enterprise", Reason::kBadBorrowerType},
               {7, "HUGE", Reason::kBadEnterpriseSize},
               {7, "NA", Reason::kBadEnterpriseSize},  // ENTERPRISE needs a size
               {7, "SMALL", Reason::kBadEnterpriseSize, individual},
               {7, "NA", std::nullopt, individual},
               {7, "MICRO", std::nullopt},
               {6, "INDIVIDUAL_BUSINESS", std::nullopt, WithField(7, "NA")},
               {6, "SMALL_MICRO_OWNER", std::nullopt, WithField(7, "NA")}});
}

TEST(CsvParse, IndustryCodeRules) {
  const std::string individual = WithField(7, "NA", WithField(6, "INDIVIDUAL"));
  ExpectCases({{8, "C1", Reason::kBadIndustryCode},
               {8, "C39111", Reason::kBadIndustryCode},
               {8, "U39", Reason::kBadIndustryCode},
               {8, "c39", Reason::kBadIndustryCode},
               {8, "", Reason::kBadIndustryCode},
               {8, "", std::nullopt, individual},
               {8, "C", std::nullopt},
               {8, "C39", std::nullopt},
               {8, "C391", std::nullopt}});
}

TEST(CsvParse, RegionCodeRules) {
  ExpectCases({{9, "710000", Reason::kBadRegionCode},
               {9, "31011", Reason::kBadRegionCode},
               {9, "3101150", Reason::kBadRegionCode},
               {9, "31011a", Reason::kBadRegionCode},
               {9, "", Reason::kBadRegionCode},
               {9, "650100", std::nullopt}});
}

TEST(CsvParse, TermMonthsRules) {
  ExpectCases({{10, "0", Reason::kBadTermMonths},
               {10, "601", Reason::kBadTermMonths},
               {10, "65537", Reason::kBadTermMonths},
               {10, "99999999999999999999", Reason::kBadTermMonths},
               {10, "-1", Reason::kBadTermMonths},
               {10, "", Reason::kBadTermMonths},
               {10, "1", std::nullopt},
               {10, "600", std::nullopt}});
}

TEST(CsvParse, CreditLineRules) {
  ExpectCases({{11, "-1", Reason::kBadCreditLine},
               {11, "9223372036854775808", Reason::kBadCreditLine},
               {11, "99999999999999999999", Reason::kBadCreditLine},
               {11, "x", Reason::kBadCreditLine},
               {11, "", Reason::kBadCreditLine},
               {11, "0", std::nullopt},
               {11, "1000000000000000001", std::nullopt},
               {11, "9223372036854775807", std::nullopt}});
}

TEST(CsvParse, EveryFlagIsZeroOrOne) {
  for (size_t field = 12; field <= 16; ++field) {
    ExpectCases({{field, "2", Reason::kBadFlag},
                 {field, "", Reason::kBadFlag},
                 {field, "true", Reason::kBadFlag},
                 {field, " 1", Reason::kBadFlag},
                 {field, "01", Reason::kBadFlag},
                 {field, "0", std::nullopt},
                 {field, "1", std::nullopt}});
  }
}

TEST(CsvParse, MessagesNameTheField) {
  const std::vector<std::pair<size_t, std::string>> cases = {
      {2, "seq"},          {3, "business_date"},    {4, "event"}, {5, "amount_fen"},
      {10, "term_months"}, {11, "credit_line_fen"}, {14, "green"}};
  for (const auto& [field, name] : cases) {
    LoanEvent e;
    const auto error = ParseCsvLine(WithField(field, "zz"), e);
    ASSERT_TRUE(error.has_value()) << name;
    EXPECT_NE(error->message.find(name), std::string::npos) << error->message;
    EXPECT_NE(error->message.find("\"zz\""), std::string::npos) << error->message;
  }
}

TEST(CsvParse, TheFirstBadFieldFromTheLeftIsReported) {
  EXPECT_EQ(ReasonOf(WithField(2, "x", WithField(0, "bad id"))), Reason::kBadInstitutionId);
  EXPECT_EQ(ReasonOf(WithField(16, "x", WithField(3, "x"))), Reason::kBadBusinessDate);
}

LoanEvent SampleEvent() {
  LoanEvent e;
  ParseCsvLine(kSpecLine, e);
  return e;
}

TEST(CsvRoundTrip, AppendThenParseGivesTheSameEvent) {
  std::vector<LoanEvent> events;
  events.push_back(SampleEvent());
  LoanEvent reclassify = SampleEvent();
  reclassify.seq = 18446744073709551615ull;
  reclassify.kind = EventKind::kReclassify;
  reclassify.amount_fen = 0;
  reclassify.business_date = *ParseDate("2199-12-31");
  events.push_back(reclassify);
  LoanEvent individual = SampleEvent();
  individual.loan_id = "x\"y z~";
  individual.kind = EventKind::kWriteOff;
  individual.amount_fen = 1'000'000'000'000'000;
  individual.attributes = LoanAttributes{BorrowerType::kIndividual,
                                         EnterpriseSize::kNa,
                                         "",
                                         "650100",
                                         600,
                                         1'000'000'000'000'000'000,
                                         false,
                                         false,
                                         true,
                                         true,
                                         false};
  events.push_back(individual);
  LoanEvent owner = SampleEvent();
  owner.kind = EventKind::kRepay;
  owner.attributes.borrower_type = BorrowerType::kSmallMicroOwner;
  owner.attributes.enterprise_size = EnterpriseSize::kNa;
  owner.attributes.credit_line_fen = 0;
  events.push_back(owner);
  for (const LoanEvent& e : events) {
    std::string line;
    AppendCsvLine(e, line);
    ASSERT_EQ(line.back(), '\n');
    line.pop_back();
    LoanEvent parsed;
    const auto error = ParseCsvLine(line, parsed);
    ASSERT_FALSE(error.has_value()) << line << ": " << error->message;
    EXPECT_EQ(parsed, e) << line;
  }
}

TEST(CsvRoundTrip, AppendWritesTheSpecLine) {
  std::string line;
  AppendCsvLine(SampleEvent(), line);
  EXPECT_EQ(line, std::string(kSpecLine) + "\n");
}

// ---- CsvReader --------------------------------------------------------------

struct ReadResult {
  std::vector<std::pair<uint64_t, std::string>> events;  // line, loan_id
  std::vector<std::pair<uint64_t, Reason>> bad_lines;    // line, reason
};

ReadResult ReadAll(const std::string& text) {
  std::istringstream in(text);
  CsvReader reader(in);
  EXPECT_TRUE(reader.ReadHeader()) << reader.error();
  ReadResult result;
  LoanEvent e;
  while (true) {
    const CsvReader::Next next = reader.ReadNext(e);
    if (next == CsvReader::Next::kEnd) break;
    if (next == CsvReader::Next::kEvent)
      result.events.emplace_back(reader.line_number(), e.loan_id);
    if (next == CsvReader::Next::kBadLine)
      result.bad_lines.emplace_back(reader.line_number(), reader.parse_error().reason);
  }
  return result;
}

std::string Line(std::string_view loan_id) { return WithField(1, loan_id); }

TEST(CsvReader, CountsPhysicalLinesWithTheHeaderAsLineOne) {
  const std::string text = std::string(kCsvHeader) + "\n" + Line("A") + "\n" + Line("B") + "\n";
  const ReadResult r = ReadAll(text);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0], std::make_pair(uint64_t{2}, std::string("A")));
  EXPECT_EQ(r.events[1], std::make_pair(uint64_t{3}, std::string("B")));
}

TEST(CsvReader, AcceptsCrlfAndSkipsBlankLinesKeepingPhysicalNumbers) {
  const std::string text = std::string(kCsvHeader) + "\r\n\r\n" + Line("A") + "\r\n\n\n" +
                           Line("B") + "\r\n" + WithField(12, "7") + "\r\n" +
                           Line("C");  // no final newline
  const ReadResult r = ReadAll(text);
  ASSERT_EQ(r.events.size(), 3u);
  EXPECT_EQ(r.events[0].first, 3u);
  EXPECT_EQ(r.events[1].first, 6u);
  EXPECT_EQ(r.events[2].first, 8u);
  EXPECT_EQ(r.events[2].second, "C");
  ASSERT_EQ(r.bad_lines.size(), 1u);
  EXPECT_EQ(r.bad_lines[0], std::make_pair(uint64_t{7}, Reason::kBadFlag));
}

TEST(CsvReader, AcceptsAUtf8BomBeforeTheHeader) {
  const ReadResult r = ReadAll("\xEF\xBB\xBF" + std::string(kCsvHeader) + "\n" + Line("A") + "\n");
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].first, 2u);
}

TEST(CsvReader, ABomAnywhereElseIsNotWhitespace) {
  const ReadResult r = ReadAll(std::string(kCsvHeader) + "\n\xEF\xBB\xBF" + Line("A") + "\n");
  ASSERT_EQ(r.bad_lines.size(), 1u);
  EXPECT_EQ(r.bad_lines[0].second, Reason::kBadInstitutionId);
}

TEST(CsvReader, ContinuesAfterABadLine) {
  const std::string text =
      std::string(kCsvHeader) + "\n" + Line("A") + "\nnot,a,record\n" + Line("B") + "\n";
  const ReadResult r = ReadAll(text);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[1].first, 4u);
  ASSERT_EQ(r.bad_lines.size(), 1u);
  EXPECT_EQ(r.bad_lines[0], std::make_pair(uint64_t{3}, Reason::kMalformedRecord));
}

TEST(CsvReader, AnOverlongLineIsMalformedAndSkippedWhole) {
  const std::string text = std::string(kCsvHeader) + "\n" + std::string(100'000, 'x') + "\n" +
                           Line("A") + "\n" +
                           std::string(5000, ',');  // overlong, at the end without newline
  const ReadResult r = ReadAll(text);
  ASSERT_EQ(r.bad_lines.size(), 2u);
  EXPECT_EQ(r.bad_lines[0], std::make_pair(uint64_t{2}, Reason::kMalformedRecord));
  EXPECT_EQ(r.bad_lines[1], std::make_pair(uint64_t{4}, Reason::kMalformedRecord));
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].first, 3u);
}

TEST(CsvReader, HeaderOnlyFileHasNoEvents) {
  const ReadResult r = ReadAll(std::string(kCsvHeader) + "\n");
  EXPECT_TRUE(r.events.empty());
  EXPECT_TRUE(r.bad_lines.empty());
  const ReadResult no_newline = ReadAll(std::string(kCsvHeader));
  EXPECT_TRUE(no_newline.events.empty());
}

TEST(CsvReader, RejectsAMissingOrWrongHeader) {
  for (const std::string& text :
       {std::string(""), std::string(kSpecLine) + "\n", std::string(kCsvHeader) + ",extra\n",
        std::string(kCsvHeader) + " \n",
        "INSTITUTION_ID" + std::string(kCsvHeader.substr(14)) + "\n"}) {
    std::istringstream in(text);
    CsvReader reader(in);
    EXPECT_FALSE(reader.ReadHeader()) << text;
    EXPECT_FALSE(reader.error().empty());
  }
}

TEST(CsvReader, HeaderLineNumberIsOne) {
  std::istringstream in(std::string(kCsvHeader) + "\n");
  CsvReader reader(in);
  ASSERT_TRUE(reader.ReadHeader());
  EXPECT_EQ(reader.line_number(), 1u);
}

}  // namespace
}  // namespace loanledger::client
