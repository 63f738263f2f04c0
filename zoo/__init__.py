"""zoo: a plugin-based registry of published vision models.

The public API mirrors timm's: :func:`list_models`, :func:`get_card`, :func:`create_model`,
plus :func:`evaluate` and :func:`benchmark`. Importing ``zoo`` is cheap: nothing heavy (torch,
timm) is imported until a model is built.
"""

from __future__ import annotations

from typing import Any

from zoo._version import __version__
from zoo.registry.hookspecs import hookimpl

__all__ = [
    "__version__",
    "hookimpl",
    "list_models",
    "get_card",
    "get_paper",
    "create_model",
    "evaluate",
    "benchmark",
]

_LAZY = {
    "list_models": "zoo.registry.lookup",
    "get_card": "zoo.registry.lookup",
    "get_paper": "zoo.registry.lookup",
    "create_model": "zoo.models.build",
    "evaluate": "zoo.eval.evaluation",
    "benchmark": "zoo.measure.bench",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
