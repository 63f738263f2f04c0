"""``zoo demo-data --task object-detection DIR``: a small generated set in COCO's val2017 layout.

Writes ``DIR/val2017/NNNNNNNNNNNN.jpg`` and ``DIR/annotations/instances_val2017.json``: each image
holds up to one object per class, a filled rectangle or ellipse in the class's colour on a dark
background, never overlapping. Each annotation's bbox is the extent of the drawn pixels, its area
the drawn pixel count, its segmentation a polygon (the rectangle's corners, 24 points on the
ellipse). Category ids are not 1..C (COCO-like gaps: 1, 3, 18, ...), so the id mapping is
exercised. Deterministic for a seed.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

from zoo.errors import DataError

#: (category id, name, RGB) of the demo classes, in class order
CLASSES = ((1, "red", (230, 30, 30)), (3, "green", (30, 210, 30)), (18, "blue", (40, 60, 235)),
           (44, "yellow", (235, 225, 30)), (62, "magenta", (220, 40, 220)), (70, "cyan", (30, 220, 225)))
BACKGROUND = (40, 40, 40)
SIZES = ((64, 48), (48, 64), (80, 60), (64, 64), (96, 72))  #: (width, height) of the images


def _place(rng: random.Random, width: int, height: int, taken: list[tuple[int, int, int, int]]
           ) -> tuple[int, int, int, int] | None:
    for _ in range(50):
        w, h = rng.randrange(10, max(11, width // 2)), rng.randrange(10, max(11, height // 2))
        x, y = rng.randrange(0, width - w), rng.randrange(0, height - h)
        box = (x, y, x + w, y + h)
        if all(box[2] + 2 <= t[0] or t[2] + 2 <= box[0] or box[3] + 2 <= t[1] or t[3] + 2 <= box[1] for t in taken):
            return box
    return None


def make_demo(root: str | Path, n_images: int = 8, n_classes: int = 3, seed: int = 0, **_: Any) -> Path:
    """Write ``n_images`` images with objects of ``n_classes`` classes (at most 6) and their instances json."""
    from PIL import Image, ImageDraw

    for name, value, top in (("images", n_images, 100_000), ("classes", n_classes, len(CLASSES))):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise DataError(f"object-detection demo data: expected a number of {name} in 1..{top}, got {value!r}")
    root = Path(root).expanduser()
    images_dir = root / "val2017"
    images_dir.mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    images, annotations = [], []
    for i in range(n_images):
        image_id = 1000 + 7 * i  # not 0..n-1, as in COCO
        width, height = SIZES[i % len(SIZES)]
        im = Image.new("RGB", (width, height), BACKGROUND)
        draw = ImageDraw.Draw(im)
        taken: list[tuple[int, int, int, int]] = []
        for k in rng.sample(range(n_classes), rng.randrange(1, n_classes + 1)):
            box = _place(rng, width, height, taken)
            if box is None:
                continue
            taken.append(box)
            cat_id, _name, colour = CLASSES[k]
            mask = Image.new("L", (width, height), 0)
            x0, y0, x1, y1 = box
            if rng.random() < 0.5:
                ImageDraw.Draw(mask).rectangle((x0, y0, x1 - 1, y1 - 1), fill=255)
                polygon = [x0, y0, x1, y0, x1, y1, x0, y1]
            else:
                ImageDraw.Draw(mask).ellipse((x0, y0, x1 - 1, y1 - 1), fill=255)
                cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
                polygon = [round(v, 2) for t in range(24) for v in (cx + rx * math.cos(2 * math.pi * t / 24),
                                                                    cy + ry * math.sin(2 * math.pi * t / 24))]
            draw.bitmap((0, 0), mask, fill=colour)
            bx0, by0, bx1, by1 = mask.getbbox()
            area = sum(mask.histogram()[1:])
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": cat_id,
                                "bbox": [bx0, by0, bx1 - bx0, by1 - by0], "area": area, "iscrowd": 0,
                                "segmentation": [polygon]})
        file_name = f"{image_id:012d}.jpg"
        im.save(images_dir / file_name, quality=95, subsampling=0)
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
    doc = {"info": {"description": "zoo object-detection demo data (generated)"},
           "images": images, "annotations": annotations,
           "categories": [{"id": c, "name": n, "supercategory": "shape"} for c, n, _ in CLASSES[:n_classes]]}
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(doc), encoding="utf-8")
    return root


#: (width, height) of the instance-segmentation demo images: a short side of 48 px, so that a
#: ``resize`` to a short side of 96 (the tests' fake segmenter) is exactly 2x for every image
INSTANCE_SIZES = ((64, 48), (48, 64), (96, 48), (48, 80))


def _polygon(rng: random.Random, box: tuple[int, int, int, int]) -> list[float]:
    """A rectangle, a 24-point ellipse or a triangle inside ``box`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    kind = rng.randrange(3)
    if kind == 0:
        return [x0, y0, x1, y0, x1, y1, x0, y1]
    if kind == 1:
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        return [round(v, 2) for t in range(24) for v in (cx + rx * math.cos(2 * math.pi * t / 24),
                                                        cy + ry * math.sin(2 * math.pi * t / 24))]
    return [x0, y1, (x0 + x1) / 2, y0, x1, y1]


def make_instance_demo(root: str | Path, n_images: int = 8, n_classes: int = 3, seed: int = 0, **_: Any) -> Path:
    """``zoo demo-data --task instance-segmentation DIR``: COCO's val2017 layout with polygon masks.

    Each object is a polygon (rectangle, ellipse or triangle) rasterized by pycocotools itself
    (``frPyObjects`` + ``decode``, as COCOeval reads a ground-truth polygon) and painted in its
    class's colour, so the drawn pixels are exactly the ground-truth mask; its bbox and area are the
    mask's. Images are PNG (no JPEG ringing at the mask edges).
    """
    import numpy as np
    from PIL import Image
    from pycocotools import mask as mask_utils

    for name, value, top in (("images", n_images, 100_000), ("classes", n_classes, len(CLASSES))):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise DataError(f"instance-segmentation demo data: expected a number of {name} in 1..{top}, got {value!r}")
    root = Path(root).expanduser()
    images_dir = root / "val2017"
    images_dir.mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    images, annotations = [], []
    for i in range(n_images):
        image_id = 2000 + 11 * i
        width, height = INSTANCE_SIZES[i % len(INSTANCE_SIZES)]
        pixels = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
        taken: list[tuple[int, int, int, int]] = []
        for k in rng.sample(range(n_classes), rng.randrange(1, n_classes + 1)):
            box = _place(rng, width, height, taken)
            if box is None:
                continue
            polygon = _polygon(rng, box)
            rle = mask_utils.merge(mask_utils.frPyObjects([polygon], height, width))
            mask = mask_utils.decode(rle).astype(bool)
            if not mask.any():
                continue
            taken.append(box)
            cat_id, _name, colour = CLASSES[k]
            pixels[mask] = colour
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": cat_id,
                                "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                                "area": float(mask_utils.area(rle)), "iscrowd": 0, "segmentation": [polygon]})
        file_name = f"{image_id:012d}.png"
        Image.fromarray(pixels).save(images_dir / file_name)
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
    doc = {"info": {"description": "zoo instance-segmentation demo data (generated)"},
           "images": images, "annotations": annotations,
           "categories": [{"id": c, "name": n, "supercategory": "shape"} for c, n, _ in CLASSES[:n_classes]]}
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(doc), encoding="utf-8")
    return root
