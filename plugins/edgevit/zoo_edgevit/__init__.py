"""zoo plugin for EdgeViT (ECCV 2022): builders for EdgeViT-XXS / XS / S.

Entry module: kept light (no torch, no timm); the model code lives in ``zoo_edgevit.edgevit``.
"""

from __future__ import annotations

from typing import Any

from zoo import hookimpl

PLUGIN = "edgevit"
_MODULE = "zoo_edgevit.edgevit"
_BUILDERS = ("edgevit_xxs", "edgevit_xs", "edgevit_s")


@hookimpl
def zoo_builders() -> dict[str, str]:
    return {name: f"{_MODULE}:{name}" for name in _BUILDERS}


@hookimpl
def zoo_convert_checkpoint(card: Any, state_dict: dict[str, Any]) -> dict[str, Any] | None:
    """Official saic-fi/edgevit checkpoints -> builder keys (same layout: a new dict, same entries)."""
    if getattr(card, "plugin", None) != PLUGIN:
        return None
    from zoo_edgevit.edgevit import checkpoint_filter_fn

    return checkpoint_filter_fn(state_dict)
