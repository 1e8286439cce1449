// --republish-tail (docs/cluster.md "Putting a lost stream tail back"): a
// node whose store has applied past the end of its partition's stream (a
// power loss of a quorum of NATS servers lost the stream's last records)
// puts its own records for the missing positions back, in order, through
// the leader's GroupPublisher, before it starts. Internal to cluster/.
#pragma once

#include <nats/nats.h>

#include <cstdint>
#include <string>

#include "cluster/cluster.h"
#include "cluster/group_publisher.h"
#include "schema/status.h"
#include "storage/ledger.h"

namespace loanledger::cluster {

// What the repair uses of its node, and what it reports back.
struct TailRepair {
  jsCtx* js;        // reads the stream's last record
  kvStore* leases;  // the partition's lease must be free (or this node's)
  const std::string& stream;
  const std::string& lease_key;
  const ClusterOptions& options;
  storage::Ledger& ledger;
  GroupPublisher& publisher;
  uint64_t republished = 0;  // records put back so far (in: from an earlier try)
  bool started = false;      // out: a publish was tried
};

// Puts the ledger's records for stream positions last + 1 .. applied back
// into the stream. Called before any of the node's threads start and before
// the server takes writes, so the ledger does not move meanwhile.
// UNAVAILABLE when NATS fails (the caller retries, and goes on from the
// stream's new end); INVALID_ARGUMENT when it must not go on: the stream is
// not a prefix of this store's log, another node holds the lease, or a
// publish was fenced.
Status RepublishTail(TailRepair* r, uint64_t last, uint64_t applied);

}  // namespace loanledger::cluster
