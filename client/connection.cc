#include "client/connection.h"

// clang-format off
// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>:
// it must come first (include sorting would move it).
#include <utility>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
// clang-format on

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "schema/check.h"

namespace loanledger::client::detail {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

bool IsIpAddress(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

struct TlsContext::Impl {
  asio::ssl::context ctx{asio::ssl::context::tls_client};
  bool verify = false;        // verify chain and host name (not tls_insecure)
  bool system_store = false;  // verifying against the system CA store (no tls_ca_file)
};

TlsContext::TlsContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsContext::~TlsContext() = default;

Result<std::unique_ptr<TlsContext>> TlsContext::Make(const ClientOptions& options) {
  auto impl = std::make_unique<Impl>();
  error_code ec;
  impl->ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                            asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                            asio::ssl::context::no_tlsv1_1,
                        ec);
  if (options.tls_insecure) {
    impl->ctx.set_verify_mode(asio::ssl::verify_none, ec);
  } else {
    if (!options.tls_ca_file.empty()) {
      impl->ctx.load_verify_file(options.tls_ca_file, ec);
      if (ec) {
        return Status::InvalidArgument("cannot load CA file " + options.tls_ca_file + ": " +
                                       ec.message());
      }
    } else {
      impl->ctx.set_default_verify_paths(ec);  // /etc/ssl/certs (Debian: ca-certificates)
      if (ec) return Status::InvalidArgument("cannot load the system CA store: " + ec.message());
      impl->system_store = true;
    }
    impl->ctx.set_verify_mode(asio::ssl::verify_peer, ec);
    impl->verify = true;
  }
  return std::unique_ptr<TlsContext>(new TlsContext(std::move(impl)));
}

struct Connection::Impl {
  Impl(const Endpoint& at, TlsContext* tls)
      : where(FormatEndpoint(at)), socket(ioc), reader(wire::kReplyLimits) {
    if (tls != nullptr) {
      stream.emplace(socket, tls->impl().ctx);
      verify = tls->impl().verify;
      system_store = tls->impl().system_store;
    }
  }

  // Runs handlers until done() or the deadline; false when the deadline
  // passed or nothing is left that could make done() true.
  bool RunUntil(const std::function<bool()>& done, Clock::time_point deadline) {
    while (!done()) {
      if (ioc.stopped()) ioc.restart();
      if (ioc.run_one_until(deadline) == 0) {
        if (done()) return true;
        if (Clock::now() >= deadline || ioc.stopped()) return false;
      }
    }
    return true;
  }

  void Fail(Status status) {
    LL_CHECK(!status.ok());
    if (error.ok()) error = std::move(status);
    error_code ec;
    socket.close(ec);
  }

  template <typename Buffer, typename Handler>
  void Read(const Buffer& buffer, Handler&& handler) {
    if (stream) {
      asio::async_read(*stream, buffer, std::forward<Handler>(handler));
    } else {
      asio::async_read(socket, buffer, std::forward<Handler>(handler));
    }
  }

  void StartRead() {
    Read(asio::buffer(reader.header(), wire::kFrameHeaderBytes), [this](error_code ec, size_t) {
      if (ec) return Fail(Lost(ec));
      if (Status s = reader.OnHeader(); !s.ok()) {
        return Fail(Status::Unavailable("bad frame from the server: " + s.message()));
      }
      Read(asio::buffer(reader.body(), reader.body_size()), [this](error_code ec2, size_t) {
        if (ec2) return Fail(Lost(ec2));
        Result<wire::OwnedMessage> message = reader.TakeMessage();
        if (!message.ok()) {
          return Fail(
              Status::Unavailable("bad frame from the server: " + message.status().message()));
        }
        incoming.push_back(std::move(*message));
        StartRead();
      });
    });
  }

  void WriteNext() {
    if (writing || outgoing.empty() || !error.ok()) return;
    writing = true;
    std::shared_ptr<const wire::Frame> frame = outgoing.front();
    auto done = [this, frame](error_code ec, size_t) {
      writing = false;
      if (ec) return Fail(Lost(ec));
      outgoing.pop_front();
      WriteNext();
    };
    const auto buffer = asio::buffer(frame->data(), frame->size());
    if (stream) {
      asio::async_write(*stream, buffer, done);
    } else {
      asio::async_write(socket, buffer, done);
    }
  }

  Status Lost(const error_code& ec) const {
    if (ec == asio::error::eof) return Status::Unavailable("the server closed the connection");
    return Status::Unavailable("connection to " + where + " lost: " + ec.message());
  }

  const std::string where;  // the server's HOST:PORT, for messages
  asio::io_context ioc{1};  // first: destroyed last, after everything its handlers touch
  tcp::socket socket;
  std::optional<asio::ssl::stream<tcp::socket&>> stream;  // set with TLS
  bool verify = false;
  bool system_store = false;  // verifying against the system CA store (for the error text)
  wire::FrameReader reader;   // replies, with kReplyLimits
  std::deque<wire::OwnedMessage> incoming;                  // received, not yet taken
  std::deque<std::shared_ptr<const wire::Frame>> outgoing;  // front is being written
  bool writing = false;
  Status error;  // first failure; ok while the connection works
};

Connection::Connection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Connection::~Connection() = default;

Result<std::unique_ptr<Connection>> Connection::Open(const ClientOptions& options,
                                                     const Endpoint& at, TlsContext* tls) {
  auto impl = std::make_unique<Impl>(at, tls);
  const std::string& where = impl->where;
  const Clock::time_point deadline =
      Clock::now() + std::chrono::milliseconds(options.connect_timeout_ms);

  tcp::resolver resolver(impl->ioc);
  bool resolved = false;
  error_code resolve_ec;
  tcp::resolver::results_type endpoints;
  resolver.async_resolve(at.host, std::to_string(at.port),
                         [&](const error_code& ec, tcp::resolver::results_type results) {
                           resolve_ec = ec;
                           endpoints = std::move(results);
                           resolved = true;
                         });
  if (!impl->RunUntil([&] { return resolved; }, deadline)) {
    return Status::Unavailable("timed out resolving " + at.host);
  }
  if (resolve_ec)
    return Status::Unavailable("cannot resolve " + at.host + ": " + resolve_ec.message());

  bool connected = false;
  error_code connect_ec;
  asio::async_connect(impl->socket, endpoints, [&](const error_code& ec, const tcp::endpoint&) {
    connect_ec = ec;
    connected = true;
  });
  if (!impl->RunUntil([&] { return connected; }, deadline)) {
    return Status::Unavailable("timed out connecting to " + where);
  }
  if (connect_ec)
    return Status::Unavailable("cannot connect to " + where + ": " + connect_ec.message());
  error_code ec;
  impl->socket.set_option(tcp::no_delay(true), ec);

  if (impl->stream) {
    if (impl->verify) {
      // OpenSSL's own name check (RFC 6125; an IP address against the
      // certificate's IP SANs), so that a mismatch has its own verify
      // result ("hostname mismatch", "IP address mismatch") for the error.
      X509_VERIFY_PARAM* param = SSL_get0_param(impl->stream->native_handle());
      if (IsIpAddress(at.host)) {
        X509_VERIFY_PARAM_set1_ip_asc(param, at.host.c_str());
      } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        X509_VERIFY_PARAM_set1_host(param, at.host.c_str(), at.host.size());
      }
    }
    if (!IsIpAddress(at.host)) {
      SSL_set_tlsext_host_name(impl->stream->native_handle(), at.host.c_str());
    }
    bool shaken = false;
    error_code handshake_ec;
    impl->stream->async_handshake(asio::ssl::stream_base::client, [&](const error_code& e) {
      handshake_ec = e;
      shaken = true;
    });
    if (!impl->RunUntil([&] { return shaken; }, deadline)) {
      return Status::Unavailable("timed out in the TLS handshake with " + where);
    }
    if (handshake_ec) {
      const long verified = SSL_get_verify_result(impl->stream->native_handle());
      if (impl->verify && (verified == X509_V_ERR_HOSTNAME_MISMATCH ||
                           verified == X509_V_ERR_IP_ADDRESS_MISMATCH)) {
        return Status::Unavailable("TLS handshake with " + where +
                                   " failed: server certificate does not name " + at.host + " (" +
                                   X509_verify_cert_error_string(verified) + ")");
      }
      if (impl->verify && verified != X509_V_OK) {
        // Say which check failed and what to do: "certificate verify failed"
        // alone does not tell an operator that a CA is missing.
        return Status::Unavailable(
            "TLS handshake with " + where +
            " failed: server certificate not trusted: " + X509_verify_cert_error_string(verified) +
            (impl->system_store
                 ? " (verified against the system CA store; give the CA that signed the "
                   "server's certificate with --tls-ca / tls_ca_file)"
                 : ""));
      }
      return Status::Unavailable("TLS handshake with " + where +
                                 " failed: " + handshake_ec.message());
    }
  }
  impl->StartRead();
  return std::unique_ptr<Connection>(new Connection(std::move(impl)));
}

void Connection::Send(std::shared_ptr<const wire::Frame> frame) {
  LL_CHECK(frame != nullptr && frame->size() > wire::kFrameHeaderBytes);
  impl_->outgoing.push_back(std::move(frame));
  impl_->WriteNext();
}

Result<wire::OwnedMessage> Connection::Receive(Clock::time_point deadline) {
  Impl& c = *impl_;
  const bool ready = c.RunUntil([&] { return !c.incoming.empty() || !c.error.ok(); }, deadline);
  // Frames that arrived before a failure are delivered first (an error
  // frame is typically followed by the server's close).
  if (!c.incoming.empty()) {
    wire::OwnedMessage message = std::move(c.incoming.front());
    c.incoming.pop_front();
    return message;
  }
  if (!ready && c.error.ok()) c.Fail(Status::Unavailable("no reply from the server in time"));
  LL_CHECK(!c.error.ok());
  return c.error;
}

}  // namespace loanledger::client::detail
