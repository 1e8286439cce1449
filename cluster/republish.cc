// --republish-tail: see republish.h.
#include "cluster/republish.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <string_view>
#include <thread>
#include <vector>

#include "cluster/nats_util.h"

namespace loanledger::cluster {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

Status RepublishTail(TailRepair* r, uint64_t last, uint64_t applied) {
  const std::string refuse = "--republish-tail: ";
  // The stream must be a prefix of this store's log: its last record is
  // this store's record at that position (another node that published
  // after the loss would have put different records there).
  if (last > 0) {
    natsMsg* raw = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = js_GetMsg(&raw, r->js, r->stream.c_str(), last, nullptr, &jerr);
    if (s != NATS_OK) {
      return Status::Unavailable("read record " + std::to_string(last) + " of " + r->stream + ": " +
                                 NatsError(s, jerr));
    }
    MsgPtr msg(raw);
    const std::string_view theirs(natsMsg_GetData(msg.get()),
                                  static_cast<size_t>(natsMsg_GetDataLength(msg.get())));
    Result<std::vector<std::string>> mine = r->ledger.PublishedRecords(last, last, 1);
    if (!mine.ok()) {
      return Status::InvalidArgument(refuse + "this store's record at " + std::to_string(last) +
                                     ": " + mine.status().message());
    }
    if (mine->size() != 1 || mine->front() != theirs) {
      return Status::InvalidArgument(
          refuse + "the record at stream " + r->stream + " sequence " + std::to_string(last) +
          " differs from this store's record at that position: the stream is not a prefix of "
          "this store's log (another node published after the loss, or the store belongs to "
          "another cluster); nothing republished");
    }
  }
  // No other node may lead (and publish) meanwhile. A lease left from
  // before the loss expires within the TTL.
  const auto lease_deadline = Clock::now() + milliseconds(2 * r->options.lease_ms);
  while (true) {
    kvEntry* e = nullptr;
    const natsStatus s = kvStore_Get(&e, r->leases, r->lease_key.c_str());
    if (s == NATS_NOT_FOUND) break;
    if (s != NATS_OK) return Status::Unavailable("read the lease: " + NatsError(s));
    const std::string v(static_cast<const char*>(kvEntry_Value(e)), kvEntry_ValueLen(e));
    kvEntry_Destroy(e);
    const std::string holder = v.substr(0, v.find('\n'));
    if (v.empty() || holder == r->options.node) break;
    if (Clock::now() > lease_deadline) {
      return Status::InvalidArgument(refuse + "node " + holder + " leads partition " +
                                     std::to_string(r->options.partition) +
                                     ": stop every other node of the partition first");
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  spdlog::warn("cluster: stream {} ends at {} but this store has applied {}: republishing {}..{}",
               r->stream, last, applied, last + 1, applied);
  r->started = true;
  uint64_t next = last + 1;
  while (next <= applied) {
    Result<std::vector<std::string>> records =
        r->ledger.PublishedRecords(next, std::min(applied, next + 255), size_t{8} << 20);
    if (!records.ok()) {
      return Status::InvalidArgument(refuse + "this store's records from " + std::to_string(next) +
                                     ": " + records.status().message());
    }
    const GroupPublisher::Outcome out = r->publisher.Publish(*records, next - 1);
    r->republished += out.stored;
    if (!out.why.empty()) {
      if (out.fenced) {
        return Status::InvalidArgument(
            refuse + "stream " + r->stream + " moved past " + std::to_string(out.last) +
            " while republishing (another node published): stop every other node of the "
            "partition and compare the stream with this store before going on (" +
            std::to_string(r->republished) + " records republished)");
      }
      return Status::Unavailable("republish to " + r->stream + " from " +
                                 std::to_string(out.last + 1) + ": " + out.why);
    }
    next = out.last + 1;
  }
  spdlog::warn("cluster: republished stream {} up to {} from this store ({} records)", r->stream,
               applied, r->republished);
  return Status::Ok();
}

}  // namespace loanledger::cluster
