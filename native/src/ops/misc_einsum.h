// Einsum equation parsing, shared by the schema and the kernels. Labels are letters (their ASCII
// codes); the dims an ellipsis stands for get labels kEllipsisLabel + j, right-aligned so that the
// ellipsis dims of every operand broadcast against each other.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kiln {

constexpr int kEllipsisLabel = 1000;

struct EinsumSpec {
  std::vector<std::vector<int>> inputs;  // per operand, one label per dim (repeats mean diagonals)
  std::vector<int> output;               // one label per output dim, no repeats
  int ellipsisRank = 0;
};

// Parses `equation` for operands of the given ranks. Without "->" the output is the ellipsis dims
// then every letter used exactly once, in ASCII order (numpy's implicit mode). onError must throw.
EinsumSpec parseEinsum(const std::string& equation, const std::vector<int64_t>& ranks,
                       const std::function<void(const std::string&)>& onError);

}  // namespace kiln
