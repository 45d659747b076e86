"""Explanation only: per val frame, Pole pixels missed; component recall; and one picture of the frame that misses the
most (truth Pole red, predicted Pole green, both yellow), left: image, right: truth classes."""

import sys
from pathlib import Path

import cv2
import numpy as np

from fcnedge.data.datasets import open_camvid
from fcnedge.data.splits import sequence_of
from fcnedge.runtime.open import open_predictor

pred = open_predictor(sys.argv[1], threads=2)
P = pred.meta.class_names.index("Pole")
for split, seq in (("train", "0006R0"), ("val", None)):
    ds = open_camvid(Path("../shared/datasets/camvid"), split)
    comps = found = 0
    worst = (-1, None)
    for (ip, _), (img, mask) in zip(ds.pairs, ds, strict=True):
        if seq and sequence_of(ip) != seq:
            continue
        ids = pred.predict(img)
        n, lab = cv2.connectedComponents((mask == P).astype(np.uint8), connectivity=8)
        for c in range(1, n):
            sel = lab == c
            if sel.sum() < 20:
                continue
            comps += 1
            found += (ids[sel] == P).mean() >= 0.3
        missed = int(((mask == P) & (ids != P)).sum())
        if missed > worst[0]:
            worst = (missed, (ip, img, mask, ids))
    print(
        split,
        seq or "",
        "pole components (>=20 px)",
        comps,
        "found (>=30 % of pixels Pole)",
        found,
        round(found / max(1, comps), 3),
    )
    ip, img, mask, ids = worst[1]
    vis = img.copy()
    t, p_ = mask == P, ids == P
    vis[t & ~p_] = (255, 0, 0)
    vis[p_ & ~t] = (0, 255, 0)
    vis[t & p_] = (255, 255, 0)
    pal = np.array([tuple(c) for c in pred.meta.palette] + [(0, 0, 0)] * 4, dtype=np.uint8)
    out = np.concatenate([vis, pal[np.minimum(mask, len(pal) - 1)]], axis=1)
    Path("runs/r12").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(f"runs/r12/pole_look_{split}.png", cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
    print("  worst frame", Path(ip).name, "missed", worst[0])
