// The client library and CLI against a fake cluster (cluster mode,
// docs/protocol.md): in-process fake nodes on 127.0.0.1 speak the frame
// format (schema/wire), one leads, the others answer a SubmitBatch with
// NOT_LEADER naming it (or "" during an election). The client connects to
// the first server that answers, follows the named leader, tries the others
// when the name is empty or unreachable, resends every unacknowledged batch
// in order with its stream id and position, gives up after
// failover_timeout_ms; queries move to the next server; the CLI takes a
// comma-separated --server list and names every server when none answers.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "client/cli/app.h"
#include "client/client.h"
#include "client/csv.h"
#include "client/endpoint.h"
#include "schema/wire.h"

namespace loanledger::client {
namespace {

using Ms = std::chrono::milliseconds;

// A listening socket on 127.0.0.1, port chosen by the kernel.
int ListenLoopback(uint16_t* port, bool listen_too = true) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  if (listen_too) {
    EXPECT_EQ(listen(fd, 16), 0);
  }
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

// An address where nobody listens: the port is bound (so no one else gets
// it) but not listening, so a connect is refused at once.
class ClosedPort {
 public:
  ClosedPort() : fd_(ListenLoopback(&port_, /*listen_too=*/false)) {}
  ~ClosedPort() { close(fd_); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  uint16_t port_ = 0;
  int fd_;
};

class FakeNode;

// What the nodes share: who leads, and the ledger of the partition (the
// exactly-once rule: per-loan last seq).
struct FakeCluster {
  struct Taken {          // one SubmitBatch applied by a leader
    size_t node = 0;      // which node took it
    uint64_t stream = 0;  // SubmitBatch.stream
    uint64_t stream_batch = 0;
    uint32_t applied = 0;
    uint32_t duplicate = 0;
  };
  std::mutex mu;                             // guards everything below
  int leader = -1;                           // index of the leading node; -1 = election
  std::vector<FakeNode*> nodes;              // by index
  std::map<std::string, uint64_t> last_seq;  // loan_id -> last applied seq
  std::vector<Taken> taken;                  // in the order the leaders took them
  uint64_t batch_no = 0;
};

// One fake loanledgerd replica: a thread per connection, frames in and out.
class FakeNode {
 public:
  enum class QueryMode { kAnswer, kDrop, kUnavailable };
  struct Behaviour {
    std::optional<std::string> names;       // NOT_LEADER names this, not the cluster's leader
    int acks_before_deposed = -1;           // as leader: after this many answers it is deposed...
    int successor = -1;                     // ...and this node leads
    bool refuse_hello = false;              // closes the connection instead of HelloOk
    uint64_t reject_position = UINT64_MAX;  // as leader: rejects the batch at this stream position
    int drop_submits = 0;                   // closes the connection on this many SubmitBatch frames
    QueryMode query = QueryMode::kAnswer;
  };

  FakeNode(FakeCluster& cluster, Behaviour behaviour)
      : cluster_(cluster), behaviour_(std::move(behaviour)) {
    listen_fd_ = ListenLoopback(&port_);
    std::lock_guard<std::mutex> lock(cluster_.mu);
    index_ = cluster_.nodes.size();
    cluster_.nodes.push_back(this);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~FakeNode() {
    stop_ = true;
    acceptor_.join();
    close(listen_fd_);
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    for (std::thread& t : threads_) t.join();
    for (int fd : fds_) close(fd);
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // From now on NOT_LEADER names `leader`.
  void Name(std::string leader) {
    std::lock_guard<std::mutex> lock(cluster_.mu);
    behaviour_.names = std::move(leader);
  }
  int accepts() const { return accepts_; }
  int not_leader_answers() const { return not_leader_; }

 private:
  void AcceptLoop() {
    while (!stop_) {
      pollfd pfd{listen_fd_, POLLIN, 0};
      if (poll(&pfd, 1, 20) <= 0) continue;
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      ++accepts_;
      std::lock_guard<std::mutex> lock(mu_);
      fds_.push_back(fd);
      threads_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  bool ReadExactly(int fd, uint8_t* out, size_t size) {
    while (size > 0) {
      pollfd pfd{fd, POLLIN, 0};
      if (stop_) return false;
      if (poll(&pfd, 1, 20) <= 0) continue;
      const ssize_t n = read(fd, out, size);
      if (n <= 0) return false;
      out += n;
      size -= static_cast<size_t>(n);
    }
    return true;
  }

  static void Write(int fd, const wire::Frame& frame) {
    const uint8_t* p = frame.data();
    size_t left = frame.size();
    while (left > 0) {
      const ssize_t n = send(fd, p, left, MSG_NOSIGNAL);
      if (n <= 0) return;
      p += n;
      left -= static_cast<size_t>(n);
    }
  }

  void Serve(int fd) {
    wire::FrameReader reader(wire::kRequestLimits);
    while (ReadExactly(fd, reader.header(), wire::kFrameHeaderBytes)) {
      if (!reader.OnHeader().ok()) break;
      if (!ReadExactly(fd, reader.body(), reader.body_size())) break;
      Result<const wire::Message*> m = reader.OnBody();
      if (!m.ok()) break;
      if (!Answer(fd, **m)) break;
    }
    shutdown(fd, SHUT_RDWR);  // closed (and joined) by the destructor
  }

  // False to close the connection without an answer.
  bool Answer(int fd, const wire::Message& m) {
    const uint64_t id = m.request_id();
    switch (m.body_type()) {
      case wire::Body::Hello:
        if (behaviour_.refuse_hello) return false;
        Write(fd, wire::EncodeHelloOk(id, {wire::Role::INSTITUTION, "B0001", "fake"}));
        return true;
      case wire::Body::SubmitBatch:
        return AnswerSubmit(fd, id, *m.body_as_SubmitBatch());
      case wire::Body::ReportRequest:
      case wire::Body::StatsRequest:
        if (behaviour_.query == QueryMode::kDrop) return false;
        if (behaviour_.query == QueryMode::kUnavailable) {
          Write(fd, wire::EncodeError(id, wire::ErrorCode::UNAVAILABLE, "catching up"));
          return true;
        }
        if (m.body_type() == wire::Body::StatsRequest) {
          Write(fd, wire::EncodeStatsReply(id, "node " + std::to_string(index_)));
        } else {
          Write(fd, wire::EncodeReportReply(id, Report{}));
        }
        return true;
      default:
        Write(fd, wire::EncodeError(id, wire::ErrorCode::INVALID_ARGUMENT, "not in this fake"));
        return true;
    }
  }

  bool AnswerSubmit(int fd, uint64_t id, const wire::SubmitBatch& batch) {
    if (behaviour_.drop_submits > 0) {
      --behaviour_.drop_submits;
      return false;
    }
    std::unique_lock<std::mutex> lock(cluster_.mu);
    if (cluster_.leader == static_cast<int>(index_) && behaviour_.acks_before_deposed == 0) {
      cluster_.leader = behaviour_.successor;
    }
    if (cluster_.leader != static_cast<int>(index_)) {
      std::string leader = cluster_.leader < 0 ? "" : cluster_.nodes[cluster_.leader]->address();
      if (behaviour_.names) leader = *behaviour_.names;
      lock.unlock();
      ++not_leader_;
      Write(fd, wire::EncodeError(id, wire::ErrorCode::NOT_LEADER, "not the leader", leader));
      return true;
    }
    if (behaviour_.acks_before_deposed > 0) --behaviour_.acks_before_deposed;
    if (batch.stream_batch() == behaviour_.reject_position) {
      lock.unlock();
      const std::vector<wire::RejectionEntry> why = {{0, Reason::kSeqGap, "scripted"}};
      Write(fd, wire::EncodeRejected(id, why));
      return true;
    }
    Result<std::vector<LoanEvent>> events = wire::DecodeSubmitBatch(batch);
    EXPECT_TRUE(events.ok());
    FakeCluster::Taken t{index_, batch.stream(), batch.stream_batch(), 0, 0};
    for (const LoanEvent& e : *events) {
      uint64_t& last = cluster_.last_seq[e.loan_id];
      EXPECT_LE(e.seq, last + 1) << "a gap: batches arrived out of order";
      if (e.seq <= last) {
        ++t.duplicate;
      } else {
        last = e.seq;
        ++t.applied;
      }
    }
    cluster_.taken.push_back(t);
    const uint64_t batch_no = ++cluster_.batch_no;
    lock.unlock();
    Write(fd, wire::EncodeAck(id, {batch_no, t.applied, t.duplicate}));
    return true;
  }

  FakeCluster& cluster_;
  Behaviour behaviour_;  // changed only by this node's connection threads (one at a time in tests)
  size_t index_ = 0;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepts_{0};
  std::atomic<int> not_leader_{0};
  std::thread acceptor_;
  std::mutex mu_;  // guards fds_, threads_
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
};

// Batch b of a stream: events of loan "L<b % loans>", so that every batch
// depends on the one before it for the same loan (a reordering is a gap).
std::vector<LoanEvent> MakeBatch(uint64_t b, size_t loans, size_t events_per_batch) {
  std::vector<LoanEvent> out;
  for (size_t i = 0; i < events_per_batch; ++i) {
    LoanEvent e;
    e.institution_id = "B0001";
    e.loan_id = "L" + std::to_string(b % loans);
    e.seq = (b / loans) * events_per_batch + i + 1;
    e.business_date = 19800;
    e.kind = e.seq == 1 ? EventKind::kDisburse : EventKind::kRepay;
    e.amount_fen = e.seq == 1 ? 1'000'000 : 1;
    e.attributes.borrower_type = BorrowerType::kIndividual;
    e.attributes.enterprise_size = EnterpriseSize::kNa;
    e.attributes.region_code = "310115";
    e.attributes.term_months = 12;
    out.push_back(std::move(e));
  }
  return out;
}

struct StreamResult {
  Status status;
  std::vector<uint64_t> answered;  // batch indexes, in on_outcome order
  uint64_t applied = 0;            // events applied + duplicate, over all outcomes
};

StreamResult SubmitBatches(Client& client, uint64_t batches, size_t loans = 3) {
  StreamResult r;
  uint64_t b = 0;
  r.status = client.SubmitStream(
      [&](std::vector<LoanEvent>& batch) {
        if (b == batches) return false;
        batch = MakeBatch(b++, loans, 4);
        return true;
      },
      [&](uint64_t index, const BatchOutcome& o) {
        EXPECT_TRUE(o.applied) << index;
        r.answered.push_back(index);
        r.applied += o.events_applied + o.events_duplicate;
        return true;
      });
  return r;
}

ClientOptions OptionsFor(std::vector<std::string> servers) {
  ClientOptions o;
  o.servers = std::move(servers);
  o.token = "llt_test";
  o.connect_timeout_ms = 2000;
  o.request_timeout_ms = 5000;
  o.batches_in_flight_max = 4;
  o.failover_timeout_ms = 10000;
  return o;
}

std::vector<uint64_t> Iota(uint64_t n) {
  std::vector<uint64_t> v(n);
  for (uint64_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

// Every batch of the stream was applied once, in order, on one stream id;
// returns the positions each node took, by node.
std::map<size_t, std::vector<uint64_t>> CheckTakenInOrder(FakeCluster& c, uint64_t batches) {
  std::lock_guard<std::mutex> lock(c.mu);
  std::map<size_t, std::vector<uint64_t>> by_node;
  EXPECT_FALSE(c.taken.empty());
  uint64_t events = 0;
  uint64_t expect_next = 0;  // the next new position; a resend may repeat earlier ones
  for (const FakeCluster::Taken& t : c.taken) {
    EXPECT_EQ(t.stream, c.taken.front().stream) << "a resent batch changed its stream id";
    EXPECT_NE(t.stream, 0u);
    EXPECT_LE(t.stream_batch, expect_next) << "a position was skipped";
    if (t.stream_batch == expect_next) ++expect_next;
    events += t.applied;
    by_node[t.node].push_back(t.stream_batch);
  }
  EXPECT_EQ(expect_next, batches);
  EXPECT_EQ(events, batches * 4) << "every event applied exactly once";
  return by_node;
}

// ---- Connect ----------------------------------------------------------------

TEST(ClusterConnect, SkipsServersThatCannotBeReached) {
  FakeCluster cluster;
  ClosedPort down;
  FakeNode refusing(cluster, {.refuse_hello = true});
  FakeNode up(cluster, {});
  Result<std::unique_ptr<Client>> c =
      Client::Connect(OptionsFor({down.address(), refusing.address(), up.address()}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->identity().institution_id, "B0001");
  EXPECT_EQ(refusing.accepts(), 1);
  EXPECT_EQ(up.accepts(), 1);
}

TEST(ClusterConnect, AllDownFailsUnavailableNamingEveryServer) {
  ClosedPort a, b, c;
  Result<std::unique_ptr<Client>> client =
      Client::Connect(OptionsFor({a.address(), b.address(), c.address()}));
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), Status::Code::kUnavailable);
  for (const ClosedPort* p : {&a, &b, &c}) {
    EXPECT_NE(client.status().message().find(p->address()), std::string::npos)
        << client.status().message();
  }
}

TEST(ClusterConnect, MalformedServerIsInvalidArgument) {
  Result<std::unique_ptr<Client>> c = Client::Connect(OptionsFor({"127.0.0.1:1", "nohostport"}));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(c.status().message().find("nohostport"), std::string::npos);
}

TEST(ClusterConnect, ReconnectStartsWithTheLastServerThatWorked) {
  FakeCluster cluster;
  FakeNode refusing(cluster, {.refuse_hello = true});
  FakeNode leader(cluster, {.drop_submits = 1});  // loses the first batch's connection
  cluster.leader = 1;
  Result<std::unique_ptr<Client>> c =
      Client::Connect(OptionsFor({refusing.address(), leader.address()}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const StreamResult r = SubmitBatches(**c, 5);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.answered, Iota(5));
  EXPECT_EQ(refusing.accepts(), 1);  // only the first round went there
  EXPECT_EQ(leader.accepts(), 2);
  CheckTakenInOrder(cluster, 5);
}

// ---- Submit: NOT_LEADER ----------------------------------------------------

TEST(ClusterSubmit, FollowsTheNamedLeader) {
  FakeCluster cluster;
  FakeNode follower(cluster, {});
  FakeNode leader(cluster, {});
  cluster.leader = 1;
  // Only the follower is configured: the leader is reached by its name alone.
  Result<std::unique_ptr<Client>> c = Client::Connect(OptionsFor({follower.address()}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const StreamResult r = SubmitBatches(**c, 12);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.answered, Iota(12));
  EXPECT_EQ(r.applied, 48u);
  const auto by_node = CheckTakenInOrder(cluster, 12);
  EXPECT_EQ(by_node.at(1), Iota(12));
  EXPECT_EQ(by_node.count(0), 0u);
  EXPECT_GE(follower.not_leader_answers(), 1);
  EXPECT_EQ(leader.accepts(), 1);
}

TEST(ClusterSubmit, DeposedLeaderMidStreamResendsEveryPendingBatchInOrder) {
  FakeCluster cluster;
  FakeNode first(cluster, {.acks_before_deposed = 3, .successor = 1});
  FakeNode second(cluster, {});
  cluster.leader = 0;
  Result<std::unique_ptr<Client>> c =
      Client::Connect(OptionsFor({first.address(), second.address()}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const StreamResult r = SubmitBatches(**c, 10);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.answered, Iota(10));
  const auto by_node = CheckTakenInOrder(cluster, 10);
  EXPECT_EQ(by_node.at(0), (std::vector<uint64_t>{0, 1, 2}));
  // Batch 3 and those in flight behind it were answered NOT_LEADER by the
  // first node: the second takes them again, in order, then the rest.
  EXPECT_EQ(by_node.at(1), (std::vector<uint64_t>{3, 4, 5, 6, 7, 8, 9}));
  EXPECT_GE(first.not_leader_answers(), 1);
}

TEST(ClusterSubmit, UnknownLeaderTriesTheOtherServers) {
  FakeCluster cluster;
  FakeNode a(cluster, {.names = ""});
  FakeNode b(cluster, {.names = ""});
  FakeNode c(cluster, {});
  cluster.leader = 2;
  Result<std::unique_ptr<Client>> client =
      Client::Connect(OptionsFor({a.address(), b.address(), c.address()}));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  const StreamResult r = SubmitBatches(**client, 6);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.answered, Iota(6));
  EXPECT_EQ(CheckTakenInOrder(cluster, 6).at(2), Iota(6));
  EXPECT_GE(a.not_leader_answers(), 1);
  EXPECT_GE(b.not_leader_answers(), 1);
}

TEST(ClusterSubmit, UnreachableNamedLeaderTriesTheOtherServers) {
  FakeCluster cluster;
  ClosedPort dead;
  FakeNode stale(cluster, {.names = dead.address()});  // names a leader that died
  FakeNode leader(cluster, {});
  cluster.leader = 1;
  Result<std::unique_ptr<Client>> c =
      Client::Connect(OptionsFor({stale.address(), leader.address()}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const StreamResult r = SubmitBatches(**c, 5);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(CheckTakenInOrder(cluster, 5).at(1), Iota(5));
}

TEST(ClusterSubmit, WaitsOutAnElection) {
  FakeCluster cluster;
  FakeNode a(cluster, {});
  FakeNode b(cluster, {});
  FakeNode c(cluster, {});
  cluster.leader = -1;  // every node answers NOT_LEADER ""
  std::thread elect([&] {
    std::this_thread::sleep_for(Ms(800));
    std::lock_guard<std::mutex> lock(cluster.mu);
    cluster.leader = 1;
  });
  Result<std::unique_ptr<Client>> client =
      Client::Connect(OptionsFor({a.address(), b.address(), c.address()}));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  const auto start = std::chrono::steady_clock::now();
  const StreamResult r = SubmitBatches(**client, 4);
  const auto took = std::chrono::steady_clock::now() - start;
  elect.join();
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(CheckTakenInOrder(cluster, 4).at(1), Iota(4));
  EXPECT_GE(took, Ms(700));
  EXPECT_LT(took, Ms(5000)) << "backoff too long after the election";
}

TEST(ClusterSubmit, NoLeaderWithinTheTimeoutFailsClearly) {
  FakeCluster cluster;
  FakeNode a(cluster, {});
  FakeNode b(cluster, {});
  ClientOptions options = OptionsFor({a.address(), b.address()});
  options.failover_timeout_ms = 700;
  Result<std::unique_ptr<Client>> client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  const auto start = std::chrono::steady_clock::now();
  const StreamResult r = SubmitBatches(**client, 3);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.status.ok());
  EXPECT_EQ(r.status.code(), Status::Code::kUnavailable);
  EXPECT_NE(r.status.message().find("no leader"), std::string::npos) << r.status.message();
  EXPECT_NE(r.status.message().find(a.address()), std::string::npos) << r.status.message();
  EXPECT_NE(r.status.message().find(b.address()), std::string::npos) << r.status.message();
  EXPECT_TRUE(r.answered.empty());
  EXPECT_GE(took, Ms(600));
  EXPECT_LT(took, Ms(4000));
  std::lock_guard<std::mutex> lock(cluster.mu);
  EXPECT_TRUE(cluster.taken.empty());
}

TEST(ClusterSubmit, AfterARejectionNotLeaderResendsNothing) {
  FakeCluster cluster;
  // Applies batch 0, rejects batch 1, then is deposed: 2 and 3 (in flight)
  // are answered NOT_LEADER. The stream stops at the rejection, so they are
  // reported skipped, not resent to the new leader.
  FakeNode first(cluster, {.acks_before_deposed = 2, .successor = 1, .reject_position = 1});
  FakeNode second(cluster, {});
  cluster.leader = 0;
  ClientOptions options = OptionsFor({first.address(), second.address()});
  options.batches_in_flight_max = 4;
  Result<std::unique_ptr<Client>> c = Client::Connect(options);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  uint64_t b = 0;
  std::vector<std::string> outcomes;
  const Status s = (*c)->SubmitStream(
      [&](std::vector<LoanEvent>& batch) {
        if (b == 4) return false;
        batch = MakeBatch(b++, 4, 4);
        return true;
      },
      [&](uint64_t index, const BatchOutcome& o) {
        outcomes.push_back(std::to_string(index) + (o.applied   ? " applied"
                                                    : o.skipped ? " skipped"
                                                                : " rejected"));
        return true;
      });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(outcomes,
            (std::vector<std::string>{"0 applied", "1 rejected", "2 skipped", "3 skipped"}));
  EXPECT_EQ(second.accepts(), 0);
  std::lock_guard<std::mutex> lock(cluster.mu);
  ASSERT_EQ(cluster.taken.size(), 1u);
  EXPECT_EQ(cluster.taken[0].stream_batch, 0u);
}

TEST(ClusterSubmit, NodesNamingEachOtherBackOffUntilTheTimeout) {
  FakeCluster cluster;  // no leader, and two stale nodes that name each other
  FakeNode a(cluster, {});
  FakeNode b(cluster, {});
  a.Name(b.address());
  b.Name(a.address());
  ClientOptions options = OptionsFor({a.address()});
  options.failover_timeout_ms = 1500;
  Result<std::unique_ptr<Client>> client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  const StreamResult r = SubmitBatches(**client, 2);
  ASSERT_FALSE(r.status.ok());
  EXPECT_EQ(r.status.code(), Status::Code::kUnavailable);
  EXPECT_NE(r.status.message().find("names the leader"), std::string::npos) << r.status.message();
  // Backing off 50 ms, doubling to 100 ms (client.cc): about 17 rounds in
  // 1.5 s, each answering both batches; not a hot loop.
  const int tries = a.not_leader_answers() + b.not_leader_answers();
  EXPECT_GE(tries, 4);
  EXPECT_LE(tries, 40);
}

// ---- Queries ------------------------------------------------------------------

TEST(ClusterQuery, LostConnectionTriesTheNextServer) {
  FakeCluster cluster;
  FakeNode dropping(cluster, {.query = FakeNode::QueryMode::kDrop});
  FakeNode answering(cluster, {});
  Result<std::unique_ptr<Client>> c =
      Client::Connect(OptionsFor({dropping.address(), answering.address()}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Result<std::string> stats = (*c)->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(*stats, "node 1");
  EXPECT_TRUE((*c)->QueryReport(ReportQuery{.date = 19800}).ok());
}

TEST(ClusterQuery, UnavailableTriesTheNextServer) {
  FakeCluster cluster;
  FakeNode lagging(cluster, {.query = FakeNode::QueryMode::kUnavailable});
  FakeNode answering(cluster, {});
  Result<std::unique_ptr<Client>> c =
      Client::Connect(OptionsFor({lagging.address(), answering.address()}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Result<std::string> stats = (*c)->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(*stats, "node 1");
}

// ---- The CLI ---------------------------------------------------------------------

TEST(ClusterCli, ParsesServerLists) {
  ClientOptions o;
  ASSERT_TRUE(cli::ParseServerList("a:1,b:2, [::1]:3", o));
  EXPECT_EQ(o.servers, (std::vector<std::string>{"a:1", "b:2", "[::1]:3"}));
  EXPECT_EQ(o.host, "a");
  EXPECT_EQ(o.port, 1);
  ClientOptions one;
  ASSERT_TRUE(cli::ParseServerList("h:7700", one));
  EXPECT_TRUE(one.servers.empty());  // one server: host and port, as before
  EXPECT_EQ(one.host, "h");
  for (const char* bad : {"", ",", "a:1,", ",a:1", "a:1,,b:2", "a:1,b", "a:1;b:2", "a:1,::1:2"}) {
    ClientOptions x;
    EXPECT_FALSE(cli::ParseServerList(bad, x)) << bad;
  }
}

struct CliRun {
  int code = 0;
  std::string out, err;
  ClientOptions options;  // as handed to connect
};

// Runs the CLI with the real client library (or, when `fake` is set, a
// connect that records the options and fails).
CliRun RunCli(std::vector<std::string> args, std::map<std::string, std::string> env,
              bool fake = false) {
  CliRun run;
  std::ostringstream out, err;
  cli::CliContext ctx{out, err};
  ctx.connect = [&](const ClientOptions& o) -> Result<std::unique_ptr<Client>> {
    run.options = o;
    if (fake) return Status::Unavailable("fake");
    ClientOptions tuned = o;
    tuned.connect_timeout_ms = 2000;
    tuned.failover_timeout_ms = 10000;
    return Client::Connect(tuned);
  };
  ctx.getenv = [&](const std::string& name) -> std::optional<std::string> {
    const auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  run.code = cli::RunCli(args, ctx);
  run.out = out.str();
  run.err = err.str();
  return run;
}

TEST(ClusterCli, EveryCommandTakesAServerListFromTheFlagOrTheEnvironment) {
  const std::map<std::string, std::string> env = {{"LOANLEDGER_TOKEN", "t"},
                                                  {"LOANLEDGER_SERVER", "e1:1,e2:2"}};
  const std::vector<std::vector<std::string>> commands = {
      {"report", "--date", "2024-09-30"},
      {"series", "--category", "GREEN", "--from", "2024-01-01", "--to", "2024-03-31"},
      {"loan", "--institution", "B0001", "--loan-id", "L1"},
      {"admin", "stats"}};
  for (const auto& command : commands) {
    CliRun r = RunCli(command, env, /*fake=*/true);
    EXPECT_EQ(r.code, 3) << command[0] << ": " << r.err;
    EXPECT_EQ(r.options.servers, (std::vector<std::string>{"e1:1", "e2:2"})) << command[0];
    std::vector<std::string> with_flag = command;
    with_flag.insert(with_flag.end(), {"--server", "f1:1,f2:2,f3:3"});
    r = RunCli(with_flag, env, /*fake=*/true);
    EXPECT_EQ(r.options.servers, (std::vector<std::string>{"f1:1", "f2:2", "f3:3"})) << command[0];
  }
  CliRun bad = RunCli({"report", "--date", "2024-09-30", "--server", "a:1,,b:2"}, env, true);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("a:1,,b:2"), std::string::npos) << bad.err;
  bad = RunCli({"report", "--date", "2024-09-30"},
               {{"LOANLEDGER_TOKEN", "t"}, {"LOANLEDGER_SERVER", "a:1,b"}}, true);
  EXPECT_EQ(bad.code, 1);
}

TEST(ClusterCli, AllServersDownExitsThreeNamingEach) {
  ClosedPort a, b;
  const std::string list = a.address() + "," + b.address();
  const CliRun r =
      RunCli({"report", "--date", "2024-09-30", "--server", list}, {{"LOANLEDGER_TOKEN", "t"}});
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find(a.address()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(b.address()), std::string::npos) << r.err;
  const CliRun s =
      RunCli({"admin", "stats"}, {{"LOANLEDGER_TOKEN", "t"}, {"LOANLEDGER_SERVER", list}});
  EXPECT_EQ(s.code, 3);
  EXPECT_NE(s.err.find(b.address()), std::string::npos) << s.err;
}

TEST(ClusterCli, SubmitFollowsTheLeaderAndCountsEveryBatch) {
  FakeCluster cluster;
  FakeNode follower(cluster, {});
  FakeNode leader(cluster, {.acks_before_deposed = 2, .successor = 2});
  FakeNode next_leader(cluster, {});
  cluster.leader = 1;
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("loanledger_failover_" + std::to_string(::getpid()) + ".csv"))
                               .string();
  {
    std::string text = std::string(kCsvHeader) + "\n";
    for (uint64_t b = 0; b < 6; ++b) {
      for (const LoanEvent& e : MakeBatch(b, 3, 4)) AppendCsvLine(e, text);
    }
    std::ofstream(path, std::ios::binary) << text;
  }
  const CliRun r = RunCli({"submit", path, "--batch-size", "4", "--server",
                           follower.address() + "," + leader.address()},
                          {{"LOANLEDGER_TOKEN", "t"}});
  std::filesystem::remove(path);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("applied=24 duplicates=0 batches=6 rejected=0"), std::string::npos)
      << r.out << r.err;
  const auto by_node = CheckTakenInOrder(cluster, 6);
  EXPECT_EQ(by_node.at(1), (std::vector<uint64_t>{0, 1}));
  EXPECT_EQ(by_node.at(2), (std::vector<uint64_t>{2, 3, 4, 5}));
}

}  // namespace
}  // namespace loanledger::client
