#include "onnx/tensor_decode.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace kiln {

namespace {

[[noreturn]] void invalid(const std::string& msg) { fail(ErrorCode::InvalidModel, msg); }

std::string dimsToString(const std::vector<int64_t>& dims) { return shapeToString(dims); }

// ONNX element types that are valid ONNX but have no Kiln DType.
const char* unsupportedTypeName(int32_t code) {
  switch (code) {
    case 14: return "COMPLEX64";
    case 15: return "COMPLEX128";
    case 17: return "FLOAT8E4M3FN";
    case 18: return "FLOAT8E4M3FNUZ";
    case 19: return "FLOAT8E5M2";
    case 20: return "FLOAT8E5M2FNUZ";
    case 21: return "UINT4";
    case 22: return "INT4";
    case 23: return "FLOAT4E2M1";
    case 24: return "FLOAT8E8M0";
    case 25: return "UINT2";
    case 26: return "INT2";
    default: return nullptr;
  }
}

// Element count of `dims`, refusing negative dims, ranks over the limit and int64 overflow.
int64_t checkedNumel(const std::vector<int64_t>& dims, const std::string& what, const ReadOptions& options) {
  if (dims.size() > options.maxRank) {
    invalid(what + " has rank " + std::to_string(dims.size()) + ", more than the limit of " +
            std::to_string(options.maxRank));
  }
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) invalid(what + " has a negative dimension in " + dimsToString(dims));
    if (__builtin_mul_overflow(n, d, &n)) invalid(what + " dims " + dimsToString(dims) + " overflow");
  }
  return n;
}

int64_t checkedBytes(int64_t numel, DType dtype, const std::vector<int64_t>& dims, const std::string& what) {
  int64_t bytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<int64_t>(dtypeSize(dtype)), &bytes)) {
    invalid(what + " dims " + dimsToString(dims) + " overflow");
  }
  return bytes;
}

void chargeBudget(int64_t bytes, const std::string& what, const ReadOptions& options, TensorBudget& budget) {
  if (bytes > options.maxTensorBytes) {
    fail(ErrorCode::OutOfMemory, what + " needs " + std::to_string(bytes) + " bytes, more than the limit of " +
                                     std::to_string(options.maxTensorBytes));
  }
  if (budget.totalBytes > options.maxTotalTensorBytes - bytes) {
    fail(ErrorCode::OutOfMemory, "the model's tensors need more than the limit of " +
                                     std::to_string(options.maxTotalTensorBytes) + " bytes (at " + what + ")");
  }
  budget.totalBytes += bytes;
}

// Strict non-negative decimal (external data offset/length are strings in ONNX).
int64_t parseDecimal(const std::string& s, const std::string& what) {
  if (s.empty() || s.size() > 19) invalid(what + " is not a valid byte count: '" + s + "'");
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') invalid(what + " is not a valid byte count: '" + s + "'");
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, c - '0', &v)) {
      invalid(what + " is not a valid byte count: '" + s + "'");
    }
  }
  return v;
}

// A location is a relative path inside the model folder: no absolute paths, no '..', no
// backslashes (a Windows "..\\x" must not become a legal file name here), no NULs.
void checkLocation(const std::string& loc, const std::string& what) {
  if (loc.empty()) invalid(what + " has an empty external data location");
  if (loc.find('\0') != std::string::npos || loc.find('\\') != std::string::npos) {
    invalid(what + " has an invalid external data location '" + loc + "'");
  }
  if (loc[0] == '/') invalid(what + " external data location '" + loc + "' is an absolute path");
  size_t start = 0;
  while (start <= loc.size()) {
    size_t end = loc.find('/', start);
    if (end == std::string::npos) end = loc.size();
    if (loc.compare(start, end - start, "..") == 0 && end - start == 2) {
      invalid(what + " external data location '" + loc + "' escapes the model folder");
    }
    start = end + 1;
  }
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

void readExternal(const onnxproto::TensorProto& t, Tensor& out, int64_t bytes, const std::string& what,
                  const ReadOptions& options) {
  std::string location, offsetText, lengthText;
  bool hasOffset = false, hasLength = false;
  for (const auto& [key, value] : t.externalData) {
    if (key == "location") location = value;
    if (key == "offset") {
      offsetText = value;
      hasOffset = true;
    }
    if (key == "length") {
      lengthText = value;
      hasLength = true;
    }
  }
  checkLocation(location, what);
  if (options.modelDirectory.empty()) {
    invalid(what + " is stored in external file '" + location +
            "', but external data is not available here (no model directory was given)");
  }
  if (out.dtype == DType::String) invalid(what + " is a string tensor stored as external data");
  int64_t offset = hasOffset ? parseDecimal(offsetText, what + " external data offset") : 0;
  if (hasLength) {
    int64_t length = parseDecimal(lengthText, what + " external data length");
    if (length != bytes) {
      invalid(what + " external data length is " + std::to_string(length) + " bytes but its shape " +
              shapeToString(out.shape) + " of " + dtypeName(out.dtype) + " needs " + std::to_string(bytes));
    }
  }

  // Resolve symlinks on both sides so a link inside the folder cannot point outside it.
  char dirReal[PATH_MAX], fileReal[PATH_MAX];
  if (!realpath(options.modelDirectory.c_str(), dirReal)) {
    invalid("model directory '" + options.modelDirectory + "' does not exist");
  }
  std::string path = options.modelDirectory + "/" + location;
  if (!realpath(path.c_str(), fileReal)) {
    invalid(what + " external data file '" + location + "' was not found in the model directory");
  }
  std::string dirPrefix = std::string(dirReal) + (std::string(dirReal) == "/" ? "" : "/");
  if (std::string(fileReal).compare(0, dirPrefix.size(), dirPrefix) != 0) {
    invalid(what + " external data file '" + location + "' resolves outside the model directory");
  }
  Fd f;
  f.fd = open(fileReal, O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) invalid(what + " external data file '" + location + "' cannot be opened: " + std::strerror(errno));
  struct stat st;
  if (fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    invalid(what + " external data file '" + location + "' is not a regular file");
  }
  int64_t fileSize = static_cast<int64_t>(st.st_size);
  if (offset > fileSize || bytes > fileSize - offset) {
    invalid(what + " needs bytes [" + std::to_string(offset) + ", " + std::to_string(offset) + "+" +
            std::to_string(bytes) + ") of external file '" + location + "', which has only " +
            std::to_string(fileSize) + " bytes");
  }
  auto* dst = static_cast<uint8_t*>(out.data);
  int64_t done = 0;
  while (done < bytes) {
    size_t chunk = static_cast<size_t>(std::min<int64_t>(bytes - done, int64_t(1) << 30));
    ssize_t got = pread(f.fd, dst + done, chunk, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) invalid(what + " could not read external file '" + location + "' (file changed or I/O error)");
    done += got;
  }
}

// Typed-field decoding: `count` values must match the element count exactly.
void checkCount(size_t count, int64_t numel, const char* field, const std::string& what,
                const std::vector<int64_t>& dims) {
  if (static_cast<int64_t>(count) != numel) {
    invalid(what + " has " + std::to_string(count) + " " + field + " values but its shape " + dimsToString(dims) +
            " needs " + std::to_string(numel));
  }
}

template <class Dst, class Src>
void copyConvert(Tensor& out, const std::vector<Src>& src) {
  Dst* d = out.ptr<Dst>();
  for (size_t i = 0; i < src.size(); i++) d[i] = static_cast<Dst>(src[i]);
}

// Which typed field holds each dtype (ONNX TensorProto comments).
const char* typedFieldFor(DType dt) {
  switch (dt) {
    case DType::Float32: return "float_data";
    case DType::Int32: case DType::Int16: case DType::Int8: case DType::UInt16: case DType::UInt8:
    case DType::Bool: case DType::Float16: case DType::BFloat16:
      return "int32_data";
    case DType::Int64: return "int64_data";
    case DType::UInt32: case DType::UInt64: return "uint64_data";
    case DType::Float64: return "double_data";
    case DType::String: return "string_data";
    case DType::Undefined: return "";
  }
  return "";
}

void decodeTyped(const onnxproto::TensorProto& t, Tensor& out, int64_t numel, const std::string& what) {
  const auto& dims = t.dims;
  // Exactly the field that belongs to the dtype may carry data.
  struct Field { const char* name; size_t count; };
  const Field fields[] = {{"float_data", t.floatData.size()},   {"int32_data", t.int32Data.size()},
                          {"int64_data", t.int64Data.size()},   {"uint64_data", t.uint64Data.size()},
                          {"double_data", t.doubleData.size()}, {"string_data", t.stringData.size()}};
  const char* own = typedFieldFor(out.dtype);
  for (const Field& f : fields) {
    if (f.count > 0 && std::strcmp(f.name, own) != 0) {
      invalid(what + " of type " + dtypeName(out.dtype) + " stores data in " + f.name + " (expected " + own + ")");
    }
  }
  switch (out.dtype) {
    case DType::Float32:
      checkCount(t.floatData.size(), numel, "float_data", what, dims);
      copyConvert<float>(out, t.floatData);
      return;
    case DType::Int32:
      checkCount(t.int32Data.size(), numel, "int32_data", what, dims);
      copyConvert<int32_t>(out, t.int32Data);
      return;
    case DType::Int16:
      checkCount(t.int32Data.size(), numel, "int32_data", what, dims);
      copyConvert<int16_t>(out, t.int32Data);
      return;
    case DType::Int8:
      checkCount(t.int32Data.size(), numel, "int32_data", what, dims);
      copyConvert<int8_t>(out, t.int32Data);
      return;
    case DType::UInt16:
    case DType::Float16:
    case DType::BFloat16:  // 16-bit patterns in the low half of each int32
      checkCount(t.int32Data.size(), numel, "int32_data", what, dims);
      copyConvert<uint16_t>(out, t.int32Data);
      return;
    case DType::UInt8:
      checkCount(t.int32Data.size(), numel, "int32_data", what, dims);
      copyConvert<uint8_t>(out, t.int32Data);
      return;
    case DType::Bool: {
      checkCount(t.int32Data.size(), numel, "int32_data", what, dims);
      uint8_t* d = out.ptr<uint8_t>();
      for (size_t i = 0; i < t.int32Data.size(); i++) d[i] = t.int32Data[i] != 0 ? 1 : 0;
      return;
    }
    case DType::Int64:
      checkCount(t.int64Data.size(), numel, "int64_data", what, dims);
      copyConvert<int64_t>(out, t.int64Data);
      return;
    case DType::UInt32:
      checkCount(t.uint64Data.size(), numel, "uint64_data", what, dims);
      copyConvert<uint32_t>(out, t.uint64Data);
      return;
    case DType::UInt64:
      checkCount(t.uint64Data.size(), numel, "uint64_data", what, dims);
      copyConvert<uint64_t>(out, t.uint64Data);
      return;
    case DType::Float64:
      checkCount(t.doubleData.size(), numel, "double_data", what, dims);
      copyConvert<double>(out, t.doubleData);
      return;
    case DType::String: {
      checkCount(t.stringData.size(), numel, "string_data", what, dims);
      std::string* d = out.ptr<std::string>();
      for (size_t i = 0; i < t.stringData.size(); i++) d[i] = std::string(t.stringData[i]);
      return;
    }
    case DType::Undefined:
      break;
  }
  invalid(what + " has no element type");
}

}  // namespace

DType decodeDType(int32_t code, const std::string& what) {
  if (isKnownDType(code)) return static_cast<DType>(code);
  if (code == 0) invalid(what + " has no element type");
  if (const char* name = unsupportedTypeName(code)) {
    fail(ErrorCode::UnsupportedOp, what + " has element type " + name + " (ONNX code " + std::to_string(code) +
                                       "), which Kiln does not support");
  }
  invalid(what + " has unknown element type code " + std::to_string(code));
}

Tensor decodeTensor(const onnxproto::TensorProto& t, const std::string& what, const ReadOptions& options,
                    TensorBudget& budget) {
  DType dtype = decodeDType(t.dataType, what);
  if (t.hasSegment) fail(ErrorCode::UnsupportedOp, what + " is a segmented tensor, which Kiln does not support");
  int64_t numel = checkedNumel(t.dims, what, options);
  // Strings are charged by their text, numbers by their fixed size.
  int64_t bytes = dtype == DType::String ? 0 : checkedBytes(numel, dtype, t.dims, what);

  bool typed = !t.floatData.empty() || !t.int32Data.empty() || !t.int64Data.empty() || !t.uint64Data.empty() ||
               !t.doubleData.empty() || !t.stringData.empty();
  if (t.dataLocation != onnxproto::kLocationDefault && t.dataLocation != onnxproto::kLocationExternal) {
    invalid(what + " has unknown data_location " + std::to_string(t.dataLocation));
  }
  bool external = t.dataLocation == onnxproto::kLocationExternal;
  if (external && (typed || t.hasRawData)) invalid(what + " has both external data and inline data");
  if (typed && t.hasRawData) invalid(what + " has both raw_data and typed data fields");

  // Compare sizes before allocating, so a huge declared shape with little data fails cheaply.
  if (t.hasRawData) {
    if (dtype == DType::String) invalid(what + " is a string tensor with raw_data (strings need string_data)");
    if (static_cast<int64_t>(t.rawData.size()) != bytes) {
      invalid(what + " has " + std::to_string(t.rawData.size()) + " bytes of raw_data but its shape " +
              dimsToString(t.dims) + " of " + dtypeName(dtype) + " needs " + std::to_string(bytes));
    }
  } else if (!external && numel > 0 && !typed) {
    invalid(what + " has shape " + dimsToString(t.dims) + " (" + std::to_string(numel) + " elements) but no data");
  }
  if (dtype == DType::String) {
    int64_t textBytes = 0;
    for (const auto& s : t.stringData) textBytes += static_cast<int64_t>(s.size()) + 1;
    int64_t slots = checkedBytes(static_cast<int64_t>(t.stringData.size()), DType::String, t.dims, what);
    chargeBudget(textBytes + slots, what, options, budget);
    if (typed || numel == 0) checkCount(t.stringData.size(), numel, "string_data", what, t.dims);
  } else {
    chargeBudget(bytes, what, options, budget);
  }

  Tensor out = Tensor::allocate(dtype, t.dims);
  if (t.hasRawData) {
    if (bytes > 0) std::memcpy(out.data, t.rawData.data(), static_cast<size_t>(bytes));
  } else if (external) {
    readExternal(t, out, bytes, what, options);
  } else if (typed) {
    decodeTyped(t, out, numel, what);
  }
  return out;
}

Tensor decodeSparseTensor(const onnxproto::SparseTensorProto& s, const std::string& what, const ReadOptions& options,
                          TensorBudget& budget) {
  if (!s.hasValues) invalid(what + " (sparse) has no values");
  Tensor values = decodeTensor(s.values, what + " values", options, budget);
  if (values.dtype == DType::String) fail(ErrorCode::UnsupportedOp, what + " is a sparse string tensor");
  if (values.shape.size() != 1) invalid(what + " (sparse) values must be 1-D, got " + shapeToString(values.shape));
  int64_t nnz = values.shape[0];
  int64_t denseNumel = checkedNumel(s.dims, what, options);
  int64_t denseBytes = checkedBytes(denseNumel, values.dtype, s.dims, what);
  chargeBudget(denseBytes, what, options, budget);
  Tensor dense = Tensor::allocate(values.dtype, s.dims);
  if (nnz == 0) return dense;
  if (!s.hasIndices) invalid(what + " (sparse) has values but no indices");
  Tensor indexTensor = decodeTensor(s.indices, what + " indices", options, budget);
  if (indexTensor.dtype != DType::Int64 && indexTensor.dtype != DType::Int32) {
    invalid(what + " (sparse) indices must be int64, got " + dtypeName(indexTensor.dtype));
  }
  std::vector<int64_t> idx = indexTensor.toInt64Vector();
  const size_t rank = s.dims.size();
  std::vector<int64_t> strides = shapeStrides(s.dims);
  bool linear = indexTensor.shape.size() == 1 && indexTensor.shape[0] == nnz;
  bool coords = indexTensor.shape.size() == 2 && indexTensor.shape[0] == nnz &&
                indexTensor.shape[1] == static_cast<int64_t>(rank);
  if (!linear && !coords) {
    invalid(what + " (sparse) indices have shape " + shapeToString(indexTensor.shape) + ", expected [" +
            std::to_string(nnz) + "] or [" + std::to_string(nnz) + "," + std::to_string(rank) + "]");
  }
  size_t elem = dtypeSize(values.dtype);
  auto* dst = static_cast<uint8_t*>(dense.data);
  const auto* src = static_cast<const uint8_t*>(values.data);
  for (int64_t k = 0; k < nnz; k++) {
    int64_t flat = 0;
    if (linear) {
      flat = idx[k];
      if (flat < 0 || flat >= denseNumel) {
        invalid(what + " (sparse) index " + std::to_string(flat) + " is outside " + dimsToString(s.dims));
      }
    } else {
      for (size_t d = 0; d < rank; d++) {
        int64_t c = idx[k * rank + d];
        if (c < 0 || c >= s.dims[d]) {
          invalid(what + " (sparse) index " + std::to_string(c) + " on axis " + std::to_string(d) + " is outside " +
                  dimsToString(s.dims));
        }
        flat += c * strides[d];
      }
    }
    std::memcpy(dst + flat * elem, src + k * elem, elem);
  }
  return dense;
}

}  // namespace kiln
