"""Issue 12, lever 2 (uint8 input), measured end to end: an int8 file against its ``--uint8-input`` form
(``fcnedge.exporters.uint8_input``), both opened through ``open_predictor`` and timed interleaved in one process on
the same 320x480 image (``predict``: input preparation, inference, argmax), ONNX Runtime, 2 threads.

For the bundled model (EfficientNet-Lite's (x - 127) / 128) the uint8 form drops the input QuantizeLinear and the
float normalisation: the pixels are the quantised input, and the logits are the same bits.

Usage: .venv/bin/python scripts/lever_uint8.py [INT8.onnx ...] [--runs 90] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import onnx

from fcnedge.benchmarks.timing import median_ms
from fcnedge.catalog import Catalog
from fcnedge.data.synthetic import synthetic_images
from fcnedge.exporters.uint8_input import to_uint8_input
from fcnedge.host import cpu_flags, cpu_model
from fcnedge.runtime import open_predictor
from fcnedge.runtime.session import read_onnx_meta


def measure(path: Path, img: np.ndarray, runs: int, threads: int, tmp: Path) -> dict[str, object]:
    """Both input forms of one file: identical logits?, then interleaved timing."""
    meta, _ = read_onnx_meta(path)
    assert meta is not None
    proto = onnx.load(str(path))
    facts = to_uint8_input(proto, meta)
    u8_path = tmp / f"{path.stem}.u8.onnx"
    onnx.save(proto, str(u8_path))
    preds = {"float": open_predictor(path, threads=threads), "uint8": open_predictor(u8_path, threads=threads)}
    same = bool(np.array_equal(preds["float"].logits(img), preds["uint8"].logits(img)))
    med = median_ms({k: (lambda pred=pred: pred.predict(img)) for k, pred in preds.items()}, runs=runs)
    ratio = med["float"] / med["uint8"]
    print(f"{path.name}: float input {med['float']:.2f} ms, uint8 input ({facts['form']}) {med['uint8']:.2f} ms "
          f"({ratio:.3f}x); identical logits: {same}")  # fmt: skip
    return {"model": str(path), "form": facts["form"], "float_ms": med["float"], "uint8_ms": med["uint8"],
            "speedup": ratio, "same_logits": same}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--runs", type=int, default=90)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    models = args.models or [Catalog.DEFAULT.value.path("onnx")]
    img = synthetic_images([(320, 480)])[0]
    with tempfile.TemporaryDirectory() as tmp:
        results = [measure(p, img, args.runs, args.threads, Path(tmp)) for p in models]
    doc = {"cpu": cpu_model(), "flags": cpu_flags(), "threads": args.threads, "runs": args.runs, "rows": results}
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
