// CPU kernels of GridSample (N-D linear/nearest, 2-D cubic; zeros/border/reflection padding; the
// ONNX reference's rounding and reflection rules) and Col2Im (the adjoint of im2col: overlapping
// blocks are summed).
#include <algorithm>
#include <cmath>

#include "backends/cpu/ops/tensor_copy.h"
#include "backends/cpu/ops/tensor_numeric.h"
#include "ops/tensor_util.h"

namespace kiln::cpu {

namespace {

enum class GridMode { Linear, Nearest, Cubic };
enum class GridPadding { Zeros, Border, Reflection };

// Reflects x into [lo, hi] by bouncing off the borders.
double reflect(double x, double lo, double hi) {
  const double range = hi - lo;
  if (range <= 0 || !std::isfinite(x)) return lo;
  if (x < lo) {
    const double dx = lo - x;
    const int64_t n = (int64_t)(dx / range);
    const double r = dx - (double)n * range;
    return n % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const double dx = x - hi;
    const int64_t n = (int64_t)(dx / range);
    const double r = dx - (double)n * range;
    return n % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

void cubicCoeffs(double t, double c[4]) {
  const double a = -0.75;
  auto w = [a](double x) {
    x = std::fabs(x);
    if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0.0;
  };
  c[0] = w(t + 1);
  c[1] = w(t);
  c[2] = w(1 - t);
  c[3] = w(2 - t);
}

std::unique_ptr<Kernel> createGridSampleKernel(const KernelCreateInfo& info) {
  const std::string modeName = info.node.getString("mode", info.opset >= 20 ? "linear" : "bilinear");
  GridMode mode;
  if (modeName == "linear" || modeName == "bilinear") mode = GridMode::Linear;
  else if (modeName == "nearest") mode = GridMode::Nearest;
  else if (modeName == "cubic" || modeName == "bicubic") mode = GridMode::Cubic;
  else nodeFail(info.node, ErrorCode::UnsupportedOp, "unsupported mode '" + modeName + "'");
  const std::string padName = info.node.getString("padding_mode", "zeros");
  GridPadding padding;
  if (padName == "zeros") padding = GridPadding::Zeros;
  else if (padName == "border") padding = GridPadding::Border;
  else if (padName == "reflection") padding = GridPadding::Reflection;
  else nodeFail(info.node, ErrorCode::UnsupportedOp, "unsupported padding_mode '" + padName + "'");
  const bool alignCorners = info.node.getInt("align_corners", 0) != 0;
  return makeKernel("grid_sample", [=](KernelContext& ctx) {
    const Tensor& x = needInput(ctx, 0, "X");
    const Tensor& grid = needInput(ctx, 1, "grid");
    Tensor& out = needOutput(ctx, 0);
    const size_t rank = x.shape.size();
    const size_t r = rank >= 2 ? rank - 2 : 0;
    if (rank < 3 || grid.shape.size() != rank || grid.shape.back() != (int64_t)r || grid.shape[0] != x.shape[0] ||
        (mode == GridMode::Cubic && r != 2)) {
      nodeFail(ctx.node, ErrorCode::ShapeMismatch,
               "X " + shapeToString(x.shape) + " and grid " + shapeToString(grid.shape) + " do not match");
    }
    if (grid.dtype != x.dtype) nodeFail(ctx.node, ErrorCode::InvalidArgument, "grid must have X's type");
    const int64_t n = x.shape[0], channels = x.shape[1];
    Shape dims(x.shape.begin() + 2, x.shape.end());
    int64_t inPlane = 1, outPlane = 1;
    for (int64_t d : dims) inPlane *= d;
    for (size_t i = 1; i + 1 < grid.shape.size(); i++) outPlane *= grid.shape[i];
    std::vector<double> lo(r), hi(r);
    for (size_t i = 0; i < r; i++) {
      lo[i] = alignCorners ? 0.0 : -0.5;
      hi[i] = alignCorners ? (double)dims[i] - 1 : (double)dims[i] - 0.5;
    }
    const std::vector<int64_t> strides = shapeStrides(dims);
    visitFloating(x.dtype, describeNode(ctx.node), [&](auto num) {
      using N = decltype(num);
      using S = typename N::Storage;
      const S* src = x.ptr<S>();
      const S* g = grid.ptr<S>();
      S* dst = out.ptr<S>();
      // The value at integer coordinates idx (one per spatial dim) after the padding rule.
      auto pixel = [&](const S* plane, const int64_t* idx) -> double {
        int64_t off = 0;
        for (size_t i = 0; i < r; i++) {
          int64_t v = idx[i];
          if (v < 0 || v >= dims[i]) {
            switch (padding) {
              case GridPadding::Zeros: return 0.0;
              case GridPadding::Border: v = std::clamp<int64_t>(v, 0, dims[i] - 1); break;
              case GridPadding::Reflection:
                v = std::clamp<int64_t>((int64_t)reflect((double)v, lo[i], hi[i]), 0, dims[i] - 1);
                break;
            }
          }
          off += v * strides[i];
        }
        return (double)N::load(plane[off]);
      };
      threadsOf(ctx).parallelFor(n * outPlane, 64, [&](int64_t begin, int64_t end) {
        std::vector<double> coord(r);
        std::vector<int64_t> idx(r), base(r);
        std::vector<double> weights(r * 4);
        for (int64_t t = begin; t < end; t++) {
          const int64_t b = t / outPlane, p = t % outPlane;
          const S* gp = g + t * (int64_t)r;
          for (size_t i = 0; i < r; i++) {
            // The grid lists coordinates innermost dim first (x, y, z).
            const double nrm = (double)N::load(gp[r - 1 - i]);
            double v = alignCorners ? (nrm + 1) / 2 * (double)(dims[i] - 1) : ((nrm + 1) * (double)dims[i] - 1) / 2;
            // Nearest rounds half to even (std::nearbyint), in every rank, as the conformance data
            // does (PyTorch's 3-D kernel rounds half away from zero; the ONNX data does not).
            if (mode == GridMode::Nearest) v = std::nearbyint(v);
            if (v < lo[i] || v > hi[i]) {
              if (padding == GridPadding::Border) v = std::clamp(v, 0.0, (double)dims[i] - 1);
              else if (padding == GridPadding::Reflection) v = reflect(v, lo[i], hi[i]);
            }
            coord[i] = std::isfinite(v) ? std::clamp(v, -1e9, 1e9) : -1e9;  // keeps int conversions defined
          }
          for (int64_t c = 0; c < channels; c++) {
            const S* plane = src + (b * channels + c) * inPlane;
            double value = 0;
            if (mode == GridMode::Nearest) {
              for (size_t i = 0; i < r; i++) idx[i] = (int64_t)coord[i];
              value = pixel(plane, idx.data());
            } else {
              const int taps = mode == GridMode::Linear ? 2 : 4;
              for (size_t i = 0; i < r; i++) {
                const double f = std::floor(coord[i]);
                base[i] = (int64_t)f - (taps == 4 ? 1 : 0);
                const double frac = coord[i] - f;
                if (taps == 2) {
                  weights[i * 4] = 1 - frac;
                  weights[i * 4 + 1] = frac;
                } else {
                  cubicCoeffs(frac, &weights[i * 4]);
                }
              }
              int64_t combos = 1;
              for (size_t i = 0; i < r; i++) combos *= taps;
              for (int64_t k = 0; k < combos; k++) {
                double w = 1;
                int64_t rest = k;
                for (size_t i = r; i-- > 0;) {
                  const int64_t tap = rest % taps;
                  rest /= taps;
                  idx[i] = base[i] + tap;
                  w *= weights[i * 4 + (size_t)tap];
                }
                if (w != 0) value += w * pixel(plane, idx.data());
              }
            }
            dst[(b * channels + c) * outPlane + p] = N::fromDouble(value);
          }
        }
      });
    });
  });
}

std::unique_ptr<Kernel> createCol2ImKernel(const KernelCreateInfo& info) {
  const std::vector<int64_t> dilationsAttr = info.node.getInts("dilations"), padsAttr = info.node.getInts("pads"),
                             stridesAttr = info.node.getInts("strides");
  return makeKernel("col2im", [=](KernelContext& ctx) {
    const Tensor& in = needInput(ctx, 0, "input");
    const std::vector<int64_t> image = needInput(ctx, 1, "image_shape").toInt64Vector();
    const std::vector<int64_t> block = needInput(ctx, 2, "block_shape").toInt64Vector();
    Tensor& out = needOutput(ctx, 0);
    const size_t r = image.size();
    auto bad = [&](const std::string& m) { nodeFail(ctx.node, ErrorCode::InvalidArgument, m); };
    if (block.size() != r || r == 0) bad("image_shape and block_shape must have the same non-zero length");
    const std::vector<int64_t> dil = dilationsAttr.empty() ? std::vector<int64_t>(r, 1) : dilationsAttr;
    const std::vector<int64_t> str = stridesAttr.empty() ? std::vector<int64_t>(r, 1) : stridesAttr;
    const std::vector<int64_t> pads = padsAttr.empty() ? std::vector<int64_t>(2 * r, 0) : padsAttr;
    if (dil.size() != r || str.size() != r || pads.size() != 2 * r) bad("dilations, strides and pads must match the spatial rank");
    if (in.shape.size() != 3) bad("input must be [N, C*prod(block_shape), L], got " + shapeToString(in.shape));
    int64_t blockSize = 1, positions = 1;
    std::vector<int64_t> grid(r);
    for (size_t i = 0; i < r; i++) {
      if (block[i] <= 0 || image[i] <= 0 || dil[i] <= 0 || str[i] <= 0) bad("sizes, dilations and strides must be positive");
      blockSize *= block[i];
      const int64_t span = dil[i] * (block[i] - 1) + 1;
      const int64_t room = image[i] + pads[i] + pads[r + i] - span;
      if (room < 0) bad("block does not fit the padded image along dim " + std::to_string(i));
      grid[i] = room / str[i] + 1;
      positions *= grid[i];
    }
    const int64_t n = in.shape[0];
    if (in.shape[1] % blockSize != 0 || in.shape[2] != positions) {
      bad("input " + shapeToString(in.shape) + " does not match block_shape " + shapeToString(block) + " over " +
          std::to_string(positions) + " positions");
    }
    const int64_t channels = in.shape[1] / blockSize;
    int64_t plane = 1;
    for (int64_t d : image) plane *= d;
    KILN_CHECK(out.numel() == n * channels * plane, Internal, describeNode(ctx.node) + ": output allocated as " + shapeToString(out.shape));
    const std::vector<int64_t> imgStrides = shapeStrides(image);
    visitFloating(in.dtype, describeNode(ctx.node), [&](auto num) {
      using N = decltype(num);
      using S = typename N::Storage;
      const S* src = in.ptr<S>();
      S* dst = out.ptr<S>();
      threadsOf(ctx).parallelFor(n * channels, 1, [&](int64_t begin, int64_t end) {
        std::vector<double> acc((size_t)plane);
        std::vector<int64_t> bi(r), pi(r);
        for (int64_t nc = begin; nc < end; nc++) {
          std::fill(acc.begin(), acc.end(), 0.0);
          const S* col = src + nc * blockSize * positions;
          for (int64_t b = 0; b < blockSize; b++) {
            int64_t rest = b;
            for (size_t i = r; i-- > 0;) {
              bi[i] = rest % block[i];
              rest /= block[i];
            }
            for (int64_t p = 0; p < positions; p++) {
              int64_t restP = p, off = 0;
              bool inside = true;
              for (size_t i = r; i-- > 0;) {
                pi[i] = restP % grid[i];
                restP /= grid[i];
                const int64_t coord = pi[i] * str[i] - pads[i] + bi[i] * dil[i];
                if (coord < 0 || coord >= image[i]) inside = false;
                off += coord * imgStrides[i];
              }
              if (inside) acc[(size_t)off] += (double)N::load(col[b * positions + p]);
            }
          }
          for (int64_t e = 0; e < plane; e++) dst[nc * plane + e] = N::fromDouble(acc[(size_t)e]);
        }
      });
    });
  });
}

}  // namespace

KILN_REGISTER_KERNEL(GridSample, (KernelDef{"cpu", "", "GridSample", 16, createGridSampleKernel}));
KILN_REGISTER_KERNEL(Col2Im, (KernelDef{"cpu", "", "Col2Im", 18, createCol2ImKernel}));

}  // namespace kiln::cpu
