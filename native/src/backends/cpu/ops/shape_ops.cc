// CPU kernels of the shape ops. Reshape, Flatten, Squeeze, Unsqueeze and Identity move the bytes
// unchanged (nothing at all when the planner placed output and input in the same memory); their
// output shapes come from the schema, evaluated by the runtime on the concrete inputs.
#include "backends/cpu/ops/tensor_copy.h"
#include "ops/shape_ops.h"
#include "ops/tensor_util.h"

namespace kiln::cpu {

namespace {

std::unique_ptr<Kernel> createCopyKernel(const KernelCreateInfo& info) {
  std::string name = "copy";
  return makeKernel(name, [](KernelContext& ctx) {
    const Tensor& in = needInput(ctx, 0, "data");
    Tensor& out = needOutput(ctx, 0);
    if (in.numel() != out.numel() || in.dtype != out.dtype) {
      nodeFail(ctx.node, ErrorCode::ShapeMismatch,
               "cannot turn input of shape " + shapeToString(in.shape) + " into output of shape " +
                   shapeToString(out.shape));
    }
    copyTensor(in, out, threadsOf(ctx));
  });
}

std::unique_ptr<Kernel> createShapeKernel(const KernelCreateInfo& info) {
  const int64_t opset = info.opset;
  return makeKernel("shape", [opset](KernelContext& ctx) {
    const Tensor& in = needInput(ctx, 0, "data");
    Tensor& out = needOutput(ctx, 0);
    auto [start, end] = shapeOpRange(ctx.node, opset, (int64_t)in.shape.size());
    KILN_CHECK(out.numel() == end - start && out.dtype == DType::Int64, Internal,
               describeNode(ctx.node) + ": output was allocated with the wrong shape");
    for (int64_t i = start; i < end; i++) out.ptr<int64_t>()[i - start] = in.shape[(size_t)i];
  });
}

std::unique_ptr<Kernel> createSizeKernel(const KernelCreateInfo& info) {
  return makeKernel("size", [](KernelContext& ctx) {
    const Tensor& in = needInput(ctx, 0, "data");
    Tensor& out = needOutput(ctx, 0);
    KILN_CHECK(out.numel() == 1 && out.dtype == DType::Int64, Internal,
               describeNode(ctx.node) + ": output was allocated with the wrong shape");
    out.ptr<int64_t>()[0] = in.numel();
  });
}

std::unique_ptr<Kernel> createExpandKernel(const KernelCreateInfo& info) {
  return makeKernel("expand.strided", [](KernelContext& ctx) {
    const Tensor& in = needInput(ctx, 0, "input");
    Tensor& out = needOutput(ctx, 0);
    const size_t rank = out.shape.size();
    if (in.shape.size() > rank) {
      nodeFail(ctx.node, ErrorCode::ShapeMismatch,
               "input of shape " + shapeToString(in.shape) + " cannot expand to " + shapeToString(out.shape));
    }
    // Each output dim reads the input with its stride, or with stride 0 where the input has 1.
    std::vector<int64_t> inStrides = shapeStrides(in.shape), strides(rank, 0);
    const size_t offset = rank - in.shape.size();
    for (size_t i = 0; i < in.shape.size(); i++) {
      int64_t d = in.shape[i], o = out.shape[offset + i];
      if (d == o) {
        strides[offset + i] = inStrides[i];
      } else if (d != 1) {
        nodeFail(ctx.node, ErrorCode::ShapeMismatch,
                 "input of shape " + shapeToString(in.shape) + " cannot expand to " + shapeToString(out.shape));
      }
    }
    copyStrided(in.dtype, out.data, in.data, out.shape, strides, 0, threadsOf(ctx));
  });
}

}  // namespace

KILN_REGISTER_KERNEL(Reshape, (KernelDef{"cpu", "", "Reshape", 1, createCopyKernel}));
KILN_REGISTER_KERNEL(Flatten, (KernelDef{"cpu", "", "Flatten", 1, createCopyKernel}));
KILN_REGISTER_KERNEL(Squeeze, (KernelDef{"cpu", "", "Squeeze", 1, createCopyKernel}));
KILN_REGISTER_KERNEL(Unsqueeze, (KernelDef{"cpu", "", "Unsqueeze", 1, createCopyKernel}));
KILN_REGISTER_KERNEL(Identity, (KernelDef{"cpu", "", "Identity", 1, createCopyKernel}));
KILN_REGISTER_KERNEL(Shape, (KernelDef{"cpu", "", "Shape", 1, createShapeKernel}));
KILN_REGISTER_KERNEL(Size, (KernelDef{"cpu", "", "Size", 1, createSizeKernel}));
KILN_REGISTER_KERNEL(Expand, (KernelDef{"cpu", "", "Expand", 8, createExpandKernel}));

}  // namespace kiln::cpu
