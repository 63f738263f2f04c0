"""zoo plugin ``tome``: Token Merging (Bolya et al., ICLR 2023) as a patch on timm ViTs.

Entry module: imports no torch/timm. The patch lives in ``zoo_tome.patch``, the builders of the
paper's models in ``zoo_tome.models``.
"""

from __future__ import annotations

from zoo import hookimpl

_BUILDERS = (
    "vit_small_patch16_224_tome",
    "vit_base_patch16_224_tome",
    "vit_large_patch16_224_tome",
    "vit_large_patch16_384_tome",
    "deit_small_patch16_224_tome",
    "deit_tiny_patch16_224_tome",
    "mae_vit_base_patch16_tome",
    "mae_vit_large_patch16_tome",
    "mae_vit_huge_patch14_tome",
)


@hookimpl
def zoo_patches() -> dict[str, str]:
    return {"tome": "zoo_tome.patch:apply"}


@hookimpl
def zoo_builders() -> dict[str, str]:
    return {name: f"zoo_tome.models:{name}" for name in _BUILDERS}
