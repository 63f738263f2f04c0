"""Multi-scale deformable attention (Deformable DETR, Zhu et al., ICLR 2021) in plain PyTorch.

ViT-Adapter's injector and extractor use Deformable DETR's ``MSDeformAttn`` (czczup/ViT-Adapter@fd64a51
``detection/ops/modules/ms_deform_attn.py``, with a ``ratio`` that narrows the value projection).
The official module always calls a compiled CUDA op; its numerics are defined by the pure-PyTorch
reference ``ms_deform_attn_core_pytorch`` next to it (``detection/ops/functions/ms_deform_attn_func.py``):
every sampling point is read from its level by ``F.grid_sample`` (bilinear, zero padding,
``align_corners=False``) and the samples are summed with softmax weights. That reference is what
:func:`ms_deform_attn` computes, so the module runs anywhere torch does, with no compiled op.

State-dict keys are the official ones: ``sampling_offsets``, ``attention_weights``, ``value_proj``,
``output_proj``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MSDeformAttn", "ms_deform_attn"]


def ms_deform_attn(
    value: torch.Tensor,
    shapes: Sequence[tuple[int, int]],
    locations: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """Sample ``value`` at ``locations`` and sum with ``weights``.

    :param value: (N, S, M, D): the flattened levels, S = sum of H_l * W_l, M heads of D channels.
    :param shapes: (H_l, W_l) of each level, in the order they are concatenated in ``value``.
    :param locations: (N, Q, M, L, P, 2): (x, y) in [0, 1] of each of P points per level.
    :param weights: (N, Q, M, L, P): attention weight of each point.
    :returns: (N, Q, M * D).
    """
    n, _, m, d = value.shape
    q, levels, points = locations.shape[1], locations.shape[3], locations.shape[4]
    if levels != len(shapes):
        raise ValueError(f"ms_deform_attn: {levels} levels in the sampling locations, {len(shapes)} level shapes")
    grids = locations.mul(2).sub(1)  # grid_sample's coordinates: -1 and 1 are the outer pixel edges
    out = value.new_zeros(n * m, d, q)
    start = 0
    for level, (h, w) in enumerate(shapes):
        # (N, HW, M, D) -> (N*M, D, H, W)
        feat = value[:, start:start + h * w].permute(0, 2, 3, 1).reshape(n * m, d, h, w)
        start += h * w
        grid = grids[:, :, :, level].transpose(1, 2).reshape(n * m, q, points, 2)
        sampled = F.grid_sample(feat, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        wl = weights[:, :, :, level].transpose(1, 2).reshape(n * m, 1, q, points)
        out = out + (sampled * wl).sum(-1)  # (N*M, D, Q)
    return out.view(n, m * d, q).transpose(1, 2)


class MSDeformAttn(nn.Module):
    """``MSDeformAttn(d_model, n_levels, n_heads, n_points, ratio)`` with the official keys and init.

    ``ratio`` narrows the value projection to ``int(d_model * ratio)`` channels (ViT-Adapter-B: 0.5).
    """

    def __init__(self, d_model: int = 256, n_levels: int = 4, n_heads: int = 8, n_points: int = 4,
                 ratio: float = 1.0) -> None:
        super().__init__()
        value_dim = int(d_model * ratio)
        if d_model % n_heads or value_dim % n_heads:
            raise ValueError(f"MSDeformAttn: d_model {d_model} (value width {value_dim}) is not divisible "
                             f"by n_heads {n_heads}")
        self.d_model, self.n_levels, self.n_heads, self.n_points = d_model, n_levels, n_heads, n_points
        self.value_dim = value_dim
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, value_dim)
        self.output_proj = nn.Linear(value_dim, d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Deformable DETR's init: offsets start on a ring of directions, one per head, at distance 1..P."""
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * math.pi / self.n_heads)
        ring = torch.stack([angles.cos(), angles.sin()], -1)
        ring = ring / ring.abs().max(-1, keepdim=True).values
        steps = torch.arange(1, self.n_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        bias = ring.view(self.n_heads, 1, 1, 2) * steps
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(bias.expand(-1, self.n_levels, -1, -1).reshape(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.zeros_(self.value_proj.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(self, query: torch.Tensor, reference: torch.Tensor, feat: torch.Tensor,
                shapes: Sequence[tuple[int, int]]) -> torch.Tensor:
        """Attend from ``query`` (N, Q, C) to ``feat`` (N, S, C) around ``reference`` (1 or N, Q, 1 or L, 2)."""
        n, q, _ = query.shape
        if feat.shape[1] != sum(h * w for h, w in shapes):
            raise ValueError(f"MSDeformAttn: {feat.shape[1]} input tokens, levels {list(shapes)} hold "
                             f"{sum(h * w for h, w in shapes)}")
        heads, levels, points = self.n_heads, self.n_levels, self.n_points
        value = self.value_proj(feat).view(n, feat.shape[1], heads, self.value_dim // heads)
        offsets = self.sampling_offsets(query).view(n, q, heads, levels, points, 2)
        weights = self.attention_weights(query).view(n, q, heads, levels * points).softmax(-1)
        weights = weights.view(n, q, heads, levels, points)
        # offsets are in pixels of each level: divide by (W_l, H_l)
        size = torch.tensor([[w, h] for h, w in shapes], dtype=query.dtype, device=query.device)
        locations = reference[:, :, None, :, None, :] + offsets / size[None, None, None, :, None, :]
        return self.output_proj(ms_deform_attn(value, shapes, locations, weights))
