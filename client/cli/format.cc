#include "client/cli/format.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "schema/check.h"
#include "schema/province.h"
#include "schema/query_json.h"

namespace loanledger::client::cli {
namespace {

// ---- Tables ---------------------------------------------------------------

struct Column {
  std::string title;
  bool right_aligned;  // numbers right, names left
};

// Terminal columns of UTF-8 text: two for East Asian wide characters (the
// CJK of province names), one for the rest.
size_t DisplayWidth(std::string_view s) {
  size_t width = 0;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    uint32_t cp = c;
    size_t n = 1;
    if (c >= 0xF0 && i + 3 < s.size()) {
      cp = ((c & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) | ((s[i + 2] & 0x3Fu) << 6) |
           (s[i + 3] & 0x3Fu);
      n = 4;
    } else if (c >= 0xE0 && i + 2 < s.size()) {
      cp = ((c & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3Fu);
      n = 3;
    } else if (c >= 0xC0 && i + 1 < s.size()) {
      cp = ((c & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu);
      n = 2;
    }
    const bool wide = (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) ||
                      (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
                      (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
                      (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x20000 && cp <= 0x3FFFD);
    width += wide ? 2 : 1;
    i += n;
  }
  return width;
}

// Renders columns padded to their widest cell, two spaces apart, no
// trailing blanks.
std::string RenderTable(const std::vector<Column>& columns,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(columns.size());
  for (size_t c = 0; c < columns.size(); ++c) widths[c] = DisplayWidth(columns[c].title);
  for (const auto& row : rows) {
    LL_CHECK(row.size() == columns.size());
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], DisplayWidth(row[c]));
  }
  std::string out;
  auto append_row = [&](auto cell_of) {
    std::string line;
    for (size_t c = 0; c < columns.size(); ++c) {
      const std::string& cell = cell_of(c);
      const std::string pad(widths[c] - DisplayWidth(cell), ' ');
      if (c > 0) line += "  ";
      line += columns[c].right_aligned ? pad + cell : cell + pad;
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out += line;
    out += '\n';
  };
  append_row([&](size_t c) -> const std::string& { return columns[c].title; });
  for (const auto& row : rows) append_row([&](size_t c) -> const std::string& { return row[c]; });
  return out;
}

std::string FormatPct(const std::optional<double>& pct) {
  if (!pct) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", *pct);
  return buf;
}

// ---- Amounts ----------------------------------------------------------------

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

AmountUnit TableUnit(const OutputOptions& o) { return o.unit.value_or(AmountUnit::kYuan); }
AmountUnit CsvUnit(const OutputOptions& o) { return o.unit.value_or(AmountUnit::kFen); }

// The table title's "(amounts in ...)"; plain "yuan" as before --unit.
std::string UnitNote(AmountUnit unit) {
  switch (unit) {
    case AmountUnit::kFen:
      return "(amounts in fen, 0.01 yuan)";
    case AmountUnit::kYuan:
      return "(amounts in yuan)";
    case AmountUnit::kWan:
      return "(amounts in wan, 10,000 yuan)";
    case AmountUnit::kYi:
      return "(amounts in yi, 100,000,000 yuan)";
  }
  LL_CHECK(false);
  return {};
}

// A CSV amount column: "balance" -> "balance_wan".
std::string AmountColumn(std::string_view stem, AmountUnit unit) {
  return std::string(stem) + "_" + std::string(AmountUnitName(unit));
}

// ---- CSV ------------------------------------------------------------------

// RFC 4180 quoting, needed only for a loan_id holding a quote.
std::string CsvField(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string ShortestDouble(double v) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  LL_CHECK(ec == std::errc());
  return std::string(buf, end);
}

std::string JoinCsv(const std::vector<std::string>& cells) {
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i) {
    if (i > 0) line += ',';
    line += cells[i];
  }
  line += '\n';
  return line;
}

bool AnyGroup(const std::vector<ReportRow>& rows) {
  return std::any_of(rows.begin(), rows.end(), [](const ReportRow& r) { return !r.group.empty(); });
}

// ---- Report ---------------------------------------------------------------

std::string ReportTable(const Report& report, AmountUnit unit) {
  const bool grouped = AnyGroup(report.rows);
  std::vector<Column> columns = {{"CATEGORY", false}};
  const bool named = report.by == GroupBy::kProvince;
  if (grouped) columns.push_back({"GROUP", false});
  if (named) columns.push_back({"NAME", false});
  for (const char* title : {"BALANCE", "LOANS", "YEAR AGO", "YOY %", "YTD INCREASE",
                            "DISBURSED YTD", "REPAID YTD", "WRITTEN OFF YTD"}) {
    columns.push_back({title, true});
  }
  auto amount = [unit](int64_t fen) { return FormatAmount(fen, unit, true); };
  std::vector<std::vector<std::string>> rows;
  for (const ReportRow& r : report.rows) {
    std::vector<std::string> row = {CategoryLabel(r.category, r.category_name)};
    if (grouped) row.push_back(r.group);
    if (named) row.emplace_back(ProvinceChineseName(r.group));
    for (std::string cell :
         {amount(r.balance_fen), std::to_string(r.loan_count), amount(r.balance_year_ago_fen),
          FormatPct(r.yoy_growth_pct), amount(r.ytd_increase_fen), amount(r.disbursed_ytd_fen),
          amount(r.repaid_ytd_fen), amount(r.written_off_ytd_fen)}) {
      row.push_back(std::move(cell));
    }
    rows.push_back(std::move(row));
  }
  return "Report as of " + FormatDate(report.date) + " " + UnitNote(unit) + "\n" +
         RenderTable(columns, rows);
}

// By province, a group_name column follows group. Amount columns end in
// the unit's name (balance_fen, balance_wan, ...).
std::string ReportCsv(const Report& report, AmountUnit unit) {
  const bool named = report.by == GroupBy::kProvince;
  std::string out = named ? "date,category,group,group_name," : "date,category,group,";
  out += JoinCsv({AmountColumn("balance", unit), "loan_count",
                  AmountColumn("balance_year_ago", unit), "yoy_growth_pct",
                  AmountColumn("ytd_increase", unit), AmountColumn("disbursed_ytd", unit),
                  AmountColumn("repaid_ytd", unit), AmountColumn("written_off_ytd", unit)});
  auto amount = [unit](int64_t fen) { return FormatAmount(fen, unit, false); };
  const std::string date = FormatDate(report.date);
  for (const ReportRow& r : report.rows) {
    std::string group = CsvField(r.group);
    if (named) group += "," + CsvField(ProvinceChineseName(r.group));
    out += JoinCsv({date, CategoryLabel(r.category, r.category_name), group, amount(r.balance_fen),
                    std::to_string(r.loan_count), amount(r.balance_year_ago_fen),
                    r.yoy_growth_pct ? ShortestDouble(*r.yoy_growth_pct) : std::string(),
                    amount(r.ytd_increase_fen), amount(r.disbursed_ytd_fen),
                    amount(r.repaid_ytd_fen), amount(r.written_off_ytd_fen)});
  }
  return out;
}

// ---- Series ---------------------------------------------------------------

// The growth of point i when the measures show it (then it must have been
// computed), else zeros that nothing prints.
SeriesGrowth GrowthAt(const SeriesAnswer& a, size_t i, SeriesMeasures measures) {
  if (!(measures & (kMeasureYoy | kMeasureYtd))) return {};
  LL_CHECK_MSG(a.growth.size() == a.series.points.size(), "series growth not computed");
  return a.growth[i];
}

std::string SeriesTable(const std::vector<SeriesAnswer>& answers, SeriesMeasures measures,
                        AmountUnit unit) {
  LL_CHECK(!answers.empty());
  const Series& first = answers.front().series;
  const bool several = answers.size() > 1;
  const bool grouped = first.by != GroupBy::kNone;
  const bool named = first.by == GroupBy::kProvince;
  std::vector<Column> columns;
  if (several) columns.push_back({"CATEGORY", false});
  columns.push_back({"DATE", false});
  if (grouped) columns.push_back({"GROUP", false});
  if (named) columns.push_back({"NAME", false});
  if (measures & kMeasureBalance) columns.push_back({"BALANCE", true});
  if (measures & kMeasureLoans) columns.push_back({"LOANS", true});
  if (measures & kMeasureYoy) {
    columns.push_back({"YEAR AGO", true});
    columns.push_back({"YOY %", true});
  }
  if (measures & kMeasureYtd) columns.push_back({"YTD INCREASE", true});
  std::vector<std::vector<std::string>> rows;
  std::string labels;
  for (const SeriesAnswer& a : answers) {
    const std::string label = CategoryLabel(a.series.category, a.series.category_name);
    labels += (labels.empty() ? "" : ", ") + label;
    for (size_t i = 0; i < a.series.points.size(); ++i) {
      const SeriesPoint& p = a.series.points[i];
      const SeriesGrowth g = GrowthAt(a, i, measures);
      std::vector<std::string> row;
      if (several) row.push_back(label);
      row.push_back(FormatDate(p.date));
      if (grouped) row.push_back(p.group);
      if (named) row.emplace_back(ProvinceChineseName(p.group));
      if (measures & kMeasureBalance) row.push_back(FormatAmount(p.balance_fen, unit, true));
      if (measures & kMeasureLoans) row.push_back(std::to_string(p.loan_count));
      if (measures & kMeasureYoy) {
        row.push_back(FormatAmount(g.balance_year_ago_fen, unit, true));
        row.push_back(FormatPct(g.yoy_growth_pct));
      }
      if (measures & kMeasureYtd) row.push_back(FormatAmount(g.ytd_increase_fen, unit, true));
      rows.push_back(std::move(row));
    }
  }
  std::string title = "Series of " + labels + " by " + std::string(StepName(first.step));
  if (grouped) title += ", per " + std::string(GroupByName(first.by));
  return title + " " + UnitNote(unit) + "\n" + RenderTable(columns, rows);
}

// By province, a group_name column follows group. One header for every
// category; amount columns end in the unit's name.
std::string SeriesCsv(const std::vector<SeriesAnswer>& answers, SeriesMeasures measures,
                      AmountUnit unit) {
  LL_CHECK(!answers.empty());
  const bool named = answers.front().series.by == GroupBy::kProvince;
  std::vector<std::string> header = {"category", "date", "group"};
  if (named) header.emplace_back("group_name");
  if (measures & kMeasureBalance) header.push_back(AmountColumn("balance", unit));
  if (measures & kMeasureLoans) header.emplace_back("loan_count");
  if (measures & kMeasureYoy) {
    header.push_back(AmountColumn("balance_year_ago", unit));
    header.emplace_back("yoy_growth_pct");
  }
  if (measures & kMeasureYtd) header.push_back(AmountColumn("ytd_increase", unit));
  std::string out = JoinCsv(header);
  for (const SeriesAnswer& a : answers) {
    const std::string category = CategoryLabel(a.series.category, a.series.category_name);
    for (size_t i = 0; i < a.series.points.size(); ++i) {
      const SeriesPoint& p = a.series.points[i];
      const SeriesGrowth g = GrowthAt(a, i, measures);
      std::vector<std::string> cells = {category, FormatDate(p.date), CsvField(p.group)};
      if (named) cells.push_back(CsvField(ProvinceChineseName(p.group)));
      if (measures & kMeasureBalance) cells.push_back(FormatAmount(p.balance_fen, unit, false));
      if (measures & kMeasureLoans) cells.push_back(std::to_string(p.loan_count));
      if (measures & kMeasureYoy) {
        cells.push_back(FormatAmount(g.balance_year_ago_fen, unit, false));
        cells.push_back(g.yoy_growth_pct ? ShortestDouble(*g.yoy_growth_pct) : std::string());
      }
      if (measures & kMeasureYtd) cells.push_back(FormatAmount(g.ytd_increase_fen, unit, false));
      out += JoinCsv(cells);
    }
  }
  return out;
}

// One category's JSON object without its newline: SeriesJson's bytes, with
// the points' measures those asked (growth keys after loan_count, named as
// in the report).
std::string SeriesObjectJson(const SeriesAnswer& a, SeriesMeasures measures) {
  std::string text = SeriesJson(a.series);
  LL_CHECK(!text.empty() && text.back() == '\n');
  text.pop_back();
  if (measures == kSeriesMeasuresDefault) return text;
  using Json = nlohmann::ordered_json;
  Json j = Json::parse(text);
  Json& points = j["points"];
  LL_CHECK(points.size() == a.series.points.size());
  for (size_t i = 0; i < points.size(); ++i) {
    Json& point = points[i];
    if (!(measures & kMeasureBalance)) point.erase("balance_fen");
    if (!(measures & kMeasureLoans)) point.erase("loan_count");
    const SeriesGrowth g = GrowthAt(a, i, measures);
    if (measures & kMeasureYoy) {
      point["balance_year_ago_fen"] = g.balance_year_ago_fen;
      point["yoy_growth_pct"] = g.yoy_growth_pct ? Json(*g.yoy_growth_pct) : Json(nullptr);
    }
    if (measures & kMeasureYtd) point["ytd_increase_fen"] = g.ytd_increase_fen;
  }
  return j.dump();
}

std::string SeriesJsonList(const std::vector<SeriesAnswer>& answers, SeriesMeasures measures) {
  LL_CHECK(!answers.empty());
  if (answers.size() == 1) return SeriesObjectJson(answers.front(), measures) + "\n";
  std::string out = "[";
  for (size_t i = 0; i < answers.size(); ++i) {
    if (i > 0) out += ',';
    out += SeriesObjectJson(answers[i], measures);
  }
  return out + "]\n";
}

// ---- Loan -----------------------------------------------------------------

// The attribute fields of docs/data.md, name and CSV/text value, in that order.
std::vector<std::pair<std::string, std::string>> AttributeCells(const LoanAttributes& a) {
  auto flag = [](bool b) { return std::string(b ? "1" : "0"); };
  return {{"borrower_type", std::string(BorrowerTypeName(a.borrower_type))},
          {"enterprise_size", std::string(EnterpriseSizeName(a.enterprise_size))},
          {"industry_code", a.industry_code},
          {"region_code", a.region_code},
          {"term_months", std::to_string(a.term_months)},
          {"credit_line_fen", std::to_string(a.credit_line_fen)},
          {"srdi", flag(a.srdi)},
          {"tech_enterprise", flag(a.tech_enterprise)},
          {"green", flag(a.green)},
          {"elderly_care", flag(a.elderly_care)},
          {"digital_economy", flag(a.digital_economy)}};
}

std::string JoinNames(const std::vector<std::string>& names, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += separator;
    out += names[i];
  }
  return out;
}

std::string LoanTable(const LoanView& loan) {
  std::vector<std::vector<std::string>> rows = {
      {"institution_id", loan.institution_id},
      {"loan_id", loan.loan_id},
      {"last_seq", std::to_string(loan.last_seq)},
      {"last_business_date", FormatDate(loan.last_business_date)},
      {"balance",
       FormatYuan(loan.balance_fen) + " yuan (" + std::to_string(loan.balance_fen) + " fen)"},
  };
  for (auto& [name, value] : AttributeCells(loan.attributes)) {
    if (name == "credit_line_fen") {
      const int64_t fen = loan.attributes.credit_line_fen;
      rows.push_back({"credit_line", FormatYuan(fen) + " yuan (" + value + " fen)"});
    } else {
      rows.push_back({name, value});
    }
  }
  rows.push_back({"categories", JoinNames(LoanCategoryNames(loan), " ")});
  return RenderTable({{"FIELD", false}, {"VALUE", false}}, rows);
}

std::string LoanCsv(const LoanView& loan) {
  std::vector<std::string> header = {"institution_id", "loan_id", "last_seq", "last_business_date",
                                     "balance_fen"};
  std::vector<std::string> values = {
      CsvField(loan.institution_id), CsvField(loan.loan_id), std::to_string(loan.last_seq),
      FormatDate(loan.last_business_date), std::to_string(loan.balance_fen)};
  for (auto& [name, value] : AttributeCells(loan.attributes)) {
    header.push_back(name);
    values.push_back(CsvField(value));
  }
  header.push_back("categories");
  values.push_back(JoinNames(LoanCategoryNames(loan), ";"));
  return JoinCsv(header) + JoinCsv(values);
}

}  // namespace

std::optional<OutputFormat> ParseOutputFormat(std::string_view text) {
  if (text == "table") return OutputFormat::kTable;
  if (text == "csv") return OutputFormat::kCsv;
  if (text == "json") return OutputFormat::kJson;
  return std::nullopt;
}

std::optional<AmountUnit> ParseAmountUnit(std::string_view text) {
  if (text == "fen") return AmountUnit::kFen;
  if (text == "yuan") return AmountUnit::kYuan;
  if (text == "wan") return AmountUnit::kWan;
  if (text == "yi") return AmountUnit::kYi;
  return std::nullopt;
}

std::string_view AmountUnitName(AmountUnit unit) {
  switch (unit) {
    case AmountUnit::kFen:
      return "fen";
    case AmountUnit::kYuan:
      return "yuan";
    case AmountUnit::kWan:
      return "wan";
    case AmountUnit::kYi:
      return "yi";
  }
  LL_CHECK(false);
  return {};
}

std::optional<SeriesMeasures> ParseSeriesMeasures(const std::vector<std::string>& names) {
  SeriesMeasures measures = 0;
  for (const std::string& name : names) {
    if (name == "balance") {
      measures |= kMeasureBalance;
    } else if (name == "loans") {
      measures |= kMeasureLoans;
    } else if (name == "yoy") {
      measures |= kMeasureYoy;
    } else if (name == "ytd") {
      measures |= kMeasureYtd;
    } else if (name == "all") {
      measures |= kSeriesMeasuresAll;
    } else {
      return std::nullopt;
    }
  }
  if (measures == 0) return std::nullopt;
  return measures;
}

std::string FormatReport(const Report& report, OutputFormat format) {
  return FormatReport(report, OutputOptions{.format = format});
}

std::string FormatReport(const Report& report, const OutputOptions& options) {
  switch (options.format) {
    case OutputFormat::kTable:
      return ReportTable(report, TableUnit(options));
    case OutputFormat::kCsv:
      return (options.bom ? std::string(kUtf8Bom) : std::string()) +
             ReportCsv(report, CsvUnit(options));
    case OutputFormat::kJson:
      return ReportJson(report);
  }
  LL_CHECK(false);
  return {};
}

std::string FormatSeries(const Series& series, OutputFormat format) {
  return FormatSeriesAnswers({SeriesAnswer{series, {}}}, kSeriesMeasuresDefault,
                             OutputOptions{.format = format});
}

std::string FormatSeriesAnswers(const std::vector<SeriesAnswer>& answers, SeriesMeasures measures,
                                const OutputOptions& options) {
  LL_CHECK(!answers.empty() && measures != 0);
  switch (options.format) {
    case OutputFormat::kTable:
      return SeriesTable(answers, measures, TableUnit(options));
    case OutputFormat::kCsv:
      return (options.bom ? std::string(kUtf8Bom) : std::string()) +
             SeriesCsv(answers, measures, CsvUnit(options));
    case OutputFormat::kJson:
      return SeriesJsonList(answers, measures);
  }
  LL_CHECK(false);
  return {};
}

std::string FormatLoan(const LoanView& loan, OutputFormat format) {
  return FormatLoan(loan, OutputOptions{.format = format});
}

std::string FormatLoan(const LoanView& loan, const OutputOptions& options) {
  switch (options.format) {
    case OutputFormat::kTable:
      return LoanTable(loan);
    case OutputFormat::kCsv:
      return (options.bom ? std::string(kUtf8Bom) : std::string()) + LoanCsv(loan);
    case OutputFormat::kJson:
      return LoanJson(loan);
  }
  LL_CHECK(false);
  return {};
}

std::string FormatAmount(int64_t fen, AmountUnit unit, bool separators) {
  // Fen per unit and the decimals that show it whole.
  uint64_t divisor = 1;
  size_t decimals = 0;
  switch (unit) {
    case AmountUnit::kFen:
      break;
    case AmountUnit::kYuan:
      divisor = 100;
      decimals = 2;
      break;
    case AmountUnit::kWan:
      divisor = 1'000'000;
      decimals = 6;
      break;
    case AmountUnit::kYi:
      divisor = 10'000'000'000;
      decimals = 10;
      break;
  }
  // The magnitude as unsigned, so that INT64_MIN needs no special case.
  const uint64_t magnitude = fen < 0 ? 0 - static_cast<uint64_t>(fen) : static_cast<uint64_t>(fen);
  const std::string digits = std::to_string(magnitude / divisor);
  std::string out = fen < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (separators && i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  if (decimals > 0) {
    const std::string fraction = std::to_string(magnitude % divisor);
    LL_CHECK(fraction.size() <= decimals);
    out += '.';
    out.append(decimals - fraction.size(), '0');
    out += fraction;
  }
  return out;
}

std::string FormatYuan(int64_t fen) { return FormatAmount(fen, AmountUnit::kYuan, true); }

std::string FormatSubmitCounts(const SubmitCounts& c) {
  return "applied=" + std::to_string(c.applied) + " duplicates=" + std::to_string(c.duplicates) +
         " batches=" + std::to_string(c.batches) + " rejected=" + std::to_string(c.rejected);
}

std::string FormatRejectionLine(std::string_view file, uint64_t line, Reason reason,
                                std::string_view message) {
  std::string out(file);
  out += ':';
  out += std::to_string(line);
  out += ": ";
  out += ReasonName(reason);
  out += ": ";
  out += message.empty() ? ReasonDescription(reason) : message;
  return out;
}

}  // namespace loanledger::client::cli
