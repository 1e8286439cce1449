// Submit -> durable ack -> report / series / loan through the client
// library against the real loanledgerd; duplicates, rejections, pipelining,
// admin verify and stats.
#include <gtest/gtest.h>

#include "schema/category.h"
#include "schema/date.h"
#include "tests/integration/server_harness.h"

namespace loanledger::testing {
namespace {

using client::BatchOutcome;

Day D(std::string_view text) { return *ParseDate(text); }

class ServerRoundTrip : public ServerTest {};

TEST_F(ServerRoundTrip, SubmitThenReportSeriesAndLoan) {
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  auto bank = Connect(kTokenB1);
  ASSERT_NE(bank, nullptr);
  EXPECT_EQ(bank->identity().role, client::Role::kInstitution);
  EXPECT_EQ(bank->identity().institution_id, "B0001");
  EXPECT_FALSE(bank->identity().server_version.empty());

  const std::vector<LoanEvent> batch = {
      MakeEvent("B0001", "L1", 1, "2024-01-05", EventKind::kDisburse, 1'000'000),
      MakeEvent("B0001", "L2", 1, "2024-01-10", EventKind::kDisburse, 2'000'000),
      MakeEvent("B0001", "L1", 2, "2024-02-01", EventKind::kRepay, 300'000),
  };
  Result<BatchOutcome> first = bank->Submit(batch);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->applied);
  EXPECT_GE(first->batch_no, 1u);
  EXPECT_EQ(first->events_applied, 3u);
  EXPECT_EQ(first->events_duplicate, 0u);

  // Resending is safe: every event is a duplicate.
  Result<BatchOutcome> again = bank->Submit(batch);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->applied);
  EXPECT_EQ(again->events_applied, 0u);
  EXPECT_EQ(again->events_duplicate, 3u);

  ReportQuery rq;
  rq.date = D("2024-03-31");
  rq.categories = {Category::kTotal, Category::kManufacturing};
  Result<Report> report = bank->QueryReport(rq);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->date, rq.date);
  ASSERT_EQ(report->rows.size(), 2u);
  for (const ReportRow& row : report->rows) {
    EXPECT_EQ(row.group, "");
    EXPECT_EQ(row.balance_fen, 2'700'000);
    EXPECT_EQ(row.loan_count, 2);
    EXPECT_EQ(row.balance_year_ago_fen, 0);
    EXPECT_FALSE(row.yoy_growth_pct.has_value());
    EXPECT_EQ(row.ytd_increase_fen, 2'700'000);
    EXPECT_EQ(row.disbursed_ytd_fen, 3'000'000);
    EXPECT_EQ(row.repaid_ytd_fen, 300'000);
    EXPECT_EQ(row.written_off_ytd_fen, 0);
  }

  SeriesQuery sq;
  sq.category = Category::kTotal;
  sq.from = D("2024-01-01");
  sq.to = D("2024-03-31");
  sq.step = Step::kMonth;
  Result<Series> series = bank->QuerySeries(sq);
  ASSERT_TRUE(series.ok()) << series.status().ToString();
  ASSERT_EQ(series->points.size(), 3u);
  EXPECT_EQ(series->points[0].date, D("2024-01-31"));
  EXPECT_EQ(series->points[0].balance_fen, 3'000'000);
  EXPECT_EQ(series->points[1].date, D("2024-02-29"));
  EXPECT_EQ(series->points[1].balance_fen, 2'700'000);
  EXPECT_EQ(series->points[2].balance_fen, 2'700'000);
  EXPECT_EQ(series->points[2].loan_count, 2);

  Result<LoanView> loan = bank->QueryLoan("B0001", "L1");
  ASSERT_TRUE(loan.ok()) << loan.status().ToString();
  EXPECT_EQ(loan->institution_id, "B0001");
  EXPECT_EQ(loan->loan_id, "L1");
  EXPECT_EQ(loan->last_seq, 2u);
  EXPECT_EQ(loan->last_business_date, D("2024-02-01"));
  EXPECT_EQ(loan->balance_fen, 700'000);
  EXPECT_EQ(loan->attributes, batch[2].attributes);
  EXPECT_TRUE(loan->categories & Bit(Category::kTotal));
  EXPECT_TRUE(loan->categories & Bit(Category::kManufacturing));

  Result<LoanView> missing = bank->QueryLoan("B0001", "NOPE");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
}

TEST_F(ServerRoundTrip, RejectedBatchNamesEachBadEventAndAppliesNothing) {
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  auto bank = Connect(kTokenB1);
  ASSERT_NE(bank, nullptr);
  ASSERT_TRUE(
      bank->Submit({MakeEvent("B0001", "L1", 1, "2024-01-05", EventKind::kDisburse, 500)}).ok());

  LoanEvent bad_amount = MakeEvent("B0001", "L3", 1, "2024-01-05", EventKind::kDisburse, 0);
  Result<BatchOutcome> r = bank->Submit({
      MakeEvent("B0001", "L2", 1, "2024-01-05", EventKind::kDisburse, 100),  // fine alone
      MakeEvent("B0001", "L1", 5, "2024-01-06", EventKind::kRepay, 100),     // gap: last is 1
      bad_amount,
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->applied);
  ASSERT_EQ(r->rejections.size(), 2u);
  EXPECT_EQ(r->rejections[0].index, 1u);
  EXPECT_EQ(r->rejections[0].reason, Reason::kSeqGap);
  EXPECT_FALSE(r->rejections[0].message.empty());
  EXPECT_EQ(r->rejections[1].index, 2u);
  EXPECT_EQ(r->rejections[1].reason, Reason::kBadAmount);

  Result<LoanView> l2 = bank->QueryLoan("B0001", "L2");
  EXPECT_EQ(l2.status().code(), Status::Code::kNotFound) << "a rejected batch applied an event";
}

TEST_F(ServerRoundTrip, PipelinedStreamDeliversOutcomesInOrder) {
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  client::ClientOptions options = ClientOptionsFor(*server_, kTokenB1);
  options.batches_in_flight_max = 8;
  auto connected = client::Client::Connect(options);
  ASSERT_TRUE(connected.ok()) << connected.status().ToString();
  auto& bank = *connected;

  constexpr uint64_t kBatches = 40;
  constexpr uint64_t kEventsPerBatch = 50;
  uint64_t made = 0;
  std::vector<uint64_t> seen;
  uint64_t applied = 0;
  Status s = bank->SubmitStream(
      [&](std::vector<LoanEvent>& batch) {
        if (made == kBatches) return false;
        for (uint64_t i = 0; i < kEventsPerBatch; ++i) {
          batch.push_back(MakeEvent("B0001", "P" + std::to_string(made * kEventsPerBatch + i), 1,
                                    "2024-05-01", EventKind::kDisburse, 1000));
        }
        ++made;
        return true;
      },
      [&](uint64_t index, const BatchOutcome& o) {
        seen.push_back(index);
        EXPECT_TRUE(o.applied);
        applied += o.events_applied;
        return true;
      });
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(seen.size(), kBatches);
  for (uint64_t i = 0; i < kBatches; ++i) EXPECT_EQ(seen[i], i);
  EXPECT_EQ(applied, kBatches * kEventsPerBatch);

  ReportQuery rq;
  rq.date = D("2024-12-31");
  rq.categories = {Category::kTotal};
  Result<Report> report = bank->QueryReport(rq);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->rows.size(), 1u);
  EXPECT_EQ(report->rows[0].loan_count, static_cast<int64_t>(kBatches * kEventsPerBatch));
  EXPECT_EQ(report->rows[0].balance_fen, static_cast<int64_t>(kBatches * kEventsPerBatch * 1000));
}

TEST_F(ServerRoundTrip, StreamStopsSubmittingWhenTheCallbackSaysSo) {
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  client::ClientOptions options = ClientOptionsFor(*server_, kTokenB1);
  options.batches_in_flight_max = 1;  // so that nothing is in flight past the stop
  auto bank = client::Client::Connect(options);
  ASSERT_TRUE(bank.ok());
  uint64_t made = 0;
  uint64_t outcomes = 0;
  Status s = (*bank)->SubmitStream(
      [&](std::vector<LoanEvent>& batch) {
        // Batch 1 is rejected (seq gap); batch 2 must never be sent.
        batch.push_back(MakeEvent("B0001", "S" + std::to_string(made), made == 1 ? 3 : 1,
                                  "2024-05-01", EventKind::kDisburse, 1000));
        ++made;
        return true;
      },
      [&](uint64_t, const BatchOutcome& o) {
        ++outcomes;
        return o.applied;
      });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(outcomes, 2u);
  EXPECT_EQ(made, 2u);
  EXPECT_EQ((*bank)->QueryLoan("B0001", "S2").status().code(), Status::Code::kNotFound);
}

TEST_F(ServerRoundTrip, BatchesInFlightBehindARejectedOneAreSkippedNotApplied) {
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  client::ClientOptions options = ClientOptionsFor(*server_, kTokenB1);
  options.batches_in_flight_max = 16;
  auto bank = client::Client::Connect(options);
  ASSERT_TRUE(bank.ok());
  constexpr uint64_t kBatches = 40;
  uint64_t made = 0;
  std::vector<BatchOutcome> outcomes;
  Status s = (*bank)->SubmitStream(
      [&](std::vector<LoanEvent>& batch) {
        if (made == kBatches) return false;
        // Batch 1 is rejected (seq gap); up to 15 more are in flight behind it.
        batch.push_back(MakeEvent("B0001", "K" + std::to_string(made), made == 1 ? 3 : 1,
                                  "2024-05-01", EventKind::kDisburse, 1000));
        ++made;
        return true;
      },
      [&](uint64_t index, const BatchOutcome& o) {
        EXPECT_EQ(index, outcomes.size());
        outcomes.push_back(o);
        return o.applied;
      });
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_GE(outcomes.size(), 3u) << "nothing was in flight behind the rejection";
  EXPECT_TRUE(outcomes[0].applied);
  EXPECT_FALSE(outcomes[1].applied || outcomes[1].skipped);
  ASSERT_EQ(outcomes[1].rejections.size(), 1u);
  EXPECT_EQ(outcomes[1].rejections[0].reason, Reason::kSeqGap);
  for (size_t i = 2; i < outcomes.size(); ++i) {
    EXPECT_FALSE(outcomes[i].applied) << i;
    EXPECT_TRUE(outcomes[i].skipped) << i;
    EXPECT_TRUE(outcomes[i].rejections.empty()) << i;
  }
  for (uint64_t i = 1; i < made; ++i) {
    EXPECT_EQ((*bank)->QueryLoan("B0001", "K" + std::to_string(i)).status().code(),
              Status::Code::kNotFound)
        << i;
  }
  // Skipped batches count as rejected batches, with no event to blame.
  const std::string metrics = FetchMetrics(server_->metrics_port());
  EXPECT_NE(metrics.find("loanledger_batches_total{result=\"rejected\"} " +
                         std::to_string(outcomes.size() - 1) + "\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("loanledger_events_rejected_total{reason=\"SEQ_GAP\"} 1\n"),
            std::string::npos);
  // A new stream of the same client is not affected.
  Result<BatchOutcome> again =
      (*bank)->Submit({MakeEvent("B0001", "K1", 1, "2024-05-01", EventKind::kDisburse, 1000)});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->applied);
}

TEST_F(ServerRoundTrip, AdminVerifiesAndReadsStats) {
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  auto bank = Connect(kTokenB1);
  ASSERT_NE(bank, nullptr);
  ASSERT_TRUE(
      bank->Submit({MakeEvent("B0001", "L1", 1, "2024-01-05", EventKind::kDisburse, 500)}).ok());
  auto admin = Connect(kTokenAdmin);
  ASSERT_NE(admin, nullptr);
  EXPECT_EQ(admin->identity().role, client::Role::kAdmin);
  Result<client::VerifyOutcome> v = admin->Verify();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->batches_replayed, 1u);
  EXPECT_EQ(v->events_replayed, 1u);
  EXPECT_TRUE(v->differences.empty());
  Result<std::string> stats = admin->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_NE(stats->find("batches_applied 1"), std::string::npos) << *stats;
  EXPECT_NE(stats->find("connections_active"), std::string::npos) << *stats;
  // A new store: no loan at open, so none classified nor read with categories.
  EXPECT_NE(stats->find("open_loans_categories_from_snapshot 0\n"), std::string::npos) << *stats;
  EXPECT_NE(stats->find("open_loans_classified 0\n"), std::string::npos) << *stats;
}

TEST_F(ServerRoundTrip, VerifyFlagChecksTheStoreOffline) {
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  {
    auto bank = Connect(kTokenB1);
    ASSERT_NE(bank, nullptr);
    ASSERT_TRUE(
        bank->Submit({MakeEvent("B0001", "L1", 1, "2024-01-05", EventKind::kDisburse, 500)}).ok());
  }
  StopServer();
  const std::string out = dir_.Sub("verify.out");
  const std::string cmd = std::string(LOANLEDGERD_PATH) + " --verify --data " + dir_.Sub("data") +
                          " > " + out + " 2>&1";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << ReadFile(out);
  EXPECT_NE(ReadFile(out).find("differences=0"), std::string::npos) << ReadFile(out);
}

TEST(ServerFlags, HelpExitsZeroAndBadUsageOne) {
  auto run = [](const std::string& args) {
    const int status =
        std::system((std::string(LOANLEDGERD_PATH) + " " + args + " >/dev/null 2>&1").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  EXPECT_EQ(run("--help"), 0);
  EXPECT_EQ(run("--no-such-flag"), 1);
  EXPECT_EQ(run("--data /tmp/x"), 1);  // --tokens missing
  EXPECT_EQ(run("--data /tmp/x --tokens /tmp/t --listen nonsense"), 1);
}

}  // namespace
}  // namespace loanledger::testing
