"""zoo plugin: ViT-Adapter-T/S/B + UPerNet on ADE20K (Chen et al., ICLR 2023; czczup/ViT-Adapter).

Entry module: kept light (no torch). Builders live in ``zoo_vit_adapter.model`` (backbone in
``backbone``, ``adapter``, ``vit``; deformable attention in plain PyTorch in ``msda``; the UPerNet
head comes from zoo-upernet); ``zoo_read_checkpoint`` reads official mmseg checkpoints whose meta
holds numpy scalars, ``zoo_convert_checkpoint`` maps their keys (both in ``zoo_vit_adapter.convert``).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from zoo import hookimpl

PLUGIN = "vit-adapter"
_BUILDERS = ("vit_adapter_t", "vit_adapter_s", "vit_adapter_b")


@hookimpl
def zoo_cards() -> list[Any]:
    return [resources.files(__name__) / "cards.yaml"]


@hookimpl
def zoo_builders() -> dict[str, str]:
    return {name: f"zoo_vit_adapter.model:{name}" for name in _BUILDERS}


@hookimpl
def zoo_read_checkpoint(card: Any, path: Any) -> dict[str, Any] | None:
    """An mmseg checkpoint whose meta torch's safe loader refused (numpy scalars): its ``state_dict`` only."""
    if card.plugin != PLUGIN:
        return None
    from zoo_vit_adapter.convert import read_mmseg

    return read_mmseg(path)


@hookimpl
def zoo_convert_checkpoint(card: Any, state_dict: dict[str, Any]) -> dict[str, Any] | None:
    """mmseg segmentor keys -> ours (drops the training-only ``auxiliary_head.*``)."""
    if card.plugin != PLUGIN:
        return None
    from zoo_vit_adapter.convert import convert_mmseg

    return convert_mmseg(state_dict)
