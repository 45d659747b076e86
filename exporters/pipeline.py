"""``fcnedge export`` as a sequence of small named steps: export -> simplify -> rewrite -> verify -> quantise ->
gate -> write (the quantisation steps live in :mod:`fcnedge.exporters.quant_steps`). Everything is written to temp
files in the output folder and renamed into place at the end."""

from __future__ import annotations

import logging
import platform
import time
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from fcnedge.errors import ConfigError
from fcnedge.exporters.cut import add_ids_output, move_final_upsampling
from fcnedge.exporters.export_run import ExportReport, ExportRun, parity, save_proto, stamp
from fcnedge.exporters.onnx_meta import embed_meta, embed_upsampling_nodes
from fcnedge.exporters.quant_steps import GateSpec, step_gate, step_pick_range, step_quantize
from fcnedge.exporters.rewrite import RewriteReport, find_upsampling, rewrite_upsampling
from fcnedge.exporters.uint8_input import step_uint8_input
from fcnedge.exporters.verify import check_fp32
from fcnedge.fsutil import atomic_write_json, check_output, temp_dir, writing
from fcnedge.host import int8_reduce_range
from fcnedge.meta import ModelMeta
from fcnedge.specs import ExportSpec, Quantize, RewriteForm

log = logging.getLogger(__name__)

__all__ = ["ExportReport", "ExportRun", "GateSpec", "report_path_for", "run", "time_models"]

K = TypeVar("K")


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
    run.report.exporter = "dynamo" if run.spec.dynamo else "torchscript"
    run.report.nodes = {"exported": len(run.proto.graph.node)}
    run.report.bytes = {"exported": path.stat().st_size}
    run.step("export", t0)


def step_simplify(run: ExportRun) -> None:
    from fcnedge.exporters.simplify import simplify

    t0 = time.perf_counter()
    res = simplify(run.proto)
    run.proto = res.model
    run.report.simplifier = res.tool
    if res.failure:
        run.report.simplifier_failure = res.failure
    run.report.nodes["simplified"] = len(run.proto.graph.node)
    run.step("simplify", t0)


def _sessions_for(protos: dict[K, Any], threads: int) -> dict[K, Any]:
    from fcnedge.runtime.session import inspection_session

    return {k: inspection_session(p.SerializeToString(), threads=threads) for k, p in protos.items()}


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
    exact.discard(RewriteForm.DENSE_DCR)  # dense's work in another channel order: asked for (mobile), never timed
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
    run.report.rewrite = {
        "requested": run.spec.rewrite_form.value,
        "chosen": choice.value,
        "rewrites": best_rep.rewrites,
        "upsampling_nodes": run.upsampling_nodes,
        "form_timings_ms": {k.value: round(v * 1e3, 2) for k, v in timings.items()},
    }
    run.report.nodes["rewritten"] = len(run.proto.graph.node)
    run.step("rewrite", t0)


def step_verify(run: ExportRun, model: Any, path: Path, threads: int) -> None:
    from fcnedge.exporters.verify import as_dicts

    t0 = time.perf_counter()
    results = parity(run, model, path, threads)
    run.report.parity_fp32 = as_dicts(results)
    check_fp32(results)
    run.step("verify", t0)


def report_path_for(out: Path) -> Path:
    """Where the ExportReport of ``out`` is written (``m.onnx`` -> ``m.report.json``)."""
    return out.with_name(out.name + ".report.json") if out.suffix != ".onnx" else out.with_suffix(".report.json")


def run(
    spec: ExportSpec, model: Any, meta: ModelMeta, *, gate: GateSpec | None = None, threads: int = 0
) -> ExportReport:
    """Export ``model`` per ``spec``; returns the :class:`ExportReport` (also written as ``<output>.report.json``).

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
            r.report.runtime_upsampling = move_final_upsampling(r.proto)
        if spec.rewrite:
            step_rewrite(r, threads)
        else:
            r.upsampling_nodes = find_upsampling(r.proto)
        if spec.ids_output:  # ArgMax + Cast, kept in float by int8 like the upsampling
            r.upsampling_nodes = [*(r.upsampling_nodes or []), *add_ids_output(r.proto)]
        embed_meta(r.proto, r.meta)
        embed_upsampling_nodes(r.proto, r.upsampling_nodes or [])
        stamp(r.proto, r)
        fp32 = r.work / "fp32.onnx"
        save_proto(r.proto, fp32)
        r.report.bytes["fp32"] = fp32.stat().st_size
        if spec.verify:
            step_verify(r, model, fp32, threads)
        final = fp32
        if spec.quantize is not Quantize.NONE:
            trial = None
            auto_range = spec.quant is None or spec.quant.reduce_range is None
            if spec.quantize is Quantize.INT8 and gate is not None and auto_range and int8_reduce_range()[0]:
                trial = step_pick_range(r, fp32, gate, threads)
            final = step_quantize(r, fp32, r.work / f"{spec.quantize.value}.onnx", model, threads, trial)
            if gate is not None:
                qspec = trial.qspec if trial is not None else spec.quant
                known = trial.miou if trial is not None else None
                step_gate(r, fp32, final, gate, threads, model=model, qspec=qspec, known_miou=known)
            r.report.bytes[spec.quantize.value] = final.stat().st_size
        if spec.uint8_input:
            final = step_uint8_input(r, final, threads)
        r.report.output, r.report.quantize, r.report.opset = str(out), spec.quantize.value, spec.opset
        r.report.versions, r.report.export_shape = _versions(), list(spec.export_shape)
        r.report.total_s = round(time.perf_counter() - t_all, 3)
        final.replace(out)  # same folder: an atomic rename
    with writing(report_path):
        atomic_write_json(report_path, r.report.to_json())
    return r.report
