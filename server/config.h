// loanledgerd's configuration (docs/operations.md): command-line flags, or a config
// file (--config FILE, TOML/INI `key = value`) with the same keys. Every
// operational bound lives here with its default and the reason for it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "schema/limits.h"
#include "schema/status.h"

namespace loanledger::server {

struct ServerConfig {
  std::string listen = "127.0.0.1:7700";  // HOST:PORT of the protocol listener; port 0 = any
  std::string metrics_listen = "127.0.0.1:9464";  // HOST:PORT of /metrics; port 0 = any
  // HOST:PORT of the HTTP API and console (docs/http.md); "" = off; port 0 = any.
  std::string http_listen;
  std::string data_dir;     // RocksDB directory (required)
  std::string tokens_file;  // token hashes (required to serve)
  std::string tls_cert;     // PEM certificate chain; with tls_key enables TLS
  std::string tls_key;      // PEM private key
  bool verify = false;      // run Ledger::Verify, print, exit 0/1
  // Backups (deploy/README.md "Backups"): restore backup_id (0 = the newest)
  // of this backup directory into data_dir, then exit; or check it
  // (checksums, then Ledger::Verify on a copy restored into data_dir, a
  // scratch directory emptied afterwards), then exit 0/1.
  std::string restore_from;
  std::string verify_backup;
  uint32_t backup_id = 0;
  // Category rules file (docs/categories.md); "" = the store's current rules
  // (the default file for a new store). A different file is applied at start.
  std::string rules_file;
  std::string log_level = "info";  // trace|debug|info|warn|error
  // auto|journal|json|text (server/service.h): auto = journald with
  // priorities when stderr is the journal (under systemd), else text.
  std::string log_format = "auto";
  // Once every listener is bound, the bound addresses are written here
  // atomically (`pid=N` and `NAME=HOST:PORT` lines, server/README.md "Ready
  // file"); "" = none. Removed at start and after a clean stop.
  std::string ready_file;

  // Cluster mode (docs/cluster.md): on when nats is set. The partition's
  // journal is a JetStream stream; one node per partition leads (a lease),
  // the others follow and answer queries.
  std::string nats;          // nats://HOST:PORT[,nats://HOST:PORT...]; "" = single node
  std::string node;          // unique node name; "" = hostname + ':' + bound listen port
  std::string advertise;     // client address told to others; "" = the bound --listen address
  uint32_t partition = 0;    // the partition this node serves
  uint32_t partitions = 1;   // partition count, fixed when the cluster is created
  uint32_t replicas = 3;     // JetStream replicas of the stream and the KV buckets
  uint32_t lease_ms = 3000;  // leader lease TTL (failover takes about this long)
  // An explicit institution -> partition map (lines "INSTITUTION_ID PARTITION");
  // institutions not in it go by FNV-1a-64 mod partitions. Kept in the KV
  // bucket by the node that creates the cluster; "" = the bucket's, if any.
  std::string partition_map_file;
  // Put the journal stream's lost tail back from this store before
  // starting (cluster::ClusterOptions::republish_tail, docs/cluster.md).
  bool republish_tail = false;

  // Threads. Two cores is the smallest deployment: io and queries share them.
  uint32_t io_threads = 2;     // Asio threads running sessions (framing, decoding, replies)
  uint32_t query_threads = 2;  // series/loan/verify, by-institution reports (server/README.md)

  // Storage. A loan snapshot is written once this many events were applied
  // since the last one began; the journal since is what a start after a
  // crash replays. 0 = max(2,000,000, loans / 2) (storage/README.md).
  uint64_t snapshot_events = 0;

  // Bounds.
  // A batch (16 MiB) plus envelope; larger frames get BAD_FRAME and a close.
  uint64_t frame_bytes_max = kFrameBytesMaxDefault;
  // Beyond this many open connections, new ones are closed at once; each
  // can hold inflight_bytes_max, so this bounds memory with it.
  uint32_t connections_max = 256;
  // Connections from one IP address still waiting for their Hello; beyond
  // it, new ones from that address are refused like at connections_max, so
  // that one address cannot fill the cap with silent sockets (a bank opens
  // a few and authenticates within milliseconds). server/peer_guard.h.
  uint32_t unauthenticated_per_peer_max = 32;
  // Largest frame accepted before a successful Hello. A Hello is a token
  // and a client name (well under 1 KiB); without this bound an
  // unauthenticated peer could make the server allocate a batch-sized
  // buffer per connection by declaring a length.
  uint64_t hello_frame_bytes_max = uint64_t{64} << 10;
  // Requests read from one connection and not yet answered. At the bound
  // the session stops reading (TCP pushes back on the client). 64 covers a
  // client's pipeline (the library's default is 8 batches).
  uint32_t inflight_requests_max = 64;
  // Frame bytes of one connection being processed; at the bound it stops
  // reading. Four full batches keep a fast client busy.
  uint64_t inflight_bytes_max = uint64_t{4} * kBatchBytesMax;
  // Frame bytes being processed across all connections (memory bound of the
  // server, ~3x in decoded form); a frame is always admitted when nothing
  // else is in flight.
  uint64_t server_inflight_bytes_max = uint64_t{1} << 30;
  // Failed Hellos (wrong token) from one IP address within
  // auth_failure_window_ms that are answered at once; each further one is
  // answered only after a delay doubling from auth_failure_delay_ms up to
  // auth_failure_delay_max_ms. Slows token guessing to a few tries a second
  // per connection slot; a valid token is never delayed. server/peer_guard.h.
  uint32_t auth_failures_free = 5;
  uint32_t auth_failure_window_ms = 60'000;
  uint32_t auth_failure_delay_ms = 250;
  uint32_t auth_failure_delay_max_ms = 5'000;
  // Batches queued for the writer thread; a full queue makes sessions wait
  // (they stop reading meanwhile).
  uint32_t writer_queue_batches_max = 256;
  // Batches applied with one WAL sync (group commit); bounds the size of one
  // RocksDB write batch.
  uint32_t group_batches_max = 64;

  // HTTP API (server/http_server.h). Connections beyond the cap get a 503;
  // a request head (line and headers; there are no bodies) is at most
  // http_request_bytes_max; each request must arrive, and each response be
  // taken, within http_timeout_ms (so idle keep-alive connections close).
  uint32_t http_connections_max = 64;
  uint32_t http_request_bytes_max = 16 << 10;
  uint32_t http_timeout_ms = 30'000;

  // Timeouts.
  uint32_t hello_timeout_ms = 10'000;   // TLS handshake + first frame (Hello) must arrive within
  uint32_t read_timeout_ms = 30'000;    // a frame's body must arrive within, once its header has
  uint32_t idle_timeout_ms = 300'000;   // no frame started and nothing in flight: close
  uint32_t write_timeout_ms = 30'000;   // a reply must be taken by the client within (slow reader)
  uint32_t shutdown_grace_ms = 10'000;  // SIGTERM: time for in-flight work before forced close
  uint32_t metrics_refresh_ms = 1'000;  // RocksDB and category gauges refresh period
};

struct HostPort {
  std::string host;   // name or address; IPv6 without brackets
  uint16_t port = 0;  // 0 = any free port
};
// "127.0.0.1:7700", "[::1]:7700", "localhost:0".
Result<HostPort> ParseHostPort(const std::string& text);

// Parses argv (and the --config file it names). Returns the exit code when
// the process should stop now (--help: 0, bad usage: 1), else nullopt.
std::optional<int> ParseFlags(int argc, char** argv, ServerConfig& config);

}  // namespace loanledger::server
