"""Anomaly maps a person can look at: the image, and the image under its heat map, side by side, with
the ground-truth contour drawn on both (PIL only: pillow is already a dependency, matplotlib is not).

The heat map is scaled with one range per category (``low``, ``high``: the category's smallest and largest
map value), so a normal image looks cold next to a defective one instead of being stretched to full red.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

#: a jet-like colour ramp: (position, R, G, B)
_RAMP = np.array([(0.0, 0, 0, 128), (0.125, 0, 0, 255), (0.375, 0, 255, 255), (0.625, 255, 255, 0),
                  (0.875, 255, 0, 0), (1.0, 128, 0, 0)], dtype=np.float64)
CONTOUR = (0, 255, 0)
ALPHA = 0.5


def colorize(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB through the ramp."""
    v = np.clip(values, 0.0, 1.0)
    return np.stack([np.interp(v, _RAMP[:, 0], _RAMP[:, c]) for c in (1, 2, 3)], -1).astype(np.uint8)


def contour(mask: np.ndarray) -> np.ndarray:
    """The boundary pixels of a bool mask (mask pixels with a 4-neighbour outside it)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def render(image: np.ndarray, amap: np.ndarray, mask: np.ndarray, low: float, high: float) -> np.ndarray:
    """``[image | image under the heat map]`` (uint8 ``(H, 2W, 3)``), the mask's contour on both."""
    span = high - low
    scaled = (amap - low) / span if span > 0 else np.zeros_like(amap)
    heat = (ALPHA * colorize(scaled) + (1 - ALPHA) * image).astype(np.uint8)
    edge = contour(mask)
    left, right = image.copy(), heat
    left[edge], right[edge] = CONTOUR, CONTOUR
    return np.concatenate([left, right], axis=1)


def write_png(pixels: np.ndarray, path: Path) -> Path:
    """Write atomically: a temporary file in the same folder, renamed into place (never half a PNG)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".zoo-", suffix=".png", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            Image.fromarray(pixels).save(fh, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def map_path(root: Path, relative: str) -> Path:
    """``root/<the test image's path relative to the dataset, as .png>`` (never outside ``root``)."""
    parts = [p for p in Path(relative).with_suffix(".png").parts if p not in ("", ".", "..", "/")]
    return root.joinpath(*parts)
