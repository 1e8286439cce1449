// Private to server/session*.cc: what the session's files share — the
// error frame for a failed Status, and running a query on the query pool
// (templates, so here rather than in one .cc).
#pragma once

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "schema/check.h"
#include "server/metrics.h"
#include "server/session.h"

namespace loanledger::server::session_internal {

inline double SecondsSince(Session::Clock::time_point t) {
  return std::chrono::duration<double>(Session::Clock::now() - t).count();
}

inline wire::Frame ErrorFrame(uint64_t request_id, const Status& status) {
  LL_CHECK(!status.ok());
  if (status.code() == Status::Code::kNotLeader) {
    const std::string& leader = status.message();
    return wire::EncodeError(request_id, wire::ErrorCode::NOT_LEADER,
                             leader.empty()
                                 ? "this node does not lead the partition; no leader is known yet"
                                 : "this node does not lead the partition; the leader is " + leader,
                             leader);
  }
  return wire::EncodeError(request_id, wire::ErrorCodeFor(status.code()), status.message());
}

// `frame`, or RESOURCE_EXHAUSTED when it is over the reply limit.
inline wire::Frame Bounded(uint64_t request_id, wire::Frame frame) {
  if (frame.size() > wire::kFrameHeaderBytes + wire::kReplyFrameBytesMax) {
    return wire::EncodeError(request_id, wire::ErrorCode::RESOURCE_EXHAUSTED,
                             "the reply would exceed " + std::to_string(wire::kReplyFrameBytesMax) +
                                 " bytes; narrow the query");
  }
  return frame;
}

}  // namespace loanledger::server::session_internal

namespace loanledger::server {

template <typename F>
wire::Frame Session::RunQuery(uint64_t request_id, std::optional<QueryKind> kind, F& run) const {
  const Clock::time_point start = Clock::now();
  wire::Frame frame;
  try {
    frame = run();
  } catch (const std::exception& e) {
    frame = wire::EncodeError(request_id, wire::ErrorCode::INTERNAL, e.what());
  }
  if (kind) env_.metrics->ObserveQuery(*kind, session_internal::SecondsSince(start));
  return session_internal::Bounded(request_id, std::move(frame));
}

template <typename T, typename Begin, typename Encode>
void Session::RunFannedOut(uint64_t request_id, uint64_t frame_bytes, QueryKind kind, bool on_pool,
                           Begin start, Encode encode) {
  const Clock::time_point began = Clock::now();
  auto replied = std::make_shared<std::atomic<bool>>(false);
  std::function<void(Result<T>)> reply = [self = shared_from_this(), request_id, frame_bytes, kind,
                                          began, replied, encode = std::move(encode)](Result<T> r) {
    if (replied->exchange(true)) return;
    auto frame = std::make_shared<wire::Frame>();
    try {
      *frame = r.ok() ? encode(*r) : session_internal::ErrorFrame(request_id, r.status());
    } catch (const std::exception& e) {
      *frame = wire::EncodeError(request_id, wire::ErrorCode::INTERNAL, e.what());
    }
    *frame = session_internal::Bounded(request_id, std::move(*frame));
    self->env_.metrics->ObserveQuery(kind, session_internal::SecondsSince(began));
    asio::post(self->executor_,
               [self, frame_bytes, frame] { self->Complete(frame_bytes, std::move(*frame)); });
  };
  auto begin = [start = std::move(start), reply]() mutable {
    try {
      start(reply);
    } catch (const std::exception& e) {
      reply(Status::Internal(e.what()));
    }
  };
  if (on_pool) {
    asio::post(*env_.query_pool, std::move(begin));
  } else {
    begin();
  }
}

template <typename F>
void Session::RunOnQueryPool(uint64_t request_id, uint64_t frame_bytes,
                             std::optional<QueryKind> kind, F run) {
  asio::post(*env_.query_pool, [self = shared_from_this(), request_id, frame_bytes, kind,
                                run = std::move(run)]() mutable {
    auto frame = std::make_shared<wire::Frame>(self->RunQuery(request_id, kind, run));
    asio::post(self->executor_,
               [self, frame_bytes, frame] { self->Complete(frame_bytes, std::move(*frame)); });
  });
}

}  // namespace loanledger::server
