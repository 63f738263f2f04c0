"""Mobile-Former

Paper: "Mobile-Former: Bridging MobileNet and Transformer", Yinpeng Chen, Xiyang Dai, Dongdong Chen,
Mengchen Liu, Xiaoyi Dong, Lu Yuan, Zicheng Liu. CVPR 2022. https://arxiv.org/abs/2108.05895

Microsoft released no code. The reference used here is the PyTorch port github.com/AAboys/MobileFormer
(``mobile_former.py`` + ``dna_blocks.py``, timm 0.3.4 based, no license file), whose README table
(508M MACs, 14.0M params, 79.3 top-1, and the other six sizes) is the paper's and which links
ImageNet checkpoints on Google Drive. This file is an independent implementation written for zoo: its
state-dict keys and shapes are that port's, so its checkpoints load with ``strict=True``.

How fidelity was checked: the port's two model files were run in a scratch directory under timm
1.0.31 (``tools/official_check.py`` sets up the import shims); its keys and shapes are committed as
``tests/data/official_shapes.json``, and with the port's random weights loaded into this model the
logits agree to float32 rounding (figures in README.md).

What the architecture is (paper Sec. 3, port's names in brackets): a MobileNet stream of inverted
bottlenecks whose ReLUs are dynamic ReLUs driven by the first global token [HyperFunc, DyReLU], and a
Former stream of 6 global tokens of width 192; per block a light cross-attention Mobile->Former
[Local2Global], a token self-attention + FFN [GlobalBlock] and a cross-attention Former->Mobile
[Global2Local]. Downsampling blocks use dw(expand) -> pw -> dw(expand) -> pw [DnaBlock3]. The head
concatenates the pooled 1x1-expanded features with the first token [MergeClassifier].

Only the configuration the released sizes use is implemented (attention bridges without local
projections, dynamic Mobile->Former, token FFN, dynamic ReLU on the expansions, ``group_num=1``); the
port's unused options (MLP bridges, grouped/max/separable depthwise convs, per-pixel hyper functions)
are left out, so mobile-former-26m (``group_num=4``) is not offered.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch import nn

__all__ = ["MobileFormer", "checkpoint_filter_fn", "VARIANTS", "mobile_former_508m"]


# -- dynamic ReLU -----------------------------------------------------------------------------------


class HyperFunc(nn.Module):
    """First global token -> 2 x C coefficients in [0, 1] for a dynamic ReLU."""

    def __init__(self, token_dim: int, out: int, reduction: int = 4) -> None:
        super().__init__()
        self.hyper = nn.Sequential(
            nn.Linear(token_dim, token_dim // reduction), nn.ReLU(inplace=True),
            nn.Linear(token_dim // reduction, out), nn.Hardsigmoid(),
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.hyper(tokens[:, 0])[:, :, None, None]


def dynamic_relu(x: torch.Tensor, coefs: torch.Tensor) -> torch.Tensor:
    """max(a1 x, a2 x) with slopes a1 in [0, 2] and a2 in [-1, 1] (DY-ReLU-B, two pieces)."""
    a1, a2 = coefs.chunk(2, dim=1)
    return torch.maximum(x * ((a1 - 0.5) * 2.0 + 1.0), x * ((a2 - 0.5) * 2.0))


def _conv_bn(inp: int, out: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(inp, out, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(out)]


# -- bridges and the Former -----------------------------------------------------------------------


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, T, C) -> (B, heads, T, C / heads)."""
    B, T, C = x.shape
    return x.view(B, T, heads, C // heads).transpose(1, 2)


class Mobile2Former(nn.Module):
    """Tokens attend to the feature map; keys and values are the raw features (no projection)."""

    def __init__(self, channels: int, token_dim: int, heads: int = 2, dynamic: bool = True,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (channels // heads) ** -0.5
        self.dynamic = dynamic
        if dynamic:  # per-channel gate from the tokens, scaled to [0, 2]
            self.alpha = nn.Sequential(nn.Linear(token_dim, channels), nn.Hardsigmoid())
        self.q = nn.Linear(token_dim, channels)
        self.proj = nn.Linear(channels, token_dim)
        self.layer_norm = nn.LayerNorm(token_dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        q = _heads(self.q(tokens), self.heads)                       # B, h, T, C/h
        kv = x.reshape(B, self.heads, C // self.heads, H * W)        # B, h, C/h, HW
        attn = ((q @ kv) * self.scale).softmax(dim=-1)
        out = (attn @ kv.transpose(-1, -2)).transpose(1, 2).reshape(B, -1, C)
        if self.dynamic:
            out = out * (self.alpha(tokens) * 2.0)
        return self.layer_norm(tokens + self.drop_path(self.proj(out)))


class Former(nn.Module):
    """Post-norm transformer block over the global tokens; keys and values are the tokens themselves."""

    def __init__(self, token_dim: int, heads: int = 4, ffn_ratio: int = 2, drop_path: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (token_dim // heads) ** -0.5
        # registered in the port's order (ffn first) so the state dict lists keys the same way
        self.ffn = nn.Sequential(
            nn.Linear(token_dim, token_dim * ffn_ratio), nn.GELU(), nn.Linear(token_dim * ffn_ratio, token_dim)
        )
        self.ffn_norm = nn.LayerNorm(token_dim)
        self.q = nn.Linear(token_dim, token_dim)
        self.channel_mlp = nn.Linear(token_dim, token_dim)
        self.layer_norm = nn.LayerNorm(token_dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        B, T, D = tokens.shape
        q = _heads(self.q(tokens), self.heads)                       # B, h, T, D/h
        kv = _heads(tokens, self.heads)                              # B, h, T, D/h
        attn = ((q @ kv.transpose(-1, -2)) * self.scale).softmax(dim=-1)
        out = (attn @ kv).transpose(1, 2).reshape(B, T, D)
        tokens = self.layer_norm(tokens + self.drop_path(self.channel_mlp(out)))
        return self.ffn_norm(tokens + self.ffn(tokens))


class Former2Mobile(nn.Module):
    """Every pixel attends to the tokens; the queries are the raw features (no projection)."""

    def __init__(self, channels: int, token_dim: int, heads: int = 2, drop_path: float = 0.0) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (channels // heads) ** -0.5
        self.k = nn.Linear(token_dim, channels)
        self.proj = nn.Linear(token_dim, channels)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        q = x.reshape(B, self.heads, C // self.heads, H * W).transpose(-1, -2)   # B, h, HW, C/h
        k = _heads(self.k(tokens), self.heads)                                    # B, h, T, C/h
        v = _heads(self.proj(tokens), self.heads)                                 # B, h, T, C/h
        attn = ((q @ k.transpose(-1, -2)) * self.scale).softmax(dim=-1)           # B, h, HW, T
        out = (attn @ v).transpose(-1, -2).reshape(B, C, H, W)
        return x + self.drop_path(out)


# -- Mobile-Former blocks -------------------------------------------------------------------------


class _Bridged(nn.Module):
    """Adds the Mobile->Former, Former and Former->Mobile parts every full block carries."""

    def _add_bridges(self, inp: int, out: int, token_dim: int, drop_path: float) -> None:
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.local_global = Mobile2Former(inp, token_dim, drop_path=drop_path)
        self.global_block = Former(token_dim, drop_path=drop_path)
        self.global_local = Former2Mobile(out, token_dim, drop_path=drop_path)


class ConvBlock(nn.Module):
    """Token-free first block: dw 3x3 (channel multiplier e1) -> ReLU6 -> pw (port: DnaBlock3, e2=0)."""

    def __init__(self, inp: int, out: int, stride: int, expand: int) -> None:
        super().__init__()
        self.identity = stride == 1 and inp == out
        self.conv = nn.Sequential(
            *_conv_bn(inp, inp * expand, 3, stride, groups=inp), nn.ReLU6(inplace=True),
            nn.Identity(),  # the port's (empty) channel-shuffle slot keeps index 3
            *_conv_bn(inp * expand, out),
        )

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.conv(x)
        return (out + x if self.identity else out), tokens


class BottleneckBlock(_Bridged):
    """pw (e1) -> dyReLU -> dw 3x3 -> dyReLU -> pw, bridged to the tokens (port: DnaBlock)."""

    def __init__(self, inp: int, out: int, stride: int, expand: int, token_dim: int,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.identity = stride == 1 and inp == out
        hidden = round(inp * expand)
        self.conv1 = nn.Sequential(*_conv_bn(inp, hidden), nn.Identity())
        self.hyper1 = HyperFunc(token_dim, hidden * 2)
        self.conv2 = nn.Sequential(*_conv_bn(hidden, hidden, 3, stride, groups=hidden))
        self.hyper2 = HyperFunc(token_dim, hidden * 2)
        self.conv3 = nn.Sequential(*_conv_bn(hidden, out), nn.Identity())
        self._add_bridges(inp, out, token_dim, drop_path)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.global_block(self.local_global(x, tokens))
        out = dynamic_relu(self.conv1(x), self.hyper1(tokens))
        out = dynamic_relu(self.conv2(out), self.hyper2(tokens))
        out = self.conv3(out)
        if self.identity:
            out = self.drop_path(out) + x
        return self.global_local(out, tokens), tokens


class DownsampleBlock(_Bridged):
    """dw 3x3 (x e1, strided) -> dyReLU -> pw -> dw 3x3 (x e2) -> dyReLU -> pw (port: DnaBlock3).

    The second half is residual around the first half's output; the Former->Mobile bridge comes
    after it and the block's own skip (only when shapes allow) last.
    """

    def __init__(self, inp: int, out: int, stride: int, expand: int, expand2: int, token_dim: int,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.identity = stride == 1 and inp == out
        hidden1, hidden2 = round(inp * expand), round(out * expand2)
        self.conv1 = nn.Sequential(*_conv_bn(inp, hidden1, 3, stride, groups=inp), nn.Identity())
        self.hyper1 = HyperFunc(token_dim, hidden1 * 2)
        self.conv2 = nn.Sequential(*_conv_bn(hidden1, out))
        self.conv3 = nn.Sequential(*_conv_bn(out, hidden2, 3, 1, groups=out), nn.Identity())
        self.hyper3 = HyperFunc(token_dim, hidden2 * 2)
        self.conv4 = nn.Sequential(*_conv_bn(hidden2, out))
        self._add_bridges(inp, out, token_dim, drop_path)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.global_block(self.local_global(x, tokens))
        mid = self.conv2(dynamic_relu(self.conv1(x), self.hyper1(tokens)))
        out = self.conv4(dynamic_relu(self.conv3(mid), self.hyper3(tokens)))
        out = self.global_local(self.drop_path(out) + mid, tokens)
        return (out + x if self.identity else out), tokens


class MergeHead(nn.Module):
    """1x1 expansion -> ReLU6 -> pool -> h-swish, concatenated with token 0 -> FC -> BN -> h-swish -> FC."""

    def __init__(self, inp: int, expand: int, token_dim: int, num_features: int, num_classes: int,
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        hidden = inp * expand
        self.conv = nn.Sequential(nn.Identity(), *_conv_bn(inp, hidden))  # index 0: port's shuffle slot
        self.fc = nn.Sequential(nn.Linear(hidden + token_dim, num_features), nn.BatchNorm1d(num_features),
                                nn.Hardswish())
        self.classifier = nn.Sequential(nn.Dropout(drop_rate), _linear_or_identity(num_features, num_classes))

    def forward(self, x: torch.Tensor, tokens: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = F.hardswish(F.adaptive_avg_pool2d(F.relu6(self.conv(x)), 1).flatten(1))
        x = self.fc(torch.cat([x, tokens[:, 0]], dim=1))
        return x if pre_logits else self.classifier(x)


def _linear_or_identity(inp: int, out: int) -> nn.Module:
    return nn.Linear(inp, out) if out > 0 else nn.Identity()


# -- model ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockCfg:
    kind: str  # "conv" (token-free first block), "bottleneck" (DnaBlock), "down" (DnaBlock3)
    expand: int  # e1
    out: int  # output channels
    stride: int
    expand2: int = 0  # e2, "down" blocks only


class MobileFormer(nn.Module):
    """Stem, then Mobile-Former blocks carrying (feature map, tokens), a last Mobile->Former bridge, head."""

    def __init__(
        self,
        blocks: Sequence[BlockCfg],
        stem_chs: int = 24,
        token_num: int = 6,
        token_dim: int = 192,
        num_features: int = 1920,
        head_expand: int = 6,
        in_chans: int = 3,
        num_classes: int = 1000,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_features = num_features
        self.tokens = nn.Embedding(token_num, token_dim)  # the learned initial global tokens
        self.stem = nn.Sequential(*_conv_bn(in_chans, stem_chs, 3, 2), nn.ReLU6(inplace=True))
        layers: list[nn.Module] = []
        chs = stem_chs
        for i, cfg in enumerate(blocks):
            dpr = drop_path_rate * (i + 1) / len(blocks)  # the port's linear rule, per block
            if cfg.kind == "conv":
                layers.append(ConvBlock(chs, cfg.out, cfg.stride, cfg.expand))
            elif cfg.kind == "bottleneck":
                layers.append(BottleneckBlock(chs, cfg.out, cfg.stride, cfg.expand, token_dim, dpr))
            elif cfg.kind == "down":
                layers.append(DownsampleBlock(chs, cfg.out, cfg.stride, cfg.expand, cfg.expand2, token_dim, dpr))
            else:
                raise ValueError(f"block {i}: unknown kind {cfg.kind!r} (expected conv, bottleneck or down)")
            chs = cfg.out
        self.features = nn.ModuleList(layers)
        self.local_global = Mobile2Former(chs, token_dim, drop_path=drop_path_rate)
        self.classifier = MergeHead(chs, head_expand, token_dim, num_features, num_classes, drop_rate)
        self._init_weights()

    def _init_weights(self) -> None:
        # as the port: He-normal convs (fan-out), N(0, 0.01) linears; the tokens keep N(0, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def get_classifier(self) -> nn.Module:
        return self.classifier.classifier[1]

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.classifier.classifier[1] = _linear_or_identity(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) -> (feature map (B, C, H/32, W/32), tokens (B, T, D)).

        Both go to the head (it concatenates pooled features with the first token), so this returns
        the pair, and :meth:`forward_head` takes the pair.
        """
        # a copy, not an expand(): a view of a parameter made under no_grad has requires_grad but no
        # grad_fn, which torch's module tracker (used by FlopCounterMode) rejects
        tokens = self.tokens.weight.unsqueeze(0).repeat(x.shape[0], 1, 1)
        x = self.stem(x)
        for block in self.features:
            x, tokens = block(x, tokens)
        return x, self.local_global(x, tokens)

    def forward_head(self, x: tuple[torch.Tensor, torch.Tensor], pre_logits: bool = False) -> torch.Tensor:
        features, tokens = x
        return self.classifier(features, tokens, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# -- checkpoints ----------------------------------------------------------------------------------


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """AAboys/MobileFormer checkpoint -> this model's keys.

    The port trains with timm's ``train.py``, whose checkpoints hold ``state_dict`` (and
    ``state_dict_ema``); the zoo core unwraps those and strips ``module.``. The layouts are identical,
    so this returns a new dict with the same entries.
    """
    return dict(state_dict)


# -- variants and builders ------------------------------------------------------------------------


@dataclass(frozen=True)
class MobileFormerConfig:
    blocks: tuple[BlockCfg, ...]
    stem_chs: int
    num_features: int
    token_num: int = 6
    token_dim: int = 192


def _blocks(rows: Sequence[tuple[str, int, int, int, int]]) -> tuple[BlockCfg, ...]:
    # rows as in the port's tables: (block, e1, channels, stride, e2); "DnaBlock3" with e2 == 0 is the
    # token-free conv block
    kinds = {"DnaBlock": "bottleneck", "DnaBlock3": "down"}
    return tuple(
        BlockCfg("conv" if (b == "DnaBlock3" and e2 == 0) else kinds[b], e1, c, s, e2) for b, e1, c, s, e2 in rows
    )


# AAboys/MobileFormer mobile_former.py, mobile_former_508m (rows: block, e1, channels, stride, e2). It
# builds 13.98 M params and 0.498 GMACs (torch FlopCounterMode), against the paper's 14.0 M / 508 M.
VARIANTS: dict[str, MobileFormerConfig] = {
    "mobile_former_508m": MobileFormerConfig(
        blocks=_blocks([
            ("DnaBlock3", 2, 24, 1, 0),
            ("DnaBlock3", 6, 40, 2, 4), ("DnaBlock", 3, 40, 1, 3),
            ("DnaBlock3", 6, 72, 2, 4), ("DnaBlock", 3, 72, 1, 3),
            ("DnaBlock3", 6, 128, 2, 4), ("DnaBlock", 4, 128, 1, 4),
            ("DnaBlock", 6, 176, 1, 4), ("DnaBlock", 6, 176, 1, 4),
            ("DnaBlock3", 6, 240, 2, 4), ("DnaBlock", 6, 240, 1, 4), ("DnaBlock", 6, 240, 1, 4),
        ]),
        stem_chs=24,
        num_features=1920,
    ),
}


def _create(variant: str, **kwargs) -> MobileFormer:
    cfg = VARIANTS[variant]
    return MobileFormer(cfg.blocks, stem_chs=cfg.stem_chs, token_num=cfg.token_num, token_dim=cfg.token_dim,
                        num_features=cfg.num_features, **kwargs)


def mobile_former_508m(*, num_classes: int = 1000, **kwargs) -> MobileFormer:
    return _create("mobile_former_508m", num_classes=num_classes, **kwargs)
