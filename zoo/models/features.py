"""Backbones as feature extractors: timm's ``features_only=True, out_indices=...`` contract.

A builder that calls ``timm.create_model`` gets the contract for free; the card's weights, though,
are the classifier's (``stages.0.blocks.0...``, ``head.fc...``) while timm's feature wrappers name
the same modules differently (``FeatureListNet`` flattens the first Sequential: ``stages_0.blocks...``;
``FeatureGetterNet`` keeps the model under ``model.``) and drop the head. :func:`remap_to_features`
maps a classifier state dict onto a feature extractor's names, so the card's weights still load
strictly for every tensor the extractor has.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from zoo.errors import UserError

if TYPE_CHECKING:
    import torch
    from torch import nn


def check_out_indices(value: Any) -> tuple[int, ...] | int:
    """``out_indices`` as timm takes it: an int (the last n stages) or a non-empty sequence of ints."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, (list, tuple)) and value and len(value) <= 64 \
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    raise UserError(f"out_indices: expected an int or a non-empty list of ints, got {type(value).__name__} {value!r}"[:200])


def _candidates(key: str) -> Iterator[str]:
    """Names ``key`` of a classifier may have in one of timm's feature wrappers."""
    yield key
    yield f"model.{key}"  # FeatureGetterNet / FeatureHookNet keep the model as a child
    parts = key.split(".")
    if len(parts) > 2:  # FeatureListNet/FeatureDictNet(flatten_sequential=True): stages.0.x -> stages_0.x
        yield "_".join(parts[:2]) + "." + ".".join(parts[2:])


def remap_to_features(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of ``state_dict`` the feature extractor ``model`` has, under its names.

    Checkpoint tensors with no place in the extractor (the classifier head, a pruned final norm) are
    left out; a tensor of the extractor that the checkpoint lacks stays missing, so a strict load
    still reports it.
    """
    own = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        for name in _candidates(key):
            if name in own and name not in out:
                out[name] = tensor
                break
    return out
