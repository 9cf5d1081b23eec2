#!/usr/bin/env bash
# New INT8 tiles on the GPU machine in one command: build, run each tile alone through the named
# every-tile tests (KILN_TEST_TILE, a time limit each, so a hanging kernel is named and does not eat
# the budget), then, only if all passed, the benchmark with the time left. Tiles still behind a
# setting must be enabled in the environment first. ONCE_TESTS: tests run once after the build (not
# per tile), under the same rule. Logs and results under $OUT (or /tmp/kiln-full).
#   TILES="41 42 43" TESTS="int8_tma_tiles int8_ring_tiles" BUDGET_TOTAL=540 bench/cuda/tile-check.sh \
#     --runs 20 --warmup 5 --no-compile --points resnet50:256
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp/kiln-full}"
mkdir -p "$out"
: "${TILES:?TILES: the tile numbers to check}" "${TESTS:=int8_tma_tiles int8_ring_tiles}"
tests=native/build-gpu/kiln_cuda_tests
BUDGET_S=200 STEPS=none bench/cuda/full-run.sh >"$out/build.txt" 2>&1 || { tail -20 "$out/build.txt"; exit 1; }
tail -2 "$out/build.txt"
failed=0
for test in ${ONCE_TESTS:-}; do
  log="$out/$test-once.log"
  KILN_TEST_VERBOSE=1 timeout "${ONCE_S:-120}" "$tests" "$test" >"$log" 2>&1
  rc=$?
  echo "$test rc=$rc: $(grep -E "passed|failed" "$log" | tail -1)"
  [ "$rc" -eq 0 ] || failed=1
done
for tile in $TILES; do
  for test in $TESTS; do
    log="$out/$test-$tile.log"
    KILN_TEST_VERBOSE=1 KILN_TEST_TILE=$tile timeout "${TILE_S:-40}" "$tests" "$test" >"$log" 2>&1
    rc=$?
    echo "$test tile $tile rc=$rc: $(grep -E "passed|failed" "$log" | tail -1)"
    [ "$rc" -eq 0 ] || failed=1
  done
done
# BENCH_ANYWAY=1: the benchmark runs after a failure too (its numbers then only inform; the exit
# status still says the tests failed).
[ "$failed" -eq 0 ] || [ -n "${BENCH_ANYWAY:-}" ] || { echo "a tile failed or hung: no benchmark"; exit 1; }
[ "$#" -gt 0 ] || exit "$failed"
BUDGET_S=$(( ${BUDGET_TOTAL:-540} - SECONDS - 10 )) STEPS=bench bench/cuda/full-run.sh "$@" >"$out/run.log" 2>&1
tail -9 "$out/run.log" | head -6
exit "$failed"
