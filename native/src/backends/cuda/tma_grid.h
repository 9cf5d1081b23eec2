// The TMA tiles' M tiles and tensor-map geometry (convWgmmaInt8Tma in wgmma_conv.cu), in plain C++
// so that the CPU tests can replay it (tests/tma_grid_test.cc): which output pixels M tile t covers,
// and where each pixel of its A, Y and Z boxes lies in memory; and the TMA convolution tiles'
// im2col bounding box and filter corners (convWgmmaInt8TmaConv; at the end).
//
// Stride 1: A = X as [M pixels][C], Y and Z as [M][K]; tile t is pixels 64t .. 64t + 63 (2-D maps,
// boxes of 64 pixels). Stride 2 (a 1x1 over an even height): A, Y and Z as [rows][columns][channels]
// of the output grid, rows the image-major output rows (image * OH + y) and columns x; A's pixel
// (row, x) is input pixel (image, 2y, 2x), which over an even height is two input rows of W pixels
// per output row, one stride for (image, y) together. A box is 64 pixels of whole output-row pieces:
// `columns`, a power of two from 8 covering the output width up to 64, by 64 / columns rows
// (7 -> 8 x 8, 14 -> 16 x 4, 28 -> 32 x 2); TMA zero-fills the columns past a row's end and clips
// them from the stores. Box element (r, x) is row r * columns + x of the tile's 64.
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#define KILN_TMA_HD __host__ __device__ __forceinline__
#else
#define KILN_TMA_HD inline
#endif

namespace kiln::cuda {

// A box is `columns` x `rows` pixels (64 x 1 at stride 1, whose maps have no row dimension).
struct TmaGrid {
  int mTiles, strided, columnTiles, columns, rows;
  // Tile t's first column and row (the box's coordinates 1 and 2).
  KILN_TMA_HD int column(int t) const { return (t % columnTiles) * columns; }
  KILN_TMA_HD int row(int t) const { return (t / columnTiles) * rows; }
};

// The M tiles of a layer of m output pixels, ow to an output row, at stride 1 or 2.
inline TmaGrid planTmaGrid(int64_t m, int64_t ow, int stride) {
  TmaGrid g{};
  g.strided = stride != 1;
  // Stride 1: one row of m columns.
  const int64_t columns = g.strided ? ow : m, rows = g.strided ? m / ow : 1;
  g.columns = 64;
  if (g.strided) {
    g.columns = 8;
    while (g.columns < ow && g.columns < 64) g.columns *= 2;
  }
  g.rows = 64 / g.columns;
  g.columnTiles = int((columns + g.columns - 1) / g.columns);
  g.mTiles = g.columnTiles * int((rows + g.rows - 1) / g.rows);
  return g;
}

// A tensor map's extents (innermost, contiguous bytes first) and its outer dimensions' byte strides.
struct TmaMapShape {
  int rank;
  uint64_t dims[3], strides[2];
};
// A over `channels` input channels of an input `w` pixels wide.
inline TmaMapShape tmaActivationShape(const TmaGrid& g, int64_t m, int64_t ow, int64_t w, int64_t channels) {
  const uint64_t c = uint64_t(channels);
  if (!g.strided) return {2, {c, uint64_t(m), 0}, {c, 0}};
  return {3, {c, uint64_t(ow), uint64_t(m / ow)}, {2 * c, 2 * uint64_t(w) * c}};
}
// Y and Z over k output channels.
inline TmaMapShape tmaOutputShape(const TmaGrid& g, int64_t m, int64_t ow, int64_t k) {
  const uint64_t kk = uint64_t(k);
  if (!g.strided) return {2, {kk, uint64_t(m), 0}, {kk, 0}};
  return {3, {kk, uint64_t(ow), uint64_t(m / ow)}, {kk, uint64_t(ow) * kk}};
}

// The TMA convolution tiles' im2col view of X (convWgmmaInt8TmaConv): X as [N, H, W, C] whose
// bounding box (in W, then H) is the filter corners of the output grid, the first at -pad, the
// last at -pad + (out - 1) * stride, walked at the stride: TMA puts a box's j-th pixel at the j-th
// corner on from the one the load names, row after row, image after image (past the last image:
// zero-filled), and reads it at corner + the tap's offsets (s * dilation, r * dilation).
struct Im2colBox {
  int lower[2], upper[2];  // W, then H; the upper corners relative to the last pixel (W - 1, H - 1)
};
inline Im2colBox planIm2colBox(int h, int w, int oh, int ow, int strideH, int strideW, int padH, int padW) {
  return {{-padW, -padH}, {-padW + (ow - 1) * strideW - (w - 1), -padH + (oh - 1) * strideH - (h - 1)}};
}
// The filter corner of output pixel m (a tile's first, whose coordinates the load names).
struct Im2colCorner {
  int image, h, w;
};
KILN_TMA_HD Im2colCorner im2colCorner(int m, int oh, int ow, int strideH, int strideW, int padH, int padW) {
  const int pixels = oh * ow, y = (m % pixels) / ow, x = m % ow;
  return {m / pixels, y * strideH - padH, x * strideW - padW};
}

}  // namespace kiln::cuda
