// Classifier: the rules (schema/rules.h) a ledger classifies loans with,
// and the interned category masks its loan slots point to. A LoanSlot has
// 16 bits for its categories (it fills one cache line) while a rules file
// may have 64 categories: the slot holds the id of its mask in a table of
// the distinct masks seen (a few hundred in practice), or kMaskUnresolved,
// which is resolved from the slot's attributes when the slot is next
// touched (slots read from a snapshot, and every slot after a rules
// change, start so). Internal to storage/.
//
// Thread safety: Intern and Resolve (which interns) are for the writer
// only (under write_mu_ and loans_mu_ exclusive); MaskOf is const and may
// be called with loans_mu_ held shared.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "schema/check.h"
#include "schema/rules.h"
#include "storage/loan_slot.h"

namespace loanledger::storage {

class Classifier {
 public:
  explicit Classifier(std::shared_ptr<const Rules> rules) : rules_(std::move(rules)) {
    LL_CHECK(rules_ != nullptr);
  }

  const std::shared_ptr<const Rules>& rules() const { return rules_; }

  // Classifies a and returns its mask's id (kMaskUnresolved once the
  // table is full: then every use classifies again, correct but slower).
  uint16_t Intern(const LoanAttributes& a) { return InternMask(rules_->Classify(a)); }

  uint16_t InternMask(RuleMask mask) {
    if (auto it = ids_.find(mask); it != ids_.end()) return it->second;
    if (masks_.size() >= kMaskUnresolved) return kMaskUnresolved;
    const auto id = static_cast<uint16_t>(masks_.size());
    masks_.push_back(mask);
    ids_.emplace(mask, id);
    return id;
  }

  // The slot's mask, interning it if unresolved. REQUIRES slot.exists.
  RuleMask Resolve(LoanSlot* slot) {
    if (slot->mask != kMaskUnresolved) return masks_[slot->mask];
    const RuleMask mask = rules_->Classify(slot->attributes.Unpack());
    slot->mask = InternMask(mask);
    return mask;
  }

  // The slot's mask without changing anything.
  RuleMask MaskOf(const LoanSlot& slot) const {
    if (slot.mask != kMaskUnresolved) return masks_[slot.mask];
    return rules_->Classify(slot.attributes.Unpack());
  }

  // The region groups of a region code given as a number (PackedAttributes).
  RegionGroupMask GroupsOf(uint32_t region) {
    if (auto it = groups_.find(region); it != groups_.end()) return it->second;
    char text[6];
    uint32_t r = region;
    for (int i = 5; i >= 0; --i, r /= 10) text[i] = static_cast<char>('0' + r % 10);
    const RegionGroupMask g = rules_->RegionGroups(std::string_view(text, 6));
    if (groups_.size() < kRegionsCached) groups_.emplace(region, g);
    return g;
  }

  size_t interned() const { return masks_.size(); }
  // Mask ids -> masks (a loan snapshot copies it with the slots it reads).
  const std::vector<RuleMask>& masks() const { return masks_; }

 private:
  std::shared_ptr<const Rules> rules_;
  std::vector<RuleMask> masks_;  // id -> mask
  std::unordered_map<RuleMask, uint16_t> ids_;
  static constexpr size_t kRegionsCached = 1u << 20;  // there are ~3,000 region codes
  std::unordered_map<uint32_t, RegionGroupMask> groups_;
};

}  // namespace loanledger::storage
