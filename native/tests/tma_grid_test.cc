// The TMA tiles' M tiles and tensor-map geometry (backends/cuda/tma_grid.h) replayed on the CPU:
// every pixel of every tile's 64-pixel box is placed as TMA places it (its coordinates from the
// tile's, the boxes clipped at the maps' extents) and addressed through the maps' strides. Each
// output pixel must be covered by exactly one box element, which must read that pixel's input
// (stride 2: pixel (image, 2y, 2x)) and write its output. kiln_cuda_tests runs the kernel itself.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "backends/cuda/tma_grid.h"
#include "test.h"

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
