"""A test plugin: a colour "segmenter" with a ``query-masks`` head, for the instance-segmentation tests.

One query per class: query ``k`` claims the pixels whose nearest colour (among the background's
and the classes', see ``zoo_detection.demo``) is class ``k``'s, in the model's own input (it
undoes the card's ``normalize``). Its ``class_logits`` are ``(B, C, C + 1)`` (class ``k`` at 10 when
the colour is present, else "no object" at 10), its ``mask_logits`` ``(B, C, H / s, W / s)`` at
+-20 (``s`` the builder's ``stride``: 1 gives masks at the input resolution, 4 as Mask2Former's).
It is a real model of the demo set: its masks depend on how the images were resized.
"""

from __future__ import annotations

from zoo import hookimpl

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]  # Mask2Former's (0-255 units, RGB)
# input_size: what a short side of 96 makes of COCO's usual 640x480 image (zoo bench's example input)
_BASE = {"paper": "segfake", "task": "instance-segmentation", "plugin": "segfake", "num_classes": 3,
         "input_size": [3, 96, 128],
         "head": "query-masks", "normalize": {"mean": MEAN, "std": STD},
         "postprocess": {"topk": 100, "mask_threshold": 0.0}}
CARDS = {
    "papers": {"segfake": {"title": "Colour masks: a test fixture for instance segmentation", "venue": "arXiv 2026",
                           "license": "Apache-2.0"}},
    "models": {
        # the demo images have a short side of 48: a short side of 96 is an exact 2x resize
        "segfake-color": {**_BASE, "builder": "color",
                          "resize": {"shortest_edge": 96, "max_size": 1000, "size_divisibility": 32, "pad_value": 0},
                          "reported": {"source": "test fixture: the demo set's masks are drawn exactly",
                                       "coco": {"mask_map": 100.0}}},
        # the same model with a figure off by more than mask AP's tolerance (0.1): verify must say so
        "segfake-color-off": {**_BASE, "builder": "color",
                              "resize": {"shortest_edge": 96, "max_size": 1000, "size_divisibility": 32},
                              "reported": {"source": "test fixture: a figure 0.2 off", "coco": {"mask_map": 99.8}}},
        # masks at a quarter of the input resolution, as Mask2Former's: right, but not to the pixel
        "segfake-coarse": {**_BASE, "builder": "coarse",
                           "resize": {"shortest_edge": 96, "max_size": 1000, "size_divisibility": 32}},
        # the same model under a wrong resize (half the image's size): the control of the parity test
        "segfake-coarse-small": {**_BASE, "builder": "coarse",
                                 "resize": {"shortest_edge": 24, "max_size": 1000, "size_divisibility": 32}},
    },
}


@hookimpl
def zoo_cards():
    return [CARDS]


@hookimpl
def zoo_builders():
    return {"color": "instfake_plugin:color", "coarse": "instfake_plugin:coarse"}


def coarse(*, num_classes: int = 3, **_):
    return color(num_classes=num_classes, stride=4)


def color(*, num_classes: int = 3, stride: int = 1, as_dict: bool = False, **_):
    import torch
    import torch.nn.functional as F  # noqa: N812
    from torch import nn
    from zoo_detection.demo import BACKGROUND, CLASSES

    class ColourMasks(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            colours = [BACKGROUND] + [c for *_, c in CLASSES[:num_classes]]
            self.register_buffer("colours", torch.tensor(colours, dtype=torch.float32))
            self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

        def forward(self, x: torch.Tensor):
            px = (x * self.std + self.mean).permute(0, 2, 3, 1)  # B, H, W, 3 in 0-255
            nearest = ((px[:, None] - self.colours[None, :, None, None, :]) ** 2).sum(-1).argmin(1)  # B, H, W
            masks = torch.stack([nearest == k + 1 for k in range(num_classes)], 1).float()  # B, C, H, W
            if stride > 1:
                masks = F.avg_pool2d(masks, stride)
            present = masks.flatten(2).amax(2) > 0  # B, C
            cls = torch.zeros(x.shape[0], num_classes, num_classes + 1, device=x.device)
            cls[:, :, :num_classes] = torch.eye(num_classes, device=x.device) * 10
            cls[:, :, num_classes] = torch.where(present, 0.0, 10.0)
            cls[:, :, :num_classes] *= present[..., None]
            mask_logits = (masks - 0.5) * 40
            if as_dict:
                return {"class_logits": cls, "mask_logits": mask_logits}
            return cls, mask_logits

    return ColourMasks()
