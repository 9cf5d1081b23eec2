#!/usr/bin/env bash
# Everything on the GPU machine in one command (device time is scarce): build the CUDA backend,
# then the steps named in STEPS (default tests,accuracy,bench), each under a time limit, all logs
# and results under $OUT. The benchmark rewrites its results after every point, so a run cut short
# by BUDGET_S keeps what it finished.
#   BUDGET_S=540 [STEPS=tests,conformance,accuracy,bench] bench/cuda/full-run.sh [bench.py options]
# Steps:
#   tests        native/build-gpu/kiln_cuda_tests (every CUDA kernel against the CPU reference)
#   conformance  the ONNX backend test suites through the CUDA backend (kiln_conformance with
#                KILN_CONFORMANCE_BACKEND=cuda): KILN_CONFORMANCE_DIR, or .devdata/conformance.tar.xz
#                (a tar of shared/conformance/onnx, carried to the machine) unpacked to /tmp
#   accuracy     bench/cuda/int8_accuracy.py (INT8 top-1 agreement on a classifier trained there)
#   bench        bench/cuda/bench.py with the arguments given (Kiln vs PyTorch eager / torch.compile);
#                its builds time into a fresh $OUT/timing-cache.txt (unless KILN_CUDA_TIMING_CACHE is
#                set), and $OUT/candidates.md lists every INT8 candidate's time per layer from it
#   attention    after bench: every BERT FP16 point again with each attention kernel
#                (KILN_CUDA_ATTENTION=warp|tc1|tc4|tc1x4), Kiln only, from the bench's exported model
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp/kiln-full}"
mkdir -p "$out"
t0=$(date +%s)
budget=${BUDGET_S:-540}
steps=",${STEPS:-tests,accuracy,bench},"
left() { echo $(( budget - ($(date +%s) - t0) )); }
want() { [[ "$steps" == *",$1,"* ]]; }
build=native/build-gpu
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
targets="kiln_cuda_tests kiln_cuda_bench"
want conformance && targets="$targets kiln_conformance"
cmake -S native -B "$build" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a >"$out/cmake.log" 2>&1 \
  || { tail -40 "$out/cmake.log"; exit 1; }
# shellcheck disable=SC2086
cmake --build "$build" -j"$(nproc)" --target $targets >"$out/build.log" 2>&1 \
  || { grep -E "error|Error" -A3 "$out/build.log" | head -80; exit 1; }
echo "build done at $(( $(date +%s) - t0 ))s"
if want tests; then
  # KILN_TEST_VERBOSE: each test (and tile) named as it starts, so a hang shows in the log's tail.
  KILN_TEST_VERBOSE=1 timeout "${TESTS_S:-150}" "$build/kiln_cuda_tests" >"$out/cuda-tests.log" 2>&1
  rc=$?
  echo "kiln_cuda_tests rc=$rc at $(( $(date +%s) - t0 ))s"
  [ "$rc" -eq 124 ] && { echo "timed out in:"; grep -E "^(RUN|  tile)" "$out/cuda-tests.log" | tail -2; }
  grep -E "FAIL|passed|failed|error" "$out/cuda-tests.log" | tail -40
fi
if want conformance; then
  data="${KILN_CONFORMANCE_DIR:-}"
  if [ -z "$data" ] && [ -f .devdata/conformance.tar.xz ]; then
    mkdir -p /tmp/kiln-conformance && tar -xJf .devdata/conformance.tar.xz -C /tmp/kiln-conformance
    data=/tmp/kiln-conformance/onnx
  fi
  if [ -n "$data" ]; then
    limit=${CONFORMANCE_S:-240}
    KILN_CONFORMANCE_BACKEND=cuda timeout $(( limit + 15 )) "$build/kiln_conformance" "$data" \
      --jobs "${CONFORMANCE_JOBS:-12}" --timeout 60 --time-limit "$limit" --failures "$out/cuda-conformance-failures.txt" \
      --verbose >"$out/cuda-conformance.log" 2>&1
    echo "conformance on cuda rc=$? at $(( $(date +%s) - t0 ))s"
    # The final block: each suite's counts, how many needed host layers, and any time-limit line.
    grep -E "^(node|simple|pytorch|time limit)" "$out/cuda-conformance.log" | awk '!seen[$0]++'
    grep -E "^FAIL " "$out/cuda-conformance.log" | head -40
  else
    echo "conformance: no suite (set KILN_CONFORMANCE_DIR or carry .devdata/conformance.tar.xz)"
  fi
fi
if want accuracy; then
  timeout "${ACCURACY_S:-120}" python3 bench/cuda/int8_accuracy.py --bench "$build/kiln_cuda_bench" --out "$out/accuracy" \
    --train-s "${TRAIN_S:-30}" >"$out/accuracy.log" 2>&1
  echo "accuracy rc=$? at $(( $(date +%s) - t0 ))s"
  tail -12 "$out/accuracy.log"
fi
if want bench; then
  rest=$(( $(left) - 5 ))
  if [ "$rest" -gt 30 ]; then
    keep=""
    want attention && keep="--keep-onnx"
    if [ -z "${KILN_CUDA_TIMING_CACHE:-}" ]; then
      export KILN_CUDA_TIMING_CACHE="$out/timing-cache.txt"
      rm -f "$KILN_CUDA_TIMING_CACHE"
    fi
    timeout "$rest" python3 bench/cuda/bench.py --bench "$build/kiln_cuda_bench" --out "$out/bench" $keep "$@" >"$out/bench.log" 2>&1
    echo "bench rc=$? at $(( $(date +%s) - t0 ))s"
  fi
  cat "$out/bench/results.md" 2>/dev/null || tail -20 "$out/bench.log"
  [ -s "${KILN_CUDA_TIMING_CACHE:-}" ] && python3 bench/cuda/candidates.py "$KILN_CUDA_TIMING_CACHE" >"$out/candidates.md" 2>&1
fi
if want attention; then
  for dump in "$out"/bench/dump/bert-base-b*-fp16; do
    [ -d "$dump" ] || continue
    batch=${dump##*-b}; batch=${batch%-fp16}
    for kernel in warp tc1 tc4 tc1x4; do
      KILN_CUDA_ATTENTION=$kernel timeout 60 "$build/kiln_cuda_bench" --model "$out/bench/bert-b$batch.onnx" --precision fp16 \
        --input "input_ids=$dump/input_ids.in" --shape "input_ids=${batch}x128" \
        --input "attention_mask=$dump/attention_mask.in" --shape "attention_mask=${batch}x128" --runs 30 --warmup 5 \
        2>&1 | tail -1 | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print('bert b$batch attention=$kernel: ' + ('gpu %.4f ms, attention %.4f ms, layernorm %.4f ms' % (d['gpu_ms'], d['op_ms'].get('kiln.CudaAttention', 0), d['op_ms'].get('kiln.CudaAddLayerNorm', 0)) if 'gpu_ms' in d else 'failed: ' + str(d.get('error'))[:300]))" \
        || echo "bert b$batch attention=$kernel: no result"
    done
  done
fi
