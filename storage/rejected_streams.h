// The streams of batches that had a rejected batch (Batch::stream), so that
// ApplyGroup skips what a client sent after it. Internal to storage/;
// used by the writer only (under LedgerImpl::write_mu_).
//
// For each (caller institution, stream) it keeps the position in the stream
// (Batch::stream_batch) of the first rejected batch, r. A later batch of the
// stream (position > r) is skipped; the rejected batch itself, resent after
// a lost reply, is judged again (so the client gets its reasons), and if it
// applies then the stream is clear again; earlier ones are judged as usual.
// Changes made while a group is processed are tentative: Commit() keeps
// them, Rollback() undoes them (a group whose write failed changed nothing).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "storage/ledger.h"

namespace loanledger::storage {

class RejectedStreams {
 public:
  explicit RejectedStreams(size_t streams_max) : streams_max_(streams_max) {}

  bool Skips(const Batch& b) const {
    if (b.stream == 0) return false;
    const auto it = streams_.find(Key(b));
    return it != streams_.end() && b.stream_batch > it->second.first_rejected;
  }

  // Records the outcome of a batch that was judged (not skipped).
  void OnJudged(const Batch& b, bool applied) {
    if (b.stream == 0) return;
    StreamKey key = Key(b);
    const auto it = streams_.find(key);
    if (applied) {
      if (it == streams_.end() || it->second.first_rejected != b.stream_batch) return;
      undo_.emplace_back(key, it->second);
      streams_.erase(it);
      return;
    }
    if (it != streams_.end() && it->second.first_rejected <= b.stream_batch) return;
    undo_.emplace_back(key, it == streams_.end() ? std::nullopt : std::optional(it->second));
    const Entry entry{b.stream_batch, next_generation_++};
    streams_[key] = entry;
    added_.emplace_back(std::move(key), entry.generation);
  }

  // Keeps this group's changes; forgets the oldest streams beyond the bound.
  void Commit() {
    undo_.clear();
    for (auto& added : added_) order_.push_back(std::move(added));
    added_.clear();
    while (streams_.size() > streams_max_ && !order_.empty()) {
      const auto it = streams_.find(order_.front().first);
      if (it != streams_.end() && it->second.generation == order_.front().second) {
        streams_.erase(it);
      }
      order_.pop_front();
    }
  }

  // Undoes this group's changes, newest first.
  void Rollback() {
    for (auto u = undo_.rbegin(); u != undo_.rend(); ++u) {
      if (u->second) {
        streams_[u->first] = *u->second;
      } else {
        streams_.erase(u->first);
      }
    }
    undo_.clear();
    added_.clear();
  }

  size_t size() const { return streams_.size(); }

 private:
  using StreamKey = std::pair<std::string, uint64_t>;  // (caller_institution, stream)
  struct Entry {
    uint64_t first_rejected = 0;  // position of the first rejected batch in the stream
    uint64_t generation = 0;      // when recorded, to match order_ entries
  };
  static StreamKey Key(const Batch& b) { return {b.caller_institution, b.stream}; }

  const size_t streams_max_;
  std::map<StreamKey, Entry> streams_;
  std::deque<std::pair<StreamKey, uint64_t>> order_;   // oldest first; may hold stale entries
  std::vector<std::pair<StreamKey, uint64_t>> added_;  // this group's, for order_ at Commit
  std::vector<std::pair<StreamKey, std::optional<Entry>>> undo_;
  uint64_t next_generation_ = 0;
};

}  // namespace loanledger::storage
