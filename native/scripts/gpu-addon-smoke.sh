#!/usr/bin/env bash
# The Node addon with the CUDA backend on the GPU machine: builds kiln.node with plain CMake
# (node-api-headers, no downloads), exports a tiny conv net with PyTorch and runs
# bench/cuda/addon_smoke.mjs (cuda fp32/fp16 vs cpu, gpuTimeMs present). Needs Node on PATH
# (../shared/device/pack.sh node_modules/node-addon-api node_modules/node-api-headers; carry .device;
# source .device/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp}"
build=native/build-gpu-addon
cmake -S native -B "$build" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON -DKILN_BUILD_TESTS=OFF -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DCMAKE_JS_VERSION=8 -DCMAKE_JS_INC="$PWD/node_modules/node-api-headers/include" -DCMAKE_JS_SRC= -DCMAKE_JS_LIB= \
  >"$out/addon-cmake.log" 2>&1 || { tail -30 "$out/addon-cmake.log"; exit 1; }
cmake --build "$build" -j"$(nproc)" --target kiln_addon >"$out/addon-build.log" 2>&1 || { grep -E "error" "$out/addon-build.log" | head -30; exit 1; }
python3 - <<'PY'
import torch
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 1), torch.nn.ReLU(),
                          torch.nn.Flatten(), torch.nn.Linear(8 * 8 * 8, 10)).eval()
torch.onnx.export(net, (torch.randn(2, 3, 8, 8),), "/tmp/tiny.onnx", input_names=["x"], output_names=["y"], opset_version=17, dynamo=False)
PY
node bench/cuda/addon_smoke.mjs "$PWD/$build/kiln.node" /tmp/tiny.onnx x 2x3x8x8
