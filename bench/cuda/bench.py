#!/usr/bin/env python3
"""Kiln CUDA engines vs PyTorch eager and torch.compile(mode="reduce-overhead") on one GPU, same run.

  python3 bench/cuda/bench.py --bench native/build-gpu/kiln_cuda_bench --out $OUT [--models resnet50,bert]

Exports torchvision ResNet-50 and transformers BERT-base with random weights (seeded, no downloads)
to ONNX, then for every point (ResNet-50 batch 1/32/256, BERT-base seq 128 batch 1/32) times:
  - PyTorch eager FP16 and torch.compile(mode="reduce-overhead") FP16: GPU time with CUDA events
    around the forward pass (inputs already on the GPU), end-to-end with the host copies;
  - Kiln FP16 and INT8 (and FP32): kiln_cuda_bench builds the engine, loads it and reports the same
    two times. INT8 engines are calibrated (entropy) on --calib-samples inputs drawn like the timed
    ones but from another seed.
Medians after warm-up. Results are rewritten after every point, so a run cut short keeps its points. Accuracy: Kiln FP16 and FP32 outputs against the PyTorch FP32 output
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


def kiln(bench, onnx, precision, inputs, out, tag, runs, warmup, calib=None):
    """inputs: name -> CPU tensor; calib: name -> CPU tensor of stacked calibration samples (int8).
    Returns (result dict, dump folder)."""
    args = [bench, "--model", onnx, "--precision", precision, "--runs", str(runs), "--warmup", str(warmup)]
    dump = os.path.join(out, "dump", tag)
    os.makedirs(dump, exist_ok=True)
    for name, t in (calib or {}).items():
        path = os.path.join(dump, name + ".calib")
        t.contiguous().numpy().tofile(path)
        args += ["--calib", f"{name}={path}", "--calib-shape", f"{name}={'x'.join(map(str, t.shape))}"]
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
    for name in (calib or {}):
        os.remove(os.path.join(dump, name + ".calib"))
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
    ap.add_argument("--no-int8", action="store_true", help="skip the Kiln INT8 engines")
    ap.add_argument("--keep-onnx", action="store_true", help="keep the exported models in --out (full-run.sh's attention step reruns them)")
    ap.add_argument("--calib-samples", type=int, default=256)
    ap.add_argument("--points", default="resnet50:256,resnet50:32,resnet50:1,bert:1,bert:32",
                    help="model:batch in the order to run them")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    dev = torch.device("cuda")
    results = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
               "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
               "command": " ".join(sys.argv), "points": []}
    torch.backends.cudnn.benchmark = True
    def write_results():
        with open(os.path.join(a.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
        f3 = lambda v: f"{v:.3f}" if isinstance(v, (int, float)) else "-"
        f2 = lambda v: f"{v:.2f}x" if isinstance(v, (int, float)) else "-"
        lines = [f"GPU: {results['gpu']}; torch {results['torch']} (CUDA {results['cuda']}, cuDNN {results['cudnn']})", "",
                 "GPU time (CUDA events, median ms) and ratios peer/Kiln (>1: Kiln faster).", "",
                 "| model | batch | eager | compile | Kiln FP16 | FP16 vs eager | FP16 vs compile | Kiln INT8 | INT8 vs eager | INT8 vs compile | INT8 vs FP16 |",
                 "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for p in results["points"]:
            k, k8 = p.get("kiln_fp16", {}), p.get("kiln_int8", {})
            lines.append(f"| {p['model']} | {p['batch']} | {f3(p.get('torch_eager_gpu_ms'))} | {f3(p.get('torch_compile_gpu_ms'))} | "
                         f"{f3(k.get('gpu_ms'))} | {f2(p.get('speedup_vs_eager_gpu'))} | {f2(p.get('speedup_vs_compile_gpu'))} | "
                         f"{f3(k8.get('gpu_ms'))} | {f2(p.get('int8_speedup_vs_eager_gpu'))} | {f2(p.get('int8_speedup_vs_compile_gpu'))} | "
                         f"{f2(p.get('int8_vs_fp16_gpu'))} |")
        lines += ["", "End to end (host inputs to host outputs, median ms) and accuracy (max |diff| / max |ref| vs PyTorch FP32).", "",
                  "| model | batch | eager e2e | compile e2e | Kiln FP16 e2e | Kiln INT8 e2e | FP16 rel err | INT8 rel err | INT8 layers |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for p in results["points"]:
            k, k8 = p.get("kiln_fp16", {}), p.get("kiln_int8", {})
            err = "".join(f" {n} error: {d['error'][:300]}" for n, d in (("fp16", k), ("int8", k8)) if "error" in d)
            lines.append(f"| {p['model']} | {p['batch']} | {f3(p.get('torch_eager_e2e_ms'))} | {f3(p.get('torch_compile_e2e_ms'))} | "
                         f"{f3(k.get('e2e_ms'))} | {f3(k8.get('e2e_ms'))} | {f3(k.get('rel_err_vs_torch_fp32'))} | "
                         f"{f3(k8.get('rel_err_vs_torch_fp32'))} | {json.dumps(k8.get('layer_precisions', {}))} |" + err)
        with open(os.path.join(a.out, "results.md"), "w") as f:
            f.write("\n".join(lines) + "\n")

    models = a.models.split(",")

    def run_point(name, models_, onnx, batch, make_inputs, forward, out_index, make_calib=None):
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
        precisions = ["fp16"] + ([] if a.no_int8 else ["int8"]) + (["fp32"] if a.kiln_fp32 else [])
        for p in precisions:
            calib = make_calib(a.calib_samples) if p == "int8" and make_calib else None
            r, dump = kiln(a.bench, onnx, p, inputs, a.out, f"{name}-b{batch}-{p}", a.runs, a.warmup, calib)
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
        k8 = point.get("kiln_int8", {})
        if "gpu_ms" in k8:
            point["int8_speedup_vs_eager_gpu"] = point["torch_eager_gpu_ms"] / k8["gpu_ms"]
            if "gpu_ms" in k16:
                point["int8_vs_fp16_gpu"] = k16["gpu_ms"] / k8["gpu_ms"]
            if "torch_compile_gpu_ms" in point:
                point["int8_speedup_vs_compile_gpu"] = point["torch_compile_gpu_ms"] / k8["gpu_ms"]
                point["int8_speedup_vs_compile_e2e"] = point["torch_compile_e2e_ms"] / k8["e2e_ms"]
        print(json.dumps(point), flush=True)
        results["points"].append(point)
        write_results()
        torch.cuda.empty_cache()

    points = [(p.split(":")[0], int(p.split(":")[1])) for p in a.points.split(",") if p.split(":")[0] in models]
    cache = {}

    def resnet():
        if "resnet50" not in cache:
            model = make_resnet()
            cache["resnet50"] = (model, copy.deepcopy(model).half().to(dev))
        return cache["resnet50"]

    def bert():
        if "bert" not in cache:
            model = make_bert()
            cache["bert"] = (model, copy.deepcopy(model).half().to(dev))
        return cache["bert"]

    gen = torch.Generator().manual_seed(1)
    calib_gen = torch.Generator().manual_seed(11)
    seq = 128

    def bert_inputs(b, g=gen):
        ids = torch.randint(0, 30522, (b, seq), generator=g)
        mask = torch.ones(b, seq, dtype=torch.int64)
        mask[:, seq - 16:] = 0  # padding at the end of every sequence
        return {"input_ids": ids, "attention_mask": mask}

    for name, batch in points:
        if name == "resnet50":
            model, m16 = resnet()
            onnx = os.path.join(a.out, f"resnet50-b{batch}.onnx")
            export_resnet(model.cpu(), onnx, batch)
            run_point("resnet50", (model.to(dev), m16), onnx, batch,
                      lambda b: {"input": torch.randn(b, 3, 224, 224, generator=gen)},
                      lambda m, g: (m(g["input"]),), 0,
                      lambda n: {"input": torch.randn(max(n, batch), 3, 224, 224, generator=calib_gen)})
        else:
            model, m16 = bert()
            onnx = os.path.join(a.out, f"bert-b{batch}.onnx")
            export_bert(model.cpu(), onnx, batch, seq)
            run_point("bert-base", (model.to(dev), m16), onnx, batch, bert_inputs,
                      lambda m, g: (m(input_ids=g["input_ids"], attention_mask=g["attention_mask"]).last_hidden_state,), 0,
                      lambda n: bert_inputs(batch, calib_gen))
        if not a.keep_onnx:
            os.remove(onnx)

    write_results()
    print(open(os.path.join(a.out, "results.md")).read())


if __name__ == "__main__":
    main()
