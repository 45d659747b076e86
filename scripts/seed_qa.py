"""The numbers of docs/seed-qa.md that need no training (questions 2, 4 and 6), measured with fcnedge itself.

Usage: .venv/bin/python scripts/seed_qa.py   (about a minute on two cores; prints Markdown tables)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

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


if __name__ == "__main__":
    q2_sizes()
    q4_forms()
    q6_loading()
