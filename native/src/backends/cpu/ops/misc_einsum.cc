// CPU kernel of Einsum. Operands are brought to one label per dim (diagonals taken as strided
// views), labels nobody else needs are summed away early, and operands are contracted left to right:
// each pairwise contraction lays its operands out as [batch, M, K] x [batch, K, N] (batch: labels
// both keep; K: labels contracted here; M/N: labels of one side) and runs a batched matmul. A final
// reduction/permutation produces the output's label order. Size-1 dims broadcast (stride 0).
#include <algorithm>
#include <map>
#include <set>

#include "backends/cpu/ops/tensor_copy.h"
#include "backends/cpu/ops/tensor_numeric.h"
#include "ops/misc_einsum.h"
#include "ops/tensor_util.h"

namespace kiln::cpu {

namespace {

template <class C>
struct Operand {
  std::vector<int> labels;  // distinct
  Shape shape;
  std::vector<C> data;      // contiguous
};

// Copies the strided view (shape, strides) of src into a contiguous vector.
template <class C>
std::vector<C> gather(const C* src, const Shape& shape, const std::vector<int64_t>& strides) {
  std::vector<C> out((size_t)shapeNumel(shape));
  const size_t rank = shape.size();
  std::vector<int64_t> idx(rank, 0);
  int64_t off = 0;
  for (size_t i = 0; i < out.size(); i++) {
    out[i] = src[off];
    for (size_t d = rank; d-- > 0;) {
      off += strides[d];
      if (++idx[d] < shape[d]) break;
      off -= strides[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

// The operand viewed with dims in `order` (labels; a label the operand lacks, or has with size 1,
// gets stride 0 and the size from `sizes`).
template <class C>
std::vector<C> layout(const Operand<C>& a, const std::vector<int>& order, const std::map<int, int64_t>& sizes) {
  const std::vector<int64_t> strides = shapeStrides(a.shape);
  Shape shape;
  std::vector<int64_t> s;
  for (int label : order) {
    shape.push_back(sizes.at(label));
    auto it = std::find(a.labels.begin(), a.labels.end(), label);
    const size_t d = (size_t)(it - a.labels.begin());
    s.push_back(it == a.labels.end() || a.shape[d] == 1 ? 0 : strides[d]);
  }
  return gather(a.data.data(), shape, s);
}

// Sums `a` down to the labels in `keep` (in that order).
template <class C>
Operand<C> reduceTo(const Operand<C>& a, const std::vector<int>& keep, const std::map<int, int64_t>& sizes) {
  std::vector<int> order = keep;
  for (int l : a.labels)
    if (std::find(keep.begin(), keep.end(), l) == keep.end()) order.push_back(l);
  // Labels summed away use the operand's own size (1 stays 1: nothing to broadcast).
  std::map<int, int64_t> local = sizes;
  for (size_t d = 0; d < a.labels.size(); d++)
    if (std::find(keep.begin(), keep.end(), a.labels[d]) == keep.end()) local[a.labels[d]] = a.shape[d];
  std::vector<C> laid = layout(a, order, local);
  Operand<C> out;
  out.labels = keep;
  for (int l : keep) out.shape.push_back(sizes.at(l));
  const int64_t n = shapeNumel(out.shape), r = n == 0 ? 0 : (int64_t)laid.size() / n;
  out.data.assign((size_t)n, C(0));
  for (int64_t i = 0; i < n; i++) {
    C acc = 0;
    for (int64_t j = 0; j < r; j++) acc += laid[(size_t)(i * r + j)];
    out.data[(size_t)i] = acc;
  }
  return out;
}

template <class C>
Operand<C> contract(const Operand<C>& a, const Operand<C>& b, const std::set<int>& keep,
                    const std::map<int, int64_t>& sizes, ThreadPool& pool) {
  std::vector<int> batch, m, k, n;
  for (int l : a.labels) {
    const bool inB = std::find(b.labels.begin(), b.labels.end(), l) != b.labels.end();
    if (inB) (keep.count(l) ? batch : k).push_back(l);
    else m.push_back(l);
  }
  for (int l : b.labels)
    if (std::find(a.labels.begin(), a.labels.end(), l) == a.labels.end()) n.push_back(l);
  auto product = [&](const std::vector<int>& ls) {
    Shape dims;
    for (int l : ls) dims.push_back(sizes.at(l));
    return shapeNumel(dims);  // throws rather than overflowing
  };
  const int64_t B = product(batch), M = product(m), K = product(k), N = product(n);
  std::vector<int> orderA = batch, orderB = batch;
  orderA.insert(orderA.end(), m.begin(), m.end());
  orderA.insert(orderA.end(), k.begin(), k.end());
  orderB.insert(orderB.end(), k.begin(), k.end());
  orderB.insert(orderB.end(), n.begin(), n.end());
  const std::vector<C> am = layout(a, orderA, sizes), bm = layout(b, orderB, sizes);
  Operand<C> out;
  out.labels = batch;
  out.labels.insert(out.labels.end(), m.begin(), m.end());
  out.labels.insert(out.labels.end(), n.begin(), n.end());
  for (int l : out.labels) out.shape.push_back(sizes.at(l));
  out.data.assign((size_t)shapeNumel(out.shape), C(0));  // shapeNumel refuses absurd sizes
  if (out.data.empty()) return out;  // also keeps B * M below from overflowing
  pool.parallelFor(B * M, std::max<int64_t>(1, 8192 / std::max<int64_t>(K * N, 1)), [&](int64_t begin, int64_t end) {
    for (int64_t bi = begin; bi < end; bi++) {
      const int64_t batchIndex = bi / M;
      const C* arow = am.data() + bi * K;
      C* orow = out.data.data() + bi * N;
      const C* bmat = bm.data() + batchIndex * K * N;
      for (int64_t kk = 0; kk < K; kk++) {
        const C av = arow[kk];
        if (av == C(0)) continue;
        const C* brow = bmat + kk * N;
        for (int64_t j = 0; j < N; j++) orow[j] += av * brow[j];
      }
    }
  });
  return out;
}

template <class N>
void runEinsum(KernelContext& ctx, const EinsumSpec& spec, Tensor& out) {
  using S = typename N::Storage;
  using C = std::conditional_t<std::is_floating_point<S>::value || std::is_same<typename N::Compute, float>::value,
                               std::conditional_t<std::is_same<S, double>::value, double, float>, int64_t>;
  // Label sizes: equal, or 1 where broadcasting.
  std::map<int, int64_t> sizes;
  for (size_t i = 0; i < spec.inputs.size(); i++) {
    const Tensor& t = *ctx.inputs[i];
    for (size_t d = 0; d < spec.inputs[i].size(); d++) {
      int64_t& s = sizes.emplace(spec.inputs[i][d], 1).first->second;
      const int64_t v = t.shape[d];
      if (v != 1 && s != 1 && v != s) {
        nodeFail(ctx.node, ErrorCode::ShapeMismatch,
                 "label sizes disagree: input " + std::to_string(i) + " has shape " + shapeToString(t.shape));
      }
      if (v != 1) s = v;
    }
  }
  // Operands with one dim per distinct label: a repeated label is the diagonal (summed strides).
  std::vector<Operand<C>> ops;
  for (size_t i = 0; i < spec.inputs.size(); i++) {
    const Tensor& t = *ctx.inputs[i];
    const std::vector<int64_t> strides = shapeStrides(t.shape);
    Operand<C> op;
    std::vector<int64_t> viewStrides;
    for (size_t d = 0; d < spec.inputs[i].size(); d++) {
      const int label = spec.inputs[i][d];
      auto it = std::find(op.labels.begin(), op.labels.end(), label);
      if (it != op.labels.end()) {
        const size_t p = (size_t)(it - op.labels.begin());
        if (op.shape[p] != t.shape[d]) nodeFail(ctx.node, ErrorCode::ShapeMismatch, "diagonal dims differ in input " + std::to_string(i));
        viewStrides[p] += strides[d];
      } else {
        op.labels.push_back(label);
        op.shape.push_back(t.shape[d]);
        viewStrides.push_back(strides[d]);
      }
    }
    std::vector<C> loaded((size_t)t.numel());
    const S* src = t.ptr<S>();
    for (size_t e = 0; e < loaded.size(); e++) loaded[e] = (C)N::load(src[e]);
    op.data = shapeNumel(op.shape) == 0 ? std::vector<C>() : gather(loaded.data(), op.shape, viewStrides);
    ops.push_back(std::move(op));
  }
  const std::set<int> outputLabels(spec.output.begin(), spec.output.end());
  // Labels still needed after operand i: by the output or by a later operand.
  auto neededAfter = [&](size_t i) {
    std::set<int> need = outputLabels;
    for (size_t j = i + 1; j < ops.size(); j++) need.insert(ops[j].labels.begin(), ops[j].labels.end());
    return need;
  };
  // Sum away, up front, each operand's labels that appear nowhere else and not in the output.
  for (size_t i = 0; i < ops.size(); i++) {
    std::set<int> elsewhere = outputLabels;
    for (size_t j = 0; j < ops.size(); j++)
      if (j != i) elsewhere.insert(ops[j].labels.begin(), ops[j].labels.end());
    std::vector<int> keep;
    for (int l : ops[i].labels)
      if (elsewhere.count(l)) keep.push_back(l);
    if (keep.size() != ops[i].labels.size()) ops[i] = reduceTo(ops[i], keep, sizes);
  }
  Operand<C> acc = std::move(ops[0]);
  for (size_t i = 1; i < ops.size(); i++) {
    std::set<int> keep = neededAfter(i);
    acc = contract(acc, ops[i], keep, sizes, threadsOf(ctx));
  }
  Operand<C> result = reduceTo(acc, spec.output, sizes);
  KILN_CHECK(result.shape == out.shape, Internal,
             describeNode(ctx.node) + ": output allocated as " + shapeToString(out.shape) + ", computed " + shapeToString(result.shape));
  S* dst = out.ptr<S>();
  for (size_t e = 0; e < result.data.size(); e++) dst[e] = N::store((typename N::Compute)result.data[e]);
}

std::unique_ptr<Kernel> createEinsumKernel(const KernelCreateInfo& info) {
  const std::string equation = info.node.getString("equation", "");
  return makeKernel("einsum.batched_matmul", [equation](KernelContext& ctx) {
    std::vector<int64_t> ranks;
    for (size_t i = 0; i < ctx.inputs.size(); i++) ranks.push_back((int64_t)needInput(ctx, i, "Inputs").shape.size());
    const EinsumSpec spec = parseEinsum(equation, ranks, [&](const std::string& m) { nodeFail(ctx.node, ErrorCode::InvalidArgument, m); });
    Tensor& out = needOutput(ctx, 0);
    for (size_t i = 0; i < ctx.inputs.size(); i++) {
      if (ctx.inputs[i]->dtype != out.dtype) nodeFail(ctx.node, ErrorCode::InvalidArgument, "all inputs must have the same type");
    }
    visitNumeric(out.dtype, describeNode(ctx.node), [&](auto num) { runEinsum<decltype(num)>(ctx, spec, out); });
  });
}

}  // namespace

KILN_REGISTER_KERNEL(Einsum, (KernelDef{"cpu", "", "Einsum", 12, createEinsumKernel}));

}  // namespace kiln::cpu
