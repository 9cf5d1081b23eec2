#!/usr/bin/env bash
# The CUDA benchmark on the GPU machine: builds the backend (native/scripts/gpu-test.sh's build
# folder), then bench/cuda/bench.py (Kiln vs PyTorch eager and torch.compile, same run).
#   bench/cuda/run.sh [--models resnet50,bert] [bench.py options]
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp/kiln-bench}"
mkdir -p "$out"
build=native/build-gpu
cmake -S native -B "$build" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a >"$out/cmake.log" 2>&1
cmake --build "$build" -j"$(nproc)" --target kiln_cuda_bench >"$out/build.log" 2>&1 || { grep -E "error" "$out/build.log" | head -40; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
python3 bench/cuda/bench.py --bench "$build/kiln_cuda_bench" --out "$out" "$@"
