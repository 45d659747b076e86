"""The runtime options every command that runs a model takes, declared once, and the one call that opens the
model with them (``fcnedge.runtime.open_predictor``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer

from fcnedge.cli.common import out
from fcnedge.errors import ConfigError
from fcnedge.specs import Blend, parse_hw

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from fcnedge.meta import ModelMeta
    from fcnedge.runtime.predictor import TiledPredictor

ProviderOpt = Annotated[
    str, typer.Option("--provider", help="cpu, cuda, tensorrt, openvino, coreml, dml, or a list like cuda,cpu.")
]
TunedProviderOpt = Annotated[
    Optional[str],
    typer.Option(
        "--provider",
        help="cpu, cuda, tensorrt, openvino, coreml, dml, or a list like cuda,cpu (default: what fcnedge tune "
        "picked for the model on this machine, else cpu).",
    ),
]
TunedThreadsOpt = Annotated[
    Optional[int],
    typer.Option(
        "--threads", help="CPU threads, at most 4 per core (default: fcnedge tune's pick, else the runtime's)."
    ),
]
TunedBatchOpt = Annotated[
    Optional[int], typer.Option("--batch", help="Tiles per session call (default: fcnedge tune's pick, else 4).")
]
AllowFallbackOpt = Annotated[
    bool, typer.Option("--allow-fallback", help="Warn instead of failing when a provider is missing.")
]
ThreadsOpt = Annotated[
    int, typer.Option("--threads", help="CPU threads (0: the runtime's default; at most 4 per core).")
]
TileOpt = Annotated[
    Optional[str],
    typer.Option("--tile", help="Tile HxW, multiples of 32 (default 320x480, or the size a fixed-size model takes)."),
]
OverlapOpt = Annotated[float, typer.Option("--overlap", help="Tile overlap in [0, 1).")]
BlendOpt = Annotated[Blend, typer.Option("--blend", help="mean (the seed's rule) or hann.")]
BatchOpt = Annotated[int, typer.Option("--batch", help="Tiles per session call.")]
ScaleOpt = Annotated[
    Optional[float],
    typer.Option(
        "--scale",
        help="Inference scale: resize the image by it before the model and the logits back (default: the model's "
        "own, 1.25 for the bundled model, 1 for most; --scale 1 runs images as given).",
    ),
]
FlipOpt = Annotated[
    bool, typer.Option("--flip-tta", help="Also run each tile mirrored and average (test-time augmentation; 2x time).")
]


@dataclass(frozen=True)
class RuntimeArgs:
    """The runtime options as a command received them."""

    provider: Optional[str] = "cpu"  # None (predict, demo): fcnedge tune's pick for the model, else cpu
    allow_fallback: bool = False
    threads: Optional[int] = 0  # None: the tuned count, else 0 (the runtime's default)
    tile: Optional[str] = None
    overlap: float = 0.25
    blend: Blend = Blend.MEAN
    batch: Optional[int] = 4  # None: the tuned tiles per call, else 4
    flip: bool = False
    scale: Optional[float] = None  # None: the model meta's inference scale

    def tile_hw(self) -> tuple[int, int] | None:
        """The --tile value as (H, W), None when not given.

        Raises:
            ConfigError: not HxW.
        """
        return parse_hw(self.tile, what="--tile") if self.tile else None

    def open(
        self,
        model: str | Path | None,
        *,
        meta: ModelMeta | None = None,
        num_classes: int | None = None,
        default_tile: tuple[int, int] | None = None,
    ) -> TiledPredictor:
        """Open ``model`` with these options through the one seam.

        Raises:
            FcnEdgeError: see :func:`fcnedge.runtime.open_predictor`.
        """
        from fcnedge.runtime.open import open_predictor

        return open_predictor(
            model,
            providers=self.provider,
            allow_fallback=self.allow_fallback,
            threads=self.threads,
            tile=self.tile_hw(),
            default_tile=default_tile,
            overlap=self.overlap,
            blend=self.blend,
            batch=self.batch,
            meta=meta,
            num_classes=num_classes,
            flip=self.flip,
            scale=self.scale,
        )


def model_line(pred: Any) -> str:
    """The one line that says which file runs, on which provider, and why when ``fcnedge tune`` chose it (its
    exact fast form replaces the file the user named)."""
    line = f"model {pred.session.path} on {pred.provider}"
    tuned = getattr(pred, "tuned", None)
    if tuned is None:
        return line
    if tuned.file is not None:
        return f"{line}: the exact fast form that fcnedge tune picked for this model (tuned: {tuned.path})"
    return f"{line} (tuned: {tuned.path})"


def panels(groups: dict[str, tuple[str, ...]]) -> Callable[[F], F]:
    """Group a command's less everyday options into ``--help`` panels (the everyday ones stay under "Options"),
    declared in one place per command. Each option gets its own copy of its (possibly shared) option info.

    Raises:
        ValueError: a name that is not an option of the command (a programming error, caught by the tests).
    """
    import copy
    import typing

    def decorate(fn: F) -> F:
        hints = typing.get_type_hints(fn, include_extras=True)
        for panel, names in groups.items():
            for name in names:
                hint = hints.get(name)
                infos = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, typer.models.ParameterInfo)]
                if not infos:
                    raise ValueError(f"{fn.__name__} has no option {name!r}")
                info = copy.copy(infos[0])
                info.rich_help_panel = panel
                fn.__annotations__[name] = Annotated[typing.get_args(hint)[0], info]  # type: ignore[valid-type]
        return fn

    return decorate


FpsOpt = Annotated[
    Optional[float],
    typer.Option(
        "--fps",
        help="Frames per second to keep up with: picks the most accurate bundled model, scale and engine whose time "
        "on this machine fits (timed once, then cached).",
    ),
]
BudgetOpt = Annotated[
    Optional[float], typer.Option("--budget-ms", help="The same as --fps, as milliseconds per frame.")
]


def apply_budget(
    rt: RuntimeArgs,
    model: str | None,
    fps: float | None,
    budget: float | None,
    frame_hw: tuple[int, int] | None,
) -> tuple[RuntimeArgs, str | None, dict[str, Any] | None]:
    """With ``--fps`` / ``--budget-ms``: the runtime options and bundled model the picker chose (said in one line),
    and the pick as a record; without them, everything as given.

    Raises:
        ConfigError: a budget with a model, scale or provider of the user's own, no frame size, or nothing fits.
    """
    if fps is None and budget is None:
        return rt, model, None
    from fcnedge.catalog import DEFAULT_NAMES
    from fcnedge.runtime.budget import budget_ms, choose

    flag = "--fps" if fps is not None else "--budget-ms"
    if model is not None and model not in DEFAULT_NAMES:
        raise ConfigError(f"{flag} picks among the bundled models and their scales: drop MODEL ({model}) or {flag}")
    if rt.scale is not None or rt.provider is not None:
        raise ConfigError(f"{flag} picks the scale and the engine itself: drop --scale / --provider or {flag}")
    if frame_hw is None:
        raise ConfigError(f"{flag} needs a frame size to time: give --input-size HxW (e.g. 352x480)")
    chosen = choose(fps, budget, frame_hw, threads=rt.threads or 0, say=out.print)
    assert chosen is not None
    cand, line = chosen
    out.print(line)
    picked = replace(rt, provider=cand.engine, threads=cand.threads, scale=cand.scale)
    record = {
        "model": cand.model,
        "scale": cand.scale,
        "engine": cand.engine,
        "threads": cand.threads,
        "measured_ms": round(cand.ms or 0.0, 2),
        "val_miou": cand.miou,
        "budget_ms": round(budget_ms(fps, budget) or 0.0, 2),
        "fps_asked": fps,
    }
    return picked, cand.model, record
