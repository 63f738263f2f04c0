"""Builders for the models of the ToMe paper: timm ViT/DeiT architectures with the ToMe patch applied.

The architectures are timm's; ToMe adds no parameters, so official checkpoints load with their
own keys:

- off-the-shelf AugReg ViTs (ToMe README, "Using timm models"): timm ``vit_*`` architectures;
- ToMe-trained DeiT-S / DeiT-Ti (README, trained with facebookresearch/deit): timm
  ``deit_{small,tiny}_patch16_224``; the DeiT code saves ``{'model': state_dict, ...}`` with
  timm's key names;
- ToMe-trained MAE ViT-B/L/H (README, "Training with MAE"): facebookresearch/mae ``models_vit.py``
  with ``global_pool=True`` subclasses timm's ViT, adds ``fc_norm`` and deletes ``norm``. That is
  timm's ``global_pool='avg', fc_norm=True`` layout (``norm`` is Identity there): same keys and
  shapes, LayerNorm eps 1e-6 in both, so no key conversion is needed.

Each builder returns the patched model with the paper's ``r`` and ``prop_attn``; pass ``r=0`` for
the unmerged baseline. Other keyword arguments go to ``timm.create_model``.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

__all__ = ["VARIANTS", "build"]

_MAE = {"global_pool": "avg", "fc_norm": True}

#: builder name -> (timm architecture, timm kwargs, r, prop_attn) with r and prop_attn as in the ToMe README
VARIANTS: dict[str, tuple[str, dict[str, Any], int, bool]] = {
    # off-the-shelf: tome.patch.timm defaults to prop_attn=True
    "vit_small_patch16_224_tome": ("vit_small_patch16_224", {}, 13, True),
    "vit_base_patch16_224_tome": ("vit_base_patch16_224", {}, 13, True),
    "vit_large_patch16_224_tome": ("vit_large_patch16_224", {}, 7, True),
    "vit_large_patch16_384_tome": ("vit_large_patch16_384", {}, 23, True),
    # trained with ToMe; README: "patch it with the timm patch (prop_attn=True)"
    "deit_small_patch16_224_tome": ("deit_small_patch16_224", {}, 13, True),
    "deit_tiny_patch16_224_tome": ("deit_tiny_patch16_224", {}, 13, True),
    # MAE fine-tuned with ToMe; README: "we used prop_attn=True when patching with ToMe"
    "mae_vit_base_patch16_tome": ("vit_base_patch16_224", _MAE, 16, True),
    "mae_vit_large_patch16_tome": ("vit_large_patch16_224", _MAE, 8, True),
    "mae_vit_huge_patch14_tome": ("vit_huge_patch14_224", _MAE, 7, True),
}


def build(name: str, *, num_classes: int = 1000, r: int | None = None, prop_attn: bool | None = None,
          **kwargs: Any) -> nn.Module:
    """Build variant ``name`` with random weights and patch it (``r``/``prop_attn`` override the paper's)."""
    import timm

    from zoo_tome.patch import apply

    arch, arch_kwargs, default_r, default_prop = VARIANTS[name]
    model = timm.create_model(arch, pretrained=False, num_classes=num_classes, **{**arch_kwargs, **kwargs})
    return apply(
        model,
        r=default_r if r is None else r,
        prop_attn=default_prop if prop_attn is None else prop_attn,
    )


def vit_small_patch16_224_tome(*, num_classes: int = 1000, **kwargs: Any) -> nn.Module:
    return build("vit_small_patch16_224_tome", num_classes=num_classes, **kwargs)


def vit_base_patch16_224_tome(*, num_classes: int = 1000, **kwargs: Any) -> nn.Module:
    return build("vit_base_patch16_224_tome", num_classes=num_classes, **kwargs)


def vit_large_patch16_224_tome(*, num_classes: int = 1000, **kwargs: Any) -> nn.Module:
    return build("vit_large_patch16_224_tome", num_classes=num_classes, **kwargs)


def vit_large_patch16_384_tome(*, num_classes: int = 1000, **kwargs: Any) -> nn.Module:
    return build("vit_large_patch16_384_tome", num_classes=num_classes, **kwargs)


def deit_small_patch16_224_tome(*, num_classes: int = 1000, **kwargs: Any) -> nn.Module:
    return build("deit_small_patch16_224_tome", num_classes=num_classes, **kwargs)


def deit_tiny_patch16_224_tome(*, num_classes: int = 1000, **kwargs: Any) -> nn.Module:
    return build("deit_tiny_patch16_224_tome", num_classes=num_classes, **kwargs)


def mae_vit_base_patch16_tome(*, num_classes: int = 1000, **kwargs: Any) -> nn.Module:
    return build("mae_vit_base_patch16_tome", num_classes=num_classes, **kwargs)


def mae_vit_large_patch16_tome(*, num_classes: int = 1000, **kwargs: Any) -> nn.Module:
    return build("mae_vit_large_patch16_tome", num_classes=num_classes, **kwargs)


def mae_vit_huge_patch14_tome(*, num_classes: int = 1000, **kwargs: Any) -> nn.Module:
    return build("mae_vit_huge_patch14_tome", num_classes=num_classes, **kwargs)
