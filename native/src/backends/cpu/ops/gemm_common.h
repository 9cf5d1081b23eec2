// Helpers shared by the compute kernels (gemm, matmul, conv, conv_transpose, pool, norm, attention,
// fused): checked access to inputs/outputs, the fused-activation attributes, float32 staging for
// float16/bfloat16/float64 tensors, and slot-indexed parallel loops for per-thread workspaces.
// They live in kiln::cpu::nn so they never collide with other kernel families' helpers.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backends/cpu/gemm/sgemm.h"
#include "backends/kernel.h"
#include "core/error.h"
#include "core/tensor.h"
#include "ops/nn_geometry.h"

namespace kiln::cpu::nn {

inline ThreadPool* computePool(const KernelContext& ctx) { return ctx.pool ? ctx.pool : &ThreadPool::global(); }

// Input i, which must be present (throws InvalidModel naming the node and `what` otherwise).
const Tensor& requiredInput(const KernelContext& ctx, size_t i, const char* what);
// Input i or nullptr when omitted.
const Tensor* optionalInput(const KernelContext& ctx, size_t i);
// Input i's tensor for its shape and type only (data may be null: the runtime sizes workspaces in
// shape-only passes), or nullptr when omitted. For Kernel::workspaceBytes.
const Tensor* inputShapeOf(const KernelContext& ctx, size_t i);
// Output i with the shape the kernel computed; a runtime-allocated output of another shape or size
// is an Internal error (the schema and kernel disagree) rather than a buffer overrun.
Tensor& requiredOutput(KernelContext& ctx, size_t i, DType dtype, const Shape& shape);
// Output i or nullptr when the model omits it; checked like requiredOutput when present.
Tensor* optionalOutput(KernelContext& ctx, size_t i, DType dtype, const Shape& shape);

// The `activation` / `activation_params` attributes of a kiln fused op (graph/fused_ops.h), with
// ONNX's defaults for missing parameters (LeakyRelu 0.01, HardSigmoid 0.2/0.5, Clip -inf/+inf).
ActivationSpec readActivation(const Node& node);

// True for the float types the compute kernels accept (float32 natively, the rest via float32).
bool isComputeFloat(DType t);
// Throws UnsupportedOp naming the node when `t` is not one of them.
void requireComputeFloat(const Node& node, DType t, const char* what);

// A float32 view of a floating tensor: the data itself for float32, a converted copy otherwise.
class FloatView {
 public:
  FloatView() = default;
  explicit FloatView(const Tensor& t);
  const float* data() const { return data_; }

 private:
  std::vector<float> copy_;
  const float* data_ = nullptr;
};

// Where a kernel writes a floating output: the tensor itself for float32, else a float32 buffer
// converted into the tensor by commit().
class FloatSink {
 public:
  explicit FloatSink(Tensor& t);
  float* data() { return data_; }
  void commit();

 private:
  Tensor& out_;
  std::vector<float> buffer_;
  float* data_ = nullptr;
};

// Converts n float32 values into `dst` of floating type t.
void storeFloats(const float* src, DType t, void* dst, int64_t n);
void loadFloats(const void* src, DType t, float* dst, int64_t n);

// Runs fn(task, slot) for every task in [0, tasks), spread over at most `slots` concurrent workers;
// a slot is used by one worker at a time, so per-slot scratch (workspace + slot * bytes) is safe.
void parallelForSlots(ThreadPool* pool, int64_t tasks, int slots, const std::function<void(int64_t, int)>& fn);

inline int64_t productOf(const Shape& s, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end && i < s.size(); i++) p *= s[i];
  return p;
}

}  // namespace kiln::cpu::nn
