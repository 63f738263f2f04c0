"""OpenAI CLIP ViT towers (image and text) in the layout of OpenAI's state dicts.

"Learning Transferable Visual Models From Natural Language Supervision" (Radford et al., ICML 2021,
arXiv 2103.00020), official code https://github.com/openai/CLIP (MIT). Written for zoo from the
architecture as the official code defines it: pre-norm residual blocks with ``nn.MultiheadAttention``'s
parameter names (``attn.in_proj_weight``, ``attn.in_proj_bias``, ``attn.out_proj``), a QuickGELU MLP
(``mlp.c_fc``, ``mlp.c_proj``), LayerNorm eps 1e-5, heads of 64 channels, a causal text transformer
over 77 tokens. Every tensor name and shape equals OpenAI's (and so open_clip's, which keeps them),
so the Hub copy loads with ``strict=True`` (``tests/data/official_anomalyclip.json``).

The vision tower resizes its positional embedding bilinearly to the input's patch grid, as
AnomalyCLIP's ``VisionTransformer.forward`` does (it writes the resized table back into the
parameter on first use; here the parameter keeps the checkpoint's shape and the resized table is
computed on each call: the same values).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CLIP", "Transformer", "VisionTower"]

HEAD_WIDTH = 64  # OpenAI CLIP: heads = width // 64 in both towers


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x): the activation OpenAI's CLIP weights were trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class SelfAttention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s parameter names, batch first.

    ``dual`` is AnomalyCLIP's DPAM attention (its ``Attention`` class): one projection of the input,
    two outputs, the usual q-k attention and the V-V attention (``softmax(v v^T / sqrt(d)) v``), both
    through the same ``out_proj``.
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, c = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        qkv = qkv.view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]

    def _merge(self, out: torch.Tensor) -> torch.Tensor:
        b, _, n, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, -1))

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        q, k, v = self._qkv(x)
        return self._merge(F.scaled_dot_product_attention(q, k, v, is_causal=causal))

    def dual(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(q-k attention, V-V attention)`` of ``x``, each projected by ``out_proj``."""
        q, k, v = self._qkv(x)
        original = F.scaled_dot_product_attention(q, k, v)
        value_value = F.scaled_dot_product_attention(v, v, v)
        return self._merge(original), self._merge(value_value)


class ResidualBlock(nn.Module):
    """Pre-norm block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, 4 * width)),
            ("gelu", QuickGELU()),
            ("c_proj", nn.Linear(4 * width, width)),
        ]))

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), causal=causal)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """A stack of residual blocks named ``resblocks.N`` as OpenAI names them."""

    def __init__(self, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.width = width
        self.resblocks = nn.ModuleList([ResidualBlock(width, heads) for _ in range(layers)])


class VisionTower(nn.Module):
    """CLIP's ViT image tower: patchify, class token, positional embedding, ln_pre, blocks, ln_post, proj."""

    def __init__(self, image_size: int, patch_size: int, width: int, layers: int, output_dim: int) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.patch_size = patch_size
        scale = width ** -0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((image_size // patch_size) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, width // HEAD_WIDTH)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def position_table(self, grid: int) -> torch.Tensor:
        """The positional embedding for a ``grid`` x ``grid`` patch grid (bilinear, align_corners=False)."""
        table = self.positional_embedding
        side = round((table.shape[0] - 1) ** 0.5)
        if side == grid:
            return table
        patches = table[1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        patches = F.interpolate(patches, size=(grid, grid), mode="bilinear")
        return torch.cat([table[:1], patches.flatten(2).transpose(1, 2)[0]], dim=0)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, 1 + N, width)`` tokens after ``ln_pre`` (class token first)."""
        _, _, h, w = images.shape
        if h != w or h % self.patch_size:
            raise ValueError(f"expected square images whose side is a multiple of {self.patch_size}, got {h}x{w}")
        x = self.conv1(images.to(self.conv1.weight.dtype)).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.position_table(h // self.patch_size).to(x.dtype)
        return self.ln_pre(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """CLIP's image embedding: ``ln_post(class token) @ proj``, ``(B, output_dim)``."""
        x = self.embed(images)
        for block in self.transformer.resblocks:
            x = block(x)
        return self.ln_post(x[:, 0]) @ self.proj


class CLIP(nn.Module):
    """Both CLIP towers, under OpenAI's names (``visual.*``; the text tower at the top level)."""

    def __init__(
        self,
        *,
        embed_dim: int = 768,
        image_size: int = 336,
        patch_size: int = 14,
        vision_width: int = 1024,
        vision_layers: int = 24,
        context_length: int = 77,
        vocab_size: int = 49408,
        text_width: int = 768,
        text_layers: int = 12,
    ) -> None:
        super().__init__()
        self.visual = VisionTower(image_size, patch_size, vision_width, vision_layers, embed_dim)
        self.transformer = Transformer(text_width, text_layers, text_width // HEAD_WIDTH)
        self.token_embedding = nn.Embedding(vocab_size, text_width)
        self.positional_embedding = nn.Parameter(0.01 * torch.randn(context_length, text_width))
        self.ln_final = nn.LayerNorm(text_width)
        self.text_projection = nn.Parameter(text_width ** -0.5 * torch.randn(text_width, embed_dim))
        self.logit_scale = nn.Parameter(torch.full((), math.log(1 / 0.07)))
        nn.init.normal_(self.token_embedding.weight, std=0.02)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """CLIP's text embedding of BPE token ids ``(B, context_length)``: the end-of-text token's feature."""
        x = self.token_embedding(tokens) + self.positional_embedding
        for block in self.transformer.resblocks:
            x = block(x, causal=True)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)] @ self.text_projection

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings ``(B, embed_dim)``."""
        return F.normalize(self.visual(images), dim=-1)
