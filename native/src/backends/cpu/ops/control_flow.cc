// CPU kernels of If, Loop and Scan. Bodies run through KernelContext::subgraphs (the runtime's
// SubgraphRunner), with the node's enclosing scope for captured values. Outputs are allocated here
// once their shapes are known (the schemas mark these ops data-dependent).
#include <algorithm>

#include "backends/cpu/ops/tensor_copy.h"
#include "ops/control_flow.h"
#include "ops/tensor_util.h"

namespace kiln::cpu {

namespace {

// Runs a body; results that do not own their memory (views the runner could hand back) are
// copied, since they outlive this iteration.
std::vector<Tensor> runBody(KernelContext& ctx, const Graph& body, const std::vector<const Tensor*>& inputs) {
  if (!ctx.subgraphs) nodeFail(ctx.node, ErrorCode::Internal, "no subgraph runner was provided to run the body");
  std::vector<Tensor> out = ctx.subgraphs->run(body, inputs, ctx.outerScope);
  if (out.size() != body.outputs.size()) {
    nodeFail(ctx.node, ErrorCode::Internal, "body '" + body.name + "' returned " + std::to_string(out.size()) + " outputs");
  }
  for (Tensor& t : out)
    if (!t.holder && t.data) t = t.clone();
  return out;
}

bool truth(const KernelContext& ctx, const Tensor& t, const char* what) {
  if (t.numel() != 1) nodeFail(ctx.node, ErrorCode::InvalidArgument, std::string(what) + " must have exactly one element");
  return t.scalarAsDouble(0) != 0;
}

// Output i becomes a copy of `value` (when the model keeps that output).
void emit(KernelContext& ctx, size_t i, const Tensor& value) {
  if (i >= ctx.outputs.size() || !ctx.outputs[i]) return;
  Tensor& out = ctx.allocateOutput(i, value.dtype, value.shape);
  copyTensor(value, out, threadsOf(ctx));
}

std::unique_ptr<Kernel> createIfKernel(const KernelCreateInfo& info) {
  std::shared_ptr<const Graph> thenBody = controlBodyShared(info.node, "then_branch");
  std::shared_ptr<const Graph> elseBody = controlBodyShared(info.node, "else_branch");
  return makeKernel("if", [thenBody, elseBody](KernelContext& ctx) {
    const bool cond = truth(ctx, needInput(ctx, 0, "cond"), "cond");
    const Graph& body = cond ? *thenBody : *elseBody;
    std::vector<Tensor> results = runBody(ctx, body, {});
    if (results.size() != ctx.outputs.size()) {
      nodeFail(ctx.node, ErrorCode::InvalidModel, std::string(cond ? "then" : "else") + "_branch produced " +
                                                      std::to_string(results.size()) + " outputs");
    }
    for (size_t i = 0; i < results.size(); i++) emit(ctx, i, results[i]);
  });
}

// Stacks per-iteration tensors (all of one shape) along a new axis at `axis`, in `order`.
Tensor stack(const KernelContext& ctx, const std::vector<Tensor>& parts, int64_t axis, bool reverse, DType dtype,
             const Shape& emptyShape) {
  if (parts.empty()) {
    Shape shape = emptyShape;
    shape.insert(shape.begin() + std::min<int64_t>(axis, (int64_t)shape.size()), 0);
    return Tensor::allocate(dtype, shape);
  }
  const Shape& per = parts[0].shape;
  for (const Tensor& p : parts) {
    if (p.shape != per || p.dtype != dtype) {
      nodeFail(ctx.node, ErrorCode::ShapeMismatch,
               "scan output changes shape across iterations: " + shapeToString(per) + " vs " + shapeToString(p.shape));
    }
  }
  Shape shape = per;
  shape.insert(shape.begin() + axis, (int64_t)parts.size());
  Tensor out = Tensor::allocate(dtype, shape);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; d++) outer *= per[(size_t)d];
  for (size_t d = (size_t)axis; d < per.size(); d++) inner *= per[d];
  const int64_t n = (int64_t)parts.size();
  for (int64_t t = 0; t < n; t++) {
    const int64_t pos = reverse ? n - 1 - t : t;
    for (int64_t o = 0; o < outer; o++) {
      copyElements(dtype, out.data, (o * n + pos) * inner, parts[(size_t)t].data, o * inner, inner);
    }
  }
  return out;
}

// The body output's declared shape, for stacking zero iterations (rank 0 when unknown).
Shape declaredShape(const Graph& body, size_t output) {
  const SymShape& s = body.values[(size_t)body.outputs[output]].shape;
  return s.isConcrete() ? s.concrete() : Shape{};
}

std::unique_ptr<Kernel> createLoopKernel(const KernelCreateInfo& info) {
  std::shared_ptr<const Graph> body = controlBodyShared(info.node, "body");
  return makeKernel("loop", [body](KernelContext& ctx) {
    if (ctx.inputs.size() < 2) nodeFail(ctx.node, ErrorCode::InvalidModel, "Loop needs inputs M and cond");
    const size_t carried = ctx.inputs.size() - 2;
    if (body->inputs.size() != carried + 2 || body->outputs.size() < carried + 1) {
      nodeFail(ctx.node, ErrorCode::InvalidModel, "body signature does not match the loop's inputs");
    }
    const size_t scans = body->outputs.size() - 1 - carried;
    int64_t trips = INT64_MAX;
    if (ctx.inputs[0]) {
      const Tensor& m = *ctx.inputs[0];
      if (m.numel() != 1) nodeFail(ctx.node, ErrorCode::InvalidArgument, "M must have exactly one element");
      trips = m.toInt64Vector()[0];
    }
    bool cond = ctx.inputs[1] ? truth(ctx, *ctx.inputs[1], "cond") : true;
    std::vector<Tensor> state;
    for (size_t i = 0; i < carried; i++) state.push_back(needInput(ctx, i + 2, "v_initial"));
    std::vector<std::vector<Tensor>> scanParts(scans);
    for (int64_t i = 0; i < trips && cond; i++) {
      // Fresh scalars every iteration: a body may pass them through as outputs (scan outputs of
      // the iteration number are common), so they must not be overwritten later.
      Tensor iter = Tensor::allocate(DType::Int64, {});
      Tensor condT = Tensor::allocate(DType::Bool, {});
      iter.ptr<int64_t>()[0] = i;
      condT.ptr<uint8_t>()[0] = 1;
      std::vector<const Tensor*> in = {&iter, &condT};
      for (const Tensor& s : state) in.push_back(&s);
      std::vector<Tensor> out = runBody(ctx, *body, in);
      cond = truth(ctx, out[0], "the body's cond output");
      for (size_t k = 0; k < carried; k++) state[k] = std::move(out[k + 1]);
      for (size_t k = 0; k < scans; k++) scanParts[k].push_back(std::move(out[carried + 1 + k]));
    }
    for (size_t k = 0; k < carried; k++) emit(ctx, k, state[k]);
    for (size_t k = 0; k < scans; k++) {
      const DType dtype = body->values[(size_t)body->outputs[carried + 1 + k]].dtype;
      const DType t = scanParts[k].empty() ? dtype : scanParts[k][0].dtype;
      emit(ctx, carried + k, stack(ctx, scanParts[k], 0, false, t, declaredShape(*body, carried + 1 + k)));
    }
  });
}

std::unique_ptr<Kernel> createScanKernel(const KernelCreateInfo& info) {
  std::shared_ptr<const Graph> body = controlBodyShared(info.node, "body");
  const ScanConfig config = scanConfig(info.node, info.inputTypes.size(), info.node.outputs.size(),
                                       [&](const std::string& m) { nodeFail(info.node, ErrorCode::InvalidModel, m); });
  return makeKernel("scan", [body, config](KernelContext& ctx) {
    const ScanConfig& c = config;
    if (body->inputs.size() != c.numStates + c.numScanInputs || body->outputs.size() != c.numStates + c.numScanOutputs) {
      nodeFail(ctx.node, ErrorCode::InvalidModel, "body signature does not match the scan's inputs and outputs");
    }
    // Every scan input is sliced along its axis; all must have the same length.
    int64_t length = -1;
    std::vector<int64_t> axes;
    for (size_t j = 0; j < c.numScanInputs; j++) {
      const Tensor& x = needInput(ctx, c.numStates + j, "scan input");
      const int64_t axis = kernelAxis(ctx.node, c.inputAxes[j], (int64_t)x.shape.size(), "scan_input_axes");
      axes.push_back(axis);
      if (length >= 0 && x.shape[(size_t)axis] != length) {
        nodeFail(ctx.node, ErrorCode::ShapeMismatch, "scan inputs have different sequence lengths");
      }
      length = x.shape[(size_t)axis];
    }
    std::vector<Tensor> state;
    for (size_t i = 0; i < c.numStates; i++) state.push_back(needInput(ctx, i, "initial state"));
    std::vector<std::vector<Tensor>> scanParts(c.numScanOutputs);
    std::vector<Tensor> slices(c.numScanInputs);
    for (int64_t t = 0; t < length; t++) {
      for (size_t j = 0; j < c.numScanInputs; j++) {
        const Tensor& x = *ctx.inputs[c.numStates + j];
        const int64_t pos = c.inputDirections[j] == 1 ? length - 1 - t : t;
        // The slice is x with the scan axis fixed at pos: a strided view without that dim.
        const std::vector<int64_t> strides = shapeStrides(x.shape);
        Shape shape;
        std::vector<int64_t> viewStrides;
        for (size_t d = 0; d < x.shape.size(); d++) {
          if ((int64_t)d == axes[j]) continue;
          shape.push_back(x.shape[d]);
          viewStrides.push_back(strides[d]);
        }
        slices[j] = Tensor::allocate(x.dtype, shape);
        copyStrided(x.dtype, slices[j].data, x.data, shape, viewStrides, pos * strides[(size_t)axes[j]], threadsOf(ctx));
      }
      std::vector<const Tensor*> in;
      for (const Tensor& s : state) in.push_back(&s);
      for (const Tensor& s : slices) in.push_back(&s);
      std::vector<Tensor> out = runBody(ctx, *body, in);
      for (size_t i = 0; i < c.numStates; i++) state[i] = std::move(out[i]);
      for (size_t k = 0; k < c.numScanOutputs; k++) scanParts[k].push_back(std::move(out[c.numStates + k]));
    }
    for (size_t i = 0; i < c.numStates; i++) emit(ctx, i, state[i]);
    for (size_t k = 0; k < c.numScanOutputs; k++) {
      const Shape empty = declaredShape(*body, c.numStates + k);
      const DType dtype = scanParts[k].empty() ? body->values[(size_t)body->outputs[c.numStates + k]].dtype : scanParts[k][0].dtype;
      const int64_t rank = scanParts[k].empty() ? (int64_t)empty.size() : (int64_t)scanParts[k][0].shape.size();
      const int64_t axis = kernelAxis(ctx.node, c.outputAxes[k], rank + 1, "scan_output_axes");
      emit(ctx, c.numStates + k, stack(ctx, scanParts[k], axis, c.outputDirections[k] == 1, dtype, empty));
    }
  });
}

// Scan-8 runs the Scan-9 recurrence once per batch entry (dim 0 of every input and output), over
// that entry's sequence length; scan outputs of shorter sequences are zero-padded.
std::unique_ptr<Kernel> createScan8Kernel(const KernelCreateInfo& info) {
  std::shared_ptr<const Graph> body = controlBodyShared(info.node, "body");
  const int64_t numScanInputs = info.node.getInt("num_scan_inputs", -1);
  const std::vector<int64_t> directions = info.node.getInts("directions");
  return makeKernel("scan8", [body, numScanInputs, directions](KernelContext& ctx) {
    const size_t operands = ctx.inputs.empty() ? 0 : ctx.inputs.size() - 1;
    if (numScanInputs < 1 || (size_t)numScanInputs > operands) {
      nodeFail(ctx.node, ErrorCode::InvalidModel, "num_scan_inputs must be in [1, number of inputs - 1]");
    }
    const size_t m = (size_t)numScanInputs, states = operands - m;
    if (!directions.empty() && directions.size() != m) nodeFail(ctx.node, ErrorCode::InvalidModel, "directions must have one entry per scan input");
    if (body->inputs.size() != operands || body->outputs.size() != ctx.outputs.size() || ctx.outputs.size() < states) {
      nodeFail(ctx.node, ErrorCode::InvalidModel, "body signature does not match the scan's inputs and outputs");
    }
    const size_t scanOutputs = ctx.outputs.size() - states;
    int64_t batch = -1, maxLen = -1;
    for (size_t i = 0; i < operands; i++) {
      const Tensor& t = needInput(ctx, 1 + i, "input");
      const size_t minRank = i >= states ? 2 : 1;
      if (t.shape.size() < minRank || (batch >= 0 && t.shape[0] != batch) ||
          (i >= states && maxLen >= 0 && t.shape[1] != maxLen)) {
        nodeFail(ctx.node, ErrorCode::ShapeMismatch, "input " + std::to_string(i + 1) + " of shape " + shapeToString(t.shape) +
                                                         " does not match the batch and sequence sizes");
      }
      batch = t.shape[0];
      if (i >= states) maxLen = t.shape[1];
    }
    std::vector<int64_t> lens((size_t)batch, maxLen);
    if (ctx.inputs[0]) {
      lens = ctx.inputs[0]->toInt64Vector();
      if ((int64_t)lens.size() != batch) nodeFail(ctx.node, ErrorCode::ShapeMismatch, "sequence_lens must have one entry per batch entry");
      for (int64_t len : lens) {
        if (len < 0 || len > maxLen) nodeFail(ctx.node, ErrorCode::InvalidArgument, "sequence length " + std::to_string(len) + " is out of range");
      }
    }
    // Row b of a [batch, ...] tensor as its own tensor (a copy).
    auto row = [&](const Tensor& t, int64_t b) {
      Tensor r = Tensor::allocate(t.dtype, Shape(t.shape.begin() + 1, t.shape.end()));
      copyElements(t.dtype, r.data, 0, t.data, b * r.numel(), r.numel());
      return r;
    };
    std::vector<std::vector<Tensor>> finalStates(states), scanRows(scanOutputs);
    for (int64_t b = 0; b < batch; b++) {
      std::vector<Tensor> state;
      for (size_t i = 0; i < states; i++) state.push_back(row(*ctx.inputs[1 + i], b));
      std::vector<std::vector<Tensor>> parts(scanOutputs);
      for (int64_t t = 0; t < lens[(size_t)b]; t++) {
        std::vector<Tensor> slices;
        for (size_t j = 0; j < m; j++) {
          const Tensor& x = *ctx.inputs[1 + states + j];
          const int64_t pos = !directions.empty() && directions[j] == 1 ? lens[(size_t)b] - 1 - t : t;
          Shape shape(x.shape.begin() + 2, x.shape.end());
          Tensor slice = Tensor::allocate(x.dtype, shape);
          copyElements(x.dtype, slice.data, 0, x.data, (b * maxLen + pos) * slice.numel(), slice.numel());
          slices.push_back(std::move(slice));
        }
        std::vector<const Tensor*> in;
        for (const Tensor& s : state) in.push_back(&s);
        for (const Tensor& s : slices) in.push_back(&s);
        std::vector<Tensor> out = runBody(ctx, *body, in);
        for (size_t i = 0; i < states; i++) state[i] = std::move(out[i]);
        for (size_t k = 0; k < scanOutputs; k++) parts[k].push_back(std::move(out[states + k]));
      }
      for (size_t i = 0; i < states; i++) finalStates[i].push_back(std::move(state[i]));
      for (size_t k = 0; k < scanOutputs; k++) {
        // Pad to the longest sequence with zeros so every batch entry has maxLen rows.
        const Shape per = parts[k].empty() ? declaredShape(*body, states + k) : parts[k][0].shape;
        const DType dtype = parts[k].empty() ? body->values[(size_t)body->outputs[states + k]].dtype : parts[k][0].dtype;
        while ((int64_t)parts[k].size() < maxLen) parts[k].push_back(Tensor::allocate(dtype, per));
        scanRows[k].push_back(stack(ctx, parts[k], 0, false, dtype, per));
      }
    }
    for (size_t i = 0; i < states; i++) {
      const DType dtype = finalStates[i].empty() ? ctx.inputs[1 + i]->dtype : finalStates[i][0].dtype;
      const Shape per(ctx.inputs[1 + i]->shape.begin() + 1, ctx.inputs[1 + i]->shape.end());
      emit(ctx, i, stack(ctx, finalStates[i], 0, false, dtype, per));
    }
    for (size_t k = 0; k < scanOutputs; k++) {
      const DType dtype = body->values[(size_t)body->outputs[states + k]].dtype;
      const DType t = scanRows[k].empty() ? dtype : scanRows[k][0].dtype;
      Shape per = declaredShape(*body, states + k);
      per.insert(per.begin(), maxLen);
      emit(ctx, states + k, stack(ctx, scanRows[k], 0, false, t, per));
    }
  });
}

}  // namespace

KILN_REGISTER_KERNEL(Scan, (KernelDef{"cpu", "", "Scan", 8, createScan8Kernel}));
KILN_REGISTER_KERNEL(If, (KernelDef{"cpu", "", "If", 1, createIfKernel}));
KILN_REGISTER_KERNEL(Loop, (KernelDef{"cpu", "", "Loop", 1, createLoopKernel}));
KILN_REGISTER_KERNEL(Scan, (KernelDef{"cpu", "", "Scan", 9, createScanKernel}));

}  // namespace kiln::cpu
