#include "core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>

#include "core/error.h"

namespace kiln {

// Tensors larger than this are refused outright: a hostile model must not make us try to allocate
// petabytes (an allocation that large would fail anyway, but only after overflowing arithmetic).
constexpr int64_t kMaxTensorBytes = int64_t(1) << 40;

int64_t shapeNumel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) fail(ErrorCode::ShapeMismatch, "negative dimension in shape " + shapeToString(shape));
    if (d != 0 && n > kMaxTensorBytes / d) {
      fail(ErrorCode::OutOfMemory, "tensor shape " + shapeToString(shape) + " is too large");
    }
    n *= d;
  }
  return n;
}

std::string shapeToString(const Shape& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); i++) out << (i ? "," : "") << shape[i];
  out << "]";
  return out.str();
}

std::vector<int64_t> shapeStrides(const Shape& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (int i = (int)shape.size() - 2; i >= 0; i--) strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

Tensor Tensor::allocate(DType dtype, const Shape& shape) {
  Tensor t;
  t.dtype = dtype;
  t.shape = shape;
  int64_t n = shapeNumel(shape);
  size_t elem = dtypeSize(dtype);
  KILN_CHECK(elem > 0, InvalidArgument, "cannot allocate a tensor of undefined type");
  KILN_CHECK(n <= kMaxTensorBytes / (int64_t)elem, OutOfMemory,
             "tensor shape " + shapeToString(shape) + " is too large");
  size_t bytes = (size_t)n * elem;
  size_t rounded = ((bytes + 63) / 64) * 64;
  if (rounded == 0) rounded = 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) fail(ErrorCode::OutOfMemory, "out of memory allocating " + std::to_string(bytes) + " bytes");
  if (dtype == DType::String) {
    auto* strings = static_cast<std::string*>(p);
    for (int64_t i = 0; i < n; i++) new (&strings[i]) std::string();
    t.holder = std::shared_ptr<void>(p, [n](void* q) {
      auto* s = static_cast<std::string*>(q);
      for (int64_t i = 0; i < n; i++) s[i].~basic_string();
      std::free(q);
    });
  } else {
    std::memset(p, 0, rounded);
    t.holder = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  }
  t.data = p;
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = allocate(dtype, shape);
  if (dtype == DType::String) {
    for (int64_t i = 0; i < numel(); i++) t.ptr<std::string>()[i] = ptr<std::string>()[i];
  } else if (byteSize() > 0) {
    std::memcpy(t.data, data, byteSize());
  }
  return t;
}

std::vector<int64_t> Tensor::toInt64Vector() const {
  int64_t n = numel();
  std::vector<int64_t> out((size_t)n);
  if (dtype == DType::Int64) {
    for (int64_t i = 0; i < n; i++) out[i] = ptr<int64_t>()[i];
  } else if (dtype == DType::Int32) {
    for (int64_t i = 0; i < n; i++) out[i] = ptr<int32_t>()[i];
  } else {
    fail(ErrorCode::InvalidModel, std::string("expected an int32/int64 tensor, got ") + dtypeName(dtype));
  }
  return out;
}

double Tensor::scalarAsDouble(int64_t i) const {
  KILN_CHECK(i >= 0 && i < numel(), InvalidArgument, "element index out of range");
  switch (dtype) {
    case DType::Float32: return ptr<float>()[i];
    case DType::Float64: return ptr<double>()[i];
    case DType::Float16: return halfToFloat(ptr<uint16_t>()[i]);
    case DType::BFloat16: return bfloat16ToFloat(ptr<uint16_t>()[i]);
    case DType::Int8: return ptr<int8_t>()[i];
    case DType::UInt8: return ptr<uint8_t>()[i];
    case DType::Int16: return ptr<int16_t>()[i];
    case DType::UInt16: return ptr<uint16_t>()[i];
    case DType::Int32: return ptr<int32_t>()[i];
    case DType::UInt32: return ptr<uint32_t>()[i];
    case DType::Int64: return (double)ptr<int64_t>()[i];
    case DType::UInt64: return (double)ptr<uint64_t>()[i];
    case DType::Bool: return ptr<uint8_t>()[i] ? 1.0 : 0.0;
    case DType::String:
    case DType::Undefined:
      break;
  }
  fail(ErrorCode::InvalidArgument, std::string("tensor of type ") + dtypeName(dtype) + " is not numeric");
}

}  // namespace kiln
