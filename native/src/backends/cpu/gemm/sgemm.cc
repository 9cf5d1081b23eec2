// The SGEMM driver: packing, cache blocking, the M/N task split across threads and the epilogue.
// The per-ISA inner loops live in generic_kernels.cc and sgemm_avx2.cc.
#include "backends/cpu/gemm/sgemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "backends/cpu/gemm/kernels.h"
#include "core/error.h"

namespace kiln::cpu {
namespace {

constexpr int64_t MR = kGemmMR, NR = kGemmNR, KC = kGemmKC, MC = kGemmMC, NC = kGemmNC;
static_assert(MC % MR == 0 && NC % NR == 0, "block sizes must be whole panels");

int64_t roundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Per-thread packing scratch, grown on demand and reused across calls (a few hundred KB to ~2 MB
// per thread, bounded by the block sizes, so it is not part of any kernel's workspace).
struct ScratchBuffer {
  float* data = nullptr;
  size_t capacity = 0;  // floats
  ~ScratchBuffer() { std::free(data); }
  float* get(size_t floats) {
    if (floats > capacity) {
      std::free(data);
      size_t bytes = roundUp(static_cast<int64_t>(floats * sizeof(float)), 64);
      data = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!data) fail(ErrorCode::OutOfMemory, "out of memory for GEMM packing buffers");
      capacity = floats;
    }
    return data;
  }
};
thread_local ScratchBuffer tPackA, tPackB;

// One MR-row panel of A for a kc-deep slice: out[k*MR + r] = A(i0 + r, k0 + k), rows >= `rows`
// zero-filled so the micro-kernel can always run full panels.
void packAPanel(const float* data, int64_t rs, int64_t cs, int64_t i0, int64_t rows, int64_t k0,
                int64_t kc, float* out) {
  const float* base = data + i0 * rs + k0 * cs;
  if (rows < MR) std::memset(out, 0, sizeof(float) * MR * kc);
  if (cs == 1) {
    for (int64_t r = 0; r < rows; r++) {
      const float* src = base + r * rs;
      for (int64_t k = 0; k < kc; k++) out[k * MR + r] = src[k];
    }
  } else if (rs == 1) {
    for (int64_t k = 0; k < kc; k++) {
      const float* src = base + k * cs;
      for (int64_t r = 0; r < rows; r++) out[k * MR + r] = src[r];
    }
  } else {
    for (int64_t k = 0; k < kc; k++)
      for (int64_t r = 0; r < rows; r++) out[k * MR + r] = base[r * rs + k * cs];
  }
}

// One NR-column panel of B: out[k*NR + j] = B(k0 + k, j0 + j), zero-filled past `cols`.
void packBPanel(const float* data, int64_t rs, int64_t cs, int64_t k0, int64_t kc, int64_t j0,
                int64_t cols, float* out) {
  const float* base = data + k0 * rs + j0 * cs;
  if (cs == 1) {
    if (cols == NR) {
      for (int64_t k = 0; k < kc; k++) std::memcpy(out + k * NR, base + k * rs, sizeof(float) * NR);
    } else {
      for (int64_t k = 0; k < kc; k++) {
        std::memcpy(out + k * NR, base + k * rs, sizeof(float) * cols);
        std::memset(out + k * NR + cols, 0, sizeof(float) * (NR - cols));
      }
    }
    return;
  }
  if (cols < NR) std::memset(out, 0, sizeof(float) * NR * kc);
  if (rs == 1) {
    for (int64_t j = 0; j < cols; j++) {
      const float* src = base + j * cs;
      for (int64_t k = 0; k < kc; k++) out[k * NR + j] = src[k];
    }
  } else {
    for (int64_t k = 0; k < kc; k++)
      for (int64_t j = 0; j < cols; j++) out[k * NR + j] = base[k * rs + j * cs];
  }
}

// Packs panels [w0, w0 + width) of a kc slice (side A: rows of A; side B: columns of B).
void packSlice(PackedMatrix::Side side, const float* data, int64_t rs, int64_t cs, int64_t w0,
               int64_t width, int64_t k0, int64_t kc, float* out) {
  const int64_t panel = side == PackedMatrix::Side::A ? MR : NR;
  for (int64_t w = 0; w < width; w += panel) {
    int64_t n = std::min(panel, width - w);
    float* dst = out + (w / panel) * kc * panel;
    if (side == PackedMatrix::Side::A) {
      packAPanel(data, rs, cs, w0 + w, n, k0, kc, dst);
    } else {
      packBPanel(data, rs, cs, k0, kc, w0 + w, n, dst);
    }
  }
}

// Applies the epilogue to the mr x nr tile at (i0, j0) of C, right after its last K slice.
void applyEpilogueTile(const GemmKernelTable& kt, const GemmArgs& g, int64_t i0, int64_t j0, int mr, int nr) {
  const GemmEpilogue& ep = g.epilogue;
  for (int r = 0; r < mr; r++) {
    const int64_t i = i0 + r;
    float* c = g.C + i * g.ldc + j0;
    const float rowBias = ep.rowBias ? ep.rowBias[i] : 0.f;
    const float* colBias = ep.colBias ? ep.colBias + j0 : nullptr;
    if (ep.residual && ep.residualColStride != 1) {
      // A strided (e.g. broadcast) residual: add it here, then the contiguous path does the rest.
      const float* res = ep.residual + i * ep.residualRowStride + j0 * ep.residualColStride;
      for (int j = 0; j < nr; j++) c[j] += ep.residualScale * res[j * ep.residualColStride];
      kt.epilogueRow(c, nr, rowBias, colBias, nullptr, 1.f, ep.activation);
    } else {
      const float* res = ep.residual ? ep.residual + i * ep.residualRowStride + j0 : nullptr;
      kt.epilogueRow(c, nr, rowBias, colBias, res, ep.residualScale, ep.activation);
    }
  }
}

struct Task {
  int64_t m0, m1, n0, n1;
};

// Rows of A up to which a task packs B one micro-panel at a time, right before using it, instead
// of packing a whole KC x NC slice first: with so few rows a packed slice is reused by only one
// MC block, so writing it out and reading it back is pure memory traffic (for a 64-row conv GEMM
// it cost about as much as the arithmetic). The A block (<= this many rows x KC) stays in L2.
constexpr int64_t kPanelPackMaxRows = 384;

// bPanel2: the next B panel (columns j + NR..) when the kernel table has microWide, else null; nr
// then counts the columns of both.
void microTiles(const GemmKernelTable& kt, const GemmArgs& g, const float* aSlice, const float* bPanel, int64_t kc,
                int64_t i0, int64_t rows, int64_t j, int nr, float cScale, bool epilogue,
                const float* bPanel2 = nullptr) {
  // A contiguous residual (or none) goes through the micro-kernel's in-register epilogue; a
  // strided one (broadcast views) through the separate tile pass.
  const GemmEpilogue& e = g.epilogue;
  const bool inRegisters = epilogue && (!e.residual || e.residualColStride == 1);
  TileEpilogue tile;
  if (inRegisters) {
    tile.colBias = e.colBias ? e.colBias + j : nullptr;
    tile.residualLd = e.residualRowStride;
    tile.residualScale = e.residualScale;
    tile.act = e.activation;
  }
  for (int64_t ir = 0; ir < rows; ir += MR) {
    const int mr = static_cast<int>(std::min(MR, rows - ir));
    const int64_t i = i0 + ir;
    float* c = g.C + i * g.ldc + j;
    if (inRegisters) {
      tile.rowBias = e.rowBias ? e.rowBias + i : nullptr;
      tile.residual = e.residual ? e.residual + i * e.residualRowStride + j : nullptr;
    }
    if (bPanel2) {
      kt.microWide(kc, aSlice + (ir / MR) * kc * MR, bPanel, bPanel2, c, g.ldc, mr, nr, g.alpha, cScale,
                   inRegisters ? &tile : nullptr);
    } else {
      kt.micro(kc, aSlice + (ir / MR) * kc * MR, bPanel, c, g.ldc, mr, nr, g.alpha, cScale, inRegisters ? &tile : nullptr);
    }
    if (epilogue && !inRegisters) applyEpilogueTile(kt, g, i, j, mr, nr);
  }
}

// Runs the BLIS loop nest over one C tile [m0,m1) x [n0,n1): NC columns of B, then KC-deep slices
// (B slice packed once, kept in L2/L3), then MC rows of A (packed, kept in L2), then the micro-tiles
// with the B micro-panel in L1. Few rows: B is packed panel by panel instead (see above).
void runTask(const GemmKernelTable& kt, const GemmArgs& g, const Task& t) {
  const PackedMatrix* pa = g.A.packed;
  const PackedMatrix* pb = g.B.packed;
  const bool hasEpilogue = !g.epilogue.empty();
  const int64_t taskRows = t.m1 - t.m0;
  const bool panelPack = !pb && taskRows <= kPanelPackMaxRows;
  const int64_t mcMax = panelPack ? roundUp(taskRows, MR) : MC;
  float* bufA = pa ? nullptr : tPackA.get(mcMax * KC);
  const bool wide = kt.microWide != nullptr;
  float* bufB = pb ? nullptr : tPackB.get(panelPack ? 2 * KC * NR : KC * roundUp(std::min(NC, t.n1 - t.n0), NR));
  for (int64_t jc = t.n0; jc < t.n1; jc += NC) {
    const int64_t nc = std::min(NC, t.n1 - jc);
    for (int64_t pc = 0; pc < g.K; pc += KC) {
      const int64_t kc = std::min(KC, g.K - pc);
      const bool first = pc == 0;
      const bool last = pc + kc >= g.K;
      const float cScale = first ? g.beta : 1.f;
      if (panelPack) {
        const float* aSlice = bufA;
        if (pa) aSlice = pa->slice(pc, t.m0);
        else packSlice(PackedMatrix::Side::A, g.A.data, g.A.rowStride, g.A.colStride, t.m0, taskRows, pc, kc, bufA);
        for (int64_t jr = 0; jr < nc;) {
          const int64_t nr = std::min(NR, nc - jr);
          packBPanel(g.B.data, g.B.rowStride, g.B.colStride, pc, kc, jc + jr, nr, bufB);
          if (wide && nc - jr > NR) {
            // Two panels per tile: the second one right after the first.
            const int64_t nr2 = std::min(NR, nc - jr - NR);
            packBPanel(g.B.data, g.B.rowStride, g.B.colStride, pc, kc, jc + jr + NR, nr2, bufB + kc * NR);
            microTiles(kt, g, aSlice, bufB, kc, t.m0, taskRows, jc + jr, int(NR + nr2), cScale, last && hasEpilogue,
                       bufB + kc * NR);
            jr += 2 * NR;
            continue;
          }
          microTiles(kt, g, aSlice, bufB, kc, t.m0, taskRows, jc + jr, int(nr), cScale, last && hasEpilogue);
          jr += NR;
        }
        continue;
      }
      const float* bSlice;
      if (pb) {
        bSlice = pb->slice(pc, jc);
      } else {
        packSlice(PackedMatrix::Side::B, g.B.data, g.B.rowStride, g.B.colStride, jc, nc, pc, kc, bufB);
        bSlice = bufB;
      }
      for (int64_t ic = t.m0; ic < t.m1; ic += MC) {
        const int64_t mc = std::min(MC, t.m1 - ic);
        const float* aSlice;
        if (pa) {
          aSlice = pa->slice(pc, ic);
        } else {
          packSlice(PackedMatrix::Side::A, g.A.data, g.A.rowStride, g.A.colStride, ic, mc, pc, kc, bufA);
          aSlice = bufA;
        }
        for (int64_t jr = 0; jr < nc;) {
          const float* b0 = bSlice + (jr / NR) * kc * NR;
          if (wide && nc - jr > NR) {
            // Panels of a slice are contiguous, kc * NR apart.
            const int nr = static_cast<int>(std::min(2 * NR, nc - jr));
            microTiles(kt, g, aSlice, b0, kc, ic, mc, jc + jr, nr, cScale, last && hasEpilogue, b0 + kc * NR);
            jr += 2 * NR;
            continue;
          }
          const int nr = static_cast<int>(std::min(NR, nc - jr));
          microTiles(kt, g, aSlice, b0, kc, ic, mc, jc + jr, nr, cScale, last && hasEpilogue);
          jr += NR;
        }
      }
    }
  }
}

// Chooses how many row chunks (tm) and column chunks (tn) to cut C into. The estimate charges each
// thread its share of tasks, each task its flops plus the operand traffic it causes, so e.g. a conv
// with packed weights prefers to split its (im2col) columns, and a BERT projection (packed weights,
// 128 rows) does not make every task stream all of the weights.
void planTasks(const GemmArgs& g, int threads, int64_t& mChunk, int64_t& nChunk) {
  const int64_t mPanels = (g.M + MR - 1) / MR, nPanels = (g.N + NR - 1) / NR;
  mChunk = mPanels * MR;
  nChunk = nPanels * NR;
  const double flops = 2.0 * g.M * g.N * g.K;
  // Below ~1 MFLOP a task costs less than waking the pool.
  if (threads <= 1 || flops < double(1 << 20)) return;
  const int64_t maxTasks = std::min<int64_t>(int64_t(threads) * 4, std::max<int64_t>(1, int64_t(flops / (1 << 19))));
  double best = -1;
  for (int64_t tm = 1; tm <= std::min(maxTasks, mPanels); tm++) {
    for (int64_t tn = 1; tm * tn <= maxTasks && tn <= nPanels; tn++) {
      const int64_t mc = (mPanels + tm - 1) / tm, nc = (nPanels + tn - 1) / tn;  // panels per chunk
      const int64_t tasks = ((mPanels + mc - 1) / mc) * ((nPanels + nc - 1) / nc);
      const double rows = double(std::min(mc * MR, g.M)), cols = double(std::min(nc * NR, g.N));
      // A is (re)read once per NC block of the task, B once per task: packing costs ~16 flops per
      // float, streaming an already packed operand from L3 ~4.
      const double aReads = rows * g.K * double((nc * NR + NC - 1) / NC), bReads = cols * g.K;
      const double operandCost = (g.A.packed ? 4.0 : 16.0) * aReads + (g.B.packed ? 4.0 : 16.0) * bReads;
      const double perTask = 2.0 * rows * cols * g.K + operandCost;
      const double cost = double((tasks + threads - 1) / threads) * perTask;
      if (best < 0 || cost < best) {
        best = cost;
        mChunk = mc * MR;
        nChunk = nc * NR;
      }
    }
  }
}

void checkOperand(const GemmOperand& op, PackedMatrix::Side side, int64_t rows, int64_t cols, const char* name) {
  if (op.packed) {
    KILN_CHECK(op.packed->side() == side && op.packed->rows() == rows && op.packed->cols() == cols,
               Internal, std::string("sgemm: pre-packed ") + name + " does not match the problem shape");
  } else {
    KILN_CHECK(op.data != nullptr || rows == 0 || cols == 0, Internal,
               std::string("sgemm: operand ") + name + " has no data");
  }
}

}  // namespace

std::shared_ptr<PackedMatrix> PackedMatrix::pack(Side side, const float* data, int64_t rows, int64_t cols,
                                                 int64_t rowStride, int64_t colStride) {
  KILN_CHECK(rows >= 0 && cols >= 0, Internal, "PackedMatrix::pack: negative size");
  auto m = std::make_shared<PackedMatrix>();
  m->side_ = side;
  m->rows_ = rows;
  m->cols_ = cols;
  const int64_t width = m->width(), depth = m->depth();
  m->paddedWidth_ = roundUp(width, side == Side::A ? MR : NR);
  const size_t bytes = roundUp(std::max<int64_t>(1, m->paddedWidth_ * depth) * int64_t(sizeof(float)), 64);
  float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (!p) fail(ErrorCode::OutOfMemory, "out of memory packing a " + std::to_string(rows) + "x" +
                                           std::to_string(cols) + " weight matrix");
  m->data_ = std::shared_ptr<float>(p, [](float* q) { std::free(q); });
  // Slice k0 holds its panels contiguously at k0 * paddedWidth (see slice()).
  for (int64_t k0 = 0; k0 < depth; k0 += KC) {
    const int64_t kc = std::min(KC, depth - k0);
    packSlice(side, data, rowStride, colStride, 0, width, k0, kc, p + k0 * m->paddedWidth_);
  }
  return m;
}

const float* PackedMatrix::slice(int64_t k0, int64_t w0) const {
  const int64_t panel = side_ == Side::A ? MR : NR;
  const int64_t kc = std::min(KC, depth() - k0);
  return data_.get() + k0 * paddedWidth_ + (w0 / panel) * kc * panel;
}

void sgemm(const GemmArgs& g, ThreadPool* pool) { sgemmWith(gemmKernels(), g, pool); }

void sgemmWith(const GemmKernelTable& kt, const GemmArgs& g, ThreadPool* pool) {
  KILN_CHECK(g.M >= 0 && g.N >= 0 && g.K >= 0, Internal, "sgemm: negative dimension");
  if (g.M == 0 || g.N == 0) return;
  KILN_CHECK(g.C != nullptr && g.ldc >= g.N, Internal, "sgemm: bad output matrix");
  checkOperand(g.A, PackedMatrix::Side::A, g.M, g.K, "A");
  checkOperand(g.B, PackedMatrix::Side::B, g.K, g.N, "B");
  if (g.K == 0) {
    // No products: C = beta * C, then the epilogue.
    for (int64_t i = 0; i < g.M; i++) {
      float* c = g.C + i * g.ldc;
      for (int64_t j = 0; j < g.N; j++) c[j] = g.beta == 0.f ? 0.f : g.beta * c[j];
    }
    if (!g.epilogue.empty()) {
      for (int64_t i = 0; i < g.M; i += MR)
        for (int64_t j = 0; j < g.N; j += NR)
          applyEpilogueTile(kt, g, i, j, int(std::min(MR, g.M - i)), int(std::min(NR, g.N - j)));
    }
    return;
  }
  int64_t mChunk, nChunk;
  planTasks(g, pool ? pool->size() : 1, mChunk, nChunk);
  const int64_t tm = (g.M + mChunk - 1) / mChunk, tn = (g.N + nChunk - 1) / nChunk;
  auto runRange = [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; t++) {
      const int64_t mi = t / tn, ni = t % tn;
      Task task{mi * mChunk, std::min(g.M, (mi + 1) * mChunk), ni * nChunk, std::min(g.N, (ni + 1) * nChunk)};
      runTask(kt, g, task);
    }
  };
  if (tm * tn == 1 || !pool) {
    runRange(0, tm * tn);
  } else {
    pool->parallelFor(tm * tn, 1, runRange);
  }
}

}  // namespace kiln::cpu
