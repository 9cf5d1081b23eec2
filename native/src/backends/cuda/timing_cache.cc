#include "backends/cuda/timing_cache.h"

#include <cuda_runtime.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>

#include "backends/cuda/cuda_libraries.h"

namespace kiln::cuda {
namespace {

struct Cache {
  std::mutex mutex;
  std::map<std::string, std::string> entries;
  std::string path;
  bool loaded = false;

  void load() {
    if (loaded) return;
    loaded = true;
    const char* p = std::getenv("KILN_CUDA_TIMING_CACHE");
    if (p == nullptr || *p == '\0') return;
    path = p;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      size_t tab = line.find('\t');
      if (tab != std::string::npos) entries[line.substr(0, tab)] = line.substr(tab + 1);
    }
  }
};

Cache& cache() {
  static Cache c;
  return c;
}

}  // namespace

const std::string& deviceKey() {
  static const std::string key = [] {
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, 0);
    return "sm" + std::to_string(prop.major) + std::to_string(prop.minor) + "|" + cudaLibraryVersions();
  }();
  return key;
}

std::optional<std::string> timingCacheGet(const std::string& key) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.load();
  auto it = c.entries.find(key);
  if (it == c.entries.end()) return std::nullopt;
  return it->second;
}

void timingCachePut(const std::string& key, const std::string& value) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.load();
  if (!c.entries.emplace(key, value).second) return;
  if (!c.path.empty()) {
    std::ofstream out(c.path, std::ios::app);
    out << key << '\t' << value << '\n';
  }
}

std::string bytesToHex(const void* data, size_t size) {
  static const char digits[] = "0123456789abcdef";
  std::string out(2 * size, '0');
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  return out;
}

bool bytesFromHex(const std::string& hex, void* data, size_t size) {
  if (hex.size() != 2 * size) return false;
  auto nibble = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  auto* bytes = static_cast<unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    bytes[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

}  // namespace kiln::cuda
