// Category rules as data (docs/categories.md): a JSON rules file, parsed and checked
// once, compiled into a flat program that classifies a loan's attributes in
// a few dozen instructions. The table of docs/categories.md is rules/default.json, compiled into
// the binary (DefaultRules()).
//
// Category ids: TOTAL is 0 (implicit, every loan); the file's categories are
// 1..64 in file order. The default file's order equals the pinned enum of
// schema/category.h, so its ids are the same on disk and on the wire.
//
// Thread safety: a Rules is immutable once built; share it by
// std::shared_ptr<const Rules>.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schema/category.h"
#include "schema/event.h"
#include "schema/status.h"

namespace loanledger {

inline constexpr size_t kRuleCategoriesMax = 64;  // docs/categories.md; TOTAL not counted
inline constexpr size_t kRegionGroupsMax = 32;    // docs/categories.md
inline constexpr size_t kRuleNameBytesMax = 40;   // [A-Z][A-Z0-9_]{0,39}
inline constexpr size_t kRuleDepthMax = 32;       // nesting of all/any/not

// A category or region group name: [A-Z][A-Z0-9_]{0,39}.
bool IsRuleName(std::string_view s);
inline constexpr size_t kRulesFileBytesMax = 1u << 20;  // a rules file is small

// Bit i set = member of the file's category i (Category id i + 1). TOTAL,
// which every loan is in, has no bit.
using RuleMask = uint64_t;
// Bit g set = the region code matches region group g.
using RegionGroupMask = uint32_t;

class Rules {
 public:
  // Parses and compiles a rules file. A bad file is InvalidArgument with a
  // message "FIELD: REASON", FIELD a path such as
  // `categories[3].rule.all[1].term_months_gt`.
  static Result<std::shared_ptr<const Rules>> Parse(std::string_view text);

  const std::string& version() const { return version_; }
  const std::string& text() const { return text_; }  // the file as given

  // Categories with TOTAL: 1 + the file's categories.
  size_t category_count() const { return 1 + categories_.size(); }
  // "TOTAL" for 0. REQUIRES: id < category_count().
  std::string_view CategoryName(Category id) const;
  std::optional<Category> FindCategory(std::string_view name) const;

  // The file's categories the loan is in. Pure, allocation-free.
  RuleMask Classify(const LoanAttributes& a) const;
  // As a CategoryMask (bit 0 TOTAL); REQUIRES category_count() <= 32.
  CategoryMask ClassifyWithTotal(const LoanAttributes& a) const {
    return CategoryMask{1} | static_cast<CategoryMask>(Classify(a) << 1);
  }
  // Names of TOTAL and the categories in `mask`, in file order.
  std::vector<std::string> Names(RuleMask mask) const;

  size_t region_group_count() const { return region_groups_.size(); }
  const std::string& RegionGroupName(size_t g) const { return region_groups_[g].name; }
  // Groups whose prefix list matches the region code.
  RegionGroupMask RegionGroups(std::string_view region_code) const;

  // Compiled program (rules.cc). Public for the compiler's helpers only.
  enum class Op : uint8_t {
    kIndustryPrefix,  // arg: index into prefix_sets_
    kHighTech,
    kBorrowerType,    // arg: bitmask over BorrowerType values
    kEnterpriseSize,  // arg: bitmask over EnterpriseSize values
    kTermGt,          // arg: months
    kTermLe,          // arg: months
    kCreditLe,        // arg: fen
    kFlag,            // arg: 0..4 (srdi, tech_enterprise, green, elderly_care, digital_economy)
    kRegionPrefix,    // arg: index into prefix_sets_
    kCategory,        // arg: file index of an earlier category
    kAll,             // arg: number of children; children follow
    kAny,
    kNot,   // one child follows
    kTrue,  // {"category": "TOTAL"}
  };
  struct Node {
    Op op;
    uint32_t size;  // nodes in this subtree, itself included (to skip it)
    int64_t arg;
  };
  // Prefixes of one list, by length: a code matches when its first `len`
  // characters equal one of `keys` (sorted packed values).
  struct PrefixSet {
    struct ByLength {
      uint8_t len;
      std::vector<uint64_t> keys;
    };
    std::vector<ByLength> lengths;
    bool Matches(std::string_view code) const;
  };

 private:
  struct CategoryDef {
    std::string name;
    uint32_t first_node;  // its rule's root in nodes_
  };
  struct RegionGroup {
    std::string name;
    uint32_t prefix_set;
  };
  friend class RulesCompiler;

  bool Eval(uint32_t node, const LoanAttributes& a, RuleMask done) const;

  std::string version_;
  std::string text_;
  std::vector<CategoryDef> categories_;
  std::vector<RegionGroup> region_groups_;
  std::vector<Node> nodes_;
  std::vector<PrefixSet> prefix_sets_;
};

// rules/default.json, compiled in: the table of docs/categories.md.
std::string_view DefaultRulesText();
const std::shared_ptr<const Rules>& DefaultRules();

}  // namespace loanledger
