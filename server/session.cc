// A session's connection: its life (start, shutdown, close), the reader of
// frames with its budgets (per connection and server-wide), the writer of
// replies, the deadlines. Requests go to Dispatch (session_dispatch.cc);
// admin requests to session_admin.cc.
#include "server/session.h"

#include <spdlog/spdlog.h>

#include <array>
#include <exception>
#include <string>
#include <vector>

#include "schema/check.h"
#include "server/metrics.h"
#include "server/peer_guard.h"
#include "storage/ledger.h"

namespace loanledger::server {
namespace {

using asio::redirect_error;
using asio::use_awaitable;
using boost::system::error_code;
using Clock = Session::Clock;

// After a final error frame the session shuts its sending side and reads and
// discards what the peer still sends, for at most this long and this much:
// closing with unread input sends a RST that can destroy the error frame
// before the peer reads it.
constexpr uint32_t kLingerMs = 1000;
constexpr size_t kLingerBytesMax = size_t{1} << 20;
// A frame up to this size (a Hello, a query, a small batch) is admitted
// whatever the server-wide budget: the per-connection bound still holds, and
// this times connections_max is small (16 MiB at the defaults), so clients
// that stall large frames cannot starve everyone else's small requests.
constexpr uint64_t kSmallFrameBytes = uint64_t{64} << 10;

auto LogException(uint64_t id) {
  return [id](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("session {}: unexpected exception: {}", id, ex.what());
    } catch (...) {
      spdlog::error("session {}: unexpected exception", id);
    }
  };
}

}  // namespace

Session::Session(const SessionEnv& env, tcp::socket socket, uint64_t id, std::string peer_address,
                 std::function<void(uint64_t)> on_closed)
    : env_(env),
      id_(id),
      on_closed_(std::move(on_closed)),
      socket_(std::move(socket)),
      executor_(socket_.get_executor()),
      peer_address_(std::move(peer_address)),
      read_deadline_(executor_),
      write_deadline_(executor_),
      reader_wake_(executor_),
      writer_wake_(executor_),
      writer_room_(executor_),
      server_room_(executor_) {
  error_code ec;
  const tcp::endpoint peer = socket_.remote_endpoint(ec);
  peer_ = ec ? std::string("?") : peer.address().to_string() + ":" + std::to_string(peer.port());
  if (env_.tls != nullptr) tls_.emplace(socket_, *env_.tls);
  Disarm(read_deadline_);
  Disarm(write_deadline_);
}

// The unauthenticated slot is released at the Hello or at the end of
// WriteLoop, which every started session reaches (it holds the session);
// not here: env_ may be gone when an io_context is destroyed with sessions.
Session::~Session() = default;

void Session::ReleasePeerSlot() {
  if (!holds_peer_slot_) return;
  holds_peer_slot_ = false;
  if (env_.peers != nullptr) env_.peers->ReleaseUnauthenticated(peer_address_);
}

void Session::Start() { asio::co_spawn(executor_, Run(shared_from_this()), LogException(id_)); }

void Session::BeginShutdown() {
  asio::post(executor_, [self = shared_from_this()] {
    self->stop_reading_ = true;
    Wake(self->reader_wake_);
    // A read waiting for the next header ends at once (EOF); a frame being
    // received is finished and answered.
    if (self->read_phase_ == ReadPhase::kHeader && !self->closed_) {
      error_code ec;
      self->socket_.shutdown(tcp::socket::shutdown_receive, ec);
    }
  });
}

void Session::ForceClose() {
  asio::post(executor_, [self = shared_from_this()] { self->Close(); });
}

Session::Awaitable Session::Run(std::shared_ptr<Session> self) {
  asio::co_spawn(executor_, Watchdog(self, read_deadline_), LogException(id_));
  asio::co_spawn(executor_, Watchdog(self, write_deadline_), LogException(id_));
  asio::co_spawn(executor_, WriteLoop(self), LogException(id_));
  // One deadline for the TLS handshake and the whole first frame: trickling
  // it a byte at a time does not earn a fresh read timeout for its body.
  hello_deadline_ = Clock::now() + std::chrono::milliseconds(env_.config->hello_timeout_ms);
  try {
    bool ready = true;
    if (tls_) {
      error_code ec;
      read_phase_ = ReadPhase::kHeader;
      ArmRead(env_.config->hello_timeout_ms);
      co_await tls_->async_handshake(asio::ssl::stream_base::server,
                                     redirect_error(use_awaitable, ec));
      Disarm(read_deadline_);
      read_phase_ = ReadPhase::kNone;
      if (ec) {
        spdlog::info("session {} {}: TLS handshake failed: {}", id_, peer_, ec.message());
        ready = false;
        Close();
      }
    }
    if (ready) co_await ReadLoop();
  } catch (const std::exception& e) {
    spdlog::error("session {} {}: reader: {}", id_, peer_, e.what());
    Close();
  }
  read_phase_ = ReadPhase::kNone;
  reader_done_ = true;
  Wake(writer_wake_);
}

Session::Awaitable Session::ReadLoop() {
  const ServerConfig& cfg = *env_.config;
  wire::FrameLimits limits = wire::kRequestLimits;
  limits.frame_bytes_max = cfg.frame_bytes_max;
  // Until the Hello succeeds only a Hello-sized frame is accepted: an
  // unauthenticated peer cannot make us allocate a batch-sized buffer.
  wire::FrameLimits hello_limits = limits;
  hello_limits.frame_bytes_max = std::min(cfg.hello_frame_bytes_max, cfg.frame_bytes_max);
  wire::FrameReader reader(hello_limits);
  bool full_limits = false;  // reader has `limits` (after the Hello)
  while (!stop_reading_ && !closed_) {
    if (principal_ && !full_limits) {
      reader = wire::FrameReader(limits);
      full_limits = true;
    }
    // Backpressure: at the bound we stop reading; TCP pushes back.
    while (in_flight_requests_ >= cfg.inflight_requests_max && !stop_reading_ && !closed_) {
      co_await WaitFor(reader_wake_);
    }
    if (stop_reading_ || closed_) break;
    error_code ec;
    read_phase_ = ReadPhase::kHeader;
    ArmRead(principal_ ? cfg.idle_timeout_ms : cfg.hello_timeout_ms);
    co_await ReadExactly(asio::buffer(reader.header(), wire::kFrameHeaderBytes), ec);
    Disarm(read_deadline_);
    read_phase_ = ReadPhase::kNone;
    if (ec) {
      if (ec != asio::error::eof)
        spdlog::debug("session {} {}: read: {}", id_, peer_, ec.message());
      break;
    }
    // Reserve the budgets before OnHeader allocates the body buffer, so that
    // a connection waiting for room holds no buffer. A length OnHeader will
    // refuse is not waited for.
    const uint64_t declared = wire::DecodeFrameLength(reader.header());
    bool reserved = false;
    if (declared >= wire::kFrameBodyBytesMin && declared <= reader.limits().frame_bytes_max) {
      reserved = co_await ReserveFrame(declared);
      if (!reserved) break;  // closed while waiting
    }
    if (Status s = reader.OnHeader(); !s.ok()) {
      if (reserved) ReleaseBytes(declared);
      FinishBadFrame(0, principal_ ? s.message() : s.message() + " before a Hello");
      break;
    }
    const uint64_t n = reader.body_size();
    LL_CHECK(reserved && n == declared);
    read_phase_ = ReadPhase::kBody;
    ArmRead(cfg.read_timeout_ms);
    co_await ReadExactly(asio::buffer(reader.body(), n), ec);
    Disarm(read_deadline_);
    read_phase_ = ReadPhase::kNone;
    if (ec) {
      // A truncated frame: the peer stopped sending (read timeout) or
      // closed inside it. Nothing of it is applied; say why, then close.
      ReleaseBytes(n);
      if (!closed_) {
        std::string why = "connection ended inside a frame (" + ec.message() + ")";
        if (body_timed_out_) {
          why = principal_ ? "frame body incomplete after the read timeout"
                           : "Hello incomplete after the hello timeout";
        }
        FinishBadFrame(0, why);
      }
      break;
    }
    const Clock::time_point received = Clock::now();
    Result<const wire::Message*> message = reader.OnBody();
    if (!message.ok()) {
      ReleaseBytes(n);
      FinishBadFrame(0, message.status().message());
      break;
    }
    ++in_flight_requests_;
    co_await Dispatch(**message, n, received);
    reader.Shrink();
  }
}

Session::Awaitable Session::WriteLoop(std::shared_ptr<Session> self) {
  try {
    while (true) {
      while (replies_.empty() && !(reader_done_ && in_flight_requests_ == 0)) {
        co_await WaitFor(writer_wake_);
      }
      if (replies_.empty()) break;  // the reader is done and every request answered
      Reply reply = std::move(replies_.front());
      replies_.pop_front();
      if (!closed_) {
        error_code ec;
        Arm(write_deadline_, env_.config->write_timeout_ms);
        co_await WriteAll(asio::buffer(reply.frame.data(), reply.frame.size()), ec);
        Disarm(write_deadline_);
        if (ec) {
          spdlog::debug("session {} {}: write: {}", id_, peer_, ec.message());
          Close();
        }
      }
      LL_CHECK(reply_bytes_ >= reply.frame.size());
      reply_bytes_ -= reply.frame.size();
      Wake(reader_wake_);  // the byte bound may have room again
      if (reply.counted) {
        LL_CHECK(in_flight_requests_ > 0);
        --in_flight_requests_;
        Wake(reader_wake_);
      }
    }
    if (final_frame_ && !closed_) {
      error_code ec;
      Arm(write_deadline_, env_.config->write_timeout_ms);
      co_await WriteAll(asio::buffer(final_frame_->data(), final_frame_->size()), ec);
      Disarm(write_deadline_);
      if (!ec) co_await Linger();
    }
  } catch (const std::exception& e) {
    spdlog::error("session {} {}: writer: {}", id_, peer_, e.what());
  }
  Close();
  LL_CHECK(closed_);
  ReleasePeerSlot();
  spdlog::debug("session {} {}: closed", id_, peer_);
  if (on_closed_) {
    auto on_closed = std::move(on_closed_);
    on_closed_ = nullptr;
    on_closed(id_);
  }
  (void)self;  // kept the session alive until here
}

Session::Awaitable Session::Watchdog(std::shared_ptr<Session> self, asio::steady_timer& deadline) {
  while (!closed_) {
    error_code ec;
    co_await deadline.async_wait(redirect_error(use_awaitable, ec));
    if (closed_) break;
    if (deadline.expiry() > Clock::now()) continue;  // re-armed or disarmed meanwhile
    const bool reading = &deadline == &read_deadline_;
    if (reading && read_phase_ == ReadPhase::kHeader && principal_ && in_flight_requests_ > 0) {
      // Waiting for the next request while earlier ones are being worked
      // on is not idleness.
      Arm(read_deadline_, env_.config->idle_timeout_ms);
      continue;
    }
    if (reading && read_phase_ == ReadPhase::kBody && !body_timed_out_) {
      // End the body read (EOF) so that the reader answers BAD_FRAME; close
      // for good if even that does not happen within the linger time.
      body_timed_out_ = true;
      env_.metrics->timeouts.Increment();
      spdlog::info("session {} {}: read timeout inside a frame", id_, peer_);
      error_code shutdown_ec;
      socket_.shutdown(tcp::socket::shutdown_receive, shutdown_ec);
      Arm(read_deadline_, kLingerMs);
      continue;
    }
    if (!(reading && read_phase_ == ReadPhase::kLinger)) {
      env_.metrics->timeouts.Increment();
      spdlog::info("session {} {}: {} timeout; closing", id_, peer_,
                   !reading                            ? "write"
                   : !principal_                       ? "hello"
                   : read_phase_ == ReadPhase::kHeader ? "idle"
                                                       : "read");
    }
    Close();
  }
  (void)self;
}

void Session::Complete(uint64_t frame_bytes, wire::Frame reply) {
  ReleaseBytes(frame_bytes);
  reply_bytes_ += reply.size();
  replies_.push_back(Reply{std::move(reply), true});
  LL_CHECK(replies_.size() <= in_flight_requests_);
  Wake(writer_wake_);
}

void Session::CompleteError(uint64_t request_id, uint64_t frame_bytes, Status::Code code,
                            std::string_view message) {
  LL_CHECK(code != Status::Code::kOk);
  Complete(frame_bytes, wire::EncodeError(request_id, wire::ErrorCodeFor(code), message));
}

void Session::Finish(wire::Frame final_frame) {
  if (!final_frame_) final_frame_ = std::move(final_frame);
  stop_reading_ = true;
  Wake(reader_wake_);
  Wake(writer_wake_);
}

void Session::FinishBadFrame(uint64_t request_id, std::string_view why) {
  env_.metrics->bad_frames.Increment();
  spdlog::warn("session {} {}: bad frame: {}; closing", id_, peer_, why);
  Finish(wire::EncodeError(request_id, wire::ErrorCode::BAD_FRAME, why));
}

asio::awaitable<bool> Session::ReserveFrame(uint64_t n) {
  const uint64_t bound = env_.config->inflight_bytes_max;
  // The connection's bound: request bytes in process plus reply bytes the
  // client has not taken yet (a client that pipelines and never reads stops
  // being read once its unread replies reach the bound). A frame is always
  // admitted when the connection holds nothing.
  while (!closed_ && in_flight_bytes_ + reply_bytes_ > 0 &&
         in_flight_bytes_ + reply_bytes_ + n > bound) {
    co_await WaitFor(reader_wake_);
  }
  // The server's budget: not polled. When it is full, a release by any
  // session wakes this one (ReserveServerBytes), or Close() does.
  while (!closed_) {
    server_has_room_ = false;
    if (ReserveServerBytes(n)) {
      in_flight_bytes_ += n;
      co_return true;
    }
    while (!server_has_room_ && !closed_) co_await WaitFor(server_room_);
  }
  co_return false;
}

bool Session::ReserveServerBytes(uint64_t n) {
  ByteBudget& budget = *env_.server_inflight_bytes;
  if (n <= kSmallFrameBytes) {
    budget.Add(n);
    return true;
  }
  // On a refusal the budget calls this once, on the releasing session's
  // thread: posted to our strand. The flag keeps a wake that lands before
  // the wait; weak, as the budget may keep it after the session ended.
  return budget.TryReserve(n, [weak = weak_from_this()] {
    std::shared_ptr<Session> self = weak.lock();
    if (self == nullptr) return;
    asio::post(self->executor_, [self] {
      self->server_has_room_ = true;
      Wake(self->server_room_);
    });
  });
}

void Session::ReleaseBytes(uint64_t n) {
  LL_CHECK(in_flight_bytes_ >= n);
  in_flight_bytes_ -= n;
  env_.server_inflight_bytes->Release(n);  // wakes sessions waiting for the budget
  Wake(reader_wake_);
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  read_deadline_.cancel();
  write_deadline_.cancel();
  Wake(reader_wake_);
  Wake(writer_wake_);
  Wake(writer_room_);
  Wake(server_room_);
}

Session::Awaitable Session::WaitFor(asio::steady_timer& event) {
  event.expires_at(asio::steady_timer::time_point::max());
  error_code ec;
  co_await event.async_wait(redirect_error(use_awaitable, ec));
}

void Session::Arm(asio::steady_timer& deadline, uint32_t ms) {
  deadline.expires_after(std::chrono::milliseconds(ms));
}

void Session::ArmRead(uint32_t ms) {
  const Clock::time_point at = Clock::now() + std::chrono::milliseconds(ms);
  read_deadline_.expires_at(principal_ ? at : std::min(at, hello_deadline_));
}

void Session::Disarm(asio::steady_timer& deadline) {
  deadline.expires_at(asio::steady_timer::time_point::max());
}

Session::Awaitable Session::ReadExactly(asio::mutable_buffer buffer, error_code& ec) {
  if (tls_) {
    co_await asio::async_read(*tls_, buffer, redirect_error(use_awaitable, ec));
  } else {
    co_await asio::async_read(socket_, buffer, redirect_error(use_awaitable, ec));
  }
}

Session::Awaitable Session::WriteAll(asio::const_buffer buffer, error_code& ec) {
  if (tls_) {
    co_await asio::async_write(*tls_, buffer, redirect_error(use_awaitable, ec));
  } else {
    co_await asio::async_write(socket_, buffer, redirect_error(use_awaitable, ec));
  }
}

Session::Awaitable Session::Linger() {
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  read_phase_ = ReadPhase::kLinger;
  Arm(read_deadline_, kLingerMs);
  std::array<char, 4096> scratch;
  size_t discarded = 0;
  while (!closed_ && discarded < kLingerBytesMax) {
    const size_t k =
        co_await socket_.async_read_some(asio::buffer(scratch), redirect_error(use_awaitable, ec));
    if (ec) break;
    discarded += k;
  }
  Disarm(read_deadline_);
  read_phase_ = ReadPhase::kNone;
}

}  // namespace loanledger::server
