"""Our eval transform against timm's own (resolve_data_config + create_transform), tensor for tensor."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from zoo.tasks.classification.data.transforms import EvalPreprocess, EvalTransform, normalize, stats

CONFIGS = [  # (input_size, interpolation, crop_pct, crop_mode, mean, std)
    ((3, 224, 224), "bicubic", 0.875, "center", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ((3, 96, 96), "bilinear", 0.95, "center", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ((3, 64, 80), "bicubic", 0.9, "center", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ((3, 72, 72), "nearest", 1.0, "center", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    ((3, 64, 64), "bicubic", 0.875, "squash", (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    ((3, 64, 64), "bilinear", 0.9, "border", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ((3, 48, 64), "bicubic", 1.0, "border", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
]
SIZES = [(123, 77), (77, 123), (300, 200), (64, 64), (41, 97)]  # (w, h): portrait, landscape, tiny, square


def _image(w: int, h: int, seed: int) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    return Image.fromarray(torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8).numpy(), "RGB")


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c[0][1]}x{c[0][2]}-{c[1]}-{c[2]}-{c[3]}")
def test_transform_is_timm_eval_transform_bit_for_bit(config):
    from timm.data import create_transform, resolve_data_config

    input_size, interpolation, crop_pct, crop_mode, mean, std = config
    pre = EvalPreprocess(input_size=input_size, interpolation=interpolation, crop_pct=crop_pct,
                         crop_mode=crop_mode, mean=mean, std=std)
    cfg = resolve_data_config({}, pretrained_cfg=dict(input_size=input_size, interpolation=interpolation,
                                                     crop_pct=crop_pct, crop_mode=crop_mode, mean=mean, std=std))
    assert cfg["crop_mode"] == crop_mode and cfg["crop_pct"] == crop_pct
    theirs = create_transform(**cfg, is_training=False)
    ours = EvalTransform(pre)
    m, s = stats(pre, "cpu")
    for i, (w, h) in enumerate(SIZES):
        img = _image(w, h, i)
        x = ours(img)
        assert x.dtype == torch.uint8 and tuple(x.shape) == input_size
        expected = theirs(img)
        got = normalize(x[None], m, s)[0]
        assert torch.equal(got, expected), f"{(w, h)}: max diff {(got - expected).abs().max()}"


def test_scale_is_floor_of_size_over_crop_pct():
    assert EvalPreprocess(input_size=(3, 224, 224), crop_pct=0.875).scale == (256, 256)
    assert EvalPreprocess(input_size=(3, 224, 224), crop_pct=0.9).scale == (248, 248)
    assert EvalPreprocess(input_size=(3, 224, 224), crop_pct=0.95).scale == (235, 235)
    assert EvalPreprocess(input_size=(3, 224, 224), crop_pct=0.965).scale == (232, 232)
    assert EvalPreprocess(input_size=(3, 288, 288), crop_pct=1.0).scale == (288, 288)
