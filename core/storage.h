// core/storage.h: where the bytes of emulated physical memory live.
//
// A Storage is one memfd covering a range of frames: frame f is stored at
// file offset (f - range.first) * 4096. Region maps mmap those file ranges,
// so two attaches of one dataspace alias naturally and a contiguous
// dataspace is one mapping. The file is sparse: only touched pages use
// memory.
//
// Invariant (zero-on-free): every frame that is not part of a live
// dataspace reads as zero. A new memfd is zero; frames are zeroed when they
// are freed (small runs with memset, which keeps them resident for a cheap
// next use; large runs with a hole punch, which returns the memory to the
// kernel). So memory is zero when it is handed out without a second pass.
//
// In process there is one Storage for the pool. memd gives every client a
// Storage of its own over the same frame range: a client that holds its
// file descriptor can reach only its own bytes, never another client's.
//
// Thread-safety: the methods touch disjoint frames for disjoint callers; the
// owner of a frame run is the only one to zero or copy it.
#ifndef L4RE_MA_CORE_STORAGE_H_
#define L4RE_MA_CORE_STORAGE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/types.h"

namespace l4re_ma {

class Storage {
 public:
  // A zero-filled memfd covering `range`, mapped once into this process.
  static absl::StatusOr<std::shared_ptr<Storage>> Create(PageRun range, absl::string_view name);

  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();

  int fd() const { return fd_; }
  PageRun range() const { return range_; }

  // The file offset of frame `f`. REQUIRES: range().Contains(f).
  uint64_t FileOffset(FrameNumber f) const { return (f - range_.first).bytes(); }
  // The frame's bytes in this process's mapping of the file.
  char* Address(FrameNumber f) const { return base_ + FileOffset(f); }

  // Makes the frames of `run` read as zero (see the class comment).
  void Zero(PageRun run);

  // Runs up to this many pages are zeroed with memset, longer ones punched.
  static constexpr uint64_t kMemsetPages = 16;

 private:
  Storage(PageRun range, int fd, char* base) : range_(range), fd_(fd), base_(base) {}

  const PageRun range_;
  const int fd_;
  char* const base_;
};

}  // namespace l4re_ma

#endif  // L4RE_MA_CORE_STORAGE_H_
