// CPU kernels of QuantizeLinear and DequantizeLinear (uint8/int8/uint16/int16/int32 storage, float
// scales). Scale and zero point are per tensor (one element), per axis (1-D along `axis`) or blocked
// (x's rank, dim `axis` = ceil(n / block_size)): for element (o, a, i) of x viewed as
// [outer, n, inner] the parameter index is 0, a, or (o * blocks + a / block_size) * inner + i.
// Quantization rounds half to even and saturates. Schemas: ops/quantize.cc.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "backends/cpu/ops/elementwise_util.h"

namespace kiln::cpu {
namespace {

constexpr uint32_t kQuantized = kU8 | kI8 | kU16 | kI16 | kI32;

// Where each element finds its scale and zero point.
struct ParamLayout {
  enum class Kind { Tensor, Axis, Block } kind = Kind::Tensor;
  int64_t outer = 1, n = 1, inner = 1, block = 1, blocks = 1;

  int64_t index(int64_t e) const {
    switch (kind) {
      case Kind::Tensor: return 0;
      case Kind::Axis: return (e / inner) % n;
      case Kind::Block: {
        int64_t i = e % inner, a = (e / inner) % n, o = e / (inner * n);
        return (o * blocks + a / block) * inner + i;
      }
    }
    return 0;
  }
};

// Validates scale (and zero point) against x and works out the layout.
ParamLayout layoutFor(const OpInfo& info, const Shape& x, const Tensor& scale, const Tensor* zp, int64_t axisAttr,
                      int64_t blockSize) {
  ParamLayout p;
  if (zp != nullptr && zp->shape != scale.shape && !(zp->numel() == 1 && scale.numel() == 1)) {
    info.shape("zero point shape " + shapeToString(zp->shape) + " differs from scale shape " + shapeToString(scale.shape));
  }
  const int64_t rank = static_cast<int64_t>(x.size());
  if (scale.numel() == 1 && blockSize == 0) return p;
  if (rank == 0) info.shape("a scalar input needs a scalar scale, got " + shapeToString(scale.shape));
  const int64_t a = normalizeAxis(axisAttr, rank, info);
  for (int64_t d = 0; d < a; d++) p.outer *= x[d];
  p.n = x[a];
  for (int64_t d = a + 1; d < rank; d++) p.inner *= x[d];
  if (blockSize > 0) {
    p.kind = ParamLayout::Kind::Block;
    p.block = blockSize;
    p.blocks = (p.n + blockSize - 1) / blockSize;
    Shape want = x;
    want[a] = p.blocks;
    if (scale.shape != want) {
      info.shape("blocked scale must have shape " + shapeToString(want) + ", got " + shapeToString(scale.shape));
    }
    return p;
  }
  if (scale.shape.size() != 1 || scale.shape[0] != p.n) {
    info.shape("per-axis scale must have shape [" + std::to_string(p.n) + "] for axis " + std::to_string(a) + " of " +
               shapeToString(x) + ", got " + shapeToString(scale.shape));
  }
  p.kind = ParamLayout::Kind::Axis;
  return p;
}

class QuantizeKernel final : public Kernel {
 public:
  QuantizeKernel(const KernelCreateInfo& info, bool quantize)
      : info_(info),
        quantize_(quantize),
        axis_(info.node.getInt("axis", 1)),
        block_(info.opset >= 21 ? info.node.getInt("block_size", 0) : 0),
        saturate_(info.node.getInt("saturate", 1) != 0) {
    if (block_ < 0) info_.invalid("block_size must be >= 0");
    const DType x = inputType(info, 0), scale = inputType(info, 1), y = outputType(info, 0);
    if (quantize_) {
      if (x != DType::Undefined) info_.require(kF32 | kF16 | kBF16 | kI32, x, "x");
      if (y != DType::Undefined) info_.require(kQuantized & ~kI32, y, "y");
    } else {
      if (x != DType::Undefined) info_.require(kQuantized, x, "x");
    }
    if (scale != DType::Undefined) info_.require(kF32 | kF16 | kBF16, scale, "scale");
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requireInput(ctx, info_, 0);
    const Tensor& scale = requireInput(ctx, info_, 1);
    const Tensor* zp = ctx.inputs.size() > 2 ? ctx.inputs[2] : nullptr;
    Tensor& y = requireOutput(ctx, info_, 0, x.shape);
    ParamLayout layout = layoutFor(info_, x.shape, scale, zp, axis_, block_);
    // Parameters are few: read them once as float/int64 so the element loop stays simple.
    std::vector<float> s(static_cast<size_t>(scale.numel()));
    dispatch<kF32 | kF16 | kBF16>(scale.dtype, info_, [&](auto tag) {
      using S = typename decltype(tag)::type;
      for (size_t i = 0; i < s.size(); i++) s[i] = Num<S>::load(scale.ptr<S>()[i]);
    });
    const DType qtype = quantize_ ? y.dtype : x.dtype;
    if (zp != nullptr && zp->dtype != qtype) {
      info_.invalid(std::string("zero point type ") + dtypeName(zp->dtype) + " differs from " + dtypeName(qtype));
    }
    std::vector<int64_t> z(s.size(), 0);
    if (zp != nullptr) {
      dispatch<kQuantized>(zp->dtype, info_, [&](auto tag) {
        using Q = typename decltype(tag)::type;
        for (size_t i = 0; i < z.size() && i < static_cast<size_t>(zp->numel()); i++) z[i] = zp->ptr<Q>()[i];
      });
    }
    const int64_t n = x.numel();
    dispatch<kQuantized>(qtype, info_, [&](auto qtag) {
      using Q = typename decltype(qtag)::type;
      if (quantize_) {
        dispatch<kF32 | kF16 | kBF16 | kI32>(x.dtype, info_, [&](auto xtag) {
          using X = typename decltype(xtag)::type;
          quantizeLoop<X, Q>(ctx, x.ptr<X>(), y.ptr<Q>(), n, layout, s, z);
        });
      } else {
        dispatch<kF32 | kF16 | kBF16>(y.dtype, info_, [&](auto ytag) {
          using Y = typename decltype(ytag)::type;
          const Q* in = x.ptr<Q>();
          Y* out = y.ptr<Y>();
          parallel(ctx, n, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; i++) {
              int64_t k = layout.index(i);
              out[i] = Num<Y>::store(static_cast<float>(static_cast<int64_t>(in[i]) - z[k]) * s[k]);
            }
          });
        });
      }
    });
  }
  std::string name() const override { return "quantize." + info_.op; }

 private:
  template <class X, class Q>
  void quantizeLoop(KernelContext& ctx, const X* in, Q* out, int64_t n, const ParamLayout& layout,
                    const std::vector<float>& s, const std::vector<int64_t>& z) const {
    constexpr double lo = static_cast<double>(std::numeric_limits<Q>::lowest());
    constexpr double hi = static_cast<double>(std::numeric_limits<Q>::max());
    parallel(ctx, n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; i++) {
        int64_t k = layout.index(i);
        // Divide (not multiply by 1/scale) so results match the ONNX reference bit for bit.
        float q = std::nearbyint(static_cast<float>(Num<X>::load(in[i])) / s[k]);
        double v = static_cast<double>(q) + static_cast<double>(z[k]);
        v = v != v ? 0.0 : v;
        out[i] = static_cast<Q>(v < lo ? lo : (v > hi ? hi : v));
      }
    });
  }
  template <class F>
  void parallel(KernelContext& ctx, int64_t n, const F& f) const {
    if (n <= kGrain) {
      f(0, n);
    } else {
      poolOf(ctx).parallelFor(n, kGrain, f);
    }
  }

  OpInfo info_;
  bool quantize_;
  int64_t axis_, block_;
  bool saturate_;  // only meaningful for float8 targets, which the engine does not store
};

// DynamicQuantizeLinear: uint8 with a scale and zero point chosen from x's range (widened to hold
// 0), as dynamically quantized MatMulInteger/ConvInteger models compute their activations.
class DynamicQuantizeKernel final : public Kernel {
 public:
  explicit DynamicQuantizeKernel(const KernelCreateInfo& info) : info_(info) {}
  void run(KernelContext& ctx) const override {
    const Tensor& x = requireInput(ctx, info_, 0);
    if (x.dtype != DType::Float32) info_.unsupported(x.dtype, "x");
    Tensor& y = requireOutput(ctx, info_, 0, x.shape);
    const float* in = x.ptr<float>();
    float lo = 0.f, hi = 0.f;
    for (int64_t i = 0; i < x.numel(); i++) {
      if (std::isnan(in[i])) info_.invalid("x contains NaN");
      lo = std::min(lo, in[i]);
      hi = std::max(hi, in[i]);
    }
    const float scale = (hi - lo) / 255.f;
    // Round half to even, as the ONNX reference (numpy.rint) does.
    const float zero = scale == 0.f ? 0.f : std::max(0.f, std::min(255.f, std::nearbyint(0.f - lo / scale)));
    uint8_t* out = y.ptr<uint8_t>();
    parallel(ctx, x.numel(), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; i++) {
        const float q = scale == 0.f ? zero : std::nearbyint(in[i] / scale) + zero;
        out[i] = static_cast<uint8_t>(std::max(0.f, std::min(255.f, q)));
      }
    });
    requireOutput(ctx, info_, 1, {}).ptr<float>()[0] = scale;
    requireOutput(ctx, info_, 2, {}).ptr<uint8_t>()[0] = static_cast<uint8_t>(zero);
  }
  std::string name() const override { return "quantize.dynamic_uint8"; }

 private:
  template <class F>
  void parallel(KernelContext& ctx, int64_t n, const F& f) const {
    if (n <= kGrain) f(0, n);
    else poolOf(ctx).parallelFor(n, kGrain, f);
  }
  OpInfo info_;
};

std::unique_ptr<Kernel> makeDynamicQuantize(const KernelCreateInfo& info) { return std::make_unique<DynamicQuantizeKernel>(info); }
std::unique_ptr<Kernel> makeQuantize(const KernelCreateInfo& info) { return std::make_unique<QuantizeKernel>(info, true); }
std::unique_ptr<Kernel> makeDequantize(const KernelCreateInfo& info) { return std::make_unique<QuantizeKernel>(info, false); }

}  // namespace

KILN_REGISTER_KERNEL(QuantizeLinear, (KernelDef{"cpu", "", "QuantizeLinear", 10, makeQuantize}));
KILN_REGISTER_KERNEL(DynamicQuantizeLinear, (KernelDef{"cpu", "", "DynamicQuantizeLinear", 11, makeDynamicQuantize}));
KILN_REGISTER_KERNEL(DequantizeLinear, (KernelDef{"cpu", "", "DequantizeLinear", 10, makeDequantize}));

}  // namespace kiln::cpu
