// The CPU backend: host memory, kernels from backends/cpu/ops registered under "cpu".
#include <cstdlib>

#include "backends/backend.h"
#include "core/error.h"
#include "runtime/build_info.h"

namespace kiln {
namespace {

constexpr size_t kCpuAlignment = 64;

// The instruction set an engine's kernels were chosen for. Kernels pick AVX2 code paths by a run
// time CPU check, so an engine built on an AVX2 machine is bound to AVX2 machines.
std::string cpuTarget() {
#if defined(__x86_64__) || defined(_M_X64)
  return cpuHasAvx2() ? "cpu-x86_64-avx2" : "cpu-x86_64-generic";
#elif defined(__aarch64__)
  return "cpu-aarch64-generic";
#else
  return "cpu-unknown-generic";
#endif
}

class CpuBackend final : public Backend {
 public:
  BackendKind kind() const override { return BackendKind::Cpu; }
  std::string name() const override { return "cpu"; }
  std::string target() const override { return cpuTarget(); }
  std::string libraryVersions() const override { return ""; }

  void* allocate(size_t bytes) override {
    size_t rounded = (bytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
    if (rounded == 0) rounded = kCpuAlignment;
    void* p = std::aligned_alloc(kCpuAlignment, rounded);
    if (p == nullptr) fail(ErrorCode::OutOfMemory, "cannot allocate " + std::to_string(bytes) + " bytes of host memory");
    return p;
  }
  void release(void* ptr) override { std::free(ptr); }
};

}  // namespace

std::shared_ptr<Backend> createCpuBackend() {
  // Stateless, so one instance serves every engine and context.
  static const std::shared_ptr<Backend> backend = std::make_shared<CpuBackend>();
  return backend;
}

}  // namespace kiln
