// Type-agnostic data movement for the CPU kernels of the shape/data-movement ops. These ops never
// interpret elements, so they move them as unsigned integers of the element's size (or as
// std::string objects for string tensors). One strided-copy engine serves Transpose, Slice, Expand,
// Tile, DepthToSpace/SpaceToDepth: each describes its output as a strided view of its input.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/kernel.h"
#include "core/error.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace kiln::cpu {

template <class T>
struct Storage {
  using type = T;
};

// Calls f(Storage<T>{}) where T is the storage type of dtype: uint8_t, uint16_t, uint32_t,
// uint64_t by element size, or std::string.
template <class F>
decltype(auto) visitStorage(DType dtype, F&& f) {
  switch (dtype) {
    case DType::UInt8:
    case DType::Int8:
    case DType::Bool:
      return f(Storage<uint8_t>{});
    case DType::UInt16:
    case DType::Int16:
    case DType::Float16:
    case DType::BFloat16:
      return f(Storage<uint16_t>{});
    case DType::Float32:
    case DType::Int32:
    case DType::UInt32:
      return f(Storage<uint32_t>{});
    case DType::Float64:
    case DType::Int64:
    case DType::UInt64:
      return f(Storage<uint64_t>{});
    case DType::String:
      return f(Storage<std::string>{});
    case DType::Undefined:
      break;
  }
  fail(ErrorCode::Internal, "data movement on a tensor of undefined element type");
}

// A kernel that is one function of its run context; whatever it needs from the node's attributes
// is parsed once at creation and captured.
class LambdaKernel final : public Kernel {
 public:
  LambdaKernel(std::string name, std::function<void(KernelContext&)> fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  void run(KernelContext& ctx) const override { fn_(ctx); }
  std::string name() const override { return name_; }

 private:
  std::string name_;
  std::function<void(KernelContext&)> fn_;
};

inline std::unique_ptr<Kernel> makeKernel(std::string name, std::function<void(KernelContext&)> fn) {
  return std::make_unique<LambdaKernel>(std::move(name), std::move(fn));
}

// Input i, which the op requires (the runtime passes nullptr for omitted optional inputs).
const Tensor& needInput(const KernelContext& ctx, size_t i, const char* name);
// Output i when the model keeps it, else nullptr.
inline Tensor* maybeOutput(KernelContext& ctx, size_t i) { return i < ctx.outputs.size() ? ctx.outputs[i] : nullptr; }
// Output i, which must exist (outputs the model may not omit).
Tensor& needOutput(KernelContext& ctx, size_t i);

// The pool a kernel should use.
inline ThreadPool& threadsOf(const KernelContext& ctx) { return ctx.pool ? *ctx.pool : ThreadPool::global(); }

// Copies the view of `src` with the given shape, element strides (any integer, 0 for broadcast,
// negative for reversed slices) and element offset into contiguous `dst` (numel(shape) elements).
// Multithreaded for large copies; blocked for cache when the view is a transpose.
void copyStrided(DType dtype, void* dst, const void* src, const Shape& shape, const std::vector<int64_t>& strides,
                 int64_t offset, ThreadPool& pool);

// Copies every element of `src` into `dst` (same dtype and element count, shapes may differ).
// A no-op when both are the same memory (the planner may run Reshape/Identity in place).
void copyTensor(const Tensor& src, Tensor& dst, ThreadPool& pool);

// dst = transpose(src, perm): dst's shape is src.shape permuted.
void transposeInto(const Tensor& src, const std::vector<int64_t>& perm, Tensor& dst, ThreadPool& pool);

// Copies `count` elements (any dtype) from src + srcIndex to dst + dstIndex.
void copyElements(DType dtype, void* dst, int64_t dstIndex, const void* src, int64_t srcIndex, int64_t count);

// Fills `count` elements of dst starting at dstIndex with the single element value[valueIndex].
void fillElements(DType dtype, void* dst, int64_t dstIndex, int64_t count, const void* value, int64_t valueIndex);

// Fills `count` elements of dst starting at dstIndex with zero (false, "" for strings).
void fillZero(DType dtype, void* dst, int64_t dstIndex, int64_t count);

}  // namespace kiln::cpu
