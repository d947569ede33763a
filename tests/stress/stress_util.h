// Helpers of the stress tests: a client workload that checks every byte it
// wrote, and counters of a process's file descriptors and mappings.
#ifndef L4RE_MA_TESTS_STRESS_STRESS_UTIL_H_
#define L4RE_MA_TESTS_STRESS_STRESS_UTIL_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace l4re_ma::stress {

// Sanitizer runtimes map shadow memory as the program grows, so mapping
// counts only mean something in a plain build; sanitized runs also do less.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

// Entries in /proc/<pid>/fd and lines in /proc/<pid>/maps (pid 0: self).
int CountFds(pid_t pid = 0);
int CountMappings(pid_t pid = 0);
// What each file descriptor of <pid> refers to, one per line (for messages).
std::string DescribeFds(pid_t pid = 0);

struct WorkloadResult {
  long ops = 0;
  long bytes_verified = 0;
  long corrupted = 0;        // bytes that did not read back as written
  long not_zero = 0;         // bytes not zero when handed out
  long unexpected_errors = 0;
  std::string first_problem;
};

// Random allocations (every flag, sizes 1 byte .. 512 KiB, sub-allocators),
// attaches, pattern writes, copies, clears and frees through the C API for
// `ops` operations, reading back every byte it wrote before freeing it.
// Uses the environment's allocator; capability slots are its own.
WorkloadResult RunWorkload(uint64_t seed, long ops);

}  // namespace l4re_ma::stress

#endif  // L4RE_MA_TESTS_STRESS_STRESS_UTIL_H_
