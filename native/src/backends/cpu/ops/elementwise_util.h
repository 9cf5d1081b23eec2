// Shared plumbing for the CPU kernels of the elementwise families (elementwise, activation, logic,
// cast, softmax, reduce, quantize): element storage types, dtype dispatch, error messages and the
// parallel loop. Every kernel computes in a "compute type": the storage type itself, except float16
// and bfloat16 (computed in float32 and rounded back) and bool (stored as one byte, computed as bool).
#pragma once
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

#include "backends/kernel.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace kiln::cpu {

// Storage types that are not plain C++ arithmetic types.
struct f16 { uint16_t bits; };
struct bf16 { uint16_t bits; };
struct boolean { uint8_t v; };

template <class S>
struct Num {
  using C = S;
  static C load(const S& s) { return s; }
  static S store(const C& c) { return c; }
};
template <>
struct Num<f16> {
  using C = float;
  static float load(f16 s) { return halfToFloat(s.bits); }
  static f16 store(float c) { return f16{floatToHalf(c)}; }
};
template <>
struct Num<bf16> {
  using C = float;
  static float load(bf16 s) { return bfloat16ToFloat(s.bits); }
  static bf16 store(float c) { return bf16{floatToBfloat16(c)}; }
};
template <>
struct Num<boolean> {
  using C = bool;
  static bool load(boolean s) { return s.v != 0; }
  static boolean store(bool c) { return boolean{static_cast<uint8_t>(c ? 1 : 0)}; }
};

// Sets of dtypes, one bit each, for "which types does this op accept".
enum TypeBits : uint32_t {
  kF32 = 1u << 0, kF64 = 1u << 1, kF16 = 1u << 2, kBF16 = 1u << 3,
  kI8 = 1u << 4, kI16 = 1u << 5, kI32 = 1u << 6, kI64 = 1u << 7,
  kU8 = 1u << 8, kU16 = 1u << 9, kU32 = 1u << 10, kU64 = 1u << 11,
  kBool = 1u << 12, kStr = 1u << 13,
};
constexpr uint32_t kFloats = kF32 | kF64 | kF16 | kBF16;
constexpr uint32_t kSigned = kI8 | kI16 | kI32 | kI64;
constexpr uint32_t kUnsigned = kU8 | kU16 | kU32 | kU64;
constexpr uint32_t kInts = kSigned | kUnsigned;
constexpr uint32_t kNumeric = kFloats | kInts;
constexpr uint32_t kAll = kNumeric | kBool | kStr;

inline uint32_t typeBit(DType t) {
  switch (t) {
    case DType::Float32: return kF32;
    case DType::Float64: return kF64;
    case DType::Float16: return kF16;
    case DType::BFloat16: return kBF16;
    case DType::Int8: return kI8;
    case DType::Int16: return kI16;
    case DType::Int32: return kI32;
    case DType::Int64: return kI64;
    case DType::UInt8: return kU8;
    case DType::UInt16: return kU16;
    case DType::UInt32: return kU32;
    case DType::UInt64: return kU64;
    case DType::Bool: return kBool;
    case DType::String: return kStr;
    case DType::Undefined: return 0;
  }
  return 0;
}

template <class T>
struct Tag {
  using type = T;
};

// What a kernel remembers about its node for error messages.
struct OpInfo {
  std::string op, name;
  int64_t opset = 0;

  OpInfo() = default;
  explicit OpInfo(const KernelCreateInfo& info) : op(info.node.opType), name(info.node.name), opset(info.opset) {}
  std::string where() const { return op + " node '" + name + "'"; }
  [[noreturn]] void unsupported(DType t, const std::string& role = "") const {
    fail(ErrorCode::UnsupportedOp, "unsupported operator " + op + " (opset " + std::to_string(opset) +
                                       ") at node '" + name + "': dtype " + dtypeName(t) +
                                       (role.empty() ? "" : " for " + role));
  }
  [[noreturn]] void invalid(const std::string& what) const {
    fail(ErrorCode::InvalidModel, where() + ": " + what);
  }
  [[noreturn]] void shape(const std::string& what) const { fail(ErrorCode::ShapeMismatch, where() + ": " + what); }
  // Throws UnsupportedOp unless t is in `allowed`.
  void require(uint32_t allowed, DType t, const std::string& role = "") const {
    if ((allowed & typeBit(t)) == 0) unsupported(t, role);
  }
};

// Input i's type at kernel creation; Undefined when absent (a malformed node may have fewer inputs).
inline DType inputType(const KernelCreateInfo& info, size_t i) {
  return i < info.inputTypes.size() ? info.inputTypes[i] : DType::Undefined;
}
inline DType outputType(const KernelCreateInfo& info, size_t i) {
  return i < info.outputTypes.size() ? info.outputTypes[i] : DType::Undefined;
}

// Calls f(Tag<S>{}) with the storage type S of dtype t when t is in Allowed; otherwise throws
// UnsupportedOp. Only allowed types are instantiated, so f may use operations they alone support.
template <uint32_t Allowed, class F>
void dispatch(DType t, const OpInfo& info, F&& f) {
  switch (t) {
    case DType::Float32: if constexpr ((Allowed & kF32) != 0) return f(Tag<float>{}); break;
    case DType::Float64: if constexpr ((Allowed & kF64) != 0) return f(Tag<double>{}); break;
    case DType::Float16: if constexpr ((Allowed & kF16) != 0) return f(Tag<f16>{}); break;
    case DType::BFloat16: if constexpr ((Allowed & kBF16) != 0) return f(Tag<bf16>{}); break;
    case DType::Int8: if constexpr ((Allowed & kI8) != 0) return f(Tag<int8_t>{}); break;
    case DType::Int16: if constexpr ((Allowed & kI16) != 0) return f(Tag<int16_t>{}); break;
    case DType::Int32: if constexpr ((Allowed & kI32) != 0) return f(Tag<int32_t>{}); break;
    case DType::Int64: if constexpr ((Allowed & kI64) != 0) return f(Tag<int64_t>{}); break;
    case DType::UInt8: if constexpr ((Allowed & kU8) != 0) return f(Tag<uint8_t>{}); break;
    case DType::UInt16: if constexpr ((Allowed & kU16) != 0) return f(Tag<uint16_t>{}); break;
    case DType::UInt32: if constexpr ((Allowed & kU32) != 0) return f(Tag<uint32_t>{}); break;
    case DType::UInt64: if constexpr ((Allowed & kU64) != 0) return f(Tag<uint64_t>{}); break;
    case DType::Bool: if constexpr ((Allowed & kBool) != 0) return f(Tag<boolean>{}); break;
    case DType::String: if constexpr ((Allowed & kStr) != 0) return f(Tag<std::string>{}); break;
    case DType::Undefined: break;
  }
  info.unsupported(t);
}

// Converts a double to T without undefined behaviour: NaN -> 0, out of range -> saturated.
template <class T>
inline T saturateCast(double v) {
  if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v);
  } else if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else {
    if (v != v) return 0;
    if (v <= static_cast<double>(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
    // max() of 64-bit types is not exactly representable; compare against 2^bits instead.
    constexpr double limit = static_cast<double>(std::numeric_limits<T>::max()) + 1.0;
    if (v >= limit) return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  }
}

// Unsigned type wide enough that integer promotion cannot turn it back into (overflowing) int.
template <class T>
using WrapT = std::conditional_t<(sizeof(T) < sizeof(unsigned)), unsigned, std::make_unsigned_t<T>>;

// Signed overflow (and uint16 * uint16, which promotes to int) is undefined in C++: integers do
// their arithmetic in an unsigned type, which wraps, and truncate back.
template <class T, class F>
T wrapping(T a, T b, F f) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(f(static_cast<WrapT<T>>(a), static_cast<WrapT<T>>(b)));
  } else {
    return static_cast<T>(f(a, b));
  }
}

// Elements per parallel task: large enough to amortise scheduling, small enough to balance.
constexpr int64_t kGrain = 16384;

inline ThreadPool& poolOf(const KernelContext& ctx) { return ctx.pool ? *ctx.pool : ThreadPool::global(); }

// Input i of a run, which must be present.
inline const Tensor& requireInput(const KernelContext& ctx, const OpInfo& info, size_t i) {
  if (i >= ctx.inputs.size() || ctx.inputs[i] == nullptr) info.invalid("input " + std::to_string(i) + " is missing");
  return *ctx.inputs[i];
}

// Output i of a run, which must be present and allocated with `shape`.
inline Tensor& requireOutput(const KernelContext& ctx, const OpInfo& info, size_t i, const Shape& shape) {
  if (i >= ctx.outputs.size() || ctx.outputs[i] == nullptr) info.invalid("output " + std::to_string(i) + " is missing");
  Tensor& t = *ctx.outputs[i];
  if (t.shape != shape) {
    fail(ErrorCode::Internal, info.where() + ": output " + std::to_string(i) + " was allocated as " +
                                  shapeToString(t.shape) + " but the kernel computes " + shapeToString(shape));
  }
  if (t.data == nullptr && shapeNumel(shape) > 0) {
    fail(ErrorCode::Internal, info.where() + ": output " + std::to_string(i) + " has no memory");
  }
  return t;
}

// Normalises an axis attribute/input against a rank: accepts [-rank, rank).
inline int64_t normalizeAxis(int64_t axis, int64_t rank, const OpInfo& info, const char* what = "axis") {
  if (axis < -rank || axis >= rank) {
    info.invalid(std::string(what) + " " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

}  // namespace kiln::cpu
