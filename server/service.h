// How loanledgerd runs as a service (deploy/systemd/loanledgerd.service,
// docs/operations.md "Running under systemd"): sd_notify(3) readiness,
// reload and stop notifications, and where the log goes (journald with
// priorities, JSON lines or text on stderr).
#pragma once

#include <string>
#include <string_view>

#include "schema/status.h"

namespace loanledger::server {

// sd_notify(3) messages to the service manager. Each is a no-op when
// NOTIFY_SOCKET is unset (not started by systemd with Type=notify), and a
// failure to send is ignored: the service manager's own timeouts cover it.
void NotifyReady(std::string_view status);     // READY=1, once every listener is up
void NotifyReloading();                        // RELOADING=1 (SIGHUP), then NotifyReady again
void NotifyStopping(std::string_view status);  // STOPPING=1 at the first SIGTERM/SIGINT
void NotifyStatus(std::string_view status);    // STATUS=..., a one-line state for systemctl status

// --log-format: "auto" (journald when stderr is connected to the journal,
// i.e. JOURNAL_STREAM names it, else text), "journal", "json" (one JSON
// object per line on stderr: time, level, msg, logger, pid, thread), "text".
inline constexpr std::string_view kLogFormats[] = {"auto", "journal", "json", "text"};

// True when JOURNAL_STREAM ("DEVICE:INODE", set by systemd) is this
// process's stderr (sd_journal_stream_fd semantics: a child that inherited
// the variable but not the stream does not count).
bool StderrIsJournal();

// Installs the default logger "loanledgerd" for `format` and `level`
// (trace|debug|info|warn|error|off; anything else: info). Every line is
// flushed at once. kInvalidArgument for an unknown format.
[[nodiscard]] Status SetUpLogging(std::string_view format, std::string_view level);

}  // namespace loanledger::server
