// Cluster mode (docs/cluster.md): one partition's ledger replicated through a
// NATS JetStream stream. This is cluster/'s whole public header.
//
// The stream is the partition's journal: one message per applied batch, in
// order. The leader (the holder of a lease key in a KV bucket with a TTL)
// validates each group against its ledger, publishes the records with the
// stream's expected last sequence (a deposed leader's publish fails), and
// writes them to its own store (WAL synced) only after JetStream's quorum
// ack; the caller acknowledges the bank after that. Every node, the leader
// included, follows the stream with an ordered consumer and applies what it
// has not applied yet (Ledger::ApplyPublished), so every replica reaches
// the same state at the same stream sequence. storage/ never learns of NATS.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "schema/status.h"
#include "storage/ledger.h"

namespace loanledger::cluster {

struct ClusterOptions {
  std::vector<std::string> nats_urls;  // nats://HOST:PORT, any of the NATS cluster's servers
  std::string node;                    // this node's unique name (in the lease)
  std::string advertise;               // this node's client address HOST:PORT, told to clients
  uint32_t partition = 0;              // which partition this node serves
  uint32_t partitions = 1;             // fixed when the cluster is created (kept in a KV bucket)
  int replicas = 3;                    // JetStream replicas of the stream and the buckets
  uint32_t lease_ms = 3000;            // the leader's lease TTL; failover takes about this long
  uint32_t start_timeout_ms = 60000;   // to reach NATS and set up the stream at start
  // An explicit institution -> partition map, as the text of a map file
  // (ParsePartitionMap); "" = the one the cluster was created with, if any.
  // The first node records it in the cluster's KV bucket; a node given a
  // different one refuses to start.
  std::string partition_map;
  // The repair after a power loss of a quorum of NATS servers lost the
  // stream's last records (docs/cluster.md, "What an acknowledgement
  // promises"): when this store has applied past the stream's end, publish
  // its records for the missing positions (in order, fenced by the
  // stream's last sequence, as the leader does) before starting, holding
  // the partition's lease meanwhile. Refused unless the store is ahead,
  // every record of the stream equals this store's record at that
  // position, and no other node leads the partition; a fenced publish
  // (another publisher) or the lease lost stops it (cluster/republish.h).
  bool republish_tail = false;
  // Stream storage (StreamStorage): read at most this often, by
  // RefreshStorage; each JetStream API request waits at most
  // storage_timeout_ms.
  uint32_t storage_poll_ms = 5000;
  uint32_t storage_timeout_ms = 1000;
};

// What JetStream reports of the partition's journal stream and of the
// JetStream account's file storage (every stream and bucket of the account,
// all replicas counted), for metrics and `admin stats`. A limit that is not
// set (JetStream's -1 or 0) is -1 here.
struct StreamStorage {
  bool known = false;  // one read has succeeded since start
  uint64_t stream_bytes = 0;
  uint64_t stream_messages = 0;
  int64_t stream_max_bytes = -1;
  int64_t stream_max_messages = -1;
  int64_t stream_max_age_seconds = -1;
  uint64_t account_storage_bytes = 0;
  int64_t account_storage_limit_bytes = -1;
  uint64_t read_failures = 0;  // reads that failed since start (the last values are kept)
  double age_seconds = 0;      // since the last successful read (since start before one)
};

// The highest used fraction of the storage limits that are set: stream
// bytes of its max_bytes, messages of its max_msgs, the account's storage of
// its limit; -1 when none is set (or nothing was read yet).
double StorageUsedRatio(const StreamStorage& s);

// What a node knows of its partition, for metrics and `admin stats`.
struct ClusterState {
  bool leader = false;
  std::string leader_node;     // "" while none is known
  std::string leader_address;  // its client address
  uint64_t applied_seq = 0;    // the last stream sequence applied here (= Ledger::LogPosition)
  uint64_t stream_last_seq = 0;
  uint64_t lag_events = 0;     // batches in the stream not applied here yet
  double lag_seconds = 0;      // age of the oldest record not applied yet; 0 when caught up
  uint64_t elections_won = 0;  // times this node became leader
  uint64_t step_downs = 0;     // times it stopped leading (lost lease, fenced publish)
  std::string last_error;      // of the follower or the lease loop, "" = none
  StreamStorage storage;       // as of the last RefreshStorage
};

class Node {
 public:
  // Connects to NATS, creates (or checks) the cluster's buckets and the
  // partition's stream, checks the stream still holds everything after the
  // ledger's log position, and starts following and campaigning. The
  // ledger must outlive the node.
  static Result<std::unique_ptr<Node>> Start(const ClusterOptions& options,
                                             storage::Ledger& ledger);
  virtual ~Node() = default;  // stops the threads, gives up the lease, closes NATS

  // The leader's write path (the server's writer thread calls it in place
  // of Ledger::ApplyGroup). NOT_LEADER naming the leader on a follower;
  // UNAVAILABLE when the group could not be made durable in the stream
  // (nothing of it is applied; resending is safe).
  virtual Result<std::vector<storage::ApplyResult>> ApplyGroup(
      std::span<const storage::Batch* const> batches) = 0;

  virtual ClusterState State() const = 0;

  // Reads the stream's and the account's storage from JetStream again when
  // the last read is older than storage_poll_ms (two API requests, each
  // bounded by storage_timeout_ms; a failure is counted and logged, never
  // fatal). For the server's metrics refresh: never on the write or apply
  // path. Thread-safe.
  virtual void RefreshStorage() = 0;

  // --- partitions (P > 1) ----------------------------------------------------
  uint32_t partition() const { return partition_; }
  uint32_t partitions() const { return partitions_; }
  // The partition of an institution: the cluster's explicit map, else
  // FNV-1a-64 of its id mod partitions (docs/cluster.md).
  virtual uint32_t PartitionOf(std::string_view institution_id) const = 0;

  // The client address of `partition`'s leader, read from the lease bucket
  // ("" while none is known).
  virtual std::string LeaderAddress(uint32_t partition) const = 0;

  // Answers other nodes' questions about this partition: `answer` gets a
  // request's bytes and returns the reply's, at most max_reply_bytes (the
  // NATS servers' max_payload). Only a node that leads, or a follower that
  // has applied everything it knows of, answers; the asker takes the first
  // reply. Called once, on NATS's thread for each request.
  using Answerer = std::function<std::string(std::string_view request, size_t max_reply_bytes)>;
  virtual void Answer(Answerer answer) = 0;

  // Sends `request` to every one of `partitions` (one of its up-to-date
  // nodes answers) at once and returns without waiting, so that the caller
  // can work meanwhile. `done` gets one reply's bytes per partition, in the
  // order asked, or UNAVAILABLE naming the partition when none of its nodes
  // answered (none serves; or timeout_ms ran out) — once, when every
  // partition has answered or failed, on a NATS thread (on the caller's when
  // nothing could be sent; in the node's destructor, every question failed,
  // when it stops first). `done` must be quick and must not throw.
  // Thread-safe.
  using Answers = std::function<void(std::vector<Result<std::string>>)>;
  virtual void AskThen(std::span<const uint32_t> partitions, std::string_view request,
                       uint32_t timeout_ms, Answers done) const = 0;

 protected:
  Node(uint32_t partition, uint32_t partitions) : partition_(partition), partitions_(partitions) {}

 private:
  const uint32_t partition_;
  const uint32_t partitions_;
};

// FNV-1a-64 of an institution's id, mod partitions (docs/cluster.md).
uint32_t PartitionOf(std::string_view institution_id, uint32_t partitions);

// A partition map file: one "INSTITUTION_ID PARTITION" per line (blank lines
// and lines starting with '#' skipped). Returns it in canonical form (sorted,
// one space, '\n' after each line) or INVALID_ARGUMENT naming the line: a bad
// institution id, a partition not below `partitions`, an institution twice.
Result<std::string> ParsePartitionMap(std::string_view text, uint32_t partitions);

}  // namespace loanledger::cluster
