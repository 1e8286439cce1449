// Asker (asker.h): questions out at once, answers matched back by their
// reply subject "<slot inbox>.<query>.<index>".
#include "cluster/asker.h"

#include <chrono>
#include <optional>
#include <utility>

#include "schema/check.h"

namespace loanledger::cluster {

std::string QuerySubject(uint32_t partition) {
  return "loanledger.p" + std::to_string(partition) + ".query";
}

class AskingImpl final : public Node::Asking {
 public:
  AskingImpl(Asker& asker, std::unique_ptr<Asker::Slot> slot, std::vector<uint32_t> partitions,
             uint32_t timeout_ms)
      : asker_(asker),
        slot_(std::move(slot)),
        partitions_(std::move(partitions)),
        got_(partitions_.size()),
        timeout_ms_(timeout_ms),
        deadline_(std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms)) {
    if (slot_ != nullptr) prefix_ = slot_->inbox + "." + std::to_string(slot_->asked) + ".";
  }
  ~AskingImpl() override {
    if (slot_ != nullptr) asker_.Give(std::move(slot_));
  }

  // Before Wait: `index`'s question could not be sent.
  void Failed(size_t index, Status why) { got_[index] = std::move(why); }
  const std::string& prefix() const { return prefix_; }

  std::vector<Result<std::string>> Wait() override {
    LL_CHECK(!waited_);
    waited_ = true;
    size_t pending = 0;
    for (const auto& g : got_) pending += g.has_value() ? 0 : 1;
    // A question nobody subscribes to is answered by the NATS server's "no
    // responders" status, which the library reports without its subject;
    // once every question still open has had one, none will be answered.
    size_t no_responders = 0;
    bool timed_out = false;
    Status broken = Status::Ok();
    while (slot_ != nullptr && pending > no_responders) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(
          deadline_ - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        timed_out = true;
        break;
      }
      natsMsg* raw = nullptr;
      const natsStatus s = natsSubscription_NextMsg(&raw, slot_->sub.get(), left.count());
      if (s == NATS_TIMEOUT) {
        timed_out = true;
        break;
      }
      if (s == NATS_NO_RESPONDERS) {
        ++no_responders;
        continue;
      }
      if (s == NATS_SLOW_CONSUMER) continue;  // some were dropped; the rest still count
      if (s != NATS_OK) {
        broken = Status::Unavailable(NatsError(s));
        break;
      }
      MsgPtr msg(raw);
      const std::optional<size_t> index = Match(natsMsg_GetSubject(msg.get()));
      // Another replica's answer to the same question, or a late one to an
      // earlier query of this slot.
      if (!index || got_[*index].has_value()) continue;
      got_[*index] = std::string(natsMsg_GetData(msg.get()),
                                 static_cast<size_t>(natsMsg_GetDataLength(msg.get())));
      --pending;
    }
    std::vector<Result<std::string>> out;
    out.reserve(got_.size());
    for (size_t i = 0; i < got_.size(); ++i) {
      if (got_[i].has_value()) {
        out.push_back(std::move(*got_[i]));
      } else if (!broken.ok()) {
        out.push_back(Status::Unavailable("asking partition " + std::to_string(partitions_[i]) +
                                          ": " + broken.message()));
      } else {
        // Not answered: the wait ran out, or no node of the partition
        // listens for questions now (every open question met no responders).
        const std::string why = timed_out ? "waited " + std::to_string(timeout_ms_) + " ms"
                                          : "none of its nodes is serving";
        out.push_back(Status::Unavailable("partition " + std::to_string(partitions_[i]) +
                                          " has no up-to-date node answering (" + why +
                                          "); try again"));
      }
    }
    LL_CHECK(out.size() == partitions_.size());
    return out;
  }

 private:
  // The question a reply subject answers, if it is this query's.
  std::optional<size_t> Match(const char* subject) const {
    const std::string_view s(subject == nullptr ? "" : subject);
    if (s.size() <= prefix_.size() || s.substr(0, prefix_.size()) != prefix_) return std::nullopt;
    size_t index = 0;
    for (const char c : s.substr(prefix_.size())) {
      if (c < '0' || c > '9' || index > got_.size()) return std::nullopt;
      index = index * 10 + static_cast<size_t>(c - '0');
    }
    if (index >= got_.size()) return std::nullopt;
    return index;
  }

  Asker& asker_;
  std::unique_ptr<Asker::Slot> slot_;  // null when none could be made (every question failed)
  const std::vector<uint32_t> partitions_;
  std::vector<std::optional<Result<std::string>>> got_;  // per question: answer or failure
  const uint32_t timeout_ms_;
  const std::chrono::steady_clock::time_point deadline_;
  std::string prefix_;  // "<inbox>.<query>."
  bool waited_ = false;
};

Asker::~Asker() {
  std::lock_guard lock(mu_);
  LL_CHECK(in_use_ == 0);
  free_.clear();
}

Result<std::unique_ptr<Asker::Slot>> Asker::Take() {
  {
    std::lock_guard lock(mu_);
    ++in_use_;
    if (!free_.empty()) {
      std::unique_ptr<Slot> slot = std::move(free_.back());
      free_.pop_back();
      return slot;
    }
  }
  auto slot = std::make_unique<Slot>();
  natsInbox* inbox = nullptr;
  natsStatus s = natsInbox_Create(&inbox);
  if (s == NATS_OK) {
    slot->inbox = inbox;
    natsInbox_Destroy(inbox);
    natsSubscription* raw = nullptr;
    s = natsConnection_SubscribeSync(&raw, nc_, (slot->inbox + ".>").c_str());
    if (s == NATS_OK) slot->sub.reset(raw);
  }
  if (s != NATS_OK) {
    std::lock_guard lock(mu_);
    --in_use_;
    return Status::Unavailable("a reply inbox: " + NatsError(s));
  }
  return slot;
}

void Asker::Give(std::unique_ptr<Slot> slot) {
  LL_CHECK(slot != nullptr);
  std::lock_guard lock(mu_);
  LL_CHECK(in_use_ > 0);
  --in_use_;
  free_.push_back(std::move(slot));
}

std::unique_ptr<Node::Asking> Asker::Ask(std::span<const uint32_t> partitions,
                                         std::string_view request, uint32_t timeout_ms) {
  LL_CHECK(partitions.size() <= 0xffff);
  Result<std::unique_ptr<Slot>> slot = Take();
  if (slot.ok()) ++(*slot)->asked;
  std::unique_ptr<Slot> taken;
  if (slot.ok()) taken = std::move(*slot);
  auto asking = std::make_unique<AskingImpl>(
      *this, std::move(taken), std::vector<uint32_t>(partitions.begin(), partitions.end()),
      timeout_ms);
  for (size_t i = 0; i < partitions.size(); ++i) {
    if (!slot.ok()) {
      asking->Failed(i, Status::Unavailable("asking partition " + std::to_string(partitions[i]) +
                                            ": " + slot.status().message()));
      continue;
    }
    const std::string reply = asking->prefix() + std::to_string(i);
    const natsStatus s =
        natsConnection_PublishRequest(nc_, QuerySubject(partitions[i]).c_str(), reply.c_str(),
                                      request.data(), static_cast<int>(request.size()));
    if (s != NATS_OK) {
      asking->Failed(i, Status::Unavailable("asking partition " + std::to_string(partitions[i]) +
                                            ": " + NatsError(s)));
    }
  }
  return asking;
}

}  // namespace loanledger::cluster
