// Tensor: a typed, shaped view of contiguous row-major memory. Ownership is shared and optional:
// weights own their bytes, activations point into a context's arena (holder == nullptr).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace kiln {

using Shape = std::vector<int64_t>;

// Product of dims; throws OutOfMemory-coded KilnError on overflow or negative dims.
int64_t shapeNumel(const Shape& shape);
std::string shapeToString(const Shape& shape);  // "[1,3,224,224]"
// Row-major strides in elements.
std::vector<int64_t> shapeStrides(const Shape& shape);

struct Tensor {
  DType dtype = DType::Undefined;
  Shape shape;
  void* data = nullptr;
  std::shared_ptr<void> holder;  // keeps owned memory alive; null for arena-backed views

  int64_t numel() const { return shapeNumel(shape); }
  size_t byteSize() const { return static_cast<size_t>(numel()) * dtypeSize(dtype); }
  template <class T>
  T* ptr() { return static_cast<T*>(data); }
  template <class T>
  const T* ptr() const { return static_cast<const T*>(data); }

  // A new tensor that owns zero-initialised memory (64-byte aligned). String tensors get
  // default-constructed std::string elements that are destroyed with the tensor.
  static Tensor allocate(DType dtype, const Shape& shape);
  // A deep copy that owns its memory.
  Tensor clone() const;
  // Scalar/1-D integer readers for shape-like inputs (Int32/Int64, any rank); throws if not integer.
  std::vector<int64_t> toInt64Vector() const;
  // Reads element i of any numeric dtype as double (slow; for attributes and shape logic only).
  double scalarAsDouble(int64_t i = 0) const;
};

}  // namespace kiln
