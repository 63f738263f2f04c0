"""zoo plugin for Mobile-Former (CVPR 2022): a builder for Mobile-Former-508M.

Entry module: kept light (no torch, no timm); the model code lives in ``zoo_mobileformer.mobileformer``.
"""

from __future__ import annotations

from typing import Any

from zoo import hookimpl

PLUGIN = "mobileformer"
_MODULE = "zoo_mobileformer.mobileformer"
_BUILDERS = ("mobile_former_508m",)


@hookimpl
def zoo_builders() -> dict[str, str]:
    return {name: f"{_MODULE}:{name}" for name in _BUILDERS}


@hookimpl
def zoo_convert_checkpoint(card: Any, state_dict: dict[str, Any]) -> dict[str, Any] | None:
    """AAboys/MobileFormer checkpoints -> builder keys (same layout: a new dict, same entries)."""
    if getattr(card, "plugin", None) != PLUGIN:
        return None
    from zoo_mobileformer.mobileformer import checkpoint_filter_fn

    return checkpoint_filter_fn(state_dict)
