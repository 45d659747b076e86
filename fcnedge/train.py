"""Training and evaluation loops (torch). The CLI wraps these; they log and never print."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from fcnedge.config import config_to_dict
from fcnedge.data.datasets import SegDataset, open_dataset
from fcnedge.data.splits import split_by_sequence
from fcnedge.data.transforms import TrainAugment, normalize
from fcnedge.errors import ConfigError, DatasetError, TrainingError
from fcnedge.fsutil import atomic_write_json, check_output
from fcnedge.host import bf16_native
from fcnedge.losses import SegLoss
from fcnedge.meta import ModelMeta, check_scale
from fcnedge.metrics import ConfusionMatrix
from fcnedge.models.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from fcnedge.models.infer import torch_runner
from fcnedge.models.registry import build, check_arch, default_meta
from fcnedge.results import Selection, TrainResult
from fcnedge.specs import DataFormat, TileSpec, check_threads

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class TrainConfig:
    """Options of ``fcnedge train`` (see the CLI help for each)."""

    data: Path
    out: Path
    fmt: DataFormat = DataFormat.AUTO
    arch: str = "fcn_efficientnet_lite0"
    head: str | None = None
    freeze_upsampling: bool = False
    pretrained_backbone: bool = True
    epochs: int = 5
    batch_size: int = 8
    lr: float | None = None
    weight_decay: float | None = None
    optimizer: str | None = None
    crop: tuple[int, int] = (320, 480)
    scale: tuple[float, float] = (1.0, 1.0)
    rotate: float = 0.0
    jitter: float = 0.0
    channels_last: bool = True
    bf16: bool = False
    class_weighting: bool = False
    lovasz: float = 0.0
    ce_weight: float = 1.0
    seed: int = 0
    train_split: str = "train"
    val_split: str = "val"
    val_fraction: float = 0.2  # held out for val (seeded) where the data has no val split of its own
    max_train_images: int | None = None
    resume: bool = False
    force: bool = False
    threads: int = 0
    num_classes: int | None = None
    select_sequences: tuple[str, ...] = ()
    init_from: Path | None = None
    keep_last: bool = False
    ema: float = 0.0
    stop_after: int | None = None
    infer_scale: float = 1.0
    infer_tile: tuple[int, int] | None = None
    allow_emulated_bf16: bool = False  # tests only: bf16 on a CPU that emulates it (slow, but exercises the path)


def recipe(cfg: TrainConfig) -> tuple[str, float, float]:
    """(optimizer, lr, weight decay): the seed's SGD recipe for ResNets, AdamW for Lite0, user values win."""
    opt = cfg.optimizer or check_arch(cfg.arch).optimizer
    lr = cfg.lr if cfg.lr is not None else 1e-3  # seed SGD lr; also a good AdamW fine-tuning lr
    wd = cfg.weight_decay if cfg.weight_decay is not None else (1e-4 if opt == "adamw" else 1e-3)
    return opt, lr, wd


def load_split(ds: SegDataset, limit: int | None = None) -> list[tuple[NDArray[np.uint8], NDArray[np.uint8]]]:
    """Read (and check) every pair of a split into memory."""
    samples = []
    for i, (img, mask) in enumerate(ds):
        if limit is not None and i >= limit:
            break
        samples.append((img, mask))
    return samples


def class_weights(samples: list[tuple[NDArray[np.uint8], NDArray[np.uint8]]], k: int) -> torch.Tensor:
    """Square-rooted median-frequency class weights (milder than SegNet's plain median frequency)."""
    counts = np.zeros(k, dtype=np.float64)
    for _, mask in samples:
        counts += np.bincount(mask.ravel(), minlength=256)[:k]
    freq = counts / max(counts.sum(), 1.0)
    med = np.median(freq[freq > 0])
    w = np.where(freq > 0, np.sqrt(med / np.maximum(freq, 1e-12)), 0.0)
    return torch.tensor(np.clip(w, 0.2, 5.0), dtype=torch.float32)


def make_batch(
    samples: list[tuple[NDArray[np.uint8], NDArray[np.uint8]]],
    idx: NDArray[np.int64],
    aug: TrainAugment,
    meta: ModelMeta,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment and stack one batch."""
    xs, ys = [], []
    for i in idx:
        img, mask = samples[int(i)]
        img, mask = aug(img, mask, rng)
        xs.append(normalize(img, meta.mean, meta.std))
        ys.append(mask.astype(np.int64))
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def evaluate(
    model: nn.Module,
    samples: list[tuple[NDArray[np.uint8], NDArray[np.uint8]]],
    meta: ModelMeta,
    tile: TileSpec | None = None,
) -> dict[str, Any]:
    """Whole-image evaluation through the runtime's own predictor (same tiles, same stitching as ``fcnedge eval``
    on the exported model; labels are never resized)."""
    from fcnedge.runtime.open import predictor_for, resolve_tile

    model.eval()
    pred = predictor_for(torch_runner(model), meta, tile or TileSpec(size=resolve_tile(meta)))
    cm = ConfusionMatrix(meta.num_classes, meta.ignore_index)
    for img, mask in samples:
        cm.update(mask, pred.predict(img))
    return cm.scores(meta.class_names)


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    opt, lr, wd = recipe(cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    if opt == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)
    if opt == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    raise ConfigError(f"optimizer {opt!r} is unknown: choose sgd or adamw")


def _lr_at(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def check_config(cfg: TrainConfig) -> None:
    """Every option checked before any data is read or epoch is run.

    Raises:
        ConfigError: an invalid value (the message names it and the valid range).
    """
    if not (math.isfinite(cfg.val_fraction) and 0 < cfg.val_fraction < 1):
        raise ConfigError(f"--val-split {cfg.val_fraction} is invalid: give the share held out for val, e.g. 0.2")
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise ConfigError(f"epochs {cfg.epochs} and batch size {cfg.batch_size} must both be 1 or more")
    if cfg.crop[0] % 32 or cfg.crop[1] % 32:
        raise ConfigError(f"crop {cfg.crop[0]}x{cfg.crop[1]} must have sides that are multiples of 32")
    if cfg.lr is not None and not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ConfigError(f"--lr {cfg.lr} is invalid: use a finite number > 0, e.g. 1e-3")
    if cfg.weight_decay is not None and not (math.isfinite(cfg.weight_decay) and cfg.weight_decay >= 0):
        raise ConfigError(f"--weight-decay {cfg.weight_decay} is invalid: use a finite number >= 0, e.g. 1e-4")
    lo, hi = cfg.scale
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise ConfigError(f"--scale {lo},{hi} is invalid: write MIN,MAX with 0 < MIN <= MAX, e.g. 0.75,1.5")
    if cfg.bf16 and not bf16_native() and not cfg.allow_emulated_bf16:
        raise ConfigError(
            "--bf16 needs a CPU with AVX512-BF16 or AMX (this one has neither: bf16 would be emulated, slower than "
            "float32): drop --bf16"
        )
    if not (math.isfinite(cfg.rotate) and 0 <= cfg.rotate <= 45):
        raise ConfigError(f"--rotate {cfg.rotate} is invalid: use degrees from 0 (off) to 45, e.g. 10")
    if not (math.isfinite(cfg.lovasz) and 0 <= cfg.lovasz <= 10):
        raise ConfigError(f"--lovasz {cfg.lovasz} is invalid: use a weight from 0 (off) to 10, e.g. 0.5")
    if not (math.isfinite(cfg.ce_weight) and 0 <= cfg.ce_weight <= 10):
        raise ConfigError(f"--ce-weight {cfg.ce_weight} is invalid: use a weight from 0 to 10 (default 1)")
    if cfg.ce_weight == 0 and cfg.lovasz == 0:
        raise ConfigError("--ce-weight 0 with --lovasz 0 leaves no loss: give --lovasz a weight, e.g. 1")
    if not (math.isfinite(cfg.jitter) and 0 <= cfg.jitter < 1):
        raise ConfigError(f"--jitter {cfg.jitter} is invalid: use a strength from 0 (off) to below 1, e.g. 0.3")
    check_threads(cfg.threads)
    if cfg.init_from is not None:
        from fcnedge.models.checkpoint import read_meta

        init_arch = read_meta(cfg.init_from).arch  # a missing or corrupt file fails here, with its own message
        if init_arch != cfg.arch:
            raise ConfigError(
                f"--init-from {cfg.init_from} holds {init_arch!r}, not --arch {cfg.arch}: pass --arch {init_arch} "
                "or a checkpoint of this architecture"
            )
    if not (math.isfinite(cfg.ema) and 0 <= cfg.ema < 1):
        raise ConfigError(f"--ema {cfg.ema} is invalid: use a decay from 0 (off) to below 1, e.g. 0.99")
    if cfg.stop_after is not None and not 1 <= cfg.stop_after <= cfg.epochs:
        raise ConfigError(
            f"--stop-after {cfg.stop_after} is invalid: use an epoch from 1 to --epochs ({cfg.epochs}); the learning "
            "rate follows the whole --epochs schedule"
        )
    check_scale(cfg.infer_scale, what="--infer-scale")
    if cfg.infer_tile is not None and (cfg.infer_tile[0] % 32 or cfg.infer_tile[1] % 32):
        raise ConfigError(
            f"--infer-tile {cfg.infer_tile[0]}x{cfg.infer_tile[1]} must have sides that are multiples of 32"
        )
    if cfg.keep_last and cfg.select_sequences:
        raise ConfigError(
            "--keep-last and --select-on exclude each other: a fixed schedule keeps the last epoch, held-out sequences "
            "choose one; drop one of them"
        )
    if cfg.out.exists() and not (cfg.force or cfg.resume):
        raise ConfigError(f"output {cfg.out} exists: pass --resume to continue it or --force to replace it")
    check_output(cfg.out, force=True)  # a missing or read-only folder fails now, not after the first epoch


def _schedule(cfg: TrainConfig) -> str:
    """``epoch N of an E-epoch schedule``: where a fixed schedule ends."""
    return f"epoch {cfg.stop_after or cfg.epochs} of a {cfg.epochs}-epoch schedule"


def _ignore(meta: ModelMeta) -> int:
    """The label id the loss skips (-100, torch's default, when the meta has none)."""
    return meta.ignore_index if meta.ignore_index is not None else -100


@dataclass
class _Run:
    """The state of one training run, passed between the steps of :func:`train`."""

    cfg: TrainConfig
    meta: ModelMeta
    model: nn.Module
    optimizer: torch.optim.Optimizer
    train_samples: list[tuple[NDArray[np.uint8], NDArray[np.uint8]]]
    val_samples: list[tuple[NDArray[np.uint8], NDArray[np.uint8]]]
    select_samples: list[tuple[NDArray[np.uint8], NDArray[np.uint8]]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    start_epoch: int = 0
    best: float = -1.0
    ema: Any = None  # torch.optim.swa_utils.AveragedModel of ``model`` with --ema

    @property
    def scored(self) -> nn.Module:
        """The model that is scored, selected and saved: the weight average with ``--ema``, else the model."""
        return self.model if self.ema is None else self.ema.module

    @property
    def last_path(self) -> Path:
        return self.cfg.out.with_suffix(".last.pt")

    @property
    def log_path(self) -> Path:
        return self.cfg.out.with_suffix(".log.json")


def _prepare(cfg: TrainConfig) -> _Run:
    """Open and load the data, build the model and optimiser."""
    k, frac = cfg.num_classes, cfg.val_fraction
    train_ds = open_dataset(cfg.data, cfg.fmt, cfg.train_split, num_classes=k, val_fraction=frac)
    val_ds = open_dataset(cfg.data, cfg.fmt, cfg.val_split, num_classes=k, val_fraction=frac)
    info = train_ds.info
    k = len(info.class_names)
    meta = default_meta(
        cfg.arch,
        num_classes=k,
        head=cfg.head,
        freeze_upsampling=cfg.freeze_upsampling,
        class_names=info.class_names,
        palette=info.palette,
        ignore_index=info.ignore_index,
    )
    meta = replace(meta, scale=cfg.infer_scale, tile=cfg.infer_tile)  # how it is scored here and run after export
    t_load = time.perf_counter()
    select_samples: list[tuple[NDArray[np.uint8], NDArray[np.uint8]]] = []
    if cfg.select_sequences:
        train_ds, select_ds = split_by_sequence(train_ds, cfg.select_sequences)
        select_samples = load_split(select_ds)
    train_samples, val_samples = load_split(train_ds, cfg.max_train_images), load_split(val_ds)
    if not train_samples or not val_samples:
        raise DatasetError(f"dataset {cfg.data} has an empty {cfg.train_split} or {cfg.val_split} split")
    log.info(
        "loaded %d train / %d val images in %.1fs", len(train_samples), len(val_samples), time.perf_counter() - t_load
    )
    model = build(
        cfg.arch,
        num_classes=k,
        pretrained_backbone=cfg.pretrained_backbone,
        head=cfg.head,
        freeze_upsampling=cfg.freeze_upsampling,
    )
    if cfg.init_from is not None:
        from fcnedge.models.checkpoint import warm_start

        warm_start(model, cfg.init_from, arch=cfg.arch, num_classes=k)
    if cfg.channels_last:  # NHWC convolutions: 1.6x the training images/s of NCHW on a 2-core CPU (README)
        model = model.to(memory_format=torch.channels_last)
    run = _Run(cfg, meta, model, _make_optimizer(model, cfg), train_samples, val_samples)
    run.select_samples = select_samples or val_samples
    if cfg.ema:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        # an exponential moving average of the weights (and of BatchNorm's running statistics), updated every step
        run.ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
    return run


def selection_miou(row: dict[str, Any]) -> float | None:
    """The score that chooses the checkpoint: held-out training sequences when there are any, else val; None for
    a fixed schedule (``keep_last``), which scores nothing until the end."""
    scores = row.get("select") or row.get("val")
    return None if scores is None else float(scores["miou"])


def _resume(run: _Run) -> None:
    """Continue from ``<out>.last.pt``: weights, optimiser state, epoch and history."""
    payload = read_checkpoint(run.last_path)
    resumed, _ = load_checkpoint(run.last_path)
    run.model.load_state_dict(resumed.state_dict())
    run.optimizer.load_state_dict(payload["extra"]["optimizer"])
    run.start_epoch = int(payload["extra"]["epoch"]) + 1
    run.history = json.loads(payload["extra"]["history"])
    if run.ema is not None:
        if "ema" not in payload["extra"]:
            raise ConfigError(f"{run.last_path} was trained without --ema: resume it without --ema, or use --force")
        run.ema.module.load_state_dict(payload["extra"]["ema"])
        run.ema.n_averaged.fill_(int(payload["extra"]["ema_updates"]))
    run.best = max((s for h in run.history if (s := selection_miou(h)) is not None), default=-1.0)
    log.info("resumed from %s at epoch %d", run.last_path, run.start_epoch)
    planned = payload["extra"].get("epochs")
    if planned is not None and int(planned) != run.cfg.epochs:
        log.warning(
            "resuming after epoch %d of a %d-epoch run with --epochs %d: the learning rate follows the cosine "
            "schedule of %d epochs from here (it was at epoch %d of %d), so the rest differs from the first plan%s",
            run.start_epoch, int(planned), run.cfg.epochs, run.cfg.epochs, run.start_epoch, int(planned),
            "; nothing is left to train" if run.start_epoch >= run.cfg.epochs else "",
        )  # fmt: skip


def _train_epoch(
    run: _Run, epoch: int, loss_fn: nn.Module, rng: np.random.Generator, progress: Progress | None
) -> dict[str, Any]:
    """One pass over the training split with the warm-up + cosine schedule; returns loss and speed."""
    cfg = run.cfg
    aug = TrainAugment(
        crop=cfg.crop,
        scale=cfg.scale,
        ignore=run.meta.ignore_index if run.meta.ignore_index is not None else 255,
        rotate=cfg.rotate,
        jitter=cfg.jitter,
    )
    steps = max(1, len(run.train_samples) // cfg.batch_size)
    total, base_lr = steps * cfg.epochs, recipe(cfg)[1]
    run.model.train()
    order = rng.permutation(len(run.train_samples))
    t0, seen, loss_sum = time.perf_counter(), 0, 0.0
    for step in range(steps):
        for group in run.optimizer.param_groups:
            group["lr"] = _lr_at(epoch * steps + step, total, base_lr, warmup=min(100, total // 10))
        idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        x, y = make_batch(run.train_samples, idx, aug, run.meta, rng)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if cfg.bf16:  # bf16 matmuls/convs, float32 weights, optimiser and loss
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = run.model(x)
            loss = loss_fn(logits.float(), y)
        else:
            loss = loss_fn(run.model(x), y)
        if not torch.isfinite(loss):
            raise TrainingError(
                f"the training loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}: training diverged; "
                f"lower --lr (now {base_lr:g}); the last good epoch is in {run.last_path} if one finished"
            )
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        if run.ema is not None:
            run.ema.update_parameters(run.model)
        seen += x.shape[0]
        loss_sum += loss.item()
        if progress:
            progress(
                {
                    "epoch": epoch,
                    "step": step + 1,
                    "steps": steps,
                    "loss": loss.item(),
                    "images_per_s": seen / (time.perf_counter() - t0),
                }
            )
    train_s = time.perf_counter() - t0
    return {"epoch": epoch + 1, "loss": loss_sum / steps, "images_per_s": seen / train_s, "train_s": train_s}


def _end_epoch(run: _Run, row: dict[str, Any], wall_s: float) -> None:
    """Record the epoch, save ``.last.pt`` (resumable) and, when the selection mIoU improved (or, for a fixed
    schedule, always), the checkpoint at ``--out``."""
    cfg, score = run.cfg, selection_miou(row)
    run.history.append(row)
    log.info("epoch %d loss %.4f selection mIoU %s (%.1f img/s)", row["epoch"], row["loss"], score, row["images_per_s"])
    facts: dict[str, Any]
    if score is None:
        facts = {"selected_on": f"fixed schedule: {_schedule(cfg)}, declared before the run"}
    elif cfg.select_sequences:
        held = ",".join(cfg.select_sequences)
        facts = {"selection_miou": score, "selected_on": f"held-out training sequences {held}"}
    else:
        facts = {"val_miou": score}
    if cfg.init_from is not None:
        facts["init_from"] = str(cfg.init_from)
    if cfg.ema:
        facts["ema"] = cfg.ema
    run_meta = run.meta.with_provenance(
        dataset=f"{cfg.fmt.value}:{cfg.data.name}",
        epoch=row["epoch"],
        recipe=dict(zip(("optimizer", "lr", "weight_decay"), recipe(cfg), strict=True)),
        **facts,
    )
    extra = {"optimizer": run.optimizer.state_dict(), "epoch": row["epoch"] - 1, "history": json.dumps(run.history),
             "epochs": cfg.epochs}  # fmt: skip
    if run.ema is not None:
        extra |= {"ema": run.ema.module.state_dict(), "ema_updates": int(run.ema.n_averaged)}
    save_checkpoint(run.last_path, run.model, run_meta, force=True, extra=extra)
    if score is None or score > run.best:
        run.best = -1.0 if score is None else score
        save_checkpoint(cfg.out, run.scored, run_meta, force=True)
    _write_log(run, wall_s)


def _result(run: _Run, wall_s: float, final_val: dict[str, Any] | None = None) -> TrainResult:
    cfg = run.cfg
    if cfg.keep_last:
        selection, best, schedule = Selection.SCHEDULE, None, f"fixed: {_schedule(cfg)}"
    else:
        selection = Selection.SEQUENCES if cfg.select_sequences else Selection.VAL
        best, schedule = run.best, None
    return TrainResult(
        checkpoint=Path(cfg.out),
        log=run.log_path,
        config=config_to_dict(cfg),  # the resolved recipe: reusable as train --config
        history=tuple(run.history),
        wall_s=wall_s,
        selection=selection,
        best=best,
        schedule=schedule,
        final_val=final_val,
    )


def _write_log(run: _Run, wall_s: float, final_val: dict[str, Any] | None = None) -> TrainResult:
    result = _result(run, wall_s, final_val)
    atomic_write_json(run.log_path, result.to_json())
    return result


def _score_val_once(run: _Run, wall_s: float) -> TrainResult:
    """With held-out selection sequences or a fixed schedule: score the chosen checkpoint on val once, at the end,
    and record it."""
    model, meta = load_checkpoint(run.cfg.out)
    scores = evaluate(model, run.val_samples, meta)
    save_checkpoint(run.cfg.out, model, meta.with_provenance(val_miou=scores["miou"]), force=True)
    log.info("chosen checkpoint (epoch %s): val mIoU %.4f, scored once", meta.provenance.get("epoch"), scores["miou"])
    return _write_log(run, wall_s, final_val=scores)


def train(cfg: TrainConfig, progress: Progress | None = None) -> TrainResult:
    """Train, score the selection frames each epoch (held-out training sequences with ``select_sequences``, else
    the val split), keep the best checkpoint at ``cfg.out``; with held-out sequences, val is scored once at the end.
    With ``keep_last`` (a fixed schedule, e.g. a refit on all frames) nothing is scored per epoch, the checkpoint is
    the last epoch and val is scored once at the end. ``stop_after`` ends the run at that epoch of the ``epochs``
    schedule (the learning rate is where the full schedule has it); with ``ema`` the checkpoint holds the
    exponential moving average of the weights, and that is what is scored.

    Returns the run's :class:`~fcnedge.results.TrainResult`; also writes ``<out>.last.pt`` (resumable, every epoch)
    and ``<out>.log.json`` (the result, as JSON). An interrupt
    leaves both files as of the last complete epoch.

    Raises:
        ConfigError: invalid options.
        DatasetError: see the dataset readers.
        CheckpointError: ``--resume`` with an unreadable last checkpoint.
        TrainingError: the loss became NaN or infinite (nothing is saved from that epoch).
    """
    check_config(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    run = _prepare(cfg)
    if cfg.resume and run.last_path.exists():
        _resume(run)
    k = run.meta.num_classes
    weights = class_weights(run.train_samples, k) if cfg.class_weighting else None
    loss_fn = SegLoss(weights, _ignore(run.meta), lovasz=cfg.lovasz, ce=cfg.ce_weight)
    t_start = time.perf_counter()
    for epoch in range(run.start_epoch, cfg.stop_after or cfg.epochs):
        row = _train_epoch(run, epoch, loss_fn, rng, progress)
        if not cfg.keep_last:
            row["select" if cfg.select_sequences else "val"] = evaluate(run.scored, run.select_samples, run.meta)
        _end_epoch(run, row, time.perf_counter() - t_start)
        if progress:
            progress({"epoch_done": epoch + 1, "val_miou": selection_miou(row), "best": run.best, "loss": row["loss"]})
    if cfg.select_sequences or cfg.keep_last:
        return _score_val_once(run, time.perf_counter() - t_start)
    return _result(run, time.perf_counter() - t_start)
