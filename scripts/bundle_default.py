"""Package the trained CamVid model as fcnedge's bundled default (how the shipped files were made).

Usage: .venv/bin/python scripts/bundle_default.py runs/v2/lite0_8s_v2.pt ../shared/datasets/camvid
Writes fcnedge/models/weights/fcn_lite0_camvid.pt (fp16 storage) and fcn_lite0_camvid.int8.onnx (int8 QDQ,
calibrated on 32 CamVid train images, gated on CamVid val at a 0.3-point drop: 7- or 8-bit weights by trial, worst
layers back to float if needed) and prints the figures for MODEL_CARD.md and the sha256/size records for
fcnedge/catalog.py. The checkpoint was chosen on held-out training sequences (train --select-on); val was scored
once, at the end of training, and again here for the shipped files.
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

TRAIN_COMMAND = (
    "fcnedge train --data ../shared/datasets/camvid --format camvid --arch fcn_efficientnet_lite0 --head 8s "
    "--freeze-upsampling --epochs 30 --batch-size 8 --crop 352x480 --scale 0.75,1.75 --rotate 10 --jitter 0.3 "
    "--class-weighting --select-on 0006R0 --workers 2 --seed 0 -o runs/v2/lite0_8s_v2.pt"
)


def main(src: Path, camvid: Path) -> None:
    weights = Path(__file__).resolve().parents[1] / "fcnedge" / "models" / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    model, meta = load_checkpoint(src)
    log = json.loads(src.with_suffix(".log.json").read_text())
    key = "select" if "final_val" in log else "val"
    best = max(log["history"], key=lambda h: h[key]["miou"])
    val = log.get("final_val") or best["val"]
    meta = meta.with_provenance(
        command=TRAIN_COMMAND,
        train_wall_s=round(log["wall_s"]),
        best_epoch=best["epoch"],
        selected_on=key if key == "val" else "held-out training sequence 0006R0",
        selection_miou=best[key]["miou"],
        val_per_class_iou=val["per_class_iou"],
        val_pixel_accuracy=val["pixel_accuracy"],
        train_images_per_s=round(sum(h["images_per_s"] for h in log["history"]) / len(log["history"]), 2),
        storage="float16",
    )
    ckpt = weights / "fcn_lite0_camvid.pt"
    save_checkpoint(ckpt, model, meta, force=True, half=True)
    assert read_checkpoint(ckpt)["meta"]["arch"] == meta.arch
    model16, meta16 = load_checkpoint(ckpt)  # what users get: fp16-stored weights, computed in fp32
    q = QuantSpec(calib_data=camvid, calib_format=DataFormat.CAMVID, calib_count=32)
    spec = ExportSpec(output=weights / "fcn_lite0_camvid.int8.onnx", quantize=Quantize.INT8, quant=q, force=True)
    report = run(spec, model16, meta16, gate=GateSpec(camvid, "camvid", max_drop=0.3), threads=2)
    print(
        json.dumps(
            {
                "checkpoint_bytes": ckpt.stat().st_size,
                "int8_bytes": spec.output.stat().st_size,
                "accuracy": report["accuracy"],
                "steps_s": report["steps_s"],
                "catalog": {  # paste into fcnedge/catalog.py: the runtime refuses files whose hash differs
                    p.name: {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "bytes": p.stat().st_size}
                    for p in (ckpt, spec.output)
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
