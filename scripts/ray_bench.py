"""Images/s of `fcnedge predict` on the local engine and on Ray (1 and 2 actors), same inputs, same model.

Usage: .venv/bin/python scripts/ray_bench.py [IMAGES_DIR] [--model default] [--timeout 300]
Default images: CamVid val (../shared/datasets/camvid/val). Writes runs/ray-bench/report.json and prints a table.
Each configuration runs `fcnedge predict` as its own process (Ray started by it, as a user's job would), so the
figures include Ray's start-up; the per-image overhead is reported against the local engine at the same threads.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from fcnedge.host import cpu_model

CONFIGS = [
    ("local, 1 thread", ["--threads", "1"]),
    ("local, 2 threads", ["--threads", "2"]),
    ("ray, 1 actor x 1 thread", ["--engine", "ray", "--actors", "1", "--threads-per-actor", "1"]),
    ("ray, 1 actor x 2 threads", ["--engine", "ray", "--actors", "1", "--threads-per-actor", "2"]),
    ("ray, 2 actors x 1 thread", ["--engine", "ray", "--actors", "2", "--threads-per-actor", "1"]),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("images", nargs="?", default="../shared/datasets/camvid/val")
    ap.add_argument("--model", default="default")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path("runs/ray-bench"))
    a = ap.parse_args()
    fe = str(Path(sys.executable).with_name("fcnedge"))
    n = len([p for p in Path(a.images).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")])
    rows = []
    for name, extra in CONFIGS:
        target = a.out / "masks"
        shutil.rmtree(target, ignore_errors=True)
        t = time.perf_counter()
        try:
            res = subprocess.run([fe, "predict", a.model, a.images, "-o", str(target), *extra], capture_output=True,
                                 text=True, timeout=a.timeout, env={**os.environ, "RAY_AUTH_MODE": "disabled"},
                                 check=False)  # fmt: skip
            code = res.returncode
        except subprocess.TimeoutExpired:
            code = None  # stalled
        wall = time.perf_counter() - t
        rows.append({"config": name, "exit_code": code, "wall_s": round(wall, 2), "images": n,
                     "images_per_s": round(n / wall, 2) if code == 0 else None})  # fmt: skip
        print(
            f"{name:>26}: " + (f"{n / wall:6.2f} images/s ({wall:.1f} s)" if code == 0 else f"exit {code}"), flush=True
        )
    by = {r["config"]: r for r in rows}
    for ray_name, local_name in (("ray, 1 actor x 1 thread", "local, 1 thread"),
                                 ("ray, 1 actor x 2 threads", "local, 2 threads")):  # fmt: skip
        r, loc = by[ray_name], by[local_name]
        if r["images_per_s"] and loc["images_per_s"]:
            r["overhead_ms_per_image"] = round(1e3 * (r["wall_s"] - loc["wall_s"]) / n, 1)
    a.out.mkdir(parents=True, exist_ok=True)
    report = {"cpu": cpu_model(), "cores": os.cpu_count(), "model": a.model, "images": a.images, "rows": rows}
    (a.out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps([{k: r.get(k) for k in ("config", "images_per_s", "overhead_ms_per_image")} for r in rows]))


if __name__ == "__main__":
    main()
