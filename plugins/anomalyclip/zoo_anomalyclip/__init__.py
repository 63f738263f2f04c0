"""zoo plugin for AnomalyCLIP (ICLR 2024): zero-shot anomaly detection with learned object-agnostic prompts.

Entry module: kept light (no torch). The network is ``zoo_anomalyclip.model`` (CLIP towers in
``zoo_anomalyclip.clip``); checkpoint conversion is ``zoo_anomalyclip.convert``: the CLIP backbone is
its own card (``clip-vit-l-14-336-openai``), and converting a prompt checkpoint merges the cached
backbone under it, so each AnomalyCLIP card's cache entry loads strictly on its own.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from zoo import hookimpl

PLUGIN = "anomalyclip"
_BUILDERS = ("anomalyclip_vit_l_14_336", "clip_vit_l_14_336")


@hookimpl
def zoo_cards() -> list[Any]:
    return [resources.files(__name__) / "cards.yaml"]


@hookimpl
def zoo_builders() -> dict[str, str]:
    return {name: f"zoo_anomalyclip.model:{name}" for name in _BUILDERS}


@hookimpl
def zoo_convert_checkpoint(card: Any, state_dict: dict[str, Any]) -> dict[str, Any] | None:
    from zoo_anomalyclip.convert import convert_checkpoint

    return convert_checkpoint(card, state_dict)
