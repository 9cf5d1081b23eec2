#!/usr/bin/env bash
# Everything on the GPU machine in one command (device time is scarce): build the CUDA backend,
# run kiln_cuda_tests, the INT8 accuracy experiment and the benchmark, each under a time limit,
# all logs and results under $OUT. The benchmark rewrites its results after every point, so a run
# cut short by BUDGET_S keeps what it finished.
#   BUDGET_S=540 bench/cuda/full-run.sh [bench.py options]
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp/kiln-full}"
mkdir -p "$out"
t0=$(date +%s)
budget=${BUDGET_S:-540}
left() { echo $(( budget - ($(date +%s) - t0) )); }
build=native/build-gpu
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
cmake -S native -B "$build" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 >"$out/cmake.log" 2>&1 \
  || { tail -40 "$out/cmake.log"; exit 1; }
cmake --build "$build" -j"$(nproc)" --target kiln_cuda_tests kiln_cuda_bench >"$out/build.log" 2>&1 \
  || { grep -E "error|Error" -A3 "$out/build.log" | head -80; exit 1; }
echo "build done at $(( $(date +%s) - t0 ))s"
timeout "${TESTS_S:-150}" "$build/kiln_cuda_tests" >"$out/cuda-tests.log" 2>&1
echo "kiln_cuda_tests rc=$? at $(( $(date +%s) - t0 ))s"
grep -E "PASS|FAIL|passed|failed|error" "$out/cuda-tests.log" | tail -40
timeout "${ACCURACY_S:-120}" python3 bench/cuda/int8_accuracy.py --bench "$build/kiln_cuda_bench" --out "$out/accuracy" \
  --train-s "${TRAIN_S:-30}" >"$out/accuracy.log" 2>&1
echo "accuracy rc=$? at $(( $(date +%s) - t0 ))s"
tail -12 "$out/accuracy.log"
rest=$(( $(left) - 5 ))
if [ "$rest" -gt 30 ]; then
  timeout "$rest" python3 bench/cuda/bench.py --bench "$build/kiln_cuda_bench" --out "$out/bench" "$@" >"$out/bench.log" 2>&1
  echo "bench rc=$? at $(( $(date +%s) - t0 ))s"
fi
cat "$out/bench/results.md" 2>/dev/null || tail -20 "$out/bench.log"
