// Registers ReferenceBackend as "reference" (test-only; linked by the
// conformance suite to check the suite itself).
#include <memory>

#include "core/backend_registry.h"
#include "tests/testing/reference_backend.h"

L4RE_MA_REGISTER_BACKEND(reference, "test-only: one flag per frame, linear first fit (slow, obviously correct)",
                         [](const l4re_ma::BackendOptions& o) {
                           return std::make_unique<l4re_ma::ReferenceBackend>(o.range);
                         });
