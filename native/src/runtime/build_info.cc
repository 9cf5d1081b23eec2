#include "runtime/build_info.h"

#include "runtime/api.h"

// CMake defines these for this file only (see native/CMakeLists.txt); the fallbacks keep an
// out-of-tree compile of the file working.
#ifndef KILN_VERSION
#define KILN_VERSION "0.0.0-dev"
#endif
#ifndef KILN_BUILD_TYPE
#define KILN_BUILD_TYPE "unknown"
#endif
#ifndef KILN_COMPILER
#define KILN_COMPILER "unknown"
#endif
#ifndef KILN_SYSTEM_PROCESSOR
#define KILN_SYSTEM_PROCESSOR "unknown"
#endif

namespace kiln {

std::string builderVersion() { return KILN_VERSION; }

const char* precisionName(Precision p) {
  switch (p) {
    case Precision::Fp32: return "fp32";
    case Precision::Fp16: return "fp16";
    case Precision::Int8: return "int8";
  }
  return "fp32";
}

bool cpuHasAvx2() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

const BuildFlags& buildFlags() {
  static const BuildFlags flags = [] {
    BuildFlags f;
    f.version = KILN_VERSION;
    f.buildType = KILN_BUILD_TYPE;
    f.compiler = KILN_COMPILER;
    f.processor = KILN_SYSTEM_PROCESSOR;
#ifdef KILN_AVX2_KERNELS
    f.avx2Kernels = true;
#endif
    f.avx2Available = f.avx2Kernels && cpuHasAvx2();
#ifdef KILN_WITH_CUDA
    f.cuda = true;
#endif
#ifdef KILN_CUDA_VERSION
    f.cudaVersion = KILN_CUDA_VERSION;
#endif
    return f;
  }();
  return flags;
}

}  // namespace kiln
