// Micro-benchmark for the SGEMM engine: GFLOP/s for square shapes and the GEMMs inside ResNet-50
// (conv as GEMM: M = out channels, N = output pixels, K = in channels * kernel area, weights
// pre-packed as A), MobileNetV2 pointwise convs and BERT-base at seq 128 (weights pre-packed as B).
//
//   kiln_bench_gemm [--threads N] [--generic] [--filter substring] [--seconds S]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/gemm/kernels.h"
#include "backends/cpu/gemm/sgemm.h"
#include "core/thread_pool.h"

using namespace kiln;
using namespace kiln::cpu;

namespace {

struct Shape {
  const char* name;
  int64_t M, N, K;
  char prepacked;  // 'A', 'B', 'X' (both: the micro-kernel alone) or 0
};

const Shape kShapes[] = {
    {"square 256", 256, 256, 256, 0},
    {"square 512", 512, 512, 512, 0},
    {"square 1024", 1024, 1024, 1024, 0},
    {"resnet50 conv1 7x7/2 (im2col)", 64, 12544, 147, 'A'},
    {"resnet50 res2 1x1 64->64", 64, 3136, 64, 'A'},
    {"resnet50 res2 3x3 64->64", 64, 3136, 576, 'A'},
    {"resnet50 res2 1x1 64->256", 256, 3136, 64, 'A'},
    {"resnet50 res2 1x1 256->64", 64, 3136, 256, 'A'},
    {"resnet50 res3 3x3 128->128", 128, 784, 1152, 'A'},
    {"resnet50 res3 1x1 512->128", 128, 784, 512, 'A'},
    {"resnet50 res4 3x3 256->256", 256, 196, 2304, 'A'},
    {"resnet50 res4 1x1 1024->256", 256, 196, 1024, 'A'},
    {"resnet50 res5 3x3 512->512", 512, 49, 4608, 'A'},
    {"resnet50 res5 1x1 512->2048", 2048, 49, 512, 'A'},
    {"resnet50 fc 2048->1000", 1, 1000, 2048, 'B'},
    {"experiment 64x3136x576 both packed", 64, 3136, 576, 'X'},
    {"experiment 66x3136x576", 66, 3136, 576, 'A'},
    {"experiment 72x3136x576 both packed", 72, 3136, 576, 'X'},
    {"mobilenetv2 1x1 32->192 @56", 192, 3136, 32, 'A'},
    {"mobilenetv2 1x1 576->96 @14", 96, 196, 576, 'A'},
    {"bert qkv 128x768x2304", 128, 2304, 768, 'B'},
    {"bert attn-out 128x768x768", 128, 768, 768, 'B'},
    {"bert ffn1 128x3072x768", 128, 3072, 768, 'B'},
    {"bert ffn2 128x768x3072", 128, 768, 3072, 'B'},
};

// CPU seconds used by the whole process (all threads). On a shared machine wall time mostly
// measures the neighbours; FLOPs per CPU-second still shows how good the kernels are.
double cpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec * 1e-6;
}

std::vector<float> randomVector(size_t n) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  bool generic = false;
  double seconds = 0.3;
  std::string filter;
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--generic")) generic = true;
    else if (!std::strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
    else if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = std::atof(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--generic] [--filter substring] [--seconds S]\n", argv[0]);
      return 2;
    }
  }
  ThreadPool pool(threads);
  const GemmKernelTable& kt = generic ? genericGemmKernels() : gemmKernels();
  std::printf("kernels %s, %d thread(s)\n", kt.name, pool.size());
  std::printf("%-34s %6s %6s %6s %9s %9s %12s\n", "shape", "M", "N", "K", "ms", "GFLOP/s", "GFLOP/cpu-s");
  for (const Shape& s : kShapes) {
    if (!filter.empty() && std::string(s.name).find(filter) == std::string::npos) continue;
    auto A = randomVector(size_t(s.M * s.K)), B = randomVector(size_t(s.K * s.N));
    std::vector<float> C(size_t(s.M * s.N));
    std::shared_ptr<PackedMatrix> packed;
    GemmArgs g;
    g.M = s.M, g.N = s.N, g.K = s.K;
    g.A = GemmOperand::rowMajor(A.data(), s.K);
    g.B = GemmOperand::rowMajor(B.data(), s.N);
    std::shared_ptr<PackedMatrix> packedB;
    if (s.prepacked == 'A' || s.prepacked == 'X') {
      packed = PackedMatrix::pack(PackedMatrix::Side::A, A.data(), s.M, s.K, s.K, 1);
      g.A = GemmOperand::prepacked(packed.get());
    }
    if (s.prepacked == 'B' || s.prepacked == 'X') {
      packedB = PackedMatrix::pack(PackedMatrix::Side::B, B.data(), s.K, s.N, s.N, 1);
      g.B = GemmOperand::prepacked(packedB.get());
    }
    g.C = C.data();
    g.ldc = s.N;
    sgemmWith(kt, g, &pool);  // warm-up: page in buffers, grow packing scratch
    int iters = 0;
    const double cpuStart = cpuSeconds();
    auto start = std::chrono::steady_clock::now();
    double elapsed = 0;
    do {
      sgemmWith(kt, g, &pool);
      iters++;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    } while (elapsed < seconds);
    const double cpu = cpuSeconds() - cpuStart;
    const double ms = elapsed * 1e3 / iters;
    const double gflop = 2.0 * s.M * s.N * s.K * 1e-9;
    std::printf("%-34s %6lld %6lld %6lld %9.3f %9.1f %12.1f\n", s.name, (long long)s.M, (long long)s.N,
                (long long)s.K, ms, gflop / (ms * 1e-3), gflop * iters / cpu);
  }
  return 0;
}
