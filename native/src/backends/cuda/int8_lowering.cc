// INT8 for the CUDA backend (Backend::quantizeGraph), after the optimizer and lowerGraph(Int8):
//
// 1. The graph is lowered as for fp16 (cuda_fp16.h, NHWC convolutions): fp16 is what every layer
//    that does not run in INT8 computes in.
// 2. Ranges: the Q/DQ ranges the model carried (runtime/qdq.h) are used as given; every other
//    activation a convolution reads or writes is calibrated: the calibration batches run through
//    the fp16 graph with those activations as extra outputs, twice (|x| maximum, then a 2048-bin
//    histogram of |x|). The range is the KL-divergence minimizing threshold over 128 levels
//    (entropy, as TensorRT's legacy calibrator), a percentile of |x|, or the maximum (minmax).
// 3. Per convolution (kiln.CudaConvNHWC, one group, output channels a multiple of 4, input
//    channels a multiple of 4, or at most 4 with stride 2: an RGB stem, planned over its input
//    rewritten space-to-depth, see planConv): per-channel symmetric weight scales; the layer's
//    INT8 error is estimated from the weights' actual quantization error and the
//    input/residual/output histograms (rounding noise inside the range, clipping outside),
//    relative RMS, combined in quadrature. Layers above BuildOptions::int8MaxLayerError stay fp16
//    (a build warning names them).
// 4. Rewrite: INT8 convolutions become kiln.CudaConvInt8NHWC (int8_kernels.cc) reading and writing
//    int8 activations; max pools between INT8 layers run on int8; kiln.CudaQuantize /
//    kiln.CudaDequantize sit where int8 and fp16 layers meet; a space-to-depth stem reads its
//    input through kiln.CudaQuantizeSpaceToDepth (fp16 [N,H,W,C] -> int8 [N,H',W',16], or with
//    each pixel's row of taps packed, [N,H',W'',16 x taps]).
// 5. Shortcuts: an INT8 1x1 convolution (no padding, no activation, no residual of its own) whose
//    output only another INT8 convolution adds as its residual (ResNet's downsample) is fused into
//    that one, where a TMA convolution tile takes the pair at the graph's static shapes
//    (int8ShortcutFusable): its W follows the main W in each row, its input is the fused node's
//    X2, and the downsample's output is never written or read. The main product's accumulators
//    move into the shortcut's scale before its k-steps (Ratio); the pair is left unfused when that
//    could overflow int32. Only with KILN_CUDA_INT8_SHORTCUT=on for now: the fused tiles have not
//    run on a GPU yet.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "backends/backend.h"
#include "backends/cuda/cuda_common.h"
#include "backends/cuda/cuda_context.h"
#include "backends/cuda/cuda_lowering.h"
#include "backends/cuda/cuda_ops.h"
#include "backends/cuda/implicit_gemm_conv.h"
#include "core/error.h"
#include "graph/fused_ops.h"
#include "graph/shape_inference.h"
#include "ops/nn_geometry.h"
#include "runtime/build_memory.h"
#include "runtime/context.h"
#include "runtime/engine_impl.h"

namespace kiln {
std::shared_ptr<Backend> createCudaBackend();
}

namespace kiln::cuda {
namespace {

constexpr int kBins = 2048;
constexpr int kLevels = 128;

struct ValueStats {
  double max = 0;            // largest |x| seen
  std::vector<double> hist;  // kBins over [0, max]
};

float elementAsFloat(const Tensor& t, int64_t i) {
  if (t.dtype == DType::Float16) return halfToFloat(t.ptr<uint16_t>()[i]);
  if (t.dtype == DType::Float32) return t.ptr<float>()[i];
  return static_cast<float>(t.scalarAsDouble(i));
}

std::string baseName(std::string n) {
  for (bool again = true; again;) {
    again = false;
    for (const char* suffix : {"/nhwc", "/fp16"}) {
      const size_t len = std::strlen(suffix);
      if (n.size() > len && n.compare(n.size() - len, len, suffix) == 0) {
        n.resize(n.size() - len);
        again = true;
      }
    }
  }
  return n;
}

// ---- calibration ------------------------------------------------------------------------------

Tensor sliceRows(const Tensor& t, int64_t start, int64_t count) {
  Shape s = t.shape;
  const int64_t rows = s[0];
  s[0] = count;
  Tensor out = Tensor::allocate(t.dtype, s);
  const size_t rowBytes = rows == 0 ? 0 : t.byteSize() / static_cast<size_t>(rows);
  std::memcpy(out.data, static_cast<const uint8_t*>(t.data) + rowBytes * start, rowBytes * count);
  return out;
}

std::map<ValueId, ValueStats> calibrate(const Graph& lowered, const std::vector<ValueId>& values, const BuildOptions& options,
                                        std::vector<std::string>& warnings) {
  // A draft engine of the fp16 graph whose outputs include every value to calibrate.
  auto graph = std::make_shared<Graph>(lowered);
  std::vector<size_t> outputIndex;
  for (ValueId v : values) {
    auto it = std::find(graph->outputs.begin(), graph->outputs.end(), v);
    if (it == graph->outputs.end()) {
      graph->outputs.push_back(v);
      it = graph->outputs.end() - 1;
    }
    outputIndex.push_back(static_cast<size_t>(it - graph->outputs.begin()));
  }
  std::shared_ptr<Backend> backend = createCudaBackend();
  EnginePlan plan;
  plan.identity.builderVersion = builderVersion();
  plan.identity.backend = backend->name();
  plan.identity.target = backend->target();
  plan.identity.libraryVersions = backend->libraryVersions();
  plan.identity.precision = Precision::Fp16;
  plan.graph = graph;
  plan.memory.slots.assign(graph->values.size(), EngineSlot{});
  plan.memory.workspaces.assign(graph->nodes.size(), EngineSlot{});
  auto engine = std::make_shared<EngineImpl>(plan, backend);

  // Chunks: the model's own batch when static, else up to 32 samples.
  int64_t chunk = 32;
  if (!graph->inputs.empty()) {
    const SymShape& s = graph->values[graph->inputs[0]].shape;
    if (s.hasRank && s.rank() > 0 && s.dims[0].isKnown()) chunk = s.dims[0].value;
  }
  const bool staticBatch = chunk != 32 || (!graph->inputs.empty() && graph->values[graph->inputs[0]].shape.hasRank &&
                                          graph->values[graph->inputs[0]].shape.dims[0].isKnown());
  std::vector<std::vector<std::pair<std::string, Tensor>>> chunks;
  for (const auto& batch : options.calibrationBatches) {
    int64_t rows = -1;
    for (ValueId in : graph->inputs) {
      const std::string& name = graph->values[in].name;
      auto it = batch.find(name);
      if (it == batch.end())
        fail(ErrorCode::InvalidArgument, "calibration data has no tensor for the model input '" + name + "'");
      if (it->second.dtype != graph->values[in].dtype)
        fail(ErrorCode::InvalidArgument, "calibration tensor '" + name + "' is " + dtypeName(it->second.dtype) +
                                             ", the model input is " + dtypeName(graph->values[in].dtype));
      if (it->second.shape.empty()) fail(ErrorCode::InvalidArgument, "calibration tensor '" + name + "' has no sample dim");
      if (rows >= 0 && it->second.shape[0] != rows)
        fail(ErrorCode::InvalidArgument, "calibration tensors disagree on the number of samples");
      rows = it->second.shape[0];
    }
    for (int64_t start = 0; start < rows; start += chunk) {
      const int64_t count = std::min(chunk, rows - start);
      if (staticBatch && count != chunk) break;
      std::vector<std::pair<std::string, Tensor>> inputs;
      for (ValueId in : graph->inputs) {
        const std::string& name = graph->values[in].name;
        inputs.emplace_back(name, sliceRows(batch.at(name), start, count));
      }
      chunks.push_back(std::move(inputs));
    }
  }
  if (chunks.empty())
    fail(ErrorCode::InvalidArgument, "the calibration data holds no complete batch of " + std::to_string(chunk) + " samples");

  std::map<int64_t, std::unique_ptr<CudaContext>> contexts;  // per chunk size
  auto contextFor = [&](const std::vector<std::pair<std::string, Tensor>>& inputs) -> CudaContext& {
    const int64_t rows = inputs[0].second.shape[0];
    auto it = contexts.find(rows);
    if (it != contexts.end()) return *it->second;
    std::map<std::string, Shape> shapes;
    for (const auto& [name, t] : inputs) shapes[name] = t.shape;
    RunTrace trace;
    traceStaticShapes(*engine, shapes, trace);
    EngineMemoryPlan memory = planEngineMemory(*graph, {trace}, true, warnings, true, kCudaArenaAlignment);
    auto ctx = std::make_unique<CudaContext>(engine, &memory);
    // One eager run first: kernels that choose their algorithm on first use do so outside the
    // CUDA graph capture of the first run().
    ctx->timeNodes(inputs, 1);
    return *contexts.emplace(rows, std::move(ctx)).first->second;
  };

  std::map<ValueId, ValueStats> stats;
  for (ValueId v : values) stats[v].hist.assign(kBins, 0.0);
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& inputs : chunks) {
      RunResult r = contextFor(inputs).run(inputs);
      // One host thread per value (they are independent), a few at a time.
      std::atomic<size_t> next{0};
      auto work = [&] {
        for (size_t k = next++; k < values.size(); k = next++) {
          const Tensor& t = r.outputs[outputIndex[k]].second;
          ValueStats& s = stats.at(values[k]);
          const int64_t n = t.numel();
          if (pass == 0) {
            double m = s.max;
            for (int64_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(std::fabs(elementAsFloat(t, i))));
            s.max = m;
          } else if (s.max > 0) {
            const double perBin = kBins / s.max;
            for (int64_t i = 0; i < n; ++i) {
              const int b = static_cast<int>(std::fabs(elementAsFloat(t, i)) * perBin);
              s.hist[std::min(b, kBins - 1)] += 1.0;
            }
          }
        }
      };
      const unsigned threads = std::max(1u, std::min(16u, std::thread::hardware_concurrency()));
      std::vector<std::thread> pool;
      for (unsigned i = 1; i < threads; ++i) pool.emplace_back(work);
      work();
      for (std::thread& t : pool) t.join();
    }
  }
  return stats;
}

// The KL-divergence minimizing threshold (in bins) of a |x| histogram quantized to kLevels levels.
// The first bin holds every exact zero (ReLU outputs: often half the values); like NVIDIA's
// pytorch-quantization, it is given its neighbour's count so that spike does not drive the choice.
int entropyThresholdBins(std::vector<double> hist) {
  const int n = static_cast<int>(hist.size());
  if (n > 1) hist[0] = hist[1];
  int best = n;
  double bestKl = INFINITY;
  std::vector<double> p, q;
  for (int i = kLevels; i <= n; i += 16) {
    p.assign(hist.begin(), hist.begin() + i);
    double outliers = 0;
    for (int b = i; b < n; ++b) outliers += hist[b];
    p[i - 1] += outliers;
    q.assign(i, 0.0);
    for (int j = 0; j < kLevels; ++j) {
      const int start = j * i / kLevels, end = (j + 1) * i / kLevels;
      double sum = 0;
      int nonzero = 0;
      for (int b = start; b < end; ++b) {
        sum += hist[b];
        nonzero += hist[b] != 0;
      }
      for (int b = start; b < end && nonzero > 0; ++b) q[b] = hist[b] != 0 ? sum / nonzero : 0.0;
    }
    double ps = 0, qs = 0;
    for (int b = 0; b < i; ++b) ps += p[b], qs += q[b];
    if (ps <= 0 || qs <= 0) continue;
    double kl = 0;
    for (int b = 0; b < i; ++b) {
      if (p[b] <= 0) continue;
      const double pn = p[b] / ps, qn = q[b] > 0 ? q[b] / qs : 1e-12;
      kl += pn * std::log(pn / qn);
    }
    if (kl < bestKl) bestKl = kl, best = i;
  }
  return best;
}

double chooseAmax(const ValueStats& s, const BuildOptions& options) {
  if (s.max <= 0) return 0;
  double total = 0;
  for (double h : s.hist) total += h;
  if (options.calibrationMethod == CalibrationMethod::MinMax || total <= 0) return s.max;
  if (options.calibrationMethod == CalibrationMethod::Percentile) {
    const double want = std::min(1.0, std::max(0.0, options.calibrationPercentile / 100.0)) * total;
    double acc = 0;
    for (int b = 0; b < kBins; ++b) {
      acc += s.hist[b];
      if (acc >= want) return (b + 1) * s.max / kBins;
    }
    return s.max;
  }
  return entropyThresholdBins(s.hist) * s.max / kBins;
}

// Relative RMS error of quantizing the histogram's values with range amax.
double quantError(const ValueStats& s, double amax) {
  if (s.max <= 0 || amax <= 0) return 0;
  const double step = amax / 127.0, width = s.max / kBins;
  double power = 0, err = 0, total = 0;
  for (int b = 0; b < kBins; ++b) {
    if (s.hist[b] == 0) continue;
    const double c = (b + 0.5) * width;
    power += s.hist[b] * c * c;
    err += s.hist[b] * (c > amax ? (c - amax) * (c - amax) : step * step / 12.0);
    total += s.hist[b];
  }
  return power > 0 ? std::sqrt(err / power) : 0;
}

// ---- the rewrite ----------------------------------------------------------------------------

Attribute intsAttr(std::vector<int64_t> v) {
  Attribute a;
  a.kind = Attribute::Kind::Ints;
  a.ints = std::move(v);
  return a;
}
Attribute floatAttr(float f) {
  Attribute a;
  a.kind = Attribute::Kind::Float;
  a.f = f;
  return a;
}
Attribute intAttr(int64_t i) {
  Attribute a;
  a.kind = Attribute::Kind::Int;
  a.i = i;
  return a;
}

struct ConvPlan {
  size_t node = 0;
  ValueId x = kNoValue, z = kNoValue, y = kNoValue;
  int64_t k = 0, r = 0, s = 0, c = 0, kPad = 0;
  std::vector<int64_t> pads, strides, dilations;
  bool relu = false;
  std::vector<float> w;  // OHWI as float
  std::vector<float> wScale;
  double weightError = 0;
  // Space-to-depth stem: the geometry above is the stride-1 convolution over x' (16 x s2dTaps
  // channels); x is still the fp16 input, which kiln.CudaQuantizeSpaceToDepth rewrites with the
  // original window [R, S] and pads [top, left, bottom, right] into x' [N, s2dOut[0], s2dOut[1],
  // 16 x s2dTaps].
  bool s2d = false;
  int64_t s2dTaps = 1;
  std::vector<int64_t> s2dKernel, s2dPads, s2dOut;
};

// Lets each live `consumerOp` node read the input of the `producerOp` node that writes its first
// input, where that value exists only for it (no other reader, not a graph output) and
// `rewrite(consumer, producer)` agrees and adapts the consumer (returning false leaves both as
// they are); the producer is dropped. Returns the number of rewrites.
template <class Rewrite>
int readPastSoleProducer(Graph& g, const char* consumerOp, const char* producerOp, Rewrite&& rewrite) {
  int rewrites = 0;
  const std::vector<std::vector<int32_t>> consumers = g.consumers();
  for (Node& node : g.nodes) {
    if (node.dead || node.domain != kKilnDomain || node.opType != consumerOp) continue;
    const ValueId value = node.inputs[0];
    const int32_t producer = g.values[value].producer;
    if (producer < 0 || g.isGraphOutput(value) || consumers[value].size() != 1) continue;
    Node& source = g.nodes[producer];
    if (source.dead || source.domain != kKilnDomain || source.opType != producerOp) continue;
    const ValueId sourceInput = source.inputs[0];
    if (!rewrite(node, source)) continue;
    node.inputs = {sourceInput};
    source.dead = true;
    ++rewrites;
  }
  return rewrites;
}

// A space-to-depth stem's quantize reads the model's float32 NCHW input itself in place of its
// kiln.CudaCastToNhwc (ResNet-50 b256's cast took 0.11 ms on the H200 for a value the quantize then
// read once more); a global average pool after the last INT8 layer reads the int8 values in place
// of their dequantized fp16 copy (0.07 ms).
int readInputsInPlace(Graph& g) {
  return readPastSoleProducer(g, "CudaQuantizeSpaceToDepth", "CudaCastToNhwc",
                              [](Node& quantize, const Node&) {
                                if (quantize.getInt("nchw", 0) != 0) return false;
                                quantize.attrs["nchw"] = intAttr(1);
                                return true;
                              }) +
         readPastSoleProducer(g, "CudaGlobalAvgPoolNHWC", "CudaDequantize", [&](Node& pool, const Node& dq) {
           if (g.values[pool.inputs[0]].dtype != DType::Float16) return false;
           pool.attrs["scale"] = floatAttr(dq.getFloat("scale", 0.f));
           return true;
         });
}

// Whether the node can run as kiln.CudaConvInt8NHWC; fills the geometry. `why` says why not.
bool planConv(const Graph& g, size_t n, ConvPlan& p, std::string& why) {
  const Node& node = g.nodes[n];
  p.node = n;
  if (node.getInt("group", 1) != 1) return why = "grouped", false;
  ActivationParams act = readActivationAttrs(node);
  if (act.kind != Activation::None && act.kind != Activation::Relu) return why = "activation other than ReLU", false;
  p.relu = act.kind == Activation::Relu;
  p.x = node.inputs[0];
  p.z = node.inputs.size() > 3 ? node.inputs[3] : kNoValue;
  p.y = node.outputs[0];
  if (g.isGraphOutput(p.y)) return why = "a graph output", false;
  const SymShape& xs = g.values[p.x].shape;
  if (!xs.hasRank || xs.rank() != 4 || !xs.dims[1].isKnown() || !xs.dims[2].isKnown() || !xs.dims[3].isKnown())
    return why = "unknown input geometry", false;
  const Value& wv = g.values[node.inputs[1]];
  if (!wv.constant || wv.constant->shape.size() != 4) return why = "non-constant weights", false;
  const Tensor& w = *wv.constant;
  p.k = w.shape[0], p.r = w.shape[1], p.s = w.shape[2], p.c = w.shape[3];
  if (p.k % 4 != 0) return why = "output channels not a multiple of 4", false;
  WindowParams wp = readWindowParams(node, 2, {p.r, p.s});
  WindowDim h = forwardWindowDim(node, wp, 0, xs.dims[1].value), wd = forwardWindowDim(node, wp, 1, xs.dims[2].value);
  p.pads = {h.padBegin, wd.padBegin, h.padEnd, wd.padEnd};
  p.strides = wp.strides;
  p.dilations = wp.dilations;
  p.w.resize(static_cast<size_t>(w.numel()));
  for (int64_t i = 0; i < w.numel(); ++i) p.w[i] = elementAsFloat(w, i);
  // An image stem (3 input channels) is no INT8 layer as it stands: its im2col makes rows of 147
  // bytes for 64 outputs, and that INT8 layer cost twice the fp16 one on ResNet-50 (6.4 vs 3.1 ms
  // at batch 256, H100) before the fp16 convolution learned to pad channels to 8. With stride 2
  // (ResNet-50's 7x7) it runs INT8 through the space-to-depth rewrite the fp16 path also uses
  // (space_to_depth.h): a stride-1, pad-0 convolution over the 16 channels of x' =
  // space_to_depth(pad(x)) with weights [K, ceil(R/2), ceil(S/2), 16] (weight rows of 256 bytes
  // for 7x7, in whole 16-channel taps), which the INT8 kernels take like any other layer. Its input
  // range is calibrated on x as every layer's (the padding and the unused channels quantize to
  // exact zeros); kiln.CudaQuantizeSpaceToDepth writes x' in int8, quantizing while it rewrites.
  // KILN_CUDA_INT8_S2D=off keeps such stems fp16; other convolutions over channels that are not a
  // multiple of 4 stay fp16.
  p.s2d = p.c <= 4 && p.strides == std::vector<int64_t>{2, 2} && p.dilations == std::vector<int64_t>{1, 1} &&
          g.values[p.x].dtype == DType::Float16 && !envIs("KILN_CUDA_INT8_S2D", "off");
  if (!p.s2d && p.c % 4 != 0) return why = "input channels not a multiple of 4", false;
  if (p.s2d) {
    // W'[k, a, b, (dy*2+dx)*C + c] = W[k, 2a+dy, 2b+dx, c], zero past the kernel and in channels 4C..15.
    const int64_t r2 = (p.r + 1) / 2, s2 = (p.s + 1) / 2;
    std::vector<float> w2(static_cast<size_t>(p.k * r2 * s2 * 16), 0.f);
    for (int64_t k = 0; k < p.k; ++k)
      for (int64_t a = 0; a < r2; ++a)
        for (int64_t b = 0; b < s2; ++b)
          for (int64_t dy = 0; dy < 2; ++dy)
            for (int64_t dx = 0; dx < 2; ++dx) {
              const int64_t r = 2 * a + dy, q = 2 * b + dx;
              if (r >= p.r || q >= p.s) continue;
              for (int64_t c = 0; c < p.c; ++c)
                w2[((k * r2 + a) * s2 + b) * 16 + (dy * 2 + dx) * p.c + c] = p.w[((k * p.r + r) * p.s + q) * p.c + c];
            }
    p.s2dKernel = {p.r, p.s};
    p.s2dPads = p.pads;
    p.s2dOut = {h.out + r2 - 1, wd.out + s2 - 1};
    p.w = std::move(w2);
    p.r = r2, p.s = s2, p.c = 16;
    p.pads = {0, 0, 0, 0};
    p.strides = {1, 1};
    // 16-byte pixels make k-steps of a single tap, which the TMA convolution tiles (whole 64-byte
    // k-steps per tap) do not take. Where a row of taps fills whole k-steps (7x7: 4 taps, 64
    // bytes), x' packs each pixel's row of S' taps into one pixel of 16 x S' channels, and the
    // stem becomes an R' x 1 convolution over it. W's rows are the same bytes: (r, s, c) flattened
    // is (r, s * 16 + c). Only with KILN_CUDA_INT8_S2D_TAPS=on until its tests have run on a GPU
    // (written 2026-12-07, when the GPU machine was not lent).
    if ((16 * s2) % 64 == 0 && envIs("KILN_CUDA_INT8_S2D_TAPS", "on")) {
      p.s2dTaps = s2;
      p.s2dOut[1] = wd.out;
      p.s = 1, p.c = 16 * s2;
    }
  }
  const bool direct = p.r == 1 && p.s == 1 && p.c % 16 == 0 && p.strides == std::vector<int64_t>{1, 1} &&
                      p.pads == std::vector<int64_t>{0, 0, 0, 0};
  p.kPad = direct ? p.c : (p.r * p.s * p.c + 15) / 16 * 16;
  // Per-channel symmetric weight scales and the weights' own quantization error.
  const int64_t per = p.r * p.s * p.c;
  p.wScale.assign(p.k, 1.f);
  double power = 0, err = 0;
  for (int64_t k = 0; k < p.k; ++k) {
    float m = 0;
    for (int64_t i = 0; i < per; ++i) m = std::max(m, std::fabs(p.w[k * per + i]));
    p.wScale[k] = m > 0 ? m / 127.f : 1.f;
    for (int64_t i = 0; i < per; ++i) {
      const float v = p.w[k * per + i];
      const float q = std::fmax(-127.f, std::fmin(127.f, std::nearbyint(v / p.wScale[k]))) * p.wScale[k];
      power += double(v) * v;
      err += double(v - q) * (v - q);
    }
  }
  p.weightError = power > 0 ? std::sqrt(err / power) : 0;
  return true;
}

// Output channel k of p's weights as int8 on its per-channel scale, zero-padded to p.kPad bytes.
void writeInt8Weights(const ConvPlan& p, int64_t k, int8_t* row) {
  const int64_t per = p.r * p.s * p.c;
  for (int64_t i = 0; i < p.kPad; ++i) {
    const float v = i < per ? p.w[k * per + i] / p.wScale[k] : 0.f;
    row[i] = static_cast<int8_t>(std::fmax(-127.f, std::fmin(127.f, std::nearbyint(v))));
  }
}

// The bias of p's convolution, or null.
const Tensor* planBias(const Graph& g, const ConvPlan& p) {
  const Node& n = g.nodes[p.node];
  return n.hasInput(2) && g.values[n.inputs[2]].constant ? g.values[n.inputs[2]].constant.get() : nullptr;
}

// A kiln.CudaConvInt8NHWC's first inputs: X, then W, Alpha and Bias as constants named after the
// convolution.
std::vector<ValueId> int8ConvInputs(Graph& g, const std::string& name, ValueId x, Tensor w, Tensor alpha, Tensor bias) {
  return {x, g.addConstant(name + "/w_int8", std::move(w)), g.addConstant(name + "/alpha", std::move(alpha)),
          g.addConstant(name + "/bias_scaled", std::move(bias))};
}

// kiln.CudaConvInt8NHWC in place of p's node, with p's window and activation.
void replaceWithInt8Conv(Graph& g, const ConvPlan& p, std::vector<ValueId> inputs, ValueId y, float beta) {
  Node conv;
  conv.name = g.nodes[p.node].name;
  conv.domain = kKilnDomain;
  conv.opType = "CudaConvInt8NHWC";
  conv.inputs = std::move(inputs);
  conv.attrs["kernel_shape"] = intsAttr({p.r, p.s});
  conv.attrs["strides"] = intsAttr(p.strides);
  conv.attrs["pads"] = intsAttr(p.pads);
  conv.attrs["dilations"] = intsAttr(p.dilations);
  conv.attrs["beta"] = floatAttr(beta);
  conv.attrs["relu"] = intAttr(p.relu ? 1 : 0);
  conv.outputs = {y};
  g.nodes[p.node] = conv;
  g.values[y].producer = static_cast<int32_t>(p.node);
}

// The main convolution p with the downsample d fused in (step 5): W's rows are p's int8 weights
// then d's, alpha and bias d's scale over the output's and both biases, Ratio p's alpha over d's.
void rewriteWithShortcut(Graph& g, const ConvPlan& p, const ConvPlan& d, const std::vector<float>& ratio, float sy,
                         float sx2, ValueId x, ValueId x2, ValueId y) {
  const int64_t rows = p.kPad + d.kPad;
  Tensor wq = Tensor::allocate(DType::Int8, {p.k, rows});
  Tensor alpha = Tensor::allocate(DType::Float32, {p.k});
  Tensor bias = Tensor::allocate(DType::Float32, {p.k});
  Tensor ratioT = Tensor::allocate(DType::Float32, {p.k});
  const Tensor *b = planBias(g, p), *bd = planBias(g, d);
  for (int64_t k = 0; k < p.k; ++k) {
    writeInt8Weights(p, k, wq.ptr<int8_t>() + k * rows);
    writeInt8Weights(d, k, wq.ptr<int8_t>() + k * rows + p.kPad);
    alpha.ptr<float>()[k] = sx2 * d.wScale[k] / sy;
    bias.ptr<float>()[k] = ((b ? elementAsFloat(*b, k) : 0.f) + (bd ? elementAsFloat(*bd, k) : 0.f)) / sy;
    ratioT.ptr<float>()[k] = ratio[k];
  }
  const std::string& name = g.nodes[p.node].name;
  std::vector<ValueId> inputs = int8ConvInputs(g, name, x, std::move(wq), std::move(alpha), std::move(bias));
  inputs.insert(inputs.end(), {kNoValue, x2, g.addConstant(name + "/shortcut_ratio", std::move(ratioT))});
  replaceWithInt8Conv(g, p, std::move(inputs), y, 0.f);
  g.nodes[p.node].attrs["shortcut_stride"] = intAttr(d.strides[0]);
}

}  // namespace

void quantizeGraphForCuda(Graph& g, const BuildOptions& options, const std::map<std::string, float>& qdqRanges,
                          std::vector<std::string>& warnings, std::map<std::string, std::string>& nodePrecision) {
  if (options.calibrationBatches.empty() && qdqRanges.empty())
    fail(ErrorCode::InvalidArgument,
         "precision int8 needs calibration data (BuildOptions calibration: a tensor per input, samples stacked "
         "along the first dim) or a model that carries QuantizeLinear/DequantizeLinear pairs");
  lowerToFp16Nhwc(g);

  std::vector<ConvPlan> plans;
  std::vector<std::string> skipped;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = g.nodes[n];
    if (node.dead || node.domain != kKilnDomain || node.opType != "CudaConvNHWC") continue;
    ConvPlan p;
    std::string why;
    if (planConv(g, n, p, why)) {
      plans.push_back(std::move(p));
    } else {
      skipped.push_back(node.name + " (" + why + ")");
    }
  }
  if (plans.empty()) {
    warnings.push_back("int8: no layer of this model has an INT8 kernel on the cuda backend (INT8 covers convolutions); "
                       "the engine computes in fp16");
    return;
  }

  // Ranges of every activation an INT8 candidate reads or writes, and of max pools between them.
  std::set<ValueId> wanted;
  for (const ConvPlan& p : plans) {
    wanted.insert(p.x);
    wanted.insert(p.y);
    if (p.z != kNoValue) wanted.insert(p.z);
  }
  for (const Node& node : g.nodes) {
    if (!node.dead && node.opType == "CudaMaxPoolNHWC") {
      wanted.insert(node.inputs[0]);
      wanted.insert(node.outputs[0]);
    }
  }
  std::map<ValueId, double> amax;
  std::map<ValueId, double> activationError;
  std::vector<ValueId> toCalibrate;
  for (ValueId v : wanted) {
    auto it = qdqRanges.find(baseName(g.values[v].name));
    if (it != qdqRanges.end()) {
      amax[v] = it->second;
      activationError[v] = 0;  // as the model says
    } else if (!options.calibrationBatches.empty()) {
      toCalibrate.push_back(v);
    }
  }
  if (!toCalibrate.empty()) {
    std::map<ValueId, ValueStats> stats = calibrate(g, toCalibrate, options, warnings);
    for (auto& [v, s] : stats) {
      const double a = chooseAmax(s, options);
      if (a <= 0) continue;  // never non-zero on the calibration set: no usable range
      amax[v] = a;
      activationError[v] = quantError(s, a);
    }
  }

  // Decide per layer.
  std::vector<char> int8Node(g.nodes.size(), 0);
  std::vector<char> s2dStem(g.nodes.size(), 0);  // INT8 over kiln.CudaQuantizeSpaceToDepth's x'
  std::vector<ConvPlan*> chosen;
  std::vector<std::string> fallbacks;
  for (ConvPlan& p : plans) {
    const Node& node = g.nodes[p.node];
    std::vector<ValueId> acts = {p.x, p.y};
    if (p.z != kNoValue) acts.push_back(p.z);
    bool ranged = true;
    double err2 = p.weightError * p.weightError;
    for (ValueId v : acts) {
      if (!amax.count(v)) ranged = false;
      else err2 += activationError[v] * activationError[v];
    }
    if (!ranged) {
      fallbacks.push_back(node.name + " (no range)");
      continue;
    }
    const double err = std::sqrt(err2);
    if (err > options.int8MaxLayerError) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), " (estimated error %.3f)", err);
      fallbacks.push_back(node.name + buf);
      continue;
    }
    int8Node[p.node] = 1;
    s2dStem[p.node] = p.s2d;
    chosen.push_back(&p);
  }
  // Max pools whose input comes from an INT8 layer and whose readers are all INT8 layers.
  std::vector<std::vector<int32_t>> consumers = g.consumers();
  auto readsAsInt8 = [&](int32_t c, ValueId v) {
    if (!int8Node[c]) return false;
    const Node& user = g.nodes[c];
    if (user.opType == "CudaMaxPoolNHWC") return user.inputs[0] == v;
    // A space-to-depth stem reads its input in fp16, through kiln.CudaQuantizeSpaceToDepth.
    if (s2dStem[c] && user.inputs[0] == v) return false;
    for (size_t i = 0; i < user.inputs.size(); ++i) {
      if (user.inputs[i] == v && i != 0 && i != 3) return false;
    }
    return true;
  };
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = g.nodes[n];
    if (node.dead || node.opType != "CudaMaxPoolNHWC" || node.outputs.size() != 1) continue;
    const ValueId in = node.inputs[0], out = node.outputs[0];
    const int32_t producer = g.values[in].producer;
    if (producer < 0 || !int8Node[producer] || g.isGraphOutput(out) || consumers[out].empty()) continue;
    bool allInt8 = true;
    for (int32_t c : consumers[out]) allInt8 = allInt8 && readsAsInt8(c, out);
    if (!allInt8) continue;
    int8Node[n] = 1;
    amax[out] = amax[in];  // max pooling keeps the scale
  }

  // Int8 twins of the activations crossing INT8 layers.
  std::map<ValueId, ValueId> twin;
  std::vector<Node> added;
  auto scaleOf = [&](ValueId v) { return static_cast<float>(amax.at(v) / 127.0); };
  auto int8Of = [&](ValueId v) {
    auto it = twin.find(v);
    if (it != twin.end()) return it->second;
    ValueId t = g.addValue(g.values[v].name + "/int8", DType::Int8, g.values[v].shape);
    twin[v] = t;
    const int32_t producer = g.values[v].producer;
    if (producer >= 0 && int8Node[producer]) {
      // Written in int8 by its producer; fp16 readers get a dequantized copy.
      bool floatReaders = g.isGraphOutput(v);
      for (int32_t c : consumers[v]) floatReaders = floatReaders || !readsAsInt8(c, v);
      if (floatReaders) {
        Node dq;
        dq.name = g.values[v].name + "/dequantize";
        dq.domain = kKilnDomain;
        dq.opType = "CudaDequantize";
        dq.inputs = {t};
        dq.outputs = {v};
        dq.attrs["scale"] = floatAttr(scaleOf(v));
        dq.attrs["to"] = intAttr(g.values[v].dtype == DType::Float32 ? 1 : 10);
        added.push_back(dq);
      }
    } else {
      Node q;
      q.name = g.values[v].name + "/quantize";
      q.domain = kKilnDomain;
      q.opType = "CudaQuantize";
      q.inputs = {v};
      q.outputs = {t};
      q.attrs["scale"] = floatAttr(scaleOf(v));
      added.push_back(q);
    }
    return t;
  };
  // The int8 space-to-depth inputs of stems, one per input value and stem geometry.
  std::map<std::vector<int64_t>, ValueId> s2dTwin;
  auto spaceToDepthInt8Of = [&](const ConvPlan& p) {
    const std::vector<int64_t> key = {p.x,           p.s2dKernel[0], p.s2dKernel[1], p.s2dPads[0],
                                      p.s2dPads[1],  p.s2dPads[2],   p.s2dPads[3],   p.s2dTaps};
    auto it = s2dTwin.find(key);
    if (it != s2dTwin.end()) return it->second;
    int others = 0;
    for (const auto& [k, t] : s2dTwin) others += k[0] == p.x;
    const std::string suffix = others > 0 ? std::to_string(others + 1) : "";
    SymShape shape = g.values[p.x].shape;
    shape.dims[1] = Dim::known(p.s2dOut[0]);
    shape.dims[2] = Dim::known(p.s2dOut[1]);
    shape.dims[3] = Dim::known(16 * p.s2dTaps);
    const ValueId t = g.addValue(g.values[p.x].name + "/s2d_int8" + suffix, DType::Int8, shape);
    s2dTwin[key] = t;
    Node q;
    q.name = g.values[p.x].name + "/quantize_s2d" + suffix;
    q.domain = kKilnDomain;
    q.opType = "CudaQuantizeSpaceToDepth";
    q.inputs = {p.x};
    q.outputs = {t};
    q.attrs["scale"] = floatAttr(scaleOf(p.x));
    q.attrs["kernel_shape"] = intsAttr(p.s2dKernel);
    q.attrs["pads"] = intsAttr(p.s2dPads);
    if (p.s2dTaps > 1) q.attrs["taps"] = intAttr(p.s2dTaps);
    added.push_back(q);
    return t;
  };

  // Shortcuts to fuse: main plan's node -> the downsample's plan, and the ratios that take the
  // main accumulators into the downsample's scale (alpha over alpha: the output scale cancels).
  std::map<size_t, std::pair<const ConvPlan*, std::vector<float>>> shortcutOf;
  std::set<size_t> fusedAway;
  for (ConvPlan* pp : chosen) {
    const ConvPlan& p = *pp;
    if (p.z == kNoValue || p.s2d || g.isGraphOutput(p.z) || consumers[p.z].size() != 1) continue;
    const int32_t producer = g.values[p.z].producer;
    const ConvPlan* d = nullptr;
    for (const ConvPlan* c : chosen) d = c->node == size_t(producer) ? c : d;
    if (d == nullptr || d->z != kNoValue || d->relu || d->s2d || d->r != 1 || d->s != 1 || d->kPad != d->c ||
        d->pads != std::vector<int64_t>{0, 0, 0, 0} || d->dilations != std::vector<int64_t>{1, 1} ||
        d->strides[0] != d->strides[1] || fusedAway.count(d->node) || shortcutOf.count(d->node))
      continue;
    const SymShape &xs = g.values[p.x].shape, &ys = g.values[p.y].shape, &x2s = g.values[d->x].shape;
    if (!xs.isConcrete() || !ys.isConcrete() || !x2s.isConcrete() || p.kPad != p.r * p.s * p.c) continue;
    // The geometry the fused node's kernel will see (int8_kernels.cc builds it the same way).
    Im2ColGeometry geo = nhwcWindowGeometry(g.nodes[p.node], xs.concrete(), ys.concrete(), {p.r, p.s});
    geo.kPad = p.kPad + d->kPad;
    geo.h2 = x2s.dims[1].value, geo.w2 = x2s.dims[2].value, geo.c2 = d->c, geo.stride2 = int(d->strides[0]);
    if (x2s.dims[0].value != geo.n || !int8ShortcutFusable(geo, p.k)) continue;
    std::vector<float> ratio(static_cast<size_t>(p.k));
    double largest = 0;
    for (int64_t k = 0; k < p.k; ++k) {
      ratio[k] = (scaleOf(p.x) * p.wScale[k]) / (scaleOf(d->x) * d->wScale[k]);
      largest = std::max(largest, std::fabs(double(ratio[k])));
    }
    // |acc| <= bytes * 127^2 before the move, and the shortcut adds at most c2 * 127^2.
    if (largest * double(p.kPad) * 127 * 127 + double(d->c) * 127 * 127 >= 0.5 * 2147483648.0) continue;
    shortcutOf[p.node] = {d, std::move(ratio)};
    fusedAway.insert(d->node);
  }

  for (ConvPlan* pp : chosen) {
    ConvPlan& p = *pp;
    if (fusedAway.count(p.node)) {
      g.nodes[p.node].dead = true;
      continue;
    }
    auto fused = shortcutOf.find(p.node);
    const ConvPlan* shortcut = fused != shortcutOf.end() ? fused->second.first : nullptr;
    if (shortcut != nullptr) {
      rewriteWithShortcut(g, p, *shortcut, fused->second.second, scaleOf(p.y), scaleOf(shortcut->x), int8Of(p.x),
                          int8Of(shortcut->x), int8Of(p.y));
      nodePrecision[g.nodes[p.node].name] = "int8";
      continue;
    }
    const float sx = scaleOf(p.x), sy = scaleOf(p.y);
    const float sz = p.z != kNoValue ? scaleOf(p.z) : 0.f;
    Tensor wq = Tensor::allocate(DType::Int8, {p.k, p.kPad});
    Tensor alpha = Tensor::allocate(DType::Float32, {p.k});
    Tensor bias = Tensor::allocate(DType::Float32, {p.k});
    const Tensor* b = planBias(g, p);
    for (int64_t k = 0; k < p.k; ++k) {
      writeInt8Weights(p, k, wq.ptr<int8_t>() + k * p.kPad);
      alpha.ptr<float>()[k] = sx * p.wScale[k] / sy;
      bias.ptr<float>()[k] = b ? elementAsFloat(*b, k) / sy : 0.f;
    }
    const ValueId x = p.s2d ? spaceToDepthInt8Of(p) : int8Of(p.x);
    std::vector<ValueId> inputs = int8ConvInputs(g, g.nodes[p.node].name, x, std::move(wq), std::move(alpha), std::move(bias));
    if (p.z != kNoValue) inputs.push_back(int8Of(p.z));
    replaceWithInt8Conv(g, p, std::move(inputs), int8Of(p.y), p.z != kNoValue ? sz / sy : 0.f);
    nodePrecision[g.nodes[p.node].name] = "int8";
  }
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    Node& node = g.nodes[n];
    if (!int8Node[n] || node.opType != "CudaMaxPoolNHWC") continue;
    const ValueId in = int8Of(node.inputs[0]);
    const ValueId out = int8Of(node.outputs[0]);
    node.opType = "CudaMaxPoolInt8NHWC";
    node.inputs = {in};
    node.outputs = {out};
    g.values[out].producer = static_cast<int32_t>(n);
    nodePrecision[node.name] = "int8";
  }
  // The fp16 originals of values now written in int8 keep a producer only through a Dequantize.
  for (auto& [v, t] : twin) {
    const int32_t producer = g.values[v].producer;
    if (producer >= 0 && int8Node[producer]) g.values[v].producer = -1;
  }
  for (Node& n : added) {
    nodePrecision[n.name] = "int8";
    g.addNode(std::move(n));
  }
  g.compact();
  inferShapes(g);
  if (readInputsInPlace(g) > 0) {
    g.compact();
    inferShapes(g);
  }

  std::string summary = "int8: " + std::to_string(chosen.size()) + " of " + std::to_string(plans.size() + skipped.size()) +
                        " convolutions run in INT8";
  if (!fallbacks.empty()) {
    summary += "; fp16 fallback for " + std::to_string(fallbacks.size()) + ": " + fallbacks[0];
    for (size_t i = 1; i < fallbacks.size() && i < 8; ++i) summary += ", " + fallbacks[i];
    if (fallbacks.size() > 8) summary += ", ...";
  }
  if (!skipped.empty()) summary += "; no INT8 kernel for " + std::to_string(skipped.size()) + " (e.g. " + skipped[0] + ")";
  warnings.push_back(summary);
}

}  // namespace kiln::cuda
