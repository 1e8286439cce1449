#include "server/rules_metrics.h"

#include "schema/check.h"

namespace loanledger::server {
namespace {

namespace pm = prometheus;

pm::Gauge* Gauge(pm::Registry& r, const std::string& name, const std::string& help) {
  return &pm::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

}  // namespace

RulesMetrics::RulesMetrics(pm::Registry& r)
    : version_number_(Gauge(r, "loanledger_rules_version_number",
                            "Number of the category rules version in force (1, 2, ...)")),
      running_(Gauge(r, "loanledger_rules_recompute_running",
                     "1 while a rules change recomputes every figure from the journal")),
      batches_done_(Gauge(r, "loanledger_rules_recompute_batches_done",
                          "Journal batches the current or last rules recompute has replayed")),
      batches_total_(Gauge(r, "loanledger_rules_recompute_batches_total",
                           "Journal batches the current or last rules recompute replays")),
      completed_(&pm::BuildCounter()
                      .Name("loanledger_rules_recomputes_total")
                      .Help("Rules recomputes completed (switched) since start")
                      .Register(r)
                      .Add({})),
      last_duration_(Gauge(r, "loanledger_rules_recompute_last_duration_seconds",
                           "Duration of the newest completed rules recompute, start to switch")) {}

void RulesMetrics::Refresh(const storage::Ledger& ledger) {
  const storage::RulesProgress p = ledger.RulesRecompute();
  version_number_->Set(static_cast<double>(ledger.CurrentRules().number));
  running_->Set(p.running ? 1 : 0);
  batches_done_->Set(static_cast<double>(p.batches_done));
  batches_total_->Set(static_cast<double>(p.batches_total));
  const double completed = static_cast<double>(p.completed);
  LL_CHECK(completed >= completed_->Value());  // the ledger's count never goes back
  if (completed > completed_->Value()) completed_->Increment(completed - completed_->Value());
  last_duration_->Set(static_cast<double>(p.last_duration_ms) / 1000.0);
}

std::string RulesStatsText(const storage::Ledger& ledger) {
  const storage::RulesProgress p = ledger.RulesRecompute();
  std::string text;
  auto line = [&](const char* key, uint64_t value) {
    text += key;
    text += ' ';
    text += std::to_string(value);
    text += '\n';
  };
  line("rules_version_number", ledger.CurrentRules().number);
  line("rules_recompute_running", p.running ? 1 : 0);
  line("rules_recompute_batches_done", p.batches_done);
  line("rules_recompute_batches_total", p.batches_total);
  line("rules_recomputes_completed", p.completed);
  line("rules_recompute_last_duration_ms", static_cast<uint64_t>(p.last_duration_ms));
  return text;
}

}  // namespace loanledger::server
