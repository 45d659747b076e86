"""End-to-end latency of several models on the same frame, interleaved in one process (the 1.25x bound of issue 14:
a new bundled model against today's). Each model is opened through ``open_predictor`` and timed on ``predict``
(input preparation, tiled inference, argmax) in blocks that alternate between the models; medians are compared to
the first model's.

Usage: .venv/bin/python scripts/compare_latency.py BASE.onnx NEW.onnx [...] [--image FRAME.png] [--runs 90]
       [--threads 2] [--tiles 320x480,384x480] [--json OUT.json]

A model may carry an inference scale and a tile: ``NEW.onnx@1.25@480x608`` runs it at scale 1.25 with one 480x608
tile (``predict --scale 1.25 --tile 480x608``); without them the model's own (its meta's, else 1 and 320x480).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from fcnedge.benchmarks.timing import median_ms
from fcnedge.data.synthetic import synthetic_images
from fcnedge.host import cpu_flags, cpu_model
from fcnedge.runtime import open_predictor
from fcnedge.specs import parse_hw


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+", help="MODEL.onnx, or MODEL.onnx@SCALE or MODEL.onnx@SCALE@HxW")
    ap.add_argument("--image", type=Path, help="an RGB frame (default: a synthetic 360x480 image)")
    ap.add_argument("--runs", type=int, default=90)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tiles", help="tile sizes to time each model at, e.g. 320x480,384x480 (default: its own)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.image:
        bgr = cv2.imread(str(args.image), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"--image {args.image} is not a readable image: pass a PNG or JPEG frame")
        img = np.ascontiguousarray(bgr[:, :, ::-1])
    else:
        img = synthetic_images([(360, 480)], seed=0)[0]
    tiles = [parse_hw(s, what="--tiles") for s in args.tiles.split(",")] if args.tiles else [None]
    preds = {}
    for spec in args.models:
        path, *rest = spec.split("@")
        scale = float(rest[0]) if rest else None
        own_tile = parse_hw(rest[1], what="a model's tile") if len(rest) > 1 else None
        for tile in tiles:
            pred = open_predictor(Path(path), threads=args.threads, tile=tile or own_tile, scale=scale)
            h, w = pred.spec.size
            preds[f"{path} @ scale {pred.scale:g}, tile {h}x{w}"] = pred
    med = median_ms({k: (lambda pred=pred: pred.predict(img)) for k, pred in preds.items()}, runs=args.runs)
    base = next(iter(med.values()))
    rows = []
    for key, p50 in med.items():
        rows.append({"model": key, "p50_ms": p50, "ratio_to_first": p50 / base, "runs": args.runs})
        print(f"{key}: p50 {p50:.2f} ms ({p50 / base:.3f}x the first)")
    machine = {"cpu": cpu_model(), "flags": sorted(set(cpu_flags()) & {"avx2", "avx512f", "avx512_vnni", "amx_tile"})}
    print(f"frame {img.shape[0]}x{img.shape[1]}, {args.threads} threads, {machine['cpu']}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "frame": list(img.shape), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
