// Deterministic pseudo-random numbers for the portfolio generator.
//
// A seed must give the same portfolio on any machine, compiler and C++
// library: std::*_distribution differs between libstdc++ versions and libm's
// exp/log may differ in the last bit between C libraries. So: xoshiro256**
// seeded by splitmix64 (both public-domain algorithms, written here), and
// exp/log built from + - * / only (IEEE 754 makes those exact-rounded
// everywhere; the build uses ISO C++ mode, so no FMA contraction).
#pragma once

#include <cmath>
#include <cstdint>

#include "schema/check.h"

namespace loanledger::gen {

inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// e^x for |x| <= 700, from a degree-14 Taylor polynomial after reducing x by
// multiples of ln 2 (Cody-Waite split); relative error below 1e-15.
inline double DetExp(double x) {
  LL_CHECK(x > -700.0 && x < 700.0);
  constexpr double kInvLn2 = 1.4426950408889634;
  constexpr double kLn2Hi = 6.93147180369123816490e-01;  // ln 2, high part (exact in 32 bits)
  constexpr double kLn2Lo = 1.90821492927058770002e-10;  // ln 2 - kLn2Hi
  const double k = std::floor(x * kInvLn2 + 0.5);
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;  // |r| <= 0.35
  double p = 1.0;
  for (int n = 14; n >= 1; --n) p = 1.0 + p * r / n;  // Horner form of sum r^n/n!
  return std::ldexp(p, static_cast<int>(k));          // exact scaling by 2^k
}

// ln x for x > 0: x = m * 2^e with m in [sqrt(1/2), sqrt(2)), then
// ln m = 2 atanh(z), z = (m-1)/(m+1), |z| <= 0.172, series to z^23.
inline double DetLn(double x) {
  LL_CHECK(x > 0.0 && std::isfinite(x));
  int e = 0;
  double m = std::frexp(x, &e);  // exact: m in [0.5, 1)
  if (m < 0.70710678118654752) {
    m *= 2.0;
    e -= 1;
  }
  const double z = (m - 1.0) / (m + 1.0);
  const double z2 = z * z;
  double s = 0.0;
  for (int n = 23; n >= 1; n -= 2) s = 1.0 / n + z2 * s;
  constexpr double kLn2 = 0.69314718055994531;
  return 2.0 * z * s + e * kLn2;
}

// xoshiro256** (Blackman and Vigna): fast, 256-bit state, passes BigCrush.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t sm = seed;
    for (uint64_t& w : s_) w = SplitMix64(sm);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1), 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform in [lo, hi).
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // Uniform integer in [0, n), unbiased (Lemire's multiply-and-reject).
  uint64_t Below(uint64_t n) {
    LL_CHECK(n > 0);
    for (;;) {
      const unsigned __int128 m = static_cast<unsigned __int128>(Next()) * n;
      const auto low = static_cast<uint64_t>(m);
      if (low >= n || low >= (0 - n) % n) return static_cast<uint64_t>(m >> 64);
    }
  }
  // Uniform integer in [lo, hi], inclusive.
  int64_t Between(int64_t lo, int64_t hi) {
    LL_CHECK(lo <= hi);
    return lo + static_cast<int64_t>(Below(static_cast<uint64_t>(hi - lo) + 1));
  }
  bool Bernoulli(double p) { return Uniform() < p; }
  // Standard normal (Marsaglia's polar method; sqrt is exact-rounded).
  double Normal() {
    for (;;) {
      const double u = 2.0 * Uniform() - 1.0;
      const double v = 2.0 * Uniform() - 1.0;
      const double s = u * u + v * v;
      if (s > 0.0 && s < 1.0) return u * std::sqrt(-2.0 * DetLn(s) / s);
    }
  }
  // Log-normal with the given median and log-space standard deviation,
  // truncated to 4 standard deviations so that no draw is absurd.
  double LogNormal(double median, double sigma) {
    double z = Normal();
    if (z > 4.0) z = 4.0;
    if (z < -4.0) z = -4.0;
    return median * DetExp(sigma * z);
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace loanledger::gen
