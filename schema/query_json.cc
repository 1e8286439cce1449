#include "schema/query_json.h"

#include <nlohmann/json.hpp>

#include "schema/province.h"

namespace loanledger {
namespace {

using Json = nlohmann::ordered_json;  // keys in insertion order = docs/cli.md order

Json GroupJson(const std::string& group) { return group.empty() ? Json(nullptr) : Json(group); }

// `group_name` of a province group; null when the code has no name.
Json ProvinceNameJson(const std::string& group) {
  const std::string_view name = ProvinceChineseName(group);
  return name.empty() ? Json(nullptr) : Json(std::string(name));
}

std::string DumpJson(const Json& j) { return j.dump() + "\n"; }

}  // namespace

std::vector<std::string> CategoryNamesOf(CategoryMask mask) {
  std::vector<std::string> names;
  for (const CategoryRule& rule : CategoryRules()) {
    if (mask & Bit(rule.category)) names.emplace_back(rule.name);
  }
  return names;
}

std::string ReportJson(const Report& report) {
  const bool by_province = report.by == GroupBy::kProvince;
  Json rows = Json::array();
  for (const ReportRow& r : report.rows) {
    Json row;
    row["category"] = CategoryLabel(r.category, r.category_name);
    row["group"] = GroupJson(r.group);
    if (by_province) row["group_name"] = ProvinceNameJson(r.group);
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
  // The rules version the figures were computed under (docs/categories.md),
  // when the answer names it (every server with rules files does).
  if (!report.rules_version.empty()) j["rules_version"] = report.rules_version;
  // A partitioned cluster's answer: the stream position of each partition
  // it reflects (docs/cluster.md).
  if (!report.stream_positions.empty()) j["stream_positions"] = report.stream_positions;
  return DumpJson(j);
}

std::string SeriesJson(const Series& series) {
  const bool by_province = series.by == GroupBy::kProvince;
  Json points = Json::array();
  for (const SeriesPoint& p : series.points) {
    Json point;
    point["date"] = FormatDate(p.date);
    point["group"] = GroupJson(p.group);
    if (by_province) point["group_name"] = ProvinceNameJson(p.group);
    point["balance_fen"] = p.balance_fen;
    point["loan_count"] = p.loan_count;
    points.push_back(std::move(point));
  }
  Json j;
  j["category"] = CategoryLabel(series.category, series.category_name);
  j["step"] = StepName(series.step);
  j["group_by"] = series.by == GroupBy::kNone ? Json(nullptr) : Json(GroupByName(series.by));
  j["points"] = std::move(points);
  if (!series.rules_version.empty()) j["rules_version"] = series.rules_version;
  if (!series.stream_positions.empty()) j["stream_positions"] = series.stream_positions;
  return DumpJson(j);
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
  j["categories"] = LoanCategoryNames(loan);
  return DumpJson(j);
}

}  // namespace loanledger
