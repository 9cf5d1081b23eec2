#!/usr/bin/env python3
"""Every INT8 convolution candidate's time per layer, from a Kiln timing cache.

    python3 bench/cuda/candidates.py TIMING_CACHE [--top 6] > candidates.md

A build with KILN_CUDA_TIMING_CACHE=<file> appends, per INT8 convolution geometry, the ranked list
of every candidate it timed (int8_kernels.cc: "tile,fused,dp4a,ms,algorithm;" fastest first). This
prints one row per geometry: the winner, the fastest candidate of each kernel family, and the top
few, so one GPU run shows how every tile fares on every layer and not only which one won.
"""
import argparse
import re
import sys

# Tile numbers (implicit_gemm_conv.h, wgmma_conv.cu): 0-10 the mma.sync tiles, then the wgmma
# tiles in kWgmmaLaunches, kPersistentTiles (ring, then warp-specialized), kShiftedTiles, kTmaTiles and
# kTransposedTiles, kTmaConvTiles order.
FAMILIES = [(0, 10, "mma.sync"), (11, 18, "wgmma"), (19, 23, "ring"), (24, 28, "ws"), (29, 34, "shift"), (35, 47, "tma"),
            (48, 51, "shiftT"), (52, 58, "tmaconv")]


def family(tile, dp4a):
    if dp4a:
        return "dp4a"
    if tile < 0:
        return "cublaslt"
    for lo, hi, name in FAMILIES:
        if lo <= tile <= hi:
            return name
    return "tile"


def label(tile, fused, dp4a):
    if dp4a:
        return "dp4a"
    if tile < 0:
        return "cublaslt" + ("" if fused else "+requant")
    return "t%d" % tile


def parse(path):
    rows = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("\t")
            if not key.startswith("int8conv|") or not value:
                continue
            # int8conv|<device>|x<N>x<H>x<W>x<C> k<K> kpad.. r.s.. st.. p.. d.. z. r. tiles...
            geometry = key.split("|", 2)[2]
            geometry = re.sub(r" tiles\S*$", "", geometry)
            entries = []
            for entry in value.split(";"):
                parts = entry.split(",")
                if len(parts) < 4:
                    continue
                tile, fused, dp4a, ms = int(parts[0]), parts[1] == "1", parts[2] == "1", float(parts[3])
                # timeLaunches times three launches together
                entries.append((ms / 3, label(tile, fused, dp4a), family(tile, dp4a)))
            if entries:
                rows[geometry] = sorted(entries)  # the last line for a key wins, as in the cache
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache")
    parser.add_argument("--top", type=int, default=6)
    args = parser.parse_args()
    rows = parse(args.cache)
    if not rows:
        sys.exit("no INT8 convolution timings in " + args.cache)
    families = ["mma.sync", "wgmma", "ring", "ws", "shift", "tma", "shiftT", "tmaconv", "cublaslt"]
    print("INT8 convolution candidates per geometry (ms per launch at build time; (n.nnx): against the best).\n")
    print("| geometry | best | " + " | ".join("best " + f for f in families) + " | top %d |" % args.top)
    print("| --- | --- | " + " | ".join("---" for _ in families) + " | --- |")
    for geometry, entries in sorted(rows.items(), key=lambda kv: -kv[1][0][0]):
        best = entries[0]
        cells = []
        for name in families:
            found = next((e for e in entries if e[2] == name), None)
            cells.append("%s %.4f (%.2fx)" % (found[1], found[0], found[0] / best[0]) if found else "-")
        top = ", ".join("%s %.4f" % (e[1], e[0]) for e in entries[: args.top])
        print("| %s | %s %.4f | %s | %s |" % (geometry, best[1], best[0], " | ".join(cells), top))


if __name__ == "__main__":
    main()
