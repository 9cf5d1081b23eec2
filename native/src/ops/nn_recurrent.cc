// Schemas of the recurrent layers RNN, GRU and LSTM, which share one shape rule. Kernels:
// backends/cpu/ops/recurrent.cc.
//
// Inputs: X [seq, batch, input] ([batch, seq, input] with layout=1), W [dirs, G*hidden, input],
// R [dirs, G*hidden, hidden], then optional B, sequence_lens, initial_h (and LSTM's initial_c, P).
// Outputs: Y [seq, dirs, batch, hidden] ([batch, seq, dirs, hidden]), Y_h and LSTM's Y_c
// [dirs, batch, hidden] ([batch, dirs, hidden]). G is 1 (RNN), 3 (GRU) or 4 (LSTM).
#include "ops/elementwise_infer.h"

namespace kiln {
namespace {

int64_t directionsOf(InferContext& ctx) {
  const std::string direction = ctx.node.getString("direction", "forward");
  if (direction == "forward" || direction == "reverse") return 1;
  if (direction == "bidirectional") return 2;
  ctx.error("direction must be forward, reverse or bidirectional, got '" + direction + "'");
}

void inferRecurrent(InferContext& ctx) {
  inferRequire(ctx, 0, "X");
  inferRequire(ctx, 1, "W");
  inferRequire(ctx, 2, "R");
  const DType t = inferSameType(ctx, 0, 3);
  if (t != DType::Undefined && t != DType::Float32) {
    fail(ErrorCode::UnsupportedOp, "unsupported operator " + ctx.node.opType + " (opset " +
                                       std::to_string(ctx.opset) + ") at node '" + ctx.node.name +
                                       "': dtype " + dtypeName(t) + " (float only)");
  }
  const int64_t dirs = directionsOf(ctx);
  const int64_t layout = ctx.node.getInt("layout", 0);
  if (layout != 0 && layout != 1) ctx.error("layout must be 0 or 1, got " + std::to_string(layout));
  const SymShape& x = ctx.inputShapes[0];
  const SymShape& r = ctx.inputShapes[2];
  if (x.hasRank && x.rank() != 3) ctx.error("X must have rank 3, got " + x.toString());
  if (r.hasRank && r.rank() != 3) ctx.error("R must have rank 3, got " + r.toString());
  Dim hidden = ctx.freshDim();
  if (ctx.node.has("hidden_size")) {
    const int64_t h = ctx.node.getInt("hidden_size", 0);
    if (h <= 0) ctx.error("hidden_size must be positive, got " + std::to_string(h));
    hidden = Dim::known(h);
  } else if (r.hasRank) {
    hidden = r.dims[2];
  }
  Dim seq = ctx.freshDim(), batch = ctx.freshDim();
  if (x.hasRank) {
    seq = x.dims[layout == 0 ? 0 : 1];
    batch = x.dims[layout == 0 ? 1 : 0];
  }
  const Dim d = Dim::known(dirs);
  SymShape y{true, layout == 0 ? std::vector<Dim>{seq, d, batch, hidden} : std::vector<Dim>{batch, seq, d, hidden}};
  SymShape state{true, layout == 0 ? std::vector<Dim>{d, batch, hidden} : std::vector<Dim>{batch, d, hidden}};
  const DType out = t == DType::Undefined ? DType::Float32 : t;
  ctx.setOutput(0, out, y);
  ctx.setOutput(1, out, state);
  if (ctx.node.opType == "LSTM") ctx.setOutput(2, out, state);
}

}  // namespace

KILN_REGISTER_SCHEMAS(RNN, "RNN", inferRecurrent, 1, 7, 14, 22);
KILN_REGISTER_SCHEMAS(GRU, "GRU", inferRecurrent, 1, 3, 7, 14, 22);
KILN_REGISTER_SCHEMAS(LSTM, "LSTM", inferRecurrent, 1, 7, 14, 22);

}  // namespace kiln
