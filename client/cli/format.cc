#include "client/cli/format.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "schema/check.h"

namespace loanledger::client::cli {
namespace {

using Json = nlohmann::ordered_json;  // keys in insertion order = docs/cli.md order

// ---- Tables ---------------------------------------------------------------

struct Column {
  std::string title;
  bool right_aligned;  // numbers right, names left
};

// Renders columns padded to their widest cell, two spaces apart, no
// trailing blanks.
std::string RenderTable(const std::vector<Column>& columns,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(columns.size());
  for (size_t c = 0; c < columns.size(); ++c) widths[c] = columns[c].title.size();
  for (const auto& row : rows) {
    LL_CHECK(row.size() == columns.size());
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  std::string out;
  auto append_row = [&](auto cell_of) {
    std::string line;
    for (size_t c = 0; c < columns.size(); ++c) {
      const std::string& cell = cell_of(c);
      const std::string pad(widths[c] - cell.size(), ' ');
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

// ---- JSON -----------------------------------------------------------------

Json GroupJson(const std::string& group) { return group.empty() ? Json(nullptr) : Json(group); }

std::string DumpJson(const Json& j) { return j.dump() + "\n"; }

std::vector<std::string> CategoryNames(CategoryMask mask) {
  std::vector<std::string> names;
  for (const CategoryRule& rule : CategoryRules()) {
    if (mask & Bit(rule.category)) names.emplace_back(rule.name);
  }
  return names;
}

bool AnyGroup(const std::vector<ReportRow>& rows) {
  return std::any_of(rows.begin(), rows.end(), [](const ReportRow& r) { return !r.group.empty(); });
}

// ---- Report ---------------------------------------------------------------

std::string ReportTable(const Report& report) {
  const bool grouped = AnyGroup(report.rows);
  std::vector<Column> columns = {{"CATEGORY", false}};
  if (grouped) columns.push_back({"GROUP", false});
  for (const char* title : {"BALANCE", "LOANS", "YEAR AGO", "YOY %", "YTD INCREASE",
                            "DISBURSED YTD", "REPAID YTD", "WRITTEN OFF YTD"}) {
    columns.push_back({title, true});
  }
  std::vector<std::vector<std::string>> rows;
  for (const ReportRow& r : report.rows) {
    std::vector<std::string> row = {std::string(CategoryName(r.category))};
    if (grouped) row.push_back(r.group);
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

std::string ReportCsv(const Report& report) {
  std::string out =
      "date,category,group,balance_fen,loan_count,balance_year_ago_fen,yoy_growth_pct,"
      "ytd_increase_fen,disbursed_ytd_fen,repaid_ytd_fen,written_off_ytd_fen\n";
  const std::string date = FormatDate(report.date);
  for (const ReportRow& r : report.rows) {
    out += JoinCsv({date, std::string(CategoryName(r.category)), CsvField(r.group),
                    std::to_string(r.balance_fen), std::to_string(r.loan_count),
                    std::to_string(r.balance_year_ago_fen),
                    r.yoy_growth_pct ? ShortestDouble(*r.yoy_growth_pct) : std::string(),
                    std::to_string(r.ytd_increase_fen), std::to_string(r.disbursed_ytd_fen),
                    std::to_string(r.repaid_ytd_fen), std::to_string(r.written_off_ytd_fen)});
  }
  return out;
}

std::string ReportJson(const Report& report) {
  Json rows = Json::array();
  for (const ReportRow& r : report.rows) {
    Json row;
    row["category"] = CategoryName(r.category);
    row["group"] = GroupJson(r.group);
    row["balance_fen"] = r.balance_fen;
    row["loan_count"] = r.loan_count;
    row["balance_year_ago_fen"] = r.balance_year_ago_fen;
    row["yoy_growth_pct"] = r.yoy_growth_pct ? Json(*r.yoy_growth_pct) : Json(nullptr);
    row["ytd_increase_fen"] = r.ytd_increase_fen;
    row["disbursed_ytd_fen"] = r.disbursed_ytd_fen;
    row["repaid_ytd_fen"] = r.repaid_ytd_fen;
    row["written_off_ytd_fen"] = r.written_off_ytd_fen;
    rows.push_back(std::move(row));
  }
  Json j;
  j["date"] = FormatDate(report.date);
  j["rows"] = std::move(rows);
  return DumpJson(j);
}

// ---- Series ---------------------------------------------------------------

std::string SeriesTable(const Series& series) {
  const bool grouped = series.by != GroupBy::kNone;
  std::vector<Column> columns = {{"DATE", false}};
  if (grouped) columns.push_back({"GROUP", false});
  columns.push_back({"BALANCE", true});
  columns.push_back({"LOANS", true});
  std::vector<std::vector<std::string>> rows;
  for (const SeriesPoint& p : series.points) {
    std::vector<std::string> row = {FormatDate(p.date)};
    if (grouped) row.push_back(p.group);
    row.push_back(FormatYuan(p.balance_fen));
    row.push_back(std::to_string(p.loan_count));
    rows.push_back(std::move(row));
  }
  std::string title = "Series of " + std::string(CategoryName(series.category)) + " by " +
                      std::string(StepName(series.step));
  if (grouped) title += ", per " + std::string(GroupByName(series.by));
  return title + " (amounts in yuan)\n" + RenderTable(columns, rows);
}

std::string SeriesCsv(const Series& series) {
  std::string out = "category,date,group,balance_fen,loan_count\n";
  const std::string category(CategoryName(series.category));
  for (const SeriesPoint& p : series.points) {
    out += JoinCsv({category, FormatDate(p.date), CsvField(p.group), std::to_string(p.balance_fen),
                    std::to_string(p.loan_count)});
  }
  return out;
}

std::string SeriesJson(const Series& series) {
  Json points = Json::array();
  for (const SeriesPoint& p : series.points) {
    Json point;
    point["date"] = FormatDate(p.date);
    point["group"] = GroupJson(p.group);
    point["balance_fen"] = p.balance_fen;
    point["loan_count"] = p.loan_count;
    points.push_back(std::move(point));
  }
  Json j;
  j["category"] = CategoryName(series.category);
  j["step"] = StepName(series.step);
  j["group_by"] = series.by == GroupBy::kNone ? Json(nullptr) : Json(GroupByName(series.by));
  j["points"] = std::move(points);
  return DumpJson(j);
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
  rows.push_back({"categories", JoinNames(CategoryNames(loan.categories), " ")});
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
  values.push_back(JoinNames(CategoryNames(loan.categories), ";"));
  return JoinCsv(header) + JoinCsv(values);
}

std::string LoanJson(const LoanView& loan) {
  const LoanAttributes& a = loan.attributes;
  Json attributes;
  attributes["borrower_type"] = BorrowerTypeName(a.borrower_type);
  attributes["enterprise_size"] = EnterpriseSizeName(a.enterprise_size);
  attributes["industry_code"] = a.industry_code;
  attributes["region_code"] = a.region_code;
  attributes["term_months"] = a.term_months;
  attributes["credit_line_fen"] = a.credit_line_fen;
  attributes["srdi"] = a.srdi;
  attributes["tech_enterprise"] = a.tech_enterprise;
  attributes["green"] = a.green;
  attributes["elderly_care"] = a.elderly_care;
  attributes["digital_economy"] = a.digital_economy;
  Json j;
  j["institution_id"] = loan.institution_id;
  j["loan_id"] = loan.loan_id;
  j["last_seq"] = loan.last_seq;
  j["last_business_date"] = FormatDate(loan.last_business_date);
  j["balance_fen"] = loan.balance_fen;
  j["attributes"] = std::move(attributes);
  j["categories"] = CategoryNames(loan.categories);
  return DumpJson(j);
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
