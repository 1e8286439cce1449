// --republish-tail (docs/cluster.md "Putting a lost stream tail back"): a
// node whose store has applied past the end of its partition's stream (a
// power loss of a quorum of NATS servers lost the stream's last records)
// takes the partition's lease, checks that the stream is a prefix of its own
// log record by record, and puts its own records for the missing positions
// back, in order, through the leader's GroupPublisher, before it starts.
// Internal to cluster/.
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
  jsCtx* js;        // reads the stream
  kvStore* leases;  // the partition's lease: taken for the repair
  const std::string& stream;
  const std::string& subject;  // the stream's (its ordered consumer's)
  const std::string& lease_key;
  const std::string& lease_value;  // the campaigner's: "node\naddress"
  const ClusterOptions& options;
  storage::Ledger& ledger;
  GroupPublisher& publisher;
  uint64_t republished = 0;  // records put back so far (in: from an earlier try)
  bool started = false;      // out: a publish was tried
};

// Takes the partition's lease (kvStore_Create, within two TTLs: a lease
// left from before the loss expires; refused while another node holds it)
// and renews it from a thread of its own while it: checks that the stream's
// records first..last are byte for byte this store's records at the same
// positions (read in chunks of 256 records or 8 MiB from each side), then
// puts the ledger's records for positions last + 1 .. applied back into
// the stream. Called before any of the node's threads start and before the
// server takes writes, so the ledger does not move meanwhile.
// UNAVAILABLE when NATS fails or the lease could not be renewed (the caller
// retries, and goes on from the stream's new end); INVALID_ARGUMENT when it
// must not go on: the stream is not a prefix of this store's log (naming
// the first differing position), another node holds the lease, or a
// publish was fenced. Nothing is published unless the whole check passed.
// The lease is given back on return (only its own revision), whatever the
// outcome: the node's campaigner then takes it as usual.
// For tests only: LOANLEDGER_TEST_REPUBLISH_PAUSE_MS (environment) holds the
// lease that long before the check, so that a test can start another node
// meanwhile.
Status RepublishTail(TailRepair* r, uint64_t first, uint64_t last, uint64_t applied);

}  // namespace loanledger::cluster
