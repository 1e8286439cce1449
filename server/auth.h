// Bearer-token authentication (docs/operations.md). The tokens file holds SHA-256
// hashes only; a Hello's token is hashed (OpenSSL EVP) and looked up.
//
// Tokens file: one token per line,
//   <sha256-hex-of-token> <role> <institution_id-or-dash> [name]
// role is institution|regulator|admin; an institution token names a valid
// institution id (docs/data.md), the others a dash. `#` starts a comment; blank
// lines are ignored. `loanledger token new` prints such lines.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

#include "schema/loanledger_generated.h"
#include "schema/status.h"

namespace loanledger::server {

struct Principal {
  wire::Role role = wire::Role::NONE;
  std::string institution_id;  // set for INSTITUTION only
  std::string name;  // for logs and the journal: the file's name, else "token:<hash prefix>"
};

class TokenTable {
 public:
  // Reads and checks the whole file; an error names the line.
  static Result<TokenTable> Load(const std::string& path);
  static Result<TokenTable> Parse(std::string_view text, std::string_view origin);

  // The principal of a token, or nullptr when it is unknown or empty.
  const Principal* Authenticate(std::string_view token) const;
  size_t size() const { return by_hash_.size(); }

 private:
  std::unordered_map<std::string, Principal> by_hash_;  // lowercase hex SHA-256 -> principal
};

// Lowercase hex SHA-256 of data (64 characters).
std::string Sha256Hex(std::string_view data);
std::string_view RoleName(wire::Role role);  // "institution", "regulator", "admin", "none"

}  // namespace loanledger::server
