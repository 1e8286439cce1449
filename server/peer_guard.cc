#include "server/peer_guard.h"

#include <algorithm>

#include "schema/check.h"

namespace loanledger::server {
namespace {

// Shared failure slot once kFailurePeersMax addresses are tracked.
const std::string kOverflowPeer = "*";

}  // namespace

PeerGuard::PeerGuard(const ServerConfig& config)
    : unauthenticated_per_peer_max_(config.unauthenticated_per_peer_max),
      failures_free_(config.auth_failures_free),
      window_(config.auth_failure_window_ms),
      delay_first_(config.auth_failure_delay_ms),
      delay_max_(std::max(config.auth_failure_delay_ms, config.auth_failure_delay_max_ms)) {
  LL_CHECK(unauthenticated_per_peer_max_ >= 1);
  LL_CHECK(window_.count() >= 1);
}

bool PeerGuard::AdmitUnauthenticated(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  uint32_t& waiting = unauthenticated_[address];
  if (waiting >= unauthenticated_per_peer_max_) return false;
  ++waiting;
  return true;
}

void PeerGuard::ReleaseUnauthenticated(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = unauthenticated_.find(address);
  LL_CHECK(it != unauthenticated_.end() && it->second > 0);  // paired with AdmitUnauthenticated
  if (--it->second == 0) unauthenticated_.erase(it);
}

PeerGuard::Verdict PeerGuard::OnAuthFailure(const std::string& address, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = failures_.find(address);
  if (it == failures_.end()) {
    if (failures_.size() >= kFailurePeersMax) DropExpiredFailures(now);
    const std::string& key = failures_.size() < kFailurePeersMax ? address : kOverflowPeer;
    it = failures_.try_emplace(key, Failures{now, 0}).first;
  }
  Failures& f = it->second;
  if (now - f.window_start >= window_) f = Failures{now, 0};
  ++f.count;
  Verdict verdict;
  verdict.failures = f.count;
  if (f.count > failures_free_) {
    // 1st throttled failure: delay_first_, then x2 each, capped (the shift
    // is capped too: 2^20 x any delay_first_ is beyond any delay_max_).
    const uint32_t doublings = std::min<uint32_t>(f.count - failures_free_ - 1, 20);
    verdict.delay = std::min(delay_max_, delay_first_ * (int64_t{1} << doublings));
  }
  LL_CHECK(verdict.delay <= delay_max_);
  return verdict;
}

void PeerGuard::DropExpiredFailures(Clock::time_point now) {
  std::erase_if(failures_, [&](const auto& entry) {
    return entry.first != kOverflowPeer && now - entry.second.window_start >= window_;
  });
}

size_t PeerGuard::unauthenticated_peers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unauthenticated_.size();
}

size_t PeerGuard::failure_peers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_.size();
}

}  // namespace loanledger::server
