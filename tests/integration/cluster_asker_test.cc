// cluster::Asker::AskThen (cluster/asker.h) against a real nats-server: the
// fan-out's asking side without a waiting thread. The server runs as a child
// process on 127.0.0.1 with a port it picks itself (-p -1, read back from its
// --ports_file_dir file), and is stopped by its PID. Responders are plain
// subscriptions on QuerySubject(p) on a second connection, as a node's
// OnQuery (cluster/node.cc) answers: one publish to the message's reply.
#include <gtest/gtest.h>
#include <nats/nats.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cluster/asker.h"

namespace loanledger::cluster {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// How long a test waits for anything that should come at once; far above
// what it takes, so that a slow (sanitizer) build only waits longer.
constexpr auto kWaitMax = std::chrono::seconds(30);

// nats-server on PATH, else where Debian puts it.
std::optional<std::string> FindNatsServer() {
  std::vector<std::filesystem::path> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    std::string dir;
    while (std::getline(ss, dir, ':'))
      if (!dir.empty()) dirs.emplace_back(dir);
  }
  dirs.emplace_back("/usr/sbin");
  dirs.emplace_back("/usr/bin");
  for (const auto& dir : dirs) {
    const auto exe = dir / "nats-server";
    if (::access(exe.c_str(), X_OK) == 0) return exe.string();
  }
  return std::nullopt;
}

// A nats-server child on 127.0.0.1, its port chosen by itself.
class NatsServer {
 public:
  ~NatsServer() { Stop(); }

  // Starts it and waits (at most 20 s) for its ports file; "" or why not.
  std::string Start(const std::string& exe) {
    char tmpl[] = "/tmp/cluster_asker_test.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return "mkdtemp failed";
    dir_ = tmpl;
    const std::string log = (dir_ / "nats.log").string();
    std::vector<std::string> args = {exe,  "-a", "127.0.0.1", "-p", "-1", "--ports_file_dir",
                                     dir_, "-l", log};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) return "fork failed";
    if (pid_ == 0) {
      // Only async-signal-safe calls here. The server dies with this test
      // process, however it ends.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    // "<dir>/nats-server_<pid>.ports": {"nats":["nats://127.0.0.1:PORT"]}
    const auto deadline = steady_clock::now() + std::chrono::seconds(20);
    while (steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return "nats-server exited at start; see " + log;
      }
      for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
        if (entry.path().extension() != ".ports") continue;
        std::ifstream in(entry.path());
        const std::string text((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
        const auto at = text.find("nats://127.0.0.1:");
        const auto end = text.find('"', at == std::string::npos ? 0 : at);
        if (at == std::string::npos || end == std::string::npos) continue;  // half written
        url_ = text.substr(at, end - at);
        return "";
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    return "no ports file from nats-server in 20 s";
  }

  void Stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      const auto deadline = steady_clock::now() + std::chrono::seconds(10);
      int status = 0;
      while (::waitpid(pid_, &status, WNOHANG) == 0) {
        if (steady_clock::now() > deadline) {
          ::kill(pid_, SIGKILL);
          ::waitpid(pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(milliseconds(10));
      }
      pid_ = -1;
    }
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      dir_.clear();
    }
  }

  const std::string& url() const { return url_; }

 private:
  pid_t pid_ = -1;
  std::filesystem::path dir_;
  std::string url_;
};

struct Conn {
  void operator()(natsConnection* nc) const {
    natsConnection_Close(nc);
    natsConnection_Destroy(nc);
  }
};
using ConnPtr = std::unique_ptr<natsConnection, Conn>;
struct Sub {
  void operator()(natsSubscription* s) const {
    natsSubscription_Unsubscribe(s);
    natsSubscription_Destroy(s);
  }
};
using SubPtr = std::unique_ptr<natsSubscription, Sub>;

// How a partition's responder behaves.
enum class Mode {
  kEcho,    // answers "p<partition>:<request>" at once
  kSilent,  // subscribed, never answers
  kStash,   // keeps each question's reply subject and request for the test
};

struct Question {
  std::string reply;
  std::string request;
};

// One partition's responder: a subscription on QuerySubject(partition).
struct Responder {
  uint32_t partition = 0;
  Mode mode = Mode::kEcho;
  SubPtr sub;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Question> stashed;  // kStash
  std::atomic<int> asked{0};

  static void OnQuestion(natsConnection* nc, natsSubscription*, natsMsg* msg, void* closure) {
    auto* self = static_cast<Responder*>(closure);
    const char* reply = natsMsg_GetReply(msg);
    const std::string request(natsMsg_GetData(msg),
                              static_cast<size_t>(natsMsg_GetDataLength(msg)));
    const std::string to = reply == nullptr ? "" : reply;
    natsMsg_Destroy(msg);
    ++self->asked;
    if (to.empty()) return;
    switch (self->mode) {
      case Mode::kEcho: {
        const std::string answer = "p" + std::to_string(self->partition) + ":" + request;
        natsConnection_Publish(nc, to.c_str(), answer.data(), static_cast<int>(answer.size()));
        break;
      }
      case Mode::kSilent:
        break;
      case Mode::kStash: {
        std::lock_guard lock(self->mu);
        self->stashed.push_back({to, request});
        self->cv.notify_all();
        break;
      }
    }
  }
};

// What a query's `done` got, and how often it was called.
struct Outcome {
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  std::vector<Result<std::string>> answers;

  Node::Answers Done() {
    return [this](std::vector<Result<std::string>> got) {
      std::lock_guard lock(mu);
      ++calls;
      answers = std::move(got);
      cv.notify_all();
    };
  }
  // True once done was called (waits at most kWaitMax).
  bool WaitCalled() {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, kWaitMax, [this] { return calls > 0; });
  }
  int Calls() {
    std::lock_guard lock(mu);
    return calls;
  }
};

std::string Text(const Result<std::string>& r) {
  return r.ok() ? "answer \"" + *r + "\"" : "error " + r.status().ToString();
}

class ClusterAskerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::optional<std::string> exe = FindNatsServer();
    if (!exe) GTEST_SKIP() << "nats-server is not installed";
    const std::string why = server_.Start(*exe);
    ASSERT_EQ(why, "");
    asker_conn_ = Connect();
    responder_conn_ = Connect();
    ASSERT_NE(asker_conn_, nullptr);
    ASSERT_NE(responder_conn_, nullptr);
    asker_ = std::make_unique<Asker>(asker_conn_.get());
  }

  void TearDown() override {
    asker_.reset();
    responders_.clear();  // unsubscribes (their handlers have returned when this does)
    responder_conn_.reset();
    asker_conn_.reset();
    server_.Stop();
  }

  ConnPtr Connect() {
    natsConnection* nc = nullptr;
    const natsStatus s = natsConnection_ConnectTo(&nc, server_.url().c_str());
    EXPECT_EQ(s, NATS_OK) << natsStatus_GetText(s) << " connecting to " << server_.url();
    return ConnPtr(s == NATS_OK ? nc : nullptr);
  }

  // A responder for `partition`, subscribed at the server when this returns.
  Responder& Respond(uint32_t partition, Mode mode) {
    auto r = std::make_unique<Responder>();
    r->partition = partition;
    r->mode = mode;
    natsSubscription* raw = nullptr;
    EXPECT_EQ(natsConnection_Subscribe(&raw, responder_conn_.get(), QuerySubject(partition).c_str(),
                                       &Responder::OnQuestion, r.get()),
              NATS_OK);
    r->sub.reset(raw);
    // The SUB reaches the server before anyone asks: no false "no responders".
    EXPECT_EQ(natsConnection_FlushTimeout(responder_conn_.get(), 10000), NATS_OK);
    responders_.push_back(std::move(r));
    return *responders_.back();
  }

  // Waits (at most kWaitMax) until `r` has stashed `n` questions.
  static bool WaitStashed(Responder& r, size_t n) {
    std::unique_lock lock(r.mu);
    return r.cv.wait_for(lock, kWaitMax, [&] { return r.stashed.size() >= n; });
  }

  void Publish(const std::string& subject, const std::string& data) {
    ASSERT_EQ(natsConnection_Publish(responder_conn_.get(), subject.c_str(), data.data(),
                                     static_cast<int>(data.size())),
              NATS_OK);
  }

  NatsServer server_;
  ConnPtr asker_conn_;
  ConnPtr responder_conn_;
  std::vector<std::unique_ptr<Responder>> responders_;
  std::unique_ptr<Asker> asker_;
};

// 1. Every partition answers: done once, every answer in the order asked,
// though they come in the reverse order.
TEST_F(ClusterAskerTest, EveryPartitionAnswersInTheOrderAsked) {
  std::map<uint32_t, Responder*> by_partition;
  for (uint32_t p : {0u, 1u, 2u, 3u}) by_partition[p] = &Respond(p, Mode::kStash);
  const std::vector<uint32_t> partitions = {3, 0, 2, 1};
  Outcome out;
  asker_->AskThen(partitions, "how much", 10000, out.Done());
  for (auto it = partitions.rbegin(); it != partitions.rend(); ++it) {
    Responder& r = *by_partition[*it];
    ASSERT_TRUE(WaitStashed(r, 1)) << *it;
    Question q;
    {
      std::lock_guard lock(r.mu);
      ASSERT_EQ(r.stashed.size(), 1u);
      q = r.stashed[0];
    }
    EXPECT_EQ(q.request, "how much");
    EXPECT_EQ(out.Calls(), 0);  // a partition is still open
    Publish(q.reply, "p" + std::to_string(*it) + ":" + q.request);
    ASSERT_EQ(natsConnection_FlushTimeout(responder_conn_.get(), 10000), NATS_OK);
  }
  ASSERT_TRUE(out.WaitCalled());
  ASSERT_EQ(out.answers.size(), 4u);
  for (size_t i = 0; i < partitions.size(); ++i) {
    ASSERT_TRUE(out.answers[i].ok()) << i << ": " << Text(out.answers[i]);
    EXPECT_EQ(*out.answers[i], "p" + std::to_string(partitions[i]) + ":how much");
  }
  // Asking no partition answers at once, on the caller's thread.
  Outcome none;
  asker_->AskThen({}, "nothing", 10000, none.Done());
  EXPECT_EQ(none.Calls(), 1);
  EXPECT_TRUE(none.answers.empty());
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(out.Calls(), 1);
}

// 2. A partition nobody subscribes to: the NATS server's "no responders"
// ends its question at once, long before the timeout.
TEST_F(ClusterAskerTest, PartitionWithoutSubscriberFailsAtOnce) {
  Respond(0, Mode::kEcho);
  Respond(2, Mode::kEcho);
  const std::vector<uint32_t> partitions = {0, 1, 2};
  Outcome out;
  asker_->AskThen(partitions, "q", 3000, out.Done());
  ASSERT_TRUE(out.WaitCalled());
  ASSERT_EQ(out.answers.size(), 3u);
  ASSERT_TRUE(out.answers[0].ok()) << Text(out.answers[0]);
  EXPECT_EQ(*out.answers[0], "p0:q");
  ASSERT_TRUE(out.answers[2].ok()) << Text(out.answers[2]);
  EXPECT_EQ(*out.answers[2], "p2:q");
  ASSERT_FALSE(out.answers[1].ok());
  const Status& st = out.answers[1].status();
  EXPECT_EQ(st.code(), Status::Code::kUnavailable);
  EXPECT_NE(st.message().find("partition 1 "), std::string::npos) << st.message();
  // Not "waited 3000 ms": it came before the timeout.
  EXPECT_NE(st.message().find("none of its nodes is serving"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find("waited"), std::string::npos) << st.message();
  EXPECT_EQ(out.Calls(), 1);
}

// 3. A partition subscribed but silent: its question times out, naming the wait.
TEST_F(ClusterAskerTest, SilentPartitionTimesOut) {
  Respond(0, Mode::kEcho);
  Responder& silent = Respond(1, Mode::kSilent);
  Respond(2, Mode::kEcho);
  const std::vector<uint32_t> partitions = {2, 1, 0};
  Outcome out;
  asker_->AskThen(partitions, "q", 300, out.Done());
  ASSERT_TRUE(out.WaitCalled());
  EXPECT_EQ(silent.asked.load(), 1);
  ASSERT_EQ(out.answers.size(), 3u);
  ASSERT_TRUE(out.answers[0].ok()) << Text(out.answers[0]);
  EXPECT_EQ(*out.answers[0], "p2:q");
  ASSERT_TRUE(out.answers[2].ok()) << Text(out.answers[2]);
  EXPECT_EQ(*out.answers[2], "p0:q");
  ASSERT_FALSE(out.answers[1].ok());
  const Status& st = out.answers[1].status();
  EXPECT_EQ(st.code(), Status::Code::kUnavailable);
  EXPECT_NE(st.message().find("partition 1 "), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("waited 300 ms"), std::string::npos) << st.message();
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(out.Calls(), 1);
}

// 4. An answer that comes after its query timed out is not taken for a later
// query's, even when it arrives first while that one waits.
TEST_F(ClusterAskerTest, LateAnswerIsNotDeliveredToALaterQuery) {
  Respond(0, Mode::kEcho);
  Responder& late = Respond(1, Mode::kStash);
  const std::vector<uint32_t> partitions = {0, 1};
  Outcome first;
  asker_->AskThen(partitions, "first", 300, first.Done());
  ASSERT_TRUE(first.WaitCalled());
  ASSERT_EQ(first.answers.size(), 2u);
  ASSERT_TRUE(first.answers[0].ok()) << Text(first.answers[0]);
  EXPECT_EQ(*first.answers[0], "p0:first");
  ASSERT_FALSE(first.answers[1].ok());
  EXPECT_NE(first.answers[1].status().message().find("waited 300 ms"), std::string::npos)
      << first.answers[1].status().message();

  Outcome second;
  asker_->AskThen(partitions, "second", 10000, second.Done());
  ASSERT_TRUE(WaitStashed(late, 2));
  Question q1;
  Question q2;
  {
    std::lock_guard lock(late.mu);
    q1 = late.stashed[0];
    q2 = late.stashed[1];
  }
  ASSERT_EQ(q1.request, "first");
  ASSERT_EQ(q2.request, "second");
  ASSERT_NE(q1.reply, q2.reply);
  // The first query's answer, then the second's, from one connection: the
  // asker sees them in this order.
  Publish(q1.reply, "late answer to first");
  ASSERT_EQ(natsConnection_FlushTimeout(responder_conn_.get(), 10000), NATS_OK);
  EXPECT_EQ(second.Calls(), 0);  // its partition 1 is still open
  Publish(q2.reply, "p1:second");
  ASSERT_TRUE(second.WaitCalled());
  ASSERT_EQ(second.answers.size(), 2u);
  ASSERT_TRUE(second.answers[0].ok()) << Text(second.answers[0]);
  EXPECT_EQ(*second.answers[0], "p0:second");
  ASSERT_TRUE(second.answers[1].ok()) << Text(second.answers[1]);
  EXPECT_EQ(*second.answers[1], "p1:second");
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(first.Calls(), 1);
  EXPECT_EQ(second.Calls(), 1);
}

// 5. Many queries at once from several threads: each done once, with its
// own answers (each echoes the query's token).
TEST_F(ClusterAskerTest, ConcurrentQueriesEachGetTheirOwnAnswers) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200;
  constexpr int kQueries = kThreads * kPerThread;
  for (uint32_t p : {0u, 1u, 2u}) Respond(p, Mode::kEcho);
  const std::vector<uint32_t> partitions = {1, 2, 0};

  std::mutex mu;
  std::condition_variable cv;
  int finished = 0;
  std::vector<std::atomic<int>> calls(kQueries);
  std::vector<std::atomic<int>> wrong(kQueries);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int id = t * kPerThread + i;
        const std::string token = "t" + std::to_string(t) + "-q" + std::to_string(i);
        asker_->AskThen(
            partitions, token, 20000, [&, id, token](std::vector<Result<std::string>> got) {
              bool right = got.size() == partitions.size();
              for (size_t k = 0; right && k < got.size(); ++k) {
                right = got[k].ok() && *got[k] == "p" + std::to_string(partitions[k]) + ":" + token;
              }
              if (!right) ++wrong[id];
              ++calls[id];
              std::lock_guard lock(mu);
              ++finished;
              cv.notify_all();
            });
      }
    });
  }
  for (auto& th : threads) th.join();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kWaitMax, [&] { return finished >= kQueries; }))
        << finished << " of " << kQueries << " queries done";
  }
  std::this_thread::sleep_for(milliseconds(200));
  int twice = 0;
  int bad = 0;
  for (int id = 0; id < kQueries; ++id) {
    twice += calls[id].load() != 1 ? 1 : 0;
    bad += wrong[id].load() != 0 ? 1 : 0;
  }
  EXPECT_EQ(twice, 0);
  EXPECT_EQ(bad, 0);
  std::lock_guard lock(mu);
  EXPECT_EQ(finished, kQueries);
}

// 6. The asker destroyed while queries wait: each done called once, in the
// destructor, every partition "this node is stopping"; nothing after.
TEST_F(ClusterAskerTest, DestroyedWithQueriesPendingFailsEachOnce) {
  constexpr int kPending = 5;
  Respond(0, Mode::kEcho);
  Responder& held = Respond(1, Mode::kStash);
  const std::vector<uint32_t> partitions = {0, 1};
  std::atomic<bool> destroyed{false};
  std::atomic<int> after{0};
  std::vector<Outcome> outs(kPending);
  for (int i = 0; i < kPending; ++i) {
    Node::Answers done = outs[i].Done();
    asker_->AskThen(partitions, "q" + std::to_string(i), 60000,
                    [&, done](std::vector<Result<std::string>> got) {
                      if (destroyed.load()) ++after;
                      done(std::move(got));
                    });
  }
  ASSERT_TRUE(WaitStashed(held, kPending));
  for (int i = 0; i < kPending; ++i) EXPECT_EQ(outs[i].Calls(), 0) << i;

  asker_.reset();
  destroyed = true;
  for (int i = 0; i < kPending; ++i) {
    ASSERT_EQ(outs[i].Calls(), 1) << i;
    ASSERT_EQ(outs[i].answers.size(), 2u) << i;
    for (size_t k = 0; k < partitions.size(); ++k) {
      const Result<std::string>& r = outs[i].answers[k];
      ASSERT_FALSE(r.ok()) << i << "/" << k << ": " << Text(r);
      EXPECT_EQ(r.status().code(), Status::Code::kUnavailable);
      EXPECT_NE(r.status().message().find("partition " + std::to_string(partitions[k])),
                std::string::npos)
          << r.status().message();
      EXPECT_NE(r.status().message().find("this node is stopping"), std::string::npos)
          << r.status().message();
    }
  }
  // The held questions answered now reach no one.
  std::vector<Question> stashed;
  {
    std::lock_guard lock(held.mu);
    stashed = held.stashed;
  }
  for (const Question& q : stashed) Publish(q.reply, "p1:" + q.request);
  ASSERT_EQ(natsConnection_FlushTimeout(responder_conn_.get(), 10000), NATS_OK);
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(after.load(), 0);
  for (int i = 0; i < kPending; ++i) EXPECT_EQ(outs[i].Calls(), 1) << i;
}

}  // namespace
}  // namespace loanledger::cluster
