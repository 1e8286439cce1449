// A bank's program built against the installed client library: it constructs
// the client's types and calls into the library (schema/ and client/) without
// connecting anywhere. Exit 0 when every answer is the expected one.
#include <cstdio>
#include <vector>

#include "client/client.h"
#include "schema/date.h"

namespace ll = loanledger;

int main() {
  int failures = 0;
  auto expect = [&failures](bool ok, const char* what) {
    std::printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) ++failures;
  };

  const std::optional<ll::Day> day = ll::ParseDate("2024-02-29");
  expect(day.has_value() && ll::FormatDate(*day) == "2024-02-29",
         "ParseDate/FormatDate round trip");
  expect(!ll::ParseDate("2023-02-29").has_value(), "ParseDate refuses 2023-02-29");

  ll::LoanEvent event;
  event.institution_id = "B0001";
  event.loan_id = "L-1";
  event.seq = 1;
  event.business_date = day.value_or(0);
  event.amount_fen = 100'000'00;  // 100,000.00 yuan in fen
  const std::vector<ll::LoanEvent> batch{event};
  expect(batch.front() == event, "LoanEvent copies compare equal");

  // A malformed server entry fails Connect before any socket is opened.
  ll::client::ClientOptions options;
  options.servers = {"not-a-host-port"};
  options.connect_timeout_ms = 1000;
  auto client = ll::client::Client::Connect(options);
  expect(!client.ok() && client.status().code() == ll::Status::Code::kInvalidArgument,
         "Connect with a malformed server is kInvalidArgument");
  if (!client.ok()) std::printf("  (%s)\n", client.status().ToString().c_str());

  std::printf("%s\n", failures == 0 ? "consumer: OK" : "consumer: FAILED");
  return failures == 0 ? 0 : 1;
}
