#include "backends/cuda/cuda_context.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "backends/cuda/cuda_libraries.h"
#include "backends/cuda/host_fallback.h"
#include "runtime/context.h"
#include "runtime/input_check.h"
#include "runtime/node_exec.h"

namespace kiln::cuda {
namespace {

using Clock = std::chrono::steady_clock;

Tensor shapeOnly(DType dtype, const Shape& shape) {
  Tensor t;
  t.dtype = dtype;
  t.shape = shape;
  return t;
}

size_t alignUp(size_t n, size_t a) { return (n + a - 1) / a * a; }

}  // namespace

StaticShapes inferStaticShapes(const EngineImpl& engine, const std::vector<Shape>& inputShapes) {
  const Graph& g = engine.graph();
  StaticShapes s;
  s.known.assign(g.values.size(), 0);
  s.types.assign(g.values.size(), DType::Undefined);
  s.shapes.assign(g.values.size(), Shape{});
  for (size_t v = 0; v < g.values.size(); ++v) {
    if (!g.values[v].constant) continue;
    s.known[v] = 1;
    s.types[v] = g.values[v].constant->dtype;
    s.shapes[v] = g.values[v].constant->shape;
  }
  for (size_t k = 0; k < g.inputs.size() && k < inputShapes.size(); ++k) {
    ValueId v = g.inputs[k];
    s.known[v] = 1;
    s.types[v] = g.values[v].dtype;
    s.shapes[v] = inputShapes[k];
  }
  std::vector<Tensor> holders(g.values.size());
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = g.nodes[n];
    const NodeInfo& info = engine.node(n);
    std::vector<const Tensor*> in(node.inputs.size(), nullptr), values(node.inputs.size(), nullptr);
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      ValueId v = node.inputs[i];
      if (v == kNoValue) continue;
      if (!s.known[v]) fail(ErrorCode::Internal, "value '" + g.values[v].name + "' used before it was computed");
      if (g.values[v].constant) {
        in[i] = values[i] = g.values[v].constant.get();
      } else {
        holders[v] = shapeOnly(s.types[v], s.shapes[v]);
        in[i] = &holders[v];
      }
    }
    ConcreteShapes cs;
    try {
      cs = inferConcrete(node, *info.schema, info.opset, in, values);
    } catch (const std::exception& e) {
      rethrowWithNode(node, e);
    }
    if (!cs.concrete || info.schema->dataDependentShape)
      fail(ErrorCode::UnsupportedOp, "node '" + node.name + "' (" + qualifiedOp(node) +
                                         "): its output shape depends on values computed on the device; the cuda "
                                         "backend needs every shape to follow from the input shapes");
    for (size_t j = 0; j < node.outputs.size(); ++j) {
      ValueId v = node.outputs[j];
      if (v == kNoValue) continue;
      s.known[v] = 1;
      s.types[v] = cs.types[j];
      s.shapes[v] = cs.shapes[j];
    }
  }
  return s;
}

void traceStaticShapes(const EngineImpl& engine, const std::map<std::string, Shape>& shapes, RunTrace& trace) {
  const Graph& g = engine.graph();
  std::vector<Shape> inputShapes;
  for (ValueId v : g.inputs) {
    auto it = shapes.find(g.values[v].name);
    inputShapes.push_back(it != shapes.end() ? it->second : g.values[v].shape.concrete());
  }
  StaticShapes s = inferStaticShapes(engine, inputShapes);
  const size_t numValues = g.values.size();
  trace.shapeOnly = true;
  trace.nodeMs.assign(g.nodes.size(), 0.0);
  trace.workspaceBytes.assign(g.nodes.size(), 0);
  trace.plannable.assign(numValues, 0);
  trace.shapeKnown = s.known;
  trace.shapes = s.shapes;
  trace.types = s.types;
  for (size_t v = 0; v < numValues; ++v) trace.plannable[v] = s.known[v] && !g.values[v].constant;
  std::vector<Tensor> holders(numValues);
  for (size_t v = 0; v < numValues; ++v) {
    holders[v] = g.values[v].constant ? *g.values[v].constant : shapeOnly(s.types[v], s.shapes[v]);
  }
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = g.nodes[n];
    std::vector<const Tensor*> in;
    std::vector<Tensor*> out;
    for (ValueId v : node.inputs) in.push_back(v == kNoValue ? nullptr : &holders[v]);
    for (ValueId v : node.outputs) out.push_back(v == kNoValue ? nullptr : &holders[v]);
    KernelContext ctx{node, in, out};
    try {
      trace.workspaceBytes[n] = engine.node(n).kernel->workspaceBytes(ctx);
    } catch (const std::exception& e) {
      rethrowWithNode(node, e);
    }
  }
}

namespace {
// Graph inputs and outputs planned at this size or more are copied between the caller's (pageable)
// memory and the device directly: the driver then pipelines its own staging with the DMA. Through
// Kiln's pinned buffer the host copy and the DMA ran one after the other (ResNet-50's 154 MB input
// at batch 256 spent about 27 ms in copies against PyTorch's 18). Smaller ones keep the pinned
// path (no staging round trip in the driver, the lower latency for a few KB).
constexpr size_t kDirectCopyBytes = 1u << 20;
}  // namespace

CudaContext::CudaContext(std::shared_ptr<const EngineImpl> engine, const EngineMemoryPlan* memory)
    : engine_(std::move(engine)), graph_(engine_->graph()), memory_(memory ? *memory : engine_->plan().memory) {
  const char* graphs = std::getenv("KILN_CUDA_GRAPHS");
  useGraphs_ = graphs == nullptr || std::strcmp(graphs, "0") != 0;
  KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&exec_.stream, cudaStreamNonBlocking));
  exec_.cublasLt = createCublasLtHandle();
  exec_.cudnn = createCudnnHandle(exec_.stream);
  KILN_CUDA_CHECK(cudaEventCreate(&start_));
  KILN_CUDA_CHECK(cudaEventCreate(&stop_));
  if (memory_.arenaBytes > 0) KILN_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&arena_), memory_.arenaBytes));
  // Pinned staging for every graph input and output whose largest planned size is under
  // kDirectCopyBytes; the larger ones are copied between the caller's memory and the device directly.
  auto stage = [&](ValueId v) {
    if (memory_.slots[v].bytes >= kDirectCopyBytes) return kDirect;
    const size_t at = pinnedBytes_;
    pinnedBytes_ += alignUp(memory_.slots[v].bytes, 256);
    return at;
  };
  for (ValueId v : graph_.inputs) pinnedInputAt_.push_back(stage(v));
  for (ValueId v : graph_.outputs) pinnedOutputAt_.push_back(stage(v));
  if (pinnedBytes_ > 0) KILN_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&pinned_), pinnedBytes_));
  hostLayer_.assign(graph_.nodes.size(), 0);
  for (size_t n = 0; n < graph_.nodes.size(); ++n) hostLayer_[n] = isHostKernel(*engine_->node(n).kernel) ? 1 : 0;
}

CudaContext::Record::~Record() {
  for (Segment& s : segments) {
    if (s.graph) cudaGraphExecDestroy(s.graph);
  }
}

CudaContext::~CudaContext() {
  if (exec_.stream) cudaStreamSynchronize(exec_.stream);
  records_.clear();
  if (pinned_) cudaFreeHost(pinned_);
  if (arena_) cudaFree(arena_);
  if (start_) cudaEventDestroy(start_);
  if (stop_) cudaEventDestroy(stop_);
  destroyCudnnHandle(exec_.cudnn);
  destroyCublasLtHandle(exec_.cublasLt);
  if (exec_.stream) cudaStreamDestroy(exec_.stream);
}

CudaContext::Record& CudaContext::recordFor(const std::vector<const Tensor*>& inputs, const std::string& signature) {
  auto found = records_.find(signature);
  if (found != records_.end()) return *found->second;
  if (records_.size() >= kMaxRecords) {
    KILN_CUDA_CHECK(cudaStreamSynchronize(exec_.stream));
    records_.clear();
  }
  std::vector<Shape> inputShapes;
  for (const Tensor* t : inputs) inputShapes.push_back(t->shape);
  StaticShapes s = inferStaticShapes(*engine_, inputShapes);
  auto rec = std::make_unique<Record>();
  Record& r = *rec;
  const size_t numValues = graph_.values.size();
  r.values.resize(numValues);
  for (size_t v = 0; v < numValues; ++v) {
    if (graph_.values[v].constant) {
      r.values[v] = *graph_.values[v].constant;
      continue;
    }
    if (!s.known[v]) continue;
    Tensor& t = r.values[v];
    t.dtype = s.types[v];
    t.shape = s.shapes[v];
  }
  // Placement in node order so that views find their source already placed.
  auto place = [&](ValueId v) {
    Tensor& t = r.values[v];
    const EngineSlot& slot = memory_.slots[v];
    const size_t bytes = t.byteSize();
    if (slot.aliasOf != kNoValue && r.values[slot.aliasOf].data != nullptr && bytes <= r.values[slot.aliasOf].byteSize()) {
      t.data = r.values[slot.aliasOf].data;
      return;
    }
    KILN_CHECK(slot.offset >= 0 && bytes <= slot.bytes, ShapeMismatch,
               "value '" + graph_.values[v].name + "' needs " + std::to_string(bytes) +
                   " bytes but the engine planned " + std::to_string(slot.bytes) +
                   ": the input shapes exceed the profiles the engine was built for");
    t.data = arena_ + slot.offset;
  };
  for (ValueId v : graph_.inputs) place(v);
  r.skip.assign(graph_.nodes.size(), 0);
  r.workspace.assign(graph_.nodes.size(), 0);
  for (size_t n = 0; n < graph_.nodes.size(); ++n) {
    const Node& node = graph_.nodes[n];
    for (ValueId v : node.outputs) {
      if (v != kNoValue) place(v);
    }
    const NodeInfo& info = engine_->node(n);
    if (info.isView && node.hasInput(0) && !node.outputs.empty() && node.outputs[0] != kNoValue &&
        r.values[node.outputs[0]].data == r.values[node.inputs[0]].data)
      r.skip[n] = 1;
    std::vector<const Tensor*> in;
    std::vector<Tensor*> out;
    for (ValueId v : node.inputs) in.push_back(v == kNoValue ? nullptr : &r.values[v]);
    for (ValueId v : node.outputs) out.push_back(v == kNoValue ? nullptr : &r.values[v]);
    KernelContext ctx{node, in, out};
    // A kernel gets at most the workspace planned at build time and picks a tactic that fits it
    // (a timed choice made in another process may want more than the one the plan saw).
    size_t ws = info.kernel->workspaceBytes(ctx);
    const EngineSlot& slot = memory_.workspaces[n];
    r.workspace[n] = std::min<size_t>(ws, slot.offset >= 0 ? slot.bytes : 0);
  }
  for (size_t n = 0; n < graph_.nodes.size();) {
    Segment segment;
    segment.begin = n;
    segment.host = hostLayer_[n] != 0;
    if (segment.host) {
      ++n;
    } else {
      while (n < graph_.nodes.size() && !hostLayer_[n]) ++n;
    }
    segment.end = n;
    r.segments.push_back(segment);
  }
  if (useGraphs_) {
    // On failure `rec` destroys the graphs captured so far.
    for (Segment& segment : r.segments) {
      if (!segment.host) segment.graph = capture(r, segment);
    }
  }
  return *records_.emplace(signature, std::move(rec)).first->second;
}

cudaGraphExec_t CudaContext::capture(Record& r, const Segment& segment) {
  KILN_CUDA_CHECK(cudaStreamBeginCapture(exec_.stream, cudaStreamCaptureModeThreadLocal));
  cudaGraph_t captured = nullptr;
  try {
    for (size_t n = segment.begin; n < segment.end; ++n) launch(r, n);
  } catch (...) {
    cudaStreamEndCapture(exec_.stream, &captured);
    if (captured) cudaGraphDestroy(captured);
    // The invalidated capture leaves an error behind that the next launch check in this
    // thread would report as its own: consume it.
    cudaGetLastError();
    throw;
  }
  KILN_CUDA_CHECK(cudaStreamEndCapture(exec_.stream, &captured));
  cudaGraphExec_t exec = nullptr;
  cudaError_t err = cudaGraphInstantiate(&exec, captured, 0);
  cudaGraphDestroy(captured);
  KILN_CUDA_CHECK(err);
  return exec;
}

void CudaContext::launch(Record& r, size_t n) {
  if (r.skip[n]) return;
  const Node& node = graph_.nodes[n];
  std::vector<const Tensor*> in;
  std::vector<Tensor*> out;
  for (ValueId v : node.inputs) in.push_back(v == kNoValue ? nullptr : &r.values[v]);
  for (ValueId v : node.outputs) out.push_back(v == kNoValue ? nullptr : &r.values[v]);
  KernelContext ctx{node, in, out};
  ctx.stream = &exec_;
  ctx.workspaceSize = r.workspace[n];
  ctx.workspace = r.workspace[n] > 0 ? arena_ + memory_.workspaces[n].offset : nullptr;
  if (ctx.workspace == nullptr) ctx.workspaceSize = 0;
  try {
    engine_->node(n).kernel->run(ctx);
    KILN_CUDA_CHECK(cudaGetLastError());
  } catch (const std::exception& e) {
    rethrowWithNode(node, e);
  }
}

void CudaContext::stageInputs(Record& r, const std::vector<const Tensor*>& inputs) {
  for (size_t k = 0; k < graph_.inputs.size(); ++k) {
    const Tensor& dst = r.values[graph_.inputs[k]];
    const size_t bytes = inputs[k]->byteSize();
    if (bytes == 0) continue;
    const size_t at = pinnedInputAt_[k];
    const void* src = inputs[k]->data;
    if (at != kDirect) {
      std::memcpy(pinned_ + at, src, bytes);
      src = pinned_ + at;
    }
    KILN_CUDA_CHECK(cudaMemcpyAsync(dst.data, src, bytes, cudaMemcpyHostToDevice, exec_.stream));
  }
}

RunResult CudaContext::collectOutputs(Record& r) {
  // Directly copied outputs land in their result tensors; staged ones are copied out of the pinned
  // buffer after the stream has finished.
  std::vector<Tensor> results(graph_.outputs.size());
  for (size_t k = 0; k < graph_.outputs.size(); ++k) {
    const ValueId v = graph_.outputs[k];
    const Tensor& src = r.values[v];
    if (graph_.values[v].constant || src.byteSize() == 0) continue;
    const size_t at = pinnedOutputAt_[k];
    if (at == kDirect) results[k] = Tensor::allocate(src.dtype, src.shape);
    void* dst = at == kDirect ? results[k].data : pinned_ + at;
    KILN_CUDA_CHECK(cudaMemcpyAsync(dst, src.data, src.byteSize(), cudaMemcpyDeviceToHost, exec_.stream));
  }
  KILN_CUDA_CHECK(cudaStreamSynchronize(exec_.stream));
  RunResult result;
  for (size_t k = 0; k < graph_.outputs.size(); ++k) {
    const ValueId v = graph_.outputs[k];
    const Tensor& src = r.values[v];
    if (graph_.values[v].constant) {
      result.outputs.emplace_back(graph_.values[v].name, src.clone());
      continue;
    }
    if (results[k].data == nullptr) {
      results[k] = Tensor::allocate(src.dtype, src.shape);
      if (results[k].byteSize() > 0) std::memcpy(results[k].data, pinned_ + pinnedOutputAt_[k], results[k].byteSize());
    }
    result.outputs.emplace_back(graph_.values[v].name, std::move(results[k]));
  }
  return result;
}

RunResult CudaContext::run(const std::vector<std::pair<std::string, Tensor>>& inputs) {
  BoundInputs bound = bindInputs(*engine_, inputs, true);
  Record& r = recordFor(bound.tensors, bound.signature);
  stageInputs(r, bound.tensors);
  KILN_CUDA_CHECK(cudaEventRecord(start_, exec_.stream));
  for (const Segment& segment : r.segments) {
    if (segment.graph) {
      KILN_CUDA_CHECK(cudaGraphLaunch(segment.graph, exec_.stream));
    } else {
      for (size_t n = segment.begin; n < segment.end; ++n) launch(r, n);
    }
  }
  KILN_CUDA_CHECK(cudaEventRecord(stop_, exec_.stream));
  RunResult result = collectOutputs(r);
  float ms = 0;
  KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
  result.gpuMs = ms;
  result.computeMs = ms;
  return result;
}

std::vector<double> CudaContext::timeNodes(const std::vector<std::pair<std::string, Tensor>>& inputs, int repeats) {
  BoundInputs bound = bindInputs(*engine_, inputs, true);
  const bool graphs = useGraphs_;
  useGraphs_ = false;
  Record& r = recordFor(bound.tensors, bound.signature);
  useGraphs_ = graphs;
  stageInputs(r, bound.tensors);
  const size_t numNodes = graph_.nodes.size();
  std::vector<cudaEvent_t> events(numNodes + 1);
  for (cudaEvent_t& e : events) KILN_CUDA_CHECK(cudaEventCreate(&e));
  std::vector<double> ms(numNodes, 0.0);
  try {
    for (size_t n = 0; n < numNodes; ++n) launch(r, n);  // warm-up (algorithm caches, clocks)
    for (int rep = 0; rep < repeats; ++rep) {
      KILN_CUDA_CHECK(cudaEventRecord(events[0], exec_.stream));
      for (size_t n = 0; n < numNodes; ++n) {
        launch(r, n);
        KILN_CUDA_CHECK(cudaEventRecord(events[n + 1], exec_.stream));
      }
      KILN_CUDA_CHECK(cudaStreamSynchronize(exec_.stream));
      for (size_t n = 0; n < numNodes; ++n) {
        float t = 0;
        KILN_CUDA_CHECK(cudaEventElapsedTime(&t, events[n], events[n + 1]));
        ms[n] += t / repeats;
      }
    }
  } catch (...) {
    for (cudaEvent_t e : events) cudaEventDestroy(e);
    throw;
  }
  for (cudaEvent_t e : events) cudaEventDestroy(e);
  // Timing records are eager; drop it so that serving captures a graph for this shape.
  records_.erase(bound.signature);
  return ms;
}

}  // namespace kiln::cuda
