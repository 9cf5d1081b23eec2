// Tensors between JavaScript and the engine. A JS tensor is {dtype, shape, data}: dtype a name from
// dtypeName() ("float32", "int64", "bool", "float16", ...), shape an array of non-negative integers,
// data the typed array for that dtype: Float32Array, Float64Array, Int8/16/32Array, BigInt64Array,
// Uint8/16/32Array, BigUint64Array; bool as Uint8Array, float16 and bfloat16 as Uint16Array (raw
// bits), string as an array of strings. Inputs are copied into engine-owned tensors on the JS
// thread, so the caller may reuse or detach its buffers while a run is in flight.
#pragma once
#include <napi.h>

#include <string>

#include "core/tensor.h"
#include "graph/ir.h"

namespace kiln::node {

// Throws a JS error (code INVALID_ARGUMENT / DTYPE_MISMATCH) naming `name` on a malformed tensor.
Tensor tensorFromJs(const Napi::Value& value, const std::string& name);
Napi::Object tensorToJs(Napi::Env env, const Tensor& tensor);
// {name, dtype, shape} for engine/model signatures: shape is an array whose dims are numbers (known)
// or strings (symbols such as "batch"), or null when even the rank is unknown.
Napi::Object tensorInfoToJs(Napi::Env env, const std::string& name, DType dtype, const SymShape& shape);
Napi::Array shapeToJs(Napi::Env env, const Shape& shape);
// A JS array of non-negative integers -> Shape (throws INVALID_ARGUMENT naming `what`).
Shape shapeFromJs(const Napi::Value& value, const std::string& what);

}  // namespace kiln::node
