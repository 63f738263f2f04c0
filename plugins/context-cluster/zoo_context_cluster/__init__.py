"""zoo plugin for Context Cluster (CoC), "Image as Set of Points" (ICLR 2023).

Entry module: light on purpose (no torch, no timm). The model code lives in
:mod:`zoo_context_cluster.context_cluster` and is imported only when a model is built or a checkpoint
converted.
"""

from __future__ import annotations

from typing import Any

from zoo import hookimpl

PLUGIN = "context-cluster"
_MODULE = "zoo_context_cluster.context_cluster"
BUILDERS = ("coc_tiny", "coc_tiny_plain", "coc_small", "coc_medium")


@hookimpl
def zoo_builders() -> dict[str, str]:
    return {name: f"{_MODULE}:{name}" for name in BUILDERS}


@hookimpl
def zoo_convert_checkpoint(card: Any, state_dict: dict[str, Any]) -> dict[str, Any] | None:
    """Convert checkpoints for this plugin's cards only; ``None`` for anyone else's."""
    if getattr(card, "plugin", None) != PLUGIN:
        return None
    from zoo_context_cluster.context_cluster import convert_official

    return convert_official(state_dict)
