#include "server/config.h"

#include <CLI/CLI.hpp>
#include <cstdio>

#include "schema/host_port.h"

#ifndef LOANLEDGER_VERSION
#define LOANLEDGER_VERSION "0.0.0-dev"
#endif

namespace loanledger::server {

Result<HostPort> ParseHostPort(const std::string& text) {
  // The parser the CLI uses too (schema/host_port.h); a listener may bind port 0.
  std::optional<loanledger::HostPort> parsed = loanledger::ParseHostPort(text, true);
  if (!parsed) {
    return Status::InvalidArgument("expected HOST:PORT or [IPV6]:PORT (port 0..65535), got '" +
                                   text + "'");
  }
  return HostPort{std::move(parsed->host), parsed->port};
}

std::optional<int> ParseFlags(int argc, char** argv, ServerConfig& c) {
  CLI::App app{"loanledgerd: loan-ledger aggregation server (docs/operations.md)", "loanledgerd"};
  app.set_config("--config", "", "Read options from a TOML/INI file (same keys as the flags)");
  app.set_version_flag("--version", std::string("loanledgerd ") + LOANLEDGER_VERSION,
                       "Print the version (as loanledger_build_info) and exit");
  // A misspelt key must not be ignored (a typo of `verify` would start a server).
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_option("--listen", c.listen, "HOST:PORT for clients (port 0: any)")
      ->capture_default_str();
  app.add_option("--metrics-listen", c.metrics_listen, "HOST:PORT for Prometheus /metrics")
      ->capture_default_str();
  app.add_option(
      "--http-listen", c.http_listen,
      "HOST:PORT for the HTTP API and the console (docs/http.md; port 0: any; default off)");
  app.add_option("--data", c.data_dir, "RocksDB data directory")->required();
  app.add_option("--tokens", c.tokens_file,
                 "Tokens file: '<sha256-hex> <role> <institution|-> [name]' per line");
  auto* cert = app.add_option("--tls-cert", c.tls_cert, "PEM certificate chain (enables TLS)");
  auto* key = app.add_option("--tls-key", c.tls_key, "PEM private key");
  cert->needs(key);
  key->needs(cert);
  app.add_flag("--verify", c.verify,
               "Recompute everything from the journal, print differences, exit 0 if none else 1");
  auto* restore =
      app.add_option("--restore", c.restore_from,
                     "Restore a backup from this backup directory (loanledger admin backup) into "
                     "--data, which must be new or empty, then exit (deploy/README.md, Backups)");
  auto* verify_backup = app.add_option(
      "--verify-backup", c.verify_backup,
      "Check a backup in this backup directory: checksums, then a restore into --data (a new or "
      "empty scratch directory, emptied afterwards) and --verify of it; exit 0 if sound, else 1");
  restore->excludes(verify_backup);
  app.add_option("--backup-id", c.backup_id,
                 "With --restore or --verify-backup: the backup (loanledger admin backup prints "
                 "its id); default 0 = the newest")
      ->capture_default_str();
  app.add_option("--rules", c.rules_file,
                 "Category rules file (docs/categories.md); default: the store's current rules "
                 "(the default file for a new store)")
      ->check(CLI::ExistingFile);
  app.add_option("--log-level", c.log_level, "trace|debug|info|warn|error")->capture_default_str();
  app.add_option("--log-format", c.log_format,
                 "auto (journald under systemd, else text), journal, json (one object per line "
                 "on stderr: time, level, msg, ...) or text")
      ->check(CLI::IsMember({"auto", "journal", "json", "text"}))
      ->capture_default_str();
  app.add_option("--ready-file", c.ready_file,
                 "Once every listener is up, write the addresses bound (port 0 = any) to FILE, "
                 "atomically: 'pid=N' then 'NAME=HOST:PORT' per listener (listen, metrics, ...)");

  auto* nats = app.add_option(
      "--nats", c.nats,
      "Cluster mode: NATS JetStream servers, nats://HOST:PORT[,...] (docs/cluster.md)");
  app.add_option("--node", c.node, "Cluster mode: this node's unique name (default HOST:PORT)");
  app.add_option("--advertise", c.advertise,
                 "Cluster mode: client address told to other nodes' clients (default: the bound "
                 "--listen address)");

  auto bound = [&](const char* name, auto& value, const char* help, auto lo, auto hi) {
    app.add_option(name, value, help)->capture_default_str()->check(CLI::Range(lo, hi));
  };
  bound("--partition", c.partition, "Cluster mode: the partition this node serves", 0u, 1023u);
  bound("--partitions", c.partitions, "Cluster mode: partition count, fixed at cluster creation",
        1u, 1024u);
  bound("--replicas", c.replicas, "Cluster mode: JetStream replicas of the journal stream", 1u, 5u);
  bound("--lease-ms", c.lease_ms, "Cluster mode: leader lease TTL (ms)", 300u, 600'000u);
  app.add_option("--partition-map", c.partition_map_file,
                 "Cluster mode: file of 'INSTITUTION_ID PARTITION' lines placing institutions "
                 "explicitly (the others by FNV-1a-64 mod --partitions); fixed at cluster "
                 "creation (docs/cluster.md)")
      ->check(CLI::ExistingFile);
  app.add_flag("--republish-tail", c.republish_tail,
               "Cluster mode, after a power loss of a quorum of NATS servers lost the journal "
               "stream's last records: this node (the one with the highest applied position) "
               "first puts its records past the stream's end back into it, then starts as usual; "
               "refused unless the stream is a prefix of its log and no other node leads "
               "(docs/cluster.md)")
      ->needs(nats);
  bound("--io-threads", c.io_threads, "Asio threads", 1u, 256u);
  bound("--query-threads", c.query_threads, "Query threads", 1u, 256u);
  bound("--snapshot-events", c.snapshot_events,
        "Events between loan snapshots (bounds the journal replayed after a crash); 0 = max(2M, "
        "loans/2)",
        uint64_t{0}, uint64_t{1} << 40);
  bound("--frame-bytes-max", c.frame_bytes_max, "Largest request frame (bytes)", uint64_t{4096},
        uint64_t{1} << 30);
  bound("--connections-max", c.connections_max, "Open connections cap", 1u, 1'000'000u);
  bound("--unauthenticated-per-peer-max", c.unauthenticated_per_peer_max,
        "Connections from one IP address waiting for their Hello", 1u, 1'000'000u);
  bound("--hello-frame-bytes-max", c.hello_frame_bytes_max,
        "Largest frame before a successful Hello (bytes)", uint64_t{1024}, uint64_t{1} << 24);
  bound("--auth-failures-free", c.auth_failures_free,
        "Failed Hellos per IP address and window answered without delay", 0u, 1'000'000u);
  bound("--auth-failure-window-ms", c.auth_failure_window_ms, "Window of --auth-failures-free", 1u,
        86'400'000u);
  bound("--auth-failure-delay-ms", c.auth_failure_delay_ms,
        "First delay before answering a throttled failed Hello (doubles each time)", 0u,
        3'600'000u);
  bound("--auth-failure-delay-max-ms", c.auth_failure_delay_max_ms,
        "Longest delay before answering a failed Hello", 0u, 3'600'000u);
  bound("--inflight-requests-max", c.inflight_requests_max,
        "Unanswered requests per connection before it stops reading", 1u, 65536u);
  bound("--inflight-bytes-max", c.inflight_bytes_max,
        "Frame bytes in process per connection before it stops reading", uint64_t{4096},
        uint64_t{1} << 40);
  bound("--server-inflight-bytes-max", c.server_inflight_bytes_max,
        "Frame bytes in process across all connections", uint64_t{4096}, uint64_t{1} << 42);
  bound("--writer-queue-batches-max", c.writer_queue_batches_max, "Writer queue depth", 1u,
        1'000'000u);
  bound("--group-batches-max", c.group_batches_max, "Batches per group commit", 1u, 65536u);
  bound("--http-connections-max", c.http_connections_max, "Open HTTP connections cap", 1u,
        1'000'000u);
  bound("--http-request-bytes-max", c.http_request_bytes_max, "Largest HTTP request head (bytes)",
        1024u, 1u << 20);
  bound("--http-timeout-ms", c.http_timeout_ms,
        "HTTP request/response deadline (also closes idle keep-alive connections)", 1u,
        86'400'000u);
  bound("--hello-timeout-ms", c.hello_timeout_ms, "TLS handshake + Hello deadline", 1u,
        86'400'000u);
  bound("--read-timeout-ms", c.read_timeout_ms, "Frame body deadline", 1u, 86'400'000u);
  bound("--idle-timeout-ms", c.idle_timeout_ms, "Idle connection deadline", 1u, 86'400'000u);
  bound("--write-timeout-ms", c.write_timeout_ms, "Reply write deadline", 1u, 86'400'000u);
  bound("--shutdown-grace-ms", c.shutdown_grace_ms, "SIGTERM grace period", 0u, 3'600'000u);
  bound("--metrics-refresh-ms", c.metrics_refresh_ms, "Gauge refresh period", 10u, 3'600'000u);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 1;
  }
  const bool offline = c.verify || !c.restore_from.empty() || !c.verify_backup.empty();
  if (!offline && c.tokens_file.empty()) {
    std::fprintf(stderr,
                 "loanledgerd: --tokens is required (except with --verify, --restore, "
                 "--verify-backup)\n");
    return 1;
  }
  for (const std::string* address : {&c.listen, &c.metrics_listen, &c.http_listen}) {
    if (address->empty() && address == &c.http_listen) continue;
    if (Result<HostPort> hp = ParseHostPort(*address); !hp.ok()) {
      std::fprintf(stderr, "loanledgerd: %s\n", hp.status().message().c_str());
      return 1;
    }
  }
  return std::nullopt;
}

}  // namespace loanledger::server
