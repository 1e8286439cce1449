// loanledger-load: the end-to-end load tool (issue: wire protocol ... item 6).
// N connections, each an institution submitting a generated stream in
// pipelined batches (every batch acknowledged durable by the server), while
// a regulator connection asks for reports. Prints events/s, batch ack
// latency p50/p99/p999 and report latency p50/p99.
//
//   loanledger-load --server 127.0.0.1:7700 --tokens FILE --regulator-token T
//                   [--connections 2] [--batch 10000] [--events 1000000]
//                   [--loans-per-connection 100000] [--in-flight 8]
//                   [--report-interval-ms 50] [--by-province]
// FILE holds one institution token per line (connection i uses line i).
// bench/run_load.sh starts a server with fresh tokens and runs this.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "schema/date.h"

namespace {

using loanledger::BorrowerType;
using loanledger::EnterpriseSize;
using loanledger::EventKind;
using loanledger::LoanEvent;
using Clock = std::chrono::steady_clock;
namespace client = loanledger::client;

struct Options {
  std::string server = "127.0.0.1:7700";
  std::string tokens_file;
  std::string regulator_token;
  uint32_t connections = 2;
  uint32_t batch = 10'000;
  uint64_t events = 1'000'000;  // in total, over all connections
  uint64_t loans_per_connection = 100'000;
  uint64_t skip_per_connection = 0;  // events of each stream already in the store
  uint32_t in_flight = 8;
  uint32_t report_interval_ms = 50;
  bool by_province = false;
};

// A deterministic stream for one institution: first a DISBURSE for each of
// its loans, then REPAYs of 1 fen (with every 10th a RECLASSIFY) cycling
// over the loans, each with the loan's next seq.
class Stream {
 public:
  // skip: the first events of the stream are generated but not sent (a
  // store already holds them from an earlier run with the same options).
  Stream(std::string institution, uint64_t loans, uint64_t events, uint64_t skip)
      : institution_(std::move(institution)),
        loans_(loans),
        events_(events + skip),
        seq_(loans, 0) {
    for (; produced_ < skip; ++produced_) ++seq_[produced_ % loans_];
  }

  bool Fill(std::vector<LoanEvent>& batch, size_t n) {
    while (batch.size() < n && produced_ < events_) {
      const uint64_t loan = produced_ % loans_;
      const uint64_t seq = ++seq_[loan];
      const bool first = seq == 1;
      const bool reclassify = !first && produced_ % 10 == 0;
      batch.push_back(Make(loan, seq,
                           first        ? EventKind::kDisburse
                           : reclassify ? EventKind::kReclassify
                                        : EventKind::kRepay,
                           first        ? 100'000'000
                           : reclassify ? 0
                                        : 1));
      ++produced_;
    }
    return !batch.empty();
  }

 private:
  LoanEvent Make(uint64_t loan, uint64_t seq, EventKind kind, int64_t amount) const {
    static const char* kIndustries[] = {"C3911", "C2710", "C3130", "F5123", "I6510", "C3841"};
    static const char* kRegions[] = {"310115", "440305", "320105", "110105", "510104", "330106"};
    LoanEvent e;
    e.institution_id = institution_;
    e.loan_id = "L" + std::to_string(loan);
    e.seq = seq;
    // Dates advance with seq (never backwards for a loan): 2022-01-01 + seq days.
    e.business_date = loanledger::DaysFromCivil({2022, 1, 1}) +
                      static_cast<int32_t>(std::min<uint64_t>(seq, 20000));
    e.kind = kind;
    e.amount_fen = amount;
    auto& a = e.attributes;
    a.borrower_type = BorrowerType::kEnterprise;
    a.enterprise_size = static_cast<EnterpriseSize>(1 + (loan + seq / 10) % 4);
    a.industry_code = kIndustries[(loan + seq / 10) % 6];
    a.region_code = kRegions[loan % 6];
    a.term_months = static_cast<uint16_t>(6 + loan % 60);
    a.credit_line_fen = static_cast<int64_t>((loan % 40) * 50'000'000);
    a.srdi = loan % 5 == 0;
    a.tech_enterprise = loan % 7 == 0;
    a.green = loan % 3 == 0;
    return e;
  }

  std::string institution_;
  uint64_t loans_;
  uint64_t events_;
  uint64_t produced_ = 0;
  std::vector<uint64_t> seq_;
};

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

bool ParseServer(const std::string& text, client::ClientOptions& o) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  o.host = text.substr(0, colon);
  o.port = static_cast<uint16_t>(std::stoul(text.substr(colon + 1)));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"loanledger-load: end-to-end load against loanledgerd"};
  app.add_option("--server", opt.server, "HOST:PORT");
  app.add_option("--tokens", opt.tokens_file, "file with one institution token per line")
      ->required();
  app.add_option("--regulator-token", opt.regulator_token,
                 "token for report queries during the load");
  app.add_option("--connections", opt.connections)->check(CLI::Range(1, 64));
  app.add_option("--batch", opt.batch, "events per batch")->check(CLI::Range(1, 65536));
  app.add_option("--events", opt.events, "events in total");
  app.add_option("--loans-per-connection", opt.loans_per_connection)
      ->check(CLI::Range(1, 100'000'000));
  app.add_option("--skip-per-connection", opt.skip_per_connection,
                 "events of each connection's stream already applied by an earlier run");
  app.add_option("--in-flight", opt.in_flight, "batches in flight per connection")
      ->check(CLI::Range(1, 256));
  app.add_option("--report-interval-ms", opt.report_interval_ms, "0 = no report queries");
  app.add_flag("--by-province", opt.by_province, "report queries grouped by province");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::string> tokens;
  {
    std::ifstream in(opt.tokens_file);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) tokens.push_back(line);
    }
  }
  if (tokens.size() < opt.connections) {
    std::fprintf(stderr, "need %u tokens in %s, found %zu\n", opt.connections,
                 opt.tokens_file.c_str(), tokens.size());
    return 1;
  }
  client::ClientOptions base;
  if (!ParseServer(opt.server, base)) return 1;
  base.batches_in_flight_max = opt.in_flight;

  std::mutex mu;  // guards ack_latencies_ms and the failure text
  std::vector<double> ack_latencies_ms;
  std::string failure;
  std::atomic<uint64_t> acked_events{0};
  std::atomic<bool> loading{true};
  const uint64_t per_connection = opt.events / opt.connections;

  const Clock::time_point start = Clock::now();
  std::vector<std::thread> workers;
  for (uint32_t c = 0; c < opt.connections; ++c) {
    workers.emplace_back([&, c] {
      client::ClientOptions o = base;
      o.token = tokens[c];
      auto conn = client::Client::Connect(o);
      if (!conn.ok()) {
        std::lock_guard lock(mu);
        failure = "connect: " + conn.status().ToString();
        return;
      }
      Stream stream((*conn)->identity().institution_id, opt.loans_per_connection, per_connection,
                    opt.skip_per_connection);
      std::vector<Clock::time_point> sent;
      std::vector<double> local;
      loanledger::Status s = (*conn)->SubmitStream(
          [&](std::vector<LoanEvent>& batch) {
            if (!stream.Fill(batch, opt.batch)) return false;
            sent.push_back(Clock::now());
            return true;
          },
          [&](uint64_t index, const client::BatchOutcome& outcome) {
            local.push_back(
                std::chrono::duration<double, std::milli>(Clock::now() - sent[index]).count());
            if (!outcome.applied) {
              std::lock_guard lock(mu);
              failure =
                  "batch rejected: " +
                  (outcome.rejections.empty() ? std::string("?") : outcome.rejections[0].message);
              return false;
            }
            acked_events += outcome.events_applied + outcome.events_duplicate;
            return true;
          });
      std::lock_guard lock(mu);
      if (!s.ok()) failure = "submit: " + s.ToString();
      ack_latencies_ms.insert(ack_latencies_ms.end(), local.begin(), local.end());
    });
  }

  std::vector<double> report_ms;
  std::thread reporter;
  if (!opt.regulator_token.empty() && opt.report_interval_ms > 0) {
    reporter = std::thread([&] {
      client::ClientOptions o = base;
      o.token = opt.regulator_token;
      auto conn = client::Client::Connect(o);
      if (!conn.ok()) return;
      loanledger::ReportQuery q;
      q.date = loanledger::DaysFromCivil({2024, 9, 30});
      q.by = opt.by_province ? loanledger::GroupBy::kProvince : loanledger::GroupBy::kNone;
      while (loading) {
        const Clock::time_point t0 = Clock::now();
        auto r = (*conn)->QueryReport(q);
        if (!r.ok()) break;
        report_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        std::this_thread::sleep_for(std::chrono::milliseconds(opt.report_interval_ms));
      }
    });
  }
  for (auto& t : workers) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  loading = false;
  if (reporter.joinable()) reporter.join();

  if (!failure.empty()) {
    std::fprintf(stderr, "load failed: %s\n", failure.c_str());
    return 2;
  }
  const uint64_t events = acked_events.load();
  std::printf("connections=%u batch=%u in_flight=%u events=%lu seconds=%.2f events_per_s=%.0f\n",
              opt.connections, opt.batch, opt.in_flight, static_cast<unsigned long>(events),
              seconds, static_cast<double>(events) / seconds);
  std::printf("ack_latency_ms p50=%.1f p99=%.1f p999=%.1f batches=%zu\n",
              Percentile(ack_latencies_ms, 0.50), Percentile(ack_latencies_ms, 0.99),
              Percentile(ack_latencies_ms, 0.999), ack_latencies_ms.size());
  if (!report_ms.empty()) {
    std::printf("report_latency_ms%s p50=%.2f p99=%.2f queries=%zu\n",
                opt.by_province ? "(by province)" : "", Percentile(report_ms, 0.50),
                Percentile(report_ms, 0.99), report_ms.size());
  }
  return 0;
}
