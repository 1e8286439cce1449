// The leader's publish of a group's journal records in one quorum round trip
// (docs/cluster.md): each record is sent without waiting for the previous
// one's ack. Record i expects the stream's last sequence to be expected + i
// and, after the first, its last message id to be record i-1's (ids unique
// to this process and group). JetStream checks both in the stream's order,
// so a record is stored only right after the group's previous one: when one
// fails every later one fails too, and the stream holds a prefix of the group
// at most, as when records are published one by one.
#pragma once

#include <nats/nats.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/nats_util.h"
#include "schema/status.h"

namespace loanledger::cluster {

class GroupPublisher {
 public:
  // A JetStream context of its own on `nc` (which must outlive this), whose
  // acks come to this object.
  static Result<std::unique_ptr<GroupPublisher>> Create(natsConnection* nc, std::string subject);
  ~GroupPublisher();

  struct Outcome {
    uint64_t last = 0;    // the stream sequence of the last record stored in order
    size_t stored = 0;    // records stored in order (a prefix of the group)
    bool fenced = false;  // the first failure: the stream's last sequence or id moved on
    // The first record had no responders (the stream has no leader): none
    // of the group reached the stream, and the same publish may be retried.
    bool not_delivered = false;
    std::string why;  // of the first failure; "" when every record was stored
  };
  // Publishes `records` after stream sequence `expected`. Only one call at a
  // time (the writer thread's).
  Outcome Publish(std::span<const std::string> records, uint64_t expected);

 private:
  struct Result1 {
    bool done = false;
    uint64_t seq = 0;  // stored at, on success
    natsStatus status = NATS_OK;
    jsErrCode error = static_cast<jsErrCode>(0);
    std::string text;
  };
  explicit GroupPublisher(std::string subject);
  static void OnAck(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure);
  void NoteAck(std::string_view id, const jsPubAck* pa, const jsPubAckErr* pae);
  size_t Send(std::span<const std::string> records, uint64_t expected, const std::string& prefix,
              natsStatus* error);

  const std::string subject_;
  const std::string nonce_;  // makes message ids unique to this process
  std::unique_ptr<jsCtx, JsDeleter> js_;
  std::mutex mu_;  // guards the fields below (the writer waits; libnats's thread notes)
  std::condition_variable cv_;
  uint64_t group_ = 0;
  std::vector<Result1> results_;
  size_t done_ = 0;
};

}  // namespace loanledger::cluster
