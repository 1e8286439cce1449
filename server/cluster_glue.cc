#include "server/cluster_glue.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace loanledger::server {
namespace {

std::vector<std::string> SplitComma(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const size_t end = comma == std::string::npos ? text.size() : comma;
    if (end > start) out.push_back(text.substr(start, end - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

prometheus::Gauge& OneGauge(prometheus::Registry& registry, const std::string& name,
                            const std::string& help, uint32_t partition) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add(
      {{"partition", std::to_string(partition)}});
}

}  // namespace

Result<std::unique_ptr<cluster::Node>> StartClusterNode(const ServerConfig& config,
                                                        const std::string& listen,
                                                        storage::Ledger& ledger) {
  cluster::ClusterOptions o;
  o.nats_urls = SplitComma(config.nats);
  o.advertise = config.advertise.empty() ? listen : config.advertise;
  o.node = config.node;
  if (o.node.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    o.node = std::string(host) + "/" + o.advertise;
  }
  o.partition = config.partition;
  o.partitions = config.partitions;
  o.replicas = static_cast<int>(config.replicas);
  o.lease_ms = config.lease_ms;
  o.republish_tail = config.republish_tail;
  if (!config.partition_map_file.empty()) {
    std::ifstream in(config.partition_map_file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) return Status::InvalidArgument("cannot read " + config.partition_map_file);
    Result<std::string> map = cluster::ParsePartitionMap(text.str(), config.partitions);
    if (!map.ok()) {
      return Status::InvalidArgument(config.partition_map_file + ": " + map.status().message());
    }
    o.partition_map = std::move(*map);
  }
  return cluster::Node::Start(o, ledger);
}

ClusterMetrics::ClusterMetrics(prometheus::Registry& r, uint32_t p)
    : is_leader_(OneGauge(r, "loanledger_cluster_is_leader",
                          "1 while this node leads its partition (holds the lease)", p)),
      applied_seq_(OneGauge(r, "loanledger_cluster_applied_stream_seq",
                            "Last journal stream sequence applied by this node", p)),
      stream_last_seq_(OneGauge(r, "loanledger_cluster_stream_last_seq",
                                "Last journal stream sequence this node knows of", p)),
      lag_events_(OneGauge(r, "loanledger_cluster_replication_lag_events",
                           "Journal records (batches) in the stream not applied here yet", p)),
      lag_seconds_(OneGauge(r, "loanledger_cluster_replication_lag_seconds",
                            "Age of the oldest journal record not applied here; 0 when caught up",
                            p)),
      elections_(OneGauge(r, "loanledger_cluster_elections_won",
                          "Times this node became its partition's leader since start", p)),
      step_downs_(OneGauge(r, "loanledger_cluster_step_downs",
                           "Times this node stopped leading (lease lost, publish fenced)", p)),
      stream_bytes_(OneGauge(r, "loanledger_cluster_stream_bytes",
                             "Bytes the partition's journal stream holds (JetStream stream info)",
                             p)),
      stream_messages_(OneGauge(r, "loanledger_cluster_stream_messages",
                                "Messages (journal records) the partition's stream holds", p)),
      stream_max_bytes_(OneGauge(r, "loanledger_cluster_stream_max_bytes",
                                 "The stream's max_bytes limit; -1 = none (the default)", p)),
      stream_max_messages_(OneGauge(r, "loanledger_cluster_stream_max_messages",
                                    "The stream's max_msgs limit; -1 = none (the default)", p)),
      stream_max_age_(OneGauge(r, "loanledger_cluster_stream_max_age_seconds",
                               "The stream's max_age limit; -1 = none (the default)", p)),
      js_storage_(OneGauge(r, "loanledger_cluster_jetstream_storage_bytes",
                           "File storage the JetStream account uses (all streams, replicas "
                           "counted)",
                           p)),
      js_storage_limit_(OneGauge(r, "loanledger_cluster_jetstream_storage_limit_bytes",
                                 "The JetStream account's file storage limit; -1 = none", p)),
      storage_used_ratio_(OneGauge(r, "loanledger_cluster_stream_storage_used_ratio",
                                   "Highest used fraction of the stream's and the account's "
                                   "storage limits that are set; -1 = no limit set",
                                   p)),
      storage_age_(OneGauge(r, "loanledger_cluster_stream_storage_age_seconds",
                            "Seconds since the stream storage was last read from JetStream", p)),
      storage_failures_(OneGauge(r, "loanledger_cluster_stream_storage_read_failures",
                                 "Failed reads of the stream storage since start", p)) {}

void ClusterMetrics::Set(const cluster::ClusterState& s) {
  is_leader_.Set(s.leader ? 1 : 0);
  applied_seq_.Set(static_cast<double>(s.applied_seq));
  stream_last_seq_.Set(static_cast<double>(s.stream_last_seq));
  lag_events_.Set(static_cast<double>(s.lag_events));
  lag_seconds_.Set(s.lag_seconds);
  elections_.Set(static_cast<double>(s.elections_won));
  step_downs_.Set(static_cast<double>(s.step_downs));
  const cluster::StreamStorage& st = s.storage;
  stream_bytes_.Set(static_cast<double>(st.stream_bytes));
  stream_messages_.Set(static_cast<double>(st.stream_messages));
  stream_max_bytes_.Set(static_cast<double>(st.stream_max_bytes));
  stream_max_messages_.Set(static_cast<double>(st.stream_max_messages));
  stream_max_age_.Set(static_cast<double>(st.stream_max_age_seconds));
  js_storage_.Set(static_cast<double>(st.account_storage_bytes));
  js_storage_limit_.Set(static_cast<double>(st.account_storage_limit_bytes));
  storage_used_ratio_.Set(cluster::StorageUsedRatio(st));
  storage_age_.Set(st.age_seconds);
  storage_failures_.Set(static_cast<double>(st.read_failures));
}

std::string ClusterStatsText(const cluster::ClusterState& s) {
  std::string text;
  text += "cluster_leader " + std::to_string(s.leader ? 1 : 0) + '\n';
  text += "cluster_leader_node " + (s.leader_node.empty() ? "-" : s.leader_node) + '\n';
  text += "cluster_leader_address " + (s.leader_address.empty() ? "-" : s.leader_address) + '\n';
  text += "cluster_applied_stream_seq " + std::to_string(s.applied_seq) + '\n';
  text += "cluster_stream_last_seq " + std::to_string(s.stream_last_seq) + '\n';
  text += "cluster_replication_lag_events " + std::to_string(s.lag_events) + '\n';
  text += "cluster_replication_lag_seconds " + std::to_string(s.lag_seconds) + '\n';
  text += "cluster_elections_won " + std::to_string(s.elections_won) + '\n';
  text += "cluster_step_downs " + std::to_string(s.step_downs) + '\n';
  const cluster::StreamStorage& st = s.storage;
  text += "cluster_stream_bytes " + std::to_string(st.stream_bytes) + '\n';
  text += "cluster_stream_messages " + std::to_string(st.stream_messages) + '\n';
  text += "cluster_stream_max_bytes " + std::to_string(st.stream_max_bytes) + '\n';
  text += "cluster_jetstream_storage_bytes " + std::to_string(st.account_storage_bytes) + '\n';
  text += "cluster_jetstream_storage_limit_bytes " +
          std::to_string(st.account_storage_limit_bytes) + '\n';
  text += "cluster_stream_storage_age_seconds " + std::to_string(st.age_seconds) + '\n';
  if (!s.last_error.empty()) text += "cluster_last_error " + s.last_error + '\n';
  return text;
}

}  // namespace loanledger::server
