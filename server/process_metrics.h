// The Prometheus `process_*` families (the client libraries' convention,
// docs/metrics.md "Process"), which prometheus-cpp 1.0 does not provide:
// read from /proc/self and getrlimit(2), registered in loanledgerd's registry
// and refreshed with the other gauges (--metrics-refresh-ms). Also the
// server certificate's expiry (loanledger_tls_cert_expiry_timestamp_seconds).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "schema/status.h"

namespace loanledger::server {

// The fields of /proc/<pid>/stat that the process_* families need (proc(5)).
struct ProcStat {
  uint64_t utime_ticks = 0;      // field 14: user CPU, clock ticks
  uint64_t stime_ticks = 0;      // field 15: system CPU, clock ticks
  uint64_t starttime_ticks = 0;  // field 22: start, clock ticks after boot
  uint64_t vsize_bytes = 0;      // field 23: virtual memory size
  uint64_t rss_pages = 0;        // field 24: resident set size, pages
};
// Parses /proc/<pid>/stat; the command name (field 2) may hold spaces and
// parentheses, so fields are counted from its last ')'.
Result<ProcStat> ParseProcStat(std::string_view text);
// The `btime` line of /proc/stat: boot time in Unix seconds.
Result<uint64_t> ParseBootTime(std::string_view proc_stat_text);

// notAfter of the first certificate of a PEM file, in Unix seconds.
Result<int64_t> CertificateNotAfterSeconds(const std::string& pem_path);

class ProcessMetrics {
 public:
  // Registers the families in `registry` (which must outlive this) and reads
  // the first values.
  explicit ProcessMetrics(prometheus::Registry& registry);
  ProcessMetrics(const ProcessMetrics&) = delete;
  ProcessMetrics& operator=(const ProcessMetrics&) = delete;

  // Reads /proc/self again. A failed read leaves the last values (and is
  // logged once).
  void Refresh();
  // loanledger_tls_cert_expiry_timestamp_seconds; 0 (the value without
  // --tls-cert) means no certificate.
  void SetTlsCertificateExpiry(int64_t not_after_seconds);

 private:
  prometheus::Gauge& start_time_;      // process_start_time_seconds
  prometheus::Counter& cpu_seconds_;   // process_cpu_seconds_total
  prometheus::Gauge& resident_bytes_;  // process_resident_memory_bytes
  prometheus::Gauge& virtual_bytes_;   // process_virtual_memory_bytes
  prometheus::Gauge& open_fds_;        // process_open_fds
  prometheus::Gauge& max_fds_;         // process_max_fds
  prometheus::Gauge& tls_expiry_;      // loanledger_tls_cert_expiry_timestamp_seconds
  const double ticks_per_second_;      // sysconf(_SC_CLK_TCK)
  const double page_bytes_;            // sysconf(_SC_PAGESIZE)
  bool failure_logged_ = false;        // Refresh logs its first failure only
};

}  // namespace loanledger::server
