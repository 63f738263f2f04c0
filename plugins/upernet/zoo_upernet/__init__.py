"""zoo plugin: the UPerNet rows of FasterViT's ADE20K table (Swin-T/S/B, ConvNeXt-T/S/B, Twins-SVT-B/L).

Entry module: kept light (no torch). Builders live in ``zoo_upernet.model`` (backbones in
``swin``, ``convnext`` (timm), ``twins``; the UPerNet head in ``zoo_upernet.head``, reused by
other plugins); ``zoo_convert_checkpoint`` maps the official mmsegmentation 0.x checkpoints
(``zoo_upernet.convert``). FasterViT's rows are cards without weights.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from zoo import hookimpl

PLUGIN = "upernet"
_BUILDERS = (
    "upernet_swin_t", "upernet_swin_s", "upernet_swin_b",
    "upernet_convnext_t", "upernet_convnext_s", "upernet_convnext_b",
    "upernet_twins_svt_b", "upernet_twins_svt_l",
)


@hookimpl
def zoo_cards() -> list[Any]:
    return [resources.files(__name__) / "cards.yaml"]


@hookimpl
def zoo_builders() -> dict[str, str]:
    return {name: f"zoo_upernet.model:{name}" for name in _BUILDERS}


@hookimpl
def zoo_convert_checkpoint(card: Any, state_dict: dict[str, Any]) -> dict[str, Any] | None:
    """mmseg 0.x segmentor keys -> ours (drops the training-only ``auxiliary_head.*``)."""
    if card.plugin != PLUGIN or not card.builder.startswith("upernet_"):
        return None
    from zoo_upernet.convert import convert_mmseg, family_of

    return convert_mmseg(state_dict, family_of(card.builder))
