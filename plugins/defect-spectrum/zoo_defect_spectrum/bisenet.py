"""BiSeNetV1 (Yu et al., ECCV 2018) with a ResNet-18 context path, as mmsegmentation configures it.

No maintained pip library ships BiSeNet (segmentation_models_pytorch, timm and transformers do not),
so it is written here after the structure of mmseg's ``BiSeNetV1`` backbone and its
``bisenetv1_r18-d32`` config (open-mmlab/mmsegmentation, ``mmseg/models/backbones/bisenetv1.py``):

- spatial path: 7x7/2, 3x3/2, 3x3/2 convs (64 wide) and a 1x1 conv to 128: 1/8 resolution;
- context path: ResNet-18 (timm) stages at 1/16 and 1/32, attention refinement modules to 128
  channels, the global-average-pooled 1/32 feature added, nearest upsampling with 3x3 convs;
- feature fusion module to 256 channels, then an FCN head (one 3x3 conv, 1x1 classifier).

V1 rather than V2: the table's "Bise" names no version, V1 is the original BiSeNet, and its
ResNet-18 context path is the setting mmseg reports for Cityscapes. Training-only auxiliary heads
are left out (they do not run at inference).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin: int, cout: int, k: int, stride: int = 1, relu: bool = True, bias: bool = False) -> nn.Sequential:
    """mmcv's ConvModule with BN (and ReLU unless ``relu`` is false)."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=bias), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class SpatialPath(nn.Module):
    def __init__(self, channels: tuple[int, int, int, int] = (64, 64, 64, 128)) -> None:
        super().__init__()
        self.layers = nn.Sequential(conv_bn_relu(3, channels[0], 7, 2), conv_bn_relu(channels[0], channels[1], 3, 2),
                                    conv_bn_relu(channels[1], channels[2], 3, 2), conv_bn_relu(channels[2], channels[3], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class AttentionRefinement(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = conv_bn_relu(cin, cout, 3)
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv_bn_relu(cout, cout, 1, relu=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x * self.attention(x)


class ContextPath(nn.Module):
    def __init__(self, backbone: nn.Module, channels: tuple[int, int, int] = (128, 256, 512)) -> None:
        super().__init__()
        self.backbone = backbone
        self.arm16 = AttentionRefinement(channels[1], channels[0])
        self.arm32 = AttentionRefinement(channels[2], channels[0])
        self.head32 = conv_bn_relu(channels[0], channels[0], 3)
        self.head16 = conv_bn_relu(channels[0], channels[0], 3)
        self.gap = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv_bn_relu(channels[2], channels[0], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x8, x16, x32 = self.backbone(x)
        up32 = self.head32(F.interpolate(self.arm32(x32) + self.gap(x32), size=x16.shape[-2:], mode="nearest"))
        return self.head16(F.interpolate(self.arm16(x16) + up32, size=x8.shape[-2:], mode="nearest"))


class FeatureFusion(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = conv_bn_relu(cin, cout, 1)
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv_bn_relu(cout, cout, 1), nn.Sigmoid())

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        fused = self.conv(torch.cat([spatial, context], dim=1))
        return fused * self.attention(fused) + fused


class BiSeNetV1(nn.Module):
    """BiSeNetV1: ``(B, 3, H, W)`` -> logits ``(B, num_classes, H/8, W/8)``."""

    def __init__(self, num_classes: int, out_channels: int = 256) -> None:
        super().__init__()
        import timm

        # ResNet-18 stages at strides 8, 16, 32 (timm's plain torchvision-style ResNet, as mmseg's depth=18 'pytorch' style)
        backbone = timm.create_model("resnet18", pretrained=False, features_only=True, out_indices=(2, 3, 4))
        self.context_path = ContextPath(backbone)
        self.spatial_path = SpatialPath()
        self.ffm = FeatureFusion(128 + 128, out_channels)
        self.head = conv_bn_relu(out_channels, out_channels, 3)  # FCNHead, num_convs=1 (dropout: training only)
        self.classifier = nn.Conv2d(out_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = self.ffm(self.spatial_path(x), self.context_path(x))
        return self.classifier(self.head(fused))


def bisenet(*, num_classes: int = 126) -> nn.Module:
    """BiSeNetV1-R18 with random weights, in eval mode."""
    return BiSeNetV1(num_classes).eval()
