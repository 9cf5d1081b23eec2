// Broadcasting loops for binary and ternary elementwise kernels (arithmetic in elementwise_binary.cc,
// comparisons/logic/Where in logic.cc). The functor receives compute-type values (float for
// float16/bfloat16, bool for bool) and returns the result's compute type.
#pragma once
#include <string>
#include <vector>

#include "backends/cpu/broadcast.h"
#include "backends/cpu/ops/elementwise_util.h"

namespace kiln::cpu {

// Calls run(outOffset, inOffsets, count) for every run of the broadcast `bc`, split across the
// pool when the output is large.
template <class Run>
void parallelRuns(const Broadcast& bc, ThreadPool& pool, const Run& run) {
  auto body = [&](int64_t begin, int64_t end) { forEachRun(bc, begin, end, run); };
  if (bc.numel <= kGrain) {
    body(0, bc.numel);
  } else {
    pool.parallelFor(bc.numel, kGrain, body);
  }
}

// o = f(a, b) over the broadcast `bc` (inputs a, b in that order).
template <class SA, class SB, class SO, class F>
void binaryLoop(const Broadcast& bc, const SA* a, const SB* b, SO* o, const F& f, ThreadPool& pool) {
  const bool ca = bc.contiguous(0), cb = bc.contiguous(1);
  parallelRuns(bc, pool, [&](int64_t out, const int64_t* in, int64_t n) {
    const SA* pa = a + in[0];
    const SB* pb = b + in[1];
    SO* po = o + out;
    // The three shapes of inner loop: both contiguous, or one operand repeated (scalar / row bias).
    if (ca && cb) {
      for (int64_t i = 0; i < n; i++) po[i] = Num<SO>::store(f(Num<SA>::load(pa[i]), Num<SB>::load(pb[i])));
    } else if (ca) {
      const auto vb = Num<SB>::load(pb[0]);
      for (int64_t i = 0; i < n; i++) po[i] = Num<SO>::store(f(Num<SA>::load(pa[i]), vb));
    } else if (cb) {
      const auto va = Num<SA>::load(pa[0]);
      for (int64_t i = 0; i < n; i++) po[i] = Num<SO>::store(f(va, Num<SB>::load(pb[i])));
    } else {
      const SO v = Num<SO>::store(f(Num<SA>::load(pa[0]), Num<SB>::load(pb[0])));
      for (int64_t i = 0; i < n; i++) po[i] = v;
    }
  });
}

// o = f(c, x, y) over the broadcast `bc` (inputs c, x, y in that order); used by Where.
template <class SC, class SX, class SO, class F>
void ternaryLoop(const Broadcast& bc, const SC* c, const SX* x, const SX* y, SO* o, const F& f, ThreadPool& pool) {
  auto body = [&](int64_t begin, int64_t end) {
    const int64_t sc = bc.innerStride(0), sx = bc.innerStride(1), sy = bc.innerStride(2);
    forEachRun(bc, begin, end, [&](int64_t out, const int64_t* in, int64_t n) {
      const SC* pc = c + in[0];
      const SX* px = x + in[1];
      const SX* py = y + in[2];
      SO* po = o + out;
      for (int64_t i = 0; i < n; i++) {
        po[i] = Num<SO>::store(f(Num<SC>::load(pc[i * sc]), Num<SX>::load(px[i * sx]), Num<SX>::load(py[i * sy])));
      }
    });
  };
  if (bc.numel <= kGrain) {
    body(0, bc.numel);
  } else {
    pool.parallelFor(bc.numel, kGrain, body);
  }
}

// Shape of B as the kernel sees it: before opset 7, broadcast=1 with `axis` aligns B's dims at
// A's axis (see ops/elementwise_infer.h), which trailing 1s turn into a numpy broadcast.
inline Shape legacyAlignedShape(const Node& node, int64_t opset, const Shape& a, const Shape& b) {
  if (opset >= 7 || node.getInt("broadcast", 0) == 0 || !node.has("axis")) return b;
  int64_t ra = static_cast<int64_t>(a.size()), rb = static_cast<int64_t>(b.size());
  int64_t axis = node.getInt("axis", 0);
  if (axis < 0) axis += ra;
  if (axis < 0 || axis + rb > ra) {
    fail(ErrorCode::InvalidModel, node.opType + " node '" + node.name + "': legacy broadcast axis does not fit B " +
                                      shapeToString(b) + " into A " + shapeToString(a));
  }
  Shape out = b;
  for (int64_t i = axis + rb; i < ra; i++) out.push_back(1);
  return out;
}

// Output shape and iteration plan of a two-input broadcasting op; checks the output tensor.
struct BinaryPlan {
  Broadcast bc;
  Tensor* out = nullptr;
};
inline BinaryPlan planBinary(KernelContext& ctx, const OpInfo& info, const Tensor& a, const Tensor& b) {
  Shape bs = legacyAlignedShape(ctx.node, info.opset, a.shape, b.shape);
  Shape outShape = broadcastShapes({a.shape, bs}, info.where());
  BinaryPlan p;
  p.out = &requireOutput(ctx, info, 0, outShape);
  p.bc = makeBroadcast(outShape, {a.shape, bs});
  return p;
}

}  // namespace kiln::cpu
