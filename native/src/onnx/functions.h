// Inlining of model-local functions (ModelProto.functions, IR >= 8). Done on the proto structs,
// before the Graph is built, so the rest of the reader only ever sees plain nodes.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "onnx/model_reader.h"
#include "onnx/proto.h"

namespace kiln {

// Replaces every node of `graph` (and of its subgraphs) that calls one of `functions` by the
// function's body: formal inputs/outputs become the call's names, internal values get fresh names
// "<call node>/<name>", attribute references (ref_attr_name) take the call's attribute or the
// function's default, and the body's opset imports are merged into `opsets` (a conflicting version
// is an error). Throws InvalidModel for calls with too many inputs/outputs, duplicate function
// definitions and recursion deeper than options.maxFunctionDepth.
void inlineFunctions(onnxproto::GraphProto& graph, const std::vector<onnxproto::FunctionProto>& functions,
                     std::map<std::string, int64_t>& opsets, const ReadOptions& options);

}  // namespace kiln
