// Registers BuddyBackend under the name "buddy".
#include <memory>

#include "backends/buddy/buddy_backend.h"
#include "core/backend_registry.h"

namespace l4re_ma {
namespace {

L4RE_MA_REGISTER_BACKEND(
    buddy, "binary buddy allocator: O(log n), power-of-two blocks, exact tails",
    [](const BackendOptions& o) -> std::unique_ptr<PageBackend> {
      return std::make_unique<BuddyBackend>(o.range);
    });

}  // namespace
}  // namespace l4re_ma
