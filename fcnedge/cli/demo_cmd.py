"""``fcnedge demo``: live segmentation of a webcam, video, or folder of frames."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fcnedge.cli.common import cli_errors, out
from fcnedge.cli.options import (
    AllowFallbackOpt,
    BlendOpt,
    BudgetOpt,
    FlipOpt,
    FpsOpt,
    OverlapOpt,
    RuntimeArgs,
    ScaleOpt,
    TileOpt,
    TunedBatchOpt,
    TunedProviderOpt,
    TunedThreadsOpt,
    apply_budget,
    model_line,
    panels,
)
from fcnedge.specs import Blend, parse_hw


@panels(
    {
        "Runtime": ("allow_fallback", "tile", "overlap", "blend", "flip_tta", "scale", "batch", "budget_ms"),
        "Recording": ("record", "stats", "force"),
    }
)
@cli_errors
def demo(
    model: Annotated[
        Optional[str], typer.Argument(help="An .onnx model, checkpoint or bundled name; omit for the default.")
    ] = None,
    source: Annotated[str, typer.Option(help="Camera index (0), video file, folder or glob.")] = "0",
    fps: FpsOpt = None,
    provider: TunedProviderOpt = None,
    allow_fallback: AllowFallbackOpt = False,
    input_size: Annotated[
        str, typer.Option(help="Resize frames to HxW (multiples of 32), or 'tile' to tile full-resolution frames.")
    ] = "352x480",
    tile: TileOpt = None,
    overlap: OverlapOpt = 0.25,
    blend: BlendOpt = Blend.MEAN,
    flip_tta: FlipOpt = False,
    scale: ScaleOpt = None,
    batch: TunedBatchOpt = None,
    alpha: Annotated[float, typer.Option(help="Overlay opacity in [0, 1].")] = 0.5,
    record: Annotated[Optional[Path], typer.Option(help="Write the overlay video (.mp4).")] = None,
    stats: Annotated[Optional[Path], typer.Option(help="Per-frame timings JSON (default: beside --record).")] = None,
    headless: Annotated[bool, typer.Option(help="No window (servers, tests).")] = False,
    max_frames: Annotated[Optional[int], typer.Option(help="Stop after N frames.")] = None,
    live: Annotated[bool, typer.Option(help="Read files at their frame rate, dropping frames like a camera.")] = False,
    threads: TunedThreadsOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --record video / --stats file.")] = False,
    budget_ms: BudgetOpt = None,
) -> None:
    """Segment live video with an overlay, legend and FPS. Keys: q/Esc quit, space pause, m mask, s snapshot."""
    from fcnedge.demo.loop import DemoConfig, check_window_support, run_demo
    from fcnedge.errors import ConfigError
    from fcnedge.fsutil import check_output

    check_window_support(headless)
    size = None if input_size == "tile" else parse_hw(input_size, what="--input-size")
    if size is not None and (size[0] % 32 or size[1] % 32):
        raise ConfigError(f"--input-size {input_size} must have sides that are multiples of 32 (e.g. 352x480)")
    if stats is None and record is not None:
        stats = record.with_suffix(".json")
    for target in (record, stats):  # fail before the model is opened, not after the whole run
        if target is not None:
            check_output(target, force=force)
    # frames resized to --input-size run as one tile of that size unless --tile says otherwise
    rt = RuntimeArgs(provider, allow_fallback, threads, tile, overlap, blend, batch, flip_tta, scale)
    if fps is None and budget_ms is None and model is None and scale is None and provider is None:
        fps = camera_rate(source)  # a live camera: keep up with it unless told otherwise
        if fps is not None:
            out.print(f"camera {source} delivers {fps:g} FPS: picking for --fps {fps:g} (--fps or --scale to choose)")
    rt, model, pick = apply_budget(rt, model, fps, budget_ms, size)
    pred = rt.open(model, default_tile=size)
    out.print(model_line(pred))
    cfg = DemoConfig(
        source=source,
        input_size=size,
        alpha=alpha,
        record=record,
        stats=stats,
        headless=headless,
        max_frames=max_frames,
        live=live,
        provider=pred.provider,
        model_file=str(pred.session.path),
        pick=None if pick is None else {**pick, "tile": list(pred.spec.size)},
    )
    result = run_demo(pred, cfg)
    med = result["median_ms"]
    skipped = f", {result['skipped_unreadable']} unreadable skipped" if result["skipped_unreadable"] else ""
    out.print(
        f"{result['frames']} frames ({result['dropped']} dropped{skipped}) at {result['fps']:.1f} FPS on "
        f"{pred.provider}; median model {med.get('model', 0):.1f} ms, end-to-end {med.get('e2e', 0):.1f} ms "
        f"(frame age at pickup {med.get('age', 0):.1f} ms); "
        f"stopped: {result['ended_because']}"
    )
    if record:
        out.print(f"wrote {record}" + (f" and {stats}" if stats else ""))


def camera_rate(source: str) -> float | None:
    """The frame rate a camera source (``"0"``) reports, None for files or a camera that reports none."""
    if not source.isdigit():
        return None
    import cv2

    cap = cv2.VideoCapture(int(source))
    try:
        rate = float(cap.get(cv2.CAP_PROP_FPS)) if cap.isOpened() else 0.0
    finally:
        cap.release()
    return rate if 1.0 <= rate <= 240.0 else None


def register(app: typer.Typer) -> None:
    """Add the command to ``app``."""
    app.command("demo")(demo)
