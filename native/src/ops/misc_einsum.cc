// Einsum's equation parser and schema.
#include "ops/misc_einsum.h"

#include <algorithm>
#include <map>

#include "ops/tensor_util.h"

namespace kiln {

namespace {

// One operand's term: letters before and after its ellipsis (if any).
struct Term {
  std::vector<int> before, after;
  bool ellipsis = false;
};

Term parseTerm(const std::string& s, const std::function<void(const std::string&)>& onError) {
  Term t;
  for (size_t i = 0; i < s.size(); i++) {
    const char c = s[i];
    if (c == '.') {
      if (t.ellipsis || s.compare(i, 3, "...") != 0) onError("malformed ellipsis in term '" + s + "'");
      t.ellipsis = true;
      i += 2;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      (t.ellipsis ? t.after : t.before).push_back(c);
    } else {
      onError(std::string("invalid character '") + c + "' in term '" + s + "'");
    }
  }
  return t;
}

}  // namespace

EinsumSpec parseEinsum(const std::string& equationIn, const std::vector<int64_t>& ranks,
                       const std::function<void(const std::string&)>& onError) {
  std::string equation;
  for (char c : equationIn)
    if (c != ' ') equation += c;
  const size_t arrow = equation.find("->");
  const std::string lhs = equation.substr(0, arrow);
  std::vector<Term> terms;
  size_t start = 0;
  for (;;) {
    const size_t comma = lhs.find(',', start);
    terms.push_back(parseTerm(lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start), onError));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (terms.size() != ranks.size()) {
    onError("equation '" + equationIn + "' has " + std::to_string(terms.size()) + " terms for " +
            std::to_string(ranks.size()) + " inputs");
  }
  EinsumSpec spec;
  std::map<int, int> uses;
  for (size_t i = 0; i < terms.size(); i++) {
    const Term& t = terms[i];
    const int64_t letters = (int64_t)(t.before.size() + t.after.size());
    if (ranks[i] < letters || (!t.ellipsis && ranks[i] != letters)) {
      onError("term " + std::to_string(i) + " of '" + equationIn + "' does not match input rank " + std::to_string(ranks[i]));
    }
    if (t.ellipsis) spec.ellipsisRank = std::max(spec.ellipsisRank, (int)(ranks[i] - letters));
    for (int c : t.before) uses[c]++;
    for (int c : t.after) uses[c]++;
  }
  for (size_t i = 0; i < terms.size(); i++) {
    const Term& t = terms[i];
    std::vector<int> labels = t.before;
    const int e = t.ellipsis ? (int)(ranks[i] - (int64_t)(t.before.size() + t.after.size())) : 0;
    for (int j = 0; j < e; j++) labels.push_back(kEllipsisLabel + spec.ellipsisRank - e + j);
    labels.insert(labels.end(), t.after.begin(), t.after.end());
    spec.inputs.push_back(labels);
  }
  if (arrow == std::string::npos) {
    for (int j = 0; j < spec.ellipsisRank; j++) spec.output.push_back(kEllipsisLabel + j);
    for (auto& [c, n] : uses)
      if (n == 1) spec.output.push_back(c);
    return spec;
  }
  Term out = parseTerm(equation.substr(arrow + 2), onError);
  std::vector<int> labels = out.before;
  if (out.ellipsis) {
    for (int j = 0; j < spec.ellipsisRank; j++) labels.push_back(kEllipsisLabel + j);
  } else if (spec.ellipsisRank > 0) {
    // numpy sums ellipsis dims away when the output omits them; ONNX leaves it open. Follow numpy.
  }
  labels.insert(labels.end(), out.after.begin(), out.after.end());
  for (size_t i = 0; i < labels.size(); i++) {
    if (labels[i] < kEllipsisLabel && !uses.count(labels[i])) {
      onError(std::string("output label '") + (char)labels[i] + "' does not appear in any input");
    }
    if (std::count(labels.begin(), labels.end(), labels[i]) > 1) {
      onError("output of '" + equationIn + "' repeats a label");
    }
  }
  spec.output = labels;
  return spec;
}

namespace {

void inferEinsum(InferContext& ctx) {
  if (ctx.numInputs() == 0) ctx.error("Einsum needs at least one input");
  if (!ctx.node.has("equation")) ctx.error("attribute equation is required");
  DType type = ctx.inputTypes[0];
  std::vector<int64_t> ranks;
  for (size_t i = 0; i < ctx.numInputs(); i++) {
    expectInput(ctx, i, "Inputs");
    if (ctx.inputTypes[i] != type) ctx.error("all inputs must have the same type");
    if (!ctx.inputShapes[i].hasRank) {
      ctx.setOutput(0, type, SymShape::unknown());
      return;
    }
    ranks.push_back((int64_t)ctx.inputShapes[i].rank());
  }
  EinsumSpec spec = parseEinsum(ctx.node.getString("equation", ""), ranks, [&](const std::string& m) { ctx.error(m); });
  // Each label's size: a known size other than 1 wins; symbols agree or become fresh.
  std::map<int, std::vector<SymShape>> sizes;
  for (size_t i = 0; i < spec.inputs.size(); i++) {
    for (size_t d = 0; d < spec.inputs[i].size(); d++) {
      sizes[spec.inputs[i][d]].push_back(SymShape{true, {ctx.inputShapes[i].dims[d]}});
    }
  }
  SymShape out;
  out.hasRank = true;
  for (int label : spec.output) out.dims.push_back(ctx.broadcast(sizes[label]).dims[0]);
  ctx.setOutput(0, type, out);
}

}  // namespace

KILN_REGISTER_SCHEMA(Einsum, (OpSchema{"", "Einsum", 12, inferEinsum}));

}  // namespace kiln
