"""The numbers of docs/seed-qa.md, measured with fcnedge itself.

Usage: .venv/bin/python scripts/seed_qa.py               questions 2, 4 and 6 (no training; about a minute)
       .venv/bin/python scripts/seed_qa.py --runs DIR    questions 1, 3 and 5 from the runs of scripts/seed_qa_runs.sh
Both print Markdown tables.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fcnedge.errors import CheckpointError
from fcnedge.models import bilinear_kernel, build, default_meta, load_checkpoint, save_checkpoint
from fcnedge.runtime.upsample import upsample_bilinear


def q2_sizes() -> None:
    """Output size of the seed's FCN (ResNet-18 features, one ConvTranspose 64/32/16) for input sides around
    multiples of 32, and the transposed-conv arithmetic for other kernel/padding pairs."""
    torch.manual_seed(0)
    model = build("fcn_resnet18", num_classes=21).eval()
    print("\n### Q2: output size of the seed's FCN\n\n| input H×W | output H×W | equal |\n|---|---|---|")
    with torch.no_grad():
        for h, w in ((320, 480), (352, 480), (64, 96), (360, 480), (321, 481), (100, 150)):
            out = model(torch.zeros(1, 3, h, w)).shape[2:]
            print(f"| {h}×{w} | {out[0]}×{out[1]} | {'yes' if tuple(out) == (h, w) else 'no'} |")
    print("\n| kernel k, padding p (stride 32) | output for 10 features (input 320) | input size kept at every n? |")
    print("|---|---|---|")
    for k, p in ((64, 16), (32, 0), (64, 0), (96, 32), (63, 16)):

        def out(n: int, k: int = k, p: int = p) -> int:
            return (n - 1) * 32 - 2 * p + k

        ok = all(out(n) == 32 * n for n in range(1, 65))
        print(f"| k={k}, p={p} | {out(10)} | {'yes' if ok else 'no'} |")


def q4_forms() -> None:
    """The transposed conv with a bilinear kernel against plain bilinear interpolation (OpenCV, half-pixel, zero
    border) on random logits: the largest difference."""
    print("\n### Q4: transposed conv with a bilinear kernel vs bilinear interpolation\n")
    print("| stride | max abs difference (random 11×15×20 logits) |\n|---|---|")
    for s in (2, 8, 16, 32):
        x = torch.randn(1, 11, 15, 20)
        ref = torch.nn.functional.conv_transpose2d(x, bilinear_kernel(11, 2 * s), stride=s, padding=s // 2)
        got = upsample_bilinear(x.numpy(), s)
        print(f"| {s} | {float(np.abs(got - ref.numpy()).max()):.2e} |")


def q6_loading() -> None:
    """What fcnedge's checkpoint loader accepts and refuses."""
    print("\n### Q6: what the checkpoint loader accepts\n\n| case | result |\n|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        good = build("fcn_tiny", num_classes=5)
        save_checkpoint(d / "ok.pt", good, default_meta("fcn_tiny", num_classes=5))
        cases = {"same architecture and classes": d / "ok.pt"}
        other = build("fcn_tiny", num_classes=3)  # weights of another head size under a 5-class meta
        save_checkpoint(d / "k.pt", other, default_meta("fcn_tiny", num_classes=5))
        cases["weights of a 3-class head under a 5-class meta"] = d / "k.pt"
        for name, path in cases.items():
            try:
                load_checkpoint(path)
                result = "loaded"
            except CheckpointError as exc:
                result = f"refused: {str(exc).split(':', 1)[1].strip()[:90]}…"
            print(f"| {name} | {result} |")
        try:
            load_checkpoint(d / "ok.pt", arch="fcn_resnet18")
            result = "loaded"
        except CheckpointError as exc:
            result = f"refused: {str(exc)[:90]}…"
        print(f"| asked for fcn_resnet18, file holds fcn_tiny | {result} |")


THIN = ("Pole", "SignSymbol", "Pedestrian", "Bicyclist")
TABLES = {
    "Q1: the 1×1 score conv (Lite0's 1280 stride-32 channels → K)": (
        ("32s", "1×1 → K (the seed)"),
        ("32s-mid128", "1×1 → 128, ReLU, 1×1 → K"),
        ("8s", "1×1 → K plus stride-16 and stride-8 skip scores"),
    ),
    "Q3: one ×32 transposed conv or stacked ×2": (
        ("32s", "one ×32 (k 64, p 16)"),
        ("32s-x2", "five ×2 (k 4, p 1)"),
        ("8s", "skip head: ×2, ×2, ×8"),
    ),
    "Q5: initialisation of the ×32 transposed conv": (
        ("bilinear-frozen", "bilinear, frozen"),
        ("32s", "bilinear, trained (the seed)"),
        ("bicubic-frozen", "bicubic (k 128, p 48), frozen"),
        ("bicubic-trained", "bicubic (k 128, p 48), trained"),
        ("random-frozen", "random (PyTorch default), frozen"),
        ("random-trained", "random (PyTorch default), trained"),
    ),
}


def _bench_rows(runs: Path) -> dict[str, dict[str, Any]]:
    report = json.loads((runs / "bench" / "report.json").read_text())
    return {Path(str(r["model"])).stem: r for r in report["rows"]}


def trained_tables(runs: Path) -> None:
    """Questions 1, 3 and 5: one table each from the training logs, export reports and the one bench run."""
    bench = _bench_rows(runs)
    head = "| variant | val mIoU | " + " | ".join(THIN) + " | ORT fp32 e2e p50 (ms) | upsampling after export |"
    for title, rows in TABLES.items():
        print(f"\n### {title}\n\n{head}\n|---|---|" + "---|" * (len(THIN) + 2))
        for name, label in rows:
            log = json.loads((runs / f"{name}.log.json").read_text())
            val = log["final_val"]
            export = json.loads((runs / f"{name}.report.json").read_text())
            rewrite = export.get("rewrite", {})
            forms = sorted({str(r.get("form", "?")) for r in rewrite.get("rewrites", [])})
            if not forms:
                kept = "timed fastest" if rewrite.get("chosen") == "convtranspose" else "no exact rewrite for it"
                forms = [f"ConvTranspose ({kept})"]
            row = bench.get(name, {})
            ms = row.get("latency_ms", {}).get("p50")
            thin = " | ".join(f"{val['per_class_iou'][c]:.3f}" for c in THIN)
            lat = f"{ms:.1f}" if ms is not None else "n/a"
            print(f"| {label} | {val['miou']:.4f} | {thin} | {lat} | {', '.join(forms)} |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--runs":
        trained_tables(Path(sys.argv[2]))
    else:
        q2_sizes()
        q4_forms()
        q6_loading()
