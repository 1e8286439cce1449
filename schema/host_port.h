// HOST:PORT, the one parser of the server's listen addresses and the
// client's server addresses (issue 17). Header-only: the CLI parses
// addresses without linking the network library.
//
// The rule: "name:port", "1.2.3.4:port", and an IPv6 address in brackets,
// "[::1]:port" (RFC 3986's convention, as in URLs). An unbracketed IPv6
// address ("::1:7700") is refused: which colon starts the port would be a
// guess. The port is decimal, 1..65535, or 0 where the caller allows it (a
// listener binding any free port).
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace loanledger {

struct HostPort {
  std::string host;   // name or IP address, without brackets
  uint16_t port = 0;  // 0 only when the parser allowed it
  bool operator==(const HostPort&) const = default;
};

inline std::optional<HostPort> ParseHostPort(std::string_view text, bool allow_port_zero) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return std::nullopt;
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return std::nullopt;  // an IPv6 address needs brackets: [::1]:7700
  }
  if (host.find_first_of("[]") != std::string_view::npos) return std::nullopt;
  uint32_t port = 0;
  if (port_text.empty() || port_text.size() > 5 || port_text[0] < '0' || port_text[0] > '9')
    return std::nullopt;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535 ||
      (port == 0 && !allow_port_zero)) {
    return std::nullopt;
  }
  return HostPort{std::string(host), static_cast<uint16_t>(port)};
}

// The inverse: "host:port", "[v6]:port".
inline std::string FormatHostPort(std::string_view host, uint16_t port) {
  std::string out;
  if (host.find(':') != std::string_view::npos) {
    out = "[" + std::string(host) + "]";
  } else {
    out = std::string(host);
  }
  return out + ":" + std::to_string(port);
}

}  // namespace loanledger
