// --republish-tail: see republish.h.
#include "cluster/republish.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "cluster/nats_util.h"
#include "cluster/record_codec.h"

namespace loanledger::cluster {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const std::string kRefuse = "--republish-tail: ";

// The partition's lease, held for the repair: taken as the campaigner takes
// it (node.cc, CampaignLoop: the same bucket, key and value), renewed every
// quarter of the TTL by a thread of its own and trusted for two thirds of
// the TTL from the start of the request that took or renewed it. Given back
// on destruction.
class RepairLease {
 public:
  explicit RepairLease(const TailRepair& r)
      : kv_(r.leases), key_(r.lease_key), value_(r.lease_value), options_(r.options) {}

  ~RepairLease() {
    Stop();
    if (rev_ == 0) return;
    // As the node's ReleaseLease: only our own revision is deleted.
    uint64_t rev = 0;
    if (kvStore_Update(&rev, kv_, key_.c_str(), "", 0, rev_) == NATS_OK) {
      kvStore_Delete(kv_, key_.c_str());
      spdlog::info("cluster: --republish-tail gave the lease of partition {} back",
                   options_.partition);
    }
  }

  // Within two TTLs (a lease left from before the loss expires); a key of
  // this node's own (an earlier process, or an earlier try whose release
  // failed) or an emptied one is taken over at its revision.
  Status Take() {
    const auto deadline = Clock::now() + milliseconds(2 * options_.lease_ms);
    const int size = static_cast<int>(value_.size());
    while (true) {
      const auto started = Clock::now();
      uint64_t rev = 0;
      std::string holder;
      natsStatus s = kvStore_Create(&rev, kv_, key_.c_str(), value_.data(), size);
      if (s != NATS_OK) {
        kvEntry* e = nullptr;
        const natsStatus g = kvStore_Get(&e, kv_, key_.c_str());
        if (g != NATS_OK && g != NATS_NOT_FOUND) {
          return Status::Unavailable("read the lease of partition " +
                                     std::to_string(options_.partition) + ": " + NatsError(g));
        }
        if (g == NATS_OK) {
          const std::string v(static_cast<const char*>(kvEntry_Value(e)), kvEntry_ValueLen(e));
          const uint64_t held = kvEntry_Revision(e);
          kvEntry_Destroy(e);
          holder = v.substr(0, v.find('\n'));
          if (v.empty() || holder == options_.node) {
            holder.clear();
            s = kvStore_Update(&rev, kv_, key_.c_str(), value_.data(), size, held);
          }
        }
      }
      if (s == NATS_OK) {
        std::lock_guard lock(mu_);
        rev_ = rev;
        valid_until_ = started + milliseconds(options_.lease_ms * 2 / 3);
        renewer_ = std::thread([this] { RenewLoop(); });
        spdlog::warn(
            "cluster: --republish-tail holds the lease of partition {} (no other node "
            "leads until the repair is over)",
            options_.partition);
        return Status::Ok();
      }
      if (Clock::now() > deadline) {
        if (holder.empty()) {
          return Status::Unavailable("cannot take the lease of partition " +
                                     std::to_string(options_.partition) + ": " + NatsError(s));
        }
        return Status::InvalidArgument(kRefuse + "node " + holder + " leads partition " +
                                       std::to_string(options_.partition) +
                                       ": stop every other node of the partition first");
      }
      std::this_thread::sleep_for(milliseconds(100));
    }
  }

  // Ok while the lease may be trusted; UNAVAILABLE otherwise (a retry takes
  // it again, or refuses naming the node that took it).
  Status Check() const {
    std::lock_guard lock(mu_);
    if (lost_) {
      return Status::Unavailable("lost the lease of partition " +
                                 std::to_string(options_.partition) + " during the repair");
    }
    if (Clock::now() >= valid_until_) {
      return Status::Unavailable("the lease of partition " + std::to_string(options_.partition) +
                                 " was not renewed in time during the repair");
    }
    return Status::Ok();
  }

 private:
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (renewer_.joinable()) renewer_.join();
  }

  void RenewLoop() {
    const auto period = milliseconds(std::max<uint32_t>(options_.lease_ms / 4, 50));
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, period, [&] { return stopping_; })) {
      const uint64_t rev = rev_;
      lock.unlock();
      const auto started = Clock::now();
      uint64_t new_rev = 0;
      const natsStatus s = kvStore_Update(&new_rev, kv_, key_.c_str(), value_.data(),
                                          static_cast<int>(value_.size()), rev);
      bool lost = false;
      if (s != NATS_OK) {  // lost if the key no longer holds our revision
        kvEntry* e = nullptr;
        const natsStatus g = kvStore_Get(&e, kv_, key_.c_str());
        lost = g == NATS_NOT_FOUND || (g == NATS_OK && kvEntry_Revision(e) != rev);
        if (e != nullptr) kvEntry_Destroy(e);
      }
      lock.lock();
      if (s == NATS_OK) {
        rev_ = new_rev;
        valid_until_ = started + milliseconds(options_.lease_ms * 2 / 3);
      } else if (lost) {
        spdlog::error("cluster: --republish-tail lost the lease of partition {}",
                      options_.partition);
        lost_ = true;
        rev_ = 0;
        return;
      }
    }
  }

  kvStore* const kv_;
  const std::string& key_;
  const std::string& value_;
  const ClusterOptions& options_;
  std::thread renewer_;
  mutable std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  bool stopping_ = false;
  bool lost_ = false;
  uint64_t rev_ = 0;
  Clock::time_point valid_until_{};
};

// The stream's records first..last compared with this store's, in chunks
// of at most 256 records or 8 MiB from the ledger and an ordered consumer
// on the stream (whose client buffer is bounded by the library's pending
// limits and JetStream's flow control): memory stays bounded on a stream of
// any length. Progress is logged every 10 s.
Status CheckPrefix(const TailRepair& r, const RepairLease& lease, uint64_t first, uint64_t last) {
  if (first > last) return Status::Ok();
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Ordered = true;
  so.Config.DeliverPolicy = js_DeliverByStartSequence;
  so.Config.OptStartSeq = first;
  natsSubscription* raw = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_SubscribeSync(&raw, r.js, r.subject.c_str(), nullptr, &so, &jerr);
  if (s != NATS_OK) return Status::Unavailable("read " + r.stream + ": " + NatsError(s, jerr));
  std::unique_ptr<natsSubscription, SubDeleter> sub(raw);
  spdlog::info("cluster: --republish-tail: comparing stream {} records {}..{} with this store's",
               r.stream, first, last);
  const auto t0 = Clock::now();
  auto next_log = t0 + std::chrono::seconds(10);
  uint64_t bytes = 0;
  uint64_t pos = first;
  while (pos <= last) {
    Result<std::vector<std::string>> mine =
        r.ledger.PublishedRecords(pos, std::min(last, pos + 255), size_t{8} << 20);
    if (!mine.ok()) {
      return Status::InvalidArgument(kRefuse + "this store's records from " + std::to_string(pos) +
                                     ": " + mine.status().message());
    }
    for (const std::string& record : *mine) {
      natsMsg* m = nullptr;
      s = natsSubscription_NextMsg(&m, sub.get(), 10'000);
      if (s != NATS_OK) {
        return Status::Unavailable("read " + r.stream + " at " + std::to_string(pos) + ": " +
                                   NatsError(s));
      }
      MsgPtr msg(m);
      jsMsgMetaData* meta = nullptr;
      s = natsMsg_GetMetaData(&meta, msg.get());
      if (s != NATS_OK) {
        return Status::Unavailable("read " + r.stream + " at " + std::to_string(pos) + ": " +
                                   NatsError(s));
      }
      const uint64_t seq = meta->Sequence.Stream;
      jsMsgMetaData_Destroy(meta);
      std::string buffer;
      Result<std::string_view> theirs = DecodeRecord(msg.get(), &buffer);
      if (!theirs.ok()) {
        return Status::Corruption("read " + r.stream + " at " + std::to_string(pos) + ": " +
                                  theirs.status().message());
      }
      if (seq != pos || *theirs != record) {
        return Status::InvalidArgument(
            kRefuse + "the record at stream " + r.stream + " sequence " + std::to_string(pos) +
            (seq != pos ? " is missing (the next is " + std::to_string(seq) + ")"
                        : " differs from this store's record at that position") +
            " (the first difference in " + std::to_string(first) + ".." + std::to_string(last) +
            "): the stream is not a prefix of this store's log (another node published after "
            "the loss, or the store belongs to another cluster); nothing republished");
      }
      bytes += record.size();
      ++pos;
    }
    if (Status st = lease.Check(); !st.ok()) return st;
    if (Clock::now() >= next_log) {
      next_log += std::chrono::seconds(10);
      spdlog::info("cluster: --republish-tail: stream {} equals this store's up to {} of {}",
                   r.stream, pos - 1, last);
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  spdlog::info(
      "cluster: --republish-tail: stream {} records {}..{} equal this store's ({} records, {:.1f} "
      "MiB in {:.2f} s: {:.0f} records/s)",
      r.stream, first, last, last - first + 1, static_cast<double>(bytes) / (1 << 20), secs,
      static_cast<double>(last - first + 1) / std::max(secs, 1e-3));
  return Status::Ok();
}

}  // namespace

Status RepublishTail(TailRepair* r, uint64_t first, uint64_t last, uint64_t applied) {
  // No other node may lead (and publish) from here on: what is checked
  // below holds until the lease is given back, after the last publish.
  RepairLease lease(*r);
  if (Status st = lease.Take(); !st.ok()) return st;
  if (const char* pause = std::getenv("LOANLEDGER_TEST_REPUBLISH_PAUSE_MS")) {
    const long ms = std::strtol(pause, nullptr, 10);
    spdlog::warn("cluster: --republish-tail: pausing {} ms (LOANLEDGER_TEST_REPUBLISH_PAUSE_MS)",
                 ms);
    std::this_thread::sleep_for(milliseconds(ms));
  }
  // The stream must be a prefix of this store's log: another node that
  // published after the loss would have put different records there.
  if (Status st = CheckPrefix(*r, lease, std::max<uint64_t>(first, 1), last); !st.ok()) return st;
  if (Status st = lease.Check(); !st.ok()) return st;
  spdlog::warn("cluster: stream {} ends at {} but this store has applied {}: republishing {}..{}",
               r->stream, last, applied, last + 1, applied);
  r->started = true;
  uint64_t next = last + 1;
  while (next <= applied) {
    if (Status st = lease.Check(); !st.ok()) return st;
    Result<std::vector<std::string>> records =
        r->ledger.PublishedRecords(next, std::min(applied, next + 255), size_t{8} << 20);
    if (!records.ok()) {
      return Status::InvalidArgument(kRefuse + "this store's records from " + std::to_string(next) +
                                     ": " + records.status().message());
    }
    const GroupPublisher::Outcome out = r->publisher.Publish(*records, next - 1);
    r->republished += out.stored;
    if (!out.why.empty()) {
      if (out.fenced) {
        return Status::InvalidArgument(
            kRefuse + "stream " + r->stream + " moved past " + std::to_string(out.last) +
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
  return Status::Ok();  // the lease is given back; the node's campaigner takes it
}

}  // namespace loanledger::cluster
