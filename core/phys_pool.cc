#include "core/phys_pool.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/backend_registry.h"
#include "core/byte_size.h"

namespace l4re_ma {

absl::StatusOr<std::shared_ptr<PhysPool>> PhysPool::Create(absl::string_view backend,
                                                           uint64_t bytes, PhysAddr base) {
  if (absl::Status s = BackendRegistry::Global().CheckName(backend); !s.ok()) return s;
  if (bytes < kPageSize || bytes % kPageSize != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pool size ", bytes, " bytes is not a positive multiple of the 4 KiB page size"));
  }
  if (bytes > kMaxPoolBytes) {
    return absl::InvalidArgumentError(absl::StrCat("pool size ", FormatBytes(bytes),
                                                   " exceeds the maximum of ",
                                                   FormatBytes(kMaxPoolBytes)));
  }
  if (base.value() % kPageSize != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("physical base 0x", absl::Hex(base.value()), " is not page-aligned"));
  }
  BackendOptions options;
  options.range = PageRun{base.frame(), PageCount(bytes / kPageSize)};
  absl::StatusOr<std::unique_ptr<PageBackend>> b =
      BackendRegistry::Global().Create(backend, options);
  if (!b.ok()) return b.status();
  return std::make_shared<PhysPool>(*std::move(b));
}

PhysPool::PhysPool(std::unique_ptr<PageBackend> backend)
    : range_(backend->range()), name_(backend->name()), backend_(std::move(backend)) {}

std::optional<FrameNumber> PhysPool::Allocate(PageCount pages, AlignOrder align) {
  MutexLock lock(&mu_);
  return backend_->Allocate(pages, align);
}

void PhysPool::Free(PageRun run) {
  bool ok;
  {
    MutexLock lock(&mu_);
    ok = backend_->Free(run);
  }
  if (!ok) {
    std::ostringstream msg;
    msg << run;
    std::fprintf(stderr, "l4re_ma: backend '%s' rejected the free of %s it handed out\n",
                 name_.c_str(), msg.str().c_str());
    std::abort();
  }
}

BackendStats PhysPool::Stats() const {
  MutexLock lock(&mu_);
  return backend_->Stats();
}

}  // namespace l4re_ma
