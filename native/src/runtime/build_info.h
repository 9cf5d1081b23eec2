// What this binary is: its version and the flags it was built with. The addon exposes this to
// TypeScript (buildFlags()) so that a worker can report which build served a request.
#pragma once
#include <string>

namespace kiln {

struct BuildFlags {
  std::string version;          // the builder version, from native/package.json
  std::string buildType;        // CMake build type: Release, Debug, ...
  std::string compiler;         // "GNU 12.2.0"
  std::string processor;        // the CPU architecture the binary was compiled for: "x86_64"
  bool avx2Kernels = false;     // AVX2/FMA kernel files were compiled in
  bool avx2Available = false;   // this machine's CPU supports AVX2 and FMA (checked at run time)
  bool cuda = false;            // the CUDA backend was compiled in
  std::string cudaVersion;      // the CUDA toolkit version it was compiled with, "" without CUDA
};

const BuildFlags& buildFlags();

// True when the running CPU has AVX2 and FMA, i.e. when *_avx2.cc kernels may be called.
bool cpuHasAvx2();

}  // namespace kiln
