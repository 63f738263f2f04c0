"""Checkpoint conversion: the CLIP backbone from the Hub, and AnomalyCLIP's prompts merged onto it.

AnomalyCLIP needs two files: OpenAI's CLIP ViT-L/14@336 weights (both towers) and the prompt
learner the authors trained (``checkpoints/.../epoch_15.pth``, ``{"prompt_learner": state_dict}``).
A card has one list of weight *alternatives*, so the backbone has its own card
(``clip-vit-l-14-336-openai``, cached once like any model) and converting a prompt checkpoint merges
the backbone's cached tensors under it (:func:`convert_prompts`): the AnomalyCLIP card's cache entry
is then one complete state dict that loads with ``strict=True``.

The backbone file is open_clip's ``open_clip_model.safetensors`` in the Hub repo
``timm/vit_large_patch14_clip_336.openai`` (what open_clip's ``pretrained.py`` fetches for
``ViT-L-14-336``/``openai``): open_clip keeps OpenAI's tensor names for this model, so conversion only
checks that both towers are there and drops the integer entries OpenAI's own archive carries. The
``model.safetensors`` of the same repo is timm's image tower alone (no text tower) and is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from zoo.errors import WeightsError

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["BACKBONE_CARD", "convert_checkpoint", "convert_clip", "convert_prompts"]

BACKBONE_CARD = "clip-vit-l-14-336-openai"
OPENAI_EXTRAS = ("input_resolution", "context_length", "vocab_size")  # ints in OpenAI's TorchScript archive
PROMPT_PREFIX = "prompt_learner."
# tensors every prompt checkpoint of AnomalyCLIP_PromptLearner has
PROMPT_KEYS = ("ctx_pos", "ctx_neg", "token_prefix_pos", "token_suffix_pos", "token_prefix_neg",
               "token_suffix_neg", "tokenized_prompts_pos", "tokenized_prompts_neg")
CLIP_KEYS = ("visual.proj", "visual.conv1.weight", "text_projection", "token_embedding.weight")


def convert_clip(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """open_clip's (= OpenAI's names) CLIP state dict -> this plugin's CLIP; pure and idempotent."""
    out = {k: v for k, v in state_dict.items() if k not in OPENAI_EXTRAS}
    missing = [k for k in CLIP_KEYS if k not in out]
    if missing:
        timm_layout = any(k.startswith(("patch_embed.", "blocks.")) for k in out)
        hint = (" (this is timm's image-tower-only layout; use open_clip_model.safetensors, which has both "
                "towers)") if timm_layout else ""
        raise WeightsError(f"not a CLIP ViT checkpoint with both towers: no {', '.join(missing)}{hint}")
    return out


def convert_prompts(state_dict: Mapping[str, Tensor], backbone: Callable[[], Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """An AnomalyCLIP prompt checkpoint (its ``prompt_learner`` dict) plus the CLIP ``backbone()`` -> the model's keys.

    Already converted (both towers and ``prompt_learner.*`` present): returned unchanged.
    """
    if any(k.startswith(PROMPT_PREFIX) for k in state_dict) and all(k in state_dict for k in CLIP_KEYS):
        return dict(state_dict)
    prompts = {k.removeprefix(PROMPT_PREFIX): v for k, v in state_dict.items()}
    missing = [k for k in PROMPT_KEYS if k not in prompts]
    if missing:
        raise WeightsError(f"not an AnomalyCLIP prompt checkpoint: no {', '.join(missing)} "
                           f"(it has {', '.join(sorted(prompts)[:5])}{', ...' if len(prompts) > 5 else ''})")
    stray = [k for k in prompts if "." in k and not k.startswith(("compound_prompts_text.",
                                                                   "compound_prompt_projections."))]
    if stray:
        raise WeightsError(f"not an AnomalyCLIP prompt checkpoint: unexpected tensor {stray[0]!r}")
    merged = dict(convert_clip(backbone()))
    merged.update({PROMPT_PREFIX + k: v for k, v in prompts.items()})
    return merged


def cached_backbone() -> dict[str, Tensor]:
    """The backbone card's converted tensors from zoo's cache, fetched (and verified) on first use."""
    from zoo import weights
    from zoo.errors import ZooError
    from zoo.registry import lookup
    from zoo.weights import checkpoint

    try:
        entry = weights.ensure(lookup.get_card(BACKBONE_CARD)).entry
    except ZooError as exc:
        raise WeightsError(f"AnomalyCLIP's prompts need the CLIP backbone {BACKBONE_CARD!r}: {exc}") from None
    return checkpoint.read_safetensors(entry.path)


def convert_checkpoint(card: Any, state_dict: Mapping[str, Tensor],
                       backbone: Callable[[], Mapping[str, Tensor]] = cached_backbone) -> dict[str, Tensor]:
    """``zoo_convert_checkpoint`` for this plugin's cards, by builder."""
    if card.builder == "clip_vit_l_14_336":
        return convert_clip(state_dict)
    return convert_prompts(state_dict, backbone)
