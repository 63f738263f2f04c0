"""Context Cluster (CoC): image classification with an image treated as a set of points.

Paper: "Image as Set of Points", Xu Ma, Yuqian Zhou, Huan Wang, Can Qin, Bin Sun, Chang Liu, Yun Fu,
ICLR 2023 (oral). arXiv: https://arxiv.org/abs/2303.01494
Official code: https://github.com/ma-xu/Context-Cluster (``models/context_cluster.py``), Apache-2.0
(the repository LICENSE; the file header says MIT, the README says "the majority ... Apache License 2.0").

An image is a set of points with five features each: RGB plus its two coordinates, normalised to
[-0.5, 0.5]. The model appends the coordinates itself, so callers pass ordinary RGB batches. Each
block clusters the points of a region around ``proposal_w x proposal_h`` pooled centres by cosine
similarity (every point joins exactly one centre), aggregates the values of each cluster and dispatches
the aggregate back to its points. Stages are separated by strided convolutions ("point reducers").

This is an independent implementation written from the official code's structure; it does not import
or copy it. Its ``state_dict`` keys and shapes equal the official model's (``network.{i}`` is the flat
list of stages and point reducers of the original), so the released checkpoints load with
``strict=True``. Fidelity check (see README.md): for every variant the key set and shapes equal a
manifest generated from the official code (``tests/data/official_shapes.json``), and with the official
model's random-init weights loaded, the logits of both models agree to float32 round-off. The one
deliberate difference: the aggregate and dispatch steps are matrix products here, where the official
code multiplies and sums a [B, M, N, D] broadcast; the result is the same up to summation order, and
``reference_ops=True`` restores the official order (logits then equal the official ones exactly).

Einops is not needed: the few reshapes are written out.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_
from torch import nn

__all__ = ["ContextCluster", "convert_official", "coc_tiny", "coc_tiny_plain", "coc_small", "coc_medium"]


# -- blocks ---------------------------------------------------------------------------------------


class GroupNorm1(nn.GroupNorm):
    """GroupNorm with one group: normalises over (C, H, W), affine per channel."""

    def __init__(self, num_channels: int) -> None:
        super().__init__(1, num_channels)


class PointReducer(nn.Module):
    """Strided convolution that merges neighbouring points (the official ``PointRecuder``)."""

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int, stride: int, padding: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def _to_regions(x: torch.Tensor, fold_w: int, fold_h: int) -> torch.Tensor:
    """[B, C, fw*w, fh*h] -> [B*fw*fh, C, w, h]: each region becomes its own batch item."""
    b, c, width, height = x.shape
    w, h = width // fold_w, height // fold_h
    x = x.reshape(b, c, fold_w, w, fold_h, h).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b * fold_w * fold_h, c, w, h)


def _from_regions(x: torch.Tensor, fold_w: int, fold_h: int) -> torch.Tensor:
    """Inverse of :func:`_to_regions`."""
    bf, c, w, h = x.shape
    b = bf // (fold_w * fold_h)
    x = x.reshape(b, fold_w, fold_h, c, w, h).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, c, fold_w * w, fold_h * h)


class Cluster(nn.Module):
    """Context cluster token mixer: cluster points around pooled centres, aggregate, dispatch back.

    ``fold_w x fold_h`` regions are clustered independently (region partition); a fold of 1 in either
    direction clusters the whole map at once, as the official code does.

    ``reference_ops=True`` computes the aggregate and dispatch steps as the official code does, by
    broadcasting to [b, M, N, d] and summing, which reproduces its outputs bit for bit on the same
    hardware. The default uses matrix products: the same sums in another order, faster and without the
    large temporary. Because every point joins its single most similar centre, a round-off difference
    upstream can, rarely, move a point whose two best centres tie to within ~1e-7 (see README.md).
    """

    def __init__(
        self,
        dim: int,
        out_dim: int,
        proposal_w: int = 2,
        proposal_h: int = 2,
        fold_w: int = 2,
        fold_h: int = 2,
        heads: int = 4,
        head_dim: int = 24,
        reference_ops: bool = False,
    ) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = head_dim
        self.reference_ops = reference_ops
        self.fold_w = fold_w
        self.fold_h = fold_h
        self.f = nn.Conv2d(dim, heads * head_dim, kernel_size=1)  # features for the similarity
        self.proj = nn.Conv2d(heads * head_dim, out_dim, kernel_size=1)
        self.v = nn.Conv2d(dim, heads * head_dim, kernel_size=1)  # values
        self.sim_alpha = nn.Parameter(torch.ones(1))
        self.sim_beta = nn.Parameter(torch.zeros(1))
        self.centers_proposal = nn.AdaptiveAvgPool2d((proposal_w, proposal_h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, width, height = x.shape
        value = self.v(x)
        x = self.f(x)
        # [B, heads*d, W, H] -> [B*heads, d, W, H]; channels are split head-major as in the original.
        x = x.reshape(batch * self.heads, self.head_dim, width, height)
        value = value.reshape(batch * self.heads, self.head_dim, width, height)
        folded = self.fold_w > 1 and self.fold_h > 1
        if folded:
            if width % self.fold_w or height % self.fold_h:
                raise ValueError(
                    f"feature map {width}x{height} is not divisible into {self.fold_w}x{self.fold_h} regions"
                )
            x = _to_regions(x, self.fold_w, self.fold_h)
            value = _to_regions(value, self.fold_w, self.fold_h)
        b, c, w, h = x.shape
        centers = self.centers_proposal(x).flatten(2).transpose(1, 2)  # [b, M, d]
        value_centers = self.centers_proposal(value).flatten(2).transpose(1, 2)  # [b, M, d]
        points = x.flatten(2).transpose(1, 2)  # [b, N, d]
        cos = F.normalize(centers, dim=-1) @ F.normalize(points, dim=-1).transpose(-2, -1)  # [b, M, N]
        sim = torch.sigmoid(self.sim_beta + self.sim_alpha * cos)
        # Hard assignment: each point keeps its similarity to its most similar centre only.
        mask = torch.zeros_like(sim).scatter_(1, sim.max(dim=1, keepdim=True).indices, 1.0)
        sim = sim * mask
        values = value.flatten(2).transpose(1, 2)  # [b, N, d]
        # Aggregate (Eq. 1 of the paper; the centre's own value counts with weight 1), then dispatch
        # each cluster's aggregate back to its points, scaled by their similarity.
        if self.reference_ops:
            weighted = (values.unsqueeze(1) * sim.unsqueeze(-1)).sum(dim=2)  # [b, M, d]
        else:
            weighted = sim @ values
        agg = (weighted + value_centers) / (sim.sum(dim=-1, keepdim=True) + 1.0)  # [b, M, d]
        if self.reference_ops:
            out = (agg.unsqueeze(2) * sim.unsqueeze(-1)).sum(dim=1)  # [b, N, d]
        else:
            out = sim.transpose(1, 2) @ agg
        out = out.transpose(1, 2).reshape(b, c, w, h)
        if folded:
            out = _from_regions(out, self.fold_w, self.fold_h)
        out = out.reshape(batch, self.heads * self.head_dim, width, height)
        return self.proj(out)


class Mlp(nn.Module):
    """Channel MLP applied with ``nn.Linear`` on a channels-last view of a [B, C, H, W] map."""

    def __init__(self, dim: int, hidden_dim: int, act_layer: type[nn.Module] = nn.GELU, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.act(self.fc1(x.permute(0, 2, 3, 1))))
        return self.drop(self.fc2(x).permute(0, 3, 1, 2))


class ClusterBlock(nn.Module):
    """Pre-norm residual block: context cluster, then MLP, each with LayerScale and DropPath."""

    def __init__(
        self,
        dim: int,
        mlp_ratio: float = 4.0,
        drop: float = 0.0,
        drop_path: float = 0.0,
        layer_scale_init_value: float = 1e-5,
        proposal_w: int = 2,
        proposal_h: int = 2,
        fold_w: int = 2,
        fold_h: int = 2,
        heads: int = 4,
        head_dim: int = 24,
        reference_ops: bool = False,
    ) -> None:
        super().__init__()
        self.norm1 = GroupNorm1(dim)
        self.token_mixer = Cluster(
            dim, dim, proposal_w, proposal_h, fold_w, fold_h, heads, head_dim, reference_ops=reference_ops
        )
        self.norm2 = GroupNorm1(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.layer_scale_1 = nn.Parameter(layer_scale_init_value * torch.ones(dim))
        self.layer_scale_2 = nn.Parameter(layer_scale_init_value * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.layer_scale_1[:, None, None] * self.token_mixer(self.norm1(x)))
        x = x + self.drop_path(self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x)))
        return x


# -- model ----------------------------------------------------------------------------------------


class ContextCluster(nn.Module):
    """Context Cluster classifier (four stages, one ``network`` list as in the official model).

    ``network`` alternates stages and point reducers: ``network[0, 2, 4, 6]`` are ``nn.Sequential``
    stages of :class:`ClusterBlock`, ``network[1, 3, 5]`` the reducers between them.
    ``reference_ops``: see :class:`Cluster`; it changes no parameter.
    """

    def __init__(
        self,
        layers: tuple[int, ...],
        embed_dims: tuple[int, ...],
        mlp_ratios: tuple[float, ...],
        proposal_w: tuple[int, ...],
        proposal_h: tuple[int, ...],
        fold_w: tuple[int, ...],
        fold_h: tuple[int, ...],
        heads: tuple[int, ...],
        head_dim: tuple[int, ...],
        num_classes: int = 1000,
        in_chans: int = 3,
        in_patch_size: int = 4,
        in_stride: int = 4,
        in_pad: int = 0,
        down_patch_size: int = 3,
        down_stride: int = 2,
        down_pad: int = 1,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        layer_scale_init_value: float = 1e-5,
        reference_ops: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_features = embed_dims[-1]
        # The stem sees the image channels plus the two coordinate channels appended in forward.
        self.patch_embed = PointReducer(in_chans + 2, embed_dims[0], in_patch_size, in_stride, in_pad)

        total = sum(layers)
        network: list[nn.Module] = []
        for i, depth in enumerate(layers):
            start = sum(layers[:i])
            blocks = [
                ClusterBlock(
                    embed_dims[i],
                    mlp_ratio=mlp_ratios[i],
                    drop=drop_rate,
                    drop_path=drop_path_rate * (start + j) / max(total - 1, 1),
                    layer_scale_init_value=layer_scale_init_value,
                    proposal_w=proposal_w[i],
                    proposal_h=proposal_h[i],
                    fold_w=fold_w[i],
                    fold_h=fold_h[i],
                    heads=heads[i],
                    head_dim=head_dim[i],
                    reference_ops=reference_ops,
                )
                for j in range(depth)
            ]
            network.append(nn.Sequential(*blocks))
            if i < len(layers) - 1:
                network.append(
                    PointReducer(embed_dims[i], embed_dims[i + 1], down_patch_size, down_stride, down_pad)
                )
        self.network = nn.ModuleList(network)
        self.norm = GroupNorm1(embed_dims[-1])
        self.head = nn.Linear(embed_dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the head (``global_pool`` is accepted for timm compatibility; pooling is always mean)."""
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    @staticmethod
    def _with_coordinates(x: torch.Tensor) -> torch.Tensor:
        """Append each pixel's (row, column) position, scaled to [-0.5, 0.5], as two channels."""
        b, _, rows, cols = x.shape
        r = torch.arange(rows, device=x.device, dtype=torch.float32) / (rows - 1.0)
        c = torch.arange(cols, device=x.device, dtype=torch.float32) / (cols - 1.0)
        pos = torch.stack(torch.meshgrid(r, c, indexing="ij"), dim=0) - 0.5  # [2, rows, cols]
        return torch.cat([x, pos.to(x.dtype).unsqueeze(0).expand(b, -1, -1, -1)], dim=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(self._with_coordinates(x))
        for layer in self.network:
            x = layer(x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean(dim=(-2, -1))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# -- checkpoints ----------------------------------------------------------------------------------


def convert_official(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Map an official ImageNet checkpoint onto :class:`ContextCluster` keys; returns a new dict.

    The released files are timm training checkpoints whose ``state_dict`` already uses this model's
    keys, so after the core has unwrapped the container the only work left is defensive: strip a
    ``module.`` (DistributedDataParallel) prefix if one survived and drop non-tensor entries.
    Idempotent: a converted dict converts to an equal dict.
    """
    out: dict[str, Any] = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            continue
        out[key.removeprefix("module.")] = value
    return out


# -- variants -------------------------------------------------------------------------------------

_COMMON = dict(mlp_ratios=(8, 8, 4, 4), down_patch_size=3, down_stride=2, down_pad=1)

_VARIANTS: dict[str, dict[str, Any]] = {
    "coc_tiny": dict(
        layers=(3, 4, 5, 2), embed_dims=(32, 64, 196, 320), heads=(4, 4, 8, 8), head_dim=(24, 24, 24, 24),
        proposal_w=(2, 2, 2, 2), proposal_h=(2, 2, 2, 2), fold_w=(8, 4, 2, 1), fold_h=(8, 4, 2, 1),
    ),
    # Same weights layout as coc_tiny; no region partition, more centres in the first two stages.
    "coc_tiny_plain": dict(
        layers=(3, 4, 5, 2), embed_dims=(32, 64, 196, 320), heads=(4, 4, 8, 8), head_dim=(24, 24, 24, 24),
        proposal_w=(4, 4, 2, 2), proposal_h=(4, 4, 2, 2), fold_w=(1, 1, 1, 1), fold_h=(1, 1, 1, 1),
    ),
    "coc_small": dict(
        layers=(2, 2, 6, 2), embed_dims=(64, 128, 320, 512), heads=(4, 4, 8, 8), head_dim=(32, 32, 32, 32),
        proposal_w=(2, 2, 2, 2), proposal_h=(2, 2, 2, 2), fold_w=(8, 4, 2, 1), fold_h=(8, 4, 2, 1),
    ),
    "coc_medium": dict(
        layers=(4, 4, 12, 4), embed_dims=(64, 128, 320, 512), heads=(6, 6, 12, 12), head_dim=(32, 32, 32, 32),
        proposal_w=(2, 2, 2, 2), proposal_h=(2, 2, 2, 2), fold_w=(8, 4, 2, 1), fold_h=(8, 4, 2, 1),
    ),
}


# -- builders -------------------------------------------------------------------------------------


def _create(variant: str, num_classes: int, **kwargs: Any) -> ContextCluster:
    return ContextCluster(**{**_COMMON, **_VARIANTS[variant], **kwargs}, num_classes=num_classes)


def coc_tiny(*, num_classes: int = 1000, **kwargs: Any) -> ContextCluster:
    return _create("coc_tiny", num_classes, **kwargs)


def coc_tiny_plain(*, num_classes: int = 1000, **kwargs: Any) -> ContextCluster:
    return _create("coc_tiny_plain", num_classes, **kwargs)


def coc_small(*, num_classes: int = 1000, **kwargs: Any) -> ContextCluster:
    return _create("coc_small", num_classes, **kwargs)


def coc_medium(*, num_classes: int = 1000, **kwargs: Any) -> ContextCluster:
    return _create("coc_medium", num_classes, **kwargs)
