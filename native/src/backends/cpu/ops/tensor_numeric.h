// Typed arithmetic for the data-movement ops that do compute something (Scatter reductions, TopK,
// Range, Resize, Einsum...): each numeric dtype is visited as a trait with its storage type and
// the type arithmetic is done in (fp16/bf16 compute in float).
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "core/dtype.h"
#include "core/error.h"

namespace kiln::cpu {

template <class T>
struct PlainNum {
  using Storage = T;
  using Compute = T;
  static T load(T v) { return v; }
  static T store(T v) { return v; }
  // Converts a computed double to the storage type: rounded to nearest and saturated for integers.
  static T fromDouble(double v) {
    if constexpr (std::is_floating_point<T>::value) {
      return (T)v;
    } else {
      if (std::isnan(v)) return T(0);
      v = std::nearbyint(v);
      if (v <= (double)std::numeric_limits<T>::lowest()) return std::numeric_limits<T>::lowest();
      if (v >= (double)std::numeric_limits<T>::max()) return std::numeric_limits<T>::max();
      return (T)v;
    }
  }
};

struct HalfNum {
  using Storage = uint16_t;
  using Compute = float;
  static float load(uint16_t v) { return halfToFloat(v); }
  static uint16_t store(float v) { return floatToHalf(v); }
  static uint16_t fromDouble(double v) { return floatToHalf((float)v); }
};

struct BFloat16Num {
  using Storage = uint16_t;
  using Compute = float;
  static float load(uint16_t v) { return bfloat16ToFloat(v); }
  static uint16_t store(float v) { return floatToBfloat16(v); }
  static uint16_t fromDouble(double v) { return floatToBfloat16((float)v); }
};

// Calls f(Num{}) for numeric dtypes; throws UnsupportedOp naming `what` for Bool, String, Undefined.
template <class F>
decltype(auto) visitNumeric(DType dtype, const std::string& what, F&& f) {
  switch (dtype) {
    case DType::Float32: return f(PlainNum<float>{});
    case DType::Float64: return f(PlainNum<double>{});
    case DType::Float16: return f(HalfNum{});
    case DType::BFloat16: return f(BFloat16Num{});
    case DType::Int8: return f(PlainNum<int8_t>{});
    case DType::UInt8: return f(PlainNum<uint8_t>{});
    case DType::Int16: return f(PlainNum<int16_t>{});
    case DType::UInt16: return f(PlainNum<uint16_t>{});
    case DType::Int32: return f(PlainNum<int32_t>{});
    case DType::UInt32: return f(PlainNum<uint32_t>{});
    case DType::Int64: return f(PlainNum<int64_t>{});
    case DType::UInt64: return f(PlainNum<uint64_t>{});
    case DType::Bool:
    case DType::String:
    case DType::Undefined:
      break;
  }
  fail(ErrorCode::UnsupportedOp, what + ": element type " + dtypeName(dtype) + " is not supported");
}

// Calls f(Num{}) for the floating dtypes only.
template <class F>
decltype(auto) visitFloating(DType dtype, const std::string& what, F&& f) {
  switch (dtype) {
    case DType::Float32: return f(PlainNum<float>{});
    case DType::Float64: return f(PlainNum<double>{});
    case DType::Float16: return f(HalfNum{});
    case DType::BFloat16: return f(BFloat16Num{});
    case DType::Int8:
    case DType::UInt8:
    case DType::Int16:
    case DType::UInt16:
    case DType::Int32:
    case DType::UInt32:
    case DType::Int64:
    case DType::UInt64:
    case DType::Bool:
    case DType::String:
    case DType::Undefined:
      break;
  }
  fail(ErrorCode::UnsupportedOp, what + ": element type " + dtypeName(dtype) + " is not supported");
}

// Reads element i of an int32/int64 index tensor.
inline int64_t indexAt(const void* data, DType dtype, int64_t i) {
  return dtype == DType::Int32 ? (int64_t) static_cast<const int32_t*>(data)[i] : static_cast<const int64_t*>(data)[i];
}

}  // namespace kiln::cpu
