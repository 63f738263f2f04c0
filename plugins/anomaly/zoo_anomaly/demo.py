"""``zoo demo-data --task anomaly-detection DIR``: a small generated set in the MVTec AD layout.

Two categories of regular textures (``stripes``, ``checker``) with a little noise: ``train/good`` holds
normal images (the k-shot references), ``test/good`` normal ones, ``test/blob`` bright filled ellipses and
``test/scratch`` bright thick lines, each with its ``ground_truth/DEFECT/NAME_mask.png`` (0 or 255,
exactly the drawn pixels). The defects are obvious on purpose: a working pipeline must find them.
Deterministic for a seed.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from zoo.errors import DataError

CATEGORIES = ("checker", "stripes")
DEFECTS = ("blob", "scratch")


def _texture(kind: str, size: int, rng: random.Random) -> Any:
    import numpy as np

    yy, xx = np.mgrid[0:size, 0:size]
    shift = rng.randrange(0, 8)
    if kind == "stripes":
        base = ((xx + shift) // 4) % 2
    else:
        base = (((xx + shift) // 8) + ((yy + shift) // 8)) % 2
    noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 6, (size, size))
    grey = np.clip(70 + 50 * base + noise, 0, 255).astype(np.uint8)
    return np.stack([grey, grey, (grey * 0.9).astype(np.uint8)], -1)


def _defect(kind: str, size: int, rng: random.Random) -> Any:
    from PIL import Image, ImageDraw

    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    if kind == "blob":
        r = rng.randrange(size // 10, size // 5)
        cx, cy = rng.randrange(r, size - r), rng.randrange(r, size - r)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    else:
        x0, y0 = rng.randrange(0, size // 3), rng.randrange(0, size)
        x1, y1 = rng.randrange(2 * size // 3, size), rng.randrange(0, size)
        draw.line((x0, y0, x1, y1), fill=255, width=max(3, size // 16))
    return mask


def make_demo(root: str | Path, n_images: int = 8, seed: int = 0, size: int = 64, n_train: int = 8) -> Path:
    """Write ``n_images`` test images per category (half of them defective) and ``n_train`` normal
    training images, ``size`` x ``size`` PNGs, under ``root``."""
    import numpy as np

    for name, value, low, top in (("images", n_images, 2, 10_000), ("train images", n_train, 1, 10_000),
                                  ("pixels", size, 16, 4096)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= top:
            raise DataError(f"anomaly-detection demo data: expected a number of {name} in {low}..{top}, got {value!r}")
    root = Path(root).expanduser()
    rng = random.Random(seed)
    for category in CATEGORIES:
        base = root / category
        for i in range(n_train):
            _save(_texture(category, size, rng), base / "train" / "good" / f"{i:03d}.png")
        n_bad = n_images // 2
        for i in range(n_images - n_bad):
            _save(_texture(category, size, rng), base / "test" / "good" / f"{i:03d}.png")
        for i in range(n_bad):
            kind = DEFECTS[i % len(DEFECTS)]
            pixels = _texture(category, size, rng)
            mask = _defect(kind, size, rng)
            inside = np.asarray(mask) > 0
            pixels[inside] = (235, 235, 220)
            _save(pixels, base / "test" / kind / f"{i:03d}.png")
            (base / "ground_truth" / kind).mkdir(parents=True, exist_ok=True)
            mask.save(base / "ground_truth" / kind / f"{i:03d}_mask.png")
    return root


def _save(pixels: Any, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
