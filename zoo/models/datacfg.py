"""The card's data config on every model zoo builds (timm's ``pretrained_cfg``).

``timm.data.resolve_data_config(model=m)`` reads ``m.pretrained_cfg``; a model built by zoo must
answer with the card's preprocessing (the official evaluation's, ``card.preprocess``), not with
whatever timm's default tag for the architecture says. Models that are not timm's get the same
attribute, so one recipe (``resolve_data_config`` + ``create_transform``) works for every card.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from zoo.registry.cards import Card

#: pretrained_cfg keys that would make timm resolve another setting than the card's
#: (``resolve_data_config(use_test_size=True)`` prefers them)
_STALE_KEYS = ("test_input_size", "test_crop_pct")


def card_cfg(card: Card, base: dict[str, Any] | None = None, num_classes: int | None = None) -> dict[str, Any]:
    """``base`` (a timm pretrained_cfg, or nothing) with the card's data config written over it."""
    pre = card.preprocess
    cfg = {k: v for k, v in (base or {}).items() if k not in _STALE_KEYS}
    cfg.update(
        interpolation=pre.interpolation,
        crop_pct=float(pre.crop_pct),
        crop_mode=pre.crop_mode,
        mean=tuple(float(v) for v in pre.mean),
        std=tuple(float(v) for v in pre.std),
    )
    if card.input_size is not None:  # a card without one (its task gives none) keeps the model's own
        cfg["input_size"] = tuple(card.input_size)
    classes = card.num_classes if num_classes is None else num_classes
    if classes is not None:  # no classifier (AnomalyCLIP): whatever the model says stays
        cfg["num_classes"] = classes
    cfg.setdefault("architecture", card.builder)
    return cfg


def apply_card_cfg(model: nn.Module, card: Card) -> nn.Module:
    """Set ``model.pretrained_cfg`` (and timm's alias ``default_cfg``) from ``card``; return ``model``.

    Input size, crop_pct, crop_mode, interpolation, mean and std are the card's ``preprocess``
    (per-dataset overrides stay on the card: ``card.preprocess_for(dataset)``); ``num_classes`` is
    the model's own when it has one (a builder called with ``num_classes=10``), else the card's.
    A card without ``input_size``/``num_classes`` leaves those keys as the model had them.
    Everything else timm put there (architecture, tag, hub id, classifier name) is kept.
    """
    base = getattr(model, "pretrained_cfg", None)
    own_classes = getattr(model, "num_classes", None)
    num_classes = own_classes if isinstance(own_classes, int) and not isinstance(own_classes, bool) else None
    cfg = card_cfg(card, dict(base) if isinstance(base, dict) else None, num_classes)
    try:
        model.pretrained_cfg = cfg
        model.default_cfg = cfg  # timm keeps this alias for older code
    except (AttributeError, TypeError) as exc:  # a read-only property on a plugin's own class
        from zoo.errors import ZooWarning

        warnings.warn(ZooWarning(f"model {card.name!r}: cannot set pretrained_cfg on {type(model).__name__} "
                                 f"({exc}); timm.data.resolve_data_config will not see the card's preprocessing"),
                      stacklevel=2)
    return model
