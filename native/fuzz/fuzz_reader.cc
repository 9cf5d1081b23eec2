// libFuzzer entry point for the ONNX reader: bytes -> readModel -> inferShapes -> inspectModel.
// Any KilnError is an acceptable answer to hostile bytes; a crash, sanitizer report, other exception,
// hang or runaway allocation is a bug. Build and run with native/fuzz/build.sh.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "graph/shape_inference.h"
#include "onnx/model_reader.h"
#include "runtime/api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::ReadOptions options;
  // Tight limits keep the fuzzer's memory bounded; the checks they drive are the same at any size.
  options.maxTensorBytes = int64_t(1) << 24;
  options.maxTotalTensorBytes = int64_t(1) << 26;
  options.maxNodes = 1 << 14;
  try {
    kiln::Graph g = kiln::readModel(data, size, options);
    kiln::inferShapes(g);
  } catch (const kiln::KilnError&) {
    return 0;
  }
  try {
    kiln::inspectModel(data, size);
  } catch (const kiln::KilnError&) {
  }
  return 0;
}
