"""Round 5 probe: 0006R0 mIoU of the lever runs v6, v12 (never trained on 0006R0) at inference scales s.
Whole frames: resize by s (bilinear), pad to a multiple of 32, run, crop, resize logits back, argmax."""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fcnedge.data.datasets import open_dataset
from fcnedge.data.splits import split_by_sequence
from fcnedge.metrics import ConfusionMatrix
from fcnedge.models.checkpoint import load_checkpoint

torch.set_num_threads(2)
scales = [float(s) for s in sys.argv[2].split(",")] if len(sys.argv) > 2 else [1.0, 1.25, 1.5, 1.75, 2.0]
ds = open_dataset(Path("../shared/datasets/camvid"), "camvid", "train")
_, held = split_by_sequence(ds, ("0006R0",))
samples = list(held)
out = {}
for ck in sys.argv[1].split(","):
    model, meta = load_checkpoint(Path(ck))
    model.eval()
    mean = torch.tensor(meta.mean).view(1, 3, 1, 1)
    std = torch.tensor(meta.std).view(1, 3, 1, 1)
    for s in scales:
        cm = ConfusionMatrix(meta.num_classes, meta.ignore_index)
        t0 = time.time()
        for img, mask in samples:
            h, w = img.shape[:2]
            x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
            x = (x - mean) / std
            H, W = round(h * s), round(w * s)
            if (h, w) != (H, W):
                x = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False)
            Hp, Wp = -(-H // 32) * 32, -(-W // 32) * 32
            x = F.pad(x, (0, Wp - W, 0, Hp - H))
            with torch.no_grad():
                y = model(x)[:, :, :H, :W]
            if (h, w) != (H, W):
                y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
            cm.update(mask, y[0].argmax(0).numpy().astype(np.uint8))
        sc = cm.scores(meta.class_names)
        out[f"{ck}@{s}"] = sc
        print(
            f"{ck} s={s}: mIoU {sc['miou']:.4f} Pole {sc['per_class_iou']['Pole']:.3f} "
            f"Sign {sc['per_class_iou']['SignSymbol']:.3f} ({time.time() - t0:.0f}s)",
            flush=True,
        )
Path("runs/r5").mkdir(parents=True, exist_ok=True)
Path("runs/r5/scale_probe.json").write_text(json.dumps(out, indent=1))
