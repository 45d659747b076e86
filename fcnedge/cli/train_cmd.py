"""``fcnedge train`` and ``fcnedge eval``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from fcnedge.cli.common import cli_errors, console, out
from fcnedge.cli.options import (
    AllowFallbackOpt,
    BatchOpt,
    BlendOpt,
    FlipOpt,
    OverlapOpt,
    ProviderOpt,
    RuntimeArgs,
    ScaleOpt,
    ThreadsOpt,
    TileOpt,
    panels,
)
from fcnedge.errors import ConfigError
from fcnedge.results import TrainResult
from fcnedge.specs import Blend, DataFormat

Fmt = Annotated[
    DataFormat,
    typer.Option(
        "--format",
        help="auto (recognised from what is at --data: a dataset file, CamVid, VOC2012, images/ + masks/), camvid, "
        "voc or folder.",
    ),
]


# Without a terminal (a log file, CI), training prints a progress line on stdout this often (and at each epoch's
# first and last step) instead of a live bar; stderr keeps the one-line error rule.
LOG_EVERY_S = 15.0

# command-line parameter -> TrainConfig field, where the names differ
TRAIN_FIELDS = {"out_path": "out", "workers": "threads", "select_on": "select_sequences", "val_split": "val_fraction"}


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the user gave option ``name`` (on the command line or through its environment variable)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def resolve_train_config(recipe: Path | None, given: dict[str, tuple[str, Any]]) -> Any:
    """The TrainConfig of a run: its defaults, then the recipe file's settings, then the options given (``--flag``
    -> (parameter name, value)), each coerced by its field's type in one place (:mod:`fcnedge.config`).

    Raises:
        ConfigError: an unknown setting, a value its field cannot take, or no data folder.
    """
    import typing

    from fcnedge.config import build_config, coerce, read_recipe
    from fcnedge.train import TrainConfig

    values = read_recipe(recipe) if recipe is not None else {}
    hints = typing.get_type_hints(TrainConfig)
    for flag, (name, raw) in given.items():
        field = TRAIN_FIELDS.get(name, name)
        values[field] = coerce(raw, hints[field], what=flag)
    if "data" not in values:
        raise ConfigError("no dataset: pass --data DIR, or data: in the --config recipe")
    values.setdefault("out", Path("model.pt"))
    return build_config(TrainConfig, values, where=f"recipe {recipe}" if recipe is not None else "train")


@panels(
    {
        "Model": ("freeze_upsampling", "pretrained_backbone", "init_from"),
        "Optimiser and loss": ("weight_decay", "optimizer", "class_weighting", "lovasz", "ce_weight"),
        "Augmentation": ("scale", "rotate", "jitter"),
        "Selection and schedule": (
            "val_split",
            "select_on",
            "keep_last",
            "ema",
            "stop_after",
            "infer_scale",
            "infer_tile",
        ),
        "Performance": ("channels_last", "bf16", "workers"),
    }
)
@cli_errors
def train(
    ctx: typer.Context,
    data: Annotated[Optional[Path], typer.Option("--data", help="Dataset folder (or data: in --config).")] = None,
    config: Annotated[
        Optional[Path],
        typer.Option(
            "--config",
            help="A YAML recipe of these settings (the names of TrainConfig, e.g. epochs: 20, crop: 352x480); "
            "options given here override it.",
        ),
    ] = None,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the resolved settings as a YAML recipe and exit.")
    ] = False,
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Best checkpoint (.pt).")] = Path("model.pt"),
    fmt: Fmt = DataFormat.AUTO,
    arch: Annotated[str, typer.Option(help="Architecture (fcnedge models).")] = "fcn_efficientnet_lite0",
    head: Annotated[
        Optional[str],
        typer.Option(
            help="FCN head: 32s (the seed; default), 16s, 8s, 4s or 2s (finer skips), 2s-k3 (3x3 scores at strides 4 "
            "and 2); fcn_* archs only."
        ),
    ] = None,
    freeze_upsampling: Annotated[bool, typer.Option(help="Keep the transposed convs bilinear.")] = False,
    pretrained_backbone: Annotated[bool, typer.Option(help="ImageNet backbone weights.")] = True,
    epochs: Annotated[int, typer.Option(help="Epochs.")] = 5,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 8,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate (default: recipe).")] = None,
    weight_decay: Annotated[Optional[float], typer.Option(help="Weight decay (default: recipe).")] = None,
    optimizer: Annotated[Optional[str], typer.Option(help="sgd or adamw (default: sgd for ResNets).")] = None,
    crop: Annotated[str, typer.Option(help="Random crop HxW (multiples of 32).")] = "320x480",
    scale: Annotated[str, typer.Option(help="Scale jitter MIN,MAX.")] = "1.0,1.0",
    rotate: Annotated[float, typer.Option(help="Random rotation up to +-DEGREES (0: off).")] = 0.0,
    jitter: Annotated[
        float, typer.Option(help="Colour jitter strength: brightness, contrast, saturation x[1-S,1+S] (0: off).")
    ] = 0.0,
    channels_last: Annotated[
        bool, typer.Option(help="NHWC memory format (faster on CPUs; results match within float rounding).")
    ] = True,
    bf16: Annotated[
        bool, typer.Option("--bf16", help="bf16 autocast (CPUs with AVX512-BF16 or AMX only; refused elsewhere).")
    ] = False,
    class_weighting: Annotated[bool, typer.Option(help="sqrt median-frequency class weights.")] = False,
    lovasz: Annotated[
        float, typer.Option(help="Add W x Lovasz-softmax (per-class IoU surrogate; thin classes) to the loss; 0: off.")
    ] = 0.0,
    ce_weight: Annotated[
        float, typer.Option(help="Weight of the cross-entropy term (0 with --lovasz: Lovasz-only fine-tuning).")
    ] = 1.0,
    num_classes: Annotated[Optional[int], typer.Option(help="Classes, for --format folder (default 2).")] = None,
    workers: Annotated[
        int, typer.Option("--threads", "--workers", help="Torch threads (0: all cores; --workers: its old name).")
    ] = 0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from <out>.last.pt.")] = False,
    select_on: Annotated[
        Optional[str],
        typer.Option(
            help="Training sequences (file-name prefix before '_', e.g. 0006R0) held out to choose the checkpoint; "
            "val is then scored once, at the end."
        ),
    ] = None,
    val_split: Annotated[
        float,
        typer.Option(help="Share held out for val (seeded) where the data has no val split of its own, e.g. 0.2."),
    ] = 0.2,
    keep_last: Annotated[
        bool,
        typer.Option(
            "--keep-last",
            help="Fixed schedule: keep the last epoch, score nothing per epoch, val once at the end (refits).",
        ),
    ] = False,
    ema: Annotated[
        float,
        typer.Option(
            help="Keep an exponential moving average of the weights with this decay per step (e.g. 0.99) and score, "
            "select and save it; 0: off."
        ),
    ] = 0.0,
    stop_after: Annotated[
        Optional[int],
        typer.Option(
            help="End at this epoch of the --epochs schedule (the learning rate follows the whole schedule): a "
            "refit that repeats an epoch chosen on held-out sequences."
        ),
    ] = None,
    infer_scale: Annotated[
        float,
        typer.Option(
            help="Inference scale the model is scored at (held-out sequences, val) and carries in its meta, so "
            "predict/eval/demo run it so (see predict --scale)."
        ),
    ] = 1.0,
    infer_tile: Annotated[
        Optional[str],
        typer.Option(help="Tile HxW (model-input pixels) it is scored with and carries in its meta (default 320x480)."),
    ] = None,
    init_from: Annotated[
        Optional[Path],
        typer.Option(
            help="Start from this checkpoint's weights (same --arch; tensors whose name and shape match, e.g. an 8s "
            "model under --head 4s); a fresh schedule and optimiser."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --out.")] = False,
) -> None:
    """Train an FCN; evaluates on the val split each epoch and keeps the best checkpoint."""
    from fcnedge.sources import require_torch

    require_torch("fcnedge train")
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from fcnedge.config import dump_config
    from fcnedge.train import check_config
    from fcnedge.train import train as run_train

    flags = {p.name: max(p.opts, key=len) for p in ctx.command.params if p.name}  # out_path -> --out
    given = {flags[k]: (k, v) for k, v in ctx.params.items() if _given(ctx, k) and k not in ("config", "print_config")}
    cfg = resolve_train_config(config, given)
    if print_config:
        out.print(dump_config(cfg), end="")
        return
    out_path = cfg.out
    check_config(cfg)  # every option fails here, before the progress bar starts
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("epoch 1", total=None, info="")
        printed = [time.monotonic()]

        def progress(d: dict[str, Any]) -> None:
            if "epoch_done" in d and d["val_miou"] is None:
                console.print(f"epoch {d['epoch_done']}: loss {d['loss']:.4f} (fixed schedule: val once, at the end)")
                return
            if "epoch_done" in d:
                what = "selection" if cfg.select_sequences else "val"
                score = f"{what} mIoU {d['val_miou']:.4f} (best {d['best']:.4f})"
                console.print(f"epoch {d['epoch_done']}: loss {d['loss']:.4f}, {score}")
                return
            eta = (d["steps"] - d["step"]) * cfg.batch_size / max(d["images_per_s"], 1e-9)
            info = f"loss {d['loss']:.3f}  {d['images_per_s']:.1f} img/s  ETA {eta:.0f} s"
            if console.is_terminal:
                bar.update(
                    task, description=f"epoch {d['epoch'] + 1}", total=d["steps"], completed=d["step"], info=info
                )
            elif d["step"] in (1, d["steps"]) or time.monotonic() - printed[0] >= LOG_EVERY_S:
                printed[0] = time.monotonic()  # a log or a pipe gets a line now and then, not a silent epoch
                out.print(f"epoch {d['epoch'] + 1}: step {d['step']}/{d['steps']}, {info} (this epoch)")

        try:
            summary = run_train(cfg, progress)
        except KeyboardInterrupt:
            last = out_path.with_suffix(".last.pt")
            where = (
                f"the last complete epoch is in {last} (continue with --resume)" if last.exists() else "no epoch done"
            )
            typer.echo(f"interrupted: {where}", err=True)
            raise typer.Exit(code=130) from None
    out.print(f"{summary.summary()}; checkpoint {out_path}; log {summary.log}")
    _end_report(summary, out_path)


def iou_table(scores: dict[str, Any], title: str) -> Any:
    """A rich table of per-class IoU in percent ("-" for a class no pixel holds)."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("class")
    table.add_column("IoU", justify="right")
    for name, iou in scores["per_class_iou"].items():
        table.add_row(name, "-" if iou is None else f"{100 * iou:.2f}")
    return table


def _end_report(summary: TrainResult, out_path: Path) -> None:
    """The per-class IoU table the run stands on, and ``OUT.results.png`` (a note instead without matplotlib)."""
    from fcnedge.errors import MissingDependencyError
    from fcnedge.train_report import write_results_png

    scores = summary.val_scores
    if scores:
        out.print(iou_table(scores, f"val per-class IoU (mIoU {100 * scores['miou']:.2f})"))
    png = out_path.with_suffix(".results.png")
    try:
        write_results_png(summary, png)
        out.print(f"plot {png}")
    except MissingDependencyError as exc:
        out.print(f"no plot: {exc}")


@cli_errors
def evaluate(
    model: Annotated[
        Optional[str], typer.Argument(help="An .onnx model, a .pt checkpoint, a bundled name; omit for the default.")
    ] = None,
    data: Annotated[
        Optional[Path], typer.Option("--data", help="A dataset file (.yaml) or folder (CamVid, VOC, images/ + masks/).")
    ] = None,
    fmt: Fmt = DataFormat.AUTO,
    split: Annotated[str, typer.Option(help="Split to evaluate.")] = "val",
    provider: ProviderOpt = "cpu",
    allow_fallback: AllowFallbackOpt = False,
    threads: ThreadsOpt = 0,
    tile: TileOpt = None,
    overlap: OverlapOpt = 0.25,
    blend: BlendOpt = Blend.MEAN,
    batch: BatchOpt = 4,
    flip_tta: FlipOpt = False,
    scale: ScaleOpt = None,
    limit: Annotated[Optional[int], typer.Option(help="Evaluate only the first N images.")] = None,
    num_classes: Annotated[
        Optional[int], typer.Option(help="Classes, for --format folder (default: the model's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Whole-image evaluation: mIoU, pixel accuracy, mean class accuracy, per-class IoU."""
    if data is None:
        raise ConfigError("eval needs labelled data: pass --data with a dataset file or folder")
    from fcnedge.data.datasets import open_dataset
    from fcnedge.evaluation import evaluate_predictor

    pred = RuntimeArgs(provider, allow_fallback, threads, tile, overlap, blend, batch, flip_tta, scale).open(model)
    ds = open_dataset(data, fmt, split, num_classes=num_classes or pred.meta.num_classes)
    scores = evaluate_predictor(pred, ds, limit=limit)
    if as_json:
        keys = ("miou", "pixel_accuracy", "mean_class_accuracy", "per_class_iou", "images", "ms_per_image_p50")
        out.print_json(json.dumps({k: scores[k] for k in keys}))
        return
    out.print(iou_table(scores, f"{model or 'bundled default'} on {data} ({split}, {scores['images']} images)"))
    out.print(
        f"mIoU {100 * scores['miou']:.2f}  pixel acc {100 * scores['pixel_accuracy']:.2f}  "
        f"mean class acc {100 * scores['mean_class_accuracy']:.2f}  {scores['ms_per_image_p50']:.1f} ms/image (median)"
    )


def register(app: typer.Typer) -> None:
    """Add the commands to ``app``."""
    app.command("train")(train)
    app.command("eval")(evaluate)
