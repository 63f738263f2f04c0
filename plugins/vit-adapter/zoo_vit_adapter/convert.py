"""Official ViT-Adapter ADE20K checkpoints (mmseg 0.20 ``EncoderDecoder``) -> zoo's keys.

The core has read the file safely and taken the tensors out of mmseg's ``state_dict`` container
(``meta`` goes with it). The backbone and the UPerHead are built in the official layout, so
``backbone.*`` and ``decode_head.*`` pass unchanged; SyncBatchNorm keys are BatchNorm keys.
``auxiliary_head.*`` (the FCN head of the training loss, weight 0.4) is DROPPED by name: mmseg's
inference never calls it, so zoo does not build it. Any other key passes through, so the strict
load names it as the checkpoint's fault instead of this converter guessing. Idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

__all__ = ["AUX_PREFIX", "convert_mmseg", "read_mmseg"]

AUX_PREFIX = "auxiliary_head."


def convert_mmseg(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A new dict without the auxiliary head (``state_dict`` is not changed)."""
    return {k: v for k, v in state_dict.items() if not k.startswith(AUX_PREFIX)}


def read_mmseg(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors under ``state_dict`` of an mmseg checkpoint that torch's safe loader refused.

    :raises WeightsError: one line naming the file, when it is unreadable or holds no ``state_dict``.
    """
    from zoo.errors import WeightsError
    from zoo.weights.checkpoint import unwrap
    from zoo.weights.unpickle import load

    obj = load(path)
    if not isinstance(obj, Mapping) or not isinstance(obj.get("state_dict"), Mapping):
        keys = ", ".join(map(str, list(obj)[:8])) if isinstance(obj, Mapping) else type(obj).__name__
        raise WeightsError(f"checkpoint {str(path)!r}: no mmseg 'state_dict' mapping in it (it has: {keys})")
    try:
        return unwrap(obj["state_dict"])
    except WeightsError as exc:
        raise WeightsError(f"checkpoint {str(path)!r}: {exc}") from None
