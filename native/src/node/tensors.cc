#include "node/tensors.h"

#include <cmath>
#include <cstring>

#include "node/addon.h"

namespace kiln::node {
namespace {

struct DTypeBinding {
  const char* name;
  DType dtype;
  napi_typedarray_type array;
  const char* arrayName;
};

// Every dtype a tensor can cross the boundary with, and the typed array that carries it.
constexpr DTypeBinding kBindings[] = {
    {"float32", DType::Float32, napi_float32_array, "Float32Array"},
    {"float64", DType::Float64, napi_float64_array, "Float64Array"},
    {"float16", DType::Float16, napi_uint16_array, "Uint16Array"},
    {"bfloat16", DType::BFloat16, napi_uint16_array, "Uint16Array"},
    {"int8", DType::Int8, napi_int8_array, "Int8Array"},
    {"int16", DType::Int16, napi_int16_array, "Int16Array"},
    {"int32", DType::Int32, napi_int32_array, "Int32Array"},
    {"int64", DType::Int64, napi_bigint64_array, "BigInt64Array"},
    {"uint8", DType::UInt8, napi_uint8_array, "Uint8Array"},
    {"uint16", DType::UInt16, napi_uint16_array, "Uint16Array"},
    {"uint32", DType::UInt32, napi_uint32_array, "Uint32Array"},
    {"uint64", DType::UInt64, napi_biguint64_array, "BigUint64Array"},
    {"bool", DType::Bool, napi_uint8_array, "Uint8Array"},
};

const DTypeBinding* bindingFor(DType dtype) {
  for (const DTypeBinding& b : kBindings) {
    if (b.dtype == dtype) return &b;
  }
  return nullptr;
}

const char* typedArrayName(napi_typedarray_type t) {
  for (const DTypeBinding& b : kBindings) {
    if (b.array == t) return b.arrayName;
  }
  switch (t) {
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    default: return "an unsupported typed array";
  }
}

[[noreturn]] void invalid(Napi::Env env, const std::string& message) { throw makeError(env, "INVALID_ARGUMENT", message); }

}  // namespace

Shape shapeFromJs(const Napi::Value& value, const std::string& what) {
  Napi::Env env = value.Env();
  if (!value.IsArray()) invalid(env, what + ": shape must be an array of non-negative integers");
  Napi::Array array = value.As<Napi::Array>();
  Shape shape;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value d = array.Get(i);
    double v = -1;
    if (d.IsNumber()) v = d.As<Napi::Number>().DoubleValue();
    if (d.IsBigInt()) {
      bool lossless = false;
      v = static_cast<double>(d.As<Napi::BigInt>().Int64Value(&lossless));
    }
    if (!(v >= 0) || v != std::floor(v) || v > 9007199254740991.0)
      invalid(env, what + ": shape dim " + std::to_string(i) + " is not a non-negative integer");
    shape.push_back(static_cast<int64_t>(v));
  }
  return shape;
}

Tensor tensorFromJs(const Napi::Value& value, const std::string& name) {
  Napi::Env env = value.Env();
  const std::string what = "input '" + name + "'";
  if (!value.IsObject()) invalid(env, what + " must be a tensor object {dtype, shape, data}");
  Napi::Object obj = value.As<Napi::Object>();
  Napi::Value dtypeValue = obj.Get("dtype");
  if (!dtypeValue.IsString()) invalid(env, what + ": dtype must be a string such as \"float32\"");
  std::string dtypeName = dtypeValue.As<Napi::String>().Utf8Value();
  Shape shape = shapeFromJs(obj.Get("shape"), what);
  int64_t numel = 0;
  try {
    numel = shapeNumel(shape);
  } catch (const KilnError& e) {
    invalid(env, what + ": " + e.what());
  }
  Napi::Value data = obj.Get("data");

  if (dtypeName == "string") {
    if (!data.IsArray()) invalid(env, what + ": string tensors take an array of strings as data");
    Napi::Array array = data.As<Napi::Array>();
    if (static_cast<int64_t>(array.Length()) != numel)
      invalid(env, what + ": shape " + shapeToString(shape) + " has " + std::to_string(numel) +
                       " elements but data has " + std::to_string(array.Length()));
    Tensor t = Tensor::allocate(DType::String, shape);
    for (uint32_t i = 0; i < array.Length(); ++i) {
      Napi::Value s = array.Get(i);
      if (!s.IsString()) invalid(env, what + ": element " + std::to_string(i) + " is not a string");
      t.ptr<std::string>()[i] = s.As<Napi::String>().Utf8Value();
    }
    return t;
  }

  const DTypeBinding* binding = nullptr;
  for (const DTypeBinding& b : kBindings) {
    if (dtypeName == b.name) binding = &b;
  }
  if (binding == nullptr) invalid(env, what + ": unknown dtype '" + dtypeName + "'");
  if (!data.IsTypedArray()) invalid(env, what + ": dtype " + dtypeName + " needs a " + binding->arrayName + " as data");
  Napi::TypedArray array = data.As<Napi::TypedArray>();
  if (array.TypedArrayType() != binding->array)
    invalid(env, what + ": dtype " + dtypeName + " needs a " + binding->arrayName + ", got " +
                     typedArrayName(array.TypedArrayType()));
  if (static_cast<int64_t>(array.ElementLength()) != numel)
    invalid(env, what + ": shape " + shapeToString(shape) + " has " + std::to_string(numel) +
                     " elements but data has " + std::to_string(array.ElementLength()));
  Tensor t = Tensor::allocate(binding->dtype, shape);
  const uint8_t* src = static_cast<const uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  if (t.byteSize() > 0) std::memcpy(t.data, src, t.byteSize());
  if (binding->dtype == DType::Bool) {
    // Kernels expect exactly 0 or 1 in a bool.
    uint8_t* b = t.ptr<uint8_t>();
    for (int64_t i = 0; i < numel; ++i) b[i] = b[i] != 0;
  }
  return t;
}

Napi::Array shapeToJs(Napi::Env env, const Shape& shape) {
  Napi::Array out = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); ++i) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(shape[i])));
  return out;
}

Napi::Object tensorToJs(Napi::Env env, const Tensor& tensor) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("dtype", dtypeName(tensor.dtype));
  out.Set("shape", shapeToJs(env, tensor.shape));
  const int64_t numel = tensor.numel();
  if (tensor.dtype == DType::String) {
    Napi::Array data = Napi::Array::New(env, static_cast<size_t>(numel));
    for (int64_t i = 0; i < numel; ++i) data.Set(static_cast<uint32_t>(i), tensor.ptr<std::string>()[i]);
    out.Set("data", data);
    return out;
  }
  const DTypeBinding* binding = bindingFor(tensor.dtype);
  if (binding == nullptr)
    throw makeError(env, "INTERNAL", std::string("output of dtype ") + dtypeName(tensor.dtype) + " cannot be returned");
  // A fresh ArrayBuffer owned by V8: the engine's memory is never exposed to JavaScript.
  const size_t bytes = tensor.byteSize();
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, bytes);
  if (bytes > 0) std::memcpy(buffer.Data(), tensor.data, bytes);
  napi_value array;
  napi_status status = napi_create_typedarray(env, binding->array, static_cast<size_t>(numel), buffer, 0, &array);
  NAPI_THROW_IF_FAILED(env, status, Napi::Object());
  out.Set("data", Napi::Value(env, array));
  return out;
}

Napi::Object tensorInfoToJs(Napi::Env env, const std::string& name, DType dtype, const SymShape& shape) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("name", name);
  out.Set("dtype", dtypeName(dtype));
  if (!shape.hasRank) {
    out.Set("shape", env.Null());
    return out;
  }
  Napi::Array dims = Napi::Array::New(env, shape.rank());
  for (size_t i = 0; i < shape.rank(); ++i) {
    const Dim& d = shape.dims[i];
    if (d.isKnown()) {
      dims.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(d.value)));
    } else {
      dims.Set(static_cast<uint32_t>(i), Napi::String::New(env, d.symbol.empty() ? "?" : d.symbol));
    }
  }
  out.Set("shape", dims);
  return out;
}

}  // namespace kiln::node
