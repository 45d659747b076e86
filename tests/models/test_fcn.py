from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fcnedge.errors import ConfigError  # noqa: E402
from fcnedge.models import FCN, bilinear_kernel, build  # noqa: E402
from fcnedge.models.backbones import ResNetFeatures  # noqa: E402


def test_bilinear_kernel_values() -> None:
    w = bilinear_kernel(3, 4)
    # factor 2, centre 1.5: 1d filter [0.25, 0.75, 0.75, 0.25]
    f = torch.tensor([0.25, 0.75, 0.75, 0.25])
    torch.testing.assert_close(w[1, 1], f[:, None] * f[None, :])
    assert float(w[0, 1].abs().sum()) == 0.0  # channels upsample only themselves
    w64 = bilinear_kernel(2, 64)
    assert w64.shape == (2, 2, 64, 64)
    np.testing.assert_allclose(float(w64[0, 0, 31, 31]), (1 - 0.5 / 32) ** 2, rtol=1e-6)
    np.testing.assert_allclose(float(w64[0, 0, 0, 0]), (1 - 31.5 / 32) ** 2, rtol=1e-6)


def test_seed_fcn_resnet18_structure_and_shape() -> None:
    model = build("fcn_resnet18", num_classes=21).eval()
    assert isinstance(model, FCN)
    assert isinstance(model.backbone, ResNetFeatures)
    assert model.score32.in_channels == 512 and model.score32.out_channels == 21
    up = model.upsample
    assert (up.kernel_size, up.stride, up.padding) == ((64, 64), (32, 32), (16, 16))
    torch.testing.assert_close(up.weight.detach(), bilinear_kernel(21, 64))
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 320, 480))
        feats = model.backbone(torch.zeros(1, 3, 320, 480))
    assert out.shape == (1, 21, 320, 480)
    assert feats[32].shape == (1, 512, 10, 15)


def test_transposed_conv_is_bilinear_upsampling_of_smooth_input() -> None:
    """A linear ramp upsampled by the bilinear ConvTranspose matches F.interpolate away from the border."""
    model = build("fcn_tiny", num_classes=2)
    h, w = 10, 15
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    ramp = (0.3 * yy + 0.7 * xx)[None, None].repeat(1, 2, 1, 1)
    with torch.no_grad():
        up = model.upsample(ramp)
    ref = torch.nn.functional.interpolate(ramp, scale_factor=32, mode="bilinear", align_corners=False)
    assert up.shape == (1, 2, 320, 480)
    inner = (slice(None), slice(None), slice(32, -32), slice(32, -32))
    torch.testing.assert_close(up[inner], ref[inner], rtol=1e-5, atol=1e-4)


def test_heads_that_lost_are_gone() -> None:
    """The seed's question heads and random initialisation lost by the project's measure (docs/seed-qa.md): a
    recipe naming one gets one line with the heads there are."""
    for head in ("32s-mid128", "32s-x2", "32s-bicubic"):
        heads = "32s, 16s, 8s, 4s, 2s, 2s-k3"
        with pytest.raises(ConfigError, match=f"head '{head}' is unknown for fcn_tiny: choose one of {heads}"):
            build("fcn_tiny", num_classes=3, head=head)


@pytest.mark.parametrize("head", ["32s", "16s", "8s", "4s", "2s", "2s-k3"])
def test_heads_keep_input_size(head: str) -> None:
    model = build("fcn_tiny", num_classes=3, head=head).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 96)).shape == (2, 3, 64, 96)


def test_frozen_upsampling_has_no_grad() -> None:
    model = build("fcn_tiny", num_classes=3, head="8s", freeze_upsampling=True)
    assert not model.upsample.weight.requires_grad
    assert model.score8.weight.requires_grad


def test_bad_build_arguments() -> None:
    with pytest.raises(ConfigError, match=r"choose one of .*fcn_resnet18"):
        build("fcn_vgg99", num_classes=3)
    with pytest.raises(ConfigError, match="num_classes 1"):
        build("fcn_resnet18", num_classes=1)
    with pytest.raises(ConfigError, match="head"):
        build("fcn_tiny", num_classes=3, head="1s")


def test_4s_head_adds_a_stride_4_skip_that_starts_at_zero() -> None:
    """The 4s head is the 8s one plus a zero-initialised stride-4 score: untrained, it adds nothing but the
    bilinear x2 of the stride-8 score (so warm-starting it from an 8s model starts where that model was)."""
    torch.manual_seed(0)
    model = build("fcn_tiny", num_classes=3, head="4s", freeze_upsampling=True).eval()
    assert model.score4.in_channels == 8 and float(model.score4.weight.detach().abs().sum()) == 0.0
    assert model.up8to4.stride == (2, 2) and model.upsample.stride == (4, 4)
    torch.nn.init.normal_(model.score8.weight)
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        feats = model.backbone(x)
        s8 = model.up16to8(model.up32to16(model.score32(feats[32])) + model.score16(feats[16])) + model.score8(feats[8])
        ref = model.upsample(model.up8to4(s8))
        torch.testing.assert_close(model(x), ref)
        torch.nn.init.normal_(model.score4.weight)
        assert not torch.allclose(model(x), ref)  # the skip is wired in
