// The fan-out's asking side (cluster.h, Node::AskThen; docs/cluster.md,
// "Partitions"): a query's questions to the other partitions all go out at
// once, so that the caller computes its own partition's answer while the
// others travel, and no thread waits for them. The answers come to one
// asynchronous subscription per node, on "<inbox>.<query>.<index>"; the
// query's `done` is called by the thread that delivers its last answer (or
// the "no responders" status of a partition nobody serves), or by the
// asker's timer thread at its deadline.
#pragma once

#include <nats/nats.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cluster/cluster.h"
#include "cluster/nats_util.h"

namespace loanledger::cluster {

// The subject a partition's nodes answer questions on.
std::string QuerySubject(uint32_t partition);

class Asker {
 public:
  // `nc` must outlive this.
  explicit Asker(natsConnection* nc) : nc_(nc) {}
  ~Asker();  // every query still pending fails ("this node is stopping"), once

  // Node::AskThen. Thread-safe.
  void AskThen(std::span<const uint32_t> partitions, std::string_view request, uint32_t timeout_ms,
               Node::Answers done);

 private:
  // An AskThen query whose answers are still coming.
  struct Pending {
    std::vector<uint32_t> partitions;
    std::vector<std::optional<Result<std::string>>> got;  // per question: answer or failure
    size_t open = 0;                                      // questions without either
    uint32_t timeout_ms = 0;
    std::chrono::steady_clock::time_point deadline;
    Node::Answers done;
  };
  Status StartAnswers();  // REQUIRES: async_mu_ held
  // Records question `index`'s answer or failure (none: the NATS server's
  // "no responders"); the query's `done` and its answers when that was the
  // last one.
  std::optional<std::pair<Node::Answers, std::vector<Result<std::string>>>> Record(
      uint64_t query, size_t index, std::optional<Result<std::string>> got);
  static void OnAnswer(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  static void OnAnswersClosed(void* closure);
  void TimeOut();  // the timer thread

  natsConnection* const nc_;

  std::mutex async_mu_;  // guards everything below
  std::condition_variable async_cv_;
  std::string answers_inbox_;
  natsSubscription* answers_ = nullptr;  // asynchronous, on "<answers_inbox_>.>"; made on first use
  bool answers_closed_ = false;          // its handler has returned for the last time
  std::unordered_map<uint64_t, Pending> pending_;
  std::set<std::pair<std::chrono::steady_clock::time_point, uint64_t>> deadlines_;
  uint64_t queries_ = 0;
  bool stopping_ = false;
  std::thread timer_;
};

}  // namespace loanledger::cluster
