"""EfficientMod: Efficient Modulation for Vision Networks.

Paper: Xu Ma, Xiyang Dai, Jianwei Yang, Bin Xiao, Yinpeng Chen, Yun Fu, Lu Yuan,
"Efficient Modulation for Vision Networks", ICLR 2024. arXiv: https://arxiv.org/abs/2403.19963
Official code: https://github.com/ma-xu/EfficientMod (``models/EfficientMod.py``), Apache-2.0.

This is an independent implementation written for zoo from the official code's structure. Its
state-dict keys and shapes equal the official model's, so official checkpoints load with
``strict=True`` after :func:`convert_official` (which only removes containers and prefixes).

Fidelity was checked against the official file run under timm 1.0.31 (see the plugin README):
identical key sets and shapes for all four variants (``tests/data/official_shapes.json`` is the
manifest generated from the official code), and identical logits in eval mode when the official
model's random-init state dict is loaded into this one.

The network works channels-last (``B, H, W, C``) inside, like the official one: every block is
LayerNorm + linear layers, and only the 7x7 depthwise context convolution and the strided patch
embeddings go through ``B, C, H, W``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "EfficientMod",
    "convert_official",
    "efficientmod_xxs",
    "efficientmod_xs",
    "efficientmod_s",
    "efficientmod_s_conv",
]


# -- blocks ---------------------------------------------------------------------------------------


class DropPath(nn.Module):
    """Stochastic depth per sample (training only); identity in eval mode."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)


class PatchEmbed(nn.Module):
    """Strided convolution + LayerNorm; channels-last in and out (the stem takes ``B, C, H, W``)."""

    def __init__(self, in_chans: int, embed_dim: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel, stride=stride, padding=padding)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor, channels_last: bool = True) -> Tensor:
        if channels_last:
            x = x.permute(0, 3, 1, 2)
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class ContextLayer(nn.Module):
    """The context branch ``g(GELU(DWConv7x7(f(x))))`` that modulates the value projection."""

    def __init__(self, dim: int, conv_dim: int, kernel: int = 7) -> None:
        super().__init__()
        self.f = nn.Linear(dim, conv_dim)
        self.g = nn.Linear(conv_dim, dim)
        self.act = nn.GELU()
        # a list of one conv: the official code allows several kernel sizes summed; every released
        # variant uses a single 7x7, and the list index is part of the checkpoint keys
        self.context_list = nn.ModuleList(
            [nn.Conv2d(conv_dim, conv_dim, kernel, padding=kernel // 2, groups=conv_dim)]
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.f(x).permute(0, 3, 1, 2)
        ctx = sum(self.act(conv(x)) for conv in self.context_list)
        return self.g(ctx.permute(0, 2, 3, 1))


class ModulationMlp(nn.Module):
    """EfficientMod's fused MLP: ``fc2(act(fc1(x)) * repeat(ctx(x), ratio))``.

    With ``ratio == 1`` the value path has no activation (the official ``expand_dim=False`` case).
    """

    def __init__(self, dim: int, ratio: int, kernel: int = 7) -> None:
        super().__init__()
        hidden = dim * ratio
        self.ratio = ratio
        self.fc1 = nn.Linear(dim, hidden)
        self.context_layer = ContextLayer(dim, hidden // ratio, kernel)
        self.act = nn.GELU() if ratio != 1 else nn.Identity()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        ctx = self.context_layer(x)
        x = self.act(self.fc1(x))
        if self.ratio != 1:
            ctx = ctx.repeat(1, 1, 1, self.ratio)
        return self.fc2(x * ctx)


class EfficientModBlock(nn.Module):
    """Pre-norm residual block ``x + gamma_1 * mlp(norm(x))`` with a learned layer scale."""

    def __init__(self, dim: int, ratio: int, drop_path: float = 0.0, layer_scale: float = 1e-4) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mlp = ModulationMlp(dim, ratio)
        self.gamma_1 = nn.Parameter(torch.full((dim,), layer_scale))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.drop_path(self.gamma_1 * self.mlp(self.norm(x)))


class Attention(nn.Module):
    """Multi-head self-attention with 8 heads of at least 32 channels (official ``head_dim`` rule)."""

    def __init__(self, dim: int, num_heads: int = 8) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = max(dim // num_heads, 32)
        inner = num_heads * self.head_dim
        self.qkv = nn.Linear(dim, inner * 3, bias=False)
        self.proj = nn.Linear(inner, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, -1))


class AttentionMlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class AttentionBlock(nn.Module):
    """A plain pre-norm transformer block (no layer scale), run on the flattened token grid."""

    def __init__(self, dim: int, mlp_ratio: float, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim)
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = AttentionMlp(dim, int(dim * mlp_ratio))
        self.drop_path2 = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        x = x.reshape(b, h * w, c)
        x = x + self.drop_path1(self.attn(self.norm1(x)))
        x = x + self.drop_path2(self.mlp(self.norm2(x)))
        return x.reshape(b, h, w, c)


class EfficientModStage(nn.Module):
    """EfficientMod blocks, then attention blocks, then (except in the last stage) a downsample."""

    def __init__(
        self,
        dim: int,
        out_dim: int | None,
        ratios: Sequence[int],
        attn_depth: int,
        attn_ratio: float,
        drop_paths: Sequence[float],
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = [
            EfficientModBlock(dim, r, drop_path=dp) for r, dp in zip(ratios, drop_paths, strict=False)
        ]
        blocks += [AttentionBlock(dim, attn_ratio, dp) for dp in drop_paths[len(ratios):]]
        if len(blocks) != len(ratios) + attn_depth:
            raise ValueError(f"expected {len(ratios) + attn_depth} drop-path rates, got {len(drop_paths)}")
        self.blocks = nn.ModuleList(blocks)
        self.downsample = PatchEmbed(dim, out_dim, 3, 2, 1) if out_dim is not None else None

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x


# -- model ----------------------------------------------------------------------------------------


class EfficientMod(nn.Module):
    """EfficientMod image classifier with timm's interface.

    :param embed_dims: channels of the four stages.
    :param depths: EfficientMod blocks per stage; block ``i`` uses ratio ``(1, expand_ratio)[i % 2]``.
    :param attn_depths: attention blocks appended to each stage (0 for the pure-conv variant).
    :param attn_ratios: MLP ratio of those attention blocks, per stage.
    """

    def __init__(
        self,
        *,
        embed_dims: Sequence[int],
        depths: Sequence[int],
        expand_ratio: int,
        attn_depths: Sequence[int] = (0, 0, 0, 0),
        attn_ratios: Sequence[float] = (4, 4, 4, 4),
        in_chans: int = 3,
        num_classes: int = 1000,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = embed_dims[-1]
        self.patch_embed = PatchEmbed(in_chans, embed_dims[0], 7, 4, 3)

        n_blocks = [d + a for d, a in zip(depths, attn_depths, strict=True)]
        total = sum(n_blocks)  # stochastic depth grows linearly over all blocks (python floats, so
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]  # meta builds work)
        self.layers = nn.ModuleList()
        for i, (dim, depth) in enumerate(zip(embed_dims, depths, strict=True)):
            start = sum(n_blocks[:i])
            self.layers.append(EfficientModStage(
                dim,
                embed_dims[i + 1] if i + 1 < len(embed_dims) else None,
                ratios=[(1, expand_ratio)[j % 2] for j in range(depth)],
                attn_depth=attn_depths[i],
                attn_ratio=attn_ratios[i],
                drop_paths=rates[start:start + n_blocks[i]],
            ))
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # as the official code: truncated normal for Linear only (its `isinstance(m, nn.Linear or
        # nn.Conv2d)` never matches convs, which keep PyTorch's default init)
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        if global_pool not in (None, "avg"):
            raise ValueError(f"EfficientMod supports global_pool='avg' only, got {global_pool!r}")
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: Tensor) -> Tensor:
        """``B, 3, H, W`` -> normalised last-stage map ``B, C, H/32, W/32``."""
        x = self.patch_embed(x, channels_last=False)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x).permute(0, 3, 1, 2)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = x.mean(dim=(2, 3))
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


# -- checkpoint conversion ------------------------------------------------------------------------

# A checkpoint written by the official train.py (timm's CheckpointSaver, train.py:1120-1130) holds
# the raw weights under 'state_dict' and, with the README's --model-ema, the EMA copy under
# 'state_dict_ema'. Which one a card evaluates is the core's one rule (zoo.weights.checkpoint.WRAPPERS and
# the card's weights_key), never this plugin's choice: the README's evaluation command
# (README.md:45-48) runs validate.py without --use-ema, and validate.py:172-173 calls
# load_checkpoint(model, args.checkpoint, args.use_ema), so the official number is the 'state_dict'
# weights, which is also the core's default.


def convert_official(state_dict: Mapping[str, Any], weights_key: str | None = None) -> dict[str, Any]:
    """Official EfficientMod checkpoint -> this implementation's keys (pure, idempotent).

    The architectures share their parameter names, so converting means only: take the weights out
    of a training checkpoint's container by the core's rule (:func:`zoo.weights.checkpoint.unwrap`: the
    card's ``weights_key``, else ``state_dict`` before ``state_dict_ema``), drop a DataParallel
    ``module.`` prefix, and keep tensors (``epoch`` and the like never reach the model).
    """
    from zoo.weights.checkpoint import unwrap

    return {re.sub(r"^module\.", "", key): value for key, value in unwrap(state_dict, weights_key).items()}


# -- variants -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Variant:
    embed_dims: tuple[int, int, int, int]
    depths: tuple[int, int, int, int]
    expand_ratio: int  # ratio of every second EfficientMod block (the others use 1)
    attn_depths: tuple[int, int, int, int]
    attn_ratios: tuple[float, float, float, float]
    drop_path_rate: float  # fixed in the official builders, which ignore the caller's value


# from the official builders efficientMod_xxs / _xs / _s / _s_Conv in models/EfficientMod.py
_VARIANTS: dict[str, _Variant] = {
    "xxs": _Variant((32, 64, 128, 256), (2, 2, 6, 2), 6, (0, 0, 1, 2), (4, 4, 4, 4), 0.0),
    "xs": _Variant((32, 64, 144, 288), (3, 3, 4, 2), 4, (0, 0, 3, 3), (4, 4, 4, 4), 0.0),
    "s": _Variant((32, 64, 144, 312), (4, 4, 8, 4), 6, (0, 0, 4, 4), (4, 4, 4, 5), 0.02),
    "s_conv": _Variant((40, 80, 160, 344), (4, 4, 12, 8), 6, (0, 0, 0, 0), (4, 4, 4, 4), 0.02),
}


def _create(variant: str, **kwargs: Any) -> EfficientMod:
    cfg = _VARIANTS[variant]
    kwargs.setdefault("drop_path_rate", cfg.drop_path_rate)
    return EfficientMod(
        embed_dims=cfg.embed_dims,
        depths=cfg.depths,
        expand_ratio=cfg.expand_ratio,
        attn_depths=cfg.attn_depths,
        attn_ratios=cfg.attn_ratios,
        **kwargs,
    )


# -- builders -------------------------------------------------------------------------------------


def efficientmod_xxs(*, num_classes: int = 1000, **kwargs: Any) -> EfficientMod:
    """EfficientMod-xxs (4.7 M params, hybrid: attention in stages 3-4)."""
    return _create("xxs", num_classes=num_classes, **kwargs)


def efficientmod_xs(*, num_classes: int = 1000, **kwargs: Any) -> EfficientMod:
    """EfficientMod-xs (6.6 M params, hybrid)."""
    return _create("xs", num_classes=num_classes, **kwargs)


def efficientmod_s(*, num_classes: int = 1000, **kwargs: Any) -> EfficientMod:
    """EfficientMod-s (12.9 M params, hybrid)."""
    return _create("s", num_classes=num_classes, **kwargs)


def efficientmod_s_conv(*, num_classes: int = 1000, **kwargs: Any) -> EfficientMod:
    """EfficientMod-s-Conv (12.9 M params, pure convolutional modulation, no attention)."""
    return _create("s_conv", num_classes=num_classes, **kwargs)
