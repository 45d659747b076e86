"""Write copies of a bundled model's files with an inference scale and tile in their meta (weights untouched).

Usage: .venv/bin/python scripts/set_inference.py MODEL.pt MODEL.int8.onnx --scale 1.25 --tile 480x608 -o OUTDIR

Round 5 of MODEL_CARD.md: the bundled model runs 360x480 frames at scale 1.25 as one 480x608 tile. The checkpoint's
payload and the ONNX graph are copied as they are; only the ``fcnedge.meta`` entry changes (``scale``, ``tile``),
so the logits of a given input are bit-identical. Prints the sha256/size records for fcnedge/catalog.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import onnx
import torch

from fcnedge.exporters.onnx_meta import embed_meta, read_meta_props
from fcnedge.fsutil import atomic_write, check_output
from fcnedge.models.checkpoint import payload_meta, read_checkpoint
from fcnedge.specs import parse_hw


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("onnx_file", type=Path)
    ap.add_argument("--scale", type=float, required=True)
    ap.add_argument("--tile", required=True)
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args()
    tile = parse_hw(args.tile, what="--tile")
    args.out.mkdir(parents=True, exist_ok=True)
    ck_out, onnx_out = args.out / args.checkpoint.name, args.out / args.onnx_file.name
    for p in (ck_out, onnx_out):
        check_output(p, force=False)

    payload = read_checkpoint(args.checkpoint)
    meta = replace(payload_meta(args.checkpoint, payload), scale=args.scale, tile=tile)
    payload["meta"] = meta.to_dict()
    atomic_write(ck_out, lambda tmp: torch.save(payload, tmp))

    model = onnx.load(str(args.onnx_file))
    onnx_meta = read_meta_props(model)
    if onnx_meta is None:
        raise SystemExit(f"{args.onnx_file} carries no fcnedge meta: pass an fcnedge export")
    embed_meta(model, replace(onnx_meta, scale=args.scale, tile=tile))
    atomic_write(onnx_out, lambda tmp: onnx.save(model, str(tmp)))

    records = {
        p.name: {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "bytes": p.stat().st_size}
        for p in (ck_out, onnx_out)
    }
    print(json.dumps({"scale": args.scale, "tile": list(tile), "catalog": records}, indent=2))


if __name__ == "__main__":
    main()
