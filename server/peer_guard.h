// Per-peer-address defences against hostile clients (server/README.md,
// "Hostile clients"). A peer is an IP address (the port is not part of it).
//
// 1. Unauthenticated connections: at most unauthenticated_per_peer_max
//    connections from one address may be waiting for their Hello at once;
//    beyond that the server refuses new connections from that address as it
//    does at the connection cap. One address can then not fill
//    connections_max with silent sockets, while a bank's few connections
//    (which authenticate within milliseconds) never notice.
// 2. Failed Hellos: the first auth_failures_free failures of an address
//    within auth_failure_window_ms are answered at once; each further one is
//    answered (UNAUTHENTICATED, then close) only after a delay that doubles
//    from auth_failure_delay_ms up to auth_failure_delay_max_ms. A valid
//    token is never delayed or refused, even from an address that is being
//    throttled (banks behind one NAT address with a misconfigured sibling
//    keep working), and a success does not reset the count (a holder of one
//    valid token cannot use it to keep guessing others at full speed).
//
// Memory: the unauthenticated table holds addresses with a connection
// waiting (at most connections_max); the failure table at most
// kFailurePeersMax addresses, after which expired entries are dropped and,
// if none has expired, new addresses share one slot (so many addresses are
// throttled together rather than forgotten).
//
// Thread-safe: one mutex, taken once per accepted connection and once per
// Hello, never per frame. The clock is passed in (tests drive it).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "server/config.h"

namespace loanledger::server {

class PeerGuard {
 public:
  using Clock = std::chrono::steady_clock;

  // What to do with one failed Hello.
  struct Verdict {
    std::chrono::milliseconds delay{0};  // wait this long before answering
    uint32_t failures = 0;               // failures of this address in the current window
  };

  explicit PeerGuard(const ServerConfig& config);
  PeerGuard(const PeerGuard&) = delete;
  PeerGuard& operator=(const PeerGuard&) = delete;

  // At accept. False: the address already has unauthenticated_per_peer_max
  // connections waiting for a Hello (refuse this one). True: the caller
  // holds a slot and must call ReleaseUnauthenticated exactly once, when
  // the Hello succeeded or the connection ended.
  [[nodiscard]] bool AdmitUnauthenticated(const std::string& address);
  void ReleaseUnauthenticated(const std::string& address);

  // Records a failed Hello from address at now.
  Verdict OnAuthFailure(const std::string& address, Clock::time_point now);

  // Addresses currently tracked (for tests).
  size_t unauthenticated_peers() const;
  size_t failure_peers() const;

  // Failure records kept at most (bounded memory under many addresses).
  static constexpr size_t kFailurePeersMax = 4096;

 private:
  struct Failures {
    Clock::time_point window_start;  // first failure of the current window
    uint32_t count = 0;              // failures since window_start
  };
  void DropExpiredFailures(Clock::time_point now);  // REQUIRES: mu_ held

  const uint32_t unauthenticated_per_peer_max_;
  const uint32_t failures_free_;
  const std::chrono::milliseconds window_;
  const std::chrono::milliseconds delay_first_;
  const std::chrono::milliseconds delay_max_;
  mutable std::mutex mu_;                                      // guards the two maps
  std::unordered_map<std::string, uint32_t> unauthenticated_;  // address -> waiting (> 0)
  std::unordered_map<std::string, Failures> failures_;         // address -> failures in window
};

}  // namespace loanledger::server
