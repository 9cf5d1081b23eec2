// Schemas of the ops that change a tensor's shape but not its elements (Reshape, Flatten, Squeeze,
// Unsqueeze, Identity), that read shapes (Shape, Size) and Expand. Shape and Size compute their
// output values whenever the input dims are known, which is what lets constant propagation turn
// Shape -> Gather -> Concat -> Reshape chains into static shapes.
#include <algorithm>

#include "core/error.h"
#include "ops/shape_ops.h"
#include "ops/tensor_util.h"

namespace kiln {

namespace {

std::shared_ptr<Tensor> int64Tensor(const std::vector<int64_t>& values, bool scalar) {
  auto t = std::make_shared<Tensor>(Tensor::allocate(DType::Int64, scalar ? Shape{} : Shape{(int64_t)values.size()}));
  std::copy(values.begin(), values.end(), t->ptr<int64_t>());
  return t;
}

void inferReshape(InferContext& ctx) {
  expectInput(ctx, 0, "data");
  IntsArg target = readIntsArg(ctx, "shape", 1, 5);
  if (!target.present) ctx.error("the target shape is missing");
  const DType type = ctx.inputTypes[0];
  if (!target.known) {
    SymShape out;
    if (target.lengthKnown) {
      out.hasRank = true;
      for (size_t i = 0; i < target.knownLength; i++) out.dims.push_back(ctx.freshDim());
    }
    ctx.setOutput(0, type, out);
    return;
  }
  const bool allowZero = ctx.opset >= 14 && ctx.node.getInt("allowzero", 0) != 0;
  SymShape out = resolveReshape(ctx, ctx.inputShapes[0], target.values, allowZero);
  ctx.setOutput(0, type, out);
}

void inferFlatten(InferContext& ctx) {
  expectInput(ctx, 0, "input");
  if (!ctx.inputShapes[0].hasRank) {  // always 2-D, whatever the input's rank
    ctx.setOutput(0, ctx.inputTypes[0], SymShape{true, {ctx.freshDim(), ctx.freshDim()}});
    return;
  }
  int64_t rank = (int64_t)ctx.inputShapes[0].rank();
  int64_t axis = ctx.node.getInt("axis", 1);
  // Flatten's axis may equal rank (everything in the first dim); negative axes arrive at opset 11.
  if (axis < (ctx.opset >= 11 ? -rank : 0) || axis > rank) {
    ctx.error("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  if (axis < 0) axis += rank;
  const auto& dims = ctx.inputShapes[0].dims;
  SymShape out;
  out.hasRank = true;
  out.dims.push_back(dimProduct(ctx, std::vector<Dim>(dims.begin(), dims.begin() + axis)));
  out.dims.push_back(dimProduct(ctx, std::vector<Dim>(dims.begin() + axis, dims.end())));
  ctx.setOutput(0, ctx.inputTypes[0], out);
}

void inferSqueeze(InferContext& ctx) {
  expectInput(ctx, 0, "data");
  const SymShape& in = ctx.inputShapes[0];
  IntsArg axes = readIntsArg(ctx, "axes", 1, 13);
  const DType type = ctx.inputTypes[0];
  if (!in.hasRank || (axes.present && !axes.known)) {
    SymShape out;
    if (in.hasRank && axes.lengthKnown && axes.knownLength <= in.rank()) {
      out.hasRank = true;
      for (size_t i = 0; i < in.rank() - axes.knownLength; i++) out.dims.push_back(ctx.freshDim());
    }
    ctx.setOutput(0, type, out);
    return;
  }
  const int64_t rank = (int64_t)in.rank();
  std::vector<bool> drop((size_t)rank, false);
  if (axes.present) {
    for (int64_t a : normalizeAxes(axes.values, rank, "axes", [&](const std::string& m) { ctx.error(m); })) {
      const Dim& d = in.dims[(size_t)a];
      if (d.isKnown() && d.value != 1) {
        ctx.error("cannot squeeze axis " + std::to_string(a) + " of size " + d.toString() + " in shape " +
                  in.toString());
      }
      drop[(size_t)a] = true;
    }
  } else {
    for (int64_t i = 0; i < rank; i++) {
      const Dim& d = in.dims[(size_t)i];
      // Without axes every size-1 dim goes; a symbolic dim might be 1, so the rank is unknown.
      if (!d.isKnown()) {
        ctx.setOutput(0, type, SymShape::unknown());
        return;
      }
      drop[(size_t)i] = d.value == 1;
    }
  }
  SymShape out;
  out.hasRank = true;
  for (int64_t i = 0; i < rank; i++)
    if (!drop[(size_t)i]) out.dims.push_back(in.dims[(size_t)i]);
  ctx.setOutput(0, type, out);
}

void inferUnsqueeze(InferContext& ctx) {
  expectInput(ctx, 0, "data");
  const SymShape& in = ctx.inputShapes[0];
  IntsArg axes = readIntsArg(ctx, "axes", 1, 13);
  if (!axes.present) ctx.error("axes are missing");
  const DType type = ctx.inputTypes[0];
  if (!in.hasRank || !axes.known) {
    SymShape out;
    if (in.hasRank && axes.lengthKnown) {
      out.hasRank = true;
      for (size_t i = 0; i < in.rank() + axes.knownLength; i++) out.dims.push_back(ctx.freshDim());
    }
    ctx.setOutput(0, type, out);
    return;
  }
  const int64_t outRank = (int64_t)(in.rank() + axes.values.size());
  std::vector<bool> inserted((size_t)outRank, false);
  for (int64_t a : normalizeAxes(axes.values, outRank, "axes", [&](const std::string& m) { ctx.error(m); })) {
    inserted[(size_t)a] = true;
  }
  SymShape out;
  out.hasRank = true;
  size_t next = 0;
  for (int64_t i = 0; i < outRank; i++) out.dims.push_back(inserted[(size_t)i] ? Dim::known(1) : in.dims[next++]);
  ctx.setOutput(0, type, out);
}

void inferShape(InferContext& ctx) {
  expectInput(ctx, 0, "data");
  const SymShape& in = ctx.inputShapes[0];
  if (!in.hasRank) {
    ctx.setOutput(0, DType::Int64, SymShape{true, {ctx.freshDim()}});
    return;
  }
  auto [start, end] = shapeOpRange(ctx.node, ctx.opset, (int64_t)in.rank());
  ctx.setOutput(0, DType::Int64, SymShape::of({end - start}));
  std::vector<int64_t> values;
  for (int64_t i = start; i < end; i++) {
    if (!in.dims[(size_t)i].isKnown()) return;
    values.push_back(in.dims[(size_t)i].value);
  }
  ctx.outputValues[0] = int64Tensor(values, false);
}

void inferSize(InferContext& ctx) {
  expectInput(ctx, 0, "data");
  ctx.setOutput(0, DType::Int64, SymShape::of({}));
  const SymShape& in = ctx.inputShapes[0];
  if (!in.isConcrete()) return;
  ctx.outputValues[0] = int64Tensor({inferNumel(ctx, in.concrete())}, true);
}

void inferIdentity(InferContext& ctx) {
  expectInput(ctx, 0, "input");
  ctx.setOutput(0, ctx.inputTypes[0], ctx.inputShapes[0]);
  if (ctx.inputValues[0]) ctx.outputValues[0] = std::make_shared<Tensor>(*ctx.inputValues[0]);
}

void inferExpand(InferContext& ctx) {
  expectInput(ctx, 0, "input");
  expectInput(ctx, 1, "shape");
  const DType type = ctx.inputTypes[0];
  auto shape = ctx.intValues(1);
  if (!shape) {
    const SymShape& s = ctx.inputShapes[1];
    const SymShape& in = ctx.inputShapes[0];
    SymShape out;
    if (in.hasRank && s.hasRank && s.rank() == 1 && s.dims[0].isKnown()) {
      out.hasRank = true;
      size_t rank = std::max(in.rank(), (size_t)s.dims[0].value);
      for (size_t i = 0; i < rank; i++) out.dims.push_back(ctx.freshDim());
    }
    ctx.setOutput(0, type, out);
    return;
  }
  for (int64_t d : *shape) {
    if (d < 0) ctx.error("shape " + shapeToString(*shape) + " has a negative dimension");
  }
  ctx.setOutput(0, type, ctx.broadcast({ctx.inputShapes[0], SymShape::of(*shape)}));
}

}  // namespace

SymShape resolveReshape(InferContext& ctx, const SymShape& in, const std::vector<int64_t>& target, bool allowZero) {
  SymShape out;
  out.hasRank = true;
  int64_t inferred = -1;
  bool hasZero = false;
  for (size_t i = 0; i < target.size(); i++) {
    int64_t v = target[i];
    if (v == -1) {
      if (inferred >= 0) ctx.error("shape " + shapeToString(target) + " has more than one -1");
      inferred = (int64_t)i;
      out.dims.push_back(Dim{});
    } else if (v == 0 && !allowZero) {
      if (!in.hasRank) {
        out.dims.push_back(ctx.freshDim());
      } else if (i >= in.rank()) {
        ctx.error("shape " + shapeToString(target) + " copies dim " + std::to_string(i) + " (0) of input " +
                  in.toString() + " which has no such dim");
      } else {
        out.dims.push_back(in.dims[i]);
      }
    } else if (v < 0) {
      ctx.error("shape " + shapeToString(target) + " has invalid dimension " + std::to_string(v));
    } else {
      hasZero = hasZero || v == 0;
      out.dims.push_back(Dim::known(v));
    }
  }
  if (allowZero && hasZero && inferred >= 0) {
    ctx.error("shape " + shapeToString(target) + " has both 0 (with allowzero=1) and -1");
  }
  if (inferred >= 0) {
    std::vector<Dim> others;
    for (size_t i = 0; i < out.dims.size(); i++)
      if ((int64_t)i != inferred) others.push_back(out.dims[i]);
    std::optional<Dim> q;
    if (in.hasRank) {
      if (in.isConcrete() && std::all_of(others.begin(), others.end(), [](const Dim& d) { return d.isKnown(); })) {
        int64_t n = inferNumel(ctx, in.concrete()), rest = 1;
        for (const Dim& d : others) {
          if (__builtin_mul_overflow(rest, d.value, &rest)) ctx.error("shape " + shapeToString(target) + " is too large");
        }
        if (rest == 0 || n % rest != 0) {
          ctx.error("cannot reshape input of shape " + in.toString() + " (" + std::to_string(n) +
                    " elements) into shape " + shapeToString(target));
        }
        q = Dim::known(n / rest);
      } else {
        q = dimQuotient(ctx, in.dims, others);
      }
    }
    out.dims[(size_t)inferred] = q ? *q : ctx.freshDim();
  } else if (in.isConcrete() && out.isConcrete()) {
    int64_t n = inferNumel(ctx, in.concrete()), m = inferNumel(ctx, out.concrete());
    if (n != m) {
      ctx.error("cannot reshape input of shape " + in.toString() + " (" + std::to_string(n) +
                " elements) into shape " + out.toString() + " (" + std::to_string(m) + " elements)");
    }
  }
  return out;
}

std::pair<int64_t, int64_t> shapeOpRange(const Node& node, int64_t opset, int64_t rank) {
  // Shape-15 slices the shape like Slice does with step 1: negatives count from the end and both
  // ends clamp to [0, rank].
  int64_t start = opset >= 15 ? node.getInt("start", 0) : 0;
  int64_t end = opset >= 15 && node.has("end") ? node.getInt("end", rank) : rank;
  auto clamp = [rank](int64_t v) {
    if (v < 0) v += rank;
    return std::min(std::max<int64_t>(v, 0), rank);
  };
  start = clamp(start);
  end = clamp(end);
  return {start, std::max(start, end)};
}

KILN_REGISTER_SCHEMA(Reshape, (OpSchema{"", "Reshape", 1, inferReshape}));
KILN_REGISTER_SCHEMA(Reshape, (OpSchema{"", "Reshape", 5, inferReshape}));    // shape attr -> input
KILN_REGISTER_SCHEMA(Reshape, (OpSchema{"", "Reshape", 14, inferReshape}));   // allowzero
KILN_REGISTER_SCHEMA(Flatten, (OpSchema{"", "Flatten", 1, inferFlatten}));
KILN_REGISTER_SCHEMA(Flatten, (OpSchema{"", "Flatten", 11, inferFlatten}));   // negative axis
KILN_REGISTER_SCHEMA(Squeeze, (OpSchema{"", "Squeeze", 1, inferSqueeze}));
KILN_REGISTER_SCHEMA(Squeeze, (OpSchema{"", "Squeeze", 11, inferSqueeze}));   // negative axes
KILN_REGISTER_SCHEMA(Squeeze, (OpSchema{"", "Squeeze", 13, inferSqueeze}));   // axes attr -> input
KILN_REGISTER_SCHEMA(Unsqueeze, (OpSchema{"", "Unsqueeze", 1, inferUnsqueeze}));
KILN_REGISTER_SCHEMA(Unsqueeze, (OpSchema{"", "Unsqueeze", 11, inferUnsqueeze}));
KILN_REGISTER_SCHEMA(Unsqueeze, (OpSchema{"", "Unsqueeze", 13, inferUnsqueeze}));
KILN_REGISTER_SCHEMA(Shape, (OpSchema{"", "Shape", 1, inferShape}));
KILN_REGISTER_SCHEMA(Shape, (OpSchema{"", "Shape", 15, inferShape}));         // start/end
KILN_REGISTER_SCHEMA(Size, (OpSchema{"", "Size", 1, inferSize}));
KILN_REGISTER_SCHEMA(Identity, (OpSchema{"", "Identity", 1, inferIdentity}));
KILN_REGISTER_SCHEMA(Expand, (OpSchema{"", "Expand", 8, inferExpand}));

}  // namespace kiln
