// Where the answers to queries come from (docs/cluster.md, "Partitions").
// A single node, and a cluster of one partition, answer from the local
// ledger. With P > 1 partitions every node answers any query: it asks one
// up-to-date node of every other partition over NATS (cluster::Node::AskThen),
// answers for its own from its ledger, and sums the partitions' rows exactly
// (int64 fen; growth recomputed from the summed balances). A partition that
// does not answer fails the query; a partial sum is never returned.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "cluster/cluster.h"
#include "schema/query.h"
#include "schema/status.h"
#include "storage/ledger.h"

namespace loanledger::server {

class Figures {
 public:
  // `node` points at the cluster node once it has started (null or empty in
  // single-node mode); both must outlive this.
  Figures(const storage::Ledger& ledger, const std::unique_ptr<cluster::Node>* node)
      : ledger_(ledger), node_(node) {}

  Result<Report> QueryReport(const ReportQuery& query) const;
  // When fans_out(): QueryReport without a waiting thread, for the io
  // threads. The calling thread asks the other partitions and computes this
  // node's part; `done` gets the sum once, on the thread that completes it
  // (this one, or a NATS one). `done` must be quick and must not throw; it
  // may run after this object is gone, never after the node.
  void QueryReportThen(const ReportQuery& query, std::function<void(Result<Report>)> done) const;
  // The same for QuerySeries and QueryLoan.
  void QuerySeriesThen(const SeriesQuery& query, std::function<void(Result<Series>)> done) const;
  void QueryLoanThen(std::string_view institution_id, std::string_view loan_id,
                     std::function<void(Result<LoanView>)> done) const;
  Result<Series> QuerySeries(const SeriesQuery& query) const;
  Result<LoanView> QueryLoan(std::string_view institution_id, std::string_view loan_id) const;

  // True when queries are answered by other machines too (P > 1): callers
  // keep them off threads that must not wait on the network.
  bool fans_out() const;

  // P > 1: answers the other nodes' questions about this node's partition.
  void AnswerPeers(cluster::Node& node) const;

 private:
  cluster::Node* partitioned() const;  // the node when P > 1, else null

  const storage::Ledger& ledger_;
  const std::unique_ptr<cluster::Node>* node_;
};

// Exposed for tests: the exact sum of partitions' reports and series, as a
// single node holding every partition's batches would answer. Refuses
// answers computed under different rules versions.
Result<Report> MergeReports(const ReportQuery& query, std::vector<Report> parts);
Result<Series> MergeSeries(std::vector<Series> parts);

}  // namespace loanledger::server
