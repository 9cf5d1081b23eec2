// CPU kernels of MaxPool (with optional Indices, any storage_order), AveragePool (count_include_pad),
// LpPool and MaxUnpool over any spatial rank. Each spatial dim's valid taps per output position are
// precomputed once per run (windows clipped to the input, padding and ceil_mode handled there), so
// the per-plane loops are branch-free walks over tap lists; planes run in parallel. MaxPool keeps
// its input type (int8/uint8 included); the others compute in float32. Global pools: pool_global.cc.
// Schemas: ops/nn_pool.cc.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "backends/cpu/ops/gemm_common.h"

namespace kiln::cpu {
namespace {

using namespace nn;

enum class PoolMode { Max, Average, Lp };

// For one spatial dim: for each output position, the input coordinates its window reads.
struct DimTaps {
  std::vector<int64_t> begin;   // out + 1 offsets into coords
  std::vector<int64_t> coords;  // input coordinates
  std::vector<int64_t> padded;  // per output: window positions inside input + pads (count_include_pad)
};

struct PoolPlan {
  int64_t N = 0, C = 0;
  size_t rank = 0;
  std::vector<int64_t> in, out;
  int64_t inPixels = 1, outPixels = 1;
  std::vector<DimTaps> taps;
  Shape yShape;
};

PoolPlan makePlan(const Node& node, const Shape& x, const WindowParams& wp) {
  PoolPlan p;
  if (x.size() < 3) failAt(node, ErrorCode::ShapeMismatch, "input X " + shapeToString(x) + " must be at least 3-D [N, C, spatial...]");
  if (x.size() - 2 != wp.rank) {
    failAt(node, ErrorCode::ShapeMismatch, "kernel_shape has " + std::to_string(wp.rank) + " dims but X " + shapeToString(x) +
                                                 " has " + std::to_string(x.size() - 2) + " spatial dims");
  }
  p.N = x[0];
  p.C = x[1];
  p.rank = wp.rank;
  p.yShape = {p.N, p.C};
  for (size_t d = 0; d < p.rank; d++) {
    const int64_t in = x[d + 2];
    WindowDim r = forwardWindowDim(node, wp, d, in);
    p.in.push_back(in);
    p.out.push_back(r.out);
    p.inPixels *= in;
    p.outPixels = checkedProduct(node, p.outPixels, r.out, "the output");
    p.yShape.push_back(r.out);
    // The tap table holds each output's valid taps (at most min(kernel, input) per output).
    if (checkedProduct(node, r.out, std::min(wp.kernel[d], std::max<int64_t>(in, 1)), "the pooling window table") >
        (int64_t(1) << 28)) {
      failAt(node, ErrorCode::OutOfMemory, "pooling windows in spatial dim " + std::to_string(d) + " are too large");
    }
    DimTaps t;
    t.begin.push_back(0);
    for (int64_t o = 0; o < r.out; o++) {
      int64_t padded = 0;
      for (int64_t k = 0; k < wp.kernel[d]; k++) {
        const int64_t i = o * wp.strides[d] - r.padBegin + k * wp.dilations[d];
        if (i >= -r.padBegin && i < in + r.padEnd) padded++;
        if (i >= 0 && i < in) t.coords.push_back(i);
      }
      t.begin.push_back(int64_t(t.coords.size()));
      t.padded.push_back(padded);
    }
    p.taps.push_back(std::move(t));
  }
  return p;
}

// Per-worker buffers for forEachWindow (reused across outputs: no allocation in the loops).
struct WindowScratch {
  std::vector<int64_t> window, opos, lo, hi, k;
  explicit WindowScratch(size_t rank) : opos(rank), lo(rank), hi(rank), k(rank) {}
};

// Walks every output position of one plane and calls fn(outIndex, outPosition) with s.window
// holding the flat input offsets of its taps (empty when the window lies in padding only).
template <class Fn>
void forEachWindow(const PoolPlan& p, WindowScratch& s, Fn&& fn) {
  const size_t r = p.rank;
  std::fill(s.opos.begin(), s.opos.end(), 0);
  for (int64_t o = 0; o < p.outPixels; o++) {
    s.window.clear();
    bool empty = false;
    for (size_t d = 0; d < r; d++) {
      s.lo[d] = p.taps[d].begin[size_t(s.opos[d])];
      s.hi[d] = p.taps[d].begin[size_t(s.opos[d]) + 1];
      s.k[d] = s.lo[d];
      empty |= s.lo[d] == s.hi[d];
    }
    // Odometer over the per-dim tap lists, emitting row-major input offsets.
    while (!empty) {
      int64_t off = 0;
      for (size_t d = 0; d < r; d++) off = off * p.in[d] + p.taps[d].coords[size_t(s.k[d])];
      s.window.push_back(off);
      size_t d = r;
      while (d > 0) {
        if (++s.k[d - 1] < s.hi[d - 1]) break;
        s.k[d - 1] = s.lo[d - 1];
        d--;
      }
      if (d == 0) break;
    }
    fn(o, s.opos);
    for (size_t d = r; d-- > 0;) {
      if (++s.opos[d] < p.out[d]) break;
      s.opos[d] = 0;
    }
  }
}

// The input's flat offset in column-major spatial order (MaxPool storage_order = 1).
int64_t columnMajor(const PoolPlan& p, int64_t rowMajorOffset) {
  int64_t offset = 0, scale = 1, rem = rowMajorOffset;
  std::vector<int64_t> idx(p.rank);
  for (size_t d = p.rank; d-- > 0;) {
    idx[d] = rem % p.in[d];
    rem /= p.in[d];
  }
  for (size_t d = 0; d < p.rank; d++) {
    offset += idx[d] * scale;
    scale *= p.in[d];
  }
  return offset;
}

class PoolKernel final : public Kernel {
 public:
  PoolKernel(const KernelCreateInfo& info, PoolMode mode) : node_(info.node), mode_(mode) {
    const DType t = info.inputTypes.size() > 0 ? info.inputTypes[0] : DType::Undefined;
    const bool integerMax = mode == PoolMode::Max && (t == DType::Int8 || t == DType::UInt8);
    if (!integerMax) requireComputeFloat(node_, t, "input X");
    if (!node_.has("kernel_shape")) failAt(node_, ErrorCode::InvalidModel, "attribute kernel_shape is required");
    const size_t rank = node_.getInts("kernel_shape").size();
    params_ = readWindowParams(node_, rank, {});
    countIncludePad_ = node_.getInt("count_include_pad", 0) != 0;
    storageOrder_ = node_.getInt("storage_order", 0);
    if (storageOrder_ != 0 && storageOrder_ != 1) failAt(node_, ErrorCode::InvalidModel, "storage_order must be 0 or 1");
    p_ = float(node_.getInt("p", 2));
    if (mode == PoolMode::Lp && p_ <= 0) failAt(node_, ErrorCode::InvalidModel, "p must be positive");
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requiredInput(ctx, 0, "X");
    const PoolPlan p = makePlan(node_, x.shape, params_);
    Tensor& y = requiredOutput(ctx, 0, x.dtype, p.yShape);
    Tensor* indices = mode_ == PoolMode::Max ? optionalOutput(ctx, 1, DType::Int64, p.yShape) : nullptr;
    if (y.numel() == 0) return;
    ThreadPool* pool = computePool(ctx);
    switch (x.dtype) {
      case DType::Int8: return runMax(p, x.ptr<int8_t>(), y.ptr<int8_t>(), indices, pool);
      case DType::UInt8: return runMax(p, x.ptr<uint8_t>(), y.ptr<uint8_t>(), indices, pool);
      default: break;
    }
    FloatView xv(x);
    FloatSink sink(y);
    if (mode_ == PoolMode::Max) {
      runMax(p, xv.data(), sink.data(), indices, pool);
    } else {
      runAverageOrLp(p, xv.data(), sink.data(), pool);
    }
    sink.commit();
  }

  std::string name() const override {
    switch (mode_) {
      case PoolMode::Max: return "pool.max";
      case PoolMode::Average: return "pool.average";
      case PoolMode::Lp: return "pool.lp";
    }
    return "pool";
  }

 private:
  template <class T>
  void runMax(const PoolPlan& p, const T* x, T* y, Tensor* indices, ThreadPool* pool) const {
    int64_t* idx = indices ? indices->ptr<int64_t>() : nullptr;
    pool->parallelFor(p.N * p.C, 1, [&](int64_t b, int64_t e) {
      WindowScratch s(p.rank);
      const std::vector<int64_t>& window = s.window;
      for (int64_t plane = b; plane < e; plane++) {
        const T* xp = x + plane * p.inPixels;
        T* yp = y + plane * p.outPixels;
        if (p.rank == 2) {
          maxPlane2d(p, xp, yp, idx ? idx + plane * p.outPixels : nullptr, plane * p.inPixels);
          continue;
        }
        forEachWindow(p, s, [&](int64_t o, const std::vector<int64_t>&) {
          // A window entirely in padding has no input: its max is the lowest value (as ORT).
          T best = std::numeric_limits<T>::lowest();
          int64_t at = window.empty() ? 0 : window[0];
          for (int64_t off : window) {
            if (xp[off] > best) {
              best = xp[off];
              at = off;
            }
          }
          yp[o] = best;
          if (idx) idx[plane * p.outPixels + o] = plane * p.inPixels + (storageOrder_ ? columnMajor(p, at) : at);
        });
      }
    });
  }

  // The 2-D planes (nearly every pool in practice) walk the two tap lists directly.
  template <class T>
  void maxPlane2d(const PoolPlan& p, const T* xp, T* yp, int64_t* ip, int64_t planeBase) const {
    const DimTaps& ty = p.taps[0];
    const DimTaps& tx = p.taps[1];
    const int64_t W = p.in[1], OW = p.out[1];
    for (int64_t oy = 0; oy < p.out[0]; oy++) {
      const int64_t y0 = ty.begin[size_t(oy)], y1 = ty.begin[size_t(oy) + 1];
      for (int64_t ox = 0; ox < OW; ox++) {
        const int64_t x0 = tx.begin[size_t(ox)], x1 = tx.begin[size_t(ox) + 1];
        T best = std::numeric_limits<T>::lowest();
        int64_t at = y0 < y1 && x0 < x1 ? ty.coords[size_t(y0)] * W + tx.coords[size_t(x0)] : 0;
        for (int64_t i = y0; i < y1; i++) {
          const int64_t rowOffset = ty.coords[size_t(i)] * W;
          for (int64_t j = x0; j < x1; j++) {
            const T v = xp[rowOffset + tx.coords[size_t(j)]];
            if (v > best) {
              best = v;
              at = rowOffset + tx.coords[size_t(j)];
            }
          }
        }
        yp[oy * OW + ox] = best;
        if (ip) ip[oy * OW + ox] = planeBase + (storageOrder_ ? columnMajor(p, at) : at);
      }
    }
  }

  void averagePlane2d(const PoolPlan& p, const float* xp, float* yp) const {
    const DimTaps& ty = p.taps[0];
    const DimTaps& tx = p.taps[1];
    const int64_t W = p.in[1], OW = p.out[1];
    for (int64_t oy = 0; oy < p.out[0]; oy++) {
      const int64_t y0 = ty.begin[size_t(oy)], y1 = ty.begin[size_t(oy) + 1];
      for (int64_t ox = 0; ox < OW; ox++) {
        const int64_t x0 = tx.begin[size_t(ox)], x1 = tx.begin[size_t(ox) + 1];
        float acc = 0.f;
        for (int64_t i = y0; i < y1; i++) {
          const float* row = xp + ty.coords[size_t(i)] * W;
          for (int64_t j = x0; j < x1; j++) acc += row[tx.coords[size_t(j)]];
        }
        const int64_t count = countIncludePad_ ? ty.padded[size_t(oy)] * tx.padded[size_t(ox)] : (y1 - y0) * (x1 - x0);
        yp[oy * OW + ox] = count > 0 ? acc / float(count) : 0.f;
      }
    }
  }

  void runAverageOrLp(const PoolPlan& p, const float* x, float* y, ThreadPool* pool) const {
    pool->parallelFor(p.N * p.C, 1, [&](int64_t b, int64_t e) {
      WindowScratch s(p.rank);
      const std::vector<int64_t>& window = s.window;
      for (int64_t plane = b; plane < e; plane++) {
        const float* xp = x + plane * p.inPixels;
        float* yp = y + plane * p.outPixels;
        if (p.rank == 2 && mode_ == PoolMode::Average) {
          averagePlane2d(p, xp, yp);
          continue;
        }
        forEachWindow(p, s, [&](int64_t o, const std::vector<int64_t>& pos) {
          if (mode_ == PoolMode::Lp) {
            double acc = 0;
            for (int64_t off : window) acc += std::pow(std::fabs(double(xp[off])), double(p_));
            yp[o] = float(std::pow(acc, 1.0 / double(p_)));
            return;
          }
          double acc = 0;
          for (int64_t off : window) acc += xp[off];
          int64_t count = int64_t(window.size());
          if (countIncludePad_) {
            count = 1;
            for (size_t d = 0; d < p.rank; d++) count *= p.taps[d].padded[size_t(pos[d])];
          }
          yp[o] = count > 0 ? float(acc / double(count)) : 0.f;
        });
      }
    });
  }

  Node node_;  // a copy: the kernel may outlive the graph it was built from
  PoolMode mode_;
  WindowParams params_;
  bool countIncludePad_ = false;
  int64_t storageOrder_ = 0;
  float p_ = 2.f;
};

// MaxUnpool: scatters X into a zero output at the flat positions I (as MaxPool's Indices).
class MaxUnpoolKernel final : public Kernel {
 public:
  explicit MaxUnpoolKernel(const KernelCreateInfo& info) : node_(info.node) {
    requireComputeFloat(node_, info.inputTypes.size() > 0 ? info.inputTypes[0] : DType::Undefined, "input X");
    if (!node_.has("kernel_shape")) failAt(node_, ErrorCode::InvalidModel, "attribute kernel_shape is required");
    params_ = readWindowParams(node_, node_.getInts("kernel_shape").size(), {});
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requiredInput(ctx, 0, "X");
    const Tensor& ind = requiredInput(ctx, 1, "I");
    if (ind.dtype != DType::Int64) failAt(node_, ErrorCode::DTypeMismatch, "indices I must be int64");
    if (ind.shape != x.shape) {
      failAt(node_, ErrorCode::ShapeMismatch, "indices I " + shapeToString(ind.shape) + " must have the shape of X " +
                                                    shapeToString(x.shape));
    }
    if (x.shape.size() != params_.rank + 2) {
      failAt(node_, ErrorCode::ShapeMismatch, "input X " + shapeToString(x.shape) + " does not match kernel_shape");
    }
    // Indices address the unpooled shape inferred from the window attributes; an explicit (larger)
    // output_shape only adds zeros past it in every dim, as the ONNX reference does.
    Shape inferred = {x.shape[0], x.shape[1]};
    for (size_t d = 0; d < params_.rank; d++) {
      inferred.push_back((x.shape[d + 2] - 1) * params_.strides[d] + params_.kernel[d] - params_.pads[d] -
                         params_.pads[d + params_.rank]);
      if (inferred.back() < 0) failAt(node_, ErrorCode::ShapeMismatch, "pads exceed the unpooled size");
    }
    Shape yShape = inferred;
    if (const Tensor* os = optionalInput(ctx, 2)) {
      yShape = os->toInt64Vector();
      if (yShape.size() != x.shape.size()) failAt(node_, ErrorCode::ShapeMismatch, "output_shape has the wrong rank");
      for (size_t d = 0; d < yShape.size(); d++) {
        if (yShape[d] < inferred[d]) {
          failAt(node_, ErrorCode::ShapeMismatch, "output_shape " + shapeToString(yShape) + " is smaller than the unpooled shape " +
                                                      shapeToString(inferred));
        }
      }
    }
    Tensor& y = requiredOutput(ctx, 0, x.dtype, yShape);
    FloatView xv(x);
    std::vector<float> unpooled(static_cast<size_t>(shapeNumel(inferred)), 0.f);
    const int64_t total = int64_t(unpooled.size());
    const int64_t* idx = ind.ptr<int64_t>();
    for (int64_t i = 0; i < x.numel(); i++) {
      if (idx[i] < 0 || idx[i] >= total) {
        failAt(node_, ErrorCode::InvalidArgument, "index " + std::to_string(idx[i]) + " is outside the unpooled shape " +
                                                      shapeToString(inferred));
      }
      unpooled[size_t(idx[i])] = xv.data()[i];
    }
    FloatSink sink(y);
    std::fill(sink.data(), sink.data() + y.numel(), 0.f);
    // Copy the inferred-shape block into the output's leading corner, one innermost row at a time.
    const size_t r = inferred.size();
    const int64_t inner = inferred[r - 1];
    std::vector<int64_t> pos(r, 0);
    for (int64_t row = 0; row < total / std::max<int64_t>(1, inner); row++) {
      int64_t out = 0;
      for (size_t d = 0; d + 1 < r; d++) out = out * yShape[d] + pos[d];
      std::copy(unpooled.begin() + row * inner, unpooled.begin() + (row + 1) * inner, sink.data() + out * yShape[r - 1]);
      for (size_t d = r - 1; d-- > 0;) {
        if (++pos[d] < inferred[d]) break;
        pos[d] = 0;
      }
    }
    sink.commit();
  }

  std::string name() const override { return "pool.max_unpool"; }

 private:
  Node node_;
  WindowParams params_;
};

std::unique_ptr<Kernel> createMaxPool(const KernelCreateInfo& info) { return std::make_unique<PoolKernel>(info, PoolMode::Max); }
std::unique_ptr<Kernel> createAveragePool(const KernelCreateInfo& info) {
  return std::make_unique<PoolKernel>(info, PoolMode::Average);
}
std::unique_ptr<Kernel> createLpPool(const KernelCreateInfo& info) { return std::make_unique<PoolKernel>(info, PoolMode::Lp); }
std::unique_ptr<Kernel> createMaxUnpool(const KernelCreateInfo& info) { return std::make_unique<MaxUnpoolKernel>(info); }

}  // namespace

KILN_REGISTER_KERNEL(MaxPool, (KernelDef{"cpu", "", "MaxPool", 1, createMaxPool}));
KILN_REGISTER_KERNEL(AveragePool, (KernelDef{"cpu", "", "AveragePool", 1, createAveragePool}));
KILN_REGISTER_KERNEL(LpPool, (KernelDef{"cpu", "", "LpPool", 1, createLpPool}));
KILN_REGISTER_KERNEL(MaxUnpool, (KernelDef{"cpu", "", "MaxUnpool", 9, createMaxUnpool}));

}  // namespace kiln::cpu
