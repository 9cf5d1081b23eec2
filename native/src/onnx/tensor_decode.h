// onnxproto::TensorProto / SparseTensorProto -> Tensor, with every size checked: dims against the
// data actually present, external files against their real size, sparse indices against the dense
// shape. Internal to the reader.
#pragma once
#include <string>

#include "core/tensor.h"
#include "onnx/model_reader.h"
#include "onnx/proto.h"

namespace kiln {

// Running totals shared by all tensors of one model, checked against ReadOptions limits.
struct TensorBudget {
  int64_t totalBytes = 0;
};

// `what` names the tensor in errors: "initializer 'conv1.weight'", "attribute 'value' of node 'c'".
Tensor decodeTensor(const onnxproto::TensorProto& t, const std::string& what, const ReadOptions& options,
                    TensorBudget& budget);
Tensor decodeSparseTensor(const onnxproto::SparseTensorProto& s, const std::string& what,
                          const ReadOptions& options, TensorBudget& budget);

// Maps an ONNX elem_type code to DType; throws (naming `what`) for unknown or unsupported codes.
DType decodeDType(int32_t code, const std::string& what);

}  // namespace kiln
