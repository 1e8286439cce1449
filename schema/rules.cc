#include "schema/rules.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "schema/check.h"

namespace loanledger {

using Json = nlohmann::json;

namespace {

// The first `len` characters of s as one number (codes are at most 6
// characters; 8 fit).
uint64_t PackPrefix(std::string_view s, size_t len) {
  uint64_t v = 0;
  for (size_t i = 0; i < len; ++i) v = (v << 8) | static_cast<uint8_t>(s[i]);
  return v;
}

bool IsIndustryPrefix(std::string_view s) {
  if (s.empty() || s.size() > 5 || s[0] < 'A' || s[0] > 'T') return false;
  return std::all_of(s.begin() + 1, s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsRegionPrefix(std::string_view s) {
  if (s.empty() || s.size() > 6) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

constexpr std::string_view kFlags[] = {"srdi", "tech_enterprise", "green", "elderly_care",
                                       "digital_economy"};

std::string TypeName(const Json& j) { return j.type_name(); }

// A key of the file as it appears in an error's FIELD: bare when it looks like
// a field name, else JSON-quoted, so that "" or a key holding ": " still reads
// as one field (fuzz_rules found {"": []} giving ": unknown field").
std::string KeyName(const std::string& key) {
  const bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
  return bare ? key : Json(key).dump(-1, ' ', true, Json::error_handler_t::replace);
}

// JSON levels of a rule nested kRuleDepthMax deep (an all/any level is an
// object and an array), with room to spare.
constexpr size_t kRuleJsonDepthMax = 2 * kRuleDepthMax + 4;

// Every name a rule (even a malformed one) refers to with "category", down
// to kRuleJsonDepthMax: deeper, the rule is refused for its depth when it is
// compiled, and an unbounded walk would overflow the stack on a file of
// 100,000 nested "not" (found while writing fuzz_rules; schema_rules_test).
void CollectRefs(const Json& j, std::set<std::string>* out, size_t depth = 0) {
  if (depth > kRuleJsonDepthMax) return;
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "category" && it.value().is_string())
        out->insert(it.value().get<std::string>());
      CollectRefs(it.value(), out, depth + 1);
    }
  } else if (j.is_array()) {
    for (const Json& e : j) CollectRefs(e, out, depth + 1);
  }
}

}  // namespace

bool IsRuleName(std::string_view s) {
  if (s.empty() || s.size() > kRuleNameBytesMax || s[0] < 'A' || s[0] > 'Z') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool Rules::PrefixSet::Matches(std::string_view code) const {
  for (const ByLength& l : lengths) {
    if (code.size() < l.len) break;  // sorted by length
    if (std::binary_search(l.keys.begin(), l.keys.end(), PackPrefix(code, l.len))) return true;
  }
  return false;
}

// Builds a Rules from parsed JSON; the first error wins.
class RulesCompiler {
 public:
  explicit RulesCompiler(Rules* r) : r_(r) {}

  Status Compile(const Json& root) {
    if (!root.is_object()) return Error("(file)", "must be a JSON object, got " + TypeName(root));
    for (auto it = root.begin(); it != root.end(); ++it) {
      if (it.key() != "version" && it.key() != "categories" && it.key() != "region_groups")
        return Error(KeyName(it.key()),
                     "unknown field (expected version, categories, region_groups)");
    }
    if (Status s = Version(root); !s.ok()) return s;
    if (Status s = Categories(root); !s.ok()) return s;
    return RegionGroups(root);
  }

 private:
  static Status Error(const std::string& field, const std::string& reason) {
    return Status::InvalidArgument(field + ": " + reason);
  }

  Status Version(const Json& root) {
    auto it = root.find("version");
    if (it == root.end()) return Error("version", "missing");
    if (!it->is_string()) return Error("version", "must be a string, got " + TypeName(*it));
    // Any printable text (the parser has checked it is UTF-8): "2025年版" as
    // well as "2024-default"; no control characters, C0 or C1.
    const std::string v = it->get<std::string>();
    size_t characters = 0;
    bool printable = true;
    for (size_t i = 0; i < v.size(); ++i) {
      const auto b = static_cast<unsigned char>(v[i]);
      if ((b & 0xc0) != 0x80) ++characters;  // not a continuation byte
      if (b < 0x20 || b == 0x7f) printable = false;
      if (b == 0xc2 && i + 1 < v.size() && static_cast<unsigned char>(v[i + 1]) < 0xa0)
        printable = false;  // U+0080..U+009F
    }
    if (characters == 0 || characters > 64 || !printable) {
      return Error("version", "must be 1..64 printable characters");
    }
    r_->version_ = v;
    return Status::Ok();
  }

  Status Categories(const Json& root) {
    auto it = root.find("categories");
    if (it == root.end()) return Error("categories", "missing");
    if (!it->is_array()) return Error("categories", "must be an array, got " + TypeName(*it));
    if (it->size() > kRuleCategoriesMax) {
      return Error("categories", "too many categories: " + std::to_string(it->size()) +
                                     " (at most " + std::to_string(kRuleCategoriesMax) + ")");
    }
    // Names first: a reference names a category of the file, earlier or later.
    for (size_t i = 0; i < it->size(); ++i) {
      const Json& c = (*it)[i];
      const std::string field = "categories[" + std::to_string(i) + "]";
      if (!c.is_object()) return Error(field, "must be an object, got " + TypeName(c));
      for (auto k = c.begin(); k != c.end(); ++k) {
        if (k.key() != "name" && k.key() != "rule")
          return Error(field + "." + KeyName(k.key()), "unknown field (expected name, rule)");
      }
      auto name = c.find("name");
      if (name == c.end()) return Error(field + ".name", "missing");
      if (!name->is_string())
        return Error(field + ".name", "must be a string, got " + TypeName(*name));
      const std::string n = name->get<std::string>();
      if (n == "TOTAL") return Error(field + ".name", "TOTAL is implicit; it cannot be defined");
      if (!IsRuleName(n))
        return Error(field + ".name", "bad name \"" + n + "\" (must match [A-Z][A-Z0-9_]{0,39})");
      if (!index_.emplace(n, i).second)
        return Error(field + ".name", "duplicate name \"" + n + "\"");
      if (c.find("rule") == c.end()) return Error(field + ".rule", "missing");
      names_.push_back(n);
    }
    categories_json_ = &*it;
    for (size_t i = 0; i < it->size(); ++i) {
      current_ = i;
      const uint32_t root_node = static_cast<uint32_t>(r_->nodes_.size());
      const std::string field = "categories[" + std::to_string(i) + "].rule";
      if (Status s = Rule((*it)[i]["rule"], field, 0); !s.ok()) return s;
      r_->categories_.push_back(Rules::CategoryDef{names_[i], root_node});
    }
    return Status::Ok();
  }

  Status RegionGroups(const Json& root) {
    auto it = root.find("region_groups");
    if (it == root.end()) return Status::Ok();  // optional
    if (!it->is_array()) return Error("region_groups", "must be an array, got " + TypeName(*it));
    if (it->size() > kRegionGroupsMax) {
      return Error("region_groups", "too many region groups: " + std::to_string(it->size()) +
                                        " (at most " + std::to_string(kRegionGroupsMax) + ")");
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < it->size(); ++i) {
      const Json& g = (*it)[i];
      const std::string field = "region_groups[" + std::to_string(i) + "]";
      if (!g.is_object()) return Error(field, "must be an object, got " + TypeName(g));
      for (auto k = g.begin(); k != g.end(); ++k) {
        if (k.key() != "name" && k.key() != "region_prefix")
          return Error(field + "." + KeyName(k.key()),
                       "unknown field (expected name, region_prefix)");
      }
      auto name = g.find("name");
      if (name == g.end()) return Error(field + ".name", "missing");
      if (!name->is_string())
        return Error(field + ".name", "must be a string, got " + TypeName(*name));
      const std::string n = name->get<std::string>();
      if (!IsRuleName(n))
        return Error(field + ".name", "bad name \"" + n + "\" (must match [A-Z][A-Z0-9_]{0,39})");
      if (!seen.insert(n).second) return Error(field + ".name", "duplicate name \"" + n + "\"");
      auto prefixes = g.find("region_prefix");
      if (prefixes == g.end()) return Error(field + ".region_prefix", "missing");
      Result<uint32_t> set =
          PrefixList(*prefixes, field + ".region_prefix", IsRegionPrefix, "1..6 digits");
      if (!set.ok()) return set.status();
      r_->region_groups_.push_back(Rules::RegionGroup{n, *set});
    }
    return Status::Ok();
  }

  // A non-empty list of prefixes into a new PrefixSet; its index.
  Result<uint32_t> PrefixList(const Json& j, const std::string& field,
                              bool (*valid)(std::string_view), const char* form) {
    if (!j.is_array()) return Error(field, "must be an array of strings, got " + TypeName(j));
    if (j.empty()) return Error(field, "must not be empty");
    std::map<uint8_t, std::vector<uint64_t>> by_length;
    for (size_t i = 0; i < j.size(); ++i) {
      const std::string f = field + "[" + std::to_string(i) + "]";
      if (!j[i].is_string()) return Error(f, "must be a string, got " + TypeName(j[i]));
      const std::string p = j[i].get<std::string>();
      if (!valid(p)) return Error(f, "bad prefix \"" + p + "\" (" + form + ")");
      by_length[static_cast<uint8_t>(p.size())].push_back(PackPrefix(p, p.size()));
    }
    Rules::PrefixSet set;
    for (auto& [len, keys] : by_length) {
      std::sort(keys.begin(), keys.end());
      keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
      set.lengths.push_back(Rules::PrefixSet::ByLength{len, std::move(keys)});
    }
    r_->prefix_sets_.push_back(std::move(set));
    return static_cast<uint32_t>(r_->prefix_sets_.size() - 1);
  }

  // A non-empty list of enum names into a bitmask of their values.
  template <typename Parse>
  Result<int64_t> EnumList(const Json& j, const std::string& field, Parse parse,
                           const char* allowed) {
    if (!j.is_array()) return Error(field, "must be an array of strings, got " + TypeName(j));
    if (j.empty()) return Error(field, "must not be empty");
    int64_t bits = 0;
    for (size_t i = 0; i < j.size(); ++i) {
      const std::string f = field + "[" + std::to_string(i) + "]";
      if (!j[i].is_string()) return Error(f, "must be a string, got " + TypeName(j[i]));
      const std::string v = j[i].get<std::string>();
      auto parsed = parse(v);
      if (!parsed) return Error(f, "unknown value \"" + v + "\" (one of " + allowed + ")");
      bits |= int64_t{1} << static_cast<int>(*parsed);
    }
    return bits;
  }

  Result<int64_t> Integer(const Json& j, const std::string& field, int64_t max) {
    if (!j.is_number_integer()) return Error(field, "must be an integer, got " + TypeName(j));
    if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(max))
      return Error(field, "must be within 0.." + std::to_string(max));
    const int64_t v = j.get<int64_t>();
    if (v < 0 || v > max) return Error(field, "must be within 0.." + std::to_string(max));
    return v;
  }

  void Emit(Rules::Op op, int64_t arg) { r_->nodes_.push_back(Rules::Node{op, 1, arg}); }

  Status Rule(const Json& j, const std::string& field, size_t depth) {
    if (depth > kRuleDepthMax)
      return Error(field, "rules nested deeper than " + std::to_string(kRuleDepthMax));
    if (!j.is_object()) return Error(field, "a rule must be an object, got " + TypeName(j));
    if (j.size() != 1) {
      std::string keys;
      for (auto it = j.begin(); it != j.end(); ++it)
        keys += (keys.empty() ? "" : ", ") + KeyName(it.key());
      return Error(field, "a rule object holds exactly one predicate or combinator, found " +
                              std::to_string(j.size()) + (keys.empty() ? "" : " (" + keys + ")"));
    }
    const std::string key = j.begin().key();
    const Json& v = j.begin().value();
    const std::string f = field + "." + KeyName(key);
    const size_t start = r_->nodes_.size();
    using Op = Rules::Op;
    if (key == "all" || key == "any") {
      if (!v.is_array()) return Error(f, "must be an array of rules, got " + TypeName(v));
      if (v.empty()) return Error(f, "must not be empty");
      Emit(key == "all" ? Op::kAll : Op::kAny, static_cast<int64_t>(v.size()));
      for (size_t i = 0; i < v.size(); ++i) {
        if (Status s = Rule(v[i], f + "[" + std::to_string(i) + "]", depth + 1); !s.ok()) return s;
      }
    } else if (key == "not") {
      Emit(Op::kNot, 1);
      if (Status s = Rule(v, f, depth + 1); !s.ok()) return s;
    } else if (key == "industry_prefix" || key == "region_prefix") {
      const bool industry = key == "industry_prefix";
      Result<uint32_t> set = PrefixList(v, f, industry ? IsIndustryPrefix : IsRegionPrefix,
                                        industry ? "a letter A-T and 0..4 digits" : "1..6 digits");
      if (!set.ok()) return set.status();
      Emit(industry ? Op::kIndustryPrefix : Op::kRegionPrefix, *set);
    } else if (key == "industry_table") {
      if (!v.is_string()) return Error(f, "must be a string, got " + TypeName(v));
      if (v.get<std::string>() != "high_tech_manufacturing") {
        return Error(
            f, "unknown table \"" + v.get<std::string>() + "\" (one of high_tech_manufacturing)");
      }
      Emit(Op::kHighTech, 0);
    } else if (key == "borrower_type") {
      Result<int64_t> bits = EnumList(
          v, f, [](std::string_view s) { return ParseBorrowerType(s); },
          "ENTERPRISE, INDIVIDUAL_BUSINESS, SMALL_MICRO_OWNER, INDIVIDUAL");
      if (!bits.ok()) return bits.status();
      Emit(Op::kBorrowerType, *bits);
    } else if (key == "enterprise_size") {
      Result<int64_t> bits = EnumList(
          v, f, [](std::string_view s) { return ParseEnterpriseSize(s); },
          "NA, LARGE, MEDIUM, SMALL, MICRO");
      if (!bits.ok()) return bits.status();
      Emit(Op::kEnterpriseSize, *bits);
    } else if (key == "term_months_gt" || key == "term_months_le") {
      Result<int64_t> n = Integer(v, f, 65535);
      if (!n.ok()) return n.status();
      Emit(key == "term_months_gt" ? Op::kTermGt : Op::kTermLe, *n);
    } else if (key == "credit_line_fen_le") {
      Result<int64_t> n = Integer(v, f, INT64_MAX);
      if (!n.ok()) return n.status();
      Emit(Op::kCreditLe, *n);
    } else if (key == "flag") {
      if (!v.is_string()) return Error(f, "must be a string, got " + TypeName(v));
      const std::string name = v.get<std::string>();
      auto it = std::find(std::begin(kFlags), std::end(kFlags), name);
      if (it == std::end(kFlags)) {
        return Error(f, "unknown flag \"" + name +
                            "\" (one of srdi, tech_enterprise, green, elderly_care, "
                            "digital_economy)");
      }
      Emit(Op::kFlag, it - std::begin(kFlags));
    } else if (key == "category") {
      if (Status s = Reference(v, f); !s.ok()) return s;
    } else {
      return Error(f, "unknown predicate \"" + key +
                          "\" (predicates: industry_prefix, industry_table, borrower_type, "
                          "enterprise_size, term_months_gt, term_months_le, credit_line_fen_le, "
                          "flag, region_prefix, category; combinators: all, any, not)");
    }
    r_->nodes_[start].size = static_cast<uint32_t>(r_->nodes_.size() - start);
    return Status::Ok();
  }

  Status Reference(const Json& v, const std::string& f) {
    if (!v.is_string()) return Error(f, "must be a string, got " + TypeName(v));
    const std::string name = v.get<std::string>();
    if (name == "TOTAL") {
      Emit(Rules::Op::kTrue, 0);
      return Status::Ok();
    }
    auto it = index_.find(name);
    if (it == index_.end()) return Error(f, "unknown category \"" + name + "\"");
    const std::string& self = names_[current_];
    if (it->second == current_) return Error(f, "cycle: " + self + " refers to itself");
    if (it->second > current_) {
      std::vector<std::string> path;
      if (Reaches(it->second, current_, &path)) {
        std::string cycle = self;
        for (const std::string& p : path) cycle += " -> " + p;
        return Error(f, "cycle: " + cycle);
      }
      return Error(f, "category \"" + name + "\" is defined after " + self +
                          "; a rule may refer only to an earlier category");
    }
    Emit(Rules::Op::kCategory, static_cast<int64_t>(it->second));
    return Status::Ok();
  }

  // True when category `from`'s rule refers, directly or not, to `to`;
  // *path then lists the categories from `from` to `to`.
  bool Reaches(size_t from, size_t to, std::vector<std::string>* path) {
    std::vector<size_t> stack = {from};
    std::map<size_t, size_t> parent = {{from, from}};
    while (!stack.empty()) {
      const size_t c = stack.back();
      stack.pop_back();
      std::set<std::string> refs;
      CollectRefs((*categories_json_)[c]["rule"], &refs);
      for (const std::string& r : refs) {
        auto it = index_.find(r);
        if (it == index_.end() || parent.count(it->second)) continue;
        parent[it->second] = c;
        if (it->second == to) {
          std::vector<std::string> back;
          for (size_t x = to; x != from; x = parent[x]) back.push_back(names_[x]);
          back.push_back(names_[from]);
          path->assign(back.rbegin(), back.rend());
          return true;
        }
        stack.push_back(it->second);
      }
    }
    return false;
  }

  Rules* r_;
  std::map<std::string, size_t> index_;  // category name -> file index
  std::vector<std::string> names_;
  const Json* categories_json_ = nullptr;
  size_t current_ = 0;
};

Result<std::shared_ptr<const Rules>> Rules::Parse(std::string_view text) {
  if (text.size() > kRulesFileBytesMax) {
    return Status::InvalidArgument("(file): larger than " + std::to_string(kRulesFileBytesMax) +
                                   " bytes");
  }
  Json root = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) {
    // Parse again with exceptions for the position of the error.
    std::string where;
    try {
      const Json again = Json::parse(text.begin(), text.end());
      where = again.type_name();  // not reached: the first parse failed
    } catch (const Json::exception& e) {
      where = e.what();
    }
    return Status::InvalidArgument("(file): not valid JSON: " + where);
  }
  auto rules = std::make_shared<Rules>();
  RulesCompiler compiler(rules.get());
  if (Status s = compiler.Compile(root); !s.ok()) return s;
  rules->text_ = std::string(text);
  LL_CHECK(rules->categories_.size() <= kRuleCategoriesMax);
  LL_CHECK(rules->region_groups_.size() <= kRegionGroupsMax);
  return std::shared_ptr<const Rules>(std::move(rules));
}

std::string_view Rules::CategoryName(Category id) const {
  const auto i = static_cast<size_t>(id);
  LL_CHECK(i < category_count());
  return i == 0 ? std::string_view("TOTAL") : std::string_view(categories_[i - 1].name);
}

std::optional<Category> Rules::FindCategory(std::string_view name) const {
  if (name == "TOTAL") return Category::kTotal;
  for (size_t i = 0; i < categories_.size(); ++i) {
    if (categories_[i].name == name) return static_cast<Category>(i + 1);
  }
  return std::nullopt;
}

std::vector<std::string> Rules::Names(RuleMask mask) const {
  std::vector<std::string> names = {"TOTAL"};
  for (size_t i = 0; i < categories_.size(); ++i) {
    if (mask & (RuleMask{1} << i)) names.push_back(categories_[i].name);
  }
  return names;
}

bool Rules::Eval(uint32_t i, const LoanAttributes& a, RuleMask done) const {
  const Node& n = nodes_[i];
  switch (n.op) {
    case Op::kIndustryPrefix:
      return prefix_sets_[n.arg].Matches(a.industry_code);
    case Op::kHighTech:
      return IsHighTechManufacturing(a.industry_code);
    case Op::kBorrowerType:
      return (n.arg >> static_cast<int>(a.borrower_type)) & 1;
    case Op::kEnterpriseSize:
      return (n.arg >> static_cast<int>(a.enterprise_size)) & 1;
    case Op::kTermGt:
      return a.term_months > n.arg;
    case Op::kTermLe:
      return a.term_months <= n.arg;
    case Op::kCreditLe:
      return a.credit_line_fen <= n.arg;
    case Op::kFlag:
      switch (n.arg) {
        case 0:
          return a.srdi;
        case 1:
          return a.tech_enterprise;
        case 2:
          return a.green;
        case 3:
          return a.elderly_care;
        default:
          return a.digital_economy;
      }
    case Op::kRegionPrefix:
      return prefix_sets_[n.arg].Matches(a.region_code);
    case Op::kCategory:
      return (done >> n.arg) & 1;
    case Op::kAll: {
      uint32_t c = i + 1;
      for (int64_t k = 0; k < n.arg; ++k, c += nodes_[c].size) {
        if (!Eval(c, a, done)) return false;
      }
      return true;
    }
    case Op::kAny: {
      uint32_t c = i + 1;
      for (int64_t k = 0; k < n.arg; ++k, c += nodes_[c].size) {
        if (Eval(c, a, done)) return true;
      }
      return false;
    }
    case Op::kNot:
      return !Eval(i + 1, a, done);
    case Op::kTrue:
      return true;
  }
  return false;
}

RuleMask Rules::Classify(const LoanAttributes& a) const {
  RuleMask mask = 0;
  for (size_t i = 0; i < categories_.size(); ++i) {
    if (Eval(categories_[i].first_node, a, mask)) mask |= RuleMask{1} << i;
  }
  return mask;
}

RegionGroupMask Rules::RegionGroups(std::string_view region_code) const {
  RegionGroupMask mask = 0;
  for (size_t g = 0; g < region_groups_.size(); ++g) {
    if (prefix_sets_[region_groups_[g].prefix_set].Matches(region_code))
      mask |= RegionGroupMask{1} << g;
  }
  return mask;
}

const std::shared_ptr<const Rules>& DefaultRules() {
  static const std::shared_ptr<const Rules> rules = [] {
    Result<std::shared_ptr<const Rules>> r = Rules::Parse(DefaultRulesText());
    LL_CHECK_MSG(r.ok(), r.status().message().c_str());
    return std::move(r).value();
  }();
  return rules;
}

}  // namespace loanledger
