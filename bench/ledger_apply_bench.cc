// The apply path of storage::Ledger (issue: ledger core, item 8): events/s
// for batches of 10,000 events on a store already holding >= 1,000,000
// loans, WAL synced per batch. Run:
//   build/bench/ledger_apply_bench --benchmark_min_time=5
// Env LOANLEDGER_BENCH_DIR picks the data directory (default /tmp).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "schema/category.h"
#include "storage/ledger.h"

namespace {

using loanledger::BorrowerType;
using loanledger::EnterpriseSize;
using loanledger::EventKind;
using loanledger::LoanEvent;
namespace storage = loanledger::storage;

constexpr uint64_t kPreloadedLoans = 1'000'000;
constexpr size_t kBatchEvents = 10'000;

LoanEvent MakeEvent(uint64_t loan, uint64_t seq, EventKind kind, int64_t amount_fen,
                    uint32_t salt) {
  static const char* kIndustries[] = {"C3911", "C2710", "C3130", "F5123",
                                      "I6510", "A0111", "C3841", "K7010"};
  static const char* kRegions[] = {"310115", "440305", "320105", "110105",
                                   "510104", "330106", "370102", "650102"};
  LoanEvent e;
  e.institution_id = "B" + std::to_string(1000 + loan % 40);
  e.loan_id = "L" + std::to_string(loan);
  e.seq = seq;
  e.business_date =
      loanledger::kDayMin + 11688 + static_cast<int32_t>(seq * 30 + loan % 20);  // 2022 on
  e.kind = kind;
  e.amount_fen = amount_fen;
  auto& a = e.attributes;
  a.borrower_type = BorrowerType::kEnterprise;
  a.enterprise_size = static_cast<EnterpriseSize>(1 + (loan + salt) % 4);
  a.industry_code = kIndustries[(loan * 7 + salt) % 8];
  a.region_code = kRegions[(loan * 3) % 8];
  a.term_months = static_cast<uint16_t>(6 + loan % 60);
  a.credit_line_fen = static_cast<int64_t>((loan % 50) * 100'000'000);
  a.srdi = loan % 5 == 0;
  a.tech_enterprise = loan % 7 == 0;
  a.green = loan % 3 == 0;
  return e;
}

// Resident memory of this process (the ledger's loan table and aggregates
// plus RocksDB's memtables and block cache), MiB.
double RssMib() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  double kib = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "VmRSS: %lf kB", &kib) == 1) break;
  }
  std::fclose(f);
  return kib / 1024;
}

std::string BenchDir() {
  const char* base = std::getenv("LOANLEDGER_BENCH_DIR");
  return std::string(base ? base : "/tmp") + "/loanledger-apply-bench";
}

// Preloads kPreloadedLoans loans (one DISBURSE each) without sync, once.
std::unique_ptr<storage::Ledger> OpenPreloaded() {
  const std::string dir = BenchDir();
  std::filesystem::remove_all(dir);
  auto ledger = storage::Ledger::Open({.path = dir, .sync = false});
  if (!ledger.ok()) std::abort();
  storage::Batch batch;
  for (uint64_t loan = 0; loan < kPreloadedLoans; ++loan) {
    batch.events.push_back(MakeEvent(loan, 1, EventKind::kDisburse, 1'000'000'00 + loan % 1000, 0));
    if (batch.events.size() == kBatchEvents) {
      auto r = (*ledger)->Apply(batch);
      if (!r.ok() || !r->applied) std::abort();
      batch.events.clear();
    }
  }
  ledger->reset();
  auto synced = storage::Ledger::Open({.path = dir, .sync = true});
  if (!synced.ok()) std::abort();
  return std::move(*synced);
}

// Each iteration applies one batch of 10,000 events to distinct random
// existing loans: a repayment of 1 fen or a reclassification, as a bank's
// daily file mostly is.
void BM_ApplyBatchSynced(benchmark::State& state) {
  static std::unique_ptr<storage::Ledger> ledger = OpenPreloaded();
  static std::vector<uint64_t> next_seq(kPreloadedLoans, 2);
  std::mt19937_64 rng(42);
  uint32_t round = 0;
  for (auto _ : state) {
    state.PauseTiming();
    storage::Batch batch;
    batch.events.reserve(kBatchEvents);
    const uint64_t start = rng() % kPreloadedLoans;
    for (size_t i = 0; i < kBatchEvents; ++i) {
      const uint64_t loan = (start + i * 97) % kPreloadedLoans;  // distinct within a batch
      const bool reclassify = i % 10 == 0;
      batch.events.push_back(MakeEvent(loan, next_seq[loan]++,
                                       reclassify ? EventKind::kReclassify : EventKind::kRepay,
                                       reclassify ? 0 : 1, reclassify ? ++round : 0));
    }
    state.ResumeTiming();
    auto r = ledger->Apply(batch);
    if (!r.ok() || !r->applied) {
      state.SkipWithError("apply failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kBatchEvents));
  state.counters["loans_in_store"] = static_cast<double>(kPreloadedLoans);
  state.counters["rss_mib"] = RssMib();
}
BENCHMARK(BM_ApplyBatchSynced)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
