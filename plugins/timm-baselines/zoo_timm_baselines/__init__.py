"""zoo plugin ``timm-baselines``: the baseline models of the decks' tables, built by timm.

A builder name is the timm architecture name (``deit_tiny_distilled_patch16_224``); the weights
are timm's Hugging Face copies, named on each card. Entry module: imports neither torch nor timm.
"""

from __future__ import annotations

from zoo import hookimpl

#: timm architectures this plugin builds (one per registry card of plugin ``timm-baselines``)
ARCHS: tuple[str, ...] = (
    # ViT family: DeiT (EfficientMod table, ViT-LLaMA baselines), AugReg ViT (ToMe), CLIP (SGD paper)
    "deit_tiny_distilled_patch16_224",
    "deit_small_patch16_224",
    "deit_base_patch16_224",
    "vit_small_patch16_224",
    "vit_base_patch16_224",
    "vit_large_patch16_224",
    "vit_base_patch16_clip_224",
    # FasterViT ADE20K table backbones
    "swin_tiny_patch4_window7_224",
    "swin_small_patch4_window7_224",
    "swin_base_patch4_window7_224",
    "convnext_tiny",
    "convnext_small",
    "convnext_base",
    "twins_svt_base",
    "twins_svt_large",
    # EfficientMod latency table
    "mobilenetv2_100",
    "mobilenetv2_140",
    "fasternet_t0",
    "fasternet_t1",
    "fasternet_t2",
    "mobileone_s1",
    "mobileone_s2",
    "mobileone_s4",
    "mobilevit_xs",
    "mobilevitv2_100",
    "mobilevitv2_150",
    "efficientformerv2_s0",
    "efficientformerv2_s1",
    "efficientformerv2_s2",
    "efficientformer_l1",
    "tf_efficientnet_b0",
    "poolformer_s12",
)


@hookimpl
def zoo_builders() -> dict[str, str]:
    return {arch: f"zoo_timm_baselines.builders:{arch}" for arch in ARCHS}
