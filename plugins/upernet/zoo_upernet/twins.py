"""Twins-SVT as the backbone of mmsegmentation's re-trained UPerNet-Twins checkpoints.

Layout and numerics of mmsegmentation 0.x's ``SVT`` (``mmseg/models/backbones/twins.py``, v0.20
onwards; the checkpoints of 2021-11/12 in ``configs/twins/README.md``), not of the official
``gvt.py`` (whose ADE20K files are on Google Drive only). Per stage: a patch embedding
(``patch_embeds.i``: conv + LayerNorm, padded bottom/right to the stride), blocks alternating
locally-grouped attention (LSA, even blocks, ``attn.qkv``/``attn.proj``) and global sub-sampled
attention (GSA, odd blocks: ``torch.nn.MultiheadAttention`` under ``attn.attn``, keys/values
from a strided conv ``attn.sr`` + ``attn.norm``), a conditional position encoding after the
first block (``position_encodings.i``: depthwise 3x3 + identity), and a LayerNorm per stage
output (``norm_list.i``). FFNs keep mmcv's ``ffn.layers.0.0`` / ``ffn.layers.1`` names.

Why not timm's Twins: its keys differ (a mapping could fix that), but its locally-grouped
attention never masks the padding, while mmseg's masks padded positions (-1000) when a feature
map needs padding on both the bottom and the right. With padding on one side only, mmseg's
``mask[:, -0:, :]`` selects every row, the whole mask is 1 and nothing is masked; that quirk is
reproduced because the checkpoints were evaluated with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SVTBackbone"]


class _FFN(nn.Module):
    """mmcv ``FFN`` with two fcs: ``layers.0`` = (Linear, GELU, Dropout), ``layers.1`` = Linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.0)),
                                    nn.Linear(hidden, dim), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class _LocallyGroupedAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, window_size: int) -> None:
        super().__init__()
        self.num_heads, self.window_size = num_heads, window_size
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, c = x.shape
        ws = self.window_size
        pad_r, pad_b = (ws - w % ws) % ws, (ws - h % ws) % ws
        x = F.pad(x.view(b, h, w, c), (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = x.shape[1], x.shape[2]
        gh, gw = hp // ws, wp // ws
        mask = torch.zeros((1, hp, wp), device=x.device)
        if pad_r > 0 and pad_b > 0:  # mmseg masks only then (see the module docstring)
            mask[:, hp - pad_b:, :] = 1
            mask[:, :, wp - pad_r:] = 1
        mask = mask.reshape(1, gh, ws, gw, ws).transpose(2, 3).reshape(1, gh * gw, ws * ws)
        attn_mask = mask.unsqueeze(2) - mask.unsqueeze(3)
        attn_mask = attn_mask.masked_fill(attn_mask != 0, -1000.0).masked_fill(attn_mask == 0, 0.0)
        x = x.reshape(b, gh, ws, gw, ws, c).transpose(2, 3)
        qkv = self.qkv(x).reshape(b, gh * gw, ws * ws, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5)
        attn = ((q @ k.transpose(-2, -1)) * self.scale + attn_mask.unsqueeze(2)).softmax(dim=-1)
        x = (attn @ v).transpose(2, 3).reshape(b, gh, gw, ws, ws, c)
        x = x.transpose(2, 3).reshape(b, hp, wp, c)[:, :h, :w, :].reshape(b, n, c)
        return self.proj(x)


class _GlobalSubsampledAttention(nn.Module):
    """mmseg's ``EfficientMultiheadAttention`` with ``identity=0``: queries from every token, keys/values sub-sampled."""

    def __init__(self, dim: int, num_heads: int, sr_ratio: int) -> None:
        super().__init__()
        self.sr_ratio = sr_ratio
        self.attn = nn.MultiheadAttention(dim, num_heads, bias=True)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        kv = x
        if self.sr_ratio > 1:
            b, _, c = x.shape
            kv = self.norm(self.sr(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2))
        q, kv = x.transpose(0, 1), kv.transpose(0, 1)  # (tokens, batch, dim), as mmseg calls it
        return self.attn(query=q, key=kv, value=kv)[0].transpose(0, 1)


class _Layer(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: int, attn: nn.Module) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = attn
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = _FFN(dim, mlp_ratio * dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), h, w)
        return x + self.ffn(self.norm2(x))


class _PatchEmbed(nn.Module):
    def __init__(self, in_ch: int, dim: int, patch: int) -> None:
        super().__init__()
        self.patch = patch
        self.projection = nn.Conv2d(in_ch, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        p = self.patch
        x = self.projection(F.pad(x, (0, (p - x.shape[3] % p) % p, 0, (p - x.shape[2] % p) % p)))
        h, w = x.shape[2], x.shape[3]
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class _PosConv(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, _, c = x.shape
        feat = x.transpose(1, 2).reshape(b, c, h, w)
        return (self.proj(feat) + feat).flatten(2).transpose(1, 2)


class SVTBackbone(nn.Module):
    """Twins-SVT-B/L feature pyramid (strides 4, 8, 16, 32), keys as mmseg's ``backbone.*``."""

    def __init__(
        self,
        embed_dims: Sequence[int] = (96, 192, 384, 768),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        depths: Sequence[int] = (2, 2, 18, 2),
        mlp_ratio: int = 4,
        sr_ratios: Sequence[int] = (8, 4, 2, 1),
        window_sizes: Sequence[int] = (7, 7, 7, 7),
        patch_sizes: Sequence[int] = (4, 2, 2, 2),
    ) -> None:
        super().__init__()
        self.num_features = list(embed_dims)
        self.patch_embeds = nn.ModuleList(
            _PatchEmbed(3 if i == 0 else embed_dims[i - 1], d, patch_sizes[i]) for i, d in enumerate(embed_dims)
        )
        self.position_encodings = nn.ModuleList(_PosConv(d) for d in embed_dims)
        self.layers = nn.ModuleList()
        for k, d in enumerate(embed_dims):
            self.layers.append(nn.ModuleList(
                _Layer(d, num_heads[k], mlp_ratio,
                       _LocallyGroupedAttention(d, num_heads[k], window_sizes[k]) if i % 2 == 0
                       else _GlobalSubsampledAttention(d, num_heads[k], sr_ratios[k]))
                for i in range(depths[k])
            ))
        self.norm_list = nn.ModuleList(nn.LayerNorm(d) for d in embed_dims)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b = x.shape[0]
        outs = []
        for i, blocks in enumerate(self.layers):
            x, h, w = self.patch_embeds[i](x)
            for j, blk in enumerate(blocks):
                x = blk(x, h, w)
                if j == 0:
                    x = self.position_encodings[i](x, h, w)
            x = self.norm_list[i](x).reshape(b, h, w, -1).permute(0, 3, 1, 2).contiguous()
            outs.append(x)
        return outs
