// CPU kernels of Concat and Split: each is a sequence of contiguous block copies, one block per
// (outer index, input or output), parallelised over the outer index.
#include <algorithm>

#include "backends/cpu/ops/tensor_copy.h"
#include "ops/tensor_concat_split.h"
#include "ops/tensor_util.h"

namespace kiln::cpu {

namespace {

constexpr int64_t kBlockGrainElements = 1 << 15;

std::unique_ptr<Kernel> createConcatKernel(const KernelCreateInfo& info) {
  const int64_t axisAttr = info.node.getInt("axis", 1);
  return makeKernel("concat", [axisAttr](KernelContext& ctx) {
    Tensor& out = needOutput(ctx, 0);
    const int64_t rank = (int64_t)out.shape.size();
    const int64_t axis = kernelAxis(ctx.node, axisAttr, rank);
    int64_t outer = 1, inner = 1, total = 0;
    for (int64_t d = 0; d < axis; d++) outer *= out.shape[(size_t)d];
    for (int64_t d = axis + 1; d < rank; d++) inner *= out.shape[(size_t)d];
    std::vector<const Tensor*> ins;
    for (size_t i = 0; i < ctx.inputs.size(); i++) {
      const Tensor& t = needInput(ctx, i, "inputs");
      bool ok = (int64_t)t.shape.size() == rank && t.dtype == out.dtype;
      for (int64_t d = 0; ok && d < rank; d++) ok = d == axis || t.shape[(size_t)d] == out.shape[(size_t)d];
      if (!ok) {
        nodeFail(ctx.node, ErrorCode::ShapeMismatch,
                 "input " + std::to_string(i) + " of shape " + shapeToString(t.shape) +
                     " cannot be concatenated into " + shapeToString(out.shape) + " along axis " + std::to_string(axis));
      }
      total += t.shape[(size_t)axis];
      ins.push_back(&t);
    }
    if (total != out.shape[(size_t)axis]) {
      nodeFail(ctx.node, ErrorCode::Internal, "inputs do not add up to the output shape " + shapeToString(out.shape));
    }
    const int64_t outRow = total * inner;
    threadsOf(ctx).parallelFor(outer, std::max<int64_t>(1, kBlockGrainElements / std::max<int64_t>(outRow, 1)),
                            [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; o++) {
        int64_t at = o * outRow;
        for (const Tensor* t : ins) {
          const int64_t block = t->shape[(size_t)axis] * inner;
          copyElements(out.dtype, out.data, at, t->data, o * block, block);
          at += block;
        }
      }
    });
  });
}

std::unique_ptr<Kernel> createSplitKernel(const KernelCreateInfo& info) {
  const int64_t opset = info.opset;
  const int64_t axisAttr = info.node.getInt("axis", 0);
  std::optional<std::vector<int64_t>> splitAttr;
  if (opset < 13 && info.node.has("split")) splitAttr = info.node.getInts("split");
  return makeKernel("split", [=](KernelContext& ctx) {
    const Tensor& in = needInput(ctx, 0, "input");
    const int64_t rank = (int64_t)in.shape.size();
    const int64_t axis = kernelAxis(ctx.node, axisAttr, rank);
    std::optional<std::vector<int64_t>> split = splitAttr;
    if (!split && ctx.inputs.size() > 1 && ctx.inputs[1] && !(opset >= 13 && ctx.inputs[1]->numel() == 0)) {
      split = ctx.inputs[1]->toInt64Vector();
    }
    auto onError = [&](const std::string& m) { nodeFail(ctx.node, ErrorCode::InvalidArgument, m); };
    std::vector<int64_t> sizes = *splitSizes(ctx.node, opset, in.shape[(size_t)axis], split, ctx.outputs.size(), onError);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; d++) outer *= in.shape[(size_t)d];
    for (int64_t d = axis + 1; d < rank; d++) inner *= in.shape[(size_t)d];
    const int64_t inRow = in.shape[(size_t)axis] * inner;
    for (size_t i = 0; i < sizes.size(); i++) {
      Tensor* out = maybeOutput(ctx, i);
      if (out && out->numel() != outer * sizes[i] * inner) {
        nodeFail(ctx.node, ErrorCode::Internal, "output " + std::to_string(i) + " was allocated as " +
                                                    shapeToString(out->shape));
      }
    }
    threadsOf(ctx).parallelFor(outer, std::max<int64_t>(1, kBlockGrainElements / std::max<int64_t>(inRow, 1)),
                            [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; o++) {
        int64_t at = o * inRow;
        for (size_t i = 0; i < sizes.size(); i++) {
          const int64_t block = sizes[i] * inner;
          if (Tensor* out = maybeOutput(ctx, i)) copyElements(in.dtype, out->data, o * block, in.data, at, block);
          at += block;
        }
      }
    });
  });
}

}  // namespace

KILN_REGISTER_KERNEL(Concat, (KernelDef{"cpu", "", "Concat", 1, createConcatKernel}));
KILN_REGISTER_KERNEL(Split, (KernelDef{"cpu", "", "Split", 1, createSplitKernel}));

}  // namespace kiln::cpu
