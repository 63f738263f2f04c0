"""The plain DeiT ViT inside ViT-Adapter, in the official checkpoint layout.

As ``TIMMVisionTransformer`` in czczup/ViT-Adapter@fd64a51 ``segmentation/mmseg_custom/models/
backbones/base/vit.py`` with the DeiT configs' arguments: 16x16 patch embedding (``patch_embed.proj``),
a learned position table for the 224x224 pretraining grid plus the class token's slot
(``pos_embed``, (1, 197, C); the class token itself is not used), pre-norm blocks with qkv bias,
LayerNorm eps 1e-6, GELU MLP and layer scales ``gamma1``/``gamma2`` (the class's default
``layer_scale=True``; DeiT has none, so they are trained from 1 during fine-tuning). No final
norm and no head: the adapter reads the blocks' tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Attention", "Block", "DropPath", "Mlp", "PatchEmbed", "resize_pos_embed"]


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a sample's residual branch with probability ``p`` (rescaled)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class Mlp(nn.Module):
    """timm's ``Mlp`` as the official blocks use it: fc1 -> GELU -> fc2 (keys ``fc1``, ``fc2``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> tokens; returns the tokens and the patch grid (H, W)."""

    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)
        h, w = x.shape[2:]
        return x.flatten(2).transpose(1, 2), h, w


class Attention(nn.Module):
    """Global multi-head self-attention (``qkv``, ``proj``)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(head_dim)) v
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """Pre-norm transformer block with layer scales: x + g1 * attn(n1(x)); x + g2 * mlp(n2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.gamma1 = nn.Parameter(torch.ones(dim))
        self.gamma2 = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.gamma1 * self.attn(self.norm1(x)))
        return x + self.drop_path(self.gamma2 * self.mlp(self.norm2(x)))


def resize_pos_embed(pos_embed: torch.Tensor, grid: int, h: int, w: int) -> torch.Tensor:
    """The pretraining grid's table (1, grid*grid, C) resized bicubically to (1, h*w, C), as the official
    ``_get_pos_embed`` does on every forward (``align_corners=False``)."""
    c = pos_embed.shape[-1]
    table = pos_embed.reshape(1, grid, grid, c).permute(0, 3, 1, 2)
    table = F.interpolate(table, size=(h, w), mode="bicubic", align_corners=False)
    return table.reshape(1, c, h * w).transpose(1, 2)
