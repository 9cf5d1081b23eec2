// AVX2 inner loops for the float32 binary arithmetic kernels (elementwise_binary.cc). The loops in
// elementwise_avx2.cc are plain C++ that the compiler vectorizes 8-wide because that file is built
// with -mavx2 -mfma; callers must check cpuHasAvx2() (vec_math.h) first.
#pragma once
#include <cstdint>

namespace kiln::cpu::avx2 {

enum class BinaryF32 { Add, Sub, Mul, Div };

// o[i] = a[i*sa] op b[i*sb] for i < n, where sa and sb are 0 (repeat element 0) or 1.
void binaryF32(BinaryF32 op, const float* a, int64_t sa, const float* b, int64_t sb, float* o, int64_t n);

}  // namespace kiln::cpu::avx2
