#!/usr/bin/env bash
# Builds the CUDA backend and runs its tests (kiln_cuda_tests: every CUDA kernel against the CPU
# reference) on the GPU machine. Logs go to $OUT (or /tmp) when set.
#   native/scripts/gpu-test.sh [test-filter]
# With KILN_CONFORMANCE_DIR=<folder holding node/ ...> (the ONNX backend test data, carried to the
# machine) it also runs the ONNX node tests through the CUDA backend (kiln_conformance with
# KILN_CONFORMANCE_BACKEND=cuda): per-suite passed / failed / unsupported-on-cuda counts, the failures
# listed in $OUT/cuda-conformance-failures.txt. The CUDA backend has no per-layer CPU fallback, so
# "unsupported" is its op coverage gap.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp}"
build=native/build-gpu
jobs=$(nproc)
cmake -S native -B "$build" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 >"$out/cmake.log" 2>&1 \
  || { tail -40 "$out/cmake.log"; exit 1; }
cmake --build "$build" -j"$jobs" --target kiln_cuda_tests kiln_cuda_bench >"$out/build.log" 2>&1 \
  || { grep -E "error|Error" "$out/build.log" | head -60; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
"$build/kiln_cuda_tests" "${1:-}" 2>&1 | tee "$out/cuda-tests.log"
if [ -n "${KILN_CONFORMANCE_DIR:-}" ]; then
  cmake --build "$build" -j"$jobs" --target kiln_conformance >>"$out/build.log" 2>&1 \
    || { grep -E "error|Error" "$out/build.log" | head -60; exit 1; }
  KILN_CONFORMANCE_BACKEND=cuda "$build/kiln_conformance" "$KILN_CONFORMANCE_DIR" --suite "${KILN_CONFORMANCE_SUITE:-node}" \
    --failures "$out/cuda-conformance-failures.txt" --timeout 60 2>&1 | tee "$out/cuda-conformance.log" || true
fi
