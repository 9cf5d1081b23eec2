// The CPU backend's single-precision GEMM engine: C = alpha * A * B (+ beta * C), then a fused
// epilogue (row/column bias, scaled residual, activation) applied to each output tile while it is
// still in L1. Every matrix product in the CPU backend (MatMul, Gemm, Conv via im2col or directly,
// ConvTranspose, attention) goes through here.
//
// Design (BLIS-style): operands are packed into micro-panels (MR rows of A, NR columns of B, for a
// KC-deep slice of K), and a register-blocked micro-kernel (6x16 on AVX2+FMA, an auto-vectorised
// portable one otherwise) multiplies one A panel by one B panel. Constant operands (weights) can be
// packed once at kernel creation (PackedMatrix) so runs never repack them. Work is split over M/N
// tiles across the thread pool; each task owns its C tile for the whole K loop, so the epilogue
// runs exactly once per element after the last K slice.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "core/thread_pool.h"
#include "graph/fused_ops.h"

namespace kiln::cpu {

// An activation with its parameters (see graph/fused_ops.h for the meaning of each).
struct ActivationSpec {
  Activation kind = Activation::None;
  float alpha = 0.f;  // LeakyRelu alpha, Clip min, HardSigmoid alpha
  float beta = 0.f;   // Clip max, HardSigmoid beta
};

// Applied per output element after the product, in this order:
//   y = alpha*AB (+ beta*C_old) + rowBias[i] + colBias[j] + residualScale * R(i,j); y = act(y).
struct GemmEpilogue {
  const float* rowBias = nullptr;  // M values, one per output row (conv bias in NCHW)
  const float* colBias = nullptr;  // N values, one per output column (Gemm/MatMul bias)
  const float* residual = nullptr;  // R(i,j) = residual[i * residualRowStride + j * residualColStride]
  int64_t residualRowStride = 0;
  int64_t residualColStride = 1;
  float residualScale = 1.f;
  ActivationSpec activation;

  bool empty() const {
    return !rowBias && !colBias && !residual && activation.kind == Activation::None;
  }
};

// Register/cache blocking. MR x NR is the micro-tile; KC the depth of one packed slice; MC the rows
// of A packed per block (sized for L2), NC the columns of B packed per block (sized for L3).
constexpr int kGemmMR = 6;
constexpr int kGemmNR = 16;
constexpr int64_t kGemmKC = 256;
constexpr int64_t kGemmMC = 144;
constexpr int64_t kGemmNC = 2048;

// An operand packed once for repeated use (weights, at kernel creation): the A side (M x K, in
// MR-row panels) or the B side (K x N, in NR-column panels), KC-deep slices, zero-padded to whole
// panels, so runs never repack it.
class PackedMatrix {
 public:
  enum class Side { A, B };
  // Packs element (r, c) = data[r * rowStride + c * colStride] of a rows x cols matrix, which is
  // M x K for side A and K x N for side B.
  static std::shared_ptr<PackedMatrix> pack(Side side, const float* data, int64_t rows, int64_t cols,
                                            int64_t rowStride, int64_t colStride);

  Side side() const { return side_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t depth() const { return side_ == Side::A ? cols_ : rows_; }  // K
  int64_t width() const { return side_ == Side::A ? rows_ : cols_; }  // M or N
  size_t bytes() const { return static_cast<size_t>(paddedWidth_ * depth()) * sizeof(float); }
  // The first panel of the KC slice starting at depth k0 (multiple of kGemmKC), covering width
  // index w0 (multiple of the panel width). Panels of one slice are contiguous, kcLen*panel apart.
  const float* slice(int64_t k0, int64_t w0) const;

 private:
  Side side_ = Side::A;
  int64_t rows_ = 0, cols_ = 0, paddedWidth_ = 0;
  std::shared_ptr<float> data_;
};

// One GEMM operand: either a strided view, element (r, c) at data[r * rowStride + c * colStride]
// (a transposed matrix is just swapped strides), or a pre-packed matrix of the matching side.
struct GemmOperand {
  const float* data = nullptr;
  int64_t rowStride = 0;
  int64_t colStride = 1;
  const PackedMatrix* packed = nullptr;

  static GemmOperand rowMajor(const float* p, int64_t ld) { return GemmOperand{p, ld, 1, nullptr}; }
  static GemmOperand colMajor(const float* p, int64_t ld) { return GemmOperand{p, 1, ld, nullptr}; }
  static GemmOperand prepacked(const PackedMatrix* m) { return GemmOperand{nullptr, 0, 1, m}; }
};

struct GemmArgs {
  int64_t M = 0, N = 0, K = 0;
  float alpha = 1.f;
  GemmOperand A;  // M x K
  GemmOperand B;  // K x N
  float beta = 0.f;  // 0: C is write-only (never read, may hold garbage)
  float* C = nullptr;
  int64_t ldc = 0;  // row stride of C (column stride is 1)
  GemmEpilogue epilogue;
};

// Runs the GEMM, split across `pool` when the problem is big enough (nullptr: the calling thread
// only). Throws InvalidArgument on inconsistent arguments (a bug in the calling kernel).
void sgemm(const GemmArgs& args, ThreadPool* pool);

// Applies `act` to n contiguous floats in place (vectorised). Used by epilogues and fused kernels.
void applyActivation(float* x, int64_t n, const ActivationSpec& act);

// The tactic name for build reports, e.g. "avx2_fma_6x16" or "generic_6x16".
const char* sgemmTactic();

}  // namespace kiln::cpu
