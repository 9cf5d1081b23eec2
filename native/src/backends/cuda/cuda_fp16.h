#pragma once
#include "graph/ir.h"

namespace kiln::cuda {

// Rewrites the graph for fp16 execution (see cuda_fp16.cc); returns the number of boundary casts.
int lowerGraphToFp16(Graph& graph);

}  // namespace kiln::cuda
