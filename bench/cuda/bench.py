#!/usr/bin/env python3
"""Kiln CUDA engines vs PyTorch eager and torch.compile(mode="reduce-overhead") on one GPU, same run.

  python3 bench/cuda/bench.py --bench native/build-gpu/kiln_cuda_bench --out $OUT [--models resnet50,bert]

Exports torchvision ResNet-50 and transformers BERT-base with random weights (seeded, no downloads)
to ONNX, then for every point (ResNet-50 batch 1/32/256, BERT-base seq 128 batch 1/32) times:
  - PyTorch eager FP16 and torch.compile(mode="reduce-overhead") FP16: GPU time with CUDA events
    around the forward pass (inputs already on the GPU), end-to-end with the host copies;
  - Kiln FP16 (and FP32): kiln_cuda_bench builds the engine, loads it and reports the same two times.
Medians after warm-up. Accuracy: Kiln FP16 and FP32 outputs against the PyTorch FP32 output
(max |diff| / max |reference|). Writes results.json and results.md under --out.
"""
import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time

import torch


def median_times(fn, warmup, runs, sync_inputs=None):
    start = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    stop = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    for i in range(runs):
        start[i].record()
        fn()
        stop[i].record()
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) for s, e in zip(start, stop))


def median_wall(fn, warmup, runs):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def make_resnet():
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet50(weights=None).eval()


def export_resnet(model, path, batch):
    # Static shapes: every shape computation folds at build time (the CUDA backend needs shapes
    # that follow from the input shapes without running Shape ops on the device).
    x = torch.randn(batch, 3, 224, 224)
    torch.onnx.export(model, (x,), path, input_names=["input"], output_names=["logits"], opset_version=17, dynamo=False)


def make_bert():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(attn_implementation="eager")
    return BertModel(config, add_pooling_layer=True).eval()


class BertOutputs(torch.nn.Module):
    """Keyword-only call of a transformers BertModel, as a plain module the ONNX tracer can take."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        return out.last_hidden_state, out.pooler_output


def export_bert(model, path, batch, seq):
    ids = torch.randint(0, 30522, (batch, seq))
    mask = torch.ones(batch, seq, dtype=torch.int64)
    torch.onnx.export(BertOutputs(model).eval(), (ids, mask), path, input_names=["input_ids", "attention_mask"],
                      output_names=["last_hidden_state", "pooler_output"], opset_version=17, dynamo=False)


def kiln(bench, onnx, precision, inputs, out, tag, runs, warmup):
    """inputs: name -> CPU tensor. Returns (result dict, first output as a float32 tensor)."""
    args = [bench, "--model", onnx, "--precision", precision, "--runs", str(runs), "--warmup", str(warmup)]
    dump = os.path.join(out, "dump", tag)
    os.makedirs(dump, exist_ok=True)
    for name, t in inputs.items():
        path = os.path.join(dump, name + ".in")
        t.contiguous().numpy().tofile(path)
        args += ["--input", f"{name}={path}", "--shape", f"{name}={'x'.join(map(str, t.shape))}"]
    args += ["--dump", dump]
    t0 = time.time()
    proc = subprocess.run(args, capture_output=True, text=True)
    line = (proc.stdout.strip().splitlines() or ["{}"])[-1]
    try:
        result = json.loads(line)
    except json.JSONDecodeError:
        result = {"error": proc.stdout[-2000:] + proc.stderr[-2000:]}
    if proc.returncode != 0 and "error" not in result:
        result["error"] = proc.stderr[-2000:]
    result["wall_s"] = round(time.time() - t0, 1)
    return result, dump


def rel_err(got, ref):
    got = got.float().flatten()
    ref = ref.float().flatten()
    return float((got - ref).abs().max() / ref.abs().max().clamp_min(1e-6))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default="resnet50,bert")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--kiln-fp32", action="store_true", help="also time Kiln FP32 engines")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    dev = torch.device("cuda")
    results = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
               "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
               "command": " ".join(sys.argv), "points": []}
    torch.backends.cudnn.benchmark = True
    models = a.models.split(",")

    def run_point(name, models_, onnx, batch, make_inputs, forward, out_index):
        m32, m16 = models_
        inputs = make_inputs(batch)
        point = {"model": name, "batch": batch}
        gpu_inputs = {k: v.to(dev) for k, v in inputs.items()}
        with torch.inference_mode():
            ref = forward(m32, gpu_inputs)[out_index].float().cpu()
            g16 = {k: (v.half() if v.is_floating_point() else v) for k, v in gpu_inputs.items()}
            point["torch_eager_gpu_ms"] = median_times(lambda: forward(m16, g16), a.warmup, a.runs)
            point["torch_eager_e2e_ms"] = median_wall(
                lambda: forward(m16, {k: (v.to(dev).half() if v.is_floating_point() else v.to(dev))
                                      for k, v in inputs.items()})[out_index].float().cpu(), a.warmup, a.runs)
            eager_out = forward(m16, g16)[out_index].float().cpu()
            point["torch_eager_fp16_rel_err"] = rel_err(eager_out, ref)
            if not a.no_compile:
                torch._dynamo.reset()  # a static compile per point, as a served shape would get
                t0 = time.time()
                compiled = torch.compile(lambda g: forward(m16, g), mode="reduce-overhead")
                for _ in range(3):
                    compiled(g16)
                point["torch_compile_s"] = round(time.time() - t0, 1)
                point["torch_compile_gpu_ms"] = median_times(lambda: compiled(g16), a.warmup, a.runs)
                point["torch_compile_e2e_ms"] = median_wall(
                    lambda: compiled({k: (v.to(dev).half() if v.is_floating_point() else v.to(dev))
                                      for k, v in inputs.items()})[out_index].float().cpu(), a.warmup, a.runs)
                del compiled
        precisions = ["fp16"] + (["fp32"] if a.kiln_fp32 else [])
        for p in precisions:
            r, dump = kiln(a.bench, onnx, p, inputs, a.out, f"{name}-b{batch}-{p}", a.runs, a.warmup)
            point[f"kiln_{p}"] = r
            if "error" not in r:
                out_file = sorted(f for f in os.listdir(dump) if f.endswith(".bin"))
                outs = {f[:-4]: f for f in out_file}
                key = list(outs)[0] if len(outs) == 1 else [k for k in outs if k.startswith(("logits", "last_hidden_state"))][0]
                got = torch.from_numpy(__import__("numpy").fromfile(os.path.join(dump, outs[key]), dtype="float32"))
                point[f"kiln_{p}"]["rel_err_vs_torch_fp32"] = rel_err(got, ref)
        k16 = point["kiln_fp16"]
        if "gpu_ms" in k16:
            point["speedup_vs_eager_gpu"] = point["torch_eager_gpu_ms"] / k16["gpu_ms"]
            if "torch_compile_gpu_ms" in point:
                point["speedup_vs_compile_gpu"] = point["torch_compile_gpu_ms"] / k16["gpu_ms"]
                point["speedup_vs_compile_e2e"] = point["torch_compile_e2e_ms"] / k16["e2e_ms"]
        print(json.dumps(point), flush=True)
        results["points"].append(point)
        torch.cuda.empty_cache()

    if "resnet50" in models:
        model = make_resnet()
        pair = (model.to(dev), copy.deepcopy(model).half().to(dev))
        gen = torch.Generator().manual_seed(1)
        for batch in (1, 32, 256):
            onnx = os.path.join(a.out, f"resnet50-b{batch}.onnx")
            export_resnet(model.cpu(), onnx, batch)
            pair = (model.to(dev), pair[1])
            run_point("resnet50", pair, onnx, batch,
                      lambda b: {"input": torch.randn(b, 3, 224, 224, generator=gen)},
                      lambda m, g: (m(g["input"]),), 0)
            os.remove(onnx)
    if "bert" in models:
        seq = 128
        model = make_bert()
        pair = (model.to(dev), copy.deepcopy(model).half().to(dev))
        gen = torch.Generator().manual_seed(2)

        def bert_inputs(b):
            ids = torch.randint(0, 30522, (b, seq), generator=gen)
            mask = torch.ones(b, seq, dtype=torch.int64)
            mask[:, seq - 16:] = 0  # padding at the end of every sequence
            return {"input_ids": ids, "attention_mask": mask}

        for batch in (1, 32):
            onnx = os.path.join(a.out, f"bert-b{batch}.onnx")
            export_bert(model.cpu(), onnx, batch, seq)
            pair = (model.to(dev), pair[1])
            run_point("bert-base", pair, onnx, batch, bert_inputs,
                      lambda m, g: (m(input_ids=g["input_ids"], attention_mask=g["attention_mask"]).last_hidden_state,), 0)
            os.remove(onnx)

    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    lines = [f"GPU: {results['gpu']}; torch {results['torch']} (CUDA {results['cuda']}, cuDNN {results['cudnn']})", "",
             "| model | batch | eager GPU ms | compile GPU ms | Kiln FP16 GPU ms | vs compile (GPU) | eager e2e ms | compile e2e ms | Kiln FP16 e2e ms | Kiln FP16 rel err |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in results["points"]:
        k = p.get("kiln_fp16", {})
        f = lambda v: f"{v:.3f}" if isinstance(v, (int, float)) else "-"
        lines.append(f"| {p['model']} | {p['batch']} | {f(p.get('torch_eager_gpu_ms'))} | {f(p.get('torch_compile_gpu_ms'))} | "
                     f"{f(k.get('gpu_ms'))} | {f(p.get('speedup_vs_compile_gpu'))}x | {f(p.get('torch_eager_e2e_ms'))} | "
                     f"{f(p.get('torch_compile_e2e_ms'))} | {f(k.get('e2e_ms'))} | {f(k.get('rel_err_vs_torch_fp32'))} |"
                     + ("" if "error" not in k else f" error: {k['error'][:200]}"))
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
