"""EdgeViT

Paper: "EdgeViTs: Competing Light-weight CNNs on Mobile Devices with Vision Transformers",
Junting Pan, Adrian Bulat, Fuwen Tan, Xiatian Zhu, Lukasz Dudziak, Hongsheng Li, Georgios Tzimiropoulos,
Brais Martinez. ECCV 2022. https://arxiv.org/abs/2205.03436

Official code: https://github.com/saic-fi/edgevit (``src/edgevit.py``, Apache-2.0). The authors
released training code only, no weights.

This file is an independent implementation written for zoo from the official model definition. Its
state-dict keys and shapes are those of the official ``EdgeVit`` (``edgevit_xxs``, ``edgevit_xs``,
``edgevit_s``), so an official checkpoint loads with ``strict=True``. How that was checked: the
official ``src/edgevit.py`` (commit df3d070) was run in a scratch directory under timm 1.0.31; its
keys and shapes are committed as ``tests/data/official_shapes.json`` (``tools/official_check.py``
regenerates them), and with the official model's random weights loaded into this one the logits
agree to float32 rounding (see README.md for the figures).

Deliberate differences from the official code, none of which changes keys or outputs:
- the input size is not fixed at construction (the official ``PatchEmbed`` asserts 224);
- ``reset_classifier`` works (the official one passes the list of stage widths to ``nn.Linear``);
- the unused ``representation_size``/``pre_logits`` option is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from timm.layers import DropPath, trunc_normal_
from torch import nn

__all__ = ["EdgeViT", "checkpoint_filter_fn", "edgevit_xxs", "edgevit_xs", "edgevit_s", "VARIANTS"]


# -- blocks ---------------------------------------------------------------------------------------


class ConvMlp(nn.Module):
    """Pointwise-conv MLP on NCHW maps (official name ``CMlp``)."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Mlp(nn.Module):
    """Token MLP on (B, N, C)."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class LocalAgg(nn.Module):
    """Local aggregation: BN -> 1x1 -> depthwise 5x5 -> 1x1, then a conv MLP (the first 'L' of LGL)."""

    def __init__(self, dim: int, mlp_ratio: float, drop: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        # registration order follows the official module so state-dict keys come out in the same order
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.BatchNorm2d(dim)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        self.conv2 = nn.Conv2d(dim, dim, 1)
        self.attn = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)  # official name for the 5x5 dw conv
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = ConvMlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embed(x)
        x = x + self.drop_path(self.conv2(self.attn(self.conv1(self.norm1(x)))))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class SparseAttention(nn.Module):
    """Global sparse attention: subsample by ``sr``, attend, propagate back with a transposed dw conv.

    Official name ``GlobalSparseAttn``. The subsampler is a 1x1 average pool of stride ``sr``, i.e. it
    keeps one token in every ``sr x sr`` window ("delegates"); ``LocalProp`` spreads each delegate's
    output over its window again.
    """

    def __init__(self, dim: int, num_heads: int, sr_ratio: int, qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.sr = sr_ratio
        self.scale = (dim // num_heads) ** -0.5
        self.attn_drop = nn.Dropout(attn_drop)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        if sr_ratio > 1:
            self.sampler = nn.AvgPool2d(1, sr_ratio)
            self.LocalProp = nn.ConvTranspose2d(dim, dim, sr_ratio, stride=sr_ratio, groups=dim)
            self.norm = nn.LayerNorm(dim)  # default eps 1e-5, as in the official code
        else:
            self.sampler = nn.Identity()
            self.norm = nn.Identity()

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        B, N, C = x.shape
        H, W = size
        if self.sr > 1:
            x = self.sampler(x.transpose(1, 2).reshape(B, C, H, W))
            H, W = x.shape[-2:]
            x = x.flatten(2).transpose(1, 2)
        q, k, v = self.qkv(x).reshape(B, -1, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        # explicit softmax(q k^T * scale) v rather than F.scaled_dot_product_attention: the sequences
        # are short (<= 196 delegates at 224^2), and torch's FlopCounterMode counts no FLOPs for the
        # CPU SDPA kernel (torch 2.14), which would hide the attention from the MACs zoo reports
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        x = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(B, -1, C)
        if self.sr > 1:
            x = self.LocalProp(x.transpose(1, 2).reshape(B, C, H, W))
            x = self.norm(x.flatten(2).transpose(1, 2))
        return self.proj_drop(self.proj(x))


class SelfAttnBlock(nn.Module):
    """Conditional position encoding, then a pre-norm transformer block over the (sparse) tokens."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, sr_ratio: int, qkv_bias: bool = True,
                 drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SparseAttention(dim, num_heads, sr_ratio, qkv_bias, attn_drop, drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embed(x)
        B, C, H, W = x.shape
        x = x.flatten(2).transpose(1, 2)
        x = x + self.drop_path(self.attn(self.norm1(x), (H, W)))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x.transpose(1, 2).reshape(B, C, H, W)


class LGLBlock(nn.Module):
    """Local-Global-Local bottleneck. Stages with ``sr_ratio == 1`` have no local aggregation."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, sr_ratio: int, qkv_bias: bool = True,
                 drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        # attribute names are the official ones (CamelCase): they are the checkpoint's key prefixes
        self.LocalAgg = LocalAgg(dim, mlp_ratio, drop, drop_path) if sr_ratio > 1 else nn.Identity()
        self.SelfAttn = SelfAttnBlock(dim, num_heads, mlp_ratio, sr_ratio, qkv_bias, drop, attn_drop, drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.SelfAttn(self.LocalAgg(x))


class PatchEmbed(nn.Module):
    """Strided conv, then LayerNorm over channels; NCHW in and out."""

    def __init__(self, in_chans: int, dim: int, patch_size: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Conv2d(in_chans, dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous()


# -- model ----------------------------------------------------------------------------------------


class EdgeViT(nn.Module):
    """Four stages of LGL blocks, each after a patch embedding (stride 4, 2, 2, 2)."""

    def __init__(
        self,
        depths: Sequence[int] = (1, 1, 3, 2),
        embed_dims: Sequence[int] = (36, 72, 144, 288),
        head_dim: int = 36,
        mlp_ratio: float = 4.0,
        sr_ratios: Sequence[int] = (4, 2, 2, 1),
        qkv_bias: bool = True,
        in_chans: int = 3,
        num_classes: int = 1000,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_features = embed_dims[-1]
        self.drop_rate = drop_rate
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        in_dims = (in_chans, *embed_dims[:-1])
        # official names patch_embed1..4 / blocks1..4 (flat attributes, not a stage list), registered
        # in the official order so the state dict lists keys the same way
        for i, dim in enumerate(embed_dims):
            setattr(self, f"patch_embed{i + 1}", PatchEmbed(in_dims[i], dim, 4 if i == 0 else 2))
        self.pos_drop = nn.Dropout(drop_rate)
        for i, (depth, dim, sr) in enumerate(zip(depths, embed_dims, sr_ratios, strict=True)):
            start = sum(depths[:i])
            setattr(self, f"blocks{i + 1}", nn.ModuleList([
                LGLBlock(dim, dim // head_dim, mlp_ratio, sr, qkv_bias, drop_rate, attn_drop_rate, dpr[start + j])
                for j in range(depth)
            ]))
        self.norm = nn.BatchNorm2d(self.num_features)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # as the official model: trunc-normal Linear, unit LayerNorm; convs keep PyTorch defaults
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, C, H/32, W/32), after the final BatchNorm."""
        for i in range(1, 5):
            x = getattr(self, f"patch_embed{i}")(x)
            if i == 1:
                x = self.pos_drop(x)
            for blk in getattr(self, f"blocks{i}"):
                x = blk(x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.flatten(2).mean(-1)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# -- checkpoints ----------------------------------------------------------------------------------


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official checkpoint -> this model's keys.

    The layouts are identical, so this returns a new dict with the same entries. The official
    training script (DeiT's ``main.py``) saves ``{'model': ..., 'optimizer': ..., 'model_ema': ...}``;
    the zoo core unwraps that container before calling here.
    """
    return dict(state_dict)


# -- variants and builders ------------------------------------------------------------------------


@dataclass(frozen=True)
class EdgeViTConfig:
    depths: tuple[int, int, int, int]
    embed_dims: tuple[int, int, int, int]
    head_dim: int  # heads per stage = width // head_dim


# values from the official builders edgevit_xxs / edgevit_xs / edgevit_s (src/edgevit.py)
VARIANTS: dict[str, EdgeViTConfig] = {
    "edgevit_xxs": EdgeViTConfig(depths=(1, 1, 3, 2), embed_dims=(36, 72, 144, 288), head_dim=36),
    "edgevit_xs": EdgeViTConfig(depths=(1, 1, 3, 1), embed_dims=(48, 96, 240, 384), head_dim=48),
    "edgevit_s": EdgeViTConfig(depths=(1, 2, 5, 3), embed_dims=(48, 96, 240, 384), head_dim=48),
}


def _create(variant: str, **kwargs) -> EdgeViT:
    cfg = VARIANTS[variant]
    return EdgeViT(depths=cfg.depths, embed_dims=cfg.embed_dims, head_dim=cfg.head_dim, **kwargs)


def edgevit_xxs(*, num_classes: int = 1000, **kwargs) -> EdgeViT:
    return _create("edgevit_xxs", num_classes=num_classes, **kwargs)


def edgevit_xs(*, num_classes: int = 1000, **kwargs) -> EdgeViT:
    return _create("edgevit_xs", num_classes=num_classes, **kwargs)


def edgevit_s(*, num_classes: int = 1000, **kwargs) -> EdgeViT:
    return _create("edgevit_s", num_classes=num_classes, **kwargs)
