// Schemas of the ops only the CUDA lowering produces (cuda_lowering.h):
//
// kiln.CudaAttention       kiln.Attention with per-tensor layouts: attr layout = [q, k, v, out],
//                          0 = [B,H,S,D], 1 = [B,S,H,D] (read/written in place, no transpose).
//                          With attr qkv_heads = H, inputs 0-2 are one [B,S,3*H*D] tensor (Q, K
//                          and V side by side in each row: the packed projection's output).
// kiln.CudaAddLayerNorm    inputs A, R, Scale, Bias?: LayerNormalization(A + R) with attrs axis,
//                          epsilon; A and R have the same shape.
// kiln.CudaConvNHWC        kiln.FusedConv on X [N,H,W,C], W [K,R,S,C/group], Z [N,H',W',K].
// kiln.CudaMaxPoolNHWC, kiln.CudaAveragePoolNHWC   MaxPool / AveragePool (2-D) on [N,H,W,C].
// kiln.CudaGlobalAvgPoolNHWC  [N,H,W,C] -> [N,C,1,1] (the same bytes as [N,1,1,C]); int8 X with attr
//                            scale averages into float16.
// kiln.CudaCastToNhwc      float32 [N,C,H,W] -> float16 [N,H,W,C] (Cast + Transpose in one pass).
#include "graph/fused_ops.h"
#include "ops/nn_geometry.h"
#include "ops/schema.h"

namespace kiln::cuda {
namespace {

void inferCudaAttention(InferContext& ctx) {
  std::vector<int64_t> layout = ctx.node.getInts("layout", {0, 0, 0, 0});
  if (layout.size() != 4) ctx.error("layout must have 4 entries");
  const SymShape& q = ctx.inputShapes[0];
  const SymShape& v = ctx.inputShapes[2];
  if (!q.hasRank || !v.hasRank) {
    ctx.setOutput(0, ctx.inputTypes[0], SymShape::unknown());
    return;
  }
  if (ctx.node.has("qkv_heads")) {
    const int64_t heads = ctx.node.getInt("qkv_heads", 0);
    if (heads <= 0) ctx.error("qkv_heads must be positive");
    if (q.rank() != 3) ctx.error("packed Q/K/V must be rank 3 [B,S,3*H*D], got " + q.toString());
    const Dim& row = q.dims[2];
    if (row.isKnown() && row.value % (3 * heads) != 0)
      ctx.error("packed Q/K/V rows of " + std::to_string(row.value) + " are not 3 x " + std::to_string(heads) + " heads");
    const Dim dh = row.isKnown() ? Dim::known(row.value / (3 * heads)) : ctx.freshDim();
    SymShape out;
    out.hasRank = true;
    out.dims = layout[3] ? std::vector<Dim>{q.dims[0], q.dims[1], Dim::known(heads), dh} : std::vector<Dim>{q.dims[0], Dim::known(heads), q.dims[1], dh};
    ctx.setOutput(0, ctx.inputTypes[0], out);
    return;
  }
  if (q.rank() != 4 || v.rank() != 4) ctx.error("Q and V must be rank 4");
  const Dim b = q.dims[0];
  const Dim h = layout[0] ? q.dims[2] : q.dims[1];
  const Dim s = layout[0] ? q.dims[1] : q.dims[2];
  const Dim dv = v.dims[3];
  SymShape out;
  out.hasRank = true;
  out.dims = layout[3] ? std::vector<Dim>{b, s, h, dv} : std::vector<Dim>{b, h, s, dv};
  ctx.setOutput(0, ctx.inputTypes[0], out);
}

void inferAddLayerNorm(InferContext& ctx) {
  if (ctx.inputTypes[0] != ctx.inputTypes[1]) ctx.error("A and R must have the same type");
  ctx.setOutput(0, ctx.inputTypes[0], ctx.inputShapes[0]);
}

// [N,H,W,C] windows: output spatial dims from the same geometry rules as the NCHW ops.
SymShape nhwcWindowOutput(InferContext& ctx, const std::vector<int64_t>& kernel, const Dim& channels) {
  const SymShape& x = ctx.inputShapes[0];
  SymShape out;
  out.hasRank = true;
  out.dims = {x.dims[0], Dim{}, Dim{}, channels};
  WindowParams p = readWindowParams(ctx.node, 2, kernel);
  for (size_t i = 0; i < 2; ++i) {
    const Dim& in = x.dims[1 + i];
    out.dims[1 + i] = in.isKnown() ? Dim::known(forwardWindowDim(ctx.node, p, i, in.value).out) : ctx.freshDim();
  }
  return out;
}

void inferConvNhwc(InferContext& ctx) {
  const SymShape& x = ctx.inputShapes[0];
  const SymShape& w = ctx.inputShapes[1];
  if (!x.hasRank || x.rank() != 4 || !w.hasRank || w.rank() != 4 || !w.isConcrete())
    ctx.error("expects X [N,H,W,C] and a constant W [K,R,S,C/group]");
  Shape ws = w.concrete();
  ctx.setOutput(0, ctx.inputTypes[0], nhwcWindowOutput(ctx, {ws[1], ws[2]}, Dim::known(ws[0])));
}

void inferMaxPoolNhwc(InferContext& ctx) {
  const SymShape& x = ctx.inputShapes[0];
  if (!x.hasRank || x.rank() != 4) ctx.error("expects X [N,H,W,C]");
  ctx.setOutput(0, ctx.inputTypes[0], nhwcWindowOutput(ctx, ctx.node.getInts("kernel_shape"), x.dims[3]));
}

void inferGlobalAvgPoolNhwc(InferContext& ctx) {
  const SymShape& x = ctx.inputShapes[0];
  if (!x.hasRank || x.rank() != 4) ctx.error("expects X [N,H,W,C]");
  SymShape out;
  out.hasRank = true;
  out.dims = {x.dims[0], x.dims[3], Dim::known(1), Dim::known(1)};  // [N,1,1,C] and [N,C,1,1] share bytes
  // int8 in (attr scale): float16 out.
  ctx.setOutput(0, ctx.inputTypes[0] == DType::Int8 ? DType::Float16 : ctx.inputTypes[0], out);
}

}  // namespace

KILN_REGISTER_SCHEMA(CudaConvNHWC, (OpSchema{kKilnDomain, "CudaConvNHWC", 1, inferConvNhwc}));
KILN_REGISTER_SCHEMA(CudaMaxPoolNHWC, (OpSchema{kKilnDomain, "CudaMaxPoolNHWC", 1, inferMaxPoolNhwc}));
KILN_REGISTER_SCHEMA(CudaAveragePoolNHWC, (OpSchema{kKilnDomain, "CudaAveragePoolNHWC", 1, inferMaxPoolNhwc}));
KILN_REGISTER_SCHEMA(CudaGlobalAvgPoolNHWC, (OpSchema{kKilnDomain, "CudaGlobalAvgPoolNHWC", 1, inferGlobalAvgPoolNhwc}));
void inferCastToNhwc(InferContext& ctx) {
  if (ctx.inputTypes[0] != DType::Float32) ctx.error("the input must be float32");
  const SymShape& x = ctx.inputShapes[0];
  if (!x.hasRank) {
    ctx.setOutput(0, DType::Float16, SymShape::unknown());
    return;
  }
  if (x.rank() != 4) ctx.error("the input must be rank 4 [N,C,H,W], got " + x.toString());
  SymShape out;
  out.hasRank = true;
  out.dims = {x.dims[0], x.dims[2], x.dims[3], x.dims[1]};
  ctx.setOutput(0, DType::Float16, out);
}

KILN_REGISTER_SCHEMA(CudaCastToNhwc, (OpSchema{kKilnDomain, "CudaCastToNhwc", 1, inferCastToNhwc}));
KILN_REGISTER_SCHEMA(CudaAttention, (OpSchema{kKilnDomain, "CudaAttention", 1, inferCudaAttention}));
KILN_REGISTER_SCHEMA(CudaAddLayerNorm, (OpSchema{kKilnDomain, "CudaAddLayerNorm", 1, inferAddLayerNorm}));

}  // namespace kiln::cuda
