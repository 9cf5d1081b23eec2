// Row primitives of the fused attention kernel (attention.cc): max and exp-shift-sum over a row of
// scores, vectorised in attention_avx2.cc, portable in attention_kernels.cc.
#pragma once
#include <cstdint>

namespace kiln::cpu {

struct AttentionRowKernels {
  float (*rowMax)(const float* x, int64_t n);
  // x[i] = exp(x[i] - shift); returns the sum of the new values.
  float (*expShiftSum)(float* x, int64_t n, float shift);
  // y[i] = y[i] * a (a row rescale of the output accumulator).
  void (*scale)(float* y, int64_t n, float a);
};

const AttentionRowKernels& attentionRowKernels();
const AttentionRowKernels* avx2AttentionRowKernelsOrNull();  // attention_avx2.cc

}  // namespace kiln::cpu
