// Helpers shared by the schemas of the data-movement ops (ops/tensor*.cc, shape*.cc, index*.cc,
// resize*.cc, misc*.cc, control*.cc) and by their kernels on every backend: axis normalisation,
// reading "attribute before opset N, input from opset N" arguments, and symbolic dim products.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "ops/schema.h"

namespace kiln {

// "Gather node 'name'", the prefix of every kernel-time error so users can find the node.
std::string describeNode(const Node& node);
// Throws KilnError(code) with describeNode(node) + ": " + what.
[[noreturn]] void nodeFail(const Node& node, ErrorCode code, const std::string& what);

// Maps axis from [-rank, rank) to [0, rank); ctx.error naming `what` otherwise.
int64_t inferAxis(InferContext& ctx, int64_t axis, int64_t rank, const std::string& what = "axis");
// The same for kernels (InvalidArgument naming the node).
int64_t kernelAxis(const Node& node, int64_t axis, int64_t rank, const std::string& what = "axis");

// Normalises a list of axes for a tensor of `rank`, rejecting duplicates and out-of-range values.
// `onError` receives the message; it must throw.
std::vector<int64_t> normalizeAxes(const std::vector<int64_t>& axes, int64_t rank, const std::string& what,
                                   const std::function<void(const std::string&)>& onError);

// An integer-list argument that moved from an attribute to an input at some opset (Squeeze axes at
// 13, Split split at 13, Slice starts/ends at 10, Pad pads at 11, TopK k at 10...).
struct IntsArg {
  bool present = false;  // given at all (attribute set or input not omitted)
  bool known = false;    // its values are known at this point
  std::vector<int64_t> values;
  size_t knownLength = 0;  // when !known but the input's 1-D length is known: that length
  bool lengthKnown = false;
};
IntsArg readIntsArg(const InferContext& ctx, const std::string& attr, size_t input, int64_t inputSince);

// Float values of input i when known (Float32/Float64/Float16/BFloat16), else nullopt.
std::optional<std::vector<double>> knownFloats(const InferContext& ctx, size_t i);
// Every element of a numeric tensor as double (slow; for small parameter tensors).
std::vector<double> tensorToDoubles(const Tensor& t);

// Stores v (converted, saturating for integers) as element i of a numeric or bool tensor.
void storeDouble(Tensor& t, int64_t i, double v);

// Element count of a concrete shape; ctx.error (naming the node) when it overflows or is absurd.
int64_t inferNumel(InferContext& ctx, const Shape& shape);

// Requires input i to be present; ctx.error otherwise.
void expectInput(InferContext& ctx, size_t i, const char* name);

// Symbolic product of dims: known when all known, the symbol when the product is one symbol times 1,
// else a fresh symbol.
Dim dimProduct(InferContext& ctx, const std::vector<Dim>& dims);

// Divides the product of `numerator` dims by the product of `denominator` dims symbolically
// (cancelling equal symbols); nullopt when the quotient cannot be expressed as one Dim, and
// ctx.error when known sizes do not divide (a reshape of 12 elements into [5,-1]).
std::optional<Dim> dimQuotient(InferContext& ctx, const std::vector<Dim>& numerator, const std::vector<Dim>& denominator);

}  // namespace kiln
