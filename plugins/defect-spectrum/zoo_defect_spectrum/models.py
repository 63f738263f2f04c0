"""Builders of the eight segmenters of Defect Spectrum's inference-time table, random weights.

The paper released no weights and no segmentation code (EnVision-Research/Defect_Spectrum holds the
Defect-Gen diffusion code only), so each row is built from a maintained library as that library
defines the model; what each choice is and why is on the card (``notes``):

- UNet, PSPNet, DeepLabV3+: ``segmentation_models_pytorch`` with its default encoder (ResNet-34) and
  decoder settings, ``encoder_weights=None`` (no download);
- HRNet-W18-small: timm's ``hrnet_w18_small_v2`` branches (the stage layout of mmseg's ``hr18s``)
  with HRNetV2's segmentation head (:class:`HRNetV2Seg`);
- BiSeNet: :mod:`zoo_defect_spectrum.bisenet` (BiSeNetV1, ResNet-18 context path);
- ViT-T: timm's ViT-Tiny/16 with Segmenter's linear decoder (:class:`ViTLinearSeg`);
- MiT-B0: transformers' ``SegformerForSemanticSegmentation`` (SegFormer-B0 config written here);
- Mask2Former: transformers' ``Mask2FormerForUniversalSegmentation``, ResNet-50 backbone, semantic
  inference (:class:`Mask2FormerSemantic`).

Every model takes a normalised ``(B, 3, H, W)`` batch and returns per-class scores ``(B, C, h, w)``
(the semantic-segmentation task's contract), ``h, w`` being the model's own output stride.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.errors import NotInstalled

#: 125 defect types (the deck's dataset table: "Defect Spectrum 3518+1920*, 125") plus background.
#: The paper's own class count per trained model is not stated in any source read here.
NUM_CLASSES = 126


def _require(module: str, pip: str) -> Any:
    """Import ``module`` or say in one line what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise NotInstalled(f"plugin 'defect-spectrum' needs {pip}, which is not installed: pip install '{pip}'") from None


def _smp() -> Any:
    return _require("segmentation_models_pytorch", "segmentation-models-pytorch>=0.6")


def _transformers() -> Any:
    return _require("transformers", "transformers>=5.24")


# -- segmentation_models_pytorch ------------------------------------------------------------------


def unet(*, num_classes: int = NUM_CLASSES) -> nn.Module:
    """U-Net, smp defaults: ResNet-34 encoder, decoder channels (256, 128, 64, 32, 16); full-resolution logits."""
    return _smp().Unet(encoder_name="resnet34", encoder_weights=None, classes=num_classes).eval()


def pspnet(*, num_classes: int = NUM_CLASSES) -> nn.Module:
    """PSPNet, smp defaults: ResNet-34 encoder cut at depth 3 (stride 8), 512-channel pyramid pooling, x8 upsampling."""
    return _smp().PSPNet(encoder_name="resnet34", encoder_weights=None, classes=num_classes).eval()


def deeplabv3plus(*, num_classes: int = NUM_CLASSES) -> nn.Module:
    """DeepLabV3+, smp defaults: ResNet-34 encoder at output stride 16, ASPP rates (12, 24, 36), x4 upsampling."""
    return _smp().DeepLabV3Plus(encoder_name="resnet34", encoder_weights=None, classes=num_classes).eval()


# -- timm backbones with the heads their papers use -----------------------------------------------


class HRNetV2Seg(nn.Module):
    """HRNetV2 for segmentation: the four branches upsampled to 1/4, concatenated, 1x1 conv-BN-ReLU,
    1x1 classifier (HRNet-Semantic-Segmentation's ``last_layer``; mmseg's ``fcn_hr18`` FCNHead with
    ``resize_concat``, kernel 1, one conv)."""

    def __init__(self, backbone: nn.Module, channels: list[int], num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        width = sum(channels)
        self.fuse = nn.Sequential(nn.Conv2d(width, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(x)
        size = feats[0].shape[-2:]
        up = [feats[0]] + [F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats[1:]]
        return self.classifier(self.fuse(torch.cat(up, dim=1)))


def hrnet_w18_small(*, num_classes: int = NUM_CLASSES) -> nn.Module:
    """HRNetV2-W18-Small (v2 stage layout: mmseg's ``hr18s``, timm ``hrnet_w18_small_v2``), 1/4-resolution logits."""
    import timm

    # feature_location="" gives the raw branch outputs (no classification "incre" modules); index 0 is the stem
    backbone = timm.create_model("hrnet_w18_small_v2", pretrained=False, features_only=True, feature_location="",
                                 out_indices=(1, 2, 3, 4))
    return HRNetV2Seg(backbone, list(backbone.feature_info.channels()), num_classes).eval()


class ViTLinearSeg(nn.Module):
    """A plain ViT with Segmenter's linear decoder: one linear layer maps each patch token (after
    the encoder's final norm) to class logits, giving a 1/16-resolution map."""

    def __init__(self, vit: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.vit = vit
        self.head = nn.Linear(vit.embed_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.vit.forward_features(x)[:, self.vit.num_prefix_tokens:]
        ph, pw = self.vit.patch_embed.patch_size
        h, w = x.shape[-2] // ph, x.shape[-1] // pw
        return self.head(tokens).transpose(1, 2).reshape(x.shape[0], -1, h, w)


def vit_t(*, num_classes: int = NUM_CLASSES, img_size: int = 512) -> nn.Module:
    """ViT-Tiny/16 (192 wide, 12 blocks, 3 heads) + linear decoder; any input size divisible by 16."""
    import timm

    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=img_size,
                            dynamic_img_size=True)
    return ViTLinearSeg(vit, num_classes).eval()


# -- transformers -------------------------------------------------------------------------------------


class LogitsOnly(nn.Module):
    """A transformers segmenter returning only its ``logits`` tensor (the task's contract)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


def mit_b0(*, num_classes: int = NUM_CLASSES) -> nn.Module:
    """SegFormer-B0 (MiT-B0 encoder + all-MLP decoder, 256 wide), 1/4-resolution logits."""
    transformers = _transformers()
    config = transformers.SegformerConfig(
        num_channels=3, num_encoder_blocks=4, depths=[2, 2, 2, 2], sr_ratios=[8, 4, 2, 1],
        hidden_sizes=[32, 64, 160, 256], patch_sizes=[7, 3, 3, 3], strides=[4, 2, 2, 2],
        num_attention_heads=[1, 2, 5, 8], mlp_ratios=[4, 4, 4, 4], decoder_hidden_size=256,
        drop_path_rate=0.1, num_labels=num_classes)
    return LogitsOnly(transformers.SegformerForSemanticSegmentation(config)).eval()


class Mask2FormerSemantic(nn.Module):
    """Mask2Former's semantic inference (``semantic_inference`` of the official code): class
    probabilities without "no object" times sigmoid mask probabilities, summed over the queries:
    ``(B, C, H/4, W/4)`` scores whose argmax is the prediction."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=x)
        classes = out.class_queries_logits.softmax(-1)[..., :-1]
        masks = out.masks_queries_logits.sigmoid()
        return torch.einsum("bqc,bqhw->bchw", classes, masks)


def mask2former(*, num_classes: int = NUM_CLASSES) -> nn.Module:
    """Mask2Former R-50 (100 queries, 6 pixel-decoder and 9+1 decoder layers, 256 wide: the model
    zoo's ``maskformer2_R50_bs16_160k`` semantic setting), semantic scores at 1/4 resolution."""
    transformers = _transformers()
    backbone = transformers.ResNetConfig(depths=[3, 4, 6, 3], hidden_sizes=[256, 512, 1024, 2048],
                                         embedding_size=64, layer_type="bottleneck",
                                         out_features=["stage1", "stage2", "stage3", "stage4"])
    logging = transformers.utils.logging
    previous = logging.get_verbosity()
    logging.set_verbosity_error()  # "Backbone resnet is not a supported model": said once, on the card's notes
    try:
        config = transformers.Mask2FormerConfig(backbone_config=backbone, num_labels=num_classes, num_queries=100,
                                                encoder_layers=6, decoder_layers=10, hidden_dim=256,
                                                feature_size=256, mask_feature_size=256)
        model = transformers.Mask2FormerForUniversalSegmentation(config)
    finally:
        logging.set_verbosity(previous)
    return Mask2FormerSemantic(model).eval()
