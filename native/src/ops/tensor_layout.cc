// Schemas of the layout ops: Transpose, DepthToSpace, SpaceToDepth and Trilu.
#include "ops/tensor_layout.h"

#include "ops/tensor_util.h"

namespace kiln {

std::vector<int64_t> transposePerm(const Node& node, int64_t rank,
                                   const std::function<void(const std::string&)>& onError) {
  std::vector<int64_t> perm;
  if (!node.has("perm")) {
    for (int64_t i = rank - 1; i >= 0; i--) perm.push_back(i);
    return perm;
  }
  perm = node.getInts("perm");
  if ((int64_t)perm.size() != rank) {
    onError("perm " + shapeToString(perm) + " has " + std::to_string(perm.size()) + " entries for rank " +
            std::to_string(rank));
  }
  std::vector<bool> seen((size_t)rank, false);
  for (int64_t& p : perm) {
    // Negative entries are not in the spec, but exporters emit them and every runtime accepts them.
    if (p < -rank || p >= rank) onError("perm " + shapeToString(node.getInts("perm")) + " is not a permutation");
    if (p < 0) p += rank;
    if (seen[(size_t)p]) onError("perm " + shapeToString(node.getInts("perm")) + " is not a permutation");
    seen[(size_t)p] = true;
  }
  return perm;
}

BlockRearrangement depthToSpaceView(int64_t n, int64_t c, int64_t h, int64_t w, int64_t b, bool crd) {
  const int64_t co = c / (b * b);
  // DCR: depth is (block_y, block_x, channel); CRD: (channel, block_y, block_x).
  if (crd) return {{n, co, b, b, h, w}, {0, 1, 4, 2, 5, 3}};
  return {{n, b, b, co, h, w}, {0, 3, 4, 1, 5, 2}};
}

BlockRearrangement spaceToDepthView(int64_t n, int64_t c, int64_t h, int64_t w, int64_t b) {
  return {{n, c, h / b, b, w / b, b}, {0, 3, 5, 1, 2, 4}};
}

namespace {

void inferTranspose(InferContext& ctx) {
  expectInput(ctx, 0, "data");
  const SymShape& in = ctx.inputShapes[0];
  if (!in.hasRank) {
    // Without a rank only an explicit perm fixes the output rank.
    SymShape out;
    if (ctx.node.has("perm")) {
      out.hasRank = true;
      for (size_t i = 0; i < ctx.node.getInts("perm").size(); i++) out.dims.push_back(ctx.freshDim());
    }
    ctx.setOutput(0, ctx.inputTypes[0], out);
    return;
  }
  auto perm = transposePerm(ctx.node, (int64_t)in.rank(), [&](const std::string& m) { ctx.error(m); });
  SymShape out;
  out.hasRank = true;
  for (int64_t p : perm) out.dims.push_back(in.dims[(size_t)p]);
  ctx.setOutput(0, ctx.inputTypes[0], out);
}

int64_t blockSize(InferContext& ctx) {
  if (!ctx.node.has("blocksize")) ctx.error("attribute blocksize is required");
  int64_t b = ctx.node.getInt("blocksize", 0);
  // Bounded so blocksize^2 cannot overflow.
  if (b <= 0 || b > (int64_t(1) << 20)) ctx.error("blocksize " + std::to_string(b) + " must be in [1, 2^20]");
  return b;
}

void inferDepthToSpace(InferContext& ctx) {
  expectInput(ctx, 0, "input");
  if (!ctx.inputShapes[0].hasRank) {
    ctx.setOutput(0, ctx.inputTypes[0], SymShape{true, {ctx.freshDim(), ctx.freshDim(), ctx.freshDim(), ctx.freshDim()}});
    return;
  }
  if (ctx.inputShapes[0].rank() != 4) ctx.error("input must be 4-D, got " + ctx.inputShapes[0].toString());
  const int64_t b = blockSize(ctx);
  std::string mode = ctx.opset >= 11 ? ctx.node.getString("mode", "DCR") : "DCR";
  if (mode != "DCR" && mode != "CRD") ctx.error("unknown mode '" + mode + "'");
  const auto& d = ctx.inputShapes[0].dims;
  Dim c = d[1];
  if (c.isKnown()) {
    if (c.value % (b * b) != 0) {
      ctx.error("channels " + c.toString() + " are not divisible by blocksize^2 = " + std::to_string(b * b));
    }
    c = Dim::known(c.value / (b * b));
  } else {
    c = ctx.freshDim();
  }
  Dim bb = Dim::known(b);
  ctx.setOutput(0, ctx.inputTypes[0], SymShape{true, {d[0], c, ctx.mul(d[2], bb), ctx.mul(d[3], bb)}});
}

void inferSpaceToDepth(InferContext& ctx) {
  expectInput(ctx, 0, "input");
  if (!ctx.inputShapes[0].hasRank) {
    ctx.setOutput(0, ctx.inputTypes[0], SymShape{true, {ctx.freshDim(), ctx.freshDim(), ctx.freshDim(), ctx.freshDim()}});
    return;
  }
  if (ctx.inputShapes[0].rank() != 4) ctx.error("input must be 4-D, got " + ctx.inputShapes[0].toString());
  const int64_t b = blockSize(ctx);
  const auto& d = ctx.inputShapes[0].dims;
  std::vector<Dim> out = {d[0], ctx.mul(d[1], Dim::known(b * b)), Dim{}, Dim{}};
  for (int i = 2; i < 4; i++) {
    if (d[(size_t)i].isKnown()) {
      if (d[(size_t)i].value % b != 0) {
        ctx.error("spatial size " + d[(size_t)i].toString() + " is not divisible by blocksize " + std::to_string(b));
      }
      out[(size_t)i] = Dim::known(d[(size_t)i].value / b);
    } else {
      out[(size_t)i] = ctx.freshDim();
    }
  }
  ctx.setOutput(0, ctx.inputTypes[0], SymShape{true, out});
}

void inferTrilu(InferContext& ctx) {
  expectInput(ctx, 0, "input");
  const SymShape& in = ctx.inputShapes[0];
  if (in.hasRank && in.rank() < 2) ctx.error("input must have rank >= 2, got " + in.toString());
  if (ctx.hasInput(1)) {
    auto k = ctx.intValues(1);
    if (k && k->size() != 1) ctx.error("k must be a scalar");
  }
  ctx.setOutput(0, ctx.inputTypes[0], in);
}

}  // namespace

KILN_REGISTER_SCHEMA(Transpose, (OpSchema{"", "Transpose", 1, inferTranspose}));
KILN_REGISTER_SCHEMA(DepthToSpace, (OpSchema{"", "DepthToSpace", 1, inferDepthToSpace}));
KILN_REGISTER_SCHEMA(DepthToSpace, (OpSchema{"", "DepthToSpace", 11, inferDepthToSpace}));  // mode
KILN_REGISTER_SCHEMA(SpaceToDepth, (OpSchema{"", "SpaceToDepth", 1, inferSpaceToDepth}));
KILN_REGISTER_SCHEMA(Trilu, (OpSchema{"", "Trilu", 14, inferTrilu}));

}  // namespace kiln
