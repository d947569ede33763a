// Registers the slab backend under the name "slab".
#include <memory>

#include "backends/slab/slab_backend.h"
#include "core/backend_registry.h"

L4RE_MA_REGISTER_BACKEND(
    slab,
    "slab-of-superpages: size-class slabs inside 2 MiB superpages, keeps superpages whole",
    [](const ::l4re_ma::BackendOptions& o) -> std::unique_ptr<::l4re_ma::PageBackend> {
      return std::make_unique<::l4re_ma::SlabBackend>(o.range);
    });
