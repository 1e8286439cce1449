// A server's client address, HOST:PORT, as the CLI's --server takes it and
// as a cluster node names its leader in a NOT_LEADER answer
// (docs/protocol.md). Header-only so that the CLI parses addresses without
// linking the network library.
//
// A thin wrapper over the one HOST:PORT parser of the server and the CLI
// (schema/host_port.h); a client needs a port in 1..65535.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schema/host_port.h"

namespace loanledger::client {

struct Endpoint {
  std::string host;   // name or IP address, without brackets
  uint16_t port = 0;  // 1..65535
  bool operator==(const Endpoint&) const = default;
};

// "HOST:PORT" or "[V6]:PORT"; nullopt when malformed (no port, port 0 or
// above 65535, an IPv6 address without brackets).
inline std::optional<Endpoint> ParseEndpoint(std::string_view text) {
  std::optional<HostPort> hp = ParseHostPort(text, /*allow_port_zero=*/false);
  if (!hp) return std::nullopt;
  return Endpoint{std::move(hp->host), hp->port};
}

// The inverse of ParseEndpoint: "host:port", "[v6]:port".
inline std::string FormatEndpoint(const Endpoint& e) { return FormatHostPort(e.host, e.port); }

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
