"""``fcnedge bench``: latency and accuracy of every variant, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from fcnedge.cli.common import cli_errors, console, out
from fcnedge.cli.options import (
    AllowFallbackOpt,
    BlendOpt,
    OverlapOpt,
    ProviderOpt,
    RuntimeArgs,
    ThreadsOpt,
    TileOpt,
    panels,
)
from fcnedge.errors import ConfigError
from fcnedge.results import versioned
from fcnedge.specs import Blend, CalibMethod, DataFormat, ProviderSpec, QuantSpec, parse_hw


def _default_shapes(sources: list[Any]) -> tuple[tuple[int, int], ...]:
    """Without --shape: the size fixed-size .onnx models take when they all take one, else 320x480."""
    from fcnedge.runtime.session import read_onnx_meta

    fixed = {read_onnx_meta(s.onnx_path)[1]["fixed_hw"] for s in sources if s.onnx_path is not None}
    return (fixed.pop(),) if len(fixed) == 1 and None not in fixed else ((320, 480),)


def _sources(models: list[str], num_classes: Optional[int], *, explicit_variants: bool) -> list[Any]:
    """What to benchmark, each model recognised through fcnedge.sources: .onnx files are timed as they are;
    checkpoints, architectures and the bundled model as torch sources (the bundled model's shipped int8 file
    when torch is absent and no variants were asked for)."""
    from fcnedge.benchmarks.harness import torch_source
    from fcnedge.benchmarks.variants import Source
    from fcnedge.exporters.torch_sources import load_torch
    from fcnedge.runtime.session import read_onnx_meta
    from fcnedge.sources import SourceKind, digest, identify, onnx_path, torch_available

    sources = []
    for m in models or ["default"]:
        src = identify(m)
        as_onnx = src.kind in (SourceKind.ONNX, SourceKind.OPENVINO_IR, SourceKind.ORT_FORMAT) or (
            src.kind is SourceKind.BUNDLED and not explicit_variants and not torch_available()
        )
        if as_onnx:
            if explicit_variants:
                raise ConfigError(
                    f"--variants apply to checkpoints and architectures; {src.text} is ONNX and is timed as it is "
                    "(drop --variants, or pass the .pt checkpoint)"
                )
            path = onnx_path(src)
            sources.append(Source(label=src.label, onnx_path=path, meta=read_onnx_meta(path)[0]))
            continue
        model, meta = load_torch(src, num_classes=num_classes)
        shipped = src.weights.path() if src.weights is not None else None
        sources.append(torch_source(src.label, model, meta, digest(src, num_classes=num_classes), shipped_int8=shipped))
    return sources


@panels(
    {
        "Accuracy (--data)": ("fmt", "split", "eval_limit"),
        "int8 calibration": ("calib_data", "calib_format", "calib_count", "calib_method"),
        "Runtime and timing": ("scale", "num_classes", "batch", "warmup", "allow_fallback", "runtime_upsampling"),
        "Extra figures": ("roofline", "profile"),
    }
)
@cli_errors
def bench(
    models: Annotated[
        Optional[list[str]],
        typer.Argument(help="Checkpoints, architectures, bundled names or .onnx files; none: the bundled default."),
    ] = None,
    provider: ProviderOpt = "cpu",
    variants: Annotated[
        Optional[str],
        typer.Option(
            help="torch, torch-compile, fp32, int8, fp16, and the OpenVINO references openvino (fp32), "
            "openvino-int8 (the int8 row's file), openvino-bf16 (default torch,fp32,int8)."
        ),
    ] = None,
    shape: Annotated[
        Optional[list[str]],
        typer.Option(
            help="Image HxW (repeatable); a model with an inference scale takes it scaled, padded to 32 (default "
            "320x480, or the size a fixed-size .onnx model takes)."
        ),
    ] = None,
    scale: Annotated[
        Optional[float],
        typer.Option(help="Inference scale for every model (default: each model's own; 1: images as given)."),
    ] = None,
    num_classes: Annotated[Optional[int], typer.Option(help="Classes, for an architecture name (untrained).")] = None,
    batch: Annotated[int, typer.Option(help="Images per run.")] = 1,
    threads: Annotated[
        int, typer.Option(help="Threads for every runtime (0: the runtime's default; at most 4 per core).")
    ] = 2,
    warmup: Annotated[int, typer.Option(help="Untimed runs first.")] = 5,
    runs: Annotated[int, typer.Option(help="Timed runs.")] = 30,
    data: Annotated[Optional[Path], typer.Option(help="Labelled data for mIoU (e.g. CamVid).")] = None,
    fmt: Annotated[DataFormat, typer.Option("--format", help="Layout of --data (auto: recognised).")] = DataFormat.AUTO,
    split: Annotated[str, typer.Option(help="Split of --data to evaluate.")] = "val",
    eval_limit: Annotated[Optional[int], typer.Option(help="Evaluate only the first N images.")] = None,
    calib_data: Annotated[
        Optional[Path],
        typer.Option(
            help="int8 calibration images (default: --data); a bundled model's int8 rows time its shipped file "
            "unless this is given."
        ),
    ] = None,
    calib_format: Annotated[
        Optional[DataFormat], typer.Option(help="Layout of --calib-data (default: --format; images: a plain folder).")
    ] = None,
    calib_count: Annotated[int, typer.Option(help="Calibration images.")] = 32,
    calib_method: Annotated[CalibMethod, typer.Option(help="Calibration method.")] = CalibMethod.MINMAX,
    allow_fallback: AllowFallbackOpt = False,
    roofline: Annotated[bool, typer.Option("--roofline/--no-roofline", help="Measure the conv roofline.")] = True,
    profile: Annotated[bool, typer.Option(help="ORT profiler: op-type shares and top nodes per ONNX variant.")] = False,
    runtime_upsampling: Annotated[
        bool,
        typer.Option(
            "--runtime-upsampling/--graph-upsampling",
            help="fcnedge's fp32/int8/fp16 rows: a frozen bilinear final upsampling runs in the runtime (exact).",
        ),
    ] = True,
    output: Annotated[Path, typer.Option("--out", help="Report folder.")] = Path("bench"),
    force: Annotated[bool, typer.Option("--force", help="Replace an existing report in --out.")] = False,
) -> None:
    """Time PyTorch, ORT fp32/int8/fp16 (and torch.compile, OpenVINO) on identical inputs; mIoU with --data."""
    from rich.table import Table

    from fcnedge.benchmarks.harness import BenchConfig, run_bench
    from fcnedge.benchmarks.report import COLUMNS, table_rows, write_reports
    from fcnedge.benchmarks.variants import parse_variants
    from fcnedge.fsutil import prepare_report_folder
    from fcnedge.runtime.open import check_providers
    from fcnedge.runtime.providers import parse_providers

    prepare_report_folder(output, ("report.json", "report.md", "latency_vs_miou.png"), force=force)
    pspec = ProviderSpec(providers=parse_providers(provider), allow_fallback=allow_fallback, threads=threads)
    check_providers(pspec)  # a missing provider fails here, before any model is loaded
    calib_src = calib_data or (data if data is not None else None)
    if calib_data is not None and calib_count < 1:
        raise ConfigError(f"--calib-count {calib_count} is invalid: use 1 or more")
    chosen = tuple(parse_variants("torch,fp32,int8" if variants is None else variants))
    sources = _sources(models or [], num_classes, explicit_variants=variants is not None)
    cfg = BenchConfig(
        variants=chosen,
        providers=pspec,
        shapes=tuple(parse_hw(s, what="--shape") for s in shape) if shape else _default_shapes(sources),
        batch=batch,
        threads=threads,
        warmup=warmup,
        runs=runs,
        data=data,
        data_format=fmt,
        split=split,
        eval_limit=eval_limit,
        out=output,
        roofline=roofline,
        profile=profile,
        runtime_upsampling=runtime_upsampling,
        shipped_int8=calib_data is None,
        scale=scale,
        calib=QuantSpec(
            calib_data=calib_src, calib_format=calib_format or fmt, calib_count=calib_count, method=calib_method
        )
        if calib_src
        else None,
    )
    with console.status("benchmarking..."):
        report = run_bench(sources, cfg).to_json()  # JSON from here on: the table and the files read the same
    table = Table(title=f"fcnedge bench on {report['machine']['cpu']} ({threads} threads)")
    for c in COLUMNS:
        table.add_column(c, justify="right" if c not in ("model", "variant", "provider") else "left")
    for cells in table_rows(report):
        table.add_row(*cells)
    from rich.console import Console

    Console(width=max(out.width, 170), highlight=False).print(table)  # never squeeze the table into 80 columns
    if report.get("roofline"):
        out.print(f"conv roofline: {report['roofline']['gflops']:.1f} GFLOP/s ({report['roofline']['probe']})")
    from fcnedge.fsutil import writing

    with writing(output):
        written = write_reports(report, output)
    out.print("wrote " + ", ".join(str(p) for p in written))


def register(app: typer.Typer) -> None:
    """Add the commands to ``app``."""
    app.command("bench")(bench)
    register_runtime(app)


@cli_errors
def bench_runtime(
    model: Annotated[
        Optional[str], typer.Argument(help="An .onnx model, checkpoint or bundled name; omit for the default.")
    ] = None,
    tile: TileOpt = None,
    overlap: OverlapOpt = 0.25,
    blend: BlendOpt = Blend.MEAN,
    size: Annotated[list[str], typer.Option(help="Large image HxW (repeatable).")] = ["1024x2048", "10000x10000"],  # noqa: B006
    threads: ThreadsOpt = 2,
    runs: Annotated[int, typer.Option(help="Timed runs (large images run once).")] = 5,
    provider: ProviderOpt = "cpu",
    allow_fallback: AllowFallbackOpt = False,
    output: Annotated[Path, typer.Option("--out", help="Report folder.")] = Path("bench-runtime"),
    force: Annotated[bool, typer.Option("--force", help="Replace an existing runtime.json in --out.")] = False,
) -> None:
    """Runtime figures: tiled overhead vs the raw session, large-image latency and peak RSS, tile batching."""

    from fcnedge.benchmarks.tiling import RuntimeBenchConfig, run_runtime_bench
    from fcnedge.fsutil import atomic_write_json, prepare_report_folder, writing
    from fcnedge.runtime.providers import parse_providers

    prepare_report_folder(output, ("runtime.json",), force=force)
    rt = RuntimeArgs(provider, allow_fallback, threads, tile, overlap, blend)
    cfg = RuntimeBenchConfig(
        model=model,
        providers=ProviderSpec(providers=parse_providers(provider), allow_fallback=allow_fallback, threads=threads),
        tile=rt.tile_hw(),
        overlap=overlap,
        blend=blend,
        sizes=tuple(parse_hw(s, what="--size") for s in size),
        runs=runs,
    )
    with console.status("benchmarking the runtime..."):
        report = run_runtime_bench(cfg)
    for r in report["whole_image"] + report["batching"]:
        out.print(
            f"{r['size']:>11} batch {r['batch']}: {r['windows']:4d} windows, tiled {r['tiled_ms']:9.1f} ms, "
            f"raw session {r['raw_session_ms']:9.1f} ms, overhead {r['overhead_pct']:+.1f} % "
            f"(with argmax {r['predict_overhead_pct']:+.1f} %)"
            + (f", x{r['speedup_vs_batch1']:.2f} vs batch 1" if "speedup_vs_batch1" in r else "")
        )
    for r in report["large"]:
        out.print(
            f"{r['size']:>11} batch {r['batch']}: {r['windows']} windows in {r['latency_s']:.1f} s, peak RSS "
            f"{r['peak_rss_mb']:.0f} MiB (image {r['image_mb']:.0f} MiB, one logit band "
            f"{r['logit_band_mb']:.0f} MiB)"
        )
    with writing(output / "runtime.json"):
        output.mkdir(parents=True, exist_ok=True)
        atomic_write_json(output / "runtime.json", versioned("bench-runtime", report))
    out.print(f"wrote {output / 'runtime.json'}")


def register_runtime(app: typer.Typer) -> None:
    """Add bench-runtime to ``app``."""
    app.command("bench-runtime")(bench_runtime)
