"""``fcnedge predict MODEL.onnx INPUTS... -o OUTDIR``: class-id PNGs (and overlays / probabilities)."""

from __future__ import annotations

import glob
import logging
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from fcnedge.cli.common import cli_errors, console, out
from fcnedge.data.datasets import IMAGE_EXTS
from fcnedge.errors import ConfigError, FcnEdgeError, InputImageError
from fcnedge.specs import Blend, ProviderSpec, TileSpec, parse_hw

log = logging.getLogger(__name__)


def expand_inputs(items: list[str]) -> list[Path]:
    """Files, folders (their images, sorted) and globs -> image paths, in order, without duplicates.

    Raises:
        InputImageError: an item matches nothing, or a folder holds no images.
    """
    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXTS and q.is_file())
            if not found:
                raise InputImageError(f"folder {p} holds no images ({', '.join(IMAGE_EXTS)}): check the folder")
            paths.extend(found)
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


def overlay(image: np.ndarray, ids: np.ndarray, palette: np.ndarray, alpha: float) -> np.ndarray:
    """Blend class colours over an RGB image."""
    colour = palette[ids]
    return (image.astype(np.float32) * (1 - alpha) + colour.astype(np.float32) * alpha).astype(np.uint8)


@cli_errors
def predict(
    model: Annotated[Optional[str], typer.Argument(help="An .onnx model; omit (or '-') for the bundled default.")],
    inputs: Annotated[Optional[list[str]], typer.Argument(help="Image files, folders or globs.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the outputs.")] = Path("predictions"),
    provider: Annotated[str, typer.Option(help="cpu, cuda, tensorrt, openvino, coreml, dml, or a list.")] = "cpu",
    allow_fallback: Annotated[bool, typer.Option(help="Warn instead of failing when a provider is missing.")] = False,
    tile: Annotated[Optional[str], typer.Option(help="Tile HxW, multiples of 32 (default 320x480).")] = None,
    overlap: Annotated[float, typer.Option(help="Tile overlap in [0, 1).")] = 0.25,
    blend: Annotated[Blend, typer.Option(help="mean (the seed's rule) or hann.")] = Blend.MEAN,
    batch: Annotated[int, typer.Option(help="Tiles per session call.")] = 4,
    threads: Annotated[int, typer.Option(help="CPU threads (0: all).")] = 0,
    save_overlay: Annotated[bool, typer.Option(help="Also write colour overlays.")] = False,
    save_probs: Annotated[bool, typer.Option(help="Also write softmax probabilities (.npy, float16).")] = False,
    num_classes: Annotated[Optional[int], typer.Option(help="For models without fcnedge metadata.")] = None,
    mean: Annotated[
        str, typer.Option(help="With --num-classes: RGB mean in [0, 1], comma-separated.")
    ] = "0.485,0.456,0.406",
    std: Annotated[
        str, typer.Option(help="With --num-classes: RGB std in [0, 1], comma-separated.")
    ] = "0.229,0.224,0.225",
    force: Annotated[bool, typer.Option("--force", help="Replace existing outputs.")] = False,
) -> None:
    """Segment images with an ONNX model: writes class-id PNGs named like the inputs."""
    from fcnedge.runtime.predictor import TiledPredictor, fit_tile_to_model
    from fcnedge.runtime.providers import parse_providers
    from fcnedge.runtime.session import Session

    if model not in (None, "-", "default") and not str(model).endswith(".onnx"):
        inputs = [model, *(inputs or [])]  # `fcnedge predict img.png`: no model given, use the default
        model = None
    if not inputs:
        raise ConfigError("no inputs given: pass image files, folders or globs after the model")
    paths = expand_inputs(inputs)
    spec = ProviderSpec(providers=parse_providers(provider), allow_fallback=allow_fallback, threads=threads)
    ts = TileSpec(size=parse_hw(tile, what="--tile") if tile else (320, 480), overlap=overlap, blend=blend, batch=batch)
    model_path = _model_path(model)
    meta = _meta_override(num_classes, mean, std)
    session = Session(model_path, spec, meta=meta, tile=ts.size)
    ts = fit_tile_to_model(ts, session.fixed_hw, explicit=tile is not None)
    pred = TiledPredictor(session.run, session.meta, ts, max_batch=session.max_batch, threads=threads)
    out.print(f"model {model_path} on {session.provider}")
    output.mkdir(parents=True, exist_ok=True)
    failures = _run_all(pred, paths, output, save_overlay=save_overlay, save_probs=save_probs, force=force)
    out.print(f"wrote {len(paths) - len(failures)} of {len(paths)} predictions to {output} ({session.provider})")
    if failures:
        for p, msg in failures:
            typer.echo(f"failed: {p}: {msg}", err=True)
        raise typer.Exit(code=2)


def _model_path(model: Optional[str]) -> Path:
    if model in (None, "-", "default"):
        from fcnedge.cli.resolve import default_onnx

        return default_onnx()
    return Path(model)  # type: ignore[arg-type]


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


def _run_all(pred, paths: list[Path], output: Path, *, save_overlay: bool, save_probs: bool, force: bool):  # type: ignore[no-untyped-def]
    import cv2
    from rich.progress import Progress

    from fcnedge.fsutil import atomic_path, check_output
    from fcnedge.runtime.postprocess import argmax_ids
    from fcnedge.runtime.preprocess import read_image

    palette = np.array(pred.meta.palette, dtype=np.uint8)
    failures: list[tuple[Path, str]] = []
    with Progress(console=console, transient=True, disable=len(paths) < 2) as bar:
        task = bar.add_task("predicting", total=len(paths))
        for p in paths:
            try:
                target = output / f"{p.stem}.png"
                check_output(target, force=force)
                image = read_image(p)
                logits = pred.logits(image)
                ids = argmax_ids(logits, threads=pred.threads)
                with atomic_path(target) as tmp:
                    _write_png(tmp, ids)
                if save_overlay:
                    with atomic_path(output / f"{p.stem}.overlay.png") as tmp:
                        _write_png(tmp, cv2.cvtColor(overlay(image, ids, palette, 0.5), cv2.COLOR_RGB2BGR))
                if save_probs:
                    from fcnedge.runtime.predictor import softmax

                    with atomic_path(output / f"{p.stem}.probs.npy") as tmp, tmp.open("wb") as fh:
                        np.save(fh, softmax(logits).astype(np.float16))
            except FcnEdgeError as exc:
                failures.append((p, str(exc)))
            bar.advance(task)
    return failures


def _write_png(path: Path, array: np.ndarray) -> None:
    import cv2

    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise InputImageError(f"could not encode {path.name} as PNG")
    path.write_bytes(buf.tobytes())


def register(app: typer.Typer) -> None:
    """Add the command to ``app``."""
    app.command("predict")(predict)
