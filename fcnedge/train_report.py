"""What a training run shows at its end: the val scores it stands on and ``OUT.results.png`` (loss and the scored
mIoU per epoch, per-class IoU bars), drawn from the run's result."""

from __future__ import annotations

from pathlib import Path

from fcnedge.errors import MissingDependencyError
from fcnedge.fsutil import atomic_path
from fcnedge.results import TrainResult

__all__ = ["write_results_png"]


def write_results_png(result: TrainResult, path: Path) -> None:
    """Loss and the scored mIoU per epoch, and the per-class IoU bars of the val scores the run stands on, as a PNG.

    Raises:
        MissingDependencyError: matplotlib is not installed (``pip install 'fcnedge[plot]'``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        raise MissingDependencyError("the results plot needs matplotlib: pip install 'fcnedge[plot]'") from None
    history = result.history
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(epochs, [h["loss"] for h in history], "o-", label="training loss")
    ax1.set_xlabel("epoch")
    ax1.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax1.set_ylabel("loss")
    scored = [(h["epoch"], (h.get("select") or h.get("val") or {}).get("miou")) for h in history]
    scored = [(e, m) for e, m in scored if m is not None]
    if scored:
        twin = ax1.twinx()
        twin.plot([e for e, _ in scored], [m for _, m in scored], "s-", color="tab:green", label="scored mIoU")
        twin.set_ylabel("mIoU (held-out frames, else val)")
    ax1.set_title("per epoch")
    final = result.val_scores
    if final:
        ious = final["per_class_iou"]
        names = [n if ious[n] is not None else f"{n} (absent)" for n in ious]  # a class no val pixel holds
        ax2.barh(names, [ious[n] or 0.0 for n in ious], color="tab:blue")
        ax2.set_xlim(0, 1)
        ax2.invert_yaxis()
        ax2.set_title(f"val per-class IoU (mIoU {final['miou']:.3f})")
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
