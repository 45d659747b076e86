"""What fcnedge's jobs return, typed; JSON only at the edges, every file with its schema and version.

Each JSON document fcnedge writes (a training log, an export report, a bench report, a tune record, the demo's stats)
starts with ``"schema": "fcnedge.<kind>"`` and ``"schema_version": N``: a reader can tell what it holds and refuse a
version it does not know. :data:`SCHEMAS` lists the kinds and their current versions (bumped when a field changes
meaning or goes; new fields keep the version).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from fcnedge.errors import ConfigError

__all__ = ["SCHEMAS", "Selection", "TrainResult", "check_schema", "versioned"]

SCHEMAS = {
    "train-log": 1,
    "export-report": 1,
    "bench-report": 1,
    "bench-runtime": 1,
    "tune": 1,
    "demo-stats": 1,
    "data-check": 1,
    "targets": 1,
    "target": 1,
}


def versioned(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` as it is written: its schema name and version first."""
    return {"schema": f"fcnedge.{kind}", "schema_version": SCHEMAS[kind], **doc}


def check_schema(doc: dict[str, Any], kind: str, where: object) -> dict[str, Any]:
    """``doc`` without its schema fields, after checking they name ``kind`` at a version this fcnedge reads (a
    document from before schemas were written, with neither field, is read as version 1).

    Raises:
        ConfigError: another kind, or a newer version.
    """
    name, version = doc.get("schema", f"fcnedge.{kind}"), doc.get("schema_version", 1)
    if name != f"fcnedge.{kind}" or not isinstance(version, int) or version > SCHEMAS[kind]:
        raise ConfigError(
            f"{where} holds {name} version {version}, not a {kind} this fcnedge reads (version <= {SCHEMAS[kind]}): "
            "upgrade fcnedge or pass the right file"
        )
    return {k: v for k, v in doc.items() if k not in ("schema", "schema_version")}


class Selection(str, Enum):
    """How a training run chose its checkpoint."""

    VAL = "val"  # the best epoch on val (the val score is then optimistic)
    SEQUENCES = "sequences"  # the best epoch on held-out training sequences; val scored once at the end
    SCHEDULE = "schedule"  # a fixed schedule (the last epoch); val scored once at the end


@dataclass(frozen=True)
class TrainResult:
    """A finished (or stopped) training run, as ``fcnedge.train.train`` returns it and ``OUT.log.json`` holds it.

    Attributes:
        checkpoint: the chosen checkpoint (``OUT``).
        log: where this result is written (``OUT.log.json``).
        config: the resolved recipe (reusable as ``train --config``).
        history: one record per epoch (epoch, loss, images/s, and the scores of that epoch when scored).
        wall_s: training time.
        selection: how the checkpoint was chosen.
        best: the best per-epoch score (selection frames, or val); None for a fixed schedule.
        schedule: a fixed schedule's description.
        final_val: val scored once at the end (held-out selection, fixed schedules).
    """

    checkpoint: Path
    log: Path
    config: dict[str, Any]
    history: tuple[dict[str, Any], ...]
    wall_s: float
    selection: Selection
    best: float | None = None
    schedule: str | None = None
    final_val: dict[str, Any] | None = None

    @property
    def val_scores(self) -> dict[str, Any] | None:
        """The val scores the run stands on: val scored once at the end, else the best epoch's val; None when
        nothing was scored."""
        if self.final_val:
            return dict(self.final_val)
        scored = [h["val"] for h in self.history if h.get("val")]
        return max(scored, key=lambda v: v["miou"]) if scored else None

    def summary(self) -> str:
        """One line: how the checkpoint was chosen and its scores."""
        val = self.val_scores
        if self.selection is Selection.SCHEDULE:
            return f"{self.schedule}, val mIoU {val['miou']:.4f}" if val else f"{self.schedule}"
        if self.selection is Selection.SEQUENCES:
            tail = f", val mIoU {val['miou']:.4f}" if self.final_val and val else " (val not scored yet)"
            return f"best selection mIoU {self.best:.4f}{tail}"
        return f"best val mIoU {self.best:.4f}"

    def to_json(self) -> dict[str, Any]:
        """The log file's document (its keys as since version 1: ``best_val_miou`` or ``best_selection_miou``, or
        ``schedule``; ``final_val`` when scored)."""
        doc: dict[str, Any] = {
            "checkpoint": str(self.checkpoint),
            "selection": self.selection.value,
            "config": self.config,
            "history": list(self.history),
            "wall_s": self.wall_s,
        }
        if self.selection is Selection.SCHEDULE:
            doc["schedule"] = self.schedule
        else:
            doc["best_selection_miou" if self.selection is Selection.SEQUENCES else "best_val_miou"] = self.best
        if self.final_val is not None:
            doc["final_val"] = self.final_val
        return versioned("train-log", doc)

    @classmethod
    def from_json(cls, doc: dict[str, Any], log: Path) -> TrainResult:
        """Read a log file's document (``OUT.log.json``).

        Raises:
            ConfigError: not a training log this fcnedge reads.
        """
        d = check_schema(doc, "train-log", log)
        if "schedule" in d:
            selection, best = Selection.SCHEDULE, None
        elif "best_selection_miou" in d:
            selection, best = Selection.SEQUENCES, d["best_selection_miou"]
        else:
            selection, best = Selection.VAL, d.get("best_val_miou")
        return cls(
            checkpoint=Path(d.get("checkpoint", str(log).removesuffix(".log.json") + ".pt")),
            log=log,
            config=d.get("config", {}),
            history=tuple(d.get("history", [])),
            wall_s=float(d.get("wall_s", 0.0)),
            selection=selection,
            best=best,
            schedule=d.get("schedule"),
            final_val=d.get("final_val"),
        )
