// The index math of the shifted-window INT8 convolution (convWgmmaInt8Shifted in wgmma_conv.cu),
// in plain C++ so that the CPU tests can replay it (tests/shifted_window_test.cc): where each 16-byte
// copy of a tile's input window comes from and lands, where each k32 product's A rows start in the
// window, and which output pixel each tile row is.
//
// The images are laid out as one grid of virtual rows. At stride 1 a grid row is wp = W +
// max(padLeft, padRight) pixels and an image hp = H + max(padTop, padBottom) grid rows, so that one
// zero column (row) serves as one row's (image's) right (bottom) padding and the next one's left
// (top) padding. Output pixel (n, y, x) is virtual row (n * hp + y) * wp + x, and tap (r, s) of
// virtual row q is virtual input pixel q + r * wp + s: the rows with x >= ow or y >= oh compute
// values nobody stores (for a 3x3 over 56x56, 3.5 %; 7x7, 30 %). At stride 2 the input splits into
// its even/odd row and column phases: tap (r, s) of output (y, x) is pixel (y + r / 2, x + s / 2)
// of phase (r % 2, s % 2), so within a phase the taps are shifts again (hp = oh + (R - 1) / 2, wp
// likewise, no shared padding).
//
// A tile of BM virtual rows from q0 copies the pixels [q0, q0 + pixels) of each phase into shared
// memory as planes of 16 channels with pixels 16 bytes apart ([phase][C / 16][pixels][16]), so
// that a wgmma core matrix (8 rows of 16 bytes, 16 bytes apart) is 8 consecutive pixels of one
// plane.
#pragma once
#include <algorithm>
#include <cstdint>

#ifdef __CUDACC__
#define KILN_SHIFTED_HD __host__ __device__ __forceinline__
#else
#define KILN_SHIFTED_HD inline
#endif

namespace kiln::cuda {

struct ShiftedWindow {
  // The layer: NHWC input [images, h, w, c], output [images, oh, ow, K], filter r x s, begin pads.
  int images, h, w, c, oh, ow, r, s, padH, padW;
  int hp, wp;       // the grid (above)
  int rows;         // virtual rows: images * hp * wp
  int stride;       // 1 or 2
  int pixels;       // pixels of one phase one tile reads: BM + (R - 1) / stride * wp + (S - 1) / stride
  int plane;        // bytes between the window's 16-channel planes
  int cbShift;      // log2(C / 16)
  int phaseCols;    // phases per phase row: min(stride, S) (phase rows: min(stride, R))
  int phaseBytes;   // bytes per phase: (C / 16) * plane
  int phasePixels;  // pixels of all phases: phases * pixels
  int windowBytes;  // phases * phaseBytes

  // Copy j (0 .. copies() - 1) of the tile at virtual row q0: 16-channel group j % (C / 16) of
  // window pixel j / (C / 16), phase by phase (a warp reads whole pixels). Sets `window` to its
  // byte in the window; returns its byte in the input, or -1 where it is padding (zero).
  KILN_SHIFTED_HD int copies() const { return phasePixels << cbShift; }
  KILN_SHIFTED_HD int64_t copySource(int q0, int j, int& window) const {
    const int phasePixel = j >> cbShift, cb = j & ((1 << cbShift) - 1);
    const int phase = phasePixel / pixels, pixel = phasePixel - phase * pixels;
    const int phaseRow = phase / phaseCols, phaseCol = phase - phaseRow * phaseCols;
    const int v = q0 + pixel, imagePixels = hp * wp, n = v / imagePixels, rest = v - n * imagePixels;
    const int iy = rest / wp * stride + phaseRow - padH, ix = rest % wp * stride + phaseCol - padW;
    window = phase * phaseBytes + cb * plane + pixel * 16;
    if (n >= images || iy < 0 || iy >= h || ix < 0 || ix >= w) return -1;
    return ((int64_t(n) * h + iy) * w + ix) * c + cb * 16;
  }
  // Byte offset in the window, from an m64 row block's first pixel, of the k32 product at K byte kk
  // (K is (r, s, c)): channels ch .. ch + 31 of one tap, or over 16 channels two taps side by side
  // in one filter row. The product's second 16 bytes per row are secondHalf() bytes on.
  KILN_SHIFTED_HD int tapOffset(int kk) const {
    const int tap = kk >> (cbShift + 4), ch = kk & (c - 1), rr = tap / s, ss = tap - rr * s;
    const int phase = (rr % stride) * phaseCols + ss % stride;
    return (rr / stride * wp + ss / stride) * 16 + phase * phaseBytes + (ch >> 4) * plane;
  }
  KILN_SHIFTED_HD int secondHalf() const { return c >= 32 ? plane : 16; }
  // The output pixel (row of Y) of virtual row q, or -1 for a padding row.
  KILN_SHIFTED_HD int outputPixel(int q) const {
    const int imagePixels = hp * wp, n = q / imagePixels, rest = q - n * imagePixels, y = rest / wp, x = rest % wp;
    return n < images && y < oh && x < ow ? (n * oh + y) * ow + x : -1;
  }
};

// The window of BM-row tiles over a layer, or false where the kernel does not take it: stride 1 or
// 2 and no dilation, C a power of two from 16 (16 only at stride 1 with filter rows of an even
// width: a k32 product then takes two taps of one row), K unpadded (kPad = R * S * C) and whole
// k-steps of bk bytes, every index within 32 bits.
inline bool planShiftedWindow(int64_t images, int64_t h, int64_t w, int64_t c, int64_t oh, int64_t ow, int r, int s,
                              int strideH, int strideW, int padH, int padW, int dilH, int dilW, int64_t kPad, int bm,
                              int bk, ShiftedWindow& win) {
  const int st = strideH;
  if ((st != 1 && st != 2) || strideW != st || dilH != 1 || dilW != 1) return false;
  if (c < 16 || (c & (c - 1)) != 0 || (c == 16 && (st != 1 || s % 2 != 0))) return false;
  if (kPad != int64_t(r) * s * c || kPad % bk != 0 || padH < 0 || padW < 0) return false;
  int64_t hp, wp;
  if (st == 1) {
    // The end pads the output size implies (stride 1: oh = H + padTop + padBottom - R + 1).
    const int64_t padBottom = oh + r - 1 - h - padH, padRight = ow + s - 1 - w - padW;
    if (padBottom < 0 || padRight < 0) return false;
    hp = h + std::max<int64_t>(padH, padBottom), wp = w + std::max<int64_t>(padW, padRight);
    if (oh > hp || ow > wp) return false;
  } else {
    hp = oh + (r - 1) / 2, wp = ow + (s - 1) / 2;
  }
  const int64_t rows = images * hp * wp, pixels = bm + (r - 1) / st * wp + (s - 1) / st;
  const int phases = std::min(st, r) * std::min(st, s);
  // Planes 16 bytes past a 128-byte boundary apart: a warp's copies of one pixel's groups land in
  // distinct banks.
  const int64_t plane = (pixels * 16 + 127) / 128 * 128 + 16, windowBytes = phases * (c / 16) * plane;
  if (rows + pixels >= (int64_t(1) << 31) || windowBytes >= (int64_t(1) << 31)) return false;
  win.images = int(images), win.h = int(h), win.w = int(w), win.c = int(c), win.oh = int(oh), win.ow = int(ow);
  win.r = r, win.s = s, win.padH = padH, win.padW = padW;
  win.hp = int(hp), win.wp = int(wp), win.rows = int(rows), win.stride = st, win.pixels = int(pixels);
  win.plane = int(plane);
  win.cbShift = 0;
  while ((16 << win.cbShift) < c) ++win.cbShift;
  win.phaseCols = std::min(st, s);
  win.phaseBytes = int(c / 16 * plane), win.phasePixels = int(phases * pixels), win.windowBytes = int(windowBytes);
  return true;
}

}  // namespace kiln::cuda
