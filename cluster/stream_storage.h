// cluster/'s reader of the partition stream's and the JetStream account's
// storage (cluster.h: StreamStorage, Node::RefreshStorage).
#pragma once

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "cluster/cluster.h"
#include "schema/status.h"

namespace loanledger::cluster {

class StorageReader {
 public:
  StorageReader(std::string stream, int replicas, uint32_t poll_ms, uint32_t timeout_ms);

  // Reads both again when the last attempt is older than poll_ms: on the
  // caller's thread, at most 2 x timeout_ms. A failure is counted and the
  // last values are kept. One read at a time; others return at once.
  void Refresh(jsCtx* js);

  // The last values, with age_seconds as of now.
  StreamStorage Last() const;

 private:
  using Clock = std::chrono::steady_clock;
  Status Read(jsCtx* js, StreamStorage* out) const;

  const std::string stream_;
  const std::string tier_;  // the account's limit tier of the stream ("R3"), when tiered
  const std::chrono::milliseconds poll_;
  const int64_t timeout_ms_;
  std::mutex refresh_mu_;  // one Refresh reads at a time

  mutable std::mutex mu_;  // guards the four below
  StreamStorage last_;
  bool failing_ = false;  // the last read failed
  Clock::time_point attempted_at_{};
  Clock::time_point ok_at_;  // the last successful read, or the reader's creation
};

}  // namespace loanledger::cluster
