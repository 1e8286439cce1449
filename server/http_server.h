// The HTTP read API and the regulator console (docs/http.md), on Boost.Beast
// with C++20 coroutines like the binary protocol's sessions, over the same
// query path (storage::Ledger's Query* functions on the query pool) and the
// same tokens and roles (docs/protocol.md). Request handling (routing, parameters,
// roles, error bodies) is in http_api.h; this is the listener and the
// connections.
//
// Bounds: at most http_connections_max connections (more get a 503 and a
// close); a request head of at most http_request_bytes_max bytes (no bodies:
// the API is read-only); every request must arrive, and every response be
// taken, within http_timeout_ms (that also closes idle keep-alive
// connections); failed tokens are slowed down per address like failed
// Hellos (server/peer_guard.h). The Authorization header is never logged.
#pragma once

#include <memory>
#include <string>

#include "schema/status.h"
#include "server/asio.h"
#include "server/config.h"

namespace loanledger::server {

struct SessionEnv;

class HttpServer {
 public:
  // env (borrowed, outlives the server) gives the tokens, ledger, query pool,
  // metrics and TLS context (when set, the listener speaks HTTPS).
  HttpServer(const SessionEnv& env, asio::io_context& ioc);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  Status Bind(const HostPort& hp);
  const std::string& bound() const;  // "127.0.0.1:8080" once bound
  // Accepts until SIGTERM/SIGINT; then stops accepting, lets requests in
  // progress finish (their connections close after the response) and
  // closes idle connections.
  void Start();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace loanledger::server
