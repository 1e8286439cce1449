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
//
// File mode: instead of the synthetic stream, real CSV files (docs/data.md,
// e.g. from `loanledger gen --out-dir`), each file one institution's:
//   loanledger-load --files DIR_OR_FILE... --tokens FILE [--connections 4] [--rate N] ...
// FILE then holds `INSTITUTION_ID TOKEN` per line. Each connection takes the
// next file (largest first), connects as the institution of its first event
// and submits it pipelined; a rejected event ends the run (exit 2). Nothing
// of a CLI process (start, connect, auth per file aside) is measured.
// --rate N paces the batches so that all connections together send at most
// N events a second (e.g. half the rate a run without it reached).
//
// Reports only: `--reports-only` submits nothing and asks for reports until
// SIGTERM or SIGINT (a script's load runs beside it), then prints their
// latency; SIGUSR1 discards what was measured so far (sent when the load
// starts, so that the figures cover the load only). `--both-reports` alternates national and
// by-province queries and prints each kind's latency.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "client/csv.h"
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
  std::string report_date = "2024-09-30";
  std::vector<std::string> files;  // file mode: CSV files or directories of them
  uint64_t rate = 0;               // file mode: at most this many events/s in all; 0 = no limit
  bool reports_only = false;       // submit nothing; report queries until SIGTERM/SIGINT
  bool both_reports = false;       // alternate national and by-province queries
};

volatile std::sig_atomic_t g_stop = 0;   // set by SIGTERM/SIGINT in --reports-only
volatile std::sig_atomic_t g_reset = 0;  // set by SIGUSR1 in --reports-only
void OnStopSignal(int) { g_stop = 1; }
void OnResetSignal(int) { g_reset = 1; }

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

// File mode: the CSV files named (a directory: its *.csv files), largest
// first so that the last ones to finish are short.
std::vector<std::filesystem::path> ListFiles(const std::vector<std::string>& names,
                                             std::string& error) {
  namespace fs = std::filesystem;
  std::vector<std::pair<uintmax_t, fs::path>> found;
  for (const std::string& name : names) {
    std::error_code ec;
    if (fs::is_directory(name, ec)) {
      for (const auto& entry : fs::directory_iterator(name, ec)) {
        if (entry.path().extension() == ".csv") found.emplace_back(entry.file_size(), entry.path());
      }
    } else if (fs::is_regular_file(name, ec)) {
      found.emplace_back(fs::file_size(name, ec), name);
    } else {
      error = name + ": no such file or directory";
      return {};
    }
    if (ec) {
      error = name + ": " + ec.message();
      return {};
    }
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<fs::path> files;
  for (auto& [size, path] : found) files.push_back(std::move(path));
  if (files.empty()) error = "no CSV files found";
  return files;
}

// File mode's tokens: `INSTITUTION_ID TOKEN` per line.
std::map<std::string, std::string> ReadInstitutionTokens(const std::string& path,
                                                         std::string& error) {
  std::map<std::string, std::string> tokens;
  std::ifstream in(path);
  if (!in) error = "cannot read " + path;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string institution, token;
    if (!(fields >> institution)) continue;
    if (!(fields >> token)) {
      error = path + ": expected INSTITUTION_ID TOKEN per line";
      break;
    }
    tokens[institution] = token;
  }
  return tokens;
}

// Counts and latencies of a load, shared by its connections.
struct LoadTotals {
  std::mutex mu;                         // guards ack_latencies_ms and failure
  std::vector<double> ack_latencies_ms;  // per batch, sent to acknowledged
  std::string failure;                   // the first failure; "" = none
  std::atomic<uint64_t> acked_events{0};
  // --rate: the events every connection has claimed so far, and when the
  // load began; a batch that brings the total to N leaves no earlier than
  // start + N / rate.
  uint64_t rate = 0;
  Clock::time_point start = Clock::now();
  std::atomic<uint64_t> claimed_events{0};
  void Pace(size_t events) {
    if (rate == 0) return;
    const uint64_t upto = claimed_events.fetch_add(events) + events;
    std::this_thread::sleep_until(
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                    static_cast<double>(upto) / static_cast<double>(rate))));
  }
  void Fail(std::string what) {
    std::lock_guard lock(mu);
    if (failure.empty()) failure = std::move(what);
  }
};

// Submits one CSV file over its own connection, as the institution of its
// first event, in batches of `batch` events.
void SubmitFile(const client::ClientOptions& base, const std::map<std::string, std::string>& tokens,
                const std::filesystem::path& path, uint32_t batch, LoadTotals& totals) {
  std::ifstream in(path, std::ios::binary);
  client::CsvReader reader(in);
  if (!in) return totals.Fail(path.string() + ": cannot read");
  if (!reader.ReadHeader()) return totals.Fail(path.string() + ": " + reader.error());
  LoanEvent first;
  client::CsvReader::Next next = reader.ReadNext(first);
  if (next == client::CsvReader::Next::kEnd) return;  // a header only: nothing to send
  if (next == client::CsvReader::Next::kBadLine) {
    return totals.Fail(path.string() + ":" + std::to_string(reader.line_number()) + ": " +
                       reader.parse_error().message);
  }
  const auto token = tokens.find(first.institution_id);
  if (token == tokens.end()) {
    return totals.Fail(path.string() + ": no token for institution " + first.institution_id);
  }
  client::ClientOptions o = base;
  o.token = token->second;
  auto conn = client::Client::Connect(o);
  if (!conn.ok()) return totals.Fail("connect: " + conn.status().ToString());
  std::vector<Clock::time_point> sent;
  std::vector<double> local;
  std::string bad_line;
  loanledger::Status s = (*conn)->SubmitStream(
      [&](std::vector<LoanEvent>& events) {
        for (; next != client::CsvReader::Next::kEnd && events.size() < batch;
             next = reader.ReadNext(first)) {
          if (next == client::CsvReader::Next::kBadLine) {
            bad_line = path.string() + ":" + std::to_string(reader.line_number()) + ": " +
                       reader.parse_error().message;
            return false;
          }
          events.push_back(first);
        }
        if (events.empty()) return false;
        totals.Pace(events.size());
        sent.push_back(Clock::now());
        return true;
      },
      [&](uint64_t index, const client::BatchOutcome& outcome) {
        local.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - sent[index]).count());
        if (!outcome.applied) {
          totals.Fail(
              path.string() + ": batch rejected: " +
              (outcome.rejections.empty() ? std::string("?") : outcome.rejections[0].message));
          return false;
        }
        totals.acked_events += outcome.events_applied + outcome.events_duplicate;
        return true;
      });
  if (!s.ok()) totals.Fail(path.string() + ": submit: " + s.ToString());
  if (!bad_line.empty()) totals.Fail(bad_line);
  std::lock_guard lock(totals.mu);
  totals.ack_latencies_ms.insert(totals.ack_latencies_ms.end(), local.begin(), local.end());
}

// Report latencies in ms, by kind of query.
struct ReportLatencies {
  std::vector<double> national_ms;
  std::vector<double> province_ms;
};

// Asks for a report (national, by province, or both in turn) every interval
// while `loading` (and no stop signal came).
void RunReporter(const client::ClientOptions& base, const Options& opt, loanledger::Day date,
                 const std::atomic<bool>& loading, ReportLatencies& out) {
  client::ClientOptions o = base;
  o.token = opt.regulator_token;
  auto conn = client::Client::Connect(o);
  if (!conn.ok()) {
    std::fprintf(stderr, "reports: connect: %s\n", conn.status().ToString().c_str());
    return;
  }
  loanledger::ReportQuery q;
  q.date = date;
  for (uint64_t n = 0; loading && g_stop == 0; ++n) {
    if (g_reset != 0) {
      g_reset = 0;
      out.national_ms.clear();
      out.province_ms.clear();
    }
    const bool by_province = opt.both_reports ? n % 2 == 1 : opt.by_province;
    q.by = by_province ? loanledger::GroupBy::kProvince : loanledger::GroupBy::kNone;
    const Clock::time_point t0 = Clock::now();
    auto r = (*conn)->QueryReport(q);
    if (!r.ok()) break;
    (by_province ? out.province_ms : out.national_ms)
        .push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    std::this_thread::sleep_for(std::chrono::milliseconds(opt.report_interval_ms));
  }
}

void PrintReportLatencies(ReportLatencies& r) {
  for (auto [name, v] :
       {std::pair{"", &r.national_ms}, std::pair{"(by province)", &r.province_ms}}) {
    if (v->empty()) continue;
    std::printf("report_latency_ms%s p50=%.2f p99=%.2f queries=%zu\n", name, Percentile(*v, 0.50),
                Percentile(*v, 0.99), v->size());
  }
}

// The synthetic stream: connection c is the institution of token line c.
void StartSynthetic(const Options& opt, const client::ClientOptions& base,
                    const std::vector<std::string>& tokens, LoadTotals& totals,
                    std::vector<std::thread>& workers) {
  const uint64_t per_connection = opt.events / opt.connections;
  for (uint32_t c = 0; c < opt.connections; ++c) {
    workers.emplace_back([&, c, per_connection] {
      client::ClientOptions o = base;
      o.token = tokens[c];
      auto conn = client::Client::Connect(o);
      if (!conn.ok()) return totals.Fail("connect: " + conn.status().ToString());
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
              totals.Fail("batch rejected: " + (outcome.rejections.empty()
                                                    ? std::string("?")
                                                    : outcome.rejections[0].message));
              return false;
            }
            totals.acked_events += outcome.events_applied + outcome.events_duplicate;
            return true;
          });
      if (!s.ok()) totals.Fail("submit: " + s.ToString());
      std::lock_guard lock(totals.mu);
      totals.ack_latencies_ms.insert(totals.ack_latencies_ms.end(), local.begin(), local.end());
    });
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"loanledger-load: end-to-end load against loanledgerd"};
  app.add_option("--server", opt.server, "HOST:PORT");
  app.add_option("--tokens", opt.tokens_file,
                 "file with one institution token per line ('INSTITUTION_ID TOKEN' with --files)");
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
  app.add_option("--report-date", opt.report_date, "date of the report queries (YYYY-MM-DD)")
      ->capture_default_str();
  app.add_option("--rate", opt.rate,
                 "file mode: send at most this many events per second over all connections "
                 "(0 = as fast as the server acknowledges)");
  app.add_option("--files", opt.files,
                 "file mode: CSV files (docs/data.md) or directories of them, one institution "
                 "each, instead of the synthetic stream (connections take files largest first)");
  app.add_flag("--reports-only", opt.reports_only,
               "submit nothing; ask for reports until SIGTERM or SIGINT, then print latencies "
               "(SIGUSR1: forget those measured so far)");
  app.add_flag("--both-reports", opt.both_reports,
               "alternate national and by-province report queries");
  CLI11_PARSE(app, argc, argv);
  if (!opt.reports_only && opt.tokens_file.empty()) {
    std::fprintf(stderr, "--tokens is required (but with --reports-only)\n");
    return 1;
  }
  if (opt.reports_only) {
    if (opt.regulator_token.empty() || opt.report_interval_ms == 0) {
      std::fprintf(stderr, "--reports-only needs --regulator-token and an interval > 0\n");
      return 1;
    }
    std::signal(SIGTERM, OnStopSignal);
    std::signal(SIGINT, OnStopSignal);
    std::signal(SIGUSR1, OnResetSignal);
  }
  const std::optional<loanledger::Day> report_date = loanledger::ParseDate(opt.report_date);
  if (!report_date) {
    std::fprintf(stderr, "bad --report-date %s: expected YYYY-MM-DD\n", opt.report_date.c_str());
    return 1;
  }
  client::ClientOptions base;
  if (!ParseServer(opt.server, base)) return 1;
  base.batches_in_flight_max = opt.in_flight;

  std::vector<std::string> tokens;                        // synthetic mode
  std::map<std::string, std::string> institution_tokens;  // file mode
  std::vector<std::filesystem::path> files;               // file mode
  std::string error;
  if (opt.reports_only) {
    // no submissions
  } else if (!opt.files.empty()) {
    files = ListFiles(opt.files, error);
    if (error.empty()) institution_tokens = ReadInstitutionTokens(opt.tokens_file, error);
    if (!error.empty()) {
      std::fprintf(stderr, "%s\n", error.c_str());
      return 1;
    }
  } else {
    std::ifstream in(opt.tokens_file);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) tokens.push_back(line);
    }
    if (tokens.size() < opt.connections) {
      std::fprintf(stderr, "need %u tokens in %s, found %zu\n", opt.connections,
                   opt.tokens_file.c_str(), tokens.size());
      return 1;
    }
  }

  if (opt.rate != 0 && opt.files.empty()) {
    std::fprintf(stderr, "--rate needs --files\n");
    return 2;
  }
  LoadTotals totals;
  totals.rate = opt.rate;
  std::atomic<bool> loading{true};
  std::atomic<size_t> next_file{0};
  const Clock::time_point start = Clock::now();
  totals.start = start;
  std::vector<std::thread> workers;
  if (!files.empty()) {
    for (uint32_t c = 0; c < opt.connections; ++c) {
      workers.emplace_back([&] {
        for (size_t i = next_file++; i < files.size(); i = next_file++) {
          SubmitFile(base, institution_tokens, files[i], opt.batch, totals);
          std::lock_guard lock(totals.mu);
          if (!totals.failure.empty()) return;
        }
      });
    }
  } else if (!opt.reports_only) {
    StartSynthetic(opt, base, tokens, totals, workers);
  }

  ReportLatencies report_ms;
  std::thread reporter;
  if (!opt.regulator_token.empty() && opt.report_interval_ms > 0) {
    reporter = std::thread([&] { RunReporter(base, opt, *report_date, loading, report_ms); });
  }
  if (opt.reports_only) {
    reporter.join();  // until a stop signal
    PrintReportLatencies(report_ms);
    return report_ms.national_ms.empty() && report_ms.province_ms.empty() ? 2 : 0;
  }
  for (auto& t : workers) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  loading = false;
  if (reporter.joinable()) reporter.join();

  if (!totals.failure.empty()) {
    std::fprintf(stderr, "load failed: %s\n", totals.failure.c_str());
    return 2;
  }
  const uint64_t events = totals.acked_events.load();
  std::printf("connections=%u batch=%u in_flight=%u events=%lu seconds=%.2f events_per_s=%.0f",
              opt.connections, opt.batch, opt.in_flight, static_cast<unsigned long>(events),
              seconds, static_cast<double>(events) / seconds);
  if (!files.empty()) std::printf(" files=%zu", files.size());
  std::printf("\n");
  std::vector<double>& ack_latencies_ms = totals.ack_latencies_ms;
  std::printf("ack_latency_ms p50=%.1f p99=%.1f p999=%.1f batches=%zu\n",
              Percentile(ack_latencies_ms, 0.50), Percentile(ack_latencies_ms, 0.99),
              Percentile(ack_latencies_ms, 0.999), ack_latencies_ms.size());
  PrintReportLatencies(report_ms);
  return 0;
}
