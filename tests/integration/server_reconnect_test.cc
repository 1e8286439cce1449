// Exactly once across lost connections (docs/data.md): a TCP proxy between the
// client library and loanledgerd cuts connections in the middle of a
// request and in the middle of an acknowledgement; the client reconnects and
// resends what was not acknowledged, in order; the figures count every
// event exactly once.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <limits>
#include <mutex>
#include <thread>

#include "schema/category.h"
#include "schema/date.h"
#include "tests/integration/server_harness.h"

namespace loanledger::testing {
namespace {

using client::BatchOutcome;

// Forwards 127.0.0.1:port() to 127.0.0.1:target. Connection k follows
// plan[k] (later ones are not cut): after `up` bytes client->server or
// `down` bytes server->client it forwards no more and closes both sides.
class CuttingProxy {
 public:
  struct Cut {
    size_t up = std::numeric_limits<size_t>::max();
    size_t down = std::numeric_limits<size_t>::max();
  };

  CuttingProxy(uint16_t target, std::vector<Cut> plan) : target_(target), plan_(std::move(plan)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    const int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(listen_fd_, 16);
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~CuttingProxy() {
    stop_ = true;
    acceptor_.join();
    close(listen_fd_);
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    for (std::thread& t : pumps_) t.join();
    for (int fd : fds_) close(fd);
  }

  uint16_t port() const { return port_; }
  int connections() const { return connections_; }
  int cuts() const { return cuts_; }

 private:
  void AcceptLoop() {
    while (!stop_) {
      pollfd pfd{listen_fd_, POLLIN, 0};
      if (poll(&pfd, 1, 50) <= 0) continue;
      const int client = accept(listen_fd_, nullptr, nullptr);
      if (client < 0) continue;
      const int server = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(target_);
      if (connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        close(client);
        close(server);
        continue;
      }
      const int k = connections_++;
      const Cut cut = k < static_cast<int>(plan_.size()) ? plan_[k] : Cut{};
      std::lock_guard<std::mutex> lock(mu_);
      fds_.push_back(client);
      fds_.push_back(server);
      pumps_.emplace_back([this, client, server, limit = cut.up] { Pump(client, server, limit); });
      pumps_.emplace_back(
          [this, client, server, limit = cut.down] { Pump(server, client, limit); });
    }
  }

  void Pump(int from, int to, size_t limit) {
    char buf[16384];
    size_t total = 0;
    while (true) {
      const ssize_t k = recv(from, buf, sizeof buf, 0);
      if (k <= 0) break;
      size_t n = static_cast<size_t>(k);
      const bool cut = total + n >= limit;
      if (cut) n = limit - total;
      if (n > 0 && send(to, buf, n, MSG_NOSIGNAL) != static_cast<ssize_t>(n)) break;
      total += n;
      if (cut) {
        ++cuts_;
        break;
      }
    }
    shutdown(from, SHUT_RDWR);
    shutdown(to, SHUT_RDWR);
  }

  const uint16_t target_;
  const std::vector<Cut> plan_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_ = false;
  std::atomic<int> connections_ = 0;
  std::atomic<int> cuts_ = 0;
  std::thread acceptor_;
  std::mutex mu_;  // guards fds_ and pumps_
  std::vector<int> fds_;
  std::vector<std::thread> pumps_;
};

class ServerReconnect : public ServerTest {};

TEST_F(ServerReconnect, DroppedConnectionsThenResendCountEveryEventOnce) {
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  std::string version;
  {
    auto probe = Connect(kTokenB1);
    ASSERT_NE(probe, nullptr);
    version = probe->identity().server_version;
  }
  const size_t hello_ok =
      wire::EncodeHelloOk(1, wire::HelloOkInfo{wire::Role::INSTITUTION, "B0001", version}).size();
  const size_t ack = wire::EncodeAck(2, wire::AckInfo{7, 200, 0}).size();

  // Loans x events per loan, sent seq-major so that every loan's later events
  // travel in later batches: a resend out of order would be a seq gap.
  constexpr int kLoans = 2000;
  constexpr int kEventsPerLoan = 4;
  constexpr size_t kBatchEvents = 200;
  std::vector<LoanEvent> events;
  for (int seq = 1; seq <= kEventsPerLoan; ++seq) {
    for (int l = 0; l < kLoans; ++l) {
      const std::string loan = "X" + std::to_string(l);
      if (seq == 1) {
        events.push_back(
            MakeEvent("B0001", loan, 1, "2024-01-05", EventKind::kDisburse, 1'000'000));
      } else if (seq == 4) {
        events.push_back(MakeEvent("B0001", loan, 4, "2024-04-05", EventKind::kReclassify, 0));
      } else {
        events.push_back(MakeEvent("B0001", loan, static_cast<uint64_t>(seq),
                                   seq == 2 ? "2024-02-05" : "2024-03-05", EventKind::kRepay,
                                   seq * 100'000));
      }
    }
  }
  const size_t batch_frame =
      wire::EncodeSubmitBatch(3, std::span(events).first(kBatchEvents)).size();

  CuttingProxy proxy(server_->port(),
                     {
                         // 1: cut inside the 4th batch's frame (client -> server).
                         CuttingProxy::Cut{.up = 3 * batch_frame + batch_frame / 2},
                         // 2: cut inside the 3rd acknowledgement (server -> client): that batch
                         // and those after it in flight are applied but not acknowledged.
                         CuttingProxy::Cut{.down = hello_ok + 2 * ack + ack / 2},
                         // 3: cut in the middle of a later acknowledgement.
                         CuttingProxy::Cut{.down = hello_ok + 9 * ack + 3},
                     });
  client::ClientOptions options = ClientOptionsFor(*server_, kTokenB1);
  options.port = proxy.port();
  options.batches_in_flight_max = 8;
  options.reconnect_attempts_max = 5;
  auto bank = client::Client::Connect(options);
  ASSERT_TRUE(bank.ok()) << bank.status().ToString();

  size_t next = 0;
  uint64_t applied = 0, duplicates = 0, outcomes = 0;
  Status s = (*bank)->SubmitStream(
      [&](std::vector<LoanEvent>& batch) {
        if (next >= events.size()) return false;
        const size_t n = std::min(kBatchEvents, events.size() - next);
        batch.assign(events.begin() + static_cast<ptrdiff_t>(next),
                     events.begin() + static_cast<ptrdiff_t>(next + n));
        next += n;
        return true;
      },
      [&](uint64_t index, const BatchOutcome& o) {
        EXPECT_EQ(index, outcomes);
        EXPECT_TRUE(o.applied) << "batch " << index << " rejected: "
                               << (o.rejections.empty() ? "" : o.rejections[0].message);
        ++outcomes;
        applied += o.events_applied;
        duplicates += o.events_duplicate;
        return true;
      });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(outcomes, events.size() / kBatchEvents);
  EXPECT_EQ(applied + duplicates, events.size());
  EXPECT_GT(duplicates, 0u) << "no acknowledgement was lost: the test did not test";
  EXPECT_GE(proxy.cuts(), 3);
  EXPECT_GE(proxy.connections(), 4);

  // Exactly once: every loan disbursed 1,000,000 and repaid 200,000 + 300,000.
  auto regulator = Connect(kTokenRegulator);
  ASSERT_NE(regulator, nullptr);
  ReportQuery q;
  q.date = *ParseDate("2024-12-31");
  q.categories = {Category::kTotal};
  Result<Report> r = regulator->QueryReport(q);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows.at(0).loan_count, kLoans);
  EXPECT_EQ(r->rows.at(0).balance_fen, int64_t{kLoans} * 500'000);
  EXPECT_EQ(r->rows.at(0).disbursed_ytd_fen, int64_t{kLoans} * 1'000'000);
  EXPECT_EQ(r->rows.at(0).repaid_ytd_fen, int64_t{kLoans} * 500'000);
  Result<LoanView> last = regulator->QueryLoan("B0001", "X" + std::to_string(kLoans - 1));
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->last_seq, 4u);

  auto admin = Connect(kTokenAdmin);
  ASSERT_NE(admin, nullptr);
  Result<client::VerifyOutcome> v = admin->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->events_replayed, events.size());
  EXPECT_TRUE(v->differences.empty());
}

TEST_F(ServerReconnect, QueriesRetryOnANewConnection) {
  StartServer();
  ASSERT_FALSE(HasFatalFailure());
  // The first connection dies right after HelloOk + a few bytes of the reply.
  std::string version;
  {
    auto probe = Connect(kTokenRegulator);
    ASSERT_NE(probe, nullptr);
    version = probe->identity().server_version;
  }
  const size_t hello_ok =
      wire::EncodeHelloOk(1, wire::HelloOkInfo{wire::Role::REGULATOR, "", version}).size();
  CuttingProxy proxy(server_->port(), {CuttingProxy::Cut{.down = hello_ok + 5}});
  client::ClientOptions options = ClientOptionsFor(*server_, kTokenRegulator);
  options.port = proxy.port();
  auto regulator = client::Client::Connect(options);
  ASSERT_TRUE(regulator.ok()) << regulator.status().ToString();
  ReportQuery q;
  q.date = *ParseDate("2024-12-31");
  Result<Report> r = (*regulator)->QueryReport(q);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows.size(), kCategoryCount);
  EXPECT_EQ(proxy.connections(), 2);
}

}  // namespace
}  // namespace loanledger::testing
