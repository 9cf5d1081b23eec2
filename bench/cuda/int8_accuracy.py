#!/usr/bin/env python3
"""INT8 accuracy on a trained classifier (GPU machine).

  python3 bench/cuda/int8_accuracy.py --bench native/build-gpu/kiln_cuda_bench --out $OUT [--train-s 45]

Generates a 10-class data set of structured 3x32x32 images (per class: a mix of oriented gratings
and a colour blob at class-specific frequencies/positions; per sample: random phase, jitter,
contrast, noise), trains a small ResNet (3 stages, 16-32-64 channels, BatchNorm) on the GPU for
--train-s seconds, exports it to ONNX (dynamic batch), then builds Kiln engines with
kiln_cuda_bench: FP32, FP16 and INT8 calibrated on --calib training images (entropy; percentile and
minmax too). Held-out images (never seen in training or calibration) run through every engine; the
report is top-1 agreement with PyTorch FP32 and top-1 accuracy against the labels.
Writes accuracy.json and accuracy.md under --out.
"""
import argparse
import json
import math
import os
import subprocess
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def make_data(n, gen, dev):
    labels = torch.randint(0, 10, (n,), generator=gen, device=dev)
    yy, xx = torch.meshgrid(torch.arange(32, device=dev, dtype=torch.float32),
                            torch.arange(32, device=dev, dtype=torch.float32), indexing="ij")
    cls = labels.float()[:, None, None]
    angle = cls * (math.pi / 10) + 0.15 * torch.randn(n, 1, 1, generator=gen, device=dev)
    freq = 0.25 + 0.05 * (labels % 5).float()[:, None, None] + 0.02 * torch.randn(n, 1, 1, generator=gen, device=dev)
    phase = 2 * math.pi * torch.rand(n, 1, 1, generator=gen, device=dev)
    grating = torch.sin(freq * (xx * torch.cos(angle) + yy * torch.sin(angle)) + phase)
    cx = 8 + 16 * ((labels * 3) % 10).float()[:, None, None] / 9 + 2 * torch.randn(n, 1, 1, generator=gen, device=dev)
    cy = 8 + 16 * ((labels * 7) % 10).float()[:, None, None] / 9 + 2 * torch.randn(n, 1, 1, generator=gen, device=dev)
    blob = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 30)
    colour = torch.stack([torch.cos(cls * 0.6), torch.sin(cls * 0.9), torch.cos(cls * 1.3 + 1)], 1)  # [n,3,1,1]
    contrast = 0.6 + 0.8 * torch.rand(n, 1, 1, 1, generator=gen, device=dev)
    x = contrast * (grating[:, None] * 0.8 + blob[:, None] * colour)
    x = x + 0.35 * torch.randn(n, 3, 32, 32, generator=gen, device=dev)
    return x, labels


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class SmallResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.layers = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2), Block(64, 64, 1))
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def kiln(bench, onnx, precision, x, out, calib=None, method="entropy"):
    dump = os.path.join(out, "acc-dump", f"{precision}-{method}")
    os.makedirs(dump, exist_ok=True)
    x.numpy().tofile(os.path.join(dump, "x.in"))
    args = [bench, "--model", onnx, "--precision", precision, "--runs", "3", "--warmup", "1",
            "--input", f"input={dump}/x.in", "--shape", "input=" + "x".join(map(str, x.shape)), "--dump", dump]
    if calib is not None:
        calib.numpy().tofile(os.path.join(dump, "calib.bin"))
        args += ["--calib", f"input={dump}/calib.bin", "--calib-shape", "input=" + "x".join(map(str, calib.shape)),
                 "--calib-method", method]
    proc = subprocess.run(args, capture_output=True, text=True)
    line = (proc.stdout.strip().splitlines() or ["{}"])[-1]
    try:
        r = json.loads(line)
    except json.JSONDecodeError:
        r = {"error": proc.stdout[-1500:] + proc.stderr[-1500:]}
    if "error" in r:
        return r, None
    logits = np.fromfile(os.path.join(dump, "logits.bin"), dtype=np.float32).reshape(x.shape[0], 10)
    return r, torch.from_numpy(logits)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--train-s", type=float, default=45)
    ap.add_argument("--calib", type=int, default=512)
    ap.add_argument("--test", type=int, default=5000)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    dev = torch.device("cuda")
    torch.manual_seed(0)
    gen = torch.Generator(device=dev).manual_seed(1)
    train_x, train_y = make_data(50000, gen, dev)
    test_x, test_y = make_data(a.test, torch.Generator(device=dev).manual_seed(2), dev)
    model = SmallResNet().to(dev)
    opt = torch.optim.AdamW(model.parameters(), 2e-3, weight_decay=1e-4)
    t0, steps = time.time(), 0
    model.train()
    while time.time() - t0 < a.train_s:
        idx = torch.randint(0, train_x.shape[0], (256,), device=dev)
        loss = F.cross_entropy(model(train_x[idx]), train_y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    model.eval()
    with torch.inference_mode():
        ref = model(test_x).float().cpu()
    res = {"train_steps": steps, "train_s": round(time.time() - t0, 1), "final_loss": float(loss),
           "test_images": a.test, "calib_images": a.calib,
           "torch_fp32_accuracy": float((ref.argmax(1) == test_y.cpu()).float().mean())}
    onnx = os.path.join(a.out, "small-resnet.onnx")
    torch.onnx.export(model.cpu(), (torch.randn(1, 3, 32, 32),), onnx, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}}, opset_version=17, dynamo=False)
    calib = train_x[:a.calib].cpu().contiguous()  # training images, disjoint from the held-out set
    x = test_x.cpu().contiguous()
    labels = test_y.cpu()
    runs = [("fp32", "entropy"), ("fp16", "entropy"), ("int8", "entropy"), ("int8", "percentile"), ("int8", "minmax")]
    for precision, method in runs:
        r, logits = kiln(a.bench, onnx, precision, x, a.out, calib if precision == "int8" else None, method)
        key = precision if precision != "int8" else f"int8_{method}"
        entry = {k: r[k] for k in ("gpu_ms", "layer_precisions", "warnings", "error") if k in r}
        if logits is not None:
            entry["top1_agreement_vs_torch_fp32"] = float((logits.argmax(1) == ref.argmax(1)).float().mean())
            entry["accuracy"] = float((logits.argmax(1) == labels).float().mean())
            entry["max_rel_err_vs_torch_fp32"] = float((logits - ref).abs().max() / ref.abs().max())
        res[key] = entry
        print(key, json.dumps(entry), flush=True)
        with open(os.path.join(a.out, "accuracy.json"), "w") as f:
            json.dump(res, f, indent=1)
    lines = [f"Small ResNet (16-32-64, {steps} steps / {res['train_s']} s of training on generated data), "
             f"{a.test} held-out images, INT8 calibrated on {a.calib} training images.", "",
             f"PyTorch FP32 accuracy: {res['torch_fp32_accuracy']:.4f}", "",
             "| engine | top-1 agreement vs PyTorch FP32 | accuracy | max rel err of logits | layers |",
             "| --- | --- | --- | --- | --- |"]
    for precision, method in runs:
        key = precision if precision != "int8" else f"int8_{method}"
        e = res.get(key, {})
        lines.append(f"| {key} | {e.get('top1_agreement_vs_torch_fp32', '-')} | {e.get('accuracy', '-')} | "
                     f"{e.get('max_rel_err_vs_torch_fp32', '-')} | {json.dumps(e.get('layer_precisions', {}))} |"
                     + (f" error: {e['error'][:300]}" if "error" in e else ""))
    with open(os.path.join(a.out, "accuracy.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
