"""zoo plugin ``timm-baselines``: the baseline models of the decks' tables, built by timm.

A builder name is a timm architecture name (``deit_tiny_distilled_patch16_224``); it builds the
architecture with the pretrained tag of the card's weights (``deit_tiny_distilled_patch16_224.fb_in1k``)
so that timm's ``pretrained_cfg`` describes those weights. The weights are timm's Hugging Face copies,
named on each card. Entry module: imports neither torch nor timm.
"""

from __future__ import annotations

from zoo import hookimpl

#: builder name -> the timm model it builds, ``<arch>.<tag>`` with the tag of the card's weights
#: (the card's hub repo is the ``hf_hub_id`` of that tag's pretrained_cfg; the plugin test checks it)
MODELS: dict[str, str] = {
    # ViT family: DeiT (EfficientMod table, ViT-LLaMA baselines), AugReg ViT (ToMe), CLIP (SGD paper)
    "deit_tiny_distilled_patch16_224": "deit_tiny_distilled_patch16_224.fb_in1k",
    "deit_small_patch16_224": "deit_small_patch16_224.fb_in1k",
    "deit_base_patch16_224": "deit_base_patch16_224.fb_in1k",
    "vit_small_patch16_224": "vit_small_patch16_224.augreg_in21k_ft_in1k",
    "vit_base_patch16_224": "vit_base_patch16_224.augreg_in21k_ft_in1k",
    "vit_large_patch16_224": "vit_large_patch16_224.augreg_in21k_ft_in1k",
    # OpenAI CLIP is natively QuickGELU; timm's GELU vit_base_patch16_clip_224 would change its features.
    # The .openai tag of the QuickGELU variant loads the same hub repo, timm/vit_base_patch16_clip_224.openai.
    "vit_base_patch16_clip_quickgelu_224": "vit_base_patch16_clip_quickgelu_224.openai",
    # FasterViT ADE20K table backbones
    "swin_tiny_patch4_window7_224": "swin_tiny_patch4_window7_224.ms_in1k",
    "swin_small_patch4_window7_224": "swin_small_patch4_window7_224.ms_in1k",
    "swin_base_patch4_window7_224": "swin_base_patch4_window7_224.ms_in1k",
    "convnext_tiny": "convnext_tiny.fb_in1k",
    "convnext_small": "convnext_small.fb_in1k",
    "convnext_base": "convnext_base.fb_in1k",
    "twins_svt_base": "twins_svt_base.in1k",
    "twins_svt_large": "twins_svt_large.in1k",
    # EfficientMod latency table
    "mobilenetv2_100": "mobilenetv2_100.ra_in1k",
    "mobilenetv2_140": "mobilenetv2_140.ra_in1k",
    "fasternet_t0": "fasternet_t0.in1k",
    "fasternet_t1": "fasternet_t1.in1k",
    "fasternet_t2": "fasternet_t2.in1k",
    "mobileone_s1": "mobileone_s1.apple_in1k",
    "mobileone_s2": "mobileone_s2.apple_in1k",
    "mobileone_s4": "mobileone_s4.apple_in1k",
    "mobilevit_xs": "mobilevit_xs.cvnets_in1k",
    "mobilevitv2_100": "mobilevitv2_100.cvnets_in1k",
    "mobilevitv2_150": "mobilevitv2_150.cvnets_in1k",
    "efficientformerv2_s0": "efficientformerv2_s0.snap_dist_in1k",
    "efficientformerv2_s1": "efficientformerv2_s1.snap_dist_in1k",
    "efficientformerv2_s2": "efficientformerv2_s2.snap_dist_in1k",
    "efficientformer_l1": "efficientformer_l1.snap_dist_in1k",
    "tf_efficientnet_b0": "tf_efficientnet_b0.aa_in1k",
    "poolformer_s12": "poolformer_s12.sail_in1k",
}

#: the builder names (one per registry card of plugin ``timm-baselines``)
ARCHS: tuple[str, ...] = tuple(MODELS)


@hookimpl
def zoo_builders() -> dict[str, str]:
    return {arch: f"zoo_timm_baselines.builders:{arch}" for arch in ARCHS}
