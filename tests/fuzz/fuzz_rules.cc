// Fuzz target: rules files (schema/rules.h, docs/categories.md "Rules files").
//
// Properties, for any bytes:
//   1. Rules::Parse never crashes. A refused file is InvalidArgument with a
//      "FIELD: REASON" message.
//   2. Formatting does not matter: when the input is JSON, the same JSON
//      written out again (nlohmann's compact dump: other spacing, keys
//      sorted) is accepted or refused alike, with the same message when
//      refused and the same version, names and classifications when
//      accepted.
//   3. An accepted file evaluates as it reads: on loans drawn from the codes
//      the file names (and others), the compiled program's categories and
//      region groups equal those of a direct, tree-walking reading of the
//      JSON; TOTAL is always in; names, ids and limits agree.
#include <algorithm>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "schema/category.h"
#include "schema/event.h"
#include "schema/rules.h"

namespace loanledger::fuzz {
namespace {

using Json = nlohmann::json;

// The reading of docs/categories.md's rule table, straight from the JSON.
class Reference {
 public:
  explicit Reference(const Json& root) : root_(root) {}

  RuleMask Classify(const LoanAttributes& a) {
    RuleMask mask = 0;
    done_.clear();
    const Json& categories = root_["categories"];
    for (size_t i = 0; i < categories.size(); ++i) {
      const bool in = Eval(categories[i]["rule"], a);
      done_[categories[i]["name"].get<std::string>()] = in;
      if (in) mask |= RuleMask{1} << i;
    }
    return mask;
  }

  RegionGroupMask Groups(const std::string& region_code) const {
    RegionGroupMask mask = 0;
    auto groups = root_.find("region_groups");
    if (groups == root_.end()) return 0;
    for (size_t g = 0; g < groups->size(); ++g) {
      if (AnyPrefix((*groups)[g]["region_prefix"], region_code)) mask |= RegionGroupMask{1} << g;
    }
    return mask;
  }

 private:
  static bool AnyPrefix(const Json& list, const std::string& code) {
    for (const Json& p : list) {
      if (code.starts_with(p.get<std::string>())) return true;
    }
    return false;
  }

  bool Eval(const Json& rule, const LoanAttributes& a) {
    const std::string& key = rule.begin().key();
    const Json& v = rule.begin().value();
    if (key == "all") {
      return std::all_of(v.begin(), v.end(), [&](const Json& r) { return Eval(r, a); });
    }
    if (key == "any") {
      return std::any_of(v.begin(), v.end(), [&](const Json& r) { return Eval(r, a); });
    }
    if (key == "not") return !Eval(v, a);
    if (key == "industry_prefix") return AnyPrefix(v, a.industry_code);
    if (key == "region_prefix") return AnyPrefix(v, a.region_code);
    if (key == "industry_table") return IsHighTechManufacturing(a.industry_code);
    if (key == "borrower_type") {
      return std::any_of(v.begin(), v.end(), [&](const Json& s) {
        return ParseBorrowerType(s.get<std::string>()) == a.borrower_type;
      });
    }
    if (key == "enterprise_size") {
      return std::any_of(v.begin(), v.end(), [&](const Json& s) {
        return ParseEnterpriseSize(s.get<std::string>()) == a.enterprise_size;
      });
    }
    if (key == "term_months_gt") return a.term_months > v.get<int64_t>();
    if (key == "term_months_le") return a.term_months <= v.get<int64_t>();
    if (key == "credit_line_fen_le") return a.credit_line_fen <= v.get<int64_t>();
    if (key == "flag") {
      const std::string f = v.get<std::string>();
      if (f == "srdi") return a.srdi;
      if (f == "tech_enterprise") return a.tech_enterprise;
      if (f == "green") return a.green;
      if (f == "elderly_care") return a.elderly_care;
      FUZZ_CHECK(f == "digital_economy", "accepted an unknown flag %s", f.c_str());
      return a.digital_economy;
    }
    FUZZ_CHECK(key == "category", "accepted an unknown predicate %s", key.c_str());
    const std::string name = v.get<std::string>();
    if (name == "TOTAL") return true;
    auto it = done_.find(name);
    FUZZ_CHECK(it != done_.end(), "accepted a reference to %s, not an earlier category",
               name.c_str());
    return it->second;
  }

  const Json& root_;
  std::map<std::string, bool> done_;  // categories evaluated so far
};

// Every string in the JSON: the file's prefixes seed the loans' codes.
void CollectStrings(const Json& j, std::vector<std::string>* out) {
  if (j.is_string()) {
    if (out->size() < 256) out->push_back(j.get<std::string>());
  } else if (j.is_structured()) {
    for (const Json& e : j) CollectStrings(e, out);
  }
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {  // splitmix64
    uint64_t z = (s_ += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }
  size_t Pick(size_t n) { return static_cast<size_t>(Next() % n); }

 private:
  uint64_t s_;
};

// A code from the pool, cut or lengthened with digits (codes the file names
// exactly, finer ones and coarser ones).
std::string Code(Rng& rng, const std::vector<std::string>& pool) {
  std::string c = pool[rng.Pick(pool.size())];
  switch (rng.Pick(4)) {
    case 0:
      c.resize(rng.Pick(c.size() + 1));
      break;
    case 1:
      for (size_t n = rng.Pick(4); n > 0; --n) c += static_cast<char>('0' + rng.Pick(10));
      break;
    default:
      break;
  }
  return c;
}

std::vector<LoanAttributes> Loans(const Json& root, uint64_t seed) {
  std::vector<std::string> pool = {"C3911",  "C2710",  "C",    "C31",   "F5211", "",     "310115",
                                   "440305", "110105", "4403", "C3741", "I6532", "A0111"};
  CollectStrings(root, &pool);
  Rng rng(seed);
  static constexpr int64_t kCredits[] = {0,        1, 999'999'999, 1'000'000'000, 1'000'000'001,
                                         INT64_MAX};
  static constexpr uint16_t kTerms[] = {0, 1, 12, 13, 36, 600, 65535};
  std::vector<LoanAttributes> out;
  for (int i = 0; i < 48; ++i) {
    LoanAttributes a;
    a.borrower_type = static_cast<BorrowerType>(1 + rng.Pick(4));
    a.enterprise_size = static_cast<EnterpriseSize>(rng.Pick(5));
    a.industry_code = Code(rng, pool);
    a.region_code = Code(rng, pool);
    a.term_months =
        rng.Pick(2) ? kTerms[rng.Pick(std::size(kTerms))] : static_cast<uint16_t>(rng.Next());
    a.credit_line_fen = rng.Pick(2) ? kCredits[rng.Pick(std::size(kCredits))]
                                    : static_cast<int64_t>(rng.Next() >> 1);
    const uint64_t flags = rng.Next();
    a.srdi = flags & 1;
    a.tech_enterprise = flags & 2;
    a.green = flags & 4;
    a.elderly_care = flags & 8;
    a.digital_economy = flags & 16;
    out.push_back(std::move(a));
  }
  return out;
}

void CheckRefused(const Result<std::shared_ptr<const Rules>>& r, std::string_view input) {
  FUZZ_CHECK(r.status().code() == Status::Code::kInvalidArgument,
             "refused with code %d, not InvalidArgument: %s\n  input: %s",
             static_cast<int>(r.status().code()), r.status().message().c_str(),
             Printable(input).c_str());
  const std::string& m = r.status().message();
  const size_t colon = m.find(": ");
  FUZZ_CHECK(colon != std::string::npos && colon > 0 && colon + 2 < m.size(),
             "message is not FIELD: REASON: %s", Printable(m).c_str());
}

void CheckAccepted(const Rules& rules, const Json& root, std::string_view input) {
  FUZZ_CHECK(rules.text() == input, "text() is not the file as given");
  FUZZ_CHECK(rules.version() == root["version"].get<std::string>(), "version differs");
  const Json& categories = root["categories"];
  FUZZ_CHECK(
      rules.category_count() == 1 + categories.size() && categories.size() <= kRuleCategoriesMax,
      "category count %zu for %zu categories", rules.category_count(), categories.size());
  FUZZ_CHECK(rules.CategoryName(Category::kTotal) == "TOTAL", "id 0 is not TOTAL");
  for (size_t i = 0; i < categories.size(); ++i) {
    const std::string name = categories[i]["name"].get<std::string>();
    const auto id = static_cast<Category>(i + 1);
    FUZZ_CHECK(IsRuleName(name) && name != "TOTAL", "accepted a bad name %s", name.c_str());
    FUZZ_CHECK(rules.CategoryName(id) == name, "category %zu is not named %s", i, name.c_str());
    FUZZ_CHECK(rules.FindCategory(name) == id, "FindCategory(%s) is not %zu", name.c_str(), i + 1);
  }
  auto groups = root.find("region_groups");
  const size_t group_count = groups == root.end() ? 0 : groups->size();
  FUZZ_CHECK(rules.region_group_count() == group_count && group_count <= kRegionGroupsMax,
             "%zu region groups for %zu", rules.region_group_count(), group_count);
  for (size_t g = 0; g < group_count; ++g) {
    FUZZ_CHECK(rules.RegionGroupName(g) == (*groups)[g]["name"].get<std::string>(),
               "region group %zu misnamed", g);
  }
  Reference reference(root);
  const RuleMask all =
      categories.size() == 64 ? ~RuleMask{0} : (RuleMask{1} << categories.size()) - 1;
  for (const LoanAttributes& a : Loans(root, std::hash<std::string_view>{}(input))) {
    const RuleMask mask = rules.Classify(a);
    FUZZ_CHECK((mask & ~all) == 0, "a bit beyond the file's categories");
    FUZZ_CHECK(rules.Classify(a) == mask, "Classify is not deterministic");
    const RuleMask expected = reference.Classify(a);
    FUZZ_CHECK(mask == expected,
               "compiled %llx, reading %llx; industry %s region %s term %u credit %lld\n  file: %s",
               static_cast<unsigned long long>(mask), static_cast<unsigned long long>(expected),
               Printable(a.industry_code).c_str(), Printable(a.region_code).c_str(),
               static_cast<unsigned>(a.term_months), static_cast<long long>(a.credit_line_fen),
               Printable(input, 400).c_str());
    FUZZ_CHECK(rules.Names(mask).size() == 1 + static_cast<size_t>(__builtin_popcountll(mask)),
               "Names() does not list TOTAL and each category of the mask");
    if (rules.category_count() <= 32) {
      FUZZ_CHECK((rules.ClassifyWithTotal(a) & 1) == 1, "TOTAL not in ClassifyWithTotal");
    }
    FUZZ_CHECK(rules.RegionGroups(a.region_code) == reference.Groups(a.region_code),
               "region groups of %s differ from the reading", Printable(a.region_code).c_str());
  }
}

// Nesting depth of JSON text (brackets outside strings).
size_t JsonDepth(std::string_view text) {
  size_t depth = 0, max = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max = std::max(max, ++depth);
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return max;
}

// Property 2: the same JSON, formatted differently. nlohmann's dump is
// recursive: not for JSON nested deeper than any rules file may be (the
// parser's own walks are bounded; schema_rules_test has a 100,000-deep file).
void CheckReformatted(const Result<std::shared_ptr<const Rules>>& first, const Json& root,
                      std::string_view input) {
  if (JsonDepth(input) > 4 * kRuleDepthMax) return;
  const std::string again = root.dump();
  if (again.size() > kRulesFileBytesMax || input.size() > kRulesFileBytesMax) return;
  const Result<std::shared_ptr<const Rules>> second = Rules::Parse(again);
  FUZZ_CHECK(first.ok() == second.ok(), "accepted as %s, %s reformatted: %s\n  input: %s",
             first.ok() ? "given" : "refused", second.ok() ? "accepted" : "refused",
             (first.ok() ? second.status().message() : first.status().message()).c_str(),
             Printable(input, 400).c_str());
  if (!first.ok()) {
    FUZZ_CHECK(first.status().message() == second.status().message(),
               "refused for another reason reformatted: %s vs %s", first.status().message().c_str(),
               second.status().message().c_str());
    return;
  }
  const Rules& a = **first;
  const Rules& b = **second;
  FUZZ_CHECK(a.version() == b.version() && a.category_count() == b.category_count() &&
                 a.region_group_count() == b.region_group_count(),
             "reformatted file reads differently");
  for (const LoanAttributes& loan : Loans(root, 1)) {
    FUZZ_CHECK(a.Classify(loan) == b.Classify(loan) &&
                   a.RegionGroups(loan.region_code) == b.RegionGroups(loan.region_code),
               "reformatted file classifies differently");
  }
}

}  // namespace
}  // namespace loanledger::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loanledger;
  using namespace loanledger::fuzz;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const Result<std::shared_ptr<const Rules>> parsed = Rules::Parse(input);
  if (!parsed.ok()) CheckRefused(parsed, input);
  if (size > kRulesFileBytesMax) return 0;
  const Json root = Json::parse(input.begin(), input.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    FUZZ_CHECK(!parsed.ok(), "accepted a file that is not JSON");
    return 0;
  }
  if (parsed.ok()) CheckAccepted(**parsed, root, input);
  CheckReformatted(parsed, root, input);
  return 0;
}
