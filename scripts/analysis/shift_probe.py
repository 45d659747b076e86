"""Does a model's output sit shifted against the labels? Score a model on held-out TRAINING frames (a sequence
prefix; never val) with its full-resolution logits shifted by sub-pixel amounts (bilinear)."""

import json
import sys
from pathlib import Path

import cv2
import numpy as np

from fcnedge.data.datasets import open_camvid
from fcnedge.data.splits import sequence_of
from fcnedge.metrics import ConfusionMatrix
from fcnedge.runtime.open import open_predictor

model = sys.argv[1]
seq = sys.argv[2] if len(sys.argv) > 2 else "0006R0"
pred = open_predictor(model, threads=2)
ds = open_camvid(Path("../shared/datasets/camvid"), "train")
names = pred.meta.class_names
shifts = [(0, 0)] + [(dy, 0) for dy in (-0.6, -0.3, 0.3, 0.6)] + [(0, dx) for dx in (-0.3, 0.3)]
cms = {s: ConfusionMatrix(pred.meta.num_classes, ds.info.ignore_index) for s in shifts}
n = 0
for (ip, _), (img, mask) in zip(ds.pairs, ds, strict=True):
    if sequence_of(ip) != seq:
        continue
    lg = np.ascontiguousarray(pred.logits(img))
    h, w = mask.shape
    for dy, dx in shifts:
        if dy == 0 and dx == 0:
            ids = lg.argmax(0)
        else:
            m = np.float32([[1, 0, dx], [0, 1, dy]])
            sh = np.stack(
                [cv2.warpAffine(c, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for c in lg]
            )
            ids = sh.argmax(0)
        cms[(dy, dx)].update(mask, ids.astype(np.uint8))
    n += 1
P = names.index("Pole")
out = {}
for s, cm in cms.items():
    sc = cm.scores(names)
    out[f"dy={s[0]},dx={s[1]}"] = {
        "miou": round(sc["miou"], 4),
        **{k: round(sc["per_class_iou"][k], 4) for k in ("Pole", "SignSymbol", "Pedestrian", "Fence")},
    }
    print(f"dy={s[0]:+.1f} dx={s[1]:+.1f}", out[f"dy={s[0]},dx={s[1]}"], flush=True)
print(json.dumps({"model": model, "seq": seq, "frames": n, "shifts": out}))
