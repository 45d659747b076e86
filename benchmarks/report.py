"""Bench reports: report.json, report.md (ratios vs torch eager and vs fp32), a latency-vs-mIoU PNG."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from fcnedge.fsutil import atomic_path, atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

COLUMNS = (
    "model",
    "variant",
    "provider",
    "shape",
    "p50 ms",
    "p90 ms",
    "img/s",
    "x torch",
    "x fp32",
    "mIoU",
    "agree",
    "roof %",
    "RSS MB",
)


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    """One list of cells per row, in :data:`COLUMNS` order."""
    out = []
    for r in report["rows"]:
        miou = r.get("miou")
        roof = r.get("roofline_share")
        out.append(
            [
                r["model"],
                r["variant"],
                r["provider"],
                r["shape"],
                _fmt(r["latency_ms"]["p50"], ".1f"),
                _fmt(r["latency_ms"]["p90"], ".1f"),
                _fmt(r["throughput"], ".1f"),
                _fmt(r.get("speedup_vs_torch"), ".2f"),
                _fmt(r.get("speedup_vs_fp32"), ".2f"),
                _fmt(None if miou is None else 100 * miou, ".2f"),
                _fmt(None if "argmax_agreement_vs_torch" not in r else 100 * r["argmax_agreement_vs_torch"], ".2f"),
                _fmt(None if roof is None else 100 * roof, ".0f"),
                _fmt(r.get("peak_rss_mb"), ".0f"),
            ]
        )
    return out


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table with the machine and the roofline."""
    m = report["machine"]
    lines = [
        "# fcnedge bench",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores ({', '.join(m['cpu_flags'])}); "
        f"threads {report['config']['threads']}, "
        f"batch {report['config']['batch']}, {report['config']['runs']} timed runs after {report['config']['warmup']} "
        f"warm-up; versions {json.dumps(m['versions'])}.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(report)]
    roof = report.get("roofline")
    if roof:
        lines += [
            "",
            f"Roofline probe: {roof['probe']} ran at {roof['gflops']:.1f} GFLOP/s; 'roof %' is each "
            "variant's achieved GFLOP/s (fp32 model FLOPs / inference p50) as a share of it "
            "(the best of four 3x3 conv probes).",
        ]
    for r in report["rows"]:
        if "profile" in r:
            shares = ", ".join(f"{op} {100 * v:.0f} %" for op, v in list(r["profile"]["op_share"].items())[:6])
            top = "; ".join(
                f"{n['node']} ({n['op']}) {n['us_per_run'] / 1e3:.2f} ms" for n in r["profile"]["top_nodes"][:4]
            )
            lines += ["", f"Profile {r['model']} {r['variant']}: {shares}. Top nodes: {top}."]
    for r in report["rows"]:
        for w in r.get("warnings", []):
            lines += ["", f"**Warning** ({r['model']} {r['variant']}): {w}"]
    lines += [
        "",
        "x torch / x fp32: p50 speedup over PyTorch eager / ORT fp32 of the same model and shape. "
        "agree: argmax agreement with PyTorch on the benchmark input. mIoU: whole-image, tiled.",
    ]
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> bool:
    """Latency (p50) against mIoU, one point per row with mIoU; False when matplotlib is absent or no mIoU."""
    rows = [r for r in report["rows"] if r.get("miou") is not None]
    if not rows:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plot (pip install 'fcnedge[plot]')")
        return False
    fig, ax = plt.subplots(figsize=(8, 4.5))
    markers = "osD^vP*Xh<>p"
    models = len({r["model"] for r in rows})
    for i, r in enumerate(sorted(rows, key=lambda r: r["latency_ms"]["p50"])):
        label = f"{r['variant']}, {r['latency_ms']['p50']:.1f} ms, {100 * r['miou']:.2f}"
        if models > 1:
            label = f"{r['model']} {label}"
        ax.scatter(r["latency_ms"]["p50"], 100 * r["miou"], marker=markers[i % len(markers)], s=60, label=label)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, title="variant, p50, mIoU")  # never on a point
    ax.set_xlabel("latency p50 (ms)")
    ax.set_ylabel("mIoU (%)")
    ax.set_ylim(*miou_axis([100 * r["miou"] for r in rows]))
    ax.set_title(f"{report['machine']['cpu']}, {report['config']['threads']} threads")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return True


def miou_axis(values: list[float], *, min_span: float = 2.0) -> tuple[float, float]:
    """mIoU axis limits (points) at least ``min_span`` wide around the data, inside [0, 100]: a 0.02-point int8
    drop must not look like a cliff, and a 0.2-point one must still show (the values are in the legend too)."""
    lo, hi = min(values), max(values)
    pad = max(min_span - (hi - lo), 0.0) / 2 + 0.1 * (hi - lo)
    lo, hi = max(0.0, lo - pad), min(100.0, hi + pad)
    if hi - lo < min_span:  # clipped at 0 or 100: extend the other way
        lo, hi = (0.0, min_span) if lo == 0.0 else (100.0 - min_span, 100.0)
    return lo, hi


def write_reports(report: dict[str, Any], out: Path) -> list[Path]:
    """Write report.json, report.csv, report.md and (when possible) latency_vs_miou.png into ``out``."""
    from fcnedge.benchmarks.rows import to_csv

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.csv", to_csv(report))
    atomic_write_text(out / "report.md", markdown(report))
    written = [out / "report.json", out / "report.csv", out / "report.md"]
    if plot(report, out / "latency_vs_miou.png"):
        written.append(out / "latency_vs_miou.png")
    return written
