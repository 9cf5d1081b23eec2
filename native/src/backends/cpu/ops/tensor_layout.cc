// CPU kernels of the layout ops: Transpose (through the strided-copy engine, which tiles the
// transposed plane for cache), DepthToSpace/SpaceToDepth (a 6-D transpose) and Trilu.
#include <algorithm>

#include "backends/cpu/ops/tensor_copy.h"
#include "ops/tensor_layout.h"
#include "ops/tensor_util.h"

namespace kiln::cpu {

namespace {

std::unique_ptr<Kernel> createTransposeKernel(const KernelCreateInfo& info) {
  return makeKernel("transpose.tiled", [](KernelContext& ctx) {
    const Tensor& in = needInput(ctx, 0, "data");
    Tensor& out = needOutput(ctx, 0);
    auto perm = transposePerm(ctx.node, (int64_t)in.shape.size(),
                              [&](const std::string& m) { nodeFail(ctx.node, ErrorCode::InvalidArgument, m); });
    transposeInto(in, perm, out, threadsOf(ctx));
  });
}

// Copies the 4-D input through the 6-D view `v` into the output.
void rearrangeBlocks(KernelContext& ctx, const Tensor& in, Tensor& out, const BlockRearrangement& v) {
  KILN_CHECK(shapeNumel(v.inShape6) == in.numel() && out.numel() == in.numel(), Internal,
             describeNode(ctx.node) + ": block rearrangement does not match the tensor sizes");
  std::vector<int64_t> inStrides = shapeStrides(v.inShape6), strides(6);
  Shape shape(6);
  for (size_t i = 0; i < 6; i++) {
    shape[i] = v.inShape6[(size_t)v.perm6[i]];
    strides[i] = inStrides[(size_t)v.perm6[i]];
  }
  copyStrided(in.dtype, out.data, in.data, shape, strides, 0, threadsOf(ctx));
}

void checkBlockInput(const KernelContext& ctx, const Tensor& in, int64_t b) {
  if (in.shape.size() != 4) {
    nodeFail(ctx.node, ErrorCode::ShapeMismatch, "input must be 4-D, got " + shapeToString(in.shape));
  }
  if (b <= 0 || b > (int64_t(1) << 20)) nodeFail(ctx.node, ErrorCode::InvalidArgument, "blocksize must be in [1, 2^20]");
}

std::unique_ptr<Kernel> createDepthToSpaceKernel(const KernelCreateInfo& info) {
  const int64_t b = info.node.getInt("blocksize", 0);
  const bool crd = info.opset >= 11 && info.node.getString("mode", "DCR") == "CRD";
  return makeKernel("depth_to_space", [b, crd](KernelContext& ctx) {
    const Tensor& in = needInput(ctx, 0, "input");
    checkBlockInput(ctx, in, b);
    if (in.shape[1] % (b * b) != 0) {
      nodeFail(ctx.node, ErrorCode::ShapeMismatch,
               "channels of " + shapeToString(in.shape) + " are not divisible by blocksize^2");
    }
    rearrangeBlocks(ctx, in, needOutput(ctx, 0),
                    depthToSpaceView(in.shape[0], in.shape[1], in.shape[2], in.shape[3], b, crd));
  });
}

std::unique_ptr<Kernel> createSpaceToDepthKernel(const KernelCreateInfo& info) {
  const int64_t b = info.node.getInt("blocksize", 0);
  return makeKernel("space_to_depth", [b](KernelContext& ctx) {
    const Tensor& in = needInput(ctx, 0, "input");
    checkBlockInput(ctx, in, b);
    if (in.shape[2] % b != 0 || in.shape[3] % b != 0) {
      nodeFail(ctx.node, ErrorCode::ShapeMismatch,
               "spatial dims of " + shapeToString(in.shape) + " are not divisible by the blocksize");
    }
    rearrangeBlocks(ctx, in, needOutput(ctx, 0),
                    spaceToDepthView(in.shape[0], in.shape[1], in.shape[2], in.shape[3], b));
  });
}

std::unique_ptr<Kernel> createTriluKernel(const KernelCreateInfo& info) {
  const bool upper = info.node.getInt("upper", 1) != 0;
  return makeKernel(upper ? "triu" : "tril", [upper](KernelContext& ctx) {
    const Tensor& in = needInput(ctx, 0, "input");
    Tensor& out = needOutput(ctx, 0);
    const size_t rank = in.shape.size();
    if (rank < 2) nodeFail(ctx.node, ErrorCode::ShapeMismatch, "input must have rank >= 2, got " + shapeToString(in.shape));
    int64_t k = 0;
    if (ctx.inputs.size() > 1 && ctx.inputs[1]) {
      auto kv = ctx.inputs[1]->toInt64Vector();
      if (kv.size() != 1) nodeFail(ctx.node, ErrorCode::InvalidArgument, "k must be a scalar");
      k = kv[0];
    }
    const int64_t rows = in.shape[rank - 2], cols = in.shape[rank - 1];
    const int64_t matrices = rows * cols == 0 ? 0 : in.numel() / (rows * cols);
    // Row i keeps columns j with j - i >= k (upper) or j - i <= k (lower): one contiguous run, the
    // rest is zero. Clamp in 64 bits: k may be anything the model says.
    threadsOf(ctx).parallelFor(matrices * rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)),
                            [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; r++) {
        const int64_t i = r % rows, base = r * cols;
        int64_t lo, hi;  // kept columns [lo, hi)
        if (upper) {
          lo = std::min(std::max<int64_t>(i + std::max<int64_t>(std::min<int64_t>(k, cols), -rows), 0), cols);
          hi = cols;
        } else {
          lo = 0;
          hi = std::min(std::max<int64_t>(i + std::max<int64_t>(std::min<int64_t>(k, cols), -rows) + 1, 0), cols);
        }
        fillZero(in.dtype, out.data, base, lo);
        copyElements(in.dtype, out.data, base + lo, in.data, base + lo, hi - lo);
        fillZero(in.dtype, out.data, base + hi, cols - hi);
      }
    });
  });
}

}  // namespace

KILN_REGISTER_KERNEL(Transpose, (KernelDef{"cpu", "", "Transpose", 1, createTransposeKernel}));
KILN_REGISTER_KERNEL(DepthToSpace, (KernelDef{"cpu", "", "DepthToSpace", 1, createDepthToSpaceKernel}));
KILN_REGISTER_KERNEL(SpaceToDepth, (KernelDef{"cpu", "", "SpaceToDepth", 1, createSpaceToDepthKernel}));
KILN_REGISTER_KERNEL(Trilu, (KernelDef{"cpu", "", "Trilu", 14, createTriluKernel}));

}  // namespace kiln::cpu
