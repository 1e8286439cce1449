#include "server/process_metrics.h"

#include <dirent.h>
#include <openssl/asn1.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <vector>

#include "schema/check.h"

namespace loanledger::server {
namespace {

namespace pm = prometheus;

pm::Gauge& Gauge(pm::Registry& r, const char* name, const char* help) {
  return pm::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

Result<std::string> ReadWhole(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(std::string("cannot open ") + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool ParseU64(std::string_view word, uint64_t& out) {
  const auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), out);
  return ec == std::errc() && end == word.data() + word.size();
}

// Entries of /proc/self/fd, without the directory's own descriptor.
Result<uint64_t> CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return Status::IoError("cannot open /proc/self/fd");
  uint64_t count = 0;
  while (const dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++count;
  }
  closedir(dir);
  LL_CHECK(count >= 1);  // the DIR's descriptor is among them
  return count - 1;
}

}  // namespace

Result<ProcStat> ParseProcStat(std::string_view text) {
  const size_t paren = text.rfind(')');
  if (paren == std::string_view::npos) return Status::InvalidArgument("/proc stat: no ')'");
  std::string_view rest = text.substr(paren + 1);
  // Field 3 (state) is the first word after the ')'.
  std::vector<std::string_view> words;
  while (!rest.empty() && words.size() < 22) {
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\n')) rest.remove_prefix(1);
    size_t end = 0;
    while (end < rest.size() && rest[end] != ' ' && rest[end] != '\n') ++end;
    if (end > 0) words.push_back(rest.substr(0, end));
    rest.remove_prefix(end);
  }
  auto field = [&](size_t n, uint64_t& out) {  // n: proc(5)'s 1-based field number
    return n - 3 < words.size() && ParseU64(words[n - 3], out);
  };
  ProcStat s;
  if (!field(14, s.utime_ticks) || !field(15, s.stime_ticks) || !field(22, s.starttime_ticks) ||
      !field(23, s.vsize_bytes) || !field(24, s.rss_pages)) {
    return Status::InvalidArgument("/proc stat: fewer than 24 numeric fields");
  }
  return s;
}

Result<uint64_t> ParseBootTime(std::string_view text) {
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(at, nl - at);
    if (line.substr(0, 6) == "btime ") {
      uint64_t seconds = 0;
      if (ParseU64(line.substr(6), seconds)) return seconds;
      break;
    }
    at = nl + 1;
  }
  return Status::InvalidArgument("/proc/stat: no btime line");
}

Result<int64_t> CertificateNotAfterSeconds(const std::string& pem_path) {
  std::FILE* f = std::fopen(pem_path.c_str(), "r");
  if (f == nullptr) return Status::IoError("cannot open certificate " + pem_path);
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (cert == nullptr) return Status::InvalidArgument("no PEM certificate in " + pem_path);
  std::tm tm{};
  const int ok = ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm);
  X509_free(cert);
  if (ok != 1) return Status::InvalidArgument("unreadable notAfter in " + pem_path);
  return static_cast<int64_t>(timegm(&tm));
}

ProcessMetrics::ProcessMetrics(prometheus::Registry& r)
    : start_time_(Gauge(r, "process_start_time_seconds",
                        "Start time of the process since the Unix epoch in seconds")),
      cpu_seconds_(pm::BuildCounter()
                       .Name("process_cpu_seconds_total")
                       .Help("Total user and system CPU time spent in seconds")
                       .Register(r)
                       .Add({})),
      resident_bytes_(Gauge(r, "process_resident_memory_bytes", "Resident memory size in bytes")),
      virtual_bytes_(Gauge(r, "process_virtual_memory_bytes", "Virtual memory size in bytes")),
      open_fds_(Gauge(r, "process_open_fds", "Number of open file descriptors")),
      max_fds_(Gauge(r, "process_max_fds", "Maximum number of open file descriptors")),
      tls_expiry_(Gauge(r, "loanledger_tls_cert_expiry_timestamp_seconds",
                        "notAfter of the server's TLS certificate (--tls-cert) in Unix seconds; 0 "
                        "without TLS")),
      ticks_per_second_(static_cast<double>(sysconf(_SC_CLK_TCK))),
      page_bytes_(static_cast<double>(sysconf(_SC_PAGESIZE))) {
  LL_CHECK(ticks_per_second_ > 0);
  LL_CHECK(page_bytes_ > 0);
  Refresh();
}

void ProcessMetrics::Refresh() {
  Status failed = Status::Ok();
  Result<std::string> stat_text = ReadWhole("/proc/self/stat");
  Result<ProcStat> stat =
      stat_text.ok() ? ParseProcStat(*stat_text) : Result<ProcStat>(stat_text.status());
  if (stat.ok()) {
    const double cpu =
        static_cast<double>(stat->utime_ticks + stat->stime_ticks) / ticks_per_second_;
    if (cpu > cpu_seconds_.Value()) cpu_seconds_.Increment(cpu - cpu_seconds_.Value());
    resident_bytes_.Set(static_cast<double>(stat->rss_pages) * page_bytes_);
    virtual_bytes_.Set(static_cast<double>(stat->vsize_bytes));
    if (start_time_.Value() == 0) {  // fixed for the process's life: read /proc/stat once
      Result<std::string> boot_text = ReadWhole("/proc/stat");
      Result<uint64_t> boot =
          boot_text.ok() ? ParseBootTime(*boot_text) : Result<uint64_t>(boot_text.status());
      if (boot.ok()) {
        start_time_.Set(static_cast<double>(*boot) +
                        static_cast<double>(stat->starttime_ticks) / ticks_per_second_);
      } else {
        failed = boot.status();
      }
    }
  } else {
    failed = stat.status();
  }
  if (Result<uint64_t> fds = CountOpenFds(); fds.ok()) {
    open_fds_.Set(static_cast<double>(*fds));
  } else {
    failed = fds.status();
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) max_fds_.Set(static_cast<double>(limit.rlim_cur));
  if (!failed.ok() && !failure_logged_) {
    spdlog::warn("process metrics: {}", failed.ToString());
    failure_logged_ = true;
  }
}

void ProcessMetrics::SetTlsCertificateExpiry(int64_t not_after_seconds) {
  tls_expiry_.Set(static_cast<double>(not_after_seconds));
}

}  // namespace loanledger::server
