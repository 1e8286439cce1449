// An institution's partition (docs/cluster.md, "Partitions"): FNV-1a-64 of
// its id mod P, and the explicit partition map file.
#include <algorithm>
#include <map>
#include <string>
#include <string_view>

#include "cluster/cluster.h"
#include "schema/check.h"
#include "schema/event.h"

namespace loanledger::cluster {

Result<std::string> ParsePartitionMap(std::string_view text, uint32_t partitions) {
  std::map<std::string, uint32_t> map;
  size_t line_no = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    line = line.substr(first);
    const size_t space = line.find_first_of(" \t");
    const std::string where = "partition map line " + std::to_string(line_no) + ": ";
    if (space == std::string_view::npos) {
      return Status::InvalidArgument(where + "expected 'INSTITUTION_ID PARTITION'");
    }
    const std::string id(line.substr(0, space));
    std::string_view number = line.substr(space);
    number.remove_prefix(std::min(number.find_first_not_of(" \t"), number.size()));
    while (!number.empty() && (number.back() == ' ' || number.back() == '\t'))
      number.remove_suffix(1);
    if (!IsValidInstitutionId(id)) {
      return Status::InvalidArgument(where + "bad institution_id \"" + id + "\"");
    }
    uint32_t p = 0;
    bool digits = !number.empty() && number.size() <= 4;
    for (char c : number) {
      if (c < '0' || c > '9')
        digits = false;
      else
        p = p * 10 + static_cast<uint32_t>(c - '0');
    }
    if (!digits || p >= partitions) {
      return Status::InvalidArgument(where + "partition \"" + std::string(number) +
                                     "\" is not a number below " + std::to_string(partitions));
    }
    if (!map.emplace(id, p).second) {
      return Status::InvalidArgument(where + id + " is placed twice");
    }
  }
  std::string out;
  for (const auto& [id, p] : map) out += id + " " + std::to_string(p) + "\n";
  return out;
}

uint32_t PartitionOf(std::string_view institution_id, uint32_t partitions) {
  LL_CHECK(partitions >= 1);
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : institution_id) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return static_cast<uint32_t>(h % partitions);
}

}  // namespace loanledger::cluster
