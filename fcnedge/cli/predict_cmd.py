"""``fcnedge predict [MODEL] INPUTS... -o OUTDIR``: class-id PNGs (and overlays / probabilities)."""

from __future__ import annotations

import contextlib
import glob
import logging
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from fcnedge.cli.common import cli_errors, console, fail, out, quiet_loggers
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
from fcnedge.data.datasets import IMAGE_EXTS
from fcnedge.demo.video import VIDEO_EXTS, is_video
from fcnedge.errors import ConfigError, InputImageError, OutputError
from fcnedge.fsutil import check_folder_writable, check_not_inputs
from fcnedge.imagesize import DEFAULT_MAX_PIXELS
from fcnedge.runtime.batch import OutputSpec, Status
from fcnedge.specs import Blend, Engine

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".onnx", ".pt", ".pth", ".ort", ".xml")


def expand_inputs(items: list[str]) -> list[Path]:
    """Files, folders (their images, sorted) and globs -> image paths, in order, without duplicates.

    Raises:
        InputImageError: an item matches nothing, or a folder holds no images.
    """
    paths: list[Path] = []
    for item in items:
        if "://" in item:
            raise InputImageError(
                f"input {item} is a URI: object storage is not read yet; put the images on a file system every "
                "worker mounts (for --engine ray) and pass that path"
            )
        p = Path(item)
        if p.is_dir() and p.suffix.lower() in MODEL_SUFFIXES:
            raise InputImageError(
                f"{p} is a folder named like a model: pass the model file itself (an .onnx or .pt file), or "
                "rename the folder if it holds images"
            )
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXTS and q.is_file())
            if not found:
                raise InputImageError(f"folder {p} holds no images ({', '.join(IMAGE_EXTS)}): check the folder")
            paths.extend(found)
        elif p.is_file() and p.suffix.lower() in (".txt", ".lst", ".parquet"):  # a list of image paths
            paths.extend(read_path_list(p))
        elif p.exists():
            paths.append(p)
        elif any(ch in item for ch in "*?["):
            matched = sorted(Path(m) for m in glob.glob(item, recursive=True))
            if not matched:
                raise InputImageError(f"pattern {item!r} matches no files: check the pattern")
            paths.extend(matched)
        else:
            raise InputImageError(f"input {item} does not exist: pass image files, folders or globs")
    seen: set[Path] = set()
    return [p for p in paths if not (p in seen or seen.add(p))]  # type: ignore[func-returns-value]


def read_path_list(path: Path) -> list[Path]:
    """The image paths listed in a text file (one a line, ``#`` comments) or in a Parquet file's ``path``
    column; relative paths are relative to the list's folder.

    Raises:
        InputImageError: a Parquet list without pyarrow, or without a ``path`` column; a list naming nothing.
    """
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise InputImageError(f"reading {path} needs pyarrow: pip install 'fcnedge[ray]'") from None
        table = pq.read_table(path)
        if "path" not in table.column_names:
            raise InputImageError(f"{path} has no 'path' column (columns: {', '.join(table.column_names)})")
        listed = [str(v) for v in table.column("path").to_pylist()]
    else:
        listed = [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if not listed:
        raise InputImageError(f"list {path} names no images: write one image path a line (or pass the images)")
    return [q if q.is_absolute() else path.parent / q for q in map(Path, listed)]


def check_distinct_stems(paths: list[Path]) -> None:
    """Raise when two inputs would write the same output name (``a.png`` and ``a.jpg`` -> ``a.png``).

    Raises:
        ConfigError: the clashing inputs, named.
    """
    seen: dict[str, Path] = {}
    for p in paths:
        if p.stem in seen:
            raise ConfigError(
                f"inputs {seen[p.stem]} and {p} would both write {p.stem}.png: rename one, or predict them into "
                "different -o folders"
            )
        seen[p.stem] = p


def check_outputs_spare_inputs(paths: list[Path], output: Path, *, overlay: bool, probs: bool, color: bool) -> None:
    """Refuse, before any work, an output that would replace one of the inputs (``predict photos -o photos``
    with PNG inputs, or a symlink to an input), whatever ``--force`` says.

    Raises:
        ConfigError: the output and the input it would replace.
    """
    from fcnedge.runtime.ray_engine import MANIFEST

    spec = OutputSpec(output, overlay=overlay, probs=probs, color=color)
    targets = [t for p in paths for t in spec.targets(p)]
    check_not_inputs([*targets, output / MANIFEST], paths)


def looks_like_input(item: str) -> bool:
    """True for what can only be an input, never a model: an image file, a folder or a glob."""
    p = Path(item)
    return p.is_dir() or p.suffix.lower() in (*IMAGE_EXTS, *VIDEO_EXTS) or any(ch in item for ch in "*?[")


@panels(
    {
        "Runtime": ("allow_fallback", "overlap", "blend", "flip_tta", "batch"),
        "Models without fcnedge metadata": ("num_classes", "mean", "std"),
        "Ray (--engine ray)": ("address", "actors", "threads_per_actor", "batch_size"),
        "Videos, resuming and real time": ("resume", "save_video", "fps", "budget_ms"),
    }
)
@cli_errors
def predict(
    model: Annotated[
        Optional[str],
        typer.Argument(help="An .onnx model, a .pt checkpoint, a bundled model name; omit for the bundled default."),
    ],
    inputs: Annotated[
        Optional[list[str]], typer.Argument(help="Image files, folders, globs or videos (a mask per frame).")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the outputs.")] = Path("predictions"),
    provider: TunedProviderOpt = None,
    allow_fallback: AllowFallbackOpt = False,
    tile: TileOpt = None,
    overlap: OverlapOpt = 0.25,
    blend: BlendOpt = Blend.MEAN,
    flip_tta: FlipOpt = False,
    scale: ScaleOpt = None,
    batch: TunedBatchOpt = None,
    threads: TunedThreadsOpt = None,
    save_overlay: Annotated[bool, typer.Option(help="Also write colour overlays.")] = False,
    save_probs: Annotated[bool, typer.Option(help="Also write softmax probabilities (.npy, float16).")] = False,
    save_color: Annotated[
        bool, typer.Option(help="Also write RGB masks in the model's class colours (NAME.color.png).")
    ] = False,
    num_classes: Annotated[Optional[int], typer.Option(help="For models without fcnedge metadata.")] = None,
    mean: Annotated[
        str, typer.Option(help="With --num-classes: RGB mean in [0, 1], comma-separated.")
    ] = "0.485,0.456,0.406",
    std: Annotated[
        str, typer.Option(help="With --num-classes: RGB std in [0, 1], comma-separated.")
    ] = "0.229,0.224,0.225",
    force: Annotated[bool, typer.Option("--force", help="Replace existing outputs.")] = False,
    engine: Annotated[Engine, typer.Option(help="local (this process) or ray (a Ray cluster).")] = Engine.LOCAL,
    address: Annotated[
        Optional[str], typer.Option(help="With --engine ray: auto, ray://host:10001, or none for a local Ray.")
    ] = None,
    actors: Annotated[int, typer.Option(help="With --engine ray: workers (0: as many as fit).")] = 0,
    threads_per_actor: Annotated[int, typer.Option(help="With --engine ray: ORT threads (and CPUs) per worker.")] = 1,
    batch_size: Annotated[
        int,
        typer.Option(
            "--ray-batch-size",
            "--batch-size",
            help="With --engine ray: images per worker call (not --batch, tiles per session call; --batch-size: "
            "its old name).",
        ),
    ] = 4,
    resume: Annotated[
        bool, typer.Option(help="Skip what an interrupted run finished: video frames with a mask, Ray's manifest rows.")
    ] = False,
    save_video: Annotated[bool, typer.Option(help="Videos: also write OUT/NAME.overlay.mp4.")] = False,
    fps: FpsOpt = None,
    budget_ms: BudgetOpt = None,
    max_pixels: Annotated[
        int,
        typer.Option(help="Refuse images of more pixels than this (read from the header, before decoding).", min=1),
    ] = DEFAULT_MAX_PIXELS,
) -> None:
    """Segment images: writes class-id PNGs named like the inputs (and, with --engine ray, a manifest); overlays
    carry a legend of the classes present."""
    if model is not None and looks_like_input(model):
        inputs = [model, *(inputs or [])]  # `fcnedge predict img.png`: no model given, use the default
        model = None
    if not inputs:
        raise ConfigError("no inputs given: pass image files, folders or globs after the model")
    paths = expand_inputs(inputs)
    check_distinct_stems(paths)
    check_folder_writable(output, what="-o")
    videos = [p for p in paths if is_video(p)]
    paths = [p for p in paths if not is_video(p)]
    check_outputs_spare_inputs(paths, output, overlay=save_overlay, probs=save_probs, color=save_color)
    if engine is Engine.LOCAL and (address or actors):
        raise ConfigError("--address and --actors are for --engine ray: add --engine ray or drop them")
    if engine is Engine.LOCAL and resume and not videos:
        raise ConfigError("--resume finishes videos or a Ray job: add --engine ray, or drop --resume")
    if save_video and not videos:
        raise ConfigError("--save-video writes an overlay video of a video input: give a video, or drop it")
    rt = RuntimeArgs(provider, allow_fallback, threads, tile, overlap, blend, batch, flip_tta, scale)
    meta = _meta_override(num_classes, mean, std)
    if fps is not None or budget_ms is not None:
        rt, model, _ = apply_budget(rt, model, fps, budget_ms, _first_frame_size(videos or paths))
    if engine is Engine.RAY:
        _run_ray(rt, model, meta, paths, output, (save_overlay, save_probs, save_color), force, address, actors,
                 threads_per_actor, batch_size, resume, max_pixels, videos, save_video)  # fmt: skip
        return
    pred = rt.open(model, meta=meta)
    out.print(model_line(pred))
    output.mkdir(parents=True, exist_ok=True)
    spec = OutputSpec(output, overlay=save_overlay, probs=save_probs, color=save_color, force=force)
    failures = _run_all(pred, paths, spec, max_pixels=max_pixels) if paths else []
    if paths:
        out.print(f"wrote {len(paths) - len(failures)} of {len(paths)} predictions to {output} ({pred.provider})")
    for v in videos:
        _run_video(pred, v, output, resume=resume, force=force, save_video=save_video)
    if failures:
        for p, msg in failures:
            typer.echo(f"failed: {p}: {msg}", err=True)
        raise typer.Exit(code=2)


def _run_ray(  # type: ignore[no-untyped-def]
    rt,
    model,
    meta,
    paths,
    output,
    saves,
    force,
    address,
    actors,
    threads,
    batch_size,
    resume,
    max_pixels,
    videos=(),
    save_video=False,
) -> None:
    """The Ray engine: the model is opened here first (a bad model or option fails before Ray starts), then by
    every worker through the same seam with the same options. Images go through Ray Data (a manifest); each
    video is one Ray task (its frames.csv and masks, resumable like a local run)."""
    from fcnedge.runtime.ray_engine import RayJob, run_job
    from fcnedge.specs import Provider

    with contextlib.suppress(ImportError):  # without Ray, run_job says what to install
        import ray.data  # noqa: F401  (configures Ray's loggers, which are quieted next)
    quiet_loggers("ray", "ray.data")

    probe = replace(rt, threads=threads)
    pred = probe.open(model, meta=meta)
    gpus = 1.0 if pred.session.spec.providers[0] in (Provider.CUDA, Provider.TENSORRT) else 0.0
    options = {"providers": pred.session.spec, "tile": rt.tile_hw(), "overlap": rt.overlap, "blend": rt.blend,
               "batch": pred.spec.batch, "meta": meta, "flip": rt.flip, "scale": rt.scale}  # fmt: skip
    output = output.resolve()  # workers (other processes, other nodes on a shared file system) need absolute paths
    paths = [p.resolve() for p in paths]
    save_overlay, save_probs, save_color = saves
    outputs = OutputSpec(output, overlay=save_overlay, probs=save_probs, color=save_color, force=force)
    job = RayJob(
        str(pred.session.path.resolve()),
        outputs,
        options,
        address=address,
        actors=actors,
        threads=threads,
        gpus=gpus,
        batch_size=batch_size,
        resume=resume,
        max_pixels=max_pixels,
    )
    del pred
    failed = 0
    if paths:
        try:
            summary = run_job(job, paths)
        except KeyboardInterrupt:
            raise fail(
                f"interrupted: the manifest {output / 'manifest.jsonl'} records what was done; run the same command "
                "with --resume to finish the rest"
            ) from None
        out.print(
            f"ray: {summary['done']} done, {summary['failed']} failed, {summary['skipped']} skipped "
            f"({summary['images_per_s']:.1f} images/s); manifest {summary['manifest']}"
        )
        for p, msg in summary["failures"]:
            typer.echo(f"failed: {p}: {msg}", err=True)
        failed += summary["failed"]
    if videos:
        failed += _ray_videos(job, [v.resolve() for v in videos], save_video)
    if failed:
        raise typer.Exit(code=2)


def _ray_videos(job, videos: list[Path], save_video: bool) -> int:  # type: ignore[no-untyped-def]
    """Each video as one Ray task; one line per video; returns how many failed or ended early."""
    from fcnedge.demo.video import segment_videos_on_ray

    try:
        results = segment_videos_on_ray(job, videos, save_video=save_video)
    except KeyboardInterrupt:
        raise fail(
            f"interrupted: the finished frame masks are in {job.outputs.folder}/<video name>/; run the same command "
            "with --resume to finish the rest"
        ) from None
    failed = 0
    for video, res in zip(videos, results, strict=True):
        if isinstance(res, str):
            typer.echo(f"failed: {video}: {res}", err=True)
            failed += 1
            continue
        skipped = f", {res.skipped} done before, skipped" if res.skipped else ""
        overlay = f"; overlay {res.overlay}" if res.overlay else ""
        out.print(f"ray: wrote {res.written} frame masks of {video.name} to {res.folder}/ ({res.frames} frames"
                  f"{skipped}; timestamps in frames.csv){overlay}")  # fmt: skip
        if not res.complete:
            typer.echo(f"failed: {video}: ended after {res.frames} of the {res.declared} frames it declares (truncated "
                       "or corrupt): the masks are kept; repair the file and run with --resume", err=True)  # fmt: skip
            failed += 1
    return failed


def _meta_override(num_classes: Optional[int], mean: str, std: str):  # type: ignore[no-untyped-def]
    """A meta for a model exported elsewhere (no fcnedge metadata): K from --num-classes, mean/std given."""
    if num_classes is None:
        return None
    from fcnedge.meta import ModelMeta

    def triple(text: str, what: str) -> tuple[float, float, float]:
        try:
            a, b, c = (float(v) for v in text.split(","))
        except ValueError:
            raise ConfigError(f"--{what} {text!r} is invalid: give three numbers, e.g. 0.485,0.456,0.406") from None
        return a, b, c

    return ModelMeta(
        arch="external", backbone="unknown", num_classes=num_classes, mean=triple(mean, "mean"), std=triple(std, "std")
    )


def _run_all(pred, paths: list[Path], spec: OutputSpec, *, max_pixels: int):  # type: ignore[no-untyped-def]
    from rich.progress import Progress

    from fcnedge.runtime.batch import segment_file

    failures: list[tuple[Path, str]] = []
    with Progress(console=console, transient=True, disable=len(paths) < 2) as bar:
        task = bar.add_task("predicting", total=len(paths))
        for i, p in enumerate(paths):
            try:
                row = segment_file(pred, p, spec, provider=pred.provider, max_pixels=max_pixels)
            except OSError as exc:  # the output side (disk full, folder removed): no point going on
                raise OutputError(
                    f"could not write the outputs for {p} into {spec.folder} ({exc.strerror}): free space or "
                    f"choose another -o ({i - len(failures)} of {len(paths)} were written before it)"
                ) from None
            if row["status"] != Status.OK:
                failures.append((p, row["error"]))
            bar.advance(task)
    return failures


def _first_frame_size(paths: list[Path]) -> tuple[int, int] | None:
    """The size of the first input (a video's first frame, an image's header), for --fps to time."""
    if not paths:
        return None
    import cv2

    from fcnedge.imagesize import header_size

    p = paths[0]
    if is_video(p):
        cap = cv2.VideoCapture(str(p))
        h, w = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        cap.release()
        return (h, w) if h and w else None
    size = header_size(p)
    return None if size is None else (size[0], size[1])


def _run_video(pred, video: Path, output: Path, *, resume: bool, force: bool, save_video: bool) -> None:  # type: ignore[no-untyped-def]
    from rich.progress import Progress

    from fcnedge.demo.video import segment_video

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"predicting {video.name}", total=None)

        def tick(done: int, declared: int) -> None:
            bar.update(task, completed=done, total=declared or None)

        try:
            res = segment_video(pred, video, output, resume=resume, force=force, save_video=save_video, on_frame=tick)
        except KeyboardInterrupt:
            raise OutputError(
                f"interrupted: the finished frame masks of {video.name} are in {output / video.stem}; run the same "
                "command with --resume to finish the rest"
            ) from None
        except OSError as exc:
            raise OutputError(
                f"could not write the frame masks of {video} into {output / video.stem} ({exc.strerror}): free space "
                "or choose another -o, then --resume"
            ) from None
    skipped = f", {res.skipped} done before, skipped" if res.skipped else ""
    overlay = f"; overlay {res.overlay}" if res.overlay else ""
    out.print(
        f"wrote {res.written} frame masks of {video.name} to {res.folder}/ ({res.frames} frames{skipped}; "
        f"timestamps in frames.csv){overlay}"
    )
    if not res.complete:
        raise OutputError(
            f"video {video} ended after {res.frames} of the {res.declared} frames it declares (truncated or corrupt): "
            f"the {res.frames} masks are kept; repair the file and run with --resume for the rest"
        )


def register(app: typer.Typer) -> None:
    """Add the command to ``app``."""
    app.command("predict")(predict)
