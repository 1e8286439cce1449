// Asker (asker.h): questions out at once, answers matched back by their
// reply subject "<inbox>.<query>.<index>".
#include "cluster/asker.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <optional>
#include <string_view>
#include <utility>

#include "schema/check.h"

namespace loanledger::cluster {
namespace {

// What a question nobody answered gets; `why` says how that was known.
Status NotAnswered(uint32_t partition, const std::string& why) {
  return Status::Unavailable("partition " + std::to_string(partition) +
                             " has no up-to-date node answering (" + why + "); try again");
}

// The digits of `s` as a number, if `s` is only digits (at most 18 of them).
std::optional<uint64_t> Number(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  uint64_t n = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

}  // namespace

std::string QuerySubject(uint32_t partition) {
  return "loanledger.p" + std::to_string(partition) + ".query";
}

Asker::~Asker() {
  {
    std::lock_guard lock(async_mu_);
    stopping_ = true;
    async_cv_.notify_all();
  }
  if (timer_.joinable()) timer_.join();
  std::unique_lock lock(async_mu_);
  if (answers_ != nullptr) {
    natsSubscription_Unsubscribe(answers_);
    // Its handler may be delivering one last answer: wait until it has
    // returned (OnAnswersClosed) before the subscription and this go.
    // Never given up on: its handler refers to this object.
    while (!async_cv_.wait_for(lock, std::chrono::seconds(10), [this] { return answers_closed_; }))
      spdlog::warn("cluster: waiting for the answers' subscription to close");
    natsSubscription_Destroy(answers_);
    answers_ = nullptr;
  }
  // Queries still waiting fail; their callers are told, as promised.
  std::unordered_map<uint64_t, Pending> left = std::move(pending_);
  pending_.clear();
  deadlines_.clear();
  lock.unlock();
  for (auto& [query, p] : left) {
    std::vector<Result<std::string>> out;
    for (const uint32_t partition : p.partitions)
      out.push_back(Status::Unavailable("asking partition " + std::to_string(partition) +
                                        ": this node is stopping"));
    p.done(std::move(out));
  }
}

void Asker::AskThen(std::span<const uint32_t> partitions, std::string_view request,
                    uint32_t timeout_ms, Node::Answers done) {
  LL_CHECK(partitions.size() <= 0xffff);
  if (partitions.empty()) return done({});
  uint64_t query = 0;
  std::string prefix;
  Status started = Status::Ok();
  {
    std::lock_guard lock(async_mu_);
    started = stopping_ ? Status::Unavailable("this node is stopping") : StartAnswers();
    if (started.ok()) {
      query = ++queries_;
      Pending p;
      p.partitions.assign(partitions.begin(), partitions.end());
      p.got.resize(partitions.size());
      p.open = partitions.size();
      p.timeout_ms = timeout_ms;
      p.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
      p.done = std::move(done);
      const bool earliest = deadlines_.empty() || p.deadline < deadlines_.begin()->first;
      deadlines_.emplace(p.deadline, query);
      pending_.emplace(query, std::move(p));
      if (earliest) async_cv_.notify_all();  // the timer sleeps until the earliest
      prefix = answers_inbox_ + "." + std::to_string(query) + ".";
    }
  }
  if (!started.ok()) {
    std::vector<Result<std::string>> out;
    for (const uint32_t partition : partitions)
      out.push_back(Status::Unavailable("asking partition " + std::to_string(partition) + ": " +
                                        started.message()));
    return done(std::move(out));
  }
  for (size_t i = 0; i < partitions.size(); ++i) {
    const std::string reply = prefix + std::to_string(i);
    const natsStatus s =
        natsConnection_PublishRequest(nc_, QuerySubject(partitions[i]).c_str(), reply.c_str(),
                                      request.data(), static_cast<int>(request.size()));
    if (s == NATS_OK) continue;
    auto finished =
        Record(query, i,
               Result<std::string>(Status::Unavailable(
                   "asking partition " + std::to_string(partitions[i]) + ": " + NatsError(s))));
    if (finished) finished->first(std::move(finished->second));
  }
}

Status Asker::StartAnswers() {
  if (answers_ != nullptr) return Status::Ok();
  natsInbox* inbox = nullptr;
  natsStatus s = natsInbox_Create(&inbox);
  if (s != NATS_OK) return Status::Unavailable("a reply inbox: " + NatsError(s));
  answers_inbox_ = inbox;
  natsInbox_Destroy(inbox);
  natsSubscription* sub = nullptr;
  s = natsConnection_Subscribe(&sub, nc_, (answers_inbox_ + ".>").c_str(), &Asker::OnAnswer, this);
  if (s != NATS_OK) return Status::Unavailable("a reply subscription: " + NatsError(s));
  s = natsSubscription_SetOnCompleteCB(sub, &Asker::OnAnswersClosed, this);
  if (s != NATS_OK) {
    // Closed already (the connection was lost): no question went to this
    // inbox, so its handler never runs and the subscription can go now.
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return Status::Unavailable("a reply subscription: " + NatsError(s));
  }
  answers_ = sub;
  timer_ = std::thread([this] { TimeOut(); });
  return Status::Ok();
}

void Asker::OnAnswer(natsConnection*, natsSubscription*, natsMsg* raw, void* closure) {
  MsgPtr msg(raw);
  auto* self = static_cast<Asker*>(closure);
  // "<answers_inbox_>.<query>.<index>"; answers_inbox_ is set before the
  // subscription exists and never changes.
  const char* subject = natsMsg_GetSubject(msg.get());
  std::string_view rest(subject == nullptr ? "" : subject);
  if (rest.size() <= self->answers_inbox_.size() + 1 ||
      rest.substr(0, self->answers_inbox_.size()) != self->answers_inbox_ ||
      rest[self->answers_inbox_.size()] != '.') {
    return;
  }
  rest.remove_prefix(self->answers_inbox_.size() + 1);
  const size_t dot = rest.find('.');
  if (dot == std::string_view::npos) return;
  const std::optional<uint64_t> query = Number(rest.substr(0, dot));
  const std::optional<uint64_t> index = Number(rest.substr(dot + 1));
  if (!query || !index) return;
  // The NATS server's "no responders" status: nobody subscribes to that
  // partition's questions now.
  std::optional<Result<std::string>> got;
  if (!natsMsg_IsNoResponders(msg.get())) {
    got = std::string(natsMsg_GetData(msg.get()),
                      static_cast<size_t>(natsMsg_GetDataLength(msg.get())));
  }
  auto finished = self->Record(*query, static_cast<size_t>(*index), std::move(got));
  if (finished) finished->first(std::move(finished->second));
}

void Asker::OnAnswersClosed(void* closure) {
  auto* self = static_cast<Asker*>(closure);
  std::lock_guard lock(self->async_mu_);
  self->answers_closed_ = true;
  self->async_cv_.notify_all();
}

std::optional<std::pair<Node::Answers, std::vector<Result<std::string>>>> Asker::Record(
    uint64_t query, size_t index, std::optional<Result<std::string>> got) {
  std::lock_guard lock(async_mu_);
  auto it = pending_.find(query);
  // A late answer (the query timed out), or another replica's answer to a
  // question already answered.
  if (it == pending_.end()) return std::nullopt;
  Pending& p = it->second;
  if (index >= p.got.size() || p.got[index].has_value()) return std::nullopt;
  p.got[index] =
      got ? std::move(*got)
          : Result<std::string>(NotAnswered(p.partitions[index], "none of its nodes is serving"));
  if (--p.open > 0) return std::nullopt;
  deadlines_.erase({p.deadline, query});
  std::vector<Result<std::string>> out;
  out.reserve(p.got.size());
  for (auto& g : p.got) out.push_back(std::move(*g));
  auto finished = std::make_optional(std::make_pair(std::move(p.done), std::move(out)));
  pending_.erase(it);
  return finished;
}

void Asker::TimeOut() {
  std::unique_lock lock(async_mu_);
  while (!stopping_) {
    if (deadlines_.empty()) {
      async_cv_.wait(lock);
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    if (const auto first = deadlines_.begin()->first; now < first) {
      // A copy: the set's element may be erased while this waits.
      async_cv_.wait_until(lock, first);
      continue;
    }
    std::vector<std::pair<Node::Answers, std::vector<Result<std::string>>>> due;
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      const uint64_t query = deadlines_.begin()->second;
      deadlines_.erase(deadlines_.begin());
      auto it = pending_.find(query);
      LL_CHECK(it != pending_.end());
      Pending& p = it->second;
      std::vector<Result<std::string>> out;
      out.reserve(p.got.size());
      for (size_t i = 0; i < p.got.size(); ++i) {
        out.push_back(
            p.got[i].has_value()
                ? std::move(*p.got[i])
                : Result<std::string>(NotAnswered(
                      p.partitions[i], "waited " + std::to_string(p.timeout_ms) + " ms")));
      }
      due.emplace_back(std::move(p.done), std::move(out));
      pending_.erase(it);
    }
    lock.unlock();
    for (auto& [done, answers] : due) done(std::move(answers));
    lock.lock();
  }
}

}  // namespace loanledger::cluster
