"""Token Merging (ToMe) as a patch on timm 1.0 Vision Transformers.

Method: Bolya et al., "Token Merging: Your ViT but Faster", ICLR 2023 (arXiv 2210.09461);
official code facebookresearch/ToMe (``tome/patch/timm.py``, ``tome/patch/mae.py``; CC-BY-NC 4.0).
This is zoo's own implementation against timm 1.0.31. Differences from the official patch:

- attention stays fused (``scaled_dot_product_attention``); proportional attention is the additive
  mask ``log(size)``, and the matching metric (keys averaged over heads) is read from ``k``, so
  the N x N attention matrix is never materialised;
- the block applies timm's LayerScale (``ls1``/``ls2``), ``q_norm``/``k_norm``, the attention's
  ``norm``/gate and drop-path exactly as ``timm.models.vision_transformer.Block`` does (the
  official patch drops LayerScale and q/k norm);
- average pooling (``global_pool='avg'``, the MAE fine-tuned models) is weighted by token size,
  as the official MAE patch does; class-token pooling is unchanged;
- the merge state (sizes, sources) is passed from block to block by the model's own loop
  instead of a dict shared by the blocks, and only the patched instance changes class.

Only exactly ``VisionTransformer`` / ``VisionTransformerDistilled`` with plain ``Block`` and
``Attention`` modules are accepted; anything else is refused with ``zoo.errors.PatchError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import Attention
from timm.models.deit import VisionTransformerDistilled
from timm.models.vision_transformer import Block, VisionTransformer

from zoo_tome.merge import bipartite_soft_matching, merge_source, merge_tokens

__all__ = ["apply", "ToMeConfig", "token_schedule"]

_POOLS = ("token", "avg")


@dataclass
class ToMeConfig:
    """Options of one patched model (``model._tome``).

    The defaults are the official ``tome.patch.timm.apply_patch``'s (facebookresearch/ToMe
    ``tome/patch/timm.py``: ``trace_source=False, prop_attn=True``, then ``model.r = 0``). The MAE
    patch (``tome.patch.mae``) defaults to ``prop_attn=False`` for off-the-shelf MAE models, but the
    README says the ToMe-trained MAE checkpoints were evaluated with ``prop_attn=True``.
    """

    r: int = 0  #: tokens merged in every block (constant schedule)
    prop_attn: bool = True  #: add log(token size) to the attention logits (proportional attention)
    trace_source: bool = False  #: keep ``model.tome_source`` (B, N_out, N_in) after each forward


def _to_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise _patch_error(f"option {name} must be an integer, got {value!r}")
    try:
        number = int(str(value).strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise _patch_error(f"option {name} must be an integer, got {value!r}") from None
    if number != value and not isinstance(value, str):
        raise _patch_error(f"option {name} must be an integer, got {value!r}")
    if number < 0:
        raise _patch_error(f"option {name} must be >= 0, got {number}")
    return number


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _to_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _patch_error(f"option {name} must be a boolean (true/false/1/0), got {value!r}")


def _patch_error(message: str) -> Exception:
    from zoo.errors import PatchError  # the core's error type; imported when needed

    return PatchError(f"tome: {message}")


def token_schedule(n_tokens: int, depth: int, r: int, protected: int = 1) -> list[int]:
    """Token count entering each block, plus the final count (``depth + 1`` numbers)."""
    counts = [n_tokens]
    for _ in range(depth):
        n_tokens -= max(0, min(r, (n_tokens - protected) // 2))
        counts.append(n_tokens)
    return counts


def _check_supported(model: Any) -> None:
    name = type(model).__name__
    if type(model) not in _PATCHED and type(model) not in _PATCHED.values():
        raise _patch_error(
            f"{name} is not supported: ToMe patches timm VisionTransformer / VisionTransformerDistilled "
            "(vit_*, deit_*) models only"
        )
    if getattr(model, "num_reg_tokens", 0):
        raise _patch_error(f"{name} with {model.num_reg_tokens} register tokens is not supported")
    if getattr(model, "attn_pool", None) is not None or model.global_pool not in _POOLS:
        raise _patch_error(
            f"{name} with global_pool={model.global_pool!r} is not supported (only 'token' and 'avg')"
        )
    for i, block in enumerate(model.blocks):
        if type(block) is not Block:
            raise _patch_error(
                f"{name}: blocks.{i} is a {type(block).__name__}; only timm's plain pre-norm Block is supported"
            )
        if type(block.attn) is not Attention:
            raise _patch_error(
                f"{name}: blocks.{i}.attn is a {type(block.attn).__name__}; only timm's Attention is supported"
            )


def _attention(attn: Attention, x: torch.Tensor, size: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """timm ``Attention.forward`` with a log-size bias; also returns the keys averaged over heads."""
    batch, n_tokens, _ = x.shape
    gate = attn.gate(x).sigmoid() if attn.gate is not None else None
    qkv = attn.qkv(x).reshape(batch, n_tokens, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    bias = None if size is None else size.log().to(q.dtype).transpose(1, 2)[:, None]  # (B, 1, 1, N)
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=bias, dropout_p=attn.attn_drop.p if attn.training else 0.0
    )
    out = attn.norm(out.transpose(1, 2).reshape(batch, n_tokens, attn.attn_dim))
    if gate is not None:
        out = out * gate
    out = attn.proj_drop(attn.proj(out))
    return out, k.mean(dim=1)


class _ToMeMixin:
    """Methods of the patched model classes (mixed in before the timm class)."""

    _tome: ToMeConfig
    tome_size: torch.Tensor | None
    tome_source: torch.Tensor | None

    @property
    def r(self) -> int:
        """Tokens merged per block; settable like the official patch's ``model.r``."""
        return self._tome.r

    @r.setter
    def r(self, value: Any) -> None:
        self._tome.r = _to_int("r", value)

    def forward_features(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> torch.Tensor:
        if attn_mask is not None or is_causal:
            raise _patch_error("attn_mask / is_causal cannot be combined with token merging")
        cfg = self._tome
        x = self.patch_embed(x)
        x = self._pos_embed(x)
        x = self.patch_drop(x)
        x = self.norm_pre(x)
        class_token = self.cls_token is not None
        distill_token = getattr(self, "dist_token", None) is not None
        size = source = None
        for block in self.blocks:
            attn_out, metric = _attention(block.attn, block.norm1(x), size if cfg.prop_attn else None)
            x = x + block.drop_path1(block.ls1(attn_out))
            matching = bipartite_soft_matching(metric, cfg.r, class_token, distill_token)
            if matching is not None:
                if cfg.trace_source:
                    source = merge_source(matching, source, x)
                x, size = merge_tokens(matching, x, size)
            x = x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))
        self.tome_size = size
        self.tome_source = source
        return self.norm(x)

    def pool(self, x: torch.Tensor, pool_type: str | None = None) -> torch.Tensor:
        pool_type = self.global_pool if pool_type is None else pool_type
        size = getattr(self, "tome_size", None)
        if pool_type != "avg" or size is None or size.shape[:2] != x.shape[:2]:
            return super().pool(x, pool_type)
        if not self.pool_include_prefix:
            x, size = x[:, self.num_prefix_tokens:], size[:, self.num_prefix_tokens:]
        # each merged token stands for `size` patches: average over patches, not over tokens
        return (x * size).sum(dim=1) / size.sum(dim=1)


class ToMeVisionTransformer(_ToMeMixin, VisionTransformer):
    """A timm ``VisionTransformer`` patched with ToMe (set by :func:`apply`, never built directly)."""


class ToMeVisionTransformerDistilled(_ToMeMixin, VisionTransformerDistilled):
    """A timm DeiT ``VisionTransformerDistilled`` patched with ToMe; the distillation token is kept."""


_PATCHED: dict[type, type] = {
    VisionTransformer: ToMeVisionTransformer,
    VisionTransformerDistilled: ToMeVisionTransformerDistilled,
}


def apply(model: Any, *, r: Any = None, prop_attn: Any = None, trace_source: Any = None) -> Any:
    """Patch ``model`` (in place) with Token Merging and return it.

    :param model: a timm ``VisionTransformer`` (or DeiT ``VisionTransformerDistilled``) with plain
        ``Block``/``Attention`` modules, class-token or average pooling and no register tokens.
    :param r: tokens merged in every block (constant schedule; at most half of the mergeable
        tokens merge in one block). ``r=0`` leaves the outputs unchanged. Default 0.
    :param prop_attn: proportional attention (add ``log(size)`` to the attention logits). Default
        True, as the official ``tome.patch.timm``; the ToMe-trained checkpoints use it too.
    :param trace_source: keep ``model.tome_source`` (which input tokens each output token covers).
        Default False.
    Options may be given as strings (``"13"``, ``"true"``), as the CLI passes them. An option left
    out (``None``) takes the official default on a first patch; applying the patch again to a
    patched model changes only the options given (``--patch tome:r=8`` on a card patched with
    ``prop_attn=true`` keeps it).
    :raises zoo.errors.PatchError: the model is not one ToMe supports, or an option is invalid.
    """
    _check_supported(model)
    current = getattr(model, "_tome", None) if type(model) in _PATCHED.values() else None
    base = current if isinstance(current, ToMeConfig) else ToMeConfig()
    config = ToMeConfig(
        r=base.r if r is None else _to_int("r", r),
        prop_attn=base.prop_attn if prop_attn is None else _to_bool("prop_attn", prop_attn),
        trace_source=base.trace_source if trace_source is None else _to_bool("trace_source", trace_source),
    )
    model.__class__ = _PATCHED.get(type(model), type(model))
    model._tome = config
    model.tome_size = None
    model.tome_source = None
    return model
