// CPU kernel of ConvTranspose. Per image and group: col[Mg*k, pixels_in] = W_g^T x X_g through the
// SGEMM (W_g^T packed once at creation), then col2im scatters each column into the output window it
// covers (output = input * stride - pad + tap * dilation), on top of the bias. col2im is split by
// output channel, whose rows never write the same output element, so it runs in parallel without
// atomics. All of output_padding, output_shape, auto_pad (ONNX reference pad split, including the
// negative "pads" a stride larger than the kernel gives), groups and dilations, any spatial rank.
// Schema: ops/nn_conv.cc.
#include <algorithm>
#include <memory>

#include "backends/cpu/ops/gemm_common.h"

namespace kiln::cpu {
namespace {

using namespace nn;

struct Plan {
  int64_t N = 0, C = 0, M = 0, G = 1, Cg = 0, Mg = 0;
  size_t rank = 0;
  std::vector<int64_t> in, out, kernel, strides, dilations, padBegin;
  int64_t inPixels = 1, outPixels = 1, kernelSize = 1;
  Shape yShape;
};

class ConvTransposeKernel final : public Kernel {
 public:
  explicit ConvTransposeKernel(const KernelCreateInfo& info) : node_(info.node) {
    const DType t = info.inputTypes.size() > 0 ? info.inputTypes[0] : DType::Undefined;
    requireComputeFloat(node_, t, "input X");
    if (info.inputTypes.size() < 2 || info.inputTypes[1] != t) {
      failAt(node_, ErrorCode::DTypeMismatch, "inputs X and W must have the same type");
    }
    group_ = node_.getInt("group", 1);
    if (group_ < 1) failAt(node_, ErrorCode::InvalidModel, "group must be >= 1");
    const Tensor* w = info.constantInputs.size() > 1 ? info.constantInputs[1] : nullptr;
    if (w && w->shape.size() >= 3 && w->shape[0] % group_ == 0) {
      weightShape_ = w->shape;
      FloatView v(*w);
      const int64_t Cg = w->shape[0] / group_;
      const int64_t rows = w->numel() / std::max<int64_t>(1, w->shape[0]);  // Mg * kernelSize
      for (int64_t g = 0; g < group_; g++) {
        // A = W_g^T: element (r, c) = W_g[c, r].
        packed_.push_back(PackedMatrix::pack(PackedMatrix::Side::A, v.data() + g * Cg * rows, rows, Cg, 1, rows));
      }
    }
  }

  size_t workspaceBytes(const KernelContext& ctx) const override {
    const Tensor* x = inputShapeOf(ctx, 0);
    const Tensor* w = inputShapeOf(ctx, 1);
    if (!x || !w) return 0;
    Plan p = plan(x->shape, w->shape);
    return size_t(checkedProduct(node_, p.Mg * p.kernelSize, p.inPixels, "the col2im buffer")) * sizeof(float);
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requiredInput(ctx, 0, "X");
    const Tensor& w = requiredInput(ctx, 1, "W");
    if (x.dtype != w.dtype) failAt(node_, ErrorCode::DTypeMismatch, "inputs X and W must have the same type");
    const Plan p = plan(x.shape, w.shape);
    Tensor& y = requiredOutput(ctx, 0, x.dtype, p.yShape);
    if (y.numel() == 0) return;
    const int64_t rows = p.Mg * p.kernelSize;
    if (ctx.workspaceSize < size_t(rows * p.inPixels) * sizeof(float)) {
      failAt(node_, ErrorCode::Internal, "workspace too small");
    }
    const Tensor* b = optionalInput(ctx, 2);
    FloatView bView;
    if (b) {
      if (b->numel() != p.M) {
        failAt(node_, ErrorCode::ShapeMismatch, "bias B " + shapeToString(b->shape) + " must have " + std::to_string(p.M) +
                                                      " values (the output channels)");
      }
      if (b->dtype != x.dtype) failAt(node_, ErrorCode::DTypeMismatch, "bias B type differs from X");
      bView = FloatView(*b);
    }
    const bool usePacked = !packed_.empty() && w.shape == weightShape_;
    FloatView wView;
    if (!usePacked) wView = FloatView(w);
    FloatView xView(x);
    FloatSink sink(y);
    float* col = static_cast<float*>(ctx.workspace);
    ThreadPool* pool = computePool(ctx);

    for (int64_t n = 0; n < p.N; n++) {
      for (int64_t g = 0; g < p.G; g++) {
        GemmArgs a;
        a.M = rows;
        a.N = p.inPixels;
        a.K = p.Cg;
        a.A = usePacked ? GemmOperand::prepacked(packed_[size_t(g)].get())
                        : GemmOperand{wView.data() + g * p.Cg * rows, 1, rows, nullptr};
        a.B = GemmOperand::rowMajor(xView.data() + (n * p.C + g * p.Cg) * p.inPixels, p.inPixels);
        a.C = col;
        a.ldc = p.inPixels;
        sgemm(a, pool);
        float* yg = sink.data() + (n * p.M + g * p.Mg) * p.outPixels;
        pool->parallelFor(p.Mg, 1, [&](int64_t m0, int64_t m1) {
          for (int64_t m = m0; m < m1; m++) {
            float* ym = yg + m * p.outPixels;
            std::fill(ym, ym + p.outPixels, b ? bView.data()[g * p.Mg + m] : 0.f);
            col2im(p, col + m * p.kernelSize * p.inPixels, ym);
          }
        });
      }
    }
    sink.commit();
  }

  std::string name() const override { return std::string("conv_transpose.sgemm_col2im.") + sgemmTactic(); }

 private:
  Plan plan(const Shape& x, const Shape& w) const {
    Plan p;
    if (x.size() < 3) failAt(node_, ErrorCode::ShapeMismatch, "input X " + shapeToString(x) + " must be at least 3-D [N, C, spatial...]");
    if (w.size() != x.size()) {
      failAt(node_, ErrorCode::ShapeMismatch, "weight W " + shapeToString(w) + " must have the rank of X " + shapeToString(x));
    }
    p.N = x[0];
    p.C = x[1];
    p.G = group_;
    if (w[0] != p.C || p.C % p.G != 0) {
      failAt(node_, ErrorCode::ShapeMismatch, "input X " + shapeToString(x) + " has " + std::to_string(p.C) +
                                                    " channels but W " + shapeToString(w) + " with group " +
                                                    std::to_string(p.G) + " expects " + std::to_string(w[0]));
    }
    p.Cg = p.C / p.G;
    p.Mg = w[1];
    p.M = p.Mg * p.G;
    p.rank = x.size() - 2;
    const std::vector<int64_t> kernel(w.begin() + 2, w.end());
    WindowParams wp = readWindowParams(node_, p.rank, kernel, true);
    p.yShape = {p.N, p.M};
    for (size_t d = 0; d < p.rank; d++) {
      WindowDim r = transposedWindowDim(node_, wp, d, x[d + 2]);
      checkedProduct(node_, p.outPixels, r.out, "the output");
      p.in.push_back(x[d + 2]);
      p.out.push_back(r.out);
      p.padBegin.push_back(r.padBegin);
      p.inPixels *= x[d + 2];
      p.outPixels *= r.out;
      p.kernelSize *= kernel[d];
      p.yShape.push_back(r.out);
    }
    p.kernel = wp.kernel;
    p.strides = wp.strides;
    p.dilations = wp.dilations;
    return p;
  }

  // Adds one output channel's col rows (kernelSize x inPixels) into its output plane.
  static void col2im(const Plan& p, const float* col, float* y) {
    const size_t r = p.rank;
    const size_t last = r - 1;
    std::vector<int64_t> kidx(r, 0), ipos(r, 0);
    const int64_t inner = p.in[last];
    const int64_t s = p.strides[last];
    for (int64_t kk = 0; kk < p.kernelSize; kk++) {
      int64_t rem = kk;
      for (size_t d = r; d-- > 0;) {
        kidx[d] = rem % p.kernel[d];
        rem /= p.kernel[d];
      }
      // The innermost input range whose output lands inside [0, out[last]).
      const int64_t off = kidx[last] * p.dilations[last] - p.padBegin[last];
      int64_t lo = off >= 0 ? 0 : (-off + s - 1) / s;
      int64_t hi = p.out[last] - off <= 0 ? 0 : (p.out[last] - off + s - 1) / s;
      lo = std::min(lo, inner);
      hi = std::clamp(hi, lo, inner);
      const float* row = col + kk * p.inPixels;
      // Outer input positions (all dims but the last) one line at a time.
      const int64_t lines = p.inPixels / std::max<int64_t>(1, inner);
      std::fill(ipos.begin(), ipos.end(), 0);
      for (int64_t line = 0; line < lines; line++) {
        int64_t base = 0;
        bool inside = true;
        for (size_t d = 0; d < last; d++) {
          const int64_t o = ipos[d] * p.strides[d] - p.padBegin[d] + kidx[d] * p.dilations[d];
          if (o < 0 || o >= p.out[d]) {
            inside = false;
            break;
          }
          base = base * p.out[d] + o;
        }
        if (inside) {
          float* yl = y + base * p.out[last] + off;
          const float* src = row + line * inner;
          for (int64_t i = lo; i < hi; i++) yl[i * s] += src[i];
        }
        for (size_t d = last; d-- > 0;) {
          if (++ipos[d] < p.in[d]) break;
          ipos[d] = 0;
        }
      }
    }
  }

  Node node_;  // a copy: the kernel may outlive the graph it was built from
  int64_t group_ = 1;
  Shape weightShape_;
  std::vector<std::shared_ptr<PackedMatrix>> packed_;  // per group: W_g^T
};

std::unique_ptr<Kernel> createConvTranspose(const KernelCreateInfo& info) {
  return std::make_unique<ConvTransposeKernel>(info);
}

}  // namespace

KILN_REGISTER_KERNEL(ConvTranspose, (KernelDef{"cpu", "", "ConvTranspose", 1, createConvTranspose}));

}  // namespace kiln::cpu
