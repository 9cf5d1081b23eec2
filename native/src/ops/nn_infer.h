// Shape inference of the compute ops (ops/nn_*.cc), exported so the kiln-domain fused ops
// (ops/fused.cc: FusedConv, FusedGemm, FusedMatMul, LayerNormalization) can reuse the exact rules
// of the ops they replace.
#pragma once
#include "ops/schema.h"

namespace kiln {

// Conv: X at input 0, W at input 1, optional bias [M] at input 2; output 0 [N, M, spatial...].
void inferConv(InferContext& ctx);
// ConvTranspose: X at 0, W [C, M/group, k...] at 1, optional bias at 2.
void inferConvTranspose(InferContext& ctx);
// MatMul (numpy semantics, 1-D operands promoted) of inputs 0 and 1, output type of input 0.
void inferMatMul(InferContext& ctx);
// Gemm: A at 0, B at 1, optional C at 2 (unidirectionally broadcastable to [M, N]).
void inferGemm(InferContext& ctx);
// LayerNormalization-17: X, Scale, Bias?; outputs Y, Mean?, InvStdDev?.
void inferLayerNormalization(InferContext& ctx);

// The matmul output shape of a and b (numpy rules), or ctx.error() when incompatible.
SymShape matmulShape(InferContext& ctx, const SymShape& a, const SymShape& b);

}  // namespace kiln
