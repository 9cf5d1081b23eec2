// Schemas of the indexing ops: Gather, GatherElements, GatherND, Scatter (deprecated),
// ScatterElements, ScatterND, OneHot, Compress and NonZero. Index values are validated by the
// kernels against the data at run time; inference validates what shapes alone can tell.
#include "ops/tensor_util.h"

namespace kiln {

namespace {

bool isIndexType(DType t) { return t == DType::Int32 || t == DType::Int64; }

void requireIndices(InferContext& ctx, size_t i, const char* name) {
  expectInput(ctx, i, name);
  if (!isIndexType(ctx.inputTypes[i])) {
    ctx.error(std::string(name) + " must be int32 or int64, got " + dtypeName(ctx.inputTypes[i]));
  }
}

void inferGather(InferContext& ctx) {
  expectInput(ctx, 0, "data");
  requireIndices(ctx, 1, "indices");
  const SymShape& data = ctx.inputShapes[0];
  const SymShape& idx = ctx.inputShapes[1];
  if (!data.hasRank || !idx.hasRank) {
    ctx.setOutput(0, ctx.inputTypes[0], SymShape::unknown());
    return;
  }
  if (data.rank() == 0) ctx.error("data must have rank >= 1");
  const int64_t axis = inferAxis(ctx, ctx.node.getInt("axis", 0), (int64_t)data.rank());
  SymShape out;
  out.hasRank = true;
  out.dims.insert(out.dims.end(), data.dims.begin(), data.dims.begin() + axis);
  out.dims.insert(out.dims.end(), idx.dims.begin(), idx.dims.end());
  out.dims.insert(out.dims.end(), data.dims.begin() + axis + 1, data.dims.end());
  ctx.setOutput(0, ctx.inputTypes[0], out);
}

void inferGatherElements(InferContext& ctx) {
  expectInput(ctx, 0, "data");
  requireIndices(ctx, 1, "indices");
  const SymShape& data = ctx.inputShapes[0];
  const SymShape& idx = ctx.inputShapes[1];
  if (data.hasRank && idx.hasRank) {
    if (data.rank() != idx.rank()) ctx.error("data " + data.toString() + " and indices " + idx.toString() + " differ in rank");
    if (data.rank() == 0) ctx.error("data must have rank >= 1");
    inferAxis(ctx, ctx.node.getInt("axis", 0), (int64_t)data.rank());
  }
  ctx.setOutput(0, ctx.inputTypes[0], idx);
}

void inferGatherND(InferContext& ctx) {
  expectInput(ctx, 0, "data");
  expectInput(ctx, 1, "indices");
  if (ctx.inputTypes[1] != DType::Int64) ctx.error("indices must be int64");
  const SymShape& data = ctx.inputShapes[0];
  const SymShape& idx = ctx.inputShapes[1];
  const int64_t b = ctx.opset >= 12 ? ctx.node.getInt("batch_dims", 0) : 0;
  if (!data.hasRank || !idx.hasRank || idx.rank() == 0 || !idx.dims.back().isKnown()) {
    ctx.setOutput(0, ctx.inputTypes[0], SymShape::unknown());
    return;
  }
  const int64_t r = (int64_t)data.rank(), q = (int64_t)idx.rank(), last = idx.dims.back().value;
  if (b < 0 || b >= std::min(r, q)) ctx.error("batch_dims " + std::to_string(b) + " must be in [0, min(rank(data), rank(indices)))");
  if (last < 1 || last > r - b) {
    ctx.error("indices' last dim " + std::to_string(last) + " must be in [1, " + std::to_string(r - b) + "] for data " +
              data.toString());
  }
  for (int64_t i = 0; i < b; i++) {
    const Dim &x = data.dims[(size_t)i], &y = idx.dims[(size_t)i];
    if (x.isKnown() && y.isKnown() && x.value != y.value) {
      ctx.error("batch dim " + std::to_string(i) + " differs: data " + data.toString() + ", indices " + idx.toString());
    }
  }
  SymShape out;
  out.hasRank = true;
  out.dims.insert(out.dims.end(), idx.dims.begin(), idx.dims.end() - 1);
  out.dims.insert(out.dims.end(), data.dims.begin() + b + last, data.dims.end());
  ctx.setOutput(0, ctx.inputTypes[0], out);
}

void checkReduction(InferContext& ctx) {
  std::string r = ctx.node.getString("reduction", "none");
  const bool minMax = ctx.opset >= 18;
  if (r != "none" && r != "add" && r != "mul" && !(minMax && (r == "max" || r == "min"))) {
    ctx.error("unsupported reduction '" + r + "'");
  }
}

void inferScatterElements(InferContext& ctx) {
  expectInput(ctx, 0, "data");
  requireIndices(ctx, 1, "indices");
  expectInput(ctx, 2, "updates");
  if (ctx.node.opType == "ScatterElements") checkReduction(ctx);
  const SymShape& data = ctx.inputShapes[0];
  const SymShape& idx = ctx.inputShapes[1];
  const SymShape& upd = ctx.inputShapes[2];
  if (ctx.inputTypes[2] != ctx.inputTypes[0]) ctx.error("updates must have the data's type");
  if (idx.hasRank && upd.hasRank) {
    if (idx.rank() != upd.rank()) ctx.error("indices " + idx.toString() + " and updates " + upd.toString() + " differ in shape");
    for (size_t i = 0; i < idx.rank(); i++) {
      const Dim &x = idx.dims[i], &y = upd.dims[i];
      if (x.isKnown() && y.isKnown() && x.value != y.value) {
        ctx.error("indices " + idx.toString() + " and updates " + upd.toString() + " differ in shape");
      }
    }
  }
  if (data.hasRank) {
    if (data.rank() == 0) ctx.error("data must have rank >= 1");
    if (idx.hasRank && idx.rank() != data.rank()) ctx.error("indices " + idx.toString() + " and data " + data.toString() + " differ in rank");
    inferAxis(ctx, ctx.node.getInt("axis", 0), (int64_t)data.rank());
  }
  ctx.setOutput(0, ctx.inputTypes[0], data);
}

void inferScatterND(InferContext& ctx) {
  expectInput(ctx, 0, "data");
  expectInput(ctx, 1, "indices");
  expectInput(ctx, 2, "updates");
  if (ctx.inputTypes[1] != DType::Int64) ctx.error("indices must be int64");
  if (ctx.inputTypes[2] != ctx.inputTypes[0]) ctx.error("updates must have the data's type");
  checkReduction(ctx);
  const SymShape& data = ctx.inputShapes[0];
  const SymShape& idx = ctx.inputShapes[1];
  const SymShape& upd = ctx.inputShapes[2];
  if (data.hasRank && idx.hasRank && upd.hasRank && idx.rank() >= 1 && idx.dims.back().isKnown()) {
    const int64_t k = idx.dims.back().value, r = (int64_t)data.rank(), q = (int64_t)idx.rank();
    if (k > r) ctx.error("indices' last dim " + std::to_string(k) + " exceeds the rank of data " + data.toString());
    // updates.shape == indices.shape[:-1] + data.shape[k:]
    if ((int64_t)upd.rank() != q - 1 + r - k) {
      ctx.error("updates " + upd.toString() + " must have shape indices[:-1] + data[" + std::to_string(k) + ":]");
    }
  }
  ctx.setOutput(0, ctx.inputTypes[0], data);
}

void inferOneHot(InferContext& ctx) {
  expectInput(ctx, 0, "indices");
  expectInput(ctx, 1, "depth");
  expectInput(ctx, 2, "values");
  const SymShape& idx = ctx.inputShapes[0];
  const SymShape& values = ctx.inputShapes[2];
  if (values.hasRank && !(values.rank() == 1 && (!values.dims[0].isKnown() || values.dims[0].value == 2))) {
    ctx.error("values must be a 2-element vector [off, on], got " + values.toString());
  }
  if (!idx.hasRank) {
    ctx.setOutput(0, ctx.inputTypes[2], SymShape::unknown());
    return;
  }
  const int64_t outRank = (int64_t)idx.rank() + 1;
  const int64_t axis = inferAxis(ctx, ctx.node.getInt("axis", -1), outRank);
  Dim depth = ctx.freshDim();
  if (ctx.inputValues[1]) {
    if (ctx.inputValues[1]->numel() != 1) ctx.error("depth must be a scalar or a 1-element tensor");
    const double d = ctx.inputValues[1]->scalarAsDouble(0);
    if (!(d >= 1) || d > 1e15) ctx.error("depth " + std::to_string(d) + " must be positive");
    depth = Dim::known((int64_t)d);
  }
  SymShape out = idx;
  out.dims.insert(out.dims.begin() + axis, depth);
  ctx.setOutput(0, ctx.inputTypes[2], out);
}

void inferCompress(InferContext& ctx) {
  expectInput(ctx, 0, "input");
  expectInput(ctx, 1, "condition");
  if (ctx.inputTypes[1] != DType::Bool) ctx.error("condition must be bool");
  const SymShape& in = ctx.inputShapes[0];
  const SymShape& cond = ctx.inputShapes[1];
  if (cond.hasRank && cond.rank() != 1) ctx.error("condition must be 1-D, got " + cond.toString());
  SymShape out;
  if (!ctx.node.has("axis")) {
    out = SymShape{true, {ctx.freshDim()}};
  } else if (in.hasRank) {
    const int64_t axis = inferAxis(ctx, ctx.node.getInt("axis", 0), (int64_t)in.rank());
    out = in;
    out.dims[(size_t)axis] = ctx.freshDim();
  }
  ctx.setOutput(0, ctx.inputTypes[0], out);
}

void inferNonZero(InferContext& ctx) {
  expectInput(ctx, 0, "X");
  const SymShape& in = ctx.inputShapes[0];
  SymShape out{true, {in.hasRank ? Dim::known((int64_t)in.rank()) : ctx.freshDim(), ctx.freshDim()}};
  ctx.setOutput(0, DType::Int64, out);
}

}  // namespace

KILN_REGISTER_SCHEMA(Gather, (OpSchema{"", "Gather", 1, inferGather}));
KILN_REGISTER_SCHEMA(Gather, (OpSchema{"", "Gather", 11, inferGather}));   // negative indices
KILN_REGISTER_SCHEMA(GatherElements, (OpSchema{"", "GatherElements", 11, inferGatherElements}));
KILN_REGISTER_SCHEMA(GatherND, (OpSchema{"", "GatherND", 11, inferGatherND}));
KILN_REGISTER_SCHEMA(GatherND, (OpSchema{"", "GatherND", 12, inferGatherND}));   // batch_dims
// Scatter-9 is ScatterElements without reduction under its old name (removed at opset 11).
KILN_REGISTER_SCHEMA(Scatter, (OpSchema{"", "Scatter", 9, inferScatterElements}));
KILN_REGISTER_SCHEMA(ScatterElements, (OpSchema{"", "ScatterElements", 11, inferScatterElements}));
KILN_REGISTER_SCHEMA(ScatterElements, (OpSchema{"", "ScatterElements", 16, inferScatterElements}));  // add/mul
KILN_REGISTER_SCHEMA(ScatterElements, (OpSchema{"", "ScatterElements", 18, inferScatterElements}));  // max/min
KILN_REGISTER_SCHEMA(ScatterND, (OpSchema{"", "ScatterND", 11, inferScatterND}));
KILN_REGISTER_SCHEMA(ScatterND, (OpSchema{"", "ScatterND", 16, inferScatterND}));
KILN_REGISTER_SCHEMA(ScatterND, (OpSchema{"", "ScatterND", 18, inferScatterND}));
KILN_REGISTER_SCHEMA(OneHot, (OpSchema{"", "OneHot", 9, inferOneHot}));
KILN_REGISTER_SCHEMA(OneHot, (OpSchema{"", "OneHot", 11, inferOneHot}));   // negative indices/axis
KILN_REGISTER_SCHEMA(Compress, (OpSchema{"", "Compress", 9, inferCompress, true}));
KILN_REGISTER_SCHEMA(Compress, (OpSchema{"", "Compress", 11, inferCompress, true}));
KILN_REGISTER_SCHEMA(NonZero, (OpSchema{"", "NonZero", 9, inferNonZero, true}));

}  // namespace kiln
