"""zoo plugin for FasterViT (Hatamizadeh et al., ICLR 2024), built by the official `fastervit` package.

Light by contract: no torch, timm or fastervit import here; the builders module imports them.
"""

from __future__ import annotations

from zoo import hookimpl

ARCHS = [f"faster_vit_{n}_224" for n in range(7)] + [f"faster_vit_4_21k_{size}" for size in (224, 384, 512, 768)]


@hookimpl
def zoo_builders() -> dict[str, str]:
    return {arch: f"zoo_fastervit.builders:{arch}" for arch in ARCHS}


@hookimpl
def zoo_convert_checkpoint(card, state_dict):
    if card.plugin != "fastervit":
        return None
    from zoo_fastervit.builders import convert_official

    return convert_official(state_dict)
