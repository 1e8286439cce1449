// The fan-out's asking side (cluster.h, Node::Ask; docs/cluster.md,
// "Partitions"): a query's questions to the other partitions all go out at
// once, and their answers are collected later, so that the caller computes
// its own partition's answer while the others travel. No thread is started:
// each question is published with a reply subject of a synchronous
// subscription (a "slot", created once and reused by one query at a time),
// and the asking thread takes the answers from it itself — one thread wake-up
// fewer per answer than natsConnection_Request, whose replies pass through
// the library's response thread.
#pragma once

#include <nats/nats.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
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
  ~Asker();  // REQUIRES: no Asking it returned is still alive

  // Publishes `request` to every partition of `partitions` (at most 65535),
  // each with its own reply subject, and returns at once. Thread-safe.
  std::unique_ptr<Node::Asking> Ask(std::span<const uint32_t> partitions, std::string_view request,
                                    uint32_t timeout_ms);

  struct Slot {
    std::unique_ptr<natsSubscription, SubDeleter> sub;  // synchronous, on "<inbox>.>"
    std::string inbox;
    uint64_t asked = 0;  // queries sent through this slot: the reply subjects' first token
  };

 private:
  friend class AskingImpl;
  Result<std::unique_ptr<Slot>> Take();  // a free slot, or a new one
  void Give(std::unique_ptr<Slot> slot);

  natsConnection* const nc_;
  std::mutex mu_;                            // guards free_ and in_use_
  std::vector<std::unique_ptr<Slot>> free_;  // at most the number of queries ever at once
  size_t in_use_ = 0;
};

}  // namespace loanledger::cluster
