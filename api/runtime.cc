#include "api/runtime.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/byte_size.h"
#include "core/local_allocator.h"
#include "core/phys_pool.h"
#include "core/remote_allocator.h"
#include "core/storage.h"

namespace l4re_ma {
namespace {

// Reads an environment variable; empty counts as unset.
const char* Env(const char* name) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? v : nullptr;
}

absl::StatusOr<std::shared_ptr<MemAllocator>> CreateLocalEnvAllocator() {
  const char* backend = Env("L4RE_MA_BACKEND");
  uint64_t pool_bytes = kDefaultPoolBytes;
  if (const char* v = Env("L4RE_MA_POOL_SIZE")) {
    absl::StatusOr<uint64_t> parsed = ParseByteSize(v);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("L4RE_MA_POOL_SIZE: ", parsed.status().message()));
    }
    pool_bytes = *parsed;
  }
  absl::StatusOr<std::shared_ptr<PhysPool>> pool =
      PhysPool::Create(backend != nullptr ? backend : "buddy", pool_bytes);
  if (!pool.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(backend != nullptr ? "L4RE_MA_BACKEND/L4RE_MA_POOL_SIZE: " : "L4RE_MA_POOL_SIZE: ",
                     pool.status().message()));
  }
  uint64_t quota = pool_bytes;
  if (const char* v = Env("L4RE_MA_QUOTA")) {
    absl::StatusOr<uint64_t> parsed = ParseByteSize(v);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("L4RE_MA_QUOTA: ", parsed.status().message()));
    }
    quota = *parsed;
  }
  absl::StatusOr<std::shared_ptr<Storage>> storage =
      Storage::Create((*pool)->range(), "l4re_ma-pool");
  if (!storage.ok()) return storage.status();
  return std::shared_ptr<MemAllocator>(
      LocalAllocator::CreateRoot(*std::move(pool), *std::move(storage), quota));
}

}  // namespace

Runtime& Runtime::Get() {
  static Runtime* runtime = new Runtime;
  return *runtime;
}

Runtime::Runtime() : caps_(kCapSlots, kEnvFirstFreeSlot) {
  caps_.Install(kEnvRmSlot, std::make_shared<RegionMap>());
}

absl::Status Runtime::EnsureEnvAllocator() {
  std::call_once(env_once_, [this] {
    absl::StatusOr<std::shared_ptr<MemAllocator>> allocator;
    if (const char* server = Env("L4RE_MA_SERVER")) {
      // memd: the allocator is the client's root allocator on the server.
      // Whatever keeps us from it (nothing listens, refused, another
      // protocol version), the allocator object does not exist for us:
      // calls fail with the IPC error -2004, not -L4_EINVAL.
      absl::StatusOr<std::shared_ptr<RemoteAllocator>> remote = RemoteAllocator::Connect(server);
      if (remote.ok()) {
        allocator = std::shared_ptr<MemAllocator>(*std::move(remote));
      } else {
        allocator = IpcError(IpcCode::kNotExistent,
                             absl::StrCat("L4RE_MA_SERVER=", server, ": ",
                                          remote.status().message()));
      }
    } else {
      allocator = CreateLocalEnvAllocator();
    }
    if (allocator.ok()) {
      caps_.Install(kEnvMemAllocSlot, *std::move(allocator));
    } else {
      env_status_ = allocator.status();
      std::fprintf(stderr, "l4re_ma: cannot set up the memory allocator: %s\n",
                   std::string(env_status_.message()).c_str());
    }
  });
  if (env_status_.ok()) return absl::OkStatus();
  if (absl::IsUnavailable(env_status_)) return env_status_;  // memd unreachable: -2004
  return L4Error(L4Errno::kInval, env_status_.message());
}

absl::StatusOr<std::shared_ptr<Object>> Runtime::Lookup(uint64_t index) {
  absl::StatusOr<uint32_t> slot = caps_.SlotOf(index);
  if (!slot.ok()) return slot.status();
  if (*slot == kEnvMemAllocSlot) {
    if (absl::Status s = EnsureEnvAllocator(); !s.ok()) return s;
  }
  std::shared_ptr<Object> object = caps_.Get(*slot);
  if (object == nullptr) {
    return IpcError(IpcCode::kNotExistent,
                    absl::StrCat("capability slot 0x", absl::Hex(index), " is empty"));
  }
  return object;
}

}  // namespace l4re_ma
