// Ops that exist only inside Kiln (domain "kiln"), produced by fusion passes in graph/passes and
// consumed by backends. Each is documented here once; schemas live in ops/fused.cc and kernels in
// backends/<b>/ops/. All activations are applied after the bias (and after the residual add).
//
// kiln.FusedConv      inputs X, W, B?, Z?   Conv (all ONNX Conv attributes) + bias, then + Z
//                     (residual add, same shape as Y) when present, then `activation`.
// kiln.FusedGemm      inputs A, B, C?       ONNX Gemm (alpha, beta, transA, transB) then `activation`.
// kiln.FusedMatMul    inputs A, B, bias?    ONNX MatMul (batched, broadcasting) + bias (1-D over the
//                     last dim) then `activation`.
// kiln.LayerNormalization  inputs X, Scale, Bias?  same semantics as ONNX LayerNormalization-17
//                     (attrs axis, epsilon; optional outputs Mean and InvStdDev, float32), available
//                     at any opset. The fusion pass always gives Scale/Bias the shape X.shape[axis:].
// kiln.Gelu           input X; attr approximate = "none" (erf) | "tanh"; as ONNX Gelu-20.
// kiln.Attention      inputs Q [B,H,Sq,D], K [B,H,Sk,D], V [B,H,Sk,Dv], mask? (additive, broadcastable
//                     to [B,H,Sq,Sk]); attrs scale (float, required), causal (int 0/1: position
//                     j > i + (Sk-Sq) is masked out). Output softmax(Q K^T * scale + mask) V, shape
//                     [B,H,Sq,Dv].
//
// Fused nodes carry domain "kiln" and the bare op name (Node{opType "FusedConv", domain "kiln"});
// "kiln.FusedConv" is only how reports spell them. A graph holding them imports opset "kiln" = 1,
// and their schemas and kernels are registered with sinceVersion 1.
//
// Common activation attributes:
//   activation: string, "" (none) | Relu | LeakyRelu | Sigmoid | Tanh | Clip | HardSigmoid |
//               HardSwish | Gelu | GeluTanh | Silu
//   activation_params: floats — LeakyRelu {alpha}; Clip {min, max} (+-inf when unbounded);
//               HardSigmoid {alpha, beta}; exactly these counts, none for the other activations.
#pragma once
#include <string>

namespace kiln {

inline constexpr const char* kKilnDomain = "kiln";

enum class Activation { None, Relu, LeakyRelu, Sigmoid, Tanh, Clip, HardSigmoid, HardSwish, Gelu, GeluTanh, Silu };

// Parses the `activation` attribute; throws InvalidModel on an unknown name.
Activation parseActivation(const std::string& name);
const char* activationName(Activation a);

}  // namespace kiln
