#!/usr/bin/env python3
"""Quick check that Kiln builds and runs the benchmark models on CUDA (batch 1, few runs).

  python3 bench/cuda/smoke.py --bench native/build-gpu/kiln_cuda_bench --out $OUT
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--bench", required=True)
ap.add_argument("--out", required=True)
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
r = bench.make_resnet()
bench.export_resnet(r, os.path.join(a.out, "r.onnx"), 1)
b = bench.make_bert()
bench.export_bert(b, os.path.join(a.out, "b.onnx"), 1, 128)
jobs = [("r.onnx", {"input": torch.randn(1, 3, 224, 224)}),
        ("b.onnx", {"input_ids": torch.randint(0, 30522, (1, 128)), "attention_mask": torch.ones(1, 128, dtype=torch.int64)})]
for onnx, inputs in jobs:
    for p in ("fp32", "fp16"):
        res, _ = bench.kiln(a.bench, os.path.join(a.out, onnx), p, inputs, a.out, f"smoke-{onnx}-{p}", 5, 2)
        print(onnx, p, res, flush=True)
