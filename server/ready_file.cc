#include "server/ready_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "schema/check.h"

namespace loanledger::server {
namespace {

bool ValidName(const std::string& name) {
  if (name.empty() || name == "pid") return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
  }
  return true;
}

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

}  // namespace

std::string FormatHostPort(std::string_view host, uint16_t port) {
  const bool v6 = host.find(':') != std::string_view::npos;
  std::string out = v6 ? "[" + std::string(host) + "]" : std::string(host);
  return out + ":" + std::to_string(port);
}

void BoundAddresses::Add(std::string name, std::string host_port) {
  LL_CHECK_MSG(ValidName(name), name.c_str());
  for (const auto& [known, address] : entries_) LL_CHECK_MSG(known != name, name.c_str());
  LL_CHECK(host_port.find('\n') == std::string::npos);
  entries_.emplace_back(std::move(name), std::move(host_port));
}

std::string BoundAddresses::ReadyFileText(int64_t pid) const {
  std::string text = "pid=" + std::to_string(pid) + "\n";
  for (const auto& [name, address] : entries_) text += name + "=" + address + "\n";
  return text;
}

Status BoundAddresses::WriteReadyFile(const std::string& path) const {
  LL_CHECK(!path.empty());
  const std::string text = ReadyFileText(getpid());
  // Same directory as `path`: rename(2) is atomic only within a file system.
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return Status::IoError(Errno("cannot create", tmp));
  const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const int write_errno = errno;
  if (std::fclose(f) != 0 || !written) {
    if (!written) errno = write_errno;
    Status s = Status::IoError(Errno("cannot write", tmp));
    std::remove(tmp.c_str());
    return s;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = Status::IoError(Errno("cannot rename " + tmp + " to", path));
    std::remove(tmp.c_str());
    return s;
  }
  return Status::Ok();
}

Status RemoveReadyFile(const std::string& path) {
  if (std::remove(path.c_str()) != 0 && errno != ENOENT) {
    return Status::IoError(Errno("cannot remove", path));
  }
  return Status::Ok();
}

}  // namespace loanledger::server
