// Bearer-token authentication (docs/operations.md). The tokens file holds SHA-256
// hashes only; a Hello's token is hashed (OpenSSL EVP) and looked up.
//
// Tokens file: one token per line,
//   <sha256-hex-of-token> <role> <institution_id-or-dash> [name]
// role is institution|regulator|admin; an institution token names a valid
// institution id (docs/data.md), the others a dash. `#` starts a comment; blank
// lines are ignored. `loanledger token new` prints such lines.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "schema/loanledger_generated.h"
#include "schema/status.h"

namespace loanledger::server {

struct Principal {
  wire::Role role = wire::Role::NONE;
  std::string institution_id;  // set for INSTITUTION only
  std::string name;  // for logs and the journal: the file's name, else "token:<hash prefix>"
};

// The tokens in force. Reloadable (SIGHUP, docs/operations.md "Tokens"):
// Replace puts another file's tokens in force while sessions keep
// authenticating; a session already authenticated keeps its principal.
class TokenTable {
 public:
  // Reads and checks the whole file; an error names the line (never a token:
  // the file holds hashes only).
  static Result<TokenTable> Load(const std::string& path);
  static Result<TokenTable> Parse(std::string_view text, std::string_view origin);
  TokenTable(TokenTable&&) noexcept = default;
  TokenTable& operator=(TokenTable&&) noexcept = default;

  // The principal of a token, or nullptr when it is unknown or empty.
  // Thread-safe, also against Replace; the principal stays valid as long as
  // the table does.
  const Principal* Authenticate(std::string_view token) const;
  size_t size() const { return state_->current.load(std::memory_order_acquire)->size(); }

  // Puts the tokens of `next` in force (next is left empty). Thread-safe
  // against Authenticate. Earlier generations are kept until the table is
  // destroyed, so that principals handed out stay valid: a few hundred bytes
  // per token per reload, and reloads are an operator's rare act.
  void Replace(TokenTable&& next);

 private:
  using Map = std::unordered_map<std::string, Principal>;  // lowercase hex SHA-256 -> principal
  struct State {
    std::mutex mu;                                        // guards generations (Replace)
    std::vector<std::unique_ptr<const Map>> generations;  // every table ever in force
    std::atomic<const Map*> current{nullptr};             // the newest of generations
  };
  explicit TokenTable(std::unique_ptr<const Map> map);
  std::unique_ptr<State> state_;  // never null but after a move
};

// Lowercase hex SHA-256 of data (64 characters).
std::string Sha256Hex(std::string_view data);
std::string_view RoleName(wire::Role role);  // "institution", "regulator", "admin", "none"

}  // namespace loanledger::server
