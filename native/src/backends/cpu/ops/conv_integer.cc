// CPU kernels of ConvInteger and QLinearConv (the ONNX quantized convolutions): exact int32
// accumulation of (x - x_zero_point) * (w - w_zero_point) over each window in a direct loop (any
// rank, groups, pads, strides, dilations, auto_pad), then for QLinearConv the int32 bias and the
// requantization by x_scale * w_scale / y_scale (w_scale and w_zero_point per tensor or per output
// channel), rounding half to even and saturating. For model coverage; quantized models run fast
// through the INT8 engine build. Schemas: ops/nn_conv.cc.
#include <algorithm>
#include <cmath>
#include <memory>

#include "backends/cpu/ops/gemm_common.h"

namespace kiln::cpu {
namespace {

using namespace nn;

int32_t readInt(const Tensor& t, int64_t i) {
  switch (t.dtype) {
    case DType::Int8: return t.ptr<int8_t>()[i];
    case DType::UInt8: return t.ptr<uint8_t>()[i];
    case DType::Int32: return t.ptr<int32_t>()[i];
    default: return 0;
  }
}

void requireQuantized(const Node& node, const Tensor& t, const char* what) {
  if (t.dtype != DType::Int8 && t.dtype != DType::UInt8) {
    failAt(node, ErrorCode::UnsupportedOp, std::string(what) + " of type " + dtypeName(t.dtype) + " is not supported (int8, uint8 are)");
  }
}

// A per-tensor or per-output-channel parameter.
int64_t channelIndex(const Node& node, const Tensor* t, int64_t m, int64_t M, const char* what) {
  if (!t || t->numel() == 1) return 0;
  if (t->numel() != M) {
    failAt(node, ErrorCode::ShapeMismatch, std::string(what) + " " + shapeToString(t->shape) + " must be a scalar or have " +
                                               std::to_string(M) + " values (one per output channel)");
  }
  return m;
}

class ConvIntegerKernel final : public Kernel {
 public:
  ConvIntegerKernel(const KernelCreateInfo& info, bool qlinear) : node_(info.node), qlinear_(qlinear) {
    group_ = node_.getInt("group", 1);
    if (group_ < 1) failAt(node_, ErrorCode::InvalidModel, "group must be >= 1");
  }

  void run(KernelContext& ctx) const override {
    // ConvInteger: x, w, x_zero_point?, w_zero_point?
    // QLinearConv: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B?
    const Tensor& x = requiredInput(ctx, 0, "x");
    const Tensor& w = requiredInput(ctx, qlinear_ ? 3 : 1, "w");
    const Tensor* xz = optionalInput(ctx, 2);
    const Tensor* wz = optionalInput(ctx, qlinear_ ? 5 : 3);
    requireQuantized(node_, x, "input x");
    requireQuantized(node_, w, "input w");
    if (x.shape.size() < 3 || w.shape.size() != x.shape.size()) {
      failAt(node_, ErrorCode::ShapeMismatch, "x " + shapeToString(x.shape) + " and w " + shapeToString(w.shape) +
                                                  " must be [N, C, spatial...] and [M, C/group, k...]");
    }
    const int64_t N = x.shape[0], C = x.shape[1], M = w.shape[0], G = group_;
    if (C % G != 0 || M % G != 0 || w.shape[1] * G != C) {
      failAt(node_, ErrorCode::ShapeMismatch, "input x " + shapeToString(x.shape) + " has " + std::to_string(C) +
                                                  " channels but w " + shapeToString(w.shape) + " with group " +
                                                  std::to_string(G) + " expects " + std::to_string(w.shape[1] * G));
    }
    if (xz && xz->numel() != 1) failAt(node_, ErrorCode::ShapeMismatch, "x_zero_point must be a scalar");
    const int32_t xZero = xz ? readInt(*xz, 0) : 0;
    const size_t r = x.shape.size() - 2;
    const std::vector<int64_t> kernel(w.shape.begin() + 2, w.shape.end());
    WindowParams wp = readWindowParams(node_, r, kernel);
    Shape yShape = {N, M};
    std::vector<int64_t> padBegin(r);
    int64_t inPixels = 1, outPixels = 1, kSize = 1;
    for (size_t d = 0; d < r; d++) {
      WindowDim wd = forwardWindowDim(node_, wp, d, x.shape[d + 2]);
      yShape.push_back(wd.out);
      padBegin[d] = wd.padBegin;
      inPixels *= x.shape[d + 2];
      outPixels *= wd.out;
      kSize *= kernel[d];
    }
    const int64_t Cg = C / G, Mg = M / G;
    std::vector<int32_t> acc(static_cast<size_t>(N * M * outPixels), 0);
    std::vector<int64_t> opos(r), kidx(r);
    for (int64_t n = 0; n < N; n++) {
      for (int64_t m = 0; m < M; m++) {
        const int64_t g = m / Mg;
        const int32_t wZero = wz ? readInt(*wz, channelIndex(node_, wz, m, M, "w_zero_point")) : 0;
        int32_t* out = acc.data() + (n * M + m) * outPixels;
        for (int64_t o = 0; o < outPixels; o++) {
          int64_t rem = o;
          for (size_t d = r; d-- > 0;) {
            opos[d] = rem % yShape[d + 2];
            rem /= yShape[d + 2];
          }
          int32_t sum = 0;
          for (int64_t k = 0; k < kSize; k++) {
            int64_t krem = k, off = 0;
            bool inside = true;
            for (size_t d = r; d-- > 0;) {
              kidx[d] = krem % kernel[d];
              krem /= kernel[d];
            }
            for (size_t d = 0; d < r && inside; d++) {
              const int64_t i = opos[d] * wp.strides[d] - padBegin[d] + kidx[d] * wp.dilations[d];
              inside = i >= 0 && i < x.shape[d + 2];
              off = off * x.shape[d + 2] + i;
            }
            if (!inside) continue;  // padding holds the zero point: contributes 0
            for (int64_t c = 0; c < Cg; c++) {
              const int32_t xv = readInt(x, (n * C + g * Cg + c) * inPixels + off) - xZero;
              const int32_t wv = readInt(w, (m * Cg + c) * kSize + k) - wZero;
              sum += xv * wv;
            }
          }
          out[o] = sum;
        }
      }
    }
    if (!qlinear_) {
      Tensor& y = requiredOutput(ctx, 0, DType::Int32, yShape);
      std::copy(acc.begin(), acc.end(), y.ptr<int32_t>());
      return;
    }
    const Tensor& xs = requiredInput(ctx, 1, "x_scale");
    const Tensor& ws = requiredInput(ctx, 4, "w_scale");
    const Tensor& ys = requiredInput(ctx, 6, "y_scale");
    const Tensor& yz = requiredInput(ctx, 7, "y_zero_point");
    const Tensor* bias = optionalInput(ctx, 8);
    requireQuantized(node_, yz, "y_zero_point");
    if (xs.numel() != 1 || ys.numel() != 1 || yz.numel() != 1) {
      failAt(node_, ErrorCode::ShapeMismatch, "x_scale, y_scale and y_zero_point must be scalars");
    }
    if (bias && (bias->dtype != DType::Int32 || bias->numel() != M)) {
      failAt(node_, ErrorCode::ShapeMismatch, "bias B must be int32 with " + std::to_string(M) + " values");
    }
    const double xScale = xs.scalarAsDouble(0), yScale = ys.scalarAsDouble(0);
    const int32_t yZero = readInt(yz, 0);
    const int32_t lo = yz.dtype == DType::Int8 ? -128 : 0, hi = yz.dtype == DType::Int8 ? 127 : 255;
    Tensor& y = requiredOutput(ctx, 0, yz.dtype, yShape);
    for (int64_t n = 0; n < N; n++) {
      for (int64_t m = 0; m < M; m++) {
        const float scale = float(xScale * ws.scalarAsDouble(channelIndex(node_, &ws, m, M, "w_scale")) / yScale);
        const int32_t b = bias ? bias->ptr<int32_t>()[m] : 0;
        for (int64_t o = 0; o < outPixels; o++) {
          const int64_t at = (n * M + m) * outPixels + o;
          const int32_t q = std::clamp(int32_t(std::nearbyint(float(acc[size_t(at)] + b) * scale)) + yZero, lo, hi);
          if (yz.dtype == DType::Int8) y.ptr<int8_t>()[at] = int8_t(q);
          else y.ptr<uint8_t>()[at] = uint8_t(q);
        }
      }
    }
  }

  std::string name() const override { return qlinear_ ? "qlinear_conv.int32_direct" : "conv_integer.int32_direct"; }

 private:
  Node node_;
  bool qlinear_;
  int64_t group_ = 1;
};

std::unique_ptr<Kernel> createConvInteger(const KernelCreateInfo& info) { return std::make_unique<ConvIntegerKernel>(info, false); }
std::unique_ptr<Kernel> createQLinearConv(const KernelCreateInfo& info) { return std::make_unique<ConvIntegerKernel>(info, true); }

}  // namespace

KILN_REGISTER_KERNEL(ConvInteger, (KernelDef{"cpu", "", "ConvInteger", 10, createConvInteger}));
KILN_REGISTER_KERNEL(QLinearConv, (KernelDef{"cpu", "", "QLinearConv", 10, createQLinearConv}));

}  // namespace kiln::cpu
