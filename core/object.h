// core/object.h: the base of everything a capability slot can hold.
//
// As on L4, an object lives as long as some capability refers to it: the
// capability tables (core/cap_table.h) count the slots that hold an object
// and call OnLastCapabilityReleased() when the last one is emptied. That is
// when a dataspace frees its memory and an allocator destroys what it
// created, even if C++ references (a region map entry, an allocator's list)
// still point at the object; those see it as dead afterwards.
#ifndef L4RE_MA_CORE_OBJECT_H_
#define L4RE_MA_CORE_OBJECT_H_

#include <atomic>
#include <cstdint>
#include <memory>

namespace l4re_ma {

enum class ObjectKind { kDataspace, kMemAllocator, kRegionMap };

class Object {
 public:
  Object() = default;
  Object(const Object&) = delete;
  Object& operator=(const Object&) = delete;
  virtual ~Object() = default;

  virtual ObjectKind kind() const = 0;

  // Capability reference counting; only capability tables call these.
  void AcquireCapability() { cap_refs_.fetch_add(1, std::memory_order_relaxed); }
  // Returns true when this released the last capability.
  bool ReleaseCapability() { return cap_refs_.fetch_sub(1, std::memory_order_acq_rel) == 1; }

  // Called once the last capability to this object is gone. Must not be
  // called with any capability-table lock held.
  virtual void OnLastCapabilityReleased() {}

 private:
  std::atomic<int64_t> cap_refs_{0};
};

}  // namespace l4re_ma

#endif  // L4RE_MA_CORE_OBJECT_H_
