"""The Python API, shaped like timm's: list, look up, build.

``zoo.list_models`` and ``zoo.get_card`` read cards only; ``zoo.create_model`` imports torch
and the card's plugin code when it is called. A facade: the code lives in :mod:`zoo.registry.lookup`
and :mod:`zoo.models.build`, and nothing inside zoo imports this module.
"""

from __future__ import annotations

from zoo.models.build import apply_patch, check_patch, create_model, get_builder, parse_patch
from zoo.registry.lookup import catalog, get_card, get_paper, hook_entries, list_models, reset

__all__ = ["apply_patch", "catalog", "check_patch", "create_model", "get_builder", "get_card", "get_paper",
           "hook_entries", "list_models", "parse_patch", "reset"]
