// The server-wide budget of request bytes in process (--server-inflight-bytes-max),
// shared by every session. A session that finds it full stops reading and
// waits to be told that bytes were released (no polling).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

namespace loanledger::server {

class ByteBudget {
 public:
  explicit ByteBudget(uint64_t bytes_max) : bytes_max_(bytes_max) {}
  ByteBudget(const ByteBudget&) = delete;
  ByteBudget& operator=(const ByteBudget&) = delete;

  // Thread-safe. Reserves n bytes whatever the bound (the caller's small
  // frames: session.cc says why).
  void Add(uint64_t n);
  // Thread-safe. Reserves n bytes if they fit the bound, or if nothing is
  // reserved (a frame is always admitted alone). Otherwise returns false and
  // keeps `on_room` (if any), called once on the thread of the next Release:
  // the caller waits for that instead of polling, then tries again.
  bool TryReserve(uint64_t n, std::function<void()> on_room);
  // Thread-safe. Returns n reserved bytes and wakes the waiters.
  // REQUIRES: n <= used().
  void Release(uint64_t n);
  uint64_t used() const { return used_.load(); }

 private:
  bool TryAdd(uint64_t n);  // the bound check and reservation, lock-free
  void WakeAll();           // calls every waiting on_room

  const uint64_t bytes_max_;
  std::atomic<uint64_t> used_{0};               // bytes reserved, all sessions
  std::atomic<uint32_t> waiting_{0};            // == waiters_.size(), read without mu_ by Release
  std::mutex mu_;                               // guards waiters_
  std::vector<std::function<void()>> waiters_;  // TryReserve's on_room after a refusal
};

}  // namespace loanledger::server
