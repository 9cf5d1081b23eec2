// CPU kernels of Slice (a strided view of the input, negative steps included) and ReverseSequence.
#include <algorithm>

#include "backends/cpu/ops/tensor_copy.h"
#include "ops/tensor_slice.h"
#include "ops/tensor_util.h"

namespace kiln::cpu {

namespace {

std::vector<int64_t> optionalInts(const KernelContext& ctx, size_t i) {
  if (i >= ctx.inputs.size() || ctx.inputs[i] == nullptr) return {};
  return ctx.inputs[i]->toInt64Vector();
}

std::unique_ptr<Kernel> createSliceKernel(const KernelCreateInfo& info) {
  const int64_t opset = info.opset;
  return makeKernel("slice.strided", [opset](KernelContext& ctx) {
    const Tensor& in = needInput(ctx, 0, "data");
    Tensor& out = needOutput(ctx, 0);
    std::vector<int64_t> starts, ends, axes, steps;
    if (opset < 10) {
      starts = ctx.node.getInts("starts");
      ends = ctx.node.getInts("ends");
      axes = ctx.node.getInts("axes");
    } else {
      starts = needInput(ctx, 1, "starts").toInt64Vector();
      ends = needInput(ctx, 2, "ends").toInt64Vector();
      axes = optionalInts(ctx, 3);
      steps = optionalInts(ctx, 4);
    }
    auto slices = resolveSlice(in.shape, starts, ends, axes, steps,
                               [&](const std::string& m) { nodeFail(ctx.node, ErrorCode::InvalidArgument, m); });
    const std::vector<int64_t> inStrides = shapeStrides(in.shape);
    Shape shape(slices.size());
    std::vector<int64_t> strides(slices.size());
    int64_t offset = 0;
    for (size_t d = 0; d < slices.size(); d++) {
      shape[d] = slices[d].count;
      strides[d] = inStrides[d] * slices[d].step;
      offset += slices[d].start * inStrides[d];
    }
    if (shape != out.shape) {
      nodeFail(ctx.node, ErrorCode::Internal,
               "output allocated as " + shapeToString(out.shape) + " but the slice is " + shapeToString(shape));
    }
    copyStrided(in.dtype, out.data, in.data, shape, strides, offset, threadsOf(ctx));
  });
}

std::unique_ptr<Kernel> createReverseSequenceKernel(const KernelCreateInfo& info) {
  const int64_t batchAxis = info.node.getInt("batch_axis", 1), timeAxis = info.node.getInt("time_axis", 0);
  return makeKernel("reverse_sequence", [=](KernelContext& ctx) {
    const Tensor& in = needInput(ctx, 0, "input");
    const Tensor& lensTensor = needInput(ctx, 1, "sequence_lens");
    Tensor& out = needOutput(ctx, 0);
    if (in.shape.size() < 2) nodeFail(ctx.node, ErrorCode::ShapeMismatch, "input must have rank >= 2");
    const int64_t batch = in.shape[(size_t)batchAxis], time = in.shape[(size_t)timeAxis];
    std::vector<int64_t> lens = lensTensor.toInt64Vector();
    if ((int64_t)lens.size() != batch) {
      nodeFail(ctx.node, ErrorCode::ShapeMismatch,
               "sequence_lens has " + std::to_string(lens.size()) + " entries for batch size " + std::to_string(batch));
    }
    for (size_t b = 0; b < lens.size(); b++) {
      if (lens[b] < 0 || lens[b] > time) {
        nodeFail(ctx.node, ErrorCode::InvalidArgument,
                 "sequence_lens[" + std::to_string(b) + "] = " + std::to_string(lens[b]) + " is outside [0, " +
                     std::to_string(time) + "]");
      }
    }
    int64_t inner = 1;
    for (size_t d = 2; d < in.shape.size(); d++) inner *= in.shape[d];
    // Element (t, b) of the first two dims starts at this offset, whichever axis is the batch.
    const int64_t tStride = timeAxis == 0 ? batch * inner : inner, bStride = batchAxis == 0 ? time * inner : inner;
    threadsOf(ctx).parallelFor(batch * time, std::max<int64_t>(1, 4096 / std::max<int64_t>(inner, 1)),
                            [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; i++) {
        const int64_t b = i / time, t = i % time;
        const int64_t src = t < lens[(size_t)b] ? lens[(size_t)b] - 1 - t : t;
        copyElements(in.dtype, out.data, b * bStride + t * tStride, in.data, b * bStride + src * tStride, inner);
      }
    });
  });
}

}  // namespace

KILN_REGISTER_KERNEL(Slice, (KernelDef{"cpu", "", "Slice", 1, createSliceKernel}));
KILN_REGISTER_KERNEL(ReverseSequence, (KernelDef{"cpu", "", "ReverseSequence", 10, createReverseSequenceKernel}));

}  // namespace kiln::cpu
