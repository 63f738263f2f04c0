"""FasterViT builders: the official implementation (PyPI `fastervit` 1.0.0, NVlabs/FasterViT).

Paper: "FasterViT: Fast Vision Transformers with Hierarchical Attention", ICLR 2024, arXiv 2306.06189.
Code and weights: https://github.com/NVlabs/FasterViT, NVIDIA Source Code License-NC.

The official builders also download weights to /tmp when ``pretrained=True``; zoo never asks them to
(the core fetches and verifies the files named in the cards), and drops the ``model_path`` argument.
The package imports deprecated timm paths, so its FutureWarnings are silenced at import.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import Any

from torch import Tensor, nn

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # deprecated timm imports inside fastervit
    from fastervit.models import faster_vit as _official


def _build(arch: str, *, num_classes: int = 1000, **kwargs: Any) -> nn.Module:
    kwargs.pop("pretrained", None)
    kwargs.pop("model_path", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch.meshgrid indexing notice from the official code
        return getattr(_official, arch)(pretrained=False, num_classes=num_classes, **kwargs)


def convert_official(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Official checkpoint -> builder keys: what the official loader does, as a pure function.

    The core has already unwrapped ``state_dict``/``model`` and stripped ``module.``; checkpoints saved
    from a wrapping encoder carry an ``encoder.`` prefix, which the official loader strips too.
    """
    if any(key.startswith("encoder.") for key in state_dict) and not any(key.startswith("patch_embed.") for key in state_dict):
        return {key.removeprefix("encoder."): value for key, value in state_dict.items() if key.startswith("encoder.")}
    return dict(state_dict)


faster_vit_0_224 = partial(_build, "faster_vit_0_224")
faster_vit_1_224 = partial(_build, "faster_vit_1_224")
faster_vit_2_224 = partial(_build, "faster_vit_2_224")
faster_vit_3_224 = partial(_build, "faster_vit_3_224")
faster_vit_4_224 = partial(_build, "faster_vit_4_224")
faster_vit_5_224 = partial(_build, "faster_vit_5_224")
faster_vit_6_224 = partial(_build, "faster_vit_6_224")
faster_vit_4_21k_224 = partial(_build, "faster_vit_4_21k_224")
faster_vit_4_21k_384 = partial(_build, "faster_vit_4_21k_384")
faster_vit_4_21k_512 = partial(_build, "faster_vit_4_21k_512")
faster_vit_4_21k_768 = partial(_build, "faster_vit_4_21k_768")
