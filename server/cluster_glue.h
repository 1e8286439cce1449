// loanledgerd's side of cluster mode (docs/cluster.md): starting the node
// from the configuration, its gauges and its lines in `admin stats`.
#pragma once

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "cluster/cluster.h"
#include "schema/status.h"
#include "server/config.h"

namespace loanledger::server {

// Starts the node of `config.partition` (config.nats is set); `listen` is
// the bound client address, the default for --advertise and --node.
Result<std::unique_ptr<cluster::Node>> StartClusterNode(const ServerConfig& config,
                                                        const std::string& listen,
                                                        storage::Ledger& ledger);

// loanledger_cluster_* gauges (deploy/metrics.txt).
class ClusterMetrics {
 public:
  explicit ClusterMetrics(prometheus::Registry& registry, uint32_t partition);
  void Set(const cluster::ClusterState& state);

 private:
  prometheus::Gauge& is_leader_;
  prometheus::Gauge& applied_seq_;
  prometheus::Gauge& stream_last_seq_;
  prometheus::Gauge& lag_events_;
  prometheus::Gauge& lag_seconds_;
  prometheus::Gauge& elections_;
  prometheus::Gauge& step_downs_;
  // Stream storage (cluster::StreamStorage; -1 = no limit).
  prometheus::Gauge& stream_bytes_;
  prometheus::Gauge& stream_messages_;
  prometheus::Gauge& stream_max_bytes_;
  prometheus::Gauge& stream_max_messages_;
  prometheus::Gauge& stream_max_age_;
  prometheus::Gauge& js_storage_;
  prometheus::Gauge& js_storage_limit_;
  prometheus::Gauge& storage_used_ratio_;
  prometheus::Gauge& storage_age_;
  prometheus::Gauge& storage_failures_;
};

// `admin stats` lines: cluster_leader 0|1, cluster_leader_node, ...
std::string ClusterStatsText(const cluster::ClusterState& state);

}  // namespace loanledger::server
