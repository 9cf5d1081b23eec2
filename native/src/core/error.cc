#include "core/error.h"

namespace kiln {

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidModel: return "INVALID_MODEL";
    case ErrorCode::UnsupportedOp: return "UNSUPPORTED_OP";
    case ErrorCode::InvalidArgument: return "INVALID_ARGUMENT";
    case ErrorCode::ShapeMismatch: return "SHAPE_MISMATCH";
    case ErrorCode::DTypeMismatch: return "DTYPE_MISMATCH";
    case ErrorCode::EngineMismatch: return "ENGINE_MISMATCH";
    case ErrorCode::OutOfMemory: return "OUT_OF_MEMORY";
    case ErrorCode::Cancelled: return "CANCELLED";
    case ErrorCode::Internal: return "INTERNAL";
  }
  return "INTERNAL";
}

void fail(ErrorCode code, const std::string& message) { throw KilnError(code, message); }

}  // namespace kiln
