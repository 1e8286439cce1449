// report_timer: the latency of one report query, measured the same way on
// both sides of bench/compare_postgres.sh. One connection (opened and
// authenticated before timing), W untimed warm-up calls, then N timed calls
// one after another; each call is timed from sending the request to having
// the whole answer decoded in memory (loanledgerd: Client::QueryReport's
// parsed rows; PostgreSQL: libpq's PQexec result with every row). Prints
//   runs=N rows=R p50_ms=.. p99_ms=.. min_ms=.. max_ms=.. mean_ms=..
// Percentiles are nearest-rank (p99 of 50 runs is the largest).
//
//   report_timer loanledger HOST:PORT TOKEN DATE none|province RUNS WARMUP
//   report_timer postgres CONNINFO SQL RUNS WARMUP
//
// Built by bench/compare_postgres.sh (it needs the client library of a
// loanledger build and libpq).
#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "client/client.h"
#include "schema/date.h"
#include "schema/query.h"

namespace {

using Clock = std::chrono::steady_clock;

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

// Runs `call` warmup + runs times; call returns the number of rows or -1.
int Measure(int runs, int warmup, const std::function<long()>& call) {
  long rows = 0;
  for (int i = 0; i < warmup; ++i) {
    if (call() < 0) return 2;
  }
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    const Clock::time_point t0 = Clock::now();
    rows = call();
    const Clock::time_point t1 = Clock::now();
    if (rows < 0) return 2;
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  double sum = 0;
  for (double x : ms) sum += x;
  std::printf("runs=%d rows=%ld p50_ms=%.3f p99_ms=%.3f min_ms=%.3f max_ms=%.3f mean_ms=%.3f\n",
              runs, rows, Percentile(ms, 0.50), Percentile(ms, 0.99),
              *std::min_element(ms.begin(), ms.end()), *std::max_element(ms.begin(), ms.end()),
              sum / runs);
  return 0;
}

int Loanledger(int argc, char** argv) {
  if (argc != 8) return 1;
  namespace client = loanledger::client;
  client::ClientOptions o;
  const std::string server = argv[2];
  const size_t colon = server.rfind(':');
  if (colon == std::string::npos) return 1;
  o.host = server.substr(0, colon);
  o.port = static_cast<uint16_t>(std::stoul(server.substr(colon + 1)));
  o.token = argv[3];
  const std::optional<loanledger::Day> date = loanledger::ParseDate(argv[4]);
  const std::optional<loanledger::GroupBy> by = loanledger::ParseGroupBy(argv[5]);
  if (!date || !by) return 1;
  auto conn = client::Client::Connect(o);
  if (!conn.ok()) {
    std::fprintf(stderr, "report_timer: connect: %s\n", conn.status().ToString().c_str());
    return 3;
  }
  loanledger::ReportQuery q;
  q.date = *date;
  q.by = *by;
  return Measure(std::atoi(argv[6]), std::atoi(argv[7]), [&]() -> long {
    auto r = (*conn)->QueryReport(q);
    if (!r.ok()) {
      std::fprintf(stderr, "report_timer: report: %s\n", r.status().ToString().c_str());
      return -1;
    }
    return static_cast<long>(r->rows.size());
  });
}

int Postgres(int argc, char** argv) {
  if (argc != 6) return 1;
  PGconn* conn = PQconnectdb(argv[2]);
  if (PQstatus(conn) != CONNECTION_OK) {
    std::fprintf(stderr, "report_timer: %s", PQerrorMessage(conn));
    PQfinish(conn);
    return 3;
  }
  const std::string sql = argv[3];
  const int rc = Measure(std::atoi(argv[4]), std::atoi(argv[5]), [&]() -> long {
    PGresult* res = PQexec(conn, sql.c_str());
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
      std::fprintf(stderr, "report_timer: %s", PQresultErrorMessage(res));
      PQclear(res);
      return -1;
    }
    const long rows = PQntuples(res);
    PQclear(res);
    return rows;
  });
  PQfinish(conn);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  int rc = 1;
  if (mode == "loanledger") rc = Loanledger(argc, argv);
  if (mode == "postgres") rc = Postgres(argc, argv);
  if (rc == 1) {
    std::fprintf(stderr,
                 "usage: report_timer loanledger HOST:PORT TOKEN DATE none|province RUNS WARMUP\n"
                 "       report_timer postgres CONNINFO SQL RUNS WARMUP\n");
  }
  return rc;
}
