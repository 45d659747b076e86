"""Label-only statistics of Pole (id 2) per sequence / split: pixel fraction, horizontal run widths (how thin the
poles are), frames with any Pole. No model is scored."""

from pathlib import Path

import cv2
import numpy as np

root = Path("../shared/datasets/camvid")
P = 2
out = {}
for split in ("train", "val"):
    for mp in sorted((root / f"{split}annot").glob("*.png")):
        key = f"{split}:{mp.name.split('_')[0]}"
        m = cv2.imread(str(mp), cv2.IMREAD_GRAYSCALE)
        r = out.setdefault(key, {"frames": 0, "px": 0, "all_px": 0, "frames_with_pole": 0, "runs": []})
        r["frames"] += 1
        pole = m == P
        r["px"] += int(pole.sum())
        r["all_px"] += int((m != 11).sum())
        r["frames_with_pole"] += int(pole.any())
        # horizontal run lengths of Pole
        d = np.diff(np.pad(pole.astype(np.int8), ((0, 0), (1, 1))), axis=1)
        starts = np.argwhere(d == 1)
        ends = np.argwhere(d == -1)
        r["runs"].extend((ends[:, 1] - starts[:, 1]).tolist())
for k, r in out.items():
    runs = np.array(r.pop("runs"))
    r["pole_frac"] = round(r["px"] / r["all_px"], 4)
    r["run_width_median"] = float(np.median(runs)) if len(runs) else None
    r["rows_width_le2"] = round(float((runs <= 2).mean()), 3) if len(runs) else None
    r["rows_width_le4"] = round(float((runs <= 4).mean()), 3) if len(runs) else None
    r.pop("px")
    r.pop("all_px")
    print(k, r)
