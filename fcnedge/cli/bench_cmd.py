"""``fcnedge bench``: latency and accuracy of every variant, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from fcnedge.cli.common import cli_errors, console, out
from fcnedge.specs import CalibMethod, DataFormat, ProviderSpec, QuantSpec, parse_hw


def _sources(models: list[str], num_classes: Optional[int]) -> list[Any]:
    from fcnedge.benchmarks.harness import file_digest, torch_source
    from fcnedge.benchmarks.variants import Source
    from fcnedge.cli.resolve import load_torch_model

    if not models:
        from fcnedge.models.default import default_checkpoint_path, shipped_int8_path

        model, meta = load_torch_model(None)
        ckpt = default_checkpoint_path()
        return [torch_source("default", model, meta, file_digest(ckpt), shipped_int8=shipped_int8_path())]
    sources = []
    for m in models:
        if m.endswith(".onnx"):
            p = Path(m)
            sources.append(Source(label=p.stem, onnx_path=p))
            continue
        model, meta = load_torch_model(m, num_classes=num_classes)
        digest = file_digest(Path(m)) if Path(m).is_file() else m
        sources.append(torch_source(Path(m).stem, model, meta, digest))
    return sources


@cli_errors
def bench(
    models: Annotated[
        Optional[list[str]], typer.Argument(help="Checkpoints or .onnx files; none: bundled default.")
    ] = None,
    provider: Annotated[str, typer.Option(help="cpu, cuda, tensorrt, openvino, ... or a list.")] = "cpu",
    variants: Annotated[
        str, typer.Option(help="torch, torch-compile, fp32, int8, fp16, openvino.")
    ] = "torch,fp32,int8",
    shape: Annotated[list[str], typer.Option(help="Input HxW (repeatable).")] = ["320x480"],  # noqa: B006
    num_classes: Annotated[Optional[int], typer.Option(help="Classes, for an architecture name (untrained).")] = None,
    batch: Annotated[int, typer.Option(help="Images per run.")] = 1,
    threads: Annotated[int, typer.Option(help="Threads for every runtime (0: all cores).")] = 2,
    warmup: Annotated[int, typer.Option(help="Untimed runs first.")] = 5,
    runs: Annotated[int, typer.Option(help="Timed runs.")] = 30,
    data: Annotated[Optional[Path], typer.Option(help="Labelled data for mIoU (e.g. CamVid).")] = None,
    fmt: Annotated[DataFormat, typer.Option("--format", help="Layout of --data.")] = DataFormat.CAMVID,
    split: Annotated[str, typer.Option(help="Split of --data to evaluate.")] = "val",
    eval_limit: Annotated[Optional[int], typer.Option(help="Evaluate only the first N images.")] = None,
    calib_data: Annotated[Optional[Path], typer.Option(help="int8 calibration images (default: --data).")] = None,
    calib_count: Annotated[int, typer.Option(help="Calibration images.")] = 32,
    calib_method: Annotated[CalibMethod, typer.Option(help="Calibration method.")] = CalibMethod.MINMAX,
    allow_fallback: Annotated[bool, typer.Option(help="Warn instead of failing on a missing provider.")] = False,
    roofline: Annotated[bool, typer.Option("--roofline/--no-roofline", help="Measure the conv roofline.")] = True,
    profile: Annotated[bool, typer.Option(help="ORT profiler: op-type shares and top nodes per ONNX variant.")] = False,
    output: Annotated[Path, typer.Option("--out", help="Report folder.")] = Path("bench"),
) -> None:
    """Time PyTorch, ORT fp32/int8/fp16 (and torch.compile, OpenVINO) on identical inputs; mIoU with --data."""
    from rich.table import Table

    from fcnedge.benchmarks.harness import BenchConfig, run_bench
    from fcnedge.benchmarks.report import COLUMNS, table_rows, write_reports
    from fcnedge.benchmarks.variants import parse_variants
    from fcnedge.runtime.providers import parse_providers, resolve

    pspec = ProviderSpec(providers=parse_providers(provider), allow_fallback=allow_fallback, threads=threads)
    resolve(pspec)  # a missing provider fails here, before any model is loaded
    calib_src = calib_data or (data if data is not None else None)
    if calib_data is not None and calib_count < 1:
        raise typer.BadParameter("--calib-count must be 1 or more")
    cfg = BenchConfig(
        variants=tuple(parse_variants(variants)),
        providers=pspec,
        shapes=tuple(parse_hw(s, what="--shape") for s in shape),
        batch=batch,
        threads=threads,
        warmup=warmup,
        runs=runs,
        data=data,
        data_format=fmt.value,
        split=split,
        eval_limit=eval_limit,
        out=output,
        roofline=roofline,
        profile=profile,
        calib=QuantSpec(calib_data=calib_src, calib_format=fmt, calib_count=calib_count, method=calib_method)
        if calib_src
        else None,
    )
    sources = _sources(models or [], num_classes)
    with console.status("benchmarking..."):
        report = run_bench(sources, cfg)
    table = Table(title=f"fcnedge bench on {report['machine']['cpu']} ({threads} threads)")
    for c in COLUMNS:
        table.add_column(c, justify="right" if c not in ("model", "variant", "provider") else "left")
    for cells in table_rows(report):
        table.add_row(*cells)
    from rich.console import Console

    Console(width=max(out.width, 170), highlight=False).print(table)  # never squeeze the table into 80 columns
    if report.get("roofline"):
        out.print(f"conv roofline: {report['roofline']['gflops']:.1f} GFLOP/s ({report['roofline']['probe']})")
    written = write_reports(report, output)
    out.print("wrote " + ", ".join(str(p) for p in written))


def register(app: typer.Typer) -> None:
    """Add the commands to ``app``."""
    app.command("bench")(bench)
    register_runtime(app)


@cli_errors
def bench_runtime(
    model: Annotated[Path, typer.Argument(help="An .onnx model.")],
    tile: Annotated[str, typer.Option(help="Tile HxW.")] = "320x480",
    overlap: Annotated[float, typer.Option(help="Tile overlap.")] = 0.25,
    size: Annotated[list[str], typer.Option(help="Large image HxW (repeatable).")] = ["1024x2048", "10000x10000"],  # noqa: B006
    threads: Annotated[int, typer.Option(help="Threads.")] = 2,
    runs: Annotated[int, typer.Option(help="Timed runs (large images run once).")] = 5,
    provider: Annotated[str, typer.Option(help="Provider(s).")] = "cpu",
    output: Annotated[Path, typer.Option("--out", help="Report folder.")] = Path("bench-runtime"),
) -> None:
    """Runtime figures: tiled overhead vs the raw session, large-image latency and peak RSS, tile batching."""
    import json

    from fcnedge.benchmarks.tiling import RuntimeBenchConfig, run_runtime_bench
    from fcnedge.fsutil import atomic_write_text
    from fcnedge.runtime.providers import parse_providers

    cfg = RuntimeBenchConfig(
        model=model,
        tile=parse_hw(tile, what="--tile"),
        overlap=overlap,
        sizes=tuple(parse_hw(s, what="--size") for s in size),
        threads=threads,
        runs=runs,
        providers=ProviderSpec(providers=parse_providers(provider)),
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
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output / "runtime.json", json.dumps(report, indent=2))
    out.print(f"wrote {output / 'runtime.json'}")


def register_runtime(app: typer.Typer) -> None:
    """Add bench-runtime to ``app``."""
    app.command("bench-runtime")(bench_runtime)
