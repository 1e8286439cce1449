#include "client/cli/format.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
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

std::string ReportTable(const Report& report) {
  const bool grouped = AnyGroup(report.rows);
  std::vector<Column> columns = {{"CATEGORY", false}};
  const bool named = report.by == GroupBy::kProvince;
  if (grouped) columns.push_back({"GROUP", false});
  if (named) columns.push_back({"NAME", false});
  for (const char* title : {"BALANCE", "LOANS", "YEAR AGO", "YOY %", "YTD INCREASE",
                            "DISBURSED YTD", "REPAID YTD", "WRITTEN OFF YTD"}) {
    columns.push_back({title, true});
  }
  std::vector<std::vector<std::string>> rows;
  for (const ReportRow& r : report.rows) {
    std::vector<std::string> row = {CategoryLabel(r.category, r.category_name)};
    if (grouped) row.push_back(r.group);
    if (named) row.emplace_back(ProvinceChineseName(r.group));
    for (std::string cell : {FormatYuan(r.balance_fen), std::to_string(r.loan_count),
                             FormatYuan(r.balance_year_ago_fen), FormatPct(r.yoy_growth_pct),
                             FormatYuan(r.ytd_increase_fen), FormatYuan(r.disbursed_ytd_fen),
                             FormatYuan(r.repaid_ytd_fen), FormatYuan(r.written_off_ytd_fen)}) {
      row.push_back(std::move(cell));
    }
    rows.push_back(std::move(row));
  }
  return "Report as of " + FormatDate(report.date) + " (amounts in yuan)\n" +
         RenderTable(columns, rows);
}

// By province, a group_name column follows group.
std::string ReportCsv(const Report& report) {
  const bool named = report.by == GroupBy::kProvince;
  std::string out = named ? "date,category,group,group_name," : "date,category,group,";
  out +=
      "balance_fen,loan_count,balance_year_ago_fen,yoy_growth_pct,"
      "ytd_increase_fen,disbursed_ytd_fen,repaid_ytd_fen,written_off_ytd_fen\n";
  const std::string date = FormatDate(report.date);
  for (const ReportRow& r : report.rows) {
    std::string group = CsvField(r.group);
    if (named) group += "," + CsvField(ProvinceChineseName(r.group));
    out += JoinCsv({date, CategoryLabel(r.category, r.category_name), group,
                    std::to_string(r.balance_fen), std::to_string(r.loan_count),
                    std::to_string(r.balance_year_ago_fen),
                    r.yoy_growth_pct ? ShortestDouble(*r.yoy_growth_pct) : std::string(),
                    std::to_string(r.ytd_increase_fen), std::to_string(r.disbursed_ytd_fen),
                    std::to_string(r.repaid_ytd_fen), std::to_string(r.written_off_ytd_fen)});
  }
  return out;
}

// ---- Series ---------------------------------------------------------------

std::string SeriesTable(const Series& series) {
  const bool grouped = series.by != GroupBy::kNone;
  std::vector<Column> columns = {{"DATE", false}};
  const bool named = series.by == GroupBy::kProvince;
  if (grouped) columns.push_back({"GROUP", false});
  if (named) columns.push_back({"NAME", false});
  columns.push_back({"BALANCE", true});
  columns.push_back({"LOANS", true});
  std::vector<std::vector<std::string>> rows;
  for (const SeriesPoint& p : series.points) {
    std::vector<std::string> row = {FormatDate(p.date)};
    if (grouped) row.push_back(p.group);
    if (named) row.emplace_back(ProvinceChineseName(p.group));
    row.push_back(FormatYuan(p.balance_fen));
    row.push_back(std::to_string(p.loan_count));
    rows.push_back(std::move(row));
  }
  std::string title = "Series of " + CategoryLabel(series.category, series.category_name) + " by " +
                      std::string(StepName(series.step));
  if (grouped) title += ", per " + std::string(GroupByName(series.by));
  return title + " (amounts in yuan)\n" + RenderTable(columns, rows);
}

// By province, a group_name column follows group.
std::string SeriesCsv(const Series& series) {
  const bool named = series.by == GroupBy::kProvince;
  std::string out = named ? "category,date,group,group_name,balance_fen,loan_count\n"
                          : "category,date,group,balance_fen,loan_count\n";
  const std::string category = CategoryLabel(series.category, series.category_name);
  for (const SeriesPoint& p : series.points) {
    std::string group = CsvField(p.group);
    if (named) group += "," + CsvField(ProvinceChineseName(p.group));
    out += JoinCsv({category, FormatDate(p.date), group, std::to_string(p.balance_fen),
                    std::to_string(p.loan_count)});
  }
  return out;
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

std::string FormatReport(const Report& report, OutputFormat format) {
  switch (format) {
    case OutputFormat::kTable:
      return ReportTable(report);
    case OutputFormat::kCsv:
      return ReportCsv(report);
    case OutputFormat::kJson:
      return ReportJson(report);
  }
  LL_CHECK(false);
  return {};
}

std::string FormatSeries(const Series& series, OutputFormat format) {
  switch (format) {
    case OutputFormat::kTable:
      return SeriesTable(series);
    case OutputFormat::kCsv:
      return SeriesCsv(series);
    case OutputFormat::kJson:
      return SeriesJson(series);
  }
  LL_CHECK(false);
  return {};
}

std::string FormatLoan(const LoanView& loan, OutputFormat format) {
  switch (format) {
    case OutputFormat::kTable:
      return LoanTable(loan);
    case OutputFormat::kCsv:
      return LoanCsv(loan);
    case OutputFormat::kJson:
      return LoanJson(loan);
  }
  LL_CHECK(false);
  return {};
}

std::string FormatYuan(int64_t fen) {
  // The magnitude as unsigned, so that INT64_MIN needs no special case.
  const uint64_t magnitude = fen < 0 ? 0 - static_cast<uint64_t>(fen) : static_cast<uint64_t>(fen);
  const std::string digits = std::to_string(magnitude / 100);
  std::string out = fen < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  const auto cents = static_cast<unsigned>(magnitude % 100);
  out += '.';
  out += static_cast<char>('0' + cents / 10);
  out += static_cast<char>('0' + cents % 10);
  return out;
}

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
