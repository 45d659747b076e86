"""Predictors: image (HxWx3 uint8 RGB) -> (K, H, W) logits or (H, W) class ids.

:class:`TiledPredictor` is the seed's rule: windows whose sides are multiples of the stride, logits averaged where
windows overlap (or blended with a smooth window), argmax only after stitching. It streams over rows of windows,
so memory is bounded by one band of K x tile_height x width logits plus the output, whatever the image height.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from fcnedge.errors import ConfigError
from fcnedge.meta import ModelMeta, check_scale
from fcnedge.normalize import Normalizer
from fcnedge.protocols import Predictor, Runner
from fcnedge.runtime.postprocess import argmax_ids
from fcnedge.runtime.preprocess import as_rgb_uint8
from fcnedge.runtime.scaled import ScaledImage, half_pixel_taps
from fcnedge.runtime.tiling import Grid, ceil_to, make_grid, window
from fcnedge.runtime.upsample import resize_across, resize_logits
from fcnedge.specs import Blend, TileSpec

log = logging.getLogger(__name__)

IdsRunner = Callable[[NDArray[np.float32]], NDArray[np.uint8]]

__all__ = [
    "STAGES",
    "IdsRunner",
    "Predictor",
    "Runner",
    "TiledPredictor",
    "fit_tile_to_model",
    "scaled_size",
    "softmax",
]

# What one predict call is made of, as ``predict_timed`` reports it: resizing and normalising the image into tiles,
# the engine's runs, and everything after (stitching, resizing back, the runtime upsampling's argmax, the argmax).
STAGES = ("preprocess", "inference", "postprocess")


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """An image's size at inference scale ``scale`` (at least 1 x 1)."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def scaled_input(height: int, width: int, scale: float, stride: int) -> tuple[int, int]:
    """The smallest model input that holds an image at inference scale ``scale``: its scaled size rounded up to
    the stride."""
    h, w = scaled_size(height, width, scale)
    return ceil_to(h, stride), ceil_to(w, stride)


class PixelPlanes:
    """uint8 RGB -> the CHW uint8 planes a ``--uint8-input`` model takes (it normalises them itself); pads with
    the mean pixel. Stateless: shareable across threads."""

    def __init__(self, mean: Any) -> None:
        self.pad_pixel = np.array([round(255.0 * float(m)) for m in mean], dtype=np.uint8)

    def into(self, rgb: NDArray[np.uint8], out: NDArray[np.uint8]) -> None:
        """Copy the planes of HxWx3 ``rgb`` into the top-left of ``out`` (3, H', W')."""
        h, w = rgb.shape[:2]
        out[:, :h, :w] = rgb.transpose(2, 0, 1)

    def pad(self, buf: NDArray[Any]) -> None:
        buf[...] = self.pad_pixel[None, :, None, None]


def softmax(logits: NDArray[np.float32], axis: int = 0) -> NDArray[np.float32]:
    """Numerically stable softmax."""
    e = np.exp(logits - logits.max(axis=axis, keepdims=True))
    out: NDArray[np.float32] = e / e.sum(axis=axis, keepdims=True)
    return out


class TiledPredictor:
    """Tile, run, stitch.

    Thread safety: one instance may be shared by several threads (a web handler's pool, say). All per-call state
    (input buffers, logit accumulators) is per call or per thread; ``stats`` is updated under a lock; ONNX
    Runtime's ``InferenceSession.run`` is itself thread-safe. Concurrent calls share the session's intra-op
    thread pool, so for throughput on a CPU server use one predictor with ``threads`` set to cores / workers and
    as many worker threads, or one predictor per worker process.

    Args:
        runner: (N, 3, h, w) float32 -> (N, K, h, w) float32 (an ORT :class:`Session`, a torch wrapper, ...).
        meta: the model's meta (mean/std, stride, K).
        spec: tile size, overlap, blend, batch.
        max_batch: how many windows one runner call may hold (1 for a fixed-batch model).
        threads: threads for the argmax (0: ONNX Runtime's default).
        fixed: the model takes only ``spec.size`` (a fixed-size ONNX input): smaller images are padded up to it.
        session: the runtime session behind ``runner``, if any (reports its provider).
        ids_runner: (N, 3, h, w) -> (N, h, w) uint8 ids without full-resolution logits (the model's own ArgMax,
            or the boundary-only argmax of a runtime upsampling); ``predict`` uses it for images that fit one tile.
        input_dtype: ``np.float32`` (the runner takes normalised planes) or ``np.uint8`` (it takes the pixels and
            normalises them itself; partial tiles are then padded with the mean pixel, which normalises to ~0,
            as float tiles are padded with 0).
        scale: inference scale (None: the meta's): the image is resized by it (bilinear) before tiling and the
            stitched logits are resized back (bilinear), then the argmax. The tile is in model-input pixels.
            ``predict`` streams band by band at any scale; ``logits`` returns the whole (K, H, W) array.

    Raises:
        ConfigError: the tile spec does not fit the model stride, or the scale is outside [0.25, 4].
    """

    def __init__(
        self,
        runner: Runner,
        meta: ModelMeta,
        spec: TileSpec | None = None,
        *,
        max_batch: int = 1 << 16,
        threads: int = 0,
        fixed: bool = False,
        session: Any = None,
        ids_runner: IdsRunner | None = None,
        input_dtype: type[np.generic] = np.float32,
        scale: float | None = None,
    ) -> None:
        check_scale(scale)
        self.scale = float(meta.scale if scale is None else scale)
        self.runner = runner
        self.meta = meta
        self.spec = spec or TileSpec()
        self.spec.validate(meta.stride)
        self.batch = max(1, min(self.spec.batch, max_batch))
        self.input_dtype = np.dtype(input_dtype)
        self.norm: Normalizer | PixelPlanes = (
            PixelPlanes(meta.mean) if self.input_dtype == np.uint8 else Normalizer(meta.mean, meta.std)
        )
        self.threads = threads
        self.fixed = fixed
        self.session = session
        self.ids_runner = ids_runner
        self.tuned: Any = None  # the fcnedge tune record open_predictor applied, if any
        self._local = threading.local()  # per-thread input buffers: reused within a thread, never shared
        self._stats_lock = threading.Lock()
        self.stats = {"runs": 0, "windows": 0}

    @property
    def provider(self) -> str:
        """The execution provider that runs the model (``custom`` for a plain runner)."""
        return str(getattr(self.session, "provider", "custom"))

    def _grid(self, img: NDArray[np.uint8]) -> Grid:
        return make_grid(img.shape[0], img.shape[1], self.spec, self.meta.stride, fixed=self.fixed)

    def _source(self, img: NDArray[np.uint8]) -> tuple[Rows, tuple[int, int]]:
        """The image at the inference scale as a row source and its size: resized whole by OpenCV while that
        copy is small (what every frame and photo gets), band by band beyond :data:`WHOLE_RESIZE_BYTES`, so a
        huge image never exists twice (there a pixel may differ by one level from OpenCV's fixed-point resize:
        see :mod:`fcnedge.runtime.scaled`)."""
        size = scaled_size(img.shape[0], img.shape[1], self.scale)
        if size[0] * size[1] * 3 <= WHOLE_RESIZE_BYTES:
            big = self._scaled(img)
            return (lambda y0, y1: big[y0:y1]), size
        return ScaledImage(img, size).rows, size

    def _count(self, windows: int) -> None:
        with self._stats_lock:
            self.stats["runs"] += 1
            self.stats["windows"] += windows

    @contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        """Add the time spent inside to stage ``name`` when this thread is in :meth:`predict_timed`; free otherwise."""
        clock: dict[str, float] | None = getattr(self._local, "clock", None)
        if clock is None:
            yield
            return
        t0 = time.perf_counter()
        try:
            yield
        finally:
            clock[name] += time.perf_counter() - t0

    def _scaled(self, img: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """The image at the inference scale (itself at scale 1)."""
        size = scaled_size(img.shape[0], img.shape[1], self.scale)
        if size == img.shape[:2]:
            return img
        with self._stage("preprocess"):
            big = np.asarray(cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
        return big

    # -- public API -------------------------------------------------------------------------------------------
    def logits(self, image: NDArray[np.uint8]) -> NDArray[np.float32]:
        """(K, H, W) float32 stitched logits (a view of the session output in whole-image mode)."""
        img = as_rgb_uint8(image)
        big = self._scaled(img)
        if big is img:
            return self._logits(img)
        return resize_logits(self._logits(big), img.shape[:2])

    def _logits(self, img: NDArray[np.uint8]) -> NDArray[np.float32]:
        grid = self._grid(img)
        if grid.count == 1:
            return self._single(img, grid)
        out = np.empty((self.meta.num_classes, *img.shape[:2]), dtype=np.float32)
        for y0, y1, acc, wsum in self._strips(_rows_of(img), grid):
            np.divide(acc, wsum[None], out=out[:, y0:y1])  # straight into the output: no temporary
        return out

    def predict(self, image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """(H, W) uint8 class ids (argmax after stitching, and after resizing back at a scale other than 1; memory
        is bounded by one band of logits plus the output, and at a scale other than 1 the scaled image)."""
        img = as_rgb_uint8(image)
        if scaled_size(img.shape[0], img.shape[1], self.scale) != img.shape[:2]:
            return self._predict_scaled(img)
        grid = self._grid(img)
        if grid.count == 1:
            if self.ids_runner is not None and not self.spec.flip:
                buf, (h, w) = self._single_input(img, grid)
                return np.ascontiguousarray(self._run_ids(buf)[0, :h, :w])
            return argmax_ids(self._single(img, grid), threads=self.threads)
        out = np.empty(img.shape[:2], dtype=np.uint8)
        for y0, y1, acc, _ in self._strips(_rows_of(img), grid):
            # the weight sum is one positive number per pixel, so argmax(acc / wsum) == argmax(acc): skip the divide
            out[y0:y1] = argmax_ids(np.ascontiguousarray(acc), threads=self.threads)
        return out

    def _predict_scaled(self, img: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """Ids at an inference scale other than 1, streamed: the scaled image is made band by band (for a large
        image), and each finished band of its logits is resized back (down, by the two source rows of each output
        row, as OpenCV and torch place them; across, only those rows, by OpenCV) and argmaxed, a few output rows
        at a time. Memory stays one band of scaled logits plus the image and the output."""
        h, w = img.shape[:2]
        rows, size = self._source(img)
        grid = make_grid(size[0], size[1], self.spec, self.meta.stride, fixed=self.fixed)
        if grid.count == 1:
            return argmax_ids(resize_logits(self._single(rows(0, size[0]), grid), (h, w)), threads=self.threads)
        top, bottom, taps = half_pixel_taps(size[0], h)  # the two scaled rows of each output row
        frac = taps[None, :, None]
        out = np.empty((h, w), dtype=np.uint8)
        carry: NDArray[np.float32] | None = None  # the last finished scaled row, resized across
        done = 0  # output rows written
        for y0, y1, acc, wsum in self._strips(rows, grid):
            np.divide(acc, wsum[None], out=acc)  # in place: these rows are final, the tiler drops them next
            end = int(np.searchsorted(bottom, y1))  # output rows whose two source rows are both finished
            for c0 in range(done, end, BACK_ROWS):  # a few output rows at a time: small temporaries
                sel = slice(c0, min(end, c0 + BACK_ROWS))
                out[sel] = argmax_ids(
                    _mix_back(acc, carry, top[sel] - y0, bottom[sel] - y0, frac[:, sel], w), threads=self.threads
                )
            done = max(done, end)
            carry = resize_across(acc[:, -1:], w)  # a copy: the band goes
        return out

    def predict_timed(self, image: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], dict[str, float]]:
        """:meth:`predict`, and the seconds it spent in each of :data:`STAGES` (``postprocess`` is the rest of the
        call's wall time, so the three add up to it). What ``fcnedge bench`` times: the call users make, not a copy.
        """
        clock = dict.fromkeys(STAGES, 0.0)
        self._local.clock = clock
        t0 = time.perf_counter()
        try:
            ids = self.predict(image)
        finally:
            total = time.perf_counter() - t0
            self._local.clock = None
        clock["postprocess"] = max(0.0, total - clock["preprocess"] - clock["inference"])
        return ids, clock

    def probabilities(self, image: NDArray[np.uint8]) -> NDArray[np.float32]:
        """(K, H, W) softmax of the stitched logits."""
        return softmax(self.logits(image))

    # -- internals --------------------------------------------------------------------------------------------
    def _buffer(self, n: int, th: int, tw: int, *, partial: bool) -> NDArray[Any]:
        """This thread's (n, 3, th, tw) input buffer; reset to the pad value (0, or the mean pixel for uint8
        input) when a tile only partly covers it."""
        buffers: dict[tuple[int, int, int], NDArray[Any]] | None = getattr(self._local, "buffers", None)
        if buffers is None:
            buffers = self._local.buffers = {}
        key = (n, th, tw)
        buf = buffers.get(key)
        if buf is None:
            buf = buffers[key] = np.empty((n, 3, th, tw), dtype=self.input_dtype)
            self.norm.pad(buf)
        elif partial:
            self.norm.pad(buf)
        return buf

    def _single_input(self, img: NDArray[np.uint8], grid: Grid) -> tuple[NDArray[np.float32], tuple[int, int]]:
        th, tw = grid.tile
        h, w = img.shape[:2]
        with self._stage("preprocess"):
            buf = self._buffer(1, th, tw, partial=(h, w) != (th, tw))
            self.norm.into(img, buf[0])
        self._count(1)
        return buf, (h, w)

    def _run_ids(self, buf: NDArray[Any]) -> NDArray[np.uint8]:
        """The ids runner on a batch of tiles; a runtime upsampling's graph run is inference, its boundary-only
        argmax postprocessing (as stages; the ids are the same)."""
        assert self.ids_runner is not None
        session = self.session
        if session is not None and getattr(session, "ids_name", "") is None and hasattr(session, "ids_from_graph"):
            with self._stage("inference"):
                out = session.run_graph(buf)
            ids: NDArray[np.uint8] = session.ids_from_graph(out)
            return ids
        with self._stage("inference"):
            return self.ids_runner(buf)

    def _single(self, img: NDArray[np.uint8], grid: Grid) -> NDArray[np.float32]:
        buf, (h, w) = self._single_input(img, grid)
        return self._run(buf)[0, :, :h, :w]

    def _run(self, buf: NDArray[np.float32]) -> NDArray[np.float32]:
        """The runner on a batch of tiles; with flip TTA, the mean of it and of the mirrored tiles (mirrored back)."""
        with self._stage("inference"):
            out = self.runner(buf)
        if not self.spec.flip:
            return out
        with self._stage("inference"):
            mirrored = self.runner(np.ascontiguousarray(buf[..., ::-1]))[..., ::-1]
        both: NDArray[np.float32] = np.add(out, mirrored, dtype=np.float32)
        both *= 0.5
        return both

    def _run_row(self, band: NDArray[np.uint8], grid: Grid) -> Iterator[tuple[int, NDArray[np.float32]]]:
        """Yield (x, logits of the window at x) for the row of windows over ``band`` (the image's rows under it),
        batched."""
        th, tw = grid.tile
        xs = list(grid.xs)
        for i in range(0, len(xs), self.batch):
            chunk = xs[i : i + self.batch]
            with self._stage("preprocess"):
                buf = self._buffer(len(chunk), th, tw, partial=grid.padded != (grid.height, grid.width))
                for j, x in enumerate(chunk):
                    self.norm.into(band[:th, x : x + tw], buf[j])
            out = self._run(buf)
            self._count(len(chunk))
            yield from zip(chunk, out, strict=True)

    def _strips(self, rows: Rows, grid: Grid) -> Iterator[tuple[int, int, NDArray[np.float32], NDArray[np.float32]]]:
        """Yield (y0, y1, weighted logit sums (K, y1-y0, W), weight sums (y1-y0, W)) top to bottom; the views are
        valid until the next item is requested. ``rows(y0, y1)`` gives the image's rows (asked once per row of
        windows)."""
        k = self.meta.num_classes
        th, tw = grid.tile
        h, w = grid.height, grid.width
        wp = grid.padded[1]
        win = window(grid.tile, self.spec.blend)
        mean = self.spec.blend is Blend.MEAN
        acc = np.zeros((k, th, wp), dtype=np.float32)
        wsum = np.zeros((th, wp), dtype=np.float32)
        origin = 0
        for y in grid.ys:
            if y > origin:  # rows [origin, y) are final: no later window starts above y
                n = y - origin
                yield origin, y, acc[:, :n, :w], wsum[:n, :w]
                shift_up(acc, n)  # in blocks of n rows: an overlapping copy would make numpy buffer the band
                acc[:, th - n :].fill(0.0)
                shift_up(wsum[None], n)
                wsum[th - n :].fill(0.0)
                origin = y
            with self._stage("preprocess"):  # a band of a huge image is scaled here (ScaledImage)
                band = rows(y, min(y + th, h))
            for x, tile_logits in self._run_row(band, grid):
                if mean:
                    acc[:, :, x : x + tw] += tile_logits
                    wsum[:, x : x + tw] += 1.0
                else:
                    acc[:, :, x : x + tw] += tile_logits * win
                    wsum[:, x : x + tw] += win
        last = min(h, origin + th) - origin
        yield origin, origin + last, acc[:, :last, :w], wsum[:last, :w]


def fit_tile_to_model(spec: TileSpec | None, fixed_hw: tuple[int, int] | None, *, explicit: bool) -> TileSpec:
    """Use a fixed-size model's only size as the tile unless the user asked for another.

    Raises:
        ConfigError: the user's tile differs from the size a fixed-size model accepts.
    """
    spec = spec or TileSpec()
    if fixed_hw is None or spec.size == fixed_hw:
        return spec
    if explicit:
        raise ConfigError(
            f"the model accepts only {fixed_hw[0]}x{fixed_hw[1]} inputs but --tile {spec.size[0]}x{spec.size[1]} "
            f"was given: pass --tile {fixed_hw[0]}x{fixed_hw[1]} or re-export with dynamic H/W"
        )
    log.info("model has fixed input %dx%d: tiling to that size", *fixed_hw)
    return TileSpec(size=fixed_hw, overlap=spec.overlap, blend=spec.blend, batch=spec.batch)


# Output rows resized back per step at a scale other than 1: the two (K, rows, W) temporaries stay a few MiB even
# for a 10000-pixel-wide image (they were a whole band's worth, ~170 MiB each there).
BACK_ROWS = 32


def shift_up(acc: NDArray[np.float32], n: int) -> None:
    """``acc[:, :rows - n] = acc[:, n:]`` in place, copied per plane in blocks of at most n rows, so that no block's
    source and destination overlap: numpy copies an overlapping assignment through a temporary (84 MB of a 106 MB
    band, 11 x 480 x 5000, shifted by 100 rows)."""
    rows = acc.shape[1]
    for plane in acc:
        for r0 in range(0, rows - n, n):
            r1 = min(r0 + n, rows - n)
            plane[r0:r1] = plane[n + r0 : n + r1]


# A scaled image whose copy would exceed this is made band by band (ScaledImage) instead of resized whole.
WHOLE_RESIZE_BYTES = 64 << 20

Rows = Callable[[int, int], NDArray[np.uint8]]


def _rows_of(img: NDArray[np.uint8]) -> Rows:
    return lambda y0, y1: img[y0:y1]


def _mix_back(
    band: NDArray[np.float32],
    carry: NDArray[np.float32] | None,
    lo: NDArray[np.int64],
    hi: NDArray[np.int64],
    frac: NDArray[np.float32],
    w: int,
) -> NDArray[np.float32]:
    """(K, len(lo), w) logits of output rows mixing the band's scaled rows ``lo`` and ``hi`` (relative to the
    band's first row; -1 is ``carry``, the row just above the band) after resizing only those rows across."""
    r0, r1 = max(int(lo.min()), 0), int(hi.max()) + 1
    across = resize_across(band[:, r0:r1], w)
    if int(lo.min()) < 0 and carry is not None:
        across = np.concatenate([carry, across], axis=1)
        r0 -= 1
    mixed = across[:, lo - r0]
    upper = across[:, hi - r0]
    upper -= mixed
    upper *= frac
    mixed += upper
    return mixed
