from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fcnedge.models import build  # noqa: E402
from fcnedge.models.adapter import LogitsAdapter  # noqa: E402
from fcnedge.models.backbones import BACKBONES  # noqa: E402


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "efficientnet_lite0"])
def test_backbone_strides_and_channels(name: str) -> None:
    info = BACKBONES[name]
    net = info.factory(False).eval()
    with torch.no_grad():
        feats = net(torch.zeros(1, 3, 64, 96))
    for stride, ch in info.channels.items():
        assert feats[stride].shape == (1, ch, 64 // stride, 96 // stride)


def test_lite0_real_imagenet_weights_classify_chelsea_as_cat() -> None:
    skimage = pytest.importorskip("skimage")
    from fcnedge.models.backbones import EfficientNetLiteFeatures
    from fcnedge.models.registry import LITE_MEAN, LITE_STD

    net = BACKBONES["efficientnet_lite0"].factory(True).eval()
    assert isinstance(net, EfficientNetLiteFeatures)
    img = torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1).float()[None] / 255
    img = torch.nn.functional.interpolate(img, size=(224, 224), mode="bilinear", antialias=True)
    x = (img - torch.tensor(LITE_MEAN)[:, None, None]) / torch.tensor(LITE_STD)[:, None, None]
    with torch.no_grad():
        probs = net.classify(x).softmax(1)[0]
    top = int(probs.argmax())
    assert 281 <= top <= 285, f"top-1 ImageNet class {top} is not a cat class"  # 281-285: domestic cats
    assert float(probs[281:286].sum()) > 0.5


def test_resnet_pretrained_loads_from_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The torchvision weights path, offline: plant the checkpoint file where torchvision looks."""
    import torchvision

    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    planted = torchvision.models.resnet18(weights=None)
    torch.manual_seed(3)
    with torch.no_grad():
        planted.conv1.weight.normal_()
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(planted.state_dict(), cache / Path(weights.url).name)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model = build("fcn_resnet18", num_classes=3, pretrained_backbone=True)
    torch.testing.assert_close(model.backbone.stem[0].weight, planted.conv1.weight)


def test_adapter_wraps_torchvision_and_plain_modules() -> None:
    model = build("tv_lraspp_mobilenet_v3_large", num_classes=4).eval()
    assert isinstance(model, LogitsAdapter)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 96)).shape == (1, 4, 64, 96)

    class DictNet(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"out": x[:, :2] * 2}

    x = torch.rand(1, 3, 8, 8)
    np.testing.assert_allclose(LogitsAdapter(DictNet())(x).numpy(), (x[:, :2] * 2).numpy())
