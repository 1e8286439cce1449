// The HTTP API's requests and answers (docs/http.md) without the network:
// routing, query parameters, bearer tokens and roles, JSON bodies and error
// bodies. http_server.cc feeds it requests and runs what it plans.
//
// Endpoints (server/README.md, and GET /openapi.json):
//   GET /v1/report?date=D[&by=province|institution|region_group][&category=C...]
//   GET /v1/series?category=C&from=D1&to=D2[&step=day|month|quarter|year][&by=...]
//   GET /v1/loans/{institution_id}/{loan_id}
//   GET /v1/health        (no token)
//   GET /openapi.json     (no token)
//   GET /                 the regulator console (no token; the page asks for one)
// Bodies of report, series and loan are exactly the CLI's `--format json`
// (schema/query_json.h). Errors: {"error":"CODE","message":"..."} with 400
// (bad request), 401 (no or unknown token), 403 (role), 404 (no such loan or
// path) or 503 (shutting down, a bound, storage trouble).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "schema/status.h"

namespace loanledger::storage {
class Ledger;
}

namespace loanledger::server {

class Figures;
class TokenTable;
enum class QueryKind : uint8_t;  // server/metrics.h

struct HttpRequest {
  std::string method;         // "GET"
  std::string target;         // "/v1/report?date=2024-09-30"
  std::string authorization;  // the Authorization header's value, "" when absent
};

struct HttpReply {
  unsigned status = 200;
  std::string content_type = "application/json; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// What to do with one request: answer now, or start `query` on the query
// pool. `query` calls its argument once with the reply: before it returns,
// or later on another thread when a partitioned cluster's other partitions
// answer (server/figures.h, the ...Then queries).
using HttpDone = std::function<void(HttpReply)>;
struct HttpPlan {
  std::optional<HttpReply> reply;
  std::function<void(HttpDone)> query;
  std::optional<QueryKind> kind;  // for loanledger_query_seconds
  bool auth_failed = false;       // a token was given and is unknown: slow the answer down
};

struct HttpApiEnv {
  const TokenTable* tokens = nullptr;
  const Figures* figures = nullptr;  // the ledger's, or every partition's (server/figures.h)
  std::string server_version;
  bool tls = false;
  uint64_t reply_bytes_max = 0;  // larger answers become a 400 "narrow the query"
};

HttpPlan PlanHttpRequest(const HttpApiEnv& env, const HttpRequest& request, bool stopping);

// {"error":"CODE","message":"..."} with the HTTP status of code.
HttpReply HttpError(const Status& status);
HttpReply HttpError(unsigned http_status, std::string_view code, std::string_view message);
unsigned HttpStatusFor(Status::Code code);

// Percent-decoding of a path segment or query component ('+' is a space in
// a query component only). nullopt on a bad escape.
std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space);

// The embedded assets (generated from server/console/index.html and
// server/openapi.json at build time).
std::string_view ConsoleHtml();
std::string OpenApiJson(std::string_view version);

}  // namespace loanledger::server
