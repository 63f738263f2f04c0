"""zoo plugin: ViT-LLaMA (Frozen Transformers in Language Models Are Effective Visual Encoder Layers, ICLR 2024).

Entry module: imports nothing heavy. The model code lives in ``zoo_vit_llama.vit_llama`` and is
imported only when a model is built or a checkpoint converted.
"""

from __future__ import annotations

from typing import Any

from zoo import hookimpl

PLUGIN = "vit-llama"

_BUILDERS = {
    name: f"zoo_vit_llama.vit_llama:{name}"
    for name in ("vit_llama_tiny_patch16_224", "vit_llama_small_patch16_224", "vit_llama_base_patch16_224")
}


@hookimpl
def zoo_builders() -> dict[str, str]:
    return dict(_BUILDERS)


@hookimpl
def zoo_convert_checkpoint(card: Any, state_dict: dict[str, Any]) -> dict[str, Any] | None:
    """The authors' DeiT-style checkpoint (``{'model': ...}``) -> ours; fills a missing frozen LLaMA
    block from ``ZOO_LLAMA_PATH`` (LLaMA-7B v1 ``consolidated.00.pth``)."""
    if getattr(card, "plugin", None) != PLUGIN:
        return None
    from zoo_vit_llama.vit_llama import convert_official

    return convert_official(state_dict)
