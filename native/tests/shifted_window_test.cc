// The shifted-window INT8 convolution's index math (backends/cuda/shifted_window.h) replayed on the
// CPU: every tile's window is filled copy by copy as the kernel's cp.async loop does, every k32
// product reads its A rows from the window as a wgmma no-swizzle descriptor does (row i of an m64
// block at 16 * (i % 8) + 128 * (i / 8) bytes from its start, the second 16 bytes secondHalf() on),
// and each tile row's sums land on the output pixel outputPixel() names. The result must equal a
// direct convolution exactly, and every output pixel must be written once. This checks the grid,
// the shared zero rows and columns, stride 2's phases and the 16-channel two-taps product without a
// GPU; kiln_cuda_tests runs the kernel itself.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cuda/shifted_window.h"
#include "test.h"

using kiln::cuda::planShiftedWindow;
using kiln::cuda::ShiftedWindow;

namespace {

struct Layer {
  int n, h, w, c, k, r, s, stride, padTop, padLeft, padBottom, padRight;
  int oh() const { return (h + padTop + padBottom - r) / stride + 1; }
  int ow() const { return (w + padLeft + padRight - s) / stride + 1; }
};

uint32_t nextRandom(uint32_t& state) {
  state = state * 1664525u + 1013904223u;
  return state >> 8;
}

// Replays the kernel over `layer` with BM-row tiles and BK-byte k-steps; false if the plan refuses.
bool replayMatchesDirect(const Layer& layer, int bm, int bk, std::string& failure) {
  const int oh = layer.oh(), ow = layer.ow(), kPad = layer.r * layer.s * layer.c;
  ShiftedWindow win{};
  if (!planShiftedWindow(layer.n, layer.h, layer.w, layer.c, oh, ow, layer.r, layer.s, layer.stride, layer.stride,
                         layer.padTop, layer.padLeft, 1, 1, kPad, bm, bk, win))
    return false;
  uint32_t state = 12345u + uint32_t(layer.c * 7 + layer.r);
  std::vector<int8_t> x(size_t(layer.n) * layer.h * layer.w * layer.c), wt(size_t(layer.k) * kPad);
  for (int8_t& v : x) v = int8_t(int(nextRandom(state) % 255) - 127);
  for (int8_t& v : wt) v = int8_t(int(nextRandom(state) % 255) - 127);

  // The direct convolution: W rows are (r, s, c).
  std::vector<int32_t> want(size_t(layer.n) * oh * ow * layer.k, 0);
  for (int n = 0; n < layer.n; ++n)
    for (int y = 0; y < oh; ++y)
      for (int xo = 0; xo < ow; ++xo)
        for (int k = 0; k < layer.k; ++k) {
          int32_t sum = 0;
          for (int r = 0; r < layer.r; ++r)
            for (int s = 0; s < layer.s; ++s) {
              const int iy = y * layer.stride + r - layer.padTop, ix = xo * layer.stride + s - layer.padLeft;
              if (iy < 0 || iy >= layer.h || ix < 0 || ix >= layer.w) continue;
              for (int c = 0; c < layer.c; ++c)
                sum += int32_t(x[((size_t(n) * layer.h + iy) * layer.w + ix) * layer.c + c]) *
                       wt[size_t(k) * kPad + (r * layer.s + s) * layer.c + c];
            }
          want[((size_t(n) * oh + y) * ow + xo) * layer.k + k] = sum;
        }

  std::vector<int32_t> got(want.size(), 0);
  std::vector<int> writes(want.size() / layer.k, 0);
  std::vector<int8_t> window(size_t(win.windowBytes));
  for (int q0 = 0; q0 < win.rows; q0 += bm) {
    // Bytes no copy writes stay poisoned: a product that reads one shows up as a wrong sum.
    std::memset(window.data(), 0x55, window.size());
    for (int j = 0; j < win.copies(); ++j) {
      int at = 0;
      const int64_t from = win.copySource(q0, j, at);
      if (at < 0 || at + 16 > win.windowBytes) {
        failure = "copy " + std::to_string(j) + " lands outside the window";
        return true;
      }
      if (from >= 0)
        std::memcpy(&window[size_t(at)], &x[size_t(from)], 16);
      else
        std::memset(&window[size_t(at)], 0, 16);
    }
    for (int row = 0; row < bm; ++row) {
      const int pixel = win.outputPixel(q0 + row);
      if (pixel < 0) continue;
      if (size_t(pixel) >= writes.size()) {
        failure = "virtual row " + std::to_string(q0 + row) + " names output pixel " + std::to_string(pixel);
        return true;
      }
      // Row `row` of the tile is row row % 64 of m64 block row / 64, which starts at pixel 64 * block.
      const int block = row / 64, i = row % 64, rowAt = block * 64 * 16 + (i / 8) * 128 + (i % 8) * 16;
      for (int k = 0; k < layer.k; ++k) {
        int32_t sum = 0;
        for (int kk = 0; kk < kPad; kk += 32) {
          const int a = rowAt + win.tapOffset(kk);
          for (int half = 0; half < 2; ++half) {
            const int from = a + half * win.secondHalf();
            if (from < 0 || from + 16 > win.windowBytes) {
              failure = "k32 at K byte " + std::to_string(kk) + " reads outside the window";
              return true;
            }
            for (int e = 0; e < 16; ++e)
              sum += int32_t(window[size_t(from + e)]) * wt[size_t(k) * kPad + kk + half * 16 + e];
          }
        }
        got[size_t(pixel) * layer.k + k] = sum;
      }
      ++writes[size_t(pixel)];
    }
  }
  for (size_t p = 0; p < writes.size(); ++p)
    if (writes[p] != 1) {
      failure = "output pixel " + std::to_string(p) + " written " + std::to_string(writes[p]) + " times";
      return true;
    }
  for (size_t e = 0; e < want.size(); ++e)
    if (got[e] != want[e]) {
      failure = "output " + std::to_string(e) + ": " + std::to_string(got[e]) + ", want " + std::to_string(want[e]);
      return true;
    }
  return true;
}

void expectReplayMatches(const Layer& layer, int bm, int bk) {
  std::string failure;
  const bool planned = replayMatchesDirect(layer, bm, bk, failure);
  const std::string what = std::to_string(layer.r) + "x" + std::to_string(layer.s) + "/" + std::to_string(layer.stride) +
                           " over " + std::to_string(layer.c) + " on " + std::to_string(layer.h) + "x" +
                           std::to_string(layer.w) + ", BM " + std::to_string(bm) + ", BK " + std::to_string(bk);
  EXPECT_TRUE(planned);
  EXPECT_EQ(failure, std::string());
  if (!failure.empty()) std::fprintf(stderr, "  %s: %s\n", what.c_str(), failure.c_str());
}

}  // namespace

KILN_TEST(shifted_window, replay_matches_direct_convolution) {
  // 3x3 / pad 1 (ResNet's), a 7x7 map whose grid rows and images share zero padding, BM 128 and 256.
  expectReplayMatches({3, 9, 9, 64, 8, 3, 3, 1, 1, 1, 1, 1}, 128, 64);
  expectReplayMatches({2, 7, 7, 128, 8, 3, 3, 1, 1, 1, 1, 1}, 256, 128);
  expectReplayMatches({2, 7, 7, 128, 8, 3, 3, 1, 1, 1, 1, 1}, 128, 64);
  // No padding (taps reach the grid's far edge), a 5x5 / pad 2, asymmetric pads, a 1x1.
  expectReplayMatches({2, 8, 11, 64, 8, 3, 3, 1, 0, 0, 0, 0}, 128, 64);
  expectReplayMatches({2, 6, 5, 128, 8, 5, 5, 1, 2, 2, 2, 2}, 128, 128);
  expectReplayMatches({2, 6, 7, 32, 8, 4, 4, 1, 1, 2, 2, 1}, 128, 64);
  expectReplayMatches({3, 5, 6, 256, 8, 1, 1, 1, 0, 0, 0, 0}, 128, 128);
  // Stride 2: a 3x3 / pad 1 on even and odd maps (four phases) and a 1x1 (one phase).
  expectReplayMatches({2, 10, 10, 64, 8, 3, 3, 2, 1, 1, 1, 1}, 128, 64);
  expectReplayMatches({2, 9, 11, 64, 8, 3, 3, 2, 1, 1, 1, 1}, 256, 64);
  expectReplayMatches({3, 9, 9, 128, 8, 1, 1, 2, 0, 0, 0, 0}, 128, 128);
  // The space-to-depth stem's shape: 4x4 over 16 channels, two taps per k32 product.
  expectReplayMatches({2, 13, 12, 16, 8, 4, 4, 1, 0, 0, 0, 0}, 128, 64);
}

KILN_TEST(shifted_window, plan_refuses_what_the_kernel_does_not_take) {
  ShiftedWindow win{};
  // Channels not a power of two, dilation, stride 3, 16 channels with an odd filter row, padded K.
  EXPECT_TRUE(!planShiftedWindow(1, 8, 8, 48, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 432, 128, 64, win));
  EXPECT_TRUE(!planShiftedWindow(1, 8, 8, 64, 6, 6, 3, 3, 1, 1, 1, 1, 2, 2, 576, 128, 64, win));
  EXPECT_TRUE(!planShiftedWindow(1, 9, 9, 64, 3, 3, 3, 3, 3, 3, 0, 0, 1, 1, 576, 128, 64, win));
  EXPECT_TRUE(!planShiftedWindow(1, 8, 8, 16, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 144, 128, 64, win));
  EXPECT_TRUE(!planShiftedWindow(1, 8, 8, 64, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 640, 128, 64, win));
  // K not whole k-steps: 3x3 over 64 is 576 bytes, 4.5 steps of 128.
  EXPECT_TRUE(!planShiftedWindow(1, 8, 8, 64, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 576, 128, 128, win));
  EXPECT_TRUE(planShiftedWindow(1, 8, 8, 64, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 576, 128, 64, win));
}
