#include "server/http_api.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <nlohmann/json.hpp>

#include "schema/category.h"
#include "schema/date.h"
#include "schema/event.h"
#include "schema/limits.h"
#include "schema/query.h"
#include "schema/query_json.h"
#include "schema/rules.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "storage/ledger.h"

namespace loanledger::server {
namespace {

using Json = nlohmann::ordered_json;

struct Param {
  std::string name;
  std::string value;
};

// The query string as decoded name/value pairs, in order.
Result<std::vector<Param>> ParseQueryString(std::string_view query) {
  std::vector<Param> params;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    std::optional<std::string> name = PercentDecode(part.substr(0, eq), true);
    std::optional<std::string> value = PercentDecode(
        eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1), true);
    if (!name || !value) {
      return Status::InvalidArgument("bad percent-encoding in the query string");
    }
    params.push_back(Param{std::move(*name), std::move(*value)});
  }
  return params;
}

// Checks that every parameter is one of `allowed` and that those in `single`
// appear at most once.
Status CheckParams(const std::vector<Param>& params,
                   std::initializer_list<std::string_view> allowed,
                   std::initializer_list<std::string_view> single) {
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string& name = params[i].name;
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return Status::InvalidArgument("unknown parameter '" + name + "' (expected " + list + ")");
    }
    if (std::find(single.begin(), single.end(), name) != single.end()) {
      for (size_t j = 0; j < i; ++j) {
        if (params[j].name == name) {
          return Status::InvalidArgument("parameter '" + name + "' given more than once");
        }
      }
    }
  }
  return Status::Ok();
}

const std::string* Find(const std::vector<Param>& params, std::string_view name) {
  for (const Param& p : params) {
    if (p.name == name) return &p.value;
  }
  return nullptr;
}

Result<Day> DateParam(const std::vector<Param>& params, std::string_view name) {
  const std::string* text = Find(params, name);
  if (text == nullptr)
    return Status::InvalidArgument("parameter '" + std::string(name) + "' is required");
  const std::optional<Day> day = ParseDate(*text);
  if (!day || *day < kDayMin || *day > kDayMax) {
    return Status::InvalidArgument("bad " + std::string(name) + " \"" + *text +
                                   "\": expected YYYY-MM-DD within 1990-01-01..2199-12-31");
  }
  return *day;
}

// A category name as a rules file spells it (docs/categories.md); the
// ledger's current rules decide whether it exists (400 naming the version).
Result<std::string> CategoryValue(std::string_view name) {
  if (!IsRuleName(name)) {
    return Status::InvalidArgument("bad category \"" + std::string(name) +
                                   "\": a name of A-Z 0-9 _ such as GREEN");
  }
  return std::string(name);
}

Result<GroupBy> ByParam(const std::vector<Param>& params) {
  const std::string* text = Find(params, "by");
  if (text == nullptr || text->empty()) return GroupBy::kNone;
  if (*text == "none") return GroupBy::kNone;
  if (const std::optional<GroupBy> g = ParseGroupBy(*text)) return *g;
  return Status::InvalidArgument("bad by \"" + *text +
                                 "\": expected province, institution or region_group");
}

HttpReply JsonReply(std::string body) {
  HttpReply reply;
  reply.body = std::move(body);
  return reply;
}

// `reply`, or RESOURCE_EXHAUSTED when its body is over the limit.
HttpReply Limit(uint64_t reply_bytes_max, HttpReply reply) {
  if (reply_bytes_max > 0 && reply.body.size() > reply_bytes_max) {
    return HttpError(400, "RESOURCE_EXHAUSTED",
                     "the answer would exceed " + std::to_string(reply_bytes_max) +
                         " bytes; narrow the query (fewer categories, a larger step, no by)");
  }
  return reply;
}

// A query whose Result<T> comes from `sync` (a single node) or `then`
// (given a callback: a partitioned cluster, where the other partitions'
// answers complete it on a NATS thread, and no thread waits for them),
// rendered with `render`, or the error; bounded in size; `done` once.
template <typename T, typename Sync, typename Then, typename Render>
std::function<void(HttpDone)> Query(const HttpApiEnv& env, Sync sync, Then then, Render render) {
  return [fans_out = env.figures->fans_out(), max = env.reply_bytes_max, sync = std::move(sync),
          then = std::move(then), render = std::move(render)](HttpDone done) {
    auto once = std::make_shared<std::atomic<bool>>(false);
    std::function<void(Result<T>)> finish = [max, render, done, once](Result<T> r) {
      if (once->exchange(true)) return;
      HttpReply reply;
      try {
        reply = r.ok() ? render(std::move(*r)) : HttpError(r.status());
      } catch (const std::exception& e) {
        reply = HttpError(Status::Internal(e.what()));
      }
      done(Limit(max, std::move(reply)));
    };
    try {
      if (fans_out) {
        then(finish);
      } else {
        finish(sync());
      }
    } catch (const std::exception& e) {
      finish(Status::Internal(e.what()));
    }
  };
}

HttpPlan Answer(HttpReply reply) {
  HttpPlan plan;
  plan.reply = std::move(reply);
  return plan;
}

HttpPlan PlanReport(const HttpApiEnv& env, const std::vector<Param>& params,
                    std::optional<std::string> scope) {
  if (Status s = CheckParams(params, {"date", "by", "category"}, {"date", "by"}); !s.ok()) {
    return Answer(HttpError(s));
  }
  ReportQuery query;
  Result<Day> date = DateParam(params, "date");
  if (!date.ok()) return Answer(HttpError(date.status()));
  query.date = *date;
  Result<GroupBy> by = ByParam(params);
  if (!by.ok()) return Answer(HttpError(by.status()));
  query.by = *by;
  for (const Param& p : params) {
    if (p.name != "category") continue;
    // Repeated (category=A&category=B) or a comma-separated list.
    std::string_view list = p.value;
    while (true) {
      const size_t comma = list.find(',');
      const std::string_view name = list.substr(0, comma);
      Result<std::string> c = CategoryValue(name);
      if (!c.ok()) return Answer(HttpError(c.status()));
      if (std::find(query.category_names.begin(), query.category_names.end(), *c) ==
          query.category_names.end()) {
        query.category_names.push_back(*c);
      }
      if (comma == std::string_view::npos) break;
      list = list.substr(comma + 1);
    }
  }
  query.scope_institution = std::move(scope);
  HttpPlan plan;
  plan.kind = QueryKind::kReport;
  const Figures* figures = env.figures;
  plan.query = Query<Report>(
      env, [figures, query] { return figures->QueryReport(query); },
      [figures, query](std::function<void(Result<Report>)> done) {
        figures->QueryReportThen(query, std::move(done));
      },
      [query](Report r) {
        r.date = query.date;
        r.by = query.by;
        return JsonReply(ReportJson(r));
      });
  return plan;
}

HttpPlan PlanSeries(const HttpApiEnv& env, const std::vector<Param>& params,
                    std::optional<std::string> scope) {
  if (Status s = CheckParams(params, {"category", "from", "to", "step", "by"},
                             {"category", "from", "to", "step", "by"});
      !s.ok()) {
    return Answer(HttpError(s));
  }
  SeriesQuery query;
  const std::string* category = Find(params, "category");
  if (category == nullptr) {
    return Answer(HttpError(Status::InvalidArgument("parameter 'category' is required")));
  }
  Result<std::string> c = CategoryValue(*category);
  if (!c.ok()) return Answer(HttpError(c.status()));
  query.category_name = *c;
  Result<Day> from = DateParam(params, "from");
  if (!from.ok()) return Answer(HttpError(from.status()));
  Result<Day> to = DateParam(params, "to");
  if (!to.ok()) return Answer(HttpError(to.status()));
  if (*from > *to) {
    return Answer(HttpError(
        Status::InvalidArgument("from " + FormatDate(*from) + " is after to " + FormatDate(*to))));
  }
  query.from = *from;
  query.to = *to;
  if (const std::string* step = Find(params, "step")) {
    const std::optional<Step> s = ParseStep(*step);
    if (!s) {
      return Answer(HttpError(Status::InvalidArgument("bad step \"" + *step +
                                                      "\": expected day, month, quarter or year")));
    }
    query.step = *s;
  }
  Result<GroupBy> by = ByParam(params);
  if (!by.ok()) return Answer(HttpError(by.status()));
  query.by = *by;
  if (SeriesDates(query.from, query.to, query.step).size() > kSeriesPointsMax) {
    return Answer(HttpError(Status::InvalidArgument("too many points (more than " +
                                                    std::to_string(kSeriesPointsMax) +
                                                    "): use a larger step or a shorter range")));
  }
  query.scope_institution = std::move(scope);
  HttpPlan plan;
  plan.kind = QueryKind::kSeries;
  const Figures* figures = env.figures;
  plan.query = Query<Series>(
      env, [figures, query] { return figures->QuerySeries(query); },
      [figures, query](std::function<void(Result<Series>)> done) {
        figures->QuerySeriesThen(query, std::move(done));
      },
      [query](Series r) {
        // The shape names what was asked (docs/cli.md: category, step, group_by).
        r.category = query.category;
        r.step = query.step;
        r.by = query.by;
        return JsonReply(SeriesJson(r));
      });
  return plan;
}

HttpPlan PlanLoan(const HttpApiEnv& env, std::string_view rest, const std::vector<Param>& params,
                  const std::optional<std::string>& scope) {
  if (Status s = CheckParams(params, {}, {}); !s.ok()) return Answer(HttpError(s));
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos || rest.find('/', slash + 1) != std::string_view::npos) {
    return Answer(HttpError(404, "NOT_FOUND",
                            "expected /v1/loans/{institution_id}/{loan_id} (percent-encode a "
                            "'/' in the loan id as %2F)"));
  }
  std::optional<std::string> institution = PercentDecode(rest.substr(0, slash), false);
  std::optional<std::string> loan = PercentDecode(rest.substr(slash + 1), false);
  if (!institution || !loan) {
    return Answer(HttpError(Status::InvalidArgument("bad percent-encoding in the path")));
  }
  if (!IsValidInstitutionId(*institution)) {
    return Answer(HttpError(Status::InvalidArgument("bad institution_id \"" + *institution +
                                                    "\": 1-32 of A-Z 0-9 _ -")));
  }
  if (!IsValidLoanId(*loan)) {
    return Answer(HttpError(
        Status::InvalidArgument("bad loan_id: 1-64 printable ASCII characters without comma")));
  }
  if (scope && *institution != *scope) {
    return Answer(
        HttpError(Status::PermissionDenied("an institution may read only its own loans")));
  }
  HttpPlan plan;
  plan.kind = QueryKind::kLoan;
  const Figures* figures = env.figures;
  plan.query = Query<LoanView>(
      env,
      [figures, institution = *institution, loan = *loan] {
        return figures->QueryLoan(institution, loan);
      },
      [figures, institution = *institution,
       loan = *loan](std::function<void(Result<LoanView>)> done) {
        figures->QueryLoanThen(institution, loan, std::move(done));
      },
      [](LoanView r) { return JsonReply(LoanJson(r)); });
  return plan;
}

HttpReply Unauthenticated(std::string_view message) {
  HttpReply reply = HttpError(401, "UNAUTHENTICATED", message);
  reply.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"loanledger\"");
  return reply;
}

}  // namespace

std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hex(text[i + 1]);
      const int lo = hex(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

unsigned HttpStatusFor(Status::Code code) {
  switch (code) {
    case Status::Code::kOk:
      return 200;
    case Status::Code::kInvalidArgument:
      return 400;
    case Status::Code::kUnauthenticated:
      return 401;
    case Status::Code::kPermissionDenied:
      return 403;
    case Status::Code::kNotFound:
      return 404;
    default:
      return 503;  // unavailable, a bound, storage trouble, a bug: nothing the caller can fix
  }
}

HttpReply HttpError(unsigned http_status, std::string_view code, std::string_view message) {
  Json j;
  j["error"] = code;
  j["message"] = message;
  HttpReply reply;
  reply.status = http_status;
  // Invalid UTF-8 (a byte echoed from a bad parameter) is replaced, not thrown.
  reply.body = j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  return reply;
}

HttpReply HttpError(const Status& status) {
  return HttpError(HttpStatusFor(status.code()), StatusCodeName(status.code()), status.message());
}

HttpPlan PlanHttpRequest(const HttpApiEnv& env, const HttpRequest& request, bool stopping) {
  const std::string_view target = request.target;
  const size_t question = target.find('?');
  const std::string_view path = target.substr(0, question);
  const std::string_view query_string =
      question == std::string_view::npos ? std::string_view() : target.substr(question + 1);

  if (request.method != "GET") {
    HttpReply reply =
        HttpError(400, "INVALID_ARGUMENT",
                  "method " + request.method + " not allowed: the API is read-only (GET)");
    reply.headers.emplace_back("Allow", "GET");
    return Answer(std::move(reply));
  }
  Result<std::vector<Param>> params = ParseQueryString(query_string);
  if (!params.ok()) return Answer(HttpError(params.status()));

  // Public: the console, the API's description, health.
  if (path == "/" || path == "/index.html") {
    HttpReply reply;
    reply.content_type = "text/html; charset=utf-8";
    reply.body = std::string(ConsoleHtml());
    // Everything the page needs is in it; it may talk to this server only.
    reply.headers.emplace_back("Content-Security-Policy",
                               "default-src 'none'; script-src 'unsafe-inline'; style-src "
                               "'unsafe-inline'; img-src data:; connect-src 'self'; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    reply.headers.emplace_back("X-Content-Type-Options", "nosniff");
    return Answer(std::move(reply));
  }
  if (path == "/openapi.json") return Answer(JsonReply(OpenApiJson(env.server_version)));
  if (path == "/v1/health") {
    if (stopping) return Answer(HttpError(503, "UNAVAILABLE", "shutting down"));
    Json j;
    j["status"] = "ok";
    j["version"] = env.server_version;
    return Answer(JsonReply(j.dump() + "\n"));
  }

  const bool report = path == "/v1/report";
  const bool series = path == "/v1/series";
  constexpr std::string_view kLoans = "/v1/loans/";
  const bool loan = path.substr(0, kLoans.size()) == kLoans;
  if (!report && !series && !loan) {
    return Answer(HttpError(404, "NOT_FOUND",
                            "no such endpoint: " + std::string(path) + " (see /openapi.json)"));
  }
  if (stopping) return Answer(HttpError(503, "UNAVAILABLE", "the server is shutting down"));

  // Bearer token (the roles of docs/protocol.md).
  constexpr std::string_view kBearer = "bearer ";
  const std::string_view auth = request.authorization;
  if (auth.empty()) {
    return Answer(Unauthenticated("an Authorization: Bearer TOKEN header is required"));
  }
  std::string scheme(auth.substr(0, std::min(auth.size(), kBearer.size())));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != kBearer) {
    return Answer(Unauthenticated("the Authorization header must be 'Bearer TOKEN'"));
  }
  std::string_view token = auth.substr(kBearer.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  const Principal* principal = env.tokens->Authenticate(token);
  if (principal == nullptr) {
    HttpPlan plan = Answer(Unauthenticated("unknown token"));
    plan.auth_failed = true;
    return plan;
  }
  if (principal->role != wire::Role::INSTITUTION && principal->role != wire::Role::REGULATOR) {
    return Answer(HttpError(Status::PermissionDenied(
        "role " + std::string(RoleName(principal->role)) + " may not read figures")));
  }
  std::optional<std::string> scope;
  if (principal->role == wire::Role::INSTITUTION) scope = principal->institution_id;

  if (report) return PlanReport(env, *params, std::move(scope));
  if (series) return PlanSeries(env, *params, std::move(scope));
  return PlanLoan(env, path.substr(kLoans.size()), *params, scope);
}

}  // namespace loanledger::server

namespace loanledger::server {

extern const char kConsoleHtml[];
extern const unsigned long kConsoleHtml_size;
extern const char kOpenApiJson[];
extern const unsigned long kOpenApiJson_size;

std::string_view ConsoleHtml() { return std::string_view(kConsoleHtml, kConsoleHtml_size); }

std::string OpenApiJson(std::string_view version) {
  // The document's info.version is the server's.
  static const std::string text(kOpenApiJson, kOpenApiJson_size);
  std::string out = text;
  constexpr std::string_view kPlaceholder = "@LOANLEDGER_VERSION@";
  if (const size_t at = out.find(kPlaceholder); at != std::string::npos) {
    out.replace(at, kPlaceholder.size(), version);
  }
  return out;
}

}  // namespace loanledger::server
