"""Generated image folders for the eval tests (no download), and a test plugin with timm-built cards."""

from __future__ import annotations

import textwrap
from pathlib import Path

from zoo.tasks.classification.data.demo import make_demo_folder

__all__ = ["make_demo_folder", "write_bad_image", "PLUGIN_FILES", "PLUGIN_ENTRY_POINTS", "CARDS"]


def write_bad_image(path: Path, kind: str = "garbage") -> Path:
    """An image file PIL cannot decode: random bytes, or a JPEG cut in half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "garbage":
        path.write_bytes(b"this is not an image" * 10)
    else:
        from io import BytesIO

        from PIL import Image

        buf = BytesIO()
        Image.new("RGB", (64, 64), (200, 10, 10)).save(buf, "JPEG")
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    return path


# three timm test architectures, each card with different preprocessing (size, crop_pct, interpolation,
# crop mode, mean/std): what the parity test checks against timm's own pipeline
CARDS = {
    "evt-resnet": dict(builder="test_resnet", input_size=[3, 96, 96],
                       preprocess=dict(interpolation="bicubic", crop_pct=0.875, mean="imagenet", std="imagenet")),
    "evt-convnext": dict(builder="test_convnext", input_size=[3, 80, 80],
                         preprocess=dict(interpolation="bilinear", crop_pct=0.95, mean="inception", std="inception")),
    "evt-effnet": dict(builder="test_efficientnet", input_size=[3, 64, 72],
                       preprocess=dict(interpolation="bicubic", crop_pct=1.0, crop_mode="squash", mean="clip", std="clip")),
    "evt-effnet-border": dict(builder="test_efficientnet", input_size=[3, 64, 64],
                              preprocess=dict(interpolation="bilinear", crop_pct=0.9, crop_mode="border")),
}

_INIT = '''
from zoo import hookimpl

CARDS = {cards!r}


@hookimpl
def zoo_cards():
    models = {{name: dict(paper="evaltest", task="image-classification", plugin="evalt",
                          reported=dict(source="test", imagenet=dict(top1=50.0)), **card)
              for name, card in CARDS.items()}}
    models["evt-detector"] = dict(paper="evaltest", task="object-detection", plugin="evalt", builder="test_resnet")
    return [{{"papers": {{"evaltest": {{"title": "Eval test", "venue": "Test 2024"}}}}, "models": models}}]


@hookimpl
def zoo_builders():
    return {{name: "zoo_thirdparty_evalt.models:" + name for name in ("test_resnet", "test_convnext", "test_efficientnet")}}
'''

_MODELS = '''
import timm


def _build(arch, num_classes=1000, **kwargs):
    return timm.create_model(arch, pretrained=False, num_classes=num_classes, **kwargs)


def test_resnet(*, num_classes=1000, **kwargs):
    return _build("test_resnet", num_classes, **kwargs)


def test_convnext(*, num_classes=1000, **kwargs):
    return _build("test_convnext", num_classes, **kwargs)


def test_efficientnet(*, num_classes=1000, **kwargs):
    return _build("test_efficientnet", num_classes, **kwargs)
'''

PLUGIN_ENTRY_POINTS = {"evalt": "zoo_thirdparty_evalt"}
PLUGIN_FILES = {
    "zoo_thirdparty_evalt/__init__.py": textwrap.dedent(_INIT.format(cards=CARDS)),
    "zoo_thirdparty_evalt/models.py": textwrap.dedent(_MODELS),
}
