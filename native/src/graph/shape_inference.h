// Build-time shape and type inference over a Graph, with constant propagation, plus the small
// reference evaluator built on the same schemas and CPU kernels.
#pragma once
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "graph/ir.h"

namespace kiln {

// Runs each node's schema (ops/schema.h) in topological order over symbolic shapes and fills every
// Value's dtype and shape. Graph inputs and initializers keep what they declare; for node outputs
// the inferred result wins over declared value_info, except that a dim inference cannot compute
// takes the declared size when there is one. Subgraphs (If/Loop/Scan bodies) are inferred first,
// with their captures typed from the enclosing scope, so the op's schema can read body types.
//
// Constant propagation: values known at build time (initializers, Constant outputs, values a schema
// computes such as Shape of a concrete input, and outputs of small deterministic nodes whose inputs
// are all known, evaluated with the "cpu" kernels) feed the schemas, so Reshape/Expand/Slice... get
// concrete shapes. Known values are not stored in the graph (that is constant folding's job).
//
// Nodes with no schema leave their outputs as declared (unknown when undeclared): the builder
// reports unsupported operators. Schema errors become InvalidModel naming the node.
void inferShapes(Graph& graph);

// Evaluates one node on concrete inputs (nullptr for omitted optional inputs): infers the concrete
// output shapes with the schema, allocates the outputs, creates the "cpu" kernel and runs it on
// ThreadPool::global(). Returns one tensor per node output (an empty Tensor for omitted outputs).
// Throws UnsupportedOp when there is no schema or kernel, and the schema's/kernel's errors.
std::vector<Tensor> evaluateNode(const Graph& graph, const Node& node, const std::vector<const Tensor*>& inputs);

// Resolves a name visible where a node runs (its graph's values, then enclosing scopes) to a
// tensor, or nullptr. Kernels of If/Loop/Scan hand it to the bodies they run.
using ScopeResolver = std::function<const Tensor*(const std::string&)>;
// evaluateNode for a node whose subgraphs read values of its graph or enclosing graphs.
std::vector<Tensor> evaluateNodeIn(const Graph& graph, const Node& node, const std::vector<const Tensor*>& inputs,
                                   const ScopeResolver& scope);

// A simple reference interpreter: checks the named inputs against the graph's inputs (names,
// dtypes, ranks and known dims), then evaluates node by node with evaluateNode (subgraphs of
// If/Loop/Scan run through the same interpreter). Returns the graph outputs in order, as tensors
// that own their memory. For tests and passes before the real runtime; not fast.
std::vector<Tensor> interpretGraph(const Graph& graph, const std::vector<std::pair<std::string, Tensor>>& inputs);

}  // namespace kiln
