// dma_pool: a DMA-buffer service over an embedded region backend. It serves
// a scripted day of three drivers (a NIC with ring buffers, a disk with
// scatter buffers, a GPU with one large aligned buffer) and prints the I/O
// addresses it handed out.
#include <cstdio>
#include <vector>

#include "examples/dma_pool/dma_pool.h"

int main() {
  auto pool = dma_example::DmaPool::Create(/*base=*/0x80000000, /*bytes=*/64 << 20);
  if (!pool.ok()) {
    std::fprintf(stderr, "dma_pool: %s\n", std::string(pool.status().message()).c_str());
    return 1;
  }
  struct Request { const char* owner; uint64_t bytes; unsigned align; };
  const Request requests[] = {
      {"nic0 rx ring", 256 << 10, 16}, {"nic0 tx ring", 256 << 10, 16},
      {"disk0 sg", 12 << 10, 12},      {"disk0 sg", 60 << 10, 12},
      {"gpu0 framebuffer", 8 << 20, 21}, {"disk0 sg", 4 << 10, 12},
  };
  std::vector<uint64_t> held;
  for (const Request& r : requests) {
    auto b = (*pool)->Allocate(r.bytes, r.align, r.owner);
    if (!b.ok()) {
      std::fprintf(stderr, "dma_pool: %s\n", std::string(b.status().message()).c_str());
      return 1;
    }
    std::printf("%-18s %8llu bytes at iova %#llx\n", r.owner,
                static_cast<unsigned long long>(b->bytes), static_cast<unsigned long long>(b->iova));
    held.push_back(b->iova);
  }
  for (uint64_t iova : held) {
    if (!(*pool)->Free(iova).ok()) return 1;
  }
  std::printf("all returned: %llu MiB free, largest run %llu MiB\n",
              static_cast<unsigned long long>((*pool)->free_bytes() >> 20),
              static_cast<unsigned long long>((*pool)->largest_free_bytes() >> 20));
  return 0;
}
