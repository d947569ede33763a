#include "core/storage.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/byte_size.h"

namespace l4re_ma {

absl::StatusOr<std::shared_ptr<Storage>> Storage::Create(PageRun range, absl::string_view name) {
  const uint64_t bytes = range.pages.bytes();
  int fd = memfd_create(std::string(name).c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("memfd_create: ", std::strerror(errno)));
  }
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    int err = errno;
    close(fd);
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot size the storage file to ", FormatBytes(bytes), ": ", std::strerror(err)));
  }
  // The pool never changes size; sealing it keeps a client that holds the
  // descriptor from growing it past its quota or shrinking it under others.
  (void)fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (base == MAP_FAILED) {
    int err = errno;
    close(fd);
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot map ", FormatBytes(bytes), " of storage: ", std::strerror(err)));
  }
  return std::shared_ptr<Storage>(new Storage(range, fd, static_cast<char*>(base)));
}

Storage::~Storage() {
  munmap(base_, range_.pages.bytes());
  close(fd_);
}

void Storage::Zero(PageRun run) {
  if (run.pages.value() <= kMemsetPages) {
    std::memset(Address(run.first), 0, run.pages.bytes());
    return;
  }
  if (fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                static_cast<off_t>(FileOffset(run.first)),
                static_cast<off_t>(run.pages.bytes())) != 0) {
    std::memset(Address(run.first), 0, run.pages.bytes());
  }
}

}  // namespace l4re_ma
