"""The hyper-parameters of each Hugging Face Mask2Former COCO-instance checkpoint, as data (torch-free).

Sources, read at these commits:

- facebookresearch/Mask2Former@9b0651c ``configs/coco/instance-segmentation/maskformer2_R50_bs16_50ep.yaml``
  (the base of every Swin config): 80 classes, 100 queries, hidden 256, 8 heads, feed-forward 2048,
  10 decoder layers (9 + the learnable-query loss), 6 deformable encoder layers, conv/mask dim 256,
  common stride 4, no input projection, post-norm;
  ``configs/coco/instance-segmentation/swin/*.yaml``: the Swin backbones (embed dim, depths, heads,
  window) and 200 queries for Swin-L.
- huggingface/transformers@0197608 ``src/transformers/models/mask2former/
  convert_mask2former_original_pytorch_checkpoint_to_pytorch.py``: the ``SwinConfig`` each Hub
  checkpoint was converted with (embed 96: ``microsoft/swin-tiny-patch4-window7-224``'s config with
  the official depths; embed 128 written out; embed 192: ``microsoft/swin-large-patch4-window12-384``'s),
  deformable-encoder feed-forward 1024, feature strides 4/8/16/32; and ``get_model_name``, which
  names the Hub repos after the official config directory: ``maskformer2_swin_base_384_bs16_50ep``
  (ImageNet-1k Swin-B) becomes ``mask2former-swin-base-coco-instance`` (``base_IN21k`` is matched
  first, so the IN-21k Swin-B is ``...-base-IN21k-...``), and the only Swin-L COCO-instance config,
  ``maskformer2_swin_large_IN21k_384_bs16_100ep`` (200 queries), becomes
  ``mask2former-swin-large-coco-instance``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    """One checkpoint's architecture: the Swin backbone and the Mask2Former head that differ."""

    hub: str  #: Hugging Face repo id of the converted checkpoint
    official_config: str  #: the Mask2Former config it was trained with
    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    window_size: int
    image_size: int  #: SwinConfig.image_size the conversion used (no weight depends on it: no absolute position embedding)
    num_queries: int = 100


VARIANTS: dict[str, Variant] = {
    "swin-t": Variant("facebook/mask2former-swin-tiny-coco-instance", "swin/maskformer2_swin_tiny_bs16_50ep.yaml",
                      96, (2, 2, 6, 2), (3, 6, 12, 24), 7, 224),
    "swin-s": Variant("facebook/mask2former-swin-small-coco-instance", "swin/maskformer2_swin_small_bs16_50ep.yaml",
                      96, (2, 2, 18, 2), (3, 6, 12, 24), 7, 224),
    "swin-b": Variant("facebook/mask2former-swin-base-coco-instance", "swin/maskformer2_swin_base_384_bs16_50ep.yaml",
                      128, (2, 2, 18, 2), (4, 8, 16, 32), 12, 224),
    "swin-l": Variant("facebook/mask2former-swin-large-coco-instance",
                      "swin/maskformer2_swin_large_IN21k_384_bs16_100ep.yaml",
                      192, (2, 2, 18, 2), (6, 12, 24, 48), 12, 384, num_queries=200),
}

#: Mask2Former head settings shared by every COCO-instance config (maskformer2_R50_bs16_50ep.yaml and the
#: conversion script), in transformers' Mask2FormerConfig names
HEAD: dict[str, object] = {
    "feature_size": 256, "mask_feature_size": 256, "hidden_dim": 256, "encoder_feedforward_dim": 1024,
    "encoder_layers": 6, "decoder_layers": 10, "num_attention_heads": 8, "dim_feedforward": 2048,
    "dropout": 0.0, "pre_norm": False, "enforce_input_projection": False, "common_stride": 4,
    "feature_strides": [4, 8, 16, 32], "ignore_value": 255,
}
DROP_PATH_RATE = 0.3  # the Swin configs' DROP_PATH_RATE (training only)
