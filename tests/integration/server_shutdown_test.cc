// SIGTERM during a submission (docs/data.md, docs/operations.md): the server exits 0, every
// acknowledged batch is there after a restart, every other batch is wholly
// applied or wholly absent, and --verify finds the store consistent.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "schema/category.h"
#include "schema/date.h"
#include "tests/integration/server_harness.h"

namespace loanledger::testing {
namespace {

using namespace std::chrono_literals;

class ServerShutdown : public ServerTest {};

std::string LoanOf(uint64_t batch, int i) {
  return "S" + std::to_string(batch) + "-" + std::to_string(i);
}

TEST_F(ServerShutdown, SigtermDuringSubmissionKeepsEveryAcknowledgedBatch) {
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  constexpr uint64_t kBatchesMax = 100000;  // far more than gets through
  constexpr int kEventsPerBatch = 100;

  client::ClientOptions options = ClientOptionsFor(*server_, kTokenB1);
  options.batches_in_flight_max = 8;
  options.reconnect_attempts_max = 1;
  auto connected = client::Client::Connect(options);
  ASSERT_TRUE(connected.ok()) << connected.status().ToString();
  std::unique_ptr<client::Client> bank = std::move(*connected);

  std::mutex mu;
  std::set<uint64_t> acked;  // guarded by mu
  std::atomic<uint64_t> sent = 0;
  Status stream_status;
  std::thread submitter([&] {
    uint64_t next = 0;
    stream_status = bank->SubmitStream(
        [&](std::vector<LoanEvent>& batch) {
          if (next == kBatchesMax) return false;
          for (int i = 0; i < kEventsPerBatch; ++i) {
            batch.push_back(
                MakeEvent("B0001", LoanOf(next, i), 1, "2024-01-05", EventKind::kDisburse, 100));
          }
          ++next;
          sent = next;
          return true;
        },
        [&](uint64_t index, const client::BatchOutcome& o) {
          EXPECT_TRUE(o.applied);
          std::lock_guard<std::mutex> lock(mu);
          acked.insert(index);
          return true;
        });
  });
  // Let some batches through, then stop the server under load.
  for (int i = 0; i < 2000; ++i) {  // up to 20 s on a loaded machine
    {
      std::lock_guard<std::mutex> lock(mu);
      if (acked.size() >= 30) break;
    }
    std::this_thread::sleep_for(10ms);
  }
  const int code = server_->Stop(SIGTERM);
  submitter.join();
  EXPECT_EQ(code, 0) << server_->Log();
  EXPECT_FALSE(stream_status.ok()) << "the stream should have lost its server";
  EXPECT_EQ(stream_status.code(), Status::Code::kUnavailable) << stream_status.ToString();
  std::set<uint64_t> acknowledged;
  {
    std::lock_guard<std::mutex> lock(mu);
    acknowledged = acked;
  }
  ASSERT_GE(acknowledged.size(), 30u);
  bank.reset();

  // Restart on the same data.
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  auto regulator = Connect(kTokenRegulator);
  ASSERT_NE(regulator, nullptr);
  uint64_t whole = 0;
  for (uint64_t b = 0; b < sent.load(); ++b) {
    const bool first = regulator->QueryLoan("B0001", LoanOf(b, 0)).ok();
    const bool last = regulator->QueryLoan("B0001", LoanOf(b, kEventsPerBatch - 1)).ok();
    EXPECT_EQ(first, last) << "batch " << b << " is partly applied";
    if (acknowledged.count(b) > 0) {
      EXPECT_TRUE(first) << "acknowledged batch " << b << " is missing after restart";
    }
    whole += first ? 1 : 0;
  }
  EXPECT_GE(whole, acknowledged.size());
  ReportQuery q;
  q.date = *ParseDate("2024-12-31");
  q.categories = {Category::kTotal};
  Result<Report> r = regulator->QueryReport(q);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rows.at(0).loan_count, static_cast<int64_t>(whole) * kEventsPerBatch);
  regulator.reset();
  StopServer();

  const std::string out = dir_.Sub("verify.out");
  const int status = std::system((std::string(LOANLEDGERD_PATH) + " --verify --data " +
                                  dir_.Sub("data") + " > " + out + " 2>&1")
                                     .c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFile(out);
}

TEST_F(ServerShutdown, SigintStopsAnIdleServerWithExitZero) {
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  auto bank = Connect(kTokenB1);  // an idle open connection must not hold shutdown
  ASSERT_NE(bank, nullptr);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server_->Stop(SIGINT), 0) << server_->Log();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 8s);
}

}  // namespace
}  // namespace loanledger::testing
