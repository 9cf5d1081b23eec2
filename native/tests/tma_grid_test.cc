// The TMA tiles' M tiles and tensor-map geometry (backends/cuda/tma_grid.h) replayed on the CPU:
// every pixel of every tile's 64-pixel box is placed as TMA places it (its coordinates from the
// tile's, the boxes clipped at the maps' extents) and addressed through the maps' strides. Each
// output pixel must be covered by exactly one box element, which must read that pixel's input
// (stride 2: pixel (image, 2y, 2x)) and write its output. Then the TMA convolution tiles' im2col
// view: TMA's walk over the bounding box (as the PTX ISA describes im2col mode), started at each
// tile's first filter corner, must visit every output pixel's filter corner in order.
// kiln_cuda_tests runs the kernels themselves.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "backends/cuda/tma_grid.h"
#include "test.h"

using kiln::cuda::Im2colBox;
using kiln::cuda::Im2colCorner;
using kiln::cuda::planIm2colBox;
using kiln::cuda::planTmaGrid;
using kiln::cuda::TmaGrid;
using kiln::cuda::TmaMapShape;

namespace {

struct Layer {
  int64_t n, h, w, c, k;
  int stride;
  int64_t oh() const { return (h - 1) / stride + 1; }
  int64_t ow() const { return (w - 1) / stride + 1; }
};

// An empty string, or what went wrong first.
std::string replay(const Layer& layer) {
  const int64_t oh = layer.oh(), ow = layer.ow(), m = layer.n * oh * ow;
  const TmaGrid grid = planTmaGrid(m, ow, layer.stride);
  const TmaMapShape in = kiln::cuda::tmaActivationShape(grid, m, ow, layer.w, layer.c);
  const TmaMapShape out = kiln::cuda::tmaOutputShape(grid, m, ow, layer.k);
  if (in.rank != out.rank || in.rank != (layer.stride == 1 ? 2 : 3)) return "map ranks " + std::to_string(in.rank);
  if (grid.columns * grid.rows != 64) return "a box of " + std::to_string(grid.columns * grid.rows) + " pixels";
  for (const TmaMapShape& map : {in, out})
    for (int d = 0; d + 1 < map.rank; ++d)
      if (map.strides[d] % 16 != 0) return "a stride that is not a multiple of 16 bytes";
  std::vector<int> covered(size_t(m), 0);
  for (int t = 0; t < grid.mTiles; ++t) {
    for (int e = 0; e < 64; ++e) {
      // The element's coordinates in dimensions 1 and 2 (0 is the channels).
      const int64_t column = grid.column(t) + e % grid.columns, row = grid.row(t) + e / grid.columns;
      if (column >= int64_t(in.dims[1]) || (in.rank == 3 && row >= int64_t(in.dims[2]))) continue;  // clipped
      const int64_t pixel = grid.strided ? row * ow + column : column;
      if (pixel < 0 || pixel >= m) return "tile " + std::to_string(t) + " names pixel " + std::to_string(pixel);
      ++covered[size_t(pixel)];
      const int64_t image = pixel / (oh * ow), y = pixel / ow % oh, x = pixel % ow;
      const int64_t wantIn = ((image * layer.h + y * layer.stride) * layer.w + x * layer.stride) * layer.c;
      const int64_t gotIn = column * int64_t(in.strides[0]) + (in.rank == 3 ? row * int64_t(in.strides[1]) : 0);
      const int64_t gotOut = column * int64_t(out.strides[0]) + (out.rank == 3 ? row * int64_t(out.strides[1]) : 0);
      if (gotIn != wantIn)
        return "pixel " + std::to_string(pixel) + " reads byte " + std::to_string(gotIn) + ", want " + std::to_string(wantIn);
      if (gotOut != pixel * layer.k)
        return "pixel " + std::to_string(pixel) + " writes byte " + std::to_string(gotOut) + ", want " +
               std::to_string(pixel * layer.k);
    }
  }
  for (int64_t p = 0; p < m; ++p)
    if (covered[size_t(p)] != 1) return "pixel " + std::to_string(p) + " covered " + std::to_string(covered[size_t(p)]) + " times";
  return "";
}

void expectReplays(const Layer& layer) {
  const std::string failure = replay(layer);
  EXPECT_EQ(failure, std::string());
  if (!failure.empty())
    std::fprintf(stderr, "  %lldx%lldx%lldx%lld stride %d: %s\n", (long long)layer.n, (long long)layer.h, (long long)layer.w,
                 (long long)layer.c, layer.stride, failure.c_str());
}

// A square convolution over [n, h, w] pixels (the TMA convolution tiles' layers).
struct ConvLayer {
  int n, h, w, r, stride, pad, dil;
  int outH() const { return (h + 2 * pad - dil * (r - 1) - 1) / stride + 1; }
  int outW() const { return (w + 2 * pad - dil * (r - 1) - 1) / stride + 1; }
};

// An empty string, or what went wrong first. TMA's im2col walk: from the corner a load names, the
// next corner is `stride` on in W; past the box's upper W corner (relative to w - 1) it is the lower
// W corner of the next row (`stride` on in H); past the upper H corner, the first corner of the
// next image. Each of the 128 pixels of every tile must get its output pixel's filter corner, which
// a tap at offset (s, r) * dil turns into the input pixel the convolution reads (or the padding);
// pixels past the last image must fall past the tensor (zero-filled).
std::string replayIm2col(const ConvLayer& L) {
  const int oh = L.outH(), ow = L.outW(), m = L.n * oh * ow;
  const Im2colBox box = planIm2colBox(L.h, L.w, oh, ow, L.stride, L.stride, L.pad, L.pad);
  for (int d = 0; d < 2; ++d)
    if (box.lower[d] < -128 || box.lower[d] > 127 || box.upper[d] < -128 || box.upper[d] > 127)
      return "a corner outside a 4-D map's [-128, 127]";
  const int lastW = L.w - 1 + box.upper[0], lastH = L.h - 1 + box.upper[1];
  for (int m0 = 0; m0 < m; m0 += 128) {
    Im2colCorner at = kiln::cuda::im2colCorner(m0, oh, ow, L.stride, L.stride, L.pad, L.pad);
    for (int j = 0; j < 128; ++j) {
      const int pixel = m0 + j;
      if (pixel >= m) {
        if (at.image < L.n) return "pixel " + std::to_string(pixel) + " past the last is read from image " + std::to_string(at.image);
        break;
      }
      const int image = pixel / (oh * ow), y = pixel / ow % oh, x = pixel % ow;
      for (int r = 0; r < L.r; ++r)
        for (int s = 0; s < L.r; ++s) {
          const int wantH = y * L.stride - L.pad + r * L.dil, wantW = x * L.stride - L.pad + s * L.dil;
          const int gotH = at.h + r * L.dil, gotW = at.w + s * L.dil;
          if (at.image != image || gotH != wantH || gotW != wantW)
            return "pixel " + std::to_string(pixel) + " tap (" + std::to_string(r) + ", " + std::to_string(s) + ") reads (" +
                   std::to_string(at.image) + ", " + std::to_string(gotH) + ", " + std::to_string(gotW) + "), want (" +
                   std::to_string(image) + ", " + std::to_string(wantH) + ", " + std::to_string(wantW) + ")";
        }
      at.w += L.stride;
      if (at.w > lastW) {
        at.w = box.lower[0], at.h += L.stride;
        if (at.h > lastH) at.h = box.lower[1], ++at.image;
      }
    }
  }
  return "";
}

void expectIm2colReplays(const ConvLayer& layer) {
  const std::string failure = replayIm2col(layer);
  EXPECT_EQ(failure, std::string());
  if (!failure.empty())
    std::fprintf(stderr, "  %dx%dx%d r%d stride %d pad %d dil %d: %s\n", layer.n, layer.h, layer.w, layer.r, layer.stride,
                 layer.pad, layer.dil, failure.c_str());
}

}  // namespace

KILN_TEST(tma_grid, every_output_pixel_is_one_box_element_reading_its_input) {
  // ResNet-50's stride-2 downsamples (output widths 28, 14, 7: boxes 32 x 2, 16 x 4, 8 x 8).
  expectReplays({2, 56, 56, 256, 512, 2});
  expectReplays({3, 28, 28, 512, 1024, 2});
  expectReplays({5, 14, 14, 1024, 2048, 2});
  // An odd input width (output 8 from 15), widths at and past a box row (64, 65, 75: two boxes per
  // row, the second mostly clipped), and one output row per image.
  expectReplays({2, 28, 15, 64, 128, 2});
  expectReplays({1, 6, 128, 32, 48, 2});
  expectReplays({2, 4, 130, 16, 16, 2});
  expectReplays({1, 4, 150, 64, 64, 2});
  expectReplays({4, 2, 9, 16, 32, 2});
  // Stride 1: 64-pixel runs of the flat pixel rows, the last one partly clipped.
  expectReplays({5, 13, 15, 64, 320, 1});
  expectReplays({1, 8, 8, 16, 16, 1});
}

KILN_TEST(tma_grid, im2col_walk_gives_every_pixel_its_filter_corner) {
  // ResNet-50's 3x3s (stride 1 and 2) and 1x1s (stride 1 and 2).
  expectIm2colReplays({2, 56, 56, 3, 1, 1, 1});
  expectIm2colReplays({2, 56, 56, 3, 2, 1, 1});
  expectIm2colReplays({3, 28, 28, 3, 1, 1, 1});
  expectIm2colReplays({5, 14, 14, 3, 1, 1, 1});
  expectIm2colReplays({7, 7, 7, 3, 1, 1, 1});
  expectIm2colReplays({2, 56, 56, 1, 1, 0, 1});
  expectIm2colReplays({3, 28, 28, 1, 2, 0, 1});
  // The GPU test's stride-2 3x3 (16 x 15 -> 8 x 8), odd sizes, a 5x5, dilation, the RGB stem's 7x7
  // at stride 2 over an odd width, and unpadded 3x3s (the walk stops short of the far edge).
  expectIm2colReplays({4, 16, 15, 3, 2, 1, 1});
  expectIm2colReplays({3, 13, 11, 3, 1, 1, 1});
  expectIm2colReplays({2, 9, 10, 5, 1, 2, 1});
  expectIm2colReplays({2, 12, 13, 3, 1, 2, 2});
  expectIm2colReplays({1, 225, 225, 7, 2, 3, 1});
  expectIm2colReplays({3, 10, 9, 3, 1, 0, 1});
  expectIm2colReplays({2, 11, 12, 3, 2, 0, 1});
}
