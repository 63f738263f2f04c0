"""zoo plugin: EfficientMod (Efficient Modulation for Vision Networks, ICLR 2024).

Entry module: imports nothing heavy. The model code lives in ``zoo_efficientmod.efficientmod``
and is imported only when a model is built or a checkpoint converted.
"""

from __future__ import annotations

from typing import Any

from zoo import hookimpl

PLUGIN = "efficientmod"

_BUILDERS = {
    name: f"zoo_efficientmod.efficientmod:{name}"
    for name in ("efficientmod_xxs", "efficientmod_xs", "efficientmod_s", "efficientmod_s_conv")
}


@hookimpl
def zoo_builders() -> dict[str, str]:
    return dict(_BUILDERS)


@hookimpl
def zoo_convert_checkpoint(card: Any, state_dict: dict[str, Any]) -> dict[str, Any] | None:
    """Official checkpoints (timm CheckpointSaver files from the authors' Google Drive) -> ours."""
    if getattr(card, "plugin", None) != PLUGIN:
        return None
    from zoo_efficientmod.efficientmod import convert_official

    return convert_official(state_dict)
