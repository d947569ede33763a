// core/phys_pool.h: a backend over a range of emulated physical memory,
// made thread-safe.
//
// The pool owns one PageBackend (chosen by name from the registry, or given)
// and serializes every call to it with one mutex: backends are
// single-threaded by contract. Allocators (core/local_allocator.h) share a
// pool; in memd all clients do.
#ifndef L4RE_MA_CORE_PHYS_POOL_H_
#define L4RE_MA_CORE_PHYS_POOL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/sync.h"
#include "core/page_backend.h"
#include "core/types.h"

namespace l4re_ma {

// Where emulated physical memory starts by default: 1 GiB, like the DRAM of
// many boards. Physical address 0 is not RAM, so huge alignments fail with
// -L4_ENOMEM as they would on hardware instead of all landing on address 0.
inline constexpr PhysAddr kDefaultPhysBase = PhysAddr(uint64_t{1} << 30);
// The default pool size of the in-process allocator and of memd.
inline constexpr uint64_t kDefaultPoolBytes = uint64_t{256} << 20;
// The largest pool accepted (the storage file is mapped whole).
inline constexpr uint64_t kMaxPoolBytes = uint64_t{4} << 40;

class PhysPool {
 public:
  // A pool of `bytes` (a multiple of 4 KiB, at most kMaxPoolBytes) managed
  // by the registered backend `backend`, starting at `base` (page-aligned).
  // Errors name the bad value; an unknown backend lists the known ones.
  static absl::StatusOr<std::shared_ptr<PhysPool>> Create(absl::string_view backend,
                                                          uint64_t bytes,
                                                          PhysAddr base = kDefaultPhysBase);

  // Wraps an existing backend (embedding, tests).
  explicit PhysPool(std::unique_ptr<PageBackend> backend);

  std::optional<FrameNumber> Allocate(PageCount pages, AlignOrder align) ABSL_LOCKS_EXCLUDED(mu_);
  // Returns a run the core allocated. The core never frees what it does not
  // own, so a rejection is a broken invariant and aborts with a message.
  void Free(PageRun run) ABSL_LOCKS_EXCLUDED(mu_);

  BackendStats Stats() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t free_bytes() const { return Stats().free_pages.bytes(); }

  PageRun range() const { return range_; }
  const std::string& backend_name() const { return name_; }

 private:
  const PageRun range_;
  const std::string name_;
  mutable Mutex mu_;
  std::unique_ptr<PageBackend> backend_ ABSL_GUARDED_BY(mu_);
};

}  // namespace l4re_ma

#endif  // L4RE_MA_CORE_PHYS_POOL_H_
