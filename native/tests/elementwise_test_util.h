// Helpers for the elementwise-family op tests (elementwise_*_test.cc), on top of the shared op
// harness in tensor_test_harness.h (schema inference + CPU kernel, as the runtime runs them).
#pragma once
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "tensor_test_harness.h"

namespace kiln_test {

inline Tensor f32(const Shape& shape, const std::vector<float>& v) { return make<float>(shape, v); }
inline Tensor f64(const Shape& shape, const std::vector<double>& v) { return make<double>(shape, v); }
inline Tensor i32(const Shape& shape, const std::vector<int32_t>& v) { return make<int32_t>(shape, v); }
inline Tensor i64(const Shape& shape, const std::vector<int64_t>& v) { return make<int64_t>(shape, v); }
inline Tensor scalarF(float v) { return make<float>({}, {v}); }

// Tensors of types the shared harness has no C++ type for.
inline Tensor u16(const Shape& shape, const std::vector<uint16_t>& v) {
  Tensor t = Tensor::allocate(DType::UInt16, shape);
  for (size_t i = 0; i < v.size(); i++) t.ptr<uint16_t>()[i] = v[i];
  return t;
}
inline Tensor half(const Shape& shape, const std::vector<float>& v) {
  Tensor t = Tensor::allocate(DType::Float16, shape);
  for (size_t i = 0; i < v.size(); i++) t.ptr<uint16_t>()[i] = kiln::floatToHalf(v[i]);
  return t;
}
inline Tensor bf16(const Shape& shape, const std::vector<float>& v) {
  Tensor t = Tensor::allocate(DType::BFloat16, shape);
  for (size_t i = 0; i < v.size(); i++) t.ptr<uint16_t>()[i] = kiln::floatToBfloat16(v[i]);
  return t;
}

// Any numeric tensor as doubles (float16/bfloat16 decoded).
inline std::vector<double> asDoubles(const Tensor& t) {
  std::vector<double> out;
  for (int64_t i = 0; i < t.numel(); i++) out.push_back(t.scalarAsDouble(i));
  return out;
}

// Expects t to have `shape`, `type` and values within tol (absolute) of `want`; NaN matches NaN.
inline void expectTensor(const Tensor& t, DType type, const Shape& shape, const std::vector<double>& want,
                         double tol = 1e-6) {
  if (t.dtype != type) throw Failure(std::string("dtype ") + kiln::dtypeName(t.dtype) + " != expected " + kiln::dtypeName(type));
  if (t.shape != shape) throw Failure("shape " + kiln::shapeToString(t.shape) + " != expected " + kiln::shapeToString(shape));
  std::vector<double> got = asDoubles(t);
  if (got.size() != want.size()) throw Failure("element count differs");
  for (size_t i = 0; i < got.size(); i++) {
    bool ok = (std::isnan(got[i]) && std::isnan(want[i])) || got[i] == want[i] || std::fabs(got[i] - want[i]) <= tol;
    if (!ok) {
      std::ostringstream msg;
      msg << "element " << i << ": got " << got[i] << ", expected " << want[i];
      throw Failure(msg.str());
    }
  }
}

inline Tensor unary(const std::string& op, const Tensor& x, Attrs attrs = {}, int64_t opset = 18) {
  return run1({op, opset, {x}, std::move(attrs)});
}
inline Tensor binary(const std::string& op, const Tensor& a, const Tensor& b, Attrs attrs = {}, int64_t opset = 18) {
  return run1({op, opset, {a, b}, std::move(attrs)});
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace kiln_test
