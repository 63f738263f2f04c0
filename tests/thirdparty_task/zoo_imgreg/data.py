"""The ``imgreg`` dataset layout, its adapter and its demo data.

Layout::

    DIR/targets.csv      header ``file,target``; one row per image, target a finite number
    DIR/images/NAME.png  the images named in targets.csv (plain names, no folders)

The adapter only lists files (no image is opened): ``zoo eval`` calls it before a model is built.
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from zoo.errors import DataError

TASK = "image-regression"
MAX_ROWS = 1_000_000  #: a targets.csv longer than this is not a dataset of this layout


@dataclass(frozen=True)
class RegressionSet:
    """What ``zoo eval`` needs of a dataset: name, root, length, a fixed order, ``limited``, parts, task."""

    name: str
    root: Path
    samples: list[tuple[str, float]]  #: (image path, target), in targets.csv order
    task: str = TASK
    parts: list[Any] = field(default_factory=list)  #: no sub-sets

    def __len__(self) -> int:
        return len(self.samples)

    def limited(self, limit: int | None) -> RegressionSet:
        return self if limit is None else replace(self, samples=self.samples[:limit])


def imgreg(root: str | Path, **options: Any) -> RegressionSet:
    """Read ``root/targets.csv`` and check every image it names exists under ``root/images``."""
    if options:
        raise DataError(f"imgreg: takes no dataset options, got {', '.join(sorted(options))}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"imgreg: {root} is not a directory")
    table = root / "targets.csv"
    if not table.is_file():
        raise DataError(f"imgreg: {table} not found (expected targets.csv and images/*.png)")
    samples: list[tuple[str, float]] = []
    with table.open(newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header != ["file", "target"]:
            raise DataError(f"imgreg: {table}:1: expected the header 'file,target', got {','.join(header or [])!r}")
        for line, row in enumerate(reader, start=2):
            if len(samples) >= MAX_ROWS:
                raise DataError(f"imgreg: {table}: more than {MAX_ROWS} rows")
            if not row:
                continue
            if len(row) != 2:
                raise DataError(f"imgreg: {table}:{line}: expected 2 columns (file,target), got {len(row)}")
            name, text = row
            if not name or name != Path(name).name or name in (".", ".."):
                raise DataError(f"imgreg: {table}:{line}: file {name!r} must be a plain name inside images/")
            try:
                target = float(text)
            except ValueError:
                raise DataError(f"imgreg: {table}:{line}: target {text!r} is not a number") from None
            if not math.isfinite(target):
                raise DataError(f"imgreg: {table}:{line}: target {text!r} is not a finite number")
            path = root / "images" / name
            if not path.is_file():
                raise DataError(f"imgreg: {table}:{line}: {path} does not exist")
            samples.append((str(path), target))
    if not samples:
        raise DataError(f"imgreg: {table} lists no images")
    return RegressionSet(name="imgreg", root=root, samples=samples)


def make_demo(root: str | Path, n_images: int = 12, seed: int = 0, size: int = 16, **_: Any) -> Path:
    """Write ``n_images`` generated PNGs and their targets (each image's mean brightness, 0-255).

    Levels spread over the whole range, the brightest near 255, so clipping a biased model changes
    its score. Deterministic for a seed.
    """
    from PIL import Image

    if isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < 1:
        raise DataError(f"imgreg demo data: expected a number of images >= 1, got {n_images!r}")
    root = Path(root).expanduser()
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    for i in range(n_images):
        level = 250 if i % 4 == 3 else rng.randrange(8, 240)
        pixels = bytes(min(255, max(0, level + rng.randrange(-5, 6))) for _ in range(size * size * 3))
        name = f"img_{i:04d}.png"
        Image.frombytes("RGB", (size, size), pixels).save(images / name)
        rows.append((name, repr(sum(pixels) / len(pixels))))
    with (root / "targets.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "target"])
        writer.writerows(rows)
    return root
