// The single writer thread (docs/data.md durability, STYLE.md "concurrent writers
// grouped into one log write and one sync"). Sessions hand it batches through
// a bounded queue; it takes every batch waiting (up to group_batches_max),
// applies them with one Ledger::ApplyGroup (one WAL sync), and calls each
// batch's `done` with its result. A result reaches `done` only after
// ApplyGroup has returned, so an ack sent from it is durable.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "schema/status.h"
#include "storage/ledger.h"

namespace loanledger::server {

class Metrics;

class BatchWriter {
 public:
  struct Job {
    storage::Batch batch;                                    // what to apply
    std::function<void(Result<storage::ApplyResult>)> done;  // called once, on the writer thread
  };
  enum class Enqueue { kQueued, kFull, kStopped };

  BatchWriter(storage::Ledger& ledger, Metrics& metrics, size_t queue_batches_max,
              size_t group_batches_max);
  // Cluster mode: groups go to `apply` (cluster::Node::ApplyGroup) instead
  // of Ledger::ApplyGroup; same contract. Before Start.
  using ApplyFn = std::function<Result<std::vector<storage::ApplyResult>>(
      std::span<const storage::Batch* const>)>;
  void UseApply(ApplyFn apply);
  ~BatchWriter();  // Stop()
  BatchWriter(const BatchWriter&) = delete;
  BatchWriter& operator=(const BatchWriter&) = delete;

  void Start();
  // Thread-safe. Moves from job only when it returns kQueued. On kFull,
  // `on_room` (if any) is kept and called once, on the writer thread, when
  // the writer next takes batches off the queue or stops: the caller waits
  // for that instead of polling, then tries again.
  Enqueue TryEnqueue(Job& job, std::function<void()> on_room = nullptr);
  // Refuses new jobs, applies those already queued, joins the thread.
  void Stop();
  size_t depth() const;

 private:
  void Loop();
  void ApplyGroup(std::deque<Job>& group);

  ApplyFn apply_;
  Metrics& metrics_;
  const size_t queue_batches_max_;                   // bound of queue_
  const size_t group_batches_max_;                   // batches per ApplyGroup call
  mutable std::mutex mu_;                            // guards queue_ and stopping_
  std::condition_variable cv_;                       // signalled on enqueue and on stop
  std::deque<Job> queue_;                            // FIFO: batches are applied in arrival order
  std::vector<std::function<void()>> room_waiters_;  // TryEnqueue's on_room after kFull
  bool stopping_ = false;                            // no new jobs; drain and exit
  std::thread thread_;
};

}  // namespace loanledger::server
