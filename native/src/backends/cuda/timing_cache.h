// Kernel choice by timing, remembered: a process-wide cache of measured tactics keyed by
// (layer signature, GPU, library versions), so that building and then loading an engine, or
// rebuilding the same model, times each distinct layer once. When KILN_CUDA_TIMING_CACHE names a
// file, entries are loaded from it on first use and appended to it as they are measured, so the
// cache survives the process (a rebuild of the same model skips the timing).
#pragma once
#include <cstddef>
#include <optional>
#include <string>

namespace kiln::cuda {

// "sm90|cuda=13.0;cublas=13.1;cudnn=9.14": the part of every key that binds it to this GPU and
// these libraries.
const std::string& deviceKey();

std::optional<std::string> timingCacheGet(const std::string& key);
void timingCachePut(const std::string& key, const std::string& value);

// An opaque tactic (a cuBLASLt algorithm) as lowercase hex for a cache value, and back; false when
// `hex` is not exactly `size` bytes of hex.
std::string bytesToHex(const void* data, size_t size);
bool bytesFromHex(const std::string& hex, void* data, size_t size);

}  // namespace kiln::cuda
