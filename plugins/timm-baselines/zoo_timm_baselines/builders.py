"""Builders for ``timm-baselines``: each is ``timm.create_model("<arch>.<tag>", pretrained=False, ...)``.

The tag is the one of the card's weights (``MODELS``), so the model's ``pretrained_cfg`` is that tag's
(``convnext_tiny`` alone would give the default ``in12k_ft_in1k`` tag's crop 0.95, not ``fb_in1k``'s
0.875). The builder only builds; zoo's core fetches and loads the card's weights (timm's own
safetensors, whose keys are the architecture's) and sets the card's data config.
``builders.<arch>`` exists for every name in ``ARCHS``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch.nn as nn

from zoo_timm_baselines import ARCHS, MODELS

__all__ = ["build"]


def build(arch: str, *, num_classes: int = 1000, features_only: bool = False,
          out_indices: int | Sequence[int] | None = None, **kwargs: Any) -> nn.Module:
    """Build builder ``arch`` (its timm model and weights tag) with random weights; other kwargs go to timm.

    ``features_only=True`` returns timm's feature extractor of the backbone (a list of feature maps, the
    stages ``out_indices`` picks, described by its ``feature_info``), as dense heads (UPerNet) use it.
    """
    import timm

    if features_only:
        kwargs["features_only"] = True
        if out_indices is not None:
            kwargs["out_indices"] = out_indices
    elif out_indices is not None:
        raise ValueError("out_indices needs features_only=True")
    return timm.create_model(MODELS.get(arch, arch), pretrained=False, num_classes=num_classes, **kwargs)


def __getattr__(name: str) -> Callable[..., nn.Module]:
    # one builder per architecture, resolved by zoo as "zoo_timm_baselines.builders:<arch>"
    if name in ARCHS:
        builder = partial(build, name)
        builder.__doc__ = (f"Build timm's {MODELS[name]!r} (keyword-only: num_classes=1000, features_only=False, "
                           "out_indices=None, **timm kwargs).")
        return builder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r} (not one of the plugin's ARCHS)")


def __dir__() -> list[str]:
    return sorted([*__all__, *ARCHS])
