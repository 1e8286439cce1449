// The one place that includes Boost.Asio for the server (docs/toolchain.md).
#pragma once

// clang-format off
// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>:
// it must come first (include sorting would move it).
#include <utility>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
// clang-format on

namespace loanledger::server {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
}  // namespace loanledger::server
