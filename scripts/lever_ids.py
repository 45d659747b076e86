"""Issue 12, lever 1 (the float tail), measured on real frames: the class ids of a runtime-upsampling model by the
boundary-only argmax (``fcnedge.runtime.upsample.upsampled_ids``) against the plain way (upsample every class to
full resolution with OpenCV, then argmax), on the stride-s logits of the shipped int8 model for CamVid val frames
(320x480 crops), interleaved in one process; also the share of boundary cells and the agreement of the two.

Usage: .venv/bin/python scripts/lever_ids.py [CAMVID] [--frames 20] [--runs 30] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np

from fcnedge.benchmarks.timing import median_ms
from fcnedge.catalog import get_weights
from fcnedge.data.datasets import open_dataset
from fcnedge.exporters.standalone import convert_onnx
from fcnedge.host import cpu_flags, cpu_model
from fcnedge.runtime import open_predictor
from fcnedge.runtime.postprocess import argmax_ids
from fcnedge.runtime.upsample import boundary_cells, upsample_bilinear, upsampled_ids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("camvid", nargs="?", type=Path, default=Path("../shared/datasets/camvid"))
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fast = Path(tmp) / "rt.onnx"
        convert_onnx(get_weights().path(), fast, runtime_upsampling=True, uint8_input=True, force=False)
        pred = open_predictor(fast, threads=args.threads)
        session = pred.session
        ds = open_dataset(args.camvid, "camvid", "val")
        lows = []
        for i, (img, _) in enumerate(ds):
            if i >= args.frames:
                break
            buf = np.ascontiguousarray(img[:320].transpose(2, 0, 1)[None])
            lows.append(session.run_graph(buf)[0])
    s = session.upsample_stride
    ways = {
        "boundary": lambda low: upsampled_ids(low, s, threads=args.threads),
        "plain": lambda low: argmax_ids(upsample_bilinear(low[None], s)[0], threads=args.threads),
    }
    agree = [float((ways["boundary"](low) == ways["plain"](low)).mean()) for low in lows]
    # one timed call runs every frame; the medians are per frame
    per_call = median_ms({k: (lambda fn=fn: [fn(low) for low in lows]) for k, fn in ways.items()}, runs=args.runs)
    med = {k: v / len(lows) for k, v in per_call.items()}
    shares = []
    for low in lows:
        shares.append(float(boundary_cells(argmax_ids(low))[1].mean()))
    res = {
        "cpu": cpu_model(),
        "flags": sorted(set(cpu_flags()) & {"avx2", "avx512f", "avx512_vnni", "amx_tile", "avx512_bf16"}),
        "stride": s,
        "frames": len(lows),
        "boundary_ms": med["boundary"],
        "plain_ms": med["plain"],
        "speedup": med["plain"] / med["boundary"],
        "boundary_cell_share": statistics.median(shares),
        "min_agreement": min(agree),
    }
    print(
        f"{res['cpu']} ({', '.join(res['flags'])}), stride {s}, {len(lows)} CamVid val frames (320x480): "
        f"boundary-only argmax {med['boundary']:.2f} ms, plain upsample + argmax {med['plain']:.2f} ms "
        f"({res['speedup']:.2f}x); boundary cells {100 * res['boundary_cell_share']:.1f} % (median); "
        f"ids agree on >= {100 * res['min_agreement']:.3f} % of pixels"
    )
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
