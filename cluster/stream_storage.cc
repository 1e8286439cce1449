#include "cluster/stream_storage.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "cluster/nats_util.h"

namespace loanledger::cluster {
namespace {

// JetStream's "no limit" is -1 (and 0 for max_age and account limits).
int64_t Limit(int64_t value) { return value > 0 ? value : -1; }

}  // namespace

double StorageUsedRatio(const StreamStorage& s) {
  if (!s.known) return -1;
  double ratio = -1;
  const auto take = [&ratio](uint64_t used, int64_t limit) {
    if (limit > 0) ratio = std::max(ratio, static_cast<double>(used) / static_cast<double>(limit));
  };
  take(s.stream_bytes, s.stream_max_bytes);
  take(s.stream_messages, s.stream_max_messages);
  take(s.account_storage_bytes, s.account_storage_limit_bytes);
  return ratio;
}

StorageReader::StorageReader(std::string stream, int replicas, uint32_t poll_ms,
                             uint32_t timeout_ms)
    : stream_(std::move(stream)),
      tier_("R" + std::to_string(replicas)),
      poll_(poll_ms),
      timeout_ms_(timeout_ms),
      ok_at_(Clock::now()) {}

void StorageReader::Refresh(jsCtx* js) {
  std::unique_lock busy(refresh_mu_, std::try_to_lock);
  if (!busy.owns_lock() || js == nullptr) return;
  {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    if (attempted_at_ != Clock::time_point{} && now - attempted_at_ < poll_) return;
    attempted_at_ = now;
  }
  StreamStorage read;
  const Status s = Read(js, &read);
  std::lock_guard lock(mu_);
  if (!s.ok()) {
    ++last_.read_failures;
    // Logged when reads start failing, then every 60th failure.
    if (!failing_ || last_.read_failures % 60 == 0) {
      spdlog::warn("cluster: cannot read the stream storage ({} failures since start): {}",
                   last_.read_failures, s.message());
    }
    failing_ = true;
    return;
  }
  if (failing_) spdlog::info("cluster: the stream storage is readable again");
  failing_ = false;
  read.known = true;
  read.read_failures = last_.read_failures;
  last_ = read;
  ok_at_ = Clock::now();
}

StreamStorage StorageReader::Last() const {
  std::lock_guard lock(mu_);
  StreamStorage s = last_;
  s.age_seconds = std::chrono::duration<double>(Clock::now() - ok_at_).count();
  return s;
}

Status StorageReader::Read(jsCtx* js, StreamStorage* out) const {
  jsOptions o;
  jsOptions_Init(&o);
  o.Wait = timeout_ms_;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  jsStreamInfo* si = nullptr;
  natsStatus s = js_GetStreamInfo(&si, js, stream_.c_str(), &o, &jerr);
  if (s != NATS_OK) return Status::Unavailable("stream " + stream_ + ": " + NatsError(s, jerr));
  out->stream_bytes = si->State.Bytes;
  out->stream_messages = si->State.Msgs;
  if (si->Config != nullptr) {
    out->stream_max_bytes = Limit(si->Config->MaxBytes);
    out->stream_max_messages = Limit(si->Config->MaxMsgs);
    // MaxAge is in nanoseconds; a limit under a second shows as 1.
    const int64_t age = Limit(si->Config->MaxAge);
    out->stream_max_age_seconds = age > 0 ? std::max<int64_t>(age / 1'000'000'000, 1) : -1;
  }
  jsStreamInfo_Destroy(si);
  jsAccountInfo* ai = nullptr;
  s = js_GetAccountInfo(&ai, js, &o, &jerr);
  if (s != NATS_OK) return Status::Unavailable("account info: " + NatsError(s, jerr));
  out->account_storage_bytes = ai->Store;
  out->account_storage_limit_bytes = Limit(ai->Limits.MaxStore);
  // With tiered limits (per replica count) the stream's tier holds them.
  for (int i = 0; i < ai->TiersLen; ++i) {
    const jsTier* t = ai->Tiers[i];
    if (t != nullptr && t->Name != nullptr && tier_ == t->Name && Limit(t->Limits.MaxStore) > 0) {
      out->account_storage_bytes = t->Store;
      out->account_storage_limit_bytes = t->Limits.MaxStore;
    }
  }
  jsAccountInfo_Destroy(ai);
  return Status::Ok();
}

}  // namespace loanledger::cluster
