"""The boundary-only argmax of a runtime upsampling equals the argmax of the full bilinear upsampling."""

from __future__ import annotations

import numpy as np
import pytest

from fcnedge.runtime import upsample
from fcnedge.runtime.upsample import upsample_bilinear, upsampled_ids


@pytest.fixture(autouse=True, params=["boundaries", "auto"])
def _path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test with the boundary interpolation forced on for every image, and with the automatic choice."""
    if request.param == "boundaries":
        monkeypatch.setattr(upsample, "BOUNDARY_SHARE_MAX", 1.0)


def _logits(k: int, h: int, w: int, seed: int) -> np.ndarray:
    """Smooth class regions plus noise: mostly uniform cells, some boundaries, no exact ties."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    centres = rng.uniform(0, max(h, w), size=(k, 2)).astype(np.float32)
    dist = np.hypot(yy[None] - centres[:, 0, None, None], xx[None] - centres[:, 1, None, None])
    return (-dist + 0.5 * rng.standard_normal((k, h, w))).astype(np.float32)


def _check_same(low: np.ndarray, s: int) -> None:
    full = upsample_bilinear(low[None], s)[0]
    ref = full.argmax(0)
    got = upsampled_ids(low, s)
    assert got.dtype == np.uint8 and got.shape == ref.shape
    differ = got != ref
    # only a float-rounding near-tie may differ, never a real decision
    assert differ.mean() <= 1e-4
    if differ.any():
        margin = full.max(0)[differ] - np.take_along_axis(full, got[None].astype(np.intp), 0)[0][differ]
        assert float(margin.max()) < 1e-5


@pytest.mark.parametrize("s", [2, 8, 32])
@pytest.mark.parametrize(("k", "h", "w"), [(11, 40, 60), (21, 7, 5), (2, 1, 1), (3, 1, 9), (5, 13, 1)])
def test_equals_the_argmax_of_the_full_upsampling(s: int, k: int, h: int, w: int) -> None:
    for seed in range(3):
        _check_same(_logits(k, h, w, seed), s)


def test_boundaries_are_interpolated_not_copied() -> None:
    # two classes crossing inside one cell: the nearest low-res pixel is not the answer everywhere
    low = np.zeros((2, 1, 2), np.float32)
    low[0] = [[4.0, -1.0]]
    low[1] = [[0.0, 0.0]]
    ids = upsampled_ids(low, 8)
    ref = upsample_bilinear(low[None], 8)[0].argmax(0)
    np.testing.assert_array_equal(ids, ref)
    assert set(np.unique(ids[:, :8])) == {0} and set(np.unique(ids[:, 8:])) == {0, 1}


def test_ties_go_to_the_first_class_like_argmax() -> None:
    low = np.zeros((3, 4, 4), np.float32)
    low[1] = low[2] = 1.0  # classes 1 and 2 tie everywhere, class 0 below
    np.testing.assert_array_equal(upsampled_ids(low, 2), np.ones((8, 8), np.uint8))


def test_refuses_what_it_cannot_represent() -> None:
    with pytest.raises(ValueError, match="K <= 255"):
        upsampled_ids(np.zeros((256, 2, 2), np.float32), 2)
    with pytest.raises(ValueError, match="even stride"):
        upsampled_ids(np.zeros((3, 2, 2), np.float32), 3)


def test_a_busy_image_gives_the_same_answer_either_way() -> None:
    low = np.random.default_rng(3).standard_normal((11, 20, 30)).astype(np.float32)  # every cell a boundary
    ref = upsample_bilinear(low[None], 2)[0].argmax(0)
    np.testing.assert_array_equal(upsampled_ids(low, 2), ref)


def test_the_boundary_step_calls_no_blas(monkeypatch: pytest.MonkeyPatch) -> None:
    """BLAS (np.tensordot, np.dot, matmul) leaves worker threads spinning after the call; on a 2-core CPU that
    halved the model's next inference, so the boundary interpolation is elementwise numpy only."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("BLAS called in the ids path")

    for name in ("tensordot", "dot", "matmul", "einsum"):
        monkeypatch.setattr(np, name, refuse)
    low = _logits(11, 40, 60, seed=1)
    assert upsampled_ids(low, 2).shape == (80, 120)
