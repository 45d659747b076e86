"""Training and evaluation loops (torch). The CLI wraps these; they log and never print."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from fcnedge.data.datasets import SegDataset, open_dataset
from fcnedge.data.transforms import TrainAugment, normalize
from fcnedge.errors import ConfigError, DatasetError
from fcnedge.fsutil import atomic_write_text
from fcnedge.meta import ModelMeta
from fcnedge.metrics import ConfusionMatrix
from fcnedge.models.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from fcnedge.models.infer import torch_logits
from fcnedge.models.registry import build, default_meta
from fcnedge.specs import DataFormat

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class TrainConfig:
    """Options of ``fcnedge train`` (see the CLI help for each)."""

    data: Path
    out: Path
    fmt: DataFormat = DataFormat.CAMVID
    arch: str = "fcn_efficientnet_lite0"
    head: str = "32s"
    freeze_upsampling: bool = False
    pretrained_backbone: bool = True
    epochs: int = 5
    batch_size: int = 8
    lr: float | None = None
    weight_decay: float | None = None
    optimizer: str | None = None
    crop: tuple[int, int] = (320, 480)
    scale: tuple[float, float] = (1.0, 1.0)
    class_weighting: bool = False
    seed: int = 0
    train_split: str = "train"
    val_split: str = "val"
    max_train_images: int | None = None
    resume: bool = False
    force: bool = False
    threads: int = 0
    num_classes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def recipe(cfg: TrainConfig) -> tuple[str, float, float]:
    """(optimizer, lr, weight decay): the seed's SGD recipe for ResNets, AdamW for Lite0, user values win."""
    lite = "lite" in cfg.arch
    opt = cfg.optimizer or ("adamw" if lite else "sgd")
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
        img, mask = aug(*samples[int(i)], rng)
        xs.append(normalize(img, meta.mean, meta.std))
        ys.append(mask.astype(np.int64))
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def evaluate(
    model: nn.Module,
    samples: list[tuple[NDArray[np.uint8], NDArray[np.uint8]]],
    meta: ModelMeta,
) -> dict[str, Any]:
    """Whole-image evaluation (pad to the stride, crop logits back; labels are never resized)."""
    model.eval()
    cm = ConfusionMatrix(meta.num_classes, meta.ignore_index)
    for img, mask in samples:
        cm.update(mask, torch_logits(model, img, meta).argmax(0))
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


def _check_config(cfg: TrainConfig) -> None:
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise ConfigError(f"epochs {cfg.epochs} and batch size {cfg.batch_size} must both be 1 or more")
    if cfg.crop[0] % 32 or cfg.crop[1] % 32:
        raise ConfigError(f"crop {cfg.crop[0]}x{cfg.crop[1]} must have sides that are multiples of 32")
    if cfg.out.exists() and not (cfg.force or cfg.resume):
        raise ConfigError(f"output {cfg.out} exists: pass --resume to continue it or --force to replace it")


def train(cfg: TrainConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Train, evaluate on the val split each epoch, keep the best checkpoint at ``cfg.out``.

    Also writes ``<out>.last.pt`` (resumable, every epoch) and ``<out>.log.json`` (the run's log).

    Raises:
        ConfigError: invalid options.
        DatasetError: see the dataset readers.
        CheckpointError: ``--resume`` with an unreadable last checkpoint.
    """
    _check_config(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    train_ds = open_dataset(cfg.data, cfg.fmt, cfg.train_split, num_classes=cfg.num_classes)
    val_ds = open_dataset(cfg.data, cfg.fmt, cfg.val_split, num_classes=cfg.num_classes)
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
    t_load = time.perf_counter()
    train_samples = load_split(train_ds, cfg.max_train_images)
    val_samples = load_split(val_ds)
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
    optimizer = _make_optimizer(model, cfg)
    last_path = cfg.out.with_suffix(".last.pt")
    log_path = cfg.out.with_suffix(".log.json")
    history: list[dict[str, Any]] = []
    start_epoch, best = 0, -1.0
    if cfg.resume and last_path.exists():
        payload = read_checkpoint(last_path)
        resumed, _ = load_checkpoint(last_path)
        model.load_state_dict(resumed.state_dict())
        optimizer.load_state_dict(payload["extra"]["optimizer"])
        start_epoch = int(payload["extra"]["epoch"]) + 1
        history = json.loads(payload["extra"]["history"])
        best = max((h["val"]["miou"] for h in history), default=-1.0)
        log.info("resumed from %s at epoch %d", last_path, start_epoch)
    weights = class_weights(train_samples, k) if cfg.class_weighting else None
    loss_fn = nn.CrossEntropyLoss(weight=weights, ignore_index=info.ignore_index)
    aug = TrainAugment(crop=cfg.crop, scale=cfg.scale, ignore=info.ignore_index)
    steps_per_epoch = max(1, len(train_samples) // cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    _, base_lr, _ = recipe(cfg)
    t_start = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        order = rng.permutation(len(train_samples))
        t0, seen, loss_sum = time.perf_counter(), 0, 0.0
        for step in range(steps_per_epoch):
            gstep = epoch * steps_per_epoch + step
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(gstep, total_steps, base_lr, warmup=min(100, total_steps // 10))
            x, y = make_batch(train_samples, order[step * cfg.batch_size : (step + 1) * cfg.batch_size], aug, meta, rng)
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += x.shape[0]
            loss_sum += loss.item()
            if progress:
                progress(
                    {
                        "epoch": epoch,
                        "step": step + 1,
                        "steps": steps_per_epoch,
                        "loss": loss.item(),
                        "images_per_s": seen / (time.perf_counter() - t0),
                    }
                )
        train_time = time.perf_counter() - t0
        scores = evaluate(model, val_samples, meta)
        row = {
            "epoch": epoch + 1,
            "loss": loss_sum / steps_per_epoch,
            "images_per_s": seen / train_time,
            "train_s": train_time,
            "val": scores,
        }
        history.append(row)
        log.info(
            "epoch %d loss %.4f val mIoU %.4f (%.1f img/s)", epoch + 1, row["loss"], scores["miou"], row["images_per_s"]
        )
        run_meta = meta.with_provenance(
            dataset=f"{cfg.fmt.value}:{cfg.data.name}",
            epoch=epoch + 1,
            val_miou=scores["miou"],
            recipe=dict(zip(("optimizer", "lr", "weight_decay"), recipe(cfg), strict=True)),
        )
        extra = {"optimizer": optimizer.state_dict(), "epoch": epoch, "history": json.dumps(history)}
        save_checkpoint(last_path, model, run_meta, force=True, extra=extra)
        if scores["miou"] > best:
            best = scores["miou"]
            save_checkpoint(cfg.out, model, run_meta, force=True)
        summary = {
            "config": {k2: str(v) for k2, v in asdict(cfg).items()},
            "history": history,
            "best_val_miou": best,
            "wall_s": time.perf_counter() - t_start,
        }
        atomic_write_text(log_path, json.dumps(summary, indent=2))
        if progress:
            progress({"epoch_done": epoch + 1, "val_miou": scores["miou"], "best": best})
    return json.loads(log_path.read_text())
