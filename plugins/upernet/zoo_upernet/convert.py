"""mmsegmentation 0.x checkpoints -> zoo's UPerNet keys (no mmcv, no mmseg).

The core has already read the file safely and taken the tensors out of mmseg's ``state_dict``
container (the ``meta`` entry goes with it). What is left is the segmentor's state dict:

- ``backbone.*``: Swin (official layout) and Twins-SVT (mmseg layout) are built in exactly that
  layout and pass unchanged; ConvNeXt's official names are mapped onto timm's
  (``convnext.official_to_ours``).
- ``decode_head.*``: the UPerHead, unchanged.
- ``auxiliary_head.*``: the FCN head used only for the training loss. It is DROPPED, by name:
  mmseg's inference (``EncoderDecoder.encode_decode``) never calls it, so zoo does not build it.

Every other key passes through untouched, so the core's strict load names it ("unexpected
keys: ...") as a fault of the checkpoint, in one line, instead of this converter guessing. A
checkpoint holding nothing but an auxiliary head is left as it is for the same reason (dropping
everything would be reported as this plugin's empty answer). Converting a converted dict returns
it unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["AUX_PREFIX", "convert_mmseg", "family_of"]

AUX_PREFIX = "auxiliary_head."
_FAMILIES = ("swin", "convnext", "twins_svt")


def family_of(builder: str) -> str:
    """``upernet_convnext_t`` -> ``convnext``; raises ValueError for a builder of no known family."""
    for family in _FAMILIES:
        if builder.startswith(f"upernet_{family}"):
            return family
    raise ValueError(f"builder {builder!r} is not an UPerNet builder of this plugin ({', '.join(_FAMILIES)})")


def convert_mmseg(state_dict: Mapping[str, torch.Tensor], family: str) -> dict[str, torch.Tensor] | None:
    """The converted dict (a new one; ``state_dict`` is not changed), or None when nothing but
    ``auxiliary_head.*`` is in it (the strict load then names what is missing)."""
    if family not in _FAMILIES:
        raise ValueError(f"unknown UPerNet family {family!r}; expected one of {', '.join(_FAMILIES)}")
    mapper = None
    if family == "convnext":
        from zoo_upernet.convnext import official_to_ours

        mapper = official_to_ours
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith(AUX_PREFIX):
            continue
        if mapper is not None and key.startswith("backbone."):
            new = mapper(key[len("backbone."):])
            key = key if new is None else f"backbone.{new}"
        out[key] = value
    return out or None
