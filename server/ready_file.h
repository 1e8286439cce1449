// The addresses loanledgerd actually bound, one per listener, and the
// --ready-file that reports them (server/README.md, "Ready file"). With
// port 0 in a --*-listen flag the kernel picks a free port; scripts and
// tests read it from here instead of choosing a port before it is bound.
//
// Every listener (protocol, metrics, HTTP, ...) calls BoundAddresses::Add
// once it is bound; once all are, start-up calls WriteReadyFile.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "schema/status.h"

namespace loanledger::server {

// "127.0.0.1:7700"; an IPv6 address in brackets: "[::1]:7700".
std::string FormatHostPort(std::string_view host, uint16_t port);

class BoundAddresses {
 public:
  // Records a bound listener. name: the ready file's key, lowercase letters
  // and '_' ("listen", "metrics", "http"), not "pid", each at most once;
  // host_port: as FormatHostPort prints it.
  void Add(std::string name, std::string host_port);

  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }

  // The ready file's text: "pid=N\n", then "NAME=HOST:PORT\n" per listener
  // in the order added.
  std::string ReadyFileText(int64_t pid) const;

  // Writes ReadyFileText(getpid()) to `path` atomically: into a temporary
  // file in the same directory, then rename(2), so that a reader sees either
  // no file (or an earlier one) or the whole text.
  [[nodiscard]] Status WriteReadyFile(const std::string& path) const;

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

// Removes `path` if it exists (a ready file left by an earlier run must not
// be read as this run's). OK when it does not exist.
[[nodiscard]] Status RemoveReadyFile(const std::string& path);

}  // namespace loanledger::server
