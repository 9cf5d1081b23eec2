// See elementwise_avx2.h. Each (op, stride pattern) pair is its own loop so every loop is a simple
// stream the compiler turns into 8-wide AVX2 code.
#include "backends/cpu/ops/elementwise_avx2.h"

namespace kiln::cpu::avx2 {
namespace {

template <class F>
inline void loop(const float* a, int64_t sa, const float* b, int64_t sb, float* o, int64_t n, F f) {
  if (sa && sb) {
    for (int64_t i = 0; i < n; i++) o[i] = f(a[i], b[i]);
  } else if (sa) {
    const float vb = b[0];
    for (int64_t i = 0; i < n; i++) o[i] = f(a[i], vb);
  } else if (sb) {
    const float va = a[0];
    for (int64_t i = 0; i < n; i++) o[i] = f(va, b[i]);
  } else {
    const float v = f(a[0], b[0]);
    for (int64_t i = 0; i < n; i++) o[i] = v;
  }
}

}  // namespace

void binaryF32(BinaryF32 op, const float* a, int64_t sa, const float* b, int64_t sb, float* o, int64_t n) {
  switch (op) {
    case BinaryF32::Add: loop(a, sa, b, sb, o, n, [](float x, float y) { return x + y; }); return;
    case BinaryF32::Sub: loop(a, sa, b, sb, o, n, [](float x, float y) { return x - y; }); return;
    case BinaryF32::Mul: loop(a, sa, b, sb, o, n, [](float x, float y) { return x * y; }); return;
    case BinaryF32::Div: loop(a, sa, b, sb, o, n, [](float x, float y) { return x / y; }); return;
  }
}

}  // namespace kiln::cpu::avx2
