#!/usr/bin/env bash
# Builds the ONNX reader fuzzer (libFuzzer + ASan + UBSan) into native/fuzz/build/fuzz_reader.
#   native/fuzz/build.sh            # build
#   native/fuzz/build.sh --run 600  # build, then fuzz for 600 s with the corpus in native/fuzz/corpus
# Needs clang with libFuzzer: apt-get install -y clang-14 libclang-rt-14-dev (Debian 12).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
native="$(dirname "$here")"
out="$here/build"
mkdir -p "$out/obj"

CXX="${CXX:-}"
if [ -z "$CXX" ]; then
  for c in clang++ clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14; do
    if command -v "$c" >/dev/null; then CXX="$c"; break; fi
  done
fi
if [ -z "$CXX" ]; then
  echo "no clang++ found: apt-get install -y clang-14 libclang-rt-14-dev" >&2
  exit 1
fi

flags=(-std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined
       -fno-sanitize-recover=undefined -I"$native/src")
objs=()
# What the fuzzed path runs: core, IR, reader, inference and every op schema (hostile attributes
# and shapes reach each op's infer function). FUZZ_FULL=1 adds the CPU kernels too, so constant
# propagation evaluates small constant subgraphs; that doubles the build time.
if [ "${FUZZ_FULL:-0}" = 1 ]; then
  sources=$(find "$native/src" -name '*.cc' -not -path '*/node/*' | sort)
else
  sources=$( (find "$native/src/core" "$native/src/onnx" "$native/src/ops" -name '*.cc';
              echo "$native/src/graph/ir.cc"; echo "$native/src/graph/fused_ops.cc";
              echo "$native/src/graph/shape_inference.cc"; echo "$native/src/graph/shape_inference_eval.cc";
              echo "$native/src/backends/kernel_registry.cc"; echo "$native/src/runtime/inspect.cc") | sort)
fi
while IFS= read -r src; do
  rel="${src#$native/}"
  obj="$out/obj/$(echo "$rel" | tr '/' '_').o"
  extra=()
  case "$src" in *_avx2.cc) extra=(-mavx2 -mfma -mf16c) ;; esac
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find "$native/src" -name '*.h' -newer "$obj" -print -quit)" ]; then
    "$CXX" "${flags[@]}" "${extra[@]}" -c "$src" -o "$obj" &
    while [ "$(jobs -r | wc -l)" -ge "${JOBS:-2}" ]; do wait -n; done
  fi
  objs+=("$obj")
done <<< "$sources"
wait
"$CXX" "${flags[@]}" -fsanitize=fuzzer "$here/fuzz_reader.cc" "${objs[@]}" -lpthread -o "$out/fuzz_reader"
echo "built $out/fuzz_reader"

if [ "${1:-}" = "--run" ]; then
  seconds="${2:-600}"
  mkdir -p "$out/corpus" "$out/crashes"
  # New inputs go to build/corpus (scratch); native/fuzz/corpus stays the small checked-in seed set.
  "$out/fuzz_reader" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$out/crashes/" -print_final_stats=1 "$out/corpus" "$here/corpus"
fi
