"""A test plugin: a colour-box "detector" and its cards, for the object-detection tests only.

The detector finds, for each class, the pixels of that class's demo colour (see
``zoo_detection.demo.CLASSES``) in the letterboxed input and returns their extent in YOLOv6's
``yolo`` head format: ``(B, C, 5 + C)``, row ``k`` = class ``k``'s box (cx, cy, w, h in input
pixels), objectness 1 where the colour is present (else 0), a one-hot class score. It is a real
model of the demo set: its detections depend on how the images were letterboxed.
"""

from __future__ import annotations

from zoo import hookimpl

CARDS = {
    "papers": {"detfake": {"title": "Colour boxes: a test fixture for object detection", "venue": "arXiv 2026",
                           "license": "Apache-2.0"}},
    "models": {
        "detfake-color": {"paper": "detfake", "task": "object-detection", "plugin": "detfake", "builder": "color",
                          "num_classes": 3, "input_size": [3, 96, 96], "letterbox": {"size": 96}},
        # the same model behind Detectron2's resize (short side 96, padded to 32) instead of a letterbox
        "detfake-color-resize": {"paper": "detfake", "task": "object-detection", "plugin": "detfake",
                                 "builder": "color", "num_classes": 3, "input_size": [3, 96, 128],
                                 "resize": {"shortest_edge": 96, "max_size": 1000, "size_divisibility": 32}},
        # the same model under a wrong letterbox (a quarter of the size): the control of the parity test
        "detfake-color-small": {"paper": "detfake", "task": "object-detection", "plugin": "detfake",
                                "builder": "color", "num_classes": 3, "input_size": [3, 32, 32],
                                "letterbox": {"size": 32}},
    },
}


@hookimpl
def zoo_cards():
    return [CARDS]


@hookimpl
def zoo_builders():
    return {"color": "detfake_plugin:color"}


def color(*, num_classes: int = 3, **_):
    import torch
    from torch import nn
    from zoo_detection.demo import CLASSES

    class ColourBoxes(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("colours", torch.tensor([c for *_, c in CLASSES[:num_classes]], dtype=torch.float32))

        def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            b, _, h, w = x.shape
            px = (x * 255).permute(0, 2, 3, 1)[:, None]  # B, 1, H, W, 3
            mask = ((px - self.colours[None, :, None, None, :]).abs() < 50).all(-1)  # B, C, H, W
            rows, cols = mask.any(3).float(), mask.any(2).float()  # B, C, H / W
            y0 = rows.argmax(2).float()
            y1 = h - rows.flip(2).argmax(2).float()
            x0 = cols.argmax(2).float()
            x1 = w - cols.flip(2).argmax(2).float()
            present = rows.amax(2)
            boxes = torch.stack(((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, present), -1)
            scores = torch.eye(num_classes, device=x.device).expand(b, -1, -1)
            return [torch.cat((boxes, scores), -1), None]  # as YOLOv6's Model.forward: [x, featmaps]

    return ColourBoxes()
