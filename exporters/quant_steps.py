"""The quantisation steps of an export: the 7-/8-bit range trial, quantising, the accuracy gate and accuracy
control (the worst layers back to float before an export is refused)."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fcnedge.errors import AccuracyGateError, ConfigError
from fcnedge.exporters.export_run import ExportRun, embed_into_file, parity, save_proto
from fcnedge.host import int8_reduce_range
from fcnedge.specs import DataFormat, Quantize, QuantSpec, as_enum

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateSpec:
    """The accuracy gate: evaluate fp32 and the quantised model and refuse a drop over ``max_drop`` points."""

    data: Path
    fmt: DataFormat = DataFormat.AUTO
    split: str = "val"
    max_drop: float = 1.0
    allow_drop: bool = False
    limit: int | None = None
    control: bool = True  # over the limit: return the worst layers to float before refusing
    max_float_layers: int = 16

    def __post_init__(self) -> None:
        object.__setattr__(self, "fmt", as_enum(DataFormat, self.fmt, what="--eval-format"))
        if self.fmt is DataFormat.IMAGES:
            raise ConfigError("the accuracy gate needs labelled data: --eval-format images has no masks")
        if not math.isfinite(self.max_drop):
            raise ConfigError(f"--max-miou-drop {self.max_drop} is invalid: give a finite number of points, e.g. 0.5")


@dataclass(frozen=True)
class RangeTrial:
    """The quantised model a range trial kept: its spec, file, quantisation facts and gate mIoU (reused, not
    recomputed, by the quantise and gate steps)."""

    qspec: QuantSpec
    path: Path
    facts: dict[str, Any]
    miou: float


def step_pick_range(run: ExportRun, fp32_path: Path, gate: GateSpec, threads: int) -> RangeTrial:
    """On x86 without VNNI, ONNX Runtime's guidance is 7-bit weights (U8S8 products can saturate), but whether
    that saturation costs accuracy depends on the model: with labelled data at hand, quantise both ways, score
    both on the gate's data, keep the more accurate (7-bit on a tie) and record the trial in the report."""
    from fcnedge.exporters.quantize import calibration_images, quantize_int8

    t0 = time.perf_counter()
    qspec = run.spec.quant or QuantSpec()
    images = calibration_images(qspec)
    trials: dict[bool, RangeTrial] = {}
    for reduce in (True, False):
        path = run.work / f"trial-reduce-{reduce}.onnx"
        spec = replace(qspec, reduce_range=reduce)
        facts = quantize_int8(fp32_path, path, run.meta, spec, images)
        trials[reduce] = RangeTrial(spec, path, facts, gate_miou(run, path, gate, threads))
    scores = {reduce: t.miou for reduce, t in trials.items()}
    chosen = scores[False] <= scores[True]
    trials[not chosen].path.unlink()
    run.report.reduce_range_trial = {
        "why": int8_reduce_range()[1],
        "miou_7bit": scores[True],
        "miou_8bit": scores[False],
        "chosen": "7-bit (reduce_range)" if chosen else "8-bit",
    }
    log.info("int8 range trial: 7-bit mIoU %.4f, 8-bit %.4f", scores[True], scores[False])
    run.step("reduce_range_trial", t0)
    return trials[chosen]


def step_quantize(
    run: ExportRun, fp32_path: Path, out_tmp: Path, model: Any, threads: int, trial: RangeTrial | None = None
) -> Path:
    """Quantise (or take the model a range trial kept), embed the meta, check int8 parity."""
    from fcnedge.exporters.quantize import calibration_images, convert_fp16, quantize_int8
    from fcnedge.exporters.verify import as_dicts

    t0 = time.perf_counter()
    if run.spec.quantize is Quantize.INT8:
        if trial is not None:
            trial.path.replace(out_tmp)
            run.report.int8 = trial.facts
        else:
            qspec = run.spec.quant or QuantSpec()
            run.report.int8 = quantize_int8(fp32_path, out_tmp, run.meta, qspec, calibration_images(qspec))
        embed_into_file(out_tmp, run)
    else:
        import onnx

        fp16 = convert_fp16(onnx.load(str(fp32_path)))
        save_proto(fp16, out_tmp)
        run.report.fp16 = {"io": "float32 (keep_io_types)", "compute": "float16"}
    run.step(f"quantize_{run.spec.quantize.value}", t0)
    if run.spec.quantize is Quantize.INT8:
        t1 = time.perf_counter()
        run.report.parity_int8 = as_dicts(parity(run, model, out_tmp, threads))
        run.step("verify_int8", t1)
    return out_tmp


def gate_miou(run: ExportRun, path: Path, gate: GateSpec, threads: int) -> float:
    """mIoU of an exported file on the gate's data, through the runtime's own predictor as ``fcnedge eval`` opens
    it: the tile and inference scale its meta names (not the export shape, which only traces the graph), so the
    gate's figure is the one users get."""
    from fcnedge.data.datasets import open_dataset
    from fcnedge.evaluation import evaluate_predictor
    from fcnedge.runtime.open import open_predictor

    ds = open_dataset(gate.data, gate.fmt, gate.split, num_classes=run.meta.num_classes)
    pred = open_predictor(path, meta=run.meta, threads=threads)
    return float(evaluate_predictor(pred, ds, limit=gate.limit)["miou"])


def step_gate(
    run: ExportRun,
    fp32_path: Path,
    q_path: Path,
    gate: GateSpec,
    threads: int,
    *,
    model: Any = None,
    qspec: QuantSpec | None = None,
    known_miou: float | None = None,
) -> None:
    """Score fp32 and the quantised model on the gate's data (``known_miou``: the quantised model's score, already
    measured on the same data); over the limit, int8 goes through accuracy control (the worst layers back to
    float) before the export is refused.

    Raises:
        AccuracyGateError: the drop stays over ``max_drop`` (and ``allow_drop`` is off).
    """
    t0 = time.perf_counter()
    name = run.spec.quantize.value
    quantised = known_miou if known_miou is not None else gate_miou(run, q_path, gate, threads)
    scores = {"fp32": gate_miou(run, fp32_path, gate, threads), name: quantised}
    drop = 100 * (scores["fp32"] - scores[name])
    if drop > gate.max_drop and gate.control and run.spec.quantize is Quantize.INT8:
        scores[name] = step_accuracy_control(run, fp32_path, q_path, gate, threads, qspec or QuantSpec(), scores)
        drop = 100 * (scores["fp32"] - scores[name])
        if model is not None:
            from fcnedge.exporters.verify import as_dicts

            run.report.parity_int8 = as_dicts(parity(run, model, q_path, threads))
    run.report.accuracy = {
        "data": str(gate.data),
        "split": gate.split,
        "miou": scores,
        "drop_points": drop,
        "max_drop_points": gate.max_drop,
    }
    run.step("accuracy_gate", t0)
    if drop > gate.max_drop and not gate.allow_drop:
        tried = " after returning the worst layers to float" if run.report.accuracy_control is not None else ""
        raise AccuracyGateError(
            f"{name} mIoU {100 * scores[name]:.2f} is {drop:.2f} points below fp32 {100 * scores['fp32']:.2f}{tried} "
            f"(limit {gate.max_drop}): nothing written; try --calib-method entropy, more --calib-count, or pass "
            "--allow-drop / a larger --max-miou-drop"
        )


def step_accuracy_control(
    run: ExportRun,
    fp32_path: Path,
    q_path: Path,
    gate: GateSpec,
    threads: int,
    qspec: QuantSpec,
    scores: dict[str, float],
) -> float:
    """Return the convolutions that add the most quantisation error to float, 1, 2, 4, 8, ... at a time, until
    the drop is within the limit or ``max_float_layers`` is reached; then, between the last count over the limit
    and the first within it, bisect for the fewest layers within it (each float layer costs size and speed).
    ``q_path`` holds the model at the chosen count. Records the ranking and every step in the report; returns the
    final mIoU."""
    from fcnedge.exporters.accuracy_control import rank_layers
    from fcnedge.exporters.quantize import calibration_images, quantize_int8

    images = calibration_images(qspec)
    ranking = rank_layers(fp32_path, q_path, images, run.meta, qspec.calib_shape)
    steps: list[dict[str, Any]] = []
    tried: dict[int, tuple[Path, dict[str, Any], float]] = {}  # count -> its file, quantisation facts, mIoU

    def within(count: int) -> bool:
        """Quantise with the ``count`` worst layers in float into a work file, score it, record the step."""
        floats = tuple(n for n, _ in ranking[:count])
        path = run.work / f"float-layers-{count}.onnx"
        facts = quantize_int8(fp32_path, path, run.meta, replace(qspec, float_nodes=qspec.float_nodes + floats), images)
        embed_into_file(path, run)
        miou = gate_miou(run, path, gate, threads)
        tried[count] = (path, facts, miou)
        steps.append({"float_layers": count, "miou": miou, "drop_points": 100 * (scores["fp32"] - miou)})
        log.info("accuracy control: %d layers in float, mIoU %.4f", count, miou)
        return 100 * (scores["fp32"] - miou) <= gate.max_drop

    last = min(gate.max_float_layers, len(ranking))
    over, count, chosen = 0, 1, 0  # counts known over the limit / to try / first found within it
    while count <= last:
        if within(count):
            chosen = count
            break
        over, count = count, count * 2
    if chosen:
        lo, hi = over, chosen  # lo over the limit (0: plain int8), hi within it
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if within(mid) else (mid, hi)
        chosen = hi
    final = chosen or (steps[-1]["float_layers"] if steps else 0)  # none within the limit: the last tried
    miou = scores["int8"]
    if final:
        path, run.report.int8, miou = tried[final]
        path.replace(q_path)
    for path, _, _ in tried.values():
        path.unlink(missing_ok=True)
    run.report.accuracy_control = {
        "plain_int8_miou": scores["int8"],
        "ranking": [{"node": n, "added_rel_error": round(e, 5)} for n, e in ranking[:16]],
        "steps": steps,
        "kept_float": [n for n, _ in ranking[:final]],
        "why": "the convolutions whose int8 output adds the most relative error to their input's, worst first",
    }
    return miou
