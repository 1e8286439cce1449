// Assertions that stay on in production (STYLE.md, after TigerBeetle): a
// broken invariant is a bug, and the process stops rather than publish a
// wrong balance.
#pragma once

#include <cstdio>
#include <cstdlib>

#define LL_CHECK(cond)                                                                  \
  do {                                                                                  \
    if (__builtin_expect(!(cond), 0)) {                                                 \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

#define LL_CHECK_MSG(cond, msg)                                                             \
  do {                                                                                      \
    if (__builtin_expect(!(cond), 0)) {                                                     \
      std::fprintf(stderr, "%s:%d: invariant failed: %s (%s)\n", __FILE__, __LINE__, #cond, \
                   (msg));                                                                  \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)
