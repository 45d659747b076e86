"""Pole precision/recall of a model per TRAINING sequence (no val): is Pole under-fit or over-predicted?"""

import sys
from pathlib import Path

import numpy as np

from fcnedge.data.datasets import open_camvid
from fcnedge.data.splits import sequence_of
from fcnedge.metrics import ConfusionMatrix
from fcnedge.runtime.open import open_predictor

model = sys.argv[1] if len(sys.argv) > 1 else None
pred = open_predictor(model, threads=2)
ds = open_camvid(Path("../shared/datasets/camvid"), "train")
names = pred.meta.class_names
cms = {}
for (ip, _), (img, mask) in zip(ds.pairs, ds, strict=True):
    s = sequence_of(ip)
    cm = cms.setdefault(s, ConfusionMatrix(pred.meta.num_classes, ds.info.ignore_index))
    cm.update(mask, pred.predict(img))
P = names.index("Pole")
for s, cm in sorted(cms.items()):
    m = cm.matrix.astype(float)
    sc = cm.scores(names)
    tp = m[P, P]
    rec = tp / m[P].sum()
    prec = tp / m[:, P].sum()
    fn_to = {names[j]: round(m[P, j] / m[P].sum(), 3) for j in np.argsort(-m[P])[:4]}
    fp_from = {names[j]: round(m[j, P] / m[:, P].sum(), 3) for j in np.argsort(-m[:, P])[:4]}
    print(
        s,
        "mIoU",
        round(sc["miou"], 4),
        "Pole IoU",
        round(sc["per_class_iou"]["Pole"], 3),
        "recall",
        round(rec, 3),
        "precision",
        round(prec, 3),
        "pole px frac",
        round(m[P].sum() / m.sum(), 4),
        "truth->",
        fn_to,
        "pred<-",
        fp_from,
    )
