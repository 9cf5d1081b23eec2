// One error type crosses every layer of the engine. The addon turns it into a JavaScript Error with
// `code` set to errorCodeName(code), so callers can branch on the code and show the message to users.
#pragma once
#include <stdexcept>
#include <string>

namespace kiln {

enum class ErrorCode {
  InvalidModel,     // the ONNX bytes are malformed, truncated, cyclic or inconsistent
  UnsupportedOp,    // "unsupported operator X (opset N) at node 'name'"
  InvalidArgument,  // bad options or a bad call from the host
  ShapeMismatch,    // an input's shape violates the model or every optimization profile
  DTypeMismatch,    // an input's element type differs from the model's
  EngineMismatch,   // a serialized engine built for another target/version, or corrupt
  OutOfMemory,      // an allocation failed or a size would exceed limits
  Cancelled,        // a build was cancelled by its caller
  Internal,         // a bug in Kiln: the message says where
};

const char* errorCodeName(ErrorCode code);  // "INVALID_MODEL", "UNSUPPORTED_OP", ...

class KilnError : public std::runtime_error {
 public:
  KilnError(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] void fail(ErrorCode code, const std::string& message);

}  // namespace kiln

// Check a condition that depends on untrusted input; on failure throw KilnError(code, message).
#define KILN_CHECK(cond, code, msg)                  \
  do {                                               \
    if (!(cond)) ::kiln::fail(::kiln::ErrorCode::code, (msg)); \
  } while (0)
