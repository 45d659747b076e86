"""``fcnedge export`` and ``fcnedge quantize``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from fcnedge.cli.common import cli_errors, console, out
from fcnedge.cli.options import panels
from fcnedge.errors import ConfigError
from fcnedge.specs import (
    CalibMethod,
    DataFormat,
    ExportSpec,
    Quantize,
    QuantSpec,
    RewriteForm,
    Target,
    check_threads,
    parse_hw,
)

CalibData = Annotated[Optional[Path], typer.Option("--calib-data", help="Images for int8 calibration (e.g. CamVid).")]
CalibFormat = Annotated[
    DataFormat,
    typer.Option(
        "--calib-format",
        help="Layout of --calib-data (auto: a dataset file, CamVid, VOC or images/ + masks/ gives its train images, "
        "any other folder its images).",
    ),
]
CalibCount = Annotated[int, typer.Option("--calib-count", help="How many calibration images.")]
CalibMethodOpt = Annotated[CalibMethod, typer.Option("--calib-method", help="Calibration method.")]
PerChannel = Annotated[bool, typer.Option("--per-channel/--per-tensor", help="Per-channel int8 weight scales.")]
QuantUp = Annotated[
    bool, typer.Option("--quantize-upsampling/--float-upsampling", help="Quantise the upsampling too (int8).")
]
ReduceRange = Annotated[
    Optional[bool],
    typer.Option(
        "--reduce-range/--full-range",
        help="7-bit int8 weights (for x86 CPUs without VNNI) or full 8-bit; default: decided from this CPU.",
    ),
]

RuntimeUpsampling = Annotated[
    bool,
    typer.Option(
        "--runtime-upsampling",
        help="End the graph at the stride-s logits; the runtime does the final bilinear upsampling (faster).",
    ),
]
Uint8Input = Annotated[
    bool, typer.Option("--uint8-input", help="Take uint8 RGB pixels; the model normalises them (no float pass).")
]

OnnxOutput = Annotated[Path, typer.Option("--output", "-o", help="The .onnx file to write.")]
TargetOutput = Annotated[
    Optional[Path],
    typer.Option(
        "--output",
        "-o",
        help="The .onnx file (--target onnx; default model.onnx) or the folder (other targets; default: the "
        "target's name) to write.",
    ),
]
TargetOpt = Annotated[
    Target,
    typer.Option(
        help="onnx (one dynamic .onnx), openvino (IR folder), ort-mobile (fixed --shape, one partition on NNAPI and "
        "CoreML, .onnx + .ort), tensorrt (engine, on a CUDA machine).",
    ),
]

WeightType = Annotated[
    str, typer.Option("--weight-type", help="int8 weights (symmetric; default) or uint8 (asymmetric; u8u8 kernels).")
]

if TYPE_CHECKING:
    from fcnedge.exporters.export_run import ExportReport


def _quant_spec(
    data: Optional[Path],
    fmt: DataFormat,
    count: int,
    method: CalibMethod,
    per_channel: bool,
    hw: tuple[int, int],
    quantize_upsampling: bool,
    reduce_range: Optional[bool],
    weight_type: str = "int8",
) -> QuantSpec:
    return QuantSpec(
        calib_data=data,
        calib_format=fmt,
        calib_count=count,
        method=method,
        per_channel=per_channel,
        calib_shape=hw,
        keep_upsampling_float=not quantize_upsampling,
        reduce_range=reduce_range,
        weight_type=weight_type,
    )


def _summary(report: ExportReport, *, staged: bool = False) -> None:
    mb = {k: f"{v / 1e6:.2f} MB" for k, v in report.bytes.items()}
    what = "exported and checked the ONNX model" if staged else f"wrote {report.output}"
    out.print(f"{what} ({report.quantize}) in {report.total_s or 0.0:.1f}s; sizes {mb}")
    for key, rows in (("parity_fp32", report.parity_fp32), ("parity_int8", report.parity_int8)):
        for row in rows or []:
            out.print(
                f"  {key} {row['shape'][0]}x{row['shape'][1]}: rel diff {row['rel_diff']:.2e}, "
                f"argmax agreement {100 * row['argmax_agreement']:.3f} %"
            )
    if report.accuracy is not None:
        acc = report.accuracy
        out.print(
            f"  mIoU {json.dumps({k: round(100 * v, 2) for k, v in acc['miou'].items()})}, "
            f"drop {acc['drop_points']:.2f} points"
        )


@panels(
    {
        "Graph": ("opset", "simplify", "rewrite", "rewrite_form", "dynamo", "runtime_upsampling", "ids_output"),
        "Quantisation": (
            "calib_format",
            "calib_count",
            "calib_method",
            "per_channel",
            "quantize_upsampling",
            "reduce_range",
            "weight_type",
        ),
        "Accuracy gate": (
            "eval_data",
            "eval_format",
            "max_miou_drop",
            "allow_drop",
            "accuracy_control",
            "max_float_layers",
        ),
    }
)
@cli_errors
def export(
    model: Annotated[
        Optional[str], typer.Argument(help="Checkpoint .pt, architecture name, bundled name, or nothing (default).")
    ] = None,
    output: TargetOutput = None,
    target: TargetOpt = Target.ONNX,
    num_classes: Annotated[Optional[int], typer.Option(help="Classes, with an architecture name.")] = None,
    head: Annotated[
        Optional[str], typer.Option(help="FCN head with an architecture name: 32s (default), 16s, 8s, 4s, 2s.")
    ] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset (13-21).")] = 17,
    shape: Annotated[
        str, typer.Option(help="Export/verify shape HxW (multiples of 32); --target ort-mobile: the fixed input.")
    ] = "320x480",
    simplify: Annotated[bool, typer.Option("--simplify/--no-simplify", help="Run onnxsim (onnxslim fallback).")] = True,
    rewrite: Annotated[bool, typer.Option("--rewrite/--no-rewrite", help="Replace ConvTranspose upsampling.")] = True,
    rewrite_form: Annotated[
        RewriteForm,
        typer.Option(
            help="auto (time exact forms, keep the fastest), resize, depthwise, dense, dense-dcr (mobile NPUs) or "
            "convtranspose."
        ),
    ] = RewriteForm.AUTO,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Check PyTorch vs ONNX Runtime.")] = True,
    dynamo: Annotated[bool, typer.Option("--dynamo", help="Use the dynamo exporter (needs onnxscript).")] = False,
    runtime_upsampling: RuntimeUpsampling = False,
    uint8_input: Uint8Input = False,
    ids_output: Annotated[
        bool,
        typer.Option("--ids-output", help="Add uint8 class ids (ArgMax in the graph) as a second output (faster)."),
    ] = False,
    quantize: Annotated[Quantize, typer.Option("--quantize", help="none, int8 (static QDQ) or fp16.")] = Quantize.NONE,
    calib_data: CalibData = None,
    calib_format: CalibFormat = DataFormat.AUTO,
    calib_count: CalibCount = 32,
    calib_method: CalibMethodOpt = CalibMethod.MINMAX,
    per_channel: PerChannel = True,
    quantize_upsampling: QuantUp = False,
    reduce_range: ReduceRange = None,
    weight_type: WeightType = "int8",
    eval_data: Annotated[Optional[Path], typer.Option(help="Labelled data for the fp32 vs quantised gate.")] = None,
    eval_format: Annotated[
        DataFormat, typer.Option(help="Layout of --eval-data (auto: recognised).")
    ] = DataFormat.AUTO,
    max_miou_drop: Annotated[float, typer.Option(help="Refuse a larger mIoU drop (points).")] = 1.0,
    allow_drop: Annotated[bool, typer.Option(help="Write the model even if the gate fails.")] = False,
    accuracy_control: Annotated[
        bool,
        typer.Option(help="Over --max-miou-drop: return the worst int8 layers to float before refusing."),
    ] = True,
    max_float_layers: Annotated[int, typer.Option(help="At most this many layers back to float.")] = 16,
    threads: Annotated[int, typer.Option(help="ORT threads for verification (0: all).")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output.")] = False,
) -> None:
    """Export a PyTorch FCN to ONNX (dynamic N/H/W), simplify, rewrite, verify, optionally quantise."""
    from fcnedge.sources import require_torch

    require_torch("fcnedge export")
    from fcnedge.exporters.pipeline import GateSpec, run
    from fcnedge.exporters.torch_export import check_opset
    from fcnedge.exporters.torch_sources import load_torch
    from fcnedge.fsutil import check_output
    from fcnedge.sources import identify

    output = output or Path("model.onnx" if target is Target.ONNX else target.value)
    if target is Target.ONNX:
        check_output(output, force=force)
    else:
        rewrite_form = _check_target(target, output, force, rewrite, rewrite_form, runtime_upsampling, uint8_input)
    check_opset(opset)
    check_threads(threads)
    hw = parse_hw(shape, what="--shape")
    qspec = _quant_spec(
        calib_data,
        calib_format,
        calib_count,
        calib_method,
        per_channel,
        hw,
        quantize_upsampling,
        reduce_range,
        weight_type,
    )
    if quantize is Quantize.INT8:
        from fcnedge.exporters.quantize import calibration_images

        calibration_images(qspec)  # fail on bad calibration data before the slow steps
    if dynamo and opset < 18:
        raise ConfigError(f"--dynamo exports opset 18 or later, not --opset {opset}: pass --opset 18 (or more)")
    src = identify(model)
    if head is not None and src.kind.value != "architecture":
        raise ConfigError(f"--head applies to an architecture name; {src.text} already has head and weights")
    torch_model, meta = load_torch(src, num_classes=num_classes, head=head)
    spec = ExportSpec(
        output=output,
        opset=opset,
        simplify=simplify,
        rewrite=rewrite,
        rewrite_form=rewrite_form,
        quantize=quantize,
        export_shape=hw,
        verify=verify,
        force=force,
        dynamo=dynamo,
        quant=qspec,
        runtime_upsampling=runtime_upsampling,
        ids_output=ids_output,
        uint8_input=uint8_input,
    )
    gate = (
        GateSpec(
            eval_data,
            eval_format,
            max_drop=max_miou_drop,
            allow_drop=allow_drop,
            control=accuracy_control,
            max_float_layers=max_float_layers,
        )
        if eval_data
        else None
    )
    if gate is not None:
        from fcnedge.data.datasets import open_dataset

        open_dataset(gate.data, gate.fmt, gate.split)  # a wrong --eval-data fails now, not after the export
    if target is not Target.ONNX:  # --eval-data without --quantize: real frames for the proof, no gate
        gate = gate if quantize is not Quantize.NONE else None
        _export_target(target, output, spec, torch_model, meta, gate, eval_data or calib_data, force, threads)
        return
    with console.status("exporting..."):
        report = run(spec, torch_model, meta, gate=gate, threads=threads)
    _summary(report)


def _check_target(
    target: Target,
    output: Path,
    force: bool,
    rewrite: bool,
    form: RewriteForm,
    runtime_upsampling: bool,
    uint8_input: bool,
) -> RewriteForm:
    """Refuse what a folder target cannot take, before the slow steps; returns the rewrite form it needs."""
    from fcnedge.fsutil import check_output_folder

    check_output_folder(output, force=force)
    if runtime_upsampling or uint8_input:
        raise ConfigError(f"--target {target.value} writes the whole model: drop --runtime-upsampling/--uint8-input")
    if target is Target.TENSORRT:
        from fcnedge.exporters.tensorrt_engine import check_tensorrt

        check_tensorrt()
    if target is not Target.ORT_MOBILE:
        return form
    if not rewrite or form not in (RewriteForm.AUTO, RewriteForm.DENSE_DCR):
        raise ConfigError(
            "--target ort-mobile writes the upsampling as dense-dcr (the form NNAPI and CoreML take whole): drop "
            "--no-rewrite/--rewrite-form"
        )
    return RewriteForm.DENSE_DCR


def _proof_frames(data: Path | None) -> list[Any]:
    """Up to 8 val frames of ``data`` (a dataset), else 4 seeded synthetic 360x480 frames."""
    from fcnedge.data.synthetic import synthetic_images

    if data is None:
        out.print("proving the result on 4 synthetic 360x480 frames (--eval-data/--calib-data prove it on real ones)")
        return synthetic_images([(360, 480)] * 4, seed=0)
    from fcnedge.data.datasets import IMAGE_EXTS, open_dataset, read_image_file
    from fcnedge.errors import DatasetError

    try:
        paths = [p for p, _ in open_dataset(data, DataFormat.AUTO, "val").pairs[:8]]
    except DatasetError:  # a plain folder of images (as --calib-data may be)
        if not data.is_dir():
            raise
        paths = sorted(q for q in data.iterdir() if q.suffix.lower() in IMAGE_EXTS and q.is_file())[:8]
        if not paths:
            raise
    return [read_image_file(p) for p in paths]


def _export_target(
    target: Target,
    output: Path,
    spec: ExportSpec,
    torch_model: Any,
    meta: Any,
    gate: Any,
    data: Optional[Path],
    force: bool,
    threads: int,
) -> None:
    """Export to a temporary .onnx (every step and gate as for --target onnx), then build the target's folder
    from it; nothing appears at ``output`` unless every check passed."""
    import dataclasses
    import tempfile

    from fcnedge.exporters.pipeline import report_path_for, run

    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{output.name}-onnx-", dir=output.parent) as tmp:
        onnx_file = Path(tmp) / "model.onnx"
        with console.status("exporting..."):
            report = run(dataclasses.replace(spec, output=onnx_file, force=True), torch_model, meta, gate=gate,
                         threads=threads)  # fmt: skip
        _summary(report, staged=True)
        frames = _proof_frames(data)
        extras = [report_path_for(onnx_file)]
        with console.status(f"building --target {target.value}..."):
            if target is Target.ORT_MOBILE:
                from fcnedge.exporters.ort_mobile import summary, to_ort_mobile
                from fcnedge.models.infer import torch_runner
                from fcnedge.runtime.open import predictor_for
                from fcnedge.specs import TileSpec

                hw = spec.export_shape
                ref = predictor_for(torch_runner(torch_model), meta, TileSpec(size=hw, overlap=0.25), fixed_hw=hw)
                rep = to_ort_mobile(onnx_file, output, hw, frames, ref, reference_name="the PyTorch model",
                                    force=force, threads=threads, extras=extras)  # fmt: skip
                out.print(
                    f"wrote {output}/ (model.ort, model.onnx, required_operators.config, target.json): {summary(rep)}"
                )
            elif target is Target.OPENVINO:
                from fcnedge.exporters.openvino_ir import to_openvino_ir

                rep = to_openvino_ir(onnx_file, output, frames, force=force, threads=threads, extras=extras)
                _print_openvino(output, onnx_file, rep)
            else:
                from fcnedge.exporters.tensorrt_engine import to_tensorrt

                rep = to_tensorrt(onnx_file, output, spec.export_shape, frames, force=force, threads=threads,
                                  extras=extras)  # fmt: skip
                _print_tensorrt(output, rep)


@cli_errors
def quantize_cmd(
    model: Annotated[Path, typer.Argument(help="An fp32 .onnx exported by fcnedge.")],
    output: OnnxOutput,
    mode: Annotated[Quantize, typer.Option("--quantize", help="int8 or fp16.")] = Quantize.INT8,
    calib_data: CalibData = None,
    calib_format: CalibFormat = DataFormat.AUTO,
    calib_count: CalibCount = 32,
    calib_method: CalibMethodOpt = CalibMethod.MINMAX,
    per_channel: PerChannel = True,
    quantize_upsampling: QuantUp = False,
    reduce_range: ReduceRange = None,
    weight_type: WeightType = "int8",
    shape: Annotated[
        str, typer.Option(help="Calibration tile HxW (multiples of 32) for a model whose meta names none.")
    ] = "320x480",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output.")] = False,
) -> None:
    """Quantise an existing fcnedge ONNX model (int8 static QDQ or fp16)."""
    from fcnedge.sources import require_module

    require_module("onnx", "fcnedge quantize")
    from fcnedge.sources import require_onnx_format

    require_onnx_format(model, "fcnedge quantize")
    from fcnedge.exporters.standalone import quantize_onnx

    hw = parse_hw(shape, what="--shape")
    qspec = _quant_spec(
        calib_data,
        calib_format,
        calib_count,
        calib_method,
        per_channel,
        hw,
        quantize_upsampling,
        reduce_range,
        weight_type,
    )
    report = quantize_onnx(model, output, mode=mode, spec=qspec, force=force)
    out.print(f"wrote {output} ({mode.value}): {report['bytes_in'] / 1e6:.2f} MB -> {report['bytes_out'] / 1e6:.2f} MB")


@cli_errors
def convert_cmd(
    model: Annotated[
        Optional[str], typer.Argument(help="An fcnedge .onnx file or a bundled name (its int8 file); none: default.")
    ] = None,
    output: TargetOutput = None,
    target: TargetOpt = Target.ONNX,
    shape: Annotated[
        str, typer.Option(help="--target ort-mobile: the fixed input HxW; tensorrt: the largest tile.")
    ] = "384x480",
    runtime_upsampling: RuntimeUpsampling = False,
    uint8_input: Uint8Input = False,
    data: Annotated[
        Optional[Path],
        typer.Option(help="Other targets: frames to prove the result on (a dataset; its val images, 8 of them)."),
    ] = None,
    threads: Annotated[int, typer.Option(help="Threads for the proof (0: all).")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output.")] = False,
) -> None:
    """Rewrite an existing fcnedge ONNX model into the runtime's exact fast forms, or into another target's format
    (same ids, proven on write)."""
    from fcnedge.sources import SourceKind, identify, require_module, require_onnx_format

    require_module("onnx", "fcnedge convert")
    check_threads(threads)
    src = identify(model)
    if src.kind is SourceKind.ORT_FORMAT and src.path is not None:
        require_onnx_format(src.path, "fcnedge convert")
    if src.kind not in (SourceKind.ONNX, SourceKind.BUNDLED) or src.path is None:
        raise ConfigError(
            f"{src.text} is not an ONNX model (it is a {src.kind.value}): export it with fcnedge export "
            "--runtime-upsampling (and --uint8-input) instead"
        )
    if target is not Target.ONNX:
        output = output or Path(target.value)
        _check_target(target, output, force, True, RewriteForm.AUTO, runtime_upsampling, uint8_input)
        from fcnedge.exporters.targets import check_fixed_shape

        hw = parse_hw(shape, what="--shape")
        check_fixed_shape(hw)
        frames = _proof_frames(data)
        with console.status(f"building --target {target.value}..."):
            if target is Target.OPENVINO:
                from fcnedge.exporters.openvino_ir import to_openvino_ir

                _print_openvino(
                    output, src.path, to_openvino_ir(src.path, output, frames, force=force, threads=threads)
                )
            elif target is Target.ORT_MOBILE:
                _convert_ort_mobile(src.path, output, hw, frames, force, threads)
            else:
                from fcnedge.exporters.tensorrt_engine import to_tensorrt

                _print_tensorrt(output, to_tensorrt(src.path, output, hw, frames, force=force, threads=threads))
        return
    if data is not None:
        raise ConfigError("--data proves a conversion to another target: add --target (e.g. openvino) or drop --data")
    from fcnedge.exporters.standalone import convert_onnx

    output = output or Path("model.fast.onnx")
    report = convert_onnx(src.path, output, runtime_upsampling=runtime_upsampling, uint8_input=uint8_input, force=force)
    worst = min(r["argmax_agreement"] for r in report["parity"])
    out.print(f"wrote {output} from {src.path.name}: class ids agree on {100 * worst:.3f} % of pixels (worst shape)")


def _convert_ort_mobile(
    src: Path, output: Path, hw: tuple[int, int], frames: list[Any], force: bool, threads: int
) -> None:
    """An existing ONNX file to --target ort-mobile: a ConvTranspose upsampling becomes dense-dcr (exact); one
    already in the CPU's Pad/Resize form cannot be taken whole by NNAPI/CoreML, so it is refused in one line."""
    import tempfile

    import onnx

    from fcnedge.exporters.ort_mobile import summary, to_ort_mobile
    from fcnedge.exporters.rewrite import rewrite_upsampling
    from fcnedge.runtime.open import open_predictor

    proto = onnx.load(str(src))
    blockers = sorted({n.op_type for n in proto.graph.node if n.op_type in ("Pad", "Resize")} | {
        "DepthToSpace (CRD)" for n in proto.graph.node
        if n.op_type == "DepthToSpace" and any(a.name == "mode" and a.s == b"CRD" for a in n.attribute)
    })  # fmt: skip
    if blockers:
        raise ConfigError(
            f"{src.name} has its upsampling as {', '.join(blockers)}, which NNAPI and CoreML do not take whole: "
            "export it from its checkpoint with fcnedge export CKPT --target ort-mobile (bundled models: fcnedge "
            "export NAME --target ort-mobile)"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{output.name}-onnx-", dir=output.parent) as tmp:
        dcr = Path(tmp) / "model.onnx"
        rewrite_upsampling(proto, force_form=RewriteForm.DENSE_DCR)
        onnx.save(proto, str(dcr))
        ref = open_predictor(src, threads=threads, tile=hw)
        rep = to_ort_mobile(dcr, output, hw, frames, ref, reference_name=f"the source {src.name}", force=force,
                            threads=threads)  # fmt: skip
    out.print(f"wrote {output}/ (model.ort, model.onnx, required_operators.config, target.json): {summary(rep)}")


def _print_tensorrt(output: Path, report: dict[str, Any]) -> None:
    out.print(
        f"wrote {output}/model.onnx, engine/ and target.json: ids agree with the ONNX file on "
        f"{100 * report['worst_agreement_vs_onnx_on_cpu']:.3f} % of pixels"
    )


def _print_openvino(output: Path, src: Path, report: dict[str, Any]) -> None:
    out.print(
        f"wrote {output}/model.xml, model.bin and target.json from {src.name} ({report['precision']}): class ids "
        f"agree with the ONNX file on {100 * report['worst_agreement_vs_onnx_on_openvino']:.3f} % of pixels on "
        f"OpenVINO and {100 * report['worst_agreement_vs_onnx_on_onnxruntime']:.3f} % against ONNX Runtime "
        f"(worst of {len(report['parity'])} frames)"
    )


def register(app: typer.Typer) -> None:
    """Add the commands to ``app``."""
    app.command("export")(export)
    app.command("quantize")(quantize_cmd)
    app.command("convert")(convert_cmd)
