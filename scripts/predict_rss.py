"""Peak memory of `fcnedge predict` through the CLI on large images (the bounded-memory promise, measured).

Usage: .venv/bin/python scripts/predict_rss.py [MODEL] [--sizes 1024x2048,10000x10000,12000x12000]
Writes runs/rss/report.json and prints one line per size: wall time and the child process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from fcnedge.data.synthetic import synthetic_images
from fcnedge.host import cpu_model


def make_jpeg(path: Path, h: int, w: int) -> None:
    """A large seeded photo-like JPEG, made by tiling a smooth random patch."""
    if path.exists():
        return
    patch = synthetic_images([(512, 512)], seed=3)[0]
    img = np.tile(patch, (-(-h // 512), -(-w // 512), 1))[:h, :w]
    cv2.imwrite(str(path), np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 90])


def run_child(args: list[str]) -> tuple[int, float, float]:
    """Run a command; return its exit code, wall seconds and its own peak RSS in MiB (os.wait4's rusage)."""
    t = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    return os.waitstatus_to_exitcode(status), wall, usage.ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="default")
    ap.add_argument("--sizes", default="1024x2048,10000x10000,12000x12000")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/rss"))
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    fe = str(Path(sys.executable).with_name("fcnedge"))
    rows = []
    for size in a.sizes.split(","):
        h, w = (int(v) for v in size.split("x"))
        img = a.out / f"img{h}x{w}.jpg"
        make_jpeg(img, h, w)
        code, wall, rss = run_child(
            [fe, "predict", a.model, str(img), "-o", str(a.out / "masks"), "--threads", str(a.threads), "--force"]
        )
        rows.append({"size": size, "exit_code": code, "wall_s": round(wall, 2), "peak_rss_mib": round(rss, 1),
                     "image_mib": round(h * w * 3 / 2**20, 1)})  # fmt: skip
        print(f"{size:>12}: exit {code}, {wall:6.1f} s, peak RSS {rss:7.1f} MiB (the RGB image alone "
              f"{h * w * 3 / 2**20:.0f} MiB)", flush=True)  # fmt: skip
    report = {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(), "model": a.model,
              "threads": a.threads, "command": "fcnedge predict MODEL IMAGE -o OUT", "rows": rows}  # fmt: skip
    (a.out / "report.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
