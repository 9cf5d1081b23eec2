#include <random>

#include "core/error.h"
#include "plan/memory_planner.h"
#include "test.h"

using namespace kiln;

namespace {

PlannedTensor tensor(int32_t id, size_t bytes, int32_t first, int32_t last) {
  PlannedTensor t;
  t.id = id;
  t.bytes = bytes;
  t.firstUse = first;
  t.lastUse = last;
  return t;
}

PlannedTensor alias(int32_t id, size_t bytes, int32_t first, int32_t last, AliasKind kind, int32_t of) {
  PlannedTensor t = tensor(id, bytes, first, last);
  t.aliasKind = kind;
  t.aliasOf = of;
  return t;
}

// The most bytes alive at any one step, each tensor padded: no plan without aliasing can beat it.
size_t liveLowerBound(const std::vector<PlannedTensor>& ts, size_t alignment) {
  int32_t maxStep = 0;
  for (auto& t : ts) maxStep = std::max(maxStep, t.lastUse);
  size_t best = 0;
  for (int32_t s = 0; s <= maxStep; s++) {
    size_t live = 0;
    for (auto& t : ts) {
      if (t.firstUse <= s && s <= t.lastUse) live += (t.bytes + alignment - 1) / alignment * alignment;
    }
    best = std::max(best, live);
  }
  return best;
}

}  // namespace

KILN_TEST(planner, chain_reuses_dead_buffers) {
  // a -> b -> c -> d: each step reads the previous tensor and writes the next. Two buffers suffice.
  std::vector<PlannedTensor> ts = {tensor(0, 100, 0, 1), tensor(1, 100, 1, 2), tensor(2, 100, 2, 3),
                                   tensor(3, 100, 3, 4)};
  MemoryPlan plan = planMemory(ts);
  verifyMemoryPlan(ts, plan);
  EXPECT_EQ(plan.peakBytes, (size_t)256);
  EXPECT_EQ(plan.offsets[0], plan.offsets[2]);
  EXPECT_EQ(plan.offsets[1], plan.offsets[3]);
  for (int32_t s : plan.sharesWith) EXPECT_EQ(s, -1);
}

KILN_TEST(planner, exact_peak_with_mixed_sizes) {
  // Big 1000 B lives 0..2, small 64 B tensors around it; 3000 B at 3..4 reuses everything.
  std::vector<PlannedTensor> ts = {tensor(0, 1000, 0, 2), tensor(1, 64, 0, 1), tensor(2, 64, 1, 2),
                                   tensor(3, 3000, 3, 4), tensor(4, 10, 2, 3)};
  MemoryPlan plan = planMemory(ts);
  verifyMemoryPlan(ts, plan);
  // Step 3 holds 3008 (3000 padded) + 64 (the 10 B tensor padded) = 3072.
  EXPECT_EQ(plan.peakBytes, (size_t)3072);
  EXPECT_EQ(plan.peakBytes, liveLowerBound(ts, 64));
}

KILN_TEST(planner, best_fit_picks_the_smallest_gap) {
  // Largest first: p at 0, q at 2048, r at 3072, u at 3584. While t and x live (steps 5..9) only
  // q and u are alive, leaving a 2048 B hole at 0 and a 512 B hole at 3072. Best fit puts t in the
  // small hole (first fit would take offset 0) and x right after it, keeping the big hole whole.
  std::vector<PlannedTensor> ts = {
      tensor(0, 2048, 0, 1),  // p
      tensor(1, 1024, 0, 9),  // q
      tensor(2, 512, 0, 1),   // r
      tensor(3, 256, 0, 9),   // u
      tensor(4, 256, 5, 9),   // t
      tensor(5, 200, 5, 9),   // x
  };
  MemoryPlan plan = planMemory(ts);
  verifyMemoryPlan(ts, plan);
  EXPECT_EQ(plan.offsets[1], (size_t)2048);
  EXPECT_EQ(plan.offsets[3], (size_t)3584);
  EXPECT_EQ(plan.offsets[4], (size_t)3072);
  EXPECT_EQ(plan.offsets[5], (size_t)3328);
  EXPECT_EQ(plan.peakBytes, (size_t)3840);
}

KILN_TEST(planner, zero_byte_tensors_take_no_space) {
  std::vector<PlannedTensor> ts = {tensor(0, 0, 0, 5), tensor(1, 64, 0, 5), tensor(2, 0, 1, 2)};
  MemoryPlan plan = planMemory(ts);
  verifyMemoryPlan(ts, plan);
  EXPECT_EQ(plan.peakBytes, (size_t)64);
  EXPECT_EQ(planMemory({}).peakBytes, (size_t)0);
}

KILN_TEST(planner, view_shares_the_source_buffer) {
  // x (0..1) -> Reshape -> v (1..3): the view reuses x's bytes and keeps them alive until step 3.
  std::vector<PlannedTensor> ts = {tensor(0, 256, 0, 1), alias(1, 256, 1, 3, AliasKind::View, 0),
                                   tensor(2, 256, 1, 3)};
  MemoryPlan plan = planMemory(ts);
  verifyMemoryPlan(ts, plan);
  EXPECT_EQ(plan.sharesWith[1], 0);
  EXPECT_EQ(plan.offsets[1], plan.offsets[0]);
  EXPECT_EQ(plan.peakBytes, (size_t)512);
  // Without the view both would need their own buffer at step 1.
  ts[1].aliasKind = AliasKind::None;
  EXPECT_EQ(planMemory(ts).peakBytes, (size_t)768);
}

KILN_TEST(planner, view_keeps_source_alive_for_later_readers) {
  // x is still read at step 4 after its view was taken at step 1; nothing else may land on it.
  std::vector<PlannedTensor> ts = {tensor(0, 256, 0, 4), alias(1, 256, 1, 2, AliasKind::View, 0),
                                   tensor(2, 256, 3, 4)};
  MemoryPlan plan = planMemory(ts);
  verifyMemoryPlan(ts, plan);
  EXPECT_EQ(plan.sharesWith[1], 0);
  EXPECT_TRUE(plan.offsets[2] != plan.offsets[0]);
  EXPECT_EQ(plan.peakBytes, (size_t)512);
}

KILN_TEST(planner, view_larger_than_source_is_refused) {
  std::vector<PlannedTensor> ts = {tensor(0, 128, 0, 1), alias(1, 256, 1, 2, AliasKind::View, 0)};
  MemoryPlan plan = planMemory(ts);
  verifyMemoryPlan(ts, plan);
  EXPECT_EQ(plan.sharesWith[1], -1);
}

KILN_TEST(planner, in_place_granted_when_input_dies_there) {
  // x (0..1) -> Relu in place at step 1 -> y (1..2).
  std::vector<PlannedTensor> ts = {tensor(0, 256, 0, 1), alias(1, 256, 1, 2, AliasKind::InPlace, 0)};
  MemoryPlan plan = planMemory(ts);
  verifyMemoryPlan(ts, plan);
  EXPECT_EQ(plan.sharesWith[1], 0);
  EXPECT_EQ(plan.peakBytes, (size_t)256);
}

KILN_TEST(planner, in_place_refused_when_input_is_read_later) {
  // x is read again at step 2 (a residual connection): overwriting it at step 1 would be wrong.
  std::vector<PlannedTensor> ts = {tensor(0, 256, 0, 2), alias(1, 256, 1, 2, AliasKind::InPlace, 0)};
  MemoryPlan plan = planMemory(ts);
  verifyMemoryPlan(ts, plan);
  EXPECT_EQ(plan.sharesWith[1], -1);
  EXPECT_EQ(plan.peakBytes, (size_t)512);
}

KILN_TEST(planner, in_place_refused_when_a_view_outlives_the_step) {
  // v = Reshape(x) is read at step 3, so Relu(x) at step 2 cannot write over x's buffer.
  std::vector<PlannedTensor> ts = {tensor(0, 256, 0, 2), alias(1, 256, 1, 3, AliasKind::View, 0),
                                   alias(2, 256, 2, 3, AliasKind::InPlace, 0)};
  MemoryPlan plan = planMemory(ts);
  verifyMemoryPlan(ts, plan);
  EXPECT_EQ(plan.sharesWith[1], 0);
  EXPECT_EQ(plan.sharesWith[2], -1);
}

KILN_TEST(planner, in_place_chain_through_views) {
  // x -> Relu(in place) -> Reshape(view) -> Sigmoid(in place): one buffer for all four names.
  std::vector<PlannedTensor> ts = {tensor(0, 256, 0, 1), alias(1, 256, 1, 2, AliasKind::InPlace, 0),
                                   alias(2, 256, 2, 3, AliasKind::View, 1),
                                   alias(3, 256, 3, 4, AliasKind::InPlace, 2)};
  MemoryPlan plan = planMemory(ts);
  verifyMemoryPlan(ts, plan);
  EXPECT_EQ(plan.peakBytes, (size_t)256);
  EXPECT_EQ(plan.sharesWith[3], 2);
}

KILN_TEST(planner, two_in_place_outputs_of_one_step_get_one_grant) {
  std::vector<PlannedTensor> ts = {tensor(0, 256, 0, 1), alias(1, 256, 1, 2, AliasKind::InPlace, 0),
                                   alias(2, 256, 1, 2, AliasKind::InPlace, 0)};
  MemoryPlan plan = planMemory(ts);
  verifyMemoryPlan(ts, plan);
  EXPECT_TRUE((plan.sharesWith[1] == -1) != (plan.sharesWith[2] == -1));
}

KILN_TEST(planner, view_refused_when_same_step_writes_in_place) {
  // One step both overwrites x in place and takes a view of it: the view would see the new data.
  std::vector<PlannedTensor> ts = {tensor(0, 256, 0, 1), alias(1, 256, 1, 2, AliasKind::InPlace, 0),
                                   alias(2, 256, 1, 2, AliasKind::View, 0)};
  MemoryPlan plan = planMemory(ts);
  verifyMemoryPlan(ts, plan);
  EXPECT_EQ(plan.sharesWith[1], 0);
  EXPECT_EQ(plan.sharesWith[2], -1);
}

KILN_TEST(planner, in_place_larger_output_is_refused) {
  std::vector<PlannedTensor> ts = {tensor(0, 64, 0, 1), alias(1, 256, 1, 2, AliasKind::InPlace, 0)};
  EXPECT_EQ(planMemory(ts).sharesWith[1], -1);
}

KILN_TEST(planner, off_switch_lays_tensors_out_one_after_another) {
  std::vector<PlannedTensor> ts = {tensor(0, 100, 0, 1), alias(1, 100, 1, 2, AliasKind::View, 0),
                                   tensor(2, 1, 2, 3)};
  MemoryPlanOptions options;
  options.enabled = false;
  MemoryPlan plan = planMemory(ts, options);
  verifyMemoryPlan(ts, plan);
  EXPECT_EQ(plan.offsets[0], (size_t)0);
  EXPECT_EQ(plan.offsets[1], (size_t)128);
  EXPECT_EQ(plan.offsets[2], (size_t)256);
  EXPECT_EQ(plan.peakBytes, (size_t)320);
  EXPECT_EQ(plan.sharesWith[1], -1);
}

KILN_TEST(planner, custom_alignment) {
  std::vector<PlannedTensor> ts = {tensor(0, 5, 0, 1), tensor(1, 5, 1, 2)};
  MemoryPlanOptions options;
  options.alignment = 16;
  MemoryPlan plan = planMemory(ts, options);
  verifyMemoryPlan(ts, plan);
  EXPECT_EQ(plan.peakBytes, (size_t)32);
  options.alignment = 48;
  EXPECT_THROWS_WITH(planMemory(ts, options), "power of two");
}

KILN_TEST(planner, rejects_malformed_requests) {
  EXPECT_THROWS_WITH(planMemory({tensor(1, 8, 0, 1), tensor(1, 8, 1, 2)}), "tensor 1 twice");
  EXPECT_THROWS_WITH(planMemory({tensor(1, 8, 3, 2)}), "invalid lifetime 3..2");
  EXPECT_THROWS_WITH(planMemory({tensor(1, 8, -1, 2)}), "invalid lifetime");
  EXPECT_THROWS_WITH(planMemory({alias(1, 8, 1, 2, AliasKind::View, 7)}), "aliases unknown tensor 7");
  // The source must be alive when the alias is produced, and produced strictly before it.
  EXPECT_THROWS_WITH(planMemory({tensor(0, 8, 0, 1), alias(1, 8, 2, 3, AliasKind::View, 0)}),
                     "not alive when it is produced");
  EXPECT_THROWS_WITH(planMemory({tensor(0, 8, 1, 2), alias(1, 8, 1, 2, AliasKind::View, 0)}),
                     "not alive when it is produced");
  EXPECT_THROWS_WITH(planMemory({tensor(0, size_t(-1), 0, 1)}), "too large");
}

KILN_TEST(planner, verifier_catches_overlaps) {
  std::vector<PlannedTensor> ts = {tensor(0, 256, 0, 2), tensor(1, 256, 1, 3)};
  MemoryPlan plan = planMemory(ts);
  verifyMemoryPlan(ts, plan);
  MemoryPlan broken = plan;
  broken.offsets[1] = broken.offsets[0] + 64;
  EXPECT_THROWS_WITH(verifyMemoryPlan(ts, broken), "overlap in memory");
  broken = plan;
  broken.offsets[1] = 32;
  EXPECT_THROWS_WITH(verifyMemoryPlan(ts, broken), "misaligned");
  broken = plan;
  broken.peakBytes = 256;
  EXPECT_THROWS_WITH(verifyMemoryPlan(ts, broken), "ends past the arena");
  // A sharing nobody asked for is caught, and so is an in-place write over a live tensor.
  broken = plan;
  broken.sharesWith[1] = 0;
  EXPECT_THROWS_WITH(verifyMemoryPlan(ts, broken), "did not ask for");
  std::vector<PlannedTensor> inPlace = {tensor(0, 256, 0, 2), alias(1, 256, 1, 3, AliasKind::InPlace, 0)};
  MemoryPlan forced = planMemory(inPlace);
  forced.sharesWith[1] = 0;
  forced.offsets[1] = forced.offsets[0];
  EXPECT_THROWS_WITH(verifyMemoryPlan(inPlace, forced), "while it is alive");
}

KILN_TEST(planner, randomized_plans_never_overlap) {
  std::mt19937 rng(1234);
  for (int round = 0; round < 300; round++) {
    int n = 1 + (int)(rng() % 60);
    int steps = 1 + (int)(rng() % 40);
    bool withAliases = round % 2 == 1;
    std::vector<PlannedTensor> ts;
    for (int i = 0; i < n; i++) {
      int32_t first = (int32_t)(rng() % steps);
      int32_t last = first + (int32_t)(rng() % 8);
      size_t bytes = (rng() % 4 == 0) ? 0 : 1 + rng() % 5000;
      PlannedTensor t = tensor(i * 3 + 1, bytes, first, last);
      if (withAliases && !ts.empty() && rng() % 2 == 0) {
        // Pick an earlier tensor that is alive at `first`, and make this one alias it.
        std::vector<size_t> alive;
        for (size_t j = 0; j < ts.size(); j++) {
          if (ts[j].firstUse < first && ts[j].lastUse >= first) alive.push_back(j);
        }
        if (!alive.empty()) {
          const PlannedTensor& s = ts[alive[rng() % alive.size()]];
          t.aliasKind = rng() % 2 ? AliasKind::View : AliasKind::InPlace;
          t.aliasOf = s.id;
          t.bytes = rng() % 3 == 0 ? s.bytes + 1 : s.bytes;
        }
      }
      ts.push_back(t);
    }
    MemoryPlan plan = planMemory(ts);
    verifyMemoryPlan(ts, plan);
    size_t total = 0;
    for (auto& t : ts) total += (t.bytes + 63) / 64 * 64;
    EXPECT_TRUE(plan.peakBytes <= total);
    if (!withAliases) EXPECT_TRUE(plan.peakBytes >= liveLowerBound(ts, 64));
    MemoryPlanOptions off;
    off.enabled = false;
    MemoryPlan sequential = planMemory(ts, off);
    verifyMemoryPlan(ts, sequential);
    EXPECT_EQ(sequential.peakBytes, total);
  }
}

KILN_TEST(planner, long_chains_stay_fast_and_tight) {
  // A 20000-step chain (a deep network unrolled) of varying sizes. Two buffers of the largest size
  // would do; greedy-by-size is not optimal on such inputs but stays within three, and planning
  // plus verification must stay fast.
  std::vector<PlannedTensor> ts;
  for (int32_t i = 0; i < 20000; i++) ts.push_back(tensor(i, 1000 + (i % 7) * 64, i, i + 1));
  MemoryPlan plan = planMemory(ts);
  verifyMemoryPlan(ts, plan);
  const size_t largest = (1000 + 6 * 64 + 63) / 64 * 64;
  EXPECT_TRUE(plan.peakBytes >= liveLowerBound({ts.begin(), ts.begin() + 14}, 64));
  EXPECT_TRUE(plan.peakBytes <= 3 * largest);
}
