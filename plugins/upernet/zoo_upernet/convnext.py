"""ConvNeXt as the backbone of the official UPerNet-ConvNeXt checkpoints, built by timm.

The official seg backbone (facebookresearch/ConvNeXt@048efce ``semantic_segmentation/backbone/
convnext.py``, on BEiT's mmseg 0.x code) is the classifier without its head plus one
channels-first LayerNorm per output (``norm0..norm3``, eps 1e-6). timm's ``ConvNeXt`` computes the
same blocks (depthwise 7x7, channels-last LayerNorm, MLP, layer scale ``gamma``), so this module
keeps timm's ``stem`` and ``stages`` and adds the four norms; :func:`official_to_ours` maps the
official key names onto timm's. The only numeric difference: the official channels-first
LayerNorm is written out by hand (mean, variance, divide) where timm calls ``F.layer_norm``;
they agree to float32 rounding.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ConvNeXtBackbone", "official_to_ours"]


class ConvNeXtBackbone(nn.Module):
    """ConvNeXt-T/S/B feature pyramid (strides 4, 8, 16, 32) from timm's ConvNeXt, plus norm0..norm3."""

    def __init__(self, depths: Sequence[int] = (3, 3, 9, 3), dims: Sequence[int] = (96, 192, 384, 768)) -> None:
        super().__init__()
        from timm.layers import LayerNorm2d
        from timm.models.convnext import ConvNeXt

        # ls_init_value 1.0 as the seg configs (layer_scale_init_value=1.0); checkpoints overwrite it anyway
        net = ConvNeXt(depths=tuple(depths), dims=tuple(dims), num_classes=0, ls_init_value=1.0)
        self.stem = net.stem
        self.stages = net.stages
        self.num_features = list(dims)
        for i, dim in enumerate(dims):
            self.add_module(f"norm{i}", LayerNorm2d(dim, eps=1e-6))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            outs.append(getattr(self, f"norm{i}")(x))
        return outs


_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), r)
    for p, r in (
        (r"^downsample_layers\.0\.(\d)\.", r"stem.\1."),  # stem: conv 4x4 s4, LayerNorm
        (r"^downsample_layers\.([123])\.(\d)\.", r"stages.\1.downsample.\2."),  # LayerNorm, conv 2x2 s2
        (r"^stages\.(\d+)\.(\d+)\.dwconv\.", r"stages.\1.blocks.\2.conv_dw."),
        (r"^stages\.(\d+)\.(\d+)\.pwconv1\.", r"stages.\1.blocks.\2.mlp.fc1."),
        (r"^stages\.(\d+)\.(\d+)\.pwconv2\.", r"stages.\1.blocks.\2.mlp.fc2."),
        (r"^stages\.(\d+)\.(\d+)\.(norm\.|gamma$)", r"stages.\1.blocks.\2.\3"),
        (r"^(norm[0-3]\.(weight|bias))$", r"\1"),
    )
)


def official_to_ours(key: str) -> str | None:
    """The timm-based key for an official backbone key (without ``backbone.``); None if it is not one."""
    for pattern, repl in _RULES:
        new, n = pattern.subn(repl, key)
        if n:
            return new
    return None
