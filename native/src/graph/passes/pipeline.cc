// The pass registry and the fixed-point driver. Order matters only for efficiency, not for
// correctness: cleanup first (so patterns are not hidden behind Identity nodes or foldable shape
// arithmetic), BatchNorm folding before the Conv/Gemm fusions (a folded Conv can then take its
// activation), GELU before MatMul fusion (so MatMul + bias + GELU becomes one node), attention
// before MatMul fusion (its MatMuls must not be claimed first).
//
// Passes rewrite the top-level graph only; If/Loop/Scan bodies are left as they are.
#include "graph/passes/pass.h"

#include "graph/shape_inference.h"

namespace kiln {
namespace {

// Every round either changes something or ends the loop, and each rewrite removes nodes or turns
// several into one, so the graph shrinks; the cap only guards against a rule that oscillates.
constexpr int kMaxRounds = 16;

}  // namespace

const std::vector<Pass>& allPasses() {
  static const std::vector<Pass> passes = {
      {"identity_elimination", "removes Identity and inference-mode Dropout nodes", eliminateIdentities, 1},
      {"shape_folding", "turns Shape/Size of statically known dims (and Gather/Slice of them) into constants",
       foldShapes, 1},
      {"reshape_target_folding", "Reshape targets assembled from the data's own dims become constants (0 = keep)",
       foldReshapeTargets, 1},
      {"constant_folding", "evaluates nodes whose inputs are all constants, unless the result is much larger",
       foldConstants, 1},
      {"dead_node_elimination", "removes nodes whose outputs reach no graph output, and unused weights",
       eliminateDeadNodes, 1},
      {"batchnorm_folding", "folds inference BatchNormalization into the weights of a preceding Conv/Gemm/MatMul",
       foldBatchNorms, 1},
      {"gelu_fusion", "erf and tanh GELU formulas -> kiln.Gelu", fuseGelu, 2},
      {"layernorm_fusion", "ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add -> kiln.LayerNormalization",
       fuseLayerNorm, 2},
      {"attention_fusion", "MatMul(Q,K^T) scale [mask] Softmax MatMul(V) -> kiln.Attention", fuseAttention, 2},
      {"conv_fusion", "Conv + bias Add + residual Add + activation -> kiln.FusedConv", fuseConv, 2},
      {"gemm_fusion", "Gemm + bias Add + activation -> kiln.FusedGemm", fuseGemm, 2},
      {"matmul_fusion", "MatMul + 1-D bias Add + activation -> kiln.FusedMatMul", fuseMatMul, 2},
  };
  return passes;
}

const Pass* findPass(const std::string& name) {
  for (const Pass& p : allPasses()) {
    if (name == p.name) return &p;
  }
  return nullptr;
}

int runPass(Graph& graph, const Pass& pass, PassContext& ctx) {
  int n = pass.run(graph, ctx);
  if (n > 0) {
    graph.compact();
    inferShapes(graph);
  }
  return n;
}

int optimizeGraph(Graph& graph, int level, std::map<std::string, int>& applied) {
  if (level <= 0) return 0;
  PassContext ctx;
  ctx.level = level;
  int total = 0;
  for (int round = 0; round < kMaxRounds; round++) {
    int changed = 0;
    for (const Pass& pass : allPasses()) {
      if (level < pass.minLevel) continue;
      int n = runPass(graph, pass, ctx);
      if (n > 0) applied[pass.name] += n;
      changed += n;
    }
    total += changed;
    if (changed == 0) break;
  }
  return total;
}

}  // namespace kiln
