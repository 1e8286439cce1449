// Operational bounds (docs/protocol.md): connection cap, hello and idle timeouts,
// backpressure with a per-connection in-flight bound far below the client's
// pipeline.
#include <gtest/gtest.h>

#include <thread>

#include "schema/category.h"
#include "schema/date.h"
#include "tests/integration/server_harness.h"

namespace loanledger::testing {
namespace {

using namespace std::chrono_literals;

class ServerLimits : public ServerTest {};

TEST_F(ServerLimits, ConnectionCapRefusesTheExtraConnection) {
  StartServer({"--connections-max", "2"});
  ASSERT_FALSE(HasFatalFailure());
  auto a = Connect(kTokenB1);
  auto b = Connect(kTokenB2);
  ASSERT_TRUE(a && b);
  auto c = client::Client::Connect(ClientOptionsFor(*server_, kTokenRegulator));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Status::Code::kResourceExhausted) << c.status().ToString();
  a.reset();
  // The server notices the close, then has room again.
  bool connected = false;
  for (int i = 0; i < 50 && !connected; ++i) {
    connected = client::Client::Connect(ClientOptionsFor(*server_, kTokenRegulator)).ok();
    if (!connected) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(connected);
  EXPECT_TRUE(b->QueryLoan("B0002", "x").status().code() == Status::Code::kNotFound);
}

TEST_F(ServerLimits, SilentConnectionsTimeOut) {
  StartServer({"--hello-timeout-ms", "300", "--idle-timeout-ms", "600"});
  ASSERT_FALSE(HasFatalFailure());
  RawConnection silent(server_->port());
  RawConnection idle(server_->port());
  ASSERT_TRUE(idle.WriteFrame(wire::EncodeHello(1, kTokenB1, "raw")));
  ASSERT_TRUE(idle.ReadFrame(5s).ok());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(silent.WaitClosed(5s)) << "no Hello, still open";
  EXPECT_TRUE(idle.WaitClosed(5s)) << "idle, still open";
  EXPECT_GE(std::chrono::steady_clock::now() - start, 500ms);
  // A client that keeps talking is not idle.
  auto bank = Connect(kTokenB1);
  ASSERT_NE(bank, nullptr);
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(bank->QueryLoan("B0001", "x").status().code(), Status::Code::kNotFound);
  }
}

TEST_F(ServerLimits, BackpressureDoesNotLoseOrReorderBatches) {
  // The server reads at most 2 requests and 64 KiB ahead per connection; the
  // client pipelines 32 batches.
  StartServer({"--inflight-requests-max", "2", "--inflight-bytes-max", "65536",
               "--writer-queue-batches-max", "2", "--group-batches-max", "2"});
  ASSERT_FALSE(HasFatalFailure());
  client::ClientOptions options = ClientOptionsFor(*server_, kTokenB1);
  options.batches_in_flight_max = 32;
  auto bank = client::Client::Connect(options);
  ASSERT_TRUE(bank.ok());
  // A second client at the same time shares the writer queue.
  auto other = client::Client::Connect(ClientOptionsFor(*server_, kTokenB2));
  ASSERT_TRUE(other.ok());
  std::thread second([&] {
    for (int i = 0; i < 20; ++i) {
      auto r = (*other)->Submit(
          {MakeEvent("B0002", "O" + std::to_string(i), 1, "2024-01-05", EventKind::kDisburse, 1)});
      EXPECT_TRUE(r.ok() && r->applied);
    }
  });
  constexpr int kBatches = 120;
  constexpr int kEvents = 300;  // ~40 KB a frame: the byte bound bites too
  int made = 0;
  uint64_t expected_index = 0;
  Status s = (*bank)->SubmitStream(
      [&](std::vector<LoanEvent>& batch) {
        if (made == kBatches) return false;
        // Loan k gets seq made+1: any reordering would be a seq gap.
        for (int k = 0; k < kEvents; ++k) {
          batch.push_back(MakeEvent(
              "B0001", "K" + std::to_string(k), static_cast<uint64_t>(made) + 1, "2024-01-05",
              made == 0 ? EventKind::kDisburse : EventKind::kReclassify, made == 0 ? 1000 : 0));
        }
        ++made;
        return true;
      },
      [&](uint64_t index, const client::BatchOutcome& o) {
        EXPECT_EQ(index, expected_index++);
        EXPECT_TRUE(o.applied) << (o.rejections.empty() ? "" : o.rejections[0].message);
        return true;
      });
  second.join();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(expected_index, static_cast<uint64_t>(kBatches));
  Result<LoanView> k0 = (*bank)->QueryLoan("B0001", "K0");
  ASSERT_TRUE(k0.ok());
  EXPECT_EQ(k0->last_seq, static_cast<uint64_t>(kBatches));
}

}  // namespace
}  // namespace loanledger::testing
