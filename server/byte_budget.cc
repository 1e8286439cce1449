// The server-wide byte budget (byte_budget.h).
#include "server/byte_budget.h"

#include <utility>

#include "schema/check.h"

namespace loanledger::server {

void ByteBudget::Add(uint64_t n) { used_.fetch_add(n); }

bool ByteBudget::TryAdd(uint64_t n) {
  uint64_t current = used_.load();
  do {
    // A frame is always admitted when nothing else is in flight.
    if (current > 0 && current + n > bytes_max_) return false;
  } while (!used_.compare_exchange_weak(current, current + n));
  return true;
}

bool ByteBudget::TryReserve(uint64_t n, std::function<void()> on_room) {
  if (TryAdd(n)) return true;
  if (!on_room) return false;
  std::lock_guard lock(mu_);
  // Registered first, then tried again: a Release between the first try and
  // the registration is seen by this try; a later one sees waiting_ > 0
  // (both sides sequentially consistent), so no wake-up is lost.
  waiters_.push_back(std::move(on_room));
  waiting_.store(static_cast<uint32_t>(waiters_.size()));
  if (!TryAdd(n)) return false;
  waiters_.pop_back();  // ours: WakeAll takes mu_ to take waiters, so it is still there
  waiting_.store(static_cast<uint32_t>(waiters_.size()));
  return true;
}

void ByteBudget::Release(uint64_t n) {
  const uint64_t before = used_.fetch_sub(n);
  LL_CHECK(before >= n);
  if (waiting_.load() > 0) WakeAll();
}

void ByteBudget::WakeAll() {
  std::vector<std::function<void()>> waiters;
  {
    std::lock_guard lock(mu_);
    waiters.swap(waiters_);
    waiting_.store(0);
  }
  for (auto& wake : waiters) wake();
}

}  // namespace loanledger::server
