"""Mask2Former builders: Hugging Face ``transformers``' implementation, configured in code.

The model is ``Mask2FormerForUniversalSegmentation`` built from a ``Mask2FormerConfig`` + ``SwinConfig``
written here (``variants.py``): nothing is read from the network at build time. Two changes make it
the ``query-masks`` head of the instance-segmentation task and keep its state dict equal to the Hub
checkpoints' tensors (``convert.py`` maps their names):

- ``forward(pixel_values)`` returns ``(class_queries_logits, masks_queries_logits)``: (B, Q, C + 1),
  the last class "no object", and (B, Q, H/4, W/4) mask logits;
- the Swin backbone's final ``layernorm``, which ``SwinBackbone`` never uses (its output is the
  per-stage ``hidden_states_norms``) and no checkpoint holds (transformers lists it in
  ``_keys_to_ignore_on_load_missing``), is replaced by an identity so strict loading sees only real weights.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from zoo.errors import NotInstalled
from zoo_mask2former.variants import DROP_PATH_RATE, HEAD, VARIANTS, Variant

MIN_TRANSFORMERS = (5, 24)  # the layout convert.py maps to was checked against 5.24 (tests/data manifest)
_STAGES = ["stage1", "stage2", "stage3", "stage4"]
_VARIANT_FIELDS = ("embed_dim", "depths", "num_heads", "window_size", "image_size", "num_queries")


def require_transformers() -> Any:
    """The ``transformers`` module, or one line saying how to install it (and which version)."""
    want = ".".join(map(str, MIN_TRANSFORMERS))
    try:
        import transformers
    except ImportError:
        raise NotInstalled(f"plugin 'mask2former' needs the Hugging Face transformers package, which is not installed: "
                           f"pip install 'transformers>={want}'") from None
    version = getattr(transformers, "__version__", "0")
    try:
        found = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        found = (0, 0)
    if found < MIN_TRANSFORMERS:
        raise NotInstalled(f"plugin 'mask2former' needs transformers>={want} (its Mask2Former/Swin module layout), "
                           f"found {version}: pip install -U 'transformers>={want}'")
    return transformers


def make_config(variant: Variant, num_classes: int = 80, **head: Any) -> Any:
    """The ``Mask2FormerConfig`` of ``variant`` (head settings overridable, e.g. for a tiny test model)."""
    transformers = require_transformers()
    backbone = transformers.SwinConfig(
        image_size=variant.image_size, embed_dim=variant.embed_dim, depths=list(variant.depths),
        num_heads=list(variant.num_heads), window_size=variant.window_size, drop_path_rate=DROP_PATH_RATE,
        out_features=list(_STAGES))
    settings = {**HEAD, "num_queries": variant.num_queries, **head}
    return transformers.Mask2FormerConfig(backbone_config=backbone, num_labels=num_classes, **settings)


@functools.cache
def _query_masks_class() -> type:
    """The wrapper class, made once transformers is known to be importable (imported lazily)."""
    transformers = require_transformers()
    import torch

    class Mask2FormerQueryMasks(transformers.Mask2FormerForUniversalSegmentation):
        """transformers' Mask2Former returning ``(class_logits, mask_logits)`` for the query-masks head."""

        def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
            out = super().forward(pixel_values=pixel_values)
            return out.class_queries_logits, out.masks_queries_logits

    return Mask2FormerQueryMasks


def build(variant: Variant, *, num_classes: int = 80, **overrides: Any) -> Any:
    """A ``query-masks`` Mask2Former with random weights, in eval mode.

    ``overrides`` replace the variant's backbone fields (``embed_dim``, ``depths``, ``num_heads``,
    ``window_size``, ``image_size``, ``num_queries``) or the head's (``HEAD``), e.g. for a tiny test model.
    """
    import torch

    backbone = {k: overrides.pop(k) for k in list(overrides) if k in _VARIANT_FIELDS}
    unknown = sorted(set(overrides) - set(HEAD))
    if unknown:
        raise ValueError(f"unknown Mask2Former option {unknown[0]!r} (backbone: {', '.join(sorted(_VARIANT_FIELDS))}; "
                         f"head: {', '.join(sorted(HEAD))})")
    variant = dataclasses.replace(variant, **backbone)
    model = _query_masks_class()(make_config(variant, num_classes, **overrides))
    model.model.pixel_level_module.encoder.swin.layernorm = torch.nn.Identity()
    return model.eval()


def mask2former_swin_t(*, num_classes: int = 80, **overrides: Any) -> Any:
    return build(VARIANTS["swin-t"], num_classes=num_classes, **overrides)


def mask2former_swin_s(*, num_classes: int = 80, **overrides: Any) -> Any:
    return build(VARIANTS["swin-s"], num_classes=num_classes, **overrides)


def mask2former_swin_b(*, num_classes: int = 80, **overrides: Any) -> Any:
    return build(VARIANTS["swin-b"], num_classes=num_classes, **overrides)


def mask2former_swin_l(*, num_classes: int = 80, **overrides: Any) -> Any:
    return build(VARIANTS["swin-l"], num_classes=num_classes, **overrides)
