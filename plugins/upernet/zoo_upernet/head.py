"""UPerNet decode head and the auxiliary FCN head, in mmsegmentation 0.x's key layout.

UPerNet (Xiao et al., ECCV 2018, arXiv 1807.10221) as mmsegmentation 0.x's ``UPerHead``
(``mmseg/models/decode_heads/uper_head.py``, with ``PPM`` from ``psp_head.py``): a pooling
pyramid (PPM, pool scales 1, 2, 3, 6) on the last feature map, an FPN top-down path over the
others, and a 3x3 fusion conv (``fpn_bottleneck``) before a 1x1 classifier (``conv_seg``).
Every conv of the head is mmcv's ``ConvModule``: conv (no bias, since a norm follows), BN, ReLU,
whose state-dict keys are ``conv.*`` and ``bn.*``. Written here without mmcv so the official
checkpoints load strictly; the ViT-Adapter plugin reuses this module.

Numerics follow mmseg 0.x: every resize is bilinear with ``align_corners=False``; the top-down
path adds the upsampled coarser lateral into the finer one; ``Dropout2d(0.1)`` before
``conv_seg`` acts in training only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvModule", "FCNHead", "PPM", "UPerHead"]


class ConvModule(nn.Module):
    """mmcv's ``ConvModule`` as the seg configs use it: conv -> BatchNorm -> ReLU (keys conv.*, bn.*)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.activate = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.bn(self.conv(x)))


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    return F.interpolate(x, size=tuple(int(s) for s in size), mode="bilinear", align_corners=False)


class PPM(nn.ModuleList):
    """Pooling pyramid: adaptive average pool to each scale, 1x1 ConvModule, upsample back."""

    def __init__(self, pool_scales: Sequence[int], in_channels: int, channels: int) -> None:
        super().__init__(
            nn.Sequential(nn.AdaptiveAvgPool2d(s), ConvModule(in_channels, channels, 1)) for s in pool_scales
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        return [_resize(branch(x), x.shape[2:]) for branch in self]


class _DecodeHead(nn.Module):
    """What mmseg's ``BaseDecodeHead`` contributes to the keys: ``conv_seg`` (1x1, bias) and its dropout."""

    def __init__(self, channels: int, num_classes: int, dropout_ratio: float) -> None:
        super().__init__()
        self.conv_seg = nn.Conv2d(channels, num_classes, kernel_size=1)
        self.dropout = nn.Dropout2d(dropout_ratio) if dropout_ratio > 0 else None

    def cls_seg(self, feat: torch.Tensor) -> torch.Tensor:
        if self.dropout is not None:
            feat = self.dropout(feat)
        return self.conv_seg(feat)


class UPerHead(_DecodeHead):
    """mmseg 0.x ``UPerHead``: maps the backbone's feature maps (finest first) to logits at the finest scale.

    :param in_channels: channels of each input feature map, finest first (all of them are used).
    :param channels: width of every intermediate conv (512 in every config here).
    :param num_classes: classifier outputs (150 for ADE20K).
    :param pool_scales: PPM output sizes.
    :param dropout_ratio: ``Dropout2d`` before ``conv_seg`` (training only).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        channels: int = 512,
        num_classes: int = 150,
        pool_scales: Sequence[int] = (1, 2, 3, 6),
        dropout_ratio: float = 0.1,
    ) -> None:
        super().__init__(channels, num_classes, dropout_ratio)
        self.in_channels = list(in_channels)
        self.psp_modules = PPM(pool_scales, self.in_channels[-1], channels)
        self.bottleneck = ConvModule(self.in_channels[-1] + len(pool_scales) * channels, channels, 3, padding=1)
        self.lateral_convs = nn.ModuleList(ConvModule(c, channels, 1) for c in self.in_channels[:-1])
        self.fpn_convs = nn.ModuleList(ConvModule(channels, channels, 3, padding=1) for _ in self.in_channels[:-1])
        self.fpn_bottleneck = ConvModule(len(self.in_channels) * channels, channels, 3, padding=1)

    def psp_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(torch.cat([x, *self.psp_modules(x)], dim=1))

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f"UPerHead expects {len(self.in_channels)} feature maps, got {len(inputs)}")
        laterals = [conv(inputs[i]) for i, conv in enumerate(self.lateral_convs)]
        laterals.append(self.psp_forward(inputs[-1]))
        for i in range(len(laterals) - 1, 0, -1):  # top-down: coarser lateral added into the finer one
            laterals[i - 1] = laterals[i - 1] + _resize(laterals[i], laterals[i - 1].shape[2:])
        outs = [conv(laterals[i]) for i, conv in enumerate(self.fpn_convs)]
        outs.append(laterals[-1])
        size = outs[0].shape[2:]
        outs = [outs[0], *(_resize(o, size) for o in outs[1:])]
        return self.cls_seg(self.fpn_bottleneck(torch.cat(outs, dim=1)))


class FCNHead(_DecodeHead):
    """mmseg 0.x ``FCNHead`` as the UPerNet configs' auxiliary head (one 3x3 conv, no input concat).

    Training-only in mmseg (its loss weight is 0.4; inference uses ``decode_head`` alone). zoo's
    UPerNet models do not build it: the converter drops the checkpoints' ``auxiliary_head.*``
    keys by name. It is here for fidelity tests and for anyone fine-tuning.
    """

    def __init__(
        self, in_channels: int, channels: int = 256, num_classes: int = 150, num_convs: int = 1,
        in_index: int = 2, dropout_ratio: float = 0.1,
    ) -> None:
        super().__init__(channels, num_classes, dropout_ratio)
        self.in_index = in_index
        convs = [ConvModule(in_channels if i == 0 else channels, channels, 3, padding=1) for i in range(num_convs)]
        self.convs = nn.Sequential(*convs)

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.cls_seg(self.convs(inputs[self.in_index]))
