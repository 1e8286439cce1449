// One client connection (TCP or TLS) carrying frames: internal to the client
// library. Asio stays behind this header (connection.cc). Driven by the
// calling thread: Send queues a frame and writes it in the background of
// Receive, which runs the connection's private io_context until a frame
// arrives or the deadline passes. Reading and writing proceed together, so a
// pipelined client never deadlocks against a server that pushes back.
#pragma once

#include <chrono>
#include <memory>

#include "client/client.h"
#include "schema/status.h"
#include "schema/wire.h"

namespace loanledger::client::detail {

using Clock = std::chrono::steady_clock;

// TLS settings shared by the connections of one Client.
class TlsContext {
 public:
  // Loads the CA file when given (then the server's certificate and host
  // name are verified).
  static Result<std::unique_ptr<TlsContext>> Make(const ClientOptions& options);
  ~TlsContext();
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  explicit TlsContext(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Connection {
 public:
  // Resolves `at`, connects and (with tls) handshakes within
  // connect_timeout_ms. kUnavailable when any of it fails.
  static Result<std::unique_ptr<Connection>> Open(const ClientOptions& options, const Endpoint& at,
                                                  TlsContext* tls);
  ~Connection();

  // Queues a frame; it is written while Receive runs.
  void Send(std::shared_ptr<const wire::Frame> frame);
  // The next verified frame from the server. kUnavailable when the
  // connection is lost or the deadline passes (the connection is then
  // unusable); kInvalidArgument for a frame that fails verification.
  Result<wire::OwnedMessage> Receive(Clock::time_point deadline);

  struct Impl;

 private:
  explicit Connection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace loanledger::client::detail
