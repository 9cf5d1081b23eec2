// XXH64 (xxHash, 64-bit), implemented here so the engine format needs no third-party library. It
// checksums engine files: fast enough (several GB/s) to verify hundreds of MB of weights at load.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kiln {

uint64_t xxhash64(const void* data, size_t size, uint64_t seed = 0);

}  // namespace kiln
