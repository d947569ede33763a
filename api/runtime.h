// api/runtime.h: the process side of the C API: the capability table, the
// region map and the initial environment behind l4re_global_env.
//
// Created on first use and never destroyed (C API calls may come from
// static destructors of client code). The memory allocator named by
// l4re_global_env->mem_alloc is created on its first lookup:
//   - in process (default): backend L4RE_MA_BACKEND (default "buddy") over a
//     pool of L4RE_MA_POOL_SIZE bytes (default 256M; suffixes K, M, G, T),
//     quota L4RE_MA_QUOTA (default: the pool size);
//   - remote: the memd server at L4RE_MA_SERVER (a socket path; '@name' for
//     the abstract namespace).
// A bad value prints one clear message to stderr; calls on the allocator
// then return -L4_EINVAL. A memd that cannot be reached is reported the same
// way, and calls return the IPC error -2004 (the object is not there).
//
// Thread-safety: all methods are thread-safe.
#ifndef L4RE_MA_API_RUNTIME_H_
#define L4RE_MA_API_RUNTIME_H_

#include <cstdint>
#include <memory>
#include <mutex>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "api/region_map.h"
#include "core/cap_table.h"
#include "core/dataspace.h"
#include "core/errors.h"
#include "core/mem_allocator.h"

namespace l4re_ma {

// Capability slots of the initial environment.
inline constexpr uint32_t kEnvRmSlot = 0x10;
inline constexpr uint32_t kEnvMemAllocSlot = 0x11;
inline constexpr uint32_t kEnvFirstFreeSlot = 0x20;
inline constexpr uint32_t kCapSlots = uint32_t{1} << 16;

class Runtime {
 public:
  static Runtime& Get();

  CapTable& caps() { return caps_; }

  // The object at `index`: an IPC error (-2004) for an invalid index or an
  // empty slot.
  absl::StatusOr<std::shared_ptr<Object>> Lookup(uint64_t index);

  // As Lookup, and the object must be of kind T (-L4_EBADPROTO otherwise).
  template <typename T>
  absl::StatusOr<std::shared_ptr<T>> LookupAs(uint64_t index) {
    absl::StatusOr<std::shared_ptr<Object>> o = Lookup(index);
    if (!o.ok()) return o.status();
    if (auto t = std::dynamic_pointer_cast<T>(*o)) return t;
    return L4Error(L4Errno::kBadProto, "the capability names an object of another kind");
  }

 private:
  Runtime();
  // Creates the environment's memory allocator once.
  absl::Status EnsureEnvAllocator();

  CapTable caps_;
  std::once_flag env_once_;
  absl::Status env_status_;
};

}  // namespace l4re_ma

#endif  // L4RE_MA_API_RUNTIME_H_
