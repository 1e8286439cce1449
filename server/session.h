// One client connection (docs/protocol.md): a coroutine that reads frames, one that
// writes replies, two watchdogs for deadlines, all on the connection's
// strand. Internal to server/; see server/README.md for the life of a
// request.
//
// Bounds: a session stops reading when it has inflight_requests_max
// requests unanswered or inflight_bytes_max bytes in process (request frames
// being worked on plus reply frames not yet taken by the client), or when
// the server-wide byte budget is used up (backpressure through TCP). The
// budgets are reserved before a frame's body buffer is allocated. Before a
// successful Hello a frame may be at most hello_frame_bytes_max, and the
// hello deadline covers the whole first frame.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cluster/cluster.h"
#include "schema/wire.h"
#include "server/asio.h"
#include "server/auth.h"
#include "server/byte_budget.h"
#include "server/config.h"
#include "server/figures.h"
#include "storage/ledger.h"

namespace loanledger::server {

class BatchWriter;
class Metrics;
class PeerGuard;
enum class QueryKind : uint8_t;  // server/metrics.h

// What every session borrows; outlives all sessions.
struct SessionEnv {
  const ServerConfig* config = nullptr;
  const TokenTable* tokens = nullptr;
  storage::Ledger* ledger = nullptr;
  const Figures* figures = nullptr;  // queries: the ledger's, or every partition's
  BatchWriter* writer = nullptr;
  Metrics* metrics = nullptr;
  asio::thread_pool* query_pool = nullptr;
  asio::ssl::context* tls = nullptr;            // null: plain TCP
  ByteBudget* server_inflight_bytes = nullptr;  // request bytes in process, all sessions
  PeerGuard* peers = nullptr;  // per-address defences (unauthenticated slots, auth backoff)
  std::string server_version;
  // Cluster mode: the node (set before the server starts; empty otherwise).
  const std::unique_ptr<cluster::Node>* cluster = nullptr;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  using Clock = std::chrono::steady_clock;

  // socket's executor must be a strand: every member below runs on it.
  // REQUIRES: env.peers->AdmitUnauthenticated(peer_address) returned true;
  // the session releases that slot (at its Hello, or when it ends).
  Session(const SessionEnv& env, tcp::socket socket, uint64_t id, std::string peer_address,
          std::function<void(uint64_t id)> on_closed);
  ~Session();

  void Start();
  // Thread-safe. Stop reading new requests, answer those in flight, close.
  void BeginShutdown();
  // Thread-safe. Close the socket now (after the shutdown grace period).
  void ForceClose();

 private:
  enum class ReadPhase { kNone, kHeader, kBody, kLinger };
  struct Reply {
    wire::Frame frame;    // complete frame
    bool counted = true;  // answers a request counted in in_flight_requests_
  };
  using Awaitable = asio::awaitable<void>;

  Awaitable Run(std::shared_ptr<Session> self);
  Awaitable ReadLoop();
  Awaitable WriteLoop(std::shared_ptr<Session> self);
  Awaitable Watchdog(std::shared_ptr<Session> self, asio::steady_timer& deadline);
  Awaitable Dispatch(const wire::Message& message, uint64_t frame_bytes,
                     Clock::time_point received);
  Awaitable HandleSubmit(const wire::Message& message, uint64_t frame_bytes,
                         Clock::time_point received);
  Awaitable HandleHello(const wire::Message& message, uint64_t frame_bytes);
  // Waits (not reading) until a frame of n body bytes fits the connection's
  // and the server's budgets, and reserves it. False when the session closed.
  asio::awaitable<bool> ReserveFrame(uint64_t n);
  void ReleasePeerSlot();
  void HandleQuery(const wire::Message& message, uint64_t frame_bytes);
  void HandleAdmin(const wire::Message& message, uint64_t frame_bytes);
  // HandleAdmin's requests, once the admin role is checked (session_admin.cc).
  void AdminVerify(uint64_t id, uint64_t frame_bytes);
  void AdminCheckpoint(const wire::Message& message, uint64_t frame_bytes);
  void AdminCompact(uint64_t id, uint64_t frame_bytes);
  void AdminBackup(const wire::Message& message, uint64_t frame_bytes);
  void AdminStats(uint64_t id, uint64_t frame_bytes);
  void HandleRules(const wire::Message& message, uint64_t frame_bytes);
  // Runs `run` (returning the reply frame) on the query pool, times it,
  // and completes the request on the strand.
  template <typename F>
  void RunOnQueryPool(uint64_t request_id, uint64_t frame_bytes, std::optional<QueryKind> kind,
                      F run);
  // Starts a query whose result comes on another thread (a partitioned
  // cluster's, Figures::QueryReportThen): `start` runs here, or on the query
  // pool when `on_pool` (its own part may be long), and gets the callback for
  // the Result<T>, which is encoded with `encode`, timed from here and
  // completed on the strand, once (a second call is ignored). No thread
  // waits for the other partitions.
  template <typename T, typename Begin, typename Encode>
  void RunFannedOut(uint64_t request_id, uint64_t frame_bytes, QueryKind kind, bool on_pool,
                    Begin start, Encode encode);
  // Runs `run` on the calling thread, timed; an exception or an oversized
  // reply becomes an error frame. Thread-safe (touches env_ only).
  template <typename F>
  wire::Frame RunQuery(uint64_t request_id, std::optional<QueryKind> kind, F& run) const;
  Status CheckPartition() const;  // NOT_LEADER when the batch is another partition's
  void OnBatchDone(uint64_t request_id, uint64_t frame_bytes, Clock::time_point received,
                   Result<storage::ApplyResult> result);

  // Answers a request: releases its bytes, queues its reply.
  void Complete(uint64_t frame_bytes, wire::Frame reply);
  void CompleteError(uint64_t request_id, uint64_t frame_bytes, Status::Code code,
                     std::string_view message);
  // Ends the connection after in-flight replies with this frame (BAD_FRAME,
  // UNAUTHENTICATED).
  void Finish(wire::Frame final_frame);
  // Counts a bad frame, logs `why` and Finish()es with BAD_FRAME.
  void FinishBadFrame(uint64_t request_id, std::string_view why);
  // The server-wide budget; when it refuses, it wakes server_room_ at the
  // next release by any session.
  bool ReserveServerBytes(uint64_t n);
  void ReleaseBytes(uint64_t n);
  void Close();
  Awaitable WaitFor(asio::steady_timer& event);
  static void Wake(asio::steady_timer& event) { event.cancel(); }
  void Arm(asio::steady_timer& deadline, uint32_t ms);
  // Before the Hello: the read deadline is the hello deadline (or sooner).
  void ArmRead(uint32_t ms);
  static void Disarm(asio::steady_timer& deadline);
  Awaitable ReadExactly(asio::mutable_buffer buffer, boost::system::error_code& ec);
  Awaitable WriteAll(asio::const_buffer buffer, boost::system::error_code& ec);
  Awaitable Linger();

  const SessionEnv& env_;
  const uint64_t id_;                        // for logs
  std::function<void(uint64_t)> on_closed_;  // told once, when the session is over
  tcp::socket socket_;
  asio::any_io_executor executor_;                      // the strand
  std::optional<asio::ssl::stream<tcp::socket&>> tls_;  // set when TLS is on
  std::string peer_;                                    // "ip:port" for logs
  const std::string peer_address_;                      // "ip": the PeerGuard key
  bool holds_peer_slot_ = true;                         // unauthenticated slot not yet released
  Clock::time_point hello_deadline_;                    // TLS handshake + first frame by then

  asio::steady_timer read_deadline_;   // hello/idle/read deadline; max = none
  asio::steady_timer write_deadline_;  // write deadline; max = none
  asio::steady_timer reader_wake_;     // event: in-flight bound may have room
  asio::steady_timer writer_wake_;     // event: a reply is queued or the reader ended
  asio::steady_timer writer_room_;     // event: the batch writer's queue may have room
  bool writer_has_room_ = false;       // set with the writer_room_ event (it may come first)
  asio::steady_timer server_room_;     // event: the server-wide byte budget may have room
  bool server_has_room_ = false;       // set with the server_room_ event (it may come first)

  std::optional<Principal> principal_;  // set by a successful Hello
  ReadPhase read_phase_ = ReadPhase::kNone;
  uint32_t in_flight_requests_ = 0;         // read, reply not yet written
  uint64_t in_flight_bytes_ = 0;            // frame bytes reserved, not yet released
  std::deque<Reply> replies_;               // bounded by in_flight_requests_
  uint64_t reply_bytes_ = 0;                // bytes of replies_ (not yet written)
  std::optional<wire::Frame> final_frame_;  // written last, then close
  bool stop_reading_ = false;               // no new requests (shutdown, bad frame, auth failure)
  bool reader_done_ = false;                // ReadLoop has returned
  bool closed_ = false;                     // socket closed
  bool body_timed_out_ = false;             // the read timeout hit inside a frame body
};

}  // namespace loanledger::server
