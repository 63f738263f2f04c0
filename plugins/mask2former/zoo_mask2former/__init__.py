"""zoo plugin ``mask2former``: Mask2Former COCO instance segmentation and the Mask Frozen-DETR table.

Entry module: kept light (no torch, no transformers). The Swin models are transformers'
``Mask2FormerForUniversalSegmentation`` configured in ``zoo_mask2former.model``; their Hub
checkpoints (written by transformers 4.x) are renamed to the installed layout by
``zoo_mask2former.convert``. The other cards of the table are card-only (``cards_coco_instance.yaml``).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from zoo import hookimpl

PLUGIN = "mask2former"
_BUILDERS = ("mask2former_swin_t", "mask2former_swin_s", "mask2former_swin_b", "mask2former_swin_l")


@hookimpl
def zoo_cards() -> list[Any]:
    return [resources.files(__name__) / "cards_coco_instance.yaml"]


@hookimpl
def zoo_builders() -> dict[str, str]:
    return {name: f"zoo_mask2former.model:{name}" for name in _BUILDERS}


@hookimpl
def zoo_convert_checkpoint(card: Any, state_dict: dict[str, Any]) -> dict[str, Any] | None:
    """Hub checkpoints of the Swin cards: transformers 4.x names -> the builder's (see convert.py)."""
    if card.builder not in _BUILDERS:
        return None
    from zoo_mask2former.convert import convert

    return convert(state_dict)
