#include "server/batch_writer.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <vector>

#include "schema/check.h"
#include "server/metrics.h"

namespace loanledger::server {

BatchWriter::BatchWriter(storage::Ledger& ledger, Metrics& metrics, size_t queue_batches_max,
                         size_t group_batches_max)
    : apply_([&ledger](std::span<const storage::Batch* const> batches) {
        return ledger.ApplyGroup(batches);
      }),
      metrics_(metrics),
      queue_batches_max_(queue_batches_max),
      group_batches_max_(group_batches_max) {
  LL_CHECK(queue_batches_max_ >= 1);
  LL_CHECK(group_batches_max_ >= 1);
}

BatchWriter::~BatchWriter() { Stop(); }

void BatchWriter::UseApply(ApplyFn apply) {
  LL_CHECK(!thread_.joinable());
  apply_ = std::move(apply);
}

void BatchWriter::Start() {
  LL_CHECK(!thread_.joinable());
  thread_ = std::thread([this] { Loop(); });
}

BatchWriter::Enqueue BatchWriter::TryEnqueue(Job& job, std::function<void()> on_room) {
  LL_CHECK(job.done != nullptr);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Enqueue::kStopped;
    if (queue_.size() >= queue_batches_max_) {
      if (on_room) room_waiters_.push_back(std::move(on_room));
      return Enqueue::kFull;
    }
    queue_.push_back(std::move(job));
    metrics_.writer_queue.Set(static_cast<double>(queue_.size()));
  }
  cv_.notify_one();
  return Enqueue::kQueued;
}

void BatchWriter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  // Only when the thread never ran: answer what is left.
  std::deque<Job> left;
  std::vector<std::function<void()>> waiters;  // they try again and see kStopped
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(queue_);
    waiters.swap(room_waiters_);
  }
  for (Job& job : left) job.done(Status::Unavailable("server is shutting down"));
  for (auto& wake : waiters) wake();
}

size_t BatchWriter::depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void BatchWriter::Loop() {
  std::deque<Job> group;
  std::vector<std::function<void()>> waiters;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) {
        LL_CHECK(stopping_);
        return;  // stopping and drained
      }
      while (!queue_.empty() && group.size() < group_batches_max_) {
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      metrics_.writer_queue.Set(static_cast<double>(queue_.size()));
      waiters.swap(room_waiters_);  // the queue has room now
    }
    for (auto& wake : waiters) wake();
    waiters.clear();
    ApplyGroup(group);
    group.clear();
  }
}

void BatchWriter::ApplyGroup(std::deque<Job>& group) {
  LL_CHECK(!group.empty());
  std::vector<const storage::Batch*> batches;
  batches.reserve(group.size());
  for (const Job& job : group) batches.push_back(&job.batch);

  const auto start = std::chrono::steady_clock::now();
  Result<std::vector<storage::ApplyResult>> results = apply_(batches);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_.group_commit.Observe(static_cast<double>(group.size()));

  if (!results.ok()) {
    // Nothing of the group was applied (Ledger contract); every batch is
    // answered with the error and may be resent.
    // A follower's NOT_LEADER is routine (the client follows the leader).
    const bool not_leader = results.status().code() == Status::Code::kNotLeader;
    if (!not_leader) {
      spdlog::error("group commit of {} batches failed: {}", group.size(),
                    results.status().ToString());
    }
    for (Job& job : group) {
      if (!not_leader) metrics_.OnBatchFailed();
      job.done(results.status());
    }
    return;
  }
  LL_CHECK(results->size() == group.size());
  for (size_t i = 0; i < group.size(); ++i) {
    storage::ApplyResult& r = (*results)[i];
    if (r.applied) {
      metrics_.OnBatchApplied(r.events_applied, r.events_duplicate, seconds);
    } else {
      // A skipped batch (its stream had a rejection) counts as rejected,
      // with no event to blame.
      LL_CHECK(r.skipped != !r.rejections.empty());
      metrics_.OnBatchRejected(r.rejections, seconds);
    }
    group[i].done(std::move(r));
  }
}

}  // namespace loanledger::server
