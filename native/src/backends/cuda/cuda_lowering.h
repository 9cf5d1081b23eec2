// The CUDA backend's graph lowering (Backend::lowerGraph), run after the optimizer:
//  - kiln.Attention whose Q/K/V come from, or whose output goes to, a head-split Transpose
//    (perm [0,2,1,3]) becomes kiln.CudaAttention reading and writing the [B,S,H,D] layout in place,
//    so the four transposes per attention layer disappear;
//  - Add followed by LayerNormalization over its sum (the post-LN residual) becomes
//    kiln.CudaAddLayerNorm, one pass instead of two;
//  - fp16 precision: cuda_fp16.h.
// The two kiln.Cuda* ops exist only in CUDA engines; their schemas live in cuda_schemas.cc.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "graph/ir.h"
#include "runtime/api.h"

namespace kiln::cuda {

void lowerGraphForCuda(Graph& graph, Precision precision, std::vector<std::string>& warnings);
// fp16 (cuda_fp16.h) and the NHWC convolutional region: what lowerGraphForCuda does at fp16.
void lowerToFp16Nhwc(Graph& graph);
// INT8 (int8_lowering.cc): Backend::quantizeGraph of the cuda backend.
void quantizeGraphForCuda(Graph& graph, const BuildOptions& options, const std::map<std::string, float>& qdqRanges,
                          std::vector<std::string>& warnings,
                          std::map<std::string, std::string>& nodePrecision);

}  // namespace kiln::cuda
