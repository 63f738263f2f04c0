"""The card's data config on every model zoo builds (timm's ``pretrained_cfg``).

``timm.data.resolve_data_config(model=m)`` reads ``m.pretrained_cfg``; a model built by zoo must
answer with the card's preprocessing, not with whatever timm's default tag for the architecture says.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from zoo.cards import Card


def apply_card_cfg(model: nn.Module, card: Card) -> nn.Module:
    """Set ``model.pretrained_cfg`` from ``card`` (input size, crop, interpolation, mean, std)."""
    return model
