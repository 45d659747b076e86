"""Where Pole is lost (explanation only, chooses nothing): Pole recall/precision and what its pixels become, on the
held-out training sequence 0006R0 and on val, for one model as users run it; and recall by pole width (the
horizontal run of Pole pixels each labelled Pole pixel sits in)."""

import sys
from pathlib import Path

import numpy as np

from fcnedge.data.datasets import open_camvid
from fcnedge.data.splits import sequence_of
from fcnedge.metrics import ConfusionMatrix
from fcnedge.runtime.open import open_predictor

model = sys.argv[1] if len(sys.argv) > 1 else None
pred = open_predictor(model, threads=2)
names = pred.meta.class_names
P = names.index("Pole")
camvid = Path("../shared/datasets/camvid")


def run_widths(mask):
    """Per pixel: the length of the horizontal run of Pole it belongs to (0 where not Pole)."""
    w = np.zeros(mask.shape, np.int32)
    pole = mask == P
    for r in range(mask.shape[0]):
        row = pole[r]
        if not row.any():
            continue
        d = np.diff(np.r_[0, row.astype(np.int8), 0])
        for s, e in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
            w[r, s:e] = e - s
    return w


bins = [(1, 2), (3, 4), (5, 8), (9, 1000)]
for label, split, seq in (("0006R0", "train", "0006R0"), ("val", "val", None)):
    ds = open_camvid(camvid, split)
    cm = ConfusionMatrix(pred.meta.num_classes, ds.info.ignore_index)
    hit = {b: [0, 0] for b in bins}
    frames_with_pole = 0
    for (ip, _), (img, mask) in zip(ds.pairs, ds, strict=True):
        if seq and sequence_of(ip) != seq:
            continue
        ids = pred.predict(img)
        cm.update(mask, ids)
        w = run_widths(mask)
        frames_with_pole += bool((mask == P).any())
        for lo, hi in bins:
            sel = (w >= lo) & (w <= hi)
            hit[(lo, hi)][0] += int((ids[sel] == P).sum())
            hit[(lo, hi)][1] += int(sel.sum())
    m = cm.matrix.astype(float)
    tp = m[P, P]
    print(
        label,
        f"Pole IoU {tp / (m[P].sum() + m[:, P].sum() - tp):.3f}",
        f"recall {tp / m[P].sum():.3f} precision {tp / m[:, P].sum():.3f}",
        "pole px %.4f" % (m[P].sum() / m.sum()),
        "pred pole px %.4f" % (m[:, P].sum() / m.sum()),
        "frames with pole",
        frames_with_pole,
    )
    print("  truth Pole ->", {names[j]: round(m[P, j] / m[P].sum(), 3) for j in np.argsort(-m[P])[:5]})
    print("  pred Pole <-", {names[j]: round(m[j, P] / m[:, P].sum(), 3) for j in np.argsort(-m[:, P])[:5]})
    print(
        "  recall by run width",
        {
            f"{lo}-{hi}": (round(a / b, 3) if b else None, round(b / max(1, m[P].sum()), 3))
            for (lo, hi), (a, b) in hit.items()
        },
    )
