// Loan snapshots (storage/loan_snapshot.h): the cost per loan of writing a
// snapshot (what the background snapshot thread does for every loan) and
// of reading one back (ReadSnapshotBlocks, what a start does). Run:
//   build/bench/loan_snapshot_bench --benchmark_min_time=2
// Env LOANLEDGER_BENCH_DIR picks the directory of the file (default /tmp).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "schema/date.h"
#include "storage/loan_snapshot.h"

namespace {

namespace storage = loanledger::storage;
using loanledger::BorrowerType;
using loanledger::EnterpriseSize;

constexpr uint64_t kLoans = 1'000'000;

struct Loans {
  std::vector<std::string> keys;
  std::vector<storage::LoanSlot> slots;
};

// kLoans loans with the generator's kind of attributes.
const Loans& SampleLoans() {
  static const Loans loans = [] {
    static const char* kIndustries[] = {"C3911", "C2710", "C39", "F5123", "I651", "A", "C3841", ""};
    static const char* kRegions[] = {"310115", "440305", "320105", "110105",
                                     "510104", "330106", "370102", "650102"};
    Loans l;
    l.keys.reserve(kLoans);
    l.slots.reserve(kLoans);
    for (uint64_t i = 0; i < kLoans; ++i) {
      loanledger::LoanAttributes a;
      const bool person = i % 8 == 7;
      a.borrower_type = person ? BorrowerType::kIndividual : BorrowerType::kEnterprise;
      a.enterprise_size = person ? EnterpriseSize::kNa : static_cast<EnterpriseSize>(1 + i % 4);
      a.industry_code = kIndustries[i % 8];
      a.region_code = kRegions[(i * 3) % 8];
      a.term_months = static_cast<uint16_t>(1 + i % 120);
      a.credit_line_fen = static_cast<int64_t>((i % 50) * 100'000'000);
      a.srdi = i % 5 == 0;
      a.green = i % 3 == 0;
      const storage::LoanState state{1 + i % 40,
                                     loanledger::kDayMin + 12000 + static_cast<int32_t>(i % 900),
                                     static_cast<int64_t>(1'000'000 + i * 37 % 1'000'000'000), a};
      l.keys.push_back(storage::LoanKey("B" + std::to_string(1000 + i % 400),
                                        "L" + std::to_string(100'000'000 + i)));
      l.slots.push_back(storage::LoanSlot::FromState(state));
    }
    return l;
  }();
  return loans;
}

std::string BenchPath() {
  const char* base = std::getenv("LOANLEDGER_BENCH_DIR");
  return std::string(base ? base : "/tmp") + "/loanledger-snapshot-bench.loans";
}

void WriteSnapshot(const std::string& path) {
  const Loans& loans = SampleLoans();
  auto w = storage::SnapshotWriter::Create(path, 1);
  if (!w.ok()) std::abort();
  for (uint64_t i = 0; i < kLoans; ++i) {
    (*w)->Add(loans.keys[i], loans.slots[i]);
    if (i % 65'536 == 0 && !(*w)->WritePending().ok()) std::abort();
  }
  if (!(*w)->Commit().ok()) std::abort();
}

// A whole snapshot as the background thread writes one: Add() for every
// loan, the blocks written every 65,536 loans, then Commit (fdatasync,
// rename, directory sync).
void BM_SnapshotWrite(benchmark::State& state) {
  SampleLoans();  // built once, outside the timing
  const std::string path = BenchPath();
  for (auto _ : state) WriteSnapshot(path);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kLoans));
  std::filesystem::remove(path);
}
BENCHMARK(BM_SnapshotWrite)->Unit(benchmark::kMillisecond)->UseRealTime();

// Reads and checks every block and record of a committed snapshot (one
// reader; a start uses two).
void BM_SnapshotRead(benchmark::State& state) {
  const std::string path = BenchPath();
  WriteSnapshot(path);
  auto info = storage::ReadSnapshotInfo(path);
  if (!info.ok()) std::abort();
  for (auto _ : state) {
    uint64_t seen = 0;
    const loanledger::Status s =
        storage::ReadSnapshotBlocks(path, *info, 0, 1, [&](storage::LoanBlock&& b) {
          seen += b.size();
          return true;
        });
    if (!s.ok() || seen != kLoans) std::abort();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kLoans));
  state.counters["file_mib"] = static_cast<double>(std::filesystem::file_size(path)) / (1 << 20);
  std::filesystem::remove(path);
}
BENCHMARK(BM_SnapshotRead)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
