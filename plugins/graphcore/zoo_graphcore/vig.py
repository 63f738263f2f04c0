"""Isotropic Vision GNN (ViG), as GraphCore uses it: ``vig_ti_224_gelu``.

Paper: "Vision GNN: An Image is Worth Graph of Nodes", Han et al., NeurIPS 2022 (arXiv 2206.00272).
Official code: huawei-noah/Efficient-AI-Backbones ``vig_pytorch/vig.py`` and ``vig_pytorch/gcn_lib``
(Apache-2.0; read at f90e129). M-3LAB/open-iad carries an identical copy in ``models/graphcore/``.

Written for zoo; the state-dict keys and shapes are the official ones (``stem.convs.N``, ``pos_embed``,
``backbone.I.0`` the Grapher, ``backbone.I.1`` the FFN, ``prediction``), so the official ImageNet
checkpoint loads with ``strict=True``. Fidelity: ``tools/official_check.py`` compares the outputs with
the official module on seeded random weights and writes the key/shape manifest the tests check.

What the official code does and this module repeats:

- stem: five 3x3 convs (stride 2, 2, 2, 2, 1) with BatchNorm, GELU between them; the image must be 224
  for ViG-Ti because the learned position embedding is a fixed 14 x 14 grid added to the stem output;
- block i: Grapher (1x1 conv + BN, dynamic kNN graph on L2-normalised node features, max-relative graph
  conv, 1x1 conv + BN, residual), then FFN (1x1 conv + BN, GELU, 1x1 conv + BN, residual);
- k of block i is ``int(linspace(k, 2k, n_blocks)[i])`` (9 ... 18 for ViG-Ti), the dilation
  ``min(i // 4 + 1, nodes // max(k))``: the kNN takes ``k * dilation`` neighbours and keeps every
  ``dilation``-th; the max-relative conv interleaves ``[x, max_j(x_j - x_i)]`` channel by channel
  before a grouped (4 groups) 1x1 conv + BN + GELU.

The grid size is a parameter here (the official code fixes 14 x 14 and ``196`` nodes) so that tests can
run the same architecture on small images; at 224 the two are the same network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["VisionGNN", "knn_indices", "vig_ti_224_gelu"]


def knn_indices(x: Tensor, k: int) -> Tensor:
    """Indices (B, N, k) of each node's k nearest nodes (itself included) by squared L2 distance.

    ``x`` is (B, C, N, 1), already L2-normalised over C. The distance is written as the official
    ``pairwise_distance`` writes it (|x|^2 - 2 x.x^T + |x|^2^T) so that near-ties break the same way.
    """
    with torch.no_grad():
        pts = x.transpose(2, 1).squeeze(-1)  # B, N, C
        inner = -2 * torch.matmul(pts, pts.transpose(2, 1))
        square = torch.sum(torch.mul(pts, pts), dim=-1, keepdim=True)
        dist = square + inner + square.transpose(2, 1)
        return torch.topk(-dist, k=k)[1]


class MaxRelativeConv(nn.Module):
    """Max-relative graph convolution: [x_i, max_j(x_j - x_i)] -> grouped 1x1 conv + BN + GELU."""

    def __init__(self, channels: int, out_channels: int) -> None:
        super().__init__()
        self.nn = nn.Sequential(
            nn.Conv2d(channels * 2, out_channels, 1, bias=True, groups=4),
            nn.BatchNorm2d(out_channels),
            nn.GELU(),
        )

    def forward(self, x: Tensor, neighbours: Tensor) -> Tensor:
        b, c, n, _ = x.shape
        nodes = x.squeeze(-1).transpose(1, 2)  # B, N, C
        batch = torch.arange(b, device=x.device).view(b, 1, 1)
        x_j = nodes[batch, neighbours].permute(0, 3, 1, 2)  # B, C, N, k
        rel = torch.max(x_j - x, dim=-1, keepdim=True)[0]
        # interleaved, as torch.cat([x, rel], dim=2).reshape(b, 2c, n, 1) in the official code
        both = torch.stack([x, rel], dim=2).reshape(b, 2 * c, n, 1)
        return self.nn(both)


class DynamicGraphConv(nn.Module):
    """kNN graph rebuilt from the features at every forward pass, then a max-relative conv."""

    def __init__(self, channels: int, out_channels: int, k: int, dilation: int) -> None:
        super().__init__()
        self.k, self.dilation = k, dilation
        self.gconv = MaxRelativeConv(channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        flat = x.reshape(b, c, -1, 1).contiguous()
        if self.k * self.dilation > h * w:
            raise ValueError(f"kNN needs {self.k} x {self.dilation} neighbours but the grid has only {h * w} nodes")
        neighbours = knn_indices(F.normalize(flat, p=2.0, dim=1), self.k * self.dilation)[:, :, :: self.dilation]
        return self.gconv(flat, neighbours).reshape(b, -1, h, w).contiguous()


class Grapher(nn.Module):
    def __init__(self, channels: int, k: int, dilation: int) -> None:
        super().__init__()
        self.fc1 = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels))
        self.graph_conv = DynamicGraphConv(channels, channels * 2, k, dilation)
        self.fc2 = nn.Sequential(nn.Conv2d(channels * 2, channels, 1), nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.graph_conv(self.fc1(x))) + x


class FFN(nn.Module):
    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.BatchNorm2d(hidden))
        self.act = nn.GELU()
        self.fc2 = nn.Sequential(nn.Conv2d(hidden, channels, 1), nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x))) + x


class Stem(nn.Module):
    """Image -> node features, stride 16: four stride-2 3x3 convs and one stride-1 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        dims = [3, channels // 8, channels // 4, channels // 2, channels]
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [nn.Conv2d(dims[i], dims[i + 1], 3, stride=2, padding=1), nn.BatchNorm2d(dims[i + 1]), nn.GELU()]
        layers += [nn.Conv2d(channels, channels, 3, stride=1, padding=1), nn.BatchNorm2d(channels)]
        self.convs = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.convs(x)


class VisionGNN(nn.Module):
    """Isotropic ViG (``DeepGCN`` in the official code), with its ImageNet classifier head."""

    def __init__(self, *, channels: int = 192, n_blocks: int = 12, k: int = 9, img_size: int = 224,
                 num_classes: int = 1000) -> None:
        super().__init__()
        if channels % 8 or channels < 8:
            raise ValueError(f"channels must be a positive multiple of 8, got {channels}")
        if img_size % 16:
            raise ValueError(f"img_size must be a multiple of 16 (the stem's stride), got {img_size}")
        self.img_size, self.grid, self.num_classes = img_size, img_size // 16, num_classes
        self.num_knn = [int(v.item()) for v in torch.linspace(k, 2 * k, n_blocks)]
        max_dilation = self.grid**2 // max(self.num_knn)
        self.dilations = [min(i // 4 + 1, max_dilation) for i in range(n_blocks)]
        self.stem = Stem(channels)
        self.pos_embed = nn.Parameter(torch.zeros(1, channels, self.grid, self.grid))
        self.backbone = nn.Sequential(*[
            nn.Sequential(Grapher(channels, self.num_knn[i], self.dilations[i]), FFN(channels, channels * 4))
            for i in range(n_blocks)])
        self.prediction = nn.Sequential(nn.Conv2d(channels, 1024, 1), nn.BatchNorm2d(1024), nn.GELU(),
                                        nn.Dropout(0.0), nn.Conv2d(1024, num_classes, 1))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def embed(self, images: Tensor) -> Tensor:
        """Stem output plus the position embedding: the nodes the first block sees."""
        if tuple(images.shape[-2:]) != (self.img_size, self.img_size):
            raise ValueError(f"expected images of {self.img_size}x{self.img_size} (the position embedding is a "
                             f"fixed {self.grid}x{self.grid} grid), got {tuple(images.shape[-2:])}")
        return self.stem(images) + self.pos_embed

    def block_outputs(self, images: Tensor, indices: Sequence[int]) -> list[Tensor]:
        """The outputs of ``backbone[i]`` (after its FFN) for each i in ``indices``; later blocks are not run."""
        wanted = sorted(set(indices))
        if not wanted or wanted[0] < 0 or wanted[-1] >= len(self.backbone):
            raise ValueError(f"block indices must lie in 0..{len(self.backbone) - 1}, got {list(indices)}")
        x = self.embed(images)
        out: dict[int, Tensor] = {}
        for i in range(wanted[-1] + 1):
            x = self.backbone[i](x)
            if i in wanted:
                out[i] = x
        return [out[i] for i in indices]

    def forward_features(self, images: Tensor) -> Tensor:
        x = self.embed(images)
        return self.backbone(x)

    def forward(self, images: Tensor) -> Tensor:
        x = F.adaptive_avg_pool2d(self.forward_features(images), 1)
        return self.prediction(x).squeeze(-1).squeeze(-1)


def vig_ti_224_gelu(*, num_classes: int = 1000, **kwargs: int) -> VisionGNN:
    """ViG-Ti: 12 blocks of 192 channels, k 9 -> 18 (official ``vig_ti_224_gelu``)."""
    return VisionGNN(channels=192, n_blocks=12, k=9, img_size=224, num_classes=num_classes, **kwargs)
