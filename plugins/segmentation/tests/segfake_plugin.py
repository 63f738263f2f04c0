"""A test plugin: a colour "segmenter" and its cards, for the semantic-segmentation tests only.

The model knows the demo colours (``zoo_segmentation.demo.COLOURS``) as a network trained with
mmseg's ADE20K normalisation would: it compares each pixel of the normalised input, average-pooled
2 x 2 (so its logits are at half resolution, as a real decoder's are), with each demo colour
normalised the same way; the logit of class k is minus the squared distance, the other classes of
ADE20K's 150 get a large negative logit. A wrong normalisation on the card (BGR fed as RGB) makes
it see the wrong colours.
"""

from __future__ import annotations

from zoo import hookimpl

_COMMON = {"paper": "segfake", "task": "semantic-segmentation", "plugin": "segfake", "builder": "colour",
           "num_classes": 150, "input_size": [3, 64, 64], "classes": "ade20k"}
_TEST = {"resize": {"scale": [128, 64], "keep_ratio": True}, "mode": "slide", "crop_size": [48, 48],
         "stride": [32, 32]}

CARDS = {
    "papers": {"segfake": {"title": "Colour regions: a test fixture for semantic segmentation", "venue": "arXiv 2026",
                           "license": "Apache-2.0"}},
    "models": {
        "segfake-colour": {**_COMMON, "test": _TEST, "ms": {"ratios": [0.75, 1.0, 1.25], "flip": True},
                           "reported": {"source": "test fixture (not a paper): a figure for the core's columns",
                                        "ade20k": {"miou": 90.0, "ms_flip": {"miou": 92.0}}}},
        # the same model and protocol, but the card forgets the BGR -> RGB step: the control of the parity test
        "segfake-colour-bgr": {**_COMMON, "test": _TEST,
                               "normalize": {"mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375],
                                             "to_rgb": False}},
        # whole-image inference with ViT-Adapter's ResizeToMultiple
        "segfake-colour-whole": {**_COMMON, "test": {"resize": {"scale": [128, 64], "keep_ratio": True},
                                                     "size_divisor": 32, "mode": "whole"}},
        "segfake-colour-3": {**_COMMON, "num_classes": 3, "classes": ["red", "green", "blue"]},
    },
}


@hookimpl
def zoo_cards():
    return [CARDS]


@hookimpl
def zoo_builders():
    return {"colour": "segfake_plugin:colour"}


def colour(*, num_classes: int = 150, **_):
    import torch
    import torch.nn.functional as F
    from torch import nn
    from zoo_segmentation.demo import COLOURS

    mean = torch.tensor([123.675, 116.28, 103.53])
    std = torch.tensor([58.395, 57.12, 57.375])

    class ColourSeg(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("colours", (torch.tensor(COLOURS, dtype=torch.float32) - mean) / std)
            self.bias = nn.Parameter(torch.zeros(1))  # something for the kit to count

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            pooled = F.avg_pool2d(x, 2, ceil_mode=True)
            n = min(num_classes, len(COLOURS))
            d = ((pooled[:, None] - self.colours[:n, :, None, None]) ** 2).sum(2)  # B, n, h, w
            rest = torch.full((x.shape[0], num_classes - n, *d.shape[2:]), -1e4, device=x.device)
            return torch.cat((-d + self.bias, rest), 1)

    return ColourSeg()
