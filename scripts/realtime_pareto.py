"""The speed/accuracy trade-off of the bundled models on this machine: every model x scale x engine that
``--fps`` chooses from, its ms per frame (``predict`` through the seam, timed here once and cached, as ``demo --fps``
times it) against its val mIoU, the Pareto front, and what ``--fps 15 / 30 / 60`` pick.

Usage: .venv/bin/python scripts/realtime_pareto.py [--frame 352x480] [--threads N] [--out docs/realtime]
Writes OUT.csv (one line per configuration, with the CPU and its int8 instructions) and OUT.png; prints the table.
Run it when nothing else uses the cores (the first run times each configuration).
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from fcnedge.benchmarks.machine import machine_facts
from fcnedge.errors import ConfigError
from fcnedge.host import int8_isa
from fcnedge.runtime.budget import Candidate, bundled_timings, pick
from fcnedge.specs import parse_hw

FPS = (15, 30, 60)


def pareto(cands: list[Candidate]) -> list[Candidate]:
    """The configurations no other one beats in both time and accuracy, fastest first."""

    def beats(o: Candidate, c: Candidate) -> bool:
        oms, cms = o.ms or 0.0, c.ms or 0.0
        return oms <= cms and o.miou >= c.miou and (oms < cms or o.miou > c.miou)

    front = [c for c in cands if not any(beats(o, c) for o in cands)]
    return sorted(front, key=lambda c: c.ms or 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frame", default="352x480", help="the frame the model runs on (the demo's --input-size)")
    ap.add_argument("--threads", type=int, default=0, help="threads (0: the cores)")
    ap.add_argument("--out", type=Path, default=Path("docs/realtime"))
    args = ap.parse_args()
    frame = parse_hw(args.frame, what="--frame")
    cands = bundled_timings(frame, threads=args.threads, say=print)
    threads = cands[0].threads
    front = pareto(cands)
    picks: dict[int, Candidate | None] = {}
    for fps in FPS:
        try:
            picks[fps] = pick(cands, 1e3 / fps, what=f"--fps {fps}")[0]
        except ConfigError:
            picks[fps] = None
    m = machine_facts()
    isa = " ".join(int8_isa(m["cpu_flags"]))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model", "scale", "engine", "threads", "ms_per_frame", "val_miou", "pareto", "picked_by", "frame",
                "cpu", "int8_isa"])  # fmt: skip
    for c in sorted(cands, key=lambda c: (c.scale, c.engine)):
        by = " ".join(f"--fps {f}" for f, p in picks.items() if p == c)
        w.writerow([c.model, c.scale, c.engine, c.threads, round(c.ms or 0.0, 2), c.miou, c in front, by,
                    args.frame, m["cpu"], isa])  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".csv").write_text(buf.getvalue())
    print(buf.getvalue(), end="")
    _plot(cands, front, picks, args.out.with_suffix(".png"), f"{m['cpu']}, {threads} threads, {args.frame} frames")
    print(f"wrote {args.out.with_suffix('.csv')} and {args.out.with_suffix('.png')}")


def _plot(cands: list[Candidate], front: list[Candidate], picks: dict[int, Candidate | None], path: Path,
          title: str) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for engine, marker in (("cpu", "o"), ("openvino", "s")):
        at = [c for c in cands if c.engine == engine]
        if at:
            ax.scatter([c.ms for c in at], [100 * c.miou for c in at], marker=marker, s=50,
                       label=f"{'ONNX Runtime' if engine == 'cpu' else 'OpenVINO'} int8")  # fmt: skip
    ax.plot([c.ms for c in front], [100 * c.miou for c in front], "k--", lw=1, label="Pareto front")
    for fps, c in picks.items():
        ax.axvline(1e3 / fps * 0.85, color="grey", lw=0.6, ls=":")
        if c is not None:
            ax.annotate(f"--fps {fps}: scale {c.scale:g}", (c.ms, 100 * c.miou), textcoords="offset points",
                        xytext=(6, -12), fontsize=8)  # fmt: skip
    ax.set_xlabel("ms per frame (predict, median; dotted: 85 % of the 15/30/60 FPS budgets)")
    ax.set_ylabel("CamVid val mIoU (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
