"""``fcnedge export`` as a sequence of small named steps: export -> simplify -> rewrite -> verify -> quantise ->
gate -> write. Everything is written to temp files in the output folder and renamed into place at the end."""

from __future__ import annotations

import logging
import math
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from fcnedge.errors import AccuracyGateError, ConfigError
from fcnedge.exporters.cut import add_ids_output, move_final_upsampling
from fcnedge.exporters.onnx_meta import embed_meta, embed_upsampling_nodes
from fcnedge.exporters.rewrite import RewriteReport, find_upsampling, rewrite_upsampling
from fcnedge.exporters.verify import check_fp32, compare, verify_shapes
from fcnedge.fsutil import atomic_write_json, check_output, temp_dir, writing
from fcnedge.host import int8_reduce_range
from fcnedge.meta import ModelMeta
from fcnedge.specs import DataFormat, ExportSpec, Quantize, QuantSpec, RewriteForm, TileSpec, as_enum

log = logging.getLogger(__name__)

K = TypeVar("K")


@dataclass(frozen=True)
class GateSpec:
    """The accuracy gate: evaluate fp32 and the quantised model and refuse a drop over ``max_drop`` points."""

    data: Path
    fmt: DataFormat = DataFormat.CAMVID
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


@dataclass
class ExportRun:
    """State passed between steps, and the report that is written beside the model."""

    spec: ExportSpec
    meta: ModelMeta
    work: Path
    report: dict[str, Any] = field(default_factory=dict)
    proto: Any = None
    upsampling_nodes: list[str] | None = None

    def step(self, name: str, t0: float) -> None:
        self.report.setdefault("steps_s", {})[name] = round(time.perf_counter() - t0, 3)


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    from fcnedge._version import __version__

    return {
        "fcnedge": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
    }


def step_export(run: ExportRun, model: Any) -> None:
    from fcnedge.exporters.torch_export import export_torch

    t0 = time.perf_counter()
    path = run.work / "exported.onnx"
    run.proto = export_torch(model, path, opset=run.spec.opset, shape=run.spec.export_shape, dynamo=run.spec.dynamo)
    run.report["exporter"] = "dynamo" if run.spec.dynamo else "torchscript"
    run.report["nodes"] = {"exported": len(run.proto.graph.node)}
    run.report["bytes"] = {"exported": path.stat().st_size}
    run.step("export", t0)


def step_simplify(run: ExportRun) -> None:
    from fcnedge.exporters.simplify import simplify

    t0 = time.perf_counter()
    res = simplify(run.proto)
    run.proto = res.model
    run.report["simplifier"] = res.tool
    if res.failure:
        run.report["simplifier_failure"] = res.failure
    run.report["nodes"]["simplified"] = len(run.proto.graph.node)
    run.step("simplify", t0)


def _sessions_for(protos: dict[K, Any], threads: int) -> dict[K, Any]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    return {
        k: ort.InferenceSession(p.SerializeToString(), so, providers=["CPUExecutionProvider"])
        for k, p in protos.items()
    }


def time_models(
    protos: dict[K, Any], shape: tuple[int, int], threads: int, *, rounds: int = 4, per_round: int = 3
) -> dict[K, float]:
    """Median seconds per run of each model at batch 1 and ``shape``, measured in interleaved rounds (so a noisy
    moment on a shared machine hits every candidate alike; the first run of each block is discarded)."""
    sessions = _sessions_for(protos, threads)
    x = np.zeros((1, 3, *shape), dtype=np.float32)
    samples: dict[K, list[float]] = {k: [] for k in sessions}
    for _ in range(rounds):
        for k, sess in sessions.items():
            name = sess.get_inputs()[0].name
            for i in range(per_round + 1):
                t = time.perf_counter()
                sess.run(None, {name: x})
                if i:
                    samples[k].append(time.perf_counter() - t)
    return {k: float(np.median(v)) for k, v in samples.items()}


def step_rewrite(run: ExportRun, threads: int) -> None:
    """Rewrite the upsampling. ``auto``: where several exact forms exist, time them (and the untouched graph) on
    the export shape and keep the fastest; otherwise use the requested form where it is exact. The names of the
    nodes that make up the upsampling afterwards are recorded in the model (int8 keeps them in float)."""
    import copy

    t0 = time.perf_counter()
    probe = copy.deepcopy(run.proto)
    rep = rewrite_upsampling(probe)
    exact = {RewriteForm(f) for r in rep.rewrites for f in r["exact_forms"]}
    if RewriteForm.DEPTHWISE in exact:
        exact.discard(RewriteForm.DENSE)  # dense does strictly more work than depthwise wherever both are exact
    choice = run.spec.rewrite_form
    timings: dict[RewriteForm, float] = {}
    if choice is RewriteForm.AUTO and exact:
        # the untouched ConvTranspose is an exact form too: it stays when nothing beats it
        trials = {RewriteForm.CONVTRANSPOSE: run.proto}
        for form in sorted(exact, key=lambda f: f.value):
            trials[form] = copy.deepcopy(run.proto)
            rewrite_upsampling(trials[form], force_form=form)
        timings = time_models(trials, run.spec.export_shape, threads)
        choice = min(timings, key=lambda f: timings[f])
    best_rep = RewriteReport()
    if choice is not RewriteForm.CONVTRANSPOSE:
        best = copy.deepcopy(run.proto)
        best_rep = rewrite_upsampling(best, force_form=None if choice is RewriteForm.AUTO else choice)
        run.proto = best
    run.upsampling_nodes = [n for r in best_rep.rewrites for n in r["nodes"]] or find_upsampling(run.proto)
    run.report["rewrite"] = {
        "requested": run.spec.rewrite_form.value,
        "chosen": choice.value,
        "rewrites": best_rep.rewrites,
        "upsampling_nodes": run.upsampling_nodes,
        "form_timings_ms": {k.value: round(v * 1e3, 2) for k, v in timings.items()},
    }
    run.report["nodes"]["rewritten"] = len(run.proto.graph.node)
    run.step("rewrite", t0)


def save_proto(proto: Any, path: Path) -> None:
    import onnx

    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _parity(run: ExportRun, model: Any, path: Path, threads: int) -> list[Any]:
    """torch vs ORT on the three verification shapes, through the runtime's tiler at the export tile size."""
    shapes = verify_shapes(run.spec.export_shape, run.meta.stride)
    tile = TileSpec(size=run.spec.export_shape, overlap=0.25)
    return compare(model, path, run.meta, shapes=shapes, tile=tile, threads=threads)


def step_verify(run: ExportRun, model: Any, path: Path, threads: int) -> None:
    from fcnedge.exporters.verify import as_dicts

    t0 = time.perf_counter()
    results = _parity(run, model, path, threads)
    run.report["parity_fp32"] = as_dicts(results)
    check_fp32(results)
    run.step("verify", t0)


def step_pick_range(run: ExportRun, fp32_path: Path, gate: GateSpec, threads: int) -> QuantSpec:
    """On x86 without VNNI, ONNX Runtime's guidance is 7-bit weights (U8S8 products can saturate), but whether
    that saturation costs accuracy depends on the model: with labelled data at hand, quantise both ways, score
    both on the gate's data, keep the more accurate (7-bit on a tie) and record the trial in the report."""
    from fcnedge.exporters.quantize import calibration_images, quantize_int8

    t0 = time.perf_counter()
    qspec = run.spec.quant or QuantSpec()
    images = calibration_images(qspec)
    scores: dict[bool, float] = {}
    for reduce in (True, False):
        trial = run.work / f"trial-reduce-{reduce}.onnx"
        quantize_int8(fp32_path, trial, run.meta, replace(qspec, reduce_range=reduce), images)
        scores[reduce] = gate_miou(run, trial, gate, threads)
        trial.unlink()
    chosen = scores[False] <= scores[True]
    run.report["reduce_range_trial"] = {
        "why": int8_reduce_range()[1],
        "miou_7bit": scores[True],
        "miou_8bit": scores[False],
        "chosen": "7-bit (reduce_range)" if chosen else "8-bit",
    }
    log.info("int8 range trial: 7-bit mIoU %.4f, 8-bit %.4f", scores[True], scores[False])
    run.step("reduce_range_trial", t0)
    return replace(qspec, reduce_range=chosen)


def step_quantize(
    run: ExportRun, fp32_path: Path, out_tmp: Path, model: Any, threads: int, qspec: QuantSpec | None = None
) -> Path:
    from fcnedge.exporters.quantize import calibration_images, convert_fp16, quantize_int8
    from fcnedge.exporters.verify import as_dicts

    t0 = time.perf_counter()
    if run.spec.quantize is Quantize.INT8:
        qspec = qspec or run.spec.quant or QuantSpec()
        images = calibration_images(qspec)
        run.report["int8"] = quantize_int8(fp32_path, out_tmp, run.meta, qspec, images)
        _embed_into_file(out_tmp, run)
    else:
        import onnx

        fp16 = convert_fp16(onnx.load(str(fp32_path)))
        save_proto(fp16, out_tmp)
        run.report["fp16"] = {"io": "float32 (keep_io_types)", "compute": "float16"}
    run.step(f"quantize_{run.spec.quantize.value}", t0)
    if run.spec.quantize is Quantize.INT8:
        t1 = time.perf_counter()
        run.report["parity_int8"] = as_dicts(_parity(run, model, out_tmp, threads))
        run.step("verify_int8", t1)
    return out_tmp


def _embed_into_file(path: Path, run: ExportRun) -> None:
    import onnx

    proto = onnx.load(str(path))
    embed_meta(proto, run.meta)
    _stamp(proto, run)
    onnx.save(proto, str(path))


def _stamp(proto: Any, run: ExportRun) -> None:
    proto.producer_name = "fcnedge"
    from fcnedge._version import __version__

    proto.producer_version = __version__


def gate_miou(run: ExportRun, path: Path, gate: GateSpec, threads: int) -> float:
    """mIoU of an exported file on the gate's data, through the runtime's own predictor."""
    from fcnedge.data.datasets import open_dataset
    from fcnedge.evaluation import evaluate_predictor
    from fcnedge.runtime.open import open_predictor

    ds = open_dataset(gate.data, gate.fmt, gate.split, num_classes=run.meta.num_classes)
    pred = open_predictor(path, meta=run.meta, threads=threads, tile=run.spec.export_shape)
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
) -> None:
    """Score fp32 and the quantised model on the gate's data; over the limit, int8 goes through accuracy control
    (the worst layers back to float) before the export is refused.

    Raises:
        AccuracyGateError: the drop stays over ``max_drop`` (and ``allow_drop`` is off).
    """
    t0 = time.perf_counter()
    name = run.spec.quantize.value
    scores = {"fp32": gate_miou(run, fp32_path, gate, threads), name: gate_miou(run, q_path, gate, threads)}
    drop = 100 * (scores["fp32"] - scores[name])
    if drop > gate.max_drop and gate.control and run.spec.quantize is Quantize.INT8:
        scores[name] = step_accuracy_control(run, fp32_path, q_path, gate, threads, qspec or QuantSpec(), scores)
        drop = 100 * (scores["fp32"] - scores[name])
        if model is not None:
            from fcnedge.exporters.verify import as_dicts

            run.report["parity_int8"] = as_dicts(_parity(run, model, q_path, threads))
    run.report["accuracy"] = {
        "data": str(gate.data),
        "split": gate.split,
        "miou": scores,
        "drop_points": drop,
        "max_drop_points": gate.max_drop,
    }
    run.step("accuracy_gate", t0)
    if drop > gate.max_drop and not gate.allow_drop:
        tried = " after returning the worst layers to float" if "accuracy_control" in run.report else ""
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
    the drop is within the limit or ``max_float_layers`` is reached; ``q_path`` holds the last model tried.
    Records the ranking and every step in the report; returns the final mIoU."""
    from fcnedge.exporters.accuracy_control import rank_layers
    from fcnedge.exporters.quantize import calibration_images, quantize_int8

    images = calibration_images(qspec)
    ranking = rank_layers(fp32_path, q_path, images, run.meta, qspec.calib_shape)
    steps: list[dict[str, Any]] = []
    miou, count = scores["int8"], 1
    while count <= min(gate.max_float_layers, len(ranking)):
        floats = tuple(n for n, _ in ranking[:count])
        facts = quantize_int8(
            fp32_path, q_path, run.meta, replace(qspec, float_nodes=qspec.float_nodes + floats), images
        )
        _embed_into_file(q_path, run)
        miou = gate_miou(run, q_path, gate, threads)
        steps.append({"float_layers": count, "miou": miou, "drop_points": 100 * (scores["fp32"] - miou)})
        log.info("accuracy control: %d layers in float, mIoU %.4f", count, miou)
        run.report["int8"] = facts
        if 100 * (scores["fp32"] - miou) <= gate.max_drop:
            break
        count *= 2
    run.report["accuracy_control"] = {
        "plain_int8_miou": scores["int8"],
        "ranking": [{"node": n, "added_rel_error": round(e, 5)} for n, e in ranking[:16]],
        "steps": steps,
        "kept_float": [n for n, _ in ranking[: steps[-1]["float_layers"]]] if steps else [],
        "why": "the convolutions whose int8 output adds the most relative error to their input's, worst first",
    }
    return miou


def report_path_for(out: Path) -> Path:
    """Where the ExportReport of ``out`` is written (``m.onnx`` -> ``m.report.json``)."""
    return out.with_name(out.name + ".report.json") if out.suffix != ".onnx" else out.with_suffix(".report.json")


def run(
    spec: ExportSpec, model: Any, meta: ModelMeta, *, gate: GateSpec | None = None, threads: int = 0
) -> dict[str, Any]:
    """Export ``model`` per ``spec``; returns the ExportReport (also written as ``<output>.report.json``).

    Raises:
        ExportError, ParityError, AccuracyGateError: a step failed (nothing is written).
        OutputExistsError, ConfigError: the output cannot be written.
        DatasetError: calibration or gate data problems.
    """
    out = Path(spec.output)
    check_output(out, force=spec.force)
    report_path = report_path_for(out)
    check_output(report_path, force=spec.force)
    if spec.export_shape[0] % meta.stride or spec.export_shape[1] % meta.stride:
        raise ConfigError(f"export shape {spec.export_shape} must have sides that are multiples of {meta.stride}")
    if gate is not None and spec.quantize is Quantize.NONE:
        raise ConfigError("--eval-data gates a quantised model: add --quantize int8 (or fp16)")
    t_all = time.perf_counter()
    with writing(out), temp_dir(out.parent, "export") as tmp:
        r = ExportRun(spec, meta.with_provenance(export_opset=spec.opset, quantize=spec.quantize.value), Path(tmp))
        model = model.eval()
        step_export(r, model)
        if spec.simplify:
            step_simplify(r)
        if spec.runtime_upsampling:
            r.report["runtime_upsampling"] = move_final_upsampling(r.proto)
        if spec.rewrite:
            step_rewrite(r, threads)
        else:
            r.upsampling_nodes = find_upsampling(r.proto)
        if spec.ids_output:  # ArgMax + Cast, kept in float by int8 like the upsampling
            r.upsampling_nodes = [*(r.upsampling_nodes or []), *add_ids_output(r.proto)]
        embed_meta(r.proto, r.meta)
        embed_upsampling_nodes(r.proto, r.upsampling_nodes or [])
        _stamp(r.proto, r)
        fp32 = r.work / "fp32.onnx"
        save_proto(r.proto, fp32)
        r.report["bytes"]["fp32"] = fp32.stat().st_size
        if spec.verify:
            step_verify(r, model, fp32, threads)
        final = fp32
        if spec.quantize is not Quantize.NONE:
            picked = None
            auto_range = spec.quant is None or spec.quant.reduce_range is None
            if spec.quantize is Quantize.INT8 and gate is not None and auto_range and int8_reduce_range()[0]:
                picked = step_pick_range(r, fp32, gate, threads)
            final = step_quantize(r, fp32, r.work / f"{spec.quantize.value}.onnx", model, threads, picked)
            if gate is not None:
                step_gate(r, fp32, final, gate, threads, model=model, qspec=picked or spec.quant)
            r.report["bytes"][spec.quantize.value] = final.stat().st_size
        r.report.update(
            output=str(out),
            quantize=spec.quantize.value,
            opset=spec.opset,
            versions=_versions(),
            export_shape=list(spec.export_shape),
            total_s=round(time.perf_counter() - t_all, 3),
        )
        final.replace(out)  # same folder: an atomic rename
    with writing(report_path):
        atomic_write_json(report_path, r.report)
    return r.report
