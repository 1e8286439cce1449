// A server's client address, HOST:PORT, as the CLI's --server takes it and
// as a cluster node names its leader in a NOT_LEADER answer
// (docs/protocol.md). Header-only so that the CLI parses addresses without
// linking the network library.
//
// This is the CLI's parser, moved here so that the library parses leader
// names the same way. Issue 17 makes one HOST:PORT parser for the server
// and the CLI: when it lands, this should become a thin wrapper over it
// (today the server also accepts an unbracketed "::1:7700", this refuses it).
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loanledger::client {

struct Endpoint {
  std::string host;   // name or IP address, without brackets
  uint16_t port = 0;  // 1..65535
  bool operator==(const Endpoint&) const = default;
};

// "HOST:PORT" or "[V6]:PORT"; nullopt when malformed (no port, port 0 or
// above 65535, an IPv6 address without brackets).
inline std::optional<Endpoint> ParseEndpoint(std::string_view text) {
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
  uint32_t port = 0;
  if (port_text.empty() || port_text[0] < '0' || port_text[0] > '9') return std::nullopt;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port < 1 || port > 65535)
    return std::nullopt;
  return Endpoint{std::string(host), static_cast<uint16_t>(port)};
}

// The inverse of ParseEndpoint: "host:port", "[v6]:port".
inline std::string FormatEndpoint(const Endpoint& e) {
  const std::string port = std::to_string(e.port);
  if (e.host.find(':') != std::string::npos) return "[" + e.host + "]:" + port;
  return e.host + ":" + port;
}

// A comma-separated list "a:1,b:2,c:3" (spaces around entries ignored);
// nullopt when it is empty or any entry is malformed.
inline std::optional<std::vector<Endpoint>> ParseEndpointList(std::string_view text) {
  std::vector<Endpoint> out;
  while (true) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    std::optional<Endpoint> e = ParseEndpoint(item);
    if (!e) return std::nullopt;
    out.push_back(std::move(*e));
    if (comma == std::string_view::npos) return out;
    text.remove_prefix(comma + 1);
  }
}

}  // namespace loanledger::client
