// Shared by the fuzz targets: a byte reader over the fuzz input and the
// check macro. Built both as libFuzzer targets (clang) and as plain replay
// executables (g++, replay_main.cc), so nothing here may depend on clang's
// <fuzzer/FuzzedDataProvider.h>.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>

// A failed property is a finding: print it and abort so that libFuzzer (or
// CTest, in the replay driver) records the input that caused it.
#define FUZZ_CHECK(cond, ...)                                                                 \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "%s:%d: fuzz property failed: %s\n  ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                                      \
      std::fputc('\n', stderr);                                                               \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

namespace loanledger::fuzz {

// Consumes the fuzz input front to back. Past the end every read returns
// zeros, so any input (including the empty one) drives a complete run and a
// short seed still reaches deep code.
class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return pos_ >= size_; }
  size_t remaining() const { return empty() ? 0 : size_ - pos_; }

  uint8_t Byte() { return empty() ? 0 : data_[pos_++]; }
  bool Bool() { return (Byte() & 1) != 0; }

  // Little-endian, zero-padded at the end of the input.
  template <typename T>
  T Integer() {
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t{Byte()} << (8 * i);
    T out;
    std::memcpy(&out, &v, sizeof(T));  // well-defined for signed T too
    return out;
  }

  // A raw integer, biased towards the values where bugs live: a selector
  // byte picks the type's minimum, maximum, -1, 0 or 1 (when the
  // selector asks for it, 1 in 16 each), otherwise the next sizeof(T) bytes.
  template <typename T>
  T Boundary() {
    switch (Byte() % 16) {
      case 1:
        return std::numeric_limits<T>::min();
      case 2:
        return std::numeric_limits<T>::max();
      case 3:
        return static_cast<T>(-1);
      case 4:
        return T{0};
      case 5:
        return T{1};
      default:
        return Integer<T>();
    }
  }

  // A string of 0..max_bytes raw bytes (its length is the next byte).
  std::string String(size_t max_bytes) {
    size_t n = Byte();
    if (n > max_bytes) n = max_bytes;
    if (n > remaining()) n = remaining();
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  const uint8_t* data_;  // the fuzz input, not owned
  size_t size_;          // its length
  size_t pos_ = 0;       // next byte to read
};

// Printable rendering of a value for failure messages.
inline std::string Printable(std::string_view s, size_t max_bytes = 120) {
  std::string out;
  for (char c : s.substr(0, max_bytes)) {
    if (c >= 0x20 && c < 0x7f) {
      out += c;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    }
  }
  if (s.size() > max_bytes) out += "...";
  return out;
}

}  // namespace loanledger::fuzz
