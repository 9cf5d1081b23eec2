// Element types. Values are ONNX TensorProto.DataType codes so the reader can cast directly.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace kiln {

enum class DType : int32_t {
  Undefined = 0,
  Float32 = 1,
  UInt8 = 2,
  Int8 = 3,
  UInt16 = 4,
  Int16 = 5,
  Int32 = 6,
  Int64 = 7,
  String = 8,  // stored as std::string objects (only a few ops handle it)
  Bool = 9,    // one byte per element, 0 or 1
  Float16 = 10,
  Float64 = 11,
  UInt32 = 12,
  UInt64 = 13,
  BFloat16 = 16,
};

// Bytes per element; 0 for Undefined. String returns sizeof(std::string).
size_t dtypeSize(DType t);
// "float32", "int64", ... (KServe v2 spelling is derived from this in TypeScript).
const char* dtypeName(DType t);
// True when the code is one this engine knows (used by the reader to reject garbage).
bool isKnownDType(int32_t code);
bool isFloating(DType t);  // Float16, BFloat16, Float32, Float64
bool isInteger(DType t);   // signed or unsigned integer types (not Bool)

// IEEE half <-> float conversions (round-to-nearest-even), used by kernels that compute fp16 in fp32.
float halfToFloat(uint16_t h);
uint16_t floatToHalf(float f);
float bfloat16ToFloat(uint16_t h);
uint16_t floatToBfloat16(float f);

}  // namespace kiln
