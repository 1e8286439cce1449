#include "server/figures.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "schema/check.h"
#include "schema/limits.h"
#include "schema/rules.h"
#include "schema/wire.h"

namespace loanledger::server {
namespace {

// How long a node waits for another partition's answer.
constexpr uint32_t kAskTimeoutMs = 5000;

// --- the nodes' question and answer (over NATS request/reply) ---------------
// Question: kind ('R' report, 'S' series, 'L' loan), u16 length and bytes of
// the caller's institution scope (0 = none), then the request as a wire
// frame (docs/protocol.md). Answer: 'K', the answering node's stream
// position (u64, little endian), then the reply as a wire frame; or 'E', a
// status code byte and the message.

void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t GetU64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<uint8_t>(in[i])} << (8 * i);
  return v;
}

std::string Question(char kind, const std::optional<std::string>& scope, const wire::Frame& f) {
  const std::string s = scope.value_or("");
  LL_CHECK(s.size() <= 0xffff);
  std::string out;
  out.reserve(3 + s.size() + f.size());
  out.push_back(kind);
  out.push_back(static_cast<char>(s.size() & 0xff));
  out.push_back(static_cast<char>(s.size() >> 8));
  out += s;
  out.append(reinterpret_cast<const char*>(f.data()), f.size());
  return out;
}

std::string ErrorAnswer(const Status& s) {
  std::string out = "E";
  out.push_back(static_cast<char>(static_cast<int>(s.code())));
  out += s.message();
  return out;
}

std::string Answer(uint64_t position, const wire::Frame& f, size_t max_bytes) {
  if (1 + 8 + f.size() > max_bytes) {
    return ErrorAnswer(Status::ResourceExhausted(
        "a partition's answer is " + std::to_string(f.size()) +
        " bytes, over the NATS servers' max_payload of " + std::to_string(max_bytes) +
        "; narrow the query or raise max_payload (docs/cluster.md)"));
  }
  std::string out = "K";
  PutU64(out, position);
  out.append(reinterpret_cast<const char*>(f.data()), f.size());
  return out;
}

// A verified wire message inside `bytes`.
Result<const wire::Message*> Frame(std::string_view bytes, const wire::FrameLimits& limits,
                                   std::vector<uint8_t>& storage) {
  return wire::VerifyFrame(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
      limits, storage);
}

// The answer's reply message (and the answering node's stream position), or
// its error.
Result<const wire::Message*> ParseAnswer(uint32_t partition, std::string_view answer,
                                         std::vector<uint8_t>& storage, uint64_t* position) {
  if (answer.size() >= 2 && answer[0] == 'E') {
    return Status(static_cast<Status::Code>(static_cast<uint8_t>(answer[1])),
                  "partition " + std::to_string(partition) + ": " + std::string(answer.substr(2)));
  }
  if (answer.size() < 9 || answer[0] != 'K') {
    return Status::Internal("partition " + std::to_string(partition) + " answered garbage");
  }
  *position = GetU64(answer.substr(1, 8));
  Result<const wire::Message*> m = Frame(answer.substr(9), wire::kReplyLimits, storage);
  if (!m.ok()) {
    return Status::Internal("partition " + std::to_string(partition) +
                            "'s answer does not decode: " + m.status().message());
  }
  if ((*m)->body_type() == wire::Body::Error) {
    return wire::StatusFromError(*(*m)->body_as_Error());
  }
  return m;
}

// Answers one question from this node's ledger.
std::string AnswerFromLedger(const storage::Ledger& ledger, std::string_view question,
                             size_t max_bytes) {
  if (question.size() < 3) return ErrorAnswer(Status::InvalidArgument("short question"));
  const char kind = question[0];
  const size_t scope_len = static_cast<uint8_t>(question[1]) |
                           (static_cast<size_t>(static_cast<uint8_t>(question[2])) << 8);
  if (question.size() < 3 + scope_len)
    return ErrorAnswer(Status::InvalidArgument("short question"));
  std::optional<std::string> scope;
  if (scope_len > 0) scope = std::string(question.substr(3, scope_len));
  std::vector<uint8_t> storage;
  Result<const wire::Message*> m =
      Frame(question.substr(3 + scope_len), wire::kRequestLimits, storage);
  if (!m.ok()) return ErrorAnswer(m.status());
  const uint64_t position = ledger.LogPosition();  // before the query: the answer is at least this
  const wire::Message& msg = **m;
  if (kind == 'R' && msg.body_type() == wire::Body::ReportRequest) {
    Result<ReportQuery> q = wire::DecodeReportRequest(*msg.body_as_ReportRequest());
    if (!q.ok()) return ErrorAnswer(q.status());
    q->scope_institution = scope;
    Result<Report> r = ledger.QueryReport(*q);
    if (!r.ok()) return ErrorAnswer(r.status());
    return Answer(position, wire::EncodeReportReply(0, *r), max_bytes);
  }
  if (kind == 'S' && msg.body_type() == wire::Body::SeriesRequest) {
    Result<SeriesQuery> q = wire::DecodeSeriesRequest(*msg.body_as_SeriesRequest());
    if (!q.ok()) return ErrorAnswer(q.status());
    q->scope_institution = scope;
    Result<Series> r = ledger.QuerySeries(*q);
    if (!r.ok()) return ErrorAnswer(r.status());
    return Answer(position, wire::EncodeSeriesReply(0, *r), max_bytes);
  }
  if (kind == 'L' && msg.body_type() == wire::Body::LoanRequest) {
    const wire::LoanRequest& req = *msg.body_as_LoanRequest();
    Result<LoanView> r =
        ledger.QueryLoan(wire::View(req.institution_id()), wire::View(req.loan_id()));
    if (!r.ok()) return ErrorAnswer(r.status());
    return Answer(position, wire::EncodeLoanReply(0, *r), max_bytes);
  }
  return ErrorAnswer(Status::InvalidArgument("unknown question"));
}

// The partitions a query needs: an institution's own, or every one.
std::vector<uint32_t> Targets(const cluster::Node& node, const std::optional<std::string>& scope) {
  if (scope) return {node.PartitionOf(*scope)};
  std::vector<uint32_t> all(node.partitions());
  for (uint32_t p = 0; p < node.partitions(); ++p) all[p] = p;
  return all;
}

// The partitions' parts in the targets' order: this node's own (`mine`, when
// its partition is a target) and the others' answers (`answers`, in the
// targets' order without this node's partition), decoded with `decode`;
// `positions` gets each answering partition's stream position. Fails with
// the first error in the targets' order.
template <typename T, typename Decode>
Result<std::vector<T>> Gather(uint32_t own, const std::vector<uint32_t>& targets,
                              std::optional<Result<T>>& mine,
                              std::vector<Result<std::string>>& answers, const Decode& decode,
                              std::vector<uint64_t>* positions) {
  std::vector<T> parts;
  size_t next_remote = 0;
  for (const uint32_t p : targets) {
    if (p == own) {
      LL_CHECK(mine.has_value());
      if (!mine->ok()) return mine->status();
      parts.push_back(std::move(**mine));
      continue;
    }
    LL_CHECK(next_remote < answers.size());
    Result<std::string>& answer = answers[next_remote++];
    if (!answer.ok()) return answer.status();
    std::vector<uint8_t> storage;
    Result<const wire::Message*> m = ParseAnswer(p, *answer, storage, &(*positions)[p]);
    if (!m.ok()) return m.status();
    Result<T> decoded = decode(**m);
    if (!decoded.ok()) return decoded.status();
    parts.push_back(std::move(*decoded));
  }
  LL_CHECK(next_remote == answers.size());
  return parts;
}

std::vector<uint32_t> Remote(const cluster::Node& node, const std::vector<uint32_t>& targets) {
  std::vector<uint32_t> remote;
  for (const uint32_t p : targets)
    if (p != node.partition()) remote.push_back(p);
  return remote;
}

// Asks every target partition at once (this node's own from `local`, while
// the others' questions travel) and gathers the parts (Gather) without a
// waiting thread: `done` gets the parts and each partition's stream position
// (at least what the answer reflects) once, on the thread that completes
// them — the caller's, right after `local`, when the other partitions
// answered first, else a NATS thread. `done` must not throw.
template <typename T>
using PartsDone = std::function<void(Result<std::vector<T>>, std::vector<uint64_t>)>;
template <typename T, typename Local, typename Decode>
void AskAllThen(const cluster::Node& node, std::vector<uint32_t> targets,
                const std::string& question, Local local, Decode decode, PartsDone<T> done) {
  // Joins this node's part and the others' answers, whichever comes last.
  struct Join {
    std::mutex mu;
    bool have_mine = false;
    bool have_answers = false;
    std::optional<Result<T>> mine;
    std::vector<Result<std::string>> answers;
    uint32_t own = 0;
    std::vector<uint32_t> targets;
    std::vector<uint64_t> positions;
    Decode decode = nullptr;
    PartsDone<T> done;

    void Finish() {
      Result<std::vector<T>> parts = Status::Internal("unset");
      try {
        parts = Gather<T>(own, targets, mine, answers, decode, &positions);
      } catch (const std::exception& e) {
        parts = Status::Internal(std::string("gathering the partitions' answers: ") + e.what());
      }
      done(std::move(parts), std::move(positions));
    }
  };
  auto join = std::make_shared<Join>();
  join->own = node.partition();
  join->targets = std::move(targets);
  join->positions.assign(node.partitions(), 0);
  join->decode = std::move(decode);
  join->done = std::move(done);
  const std::vector<uint32_t> remote = Remote(node, join->targets);
  const bool mine_asked = remote.size() < join->targets.size();
  if (remote.empty()) {
    join->have_answers = true;
  } else {
    node.AskThen(remote, question, kAskTimeoutMs, [join](std::vector<Result<std::string>> answers) {
      {
        std::lock_guard lock(join->mu);
        join->answers = std::move(answers);
        join->have_answers = true;
        if (!join->have_mine) return;
      }
      join->Finish();
    });
  }
  std::optional<Result<T>> mine;
  if (mine_asked) {
    try {
      join->positions[join->own] = node.State().applied_seq;
      mine = local();
    } catch (const std::exception& e) {
      mine = Result<T>(Status::Internal(e.what()));
    }
  }
  {
    std::lock_guard lock(join->mu);
    join->mine = std::move(mine);
    join->have_mine = true;
    if (!join->have_answers) return;
  }
  join->Finish();
}

// A ...Then query, waited for: for callers that may block (in a partitioned
// cluster none of the server's threads does; they call the ...Then queries).
template <typename T, typename Start>
Result<T> Waited(Start start) {
  auto promise = std::make_shared<std::promise<Result<T>>>();  // shared: set_value may outlast get
  std::future<Result<T>> future = promise->get_future();
  start([promise](Result<T> r) { promise->set_value(std::move(r)); });
  return future.get();
}

Result<Report> DecodeReport(const wire::Message& m) {
  if (m.body_type() != wire::Body::ReportReply) return Status::Internal("not a report");
  return wire::DecodeReportReply(*m.body_as_ReportReply());
}
Result<Series> DecodeSeries(const wire::Message& m) {
  if (m.body_type() != wire::Body::SeriesReply) return Status::Internal("not a series");
  return wire::DecodeSeriesReply(*m.body_as_SeriesReply());
}
Result<LoanView> DecodeLoan(const wire::Message& m) {
  if (m.body_type() != wire::Body::LoanReply) return Status::Internal("not a loan");
  return wire::DecodeLoanReply(*m.body_as_LoanReply());
}

// Orders groups as one node would: provinces and institutions by label,
// region groups in the rules file's order.
struct GroupOrder {
  std::map<std::string, size_t, std::less<>> rank;  // region groups only
  bool operator()(const std::string& a, const std::string& b) const {
    if (!rank.empty()) {
      auto ia = rank.find(a), ib = rank.find(b);
      const size_t ra = ia == rank.end() ? rank.size() : ia->second;
      const size_t rb = ib == rank.end() ? rank.size() : ib->second;
      if (ra != rb) return ra < rb;
    }
    return a < b;
  }
};

// Hash of a (category rank, group name) key for the report merge.
struct RankedGroupHash {
  size_t operator()(const std::pair<size_t, std::string_view>& k) const {
    return std::hash<std::string_view>{}(k.second) ^ (k.first * 0x9e3779b97f4a7c15ull);
  }
};

Status SameRules(const std::string& a, const std::string& b) {
  if (a == b) return Status::Ok();
  return Status::Unavailable("the partitions answer under different rules versions (" + a +
                             " and " + b + "): a rules change is being applied; try again");
}

Result<Report> MergeReportsOrdered(const ReportQuery& query, std::vector<Report> parts,
                                   const GroupOrder& order) {
  LL_CHECK(!parts.empty());
  Report out;
  out.date = parts[0].date;
  out.by = query.by;
  out.rules_version = parts[0].rules_version;
  // Category order: the query's, else the rules' (ascending ids).
  auto category_rank = [&query](const ReportRow& r) -> size_t {
    if (!query.category_names.empty()) {
      auto it =
          std::find(query.category_names.begin(), query.category_names.end(), r.category_name);
      return static_cast<size_t>(it - query.category_names.begin());
    }
    if (!query.categories.empty()) {
      auto it = std::find(query.categories.begin(), query.categories.end(), r.category);
      return static_cast<size_t>(it - query.categories.begin());
    }
    return static_cast<size_t>(r.category);
  };
  // Rows summed by (category rank, group): the first part's row is moved
  // in, later ones add to it. `merged` is reserved for every row of every
  // part, so it never reallocates and the keys may view its group names.
  size_t total = 0;
  for (const Report& part : parts) total += part.rows.size();
  std::vector<std::pair<size_t, ReportRow>> merged;
  merged.reserve(total);
  std::unordered_map<std::pair<size_t, std::string_view>, size_t, RankedGroupHash> index;
  index.reserve(total);
  for (Report& part : parts) {
    if (Status s = SameRules(out.rules_version, part.rules_version); !s.ok()) return s;
    for (ReportRow& r : part.rows) {
      const size_t rank = category_rank(r);
      auto it = index.find({rank, r.group});
      if (it == index.end()) {
        LL_CHECK(merged.size() < merged.capacity());
        merged.emplace_back(rank, std::move(r));
        index.emplace(std::pair<size_t, std::string_view>{rank, merged.back().second.group},
                      merged.size() - 1);
        continue;
      }
      ReportRow& sum = merged[it->second].second;
      sum.balance_fen += r.balance_fen;
      sum.loan_count += r.loan_count;
      sum.balance_year_ago_fen += r.balance_year_ago_fen;
      sum.ytd_increase_fen += r.ytd_increase_fen;
      sum.disbursed_ytd_fen += r.disbursed_ytd_fen;
      sum.repaid_ytd_fen += r.repaid_ytd_fen;
      sum.written_off_ytd_fen += r.written_off_ytd_fen;
    }
  }
  std::vector<size_t> sorted(merged.size());
  for (size_t i = 0; i < sorted.size(); ++i) sorted[i] = i;
  std::sort(sorted.begin(), sorted.end(), [&merged, &order](size_t a, size_t b) {
    if (merged[a].first != merged[b].first) return merged[a].first < merged[b].first;
    return order(merged[a].second.group, merged[b].second.group);
  });
  out.rows.reserve(merged.size());
  for (const size_t i : sorted) {
    ReportRow& r = merged[i].second;
    r.yoy_growth_pct = YoyGrowthPct(r.balance_fen, r.balance_year_ago_fen);
    out.rows.push_back(std::move(r));
  }
  return out;
}

Result<Series> MergeSeriesOrdered(std::vector<Series> parts, const GroupOrder& order) {
  LL_CHECK(!parts.empty());
  Series out = parts[0];
  out.points.clear();
  std::map<std::pair<Day, std::string>, SeriesPoint> points;
  std::vector<std::pair<Day, std::string>> keys;
  for (const Series& part : parts) {
    if (Status s = SameRules(out.rules_version, part.rules_version); !s.ok()) return s;
    for (const SeriesPoint& p : part.points) {
      std::pair<Day, std::string> key{p.date, p.group};
      auto [it, fresh] = points.try_emplace(key, p);
      if (fresh) {
        keys.push_back(std::move(key));
        continue;
      }
      it->second.balance_fen += p.balance_fen;
      it->second.loan_count += p.loan_count;
    }
  }
  std::sort(keys.begin(), keys.end(), [&order](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first < b.first;
    return order(a.second, b.second);
  });
  for (const auto& key : keys) out.points.push_back(points.at(key));
  return out;
}

// Region groups in the order of the ledger's current rules.
GroupOrder OrderFor(GroupBy by, const storage::Ledger& ledger) {
  GroupOrder order;
  if (by != GroupBy::kRegionGroup) return order;
  Result<std::shared_ptr<const Rules>> rules = Rules::Parse(ledger.CurrentRules().text);
  if (!rules.ok()) return order;
  for (size_t g = 0; g < (*rules)->region_group_count(); ++g)
    order.rank.emplace((*rules)->RegionGroupName(g), g);
  return order;
}

// The partitions' series summed, with the positions they reflect; refused
// when over the points a series may return.
Result<Series> SumSeries(std::vector<Series> parts, const GroupOrder& order,
                         std::vector<uint64_t> positions) {
  Result<Series> merged = MergeSeriesOrdered(std::move(parts), order);
  if (merged.ok()) merged->stream_positions = std::move(positions);
  if (merged.ok() && merged->points.size() > kSeriesPointsMax) {
    return Status::ResourceExhausted("a series returns at most " +
                                     std::to_string(kSeriesPointsMax) +
                                     " points; narrow the range or use a longer step");
  }
  return merged;
}

}  // namespace

Result<Report> MergeReports(const ReportQuery& query, std::vector<Report> parts) {
  return MergeReportsOrdered(query, std::move(parts), GroupOrder{});
}

Result<Series> MergeSeries(std::vector<Series> parts) {
  return MergeSeriesOrdered(std::move(parts), GroupOrder{});
}

cluster::Node* Figures::partitioned() const {
  if (node_ == nullptr || *node_ == nullptr || (*node_)->partitions() < 2) return nullptr;
  return node_->get();
}

bool Figures::fans_out() const { return partitioned() != nullptr; }

void Figures::AnswerPeers(cluster::Node& node) const {
  // The ledger, not this object: the node (answering on NATS's thread until
  // it is destroyed) may outlive this, never the ledger.
  node.Answer([&ledger = ledger_](std::string_view question, size_t max_bytes) {
    return AnswerFromLedger(ledger, question, max_bytes);
  });
}

Result<Report> Figures::QueryReport(const ReportQuery& query) const {
  if (partitioned() == nullptr) return ledger_.QueryReport(query);
  return Waited<Report>([&](auto done) { QueryReportThen(query, std::move(done)); });
}

void Figures::QueryReportThen(const ReportQuery& query,
                              std::function<void(Result<Report>)> done) const {
  cluster::Node* node = partitioned();
  LL_CHECK(node != nullptr);
  const std::string question =
      Question('R', query.scope_institution, wire::EncodeReportRequest(0, query));
  AskAllThen<Report>(
      *node, Targets(*node, query.scope_institution), question,
      [&] { return ledger_.QueryReport(query); }, DecodeReport,
      [query, order = OrderFor(query.by, ledger_), done = std::move(done)](
          Result<std::vector<Report>> parts, std::vector<uint64_t> positions) {
        if (!parts.ok()) return done(parts.status());
        Result<Report> merged = Status::Internal("unset");
        try {
          merged = MergeReportsOrdered(query, std::move(*parts), order);
          if (merged.ok()) merged->stream_positions = std::move(positions);
        } catch (const std::exception& e) {
          merged = Status::Internal(std::string("summing the partitions' reports: ") + e.what());
        }
        done(std::move(merged));
      });
}

Result<Series> Figures::QuerySeries(const SeriesQuery& query) const {
  if (partitioned() == nullptr) return ledger_.QuerySeries(query);
  return Waited<Series>([&](auto done) { QuerySeriesThen(query, std::move(done)); });
}

void Figures::QuerySeriesThen(const SeriesQuery& query,
                              std::function<void(Result<Series>)> done) const {
  cluster::Node* node = partitioned();
  LL_CHECK(node != nullptr);
  const std::string question =
      Question('S', query.scope_institution, wire::EncodeSeriesRequest(0, query));
  AskAllThen<Series>(
      *node, Targets(*node, query.scope_institution), question,
      [&] { return ledger_.QuerySeries(query); }, DecodeSeries,
      [order = OrderFor(query.by, ledger_), done = std::move(done)](
          Result<std::vector<Series>> parts, std::vector<uint64_t> positions) {
        if (!parts.ok()) return done(parts.status());
        Result<Series> merged = Status::Internal("unset");
        try {
          merged = SumSeries(std::move(*parts), order, std::move(positions));
        } catch (const std::exception& e) {
          merged = Status::Internal(std::string("summing the partitions' series: ") + e.what());
        }
        done(std::move(merged));
      });
}

Result<LoanView> Figures::QueryLoan(std::string_view institution_id,
                                    std::string_view loan_id) const {
  if (partitioned() == nullptr) return ledger_.QueryLoan(institution_id, loan_id);
  return Waited<LoanView>(
      [&](auto done) { QueryLoanThen(institution_id, loan_id, std::move(done)); });
}

void Figures::QueryLoanThen(std::string_view institution_id, std::string_view loan_id,
                            std::function<void(Result<LoanView>)> done) const {
  cluster::Node* node = partitioned();
  LL_CHECK(node != nullptr);
  const uint32_t p = node->PartitionOf(institution_id);
  if (p == node->partition()) return done(ledger_.QueryLoan(institution_id, loan_id));
  const std::string question = Question('L', std::optional<std::string>(),
                                        wire::EncodeLoanRequest(0, institution_id, loan_id));
  AskAllThen<LoanView>(
      *node, {p}, question, [&] { return ledger_.QueryLoan(institution_id, loan_id); }, DecodeLoan,
      [done = std::move(done)](Result<std::vector<LoanView>> parts, std::vector<uint64_t>) {
        if (!parts.ok()) return done(parts.status());
        done(std::move(parts->front()));
      });
}

}  // namespace loanledger::server
