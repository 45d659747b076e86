"""Package the trained CamVid model as fcnedge's bundled default (how the shipped files were made).

Usage: .venv/bin/python scripts/bundle_default.py RUN.pt ../shared/datasets/camvid "COMMAND" [OUTDIR [NAME]]
(COMMAND: the fcnedge train command(s) that made RUN.pt, recorded in the checkpoint's provenance; OUTDIR: where to
write the two files, default the package's weights folder — a candidate goes elsewhere until it is chosen; NAME:
the files' stem, default fcn_lite0_camvid). The checkpoint's meta (inference scale and tile included) is what the
files carry.

Writes fcnedge/models/weights/fcn_lite0_camvid.pt (fp16 storage) and fcn_lite0_camvid.int8.onnx (int8 QDQ,
calibrated on 32 CamVid train images, gated on CamVid val at a 0.3-point drop: 7- or 8-bit weights by trial, worst
layers back to float if needed) and prints the figures for MODEL_CARD.md and the sha256/size records for
fcnedge/catalog.py. The checkpoint is whatever the run declared: chosen on held-out training sequences
(train --select-on) or the last epoch of a fixed schedule (train --keep-last); either way val was scored once, at
the end of training, and is scored again here for the shipped files.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from fcnedge.exporters.pipeline import GateSpec, run
from fcnedge.models import load_checkpoint, save_checkpoint
from fcnedge.models.checkpoint import read_checkpoint
from fcnedge.specs import DataFormat, ExportSpec, Quantize, QuantSpec


def main(src: Path, camvid: Path, command: str, weights: Path | None = None, name: str = "fcn_lite0_camvid") -> None:
    weights = weights or Path(__file__).resolve().parents[1] / "fcnedge" / "models" / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    model, meta = load_checkpoint(src)
    log = json.loads(src.with_suffix(".log.json").read_text())
    if "final_val" not in log:
        raise SystemExit(f"{src}: val chose this checkpoint; bundle a run trained with --select-on or --keep-last")
    val = log["final_val"]
    meta = meta.with_provenance(
        command=command,
        train_wall_s=round(log["wall_s"]),
        val_per_class_iou=val["per_class_iou"],
        val_pixel_accuracy=val["pixel_accuracy"],
        train_images_per_s=round(sum(h["images_per_s"] for h in log["history"]) / len(log["history"]), 2),
        storage="float16",
    )
    ckpt = weights / f"{name}.pt"
    save_checkpoint(ckpt, model, meta, force=True, half=True)
    assert read_checkpoint(ckpt)["meta"]["arch"] == meta.arch
    model16, meta16 = load_checkpoint(ckpt)  # what users get: fp16-stored weights, computed in fp32
    q = QuantSpec(calib_data=camvid, calib_format=DataFormat.CAMVID, calib_count=32)
    spec = ExportSpec(output=weights / f"{name}.int8.onnx", quantize=Quantize.INT8, quant=q, force=True)
    report = run(spec, model16, meta16, gate=GateSpec(camvid, "camvid", max_drop=0.3), threads=2)
    print(
        json.dumps(
            {
                "checkpoint_bytes": ckpt.stat().st_size,
                "int8_bytes": spec.output.stat().st_size,
                "accuracy": report.accuracy,
                "steps_s": report.steps_s,
                "catalog": {  # paste into fcnedge/catalog.py: the runtime refuses files whose hash differs
                    p.name: {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "bytes": p.stat().st_size}
                    for p in (ckpt, spec.output)
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main(
        Path(sys.argv[1]),
        Path(sys.argv[2]),
        sys.argv[3],
        Path(sys.argv[4]) if len(sys.argv) > 4 else None,
        sys.argv[5] if len(sys.argv) > 5 else "fcn_lite0_camvid",
    )
