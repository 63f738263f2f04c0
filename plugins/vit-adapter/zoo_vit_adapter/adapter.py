"""ViT-Adapter's own modules: spatial prior module, injector, extractor, interaction block.

Layouts and numerics of czczup/ViT-Adapter@fd64a51 ``segmentation/mmseg_custom/models/backbones/
adapter_modules.py`` (Chen et al., "Vision Transformer Adapter for Dense Predictions", ICLR 2023):

- the spatial prior module (``spm``) is a small ResNet-like stem giving features at strides
  4, 8, 16, 32, projected to the ViT width by 1x1 convs (``fc1..fc4``);
- an injector lets the ViT tokens (stride 16) attend to the stride-8/16/32 prior features with
  3-level deformable attention, scaled by a learned ``gamma``;
- an extractor lets the prior features attend back to the ViT tokens (1 level), followed by a
  ConvFFN whose depthwise 3x3 conv runs on each of the three maps separately;
- the last interaction block has two extra extractors.

BatchNorm stands where the official code has SyncBatchNorm (identical at inference, same keys).
Every tensor of the prior features is a token sequence of 16n + 4n + n tokens: the stride-8, 16
and 32 maps of an input whose sides are multiples of 32, concatenated.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from zoo_vit_adapter.msda import MSDeformAttn
from zoo_vit_adapter.vit import DropPath

__all__ = ["ConvFFN", "Extractor", "Injector", "InteractionBlock", "SpatialPriorModule", "deform_inputs",
           "reference_points"]

Shapes = list[tuple[int, int]]
DeformInputs = tuple[torch.Tensor, Shapes]


def _ln(dim: int) -> nn.LayerNorm:
    return nn.LayerNorm(dim, eps=1e-6)


def reference_points(shapes: Sequence[tuple[int, int]], device: torch.device | None = None) -> torch.Tensor:
    """Pixel centres of each level in [0, 1] as (x, y), levels concatenated: (1, sum HW, 1, 2)."""
    points = []
    for h, w in shapes:
        ys = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h
        xs = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w
        y, x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((x.reshape(-1), y.reshape(-1)), -1))
    return torch.cat(points, 0)[None, :, None]


def deform_inputs(height: int, width: int, device: torch.device | None = None) -> tuple[DeformInputs, DeformInputs]:
    """(reference points, level shapes) for the injector (ViT queries at stride 16, prior levels 8/16/32)
    and for the extractor (prior queries at 8/16/32, the ViT level at stride 16)."""
    prior = [(height // 8, width // 8), (height // 16, width // 16), (height // 32, width // 32)]
    vit = [(height // 16, width // 16)]
    return (reference_points(vit, device), prior), (reference_points(prior, device), vit)


class SpatialPriorModule(nn.Module):
    """Conv stem -> features at strides 4 (a map), 8, 16, 32 (token sequences), all ``embed_dim`` wide."""

    def __init__(self, inplanes: int = 64, embed_dim: int = 384) -> None:
        super().__init__()

        def conv_bn_relu(cin: int, cout: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True)]

        self.stem = nn.Sequential(*conv_bn_relu(3, inplanes, 2), *conv_bn_relu(inplanes, inplanes, 1),
                                  *conv_bn_relu(inplanes, inplanes, 1), nn.MaxPool2d(3, stride=2, padding=1))
        self.conv2 = nn.Sequential(*conv_bn_relu(inplanes, 2 * inplanes, 2))
        self.conv3 = nn.Sequential(*conv_bn_relu(2 * inplanes, 4 * inplanes, 2))
        self.conv4 = nn.Sequential(*conv_bn_relu(4 * inplanes, 4 * inplanes, 2))
        self.fc1 = nn.Conv2d(inplanes, embed_dim, 1)
        self.fc2 = nn.Conv2d(2 * inplanes, embed_dim, 1)
        self.fc3 = nn.Conv2d(4 * inplanes, embed_dim, 1)
        self.fc4 = nn.Conv2d(4 * inplanes, embed_dim, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        c1 = self.stem(x)
        c2 = self.conv2(c1)
        c3 = self.conv3(c2)
        c4 = self.conv4(c3)
        tokens = [fc(c).flatten(2).transpose(1, 2) for fc, c in ((self.fc2, c2), (self.fc3, c3), (self.fc4, c4))]
        return self.fc1(c1), *tokens


class DWConv(nn.Module):
    """Depthwise 3x3 conv applied to the three maps of a prior-feature sequence separately."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, c = x.shape
        unit = n // 21  # 16 units at stride 8, 4 at stride 16, 1 at stride 32
        maps = ((x[:, :16 * unit], 2 * h, 2 * w), (x[:, 16 * unit:20 * unit], h, w), (x[:, 20 * unit:], h // 2, w // 2))
        return torch.cat([self.dwconv(t.transpose(1, 2).reshape(b, c, mh, mw)).flatten(2).transpose(1, 2)
                          for t, mh, mw in maps], dim=1)


class ConvFFN(nn.Module):
    """fc1 -> depthwise conv -> GELU -> fc2 (``cffn_ratio`` sets the hidden width)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DWConv(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x), h, w)))


class Injector(nn.Module):
    """ViT tokens += gamma * deformable attention into the prior features (3 levels)."""

    def __init__(self, dim: int, num_heads: int, n_points: int, n_levels: int = 3, deform_ratio: float = 1.0,
                 init_values: float = 0.0) -> None:
        super().__init__()
        self.query_norm = _ln(dim)
        self.feat_norm = _ln(dim)
        self.attn = MSDeformAttn(dim, n_levels, num_heads, n_points, deform_ratio)
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, query: torch.Tensor, feat: torch.Tensor, inputs: DeformInputs) -> torch.Tensor:
        reference, shapes = inputs
        return query + self.gamma * self.attn(self.query_norm(query), reference, self.feat_norm(feat), shapes)


class Extractor(nn.Module):
    """Prior features += deformable attention into the ViT tokens (1 level), then += ConvFFN."""

    def __init__(self, dim: int, num_heads: int, n_points: int, deform_ratio: float = 1.0,
                 cffn_ratio: float = 0.25, drop_path: float = 0.0) -> None:
        super().__init__()
        self.query_norm = _ln(dim)
        self.feat_norm = _ln(dim)
        self.attn = MSDeformAttn(dim, 1, num_heads, n_points, deform_ratio)
        self.ffn = ConvFFN(dim, int(dim * cffn_ratio))
        self.ffn_norm = _ln(dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, query: torch.Tensor, feat: torch.Tensor, inputs: DeformInputs, h: int, w: int) -> torch.Tensor:
        reference, shapes = inputs
        query = query + self.attn(self.query_norm(query), reference, self.feat_norm(feat), shapes)
        return query + self.drop_path(self.ffn(self.ffn_norm(query), h, w))


class InteractionBlock(nn.Module):
    """Injector -> the ViT blocks of this stage -> extractor (-> two extra extractors in the last block)."""

    def __init__(self, dim: int, num_heads: int, n_points: int, deform_ratio: float, cffn_ratio: float,
                 init_values: float = 0.0, drop_path: float = 0.0, extra_extractor: bool = False) -> None:
        super().__init__()
        self.injector = Injector(dim, num_heads, n_points, 3, deform_ratio, init_values)
        self.extractor = Extractor(dim, num_heads, n_points, deform_ratio, cffn_ratio, drop_path)
        self.extra_extractors = nn.Sequential(*(
            Extractor(dim, num_heads, n_points, deform_ratio, cffn_ratio, drop_path) for _ in range(2)
        )) if extra_extractor else None

    def forward(self, x: torch.Tensor, c: torch.Tensor, blocks: Sequence[nn.Module], inject: DeformInputs,
                extract: DeformInputs, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.injector(x, c, inject)
        for block in blocks:
            x = block(x)
        c = self.extractor(c, x, extract, h, w)
        for extractor in self.extra_extractors or ():
            c = extractor(c, x, extract, h, w)
        return x, c
