"""``zoo demo-data --task semantic-segmentation DIR``: a small generated set in ADE20K's layout.

Writes ``DIR/images/validation/ADE_val_NNNNNNNN.jpg`` and ``DIR/annotations/validation/*.png``
(ADEChallengeData2016): each image is a dark background (label 0, "other", ignored under
``reduce_zero_label``) with filled rectangles and ellipses, each in the colour of one of the first
``n_classes`` demo classes; a region of class k (0-based, ADE20K's k-th class) is labelled k + 1 in
the 8-bit grey label PNG, as ADE20K encodes its annotations. Regions never overlap. Deterministic
for a seed. Evaluate with ``--dataset ade20k --data-dir DIR``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from zoo.errors import DataError

#: RGB of the demo classes, in class order (class k is ADE20K's k-th: wall, building, sky, ...)
COLOURS = ((230, 30, 30), (30, 210, 30), (40, 60, 235), (235, 225, 30), (220, 40, 220), (30, 220, 225))
BACKGROUND = (40, 40, 40)
SIZES = ((96, 64), (64, 80), (120, 72), (80, 80), (72, 100))  #: (width, height) of the images


def _place(rng: random.Random, width: int, height: int, taken: list[tuple[int, int, int, int]]
           ) -> tuple[int, int, int, int] | None:
    for _ in range(50):
        w, h = rng.randrange(12, max(13, width // 2)), rng.randrange(12, max(13, height // 2))
        x, y = rng.randrange(0, width - w), rng.randrange(0, height - h)
        box = (x, y, x + w, y + h)
        if all(box[2] + 2 <= t[0] or t[2] + 2 <= box[0] or box[3] + 2 <= t[1] or t[3] + 2 <= box[1] for t in taken):
            return box
    return None


def make_demo(root: str | Path, n_images: int = 8, n_classes: int = 3, seed: int = 0, **_: Any) -> Path:
    """Write ``n_images`` images with regions of ``n_classes`` classes (at most 6) and their label PNGs."""
    from PIL import Image, ImageDraw

    for name, value, top in (("images", n_images, 100_000), ("classes", n_classes, len(COLOURS))):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise DataError(f"semantic-segmentation demo data: expected a number of {name} in 1..{top}, got {value!r}")
    root = Path(root).expanduser()
    if root.exists() and not root.is_dir():
        raise DataError(f"semantic-segmentation demo data: {root} exists and is not a directory")
    images_dir, labels_dir = root / "images" / "validation", root / "annotations" / "validation"
    images_dir.mkdir(parents=True, exist_ok=True)
    labels_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for i in range(n_images):
        width, height = SIZES[i % len(SIZES)]
        image = Image.new("RGB", (width, height), BACKGROUND)
        label = Image.new("L", (width, height), 0)
        taken: list[tuple[int, int, int, int]] = []
        for k in rng.sample(range(n_classes), n_classes):
            for _ in range(rng.randrange(1, 3)):
                box = _place(rng, width, height, taken)
                if box is None:
                    continue
                taken.append(box)
                x0, y0, x1, y1 = box
                shape = ImageDraw.Draw(label).rectangle if rng.random() < 0.5 else ImageDraw.Draw(label).ellipse
                shape((x0, y0, x1 - 1, y1 - 1), fill=k + 1)
        draw = ImageDraw.Draw(image)
        for k in range(n_classes):
            mask = label.point(lambda v, k=k: 255 if v == k + 1 else 0)
            draw.bitmap((0, 0), mask, fill=COLOURS[k])
        stem = f"ADE_val_{i + 1:08d}"
        image.save(images_dir / f"{stem}.jpg", quality=95, subsampling=0)
        label.save(labels_dir / f"{stem}.png")
    return root
