// Graph optimization passes. Each pass is data: a named rule with a one-line description, the lowest
// optimization level that runs it, and a function that rewrites every match in the graph and returns
// how many rewrites it made. The rules themselves live one per file in this folder; each file's
// header comment says what it matches and why the rewrite is safe.
//
// Levels (BuildOptions::optimizationLevel):
//   0  nothing runs;
//   1  cleanup and folding: Identity/Dropout removal, dead nodes, constant and shape folding
//      (Reshape targets included), BatchNormalization folded into Conv/Gemm/MatMul weights;
//   2  + fusions into kiln ops: Conv/Gemm/MatMul epilogues, LayerNorm, GELU, attention.
//
// Contract for a pass's run(): it sees a topologically sorted graph whose value shapes and types are
// up to date (inferShapes ran), may mark nodes dead, edit nodes in place and add values/constants,
// and must leave every live node's inputs defined before it in the original order (a fused node takes
// the slot of the last node it replaces, which satisfies that). The pipeline compacts the graph and
// re-runs shape inference after every pass that changed something.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace kiln {

struct PassContext {
  int level = 2;
};

struct Pass {
  const char* name;         // "conv_fusion": the key in BuildReport::fusions
  const char* description;  // one line for reports and `kiln inspect`
  int (*run)(Graph& graph, PassContext& ctx);
  int minLevel;  // runs when the build's optimization level is >= this
};

// Every pass, in pipeline order.
const std::vector<Pass>& allPasses();

// Runs the passes enabled at `level` over `graph` repeatedly until one full round changes nothing
// (or a round limit is hit, which only a pathological graph reaches). Adds each pass's rewrite
// count to applied[pass name]. Returns the total number of rewrites. Expects inferShapes(graph) to
// have run; leaves the graph compacted, topologically sorted and re-inferred.
int optimizeGraph(Graph& graph, int level, std::map<std::string, int>& applied);

// The passes themselves (one file each), exposed so tests can run a single rule.
int eliminateIdentities(Graph& graph, PassContext& ctx);     // identity_elimination.cc
int eliminateDeadNodes(Graph& graph, PassContext& ctx);      // dead_node_elimination.cc
int foldConstants(Graph& graph, PassContext& ctx);           // constant_folding.cc
int foldShapes(Graph& graph, PassContext& ctx);              // shape_folding.cc
int foldReshapeTargets(Graph& graph, PassContext& ctx);      // reshape_target_folding.cc
int foldBatchNorms(Graph& graph, PassContext& ctx);          // batchnorm_folding.cc
int fuseGelu(Graph& graph, PassContext& ctx);                // gelu_fusion.cc
int fuseLayerNorm(Graph& graph, PassContext& ctx);           // layernorm_fusion.cc
int fuseAttention(Graph& graph, PassContext& ctx);           // attention_fusion.cc
int fuseConv(Graph& graph, PassContext& ctx);                // conv_fusion.cc
int fuseGemm(Graph& graph, PassContext& ctx);                // gemm_fusion.cc
int fuseMatMul(Graph& graph, PassContext& ctx);              // matmul_fusion.cc

// Runs one pass the way the pipeline does (then compact + inferShapes when it changed something).
int runPass(Graph& graph, const Pass& pass, PassContext& ctx);
const Pass* findPass(const std::string& name);

}  // namespace kiln
