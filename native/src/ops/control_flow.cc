// Schemas of the control-flow ops If, Loop and Scan. Their bodies are inferred by the shape
// inference driver before these run, so output types come from the bodies' output values. Output
// shapes can depend on which branch runs or how many iterations happen, so all three are
// data-dependent: the kernels allocate their outputs.
#include "ops/control_flow.h"

#include "ops/tensor_util.h"

namespace kiln {

const Graph& controlBody(const Node& node, const char* attr) {
  auto it = node.attrs.find(attr);
  if (it == node.attrs.end() || it->second.kind != Attribute::Kind::Graph || !it->second.g) {
    nodeFail(node, ErrorCode::InvalidModel, std::string("graph attribute '") + attr + "' is missing");
  }
  return *it->second.g;
}

std::shared_ptr<const Graph> controlBodyShared(const Node& node, const char* attr) {
  controlBody(node, attr);  // validates
  return node.attrs.at(attr).g;
}

ScanConfig scanConfig(const Node& node, size_t numInputs, size_t numOutputs,
                      const std::function<void(const std::string&)>& onError) {
  ScanConfig c;
  const int64_t m = node.getInt("num_scan_inputs", -1);
  if (m < 1 || (size_t)m > numInputs) onError("num_scan_inputs must be in [1, number of inputs]");
  c.numScanInputs = (size_t)m;
  c.numStates = numInputs - c.numScanInputs;
  if (numOutputs < c.numStates) onError("Scan has fewer outputs than state variables");
  c.numScanOutputs = numOutputs - c.numStates;
  auto list = [&](const char* name, size_t n, int64_t fallback) {
    std::vector<int64_t> v = node.getInts(name);
    if (v.empty()) v.assign(n, fallback);
    if (v.size() != n) onError(std::string(name) + " must have " + std::to_string(n) + " entries");
    return v;
  };
  c.inputDirections = list("scan_input_directions", c.numScanInputs, 0);
  c.outputDirections = list("scan_output_directions", c.numScanOutputs, 0);
  c.inputAxes = list("scan_input_axes", c.numScanInputs, 0);
  c.outputAxes = list("scan_output_axes", c.numScanOutputs, 0);
  for (int64_t d : c.inputDirections)
    if (d != 0 && d != 1) onError("scan directions must be 0 or 1");
  for (int64_t d : c.outputDirections)
    if (d != 0 && d != 1) onError("scan directions must be 0 or 1");
  return c;
}

namespace {

DType bodyOutputType(InferContext& ctx, const Graph& body, size_t i) {
  const DType t = body.values[(size_t)body.outputs[i]].dtype;
  if (t == DType::Undefined) ctx.error("body output " + std::to_string(i) + " has no known type");
  return t;
}

const SymShape& bodyOutputShape(const Graph& body, size_t i) { return body.values[(size_t)body.outputs[i]].shape; }

// The shape both a and b satisfy: equal dims stay, differing ones become fresh.
SymShape mergeBranchShapes(InferContext& ctx, const SymShape& a, const SymShape& b) {
  if (!a.hasRank || !b.hasRank || a.rank() != b.rank()) return SymShape::unknown();
  SymShape out = a;
  for (size_t d = 0; d < a.rank(); d++)
    if (a.dims[d] != b.dims[d]) out.dims[d] = ctx.freshDim();
  return out;
}

void inferIf(InferContext& ctx) {
  expectInput(ctx, 0, "cond");
  const Graph& thenBody = controlBody(ctx.node, "then_branch");
  const Graph& elseBody = controlBody(ctx.node, "else_branch");
  if (thenBody.outputs.size() != ctx.numOutputs() || elseBody.outputs.size() != ctx.numOutputs()) {
    ctx.error("then_branch and else_branch must each produce " + std::to_string(ctx.numOutputs()) + " outputs");
  }
  // A known condition selects one branch's shapes exactly.
  const Tensor* cond = ctx.inputValues[0];
  const bool known = cond && cond->numel() == 1;
  for (size_t i = 0; i < ctx.numOutputs(); i++) {
    const DType t = bodyOutputType(ctx, thenBody, i), e = bodyOutputType(ctx, elseBody, i);
    if (t != e) ctx.error("branches disagree on the type of output " + std::to_string(i));
    SymShape shape = known ? bodyOutputShape(cond->scalarAsDouble(0) != 0 ? thenBody : elseBody, i)
                           : mergeBranchShapes(ctx, bodyOutputShape(thenBody, i), bodyOutputShape(elseBody, i));
    ctx.setOutput(i, t, shape);
  }
}

void inferLoop(InferContext& ctx) {
  const Graph& body = controlBody(ctx.node, "body");
  const size_t carried = ctx.numInputs() >= 2 ? ctx.numInputs() - 2 : 0;
  if (ctx.numInputs() < 2) ctx.error("Loop needs inputs M and cond (either may be empty)");
  if (body.inputs.size() != carried + 2) {
    ctx.error("body takes " + std::to_string(body.inputs.size()) + " inputs, expected " + std::to_string(carried + 2));
  }
  if (body.outputs.size() < carried + 1 || ctx.numOutputs() != body.outputs.size() - 1) {
    ctx.error("body must produce cond, the " + std::to_string(carried) + " loop-carried values and the scan outputs");
  }
  for (size_t i = 0; i < carried; i++) {
    expectInput(ctx, i + 2, "v_initial");
    const DType t = bodyOutputType(ctx, body, i + 1);
    if (t != ctx.inputTypes[i + 2]) ctx.error("loop-carried value " + std::to_string(i) + " changes type in the body");
    // Dims the body keeps stay; dims it changes differ per iteration.
    const SymShape& in = ctx.inputShapes[i + 2];
    ctx.setOutput(i, t, mergeBranchShapes(ctx, in, bodyOutputShape(body, i + 1)));
  }
  for (size_t k = carried; k < ctx.numOutputs(); k++) {
    const SymShape& per = bodyOutputShape(body, k + 1);
    SymShape out;
    if (per.hasRank) {
      out.hasRank = true;
      out.dims.push_back(ctx.freshDim());
      out.dims.insert(out.dims.end(), per.dims.begin(), per.dims.end());
    }
    ctx.setOutput(k, bodyOutputType(ctx, body, k + 1), out);
  }
}

void inferScan(InferContext& ctx) {
  const Graph& body = controlBody(ctx.node, "body");
  ScanConfig c = scanConfig(ctx.node, ctx.numInputs(), ctx.numOutputs(), [&](const std::string& m) { ctx.error(m); });
  if (body.inputs.size() != ctx.numInputs() || body.outputs.size() != ctx.numOutputs()) {
    ctx.error("body must take the states and scan slices and produce the states and scan outputs");
  }
  Dim length = ctx.freshDim();
  for (size_t j = 0; j < c.numScanInputs; j++) {
    expectInput(ctx, c.numStates + j, "scan input");
    const SymShape& s = ctx.inputShapes[c.numStates + j];
    if (!s.hasRank) continue;
    const int64_t axis = inferAxis(ctx, c.inputAxes[j], (int64_t)s.rank(), "scan_input_axes");
    if (j == 0 || !length.isKnown()) length = s.dims[(size_t)axis];
  }
  for (size_t i = 0; i < c.numStates; i++) {
    expectInput(ctx, i, "initial state");
    ctx.setOutput(i, bodyOutputType(ctx, body, i), ctx.inputShapes[i]);
  }
  for (size_t k = 0; k < c.numScanOutputs; k++) {
    const SymShape& per = bodyOutputShape(body, c.numStates + k);
    SymShape out;
    if (per.hasRank) {
      const int64_t axis = inferAxis(ctx, c.outputAxes[k], (int64_t)per.rank() + 1, "scan_output_axes");
      out = per;
      out.dims.insert(out.dims.begin() + axis, length);
    }
    ctx.setOutput(c.numStates + k, bodyOutputType(ctx, body, c.numStates + k), out);
  }
}

// Scan-8: every input and output has a leading batch dim; scan inputs are scanned along dim 1;
// an optional first input holds each batch entry's sequence length.
void inferScan8(InferContext& ctx) {
  const Graph& body = controlBody(ctx.node, "body");
  if (ctx.numInputs() < 1) ctx.error("Scan-8 needs the sequence_lens input slot");
  const size_t m = (size_t)ctx.node.getInt("num_scan_inputs", -1);
  const size_t operands = ctx.numInputs() - 1;
  if (m < 1 || m > operands) ctx.error("num_scan_inputs must be in [1, number of inputs - 1]");
  const size_t states = operands - m;
  if (body.inputs.size() != operands || body.outputs.size() != ctx.numOutputs() || ctx.numOutputs() < states) {
    ctx.error("body must take the states and scan slices and produce the states and scan outputs");
  }
  Dim batch = ctx.freshDim(), length = ctx.freshDim();
  for (size_t j = 0; j < m; j++) {
    expectInput(ctx, 1 + states + j, "scan input");
    const SymShape& sh = ctx.inputShapes[1 + states + j];
    if (sh.hasRank && sh.rank() < 2) ctx.error("scan inputs must be [batch, sequence, ...], got " + sh.toString());
    if (sh.hasRank) {
      batch = sh.dims[0];
      length = sh.dims[1];
    }
  }
  for (size_t i = 0; i < ctx.numOutputs(); i++) {
    const SymShape& per = bodyOutputShape(body, i);
    SymShape out;
    if (per.hasRank) {
      out = per;
      if (i >= states) out.dims.insert(out.dims.begin(), length);
      out.dims.insert(out.dims.begin(), batch);
    }
    ctx.setOutput(i, bodyOutputType(ctx, body, i), out);
  }
}

}  // namespace

KILN_REGISTER_SCHEMA(Scan, (OpSchema{"", "Scan", 8, inferScan8, true}));
KILN_REGISTER_SCHEMA(If, (OpSchema{"", "If", 1, inferIf, true}));
KILN_REGISTER_SCHEMA(Loop, (OpSchema{"", "Loop", 1, inferLoop, true}));
KILN_REGISTER_SCHEMA(Scan, (OpSchema{"", "Scan", 9, inferScan, true}));

}  // namespace kiln
