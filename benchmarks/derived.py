"""Figures derived from a bench's rows: speedups against PyTorch and fp32, and each row's share of the conv
roofline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fcnedge.benchmarks.harness import BenchConfig
    from fcnedge.benchmarks.rows import BenchRow


def add_ratios(rows: list[BenchRow]) -> None:
    """speedup_vs_torch and speedup_vs_fp32 (p50 ratios within the same model and shape)."""
    for r in rows:
        same = [o for o in rows if o.model == r.model and o.shape == r.shape]
        for base in ("torch", "fp32"):
            ref = next((o for o in same if o.variant == base), None)
            if ref is not None:
                setattr(r, f"speedup_vs_{base}", ref.p50 / r.p50)


def add_roofline(rows: list[BenchRow], cfg: BenchConfig) -> dict[str, Any] | None:
    """Measure the conv roofline once and each ONNX CPU row's achieved GFLOP/s as a share of it."""
    from fcnedge.benchmarks.roofline import conv_roofline, model_gflop

    if not cfg.roofline:
        return None
    roof = conv_roofline(threads=cfg.threads)
    for r in rows:
        fp32 = next(
            (
                o
                for o in rows
                if o.model == r.model and o.variant in ("fp32", "onnx") and o.shape == r.shape and o.onnx is not None
            ),
            None,
        )
        if fp32 is None or fp32.onnx is None:
            continue
        h, w = (int(v) for v in (r.model_input or r.shape).split("x"))
        gflop = model_gflop(Path(fp32.onnx), (h, w)) * r.batch
        achieved = gflop / (r.stages["inference"].p50 / 1e3)
        r.gflop = round(gflop, 3)
        r.achieved_gflops = round(achieved, 2)
        if r.provider in ("CPUExecutionProvider", "torch-cpu") or r.provider.startswith("OpenVINO-CPU"):
            r.roofline_share = achieved / roof["gflops"]
    return roof
