// cluster::Node over the NATS C client (libnats 3.4): see cluster.h and
// docs/cluster.md. Three threads of its own: the follower (an ordered
// consumer of the partition's stream feeding Ledger::ApplyPublished), the
// campaigner (takes and renews the lease key) and NATS's own; the server's
// writer thread calls ApplyGroup, its metrics refresh RefreshStorage.
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/asker.h"
#include "cluster/cluster.h"
#include "cluster/group_publisher.h"
#include "cluster/nats_util.h"
#include "cluster/record_codec.h"
#include "cluster/republish.h"
#include "cluster/stream_storage.h"
#include "schema/check.h"
#include "schema/event.h"

namespace loanledger::cluster {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kConfigBucket = "loanledger_cluster";
constexpr const char* kLeaseBucket = "loanledger_leases";

// The lease value: "node\naddress".
std::string LeaseValue(const ClusterOptions& o) { return o.node + "\n" + o.advertise; }

class NodeImpl final : public Node {
 public:
  NodeImpl(ClusterOptions options, storage::Ledger& ledger)
      : Node(options.partition, options.partitions),
        options_(std::move(options)),
        ledger_(ledger),
        stream_("LOANLEDGER_P" + std::to_string(options_.partition)),
        subject_("loanledger.p" + std::to_string(options_.partition) + ".journal"),
        lease_key_("p" + std::to_string(options_.partition)),
        storage_(stream_, options_.replicas, options_.storage_poll_ms,
                 options_.storage_timeout_ms) {}

  ~NodeImpl() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    // With NATS unreachable, every request below would wait out its
    // timeout: the campaigner's lease update and read, the follower's
    // subscribe, the lease release (5 s each; a node took 15 s to exit).
    // Closed, the connection fails them at once; the lease then ends by its
    // TTL, as it would have anyway.
    if (nc_ != nullptr && natsConnection_Status(nc_.get()) != NATS_CONN_STATUS_CONNECTED) {
      spdlog::info("cluster: NATS unreachable while stopping: closing the connection first");
      natsConnection_Close(nc_.get());
    }
    query_sub_.reset();  // no answer runs past here
    if (campaigner_.joinable()) campaigner_.join();
    if (follower_.joinable()) follower_.join();
    ReleaseLease();
    leases_.reset();
    config_.reset();
    publisher_.reset();
    asker_.reset();
    js_.reset();
    nc_.reset();
  }

  Status Connect() {
    natsOptions* raw = nullptr;
    natsStatus s = natsOptions_Create(&raw);
    if (s != NATS_OK) return Status::Internal("NATS options: " + NatsError(s));
    std::unique_ptr<natsOptions, decltype(&natsOptions_Destroy)> opts(raw, natsOptions_Destroy);
    std::vector<const char*> urls;
    for (const std::string& u : options_.nats_urls) urls.push_back(u.c_str());
    s = natsOptions_SetServers(opts.get(), urls.data(), static_cast<int>(urls.size()));
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts.get(), -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts.get(), 200);
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts.get(), 2000);
    if (s == NATS_OK) s = natsOptions_SetName(opts.get(), options_.node.c_str());
    // Answers to other nodes and a group's journal records go out at once
    // instead of waiting for the library's flusher (about 1 ms per answer
    // otherwise: bench/RESULTS.md, "Partitions").
    if (s == NATS_OK) s = natsOptions_SetSendAsap(opts.get(), true);
    // The servers in --nats order, not shuffled: the operator lists this
    // machine's nats-server first, so a question to another partition and
    // its answer cross one route less (bench/RESULTS.md, "Partitions").
    if (s == NATS_OK) s = natsOptions_SetNoRandomize(opts.get(), true);
    if (s != NATS_OK) return Status::InvalidArgument("NATS servers: " + NatsError(s));
    const auto deadline = Clock::now() + milliseconds(options_.start_timeout_ms);
    while (true) {
      natsConnection* c = nullptr;
      s = natsConnection_Connect(&c, opts.get());
      if (s == NATS_OK) {
        nc_.reset(c);
        break;
      }
      if (Clock::now() > deadline) {
        return Status::Unavailable("cannot connect to NATS " + Join(options_.nats_urls) + ": " +
                                   NatsError(s));
      }
      std::this_thread::sleep_for(milliseconds(250));
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;
    jsCtx* js = nullptr;
    s = natsConnection_JetStream(&js, nc_.get(), &jo);
    if (s != NATS_OK) return Status::Unavailable("JetStream context: " + NatsError(s));
    js_.reset(js);
    asker_ = std::make_unique<Asker>(nc_.get());
    Result<std::unique_ptr<GroupPublisher>> publisher = GroupPublisher::Create(nc_.get(), subject_);
    if (!publisher.ok()) return publisher.status();
    publisher_ = std::move(*publisher);
    return Retry("set up the cluster's JetStream stream and buckets", [&] { return SetUp(); });
  }

  void StartThreads() {
    follower_ = std::thread([this] { FollowLoop(); });
    campaigner_ = std::thread([this] { CampaignLoop(); });
  }

  Result<std::vector<storage::ApplyResult>> ApplyGroup(
      std::span<const storage::Batch* const> batches) override {
    if (Status s = ReadyToLead(); !s.ok()) return s;
    storage::Ledger::PublishRecords publish =
        [this](std::span<const std::string> records) -> Result<uint64_t> {
      return Publish(records);
    };
    Result<std::vector<storage::ApplyResult>> r = ledger_.ApplyGroupPublished(batches, publish);
    std::lock_guard lock(mu_);
    if (r.ok() && leader_ && !first_ack_logged_) {
      first_ack_logged_ = true;  // failover timing (docs/cluster.md, "Failover")
      spdlog::info("cluster: first group acknowledged as leader (seq {}, lease taken {} ms ago)",
                   ledger_.LogPosition(), MsSince(led_since_));
    }
    return r;
  }

  std::string LeaderAddress(uint32_t partition) const override {
    if (partition == options_.partition) {
      std::lock_guard lock(mu_);
      return state_.leader_address;
    }
    kvEntry* e = nullptr;
    const std::string key = "p" + std::to_string(partition);
    if (kvStore_Get(&e, leases_.get(), key.c_str()) != NATS_OK) return "";
    const std::string v(static_cast<const char*>(kvEntry_Value(e)), kvEntry_ValueLen(e));
    kvEntry_Destroy(e);
    const size_t nl = v.find('\n');
    return nl == std::string::npos ? "" : v.substr(nl + 1);
  }

  void Answer(Answerer answer) override {
    LL_CHECK(answerer_ == nullptr);
    answerer_ = std::move(answer);
    const std::string subject = QuerySubject(options_.partition);
    natsSubscription* raw = nullptr;
    // Subscribed for the node's life; NATS resubscribes after a reconnect.
    const natsStatus s =
        natsConnection_Subscribe(&raw, nc_.get(), subject.c_str(), &NodeImpl::OnQuery, this);
    if (s != NATS_OK) {
      spdlog::error("cluster: cannot answer queries on {}: {}", subject, NatsError(s));
      NoteError("answer queries: " + NatsError(s));
      return;
    }
    query_sub_.reset(raw);
  }

  void AskThen(std::span<const uint32_t> partitions, std::string_view request, uint32_t timeout_ms,
               Answers done) const override {
    for (const uint32_t p : partitions) LL_CHECK(p < options_.partitions);
    asker_->AskThen(partitions, request, timeout_ms, std::move(done));
  }

  uint32_t PartitionOf(std::string_view institution_id) const override {
    if (auto it = map_.find(institution_id); it != map_.end()) return it->second;
    return cluster::PartitionOf(institution_id, options_.partitions);
  }

  ClusterState State() const override {
    std::lock_guard lock(mu_);
    ClusterState st = state_;
    st.leader = leader_;
    st.applied_seq = ledger_.LogPosition();
    st.lag_events = st.stream_last_seq > st.applied_seq ? st.stream_last_seq - st.applied_seq : 0;
    if (st.lag_events == 0) st.lag_seconds = 0;
    st.storage = storage_.Last();
    return st;
  }

  void RefreshStorage() override { storage_.Refresh(js_.get()); }

 private:
  // A node answers for its partition while it leads, or when it has applied
  // all of the stream it knows of. Either way the answer is its state at
  // one stream position (a new leader may still be applying the old one's
  // last records: its answer is then at an earlier, whole position).
  bool UpToDate() const {
    std::lock_guard lock(mu_);
    return LeaseValid() || ledger_.LogPosition() >= state_.stream_last_seq;
  }

  // NATS's delivery thread for the query subscription.
  static void OnQuery(natsConnection* nc, natsSubscription*, natsMsg* raw, void* closure) {
    MsgPtr msg(raw);
    auto* self = static_cast<NodeImpl*>(closure);
    const char* reply = natsMsg_GetReply(msg.get());
    if (reply == nullptr || !self->UpToDate()) return;
    const int64_t max_payload = natsConnection_GetMaxPayload(nc);
    const std::string answer =
        self->answerer_(std::string_view(natsMsg_GetData(msg.get()),
                                         static_cast<size_t>(natsMsg_GetDataLength(msg.get()))),
                        max_payload > 0 ? static_cast<size_t>(max_payload) : size_t{1} << 20);
    const natsStatus s =
        natsConnection_Publish(nc, reply, answer.data(), static_cast<int>(answer.size()));
    if (s != NATS_OK) spdlog::warn("cluster: cannot send an answer: {}", NatsError(s));
  }

  static std::string Join(const std::vector<std::string>& v) {
    std::string out;
    for (const std::string& s : v) out += (out.empty() ? "" : ",") + s;
    return out;
  }

  // Retries `step` (JetStream answers "temporarily unavailable" while its
  // cluster elects a meta leader after a start) until the start timeout.
  Status Retry(const std::string& what, const std::function<Status()>& step) {
    const auto deadline = Clock::now() + milliseconds(options_.start_timeout_ms);
    while (true) {
      Status s = step();
      if (s.ok() || s.code() == Status::Code::kInvalidArgument) return s;
      if (Clock::now() > deadline)
        return Status::Unavailable("cannot " + what + ": " + s.message());
      spdlog::info("cluster: waiting to {}: {}", what, s.message());
      std::this_thread::sleep_for(milliseconds(500));
    }
  }

  Status OpenBucket(const char* name, int64_t ttl_ms, std::unique_ptr<kvStore, KvDeleter>* out) {
    kvStore* kv = nullptr;
    natsStatus s = js_KeyValue(&kv, js_.get(), name);
    if (s != NATS_OK) {
      kvConfig kc;
      kvConfig_Init(&kc);
      kc.Bucket = name;
      kc.History = 1;
      kc.TTL = ttl_ms * 1'000'000;  // nanoseconds, as the stream's MaxAge
      kc.StorageType = js_FileStorage;
      kc.Replicas = options_.replicas;
      s = js_CreateKeyValue(&kv, js_.get(), &kc);
    }
    if (s != NATS_OK)
      return Status::Unavailable("KV bucket " + std::string(name) + ": " + NatsError(s));
    out->reset(kv);
    return Status::Ok();
  }

  Status SetUp() {
    if (Status s = OpenBucket(kConfigBucket, 0, &config_); !s.ok()) return s;
    if (Status s = OpenBucket(kLeaseBucket, options_.lease_ms, &leases_); !s.ok()) return s;
    // The partition count: the first node to start records it; every node
    // must agree.
    const std::string mine = std::to_string(options_.partitions);
    uint64_t rev = 0;
    natsStatus s = kvStore_Create(&rev, config_.get(), "partitions", mine.data(),
                                  static_cast<int>(mine.size()));
    if (s != NATS_OK) {
      kvEntry* e = nullptr;
      s = kvStore_Get(&e, config_.get(), "partitions");
      if (s != NATS_OK) return Status::Unavailable("read the partition count: " + NatsError(s));
      const std::string theirs(static_cast<const char*>(kvEntry_Value(e)), kvEntry_ValueLen(e));
      kvEntry_Destroy(e);
      if (theirs != mine) {
        return Status::InvalidArgument("the cluster was created with " + theirs +
                                       " partitions; this node was started with --partitions " +
                                       mine);
      }
    }
    if (Status st = AgreeOnPartitionMap(); !st.ok()) return st;
    if (options_.partition >= options_.partitions) {
      return Status::InvalidArgument("--partition " + std::to_string(options_.partition) +
                                     " is not below --partitions " + mine);
    }
    // The stream keeps every record (no limits): a restarted node catches
    // up from its own log position, a new one from a checkpoint's.
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = stream_.c_str();
    const char* subjects[] = {subject_.c_str()};
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = options_.replicas;
    sc.Retention = js_LimitsPolicy;
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    s = js_AddStream(&si, js_.get(), &sc, nullptr, &jerr);
    if (s != NATS_OK && jerr == JSStreamNameExistErr) {
      s = js_GetStreamInfo(&si, js_.get(), stream_.c_str(), nullptr, &jerr);
    }
    if (s != NATS_OK) return Status::Unavailable("stream " + stream_ + ": " + NatsError(s, jerr));
    const uint64_t first = si->State.FirstSeq;
    uint64_t last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    const uint64_t applied = ledger_.LogPosition();
    if (options_.republish_tail) {
      if (applied > last) {
        const std::string lease_value = LeaseValue(options_);
        TailRepair repair{js_.get(),   leases_.get(), stream_, subject_,    lease_key_,
                          lease_value, options_,      ledger_, *publisher_, republished_};
        const Status st = RepublishTail(&repair, first, last, applied);
        republishing_ = republishing_ || repair.started;
        republished_ = repair.republished;
        if (!st.ok()) return st;
        last = applied;
      } else if (!republishing_) {
        return Status::InvalidArgument(
            "--republish-tail: this store has applied stream " + stream_ + " up to " +
            std::to_string(applied) + " and the stream ends at " + std::to_string(last) +
            ": it is not ahead, nothing to republish; start it without --republish-tail");
      }
    }
    if (applied > last) {
      return Status::InvalidArgument(
          "this store has applied stream " + stream_ + " up to " + std::to_string(applied) +
          " but the stream ends at " + std::to_string(last) +
          ": it belongs to another cluster or the stream lost its last records (if a power loss "
          "of a quorum of NATS servers lost them, start the node with the highest applied "
          "position once with --republish-tail: docs/cluster.md)");
    }
    if (last > 0 && first > applied + 1) {
      return Status::InvalidArgument("stream " + stream_ + " starts at " + std::to_string(first) +
                                     " but this store needs " + std::to_string(applied + 1) +
                                     ": start it from a newer checkpoint");
    }
    std::lock_guard lock(mu_);
    state_.stream_last_seq = last;
    return Status::Ok();
  }

  // The explicit partition map: the first node records its own (or "-" for
  // none); the others adopt the recorded one, and refuse a different one.
  Status AgreeOnPartitionMap() {
    const std::string mine = options_.partition_map.empty() ? "-" : options_.partition_map;
    uint64_t rev = 0;
    std::string recorded = mine;
    natsStatus s = kvStore_Create(&rev, config_.get(), "partition_map", mine.data(),
                                  static_cast<int>(mine.size()));
    if (s != NATS_OK) {
      kvEntry* e = nullptr;
      s = kvStore_Get(&e, config_.get(), "partition_map");
      if (s != NATS_OK) return Status::Unavailable("read the partition map: " + NatsError(s));
      recorded.assign(static_cast<const char*>(kvEntry_Value(e)), kvEntry_ValueLen(e));
      kvEntry_Destroy(e);
      if (!options_.partition_map.empty() && recorded != mine) {
        return Status::InvalidArgument(
            recorded == "-" ? "the cluster was created without a partition map; this node was "
                              "given --partition-map"
                            : "this node's --partition-map differs from the one the cluster was "
                              "created with (the partition of an institution never changes)");
      }
    }
    map_.clear();
    if (recorded == "-") return Status::Ok();
    Result<std::string> parsed = ParsePartitionMap(recorded, options_.partitions);
    if (!parsed.ok())
      return Status::InvalidArgument("the cluster's partition map: " + parsed.status().message());
    size_t start = 0;
    while (start < parsed->size()) {
      const size_t end = parsed->find('\n', start);
      const std::string_view line(parsed->data() + start, end - start);
      const size_t space = line.find(' ');
      map_.emplace(std::string(line.substr(0, space)),
                   static_cast<uint32_t>(std::stoul(std::string(line.substr(space + 1)))));
      start = end + 1;
    }
    spdlog::info("cluster: partition map of {} institutions", map_.size());
    return Status::Ok();
  }

  // --- leader ---------------------------------------------------------------

  bool LeaseValid() const { return leader_ && Clock::now() < lease_valid_until_; }

  // A new leader first applies every record of the stream (the old leader's
  // last ones may be there and not yet here); likewise after a publish whose
  // outcome is unknown.
  Status ReadyToLead() {
    std::unique_lock lock(mu_);
    if (!LeaseValid()) return Status::NotLeader(state_.leader_address);
    if (!need_catch_up_) return Status::Ok();
    lock.unlock();
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_GetStreamInfo(&si, js_.get(), stream_.c_str(), nullptr, &jerr);
    if (s != NATS_OK) return Status::Unavailable("stream " + stream_ + ": " + NatsError(s, jerr));
    const uint64_t last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    const auto deadline = Clock::now() + milliseconds(10'000);
    while (ledger_.LogPosition() < last) {
      if (Clock::now() > deadline) {
        return Status::Unavailable("the new leader is still applying the stream (at " +
                                   std::to_string(ledger_.LogPosition()) + " of " +
                                   std::to_string(last) + ")");
      }
      std::this_thread::sleep_for(milliseconds(2));
    }
    lock.lock();
    need_catch_up_ = false;
    if (!first_ack_logged_) {
      spdlog::info("cluster: caught up to seq {}: serving as leader (lease taken {} ms ago)", last,
                   MsSince(led_since_));
    }
    return Status::Ok();
  }

  // Called by the ledger under its write lock: LogPosition() cannot move.
  // A group's records in one quorum round trip (group_publisher.h).
  Result<uint64_t> Publish(std::span<const std::string> records) {
    const uint64_t expected = ledger_.LogPosition();
    {
      std::lock_guard lock(mu_);
      if (!LeaseValid()) return Status::NotLeader(state_.leader_address);
    }
    GroupPublisher::Outcome out;
    const Clock::time_point start = Clock::now();
    do out = publisher_->Publish(records, expected);
    while (out.not_delivered && WaitForStreamLeader(start));
    std::lock_guard lock(mu_);
    if (out.last > state_.stream_last_seq) state_.stream_last_seq = out.last;
    if (out.why.empty()) return out.last;
    need_catch_up_ = true;  // a prefix of the group may be in the stream
    if (out.fenced) {
      // Someone else wrote to the stream. With the lease still ours it was a
      // deposed leader's last publish, sent before it knew (in the stream, in
      // order, applied by every node): apply the stream, go on leading.
      if (LeaseValid()) {
        spdlog::warn("cluster: publish fenced (stream moved past {}): catching up", out.last);
        return Status::Unavailable("the journal stream moved on; resend");
      }
      spdlog::warn("cluster: publish fenced (stream moved past {}): stepping down", out.last);
      StepDownLocked("fenced by the stream's last sequence");
      return Status::NotLeader("");
    }
    return Status::Unavailable("journal publish to " + stream_ + " failed: " + out.why);
  }

  // "No responders": the stream has no leader yet (an election; NATS just
  // restarted) and the record reached no stream. True after a pause if the
  // same publish should go again: the lease ours, under 5 s since `start`.
  bool WaitForStreamLeader(Clock::time_point start) {
    if (std::lock_guard lock(mu_); !LeaseValid() || MsSince(start) >= 5000) return false;
    if (MsSince(start) < 100) spdlog::warn("cluster: stream {} has no leader: waiting", stream_);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return true;
  }

  void StepDownLocked(const std::string& why) {
    if (leader_) {
      leader_ = false;
      ++state_.step_downs;
      state_.last_error = why;
      if (state_.leader_node == options_.node) {
        state_.leader_node.clear();
        state_.leader_address.clear();
      }
    }
  }

  void ReleaseLease() {
    std::lock_guard lock(mu_);
    if (!leader_ || leases_ == nullptr) return;
    // Only our own revision is deleted: a newer holder's key stays.
    uint64_t rev = 0;
    if (kvStore_Update(&rev, leases_.get(), lease_key_.c_str(), "", 0, lease_rev_) == NATS_OK) {
      kvStore_Delete(leases_.get(), lease_key_.c_str());
    }
    leader_ = false;
  }

  // Takes the lease when it is free, renews it while held (every quarter
  // of the TTL); a lease is trusted for two thirds of the TTL from the start
  // of the request that took or renewed it, so a node paused past its lease
  // never publishes on it.
  void CampaignLoop() {
    const std::string value = LeaseValue(options_);
    while (true) {
      {
        std::unique_lock lock(mu_);
        if (cv_.wait_for(lock, CampaignWaitLocked(), [&] { return stopping_; })) return;
      }
      const auto started = Clock::now();
      const auto valid_until = started + milliseconds(options_.lease_ms * 2 / 3);
      bool leading;
      uint64_t rev;
      {
        std::lock_guard lock(mu_);
        leading = leader_;
        rev = lease_rev_;
        if (leading && Clock::now() >= lease_valid_until_) {
          spdlog::warn("cluster: lease of partition {} not renewed in time: stepping down",
                       options_.partition);
          StepDownLocked("lease expired before it was renewed");
          leading = false;
        }
      }
      // Every KV request below is a network call, made without mu_: while
      // NATS is slow, State(), the answering thread's UpToDate() and the
      // destructor must not wait on it.
      uint64_t new_rev = 0;
      if (leading) {
        natsStatus s = kvStore_Update(&new_rev, leases_.get(), lease_key_.c_str(), value.data(),
                                      static_cast<int>(value.size()), rev);
        if (s == NATS_OK) {
          std::lock_guard lock(mu_);
          lease_rev_ = new_rev;
          lease_valid_until_ = valid_until;
          continue;
        }
        // Refused or lost: if the key no longer holds our revision (it
        // expired, or another node took it), stop leading now; otherwise
        // retry until lease_valid_until_.
        const LeaseRead read = ReadLease();
        std::lock_guard lock(mu_);
        const bool ours = read.status == NATS_OK && read.revision == rev;
        if (!ours && (read.status == NATS_OK || read.status == NATS_NOT_FOUND)) {
          spdlog::warn("cluster: lease of partition {} lost: stepping down", options_.partition);
          StepDownLocked("lease lost");
          NoteLeaderLocked(read);
        }
        continue;
      }
      natsStatus s = kvStore_Create(&new_rev, leases_.get(), lease_key_.c_str(), value.data(),
                                    static_cast<int>(value.size()));
      if (s != NATS_OK) {
        const LeaseRead read = ReadLease();
        std::lock_guard lock(mu_);
        NoteLeaderLocked(read);
        continue;
      }
      std::lock_guard lock(mu_);
      leader_ = true;
      lease_rev_ = new_rev;
      lease_valid_until_ = valid_until;
      need_catch_up_ = true;
      ++state_.elections_won;
      led_since_ = Clock::now();
      first_ack_logged_ = false;
      // When the last holder seen renewed it (+ TTL = when its key expired).
      const int64_t ago_ms = seen_lease_ns_ == 0 ? -1 : (NatsNowNs() - seen_lease_ns_) / 1'000'000;
      spdlog::info(
          "cluster: this node ({}) leads partition {} (stream seq {}; last holder seen: "
          "{}, renewed {} ms ago)",
          options_.node, options_.partition, ledger_.LogPosition(),
          state_.leader_node.empty() ? "-" : state_.leader_node, ago_ms);
      state_.leader_node = options_.node;
      state_.leader_address = options_.advertise;
    }
  }

  // A leader renews every quarter of the TTL. The others try to take the
  // lease every twelfth, and every tenth of that from one period before the
  // TTL has passed since they first saw the key's revision (local clock):
  // a dead leader's key is taken, and the new leader known, soon after it
  // expires (docs/cluster.md, "Failover").
  Clock::duration CampaignWaitLocked() const {
    const auto renew_period = milliseconds(std::max<uint32_t>(options_.lease_ms / 4, 50));
    const auto campaign_period = milliseconds(std::max<uint32_t>(options_.lease_ms / 12, 25));
    if (leader_) return renew_period;
    if (seen_until_ == Clock::time_point{}) return campaign_period;
    return std::clamp<Clock::duration>(seen_until_ - campaign_period - Clock::now(),
                                       campaign_period / 10, campaign_period);
  }

  // This partition's lease key as the bucket holds it. A network call:
  // never with mu_ held.
  struct LeaseRead {
    natsStatus status = NATS_OK;
    std::string value;  // "node\naddress"
    uint64_t revision = 0;
    int64_t created_ns = 0;
  };
  LeaseRead ReadLease() const {
    LeaseRead r;
    kvEntry* e = nullptr;
    r.status = kvStore_Get(&e, leases_.get(), lease_key_.c_str());
    if (r.status != NATS_OK) return r;
    r.value.assign(static_cast<const char*>(kvEntry_Value(e)), kvEntry_ValueLen(e));
    r.revision = kvEntry_Revision(e);
    r.created_ns = kvEntry_Created(e);
    kvEntry_Destroy(e);
    return r;
  }

  // The leader as `read` names it (none when it could not be read).
  void NoteLeaderLocked(const LeaseRead& read) {
    if (read.status != NATS_OK) {
      state_.leader_node.clear();
      state_.leader_address.clear();
      // Free: retry soon.
      seen_until_ = read.status == NATS_NOT_FOUND ? Clock::now() : Clock::time_point{};
      return;
    }
    const std::string& v = read.value;
    seen_lease_ns_ = read.created_ns;
    if (read.revision != seen_rev_) {
      seen_rev_ = read.revision;
      seen_until_ = Clock::now() + milliseconds(options_.lease_ms);
    }
    const size_t nl = v.find('\n');
    if (v.substr(0, nl) != state_.leader_node)
      spdlog::info("cluster: partition {} leader: {}", options_.partition, v.substr(0, nl));
    state_.leader_node = v.substr(0, nl);
    state_.leader_address = nl == std::string::npos ? "" : v.substr(nl + 1);
  }

  static int64_t MsSince(Clock::time_point t) {
    return std::chrono::duration_cast<milliseconds>(Clock::now() - t).count();
  }

  // --- every node: follow the stream -----------------------------------------

  Status Subscribe(std::unique_ptr<natsSubscription, SubDeleter>* sub) {
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = ledger_.LogPosition() + 1;
    natsSubscription* raw = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_SubscribeSync(&raw, js_.get(), subject_.c_str(), nullptr, &so, &jerr);
    if (s != NATS_OK) return Status::Unavailable("follow " + stream_ + ": " + NatsError(s, jerr));
    sub->reset(raw);
    return Status::Ok();
  }

  // Applies the stream in runs: every message already delivered (up to
  // 256 or 64 MiB) goes to the ledger in one ApplyPublished call.
  void FollowLoop() {
    std::unique_ptr<natsSubscription, SubDeleter> sub;
    std::vector<MsgPtr> run;
    std::vector<std::string> decoded;  // records that came compressed
    std::vector<std::string_view> records;
    while (true) {
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
      }
      if (sub == nullptr) {
        if (Status s = Subscribe(&sub); !s.ok()) {
          NoteError(s.message());
          std::this_thread::sleep_for(milliseconds(500));
          continue;
        }
      }
      run.clear();
      size_t bytes = 0;
      uint64_t first = 0;
      uint64_t pending = 0;
      int64_t oldest_ns = 0;
      natsMsg* m = nullptr;
      natsStatus s = natsSubscription_NextMsg(&m, sub.get(), 200);
      while (s == NATS_OK) {
        MsgPtr msg(m);
        jsMsgMetaData* meta = nullptr;
        if (natsMsg_GetMetaData(&meta, msg.get()) == NATS_OK) {
          const uint64_t seq = meta->Sequence.Stream;
          pending = meta->NumPending;
          if (run.empty()) {
            first = seq;
            oldest_ns = meta->Timestamp;
          }
          jsMsgMetaData_Destroy(meta);
          if (seq != first + run.size()) {  // not the next one: apply what we have first
            NoteError("stream sequence " + std::to_string(seq) + " after " +
                      std::to_string(first + run.size() - 1));
            sub.reset();
            break;
          }
          bytes += static_cast<size_t>(natsMsg_GetDataLength(msg.get()));
          run.push_back(std::move(msg));
        }
        if (pending == 0 || run.size() >= 256 || bytes >= (64u << 20)) break;
        s = natsSubscription_NextMsg(&m, sub.get(), 0);
      }
      if (s != NATS_OK && s != NATS_TIMEOUT) {
        NoteError("follow " + stream_ + ": " + NatsError(s));
        sub.reset();
      }
      {
        std::lock_guard lock(mu_);
        const uint64_t last = run.empty() ? 0 : first + run.size() - 1 + pending;
        if (last > state_.stream_last_seq) state_.stream_last_seq = last;
        if (!run.empty()) {
          const double age = static_cast<double>(NatsNowNs() - oldest_ns) / 1e9;
          state_.lag_seconds = age > 0 ? age : 0;
        }
      }
      if (run.empty()) continue;
      records.clear();
      decoded.resize(run.size());  // not shrunk: the records view into it
      Status applied = Status::Ok();
      for (size_t i = 0; i < run.size() && applied.ok(); ++i) {
        Result<std::string_view> record = DecodeRecord(run[i].get(), &decoded[i]);
        if (record.ok()) {
          records.push_back(*record);
        } else {
          applied = Status::Corruption("stream sequence " + std::to_string(first + i) + ": " +
                                       record.status().message());
        }
      }
      if (applied.ok()) applied = ledger_.ApplyPublished(records, first);
      if (!applied.ok()) {
        // A gap (the consumer started before a checkpoint's position) or a
        // store that diverged: start over from the ledger's position.
        spdlog::error("cluster: cannot apply stream {} from {}: {}", stream_, first,
                      applied.ToString());
        NoteError(applied.message());
        sub.reset();
        std::this_thread::sleep_for(milliseconds(500));
      }
    }
  }

  void NoteError(const std::string& what) {
    std::lock_guard lock(mu_);
    state_.last_error = what;
  }

  const ClusterOptions options_;
  storage::Ledger& ledger_;
  const std::string stream_;
  const std::string subject_;
  const std::string lease_key_;
  StorageReader storage_;  // RefreshStorage's, on the caller's thread
  std::unique_ptr<natsConnection, ConnectionDeleter> nc_;
  std::unique_ptr<jsCtx, JsDeleter> js_;
  std::unique_ptr<GroupPublisher> publisher_;  // Publish's
  std::unique_ptr<Asker> asker_;               // Ask's
  std::unique_ptr<kvStore, KvDeleter> config_;
  std::unique_ptr<kvStore, KvDeleter> leases_;
  // The explicit partition map, set by SetUp before any thread starts.
  std::map<std::string, uint32_t, std::less<>> map_;
  Answerer answerer_;  // set once by Answer, before query_sub_
  std::unique_ptr<natsSubscription, SubDeleter> query_sub_;
  // --republish-tail (republish.h): a publish was tried (a retried SetUp
  // may then find the store no longer ahead) and the records put back.
  // SetUp's only.
  bool republishing_ = false;
  uint64_t republished_ = 0;

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  bool stopping_ = false;
  bool leader_ = false;
  uint64_t lease_rev_ = 0;
  Clock::time_point lease_valid_until_{};
  bool need_catch_up_ = false;
  Clock::time_point led_since_{};   // when this node last took the lease
  bool first_ack_logged_ = true;    // its first acknowledged group since then was logged
  int64_t seen_lease_ns_ = 0;       // the lease entry last read: when it was written (UTC ns)
  uint64_t seen_rev_ = 0;           // its revision
  Clock::time_point seen_until_{};  // it expires by then (first seen + TTL); {} = none
  ClusterState state_;
  std::thread follower_;
  std::thread campaigner_;
};

}  // namespace

Result<std::unique_ptr<Node>> Node::Start(const ClusterOptions& options, storage::Ledger& ledger) {
  if (options.nats_urls.empty()) return Status::InvalidArgument("no NATS server given");
  if (options.node.empty()) return Status::InvalidArgument("a cluster node needs a name");
  if (options.partitions == 0) return Status::InvalidArgument("--partitions must be at least 1");
  if (options.replicas < 1 || options.replicas > 5) {
    return Status::InvalidArgument("--replicas must be 1..5 (JetStream's limit)");
  }
  if (options.lease_ms < 300) return Status::InvalidArgument("the lease must be at least 300 ms");
  auto node = std::make_unique<NodeImpl>(options, ledger);
  if (Status s = node->Connect(); !s.ok()) return s;
  node->StartThreads();
  return std::unique_ptr<Node>(std::move(node));
}

}  // namespace loanledger::cluster
