"""ViT-LLaMA: a DeiT-style ViT whose tokens pass through one frozen LLaMA-7B block before the head.

"Frozen Transformers in Language Models Are Effective Visual Encoder Layers" (Pang et al., ICLR 2024),
official code: ziqipang/LM4VisualEncoding, ``image_classification/models/{vit,llama,vit_llama}.py``.

After the 12 ViT blocks, ``llama_dim_mapper1`` (embed_dim -> 4096, no bias) lifts every token, the
frozen block runs with neither rotary embedding nor causal mask (both removed by the authors), an
RMSNorm follows (``llama.norm``: never loaded from LLaMA, it keeps its init of ones), and
``llama_dim_mapper2`` (4096 -> embed_dim) brings the tokens back before the ViT's final LayerNorm.
The block is LLaMA-7B v1's last layer (``first_layer: 31``), loaded from ``consolidated.00.pth``.

State-dict keys, shapes and order equal the official ``ViTLLaMA``'s, so the authors' checkpoint
(``checkpoint['model']``, which holds the frozen block too) loads with ``strict=True``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

__all__ = [
    "ViTLLaMA",
    "convert_official",
    "llama_block_from_consolidated",
    "vit_llama_base_patch16_224",
    "vit_llama_small_patch16_224",
    "vit_llama_tiny_patch16_224",
]

LLAMA_PATH_ENV = "ZOO_LLAMA_PATH"
LLAMA_7B = {"dim": 4096, "n_heads": 32, "multiple_of": 256, "norm_eps": 1e-6, "n_layers": 32, "first_layer": 31}
LLAMA_PREFIX = "llama.layers."
# the tensors of one LLaMA v1 layer, in our (= the official model's) state-dict order
LLAMA_LAYER_KEYS = (
    "attention.wq.weight", "attention.wv.weight", "attention.wk.weight", "attention.wo.weight",
    "feed_forward.w1.weight", "feed_forward.w2.weight", "feed_forward.w3.weight",
    "attention_norm.weight", "ffn_norm.weight",
)


# --------------------------------------------------------------------------------------------- ViT part
class DropPath(nn.Module):
    """Stochastic depth per sample (identity at eval)."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class PatchEmbed(nn.Module):
    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768) -> None:
        super().__init__()
        self.img_size = (img_size, img_size)
        self.patch_size = (patch_size, patch_size)
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(f"input size {tuple(x.shape[-2:])} does not match the model's {self.img_size}")
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, c)))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm ViT block (the official ``vit.Block`` without layer scale: ``init_values=None``)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True, drop: float = 0.0,
                 attn_drop: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        self.drop_path2 = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path1(self.attn(self.norm1(x)))
        return x + self.drop_path2(self.mlp(self.norm2(x)))


# ------------------------------------------------------------------------------------------- LLaMA part
class RMSNorm(nn.Module):
    """LLaMA's RMSNorm: normalise in float32, cast back, then scale."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


class LLaMAAttention(nn.Module):
    """Bidirectional multi-head attention of a LLaMA layer, without rotary embedding (as the authors')."""

    def __init__(self, dim: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = dim // n_heads
        # registration order wq, wv, wk, wo, as in the official file (state-dict order)
        self.wq = nn.Linear(dim, dim, bias=False)
        self.wv = nn.Linear(dim, dim, bias=False)
        self.wk = nn.Linear(dim, dim, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = (w(x).view(b, n, self.n_heads, self.head_dim).transpose(1, 2) for w in (self.wq, self.wk, self.wv))
        attn = ((q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)).float().softmax(dim=-1).type_as(q)
        return self.wo((attn @ v).transpose(1, 2).reshape(b, n, -1))


class FeedForward(nn.Module):
    """SwiGLU MLP; hidden = 2/3 * 4 * dim rounded up to ``multiple_of`` (11008 for LLaMA-7B)."""

    def __init__(self, dim: int, multiple_of: int) -> None:
        super().__init__()
        hidden = int(2 * 4 * dim / 3)
        hidden = multiple_of * ((hidden + multiple_of - 1) // multiple_of)
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class LLaMABlock(nn.Module):
    def __init__(self, dim: int, n_heads: int, multiple_of: int, norm_eps: float) -> None:
        super().__init__()
        self.attention = LLaMAAttention(dim, n_heads)
        self.feed_forward = FeedForward(dim, multiple_of)
        self.attention_norm = RMSNorm(dim, eps=norm_eps)
        self.ffn_norm = RMSNorm(dim, eps=norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x))
        return h + self.feed_forward(self.ffn_norm(h))


class FrozenLLaMA(nn.Module):
    """The tail ``n_layers - first_layer`` LLaMA layers (one for ViT-LLaMA) and an RMSNorm."""

    def __init__(self, dim: int, n_heads: int, multiple_of: int, norm_eps: float, n_layers: int,
                 first_layer: int) -> None:
        super().__init__()
        self.first_layer = first_layer
        self.layers = nn.ModuleList(
            LLaMABlock(dim, n_heads, multiple_of, norm_eps) for _ in range(first_layer, n_layers)
        )
        self.norm = RMSNorm(dim, eps=norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.norm(x).float()


# ----------------------------------------------------------------------------------------------- model
class ViTLLaMA(nn.Module):
    """DeiT ViT + frozen LLaMA block between two trainable linear maps (class token pooling)."""

    def __init__(
        self,
        *,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        llama: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        cfg = {**LLAMA_7B, **(llama or {})}
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim
        self.num_prefix_tokens = 1
        self.llama_cfg = cfg
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.Sequential(*(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, dpr[i]) for i in range(depth)
        ))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.fc_norm = nn.Identity()
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.llama = FrozenLLaMA(cfg["dim"], cfg["n_heads"], cfg["multiple_of"], cfg["norm_eps"],
                                 cfg["n_layers"], cfg["first_layer"])
        self.llama_dim_mapper1 = nn.Linear(embed_dim, cfg["dim"], bias=False)
        self.llama_dim_mapper2 = nn.Linear(cfg["dim"], embed_dim, bias=False)
        self._init_weights()
        self.llama.requires_grad_(False)  # frozen, as in the paper (its weights come from LLaMA)

    def _init_weights(self) -> None:
        """The official init (timm's ViT init applied to the whole model, the LLaMA block included)."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02, a=-2.0, b=2.0)
        nn.init.normal_(self.cls_token, std=1e-6)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02, a=-2.0, b=2.0)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"}

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = self.pos_drop(x + self.pos_embed)
        x = self.blocks(x)
        x = self.llama_dim_mapper2(self.llama(self.llama_dim_mapper1(x)))
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.fc_norm(x[:, 0])
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# ---------------------------------------------------------------------------------------- checkpoints
def llama_block_from_consolidated(path: str | Path, *, dim: int = 4096,
                                  layers: range = range(31, 32)) -> dict[str, torch.Tensor]:
    """``llama.*`` keys of our model read from a LLaMA v1 ``consolidated.00.pth`` (or its folder).

    Like the official ``custom_load_state_dict(tail=True)``: ``layers.31.X`` -> ``llama.layers.0.X``,
    cast to float32 (the file is float16; the official model keeps float32 parameters). LLaMA's own
    final ``norm.weight`` is NOT taken: the official ``llama.norm`` is never loaded and stays ones.
    The file (13 GB) is memory-mapped, so only the taken layer is read.
    """
    from zoo.errors import WeightsError

    path = Path(path).expanduser()
    if path.is_dir():  # the official --llama_path: a folder, first *.pth in sorted order
        found = sorted(path.glob("*.pth"))
        if not found:
            raise WeightsError(f"LLaMA path {str(path)!r}: folder holds no *.pth (expected consolidated.00.pth)")
        path = found[0]
    if not path.is_file():
        raise WeightsError(f"LLaMA path {str(path)!r} does not exist (expected LLaMA-7B v1 consolidated.00.pth)")
    try:
        raw = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # a legacy (non-zip) torch file cannot be memory-mapped
        raw = torch.load(str(path), map_location="cpu", weights_only=True)
    out: dict[str, torch.Tensor] = {}
    for i, layer in enumerate(layers):
        prefix = f"layers.{layer}."
        missing = [k for k in LLAMA_LAYER_KEYS if prefix + k not in raw]
        if missing:
            raise WeightsError(f"{str(path)!r} has no keys '{prefix}*' ({len(missing)} missing, e.g. "
                               f"{prefix}{missing[0]}): not a LLaMA v1 consolidated checkpoint")
        got = raw[prefix + "attention.wq.weight"].shape[0]
        if got != dim:
            raise WeightsError(f"{str(path)!r}: layer width {got}, expected {dim} (LLaMA-7B)")
        out.update({f"{LLAMA_PREFIX}{i}.{k}": raw[prefix + k].to(torch.float32).clone() for k in LLAMA_LAYER_KEYS})
    out["llama.norm.weight"] = torch.ones(dim)
    return out


def convert_official(state_dict: Mapping[str, Any], llama_path: str | Path | None = None) -> dict[str, Any]:
    """The authors' checkpoint (already unwrapped from ``{'model': ...}``) -> our keys (the same).

    The official ``main.py`` saves ``model.state_dict()``, which holds the frozen LLaMA block: then
    this is a copy. A checkpoint without the block (``llama.layers.*`` absent, e.g. one slimmed to
    the trainable weights) gets it from ``llama_path`` or the ``ZOO_LLAMA_PATH`` environment variable
    (LLaMA-7B v1 ``consolidated.00.pth`` or its folder). Pure (input untouched) and idempotent.
    """
    import torch as _torch

    out = {k: v for k, v in state_dict.items() if isinstance(v, _torch.Tensor)}
    if any(k.startswith(LLAMA_PREFIX) for k in out):
        return out
    source = llama_path or os.environ.get(LLAMA_PATH_ENV)
    if not source:
        from zoo.errors import WeightsError

        raise WeightsError(
            "this checkpoint has no frozen LLaMA block (no 'llama.layers.*' keys); set "
            f"{LLAMA_PATH_ENV} to LLaMA-7B v1's consolidated.00.pth (or its folder) and convert again"
        )
    dim = out["llama_dim_mapper1.weight"].shape[0] if "llama_dim_mapper1.weight" in out else LLAMA_7B["dim"]
    out.update(llama_block_from_consolidated(source, dim=dim))
    return out


# ------------------------------------------------------------------------------------------- builders
_VARIANTS: dict[str, dict[str, Any]] = {
    "vit_llama_tiny_patch16_224": {"embed_dim": 192, "num_heads": 3},
    "vit_llama_small_patch16_224": {"embed_dim": 384, "num_heads": 6},
    "vit_llama_base_patch16_224": {"embed_dim": 768, "num_heads": 12},
}


def _build(variant: str, num_classes: int, kwargs: dict[str, Any]) -> ViTLLaMA:
    """``kwargs``: ``img_size``, ``in_chans``, ``drop_rate``, ``drop_path_rate``, ``attn_drop_rate``, and
    ``llama`` (a dict overriding LLaMA-7B's dims, e.g. ``{"dim": 64, "n_heads": 4}`` for small tests)."""
    return ViTLLaMA(num_classes=num_classes, patch_size=16, depth=12, mlp_ratio=4.0, qkv_bias=True,
                    **_VARIANTS[variant], **kwargs)


def vit_llama_tiny_patch16_224(*, num_classes: int = 1000, **kwargs: Any) -> ViTLLaMA:
    return _build("vit_llama_tiny_patch16_224", num_classes, kwargs)


def vit_llama_small_patch16_224(*, num_classes: int = 1000, **kwargs: Any) -> ViTLLaMA:
    return _build("vit_llama_small_patch16_224", num_classes, kwargs)


def vit_llama_base_patch16_224(*, num_classes: int = 1000, **kwargs: Any) -> ViTLLaMA:
    return _build("vit_llama_base_patch16_224", num_classes, kwargs)
