#include <atomic>

#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "test.h"

using namespace kiln;

KILN_TEST(core, half_round_trip) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.1e-5f, 5.96e-8f}) {
    EXPECT_NEAR(halfToFloat(floatToHalf(f)), f, std::fabs(f) * 1e-3 + 1e-8);
  }
  EXPECT_EQ(floatToHalf(1e6f), 0x7c00);  // overflow to +inf
}

KILN_TEST(core, numel_rejects_overflow) {
  EXPECT_THROWS_WITH(shapeNumel({int64_t(1) << 40, int64_t(1) << 40}), "too large");
  EXPECT_THROWS_WITH(shapeNumel({2, -1}), "negative dimension");
}

KILN_TEST(core, parallel_for_covers_range_once) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> hits(10000);
  for (int round = 0; round < 50; round++) {
    pool.parallelFor(10000, 7, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; i++) hits[i]++;
    });
  }
  for (auto& h : hits) EXPECT_EQ(h.load(), 50);
}
