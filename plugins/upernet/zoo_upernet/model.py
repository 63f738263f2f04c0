"""UPerNet segmentors (backbone + UPerHead) and the builders the cards name.

``model(images)`` maps (B, 3, H, W) images, normalised as the card says, to logits
(B, num_classes, ceil(H/4), ceil(W/4)) (stride 4; the segmentation task resizes them to the
input, bilinear, ``align_corners=False``, as mmseg's ``EncoderDecoder.encode_decode`` does).
State-dict keys are those of the official mmseg 0.x checkpoints after conversion: ``backbone.*``
and ``decode_head.*``; the training-only ``auxiliary_head`` is not built (see ``convert.py``).

Variants are data (the official configs' backbone arguments); every builder accepts the same
keyword arguments so tests can build tiny models of the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from zoo_upernet.head import UPerHead

__all__ = ["UPerNet", "upernet_convnext", "upernet_swin", "upernet_twins_svt"]


class UPerNet(nn.Module):
    """An encoder (feature pyramid, finest first) followed by mmseg's UPerHead."""

    def __init__(self, backbone: nn.Module, num_classes: int = 150, channels: int = 512) -> None:
        super().__init__()
        self.backbone = backbone
        self.decode_head = UPerHead(backbone.num_features, channels=channels, num_classes=num_classes)
        self.num_classes = num_classes

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode_head(self.backbone(images))


# Official configs: Swin-Transformer-Semantic-Segmentation@87e6f90 configs/swin/upernet_swin_*_patch4_window7_512x512_160k_ade20k.py
SWIN = {
    "t": {"embed_dim": 96, "depths": (2, 2, 6, 2), "num_heads": (3, 6, 12, 24)},
    "s": {"embed_dim": 96, "depths": (2, 2, 18, 2), "num_heads": (3, 6, 12, 24)},
    "b": {"embed_dim": 128, "depths": (2, 2, 18, 2), "num_heads": (4, 8, 16, 32)},
}
# ConvNeXt@048efce semantic_segmentation/configs/convnext/upernet_convnext_{tiny,small,base}_512_160k_ade20k_ss.py
CONVNEXT = {
    "t": {"depths": (3, 3, 9, 3), "dims": (96, 192, 384, 768)},
    "s": {"depths": (3, 3, 27, 3), "dims": (96, 192, 384, 768)},
    "b": {"depths": (3, 3, 27, 3), "dims": (128, 256, 512, 1024)},
}
# mmsegmentation 0.x configs/twins/twins_svt-{b,l}_uperhead_8x2_512x512_160k_ade20k.py (on twins_svt-s_...: mlp 4,
# sr (8, 4, 2, 1), windows 7, qkv_bias True)
TWINS_SVT = {
    "b": {"embed_dims": (96, 192, 384, 768), "num_heads": (3, 6, 12, 24), "depths": (2, 2, 18, 2)},
    "l": {"embed_dims": (128, 256, 512, 1024), "num_heads": (4, 8, 16, 32), "depths": (2, 2, 18, 2)},
}


def _args(table: dict[str, dict[str, Any]], variant: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**table[variant], **kwargs}


def upernet_swin(variant: str = "t", *, num_classes: int = 150, channels: int = 512, **kwargs: Any) -> UPerNet:
    """UPerNet-Swin; ``kwargs`` override the variant's backbone arguments (tests build tiny ones)."""
    from zoo_upernet.swin import SwinBackbone

    return UPerNet(SwinBackbone(**_args(SWIN, variant, kwargs)), num_classes, channels)


def upernet_convnext(variant: str = "t", *, num_classes: int = 150, channels: int = 512, **kwargs: Any) -> UPerNet:
    """UPerNet-ConvNeXt (backbone built by timm); ``kwargs`` override the variant's backbone arguments."""
    from zoo_upernet.convnext import ConvNeXtBackbone

    return UPerNet(ConvNeXtBackbone(**_args(CONVNEXT, variant, kwargs)), num_classes, channels)


def upernet_twins_svt(variant: str = "b", *, num_classes: int = 150, channels: int = 512, **kwargs: Any) -> UPerNet:
    """UPerNet-Twins-SVT in mmseg's layout; ``kwargs`` override the variant's backbone arguments."""
    from zoo_upernet.twins import SVTBackbone

    return UPerNet(SVTBackbone(**_args(TWINS_SVT, variant, kwargs)), num_classes, channels)


def _variant(fn: Any, variant: str) -> Any:
    def build(**kwargs: Any) -> UPerNet:
        return fn(variant, **kwargs)

    build.__name__ = f"{fn.__name__}_{variant}"
    build.__doc__ = f"{fn.__name__} variant {variant!r} (the card's builder)."
    return build


upernet_swin_t = _variant(upernet_swin, "t")
upernet_swin_s = _variant(upernet_swin, "s")
upernet_swin_b = _variant(upernet_swin, "b")
upernet_convnext_t = _variant(upernet_convnext, "t")
upernet_convnext_s = _variant(upernet_convnext, "s")
upernet_convnext_b = _variant(upernet_convnext, "b")
upernet_twins_svt_b = _variant(upernet_twins_svt, "b")
upernet_twins_svt_l = _variant(upernet_twins_svt, "l")

BUILDERS: Sequence[str] = (
    "upernet_swin_t", "upernet_swin_s", "upernet_swin_b",
    "upernet_convnext_t", "upernet_convnext_s", "upernet_convnext_b",
    "upernet_twins_svt_b", "upernet_twins_svt_l",
)
