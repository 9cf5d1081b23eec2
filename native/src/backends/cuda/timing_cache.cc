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

}  // namespace kiln::cuda
