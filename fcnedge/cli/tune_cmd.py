"""``fcnedge tune``: pick the fastest runtime configuration for a model on this machine (used by predict/demo)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from fcnedge.cli.common import cli_errors, out
from fcnedge.errors import ConfigError
from fcnedge.specs import parse_hw


def _ints(text: str, what: str) -> list[int]:
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        values = []
    if not values:
        raise ConfigError(f"{what} {text!r} is invalid: write comma-separated whole numbers, e.g. 1,2")
    return values


@cli_errors
def tune(
    model: Annotated[
        Optional[str], typer.Argument(help="An .onnx model, checkpoint or bundled name; omit for the default.")
    ] = None,
    shape: Annotated[str, typer.Option(help="Image HxW to time (the size your images have).")] = "320x480",
    image: Annotated[
        Optional[Path], typer.Option(help="Time this image instead of a synthetic one of --shape.")
    ] = None,
    providers: Annotated[
        str, typer.Option(help="Engines to try: cpu (ONNX Runtime) and/or openvino.")
    ] = "cpu,openvino",
    threads_list: Annotated[
        Optional[str], typer.Option(help="Thread counts to try (default: 1, half the cores, all cores).")
    ] = None,
    tile: Annotated[Optional[str], typer.Option("--tile", help="Tile HxW, as predict would get it.")] = None,
    fast_form: Annotated[
        bool,
        typer.Option(
            "--fast-form/--as-is",
            help="Also time the model's exact fast form (runtime upsampling, uint8 input; made into the cache, "
            "needs the onnx package).",
        ),
    ] = True,
    runs: Annotated[int, typer.Option(help="Timed calls per configuration (split into --rounds rounds).")] = 24,
    rounds: Annotated[int, typer.Option(help="Interleaved rounds (a noisy minute hits every configuration).")] = 3,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Time and print, write nothing.")] = False,
) -> None:
    """Time engines x threads (x tiles per call) x the model's form (as it is, or its exact fast form) for MODEL on
    this machine and write the fastest beside it (<model>.tune.json, or the cache; a new run replaces it); predict
    and demo then use it unless --provider/--threads/--batch are given."""
    from fcnedge.data.synthetic import synthetic_images
    from fcnedge.runtime.open import resolve_tile
    from fcnedge.runtime.openvino_engine import openvino_available
    from fcnedge.runtime.predictor import scaled_size
    from fcnedge.runtime.preprocess import read_image
    from fcnedge.runtime.session import read_onnx_meta
    from fcnedge.runtime.tiling import make_grid
    from fcnedge.runtime.tune import (
        candidates,
        check_tune_args,
        default_threads_list,
        tune_target,
        write_tuned,
    )
    from fcnedge.runtime.tune import tune as run_tune
    from fcnedge.sources import identify, onnx_path
    from fcnedge.specs import TileSpec

    names = [p.strip() for p in providers.split(",") if p.strip()]
    if not names:
        raise ConfigError(f"--providers {providers!r} names nothing: give cpu, openvino or cpu,openvino")
    threads = _ints(threads_list, "--threads-list") if threads_list is not None else default_threads_list()
    check_tune_args(names, threads, runs, rounds)
    tile_hw = parse_hw(tile, what="--tile") if tile else None
    img = read_image(image) if image is not None else synthetic_images([parse_hw(shape, what="--shape")])[0]
    path = onnx_path(identify(model))
    meta = read_onnx_meta(path)[0]
    if meta is not None:  # predict's tiles: the model's inference scale and tile unless --tile says otherwise
        sh, sw = scaled_size(img.shape[0], img.shape[1], meta.scale)
        spec = TileSpec(size=resolve_tile(meta, tile=tile_hw))
    else:
        (sh, sw), spec = img.shape[:2], TileSpec(size=tile_hw) if tile_hw else TileSpec()
    multi = make_grid(sh, sw, spec, 32).count > 1
    fast_path, fast_note = _fast_form(path) if fast_form else (None, "")
    cands, notes = candidates(
        names, threads, [1, 4] if multi else [4], openvino=openvino_available(), fast=fast_path is not None
    )
    notes += [f"fast form: {fast_note}"] if fast_note else []
    target = tune_target(path)
    report = run_tune(path, img, cands, runs=runs, rounds=rounds, tile=tile_hw, fast_path=fast_path)
    report["notes"] = notes
    if json_out:
        typer.echo(json.dumps(report, indent=2))
    else:
        h, w = report["shape"]
        out.print(f"{path.name} at {h}x{w} on {report['host']['cpu']} ({report['runs']} calls each, median):")
        for r in report["rows"]:
            keys = ("provider", "threads", "batch", "form")
            mark = "  <- pick" if all(r[k] == report["pick"][k] for k in keys) else ""
            why = f"  (dropped: {r['why']})" if not r["kept"] else ""
            label = "default threads" if r["threads"] == 0 else f"{r['threads']} threads"
            out.print(
                f"  {r['provider']:<9} {label:<16} batch {r['batch']}  {r['form']:<5}  {r['p50_ms']:8.2f} ms{mark}{why}"
            )
        for n in notes:
            out.print(f"  {n}")
        if image is None and any(not r["kept"] for r in report["rows"]):
            out.print("  (agreement was checked on a synthetic image; pass --image with one of your photos)")
        ref, pick = report["reference_p50_ms"], report["pick"]["p50_ms"]
        out.print(f"pick: {pick:.2f} ms vs {ref:.2f} ms untuned ({ref / pick:.2f}x)")
    if dry_run:
        return
    write_tuned(target, report)
    out.print(f"wrote {target}: predict and demo use it for this model on this machine")


def _fast_form(path: Path) -> tuple[Optional[Path], str]:
    """The model's exact fast form in the cache (made once), or None and why not (no onnx package, nothing to
    change, a form that cannot be made)."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return None, "not timed: making it needs the onnx package (pip install 'fcnedge[torch]')"
    from fcnedge.sources import is_ort_format

    if is_ort_format(path):
        return None, "not timed: an .ort file is timed as it is (its fast form would be an .onnx)"
    from fcnedge.errors import FcnEdgeError
    from fcnedge.exporters.standalone import fast_form
    from fcnedge.sources import cache_dir

    try:
        made, why = fast_form(path, cache_dir() / "fast")
    except FcnEdgeError as exc:
        return None, f"not timed: {exc}"
    return made, why if made is not None else f"not timed: {why}"


def register(app: typer.Typer) -> None:
    """Add the command to ``app``."""
    app.command("tune")(tune)
