"""A bench's results, typed: one :class:`BenchRow` per model x variant x shape, and the :class:`BenchReport` that
holds them with the machine and the config. JSON (``report.json``) and CSV (``report.csv``) only at the edge."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from typing import Any

from fcnedge.benchmarks.timing import LatencyStats
from fcnedge.host import int8_isa
from fcnedge.results import versioned

__all__ = ["CSV_FIELDS", "BenchReport", "BenchRow"]


@dataclass
class BenchRow:
    """One variant of one model at one shape: how it was built, its latency (``predict`` through the seam, per
    stage), and, where measured, its parity with PyTorch, its accuracy and its share of the conv roofline."""

    model: str
    variant: str
    provider: str
    shape: str  # the image, HxW
    batch: int
    threads: int
    build_s: float
    rss_before_mb: float | None
    scale: float | None = None  # an inference scale other than 1
    model_input: str | None = None  # what the model takes at that scale, HxW
    onnx: str | None = None
    file_mb: float | None = None
    note: str | None = None
    warnings: list[str] = field(default_factory=list)
    peak_rss_mb: float | None = None
    latency: LatencyStats | None = None
    stages: dict[str, LatencyStats] = field(default_factory=dict)
    throughput: float | None = None  # images per second
    runs: int | None = None
    argmax_agreement_vs_torch: float | None = None
    max_abs_logit_diff_vs_torch: float | None = None
    miou: float | None = None
    pixel_accuracy: float | None = None
    per_class_iou: dict[str, float | None] | None = None
    eval_images: int | None = None
    profile: dict[str, Any] | None = None
    speedup_vs_torch: float | None = None
    speedup_vs_fp32: float | None = None
    gflop: float | None = None
    achieved_gflops: float | None = None
    roofline_share: float | None = None

    @property
    def p50(self) -> float:
        """Median latency in ms."""
        assert self.latency is not None, "not timed yet"
        return self.latency.p50

    def to_json(self) -> dict[str, Any]:
        """The row as report.json holds it (``latency_ms``, ``stages_ms``; fields not measured left out)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("latency", "stages") and v not in (None, [])}
        if self.latency is not None:
            d["latency_ms"] = self.latency.as_dict()
            d["stages_ms"] = {k: v.as_dict() for k, v in self.stages.items()}
        return d


@dataclass
class BenchReport:
    """A whole bench: the machine, the config, the roofline probe and the rows."""

    machine: dict[str, Any]
    config: dict[str, Any]
    rows: list[BenchRow]
    roofline: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """report.json's document."""
        return versioned(
            "bench-report",
            {
                "machine": self.machine,
                "config": self.config,
                "roofline": self.roofline,
                "rows": [r.to_json() for r in self.rows],
            },
        )


# report.csv: one line per row, the figures a spreadsheet or a docs page needs (milliseconds, mIoU in [0, 1])
CSV_FIELDS = (
    "model",
    "variant",
    "provider",
    "shape",
    "scale",
    "model_input",
    "batch",
    "threads",
    "p50_ms",
    "p90_ms",
    "throughput",
    "speedup_vs_torch",
    "speedup_vs_fp32",
    "miou",
    "argmax_agreement_vs_torch",
    "roofline_share",
    "peak_rss_mb",
    "cpu",
    "int8_isa",
)


def to_csv(report: dict[str, Any]) -> str:
    """report.json's rows as CSV (:data:`CSV_FIELDS`), each line with the machine's CPU and int8 instructions."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    m = report["machine"]
    isa = " ".join(int8_isa(m.get("cpu_flags", [])))
    for r in report["rows"]:
        line = {k: r.get(k) for k in CSV_FIELDS}
        line["p50_ms"] = round(r["latency_ms"]["p50"], 3)
        line["p90_ms"] = round(r["latency_ms"]["p90"], 3)
        line["cpu"], line["int8_isa"] = m.get("cpu"), isa
        writer.writerow({k: "" if v is None else v for k, v in line.items()})
    return buf.getvalue()
