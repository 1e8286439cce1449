#include "server/service.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

namespace loanledger::server {
namespace {

void Notify(const std::string& message) {
  // unset_environment = 0: a later notification (STOPPING=1) still finds the socket.
  (void)sd_notify(0, message.c_str());
}

std::string OneLine(std::string_view text) {
  std::string line(text);
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return line;
}

// One JSON object per line on stderr: {"time":"2026-12-06T11:40:00.123Z",
// "level":"info","msg":"...","logger":"loanledgerd","pid":N,"thread":N}.
// Serialised with nlohmann::json (escapes quotes and control characters;
// invalid UTF-8 becomes U+FFFD, so every line parses).
class JsonLinesSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const auto since_epoch = msg.time.time_since_epoch();
    const std::time_t seconds =
        std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char time_text[40];
    const size_t n = std::strftime(time_text, sizeof time_text, "%Y-%m-%dT%H:%M:%S", &utc);
    std::snprintf(time_text + n, sizeof time_text - n, ".%03dZ", static_cast<int>(millis));
    nlohmann::ordered_json line;
    line["time"] = time_text;
    line["level"] = std::string(spdlog::level::to_string_view(msg.level).data(),
                                spdlog::level::to_string_view(msg.level).size());
    line["msg"] = std::string(msg.payload.data(), msg.payload.size());
    line["logger"] = std::string(msg.logger_name.data(), msg.logger_name.size());
    line["pid"] = static_cast<int64_t>(pid_);
    line["thread"] = static_cast<uint64_t>(msg.thread_id);
    std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    text.push_back('\n');
    std::fwrite(text.data(), 1, text.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }

 private:
  const pid_t pid_ = getpid();
};

}  // namespace

void NotifyReady(std::string_view status) {
  Notify("READY=1\nSTATUS=" + OneLine(status) + "\nMAINPID=" + std::to_string(getpid()));
}

void NotifyReloading() {
  // MONOTONIC_USEC: what systemd 253+ expects with RELOADING=1 (ignored by 252).
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const uint64_t usec = uint64_t(now.tv_sec) * 1'000'000 + uint64_t(now.tv_nsec) / 1000;
  Notify("RELOADING=1\nSTATUS=reloading the tokens file\nMONOTONIC_USEC=" + std::to_string(usec));
}

void NotifyStopping(std::string_view status) { Notify("STOPPING=1\nSTATUS=" + OneLine(status)); }

void NotifyStatus(std::string_view status) { Notify("STATUS=" + OneLine(status)); }

bool StderrIsJournal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  unsigned long long device = 0, inode = 0;
  if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) return false;
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == device &&
         static_cast<unsigned long long>(st.st_ino) == inode;
}

Status SetUpLogging(std::string_view format, std::string_view level_name) {
  std::string chosen(format);
  if (chosen == "auto") chosen = StderrIsJournal() ? "journal" : "text";
  std::shared_ptr<spdlog::logger> logger;
  if (chosen == "journal") {
    // Priorities from the levels (warn -> LOG_WARNING, ...); the journal adds
    // its own timestamp, so the message alone. SYSLOG_IDENTIFIER=loanledgerd.
    logger = std::make_shared<spdlog::logger>(
        "loanledgerd", std::make_shared<spdlog::sinks::systemd_sink_mt>("loanledgerd"));
  } else if (chosen == "json") {
    logger = std::make_shared<spdlog::logger>("loanledgerd", std::make_shared<JsonLinesSink>());
  } else if (chosen == "text") {
    // One line each on stderr (docs/operations.md), flushed at once so that a
    // supervisor (or a test) reading the pipe sees them immediately.
    logger = std::make_shared<spdlog::logger>("loanledgerd",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  } else {
    return Status::InvalidArgument("--log-format must be auto, journal, json or text, got '" +
                                   std::string(format) + "'");
  }
  logger->flush_on(spdlog::level::trace);
  const std::string name(level_name);
  const auto level = spdlog::level::from_str(name);
  logger->set_level(level == spdlog::level::off && name != "off" ? spdlog::level::info : level);
  spdlog::set_default_logger(logger);
  return Status::Ok();
}

}  // namespace loanledger::server
