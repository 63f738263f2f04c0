"""ViT-Adapter + UPerNet segmentors and the builders the cards name.

``model(images)`` maps (B, 3, H, W) images, normalised as the card says, to logits
(B, num_classes, ceil(H/4), ceil(W/4)); the segmentation task resizes them to the input
(bilinear, ``align_corners=False``), as mmseg's ``EncoderDecoder.encode_decode`` does. The
segmentor is zoo_upernet's :class:`~zoo_upernet.model.UPerNet` (mmseg 0.x ``UPerHead``, channels 512,
pool scales 1, 2, 3, 6) on :class:`~zoo_vit_adapter.backbone.ViTAdapter`; the keys are those of the
official checkpoints (``backbone.*``, ``decode_head.*``) minus the training-only ``auxiliary_head``.

Variants are data: the backbone arguments of czczup/ViT-Adapter@fd64a51
``segmentation/configs/ade20k/upernet_deit_adapter_{tiny,small,base}_512_160k_ade20k.py``. Every
builder takes the same keyword arguments, so tests build tiny models of the same code.
"""

from __future__ import annotations

from typing import Any

from zoo_upernet.model import UPerNet

from zoo_vit_adapter.backbone import ViTAdapter

__all__ = ["BUILDERS", "VARIANTS", "upernet_vit_adapter", "vit_adapter_b", "vit_adapter_s", "vit_adapter_t"]

_COMMON: dict[str, Any] = {
    "depth": 12, "mlp_ratio": 4, "conv_inplane": 64, "n_points": 4, "cffn_ratio": 0.25,
    "interaction_indexes": [[0, 2], [3, 5], [6, 8], [9, 11]],
}
VARIANTS: dict[str, dict[str, Any]] = {
    "t": {**_COMMON, "embed_dim": 192, "num_heads": 3, "deform_num_heads": 6, "deform_ratio": 1.0,
          "drop_path_rate": 0.1},
    "s": {**_COMMON, "embed_dim": 384, "num_heads": 6, "deform_num_heads": 6, "deform_ratio": 1.0,
          "drop_path_rate": 0.2},
    "b": {**_COMMON, "embed_dim": 768, "num_heads": 12, "deform_num_heads": 12, "deform_ratio": 0.5,
          "drop_path_rate": 0.3},
}


def upernet_vit_adapter(variant: str = "t", *, num_classes: int = 150, channels: int = 512,
                        **kwargs: Any) -> UPerNet:
    """UPerNet on ViT-Adapter-``variant``; ``kwargs`` override the variant's backbone arguments."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown ViT-Adapter variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    unknown = sorted(set(kwargs) - set(VARIANTS[variant]) - {"pretrain_size", "init_values", "patch_size"})
    if unknown:
        raise TypeError(f"upernet_vit_adapter: unknown argument {unknown[0]!r}")
    return UPerNet(ViTAdapter(**{**VARIANTS[variant], **kwargs}), num_classes, channels)


def vit_adapter_t(**kwargs: Any) -> UPerNet:
    """UPerNet + ViT-Adapter-T (DeiT-T), the ``vit-adapter-t`` card."""
    return upernet_vit_adapter("t", **kwargs)


def vit_adapter_s(**kwargs: Any) -> UPerNet:
    """UPerNet + ViT-Adapter-S (DeiT-S), the ``vit-adapter-s`` card."""
    return upernet_vit_adapter("s", **kwargs)


def vit_adapter_b(**kwargs: Any) -> UPerNet:
    """UPerNet + ViT-Adapter-B (DeiT-B), the ``vit-adapter-b`` card."""
    return upernet_vit_adapter("b", **kwargs)


BUILDERS = ("vit_adapter_t", "vit_adapter_s", "vit_adapter_b")
