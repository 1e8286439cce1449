// /metrics over HTTP on the metrics port (docs/metrics.md): every family exists
// from start-up, values follow activity, and deploy/'s checker passes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <thread>

#include "schema/date.h"
#include "tests/integration/server_harness.h"

namespace loanledger::testing {
namespace {

using namespace std::chrono_literals;

class ServerMetrics : public ServerTest {};

// Value of the first sample line starting with `series` ("name{labels}").
double Sample(const std::string& metrics, const std::string& series) {
  const size_t at = metrics.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::strtod(metrics.c_str() + at + series.size() + 2, nullptr);
}

TEST_F(ServerMetrics, EverySpecFamilyIsExportedFromStartUp) {
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  const std::string metrics = FetchMetrics(server_->metrics_port());
  ASSERT_NE(metrics.find("200 OK"), std::string::npos) << metrics.substr(0, 200);
  const std::vector<std::pair<std::string, std::string>> families = {
      {"loanledger_events_applied_total", "counter"},
      {"loanledger_events_duplicate_total", "counter"},
      {"loanledger_events_rejected_total", "counter"},
      {"loanledger_batches_total", "counter"},
      {"loanledger_auth_failures_total", "counter"},
      {"loanledger_connections_total", "counter"},
      {"loanledger_connections_active", "gauge"},
      {"loanledger_inflight_batches", "gauge"},
      {"loanledger_batch_apply_seconds", "histogram"},
      {"loanledger_ack_latency_seconds", "histogram"},
      {"loanledger_query_seconds", "histogram"},
      {"loanledger_category_balance_yuan", "gauge"},
      {"loanledger_category_loans", "gauge"},
      {"loanledger_rocksdb_memtable_bytes", "gauge"},
      {"loanledger_rocksdb_pending_compaction_bytes", "gauge"},
      {"loanledger_rocksdb_live_sst_bytes", "gauge"},
      {"loanledger_rocksdb_block_cache_usage_bytes", "gauge"},
      {"loanledger_rocksdb_write_stall", "gauge"},
      {"loanledger_build_info", "gauge"},
  };
  for (const auto& [name, type] : families) {
    EXPECT_NE(metrics.find("# TYPE " + name + " " + type + "\n"), std::string::npos)
        << name << " missing or not a " << type;
  }
  for (const char* label :
       {"result=\"applied\"", "result=\"rejected\"", "result=\"failed\"", "reason=\"SEQ_GAP\"",
        "reason=\"OVERDRAW\"", "kind=\"report\"", "kind=\"series\"", "kind=\"loan\"",
        "category=\"MANUFACTURING_MLT\",province=\"31\""}) {
    EXPECT_NE(metrics.find(label), std::string::npos) << label;
  }
  EXPECT_TRUE(
      std::regex_search(metrics, std::regex(R"(loanledger_build_info\{version="[^"]+"\} 1)")));
}

TEST_F(ServerMetrics, ValuesFollowActivity) {
  StartServer({"--metrics-refresh-ms", "100"});
  ASSERT_FALSE(HasFatalFailure());
  auto bank = Connect(kTokenB1);
  ASSERT_NE(bank, nullptr);
  ASSERT_TRUE(
      bank->Submit({MakeEvent("B0001", "M1", 1, "2024-01-05", EventKind::kDisburse, 12345600),
                    MakeEvent("B0001", "M2", 1, "2024-01-05", EventKind::kDisburse, 100)})
          ->applied);
  ASSERT_TRUE(
      bank->Submit({MakeEvent("B0001", "M1", 1, "2024-01-05", EventKind::kDisburse, 1)})->applied);
  ASSERT_FALSE(
      bank->Submit({MakeEvent("B0001", "M1", 9, "2024-01-05", EventKind::kRepay, 1)})->applied);
  ReportQuery q;
  q.date = *ParseDate("2024-12-31");
  ASSERT_TRUE(bank->QueryReport(q).ok());

  std::string metrics;
  for (int i = 0; i < 40; ++i) {  // gauges refresh every 100 ms here
    metrics = FetchMetrics(server_->metrics_port());
    if (Sample(metrics, "loanledger_category_loans{category=\"TOTAL\",province=\"31\"}") == 2)
      break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(Sample(metrics, "loanledger_events_applied_total"), 2);
  EXPECT_EQ(Sample(metrics, "loanledger_events_duplicate_total"), 1);
  EXPECT_EQ(Sample(metrics, "loanledger_events_rejected_total{reason=\"SEQ_GAP\"}"), 1);
  EXPECT_EQ(Sample(metrics, "loanledger_batches_total{result=\"applied\"}"), 2);
  EXPECT_EQ(Sample(metrics, "loanledger_batches_total{result=\"rejected\"}"), 1);
  EXPECT_EQ(Sample(metrics, "loanledger_connections_total"), 1);
  EXPECT_EQ(Sample(metrics, "loanledger_connections_active"), 1);
  EXPECT_EQ(Sample(metrics, "loanledger_inflight_batches"), 0);
  EXPECT_EQ(Sample(metrics, "loanledger_ack_latency_seconds_count"), 3);
  EXPECT_EQ(Sample(metrics, "loanledger_batch_apply_seconds_count"), 3);
  EXPECT_EQ(Sample(metrics, "loanledger_query_seconds_count{kind=\"report\"}"), 1);
  EXPECT_EQ(Sample(metrics, "loanledger_category_loans{category=\"TOTAL\",province=\"31\"}"), 2);
  EXPECT_DOUBLE_EQ(
      Sample(metrics, "loanledger_category_balance_yuan{category=\"TOTAL\",province=\"31\"}"),
      123457.0);
  EXPECT_GT(Sample(metrics, "loanledger_data_disk_size_bytes"), 0);
}

// The loanledger_report_* gauges equal the report as of the latest business
// date, nationally and by province, also after a late event dated in the
// past (issue 20).
// A value as the text exposition carries it: prometheus-cpp writes 16
// significant digits (a growth percentage can need 17; money here has fewer).
std::string Fmt(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.16g", v);
  return buf;
}

std::string Name(const ReportRow& r) {
  return r.category_name.empty() ? std::string(CategoryName(r.category)) : r.category_name;
}

void ExpectGaugesEqualReport(const std::string& metrics, const Report& national,
                             const Report& by_province) {
  const auto check = [&](const std::string& prefix, const std::string& labels, const ReportRow& r) {
    const auto yuan = [](int64_t fen) { return static_cast<double>(fen) / 100.0; };
    const std::vector<std::pair<std::string, double>> want = {
        {"balance_yuan", yuan(r.balance_fen)},
        {"loans", static_cast<double>(r.loan_count)},
        {"balance_year_ago_yuan", yuan(r.balance_year_ago_fen)},
        {"ytd_increase_yuan", yuan(r.ytd_increase_fen)},
        {"disbursed_ytd_yuan", yuan(r.disbursed_ytd_fen)},
        {"repaid_ytd_yuan", yuan(r.repaid_ytd_fen)},
        {"written_off_ytd_yuan", yuan(r.written_off_ytd_fen)}};
    for (const auto& [measure, v] : want) {
      const std::string series = prefix + measure + "{" + labels + "}";
      EXPECT_EQ(Fmt(Sample(metrics, series)), Fmt(v)) << series;
    }
    const std::string growth = prefix + "yoy_growth_percent{" + labels + "}";
    if (r.yoy_growth_pct) {
      EXPECT_EQ(Fmt(Sample(metrics, growth)), Fmt(*r.yoy_growth_pct)) << growth;
    } else {
      EXPECT_TRUE(std::isnan(Sample(metrics, growth))) << growth;
    }
  };
  ASSERT_FALSE(national.rows.empty());
  for (const ReportRow& r : national.rows) {
    check("loanledger_report_", "category=\"" + Name(r) + "\"", r);
  }
  ASSERT_FALSE(by_province.rows.empty());
  for (const ReportRow& r : by_province.rows) {
    check("loanledger_report_province_",
          "category=\"" + Name(r) + "\",province=\"" + r.group + "\"", r);
  }
}

TEST_F(ServerMetrics, ReportGaugesEqualTheReportAsOfTheLatestBusinessDate) {
  StartServer({"--metrics-refresh-ms", "50"});
  ASSERT_FALSE(HasFatalFailure());
  // Empty: date 0, every category at 0, growth NaN.
  std::string metrics = FetchMetrics(server_->metrics_port());
  EXPECT_EQ(Sample(metrics, "loanledger_report_date_timestamp_seconds"), 0);
  EXPECT_EQ(Sample(metrics, "loanledger_report_balance_yuan{category=\"TOTAL\"}"), 0);
  EXPECT_TRUE(std::isnan(Sample(metrics,
                                "loanledger_report_province_yoy_growth_percent{category=\"TOTAL\","
                                "province=\"31\"}")));

  auto bank = Connect(kTokenB1);
  auto regulator = Connect(kTokenRegulator);
  ASSERT_NE(bank, nullptr);
  ASSERT_NE(regulator, nullptr);
  ASSERT_TRUE(
      bank->Submit({MakeEvent("B0001", "M1", 1, "2023-05-05", EventKind::kDisburse, 30000001),
                    MakeEvent("B0001", "M1", 2, "2024-02-10", EventKind::kRepay, 1234567),
                    MakeEvent("B0001", "M2", 1, "2024-06-30", EventKind::kDisburse, 777)})
          ->applied);
  // Gauges as of `date` once the refresh caught up, then the report of that date.
  const auto settle = [&](std::string_view date) {
    const double want = static_cast<double>(*ParseDate(date)) * 86400.0;
    for (int i = 0; i < 100; ++i) {
      metrics = FetchMetrics(server_->metrics_port());
      if (Sample(metrics, "loanledger_report_date_timestamp_seconds") == want) break;
      std::this_thread::sleep_for(50ms);
    }
    std::this_thread::sleep_for(200ms);  // a refresh that began before the last batch has ended
    metrics = FetchMetrics(server_->metrics_port());
    EXPECT_EQ(Sample(metrics, "loanledger_report_date_timestamp_seconds"), want);
    ReportQuery q;
    q.date = *ParseDate(date);
    Result<Report> national = regulator->QueryReport(q);
    q.by = GroupBy::kProvince;
    Result<Report> by_province = regulator->QueryReport(q);
    ASSERT_TRUE(national.ok() && by_province.ok());
    ExpectGaugesEqualReport(metrics, *national, *by_province);
  };
  settle("2024-06-30");
  EXPECT_EQ(Sample(metrics, "loanledger_report_balance_year_ago_yuan{category=\"TOTAL\"}"),
            300000.01);
  // A late correction dated in the past changes last year's and this year's
  // figures, not the date.
  ASSERT_TRUE(
      bank->Submit({MakeEvent("B0001", "M3", 1, "2023-01-10", EventKind::kDisburse, 5000000),
                    MakeEvent("B0001", "M3", 2, "2024-03-01", EventKind::kRepay, 100)})
          ->applied);
  for (int i = 0; i < 100; ++i) {
    metrics = FetchMetrics(server_->metrics_port());
    if (Sample(metrics, "loanledger_report_balance_year_ago_yuan{category=\"TOTAL\"}") == 350000.01)
      break;
    std::this_thread::sleep_for(50ms);
  }
  settle("2024-06-30");
  EXPECT_EQ(Sample(metrics, "loanledger_report_balance_year_ago_yuan{category=\"TOTAL\"}"),
            350000.01);
}

TEST_F(ServerMetrics, DeployCheckerFindsEveryFamilyDeployNeeds) {
  if (std::system("python3 --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "no python3";
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  const std::string script = SourceDir() + "/tests/deploy/check_metrics_exported.py";
  if (std::system(("test -f " + script).c_str()) != 0) GTEST_SKIP() << "no " << script;
  const std::string out = dir_.Sub("check.out");
  const std::string cmd = "python3 " + script +
                          " http://127.0.0.1:" + std::to_string(server_->metrics_port()) +
                          "/metrics --wait 5 > " + out + " 2>&1";
  const int status = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFile(out);
}

}  // namespace
}  // namespace loanledger::testing
