// Fuzz target: event validation (schema/event.h) and the ledger's batch
// semantics (storage/ledger.h, docs/data.md) under arbitrary events.
//
// Each input is decoded into up to kBatchesPerInputMax batches of events.
// Fields come either from small palettes of plausible values (so that many
// events are valid and loans build up balances) or, when the fuzzer sets a
// field's "raw" bit, from raw bytes: any string, any integer, enum bytes out
// of range. Every batch goes to one Ledger per process (a temp directory,
// sync off), next to a plain model of each loan (last seq, date, balance):
// alone through Apply, or, when the fuzzer flags consecutive batches to go
// together, through one ApplyGroup call (group commit).
//
// Properties:
//   1. ValidateEvent never crashes, and an event it accepts meets the docs/data.md
//      field rules as restated here (an independent check).
//   2. Apply and ApplyGroup never fail operationally; they apply exactly the
//      batches the model applies (each batch of a group judged alone, in
//      order), with the same applied/duplicate counts; an applied batch has
//      no rejections and is journaled iff it applied an event, and
//      Stats().batches_applied counts exactly the journaled ones.
//   3. A rejected batch names exactly the bad events the model finds, each
//      field-invalid one with ValidateEvent's reason, and changes nothing:
//      (alone) two reports and every touched loan are the same before and
//      after; (in a group) the loans and totals match the model, which
//      skipped it.
//   4. After every batch the TOTAL balance and loan count as of 2199-12-31
//      equal the model's sums, and every loan the batch applied to reads
//      back as the model has it.
//   5. Every kVerifyEvery inputs Verify() is clean; every kReopenEvery the
//      ledger is closed and reopened and reads the same; every kWipeEvery it
//      starts afresh (bounding disk use and Verify's cost on long runs).
#include <unistd.h>

#include <cinttypes>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "client/csv.h"
#include "fuzz_support.h"
#include "schema/category.h"
#include "schema/date.h"
#include "schema/event.h"
#include "schema/limits.h"
#include "schema/query.h"
#include "storage/ledger.h"

namespace loanledger::fuzz {
namespace {

namespace fs = std::filesystem;
using storage::ApplyResult;
using storage::Batch;
using storage::Ledger;

constexpr size_t kBatchesPerInputMax = 16;  // batches decoded from one input
constexpr size_t kBatchEventsFuzzMax =
    8;  // events per batch (real batches are larger; 8 finds the interactions)
constexpr uint64_t kVerifyEvery = 256;   // inputs between Verify() runs
constexpr uint64_t kReopenEvery = 1024;  // inputs between close + reopen checks
constexpr uint64_t kWipeEvery = 8192;    // inputs between fresh ledgers

constexpr Day kBaseDay = 19358;  // 2023-01-01: palette dates start here
const Day kReportDay = kDayMax;  // as of the end of time: every applied event counts

// Palettes: mostly valid, one invalid entry each where the field can be.
const char* const kInstitutions[] = {"B0001", "B0002", "BANK_9-Z"};
const char* const kLoanIds[] = {"L0", "L1", "L2", "L3", "L4", "L5", "loan ~id#6", "L7"};
const char* const kIndustries[] = {"C3911", "C39", "C", "A0111", "J6311", "C2710", "M7320", ""};
const char* const kRegions[] = {"310115", "110101", "440305", "650102", "540102", "990000"};
const int64_t kCreditLines[] = {0, 1'000'000'000, 1'000'000'001, 50'000'000'000};

// ---------------------------------------------------------------------------
// The model: what docs/data.md says each loan's state is.

struct LoanModel {
  bool exists = false;
  uint64_t last_seq = 0;
  Day last_date = 0;
  int64_t balance_fen = 0;
  LoanAttributes attributes;
};

enum class Outcome { kDuplicate, kApplied, kRejected };

Outcome StepModel(const LoanEvent& e, LoanModel& m, int64_t& disbursed_fen) {
  const uint64_t last = m.exists ? m.last_seq : 0;
  if (e.seq <= last) return Outcome::kDuplicate;
  if (e.seq > last + 1) return Outcome::kRejected;                             // gap
  if (!m.exists && e.kind != EventKind::kDisburse) return Outcome::kRejected;  // first not DISBURSE
  if (m.exists && e.business_date < m.last_date) return Outcome::kRejected;  // date before previous
  int64_t next = m.balance_fen;
  switch (e.kind) {
    case EventKind::kDisburse:
      if (e.amount_fen > kLoanBalanceFenMax - m.balance_fen) return Outcome::kRejected;
      if (e.amount_fen > kLedgerDisbursedFenMax - disbursed_fen) return Outcome::kRejected;
      next += e.amount_fen;
      disbursed_fen += e.amount_fen;
      break;
    case EventKind::kRepay:
    case EventKind::kWriteOff:
      if (e.amount_fen > m.balance_fen) return Outcome::kRejected;  // overdraw
      next -= e.amount_fen;
      break;
    case EventKind::kReclassify:
      break;
  }
  m.exists = true;
  m.last_seq = e.seq;
  m.last_date = e.business_date;
  m.balance_fen = next;
  m.attributes = e.attributes;
  return Outcome::kApplied;
}

bool IsStepReason(Reason r) {
  return r == Reason::kSeqGap || r == Reason::kFirstEventNotDisburse ||
         r == Reason::kDateBeforePrevious || r == Reason::kOverdraw || r == Reason::kBalanceLimit ||
         r == Reason::kLedgerCapacity;
}

std::string LoanKey(const LoanEvent& e) { return e.institution_id + '\0' + e.loan_id; }

// ---------------------------------------------------------------------------
// Property 1: an accepted event, checked against docs/data.md restated.

bool Digits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

void CheckAcceptedBySpec(const LoanEvent& e) {
  const LoanAttributes& a = e.attributes;
  bool inst_ok = !e.institution_id.empty() && e.institution_id.size() <= 32;
  for (char c : e.institution_id) {
    inst_ok = inst_ok && ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-');
  }
  bool loan_ok = !e.loan_id.empty() && e.loan_id.size() <= 64;
  for (char c : e.loan_id) loan_ok = loan_ok && c >= 0x20 && c <= 0x7e && c != ',';
  const auto kind = static_cast<unsigned>(e.kind);
  const auto borrower = static_cast<unsigned>(a.borrower_type);
  const auto size = static_cast<unsigned>(a.enterprise_size);
  const bool amount_ok = e.kind == EventKind::kReclassify
                             ? e.amount_fen == 0
                             : e.amount_fen > 0 && e.amount_fen <= 1'000'000'000'000'000;
  const bool size_ok =
      a.borrower_type == BorrowerType::kEnterprise ? (size >= 1 && size <= 4) : size == 0;
  const std::string& ind = a.industry_code;
  const bool industry_ok = (ind.empty() && a.borrower_type == BorrowerType::kIndividual) ||
                           (!ind.empty() && ind[0] >= 'A' && ind[0] <= 'T' &&
                            Digits(ind.substr(1)) && ind.size() != 2 && ind.size() <= 5);
  const std::string& reg = a.region_code;
  const bool region_ok = reg.size() == 6 && Digits(reg) &&
                         IsProvinceCode(static_cast<uint8_t>((reg[0] - '0') * 10 + (reg[1] - '0')));
  FUZZ_CHECK(inst_ok && loan_ok && e.seq >= 1 && e.business_date >= 7305 &&
                 e.business_date <= 84005 && kind >= 1 && kind <= 4 && amount_ok && borrower >= 1 &&
                 borrower <= 4 && size_ok && industry_ok && region_ok && a.term_months >= 1 &&
                 a.term_months <= 600 && a.credit_line_fen >= 0,
             "ValidateEvent accepted an event docs/data.md forbids: inst=%s loan=%s seq=%" PRIu64
             " date=%d kind=%u amount=%" PRId64
             " borrower=%u size=%u industry=%s region=%s term=%u "
             "credit=%" PRId64,
             Printable(e.institution_id).c_str(), Printable(e.loan_id).c_str(), e.seq,
             e.business_date, kind, e.amount_fen, borrower, size, Printable(ind).c_str(),
             Printable(reg).c_str(), unsigned{a.term_months}, a.credit_line_fen);
  // An accepted event also has a CSV form that reads back the same.
  std::string line;
  client::AppendCsvLine(e, line);
  line.pop_back();
  LoanEvent reread;
  FUZZ_CHECK(!client::ParseCsvLine(line, reread) && reread == e,
             "a valid event does not round-trip through CSV: %s", Printable(line).c_str());
}

// ---------------------------------------------------------------------------
// Decoding a batch from the fuzz input.

class EventDecoder {
 public:
  EventDecoder(FuzzInput& in, const std::map<std::string, LoanModel>& model)
      : in_(in), model_(model) {}

  LoanEvent Next() {
    const uint8_t raw = in_.Byte();  // bit i: field group i comes from raw bytes
    LoanEvent e;
    e.institution_id = (raw & 0x01) ? in_.String(40) : kInstitutions[in_.Byte() % 3];
    e.loan_id = (raw & 0x02) ? in_.String(72) : kLoanIds[in_.Byte() % 8];
    // The generator's view of the loan: the model plus this batch so far,
    // as if every event applied. It only steers values towards the
    // interesting ones (next seq, full repayment, ...); the check uses the
    // model proper.
    LoanModel& view = ViewOf(e);
    if (raw & 0x04) {
      e.seq = in_.Boundary<uint64_t>();
    } else {
      const uint64_t last = view.exists ? view.last_seq : 0;
      switch (in_.Byte() % 8) {
        case 5:
          e.seq = last;
          break;  // duplicate (0 when new: invalid)
        case 6:
          e.seq = last + 2;
          break;  // gap
        case 7:
          e.seq = 1;
          break;
        default:
          e.seq = last + 1;
          break;
      }
    }
    if (raw & 0x08) {
      e.business_date = in_.Boundary<int32_t>();
    } else {
      const uint16_t d = in_.Integer<uint16_t>();
      const Day from = view.exists ? std::max(view.last_date, kBaseDay) : kBaseDay;
      e.business_date = (d & 0x8000) ? kBaseDay + (d % 1500) : from + (d % 40);
    }
    e.kind = (raw & 0x10) ? static_cast<EventKind>(in_.Byte())
                          : static_cast<EventKind>(1 + in_.Byte() % 4);
    if (raw & 0x20) {
      e.amount_fen = in_.Boundary<int64_t>();
    } else if (e.kind == EventKind::kReclassify) {
      e.amount_fen = 0;
    } else {
      switch (in_.Byte() % 8) {
        case 5:
          e.amount_fen = view.balance_fen;
          break;  // repays in full
        case 6:
          e.amount_fen = view.balance_fen + 1;
          break;  // overdraws
        case 7:
          e.amount_fen = kAmountFenMax;
          break;
        default:
          e.amount_fen = (int64_t{in_.Integer<uint16_t>()} + 1) * 100;
          break;
      }
    }
    DecodeAttributes(raw, e.attributes);
    if (!ValidateEvent(e)) {
      int64_t disbursed = 0;  // the generator ignores the ledger capacity
      StepModel(e, view, disbursed);
    }
    return e;
  }

 private:
  void DecodeAttributes(uint8_t raw, LoanAttributes& a) {
    const bool raw_values = raw & 0x40;
    const bool raw_codes = raw & 0x80;
    a.borrower_type = raw_values ? static_cast<BorrowerType>(in_.Byte())
                                 : static_cast<BorrowerType>(1 + in_.Byte() % 4);
    if (raw_values) {
      a.enterprise_size = static_cast<EnterpriseSize>(in_.Byte());
    } else {
      const uint8_t s = in_.Byte();
      a.enterprise_size = a.borrower_type == BorrowerType::kEnterprise
                              ? static_cast<EnterpriseSize>(1 + s % 4)
                              : EnterpriseSize::kNa;
    }
    a.industry_code = raw_codes ? in_.String(8) : kIndustries[in_.Byte() % 8];
    a.region_code = raw_codes ? in_.String(8) : kRegions[in_.Byte() % 6];
    a.term_months = raw_values ? in_.Boundary<uint16_t>()
                               : static_cast<uint16_t>(1 + in_.Integer<uint16_t>() % 600);
    a.credit_line_fen = raw_values ? in_.Boundary<int64_t>() : kCreditLines[in_.Byte() % 4];
    const uint8_t flags = in_.Byte();
    a.srdi = flags & 1;
    a.tech_enterprise = flags & 2;
    a.green = flags & 4;
    a.elderly_care = flags & 8;
    a.digital_economy = flags & 16;
  }

  LoanModel& ViewOf(const LoanEvent& e) {
    const std::string key = LoanKey(e);
    auto it = view_.find(key);
    if (it != view_.end()) return it->second;
    auto m = model_.find(key);
    return view_.emplace(key, m == model_.end() ? LoanModel{} : m->second).first->second;
  }

  FuzzInput& in_;
  const std::map<std::string, LoanModel>& model_;  // committed state
  std::map<std::string, LoanModel> view_;          // this batch's optimistic view
};

// ---------------------------------------------------------------------------
// The ledger under test and its model, one per process.

struct Expected {
  bool applied = true;
  uint32_t events_applied = 0;
  uint32_t events_duplicate = 0;
  std::map<uint32_t, std::optional<Reason>> rejections;  // index -> exact reason when known
  std::map<std::string, LoanModel> after;                // touched loans, if applied
  int64_t disbursed_fen = 0;                             // ledger lifetime total, if applied
};

class Harness {
 public:
  Harness() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/loanledger-fuzz-XXXXXX";
    FUZZ_CHECK(mkdtemp(pattern.data()) != nullptr, "mkdtemp %s failed", pattern.c_str());
    root_ = pattern;
    Open(/*fresh=*/true);
  }

  ~Harness() {
    if (ledger_ != nullptr) CheckVerify();
    ledger_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
    std::fprintf(stderr,
                 "fuzz_validate_event: %" PRIu64 " inputs, %" PRIu64 " batches (%" PRIu64
                 " applied, %" PRIu64 " rejected; %" PRIu64 " ApplyGroup calls), %" PRIu64
                 " events applied, %" PRIu64 " verify runs, %" PRIu64 " reopens, %" PRIu64
                 " fresh ledgers\n",
                 inputs_, batches_, applied_, batches_ - applied_, groups_, events_applied_,
                 verifies_, reopens_, wipes_);
  }

  void RunInput(FuzzInput& in) {
    ++inputs_;
    // Batches flagged "group with the next" go to one ApplyGroup call.
    std::vector<Batch> group;
    std::vector<Expected> expected;
    for (size_t b = 0; b < kBatchesPerInputMax; ++b) {
      bool join_next = false;
      Batch batch = DecodeBatch(in, &join_next);
      if (group.empty() && !join_next) {
        RunSingle(batch);
      } else {
        // Predicted and committed to the model in order, as ApplyGroup applies them.
        expected.push_back(Predict(batch));
        if (expected.back().applied) Commit(expected.back());
        group.push_back(std::move(batch));
        if (!join_next) RunGroup(group, expected);
      }
      if (in.empty()) break;
    }
    if (!group.empty()) RunGroup(group, expected);
    if (inputs_ % kVerifyEvery == 0) CheckVerify();
    if (inputs_ % kWipeEvery == 0) {
      Open(/*fresh=*/true);
    } else if (inputs_ % kReopenEvery == 0) {
      CheckReopen();
    }
  }

 private:
  void Open(bool fresh) {
    ledger_.reset();
    if (fresh) {
      std::error_code ec;
      fs::remove_all(root_ + "/db", ec);
      model_.clear();
      disbursed_fen_ = 0;
      ++wipes_;
    }
    storage::LedgerOptions options;
    options.path = root_ + "/db";
    options.sync = false;  // no durability needed: the process is the test
    options.block_cache_bytes = size_t{8} << 20;
    options.clock_ms = [] { return int64_t{1'700'000'000'000}; };
    Result<std::unique_ptr<Ledger>> opened = Ledger::Open(options);
    FUZZ_CHECK(opened.ok(), "Ledger::Open: %s", opened.status().ToString().c_str());
    ledger_ = std::move(*opened);
  }

  Report ReportAt(Day day, GroupBy by) const {
    ReportQuery q;
    q.date = day;
    q.by = by;
    Result<Report> r = ledger_->QueryReport(q);
    FUZZ_CHECK(r.ok(), "QueryReport: %s", r.status().ToString().c_str());
    return std::move(*r);
  }

  // Property 4, the aggregate half: TOTAL as of the end of time.
  void CheckTotals() const {
    int64_t balance = 0;
    int64_t count = 0;
    for (const auto& [key, m] : model_) {
      balance += m.balance_fen;
      count += m.balance_fen > 0 ? 1 : 0;
    }
    ReportQuery q;
    q.date = kReportDay;
    q.categories = {Category::kTotal};
    Result<Report> r = ledger_->QueryReport(q);
    FUZZ_CHECK(r.ok() && r->rows.size() == 1, "TOTAL report failed");
    FUZZ_CHECK(r->rows[0].balance_fen == balance && r->rows[0].loan_count == count,
               "TOTAL balance %" PRId64 " / %" PRId64 " loans, model %" PRId64 " / %" PRId64,
               r->rows[0].balance_fen, r->rows[0].loan_count, balance, count);
  }

  std::optional<LoanView> ReadLoan(const std::string& inst, const std::string& loan) const {
    Result<LoanView> v = ledger_->QueryLoan(inst, loan);
    if (!v.ok()) {
      FUZZ_CHECK(v.status().code() == Status::Code::kNotFound, "QueryLoan: %s",
                 v.status().ToString().c_str());
      return std::nullopt;
    }
    return std::move(*v);
  }

  Expected Predict(const Batch& batch) const {
    Expected x;
    x.disbursed_fen = disbursed_fen_;
    std::set<std::string> poisoned;
    std::map<std::string, LoanModel> work;
    for (size_t i = 0; i < batch.events.size(); ++i) {
      const LoanEvent& e = batch.events[i];
      const auto index = static_cast<uint32_t>(i);
      if (std::optional<FieldError> invalid = ValidateEvent(e)) {
        x.rejections[index] = invalid->reason;
        if (IsValidInstitutionId(e.institution_id) && IsValidLoanId(e.loan_id)) {
          poisoned.insert(LoanKey(e));
        }
        continue;
      }
      CheckAcceptedBySpec(e);
      if (!batch.caller_institution.empty() && e.institution_id != batch.caller_institution) {
        x.rejections[index] = Reason::kWrongInstitution;
        continue;
      }
      const std::string key = LoanKey(e);
      if (poisoned.contains(key)) continue;  // its earlier bad event is the one reported
      auto it = work.find(key);
      if (it == work.end()) {
        auto m = model_.find(key);
        it = work.emplace(key, m == model_.end() ? LoanModel{} : m->second).first;
      }
      switch (StepModel(e, it->second, x.disbursed_fen)) {
        case Outcome::kDuplicate:
          ++x.events_duplicate;
          break;
        case Outcome::kApplied:
          ++x.events_applied;
          break;
        case Outcome::kRejected:
          x.rejections[index] = std::nullopt;  // one of the step reasons
          poisoned.insert(key);
          break;
      }
    }
    x.applied = x.rejections.empty();
    if (x.applied) x.after = std::move(work);
    return x;
  }

  Batch DecodeBatch(FuzzInput& in, bool* join_next) {
    Batch batch;
    batch.submitter = "fuzz";
    const size_t n = 1 + in.Byte() % kBatchEventsFuzzMax;
    const uint8_t mode = in.Byte();
    switch (mode % 4) {
      case 2:
        batch.caller_institution = kInstitutions[0];
        break;
      case 3:
        batch.caller_institution = kInstitutions[1];
        break;
      default:
        break;  // no restriction (the regulator-less storage view)
    }
    *join_next = (mode & 0x04) != 0;
    EventDecoder decoder(in, model_);
    for (size_t i = 0; i < n; ++i) batch.events.push_back(decoder.Next());
    return batch;
  }

  // The valid loan keys a batch names (the ones QueryLoan can look up).
  static std::set<std::string> Touched(const Batch& batch) {
    std::set<std::string> keys;
    for (const LoanEvent& e : batch.events) {
      if (IsValidInstitutionId(e.institution_id) && IsValidLoanId(e.loan_id))
        keys.insert(LoanKey(e));
    }
    return keys;
  }

  void Commit(const Expected& x) {
    for (const auto& [key, m] : x.after) model_[key] = m;
    disbursed_fen_ = x.disbursed_fen;
  }

  // Property 4, the loan half: each key reads back as the model has it.
  void CheckLoans(const std::set<std::string>& keys) const {
    for (const std::string& key : keys) {
      const size_t sep = key.find('\0');
      const std::optional<LoanView> v = ReadLoan(key.substr(0, sep), key.substr(sep + 1));
      auto it = model_.find(key);
      if (it == model_.end() || !it->second.exists) {
        FUZZ_CHECK(!v, "loan %s exists in the ledger only", Printable(key).c_str());
        continue;
      }
      const LoanModel& m = it->second;
      FUZZ_CHECK(v && v->last_seq == m.last_seq && v->last_business_date == m.last_date &&
                     v->balance_fen == m.balance_fen && v->attributes == m.attributes &&
                     v->categories == Classify(m.attributes),
                 "loan %s reads back differently from the model (seq %" PRIu64 " vs %" PRIu64
                 ", balance %" PRId64 " vs %" PRId64 ")",
                 Printable(key).c_str(), v ? v->last_seq : 0, m.last_seq, v ? v->balance_fen : 0,
                 m.balance_fen);
    }
  }

  // Properties 2 and 3 on one ApplyResult (Stats and reads are the caller's).
  void CheckResult(const Batch& batch, const Expected& x, const ApplyResult& r) {
    ++batches_;
    FUZZ_CHECK(r.applied == x.applied, "ledger %s a batch the model %s (%zu rejections, first: %s)",
               r.applied ? "applied" : "rejected", x.applied ? "applies" : "rejects",
               r.rejections.size(), r.rejections.empty() ? "-" : r.rejections[0].message.c_str());
    if (r.applied) {
      CheckApplied(batch, x, r);
    } else {
      CheckRejected(batch, x, r);
    }
  }

  void RunSingle(const Batch& batch) {
    const Expected x = Predict(batch);
    const std::set<std::string> keys = Touched(batch);
    const uint64_t batches_before = ledger_->Stats().batches_applied;
    std::optional<Report> by_province, by_institution;
    std::map<std::string, std::optional<LoanView>> loans_before;
    if (!x.applied) {
      by_province = ReportAt(kReportDay, GroupBy::kProvince);
      by_institution = ReportAt(kBaseDay + 400, GroupBy::kInstitution);
      for (const std::string& key : keys) {
        const size_t sep = key.find('\0');
        loans_before[key] = ReadLoan(key.substr(0, sep), key.substr(sep + 1));
      }
    }

    Result<ApplyResult> applied = ledger_->Apply(batch);
    FUZZ_CHECK(applied.ok(), "Apply failed operationally: %s", applied.status().ToString().c_str());
    const ApplyResult& r = *applied;
    CheckResult(batch, x, r);
    const uint64_t batches_after = ledger_->Stats().batches_applied;
    FUZZ_CHECK(batches_after == batches_before + (r.events_applied > 0 ? 1 : 0),
               "batches_applied went %" PRIu64 " -> %" PRIu64 " for a batch applying %u events",
               batches_before, batches_after, r.events_applied);
    if (r.applied) {
      Commit(x);
    } else {
      FUZZ_CHECK(ReportAt(kReportDay, GroupBy::kProvince).rows == by_province->rows,
                 "a rejected batch changed the report by province");
      FUZZ_CHECK(ReportAt(kBaseDay + 400, GroupBy::kInstitution).rows == by_institution->rows,
                 "a rejected batch changed the report by institution");
      for (const auto& [key, before] : loans_before) {
        const size_t sep = key.find('\0');
        const std::optional<LoanView> after = ReadLoan(key.substr(0, sep), key.substr(sep + 1));
        FUZZ_CHECK(before.has_value() == after.has_value() &&
                       (!before || (before->last_seq == after->last_seq &&
                                    before->last_business_date == after->last_business_date &&
                                    before->balance_fen == after->balance_fen &&
                                    before->attributes == after->attributes &&
                                    before->categories == after->categories)),
                   "a rejected batch changed loan %s", Printable(key).c_str());
      }
    }
    CheckLoans(keys);
    CheckTotals();
  }

  // Group commit: each batch atomic and judged alone, in order; the model
  // already holds the applied ones (RunInput committed them when predicting).
  void RunGroup(std::vector<Batch>& group, std::vector<Expected>& expected) {
    ++groups_;
    std::vector<const Batch*> batches;
    std::set<std::string> keys;
    for (const Batch& b : group) {
      batches.push_back(&b);
      keys.merge(Touched(b));
    }
    const uint64_t batches_before = ledger_->Stats().batches_applied;
    Result<std::vector<ApplyResult>> results =
        ledger_->ApplyGroup(std::span<const Batch* const>(batches));
    FUZZ_CHECK(results.ok(), "ApplyGroup failed operationally: %s",
               results.status().ToString().c_str());
    FUZZ_CHECK(results->size() == group.size(), "ApplyGroup of %zu batches returned %zu results",
               group.size(), results->size());
    uint64_t journaled = 0;
    for (size_t k = 0; k < group.size(); ++k) {
      CheckResult(group[k], expected[k], (*results)[k]);
      journaled += (*results)[k].events_applied > 0 ? 1 : 0;
    }
    const uint64_t batches_after = ledger_->Stats().batches_applied;
    FUZZ_CHECK(batches_after == batches_before + journaled,
               "batches_applied went %" PRIu64 " -> %" PRIu64 " for a group journaling %" PRIu64,
               batches_before, batches_after, journaled);
    CheckLoans(keys);
    CheckTotals();
    group.clear();
    expected.clear();
  }

  void CheckApplied(const Batch& batch, const Expected& x, const ApplyResult& r) {
    ++applied_;
    FUZZ_CHECK(r.rejections.empty(), "an applied batch with %zu rejections", r.rejections.size());
    FUZZ_CHECK(r.events_applied == x.events_applied && r.events_duplicate == x.events_duplicate,
               "applied %u + %u duplicates, model %u + %u", r.events_applied, r.events_duplicate,
               x.events_applied, x.events_duplicate);
    FUZZ_CHECK(r.events_applied + r.events_duplicate == batch.events.size(),
               "an applied batch of %zu events counts %u + %u", batch.events.size(),
               r.events_applied, r.events_duplicate);
    FUZZ_CHECK((r.batch_no != 0) == (r.events_applied > 0), "batch_no %" PRIu64 " with %u applied",
               r.batch_no, r.events_applied);
    events_applied_ += r.events_applied;
  }

  void CheckRejected(const Batch& batch, const Expected& x, const ApplyResult& r) const {
    FUZZ_CHECK(!r.rejections.empty(), "a rejected batch without rejections");
    FUZZ_CHECK(r.events_applied == 0 && r.events_duplicate == 0 && r.batch_no == 0,
               "a rejected batch reports %u applied, %u duplicates, batch %" PRIu64,
               r.events_applied, r.events_duplicate, r.batch_no);
    std::set<uint32_t> seen;
    for (const storage::EventRejection& rej : r.rejections) {
      FUZZ_CHECK(rej.index < batch.events.size(), "rejection index %u of %zu", rej.index,
                 batch.events.size());
      FUZZ_CHECK(seen.insert(rej.index).second, "event %u rejected twice", rej.index);
      FUZZ_CHECK(rej.reason != Reason::kOk && !rej.message.empty(), "rejection %u without a reason",
                 rej.index);
      auto it = x.rejections.find(rej.index);
      FUZZ_CHECK(it != x.rejections.end(), "event %u rejected (%s) but the model accepts it",
                 rej.index, rej.message.c_str());
      if (it->second) {
        FUZZ_CHECK(rej.reason == *it->second, "event %u rejected as %s, expected %s", rej.index,
                   std::string(ReasonName(rej.reason)).c_str(),
                   std::string(ReasonName(*it->second)).c_str());
      } else {
        FUZZ_CHECK(IsStepReason(rej.reason), "event %u: %s is not a loan-state reason", rej.index,
                   std::string(ReasonName(rej.reason)).c_str());
      }
    }
    FUZZ_CHECK(seen.size() == x.rejections.size(), "%zu events rejected, the model finds %zu bad",
               seen.size(), x.rejections.size());
  }

  void CheckVerify() {
    ++verifies_;
    Result<storage::VerifyReport> v = ledger_->Verify();
    FUZZ_CHECK(v.ok(), "Verify: %s", v.status().ToString().c_str());
    FUZZ_CHECK(v->differences.empty(),
               "Verify found %zu differences; first: %s expected %" PRId64 " actual %" PRId64,
               v->differences.size(), v->differences[0].what.c_str(), v->differences[0].expected,
               v->differences[0].actual);
    FUZZ_CHECK(v->batches_replayed == ledger_->Stats().batches_applied,
               "Verify replayed %" PRIu64 " batches of %" PRIu64, v->batches_replayed,
               ledger_->Stats().batches_applied);
  }

  void CheckReopen() {
    ++reopens_;
    const Report province = ReportAt(kReportDay, GroupBy::kProvince);
    const Report institution = ReportAt(kBaseDay + 400, GroupBy::kInstitution);
    const uint64_t batches = ledger_->Stats().batches_applied;
    Open(/*fresh=*/false);
    FUZZ_CHECK(ReportAt(kReportDay, GroupBy::kProvince).rows == province.rows,
               "the report by province changed across reopen");
    FUZZ_CHECK(ReportAt(kBaseDay + 400, GroupBy::kInstitution).rows == institution.rows,
               "the report by institution changed across reopen");
    FUZZ_CHECK(ledger_->Stats().batches_applied == batches,
               "batches_applied changed across reopen");
    CheckTotals();
  }

  std::string root_;  // the temp directory; the store is root_/db
  std::unique_ptr<Ledger> ledger_;
  std::map<std::string, LoanModel> model_;  // every loan the ledger knows, by LoanKey
  int64_t disbursed_fen_ = 0;               // lifetime DISBURSE total (kLedgerDisbursedFenMax)
  uint64_t inputs_ = 0, batches_ = 0, applied_ = 0, events_applied_ = 0, groups_ = 0;
  uint64_t verifies_ = 0, reopens_ = 0, wipes_ = 0;
};

Harness& TheHarness() {
  // Destroyed at exit (libFuzzer's -max_total_time and the replay driver both
  // exit normally): runs a last Verify and removes the temp directory.
  static Harness harness;
  return harness;
}

}  // namespace
}  // namespace loanledger::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  loanledger::fuzz::FuzzInput in(data, size);
  loanledger::fuzz::TheHarness().RunInput(in);
  return 0;
}
