// A Client without a network, for the CLI tests: a tiny model of the
// ledger's exactly-once rule (per-loan last seq), pipelined SubmitStream,
// scripted rejections and scripted query answers or failures.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "client/client.h"

namespace loanledger::client::testing {

struct FakeLedger {
  std::map<std::pair<std::string, std::string>, uint64_t> last_seq;  // (institution, loan) -> seq
  std::vector<std::vector<LoanEvent>> batches_received;              // every batch sent, in order
  std::set<std::string> reject_loan_ids;  // events of these loans are rejected
  Reason reject_reason = Reason::kSeqGap;
  uint64_t skip_from_batch = UINT64_MAX;  // batches from this index on come back skipped
  uint32_t in_flight_max = 3;             // pipelining depth
  Status submit_failure;                  // returned by SubmitStream when set
  Status connect_failure;                 // returned by Connect when set
  Result<Report> report = Report{};
  Result<Series> series = Series{};
  // When set, answers each series query instead of `series`.
  std::function<Result<Series>(const SeriesQuery&)> series_answer;
  std::vector<SeriesQuery> series_queries;  // every series query, in order
  Result<LoanView> loan = Status::NotFound("no such loan");
  Result<VerifyOutcome> verify = Status::PermissionDenied("not admin");
  Result<std::string> stats = Status::PermissionDenied("not admin");
  Result<CompactOutcome> compact = Status::PermissionDenied("not admin");
  Result<CheckpointOutcome> checkpoint = Status::PermissionDenied("not admin");
  Result<BackupOutcome> backup = Status::PermissionDenied("not admin");
  Result<RulesShowOutcome> rules_show = Status::PermissionDenied("not admin");
  std::string last_backup_dir;  // as Backup was asked
  uint32_t last_backup_keep = 0;
  ReportQuery last_report_query;
  SeriesQuery last_series_query;
  ClientOptions last_options;
};

class FakeClient final : public Client {
 public:
  explicit FakeClient(FakeLedger& ledger) : ledger_(ledger) {}

  const Identity& identity() const override { return identity_; }

  Result<BatchOutcome> Submit(const std::vector<LoanEvent>& events) override {
    return Apply(events);
  }

  Status SubmitStream(
      const std::function<bool(std::vector<LoanEvent>&)>& next,
      const std::function<bool(uint64_t, const BatchOutcome&)>& on_outcome) override {
    if (!ledger_.submit_failure.ok()) return ledger_.submit_failure;
    std::deque<std::pair<uint64_t, std::vector<LoanEvent>>> in_flight;
    uint64_t index = 0;
    bool more = true;
    bool rejected = false;
    while (true) {
      while (more && in_flight.size() < ledger_.in_flight_max) {
        std::vector<LoanEvent> batch;
        more = next(batch);
        if (more) in_flight.emplace_back(index++, std::move(batch));
      }
      if (in_flight.empty()) return Status::Ok();
      auto [i, batch] = std::move(in_flight.front());
      in_flight.pop_front();
      // The server's stream rule: nothing after a rejected batch is applied.
      const BatchOutcome outcome =
          rejected || i >= ledger_.skip_from_batch ? BatchOutcome{.skipped = true} : Apply(batch);
      if (!outcome.applied) rejected = true;
      if (!on_outcome(i, outcome)) more = false;  // in-flight ones are still answered
    }
  }

  Result<Report> QueryReport(const ReportQuery& query) override {
    ledger_.last_report_query = query;
    return ledger_.report;
  }
  Result<Series> QuerySeries(const SeriesQuery& query) override {
    ledger_.last_series_query = query;
    ledger_.series_queries.push_back(query);
    return ledger_.series_answer ? ledger_.series_answer(query) : ledger_.series;
  }
  Result<LoanView> QueryLoan(const std::string&, const std::string&) override {
    return ledger_.loan;
  }
  Result<VerifyOutcome> Verify() override { return ledger_.verify; }
  Result<std::string> Stats() override { return ledger_.stats; }
  Result<CompactOutcome> Compact() override { return ledger_.compact; }
  Result<CheckpointOutcome> Checkpoint(const std::string& dir) override {
    if (!ledger_.checkpoint.ok()) return ledger_.checkpoint.status();
    CheckpointOutcome out = *ledger_.checkpoint;
    out.dir = dir;
    return out;
  }
  Result<RulesShowOutcome> RulesShow() override { return ledger_.rules_show; }
  Result<BackupOutcome> Backup(const std::string& dir, uint32_t keep) override {
    ledger_.last_backup_dir = dir;
    ledger_.last_backup_keep = keep;
    if (!ledger_.backup.ok()) return ledger_.backup.status();
    BackupOutcome out = *ledger_.backup;
    out.dir = dir;
    return out;
  }

 private:
  BatchOutcome Apply(const std::vector<LoanEvent>& events) {
    ledger_.batches_received.push_back(events);
    BatchOutcome outcome;
    for (uint32_t i = 0; i < events.size(); ++i) {
      if (ledger_.reject_loan_ids.count(events[i].loan_id)) {
        outcome.rejections.push_back(Rejection{i, ledger_.reject_reason, "scripted rejection"});
      }
    }
    if (!outcome.rejections.empty()) return outcome;
    outcome.applied = true;
    for (const LoanEvent& e : events) {
      uint64_t& last = ledger_.last_seq[{e.institution_id, e.loan_id}];
      if (e.seq <= last) {
        ++outcome.events_duplicate;
      } else {
        last = e.seq;
        ++outcome.events_applied;
      }
    }
    return outcome;
  }

  FakeLedger& ledger_;
  Identity identity_{Role::kInstitution, "B0001", "fake"};
};

}  // namespace loanledger::client::testing
